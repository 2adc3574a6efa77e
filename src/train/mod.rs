//! `fit`: the training loop — forward, loss, one sync, backward, clip, step — and the
//! bookkeeping around it: metrics, checkpoints, the best model, early stopping, interruption.

mod evaluate;
mod profile;
mod report;
mod setup;
mod visuals;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use evaluate::{evaluate, EvalSetup};
pub use profile::{profile, LayerTime};
pub use setup::{build_model, loss_for};

use crate::backend::Device;
use crate::config::{self, Config, OptimizerType};
use crate::data::Features;
use crate::data::{self, Prepared};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::metrics::{self, Accumulator};
use crate::nn::{Mode, Model};
use crate::optim::{clip_grad_norm, Optimizer, OptimizerKind};
use crate::run::{checkpoint, Best, MetricsCsv, RunDir, RunInfo, Status};
use crate::tensor::{Rng, Tensor};
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
    best: Option<Best>,
    /// Early stopping: the best monitored value and the epochs since it.
    stop_best: Option<f64>,
    wait: usize,
}

pub struct Outcome {
    pub run_dir: PathBuf,
    pub info: RunInfo,
    /// The last epoch's row of metrics.csv.
    pub last: Vec<(String, f64)>,
}

/// Metric names where smaller is better.
fn lower_is_better(monitor: &str) -> bool {
    ["loss", "rmse", "mae"].iter().any(|m| monitor.ends_with(m))
}

fn optimizer(config: &Config, model: &Model) -> Optimizer {
    let o = &config.optimizer;
    let kind = match o.kind {
        OptimizerType::Sgd => OptimizerKind::Sgd {
            momentum: o.momentum,
            nesterov: o.nesterov,
        },
        OptimizerType::Adam => OptimizerKind::Adam {
            beta1: o.betas[0],
            beta2: o.betas[1],
            eps: o.eps,
        },
        OptimizerType::Adamw => OptimizerKind::Adamw {
            beta1: o.betas[0],
            beta2: o.betas[1],
            eps: o.eps,
        },
    };
    Optimizer::new(kind, o.weight_decay, model.named_params())
}

/// The training rows of an epoch, in order: shuffled from (seed, epoch) alone, so a resumed
/// run draws the same order.
fn epoch_order(n: usize, seed: u64, epoch: usize, shuffle: bool) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    if shuffle {
        Rng::derive(seed, 1_000_000 + epoch as u64).shuffle(&mut order);
    }
    order
}

struct Session<'a> {
    config: Config,
    data: Prepared,
    model: Model,
    loss: Loss,
    metrics: Vec<String>,
    optim: Optimizer,
    run: RunDir,
    info: RunInfo,
    csv: MetricsCsv,
    report: Reporter,
    progress: Progress,
    stop: &'a AtomicBool,
    events: visuals::Events,
}

/// Train a model as the config says; returns when training finishes, stops early, fails or is
/// interrupted (then with `Error::Interrupted` after writing a checkpoint).
pub fn fit(mut config: Config, opts: &Options, stop: &AtomicBool) -> Result<Outcome> {
    let report = Reporter::new(opts.quiet);
    let mut data = data::prepare(&config.data, config.loss, config.seed)?;
    let (model, loss) = build_model(&config, &data.schema)?;
    // Initialised on the CPU from the seed (the same weights on every device), then moved.
    model.to_device(opts.device);
    data.to_device(opts.device);
    let metrics = metrics::resolve(&config.train.metrics, data.schema.task)?;
    let mut optim = optimizer(&config, &model);
    let (run, info, progress, resumed) = match &opts.resume {
        Some(dir) => {
            let (run, info, progress, loaded) = resume_run(dir, &config)?;
            (run, info, progress, Some(loaded))
        }
        None => {
            let run = RunDir::create(&opts.runs, &config.name, opts.run_dir.as_deref())?;
            let info = RunInfo {
                kiln_version: env!("CARGO_PKG_VERSION").into(),
                name: run
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                status: Status::Running,
                device: opts.device.name(),
                threads: crate::threads(),
                seed: config.seed,
                started: crate::run::now(),
                ended: None,
                data: data.files.clone(),
                input_shape: model.input_shape().dims().to_vec(),
                loss: loss.name().into(),
                metrics: metrics.clone(),
                schema: data.schema.clone(),
                epochs_done: 0,
                last_checkpoint: None,
                best: None,
                test: None,
                error: None,
                first_step_at: None,
            };
            (run, info, Progress::default(), None)
        }
    };
    if let Some(init) = config
        .model
        .init_from
        .as_ref()
        .filter(|_| opts.resume.is_none())
    {
        let loaded = checkpoint::load(init)?;
        checkpoint::restore(&model.named_state(), &loaded, init)?;
    }
    if let Some((path, loaded)) = &resumed {
        checkpoint::restore(&model.named_state(), loaded, path)?;
        let steps = progress.step;
        optim
            .load_state(steps, |name| {
                loaded.tensors.get(name).map(|(_, v)| v.clone())
            })
            .map_err(|e| Error::Runtime(format!("{}: {e}", path.display())))?;
    }
    // Errors above name the paths as the user wrote them; the stored config works anywhere.
    absolute_paths(&mut config);
    crate::files::write_atomic(
        &run.file("config.toml"),
        config::to_toml(&config).as_bytes(),
    )?;
    let csv = MetricsCsv::new(&run.file("metrics.csv"), &metrics);
    let events = visuals::Events::create(&run, data.valid.is_some())?;
    let mut s = Session {
        config,
        data,
        model,
        loss,
        metrics,
        optim,
        run,
        info,
        csv,
        report,
        progress,
        stop,
        events,
    };
    s.info.status = Status::Running;
    s.info.ended = None;
    s.info.device = opts.device.name();
    s.run.write_info(&s.info)?;
    s.report
        .line(&s.run, &format!("run {}", s.run.path.display()))?;
    let device = match opts.device {
        Device::Cpu => format!("device: cpu, {} threads", crate::threads()),
        Device::Cuda => format!(
            "device: {} ({})",
            opts.device.name(),
            crate::backend::cuda::gpu().name
        ),
    };
    s.report.line(&s.run, &device)?;
    if let Some(note) = &opts.device_note {
        s.report.line(&s.run, &format!("note: {note}"))?;
    }
    for w in &s.data.warnings {
        s.report.line(&s.run, &format!("warning: {w}"))?;
    }
    s.report.line(
        &s.run,
        &format!(
            "task: {:?} ({}); loss {}; {} parameters",
            s.data.schema.task,
            s.data.task_reason,
            s.loss.name(),
            s.model.num_params()
        ),
    )?;
    match s.train() {
        Ok(()) => s.finish(),
        Err(e) => {
            s.info.status = if matches!(e, Error::Interrupted(_)) {
                Status::Interrupted
            } else {
                Status::Failed
            };
            s.info.error = Some(e.to_string());
            s.info.ended = Some(crate::run::now());
            s.run.write_info(&s.info)?;
            let _ = s.report.line(&s.run, &format!("{:?}: {e}", s.info.status));
            // The curves so far are still worth a look; a plotting problem must not hide `e`.
            let _ = visuals::learning_curves(&s.run, &s.metrics);
            Err(e)
        }
    }
}

/// Data and weight paths made absolute, so the run's config.toml works from any directory
/// (eval and resume re-read it).
fn absolute_paths(config: &mut Config) {
    let d = &mut config.data;
    for p in [
        Some(&mut d.train),
        d.valid.as_mut(),
        d.test.as_mut(),
        config.model.init_from.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        if let Ok(abs) = std::path::absolute(&*p) {
            *p = abs;
        }
    }
}

/// Open a run to continue: its last checkpoint (path and contents) and the progress saved in
/// it, checked against the config given now.
fn resume_run(
    dir: &Path,
    config: &Config,
) -> Result<(RunDir, RunInfo, Progress, (PathBuf, checkpoint::Loaded))> {
    let run = RunDir::open(dir)?;
    let info = run.read_info()?;
    let Some(last) = &info.last_checkpoint else {
        return Err(Error::Usage(format!(
            "{}: the run has no checkpoint to resume from",
            dir.display()
        )));
    };
    let path = run.path.join(last);
    let loaded = checkpoint::load(&path)?;
    let progress: Progress = loaded
        .meta("progress")
        .and_then(|p| serde_json::from_str(p).ok())
        .ok_or_else(|| Error::Runtime(format!("{}: checkpoint has no training progress", last)))?;
    if progress.epoch >= config.train.epochs {
        return Err(Error::Usage(format!(
            "{}: already trained {} of {} epochs; raise train.epochs (--set train.epochs=N) to continue",
            dir.display(),
            progress.epoch,
            config.train.epochs
        )));
    }
    Ok((run, info, progress, (path, loaded)))
}

impl Session<'_> {
    fn eval_setup(&self) -> EvalSetup<'_> {
        EvalSetup {
            model: &self.model,
            loss: self.loss,
            task: self.data.schema.task,
            classes: self.data.schema.classes.len(),
            metrics: &self.metrics,
            batch_size: self.config.train.batch_size.max(256),
        }
    }

    fn train(&mut self) -> Result<()> {
        let n = self.data.train.len();
        let bs = self.config.train.batch_size;
        let steps_per_epoch = n.div_ceil(bs);
        let epochs = self.config.train.epochs;
        let (task, classes) = (self.data.schema.task, self.data.schema.classes.len());
        let params = self.model.named_params();
        while self.progress.epoch < epochs {
            let epoch = self.progress.epoch;
            let order = epoch_order(n, self.config.seed, epoch, self.config.train.shuffle);
            if self.progress.batch == 0 {
                self.progress.train = Accumulator::new(task, classes, &self.metrics);
                self.progress.seconds = 0.0;
            }
            self.report
                .start_epoch(epoch + 1, epochs, steps_per_epoch, self.progress.batch);
            let (started, first_batch) = (Instant::now(), self.progress.batch);
            let mut lr = 0.0;
            for b in self.progress.batch..steps_per_epoch {
                if self.stop.load(Ordering::SeqCst) {
                    self.progress.seconds += started.elapsed().as_secs_f64();
                    self.report.finish_epoch();
                    let path = self.save_checkpoint()?;
                    return Err(Error::Interrupted(format!(
                        "interrupted at epoch {}, step {}; checkpoint {}; continue with: kiln train --resume {}",
                        epoch + 1,
                        self.progress.step,
                        path,
                        self.run.path.display()
                    )));
                }
                let idx = &order[b * bs..((b + 1) * bs).min(n)];
                // One random stream per step: dropout and augmentation resume exactly.
                let mut rng = Rng::derive(self.config.seed, (1 << 40) + self.progress.step);
                let augment = self.config.data.augment.as_ref().filter(|a| a.is_active());
                let x = self.data.train.batch(idx, augment.map(|a| (a, &mut rng)));
                let y = self.data.train.y.index_select(idx);
                let out = self.model.forward(
                    &x,
                    &mut Mode {
                        training: true,
                        rng: &mut rng,
                    },
                );
                let loss = self.loss.compute(&out, &y);
                let value = loss.item(); // the step's one sync point
                if !value.is_finite() {
                    return Err(Error::Runtime(format!(
                        "non-finite loss ({value}) at epoch {}, step {}; the last good checkpoint is {}",
                        epoch + 1,
                        self.progress.step + 1,
                        self.info.last_checkpoint.as_deref().unwrap_or("none (no epoch finished)")
                    )));
                }
                loss.backward();
                if let Some(max) = self.config.train.grad_clip_norm {
                    clip_grad_norm(&params, max);
                }
                lr = self.config.optimizer.schedule.lr(
                    self.config.optimizer.lr,
                    self.progress.step,
                    steps_per_epoch,
                    epochs,
                );
                self.optim.step(lr);
                self.optim.zero_grad();
                self.progress
                    .train
                    .add(task, &out.detach().to_vec(), &y.to_vec(), value);
                self.progress.step += 1;
                self.progress.batch = b + 1;
                if self.info.first_step_at.is_none() {
                    self.info.first_step_at = Some(crate::run::unix_seconds());
                }
                let every = self.config.train.log_every_steps;
                if every > 0 && self.progress.step % every == 0 {
                    self.events
                        .train
                        .scalar("batch_loss", self.progress.step, value as f64)?;
                }
                let rate =
                    ((b + 1 - first_batch) * bs) as f64 / started.elapsed().as_secs_f64().max(1e-9);
                self.report.step(value, rate);
            }
            self.report.finish_epoch();
            self.progress.seconds += started.elapsed().as_secs_f64();
            self.progress.epoch += 1;
            self.progress.batch = 0;
            if self.end_epoch(lr)? {
                break;
            }
        }
        Ok(())
    }

    /// Validation, metrics row, best model, early stopping, checkpoint. True to stop early.
    fn end_epoch(&mut self, lr: f32) -> Result<bool> {
        let epoch = self.progress.epoch;
        let eval_started = Instant::now();
        let valid = self
            .data
            .valid
            .as_ref()
            .map(|v| evaluate(&self.eval_setup(), v));
        let seconds = self.progress.seconds + eval_started.elapsed().as_secs_f64();
        let train = &self.progress.train;
        let mut row: Vec<(String, f64)> = vec![
            ("epoch".into(), epoch as f64),
            ("step".into(), self.progress.step as f64),
            ("lr".into(), lr as f64),
            ("seconds".into(), seconds),
            ("train_loss".into(), train.loss()),
        ];
        row.extend(
            self.metrics
                .iter()
                .map(|m| (format!("train_{m}"), train.value(m))),
        );
        if let Some(v) = &valid {
            row.push(("valid_loss".into(), v.loss()));
            row.extend(
                self.metrics
                    .iter()
                    .map(|m| (format!("valid_{m}"), v.value(m))),
            );
        }
        self.csv.append(&row)?;
        let samples_per_sec = self.data.train.len() as f64 / self.progress.seconds.max(1e-9);
        self.events.epoch(&row, samples_per_sec)?;
        let shown: Vec<String> = row
            .iter()
            .skip(4)
            .map(|(k, v)| format!("{k} {v:.4}"))
            .collect();
        let line = format!(
            "epoch {epoch}/{} {} ({seconds:.1}s)",
            self.config.train.epochs,
            shown.join(" ")
        );
        self.report.line(&self.run, &line)?;

        // The best model by the monitored metric (default: valid loss, else the last epoch).
        let default_monitor = valid.as_ref().map(|_| "valid.loss".to_string());
        let monitor = self
            .config
            .train
            .checkpoint
            .best
            .clone()
            .or(default_monitor);
        let value_of = |name: &str| {
            let key = name.replacen('.', "_", 1);
            row.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
        };
        let improved = match &monitor {
            None => true,
            Some(m) => {
                let v = value_of(m).ok_or_else(|| {
                    Error::config(
                        "train.checkpoint.best",
                        format!(
                            "no metric \"{m}\" (have: {})",
                            row.iter()
                                .skip(4)
                                .map(|(k, _)| k.replacen('_', ".", 1))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })?;
                let better = match &self.progress.best {
                    None => true,
                    Some(b) if lower_is_better(m) => v < b.value,
                    Some(b) => v > b.value,
                };
                if better {
                    self.progress.best = Some(Best {
                        monitor: m.clone(),
                        value: v,
                        epoch,
                    });
                }
                better
            }
        };
        if improved {
            checkpoint::save(
                &self.run.file("model.safetensors"),
                &self.model.named_state(),
                self.model_meta(),
            )?;
        }
        self.info.best = self.progress.best.clone();

        let mut stop = false;
        if let Some(es) = &self.config.train.early_stopping {
            let v = value_of(&es.monitor).ok_or_else(|| {
                Error::config(
                    "train.early_stopping.monitor",
                    format!("no metric \"{}\"", es.monitor),
                )
            })?;
            let gained = match self.progress.stop_best {
                None => true,
                Some(r) if lower_is_better(&es.monitor) => v < r - es.min_delta,
                Some(r) => v > r + es.min_delta,
            };
            if gained {
                self.progress.stop_best = Some(v);
                self.progress.wait = 0;
            } else {
                self.progress.wait += 1;
            }
            if self.progress.wait >= es.patience {
                self.report.line(
                    &self.run,
                    &format!(
                        "early stopping: {} did not improve for {} epochs",
                        es.monitor, es.patience
                    ),
                )?;
                stop = true;
            }
        }
        let ck = &self.config.train.checkpoint;
        let last = epoch == self.config.train.epochs || stop;
        if ck.every_epochs > 0 && (epoch % ck.every_epochs == 0 || last) {
            self.save_checkpoint()?;
        }
        self.info.epochs_done = epoch;
        self.run.write_info(&self.info)?;
        Ok(stop)
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

    /// Write a checkpoint of the model, optimizer and progress; prune to `keep_last`.
    fn save_checkpoint(&mut self) -> Result<String> {
        let name = if self.progress.batch == 0 {
            format!("checkpoints/epoch-{:04}.safetensors", self.progress.epoch)
        } else {
            format!(
                "checkpoints/epoch-{:04}-step-{:07}.safetensors",
                self.progress.epoch + 1,
                self.progress.step
            )
        };
        let mut tensors = self.model.named_state();
        tensors.extend(self.optim.state());
        let mut meta = self.model_meta();
        meta.insert(
            "progress".into(),
            serde_json::to_string(&self.progress).expect("progress serializes"),
        );
        meta.insert("optimizer_steps".into(), self.optim.steps().to_string());
        checkpoint::save(&self.run.file(&name), &tensors, meta)?;
        self.info.last_checkpoint = Some(name.clone());
        self.info.epochs_done = self.progress.epoch;
        self.run.write_info(&self.info)?;
        self.prune_checkpoints()?;
        Ok(name)
    }

    fn prune_checkpoints(&self) -> Result<()> {
        let dir = self.run.file("checkpoints");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(&dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .collect();
        files.sort();
        let keep = self.config.train.checkpoint.keep_last.max(1);
        for old in files.iter().take(files.len().saturating_sub(keep)) {
            std::fs::remove_file(old).map_err(|e| Error::io(old, e))?;
        }
        Ok(())
    }

    /// Learning curves; for classification the saved model's confusion matrix (on the test
    /// split, else valid, else train); for a one-feature regression the data and fitted line.
    fn plots(&self, final_eval: Option<(&'static str, Accumulator)>) -> Result<()> {
        visuals::learning_curves(&self.run, &self.metrics)?;
        let schema = &self.data.schema;
        match schema.task {
            crate::config::Task::Classification => {
                let (split, acc) = match final_eval {
                    Some(e) => e,
                    None => {
                        let s = self.data.valid.as_ref().unwrap_or(&self.data.train);
                        (s.name, evaluate(&self.eval_setup(), s))
                    }
                };
                let path = self.run.file(&format!("plots/confusion-{split}.png"));
                crate::run::plots::confusion_matrix(
                    &path,
                    &format!("confusion matrix, {split} split"),
                    &schema.classes,
                    &acc.confusion,
                )
            }
            crate::config::Task::Regression if schema.features.len() == 1 => self.fit_plot(),
            crate::config::Task::Regression => Ok(()),
        }
    }

    /// `plots/fit.png`: the training data and the model's line, in the feature's own units.
    fn fit_plot(&self) -> Result<()> {
        let _guard = crate::autograd::no_grad();
        let pre = &self.data.schema.preprocess;
        let xs = match &self.data.train.features {
            Features::Table(x) => x.to_vec(),
            Features::Bytes(t) => t.to_floats(),
            Features::Images(_) => return Ok(()),
        };
        let ys = self.data.train.y.to_vec();
        let points: Vec<(f64, f64)> = xs
            .iter()
            .zip(&ys)
            .map(|(&x, &y)| (pre.invert(x, 0) as f64, y as f64))
            .collect();
        let (lo, hi) = xs
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let grid: Vec<f32> = (0..=100)
            .map(|i| lo + (hi - lo) * i as f32 / 100.0)
            .collect();
        let out = self.model.forward(
            &Tensor::from_vec(grid.clone(), [grid.len(), 1]).to_device(self.model.device()),
            &mut Mode {
                training: false,
                rng: &mut Rng::new(0),
            },
        );
        let line: Vec<(f64, f64)> = grid
            .iter()
            .zip(out.to_vec())
            .map(|(&g, y)| (pre.invert(g, 0) as f64, y as f64))
            .collect();
        let schema = &self.data.schema;
        crate::run::plots::regression_fit(
            &self.run.file("plots/fit.png"),
            &schema.features[0],
            &schema.target,
            &points,
            &line,
        )
    }

    /// Evaluate the saved model on the test split, mark the run finished.
    fn finish(mut self) -> Result<Outcome> {
        let best = self.run.file("model.safetensors");
        if best.exists() {
            let loaded = checkpoint::load(&best)?;
            checkpoint::restore(&self.model.named_state(), &loaded, &best)?;
        }
        let mut final_eval = None;
        if let Some(test) = &self.data.test {
            let acc = evaluate(&self.eval_setup(), test);
            final_eval = Some(("test", acc.clone()));
            let mut map = serde_json::Map::new();
            map.insert("loss".into(), acc.loss().into());
            for m in &self.metrics {
                map.insert(m.clone(), acc.value(m).into());
            }
            let shown: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("test_{k} {:.4}", v.as_f64().unwrap_or(f64::NAN)))
                .collect();
            self.report.line(&self.run, &shown.join(" "))?;
            self.info.test = Some(map);
        }
        self.plots(final_eval)?;
        self.info.status = Status::Finished;
        self.info.ended = Some(crate::run::now());
        self.run.write_info(&self.info)?;
        let last = last_row(&self.run.file("metrics.csv"));
        Ok(Outcome {
            run_dir: self.run.path.clone(),
            info: self.info,
            last,
        })
    }
}

/// The last row of metrics.csv as (column, value) pairs.
pub fn last_row(path: &Path) -> Vec<(String, f64)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let last = lines.last().unwrap_or("");
    header
        .iter()
        .zip(last.split(','))
        .filter_map(|(k, v)| v.parse::<f64>().ok().map(|v| (k.to_string(), v)))
        .collect()
}
