//! Batch normalization after a dense layer (`[features]`) or a convolution (`[c, h, w]`), as
//! PyTorch's BatchNorm1d / BatchNorm2d: batch statistics in training (biased variance to
//! normalize, unbiased into the running variance), running statistics in evaluation.

use super::{named, Layer, Mode};
use crate::autograd::no_grad;
use crate::onnx::{Attr, Graph};
use crate::tensor::{Shape, Tensor};

pub struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    momentum: f32,
    eps: f32,
    shape: Shape,
}

impl BatchNorm {
    pub fn new(input: &Shape, momentum: f32, eps: f32) -> BatchNorm {
        let c = input.dim(0);
        BatchNorm {
            weight: Tensor::ones([c]).with_requires_grad(),
            bias: Tensor::zeros([c]).with_requires_grad(),
            running_mean: Tensor::zeros([c]),
            running_var: Tensor::ones([c]),
            momentum,
            eps,
            shape: input.clone(),
        }
    }

    /// The per-channel shape that broadcasts against a batch: `[1, c]` or `[1, c, 1, 1]`.
    fn channel_shape(&self) -> Vec<usize> {
        let mut s = vec![1; self.shape.rank() + 1];
        s[1] = self.shape.dim(0);
        s
    }
}

impl Layer for BatchNorm {
    fn kind(&self) -> &'static str {
        "batchnorm"
    }

    fn output_shape(&self) -> &Shape {
        &self.shape
    }

    fn forward(&self, x: &Tensor, mode: &mut Mode) -> Tensor {
        let c = self.shape.dim(0);
        if mode.training {
            let (y, mean, var) = x.batch_norm_train(&self.weight, &self.bias, self.eps);
            let _g = no_grad();
            let count = (x.numel() / c) as f32;
            let unbiased = var.mul_scalar(count / (count - 1.0).max(1.0));
            for (running, stat) in [(&self.running_mean, &mean), (&self.running_var, &unbiased)] {
                let updated = running
                    .mul_scalar(1.0 - self.momentum)
                    .add(&stat.mul_scalar(self.momentum));
                *running.storage_mut() = updated.storage().clone();
            }
            return y;
        }
        let cs = self.channel_shape();
        let (w, b) = (
            self.weight.reshape(cs.clone()),
            self.bias.reshape(cs.clone()),
        );
        let (mean, var) = (
            self.running_mean.reshape(cs.clone()),
            self.running_var.reshape(cs),
        );
        let std = var.add_scalar(self.eps).sqrt();
        x.sub(&mean).div(&std).mul(&w).add(&b)
    }

    fn params(&self) -> Vec<(String, &Tensor)> {
        named(&[("weight", &self.weight), ("bias", &self.bias)])
    }

    /// BatchNormalization on the running statistics (over axis 1 of `[n, c]` or `[n, c, h, w]`).
    fn export(&self, g: &mut Graph, prefix: &str, inputs: &[String]) -> Result<String, String> {
        let c = [self.shape.dim(0)];
        let mut arg = |name: &str, t: &Tensor| g.tensor(&format!("{prefix}.{name}"), t, &c);
        let args = [
            arg("weight", &self.weight),
            arg("bias", &self.bias),
            arg("running_mean", &self.running_mean),
            arg("running_var", &self.running_var),
        ];
        Ok(g.node(
            "BatchNormalization",
            &[&inputs[0], &args[0], &args[1], &args[2], &args[3]],
            vec![Attr::Float("epsilon", self.eps)],
        ))
    }

    fn buffers(&self) -> Vec<(String, &Tensor)> {
        named(&[
            ("running_mean", &self.running_mean),
            ("running_var", &self.running_var),
        ])
    }
}
