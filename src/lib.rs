//! kiln: train, evaluate and predict with neural networks described in TOML files, on our own
//! tensor + autograd engine.
//!
//! Layers of the crate, each depending only on those after it:
//! `nn`, `loss`, `optim`, `config` (models and training pieces) → `ops` (the math and its
//! gradients) → `autograd` (the tape) and `tensor` (shaped data) → `backend` (where data lives
//! and the kernels that compute on it).

pub mod autograd;
pub mod backend;
pub mod cli;
pub mod config;
pub mod data;
pub mod error;
pub mod loss;
pub mod metrics;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod run;
pub mod tensor;
pub mod train;

pub use autograd::{is_grad_enabled, no_grad, NoGradGuard};
pub use backend::cpu::{set_threads, threads};
pub use backend::{Device, Storage};
pub use error::{Error, Result};
pub use tensor::{Rng, Shape, Tensor};
