//! Activations, usable as a layer (`type = "relu"`) or on a dense layer (`activation = "relu"`).

use super::{Layer, Mode};
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

    fn fold_activation(&mut self) {
        self.folded = true;
    }
}
