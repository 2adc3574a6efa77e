//! Elementwise unary ops: activations, exp/log, powers and scalar arithmetic.

pub use crate::backend::spec::Unary;

use crate::autograd::Backward;
use crate::tensor::{SharedStorage, Tensor};

impl Tensor {
    pub fn unary(&self, op: Unary) -> Tensor {
        let y = crate::tensor::share(self.storage().unary_fwd(op));
        Tensor::from_op_shared(y.clone(), self.shape().clone(), &[self], || UnaryBackward {
            op,
            y,
        })
    }

    pub fn neg(&self) -> Tensor {
        self.unary(Unary::Neg)
    }

    pub fn abs(&self) -> Tensor {
        self.unary(Unary::Abs)
    }

    pub fn exp(&self) -> Tensor {
        self.unary(Unary::Exp)
    }

    pub fn log(&self) -> Tensor {
        self.unary(Unary::Log)
    }

    pub fn sqrt(&self) -> Tensor {
        self.unary(Unary::Sqrt)
    }

    pub fn relu(&self) -> Tensor {
        self.unary(Unary::Relu)
    }

    pub fn leaky_relu(&self, slope: f32) -> Tensor {
        self.unary(Unary::LeakyRelu(slope))
    }

    pub fn gelu(&self) -> Tensor {
        self.unary(Unary::Gelu)
    }

    pub fn sigmoid(&self) -> Tensor {
        self.unary(Unary::Sigmoid)
    }

    pub fn tanh(&self) -> Tensor {
        self.unary(Unary::Tanh)
    }

    pub fn softplus(&self) -> Tensor {
        self.unary(Unary::Softplus)
    }

    pub fn clamp(&self, lo: f32, hi: f32) -> Tensor {
        self.unary(Unary::Clamp(lo, hi))
    }

    pub fn pow(&self, p: f32) -> Tensor {
        self.unary(Unary::Pow(p))
    }

    pub fn add_scalar(&self, c: f32) -> Tensor {
        self.unary(Unary::AddScalar(c))
    }

    pub fn mul_scalar(&self, c: f32) -> Tensor {
        self.unary(Unary::MulScalar(c))
    }
}

struct UnaryBackward {
    op: Unary,
    y: SharedStorage,
}

impl Backward for UnaryBackward {
    fn backward(&self, dy: &Tensor, inputs: &[Tensor]) -> Vec<Option<Tensor>> {
        let x = &inputs[0];
        let y = self.y.read().expect("storage lock");
        let dx = x.storage().unary_bwd(self.op, &y, &dy.storage());
        vec![Some(Tensor::from_storage(dx, x.shape().clone()))]
    }
}
