//! Metrics from sufficient statistics accumulated batch by batch, so training, evaluation and a
//! resumed epoch all compute them the same way (the statistics travel in checkpoints).

use serde::{Deserialize, Serialize};

use crate::config::Task;
use crate::error::{Error, Result};

/// Names accepted in `train.metrics`, per task (`topK` for any K ≥ 1).
pub const CLASSIFICATION: &[&str] = &["accuracy", "top5", "f1"];
pub const REGRESSION: &[&str] = &["rmse", "mae", "r2"];

/// Metric names where smaller is better (`valid.loss`, `rmse`, `train_mae`): the one rule
/// for a metric's direction, used by monitors, gates, sweeps and listings.
pub fn lower_is_better(metric: &str) -> bool {
    ["loss", "rmse", "mae"].iter().any(|m| metric.ends_with(m))
}

/// Which way a metric improves, as tables and JSON name it: "min" or "max".
pub fn direction(metric: &str) -> &'static str {
    if lower_is_better(metric) {
        "min"
    } else {
        "max"
    }
}

/// Check metric names against the task (and `topK` against the number of classes); returns
/// them with the task's default when empty.
pub fn resolve(names: &[String], task: Task, classes: usize) -> Result<Vec<String>> {
    let known = match task {
        Task::Classification => CLASSIFICATION,
        Task::Regression => REGRESSION,
    };
    if names.is_empty() {
        return Ok(vec![known[0].to_string()]);
    }
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(Error::config(
                "train.metrics",
                format!("lists \"{n}\" twice"),
            ));
        }
        if let Some(k) = top_k(n).filter(|_| task == Task::Classification) {
            if k >= classes {
                return Err(Error::config(
                    "train.metrics",
                    format!("{n} of {classes} classes is always 1; use a K below {classes}"),
                ));
            }
        }
        let top_k = task == Task::Classification && top_k(n).is_some();
        if !known.contains(&n.as_str()) && !top_k {
            return Err(Error::config(
                "train.metrics",
                format!(
                    "unknown metric \"{n}\" for {task:?} (known: {}){}",
                    known.join(", "),
                    crate::suggest::did_you_mean(n, known)
                ),
            ));
        }
    }
    Ok(names.to_vec())
}

fn top_k(name: &str) -> Option<usize> {
    name.strip_prefix("top")?.parse().ok().filter(|&k| k >= 1)
}

/// Running statistics over (output, target) pairs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Accumulator {
    pub rows: u64,
    /// Σ batch loss × batch rows: the mean loss is this over `rows`.
    pub loss_sum: f64,
    /// Classification: confusion[target][predicted].
    pub confusion: Vec<Vec<u64>>,
    /// Classification: hits within the top K, per K asked for.
    pub top_k_hits: Vec<(usize, u64)>,
    /// Regression sums: Σ(p−y)², Σ|p−y|, Σy, Σy².
    pub sq_err: f64,
    pub abs_err: f64,
    pub sum_y: f64,
    pub sum_y2: f64,
}

impl Accumulator {
    pub fn new(task: Task, classes: usize, metrics: &[String]) -> Accumulator {
        let mut acc = Accumulator::default();
        if task == Task::Classification {
            acc.confusion = vec![vec![0; classes]; classes];
            acc.top_k_hits = metrics
                .iter()
                .filter_map(|m| top_k(m))
                .map(|k| (k, 0))
                .collect();
        }
        acc
    }

    /// Add a batch: `outputs` row-major `[n, k]` (logits or values), `targets` `[n]`.
    pub fn add(&mut self, task: Task, outputs: &[f32], targets: &[f32], batch_loss: f32) {
        let n = targets.len();
        let k = outputs.len() / n.max(1);
        self.rows += n as u64;
        self.loss_sum += batch_loss as f64 * n as f64;
        for (row, &t) in outputs.chunks_exact(k).zip(targets) {
            match task {
                Task::Classification => {
                    let t = t as usize;
                    // One output is a binary logit: class 1 when positive.
                    let predicted = if k == 1 {
                        usize::from(row[0] > 0.0)
                    } else {
                        argmax(row)
                    };
                    self.confusion[t][predicted] += 1;
                    for (kk, hits) in &mut self.top_k_hits {
                        let better = row.iter().filter(|&&v| v > row[t.min(k - 1)]).count();
                        if k > 1 && better < *kk || k == 1 && predicted == t {
                            *hits += 1;
                        }
                    }
                }
                Task::Regression => {
                    let (p, y) = (row[0] as f64, t as f64);
                    self.sq_err += (p - y).powi(2);
                    self.abs_err += (p - y).abs();
                    self.sum_y += y;
                    self.sum_y2 += y * y;
                }
            }
        }
    }

    /// Add another accumulator's statistics (another rank's share of the same rows' kind).
    pub fn merge(&mut self, other: &Accumulator) {
        self.rows += other.rows;
        self.loss_sum += other.loss_sum;
        for (mine, theirs) in self.confusion.iter_mut().zip(&other.confusion) {
            for (a, b) in mine.iter_mut().zip(theirs) {
                *a += b;
            }
        }
        for ((_, a), (_, b)) in self.top_k_hits.iter_mut().zip(&other.top_k_hits) {
            *a += b;
        }
        self.sq_err += other.sq_err;
        self.abs_err += other.abs_err;
        self.sum_y += other.sum_y;
        self.sum_y2 += other.sum_y2;
    }

    /// `{"loss": .., "<metric>": ..}` for run.json and `--json`.
    pub fn to_json(&self, metrics: &[String]) -> serde_json::Map<String, serde_json::Value> {
        let mut map = serde_json::Map::new();
        map.insert("loss".into(), self.loss().into());
        for m in metrics {
            map.insert(m.clone(), self.value(m).into());
        }
        map
    }

    pub fn loss(&self) -> f64 {
        self.loss_sum / self.rows.max(1) as f64
    }

    pub fn value(&self, metric: &str) -> f64 {
        let n = self.rows.max(1) as f64;
        match metric {
            "accuracy" => self.diagonal() as f64 / n,
            "f1" => {
                let per: Vec<f64> = (0..self.confusion.len())
                    .map(|c| self.per_class(c).2)
                    .collect();
                per.iter().sum::<f64>() / per.len().max(1) as f64
            }
            "rmse" => (self.sq_err / n).sqrt(),
            "mae" => self.abs_err / n,
            "r2" => {
                let total = self.sum_y2 - self.sum_y * self.sum_y / n;
                if total > 0.0 {
                    1.0 - self.sq_err / total
                } else {
                    0.0
                }
            }
            other => {
                let k = top_k(other).expect("metric names are resolved first");
                let hits = self
                    .top_k_hits
                    .iter()
                    .find(|(kk, _)| *kk == k)
                    .map_or(0, |h| h.1);
                hits as f64 / n
            }
        }
    }

    fn diagonal(&self) -> u64 {
        (0..self.confusion.len())
            .map(|i| self.confusion[i][i])
            .sum()
    }

    /// (precision, recall, F1) of class `c`; 0 where undefined.
    pub fn per_class(&self, c: usize) -> (f64, f64, f64) {
        let tp = self.confusion[c][c] as f64;
        let predicted: u64 = self.confusion.iter().map(|row| row[c]).sum();
        let actual: u64 = self.confusion[c].iter().sum();
        let precision = if predicted > 0 {
            tp / predicted as f64
        } else {
            0.0
        };
        let recall = if actual > 0 { tp / actual as f64 } else { 0.0 };
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        (precision, recall, f1)
    }
}

pub fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv {
                (i, v)
            } else {
                (bi, bv)
            }
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_metrics_from_counts() {
        let mut acc = Accumulator::new(Task::Classification, 3, &["top2".to_string()]);
        // targets 0,1,2,2; predictions 0,2,2,1; class 1 is second-best in row 2.
        let out = [5.0, 1.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.5, 3.0, 0.0, 2.0, 1.0];
        acc.add(Task::Classification, &out, &[0.0, 1.0, 2.0, 2.0], 0.5);
        assert_eq!(acc.value("accuracy"), 0.5);
        assert_eq!(acc.value("top2"), 1.0);
        // class 0: p1 r1 f1 1; class 1: p0 r0 → 0; class 2: p 1/2, r 1/2, f1 1/2
        assert!((acc.value("f1") - 0.5).abs() < 1e-12);
        assert_eq!(acc.loss(), 0.5);
    }

    #[test]
    fn regression_metrics_from_sums() {
        let mut acc = Accumulator::new(Task::Regression, 0, &[]);
        acc.add(Task::Regression, &[1.0, 2.0, 4.0], &[1.0, 3.0, 5.0], 1.0);
        assert!((acc.value("rmse") - (2.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((acc.value("mae") - 2.0 / 3.0).abs() < 1e-12);
        // ss_tot = Σ(y−ȳ)² = 8; r2 = 1 − 2/8
        assert!((acc.value("r2") - 0.75).abs() < 1e-12);
    }
}
