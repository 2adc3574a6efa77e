//! What a run shows besides its log: TensorBoard scalars while training and PNG plots at the
//! end (or on interrupt).

use std::path::Path;

use crate::config::Task;
use crate::data::{DataSchema, Split};
use crate::error::Result;
use crate::metrics::Accumulator;
use crate::nn::Model;
use crate::run::plots::{self, Curve};
use crate::run::tensorboard::EventWriter;
use crate::run::{Best, MetricsTable, RunDir};
use crate::tensor::Tensor;

/// Event files for the train and valid sub-runs (`tensorboard/train`, `tensorboard/valid`), so
/// TensorBoard overlays their curves.
pub struct Events {
    pub train: EventWriter,
    pub valid: Option<EventWriter>,
}

impl Events {
    pub fn create(run: &RunDir, with_valid: bool) -> Result<Events> {
        let dir = run.file("tensorboard");
        let valid = if with_valid {
            Some(EventWriter::create(&dir.join("valid"))?)
        } else {
            None
        };
        Ok(Events {
            train: EventWriter::create(&dir.join("train"))?,
            valid,
        })
    }

    /// Per-epoch scalars from a metrics.csv row, Keras-style tags (`epoch_loss`,
    /// `epoch_accuracy`, `epoch_lr`, `epoch_samples_per_sec`), at step = epoch.
    pub fn epoch(&mut self, row: &[(String, f64)], samples_per_sec: f64) -> Result<()> {
        let epoch = row
            .iter()
            .find(|(k, _)| k == "epoch")
            .map_or(0, |(_, v)| *v as u64);
        for (key, value) in row {
            if let Some(name) = key.strip_prefix("train_") {
                self.train.scalar(&format!("epoch_{name}"), epoch, *value)?;
            } else if let (Some(name), Some(valid)) =
                (key.strip_prefix("valid_"), self.valid.as_mut())
            {
                valid.scalar(&format!("epoch_{name}"), epoch, *value)?;
            } else if key == "lr" {
                self.train.scalar("epoch_lr", epoch, *value)?;
            }
        }
        self.train
            .scalar("epoch_samples_per_sec", epoch, samples_per_sec)?;
        self.train.flush()?;
        if let Some(v) = self.valid.as_mut() {
            v.flush()?;
        }
        Ok(())
    }
}

/// Learning curves (loss and each metric, train against valid, per epoch) from metrics.csv.
pub fn curves(metrics: &MetricsTable, names: &[String], best: Option<&Best>) -> Vec<Curve> {
    // `valid.loss` is marked on the loss panel.
    let marked = best.map(|b| {
        (
            b.monitor.split_once('.').map_or("", |m| m.1),
            b.epoch as f64,
        )
    });
    std::iter::once("loss")
        .chain(names.iter().map(String::as_str))
        .map(|q| Curve {
            name: q.to_string(),
            train: metrics.by_epoch(&format!("train_{q}")),
            valid: metrics.by_epoch(&format!("valid_{q}")),
            best: marked.filter(|(m, _)| *m == q).map(|(_, e)| e),
        })
        .filter(|c| !c.train.is_empty())
        .collect()
}

/// `plots/learning_curves.png` of a run, its best epoch marked.
pub fn learning_curves(run: &RunDir, metrics: &[String], best: Option<&Best>) -> Result<()> {
    let c = curves(&MetricsTable::read(&run.file("metrics.csv")), metrics, best);
    if c.is_empty() {
        return Ok(());
    }
    plots::learning_curves(&run.file("plots/learning_curves.png"), &c)
}

/// `kiln runs --compare`'s PNG at `path`: the loss and each run's first metric (the one its
/// config lists first), every run's curves overlaid. Each run is (its name, its metrics.csv,
/// the metrics its config lists).
pub fn comparison(path: &Path, runs: &[(String, &MetricsTable, &[String])]) -> Result<()> {
    let mut quantities = vec!["loss".to_string()];
    for first in runs.iter().filter_map(|(_, _, names)| names.first()) {
        if !quantities.contains(first) {
            quantities.push(first.clone());
        }
    }
    let curves: Vec<(String, Vec<Curve>)> = runs
        .iter()
        .map(|(name, table, names)| (name.clone(), curves(table, names, None)))
        .collect();
    plots::comparison(path, &quantities, &curves)
}

/// The confusion matrix of an evaluation of `what` (a split, or a file) as a PNG at `path`.
pub fn confusion(path: &Path, what: &str, classes: &[String], acc: &Accumulator) -> Result<()> {
    plots::confusion_matrix(
        path,
        &format!("confusion matrix, {what}"),
        classes,
        &acc.confusion,
    )
}

/// `plots/fit.png` for a regression on one feature: the training data and the model's line,
/// in the feature's own units. Nothing for other runs.
pub fn regression_fit(
    run: &RunDir,
    schema: &DataSchema,
    train: &Split,
    model: &Model,
) -> Result<()> {
    let Some(xs) = train.table() else {
        return Ok(());
    };
    if schema.task != Task::Regression || schema.features.len() != 1 {
        return Ok(());
    }
    let pre = &schema.preprocess;
    let mut ys = train.y.to_vec();
    schema.to_target_units(&mut ys);
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
    let mut out = model
        .infer(&Tensor::from_vec(grid.clone(), [grid.len(), 1]))
        .try_to_vec()?;
    schema.to_target_units(&mut out);
    let line: Vec<(f64, f64)> = grid
        .iter()
        .zip(out)
        .map(|(&g, y)| (pre.invert(g, 0) as f64, y as f64))
        .collect();
    plots::regression_fit(
        &run.file("plots/fit.png"),
        &schema.features[0],
        &schema.target,
        &points,
        &line,
    )
}
