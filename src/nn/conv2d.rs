//! 2-D convolution layer over `[channels, height, width]` samples; weights `[out, in, kh, kw]`
//! as PyTorch's `nn.Conv2d`.

use super::{pytorch_uniform, weight_and_bias, Activation, Layer, Mode};
use crate::onnx::{dims_i64, Attr, Graph};
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

    fn export(&self, g: &mut Graph, prefix: &str, inputs: &[String]) -> Result<String, String> {
        let d = self.weight.dims();
        let params = super::export_weight_and_bias(g, prefix, &self.weight, &self.bias);
        let mut args = vec![inputs[0].as_str()];
        args.extend(params.iter().map(String::as_str));
        let (s, p) = (self.stride, self.pad);
        let attrs = vec![
            Attr::Ints("kernel_shape", dims_i64(&d[2..])),
            Attr::Ints("strides", dims_i64(&[s.0, s.1])),
            Attr::Ints("pads", dims_i64(&[p.0, p.1, p.0, p.1])),
        ];
        let y = g.node("Conv", &args, attrs);
        Ok(Activation::export_optional(self.activation, g, y))
    }

    fn final_activation(&self) -> Option<Activation> {
        self.activation
    }

    fn fold_activation(&mut self) {
        self.activation = None;
    }
}
