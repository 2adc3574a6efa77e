//! Tensor data on a device, and the dispatch of each primitive to the backend that holds it.

use std::fmt;

use cudarc::driver::CudaSlice;

use super::cpu::Cpu;
use super::cuda::{self, Cuda};
use super::spec::{
    AdamStep, AxisDims, Binary, BroadcastPlan, Conv2dGeom, ConvGrads, LstmDims, LstmSeqDims,
    MatmulSpec, Pool, Reduce, SgdStep, SoftmaxKind, Unary,
};
use super::Backend;

/// Where a tensor's data lives. A process uses at most one CUDA device (the one
/// `cuda::open` opened), so the variant needs no ordinal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda,
}

/// A failure on the CUDA device (out of memory, a faulting kernel, a failed copy), reported at a
/// sync point: `Device::check`, `Storage::try_to_vec`. The device stays failed: later work is
/// skipped and reads back NaN, so the caller should stop and report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceError(pub String);

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeviceError {}

/// The CUDA device's first failure so far, without waiting for queued work.
fn cuda_error() -> Option<DeviceError> {
    cuda::gpu().error().map(|e| DeviceError(e.to_string()))
}

impl Device {
    /// Wait for the work queued so far (for timing; the CPU's ops finish before they return)
    /// and report the device's first failure, if any (always `Ok` on the CPU).
    pub fn check(self) -> Result<(), DeviceError> {
        match self {
            Device::Cpu => Ok(()),
            Device::Cuda => cuda::gpu().check().map_err(DeviceError),
        }
    }

    /// `cpu` or `cuda:N`, as run.json and the log name it.
    pub fn name(self) -> String {
        match self {
            Device::Cpu => "cpu".into(),
            Device::Cuda => format!("cuda:{}", cuda::gpu().ordinal),
        }
    }
}

/// Tensor data on one device: always dense, contiguous, row-major f32.
#[derive(Debug)]
pub enum Storage {
    Cpu(Vec<f32>),
    Cuda(CudaSlice<f32>),
}

impl Clone for Storage {
    fn clone(&self) -> Storage {
        match self {
            Storage::Cpu(v) => Storage::Cpu(v.clone()),
            Storage::Cuda(s) => Storage::Cuda(cuda::duplicate(s)),
        }
    }
}

/// The one device check: every primitive's operands must share a device. Operands on different
/// devices come only from a bug in a model or an op (data and weights are moved together before
/// a model runs), so this panics with the primitive and the devices.
fn mixed_devices(primitive: &str, devices: &[Device]) -> ! {
    panic!("{primitive}: operands on different devices {devices:?}")
}

/// Dispatch a primitive to the backend holding the operands; mixed devices are refused here.
macro_rules! dispatch {
    ($name:ident ( $($arg:expr),* ) ; $($buf:ident = $val:expr),+) => {
        #[allow(unreachable_patterns)] // the mixed arm, for one operand
        match ($($val,)+) {
            ($(Storage::Cpu($buf),)+) => Storage::Cpu(Cpu::$name($($arg),*)),
            ($(Storage::Cuda($buf),)+) => Storage::Cuda(Cuda::$name($($arg),*)),
            _ => mixed_devices(stringify!($name), &[$($val.device()),+]),
        }
    };
}

impl Storage {
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Cuda(_) => Device::Cuda,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Storage::Cpu(v) => v.len(),
            Storage::Cuda(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn full(device: Device, len: usize, value: f32) -> Storage {
        match device {
            Device::Cpu => Storage::Cpu(Cpu::full(len, value)),
            Device::Cuda => Storage::Cuda(Cuda::full(len, value)),
        }
    }

    pub fn from_vec(device: Device, data: Vec<f32>) -> Storage {
        match device {
            Device::Cpu => Storage::Cpu(data),
            Device::Cuda => Storage::Cuda(cuda::upload(&data)),
        }
    }

    /// A host copy of the data (the only place data leaves a device), or the device's failure:
    /// a sync point.
    pub fn try_to_vec(&self) -> Result<Vec<f32>, DeviceError> {
        match self {
            Storage::Cpu(v) => Ok(v.clone()),
            Storage::Cuda(s) => {
                if let Some(e) = cuda_error() {
                    return Err(e);
                }
                // The copy waits for the queued work, whose failure it records.
                let data = cuda::download(s);
                cuda_error().map_or(Ok(data), Err)
            }
        }
    }

    /// A host copy of the data.
    ///
    /// # Panics
    /// When the CUDA device has failed (`try_to_vec` returns the failure instead).
    pub fn to_vec(&self) -> Vec<f32> {
        self.try_to_vec().unwrap_or_else(|e| panic!("CUDA: {e}"))
    }

    /// The same data on `device` (a copy when it moves, a clone when it is already there). Data
    /// leaving a failed CUDA device is NaN; the failure waits for the next sync point.
    pub fn to_device(&self, device: Device) -> Storage {
        match (self, device) {
            (Storage::Cuda(s), Device::Cpu) => Storage::Cpu(cuda::download(s)),
            (Storage::Cpu(v), Device::Cuda) => Storage::Cuda(cuda::upload(v)),
            _ => self.clone(),
        }
    }

    pub fn dropout_mask(device: Device, len: usize, rate: f32, seed: u64, first: u64) -> Storage {
        match device {
            Device::Cpu => Storage::Cpu(Cpu::dropout_mask(len, rate, seed, first)),
            Device::Cuda => Storage::Cuda(Cuda::dropout_mask(len, rate, seed, first)),
        }
    }

    pub fn unary_fwd(&self, op: Unary) -> Storage {
        dispatch!(unary_fwd(op, x); x = self)
    }

    pub fn unary_bwd(&self, op: Unary, y: &Storage, dy: &Storage) -> Storage {
        dispatch!(unary_bwd(op, x, y, dy); x = self, y = y, dy = dy)
    }

    pub fn binary_fwd(&self, op: Binary, b: &Storage, plan: &BroadcastPlan) -> Storage {
        dispatch!(binary_fwd(op, a, b, plan); a = self, b = b)
    }

    pub fn reduce_fwd(&self, op: Reduce, d: AxisDims) -> Storage {
        dispatch!(reduce_fwd(op, x, d); x = self)
    }

    pub fn max_bwd(&self, y: &Storage, dy: &Storage, d: AxisDims) -> Storage {
        dispatch!(max_bwd(x, y, dy, d); x = self, y = y, dy = dy)
    }

    pub fn expand_axis(&self, d: AxisDims) -> Storage {
        dispatch!(expand_axis(x, d); x = self)
    }

    pub fn softmax_fwd(&self, kind: SoftmaxKind, d: AxisDims) -> Storage {
        dispatch!(softmax_fwd(kind, x, d); x = self)
    }

    pub fn softmax_bwd(&self, kind: SoftmaxKind, dy: &Storage, d: AxisDims) -> Storage {
        dispatch!(softmax_bwd(kind, y, dy, d); y = self, dy = dy)
    }

    pub fn matmul(&self, b: &Storage, spec: &MatmulSpec) -> Storage {
        dispatch!(matmul(a, b, spec); a = self, b = b)
    }

    pub fn im2col(&self, g: &Conv2dGeom) -> Storage {
        dispatch!(im2col(x, g); x = self)
    }

    pub fn col2im(&self, g: &Conv2dGeom) -> Storage {
        dispatch!(col2im(c, g); c = self)
    }

    pub fn conv2d_fwd(
        &self,
        w: &Storage,
        bias_relu: Option<&Storage>,
        g: &Conv2dGeom,
        filters: usize,
    ) -> Storage {
        match (self, w, bias_relu) {
            (Storage::Cpu(x), Storage::Cpu(w), None) => {
                Storage::Cpu(Cpu::conv2d_fwd(x, w, None, g, filters))
            }
            (Storage::Cpu(x), Storage::Cpu(w), Some(Storage::Cpu(b))) => {
                Storage::Cpu(Cpu::conv2d_fwd(x, w, Some(b), g, filters))
            }
            (Storage::Cuda(x), Storage::Cuda(w), None) => {
                Storage::Cuda(Cuda::conv2d_fwd(x, w, None, g, filters))
            }
            (Storage::Cuda(x), Storage::Cuda(w), Some(Storage::Cuda(b))) => {
                Storage::Cuda(Cuda::conv2d_fwd(x, w, Some(b), g, filters))
            }
            _ => {
                let operands = [Some(self), Some(w), bias_relu];
                let devices: Vec<Device> = operands.iter().flatten().map(|s| s.device()).collect();
                mixed_devices("conv2d_fwd", &devices)
            }
        }
    }

    /// (dx, dw, dbias) of a convolution of `self` by `w`, each when `want` asks for it;
    /// `relu_out` is the output when the bias + ReLU epilogue ran.
    pub fn conv2d_bwd(
        &self,
        w: &Storage,
        dy: &Storage,
        relu_out: Option<&Storage>,
        g: &Conv2dGeom,
        filters: usize,
        want: ConvGrads,
    ) -> [Option<Storage>; 3] {
        match (self, w, dy, relu_out) {
            (Storage::Cpu(x), Storage::Cpu(w), Storage::Cpu(dy), y) => {
                let y = y.map(|y| match y {
                    Storage::Cpu(y) => y,
                    other => mixed_devices("conv2d_bwd", &[Device::Cpu, other.device()]),
                });
                let (dx, dw, db) = Cpu::conv2d_bwd(x, w, dy, y, g, filters, want);
                [dx, dw, db].map(|b| b.map(Storage::Cpu))
            }
            (Storage::Cuda(x), Storage::Cuda(w), Storage::Cuda(dy), y) => {
                let y = y.map(|y| match y {
                    Storage::Cuda(y) => y,
                    other => mixed_devices("conv2d_bwd", &[Device::Cuda, other.device()]),
                });
                let (dx, dw, db) = Cuda::conv2d_bwd(x, w, dy, y, g, filters, want);
                [dx, dw, db].map(|b| b.map(Storage::Cuda))
            }
            _ => mixed_devices("conv2d_bwd", &[self.device(), w.device(), dy.device()]),
        }
    }

    pub fn pool2d_fwd(&self, kind: Pool, g: &Conv2dGeom) -> Storage {
        dispatch!(pool2d_fwd(kind, x, g); x = self)
    }

    /// (output, argmax) of max pooling.
    pub fn max_pool2d_fwd(&self, g: &Conv2dGeom) -> (Storage, Storage) {
        match self {
            Storage::Cpu(x) => {
                let (y, a) = Cpu::max_pool2d_fwd(x, g);
                (Storage::Cpu(y), Storage::Cpu(a))
            }
            Storage::Cuda(x) => {
                let (y, a) = Cuda::max_pool2d_fwd(x, g);
                (Storage::Cuda(y), Storage::Cuda(a))
            }
        }
    }

    pub fn bias_relu_fwd(&self, bias: &Storage, d: AxisDims) -> Storage {
        dispatch!(bias_relu_fwd(x, b, d); x = self, b = bias)
    }

    /// Batch normalization in training mode (see `Backend::batch_norm_fwd`): (y, x̂, mean, var).
    pub fn batch_norm_fwd(
        &self,
        w: &Storage,
        b: &Storage,
        d: AxisDims,
        eps: f32,
    ) -> (Storage, Storage, Storage, Storage) {
        match (self, w, b) {
            (Storage::Cpu(x), Storage::Cpu(w), Storage::Cpu(b)) => {
                let (y, h, m, v) = Cpu::batch_norm_fwd(x, w, b, d, eps);
                (
                    Storage::Cpu(y),
                    Storage::Cpu(h),
                    Storage::Cpu(m),
                    Storage::Cpu(v),
                )
            }
            (Storage::Cuda(x), Storage::Cuda(w), Storage::Cuda(b)) => {
                let (y, h, m, v) = Cuda::batch_norm_fwd(x, w, b, d, eps);
                (
                    Storage::Cuda(y),
                    Storage::Cuda(h),
                    Storage::Cuda(m),
                    Storage::Cuda(v),
                )
            }
            _ => mixed_devices("batch_norm_fwd", &[self.device(), w.device(), b.device()]),
        }
    }

    /// Its backward from x̂ (`self`): (dx, dw, db).
    pub fn batch_norm_bwd(
        &self,
        var: &Storage,
        w: &Storage,
        dy: &Storage,
        d: AxisDims,
        eps: f32,
    ) -> (Storage, Storage, Storage) {
        match (self, var, w, dy) {
            (Storage::Cpu(h), Storage::Cpu(v), Storage::Cpu(w), Storage::Cpu(g)) => {
                let (a, b, c) = Cpu::batch_norm_bwd(h, v, w, g, d, eps);
                (Storage::Cpu(a), Storage::Cpu(b), Storage::Cpu(c))
            }
            (Storage::Cuda(h), Storage::Cuda(v), Storage::Cuda(w), Storage::Cuda(g)) => {
                let (a, b, c) = Cuda::batch_norm_bwd(h, v, w, g, d, eps);
                (Storage::Cuda(a), Storage::Cuda(b), Storage::Cuda(c))
            }
            _ => mixed_devices(
                "batch_norm_bwd",
                &[self.device(), var.device(), w.device(), dy.device()],
            ),
        }
    }

    /// One LSTM step (see `Backend::lstm_cell_fwd`): `[h, c]` per row, and the saved activations.
    pub fn lstm_cell_fwd(
        xt: &Storage,
        hw: &Storage,
        h: &Storage,
        c: &Storage,
        keep: &Storage,
        d: LstmDims,
    ) -> (Storage, Storage) {
        match (xt, hw, h, c, keep) {
            (
                Storage::Cpu(a),
                Storage::Cpu(b),
                Storage::Cpu(h),
                Storage::Cpu(c),
                Storage::Cpu(k),
            ) => {
                let (y, s) = Cpu::lstm_cell_fwd(a, b, h, c, k, d);
                (Storage::Cpu(y), Storage::Cpu(s))
            }
            (
                Storage::Cuda(a),
                Storage::Cuda(b),
                Storage::Cuda(h),
                Storage::Cuda(c),
                Storage::Cuda(k),
            ) => {
                let (y, s) = Cuda::lstm_cell_fwd(a, b, h, c, k, d);
                (Storage::Cuda(y), Storage::Cuda(s))
            }
            _ => mixed_devices(
                "lstm_cell_fwd",
                &[
                    xt.device(),
                    hw.device(),
                    h.device(),
                    c.device(),
                    keep.device(),
                ],
            ),
        }
    }

    /// The LSTM step's (d gates, d h, d c) from its saved activations `self`.
    pub fn lstm_cell_bwd(
        &self,
        c: &Storage,
        keep: &Storage,
        dy: &Storage,
        d: LstmDims,
    ) -> (Storage, Storage, Storage) {
        match (self, c, keep, dy) {
            (Storage::Cpu(s), Storage::Cpu(c), Storage::Cpu(k), Storage::Cpu(dy)) => {
                let (a, b, e) = Cpu::lstm_cell_bwd(s, c, k, dy, d);
                (Storage::Cpu(a), Storage::Cpu(b), Storage::Cpu(e))
            }
            (Storage::Cuda(s), Storage::Cuda(c), Storage::Cuda(k), Storage::Cuda(dy)) => {
                let (a, b, e) = Cuda::lstm_cell_bwd(s, c, k, dy, d);
                (Storage::Cuda(a), Storage::Cuda(b), Storage::Cuda(e))
            }
            _ => mixed_devices(
                "lstm_cell_bwd",
                &[self.device(), c.device(), keep.device(), dy.device()],
            ),
        }
    }

    /// One LSTM direction over whole sequences (see `Backend::lstm_seq_fwd`): the output h
    /// after every step and the saved record.
    pub fn lstm_seq_fwd(
        xw: &Storage,
        bias: &Storage,
        w_hh: &Storage,
        keep: &Storage,
        d: LstmSeqDims,
    ) -> (Storage, Storage) {
        match (xw, bias, w_hh, keep) {
            (Storage::Cpu(x), Storage::Cpu(b), Storage::Cpu(w), Storage::Cpu(k)) => {
                let (y, s) = Cpu::lstm_seq_fwd(x, b, w, k, d);
                (Storage::Cpu(y), Storage::Cpu(s))
            }
            (Storage::Cuda(x), Storage::Cuda(b), Storage::Cuda(w), Storage::Cuda(k)) => {
                let (y, s) = Cuda::lstm_seq_fwd(x, b, w, k, d);
                (Storage::Cuda(y), Storage::Cuda(s))
            }
            _ => mixed_devices(
                "lstm_seq_fwd",
                &[xw.device(), bias.device(), w_hh.device(), keep.device()],
            ),
        }
    }

    /// The sequence's (d xw, d bias, d w_hh) from its saved record `self`.
    pub fn lstm_seq_bwd(
        &self,
        w_hh: &Storage,
        keep: &Storage,
        dy: &Storage,
        d: LstmSeqDims,
    ) -> (Storage, Storage, Storage) {
        match (self, w_hh, keep, dy) {
            (Storage::Cpu(s), Storage::Cpu(w), Storage::Cpu(k), Storage::Cpu(dy)) => {
                let (a, b, c) = Cpu::lstm_seq_bwd(s, w, k, dy, d);
                (Storage::Cpu(a), Storage::Cpu(b), Storage::Cpu(c))
            }
            (Storage::Cuda(s), Storage::Cuda(w), Storage::Cuda(k), Storage::Cuda(dy)) => {
                let (a, b, c) = Cuda::lstm_seq_bwd(s, w, k, dy, d);
                (Storage::Cuda(a), Storage::Cuda(b), Storage::Cuda(c))
            }
            _ => mixed_devices(
                "lstm_seq_bwd",
                &[self.device(), w_hh.device(), keep.device(), dy.device()],
            ),
        }
    }

    /// (dx, dbias) of `relu(x + bias)` from its output `self` and dy.
    pub fn bias_relu_bwd(&self, dy: &Storage, d: AxisDims) -> (Storage, Storage) {
        match (self, dy) {
            (Storage::Cpu(y), Storage::Cpu(dy)) => {
                let (dx, db) = Cpu::bias_relu_bwd(y, dy, d);
                (Storage::Cpu(dx), Storage::Cpu(db))
            }
            (Storage::Cuda(y), Storage::Cuda(dy)) => {
                let (dx, db) = Cuda::bias_relu_bwd(y, dy, d);
                (Storage::Cuda(dx), Storage::Cuda(db))
            }
            _ => mixed_devices("bias_relu_bwd", &[self.device(), dy.device()]),
        }
    }

    pub fn max_pool2d_bwd(&self, dy: &Storage, g: &Conv2dGeom) -> Storage {
        dispatch!(max_pool2d_bwd(a, dy, g); a = self, dy = dy)
    }

    pub fn avg_pool2d_bwd(&self, g: &Conv2dGeom) -> Storage {
        dispatch!(avg_pool2d_bwd(dy, g); dy = self)
    }

    pub fn permute(&self, dims: &[usize], perm: &[usize]) -> Storage {
        dispatch!(permute(x, dims, perm); x = self)
    }

    pub fn slice_axis(&self, d: AxisDims, start: usize, len: usize) -> Storage {
        dispatch!(slice_axis(x, d, start, len); x = self)
    }

    pub fn pad_axis(&self, d: AxisDims, start: usize, full_len: usize) -> Storage {
        dispatch!(pad_axis(x, d, start, full_len); x = self)
    }

    pub fn cat_axis(parts: &[&Storage], outer: usize, lens: &[usize], inner: usize) -> Storage {
        match parts[0].device() {
            Device::Cpu => {
                let bufs: Vec<&Vec<f32>> = parts
                    .iter()
                    .map(|p| match p {
                        Storage::Cpu(v) => v,
                        other => mixed_devices("cat_axis", &[Device::Cpu, other.device()]),
                    })
                    .collect();
                Storage::Cpu(Cpu::cat_axis(&bufs, outer, lens, inner))
            }
            Device::Cuda => {
                let bufs: Vec<&CudaSlice<f32>> = parts
                    .iter()
                    .map(|p| match p {
                        Storage::Cuda(s) => s,
                        other => mixed_devices("cat_axis", &[Device::Cuda, other.device()]),
                    })
                    .collect();
                Storage::Cuda(Cuda::cat_axis(&bufs, outer, lens, inner))
            }
        }
    }

    pub fn gather_rows(&self, row_len: usize, idx: &[u32]) -> Storage {
        dispatch!(gather_rows(x, row_len, idx); x = self)
    }

    pub fn scatter_add_rows(&self, rows: usize, row_len: usize, idx: &[u32]) -> Storage {
        dispatch!(scatter_add_rows(dy, rows, row_len, idx); dy = self)
    }

    pub fn cross_entropy_fwd(&self, targets: &Storage, n: usize, c: usize) -> Storage {
        dispatch!(cross_entropy_fwd(x, t, n, c); x = self, t = targets)
    }

    pub fn sgd_update(&mut self, g: &Storage, momentum: Option<&mut Storage>, h: &SgdStep) {
        let devices = [self.device(), g.device()];
        match (self, g) {
            (Storage::Cpu(p), Storage::Cpu(g)) => {
                let buf = momentum.map(|b| match b {
                    Storage::Cpu(b) => b,
                    other => mixed_devices("sgd_update", &[Device::Cpu, other.device()]),
                });
                Cpu::sgd_update(p, g, buf, h)
            }
            (Storage::Cuda(p), Storage::Cuda(g)) => {
                let buf = momentum.map(|b| match b {
                    Storage::Cuda(b) => b,
                    other => mixed_devices("sgd_update", &[Device::Cuda, other.device()]),
                });
                Cuda::sgd_update(p, g, buf, h)
            }
            _ => mixed_devices("sgd_update", &devices),
        }
    }

    pub fn adam_update(&mut self, g: &Storage, m: &mut Storage, v: &mut Storage, h: &AdamStep) {
        let devices = [self.device(), g.device(), m.device(), v.device()];
        match (self, g, m, v) {
            (Storage::Cpu(p), Storage::Cpu(g), Storage::Cpu(m), Storage::Cpu(v)) => {
                Cpu::adam_update(p, g, m, v, h)
            }
            (Storage::Cuda(p), Storage::Cuda(g), Storage::Cuda(m), Storage::Cuda(v)) => {
                Cuda::adam_update(p, g, m, v, h)
            }
            _ => mixed_devices("adam_update", &devices),
        }
    }

    pub fn cross_entropy_bwd(
        &self,
        targets: &Storage,
        dloss: &Storage,
        n: usize,
        c: usize,
    ) -> Storage {
        dispatch!(cross_entropy_bwd(x, t, g, n, c); x = self, t = targets, g = dloss)
    }
}
