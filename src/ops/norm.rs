//! Batch normalization in training mode as one op: the batch's statistics, the normalized
//! output and the affine transform in one pass each way, keeping only x̂ for the backward.

use crate::autograd::Backward;
use crate::backend::Storage;
use crate::tensor::{AxisDims, Tensor};

impl Tensor {
    /// `(x − mean) / √(var + eps) · weight + bias` with the batch's mean and biased variance
    /// per index of axis 1 (features of `[n, f]`, channels of `[n, c, h, w]`); `weight` and
    /// `bias` are `[c]`. Also returns the batch mean and biased variance `[c]`, outside the
    /// graph (for running statistics).
    pub fn batch_norm_train(
        &self,
        weight: &Tensor,
        bias: &Tensor,
        eps: f32,
    ) -> (Tensor, Tensor, Tensor) {
        let d = self.shape().axis_dims(1);
        assert!(
            weight.dims() == [d.len] && bias.dims() == [d.len],
            "batch_norm_train: weight {} and bias {} for {}",
            weight.shape(),
            bias.shape(),
            self.shape()
        );
        let (y, x_hat, mean, var) =
            self.storage()
                .batch_norm_fwd(&weight.storage(), &bias.storage(), d, eps);
        let stats = |s: &Storage| Tensor::from_storage(s.clone(), [d.len]);
        let (mean_t, var_t) = (stats(&mean), stats(&var));
        let y = Tensor::from_op(y, self.shape().clone(), &[self, weight, bias], || {
            BatchNormBackward { d, eps, x_hat, var }
        });
        (y, mean_t, var_t)
    }
}

struct BatchNormBackward {
    d: AxisDims,
    eps: f32,
    /// The normalized input.
    x_hat: Storage,
    /// The batch's biased variance per channel.
    var: Storage,
}

impl Backward for BatchNormBackward {
    fn backward(&self, dy: &Tensor, inputs: &[Tensor]) -> Vec<Option<Tensor>> {
        let (x, w, b) = (&inputs[0], &inputs[1], &inputs[2]);
        let (dx, dw, db) =
            self.x_hat
                .batch_norm_bwd(&self.var, &w.storage(), &dy.storage(), self.d, self.eps);
        vec![
            x.requires_grad()
                .then(|| Tensor::from_storage(dx, x.shape().clone())),
            w.requires_grad()
                .then(|| Tensor::from_storage(dw, w.shape().clone())),
            b.requires_grad()
                .then(|| Tensor::from_storage(db, b.shape().clone())),
        ]
    }
}
