//! Batched evaluation of a model on a split, without recording gradients.

use crate::autograd::no_grad;
use crate::config::Task;
use crate::data::stream::Shard;
use crate::data::{DataSchema, Split};
use crate::error::Result;
use crate::loss::{Criterion, Loss};
use crate::metrics::Accumulator;
use crate::nn::Model;
use crate::tensor::Tensor;

pub struct EvalSetup<'a> {
    pub model: &'a Model,
    pub loss: Loss,
    pub criterion: &'a Criterion,
    pub schema: &'a DataSchema,
    pub metrics: &'a [String],
    pub batch_size: usize,
    /// Evaluate only the first this many batches (`train.limit_batches`).
    pub limit_batches: Option<usize>,
}

/// Add a batch's outputs and targets to the statistics, regression values in the target's own
/// units (undoing `data.target_normalize`).
pub fn record(
    acc: &mut Accumulator,
    schema: &DataSchema,
    out: &Tensor,
    y: &Tensor,
    loss: f32,
) -> Result<()> {
    let (mut o, mut t) = (out.try_to_vec()?, y.try_to_vec()?);
    if schema.task == Task::Regression {
        schema.to_target_units(&mut o);
        schema.to_target_units(&mut t);
    }
    acc.add(schema.task, &o, &t, loss);
    Ok(())
}

/// Loss and metric statistics of the model on a split; a device failure is an error.
pub fn evaluate(s: &EvalSetup, split: &Split) -> Result<Accumulator> {
    evaluate_share(s, split, Shard::WHOLE)
}

/// The statistics of one rank's share of a split's rows (all of them for `Shard::WHOLE`): a
/// contiguous part of a split in memory, a part of the file of a streamed one. With
/// `limit_batches`, the first that many batches of the split (of the share, streamed).
pub fn evaluate_share(s: &EvalSetup, split: &Split, shard: Shard) -> Result<Accumulator> {
    let _guard = no_grad();
    let mut acc = Accumulator::new(s.schema.task, s.schema.classes.len(), s.metrics);
    let mut add = |xb: &Tensor, yb: &Tensor| -> Result<()> {
        let out = s.model.infer(xb);
        let loss = s.criterion.compute(s.loss, &out, yb).try_item()?;
        record(&mut acc, s.schema, &out, yb, loss)
    };
    let (batches, size) = (s.limit_batches.unwrap_or(usize::MAX), s.batch_size.max(1));
    if let Some(stream) = split.stream() {
        // A streamed training split, read once in file order.
        let mut rows = stream.epoch(0, false, shard, 0, split.device())?;
        for _ in 0..batches {
            let Some((xb, yb)) = rows.next_rows(size)? else {
                break;
            };
            add(&xb, &yb)?;
        }
        return Ok(acc);
    }
    let n = split.len().min(batches.saturating_mul(size));
    let rank = crate::dist::World {
        rank: shard.rank,
        size: shard.world,
    };
    let rows = rank.share(n);
    for start in rows.clone().step_by(size) {
        let len = size.min(rows.end - start);
        add(&split.rows(start, len), &split.y.narrow(0, start, len))?;
    }
    Ok(acc)
}
