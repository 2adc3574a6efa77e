//! `kiln bench`

use std::path::PathBuf;

use crate::config;
use crate::data;
use crate::error::{Error, Result};
use crate::train::{build_model, profile};

/// Time each layer's forward and backward on one training batch (as `caffe time`).
#[derive(clap::Args)]
pub struct Args {
    config: PathBuf,
    /// Override a config key: KEY=VALUE (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Timed batches (after two warm-up batches).
    #[arg(long, default_value_t = 20, value_parser = super::positive)]
    iters: usize,
    /// CPU threads (default: every core).
    #[arg(long, value_parser = super::thread_count)]
    pub(super) threads: Option<usize>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
}

pub fn exec(a: Args) -> Result<()> {
    let device = super::select_device(&a.device)?;
    device.warn_if_fell_back();
    let config = config::load(&a.config, &a.set)?;
    let mut prepared = data::prepare(&config.data, config.loss_kind(), config.seed)
        .map_err(|e| config.place(e))?;
    let (model, loss) = build_model(&config, &prepared.schema)?;
    model.to_device(device.device);
    prepared.to_device(device.device);
    let bs = config.train.batch_size.min(prepared.train.len());
    if bs == 0 {
        return Err(Error::Usage("no training rows to time".into()));
    }
    let (x, y) = first_rows(&prepared.train, bs)?;
    // Layers timed as training runs them: in train.precision (inference below stays f32).
    let rows = {
        let _autocast = crate::backend::autocast(config.train.precision);
        profile(&model, loss, &x, &y, a.iters.max(1))?
    };
    let total: f64 = rows.iter().map(|r| r.forward_ms + r.backward_ms).sum();
    let on = match device.device {
        crate::Device::Cpu => format!("{} threads", crate::threads()),
        d => d.name(),
    };
    let precision = match config.train.precision {
        crate::backend::Precision::F32 => String::new(),
        p => format!(", {} products (train.precision)", p.name()),
    };
    outln!(
        "batch {bs}, {on}, mean of {} batches{precision}",
        a.iters.max(1)
    );
    outln!(
        "{:<10} {:<14} {:<14} {:>11} {:>12} {:>7}",
        "layer",
        "type",
        "output",
        "forward ms",
        "backward ms",
        "share"
    );
    for r in &rows {
        let share = 100.0 * (r.forward_ms + r.backward_ms) / total.max(1e-12);
        outln!(
            "{:<10} {:<14} {:<14} {:>11.3} {:>12.3} {:>6.1}%",
            r.name,
            r.kind,
            r.output,
            r.forward_ms,
            r.backward_ms,
            share
        );
    }
    let (f, b): (f64, f64) = (
        rows.iter().map(|r| r.forward_ms).sum(),
        rows.iter().map(|r| r.backward_ms).sum(),
    );
    outln!(
        "{:<10} {:<14} {:<14} {:>11.3} {:>12.3}",
        "total",
        "",
        "",
        f,
        b
    );
    outln!(
        "≈ {:.0} samples/s for forward + backward (optimizer step not included)",
        bs as f64 / (total / 1e3)
    );
    let batch = INFERENCE_BATCH.min(prepared.train.len());
    let x = first_rows(&prepared.train, batch)?.0;
    outln!(
        "inference: batch {batch}, {:.0} samples/s (forward without gradients, whole model)",
        inference_rate(&model, &x, a.iters.max(1))?
    );
    Ok(())
}

/// The first `rows` training rows as (inputs, targets), held in memory or streamed.
fn first_rows(train: &data::Split, rows: usize) -> Result<(crate::Tensor, crate::Tensor)> {
    if let Some(s) = train.stream() {
        let shard = data::stream::Shard::WHOLE;
        return s
            .epoch(0, false, shard, 0, train.device())?
            .next_batch(rows);
    }
    let idx: Vec<u32> = (0..rows as u32).collect();
    Ok((train.batch(&idx, None), train.y.index_select(&idx)))
}

/// Rows per forward pass when timing inference.
const INFERENCE_BATCH: usize = 1000;

/// Samples per second of `iters` forward passes over `x` without gradients, after two warm-up
/// passes, waiting for the device only at the ends (as a serving loop would).
fn inference_rate(model: &crate::nn::Model, x: &crate::Tensor, iters: usize) -> Result<f64> {
    let run = || model.infer(x);
    for _ in 0..2 {
        run();
    }
    x.device().check()?;
    let start = std::time::Instant::now();
    for _ in 0..iters {
        run();
    }
    x.device().check()?;
    Ok((iters * x.dims()[0]) as f64 / start.elapsed().as_secs_f64())
}
