//! Learning-rate schedules as pure functions of training progress; `reduce_on_plateau` also
//! scales the rate by what the watched metric did (the training loop keeps that state).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    Constant {
        #[serde(default)]
        warmup_epochs: f32,
    },
    /// Multiply by `gamma` every `step_epochs` epochs (PyTorch's StepLR).
    Step {
        step_epochs: usize,
        #[serde(default = "default_gamma")]
        gamma: f32,
        #[serde(default)]
        warmup_epochs: f32,
    },
    /// Cosine decay to `min_lr` over the epochs after warm-up (PyTorch's CosineAnnealingLR,
    /// evaluated per step).
    Cosine {
        #[serde(default)]
        warmup_epochs: f32,
        #[serde(default)]
        min_lr: f32,
    },
    /// Keras's ReduceLROnPlateau: multiply the rate by `factor` once `monitor` has not
    /// improved by more than `min_delta` for `patience` epochs, never below `min_lr`, then
    /// wait `cooldown` epochs before counting again.
    ReduceOnPlateau {
        #[serde(default = "default_plateau_monitor")]
        monitor: String,
        #[serde(default = "default_gamma")]
        factor: f32,
        #[serde(default = "default_plateau_patience")]
        patience: usize,
        #[serde(default = "default_plateau_min_delta")]
        min_delta: f64,
        #[serde(default)]
        cooldown: usize,
        #[serde(default)]
        min_lr: f32,
        #[serde(default)]
        warmup_epochs: f32,
    },
}

/// Keras's defaults.
fn default_plateau_monitor() -> String {
    "valid.loss".into()
}

fn default_plateau_patience() -> usize {
    10
}

fn default_plateau_min_delta() -> f64 {
    1e-4
}

fn default_gamma() -> f32 {
    0.1
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::Constant { warmup_epochs: 0.0 }
    }
}

impl Schedule {
    /// The learning rate for optimizer step `step` (0-based) of a run of `epochs` epochs with
    /// `steps_per_epoch` steps each. Warm-up rises linearly to `base` over its epochs.
    pub fn lr(&self, base: f32, step: u64, steps_per_epoch: usize, epochs: usize) -> f32 {
        let spe = steps_per_epoch.max(1) as f64;
        let start = step as f64 / spe; // epochs done before this step
        let end = (step + 1) as f64 / spe;
        let warmup = self.warmup_epochs() as f64;
        let warm = if warmup > 0.0 {
            (end / warmup).min(1.0)
        } else {
            1.0
        };
        let lr = match *self {
            // The plateau's factor is applied by the caller, which watches the metric.
            Schedule::Constant { .. } | Schedule::ReduceOnPlateau { .. } => base as f64,
            Schedule::Step {
                step_epochs, gamma, ..
            } => base as f64 * (gamma as f64).powi((start / step_epochs.max(1) as f64) as i32),
            Schedule::Cosine { min_lr, .. } => {
                let span = (epochs as f64 - warmup).max(f64::EPSILON);
                let t = ((start - warmup) / span).clamp(0.0, 1.0);
                let min = min_lr as f64;
                min + (base as f64 - min) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        };
        (lr * warm) as f32
    }

    pub fn warmup_epochs(&self) -> f32 {
        match *self {
            Schedule::Constant { warmup_epochs }
            | Schedule::Step { warmup_epochs, .. }
            | Schedule::Cosine { warmup_epochs, .. }
            | Schedule::ReduceOnPlateau { warmup_epochs, .. } => warmup_epochs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_with_warmup_rises_then_holds() {
        let s = Schedule::Constant { warmup_epochs: 1.0 };
        assert_eq!(s.lr(1.0, 0, 4, 3), 0.25);
        assert_eq!(s.lr(1.0, 3, 4, 3), 1.0);
        assert_eq!(s.lr(1.0, 9, 4, 3), 1.0);
    }

    #[test]
    fn step_decays_every_step_epochs() {
        let s = Schedule::Step {
            step_epochs: 2,
            gamma: 0.5,
            warmup_epochs: 0.0,
        };
        let per_epoch: Vec<f32> = (0..5).map(|e| s.lr(1.0, e * 10, 10, 5)).collect();
        assert_eq!(per_epoch, vec![1.0, 1.0, 0.5, 0.5, 0.25]);
    }

    #[test]
    fn cosine_starts_at_base_and_ends_near_min() {
        let s = Schedule::Cosine {
            warmup_epochs: 0.0,
            min_lr: 0.1,
        };
        assert!((s.lr(1.0, 0, 10, 2) - 1.0).abs() < 1e-6);
        assert!((s.lr(1.0, 10, 10, 2) - 0.55).abs() < 1e-6); // halfway
        let last = s.lr(1.0, 19, 10, 2);
        assert!(last > 0.1 && last < 0.11, "{last}");
    }
}
