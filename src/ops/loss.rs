//! Losses: the fused softmax + cross-entropy over class indices, and mean squared error.

use crate::autograd::Backward;
use crate::tensor::{Shape, Tensor};

impl Tensor {
    /// Mean over the batch of `-log softmax(self)[target]`, for logits `[n, classes]` and
    /// `targets` `[n]` holding class indices (as f32). One fused, max-shifted kernel: stable for
    /// any logits, as PyTorch's `cross_entropy`.
    pub fn cross_entropy(&self, targets: &Tensor) -> Tensor {
        assert!(
            self.rank() == 2 && targets.dims() == [self.dims()[0]],
            "cross_entropy: logits {} need targets [{}], got {}",
            self.shape(),
            self.dims().first().copied().unwrap_or(0),
            targets.shape()
        );
        let (n, c) = (self.dims()[0], self.dims()[1]);
        let y = self.storage().cross_entropy_fwd(&targets.storage(), n, c);
        Tensor::from_op(y, Shape::scalar(), &[self, targets], || {
            CrossEntropyBackward { n, c }
        })
    }

    /// Mean over all elements of `(self - target)²`.
    pub fn mse(&self, target: &Tensor) -> Tensor {
        let diff = self.sub(target);
        diff.mul(&diff).mean_all()
    }
}

struct CrossEntropyBackward {
    n: usize,
    c: usize,
}

impl Backward for CrossEntropyBackward {
    fn backward(&self, dy: &Tensor, inputs: &[Tensor]) -> Vec<Option<Tensor>> {
        let (logits, targets) = (&inputs[0], &inputs[1]);
        let dx =
            logits
                .storage()
                .cross_entropy_bwd(&targets.storage(), &dy.storage(), self.n, self.c);
        // Class indices are not differentiable.
        vec![Some(Tensor::from_storage(dx, logits.shape().clone())), None]
    }
}
