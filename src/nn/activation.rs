//! Activations, usable as a layer (`type = "relu"`) or on a dense layer (`activation = "relu"`).

use super::{Layer, Mode};
use crate::onnx::{Attr, Graph};
use crate::tensor::{Shape, Tensor};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    /// Negative slope (default 0.01, as PyTorch).
    LeakyRelu(f32),
    Gelu,
    Sigmoid,
    Tanh,
    /// Over the last axis.
    Softmax,
}

impl Activation {
    pub const NAMES: &'static [&'static str] =
        &["relu", "leaky_relu", "gelu", "sigmoid", "tanh", "softmax"];

    pub fn from_name(name: &str, slope: Option<f32>) -> Option<Activation> {
        Some(match name {
            "relu" => Activation::Relu,
            "leaky_relu" => Activation::LeakyRelu(slope.unwrap_or(0.01)),
            "gelu" => Activation::Gelu,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "softmax" => Activation::Softmax,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::LeakyRelu(_) => "leaky_relu",
            Activation::Gelu => "gelu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
        }
    }

    /// `self(x)` as ONNX nodes; returns the output's name.
    pub fn export(self, g: &mut Graph, x: &str) -> String {
        match self {
            Activation::Relu => g.node("Relu", &[x], vec![]),
            Activation::LeakyRelu(slope) => {
                g.node("LeakyRelu", &[x], vec![Attr::Float("alpha", slope)])
            }
            Activation::Sigmoid => g.node("Sigmoid", &[x], vec![]),
            Activation::Tanh => g.node("Tanh", &[x], vec![]),
            Activation::Softmax => g.node("Softmax", &[x], vec![Attr::Int("axis", -1)]),
            // The exact GELU, x·Φ(x) = x · ½(1 + erf(x/√2)); opset 20 has it as one op.
            Activation::Gelu if g.opset >= 20 => g.node("Gelu", &[x], vec![]),
            Activation::Gelu => {
                let inv_sqrt2 = g.scalar("gelu_inv_sqrt2", std::f32::consts::FRAC_1_SQRT_2);
                let (half, one) = (g.scalar("gelu_half", 0.5), g.scalar("gelu_one", 1.0));
                let scaled = g.node("Mul", &[x, &inv_sqrt2], vec![]);
                let erf = g.node("Erf", &[&scaled], vec![]);
                let cdf = g.node("Add", &[&erf, &one], vec![]);
                let cdf = g.node("Mul", &[&cdf, &half], vec![]);
                g.node("Mul", &[x, &cdf], vec![])
            }
        }
    }

    /// `activation(x)` when there is one, else `x`.
    pub fn export_optional(a: Option<Activation>, g: &mut Graph, x: String) -> String {
        match a {
            Some(a) => a.export(g, &x),
            None => x,
        }
    }

    pub fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Activation::Relu => x.relu(),
            Activation::LeakyRelu(s) => x.leaky_relu(s),
            Activation::Gelu => x.gelu(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Tanh => x.tanh(),
            Activation::Softmax => x.softmax(x.rank() - 1),
        }
    }
}

pub struct ActivationLayer {
    pub activation: Activation,
    shape: Shape,
    /// A folded final activation passes its input through.
    folded: bool,
}

impl ActivationLayer {
    pub fn new(activation: Activation, input: &Shape) -> ActivationLayer {
        ActivationLayer {
            activation,
            shape: input.clone(),
            folded: false,
        }
    }
}

impl Layer for ActivationLayer {
    fn kind(&self) -> &'static str {
        self.activation.name()
    }

    fn output_shape(&self) -> &Shape {
        &self.shape
    }

    fn forward(&self, x: &Tensor, _mode: &mut Mode) -> Tensor {
        if self.folded {
            x.clone()
        } else {
            self.activation.apply(x)
        }
    }

    fn final_activation(&self) -> Option<Activation> {
        (!self.folded).then_some(self.activation)
    }

    fn export(&self, g: &mut Graph, _prefix: &str, inputs: &[String]) -> Result<String, String> {
        Ok(Activation::export_optional(
            self.final_activation(),
            g,
            inputs[0].clone(),
        ))
    }

    fn fold_activation(&mut self) {
        self.folded = true;
    }
}
