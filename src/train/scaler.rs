//! Dynamic loss scaling for `train.precision = "f16"`, with PyTorch's `GradScaler` semantics:
//! the loss is multiplied by the scale before the backward pass, so that small gradients stay
//! above f16's smallest values where the products round them; the gradients are divided by it
//! again before clipping and the step. A step whose gradients are not finite (a product
//! overflowed f16's 65504) is skipped and the scale halved; after `growth_interval` clean steps
//! in a row the scale doubles. Scales are powers of two, so scaling and unscaling are exact.

use serde::{Deserialize, Serialize};

use crate::config::LossScale;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Below this scale halving cannot help: f16's smallest subnormal is 2^-24, so gradients that
/// still overflow are not a matter of range. The run then fails as a non-finite loss does.
const MIN_SCALE: f64 = 1.0 / 16_777_216.0;

/// The scaler's state, kept in every checkpoint's progress so a resumed run scales as an
/// uninterrupted one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScalerState {
    pub scale: f64,
    /// Clean steps since the scale last changed (PyTorch's growth tracker).
    pub clean_steps: u64,
}

/// What one step did to the scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    /// Finite gradients: the step is taken.
    Step,
    /// Finite gradients and `growth_interval` of them in a row: the step is taken and the scale
    /// doubled from `from`.
    Grew { from: f64 },
    /// Gradients not finite: no step; the scale halved from `from`.
    Skipped { from: f64 },
}

impl ScalerState {
    pub fn new(config: &LossScale) -> ScalerState {
        ScalerState {
            scale: config.init_scale,
            clean_steps: 0,
        }
    }

    /// Account for one step whose (unscaled) gradients were finite or not. Errors when the scale
    /// would fall below `MIN_SCALE`.
    pub fn update(&mut self, finite: bool, growth_interval: u64) -> Result<Outcome> {
        let from = self.scale;
        if !finite {
            if from / 2.0 < MIN_SCALE {
                return Err(Error::Runtime(format!(
                    "gradients are not finite at every loss scale down to {from:e}: the model overflows f16 whatever the scale (try train.precision = \"bf16\", or a lower learning rate)"
                )));
            }
            self.scale = from / 2.0;
            self.clean_steps = 0;
            return Ok(Outcome::Skipped { from });
        }
        self.clean_steps += 1;
        // As GradScaler: grow only to a scale that is itself finite in f32.
        if self.clean_steps >= growth_interval && ((from * 2.0) as f32).is_finite() {
            self.scale = from * 2.0;
            self.clean_steps = 0;
            return Ok(Outcome::Grew { from });
        }
        Ok(Outcome::Step)
    }

    /// The loss to run the backward pass from.
    pub fn scaled(&self, loss: &Tensor) -> Tensor {
        loss.mul_scalar(self.scale as f32)
    }
}

/// Divide every gradient by `scale` (exact: a power of two) and say whether all are finite.
/// One read of the device: the sum of every `g·0`, which is 0 when all are finite and NaN
/// otherwise (inf·0 is NaN), so it cannot overflow as a sum of the values could.
pub fn unscale(params: &[(String, Tensor)], scale: f64) -> Result<bool> {
    let _guard = crate::autograd::no_grad();
    let inverse = (1.0 / scale) as f32;
    let mut probe: Option<Tensor> = None;
    for (_, p) in params {
        if let Some(g) = p.grad() {
            let g = g.mul_scalar(inverse);
            let z = g.mul_scalar(0.0).sum_all();
            probe = Some(match probe {
                Some(t) => t.add(&z),
                None => z,
            });
            p.set_grad(g);
        }
    }
    Ok(match probe {
        Some(t) => t.try_item()?.is_finite(),
        None => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(init: f64, growth: u64) -> LossScale {
        LossScale {
            init_scale: init,
            growth_interval: growth,
        }
    }

    #[test]
    fn overflow_halves_and_skips() {
        let mut s = ScalerState::new(&config(65536.0, 2000));
        assert_eq!(
            s.update(false, 2000).unwrap(),
            Outcome::Skipped { from: 65536.0 }
        );
        assert_eq!((s.scale, s.clean_steps), (32768.0, 0));
        assert_eq!(
            s.update(false, 2000).unwrap(),
            Outcome::Skipped { from: 32768.0 }
        );
        assert_eq!(s.scale, 16384.0);
    }

    #[test]
    fn grows_after_the_interval_of_clean_steps_in_a_row() {
        let mut s = ScalerState::new(&config(8.0, 3));
        assert_eq!(s.update(true, 3).unwrap(), Outcome::Step);
        assert_eq!(s.update(true, 3).unwrap(), Outcome::Step);
        // An overflow resets the count of clean steps.
        assert_eq!(s.update(false, 3).unwrap(), Outcome::Skipped { from: 8.0 });
        assert_eq!(s.update(true, 3).unwrap(), Outcome::Step);
        assert_eq!(s.update(true, 3).unwrap(), Outcome::Step);
        assert_eq!(s.update(true, 3).unwrap(), Outcome::Grew { from: 4.0 });
        assert_eq!((s.scale, s.clean_steps), (8.0, 0));
    }

    #[test]
    fn does_not_grow_past_f32() {
        let mut s = ScalerState::new(&config(2f64.powi(127), 1));
        assert_eq!(s.update(true, 1).unwrap(), Outcome::Step);
        assert_eq!(s.scale, 2f64.powi(127));
    }

    #[test]
    fn gives_up_below_the_smallest_useful_scale() {
        let mut s = ScalerState::new(&config(1.0, 2000));
        for _ in 0..24 {
            assert!(matches!(
                s.update(false, 2000).unwrap(),
                Outcome::Skipped { .. }
            ));
        }
        assert_eq!(s.scale, MIN_SCALE);
        let e = s.update(false, 2000).unwrap_err().to_string();
        assert!(e.contains("not finite at every loss scale"), "{e}");
    }

    #[test]
    fn unscale_divides_and_detects_overflow() {
        let p = Tensor::from_vec(vec![1.0, 2.0, 3.0], [3]).with_requires_grad();
        p.set_grad(Tensor::from_vec(vec![8.0, -16.0, 0.5], [3]));
        let params = vec![("p".to_string(), p.clone())];
        assert!(unscale(&params, 8.0).unwrap());
        assert_eq!(p.grad().unwrap().to_vec(), vec![1.0, -2.0, 0.0625]);
        for bad in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
            p.set_grad(Tensor::from_vec(vec![1.0, bad, 1.0], [3]));
            assert!(!unscale(&params, 2.0).unwrap(), "{bad} is caught");
        }
        // Huge finite gradients do not read as an overflow (a plain sum of them would).
        p.set_grad(Tensor::from_vec(vec![f32::MAX, f32::MAX, 1.0], [3]));
        assert!(unscale(&params, 1.0).unwrap());
    }
}
