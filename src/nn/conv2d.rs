//! 2-D convolution layer over `[channels, height, width]` samples; weights `[out, in, kh, kw]`
//! as PyTorch's `nn.Conv2d`.

use super::{pytorch_uniform, weight_and_bias, Activation, Layer, Mode};
use crate::tensor::{Rng, Shape, Tensor};

pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: (usize, usize),
    pad: (usize, usize),
    activation: Option<Activation>,
    shape: Shape,
}

impl Conv2d {
    /// `input` is `[c, h, w]`; the caller has checked the window fits.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        input: &Shape,
        filters: usize,
        kernel: (usize, usize),
        stride: (usize, usize),
        pad: (usize, usize),
        bias: bool,
        activation: Option<Activation>,
        rng: &mut Rng,
    ) -> Conv2d {
        let (c, h, w) = (input.dim(0), input.dim(1), input.dim(2));
        let fan_in = c * kernel.0 * kernel.1;
        let weight = pytorch_uniform([filters, c, kernel.0, kernel.1], fan_in, rng);
        let bias = bias.then(|| pytorch_uniform([filters], fan_in, rng));
        let oh = (h + 2 * pad.0 - kernel.0) / stride.0 + 1;
        let ow = (w + 2 * pad.1 - kernel.1) / stride.1 + 1;
        Conv2d {
            weight,
            bias,
            stride,
            pad,
            activation,
            shape: Shape::from([filters, oh, ow]),
        }
    }
}

impl Layer for Conv2d {
    fn kind(&self) -> &'static str {
        "conv2d"
    }

    fn output_shape(&self) -> &Shape {
        &self.shape
    }

    fn forward(&self, x: &Tensor, _mode: &mut Mode) -> Tensor {
        if let (Some(b), Some(Activation::Relu)) = (&self.bias, self.activation) {
            return x.conv2d_bias_relu(&self.weight, b, self.stride, self.pad);
        }
        let y = x.conv2d(&self.weight, None, self.stride, self.pad);
        super::bias_activation(y, self.bias.as_ref(), 1, self.activation)
    }

    fn params(&self) -> Vec<(String, &Tensor)> {
        weight_and_bias(&self.weight, &self.bias)
    }

    fn final_activation(&self) -> Option<Activation> {
        self.activation
    }

    fn fold_activation(&mut self) {
        self.activation = None;
    }
}
