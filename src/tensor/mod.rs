//! The tensor: a cheap-to-clone handle to shaped data plus its place in the autograd graph.

mod random;
mod shape;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use random::{Rng, Stream};
pub use shape::{AxisDims, Shape};

use crate::autograd::{self, Backward, Node};
use crate::backend::{Device, DeviceError, Storage};

/// Data shared between tensors that view it whole (a reshape shares its input's data).
pub(crate) type SharedStorage = Arc<RwLock<Storage>>;

/// Wrap freshly computed data for sharing between a tensor and the backward rule that saves it.
pub(crate) fn share(storage: Storage) -> SharedStorage {
    Arc::new(RwLock::new(storage))
}

/// Ids come from one counter, so a tensor made by an op always has a larger id than its inputs:
/// sorting by id gives the tape's execution order.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// An n-dimensional f32 array. Cloning is cheap (a reference count); ops return new tensors.
#[derive(Clone)]
pub struct Tensor(Arc<Inner>);

struct Inner {
    id: u64,
    shape: Shape,
    storage: SharedStorage,
    requires_grad: bool,
    /// How this tensor was computed; `None` for leaves (inputs and parameters).
    node: Option<Node>,
    /// Accumulated gradient of a leaf that requires it.
    grad: Mutex<Option<Tensor>>,
}

impl Tensor {
    fn build(
        storage: SharedStorage,
        shape: Shape,
        requires_grad: bool,
        node: Option<Node>,
    ) -> Self {
        debug_assert_eq!(storage.read().unwrap().len(), shape.numel());
        Tensor(Arc::new(Inner {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shape,
            storage,
            requires_grad,
            node,
            grad: Mutex::new(None),
        }))
    }

    /// A leaf tensor holding `storage`.
    pub fn from_storage(storage: Storage, shape: impl Into<Shape>) -> Tensor {
        let shape = shape.into();
        assert_eq!(
            storage.len(),
            shape.numel(),
            "{} values do not fill shape {shape}",
            storage.len()
        );
        Tensor::build(share(storage), shape, false, None)
    }

    /// The result of an op: records `backward` on the tape when gradients are enabled and an
    /// input requires them.
    pub(crate) fn from_op<B: Backward + 'static>(
        storage: Storage,
        shape: Shape,
        inputs: &[&Tensor],
        backward: impl FnOnce() -> B,
    ) -> Tensor {
        Tensor::from_op_shared(share(storage), shape, inputs, backward)
    }

    pub(crate) fn from_op_shared<B: Backward + 'static>(
        storage: SharedStorage,
        shape: Shape,
        inputs: &[&Tensor],
        backward: impl FnOnce() -> B,
    ) -> Tensor {
        let record = autograd::is_grad_enabled() && inputs.iter().any(|t| t.requires_grad());
        let node = record.then(|| Node {
            inputs: inputs.iter().map(|&t| t.clone()).collect(),
            backward: Box::new(backward()),
        });
        Tensor::build(storage, shape, record, node)
    }

    pub fn from_vec(data: Vec<f32>, shape: impl Into<Shape>) -> Tensor {
        Tensor::from_storage(Storage::from_vec(Device::Cpu, data), shape)
    }

    pub fn scalar(value: f32) -> Tensor {
        Tensor::from_vec(vec![value], Shape::scalar())
    }

    pub fn full(shape: impl Into<Shape>, value: f32) -> Tensor {
        Tensor::full_on(shape, value, Device::Cpu)
    }

    pub fn full_on(shape: impl Into<Shape>, value: f32, device: Device) -> Tensor {
        let shape = shape.into();
        Tensor::from_storage(Storage::full(device, shape.numel(), value), shape)
    }

    pub fn zeros(shape: impl Into<Shape>) -> Tensor {
        Tensor::full(shape, 0.0)
    }

    pub fn zeros_on(shape: impl Into<Shape>, device: Device) -> Tensor {
        Tensor::full_on(shape, 0.0, device)
    }

    /// This tensor's data on `device`: a leaf copy (as PyTorch's `.to(device)` on data), or this
    /// tensor itself when it is already there.
    pub fn to_device(&self, device: Device) -> Tensor {
        if self.device() == device {
            return self.clone();
        }
        let storage = self.storage().to_device(device);
        Tensor::build(share(storage), self.shape().clone(), false, None)
    }

    /// Move a leaf's data to `device` in place, keeping its identity (parameters that an
    /// optimizer already holds, buffers).
    pub fn move_to(&self, device: Device) {
        if self.device() != device {
            let moved = self.storage().to_device(device);
            *self.storage_mut() = moved;
        }
    }

    pub fn ones(shape: impl Into<Shape>) -> Tensor {
        Tensor::full(shape, 1.0)
    }

    /// Uniform in [low, high).
    pub fn rand_uniform(shape: impl Into<Shape>, low: f32, high: f32, rng: &mut Rng) -> Tensor {
        let shape = shape.into();
        let data = (0..shape.numel())
            .map(|_| low + (high - low) * rng.uniform())
            .collect();
        Tensor::from_vec(data, shape)
    }

    /// Normal with the given mean and standard deviation.
    pub fn randn(shape: impl Into<Shape>, mean: f32, std: f32, rng: &mut Rng) -> Tensor {
        let shape = shape.into();
        let data = (0..shape.numel())
            .map(|_| mean + std * rng.normal())
            .collect();
        Tensor::from_vec(data, shape)
    }

    /// This leaf, marked as needing a gradient (a parameter). Like PyTorch's `requires_grad_()`,
    /// only leaves may be marked.
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad
    }

    pub fn with_requires_grad(self) -> Tensor {
        assert!(
            self.is_leaf(),
            "only leaf tensors can be marked as requiring gradients"
        );
        Tensor::build(self.0.storage.clone(), self.0.shape.clone(), true, None)
    }

    /// The same data, cut from the graph: no gradient flows through the result.
    pub fn detach(&self) -> Tensor {
        Tensor::build(self.0.storage.clone(), self.0.shape.clone(), false, None)
    }

    pub fn shape(&self) -> &Shape {
        &self.0.shape
    }

    pub fn dims(&self) -> &[usize] {
        self.0.shape.dims()
    }

    pub fn rank(&self) -> usize {
        self.0.shape.rank()
    }

    pub fn numel(&self) -> usize {
        self.0.shape.numel()
    }

    pub fn device(&self) -> Device {
        self.storage().device()
    }

    pub fn is_leaf(&self) -> bool {
        self.0.node.is_none()
    }

    pub(crate) fn id(&self) -> u64 {
        self.0.id
    }

    pub(crate) fn node(&self) -> Option<&Node> {
        self.0.node.as_ref()
    }

    pub fn storage(&self) -> RwLockReadGuard<'_, Storage> {
        self.0.storage.read().expect("tensor storage lock poisoned")
    }

    /// Write access to the data, outside autograd: for optimizer updates and loading weights.
    /// Writing a tensor that a live graph saved for its backward pass gives that backward pass
    /// the new values, as in PyTorch without its version check.
    pub fn storage_mut(&self) -> RwLockWriteGuard<'_, Storage> {
        self.0
            .storage
            .write()
            .expect("tensor storage lock poisoned")
    }

    pub(crate) fn shared_storage(&self) -> &SharedStorage {
        &self.0.storage
    }

    /// The data on the host, or the failure of the CUDA device it was computed on: a sync point
    /// (device errors of the ops before it surface here, as CUDA's own asynchronous errors do).
    pub fn try_to_vec(&self) -> Result<Vec<f32>, DeviceError> {
        self.storage().try_to_vec()
    }

    /// The data on the host.
    ///
    /// # Panics
    /// When the CUDA device has failed, with its error; `try_to_vec` returns it instead.
    pub fn to_vec(&self) -> Vec<f32> {
        self.storage().to_vec()
    }

    /// The value of a one-element tensor, or the device's failure (see `try_to_vec`).
    ///
    /// # Panics
    /// When the tensor does not hold exactly one element.
    pub fn try_item(&self) -> Result<f32, DeviceError> {
        assert_eq!(
            self.numel(),
            1,
            "item() of a tensor of shape {}",
            self.shape()
        );
        Ok(self.try_to_vec()?[0])
    }

    /// The value of a one-element tensor.
    ///
    /// # Panics
    /// When the tensor does not hold exactly one element, or when the CUDA device has failed
    /// (with its error; `try_item` returns it instead).
    pub fn item(&self) -> f32 {
        self.try_item().unwrap_or_else(|e| panic!("CUDA: {e}"))
    }

    /// The gradient accumulated by `backward()` (leaves that require gradients only).
    pub fn grad(&self) -> Option<Tensor> {
        self.0.grad.lock().expect("grad lock poisoned").clone()
    }

    /// Replace the gradient (a data-parallel step writes the ranks' average here).
    pub fn set_grad(&self, g: Tensor) {
        *self.0.grad.lock().expect("grad lock poisoned") = Some(g);
    }

    /// Forget the accumulated gradient, as PyTorch's `zero_grad(set_to_none=True)`.
    pub fn zero_grad(&self) {
        *self.0.grad.lock().expect("grad lock poisoned") = None;
    }

    pub(crate) fn accumulate_grad(&self, g: Tensor) {
        let mut slot = self.0.grad.lock().expect("grad lock poisoned");
        *slot = Some(match slot.take() {
            Some(prev) => prev.add(&g),
            None => g,
        });
    }
}

/// Dropping a graph unlinks it through a work list instead of recursing input by input, so a
/// long chain of ops (an RNN over many steps, say) cannot overflow the stack.
impl Drop for Inner {
    fn drop(&mut self) {
        let Some(node) = self.node.take() else {
            return;
        };
        let mut orphans = node.inputs;
        while let Some(t) = orphans.pop() {
            if let Ok(mut inner) = Arc::try_unwrap(t.0) {
                if let Some(node) = inner.node.take() {
                    orphans.extend(node.inputs);
                }
            }
        }
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data = match self.try_to_vec() {
            Ok(data) => data,
            Err(e) => return write!(f, "Tensor(shape={}, CUDA: {e})", self.shape()),
        };
        let shown = &data[..data.len().min(8)];
        write!(f, "Tensor(shape={}, data={shown:?}", self.shape())?;
        if data.len() > shown.len() {
            write!(f, "...")?;
        }
        write!(f, ", requires_grad={})", self.requires_grad())
    }
}
