//! The hyper-parameters of one fused optimizer update.

/// One SGD step (PyTorch's `torch.optim.SGD`, dampening 0).
#[derive(Clone, Copy, Debug)]
pub struct SgdStep {
    pub lr: f32,
    pub momentum: f32,
    pub nesterov: bool,
    pub weight_decay: f32,
    /// The momentum buffer starts as the first gradient.
    pub first_step: bool,
}

/// One Adam or AdamW step (PyTorch's `torch.optim.Adam` / `AdamW`).
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// AdamW: decay the weights directly instead of adding decay to the gradient.
    pub decoupled: bool,
    /// 1 for the first step (bias correction).
    pub step: u64,
}

/// The per-step scalars of an Adam update that every element shares.
#[derive(Clone, Copy, Debug)]
pub struct AdamCorrections {
    /// lr / (1 − β₁ᵗ).
    pub step_size: f32,
    /// √(1 − β₂ᵗ).
    pub bc2_sqrt: f32,
    /// AdamW's weight factor 1 − lr·decay.
    pub decay: f32,
}

impl AdamStep {
    /// Bias corrections in f64, as PyTorch computes them from a Python float step.
    pub fn corrections(&self) -> AdamCorrections {
        let t = self.step as i32;
        let bc1 = 1.0 - (self.beta1 as f64).powi(t);
        AdamCorrections {
            step_size: (self.lr as f64 / bc1) as f32,
            bc2_sqrt: (1.0 - (self.beta2 as f64).powi(t)).sqrt() as f32,
            decay: 1.0 - self.lr * self.weight_decay,
        }
    }
}
