//! Training losses, each the mean over the batch, composed from engine ops.

use serde::{Deserialize, Serialize};

use crate::tensor::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Loss {
    Mse,
    Mae,
    /// PyTorch's HuberLoss: ½d² where |d| < delta, else delta·(|d| − ½delta).
    Huber {
        #[serde(default = "default_delta")]
        delta: f32,
    },
    /// Softmax + cross-entropy on logits and class indices, fused.
    CrossEntropy,
    /// Binary cross-entropy on logits (one output) and 0/1 targets.
    Bce,
}

fn default_delta() -> f32 {
    1.0
}

impl Loss {
    pub fn name(self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::Mae => "mae",
            Loss::Huber { .. } => "huber",
            Loss::CrossEntropy => "cross_entropy",
            Loss::Bce => "bce",
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
            Loss::Bce => output.softplus().sub(&output.mul(&target)).mean_all(),
            Loss::CrossEntropy => unreachable!("handled above"),
        }
    }
}
