//! Define-by-run reverse-mode autodiff, as in PyTorch.
//!
//! While gradients are enabled, every op whose inputs require gradients records a [`Node`] on its
//! output: the inputs and a [`Backward`] that maps the output's gradient to theirs. Tensor ids
//! grow in execution order, so the nodes reachable from a loss, sorted by id from the newest,
//! are the tape walked in reverse. Gradients reach leaves through `Tensor::grad` and accumulate
//! until `zero_grad`. Backward passes run without recording (no higher-order gradients).

use std::cell::Cell;
use std::collections::{HashMap, HashSet};

use crate::tensor::Tensor;

/// An op's gradient rule.
pub trait Backward: Send + Sync {
    /// The gradient of each input, in order, given the output's gradient `dy`; `None` for an
    /// input that does not require one (skipping it skips its work).
    fn backward(&self, dy: &Tensor, inputs: &[Tensor]) -> Vec<Option<Tensor>>;
}

/// How a tensor was computed.
pub(crate) struct Node {
    pub inputs: Vec<Tensor>,
    pub backward: Box<dyn Backward>,
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(Cell::get)
}

/// While alive, ops record nothing (evaluation, prediction, optimizer updates).
pub struct NoGradGuard {
    previous: bool,
}

pub fn no_grad() -> NoGradGuard {
    let previous = GRAD_ENABLED.with(|g| g.replace(false));
    NoGradGuard { previous }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

impl Tensor {
    /// Back-propagate from this one-element tensor into the `grad` of every leaf that requires
    /// gradients and that it depends on.
    pub fn backward(&self) {
        assert_eq!(
            self.numel(),
            1,
            "backward() needs a one-element tensor, got shape {}",
            self.shape()
        );
        if !self.requires_grad() {
            return;
        }
        let _guard = no_grad();
        let seed = Tensor::full_on(self.shape().clone(), 1.0, self.device());
        if self.is_leaf() {
            self.accumulate_grad(seed);
            return;
        }
        let mut pending: HashMap<u64, Tensor> = HashMap::from([(self.id(), seed)]);
        for t in tape(self) {
            let Some(dy) = pending.remove(&t.id()) else {
                continue;
            };
            let node = t.node().expect("tape holds only op outputs");
            let grads = node.backward.backward(&dy, &node.inputs);
            for (input, g) in node.inputs.iter().zip(grads) {
                let Some(g) = g else { continue };
                if !input.requires_grad() {
                    continue;
                }
                debug_assert_eq!(g.shape(), input.shape(), "gradient shape of an input");
                if input.is_leaf() {
                    input.accumulate_grad(g);
                } else if let Some(prev) = pending.remove(&input.id()) {
                    pending.insert(input.id(), prev.add(&g));
                } else {
                    pending.insert(input.id(), g);
                }
            }
        }
    }
}

/// The op outputs `root` depends on, newest first: each appears after everything that uses it.
fn tape(root: &Tensor) -> Vec<Tensor> {
    let mut seen = HashSet::from([root.id()]);
    let mut stack = vec![root.clone()];
    let mut nodes = Vec::new();
    while let Some(t) = stack.pop() {
        if let Some(node) = t.node() {
            for input in &node.inputs {
                if input.requires_grad() && seen.insert(input.id()) {
                    stack.push(input.clone());
                }
            }
            nodes.push(t);
        }
    }
    nodes.sort_unstable_by_key(|t| std::cmp::Reverse(t.id()));
    nodes
}
