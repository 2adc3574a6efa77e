//! Elementwise binary ops with NumPy broadcasting: shapes are aligned from the right and a
//! dimension of 1 (or a missing one) stretches to match. The gradient of a broadcast operand is
//! summed back to its shape.

use crate::autograd::Backward;
use crate::tensor::{Shape, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
}

impl Binary {
    pub const ALL: &'static [Binary] = &[Binary::Add, Binary::Sub, Binary::Mul, Binary::Div];
}

/// How two operands are read while broadcast to the output, with adjacent dimensions that step
/// alike merged (a per-channel `[N, C, H, W] · [1, C, 1, 1]` becomes `[N, C, H·W]`), so kernels
/// loop over as few dimensions as possible. Backends share it.
#[derive(Clone, Debug)]
pub struct BroadcastPlan {
    /// Merged output dimensions (at least one).
    pub dims: Vec<usize>,
    /// Element strides of each operand per merged dimension; 0 where it is broadcast.
    pub a_strides: Vec<usize>,
    pub b_strides: Vec<usize>,
    pub out_len: usize,
}

impl BroadcastPlan {
    pub fn new(a: &Shape, b: &Shape, out: &Shape) -> BroadcastPlan {
        let (sa, sb) = (a.broadcast_strides(out), b.broadcast_strides(out));
        let (mut dims, mut a_strides, mut b_strides): (Vec<usize>, Vec<usize>, Vec<usize>) =
            (Vec::new(), Vec::new(), Vec::new());
        for (i, &d) in out.dims().iter().enumerate() {
            if d == 1 {
                continue;
            }
            if let Some(last) = dims.len().checked_sub(1) {
                if a_strides[last] == sa[i] * d && b_strides[last] == sb[i] * d {
                    dims[last] *= d;
                    a_strides[last] = sa[i];
                    b_strides[last] = sb[i];
                    continue;
                }
            }
            dims.push(d);
            a_strides.push(sa[i]);
            b_strides.push(sb[i]);
        }
        if dims.is_empty() {
            (dims, a_strides, b_strides) = (vec![1], vec![0], vec![0]);
        }
        BroadcastPlan {
            dims,
            a_strides,
            b_strides,
            out_len: out.numel(),
        }
    }

    /// Both operands have the output's shape: a plain zip.
    pub fn is_elementwise(&self) -> bool {
        self.dims.len() == 1 && self.a_strides[0] == 1 && self.b_strides[0] == 1
    }

    /// Offsets into a and b of the first element of output row `row` (rows run along the last
    /// merged dimension).
    pub fn row_offsets(&self, row: usize) -> (usize, usize) {
        let (mut oa, mut ob, mut rest) = (0, 0, row);
        for ax in (0..self.dims.len() - 1).rev() {
            let i = rest % self.dims[ax];
            rest /= self.dims[ax];
            oa += i * self.a_strides[ax];
            ob += i * self.b_strides[ax];
        }
        (oa, ob)
    }
}

impl Tensor {
    pub fn binary(&self, op: Binary, other: &Tensor) -> Tensor {
        let out = Shape::broadcast(self.shape(), other.shape()).unwrap_or_else(|| {
            panic!(
                "{op:?}: shapes {} and {} do not broadcast",
                self.shape(),
                other.shape()
            )
        });
        assert_eq!(
            self.device(),
            other.device(),
            "{op:?}: operands on different devices"
        );
        let plan = BroadcastPlan::new(self.shape(), other.shape(), &out);
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
