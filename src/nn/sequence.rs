//! Layers that reshape samples or pool sequences: `reshape` (e.g. an image's rows as a
//! sequence of steps) and `sequence_pool` (`[len, dim]` → `[dim]` by mean, max or the last
//! real step, skipping padding).

use super::{Layer, Mode};
use crate::onnx::proto::data_type;
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

    /// As `forward`: over the real steps when the sequence has a padding mask (from an
    /// embedding), else over every step.
    fn export(&self, g: &mut Graph, prefix: &str, inputs: &[String]) -> Result<String, String> {
        let x = inputs[0].as_str();
        let Some(m) = g.mask.clone() else {
            return Ok(match self.mode {
                PoolMode::Mean => g.reduce("ReduceMean", x, &[1], false),
                PoolMode::Max => g.reduce("ReduceMax", x, &[1], false),
                PoolMode::Last => {
                    let last = g.constant_i64("last_step", &[-1]);
                    let step = g.node("Gather", &[x, &last], vec![Attr::Int("axis", 1)]);
                    g.reshape(&step, &[0, -1])
                }
            });
        };
        let m3 = g.reshape(&m, &[0, 0, 1]);
        let one = g.scalar(&format!("{prefix}.one"), 1.0);
        Ok(match self.mode {
            PoolMode::Mean => {
                let count = g.reduce("ReduceSum", &m, &[1], true);
                let count = g.node("Max", &[&count, &one], vec![]);
                let kept = g.node("Mul", &[x, &m3], vec![]);
                let sum = g.reduce("ReduceSum", &kept, &[1], false);
                g.node("Div", &[&sum, &count], vec![])
            }
            PoolMode::Max => {
                let big = g.scalar(&format!("{prefix}.big"), 1e30);
                let off = g.node("Sub", &[&m3, &one], vec![]);
                let off = g.node("Mul", &[&off, &big], vec![]);
                let pushed = g.node("Add", &[x, &off], vec![]);
                g.reduce("ReduceMax", &pushed, &[1], false)
            }
            PoolMode::Last => {
                // Row i's step (real steps − 1, at least 0), broadcast over the features.
                let count = g.reduce("ReduceSum", &m, &[1], true);
                let last = g.node("Sub", &[&count, &one], vec![]);
                let zero = g.scalar(&format!("{prefix}.zero"), 0.0);
                let last = g.node("Max", &[&last, &zero], vec![]);
                let last = g.cast(&last, data_type::INT64);
                let last = g.reshape(&last, &[0, 1, 1]);
                let width = self.shape.dim(0) as i64;
                let across = g.constant_i64(&format!("{prefix}.across"), &[1, 1, width]);
                let index = g.node("Expand", &[&last, &across], vec![]);
                let step = g.node("GatherElements", &[x, &index], vec![Attr::Int("axis", 1)]);
                g.reshape(&step, &[0, -1])
            }
        })
    }
}
