//! What the kernels are told: the op enums they switch on and the plain extents, geometries and
//! hyper-parameters they take. One file per op family, named like the CPU kernels
//! (`backend/cpu/<family>.rs`) and the CUDA sources (`kernels/<family>.cu`). Nothing here knows
//! about tensors or autograd: `crate::ops` builds these from shapes and re-exports them.

mod binary;
mod conv;
mod matmul;
mod optim;
mod pool;
mod recurrent;
mod reduce;
mod softmax;
mod unary;

pub use binary::{broadcast_strides, Binary, BroadcastPlan};
pub use conv::{Conv2dGeom, ConvGrads};
pub use matmul::MatmulSpec;
pub use optim::{AdamCorrections, AdamStep, SgdStep};
pub use pool::Pool;
pub use recurrent::{LstmDims, LstmSeqDims};
pub use reduce::Reduce;
pub use softmax::SoftmaxKind;
pub use unary::Unary;

/// A tensor viewed as `[outer, len, inner]` around one axis: what axis reductions, softmax,
/// slicing and concatenation iterate over on every backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxisDims {
    pub outer: usize,
    pub len: usize,
    pub inner: usize,
}

impl AxisDims {
    pub fn numel(&self) -> usize {
        self.outer * self.len * self.inner
    }
}

/// An op family whose members a kernel picks by code. Codes are generated from this list for
/// the CUDA sources (`#define UNARY_LEAKY_RELU 6`, see `backend/cuda/kernels.rs`), so a kernel
/// and the Rust enum cannot disagree, and a member a kernel does not handle is caught by a test.
pub trait OpCode: Copy + 'static {
    /// The prefix of the family's codes in the kernels (`UNARY`).
    const FAMILY: &'static str;
    /// Every member, with representative constants (tests loop over the same list).
    fn all() -> &'static [Self];
    /// The member's name, the same whatever constants it carries (`leaky_relu`).
    fn name(self) -> &'static str;

    /// The member's code: its name's position among the family's distinct names.
    fn code(self) -> i32 {
        let name = self.name();
        distinct_names::<Self>()
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("{} {name} is missing from its ALL list", Self::FAMILY))
            as i32
    }
}

/// The family's distinct member names, in `all()` order.
pub fn distinct_names<T: OpCode>() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for op in T::all() {
        if !names.contains(&op.name()) {
            names.push(op.name());
        }
    }
    names
}
