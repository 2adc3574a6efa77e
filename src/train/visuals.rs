//! What a run shows besides its log: TensorBoard scalars while training and PNG plots at the
//! end (or on interrupt).

use std::path::Path;

use crate::error::Result;
use crate::run::plots::{self, Curve};
use crate::run::tensorboard::EventWriter;
use crate::run::RunDir;

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
pub fn curves(metrics_csv: &Path, metrics: &[String]) -> Vec<Curve> {
    let text = std::fs::read_to_string(metrics_csv).unwrap_or_default();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let rows: Vec<Vec<Option<f64>>> = lines
        .map(|l| l.split(',').map(|c| c.parse().ok()).collect())
        .collect();
    let column = |name: &str| -> Vec<(f64, f64)> {
        let (Some(e), Some(c)) = (
            header.iter().position(|h| *h == "epoch"),
            header.iter().position(|h| *h == name),
        ) else {
            return Vec::new();
        };
        rows.iter()
            .filter_map(|r| Some((r.get(e).copied()??, r.get(c).copied()??)))
            .collect()
    };
    std::iter::once("loss")
        .chain(metrics.iter().map(String::as_str))
        .map(|q| Curve {
            name: q.to_string(),
            train: column(&format!("train_{q}")),
            valid: column(&format!("valid_{q}")),
        })
        .filter(|c| !c.train.is_empty())
        .collect()
}

/// `plots/learning_curves.png` of a run.
pub fn learning_curves(run: &RunDir, metrics: &[String]) -> Result<()> {
    let c = curves(&run.file("metrics.csv"), metrics);
    if c.is_empty() {
        return Ok(());
    }
    plots::learning_curves(&run.file("plots/learning_curves.png"), &c)
}
