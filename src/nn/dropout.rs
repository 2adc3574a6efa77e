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
        apply(x, self.rate, mode)
    }
}

/// Inverted dropout of `x` (batch first) in training; the identity in evaluation. One draw from
/// the step's stream seeds the whole mask, drawn where `x` lives; a rank's rows take their part
/// of the mask of the global batch, so N ranks drop what one process would.
pub fn apply(x: &Tensor, rate: f32, mode: &mut Mode) -> Tensor {
    if !mode.training || rate == 0.0 {
        return x.clone();
    }
    let per_row = x.numel() / x.dims().first().copied().unwrap_or(1).max(1);
    let first = (mode.first_row * per_row) as u64;
    let mask = Storage::dropout_mask(x.device(), x.numel(), rate, mode.rng.next_u64(), first);
    x.mul(&Tensor::from_storage(mask, x.shape().clone()))
}
