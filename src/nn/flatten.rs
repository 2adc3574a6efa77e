//! Flatten every axis after the batch into one.

use super::{Layer, Mode};
use crate::onnx::{Attr, Graph};
use crate::tensor::{Shape, Tensor};

pub struct Flatten {
    shape: Shape,
}

impl Flatten {
    pub fn new(input: &Shape) -> Flatten {
        Flatten {
            shape: Shape::from([input.numel()]),
        }
    }
}

impl Layer for Flatten {
    fn kind(&self) -> &'static str {
        "flatten"
    }

    fn output_shape(&self) -> &Shape {
        &self.shape
    }

    fn forward(&self, x: &Tensor, _mode: &mut Mode) -> Tensor {
        x.reshape([x.dims()[0], self.shape.numel()])
    }

    fn export(&self, g: &mut Graph, _prefix: &str, inputs: &[String]) -> Result<String, String> {
        Ok(g.node("Flatten", &[&inputs[0]], vec![Attr::Int("axis", 1)]))
    }
}
