//! Matrix products through the `gemm` crate; transposes are strides, never copies.

use std::mem::MaybeUninit;

use gemm::Parallelism;
use rayon::prelude::*;

use super::filled;
use super::layout::permute;
use crate::backend::spec::MatmulSpec;

/// From this many multiply-adds up, gemm splits a product across threads. Below it, splitting
/// costs more than it saves (measured on 2 cores: 128³ runs at 154 GFLOP/s on one thread and 99
/// on two; the MLP's 32×784×128 at 101 and 50; 256³ at 174 and 218), so a product runs whole on
/// one thread and a batch of them runs one product per thread.
const THREADED_PRODUCT: usize = 1 << 23;

pub fn matmul(a: &[f32], b: &[f32], s: &MatmulSpec) -> Vec<f32> {
    let size = s.m * s.n;
    if size == 0 || s.k == 0 {
        return vec![0.0; s.batch * size];
    }
    if s.batch == 1 && s.trans_a && !s.trans_b && s.n < 64 && s.m >= 4 * s.n {
        // C = Aᵀ·B with few columns (a weight gradient dyᵀ·x over few inputs, as an LSTM's
        // W_ih [512, 28]): gemm vectorises along C's rows, which 28 values fill badly. Cᵀ =
        // Bᵀ·A has rows of m and multiplies 10-20% faster at 512×1792×28; turned after.
        let swapped = MatmulSpec {
            m: s.n,
            n: s.m,
            a_batch_stride: s.b_batch_stride,
            b_batch_stride: s.a_batch_stride,
            ..*s
        };
        return permute(&matmul(b, a, &swapped), &[s.n, s.m], &[1, 0]);
    }
    let one = |i: usize, dst: &mut [MaybeUninit<f32>], par: Parallelism| {
        let a = &a[i * s.a_batch_stride..];
        let b = &b[i * s.b_batch_stride..];
        product_uninit(a, b, dst, s, par);
    };
    let par = product_parallelism(s);
    // gemm overwrites every element (read_dst = false): the output needs no zeroing first.
    filled(s.batch * size, |slots| {
        if !matches!(par, Parallelism::None) {
            for (i, dst) in slots.chunks_mut(size).enumerate() {
                one(i, dst, par);
            }
        } else if s.batch > 1 {
            slots
                .par_chunks_mut(size)
                .enumerate()
                .for_each(|(i, dst)| one(i, dst, Parallelism::None));
        } else {
            one(0, slots, Parallelism::None);
        }
    })
}

/// `dst[m, n] = op(a) · op(b)`, op = transpose when the spec says so (one product of a
/// batch; `s.batch` is ignored).
pub fn product_uninit(
    a: &[f32],
    b: &[f32],
    dst: &mut [MaybeUninit<f32>],
    s: &MatmulSpec,
    par: Parallelism,
) {
    assert!(dst.len() == s.m * s.n);
    // SAFETY: `dst` is exclusively borrowed and holds m·n slots; with read_dst = false gemm
    // only writes them, so they may start uninitialised.
    unsafe { gemm_raw(a, b, dst.as_mut_ptr().cast::<f32>(), s, false, par) }
}

/// One product of a batch (`s.batch` is ignored) into an initialised `dst[m, n]`: written
/// over, or added to when `accumulate` (a convolution's weight gradient summed over images).
pub fn product_into(
    a: &[f32],
    b: &[f32],
    dst: &mut [f32],
    s: &MatmulSpec,
    accumulate: bool,
    par: Parallelism,
) {
    assert!(dst.len() == s.m * s.n);
    // SAFETY: `dst` is exclusively borrowed, initialised and holds m·n elements.
    unsafe { gemm_raw(a, b, dst.as_mut_ptr(), s, accumulate, par) }
}

/// A matrix operand read in place through strides: element (i, j) at `i·rs + j·cs` of `data`
/// (a row range of a larger buffer, every other column block, a transpose).
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl View<'_> {
    /// Whether every element of a `[rows, cols]` matrix lies inside `data`.
    fn holds(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// `dst[m, n]` (row stride `dst_rs`) = `a[m, k] · b[k, n]`, or added to it when `accumulate`.
#[allow(clippy::too_many_arguments)]
pub fn product_view(
    (m, n, k): (usize, usize, usize),
    a: View,
    b: View,
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    par: Parallelism,
) {
    assert!(a.holds(m, k) && b.holds(k, n));
    assert!(m == 0 || n == 0 || (m - 1) * dst_rs + n <= dst.len());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.chunks_mut(dst_rs)
                .take(m)
                .for_each(|r| r[..n].fill(0.0));
        }
        return;
    }
    // SAFETY: the asserts bound every element the strides reach in `a`, `b` and `dst`; `dst`
    // is exclusively borrowed and initialised, so it may be read when accumulating.
    unsafe { gemm_views((m, n, k), a, b, dst.as_mut_ptr(), dst_rs, accumulate, par) }
}

/// The parallelism for one product of the spec's size (see `THREADED_PRODUCT`).
pub fn product_parallelism(s: &MatmulSpec) -> Parallelism {
    parallelism((s.m, s.n, s.k))
}

/// The parallelism for one `[m, k] · [k, n]` product (see `THREADED_PRODUCT`).
pub fn parallelism((m, n, k): (usize, usize, usize)) -> Parallelism {
    if m * n * k >= THREADED_PRODUCT {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    }
}

/// # Safety
/// `dst` must point to m·n writable f32 slots, not aliasing `a` or `b`, initialised when
/// `read_dst`.
unsafe fn gemm_raw(
    a: &[f32],
    b: &[f32],
    dst: *mut f32,
    s: &MatmulSpec,
    read_dst: bool,
    par: Parallelism,
) {
    // Row and column strides of op(a) [m, k] and op(b) [k, n] within their row-major storage.
    let (rs, cs) = if s.trans_a { (1, s.m) } else { (s.k, 1) };
    let a = View { data: a, rs, cs };
    let (rs, cs) = if s.trans_b { (1, s.k) } else { (s.n, 1) };
    let b = View { data: b, rs, cs };
    assert!(a.holds(s.m, s.k) && b.holds(s.k, s.n));
    // SAFETY: the assert above bounds every index the strides reach in `a` and `b`; the caller
    // vouches for `dst`.
    unsafe { gemm_views((s.m, s.n, s.k), a, b, dst, s.n, read_dst, par) }
}

/// `dst = op(a)·op(b)`, or `dst += ...` when `read_dst`, through gemm.
///
/// # Safety
/// Every element of `a` `[m, k]` and `b` `[k, n]` the strides reach must lie inside their
/// data; `dst` must point to m rows of n writable f32 slots `dst_rs` apart, not aliasing `a`
/// or `b`, initialised when `read_dst`.
unsafe fn gemm_views(
    (m, n, k): (usize, usize, usize),
    a: View,
    b: View,
    dst: *mut f32,
    dst_rs: usize,
    read_dst: bool,
    par: Parallelism,
) {
    // SAFETY: as the caller vouches. gemm computes dst = alpha·dst + beta·a·b, reading dst
    // only when read_dst.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            read_dst,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}
