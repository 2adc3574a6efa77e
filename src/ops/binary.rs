//! Elementwise binary ops with NumPy broadcasting: shapes are aligned from the right and a
//! dimension of 1 (or a missing one) stretches to match. The gradient of a broadcast operand is
//! summed back to its shape.

pub use crate::backend::spec::{Binary, BroadcastPlan};

use crate::autograd::Backward;
use crate::tensor::{Shape, Tensor};

impl Tensor {
    pub fn binary(&self, op: Binary, other: &Tensor) -> Tensor {
        let out = Shape::broadcast(self.shape(), other.shape()).unwrap_or_else(|| {
            panic!(
                "{op:?}: shapes {} and {} do not broadcast",
                self.shape(),
                other.shape()
            )
        });
        let plan = BroadcastPlan::new(self.dims(), other.dims(), out.dims());
        let y = self.storage().binary_fwd(op, &other.storage(), &plan);
        Tensor::from_op(y, out, &[self, other], || BinaryBackward { op })
    }

    pub fn add(&self, other: &Tensor) -> Tensor {
        self.binary(Binary::Add, other)
    }

    pub fn sub(&self, other: &Tensor) -> Tensor {
        self.binary(Binary::Sub, other)
    }

    pub fn mul(&self, other: &Tensor) -> Tensor {
        self.binary(Binary::Mul, other)
    }

    pub fn div(&self, other: &Tensor) -> Tensor {
        self.binary(Binary::Div, other)
    }
}

struct BinaryBackward {
    op: Binary,
}

impl Backward for BinaryBackward {
    fn backward(&self, dy: &Tensor, inputs: &[Tensor]) -> Vec<Option<Tensor>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        // Each operand's gradient at the output's (broadcast) shape, computed only when needed.
        let (da, db): (Option<Tensor>, Option<Tensor>) = match self.op {
            Binary::Add => (Some(dy.clone()), Some(dy.clone())),
            Binary::Sub => (Some(dy.clone()), b.requires_grad().then(|| dy.neg())),
            Binary::Mul => (
                a.requires_grad().then(|| dy.mul(b)),
                b.requires_grad().then(|| dy.mul(a)),
            ),
            // d(a/b)/da = 1/b; d(a/b)/db = -a/b² = -(1/b)·(a/b)
            Binary::Div => {
                let dy_over_b = dy.div(b);
                let db = b.requires_grad().then(|| dy_over_b.mul(a).div(b).neg());
                (Some(dy_over_b), db)
            }
        };
        vec![
            da.filter(|_| a.requires_grad())
                .map(|g| g.sum_to(a.shape())),
            db.filter(|_| b.requires_grad())
                .map(|g| g.sum_to(b.shape())),
        ]
    }
}

macro_rules! operator {
    ($trait:ident, $method:ident, $op:expr) => {
        impl std::ops::$trait<&Tensor> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                self.binary($op, rhs)
            }
        }
    };
}

operator!(Add, add, Binary::Add);
operator!(Sub, sub, Binary::Sub);
operator!(Mul, mul, Binary::Mul);
operator!(Div, div, Binary::Div);

impl std::ops::Neg for &Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        Tensor::neg(self)
    }
}
