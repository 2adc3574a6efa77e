//! Fully connected layer: y = x·Wᵀ + b, W stored `[out, in]` as PyTorch's `nn.Linear`.

use super::{pytorch_uniform, weight_and_bias, Activation, Layer, Mode};
use crate::onnx::{Attr, Graph};
use crate::tensor::{Rng, Shape, Tensor};

pub struct Dense {
    weight: Tensor,
    bias: Option<Tensor>,
    activation: Option<Activation>,
    shape: Shape,
}

impl Dense {
    pub fn new(
        inputs: usize,
        units: usize,
        bias: bool,
        activation: Option<Activation>,
        rng: &mut Rng,
    ) -> Dense {
        let weight = pytorch_uniform([units, inputs], inputs, rng);
        let bias = bias.then(|| pytorch_uniform([units], inputs, rng));
        Dense {
            weight,
            bias,
            activation,
            shape: Shape::from([units]),
        }
    }
}

impl Layer for Dense {
    fn kind(&self) -> &'static str {
        "dense"
    }

    fn output_shape(&self) -> &Shape {
        &self.shape
    }

    fn forward(&self, x: &Tensor, _mode: &mut Mode) -> Tensor {
        let y = x.matmul_t(&self.weight, false, true);
        let last = y.rank() - 1;
        super::bias_activation(y, self.bias.as_ref(), last, self.activation)
    }

    fn params(&self) -> Vec<(String, &Tensor)> {
        weight_and_bias(&self.weight, &self.bias)
    }

    /// Gemm (x·Wᵀ + b) with the weight `[units, inputs]` as stored.
    fn export(&self, g: &mut Graph, prefix: &str, inputs: &[String]) -> Result<String, String> {
        let params = super::export_weight_and_bias(g, prefix, &self.weight, &self.bias);
        let mut args = vec![inputs[0].as_str()];
        args.extend(params.iter().map(String::as_str));
        let y = g.node("Gemm", &args, vec![Attr::Int("transB", 1)]);
        Ok(Activation::export_optional(self.activation, g, y))
    }

    fn final_activation(&self) -> Option<Activation> {
        self.activation
    }

    fn fold_activation(&mut self) {
        self.activation = None;
    }
}
