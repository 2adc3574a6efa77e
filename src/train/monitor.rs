//! The metrics training watches: the one that picks the best model, the one early stopping
//! follows and the one `reduce_on_plateau` lowers the rate on. Each is checked against the
//! epoch row's columns before training starts (and by `kiln check`), so a misspelt name fails
//! at once instead of after an epoch.

use serde::{Deserialize, Serialize};

use crate::config::{EarlyStopping, OptimizerConfig, TrainConfig};
use crate::error::{Error, Result};
use crate::optim::schedule::Schedule;
use crate::run::Best;

use crate::metrics::lower_is_better;

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
    /// reduce_on_plateau: the rate now (None: the schedule's), the best value, the epochs
    /// since it and the cooldown epochs left.
    #[serde(default)]
    pub plateau_lr: Option<f32>,
    #[serde(default)]
    pub plateau_best: Option<f64>,
    #[serde(default)]
    pub plateau_wait: usize,
    #[serde(default)]
    pub cooldown: usize,
}

/// reduce_on_plateau's settings.
#[derive(Clone, Debug)]
struct Plateau {
    monitor: Monitor,
    base_lr: f32,
    factor: f32,
    patience: usize,
    min_delta: f64,
    cooldown: usize,
    min_lr: f32,
}

/// The best-model monitor (none: every epoch is the best so far, so the last one wins) and
/// early stopping.
pub struct Watch {
    best: Option<Monitor>,
    early: Option<(Monitor, EarlyStopping)>,
    plateau: Option<Plateau>,
}

/// What an epoch changed.
pub struct Verdict {
    /// The epoch is the best so far: save its model.
    pub improved: bool,
    /// Early stopping ran out of patience.
    pub stop: bool,
    /// reduce_on_plateau lowered the rate: (from, to).
    pub lr_reduced: Option<(f32, f32)>,
}

impl Watch {
    /// Resolve the config's monitors against the epoch row's columns: `train_*` always,
    /// `valid_*` when there is a validation split. The best model defaults to `valid.loss`
    /// when there is one.
    pub fn new(
        cfg: &TrainConfig,
        optimizer: &OptimizerConfig,
        metrics: &[String],
        has_valid: bool,
    ) -> Result<Watch> {
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
        let plateau = match &optimizer.schedule {
            Schedule::ReduceOnPlateau {
                monitor,
                factor,
                patience,
                min_delta,
                cooldown,
                min_lr,
                ..
            } => Some(Plateau {
                monitor: Monitor::new(monitor, &columns, "optimizer.schedule.monitor")?,
                base_lr: optimizer.lr,
                factor: *factor,
                patience: *patience,
                min_delta: *min_delta,
                cooldown: *cooldown,
                min_lr: *min_lr,
            }),
            _ => None,
        };
        Ok(Watch {
            best,
            early,
            plateau,
        })
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
        let lr_reduced = self.plateau.as_ref().and_then(|p| p.epoch(row, state));
        Verdict {
            improved,
            stop,
            lr_reduced,
        }
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

impl Plateau {
    /// Keras's ReduceLROnPlateau after an epoch: count the epochs without improvement (none
    /// during cooldown), and after `patience` of them lower the rate (unless at `min_lr`).
    fn epoch(&self, row: &[(String, f64)], state: &mut WatchState) -> Option<(f32, f32)> {
        let v = self.monitor.value(row);
        if state.cooldown > 0 {
            state.cooldown -= 1;
            state.plateau_wait = 0;
        }
        let better = state
            .plateau_best
            .is_none_or(|b| self.monitor.better(v, b, self.min_delta));
        if better {
            state.plateau_best = Some(v);
            state.plateau_wait = 0;
            return None;
        }
        if state.cooldown > 0 {
            return None;
        }
        state.plateau_wait += 1;
        if state.plateau_wait < self.patience.max(1) {
            return None;
        }
        let old = state.plateau_lr.unwrap_or(self.base_lr);
        if old <= self.min_lr {
            return None;
        }
        let new = (old * self.factor).max(self.min_lr);
        state.plateau_lr = Some(new);
        state.cooldown = self.cooldown;
        state.plateau_wait = 0;
        Some((old, new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plateau(patience: usize, cooldown: usize) -> Plateau {
        Plateau {
            monitor: Monitor {
                name: "valid.loss".into(),
                column: "valid_loss".into(),
            },
            base_lr: 1.0,
            factor: 0.5,
            patience,
            min_delta: 0.01,
            cooldown,
            min_lr: 0.2,
        }
    }

    /// The rate after each epoch of `losses`.
    fn rates(p: &Plateau, losses: &[f64]) -> Vec<f32> {
        let mut state = WatchState::default();
        losses
            .iter()
            .map(|&l| {
                p.epoch(&[("valid_loss".to_string(), l)], &mut state);
                state.plateau_lr.unwrap_or(p.base_lr)
            })
            .collect()
    }

    #[test]
    fn plateau_lowers_after_patience_epochs_without_improvement_down_to_min_lr() {
        // 1.0 → 0.9 improves; 0.895 is within min_delta, as is a rise: two bad epochs lower
        // the rate, two more lower it again, then min_lr holds it.
        let got = rates(
            &plateau(2, 0),
            &[1.0, 0.9, 0.895, 0.95, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9],
        );
        assert_eq!(got, [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2]);
        // A real improvement resets the count.
        let got = rates(&plateau(2, 0), &[1.0, 1.0, 0.5, 0.5, 0.5]);
        assert_eq!(got, [1.0, 1.0, 1.0, 1.0, 0.5]);
    }

    #[test]
    fn plateau_waits_out_its_cooldown_before_counting_again() {
        let got = rates(&plateau(1, 2), &[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
        // As Keras counts it: lowered at epoch 2, the cooldown runs down over epochs 3 and 4
        // (which then counts again), lowered at 4 and at 6, there to min_lr.
        assert_eq!(got, [1.0, 0.5, 0.5, 0.25, 0.25, 0.2]);
    }
}
