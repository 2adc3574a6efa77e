//! Softmax and log-softmax over one axis.

pub use crate::backend::spec::SoftmaxKind;

use crate::autograd::Backward;
use crate::tensor::{AxisDims, SharedStorage, Tensor};

impl Tensor {
    pub fn softmax_kind(&self, kind: SoftmaxKind, axis: usize) -> Tensor {
        let d = self.shape().axis_dims(axis);
        let y = crate::tensor::share(self.storage().softmax_fwd(kind, d));
        Tensor::from_op_shared(y.clone(), self.shape().clone(), &[self], || {
            SoftmaxBackward { kind, d, y }
        })
    }

    pub fn softmax(&self, axis: usize) -> Tensor {
        self.softmax_kind(SoftmaxKind::Softmax, axis)
    }

    pub fn log_softmax(&self, axis: usize) -> Tensor {
        self.softmax_kind(SoftmaxKind::LogSoftmax, axis)
    }
}

struct SoftmaxBackward {
    kind: SoftmaxKind,
    d: AxisDims,
    y: SharedStorage,
}

impl Backward for SoftmaxBackward {
    fn backward(&self, dy: &Tensor, inputs: &[Tensor]) -> Vec<Option<Tensor>> {
        let y = self.y.read().expect("storage lock");
        let dx = y.softmax_bwd(self.kind, &dy.storage(), self.d);
        vec![Some(Tensor::from_storage(dx, inputs[0].shape().clone()))]
    }
}
