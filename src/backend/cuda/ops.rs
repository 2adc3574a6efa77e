//! `Backend` for CUDA: each primitive launches its kernel from `kernels/<family>.cu` (the same
//! family names as `src/backend/cpu/`), or cuBLAS for matrix products. Once the device has
//! failed (see `super`), each returns buffers of the right length without launching anything.

use cudarc::cublas::sys::cublasOperation_t;
use cudarc::cublas::{Gemm, GemmConfig, StridedBatchedConfig};
use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

use super::kernels::MAX_RANK;
use super::{block_each, gpu, grid_for, BLOCK};
use crate::backend::precision::{self, Precision};
use crate::backend::spec::{
    AdamStep, AxisDims, Binary, BroadcastPlan, Conv2dGeom, LstmDims, MatmulSpec, OpCode, Pool,
    Reduce, SgdStep, SoftmaxKind, Unary,
};
use crate::backend::Backend;

pub struct Cuda;

/// Launch `kernel` with the given arguments (references to values that outlive the call), unless
/// the device has failed; a failed launch is recorded.
macro_rules! launch {
    ($kernel:literal, $cfg:expr; $($arg:expr),* $(,)?) => {{
        let g = gpu();
        if let Some(f) = g.kernel($kernel) {
            let mut builder = g.stream.launch_builder(f);
            $( builder.arg($arg); )*
            // SAFETY: the arguments match the kernel's parameter list in kernels/*.cu in number,
            // order and type, every buffer holds the elements the sizes passed beside it say,
            // and the kernels index only below those sizes. No buffer is a placeholder: those
            // exist only after a failure, and then `kernel` returned `None`.
            if let Err(e) = unsafe { builder.launch($cfg) } {
                g.fail(concat!("launch ", $kernel), e)
            }
        }
    }};
}

fn alloc(len: usize) -> CudaSlice<f32> {
    gpu().alloc(len)
}

/// Host data into a new device buffer (a placeholder once the device has failed).
pub fn upload<T: DeviceRepr>(data: &[T]) -> CudaSlice<T> {
    let g = gpu();
    if g.failed() {
        return g.placeholder(data.len());
    }
    let r = if data.is_empty() {
        g.stream.null()
    } else {
        g.stream.clone_htod(data)
    };
    r.unwrap_or_else(|e| {
        g.fail(&format!("copy {} values to the device", data.len()), e);
        g.placeholder(data.len())
    })
}

/// A device buffer back on the host (waits for the queued work that writes it). Once the device
/// has failed, NaN in every element: `Gpu::error` says why.
pub fn download(x: &CudaSlice<f32>) -> Vec<f32> {
    if x.is_empty() {
        return Vec::new();
    }
    let g = gpu();
    if !g.failed() {
        match g.stream.clone_dtoh(x) {
            Ok(v) => return v,
            Err(e) => g.fail(&format!("copy {} floats to the host", x.len()), e),
        }
    }
    vec![f32::NAN; x.len()]
}

/// A device-side copy of a buffer (a placeholder once the device has failed).
pub fn duplicate(x: &CudaSlice<f32>) -> CudaSlice<f32> {
    let g = gpu();
    if x.is_empty() || g.failed() {
        return alloc(x.len());
    }
    g.stream.clone_dtod(x).unwrap_or_else(|e| {
        g.fail(&format!("copy {} floats on the device", x.len()), e);
        g.placeholder(x.len())
    })
}

fn fill(y: &mut CudaSlice<f32>, value: f32) {
    let (n, len) = (y.len() as u64, y.len());
    if n > 0 {
        launch!("fill", grid_for(len); y, &n, &value);
    }
}

/// `struct Plan` of kernels/binary.cu (`MAX_RANK` is generated into op_codes.cuh).
#[repr(C)]
#[derive(Clone, Copy)]
struct Plan {
    dims: [u64; MAX_RANK],
    a_strides: [u64; MAX_RANK],
    b_strides: [u64; MAX_RANK],
    rank: i32,
}
// SAFETY: plain old data laid out as the kernel's struct.
unsafe impl DeviceRepr for Plan {}

/// `struct Permutation` of kernels/layout.cu.
#[repr(C)]
#[derive(Clone, Copy)]
struct Permutation {
    out_dims: [u64; MAX_RANK],
    in_strides: [u64; MAX_RANK],
    rank: i32,
}
// SAFETY: plain old data laid out as the kernel's struct.
unsafe impl DeviceRepr for Permutation {}

/// `struct Geom` of kernels/common.cuh (conv.cu and pool.cu).
#[repr(C)]
#[derive(Clone, Copy)]
struct Geom([u64; 12]);
// SAFETY: plain old data laid out as the kernels' struct.
unsafe impl DeviceRepr for Geom {}

impl From<&Conv2dGeom> for Geom {
    fn from(g: &Conv2dGeom) -> Geom {
        Geom(
            [
                g.n, g.c, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.oh, g.ow,
            ]
            .map(|v| v as u64),
        )
    }
}

/// Whether the kernels take `rank` dimensions; a device failure when they do not.
fn rank_fits(rank: usize, what: &str) -> bool {
    let fits = rank <= MAX_RANK;
    if !fits {
        gpu().fail(
            what,
            format!("{rank} dimensions; the CUDA kernels handle at most {MAX_RANK}"),
        );
    }
    fits
}

fn dims3(d: AxisDims) -> (u64, u64, u64) {
    (d.outer as u64, d.len as u64, d.inner as u64)
}

impl Backend for Cuda {
    type Buf = CudaSlice<f32>;

    fn full(len: usize, value: f32) -> Self::Buf {
        let mut y = alloc(len);
        fill(&mut y, value);
        y
    }

    fn unary_fwd(op: Unary, x: &Self::Buf) -> Self::Buf {
        let mut y = alloc(x.len());
        let (code, (a, b)) = (op.code(), op.constants());
        let n = x.len() as u64;
        if n > 0 {
            launch!("unary_fwd", grid_for(x.len()); x, &mut y, &n, &code, &a, &b);
        }
        y
    }

    fn unary_bwd(op: Unary, x: &Self::Buf, y: &Self::Buf, dy: &Self::Buf) -> Self::Buf {
        let mut dx = alloc(x.len());
        let (code, (a, b)) = (op.code(), op.constants());
        let n = x.len() as u64;
        if n > 0 {
            launch!("unary_bwd", grid_for(x.len()); x, y, dy, &mut dx, &n, &code, &a, &b);
        }
        dx
    }

    fn binary_fwd(op: Binary, a: &Self::Buf, b: &Self::Buf, plan: &BroadcastPlan) -> Self::Buf {
        let mut out = alloc(plan.out_len);
        let (n, code) = (plan.out_len as u64, op.code());
        if n == 0 {
            return out;
        }
        if plan.is_elementwise() {
            launch!("binary_same", grid_for(plan.out_len); a, b, &mut out, &n, &code);
            return out;
        }
        if !rank_fits(plan.dims.len(), "broadcast") {
            return out;
        }
        let mut p = Plan {
            dims: [1; MAX_RANK],
            a_strides: [0; MAX_RANK],
            b_strides: [0; MAX_RANK],
            rank: plan.dims.len() as i32,
        };
        for (i, ((&d, &sa), &sb)) in plan
            .dims
            .iter()
            .zip(&plan.a_strides)
            .zip(&plan.b_strides)
            .enumerate()
        {
            (p.dims[i], p.a_strides[i], p.b_strides[i]) = (d as u64, sa as u64, sb as u64);
        }
        launch!("binary_fwd", grid_for(plan.out_len); a, b, &mut out, &n, &code, &p);
        out
    }

    fn reduce_fwd(op: Reduce, x: &Self::Buf, d: AxisDims) -> Self::Buf {
        let outputs = d.outer * d.inner;
        let mut y = alloc(outputs);
        let ((outer, len, inner), code) = (dims3(d), op.code());
        if outputs == 0 {
            return y;
        }
        // Long reductions get a block each; short ones a thread each.
        if d.len >= BLOCK as usize {
            launch!("reduce_block", block_each(outputs); x, &mut y, &outer, &len, &inner, &code);
        } else {
            launch!("reduce_thread", grid_for(outputs); x, &mut y, &outer, &len, &inner, &code);
        }
        y
    }

    fn max_bwd(x: &Self::Buf, y: &Self::Buf, dy: &Self::Buf, d: AxisDims) -> Self::Buf {
        let mut dx = alloc(x.len());
        let (outer, len, inner) = dims3(d);
        if !x.is_empty() {
            launch!("max_bwd", grid_for(d.outer * d.inner); x, y, dy, &mut dx, &outer, &len, &inner);
        }
        dx
    }

    fn expand_axis(x: &Self::Buf, d: AxisDims) -> Self::Buf {
        let mut y = alloc(d.numel());
        let (outer, len, inner) = dims3(d);
        if d.numel() > 0 {
            launch!("expand_axis", grid_for(d.numel()); x, &mut y, &outer, &len, &inner);
        }
        y
    }

    fn softmax_fwd(kind: SoftmaxKind, x: &Self::Buf, d: AxisDims) -> Self::Buf {
        let mut y = alloc(x.len());
        let ((outer, len, inner), code) = (dims3(d), kind.code());
        if !x.is_empty() {
            launch!("softmax_fwd", grid_for(d.outer * d.inner); x, &mut y, &outer, &len, &inner, &code);
        }
        y
    }

    fn softmax_bwd(kind: SoftmaxKind, y: &Self::Buf, dy: &Self::Buf, d: AxisDims) -> Self::Buf {
        let mut dx = alloc(y.len());
        let ((outer, len, inner), code) = (dims3(d), kind.code());
        if !y.is_empty() {
            launch!("softmax_bwd", grid_for(d.outer * d.inner); y, dy, &mut dx, &outer, &len, &inner, &code);
        }
        dx
    }

    /// Row-major `C = op(A)·op(B)` is column-major `Cᵀ = op(B)ᵀ·op(A)ᵀ`: cuBLAS gets the
    /// operands swapped and reads each row-major buffer as its transpose.
    fn matmul(a: &Self::Buf, b: &Self::Buf, s: &MatmulSpec) -> Self::Buf {
        let mut c = alloc(s.batch * s.m * s.n);
        if c.is_empty() {
            return c;
        }
        if s.k == 0 {
            fill(&mut c, 0.0);
            return c;
        }
        let op = |t: bool| {
            if t {
                cublasOperation_t::CUBLAS_OP_T
            } else {
                cublasOperation_t::CUBLAS_OP_N
            }
        };
        let (m, n, k) = (s.m as i32, s.n as i32, s.k as i32);
        let gemm = GemmConfig {
            transa: op(s.trans_b),
            transb: op(s.trans_a),
            m: n,
            n: m,
            k,
            alpha: 1.0f32,
            lda: if s.trans_b { k } else { n },
            ldb: if s.trans_a { m } else { k },
            beta: 0.0f32,
            ldc: n,
        };
        let g = gpu();
        if g.failed() {
            return c;
        }
        let p = precision::current();
        if p != Precision::F32 {
            mixed_matmul(a, b, s, &gemm, p, &mut c);
            return c;
        }
        let blas = &g.blas;
        // SAFETY: the spec's sizes and strides describe buffers of at least the extents cuBLAS
        // reads (checked by the op that built the spec); `c` holds batch·m·n elements; none is a
        // placeholder (those exist only after a failure, checked just above).
        let r = unsafe {
            if s.batch == 1 {
                blas.gemm(gemm, b, a, &mut c)
            } else {
                let cfg = StridedBatchedConfig {
                    gemm,
                    batch_size: s.batch as i32,
                    stride_a: s.b_batch_stride as i64,
                    stride_b: s.a_batch_stride as i64,
                    stride_c: (s.m * s.n) as i64,
                };
                blas.gemm_strided_batched(cfg, b, a, &mut c)
            }
        };
        if let Err(e) = r {
            g.fail("cuBLAS sgemm", e)
        }
        c
    }

    fn im2col(x: &Self::Buf, g: &Conv2dGeom) -> Self::Buf {
        let len = g.rows() * g.patch_len();
        let mut cols = alloc(len);
        let geom = Geom::from(g);
        if len > 0 {
            launch!("im2col", grid_for(len); x, &mut cols, &geom);
        }
        cols
    }

    fn col2im(cols: &Self::Buf, g: &Conv2dGeom) -> Self::Buf {
        let len = g.n * g.c * g.h * g.w;
        let mut dx = alloc(len);
        let geom = Geom::from(g);
        if len > 0 {
            launch!("col2im", grid_for(len); cols, &mut dx, &geom);
        }
        dx
    }

    fn pool2d_fwd(kind: Pool, x: &Self::Buf, g: &Conv2dGeom) -> Self::Buf {
        let len = g.n * g.c * g.oh * g.ow;
        let mut y = alloc(len);
        let (geom, code) = (Geom::from(g), kind.code());
        if len > 0 {
            launch!("pool2d_fwd", grid_for(len); x, &mut y, &geom, &code);
        }
        y
    }

    fn max_pool2d_fwd(x: &Self::Buf, g: &Conv2dGeom) -> (Self::Buf, Self::Buf) {
        let len = g.n * g.c * g.oh * g.ow;
        let (mut y, mut argmax) = (alloc(len), alloc(len));
        let geom = Geom::from(g);
        if len > 0 {
            launch!("max_pool2d_fwd", grid_for(len); x, &mut y, &mut argmax, &geom);
        }
        (y, argmax)
    }

    fn max_pool2d_bwd(argmax: &Self::Buf, dy: &Self::Buf, g: &Conv2dGeom) -> Self::Buf {
        let len = g.n * g.c * g.h * g.w;
        let mut dx = alloc(len);
        let geom = Geom::from(g);
        if len > 0 {
            launch!("max_pool2d_bwd", grid_for(len); argmax, dy, &mut dx, &geom);
        }
        dx
    }

    fn avg_pool2d_bwd(dy: &Self::Buf, g: &Conv2dGeom) -> Self::Buf {
        let len = g.n * g.c * g.h * g.w;
        let mut dx = alloc(len);
        let geom = Geom::from(g);
        if len > 0 {
            launch!("avg_pool2d_bwd", grid_for(len); dy, &mut dx, &geom);
        }
        dx
    }

    fn permute(x: &Self::Buf, dims: &[usize], perm: &[usize]) -> Self::Buf {
        let mut y = alloc(x.len());
        if x.is_empty() {
            return y;
        }
        if !rank_fits(dims.len(), "permute") {
            return y;
        }
        let mut in_strides = vec![1usize; dims.len()];
        for i in (0..dims.len().saturating_sub(1)).rev() {
            in_strides[i] = in_strides[i + 1] * dims[i + 1];
        }
        let mut p = Permutation {
            out_dims: [1; MAX_RANK],
            in_strides: [0; MAX_RANK],
            rank: perm.len() as i32,
        };
        for (i, &axis) in perm.iter().enumerate() {
            p.out_dims[i] = dims[axis] as u64;
            p.in_strides[i] = in_strides[axis] as u64;
        }
        let n = x.len() as u64;
        launch!("permute", grid_for(x.len()); x, &mut y, &n, &p);
        y
    }

    fn slice_axis(x: &Self::Buf, d: AxisDims, start: usize, len: usize) -> Self::Buf {
        let out_len = d.outer * len * d.inner;
        let mut y = alloc(out_len);
        let (outer, full, inner) = dims3(d);
        let (start, len) = (start as u64, len as u64);
        if out_len > 0 {
            launch!("slice_axis", grid_for(out_len); x, &mut y, &outer, &len, &inner, &start, &full);
        }
        y
    }

    fn pad_axis(x: &Self::Buf, d: AxisDims, start: usize, full_len: usize) -> Self::Buf {
        let out_len = d.outer * full_len * d.inner;
        let mut y = alloc(out_len);
        let (outer, len, inner) = dims3(d);
        let (start, full) = (start as u64, full_len as u64);
        if out_len > 0 {
            launch!("pad_axis", grid_for(out_len); x, &mut y, &outer, &len, &inner, &start, &full);
        }
        y
    }

    fn cat_axis(parts: &[&Self::Buf], outer: usize, lens: &[usize], inner: usize) -> Self::Buf {
        let total: usize = lens.iter().sum();
        let mut y = alloc(outer * total * inner);
        let (outer64, inner64, total64) = (outer as u64, inner as u64, total as u64);
        let mut offset = 0u64;
        for (&part, &len) in parts.iter().zip(lens) {
            let (len64, n) = (len as u64, outer * len * inner);
            if n > 0 {
                launch!("cat_part", grid_for(n); part, &mut y, &outer64, &len64, &inner64, &offset, &total64);
            }
            offset += len64;
        }
        y
    }

    fn gather_rows(x: &Self::Buf, row_len: usize, idx: &[u32]) -> Self::Buf {
        let len = idx.len() * row_len;
        let mut y = alloc(len);
        if len == 0 {
            return y;
        }
        let idx = upload(idx);
        let (row_len, count) = (row_len as u64, idx.len() as u64);
        launch!("gather_rows", grid_for(len); x, &idx, &mut y, &row_len, &count);
        y
    }

    fn scatter_add_rows(dy: &Self::Buf, rows: usize, row_len: usize, idx: &[u32]) -> Self::Buf {
        let mut out = Self::full(rows * row_len, 0.0);
        if idx.is_empty() || row_len == 0 {
            return out;
        }
        let idx = upload(idx);
        let (row_len64, count) = (row_len as u64, idx.len() as u64);
        launch!("scatter_add_rows", grid_for(row_len); dy, &idx, &mut out, &row_len64, &count);
        out
    }

    fn cross_entropy_fwd(logits: &Self::Buf, targets: &Self::Buf, n: usize, c: usize) -> Self::Buf {
        let mut out = alloc(1);
        let (n, c) = (n as u64, c as u64);
        launch!("cross_entropy_fwd", block_each(1); logits, targets, &mut out, &n, &c);
        out
    }

    fn cross_entropy_bwd(
        logits: &Self::Buf,
        targets: &Self::Buf,
        dloss: &Self::Buf,
        n: usize,
        c: usize,
    ) -> Self::Buf {
        let mut dx = alloc(n * c);
        let (rows, n64, c64) = (n, n as u64, c as u64);
        if rows * c > 0 {
            launch!("cross_entropy_bwd", grid_for(rows); logits, targets, dloss, &mut dx, &n64, &c64);
        }
        dx
    }

    fn sgd_update(p: &mut Self::Buf, g: &Self::Buf, momentum: Option<&mut Self::Buf>, h: &SgdStep) {
        let (n, len) = (p.len() as u64, p.len());
        if len == 0 {
            return;
        }
        match momentum {
            None => launch!("sgd_update", grid_for(len); p, g, &n, &h.lr, &h.weight_decay),
            Some(buf) => {
                let (nesterov, first) = (h.nesterov as i32, h.first_step as i32);
                launch!("sgd_momentum_update", grid_for(len);
                    p, g, buf, &n, &h.lr, &h.weight_decay, &h.momentum, &nesterov, &first)
            }
        }
    }

    fn adam_update(
        p: &mut Self::Buf,
        g: &Self::Buf,
        m: &mut Self::Buf,
        v: &mut Self::Buf,
        h: &AdamStep,
    ) {
        let (n, len) = (p.len() as u64, p.len());
        if len == 0 {
            return;
        }
        let c = h.corrections();
        let decoupled = h.decoupled as i32;
        launch!("adam_update", grid_for(len);
            p, g, m, v, &n, &c.step_size, &h.beta1, &h.beta2, &h.eps, &h.weight_decay,
            &c.decay, &c.bc2_sqrt, &decoupled);
    }

    fn bias_relu_fwd(x: &Self::Buf, bias: &Self::Buf, d: AxisDims) -> Self::Buf {
        let mut y = alloc(x.len());
        let (outer, c, inner) = dims3(d);
        if !x.is_empty() {
            launch!("bias_relu_fwd", grid_for(x.len()); x, bias, &mut y, &outer, &c, &inner);
        }
        y
    }

    fn bias_relu_bwd(y: &Self::Buf, dy: &Self::Buf, d: AxisDims) -> (Self::Buf, Self::Buf) {
        let (mut dx, mut dbias) = (alloc(y.len()), alloc(d.len));
        let (outer, c, inner) = dims3(d);
        let n = y.len() as u64;
        if y.is_empty() {
            fill(&mut dbias, 0.0);
            return (dx, dbias);
        }
        launch!("bias_relu_bwd_dx", grid_for(y.len()); y, dy, &mut dx, &n);
        if d.len > 0 {
            launch!("bias_relu_bwd_bias", block_each(d.len); &dx, &mut dbias, &outer, &c, &inner);
        }
        (dx, dbias)
    }

    fn batch_norm_fwd(
        x: &Self::Buf,
        w: &Self::Buf,
        b: &Self::Buf,
        d: AxisDims,
        eps: f32,
    ) -> (Self::Buf, Self::Buf, Self::Buf, Self::Buf) {
        let (mut y, mut x_hat) = (alloc(x.len()), alloc(x.len()));
        let (mut mean, mut var) = (alloc(d.len), alloc(d.len));
        let (outer, c, inner) = dims3(d);
        if d.len > 0 {
            launch!("batch_norm_stats", block_each(d.len); x, &mut mean, &mut var, &outer, &c, &inner);
        }
        if !x.is_empty() {
            launch!("batch_norm_apply", grid_for(x.len());
                x, &mean, &var, w, b, &mut x_hat, &mut y, &outer, &c, &inner, &eps);
        }
        (y, x_hat, mean, var)
    }

    fn batch_norm_bwd(
        x_hat: &Self::Buf,
        var: &Self::Buf,
        w: &Self::Buf,
        dy: &Self::Buf,
        d: AxisDims,
        eps: f32,
    ) -> (Self::Buf, Self::Buf, Self::Buf) {
        let mut dx = alloc(dy.len());
        let (mut dw, mut db) = (alloc(d.len), alloc(d.len));
        let (outer, c, inner) = dims3(d);
        if d.len > 0 {
            launch!("batch_norm_sums", block_each(d.len); dy, x_hat, &mut dw, &mut db, &outer, &c, &inner);
        }
        if !dy.is_empty() {
            launch!("batch_norm_dx", grid_for(dy.len());
                dy, x_hat, var, w, &dw, &db, &mut dx, &outer, &c, &inner, &eps);
        }
        (dx, dw, db)
    }

    fn lstm_cell_fwd(
        xt: &Self::Buf,
        hw: &Self::Buf,
        h: &Self::Buf,
        c: &Self::Buf,
        keep: &Self::Buf,
        d: LstmDims,
    ) -> (Self::Buf, Self::Buf) {
        let (mut y, mut saved) = (alloc(d.rows * 2 * d.units), alloc(d.rows * 5 * d.units));
        let (rows, u) = (d.rows as u64, d.units as u64);
        if d.rows * d.units > 0 {
            launch!("lstm_cell_fwd", grid_for(d.rows * d.units);
                xt, hw, h, c, keep, &mut y, &mut saved, &rows, &u);
        }
        (y, saved)
    }

    fn lstm_cell_bwd(
        saved: &Self::Buf,
        c: &Self::Buf,
        keep: &Self::Buf,
        dy: &Self::Buf,
        d: LstmDims,
    ) -> (Self::Buf, Self::Buf, Self::Buf) {
        let n = d.rows * d.units;
        let (mut dz, mut dh, mut dc) = (alloc(4 * n), alloc(n), alloc(n));
        let (rows, u) = (d.rows as u64, d.units as u64);
        if n > 0 {
            launch!("lstm_cell_bwd", grid_for(n);
                saved, c, keep, dy, &mut dz, &mut dh, &mut dc, &rows, &u);
        }
        (dz, dh, dc)
    }

    fn dropout_mask(len: usize, rate: f32, seed: u64, first: u64) -> Self::Buf {
        let mut mask = alloc(len);
        let (n, keep) = (len as u64, 1.0 / (1.0 - rate));
        if len > 0 {
            launch!("dropout_mask", grid_for(len); &mut mask, &n, &seed, &first, &rate, &keep);
        }
        mask
    }
}

/// `x` as the 16-bit operand format of `p` (bf16 or f16 bits), for cuBLAS's GemmEx.
fn to_half(x: &CudaSlice<f32>, p: Precision) -> CudaSlice<u16> {
    let mut y = gpu().alloc::<u16>(x.len());
    let n = x.len() as u64;
    if n > 0 {
        match p {
            Precision::Bf16 => launch!("to_bf16", grid_for(x.len()); x, &mut y, &n),
            Precision::F16 => launch!("to_f16", grid_for(x.len()); x, &mut y, &n),
            Precision::F32 => unreachable!("f32 products take their operands as they are"),
        }
    }
    y
}

/// `Cuda::matmul` under `train.precision` bf16 or f16: both operands cast to the 16-bit format,
/// then cuBLAS's GemmEx with f32 output and f32 accumulation (`CUBLAS_COMPUTE_32F`), as
/// PyTorch's autocast runs a linear layer. `gemm` is the column-major description `matmul`
/// built (operands swapped).
fn mixed_matmul(
    a: &CudaSlice<f32>,
    b: &CudaSlice<f32>,
    s: &MatmulSpec,
    gemm: &GemmConfig<f32>,
    p: Precision,
    c: &mut CudaSlice<f32>,
) {
    use cudarc::cublas::{result, sys};
    use cudarc::driver::{DevicePtr, DevicePtrMut};
    let g = gpu();
    let (ah, bh) = (to_half(a, p), to_half(b, p));
    if g.failed() {
        return;
    }
    let kind = match p {
        Precision::Bf16 => sys::cudaDataType_t::CUDA_R_16BF,
        _ => sys::cudaDataType_t::CUDA_R_16F,
    };
    let f32_kind = sys::cudaDataType_t::CUDA_R_32F;
    let (alpha, beta) = (1.0f32, 0.0f32);
    let handle = *g.blas.handle();
    let (bp, _rb) = bh.device_ptr(&g.stream);
    let (ap, _ra) = ah.device_ptr(&g.stream);
    let (cp, _rc) = c.device_ptr_mut(&g.stream);
    let algo = sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT;
    let compute = sys::cublasComputeType_t::CUBLAS_COMPUTE_32F;
    // SAFETY: as in `matmul`: the half buffers hold exactly the elements of `a` and `b`, whose
    // extents the spec describes; `c` holds batch·m·n floats; the pointers stay valid until the
    // records drop after the call (the work is queued on kiln's one stream, which cuBLAS uses);
    // alpha and beta are f32, as CUBLAS_COMPUTE_32F requires.
    let r = unsafe {
        let alpha = (&alpha as *const f32).cast();
        let beta = (&beta as *const f32).cast();
        // One call for a single product too (a batch of one; its strides are not read).
        result::gemm_strided_batched_ex(
            handle,
            gemm.transa,
            gemm.transb,
            gemm.m,
            gemm.n,
            gemm.k,
            alpha,
            bp as *const _,
            kind,
            gemm.lda,
            s.b_batch_stride as i64,
            ap as *const _,
            kind,
            gemm.ldb,
            s.a_batch_stride as i64,
            beta,
            cp as *mut _,
            f32_kind,
            gemm.ldc,
            (s.m * s.n) as i64,
            s.batch as i32,
            compute,
            algo,
        )
    };
    if let Err(e) = r {
        g.fail("cuBLAS GemmEx (mixed precision)", e)
    }
}
