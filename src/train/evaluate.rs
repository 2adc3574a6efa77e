//! Batched evaluation of a model on a split, without recording gradients.

use crate::autograd::no_grad;
use crate::config::Task;
use crate::data::Split;
use crate::error::Result;
use crate::loss::{Criterion, Loss};
use crate::metrics::Accumulator;
use crate::nn::Model;

pub struct EvalSetup<'a> {
    pub model: &'a Model,
    pub loss: Loss,
    pub criterion: &'a Criterion,
    pub task: Task,
    pub classes: usize,
    pub metrics: &'a [String],
    pub batch_size: usize,
}

/// Loss and metric statistics of the model on a split; a device failure is an error.
pub fn evaluate(s: &EvalSetup, split: &Split) -> Result<Accumulator> {
    let _guard = no_grad();
    let mut acc = Accumulator::new(s.task, s.classes, s.metrics);
    let (y, n) = (&split.y, split.len());
    for start in (0..n).step_by(s.batch_size.max(1)) {
        let len = s.batch_size.min(n - start);
        let (xb, yb) = (split.rows(start, len), y.narrow(0, start, len));
        let out = s.model.infer(&xb);
        let loss = s.criterion.compute(s.loss, &out, &yb).try_item()?;
        acc.add(s.task, &out.try_to_vec()?, &yb.try_to_vec()?, loss);
    }
    Ok(acc)
}
