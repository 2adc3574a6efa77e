//! Pooling layers: max and average over windows, and the global average over each channel.

use super::{Layer, Mode};
use crate::onnx::{dims_i64, Attr, Graph};
use crate::ops::Pool;
use crate::tensor::{Shape, Tensor};

pub struct Pool2d {
    kind: Pool,
    kernel: (usize, usize),
    stride: (usize, usize),
    shape: Shape,
}

impl Pool2d {
    pub fn new(
        kind: Pool,
        input: &Shape,
        kernel: (usize, usize),
        stride: (usize, usize),
    ) -> Pool2d {
        let oh = (input.dim(1) - kernel.0) / stride.0 + 1;
        let ow = (input.dim(2) - kernel.1) / stride.1 + 1;
        Pool2d {
            kind,
            kernel,
            stride,
            shape: Shape::from([input.dim(0), oh, ow]),
        }
    }
}

impl Layer for Pool2d {
    fn kind(&self) -> &'static str {
        match self.kind {
            Pool::Max => "maxpool2d",
            Pool::Avg => "avgpool2d",
        }
    }

    fn output_shape(&self) -> &Shape {
        &self.shape
    }

    fn forward(&self, x: &Tensor, _mode: &mut Mode) -> Tensor {
        x.pool2d(self.kind, self.kernel, self.stride)
    }

    fn export(&self, g: &mut Graph, _prefix: &str, inputs: &[String]) -> Result<String, String> {
        let op = match self.kind {
            Pool::Max => "MaxPool",
            Pool::Avg => "AveragePool",
        };
        let (k, s) = (self.kernel, self.stride);
        let attrs = vec![
            Attr::Ints("kernel_shape", dims_i64(&[k.0, k.1])),
            Attr::Ints("strides", dims_i64(&[s.0, s.1])),
        ];
        Ok(g.node(op, &[&inputs[0]], attrs))
    }
}

/// `[c, h, w]` → `[c]`: the mean of each channel.
pub struct GlobalAvgPool {
    shape: Shape,
}

impl GlobalAvgPool {
    pub fn new(input: &Shape) -> GlobalAvgPool {
        GlobalAvgPool {
            shape: Shape::from([input.dim(0)]),
        }
    }
}

impl Layer for GlobalAvgPool {
    fn kind(&self) -> &'static str {
        "global_avgpool"
    }

    fn output_shape(&self) -> &Shape {
        &self.shape
    }

    fn forward(&self, x: &Tensor, _mode: &mut Mode) -> Tensor {
        let d = x.dims();
        x.reshape([d[0], d[1], d[2] * d[3]]).mean(2, false)
    }

    /// GlobalAveragePool keeps 1×1 spatial axes; kiln's output is `[c]`.
    fn export(&self, g: &mut Graph, _prefix: &str, inputs: &[String]) -> Result<String, String> {
        let pooled = g.node("GlobalAveragePool", &[&inputs[0]], vec![]);
        Ok(g.node("Flatten", &[&pooled], vec![Attr::Int("axis", 1)]))
    }
}
