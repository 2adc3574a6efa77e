//! kiln: train, evaluate and predict with neural networks described in TOML files, on our own
//! tensor + autograd engine.
//!
//! Layers of the crate, each depending only on those after it:
//! `ops` (the math and its gradients) → `autograd` (the tape) and `tensor` (shaped data) →
//! `backend` (where data lives and the kernels that compute on it).

pub mod autograd;
pub mod backend;
pub mod ops;
pub mod tensor;

pub use autograd::{is_grad_enabled, no_grad, NoGradGuard};
pub use backend::cpu::{set_threads, threads};
pub use backend::{Device, Storage};
pub use tensor::{Rng, Shape, Tensor};
