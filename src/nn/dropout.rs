//! Inverted dropout: in training, zero each element with probability `rate` and scale the rest
//! by 1/(1 - rate); in evaluation, the identity (as PyTorch and Keras).

use super::{Layer, Mode};
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

    fn forward(&self, x: &Tensor, mode: &mut Mode) -> Tensor {
        if !mode.training || self.rate == 0.0 {
            return x.clone();
        }
        let keep = 1.0 / (1.0 - self.rate);
        let mask: Vec<f32> = (0..x.numel())
            .map(|_| {
                if mode.rng.uniform() < self.rate {
                    0.0
                } else {
                    keep
                }
            })
            .collect();
        x.mul(&Tensor::from_vec(mask, x.shape().clone()))
    }
}
