//! Backends: where tensor data lives and the primitive kernels that compute on it.
//!
//! A tensor's data is a [`Storage`], an enum with one variant per backend, chosen at run time
//! (no backend type parameter runs through tensors or layers). Each backend implements the
//! [`Backend`] trait, the complete list of primitives the ops in `crate::ops` are written in; the
//! `Storage` methods below only dispatch to the backend that holds the data. Adding a backend
//! means one more variant, one more `Backend` impl and one more arm in each dispatch, and no
//! change to an op definition.

pub mod cpu;
pub mod cuda;

use crate::ops::{
    binary::{Binary, BroadcastPlan},
    conv::{Conv2dGeom, ConvGrads},
    matmul::MatmulSpec,
    pool::Pool,
    reduce::Reduce,
    softmax::SoftmaxKind,
    unary::Unary,
};
use crate::optim::{AdamStep, SgdStep};
use crate::tensor::AxisDims;
use cpu::Cpu;
use cuda::Cuda;
use cudarc::driver::CudaSlice;

/// Where a tensor's data lives. A process uses at most one CUDA device (the one
/// `cuda::open` opened), so the variant needs no ordinal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda,
}

impl Device {
    /// Wait until the device has finished the work queued so far (for timing; a no-op on the
    /// CPU, whose ops finish before they return).
    pub fn synchronize(self) {
        if self == Device::Cuda {
            cuda::gpu().synchronize();
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

/// The primitives every backend provides. Shapes arrive already checked and reduced to the
/// plain extents a kernel needs; a backend never sees autograd.
pub trait Backend {
    type Buf;

    fn full(len: usize, value: f32) -> Self::Buf;

    fn unary_fwd(op: Unary, x: &Self::Buf) -> Self::Buf;
    /// dx from the input, the output and dy (each op reads the ones its derivative needs).
    fn unary_bwd(op: Unary, x: &Self::Buf, y: &Self::Buf, dy: &Self::Buf) -> Self::Buf;

    fn binary_fwd(op: Binary, a: &Self::Buf, b: &Self::Buf, plan: &BroadcastPlan) -> Self::Buf;

    /// Reduce `[outer, len, inner]` over `len` into `[outer, inner]`.
    fn reduce_fwd(op: Reduce, x: &Self::Buf, d: AxisDims) -> Self::Buf;
    /// dx of a max reduction: dy routed to the first position that holds the maximum.
    fn max_bwd(x: &Self::Buf, y: &Self::Buf, dy: &Self::Buf, d: AxisDims) -> Self::Buf;
    /// Repeat `[outer, inner]` along a new middle axis into `[outer, len, inner]`.
    fn expand_axis(x: &Self::Buf, d: AxisDims) -> Self::Buf;

    fn softmax_fwd(kind: SoftmaxKind, x: &Self::Buf, d: AxisDims) -> Self::Buf;
    fn softmax_bwd(kind: SoftmaxKind, y: &Self::Buf, dy: &Self::Buf, d: AxisDims) -> Self::Buf;

    fn matmul(a: &Self::Buf, b: &Self::Buf, spec: &MatmulSpec) -> Self::Buf;

    /// `[n, c, h, w]` → `[n, c·kh·kw, oh·ow]`: per image, one row per kernel cell (channel, ky,
    /// kx) holding the input under it at every output position (zeros over padding).
    fn im2col(x: &Self::Buf, g: &Conv2dGeom) -> Self::Buf;
    /// Inverse of `im2col`: every entry added back into `[n, c, h, w]` where it was read.
    fn col2im(cols: &Self::Buf, g: &Conv2dGeom) -> Self::Buf;
    /// 2-D convolution: x `[n, c, h, w]`, w `[f, c·kh·kw]` → `[n, f, oh·ow]`, followed by
    /// `relu(y + bias)` when `bias_relu` holds a bias `[f]`. By default im2col over the whole
    /// batch, one product per image with the shared weights, then the bias and ReLU.
    fn conv2d_fwd(
        x: &Self::Buf,
        w: &Self::Buf,
        bias_relu: Option<&Self::Buf>,
        g: &Conv2dGeom,
        filters: usize,
    ) -> Self::Buf {
        let y = Self::matmul(w, &Self::im2col(x, g), &g.forward_spec(filters));
        match bias_relu {
            Some(b) => Self::bias_relu_fwd(&y, b, g.channel_dims(filters)),
            None => y,
        }
    }
    /// Gradients of `conv2d_fwd` from dy `[n, f, oh·ow]`, each when `want` asks for it: dx
    /// `[n, c, h, w]`, dw `[f, c·kh·kw]` and (with the epilogue, whose output `relu_out` is)
    /// dbias `[f]`, both summed over the batch. By default composed of the ReLU's gradient,
    /// im2col, per-image products, col2im and a sum over the batch.
    #[allow(clippy::type_complexity)]
    fn conv2d_bwd(
        x: &Self::Buf,
        w: &Self::Buf,
        dy: &Self::Buf,
        relu_out: Option<&Self::Buf>,
        g: &Conv2dGeom,
        filters: usize,
        want: ConvGrads,
    ) -> (Option<Self::Buf>, Option<Self::Buf>, Option<Self::Buf>) {
        let (masked, dbias) = match relu_out {
            Some(y) => {
                let (m, db) = Self::bias_relu_bwd(y, dy, g.channel_dims(filters));
                (Some(m), Some(db))
            }
            None => (None, None),
        };
        let dy = masked.as_ref().unwrap_or(dy);
        let dx = want
            .dx
            .then(|| Self::col2im(&Self::matmul(w, dy, &g.input_grad_spec(filters)), g));
        let dw = want.dw.then(|| {
            let per_image = Self::matmul(dy, &Self::im2col(x, g), &g.weight_grad_spec(filters));
            let d = AxisDims {
                outer: 1,
                len: g.n,
                inner: filters * g.patch_len(),
            };
            Self::reduce_fwd(Reduce::Sum, &per_image, d)
        });
        (dx, dw, dbias.filter(|_| want.dbias))
    }
    fn pool2d_fwd(kind: Pool, x: &Self::Buf, g: &Conv2dGeom) -> Self::Buf;
    /// Max pooling for training: the output and each window's argmax (the first position
    /// holding the maximum, as an index into the window; −1 when the window holds no number).
    fn max_pool2d_fwd(x: &Self::Buf, g: &Conv2dGeom) -> (Self::Buf, Self::Buf);
    /// dx of max pooling: each window's dy at its argmax.
    fn max_pool2d_bwd(argmax: &Self::Buf, dy: &Self::Buf, g: &Conv2dGeom) -> Self::Buf;
    /// dx of average pooling: each window's dy spread evenly over it.
    fn avg_pool2d_bwd(dy: &Self::Buf, g: &Conv2dGeom) -> Self::Buf;

    /// Copy `x` of shape `dims` into the axis order `perm` (output axis i = input axis perm[i]).
    fn permute(x: &Self::Buf, dims: &[usize], perm: &[usize]) -> Self::Buf;
    /// `[outer, start..start+len, inner]` of `[outer, d.len, inner]`.
    fn slice_axis(x: &Self::Buf, d: AxisDims, start: usize, len: usize) -> Self::Buf;
    /// Inverse of `slice_axis`: `x` of `[outer, d.len, inner]` placed at `start` in zeros of
    /// `[outer, full_len, inner]`.
    fn pad_axis(x: &Self::Buf, d: AxisDims, start: usize, full_len: usize) -> Self::Buf;
    /// Concatenate `[outer, lens[i], inner]` parts along the middle axis.
    fn cat_axis(parts: &[&Self::Buf], outer: usize, lens: &[usize], inner: usize) -> Self::Buf;
    /// Rows `idx` of `x` seen as `[rows, row_len]`.
    fn gather_rows(x: &Self::Buf, row_len: usize, idx: &[u32]) -> Self::Buf;
    /// Inverse of `gather_rows`: `dy` rows added into zeros of `[rows, row_len]` at `idx`.
    fn scatter_add_rows(dy: &Self::Buf, rows: usize, row_len: usize, idx: &[u32]) -> Self::Buf;

    /// Mean over `n` rows of `-log softmax(logits)[target]`; logits `[n, c]`, targets holds class
    /// indices as f32. Output has one element.
    fn cross_entropy_fwd(logits: &Self::Buf, targets: &Self::Buf, n: usize, c: usize) -> Self::Buf;
    /// `(softmax(logits) - onehot(target)) * dloss / n`.
    fn cross_entropy_bwd(
        logits: &Self::Buf,
        targets: &Self::Buf,
        dloss: &Self::Buf,
        n: usize,
        c: usize,
    ) -> Self::Buf;

    /// One SGD step in place; `momentum` is the buffer when momentum is on.
    fn sgd_update(p: &mut Self::Buf, g: &Self::Buf, momentum: Option<&mut Self::Buf>, h: &SgdStep);
    /// One Adam/AdamW step in place on the parameter and its moment estimates.
    fn adam_update(
        p: &mut Self::Buf,
        g: &Self::Buf,
        m: &mut Self::Buf,
        v: &mut Self::Buf,
        h: &AdamStep,
    );

    /// `relu(x + bias)`, `bias` `[d.len]` along the middle axis of `[outer, len, inner]`.
    fn bias_relu_fwd(x: &Self::Buf, bias: &Self::Buf, d: AxisDims) -> Self::Buf;
    /// From `y = relu(x + bias)` and dy: dx (dy where y > 0) and dbias (dx summed per channel).
    fn bias_relu_bwd(y: &Self::Buf, dy: &Self::Buf, d: AxisDims) -> (Self::Buf, Self::Buf);

    /// A dropout mask: 0 with probability `rate`, else 1 / (1 − rate); element i drawn from
    /// (seed, i) alone, the same on every backend.
    fn dropout_mask(len: usize, rate: f32, seed: u64) -> Self::Buf;
}

/// Operands on different devices reach a primitive only through a bug in an op (ops check
/// devices before dispatching).
fn mixed_devices(primitive: &str) -> ! {
    panic!("{primitive}: operands on different devices")
}

/// Dispatch a primitive to the backend holding the operands; mixed devices are refused here.
macro_rules! dispatch {
    ($name:ident ( $($arg:expr),* ) ; $($buf:ident = $val:expr),+) => {
        #[allow(unreachable_patterns)] // the mixed arm, for one operand
        match ($($val,)+) {
            ($(Storage::Cpu($buf),)+) => Storage::Cpu(Cpu::$name($($arg),*)),
            ($(Storage::Cuda($buf),)+) => Storage::Cuda(Cuda::$name($($arg),*)),
            _ => mixed_devices(stringify!($name)),
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

    /// A host copy of the data (the only place data leaves a device).
    pub fn to_vec(&self) -> Vec<f32> {
        match self {
            Storage::Cpu(v) => v.clone(),
            Storage::Cuda(s) => cuda::download(s),
        }
    }

    /// The same data on `device` (a copy when it moves, a clone when it is already there).
    pub fn to_device(&self, device: Device) -> Storage {
        match (self, device) {
            (Storage::Cuda(s), Device::Cpu) => Storage::Cpu(cuda::download(s)),
            (Storage::Cpu(v), Device::Cuda) => Storage::Cuda(cuda::upload(v)),
            _ => self.clone(),
        }
    }

    pub fn dropout_mask(device: Device, len: usize, rate: f32, seed: u64) -> Storage {
        match device {
            Device::Cpu => Storage::Cpu(Cpu::dropout_mask(len, rate, seed)),
            Device::Cuda => Storage::Cuda(Cuda::dropout_mask(len, rate, seed)),
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
            _ => mixed_devices("conv2d_fwd"),
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
                    _ => mixed_devices("conv2d_bwd"),
                });
                let (dx, dw, db) = Cpu::conv2d_bwd(x, w, dy, y, g, filters, want);
                [dx, dw, db].map(|b| b.map(Storage::Cpu))
            }
            (Storage::Cuda(x), Storage::Cuda(w), Storage::Cuda(dy), y) => {
                let y = y.map(|y| match y {
                    Storage::Cuda(y) => y,
                    _ => mixed_devices("conv2d_bwd"),
                });
                let (dx, dw, db) = Cuda::conv2d_bwd(x, w, dy, y, g, filters, want);
                [dx, dw, db].map(|b| b.map(Storage::Cuda))
            }
            _ => mixed_devices("conv2d_bwd"),
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
            _ => mixed_devices("bias_relu_bwd"),
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
                        _ => mixed_devices("cat_axis"),
                    })
                    .collect();
                Storage::Cpu(Cpu::cat_axis(&bufs, outer, lens, inner))
            }
            Device::Cuda => {
                let bufs: Vec<&CudaSlice<f32>> = parts
                    .iter()
                    .map(|p| match p {
                        Storage::Cuda(s) => s,
                        _ => mixed_devices("cat_axis"),
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
        match (self, g) {
            (Storage::Cpu(p), Storage::Cpu(g)) => {
                let buf = momentum.map(|b| match b {
                    Storage::Cpu(b) => b,
                    _ => mixed_devices("sgd_update"),
                });
                Cpu::sgd_update(p, g, buf, h)
            }
            (Storage::Cuda(p), Storage::Cuda(g)) => {
                let buf = momentum.map(|b| match b {
                    Storage::Cuda(b) => b,
                    _ => mixed_devices("sgd_update"),
                });
                Cuda::sgd_update(p, g, buf, h)
            }
            _ => mixed_devices("sgd_update"),
        }
    }

    pub fn adam_update(&mut self, g: &Storage, m: &mut Storage, v: &mut Storage, h: &AdamStep) {
        match (self, g, m, v) {
            (Storage::Cpu(p), Storage::Cpu(g), Storage::Cpu(m), Storage::Cpu(v)) => {
                Cpu::adam_update(p, g, m, v, h)
            }
            (Storage::Cuda(p), Storage::Cuda(g), Storage::Cuda(m), Storage::Cuda(v)) => {
                Cuda::adam_update(p, g, m, v, h)
            }
            _ => mixed_devices("adam_update"),
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
