//! Training losses, each the mean over the batch, composed from engine ops; and the criterion a
//! run trains with: a loss with its options (class weights, label smoothing) resolved.

use serde::{Deserialize, Serialize};

use crate::tensor::Tensor;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    Mse,
    Mae,
    /// PyTorch's HuberLoss: ½d² where |d| < delta, else delta·(|d| − ½delta).
    Huber {
        delta: f32,
    },
    /// Softmax + cross-entropy on logits and class indices, fused.
    CrossEntropy,
    /// Binary cross-entropy on logits (one output) and 0/1 targets.
    Bce,
}

impl Loss {
    pub const NAMES: &'static [&'static str] = &["mse", "mae", "huber", "cross_entropy", "bce"];

    pub fn name(self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::Mae => "mae",
            Loss::Huber { .. } => "huber",
            Loss::CrossEntropy => "cross_entropy",
            Loss::Bce => "bce",
        }
    }

    /// What a model trained with this loss predicts from its outputs `[n, k]`, row-major with
    /// the values per row: class probabilities (softmax; for `bce` [1 − p, p] from one
    /// logit), or the outputs themselves (regression, in the model's units).
    pub fn predictions(
        self,
        out: &Tensor,
    ) -> Result<(Vec<f32>, usize), crate::backend::DeviceError> {
        let k = self.prediction_width(out.numel() / out.dims()[0].max(1));
        Ok(match self {
            Loss::CrossEntropy => (out.softmax(1).try_to_vec()?, k),
            Loss::Bce => (
                out.sigmoid()
                    .try_to_vec()?
                    .iter()
                    .flat_map(|&p| [1.0 - p, p])
                    .collect(),
                k,
            ),
            _ => (out.try_to_vec()?, k),
        })
    }

    /// Values per row of `predictions` for a model with `outputs` values per row: two
    /// probabilities from `bce`'s one logit, else as many as the model gives.
    pub fn prediction_width(self, outputs: usize) -> usize {
        match self {
            Loss::Bce => 2,
            _ => outputs,
        }
    }

    pub fn is_classification(self) -> bool {
        matches!(self, Loss::CrossEntropy | Loss::Bce)
    }

    /// `output` is the model's `[n, k]` output (logits for the classification losses); `target`
    /// holds class indices `[n]` for cross-entropy, else values `[n]` or `[n, k]`.
    pub fn compute(self, output: &Tensor, target: &Tensor) -> Tensor {
        if self == Loss::CrossEntropy {
            return output.cross_entropy(target);
        }
        let target = target.reshape(output.shape().clone());
        match self {
            Loss::Mse => output.mse(&target),
            Loss::Mae => output.sub(&target).abs().mean_all(),
            Loss::Huber { delta } => {
                let a = output.sub(&target).abs();
                let q = a.clamp(0.0, delta);
                q.mul(&q)
                    .mul_scalar(0.5)
                    .add(&a.sub(&q).mul_scalar(delta))
                    .mean_all()
            }
            // softplus(x) − x·y = −[y·log σ(x) + (1 − y)·log(1 − σ(x))], stable for any x.
            Loss::Bce => bce_terms(output, &target).mean_all(),
            Loss::CrossEntropy => unreachable!("handled above"),
        }
    }
}

/// Per-element binary cross-entropy of logits.
fn bce_terms(output: &Tensor, target: &Tensor) -> Tensor {
    output.softplus().sub(&output.mul(target))
}

/// The loss a run trains and evaluates with: its kind, and for the classification losses the
/// options resolved against the training data (saved in run.json so eval computes the same).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Criterion {
    /// Weight of each class (`loss.class_weights`), in class index order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_weights: Option<Vec<f32>>,
    /// `loss.label_smoothing` (cross-entropy only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub label_smoothing: f32,
}

fn is_zero(v: &f32) -> bool {
    *v == 0.0
}

impl Criterion {
    /// The mean loss of a batch. Without weights or smoothing this is `Loss::compute` itself
    /// (the fused cross-entropy). With them it follows PyTorch: cross-entropy averages
    /// `-Σ_c q_c·w_c·log p_c` with `q = (1 − ε)·onehot + ε/C` over the batch's summed target
    /// weights `Σ_i w[y_i]` (`CrossEntropyLoss(weight, label_smoothing)`); binary
    /// cross-entropy takes the plain mean of `w[y_i]·l_i` (`BCEWithLogitsLoss(weight=w[y])`).
    /// What a batch's loss is averaged over: its rows, or for class-weighted cross-entropy
    /// (a weighted mean, as PyTorch's) the sum of its rows' class weights. Ranks that each
    /// average over their share combine their gradients in these proportions.
    pub fn batch_weight(&self, loss: Loss, target: &Tensor) -> f64 {
        match (&self.class_weights, loss) {
            (Some(w), Loss::CrossEntropy) => {
                target.to_vec().iter().map(|&t| w[t as usize] as f64).sum()
            }
            _ => target.numel() as f64,
        }
    }

    pub fn compute(&self, loss: Loss, output: &Tensor, target: &Tensor) -> Tensor {
        if self.class_weights.is_none() && self.label_smoothing == 0.0 {
            return loss.compute(output, target);
        }
        let device = output.device();
        // Class indices on the host to build the per-row weights: a read of the targets.
        let y: Vec<usize> = target.to_vec().iter().map(|&t| t as usize).collect();
        let weight = |c: usize| self.class_weights.as_ref().map_or(1.0, |w| w[c]);
        match loss {
            Loss::CrossEntropy => {
                let (n, c) = (output.dims()[0], output.dims()[1]);
                let eps = self.label_smoothing;
                let total: f32 = y.iter().map(|&t| weight(t)).sum();
                let scale = if total > 0.0 { 1.0 / total } else { 0.0 };
                let mut m = vec![0.0f32; n * c];
                for (i, &t) in y.iter().enumerate() {
                    for k in 0..c {
                        let q = eps / c as f32 + if k == t { 1.0 - eps } else { 0.0 };
                        m[i * c + k] = q * weight(k) * scale;
                    }
                }
                let m = Tensor::from_vec(m, [n, c]).to_device(device);
                output.log_softmax(1).mul(&m).sum_all().neg()
            }
            Loss::Bce => {
                let target = target.reshape(output.shape().clone());
                let w: Vec<f32> = y.iter().map(|&t| weight(t)).collect();
                let w = Tensor::from_vec(w, output.shape().clone()).to_device(device);
                bce_terms(output, &target).mul(&w).mean_all()
            }
            other => other.compute(output, target),
        }
    }
}
