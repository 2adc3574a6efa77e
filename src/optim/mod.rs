//! Optimizers. Each update is one fused loop per parameter on the backend that holds it
//! (`Backend::sgd_update`, `Backend::adam_update`), with PyTorch's arithmetic. State slots are
//! named (`momentum`; `m`, `v`) because checkpoints store them as `optim.<param>.<slot>`.

pub mod schedule;

pub use crate::backend::spec::{AdamCorrections, AdamStep, SgdStep};

use crate::autograd::no_grad;
use crate::tensor::Tensor;

/// Which update rule, with its own hyper-parameters (the config's `[optimizer]` table, whose
/// `type` picks the variant; learning rate and weight decay are common to all).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OptimizerKind {
    Sgd { momentum: f32, nesterov: bool },
    Adam { beta1: f32, beta2: f32, eps: f32 },
    Adamw { beta1: f32, beta2: f32, eps: f32 },
}

impl OptimizerKind {
    pub fn slots(self) -> &'static [&'static str] {
        match self {
            OptimizerKind::Sgd { momentum: 0.0, .. } => &[],
            OptimizerKind::Sgd { .. } => &["momentum"],
            OptimizerKind::Adam { .. } | OptimizerKind::Adamw { .. } => &["m", "v"],
        }
    }
}

pub struct Optimizer {
    kind: OptimizerKind,
    weight_decay: f32,
    params: Vec<(String, Tensor)>,
    /// Per parameter, one tensor per slot of `kind.slots()`.
    state: Vec<Vec<Tensor>>,
    steps: u64,
}

impl Optimizer {
    pub fn new(kind: OptimizerKind, weight_decay: f32, params: Vec<(String, Tensor)>) -> Self {
        let state = params
            .iter()
            .map(|(_, p)| {
                kind.slots()
                    .iter()
                    .map(|_| Tensor::zeros_on(p.shape().clone(), p.device()))
                    .collect()
            })
            .collect();
        Optimizer {
            kind,
            weight_decay,
            params,
            state,
            steps: 0,
        }
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Continue counting from `steps` (state shared from another process).
    pub fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }

    /// Update every parameter that has a gradient, at learning rate `lr`.
    pub fn step(&mut self, lr: f32) {
        let _guard = no_grad();
        self.steps += 1;
        for ((_, p), slots) in self.params.iter().zip(&self.state) {
            let Some(g) = p.grad() else { continue };
            let (g, mut param) = (g.storage(), p.storage_mut());
            match self.kind {
                OptimizerKind::Sgd { momentum, nesterov } => {
                    let step = SgdStep {
                        lr,
                        momentum,
                        nesterov,
                        weight_decay: self.weight_decay,
                        first_step: self.steps == 1,
                    };
                    let mut buf = slots.first().map(|t| t.storage_mut());
                    param.sgd_update(&g, buf.as_deref_mut(), &step);
                }
                OptimizerKind::Adam { beta1, beta2, eps }
                | OptimizerKind::Adamw { beta1, beta2, eps } => {
                    let step = AdamStep {
                        lr,
                        beta1,
                        beta2,
                        eps,
                        weight_decay: self.weight_decay,
                        decoupled: matches!(self.kind, OptimizerKind::Adamw { .. }),
                        step: self.steps,
                    };
                    let (mut m, mut v) = (slots[0].storage_mut(), slots[1].storage_mut());
                    param.adam_update(&g, &mut m, &mut v, &step);
                }
            }
        }
    }

    pub fn zero_grad(&self) {
        for (_, p) in &self.params {
            p.zero_grad();
        }
    }

    /// State tensors named `optim.<param>.<slot>`, for checkpoints.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let slots = self.kind.slots();
        self.params
            .iter()
            .zip(&self.state)
            .flat_map(|((name, _), tensors)| {
                tensors
                    .iter()
                    .zip(slots)
                    .map(move |(t, slot)| (format!("optim.{name}.{slot}"), t.clone()))
            })
            .collect()
    }

    /// Restore state saved by `state()` and the step count; `lookup` finds a tensor by name.
    pub fn load_state(
        &mut self,
        steps: u64,
        mut lookup: impl FnMut(&str) -> Option<Vec<f32>>,
    ) -> Result<(), String> {
        for (name, t) in self.state() {
            let data = lookup(&name).ok_or_else(|| format!("missing tensor {name}"))?;
            if data.len() != t.numel() {
                return Err(format!(
                    "{name} has {} values, expected {}",
                    data.len(),
                    t.numel()
                ));
            }
            *t.storage_mut() = crate::backend::Storage::from_vec(t.device(), data);
        }
        self.steps = steps;
        Ok(())
    }
}

/// Scale all gradients so their joint L2 norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`, with its 1e-6 guard). Returns the norm before clipping.
pub fn clip_grad_norm(params: &[(String, Tensor)], max_norm: f32) -> f32 {
    let _guard = no_grad();
    let grads: Vec<&Tensor> = params.iter().map(|(_, p)| p).collect();
    let total: f32 = grads
        .iter()
        .filter_map(|p| p.grad())
        .map(|g| g.mul(&g).sum_all().item())
        .sum::<f32>()
        .sqrt();
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        for p in grads {
            if let Some(g) = p.grad() {
                p.zero_grad();
                p.accumulate_grad(g.mul_scalar(coef));
            }
        }
    }
    total
}
