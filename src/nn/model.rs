//! A sequential model: layers built in order, each from the previous one's output shape.

use super::{Activation, Layer, LayerSpec, Mode};
use crate::backend::Device;
use crate::error::{Error, Result};
use crate::onnx::Graph;
use crate::tensor::{Rng, Shape, Tensor};

/// Where a layer reads from: the model's input, or an earlier layer's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Input,
    /// One named part of a table's row (a column's encoding, or the numbers).
    Part(usize),
    Layer(usize),
}

/// A named span of the input row that layers can read alone, `inputs = ["review"]`: a text
/// column's token ids, a category column's one-hot slots, or the number columns together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputPart {
    pub name: String,
    pub start: usize,
    pub width: usize,
}

/// One layer of the graph and the layers (or the input) it reads.
struct Node {
    layer: Box<dyn Layer>,
    /// The config's `name`, if it gave one.
    name: Option<String>,
    inputs: Vec<Source>,
}

/// A model: layers in config order, each reading the previous layer's output (a plain stack)
/// or, with `inputs = ["a", "b"]`, the outputs of earlier layers, by `name` or as `layers.N`. Only earlier layers can
/// be read, so the graph has no cycles; the last layer is the output.
pub struct Model {
    nodes: Vec<Node>,
    input_shape: Shape,
    parts: Vec<InputPart>,
    /// The final activation left to the loss, which computes it fused (softmax with
    /// cross-entropy, sigmoid with binary cross-entropy); predict applies it to the outputs.
    folded: Option<Activation>,
    /// Per node, the last node that reads its output (`nodes.len()` for the model's output):
    /// intermediate outputs are dropped as soon as nothing more reads them.
    last_use: Vec<usize>,
}

/// One row of the Keras-style summary.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    pub name: String,
    pub kind: String,
    /// What the layer reads (`input`, or layer names), shown when the model is not a stack.
    pub inputs: Vec<String>,
    pub output_shape: Shape,
    pub params: usize,
}

/// The name the input is read by in `inputs`.
pub const INPUT_NAME: &str = "input";

/// The sources a layer's `inputs` name, resolved against the names of the layers before it.
fn resolve_inputs(
    i: usize,
    spec: &LayerSpec,
    names: &[Option<String>],
    all: &[LayerSpec],
    parts: &[InputPart],
) -> std::result::Result<Vec<Source>, String> {
    let Some(wanted) = &spec.inputs else {
        return Ok(vec![if i == 0 {
            Source::Input
        } else {
            Source::Layer(i - 1)
        }]);
    };
    if wanted.is_empty() {
        return Err("`inputs` names no layer".into());
    }
    wanted
        .iter()
        .map(|w| {
            if w == INPUT_NAME {
                return Ok(Source::Input);
            }
            if let Some(k) = parts.iter().position(|p| p.name == *w) {
                return Ok(Source::Part(k));
            }
            if let Some(j) = names.iter().position(|n| n.as_deref() == Some(w)) {
                return Ok(Source::Layer(j));
            }
            // An unnamed layer by its place: `layers.3`.
            if let Some(j) = w.strip_prefix("layers.").and_then(|n| n.parse::<usize>().ok()) {
                if j < i {
                    return Ok(Source::Layer(j));
                }
            }
            if let Some(j) = all.iter().position(|s| s.name.as_deref() == Some(w)) {
                let why = if j == i { "itself" } else { "a later layer" };
                return Err(format!(
                    "`inputs` names \"{w}\", {why} (model.layers.{j}): a layer reads only layers before it, so a model has no cycles"
                ));
            }
            let mut known: Vec<&str> = names.iter().flatten().map(String::as_str).collect();
            known.push(INPUT_NAME);
            known.extend(parts.iter().map(|p| p.name.as_str()));
            let unnamed = if i == 0 {
                String::new()
            } else {
                format!(" (or layers.N for an unnamed layer N < {i})")
            };
            Err(format!(
                "`inputs` names \"{w}\", which no layer before it is called{}; known: {}{unnamed}",
                crate::suggest::did_you_mean(w, &known),
                known.join(", ")
            ))
        })
        .collect()
}

impl Model {
    /// Build the layers on a per-sample input shape, initialising weights from `rng`. A layer
    /// that does not fit its input, or names an input that does not exist, is reported with
    /// its index, type and the shapes.
    pub fn build(specs: &[LayerSpec], input_shape: &Shape, rng: &mut Rng) -> Result<Model> {
        Model::build_with_parts(specs, input_shape, &[], rng)
    }

    /// `build` on a flat input whose `parts` layers may also read by name.
    pub fn build_with_parts(
        specs: &[LayerSpec],
        input_shape: &Shape,
        parts: &[InputPart],
        rng: &mut Rng,
    ) -> Result<Model> {
        if specs.is_empty() {
            return Err(Error::model("model.layers", "the model has no layers"));
        }
        let mut nodes: Vec<Node> = Vec::with_capacity(specs.len());
        let mut names: Vec<Option<String>> = Vec::with_capacity(specs.len());
        let mut params = 0u128;
        for (i, spec) in specs.iter().enumerate() {
            let place = || format!("model.layers.{i} ({})", spec.kind);
            if let Some(name) = &spec.name {
                let taken = name == INPUT_NAME
                    || parts.iter().any(|p| p.name == *name)
                    || names.iter().flatten().any(|n| n == name);
                if taken {
                    return Err(Error::model(
                        place(),
                        format!("the name \"{name}\" is taken (by the input, an input column or an earlier layer)"),
                    ));
                }
            }
            let inputs = resolve_inputs(i, spec, &names, specs, parts)
                .map_err(|m| Error::model(place(), m))?;
            let shapes: Vec<Shape> = inputs
                .iter()
                .map(|s| match s {
                    Source::Input => input_shape.clone(),
                    Source::Part(k) => Shape::from([parts[*k].width]),
                    Source::Layer(j) => nodes[*j].layer.output_shape().clone(),
                })
                .collect();
            let layer = spec
                .build(&shapes, rng)
                .map_err(|m| Error::model(place(), m))?;
            // Each layer fits alone; together they must fit too (value, gradient, 2 slots).
            params += layer
                .params()
                .iter()
                .map(|(_, t)| t.numel() as u128)
                .sum::<u128>();
            crate::limits::fits(params * 16).map_err(|e| {
                Error::model(
                    place(),
                    format!("the model's {params} weights up to here: training them {e}"),
                )
            })?;
            names.push(spec.name.clone());
            nodes.push(Node {
                layer,
                name: spec.name.clone(),
                inputs,
            });
        }
        let mut last_use = vec![0; nodes.len()];
        for (i, node) in nodes.iter().enumerate() {
            for s in &node.inputs {
                if let Source::Layer(j) = s {
                    last_use[*j] = i;
                }
            }
        }
        last_use[nodes.len() - 1] = nodes.len();
        Ok(Model {
            nodes,
            input_shape: input_shape.clone(),
            parts: parts.to_vec(),
            folded: None,
            last_use,
        })
    }

    /// Whether every layer reads the one before it (a plain stack).
    pub fn is_stack(&self) -> bool {
        self.nodes.iter().enumerate().all(|(i, n)| {
            n.inputs
                == [if i == 0 {
                    Source::Input
                } else {
                    Source::Layer(i - 1)
                }]
        })
    }

    /// The activation the last layer ends with (an activation layer, or a dense or conv
    /// layer's `activation`).
    pub fn final_activation(&self) -> Option<Activation> {
        self.nodes.last().and_then(|n| n.layer.final_activation())
    }

    /// The activations applied after the last layer with weights, the last first: following the
    /// output back through layers without weights (activations, dropout, flatten) to the
    /// layer whose own `activation` ends the chain. What a loss on logits would see on top of
    /// the logits.
    pub fn tail_activations(&self) -> Vec<(usize, Activation)> {
        let mut found = Vec::new();
        let mut i = self.nodes.len() - 1;
        loop {
            let node = &self.nodes[i];
            if let Some(a) = node.layer.final_activation() {
                found.push((i, a));
            }
            if !node.layer.params().is_empty() {
                return found;
            }
            match node.inputs.as_slice() {
                [Source::Layer(j)] => i = *j,
                _ => return found,
            }
        }
    }

    /// Fold a final `activation` into the loss, which computes it fused: the model then outputs
    /// logits. True if the model ended with it.
    pub fn fold_final(&mut self, activation: Activation) -> bool {
        if self.final_activation() != Some(activation) {
            return false;
        }
        self.nodes
            .last_mut()
            .expect("a model has layers")
            .layer
            .fold_activation();
        self.folded = Some(activation);
        true
    }

    /// Fold a final softmax into a cross-entropy loss.
    pub fn fold_final_softmax(&mut self) -> bool {
        self.fold_final(Activation::Softmax)
    }

    pub fn folded(&self) -> Option<Activation> {
        self.folded
    }

    pub fn input_shape(&self) -> &Shape {
        &self.input_shape
    }

    /// Per-sample output shape.
    pub fn output_shape(&self) -> &Shape {
        self.nodes
            .last()
            .expect("a model has layers")
            .layer
            .output_shape()
    }

    /// The model in evaluation mode as ONNX nodes reading the value `input` (`[batch,
    /// ...input_shape]`); returns the output's name. A layer that cannot be exported is
    /// named by its place.
    pub fn export(&self, g: &mut Graph, input: &str) -> std::result::Result<String, String> {
        let mut names: Vec<String> = Vec::new();
        let mut masks: Vec<Option<String>> = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            g.mask = first_mask(&node.inputs, &masks, &None).cloned();
            let inputs = node
                .inputs
                .iter()
                .map(|s| match s {
                    Source::Input => Ok(input.to_string()),
                    Source::Part(k) => {
                        let p = &self.parts[*k];
                        let at =
                            |g: &mut Graph, name: &str, v: usize| g.constant_i64(name, &[v as i64]);
                        let (start, end, axis) = (
                            at(g, "part_start", p.start),
                            at(g, "part_end", p.start + p.width),
                            at(g, "part_axis", 1),
                        );
                        Ok(g.node("Slice", &[input, &start, &end, &axis], vec![]))
                    }
                    Source::Layer(j) => Ok(names[*j].clone()),
                })
                .collect::<std::result::Result<Vec<String>, String>>();
            let out = inputs
                .and_then(|ins| node.layer.export(g, &format!("layers.{i}"), &ins))
                .map_err(|e| format!("model.layers.{i} ({}): {e}", node.layer.kind()))?;
            names.push(out);
            masks.push(g.mask.take());
        }
        Ok(names.pop().expect("a model has layers"))
    }

    /// `x` is `[batch, ...input_shape]`. Layers run in config order (so dropout draws in the
    /// same order every time), each output kept only until its last reader has run.
    /// A padding mask follows the values it describes: each layer sees the mask of its first
    /// input that has one (an embedding makes a new one; `mode.mask` on entry is the input's),
    /// so two text columns' branches keep their own. On return `mode.mask` is the output's.
    pub fn forward(&self, x: &Tensor, mode: &mut Mode) -> Tensor {
        let mut outputs: Vec<Option<Tensor>> = vec![None; self.nodes.len()];
        let mut masks: Vec<Option<Tensor>> = vec![None; self.nodes.len()];
        let input_mask = mode.mask.take();
        for (i, node) in self.nodes.iter().enumerate() {
            mode.mask = first_mask(&node.inputs, &masks, &input_mask).cloned();
            let inputs: Vec<Tensor> = node
                .inputs
                .iter()
                .map(|s| match s {
                    Source::Input => x.clone(),
                    Source::Part(k) => self.part(x, *k),
                    Source::Layer(j) => outputs[*j].clone().expect("an earlier layer's output"),
                })
                .collect();
            outputs[i] = Some(node.layer.forward_many(&inputs, mode));
            masks[i] = mode.mask.take();
            for s in &node.inputs {
                if let Source::Layer(j) = s {
                    if self.last_use[*j] == i {
                        outputs[*j] = None;
                    }
                }
            }
        }
        mode.mask = masks.pop().flatten();
        outputs.pop().flatten().expect("a model has layers")
    }

    /// The output for `x` in evaluation mode (dropout off, batchnorm on its running
    /// statistics), without recording gradients; `x` moves to the model's device first.
    pub fn infer(&self, x: &Tensor) -> Tensor {
        let _guard = crate::autograd::no_grad();
        let mut rng = Rng::new(0); // evaluation draws nothing
        let mode = &mut Mode::new(false, &mut rng);
        self.forward(&x.to_device(self.device()), mode)
    }

    /// Rows per evaluation batch: 256 (or the training batch, if larger) unless the layers'
    /// working values would pass `EVAL_FLOATS` (16 MiB of f32) at that size, as a
    /// transformer's attention scores do; never below the training batch.
    pub fn eval_batch(&self, train_batch: usize) -> usize {
        const EVAL_FLOATS: usize = 4 << 20;
        let per: usize = self
            .nodes
            .iter()
            .map(|n| n.layer.eval_floats_per_sample())
            .sum();
        (EVAL_FLOATS / per.max(1)).clamp(1, 256).max(train_batch)
    }

    /// Part `k` of a batch of input rows `[n, width]`.
    pub fn part(&self, x: &Tensor, k: usize) -> Tensor {
        let p = &self.parts[k];
        x.narrow(1, p.start, p.width)
    }

    pub fn num_layers(&self) -> usize {
        self.nodes.len()
    }

    /// What layer `i` reads.
    pub fn layer_inputs(&self, i: usize) -> &[Source] {
        &self.nodes[i].inputs
    }

    /// Layer `i` alone on its inputs, for per-layer timing.
    pub fn forward_layer(&self, i: usize, inputs: &[Tensor], mode: &mut Mode) -> Tensor {
        self.nodes[i].layer.forward_many(inputs, mode)
    }

    /// Parameters named as in checkpoints: `layers.<index>.<name>`.
    pub fn named_params(&self) -> Vec<(String, Tensor)> {
        self.nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| {
                n.layer
                    .params()
                    .into_iter()
                    .map(move |(n, t)| (format!("layers.{i}.{n}"), t.clone()))
            })
            .collect()
    }

    /// Parameters and buffers: everything a model file holds.
    pub fn named_state(&self) -> Vec<(String, Tensor)> {
        let mut state = self.named_params();
        for (i, n) in self.nodes.iter().enumerate() {
            state.extend(
                n.layer
                    .buffers()
                    .into_iter()
                    .map(|(n, t)| (format!("layers.{i}.{n}"), t.clone())),
            );
        }
        state
    }

    /// Move every parameter and buffer to `device`, in place (optimizers holding them follow).
    pub fn to_device(&self, device: Device) {
        for (_, t) in self.named_state() {
            t.move_to(device);
        }
    }

    /// Where the model's weights live (the CPU for a model without any).
    pub fn device(&self) -> Device {
        self.named_state()
            .first()
            .map_or(Device::Cpu, |(_, t)| t.device())
    }

    pub fn num_params(&self) -> usize {
        self.named_params().iter().map(|(_, t)| t.numel()).sum()
    }

    /// The layer's name for people: its `name`, else `layers.<i>`.
    pub fn layer_name(&self, i: usize) -> String {
        self.nodes[i]
            .name
            .clone()
            .unwrap_or_else(|| format!("layers.{i}"))
    }

    pub fn summary(&self) -> Vec<SummaryRow> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| SummaryRow {
                name: self.layer_name(i),
                kind: n.layer.kind().to_string(),
                inputs: n
                    .inputs
                    .iter()
                    .map(|s| match s {
                        Source::Input => INPUT_NAME.to_string(),
                        Source::Part(k) => self.parts[*k].name.clone(),
                        Source::Layer(j) => self.layer_name(*j),
                    })
                    .collect(),
                output_shape: n.layer.output_shape().clone(),
                params: n.layer.params().iter().map(|(_, t)| t.numel()).sum(),
            })
            .collect()
    }
}

/// The padding mask of the first of `inputs` that has one (`masks` per earlier layer,
/// `input` the model input's).
fn first_mask<'a, M>(
    inputs: &[Source],
    masks: &'a [Option<M>],
    input: &'a Option<M>,
) -> Option<&'a M> {
    inputs.iter().find_map(|s| match s {
        Source::Layer(j) => masks[*j].as_ref(),
        Source::Input | Source::Part(_) => input.as_ref(),
    })
}
