//! Sum, mean and max over one axis or over everything.

pub use crate::backend::spec::Reduce;

use crate::autograd::Backward;
use crate::tensor::{AxisDims, Shape, SharedStorage, Tensor};

impl Tensor {
    /// Reduce over `axis`; with `keepdim` the axis stays with length 1 (as in PyTorch).
    pub fn reduce(&self, op: Reduce, axis: usize, keepdim: bool) -> Tensor {
        let d = self.shape().axis_dims(axis);
        let y = crate::tensor::share(self.storage().reduce_fwd(op, d));
        let shape = self.shape().with_axis(axis, keepdim.then_some(1));
        Tensor::from_op_shared(y.clone(), shape, &[self], || ReduceBackward { op, d, y })
    }

    /// Reduce over every element into a scalar (shape `[]`).
    pub fn reduce_all(&self, op: Reduce) -> Tensor {
        self.reshape([self.numel()]).reduce(op, 0, false)
    }

    pub fn sum(&self, axis: usize, keepdim: bool) -> Tensor {
        self.reduce(Reduce::Sum, axis, keepdim)
    }

    pub fn mean(&self, axis: usize, keepdim: bool) -> Tensor {
        self.reduce(Reduce::Mean, axis, keepdim)
    }

    pub fn max(&self, axis: usize, keepdim: bool) -> Tensor {
        self.reduce(Reduce::Max, axis, keepdim)
    }

    pub fn sum_all(&self) -> Tensor {
        self.reduce_all(Reduce::Sum)
    }

    pub fn mean_all(&self) -> Tensor {
        self.reduce_all(Reduce::Mean)
    }

    pub fn max_all(&self) -> Tensor {
        self.reduce_all(Reduce::Max)
    }

    /// Sum a broadcast result back to `target`, the shape it was broadcast from.
    pub fn sum_to(&self, target: &Shape) -> Tensor {
        if self.shape() == target {
            return self.clone();
        }
        let extra = self.rank() - target.rank();
        let mut t = self.clone();
        for axis in 0..self.rank() {
            let stretched = axis < extra || target.dim(axis - extra) == 1;
            if stretched && t.dims()[axis] != 1 {
                t = t.sum(axis, true);
            }
        }
        t.reshape(target.clone())
    }
}

struct ReduceBackward {
    op: Reduce,
    d: AxisDims,
    y: SharedStorage,
}

impl Backward for ReduceBackward {
    fn backward(&self, dy: &Tensor, inputs: &[Tensor]) -> Vec<Option<Tensor>> {
        let x = &inputs[0];
        let dx = match self.op {
            Reduce::Sum => dy.storage().expand_axis(self.d),
            Reduce::Mean => dy
                .storage()
                .expand_axis(self.d)
                .unary_fwd(crate::ops::Unary::MulScalar(1.0 / self.d.len as f32)),
            Reduce::Max => {
                let y = self.y.read().expect("storage lock");
                x.storage().max_bwd(&y, &dy.storage(), self.d)
            }
        };
        vec![Some(Tensor::from_storage(dx, x.shape().clone()))]
    }
}
