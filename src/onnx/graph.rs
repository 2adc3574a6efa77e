//! Building an ONNX graph: constants, parameters and nodes with unique names.

use super::proto::{attribute_type, data_type, AttributeProto, NodeProto, TensorProto};
use crate::tensor::Tensor;

/// Nodes and initializers in the order they are added (ONNX wants a node after the nodes
/// that make its inputs; layers are added in the model's order, so they are).
pub struct Graph {
    pub opset: i64,
    /// Whether a node of the ONNX-ML domain (`ai.onnx.ml`) was added.
    pub uses_ml: bool,
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    /// The padding mask `[batch, len]` (f32, 1 at a real step) of the sequence the layer
    /// being exported reads, as `Mode::mask` in a forward pass.
    pub mask: Option<String>,
    made: usize,
}

/// A node attribute.
pub enum Attr {
    Int(&'static str, i64),
    Ints(&'static str, Vec<i64>),
    Float(&'static str, f32),
    Str(&'static str, &'static str),
    Strings(&'static str, Vec<String>),
}

impl Attr {
    fn proto(self) -> AttributeProto {
        let mut a = AttributeProto::default();
        match self {
            Attr::Int(name, i) => {
                (a.name, a.i, a.r#type) = (name.into(), i, attribute_type::INT);
            }
            Attr::Ints(name, ints) => {
                (a.name, a.ints, a.r#type) = (name.into(), ints, attribute_type::INTS);
            }
            Attr::Float(name, f) => {
                (a.name, a.f, a.r#type) = (name.into(), f, attribute_type::FLOAT);
            }
            Attr::Strings(name, list) => {
                let list = list.into_iter().map(String::into_bytes).collect();
                (a.name, a.strings, a.r#type) = (name.into(), list, attribute_type::STRINGS);
            }
            Attr::Str(name, s) => {
                (a.name, a.s, a.r#type) = (name.into(), s.into(), attribute_type::STRING);
            }
        }
        a
    }
}

pub fn dims_i64(dims: &[usize]) -> Vec<i64> {
    dims.iter().map(|&d| d as i64).collect()
}

impl Graph {
    pub fn new(opset: i64) -> Graph {
        Graph {
            opset,
            uses_ml: false,
            nodes: Vec::new(),
            initializers: Vec::new(),
            mask: None,
            made: 0,
        }
    }

    /// An f32 initializer named `name` (a parameter's checkpoint name, or a constant's).
    pub fn constant(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), values.len());
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, dims_i64(dims), data_type::FLOAT, raw)
    }

    pub fn constant_i64(&mut self, name: &str, values: &[i64]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, vec![values.len() as i64], data_type::INT64, raw)
    }

    /// A scalar i64 constant (Clip's bounds on ids).
    pub fn scalar_i64(&mut self, name: &str, value: i64) -> String {
        self.initializer(name, vec![], data_type::INT64, value.to_le_bytes().to_vec())
    }

    /// `x` converted to the element type `to` (`data_type::*`).
    pub fn cast(&mut self, x: &str, to: i32) -> String {
        self.node("Cast", &[x], vec![Attr::Int("to", to as i64)])
    }

    /// A scalar f32 constant, broadcast by the ops that read it.
    pub fn scalar(&mut self, name: &str, value: f32) -> String {
        self.constant(name, &[], &[value])
    }

    /// A model tensor (a parameter or buffer) under its checkpoint name, in `dims`.
    pub fn tensor(&mut self, name: &str, t: &Tensor, dims: &[usize]) -> String {
        self.constant(name, dims, &t.to_vec())
    }

    fn initializer(&mut self, name: &str, dims: Vec<i64>, ty: i32, raw: Vec<u8>) -> String {
        let name = self.unique(name);
        self.initializers.push(TensorProto {
            dims,
            data_type: ty,
            name: name.clone(),
            raw_data: raw,
        });
        name
    }

    /// `name`, or `name_2`, `name_3`, ... when taken.
    fn unique(&mut self, name: &str) -> String {
        let taken = |n: &str| {
            self.initializers.iter().any(|t| t.name == n)
                || self.nodes.iter().any(|x| x.output.iter().any(|o| o == n))
        };
        if !taken(name) {
            return name.to_string();
        }
        (2..)
            .map(|k| format!("{name}_{k}"))
            .find(|n| !taken(n))
            .expect("a free name")
    }

    /// A node with one output, named after the op; returns the output's name.
    pub fn node(&mut self, op: &str, inputs: &[&str], attrs: Vec<Attr>) -> String {
        self.made += 1;
        let out = self.unique(&format!("{}_{}", op.to_ascii_lowercase(), self.made));
        self.node_into(op, inputs, attrs, &out);
        out
    }

    /// A node with `outputs` outputs; returns their names.
    pub fn node_multi(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: Vec<Attr>,
        outputs: usize,
    ) -> Vec<String> {
        self.made += 1;
        let names: Vec<String> = (0..outputs)
            .map(|k| self.unique(&format!("{}_{}_{k}", op.to_ascii_lowercase(), self.made)))
            .collect();
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: names.clone(),
            name: format!("{op}_{}", self.nodes.len()),
            op_type: op.to_string(),
            attribute: attrs.into_iter().map(Attr::proto).collect(),
            domain: String::new(),
        });
        names
    }

    /// A node of the ONNX-ML domain with one output.
    pub fn ml_node(&mut self, op: &str, inputs: &[&str], attrs: Vec<Attr>) -> String {
        let out = self.node(op, inputs, attrs);
        self.nodes.last_mut().expect("just added").domain = "ai.onnx.ml".into();
        self.uses_ml = true;
        out
    }

    /// `ReduceMean` / `ReduceMax` / `ReduceSum` over `axes`: an attribute before opset 18
    /// (ReduceSum: 13), an input from it.
    pub fn reduce(&mut self, op: &str, x: &str, axes: &[i64], keepdims: bool) -> String {
        let keep = Attr::Int("keepdims", keepdims as i64);
        if self.opset >= 18 || op == "ReduceSum" {
            let axes = self.constant_i64("axes", axes);
            self.node(op, &[x, &axes], vec![keep])
        } else {
            self.node(op, &[x], vec![Attr::Ints("axes", axes.to_vec()), keep])
        }
    }

    /// Reshape `x` to `dims` (0 keeps that axis, -1 takes the rest).
    pub fn reshape(&mut self, x: &str, dims: &[i64]) -> String {
        let shape = self.constant_i64("shape", dims);
        self.node("Reshape", &[x, &shape], vec![])
    }

    /// A node whose output gets the given name (a graph output).
    pub fn node_into(&mut self, op: &str, inputs: &[&str], attrs: Vec<Attr>, out: &str) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.to_string()],
            name: format!("{op}_{}", self.nodes.len()),
            op_type: op.to_string(),
            attribute: attrs.into_iter().map(Attr::proto).collect(),
            domain: String::new(),
        });
    }
}
