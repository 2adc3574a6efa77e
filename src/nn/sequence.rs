//! Layers that reshape samples or pool sequences: `reshape` (e.g. an image's rows as a
//! sequence of steps) and `sequence_pool` (`[len, dim]` → `[dim]` by mean, max or the last
//! real step, skipping padding).

use super::{Layer, Mode};
use crate::onnx::{dims_i64, Attr, Graph};
use crate::tensor::{Shape, Tensor};

pub struct Reshape {
    shape: Shape,
}

impl Reshape {
    pub fn new(input: &Shape, shape: &[usize]) -> Result<Reshape, String> {
        let shape = Shape::from(shape);
        if shape.numel() != input.numel() || shape.rank() == 0 {
            return Err(format!(
                "reshape to {shape} holds {} values, the input {input} holds {}",
                shape.numel(),
                input.numel()
            ));
        }
        Ok(Reshape { shape })
    }
}

impl Layer for Reshape {
    fn kind(&self) -> &'static str {
        "reshape"
    }

    fn output_shape(&self) -> &Shape {
        &self.shape
    }

    fn forward(&self, x: &Tensor, _mode: &mut Mode) -> Tensor {
        let mut dims = vec![x.dims()[0]];
        dims.extend_from_slice(self.shape.dims());
        x.reshape(dims)
    }

    /// Reshape to `[batch, ...shape]`, the batch as `-1`.
    fn export(&self, g: &mut Graph, prefix: &str, inputs: &[String]) -> Result<String, String> {
        let mut dims = vec![-1];
        dims.extend(dims_i64(self.shape.dims()));
        let shape = g.constant_i64(&format!("{prefix}.shape"), &dims);
        Ok(g.node("Reshape", &[&inputs[0], &shape], vec![]))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolMode {
    Mean,
    Max,
    Last,
}

impl PoolMode {
    pub fn from_name(name: &str) -> Result<PoolMode, String> {
        match name {
            "mean" => Ok(PoolMode::Mean),
            "max" => Ok(PoolMode::Max),
            "last" => Ok(PoolMode::Last),
            other => Err(format!(
                "unknown mode \"{other}\"{}; use mean, max or last",
                crate::suggest::did_you_mean(other, &["mean", "max", "last"])
            )),
        }
    }
}

pub struct SequencePool {
    mode: PoolMode,
    shape: Shape,
}

impl SequencePool {
    pub fn new(input: &Shape, mode: PoolMode) -> Result<SequencePool, String> {
        if input.rank() != 2 {
            return Err(format!(
                "sequence_pool needs a sequence [len, features], got {input}"
            ));
        }
        Ok(SequencePool {
            mode,
            shape: Shape::from([input.dim(1)]),
        })
    }
}

/// `[n, len]` of 1 (real) and 0 (padding): the mode's mask, or every step real.
pub fn step_mask(x: &Tensor, mode: &Mode) -> Tensor {
    match &mode.mask {
        Some(m) => m.clone(),
        None => Tensor::full_on([x.dims()[0], x.dims()[1]], 1.0, x.device()),
    }
}

/// Per row, the index of its last real step (0 for a row with none).
pub fn last_steps(mask: &Tensor) -> Vec<usize> {
    let (n, len) = (mask.dims()[0], mask.dims()[1]);
    let m = mask.to_vec();
    (0..n)
        .map(|i| {
            let real = m[i * len..(i + 1) * len]
                .iter()
                .filter(|&&v| v > 0.0)
                .count();
            real.saturating_sub(1)
        })
        .collect()
}

/// Rows `x[i, steps[i], :]` of `x` `[n, len, d]` as `[n, d]`.
pub fn take_steps(x: &Tensor, steps: &[usize]) -> Tensor {
    let (n, len, d) = (x.dims()[0], x.dims()[1], x.dims()[2]);
    let idx: Vec<u32> = steps
        .iter()
        .enumerate()
        .map(|(i, &t)| (i * len + t) as u32)
        .collect();
    x.reshape([n * len, d]).index_select(&idx)
}

impl Layer for SequencePool {
    fn kind(&self) -> &'static str {
        "sequence_pool"
    }

    fn output_shape(&self) -> &Shape {
        &self.shape
    }

    fn forward(&self, x: &Tensor, mode: &mut Mode) -> Tensor {
        let (n, len) = (x.dims()[0], x.dims()[1]);
        let m = step_mask(x, mode);
        let m3 = m.reshape([n, len, 1]);
        match self.mode {
            PoolMode::Mean => {
                let count = m.sum(1, true).clamp(1.0, f32::MAX);
                x.mul(&m3).sum(1, false).div(&count)
            }
            // Padding pushed far below any real value, so the max is a real step's.
            PoolMode::Max => x.add(&m3.add_scalar(-1.0).mul_scalar(1e30)).max(1, false),
            PoolMode::Last => take_steps(x, &last_steps(&m)),
        }
    }

    /// Over every step (a padding mask comes from an embedding, whose export is not built).
    fn export(&self, g: &mut Graph, _prefix: &str, inputs: &[String]) -> Result<String, String> {
        let x = inputs[0].as_str();
        Ok(match self.mode {
            PoolMode::Mean => g.reduce("ReduceMean", x, &[1], false),
            PoolMode::Max => g.reduce("ReduceMax", x, &[1], false),
            PoolMode::Last => {
                let last = g.constant_i64("last_step", &[-1]);
                let step = g.node("Gather", &[x, &last], vec![Attr::Int("axis", 1)]);
                g.reshape(&step, &[0, -1])
            }
        })
    }
}
