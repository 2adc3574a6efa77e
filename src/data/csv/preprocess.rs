//! Feature preprocessing fitted on the training split and saved with the run, so predict
//! applies exactly what training did.

use serde::{Deserialize, Serialize};

use super::FeatureValues;
use crate::config::{Missing, Normalize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Transform {
    None,
    /// x · factor
    Scale {
        factor: f32,
    },
    /// (x − mean) / std per feature (std 0 → 1)
    Standard {
        mean: Vec<f32>,
        std: Vec<f32>,
    },
    /// (x − min) / (max − min) per feature (range 0 → 1)
    Minmax {
        min: Vec<f32>,
        max: Vec<f32>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    pub transform: Transform,
    pub missing: Missing,
    /// Per-feature fill values for missing cells (`missing = "mean" | "zero"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fill: Option<Vec<f32>>,
}

/// Per-column statistics over rows of `x` (row-major, `f` features), skipping NaN.
fn column_stats(x: &FeatureValues, f: usize, stat: impl Fn(&[f32]) -> f32) -> Vec<f32> {
    let rows = x.len() / f.max(1);
    (0..f)
        .map(|c| {
            let col: Vec<f32> = (0..rows)
                .map(|r| x.get(r * f + c))
                .filter(|v| !v.is_nan())
                .collect();
            stat(&col)
        })
        .collect()
}

fn mean_of(v: &[f32]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    (v.iter().map(|&a| a as f64).sum::<f64>() / v.len() as f64) as f32
}

impl Transform {
    /// Standardization and min-max as per-feature `(x − shift) / divisor`, a zero spread
    /// divided by 1; None for the other transforms.
    pub fn shift_divisor(&self) -> Option<(&[f32], Vec<f32>)> {
        let nonzero = |d: f32| if d > 0.0 { d } else { 1.0 };
        match self {
            Transform::Standard { mean, std } => {
                Some((mean, std.iter().map(|&s| nonzero(s)).collect()))
            }
            Transform::Minmax { min, max } => Some((
                min,
                min.iter().zip(max).map(|(a, b)| nonzero(b - a)).collect(),
            )),
            Transform::None | Transform::Scale { .. } => None,
        }
    }
}

impl Preprocess {
    /// Fit on the training features (`x` row-major with `f` features; NaN = missing).
    pub fn fit(
        x: &FeatureValues,
        f: usize,
        scale: Option<f32>,
        normalize: Option<Normalize>,
        missing: Missing,
    ) -> Preprocess {
        let fill = match missing {
            Missing::Mean => Some(column_stats(x, f, mean_of)),
            Missing::Zero => Some(vec![0.0; f]),
            Missing::Error | Missing::Drop => None,
        };
        let transform = match (scale, normalize) {
            (Some(factor), _) => Transform::Scale { factor },
            (None, Some(Normalize::Standard)) => {
                let mean = column_stats(x, f, mean_of);
                let std = column_stats(x, f, |v| {
                    let m = mean_of(v) as f64;
                    let var = v.iter().map(|&a| (a as f64 - m).powi(2)).sum::<f64>()
                        / v.len().max(1) as f64;
                    var.sqrt() as f32
                });
                Transform::Standard { mean, std }
            }
            (None, Some(Normalize::Minmax)) => Transform::Minmax {
                min: column_stats(x, f, |v| v.iter().copied().fold(f32::INFINITY, f32::min)),
                max: column_stats(x, f, |v| {
                    v.iter().copied().fold(f32::NEG_INFINITY, f32::max)
                }),
            },
            (None, None) => Transform::None,
        };
        Preprocess {
            transform,
            missing,
            fill,
        }
    }

    /// Feature `c`'s raw value for a transformed value `v` (for plots in the data's units).
    pub fn invert(&self, v: f32, c: usize) -> f32 {
        let nonzero = |d: f32| if d > 0.0 { d } else { 1.0 };
        match &self.transform {
            Transform::None => v,
            Transform::Scale { factor } => v / factor,
            Transform::Standard { mean, std } => v * nonzero(std[c]) + mean[c],
            Transform::Minmax { min, max } => v * nonzero(max[c] - min[c]) + min[c],
        }
    }

    /// Fill missing values and transform, in place.
    pub fn apply(&self, x: &mut [f32], f: usize) {
        if f == 0 {
            return; // no number columns
        }
        let shift_divisor = self.transform.shift_divisor();
        for row in x.chunks_exact_mut(f) {
            for (c, v) in row.iter_mut().enumerate() {
                if v.is_nan() {
                    if let Some(fill) = &self.fill {
                        *v = fill[c];
                    }
                }
                *v = match (&self.transform, &shift_divisor) {
                    (_, Some((shift, divisor))) => (*v - shift[c]) / divisor[c],
                    (Transform::Scale { factor }, None) => *v * factor,
                    _ => *v,
                };
            }
        }
    }
}
