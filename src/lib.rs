//! kiln: train, evaluate and predict with neural networks described in TOML files, on our own
//! tensor + autograd engine.
//!
//! Layers of the crate, each depending only on those after it (checked by
//! `tests/architecture.rs`):
//! `cli` (one file per command) → `train` (the loop), `sweep` (many runs as child processes)
//! → `run` (the run directory), `starter` (`kiln init`'s configs) → `data`
//! (datasets and their schema), `metrics` → `config` (the typed TOML) → `nn`, `loss`, `optim`
//! (models and training pieces) → `ops` (the math and its gradients) → `tensor` ⇄ `autograd`
//! (shaped data and the tape) → `backend` (where data lives, the op descriptors in
//! `backend::spec` and the kernels that compute on them). Beneath all but the backend: `files`
//! (atomic writes, digests) → `error` (the one error type; it converts the backend's
//! `DeviceError`), and `suggest` ("did you mean").

pub mod autograd;
pub mod backend;
pub mod cli;
pub mod config;
pub mod data;
pub mod dist;
pub mod error;
pub mod export;
pub mod files;
pub mod limits;
pub mod loss;
pub mod metrics;
pub mod nn;
pub mod onnx;
pub mod ops;
pub mod optim;
pub mod run;
pub mod serve;
pub mod starter;
pub mod suggest;
pub mod sweep;
pub mod table;
pub mod tensor;
pub mod train;

pub use autograd::{is_grad_enabled, no_grad, NoGradGuard};
pub use backend::cpu::{set_threads, threads};
pub use backend::{Device, Storage};
pub use error::{Error, Result};
pub use tensor::{Rng, Shape, Tensor};
