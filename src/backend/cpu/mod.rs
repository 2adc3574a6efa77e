//! The CPU backend: contiguous `Vec<f32>` buffers, rayon for large elementwise and reduction work,
//! the `gemm` crate for matrix products.
//!
//! Determinism: work is split into chunks whose boundaries depend only on the sizes, never on the
//! number of threads, and every reduction adds in a fixed order, so results are bitwise identical
//! run to run (and across thread counts, except inside `gemm`, which splits by thread count but
//! never splits a dot product).

mod bias;
mod binary;
mod conv;
mod layout;
mod loss;
mod matmul;
mod norm;
mod optim;
mod pool;
mod precision;
mod random;
pub use random::uniform_at;
mod recurrent;
mod reduce;
mod softmax;
mod unary;
mod vmath;
mod wide;
mod winograd;

use rayon::prelude::*;
use std::mem::MaybeUninit;

use wide::widest_loop;

use super::precision::{current as current_precision, Precision};
use super::Backend;
use crate::backend::spec::{
    AdamStep, AxisDims, Binary, BroadcastPlan, Conv2dGeom, ConvGrads, LstmDims, LstmSeqDims,
    MatmulSpec, Pool, Reduce, SgdStep, SoftmaxKind, Unary,
};

/// Below this many elements a loop runs on the calling thread: handing work to rayon costs a few
/// microseconds, more than the loop itself.
pub(crate) const PARALLEL_MIN: usize = 1 << 15;
/// Elements per parallel task.
pub(crate) const CHUNK: usize = 1 << 13;

/// Set the number of CPU threads for every parallel loop and for GEMM. Call once, before the
/// first tensor operation; later calls with the same count are accepted, another count is an
/// error because rayon's global pool cannot be resized.
pub fn set_threads(threads: usize) -> Result<(), String> {
    let threads = threads.max(1);
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
    {
        Ok(()) => Ok(()),
        Err(_) if rayon::current_num_threads() == threads => Ok(()),
        Err(_) => Err(format!(
            "the CPU thread pool already runs {} threads; cannot switch to {threads}",
            rayon::current_num_threads()
        )),
    }
}

/// The output block side (2 or 4) of the Winograd tiles this CPU convolves `g` (f32,
/// `filters` filters) in, or `None` for unfolded columns: lets the tests check that each
/// method is covered.
pub fn conv_tile_block(g: &Conv2dGeom, filters: usize) -> Option<usize> {
    conv::winograd_block(g, filters)
}

pub fn threads() -> usize {
    rayon::current_num_threads()
}

/// Run `f` on a worker of the CPU thread pool, so the parallel loops it starts split their work
/// with the calling thread. Called from outside the pool, each loop instead hands its work over,
/// wakes the workers and puts the caller to sleep until they finish: on 2 cores that costs
/// about 3% of mnist_cnn's epoch (and 4x the context switches).
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    // The closure given to `rayon::scope` runs in the pool.
    rayon::scope(|_| f())
}

/// A buffer of `len` values each written exactly once by `fill`, without zeroing it first:
/// `fill` receives the uninitialised slots (chunked by `row_len` for parallel fills) and must
/// write every one.
pub(crate) fn filled(len: usize, fill: impl FnOnce(&mut [std::mem::MaybeUninit<f32>])) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    fill(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: `fill` wrote all `len` slots (every caller's loop covers the whole buffer).
    unsafe { v.set_len(len) };
    v
}

/// `slots` set to zero and returned as values: the tasks of a parallel loop each zero their own
/// part of a fresh buffer this way (taken from `Vec::spare_capacity_mut`, then `set_len` once
/// every part is done) instead of one thread's calloc zeroing all of it while the rest wait.
pub(crate) fn zeroed(slots: &mut [std::mem::MaybeUninit<f32>]) -> &mut [f32] {
    slots.fill(std::mem::MaybeUninit::new(0.0));
    // SAFETY: every slot was just written.
    unsafe { written(slots) }
}

/// Slots that have all been written, seen as values.
///
/// # Safety
/// Every slot must hold an initialised value.
unsafe fn written(slots: &mut [std::mem::MaybeUninit<f32>]) -> &mut [f32] {
    // MaybeUninit<f32> has f32's layout.
    &mut *(slots as *mut [std::mem::MaybeUninit<f32>] as *mut [f32])
}

/// An initialised buffer seen as slots, for writers that also fill fresh (uninitialised) ones.
///
/// # Safety
/// Only initialised values may be written through the result: the buffer must stay valid.
pub(crate) unsafe fn as_slots(x: &mut [f32]) -> &mut [std::mem::MaybeUninit<f32>] {
    &mut *(x as *mut [f32] as *mut [std::mem::MaybeUninit<f32>])
}

/// `src` written into the slots `dst` (of the same length), which are returned as values.
#[inline(always)]
pub(crate) fn write_slots<'a>(
    dst: &'a mut [std::mem::MaybeUninit<f32>],
    src: &[f32],
) -> &'a mut [f32] {
    assert_eq!(dst.len(), src.len());
    for (d, &v) in dst.iter_mut().zip(src) {
        d.write(v);
    }
    // SAFETY: the loop wrote every slot (the lengths are equal).
    unsafe { written(dst) }
}

/// `out[i] = f(x[i])`, in parallel when large.
pub(crate) fn map1(x: &[f32], f: impl Fn(f32) -> f32 + Sync + Send) -> Vec<f32> {
    fill_chunks(x.len(), |first, dst| {
        let src = &x[first..][..dst.len()];
        widest_loop(|| {
            for (d, &v) in dst.iter_mut().zip(src) {
                d.write(f(v));
            }
        })
    })
}

/// A new buffer of `len` values written by `body(first, slots)` over chunks of `CHUNK`,
/// in parallel when large. `body` must write every slot it is given.
fn fill_chunks(
    len: usize,
    body: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync + Send,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    let slots = &mut out.spare_capacity_mut()[..len];
    if len < PARALLEL_MIN {
        body(0, slots);
    } else {
        slots
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(i, chunk)| body(i * CHUNK, chunk));
    }
    // SAFETY: every chunk was handed to `body`, which writes each of its slots.
    unsafe { out.set_len(len) };
    out
}

/// `out[i] = f(i)`, in parallel when large.
pub(crate) fn map_index(len: usize, f: impl Fn(usize) -> f32 + Sync + Send) -> Vec<f32> {
    if len < PARALLEL_MIN {
        return (0..len).map(f).collect();
    }
    let mut out = Vec::new();
    (0..len)
        .into_par_iter()
        .with_min_len(CHUNK)
        .map(f)
        .collect_into_vec(&mut out);
    out
}

/// `out[i] = f(a[i], b[i])`, in parallel when large.
pub(crate) fn map2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync + Send) -> Vec<f32> {
    assert_eq!(a.len(), b.len());
    fill_chunks(a.len(), |first, dst| {
        let (a, b) = (&a[first..][..dst.len()], &b[first..][..dst.len()]);
        widest_loop(|| {
            for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
                d.write(f(x, y));
            }
        })
    })
}

/// Run `body(first_row, rows)` over `out` split into rows of `row_len`, in parallel when `work`
/// (elements read or written in all) is large. Chunk boundaries depend only on the sizes.
pub(crate) fn for_rows<T: Send>(
    out: &mut [T],
    row_len: usize,
    work: usize,
    body: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    if row_len == 0 || out.is_empty() {
        return;
    }
    let rows = out.len() / row_len;
    if work < PARALLEL_MIN || rows < 2 {
        body(0, out);
        return;
    }
    let rows_per_chunk = CHUNK.div_ceil((work / rows).max(1));
    out.par_chunks_mut(rows_per_chunk * row_len)
        .enumerate()
        .for_each(|(i, chunk)| body(i * rows_per_chunk, chunk));
}

/// A new `[len / row_len, row_len]` buffer written by `body` as `for_rows` runs it, each task
/// zeroing its own chunk first (in cache, and in parallel: `vec![0.0; len]` is one thread's
/// memset of the whole buffer while the others wait).
pub(crate) fn new_rows(
    len: usize,
    row_len: usize,
    work: usize,
    body: impl Fn(usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    if row_len == 0 {
        return vec![0.0; len];
    }
    let mut out = Vec::with_capacity(len);
    for_rows(
        &mut out.spare_capacity_mut()[..len],
        row_len,
        work,
        |first, chunk| body(first, zeroed(chunk)),
    );
    // SAFETY: `for_rows` handed every slot to a task, which zeroed it.
    unsafe { out.set_len(len) };
    out
}

/// `body(row, a_row, b_row)` for every row of two outputs written side by side (`a` in rows
/// of `wa` values, `b` in rows of `wb`), split into parallel chunks as `for_rows` does once
/// `work` is large. Each row is independent, so the split does not change the result.
pub(crate) fn for_row_pairs<T: Send>(
    a: &mut [T],
    wa: usize,
    b: &mut [T],
    wb: usize,
    work: usize,
    body: impl Fn(usize, &mut [T], &mut [T]) + Sync + Send,
) {
    if wa == 0 || a.is_empty() {
        return;
    }
    let rows = a.len() / wa;
    let run = |first: usize, a: &mut [T], b: &mut [T]| {
        for (r, (a, b)) in a.chunks_mut(wa).zip(b.chunks_mut(wb.max(1))).enumerate() {
            body(first + r, a, b);
        }
    };
    if work < PARALLEL_MIN || rows < 2 {
        run(0, a, b);
        return;
    }
    let per = CHUNK.div_ceil((work / rows).max(1));
    a.par_chunks_mut(per * wa)
        .zip(b.par_chunks_mut(per * wb.max(1)))
        .enumerate()
        .for_each(|(i, (a, b))| run(i * per, a, b));
}

/// Two new buffers of `rows` rows (`wa` and `wb` values each) written by `body` as
/// `for_row_pairs` runs it. `body` must write every slot of the rows it is given: they are not
/// zeroed first (that memset was 0.9% of mnist_resnet's training time, in batchnorm).
pub(crate) fn new_row_pairs(
    rows: usize,
    wa: usize,
    wb: usize,
    work: usize,
    body: impl Fn(usize, &mut [MaybeUninit<f32>], &mut [MaybeUninit<f32>]) + Sync + Send,
) -> (Vec<f32>, Vec<f32>) {
    let (la, lb) = (rows * wa, rows * wb);
    if wa == 0 || wb == 0 {
        return (vec![0.0; la], vec![0.0; lb]);
    }
    let (mut a, mut b) = (Vec::with_capacity(la), Vec::with_capacity(lb));
    for_row_pairs(
        &mut a.spare_capacity_mut()[..la],
        wa,
        &mut b.spare_capacity_mut()[..lb],
        wb,
        work,
        body,
    );
    // SAFETY: `for_row_pairs` handed every row of both to `body`, which writes every slot.
    unsafe {
        a.set_len(la);
        b.set_len(lb);
    }
    (a, b)
}

/// The CPU backend.
pub struct Cpu;

impl Backend for Cpu {
    type Buf = Vec<f32>;

    fn full(len: usize, value: f32) -> Vec<f32> {
        vec![value; len]
    }

    fn unary_fwd(op: Unary, x: &Vec<f32>) -> Vec<f32> {
        unary::forward(op, x)
    }

    fn unary_bwd(op: Unary, x: &Vec<f32>, y: &Vec<f32>, dy: &Vec<f32>) -> Vec<f32> {
        unary::backward(op, x, y, dy)
    }

    fn binary_fwd(op: Binary, a: &Vec<f32>, b: &Vec<f32>, plan: &BroadcastPlan) -> Vec<f32> {
        binary::forward(op, a, b, plan)
    }

    fn reduce_fwd(op: Reduce, x: &Vec<f32>, d: AxisDims) -> Vec<f32> {
        reduce::forward(op, x, d)
    }

    fn max_bwd(x: &Vec<f32>, y: &Vec<f32>, dy: &Vec<f32>, d: AxisDims) -> Vec<f32> {
        reduce::max_backward(x, y, dy, d)
    }

    fn expand_axis(x: &Vec<f32>, d: AxisDims) -> Vec<f32> {
        reduce::expand_axis(x, d)
    }

    fn softmax_fwd(kind: SoftmaxKind, x: &Vec<f32>, d: AxisDims) -> Vec<f32> {
        softmax::forward(kind, x, d)
    }

    fn softmax_bwd(kind: SoftmaxKind, y: &Vec<f32>, dy: &Vec<f32>, d: AxisDims) -> Vec<f32> {
        softmax::backward(kind, y, dy, d)
    }

    fn matmul(a: &Vec<f32>, b: &Vec<f32>, spec: &MatmulSpec) -> Vec<f32> {
        let p = current_precision();
        matmul::matmul(&precision::rounded(a, p), &precision::rounded(b, p), spec)
    }

    fn im2col(x: &Vec<f32>, g: &Conv2dGeom) -> Vec<f32> {
        conv::im2col(x, g)
    }

    fn col2im(cols: &Vec<f32>, g: &Conv2dGeom) -> Vec<f32> {
        conv::col2im(cols, g)
    }

    fn conv2d_fwd(
        x: &Vec<f32>,
        w: &Vec<f32>,
        bias_relu: Option<&Vec<f32>>,
        g: &Conv2dGeom,
        filters: usize,
    ) -> Vec<f32> {
        // Rounding the input rounds every column im2col copies from it (padding is 0 either way).
        let p = current_precision();
        let (x, w) = (precision::rounded(x, p), precision::rounded(w, p));
        conv::conv2d_fwd(
            &x,
            &w,
            bias_relu.map(|b| b.as_slice()),
            g,
            filters,
            p == Precision::F32,
        )
    }

    fn conv2d_bwd(
        x: &Vec<f32>,
        w: &Vec<f32>,
        dy: &Vec<f32>,
        relu_out: Option<&Vec<f32>>,
        g: &Conv2dGeom,
        filters: usize,
        want: ConvGrads,
    ) -> (Option<Vec<f32>>, Option<Vec<f32>>, Option<Vec<f32>>) {
        let relu_out = relu_out.map(|y| y.as_slice());
        let p = current_precision();
        if p == Precision::F32 {
            let [dx, dw, dbias] = conv::conv2d_bwd(x, w, dy, relu_out, g, filters, want, true);
            return (dx, dw, dbias);
        }
        // The products take rounded operands (dx = wᵀ·dy, dw = dy·colsᵀ); the bias gradient is
        // a reduction, so it sums the f32 dy, as CUDA's composed backward does.
        let (xr, wr, dyr) = (
            precision::rounded(x, p),
            precision::rounded(w, p),
            precision::rounded(dy, p),
        );
        let products = ConvGrads {
            dbias: false,
            ..want
        };
        let [dx, dw, _] = conv::conv2d_bwd(&xr, &wr, &dyr, relu_out, g, filters, products, false);
        let dbias = match relu_out {
            Some(y) if want.dbias => Some(bias::backward(y, dy, g.channel_dims(filters)).1),
            _ => None,
        };
        (dx, dw, dbias)
    }

    fn pool2d_fwd(kind: Pool, x: &Vec<f32>, g: &Conv2dGeom) -> Vec<f32> {
        pool::forward(kind, x, g)
    }

    fn max_pool2d_fwd(x: &Vec<f32>, g: &Conv2dGeom) -> (Vec<f32>, Vec<f32>) {
        pool::max_forward_with_argmax(x, g)
    }

    fn max_pool2d_bwd(argmax: &Vec<f32>, dy: &Vec<f32>, g: &Conv2dGeom) -> Vec<f32> {
        pool::max_backward(argmax, dy, g)
    }

    fn avg_pool2d_bwd(dy: &Vec<f32>, g: &Conv2dGeom) -> Vec<f32> {
        pool::avg_backward(dy, g)
    }

    fn permute(x: &Vec<f32>, dims: &[usize], perm: &[usize]) -> Vec<f32> {
        layout::permute(x, dims, perm)
    }

    fn slice_axis(x: &Vec<f32>, d: AxisDims, start: usize, len: usize) -> Vec<f32> {
        layout::slice_axis(x, d, start, len)
    }

    fn pad_axis(x: &Vec<f32>, d: AxisDims, start: usize, full_len: usize) -> Vec<f32> {
        layout::pad_axis(x, d, start, full_len)
    }

    fn cat_axis(parts: &[&Vec<f32>], outer: usize, lens: &[usize], inner: usize) -> Vec<f32> {
        layout::cat_axis(parts, outer, lens, inner)
    }

    fn gather_rows(x: &Vec<f32>, row_len: usize, idx: &[u32]) -> Vec<f32> {
        layout::gather_rows(x, row_len, idx)
    }

    fn scatter_add_rows(dy: &Vec<f32>, rows: usize, row_len: usize, idx: &[u32]) -> Vec<f32> {
        layout::scatter_add_rows(dy, rows, row_len, idx)
    }

    fn cross_entropy_fwd(logits: &Vec<f32>, targets: &Vec<f32>, n: usize, c: usize) -> Vec<f32> {
        loss::cross_entropy_forward(logits, targets, n, c)
    }

    fn cross_entropy_bwd(
        logits: &Vec<f32>,
        targets: &Vec<f32>,
        dloss: &Vec<f32>,
        n: usize,
        c: usize,
    ) -> Vec<f32> {
        loss::cross_entropy_backward(logits, targets, dloss[0], n, c)
    }

    fn sgd_update(p: &mut Vec<f32>, g: &Vec<f32>, momentum: Option<&mut Vec<f32>>, h: &SgdStep) {
        optim::sgd(p, g, momentum.map(|b| b.as_mut_slice()), h)
    }

    fn adam_update(
        p: &mut Vec<f32>,
        g: &Vec<f32>,
        m: &mut Vec<f32>,
        v: &mut Vec<f32>,
        h: &AdamStep,
    ) {
        optim::adam(p, g, m, v, h)
    }

    fn bias_relu_fwd(x: &Vec<f32>, bias: &Vec<f32>, d: AxisDims) -> Vec<f32> {
        bias::forward(x, bias, d)
    }

    fn bias_relu_bwd(y: &Vec<f32>, dy: &Vec<f32>, d: AxisDims) -> (Vec<f32>, Vec<f32>) {
        bias::backward(y, dy, d)
    }

    fn batch_norm_fwd(
        x: &Vec<f32>,
        w: &Vec<f32>,
        b: &Vec<f32>,
        d: AxisDims,
        eps: f32,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
        norm::forward(x, w, b, d, eps)
    }

    fn batch_norm_bwd(
        x_hat: &Vec<f32>,
        var: &Vec<f32>,
        w: &Vec<f32>,
        dy: &Vec<f32>,
        d: AxisDims,
        eps: f32,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        norm::backward(x_hat, var, w, dy, d, eps)
    }

    fn lstm_cell_fwd(
        xt: &Vec<f32>,
        hw: &Vec<f32>,
        h: &Vec<f32>,
        c: &Vec<f32>,
        keep: &Vec<f32>,
        d: LstmDims,
    ) -> (Vec<f32>, Vec<f32>) {
        recurrent::forward(xt, hw, h, c, keep, d)
    }

    fn lstm_cell_bwd(
        saved: &Vec<f32>,
        c: &Vec<f32>,
        keep: &Vec<f32>,
        dy: &Vec<f32>,
        d: LstmDims,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        recurrent::backward(saved, c, keep, dy, d)
    }

    fn lstm_seq_fwd(
        xw: &Vec<f32>,
        bias: &Vec<f32>,
        w_hh: &Vec<f32>,
        keep: &Vec<f32>,
        d: LstmSeqDims,
    ) -> (Vec<f32>, Vec<f32>) {
        recurrent::sequence_forward(xw, bias, w_hh, keep, d, current_precision())
    }

    fn lstm_seq_bwd(
        saved: &Vec<f32>,
        w_hh: &Vec<f32>,
        keep: &Vec<f32>,
        dy: &Vec<f32>,
        d: LstmSeqDims,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        recurrent::sequence_backward(saved, w_hh, keep, dy, d, current_precision())
    }

    fn dropout_mask(len: usize, rate: f32, seed: u64, first: u64) -> Vec<f32> {
        random::dropout_mask(len, rate, seed, first)
    }
}
