//! `fit`: the training loop — forward, loss, read the loss, backward, clip, step — with the
//! bookkeeping behind named calls: the run directory and resume in `setup`, the watched
//! metrics in `monitor`, TensorBoard and plots in `visuals`, the terminal in `report`.

pub mod cuda_graphs;
mod evaluate;
mod monitor;
mod parallel;
mod profile;
mod report;
mod scaler;
mod setup;
mod visuals;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use evaluate::{evaluate, EvalSetup};
pub use monitor::Watch;
pub use profile::{profile, LayerTime};
pub use setup::{build_model, criterion, loss_for, optimizer};
pub use visuals::comparison as comparison_plot;
pub use visuals::confusion as confusion_plot;

use crate::backend::Device;
use crate::config::{self, Config};
use crate::data::Prepared;
use crate::dist::World;
use crate::error::{Error, Result};
use crate::loss::{Criterion, Loss};
use crate::metrics::Accumulator;
use crate::nn::{Mode, Model};
use crate::optim::{clip_grad_norm, Optimizer};
use crate::run::{checkpoint, Checkpoints, MetricsCsv, MetricsTable, RunDir, RunInfo, Status};
use crate::tensor::{Rng, Stream, Tensor};
use monitor::WatchState;
use report::Reporter;

pub struct Options {
    /// Folder for new runs (`runs/`).
    pub runs: PathBuf,
    /// Exact directory for a new run.
    pub run_dir: Option<PathBuf>,
    /// Continue this run from its last checkpoint.
    pub resume: Option<PathBuf>,
    pub quiet: bool,
    /// Where to train.
    pub device: Device,
    /// Why `--device auto` chose the CPU, for the log.
    pub device_note: Option<String>,
}

/// Where training stands; saved in every checkpoint so a resumed run continues exactly.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Progress {
    /// Epochs completed.
    epoch: usize,
    /// Batches completed in the current epoch.
    batch: usize,
    /// Optimizer steps taken.
    step: u64,
    /// Training statistics of the current epoch so far.
    train: Accumulator,
    /// Seconds spent in the current epoch so far.
    seconds: f64,
    /// The best epoch and early stopping's count.
    #[serde(flatten)]
    watch: WatchState,
    /// The loss scaler's state (`train.precision = "f16"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scaler: Option<scaler::ScalerState>,
    /// Steps the loss scaler skipped in the whole run: the optimizer has taken
    /// `step - skipped_steps` steps (Adam's bias correction counts those).
    #[serde(default, skip_serializing_if = "is_zero")]
    skipped_steps: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Progress {
    /// Steps the optimizer has taken.
    fn optimizer_steps(&self) -> u64 {
        self.step - self.skipped_steps
    }
}

pub struct Outcome {
    pub run_dir: PathBuf,
    pub info: RunInfo,
    /// The last epoch's row of metrics.csv.
    pub last: Vec<(String, f64)>,
}

/// Tensors by their checkpoint names.
type NamedTensors = Vec<(String, Tensor)>;

/// What a run writes: rank 0's alone in a data-parallel run.
struct Output {
    run: RunDir,
    csv: MetricsCsv,
    checkpoints: Checkpoints,
    events: visuals::Events,
}

/// Everything a run holds while it trains.
struct Session {
    config: Config,
    data: Prepared,
    model: Model,
    params: Vec<(String, Tensor)>,
    loss: Loss,
    criterion: Criterion,
    metrics: Vec<String>,
    optim: Optimizer,
    watch: Watch,
    /// The ranks training together (one, unless launched under mpirun).
    world: World,
    /// The run directory and its writers; `None` on ranks other than 0.
    out: Option<Output>,
    /// The run directory's path (as rank 0 has it), for messages.
    run_path: PathBuf,
    info: RunInfo,
    report: Reporter,
    /// Time in the gradient all-reduce (several ranks).
    reduce_time: parallel::ReduceTime,
    progress: Progress,
    /// The learning rate of the latest step.
    lr: f32,
    /// The batch the current epoch started (or resumed) at, for the rate shown.
    first_batch: usize,
    /// When the last checkpoint was written (or training started).
    last_saved: Instant,
    /// When run.json and the best model were last written between checkpoints.
    info_written: Instant,
    best_written: Instant,
    /// The best model's state and metadata when it improved too soon after the last write:
    /// written at the next chance (a write due, a checkpoint, the end).
    pending_best: Option<(NamedTensors, HashMap<String, String>)>,
    /// When `train.max_time` runs out (counted from this process's start of training).
    deadline: Option<Instant>,
    /// Training stopped at the deadline.
    timed_out: bool,
}

/// The shortest time between rewrites of run.json or of the best model between checkpoints:
/// a run of many tiny epochs spends its time training, not renaming files.
const REWRITE_SECONDS: f64 = 1.0;

/// Train a model as the config says; returns when training finishes, stops early, fails or is
/// interrupted (then with `Error::Interrupted` after writing a checkpoint).
pub fn fit(config: Config, opts: &Options, stop: &AtomicBool) -> Result<Outcome> {
    let mut s = setup::start(config, opts)?;
    // A budget too large for the clock is no budget.
    s.deadline = s.config.train.max_time.and_then(|t| {
        let budget = std::time::Duration::try_from_secs_f64(t.0).ok()?;
        Instant::now().checked_add(budget)
    });
    let trained = s.train(stop);
    s.conclude(trained)
}

impl Session {
    /// The loop. Each step: forward, loss, read the loss (on a GPU the step waits here, and a
    /// device error surfaces), backward, clip, optimizer step.
    fn train(&mut self, stop: &AtomicBool) -> Result<()> {
        let (n, bs) = (self.data.train.len(), self.config.train.batch_size);
        let limit = self.config.train.limit_batches.unwrap_or(usize::MAX);
        let (steps, epochs, seed) = (
            n.div_ceil(bs).min(limit),
            self.config.train.epochs,
            self.config.seed,
        );
        // Matrix products in the configured precision for this thread's training and
        // validation (the test evaluation at the end runs in f32, as eval and predict do).
        let _autocast = crate::backend::autocast(self.config.train.precision);
        self.start_scaler()?;
        while self.progress.epoch < epochs {
            let started = self.begin_epoch(steps);
            // data.stream: the epoch's rows read from the file; each rank reads its part of it
            // and takes its share of every global batch from there.
            let (world, share) = (self.world, self.world.share(bs));
            let single = world.is_single();
            let shard = crate::data::stream::Shard::new(world.rank, world.size);
            // A file that fails to open is this epoch's first unreadable batch: with several
            // ranks it must reach the others through the step's all-reduce, like a bad row.
            let (mut streamed, mut unopened) = match crate::data::stream::open_epoch(
                &self.data.train,
                self.progress.epoch,
                self.config.train.shuffle,
                shard,
                self.progress.batch * share.len(),
            ) {
                Ok(streamed) => (streamed, None),
                Err(e) if single => return Err(self.stream_failed(started, Some(e))),
                Err(e) => (None, Some(e)),
            };
            // Several ranks' parts of a file hold about, not exactly, equal rows: their epoch
            // goes on until every part is read (a rank whose part is done takes no rows).
            let is_streamed = self.data.train.stream().is_some();
            let ranks_read_parts = is_streamed && !single;
            let order = match is_streamed {
                true => Vec::new(),
                false => epoch_order(n, seed, self.progress.epoch, self.config.train.shuffle),
            };
            for b in self.progress.batch.. {
                if b >= limit || (b >= steps && !ranks_read_parts) {
                    break;
                }
                if single && stop.load(Ordering::SeqCst) {
                    return Err(self.interrupt(started));
                }
                let mut rng = Rng::stream(seed, Stream::Step(self.progress.step));
                let augment = self.config.data.augment.as_ref().filter(|a| a.is_active());
                // This rank's share of the global batch (all of it in one process): its inputs,
                // targets, and where its first row sits in the global batch.
                let batch = match &mut streamed {
                    _ if unopened.is_some() => unopened.take().map(Err),
                    Some(s) if single => Some(s.next_batch(bs).map(|(x, y)| (x, y, 0))),
                    Some(s) => s
                        .next_rows(share.len())
                        .transpose()
                        .map(|r| r.map(|(x, y)| (x, y, share.start))),
                    None if is_streamed => None,
                    None => {
                        let rows = &order[b * bs..((b + 1) * bs).min(n)];
                        let own = world.share(rows.len());
                        (!own.is_empty()).then(|| {
                            let x = self.data.train.batch_part(
                                rows,
                                own.clone(),
                                augment.map(|a| (a, &mut rng)),
                            );
                            Ok((
                                x,
                                self.data.train.y.index_select(&rows[own.clone()]),
                                own.start,
                            ))
                        })
                    }
                };
                // A bad row: one process stops here; a rank tells the others in the step's
                // all-reduce, and they stop together.
                let mut unreadable = None;
                let batch = match batch.transpose() {
                    Ok(batch) => batch,
                    Err(e) if single => return Err(self.stream_failed(started, Some(e))),
                    Err(e) => {
                        unreadable = Some(e);
                        None
                    }
                };
                if ranks_read_parts && !world.any(batch.is_some() || unreadable.is_some()) {
                    break;
                }
                let mut local = None;
                if let Some((x, y, first_row)) = batch {
                    let mode = &mut Mode::new(true, &mut rng).at_row(first_row);
                    let out = self.model.forward(&x, mode);
                    let loss = self.criterion.compute(self.loss, &out, &y);
                    let value = loss.try_item()?;
                    if single {
                        self.check_loss(value)?;
                    }
                    match &self.progress.scaler {
                        Some(sc) => sc.scaled(&loss).backward(),
                        None => loss.backward(),
                    }
                    local = Some((out, y, value));
                }
                let mut time_up = self.deadline.is_some_and(|d| Instant::now() >= d);
                let mut value = local.as_ref().map_or(0.0, |l| l.2);
                let mut stopping = false;
                if !single {
                    let weight = local
                        .as_ref()
                        .map_or(0.0, |(_, y, _)| self.criterion.batch_weight(self.loss, y));
                    let flags = (stop.load(Ordering::SeqCst), time_up, unreadable.is_some());
                    let agreed = parallel::reduce_step(
                        &self.world,
                        &self.params,
                        (value, weight),
                        flags,
                        &mut self.reduce_time,
                    )?;
                    if agreed.failed {
                        self.optim.zero_grad();
                        return Err(self.stream_failed(started, unreadable));
                    }
                    // Every rank sees the same loss, so every rank ends here together.
                    self.check_loss(agreed.loss).map_err(crate::dist::agreed)?;
                    (value, stopping, time_up) = (agreed.loss, agreed.stop, agreed.time_up);
                }
                // f16: unscale before clipping; gradients that overflowed skip the step (on
                // every rank alike, as they hold the same all-reduced gradients).
                let take_step = self.unscale_gradients()?;
                if let Some(max) = self.config.train.grad_clip_norm.filter(|_| take_step) {
                    clip_grad_norm(&self.params, max);
                }
                self.lr = self.lr_at(steps);
                if take_step {
                    self.optim.step(self.lr);
                }
                self.optim.zero_grad();
                // The epoch's loss counts each rank's rows at the global batch's loss (its
                // share's own would weigh class-weighted shares wrongly).
                self.end_step(
                    local.as_ref().map(|(o, y, _)| (o, y, value)),
                    value,
                    started,
                )?;
                if stopping {
                    return Err(self.interrupt(started));
                }
                if time_up {
                    return self.time_up(started);
                }
            }
            if self.end_epoch(started)? {
                break;
            }
        }
        Ok(())
    }
}

/// The training rows of an epoch, in order: shuffled from (seed, epoch) alone, so a resumed
/// run draws the same order.
fn epoch_order(n: usize, seed: u64, epoch: usize, shuffle: bool) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    if shuffle {
        Rng::stream(seed, Stream::Shuffle(epoch)).shuffle(&mut order);
    }
    order
}

impl Session {
    /// Start (or continue) the current epoch; returns when it started.
    fn begin_epoch(&mut self, steps: usize) -> Instant {
        if self.progress.batch == 0 {
            let (task, classes) = (self.data.schema.task, self.data.schema.classes.len());
            self.progress.train = Accumulator::new(task, classes, &self.metrics);
            self.progress.seconds = 0.0;
        }
        (self.lr, self.first_batch) = (0.0, self.progress.batch);
        let epochs = self.config.train.epochs;
        let (epoch, done) = (self.progress.epoch + 1, self.progress.batch);
        self.report.start_epoch(epoch, epochs, steps, done);
        Instant::now()
    }

    /// `train.precision = "f16"`: the loss scaler from the checkpoint, or a new one; none in
    /// another precision (a run resumed in another precision drops it).
    fn start_scaler(&mut self) -> Result<()> {
        let t = &self.config.train;
        if t.precision != crate::backend::Precision::F16 {
            self.progress.scaler = None;
        } else if self.progress.scaler.is_none() {
            let config = t.loss_scale.clone().unwrap_or_default();
            self.progress.scaler = Some(scaler::ScalerState::new(&config));
        }
        let p = t.precision;
        if p != crate::backend::Precision::F32 {
            let mut line = format!(
                "precision {}: matrix products take {} operands and accumulate in f32; weights, optimizer state, losses, softmax and norms stay f32",
                p.name(),
                p.name()
            );
            if let Some(sc) = &self.progress.scaler {
                line += &format!("; dynamic loss scale {:e}", sc.scale);
            }
            self.say(&line)?;
            let device = self.params.first().map(|(_, t)| t.device());
            if device == Some(crate::backend::Device::Cpu) {
                self.say(&format!(
                    "note: {} on the CPU is an emulation (operands rounded to {} before f32 products) for checking numerics, not for speed",
                    p.name(),
                    p.name()
                ))?;
            }
        }
        Ok(())
    }

    /// With a loss scaler: the gradients unscaled, the scale updated (logged when it changes,
    /// and in TensorBoard), and whether to take the step. Without one: true.
    fn unscale_gradients(&mut self) -> Result<bool> {
        let Some(sc) = self.progress.scaler.as_mut() else {
            return Ok(true);
        };
        let finite = scaler::unscale(&self.params, sc.scale)?;
        let growth = self.config.train.loss_scale.clone().unwrap_or_default();
        // Giving up comes from the all-reduced gradients, the same on every rank: all stop here.
        let outcome = sc
            .update(finite, growth.growth_interval)
            .map_err(crate::dist::agreed)?;
        let to = sc.scale;
        if matches!(outcome, scaler::Outcome::Skipped { .. }) {
            self.progress.skipped_steps += 1;
        }
        let skipped = self.progress.skipped_steps;
        let (epoch, step) = (self.progress.epoch + 1, self.progress.step + 1);
        let line = match outcome {
            scaler::Outcome::Step => return Ok(true),
            scaler::Outcome::Skipped { from } => format!(
                "loss scale: gradients not finite at epoch {epoch}, step {step}: step skipped ({skipped} so far), scale {from:e} -> {to:e}"
            ),
            scaler::Outcome::Grew { from } => format!(
                "loss scale: {} clean steps at epoch {epoch}, step {step}: scale {from:e} -> {to:e}",
                growth.growth_interval
            ),
        };
        self.say(&line)?;
        if let Some(out) = self.out.as_mut() {
            out.events.train.scalar("loss_scale", step, to)?;
        }
        Ok(matches!(outcome, scaler::Outcome::Grew { .. }))
    }

    /// A loss that is not finite ends training here (with several ranks, the global batch's
    /// loss, so every rank ends at the same step).
    fn check_loss(&self, value: f32) -> Result<f32> {
        if value.is_finite() {
            return Ok(value);
        }
        Err(Error::Runtime(format!(
            "non-finite loss ({value}) at epoch {}, step {}; the last good checkpoint is {}",
            self.progress.epoch + 1,
            self.progress.step + 1,
            self.info
                .last_checkpoint
                .as_deref()
                .unwrap_or("none yet (train.checkpoint.every_seconds apart)")
        )))
    }

    /// The schedule's learning rate for the next step (reduce_on_plateau: the rate it has
    /// reached, as the base).
    fn lr_at(&self, steps_per_epoch: usize) -> f32 {
        let o = &self.config.optimizer;
        let base = self.progress.watch.plateau_lr.unwrap_or(o.lr);
        o.schedule.lr(
            base,
            self.progress.step,
            steps_per_epoch,
            self.config.train.epochs,
        )
    }

    /// After a step: the epoch's running metrics (of this rank's share: `local` outputs,
    /// targets and loss), the global batch's loss for TensorBoard, the bar.
    fn end_step(
        &mut self,
        local: Option<(&Tensor, &Tensor, f32)>,
        loss: f32,
        started: Instant,
    ) -> Result<()> {
        if let Some((out, y, value)) = local {
            let schema = &self.data.schema;
            evaluate::record(&mut self.progress.train, schema, &out.detach(), y, value)?;
        }
        self.progress.step += 1;
        self.progress.batch += 1;
        if self.info.first_step_at.is_none() {
            self.info.first_step_at = Some(crate::run::unix_seconds());
        }
        let every = self.config.train.log_every_steps;
        if let Some(out) = self.out.as_mut().filter(|_| every > 0) {
            let step = self.progress.step;
            if step.is_multiple_of(every) {
                out.events.train.scalar("batch_loss", step, loss as f64)?;
            }
        }
        let rows = (self.progress.batch - self.first_batch) * self.config.train.batch_size;
        let rate = rows as f64 / started.elapsed().as_secs_f64().max(1e-9);
        self.report.step(loss, rate);
        Ok(())
    }

    /// `train.max_time` has passed: checkpoint at this step and end the run as `timeout`
    /// (its test evaluation and plots still come, from the best model so far).
    fn time_up(&mut self, started: Instant) -> Result<()> {
        self.progress.seconds += started.elapsed().as_secs_f64();
        self.report.finish_epoch();
        let path = self.save_checkpoint()?;
        self.timed_out = true;
        let line = format!(
            "train.max_time reached at epoch {}, step {}; checkpoint {path}; continue with: kiln train --resume {} --set train.max_time=...",
            self.progress.epoch + 1,
            self.progress.step,
            self.run_path.display()
        );
        self.say(&line)
    }

    /// A line for the terminal and train.log (rank 0's; the other ranks stay quiet).
    fn say(&self, line: &str) -> Result<()> {
        match &self.out {
            Some(out) => self.report.line(&out.run, line),
            None => Ok(()),
        }
    }

    /// Stop at a step boundary: checkpoint, then the error that says how to continue.
    fn interrupt(&mut self, started: Instant) -> Error {
        self.progress.seconds += started.elapsed().as_secs_f64();
        self.report.finish_epoch();
        match self.save_checkpoint() {
            Ok(path) => Error::Interrupted(format!(
                "interrupted at epoch {}, step {}; checkpoint {}; continue with: kiln train --resume {}",
                self.progress.epoch + 1,
                self.progress.step,
                path,
                self.run_path.display()
            )),
            Err(e) => e,
        }
    }

    /// A bad row met while an epoch streams (`data.stream`; `own` is this process's error):
    /// checkpoint at this step (not taken), so that once the file is mended `--resume` goes on
    /// from here, then fail with the row's error. With several ranks every rank comes here at
    /// the same step (the failure rode in its all-reduce): the ranks that failed return their
    /// error, the others one naming them, each with how to go on.
    fn stream_failed(&mut self, started: Instant, own: Option<Error>) -> Error {
        self.progress.seconds += started.elapsed().as_secs_f64();
        self.report.finish_epoch();
        let saved = self.save_checkpoint();
        let verdict = crate::dist::all_ok(own.map_or(Ok(()), Err));
        let hint = |path: &str| {
            format!(
                "checkpoint {path}; mend the file and continue with: kiln train --resume {}",
                self.run_path.display()
            )
        };
        match (saved, verdict) {
            (Err(e), _) => e,
            (Ok(path), Err(Error::Data { place, message })) => {
                Error::data(place, format!("{message}; {}", hint(&path)))
            }
            (Ok(path), Err(e)) if !self.world.is_single() => {
                Error::Usage(format!("{e}; {}", hint(&path)))
            }
            (Ok(_), Err(e)) => e,
            (Ok(_), Ok(())) => {
                Error::Runtime("a rank reported unreadable rows, then none did".into())
            }
        }
    }

    /// Validation, the metrics row, the best model, early stopping, the checkpoint. True to
    /// stop early.
    fn end_epoch(&mut self, started: Instant) -> Result<bool> {
        self.report.finish_epoch();
        self.progress.seconds += started.elapsed().as_secs_f64();
        parallel::average_buffers(&self.world, &self.model_buffers())?;
        (self.progress.epoch, self.progress.batch) = (self.progress.epoch + 1, 0);
        let epoch = self.progress.epoch;
        let row = self.epoch_row()?;
        self.record(&row)?;
        let verdict = self.watch.epoch(epoch, &row, &mut self.progress.watch);
        if verdict.improved {
            self.keep_best()?;
        }
        self.info.best = self.progress.watch.best.clone();
        if let Some((from, to)) = verdict.lr_reduced {
            self.say(&format!(
                "reduce_on_plateau: learning rate {from:e} -> {to:e}"
            ))?;
        }
        if verdict.stop {
            self.say(&self.watch.stop_reason())?;
        }
        let ck = &self.config.train.checkpoint;
        let last = epoch == self.config.train.epochs || verdict.stop;
        let due = epoch.is_multiple_of(ck.every_epochs.max(1))
            && self.last_saved.elapsed().as_secs_f64() >= ck.every_seconds;
        // Rank 0's clock decides, for every rank: a checkpoint is a collective step.
        let due = ck.every_epochs > 0 && self.world.any(due && self.world.is_lead());
        self.info.epochs_done = epoch;
        if last || due {
            self.save_checkpoint()?;
        } else if self.info_written.elapsed().as_secs_f64() >= REWRITE_SECONDS {
            if let Some(out) = &self.out {
                out.run.write_info(&self.info)?;
            }
            self.info_written = Instant::now();
        }
        Ok(verdict.stop)
    }

    /// The model's state that is not learned (batch norm's running statistics).
    fn model_buffers(&self) -> NamedTensors {
        let learned: Vec<&String> = self.params.iter().map(|(n, _)| n).collect();
        self.model
            .named_state()
            .into_iter()
            .filter(|(n, _)| !learned.contains(&n))
            .collect()
    }

    /// The model is the best so far: write it now, or keep a copy to write soon.
    fn keep_best(&mut self) -> Result<()> {
        if self.out.is_none() {
            return Ok(());
        }
        let state: Vec<(String, Tensor)> = self
            .model
            .named_state()
            .into_iter()
            .map(|(n, t)| {
                let copy = Tensor::from_storage(t.storage().clone(), t.shape().clone());
                (n, copy)
            })
            .collect();
        self.pending_best = Some((state, self.model_meta()));
        if self.best_written.elapsed().as_secs_f64() >= REWRITE_SECONDS {
            self.write_best()?;
        }
        Ok(())
    }

    /// Write a pending best model to model.safetensors (without waiting for the disk).
    fn write_best(&mut self) -> Result<()> {
        let Some(out) = &self.out else {
            return Ok(());
        };
        if let Some((state, meta)) = self.pending_best.take() {
            checkpoint::save(&out.run.file("model.safetensors"), &state, meta, false)?;
            self.best_written = Instant::now();
        }
        Ok(())
    }

    /// The epoch's row of metrics.csv: validation runs here. With several ranks, every rank
    /// computes the same row from the statistics of all shares.
    fn epoch_row(&self) -> Result<Vec<(String, f64)>> {
        let eval_started = Instant::now();
        let valid = self
            .data
            .valid
            .as_ref()
            .map(|v| self.evaluate_split(v))
            .transpose()?;
        let train = parallel::merged(&self.world, &self.progress.train)?;
        let seconds = self.progress.seconds + eval_started.elapsed().as_secs_f64();
        let mut row: Vec<(String, f64)> = vec![
            ("epoch".into(), self.progress.epoch as f64),
            ("step".into(), self.progress.step as f64),
            ("lr".into(), self.lr as f64),
            ("seconds".into(), seconds),
        ];
        let splits = [("train", Some(&train)), ("valid", valid.as_ref())];
        for (split, acc) in splits {
            if let Some(acc) = acc {
                row.push((format!("{split}_loss"), acc.loss()));
                row.extend(
                    self.metrics
                        .iter()
                        .map(|m| (format!("{split}_{m}"), acc.value(m))),
                );
            }
        }
        Ok(row)
    }

    /// A split's statistics, each rank evaluating its share of the rows.
    fn evaluate_split(&self, split: &crate::data::Split) -> Result<Accumulator> {
        let shard = crate::data::stream::Shard::new(self.world.rank, self.world.size);
        let share = evaluate::evaluate_share(&self.eval_setup(), split, shard)?;
        parallel::merged(&self.world, &share)
    }

    /// An epoch's row into metrics.csv, TensorBoard and the log (rank 0).
    fn record(&mut self, row: &[(String, f64)]) -> Result<()> {
        let Some(out) = &mut self.out else {
            return Ok(());
        };
        out.csv.append(row)?;
        let samples_per_sec = self.data.train.len() as f64 / self.progress.seconds.max(1e-9);
        out.events.epoch(row, samples_per_sec)?;
        let shown: Vec<String> = row
            .iter()
            .skip(4)
            .map(|(k, v)| format!("{k} {v:.4}"))
            .collect();
        let seconds = row[3].1;
        let line = format!(
            "epoch {}/{} {} ({seconds:.1}s)",
            self.progress.epoch,
            self.config.train.epochs,
            shown.join(" ")
        );
        self.say(&line)
    }

    fn eval_setup(&self) -> EvalSetup<'_> {
        EvalSetup {
            model: &self.model,
            loss: self.loss,
            criterion: &self.criterion,
            schema: &self.data.schema,
            metrics: &self.metrics,
            batch_size: self.model.eval_batch(self.config.train.batch_size),
            limit_batches: self.config.train.limit_batches,
        }
    }

    /// Metadata of every saved model. The random state is the seed: shuffles and dropout
    /// draw from streams derived from (seed, epoch) and (seed, step).
    fn model_meta(&self) -> HashMap<String, String> {
        HashMap::from([
            ("kiln_version".into(), env!("CARGO_PKG_VERSION").into()),
            ("epoch".into(), self.progress.epoch.to_string()),
            ("step".into(), self.progress.step.to_string()),
            ("seed".into(), self.config.seed.to_string()),
            (
                "config_sha256".into(),
                crate::files::sha256_hex(config::to_toml(&self.config).as_bytes()),
            ),
        ])
    }

    /// A checkpoint of the model, optimizer and progress, recorded in run.json; returns its
    /// run-relative name.
    /// With several ranks every rank calls this at the same step: the checkpoint holds the
    /// training statistics of all shares and the ranks' mean running statistics; rank 0 writes.
    fn save_checkpoint(&mut self) -> Result<String> {
        let p = &self.progress;
        let name = Checkpoints::name(p.epoch, p.step, p.batch > 0);
        // At an epoch's end `end_epoch` has averaged them already.
        if p.batch > 0 {
            parallel::average_buffers(&self.world, &self.model_buffers())?;
        }
        let progress = Progress {
            train: parallel::merged(&self.world, &p.train)?,
            ..p.clone()
        };
        self.last_saved = Instant::now();
        if self.out.is_none() {
            return Ok(name);
        }
        let mut tensors = self.model.named_state();
        tensors.extend(self.optim.state());
        let mut meta = self.model_meta();
        let progress = serde_json::to_string(&progress).expect("progress serializes");
        meta.insert("progress".into(), progress);
        meta.insert("optimizer_steps".into(), self.optim.steps().to_string());
        let out = self.out.as_mut().expect("rank 0 writes");
        out.checkpoints.save(&name, &tensors, meta)?;
        self.info.last_checkpoint = Some(name.clone());
        self.info.epochs_done = self.progress.epoch;
        self.make_durable()?;
        Ok(name)
    }

    /// Wait until what the run has written is on disk: the best model and metrics.csv (written
    /// without waiting each epoch) and run.json. At checkpoints and at the end.
    fn make_durable(&mut self) -> Result<()> {
        self.write_best()?;
        let Some(out) = &mut self.out else {
            return Ok(());
        };
        crate::files::sync(&out.run.file("model.safetensors"))?;
        out.csv.sync()?;
        out.run.write_info_durable(&self.info)?;
        self.info_written = Instant::now();
        Ok(())
    }

    /// Mark the run finished (after the test evaluation and the plots), or failed or
    /// interrupted with the error, which is returned.
    fn conclude(mut self, trained: Result<()>) -> Result<Outcome> {
        if let Err(e) = trained {
            self.info.status = match e {
                Error::Interrupted(_) => Status::Interrupted,
                _ => Status::Failed,
            };
            self.info.error = Some(e.to_string());
            self.info.ended = Some(crate::run::now());
            self.make_durable()?;
            let _ = self.say(&format!("{:?}: {e}", self.info.status));
            // The curves so far are still worth a look; a plotting problem must not hide `e`.
            if let Some(out) = &self.out {
                let _ = visuals::learning_curves(&out.run, &self.metrics, self.info.best.as_ref());
            }
            return Err(e);
        }
        if !self.world.is_single() {
            let sum = parallel::same_parameters(&self.world, &self.params)?;
            self.say(&format!(
                "ranks agree: parameter checksum {sum:016x} on all {} ranks",
                self.world.size
            ))?;
        }
        self.write_best()?;
        if let Some(out) = &self.out {
            let best = out.run.file("model.safetensors");
            if best.exists() {
                checkpoint::restore(&self.model.named_state(), &checkpoint::load(&best)?, &best)?;
            }
        }
        // Every rank evaluates the model rank 0 saved.
        parallel::share_state(&self.world, &self.model.named_state(), &mut Vec::new())?;
        let test = self
            .data
            .test
            .as_ref()
            .map(|t| self.evaluate_split(t))
            .transpose()?;
        if let Some(acc) = &test {
            let map = acc.to_json(&self.metrics);
            let shown: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("test_{k} {:.4}", v.as_f64().unwrap_or(f64::NAN)))
                .collect();
            self.say(&shown.join(" "))?;
            self.info.test = Some(map);
        }
        self.say_reduce_time()?;
        if let Some(peak) = crate::backend::cuda::opened().and_then(|g| g.peak_bytes()) {
            self.say(&format!(
                "GPU memory: peak {:.1} MiB in kiln's buffers (the pool's high-water mark)",
                peak as f64 / 1048576.0
            ))?;
        }
        // For classification, the saved model's confusion matrix on the test split, else
        // valid, else train (evaluated by every rank).
        let confusion = match (self.data.schema.task, test) {
            (crate::config::Task::Classification, Some(acc)) => Some(("test", acc)),
            (crate::config::Task::Classification, None) => {
                let s = self.data.valid.as_ref().unwrap_or(&self.data.train);
                Some((s.name, self.evaluate_split(s)?))
            }
            _ => None,
        };
        // Plots are for people; failing to draw one (a full disk) does not fail the run.
        if let Err(e) = self.plots(confusion) {
            self.say(&format!("warning: plots not drawn: {e}"))?;
        }
        self.info.status = if self.timed_out {
            Status::Timeout
        } else {
            Status::Finished
        };
        self.info.ended = Some(crate::run::now());
        self.make_durable()?;
        let last = match &self.out {
            Some(out) => MetricsTable::read(&out.run.file("metrics.csv")).last_row(),
            None => Vec::new(),
        };
        Ok(Outcome {
            run_dir: self.run_path.clone(),
            last,
            info: self.info,
        })
    }

    /// With several ranks: the time the gradient all-reduce took per step.
    fn say_reduce_time(&self) -> Result<()> {
        let t = &self.reduce_time;
        if t.steps == 0 {
            return Ok(());
        }
        let per_step = t.total.as_secs_f64() / t.steps as f64;
        self.say(&format!(
            "all-reduce: {:.3} ms per step over {} steps, {} ranks ({} values each)",
            per_step * 1e3,
            t.steps,
            self.world.size,
            self.params.iter().map(|(_, p)| p.numel()).sum::<usize>()
        ))
    }

    /// Learning curves; the confusion matrix given; for a one-feature regression the data and
    /// fitted line (rank 0).
    fn plots(&self, confusion: Option<(&str, Accumulator)>) -> Result<()> {
        let Some(out) = &self.out else {
            return Ok(());
        };
        visuals::learning_curves(&out.run, &self.metrics, self.info.best.as_ref())?;
        let schema = &self.data.schema;
        if let Some((split, acc)) = confusion {
            let path = out.run.file(&format!("plots/confusion-{split}.png"));
            let what = format!("{split} split");
            return visuals::confusion(&path, &what, &schema.classes, &acc);
        }
        visuals::regression_fit(&out.run, schema, &self.data.train, &self.model)
    }
}
