//! Merge layers, which read several layers (`inputs = ["a", "b"]`): `add` sums inputs of one
//! shape (a residual connection); `concat` joins them along the features (the last axis), or
//! for images along the channels.

use super::{Layer, Mode};
use crate::onnx::{Attr, Graph};
use crate::tensor::{Shape, Tensor};

pub struct Add {
    shape: Shape,
}

impl Add {
    pub fn new(inputs: &[Shape]) -> Result<Add, String> {
        let first = &inputs[0];
        if let Some(other) = inputs.iter().find(|s| *s != first) {
            return Err(format!(
                "add needs inputs of one shape, got {first} and {other}"
            ));
        }
        Ok(Add {
            shape: first.clone(),
        })
    }
}

impl Layer for Add {
    fn kind(&self) -> &'static str {
        "add"
    }

    fn output_shape(&self) -> &Shape {
        &self.shape
    }

    fn forward(&self, x: &Tensor, _mode: &mut Mode) -> Tensor {
        x.clone()
    }

    fn forward_many(&self, inputs: &[Tensor], _mode: &mut Mode) -> Tensor {
        inputs[1..]
            .iter()
            .fold(inputs[0].clone(), |sum, x| sum.add(x))
    }

    /// A chain of Adds, in kiln's order.
    fn export(&self, g: &mut Graph, _prefix: &str, inputs: &[String]) -> Result<String, String> {
        Ok(inputs[1..].iter().fold(inputs[0].clone(), |sum, x| {
            g.node("Add", &[&sum, x], vec![])
        }))
    }
}

pub struct Concat {
    /// The per-sample axis joined along.
    axis: usize,
    shape: Shape,
}

impl Concat {
    pub fn new(inputs: &[Shape]) -> Result<Concat, String> {
        let first = &inputs[0];
        // Images [c, h, w] join channels; features [f] and sequences [len, f] join features.
        let axis = if first.rank() == 3 {
            0
        } else {
            first.rank().saturating_sub(1)
        };
        if first.rank() == 0 {
            return Err("concat needs inputs with at least one axis".into());
        }
        let mut total = 0;
        for s in inputs {
            let same_elsewhere = s.rank() == first.rank()
                && (0..s.rank()).all(|a| a == axis || s.dim(a) == first.dim(a));
            if !same_elsewhere {
                return Err(format!(
                    "concat joins along axis {axis} of the sample, so its inputs must agree elsewhere; got {first} and {s}"
                ));
            }
            total += s.dim(axis);
        }
        Ok(Concat {
            axis,
            shape: first.with_axis(axis, Some(total)),
        })
    }
}

impl Layer for Concat {
    fn kind(&self) -> &'static str {
        "concat"
    }

    fn output_shape(&self) -> &Shape {
        &self.shape
    }

    fn forward(&self, x: &Tensor, _mode: &mut Mode) -> Tensor {
        x.clone()
    }

    fn forward_many(&self, inputs: &[Tensor], _mode: &mut Mode) -> Tensor {
        // The batch axis comes first.
        Tensor::cat(inputs, self.axis + 1)
    }

    fn export(&self, g: &mut Graph, _prefix: &str, inputs: &[String]) -> Result<String, String> {
        let args: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(g.node(
            "Concat",
            &args,
            vec![Attr::Int("axis", self.axis as i64 + 1)],
        ))
    }
}
