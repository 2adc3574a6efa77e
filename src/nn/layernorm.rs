//! Layer normalization over the last axis (PyTorch's `nn.LayerNorm(dim)`): each position's
//! features normalized to mean 0 and variance 1 (biased), then scaled and shifted.

use super::{named, Layer, Mode};
use crate::onnx::{Attr, Graph};
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

    fn export(&self, g: &mut Graph, prefix: &str, inputs: &[String]) -> Result<String, String> {
        Ok(export_layer_norm(
            g,
            prefix,
            &inputs[0],
            (&self.weight, &self.bias),
            self.eps,
        ))
    }
}

/// `layer_norm` as ONNX nodes, its weight and bias named `{prefix}.weight` / `.bias`:
/// LayerNormalization from opset 17; before it, the same steps as `layer_norm`.
pub fn export_layer_norm(
    g: &mut Graph,
    prefix: &str,
    x: &str,
    (weight, bias): (&Tensor, &Tensor),
    eps: f32,
) -> String {
    let w = g.tensor(&format!("{prefix}.weight"), weight, weight.dims());
    let b = g.tensor(&format!("{prefix}.bias"), bias, bias.dims());
    if g.opset >= 17 {
        let attrs = vec![Attr::Int("axis", -1), Attr::Float("epsilon", eps)];
        return g.node("LayerNormalization", &[x, &w, &b], attrs);
    }
    let mean = g.reduce("ReduceMean", x, &[-1], true);
    let centered = g.node("Sub", &[x, &mean], vec![]);
    let square = g.node("Mul", &[&centered, &centered], vec![]);
    let var = g.reduce("ReduceMean", &square, &[-1], true);
    let eps = g.scalar(&format!("{prefix}.eps"), eps);
    let var = g.node("Add", &[&var, &eps], vec![]);
    let std = g.node("Sqrt", &[&var], vec![]);
    let y = g.node("Div", &[&centered, &std], vec![]);
    let y = g.node("Mul", &[&y, &w], vec![]);
    g.node("Add", &[&y, &b], vec![])
}
