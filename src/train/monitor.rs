//! The metrics training watches: the one that picks the best model and the one early stopping
//! follows. Each is checked against the epoch row's columns before training starts (and by
//! `kiln check`), so a misspelt name fails at once instead of after an epoch.

use serde::{Deserialize, Serialize};

use crate::config::{EarlyStopping, TrainConfig};
use crate::error::{Error, Result};
use crate::run::Best;

/// Metric names where smaller is better.
pub fn lower_is_better(metric: &str) -> bool {
    ["loss", "rmse", "mae"].iter().any(|m| metric.ends_with(m))
}

/// One watched metric: its name as the config writes it (`valid.loss`) and its column in the
/// epoch row (`valid_loss`).
#[derive(Clone, Debug)]
pub struct Monitor {
    pub name: String,
    column: String,
}

impl Monitor {
    /// `name` must be one of the row's `columns` (`train_loss`, `valid_accuracy`, ...); `key`
    /// is the config key that named it, for the error.
    fn new(name: &str, columns: &[String], key: &str) -> Result<Monitor> {
        let column = name.replacen('.', "_", 1);
        if !columns.contains(&column) {
            let have: Vec<String> = columns.iter().map(|c| c.replacen('_', ".", 1)).collect();
            return Err(Error::config(
                key,
                format!("no metric \"{name}\" (have: {})", have.join(", ")),
            ));
        }
        Ok(Monitor {
            name: name.to_string(),
            column,
        })
    }

    /// The metric's value in an epoch row.
    pub fn value(&self, row: &[(String, f64)]) -> f64 {
        row.iter()
            .find(|(k, _)| *k == self.column)
            .map_or(f64::NAN, |(_, v)| *v)
    }

    /// Whether `value` beats `than` by more than `min_delta`, in the metric's direction.
    pub fn better(&self, value: f64, than: f64, min_delta: f64) -> bool {
        if lower_is_better(&self.name) {
            value < than - min_delta
        } else {
            value > than + min_delta
        }
    }
}

/// Where the watch stands; saved in checkpoints so a resumed run continues it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WatchState {
    pub best: Option<Best>,
    /// Early stopping: the best monitored value and the epochs since it.
    pub stop_best: Option<f64>,
    pub wait: usize,
}

/// The best-model monitor (none: every epoch is the best so far, so the last one wins) and
/// early stopping.
pub struct Watch {
    best: Option<Monitor>,
    early: Option<(Monitor, EarlyStopping)>,
}

/// What an epoch changed.
pub struct Verdict {
    /// The epoch is the best so far: save its model.
    pub improved: bool,
    /// Early stopping ran out of patience.
    pub stop: bool,
}

impl Watch {
    /// Resolve the config's monitors against the epoch row's columns: `train_*` always,
    /// `valid_*` when there is a validation split. The best model defaults to `valid.loss`
    /// when there is one.
    pub fn new(cfg: &TrainConfig, metrics: &[String], has_valid: bool) -> Result<Watch> {
        let mut columns = vec!["train_loss".to_string()];
        columns.extend(metrics.iter().map(|m| format!("train_{m}")));
        if has_valid {
            columns.push("valid_loss".into());
            columns.extend(metrics.iter().map(|m| format!("valid_{m}")));
        }
        let default_best = has_valid.then(|| "valid.loss".to_string());
        let best = match cfg.checkpoint.best.clone().or(default_best) {
            Some(name) => Some(Monitor::new(&name, &columns, "train.checkpoint.best")?),
            None => None,
        };
        let early = match &cfg.early_stopping {
            Some(es) => Some((
                Monitor::new(&es.monitor, &columns, "train.early_stopping.monitor")?,
                es.clone(),
            )),
            None => None,
        };
        Ok(Watch { best, early })
    }

    /// Update `state` with an epoch's row.
    pub fn epoch(&self, epoch: usize, row: &[(String, f64)], state: &mut WatchState) -> Verdict {
        let improved = match &self.best {
            None => true,
            Some(m) => {
                let v = m.value(row);
                let better = state
                    .best
                    .as_ref()
                    .is_none_or(|b| m.better(v, b.value, 0.0));
                if better {
                    state.best = Some(Best {
                        monitor: m.name.clone(),
                        value: v,
                        epoch,
                    });
                }
                better
            }
        };
        let mut stop = false;
        if let Some((m, es)) = &self.early {
            let v = m.value(row);
            if state.stop_best.is_none_or(|b| m.better(v, b, es.min_delta)) {
                state.stop_best = Some(v);
                state.wait = 0;
            } else {
                state.wait += 1;
            }
            // Only an epoch that did not improve can stop training (Keras): patience 0 stops at
            // the first such epoch.
            stop = state.wait > 0 && state.wait >= es.patience;
        }
        Verdict { improved, stop }
    }

    /// The early-stopping line for the log.
    pub fn stop_reason(&self) -> String {
        match &self.early {
            Some((m, es)) => format!(
                "early stopping: {} did not improve for {} epochs",
                m.name, es.patience
            ),
            None => String::new(),
        }
    }
}
