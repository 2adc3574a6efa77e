//! Every op of the engine, one family per file. Each file holds the op's enum entry, the
//! `Tensor` method that runs its forward on the tensor's backend, and its backward rule right
//! under it. The backends (`crate::backend`) hold the kernels.
//!
//! Errors: ops check shapes and panic with both shapes on a mismatch. Models check shapes once
//! when they are built, so a mismatch reaching an op is a bug, not bad input.

pub mod bias;
pub mod binary;
pub mod conv;
pub mod layout;
pub mod loss;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod recurrent;
pub mod reduce;
pub mod softmax;
pub mod unary;

pub use binary::Binary;
pub use pool::Pool;
pub use reduce::Reduce;
pub use softmax::SoftmaxKind;
pub use unary::Unary;
