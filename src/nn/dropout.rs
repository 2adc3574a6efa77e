//! Inverted dropout: in training, zero each element with probability `rate` and scale the rest
//! by 1/(1 - rate); in evaluation, the identity (as PyTorch and Keras).

use super::{Layer, Mode};
use crate::backend::Storage;
use crate::onnx::Graph;
use crate::tensor::{Shape, Tensor};

pub struct Dropout {
    rate: f32,
    shape: Shape,
}

impl Dropout {
    pub fn new(rate: f32, input: &Shape) -> Dropout {
        Dropout {
            rate,
            shape: input.clone(),
        }
    }
}

impl Layer for Dropout {
    fn kind(&self) -> &'static str {
        "dropout"
    }

    fn output_shape(&self) -> &Shape {
        &self.shape
    }

    /// Evaluation mode: the input as it is.
    fn export(&self, _g: &mut Graph, _prefix: &str, inputs: &[String]) -> Result<String, String> {
        Ok(inputs[0].clone())
    }

    fn forward(&self, x: &Tensor, mode: &mut Mode) -> Tensor {
        if !mode.training || self.rate == 0.0 {
            return x.clone();
        }
        // One draw from the step's stream seeds the whole mask, drawn where `x` lives.
        let mask = Storage::dropout_mask(x.device(), x.numel(), self.rate, mode.rng.next_u64());
        x.mul(&Tensor::from_storage(mask, x.shape().clone()))
    }
}
