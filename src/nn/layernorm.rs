//! Layer normalization over the last axis (PyTorch's `nn.LayerNorm(dim)`): each position's
//! features normalized to mean 0 and variance 1 (biased), then scaled and shifted.

use super::{named, Layer, Mode};
use crate::tensor::{Shape, Tensor};

pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
    shape: Shape,
}

impl LayerNorm {
    pub fn new(input: &Shape, eps: f32) -> LayerNorm {
        let d = input.dim(input.rank() - 1);
        LayerNorm {
            weight: Tensor::ones([d]).with_requires_grad(),
            bias: Tensor::zeros([d]).with_requires_grad(),
            eps,
            shape: input.clone(),
        }
    }
}

/// `(x − mean) / √(var + eps) · weight + bias` over the last axis.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32) -> Tensor {
    let last = x.rank() - 1;
    let centered = x.sub(&x.mean(last, true));
    let var = centered.mul(&centered).mean(last, true);
    centered
        .div(&var.add_scalar(eps).sqrt())
        .mul(weight)
        .add(bias)
}

impl Layer for LayerNorm {
    fn kind(&self) -> &'static str {
        "layernorm"
    }

    fn output_shape(&self) -> &Shape {
        &self.shape
    }

    fn forward(&self, x: &Tensor, _mode: &mut Mode) -> Tensor {
        layer_norm(x, &self.weight, &self.bias, self.eps)
    }

    fn params(&self) -> Vec<(String, &Tensor)> {
        named(&[("weight", &self.weight), ("bias", &self.bias)])
    }
}
