//! The Winograd kernels in AVX-512 registers, the one path the tiles take (`available`): the
//! products, the reduction and the output-gradient transform of both block sizes, and the
//! F(2×2, 3×3) output transform (`f4_avx512` has the F(4×4) transforms).
//! The portable loops in the parent module stay as the reference the unit tests check these
//! against: the compiler turned them into separate multiplies and adds with bounds checks
//! (products), gathers (the filter-gradient reduction, 10x slower) and extra passes through
//! scratch arrays (the output transform). The input transform written the same way was no
//! faster (4.8 µs an image either way, bound by its stores): it stays portable.

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use super::{as_slots_ref, copy_row, for_filter_blocks, Tiles, LANES, TILE};

/// Lanes that interleave the first (last) 8 entries of two vectors: a₀ b₀ a₁ b₁ ...
pub(super) const LOW_PAIRS: [i32; 16] = [0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23];
pub(super) const HIGH_PAIRS: [i32; 16] =
    [8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31];

#[target_feature(enable = "avx512f")]
pub(super) fn lanes(idx: &[i32; 16]) -> __m512i {
    // SAFETY: the array holds 16 values.
    unsafe { _mm512_loadu_si512(idx.as_ptr().cast()) }
}

/// Aᵀ m A for every tile of every filter, interleaved into y `[f, oh, ow]`: the same
/// operations in the same order as `transform_output_portable`, 16 tiles at a time, each
/// output row parity interleaved in registers into `rows` `[2, 2·span]`, then copied out.
///
/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn transform_output(m: &[f32], t: &Tiles, rows: &mut [f32], y: &mut [MaybeUninit<f32>]) {
    let (n, span, f) = (t.th * t.s, t.span, t.f);
    let ms = t.m_stride();
    assert!(t.r == 2 && m.len() >= (TILE - 1) * ms + f * span && rows.len() >= 4 * span);
    assert_eq!(y.len(), f * t.oh * t.ow);
    let (low, high) = (lanes(&LOW_PAIRS), lanes(&HIGH_PAIRS));
    for (fi, plane) in y.chunks_exact_mut(t.oh * t.ow).enumerate() {
        // SAFETY: reads stay inside M's 16 positions of [f, span] (k0 + 16 ≤ span, fi < f)
        // and writes inside rows' [2, 2·span].
        unsafe {
            let mp = m.as_ptr().add(fi * span);
            for k0 in (0..n).step_by(LANES) {
                let x = |xi: usize| _mm512_loadu_ps(mp.add(xi * ms + k0));
                // Down the columns: column j of the tile's two rows of Aᵀ m.
                let mut cols = [[_mm512_setzero_ps(); 4]; 2];
                let [top, bottom] = &mut cols;
                for (j, (t, b)) in top.iter_mut().zip(bottom.iter_mut()).enumerate() {
                    let (x0, x1, x2, x3) = (x(j), x(4 + j), x(8 + j), x(12 + j));
                    *t = _mm512_add_ps(_mm512_add_ps(x0, x1), x2);
                    *b = _mm512_sub_ps(_mm512_sub_ps(x1, x2), x3);
                }
                for (a, c) in cols.iter().enumerate() {
                    let even = _mm512_add_ps(_mm512_add_ps(c[0], c[1]), c[2]);
                    let odd = _mm512_sub_ps(_mm512_sub_ps(c[1], c[2]), c[3]);
                    let dst = rows.as_mut_ptr().add(a * 2 * span + 2 * k0);
                    _mm512_storeu_ps(dst, _mm512_permutex2var_ps(even, low, odd));
                    _mm512_storeu_ps(dst.add(LANES), _mm512_permutex2var_ps(even, high, odd));
                }
            }
        }
        for (oy, dst) in plane.chunks_exact_mut(t.ow).enumerate() {
            let src = &rows[(oy % 2) * 2 * span + (oy / 2) * 2 * t.s..][..t.ow];
            copy_row(dst, as_slots_ref(src));
        }
    }
}

// The products: `products_portable` with fused multiply-adds.

/// `NF` filters × `NV` vectors of tiles from (f0, k0): M[f][k] = Σ_c U[f][c]·V[c][k].
#[target_feature(enable = "avx512f")]
fn product_block<const NF: usize, const NV: usize>(
    u: &[f32],
    v: &[f32],
    m: &mut [f32],
    (c, span): (usize, usize),
    (f0, k0): (usize, usize),
) {
    let end = k0 + NV * LANES;
    assert!(c >= 1 && (f0 + NF) * c <= u.len());
    assert!((c - 1) * span + end <= v.len() && (f0 + NF - 1) * span + end <= m.len());
    let mut acc = [[_mm512_setzero_ps(); NV]; NF];
    // SAFETY: every offset below is inside the bounds asserted above.
    unsafe {
        let (up, vp) = (u.as_ptr().add(f0 * c), v.as_ptr().add(k0));
        for ci in 0..c {
            let mut row = [_mm512_setzero_ps(); NV];
            for (j, r) in row.iter_mut().enumerate() {
                *r = _mm512_loadu_ps(vp.add(ci * span + j * LANES));
            }
            for (fi, acc) in acc.iter_mut().enumerate() {
                let w = _mm512_set1_ps(*up.add(fi * c + ci));
                for (a, &r) in acc.iter_mut().zip(&row) {
                    *a = _mm512_fmadd_ps(w, r, *a);
                }
            }
        }
        let mp = m.as_mut_ptr().add(f0 * span + k0);
        for (fi, acc) in acc.iter().enumerate() {
            for (j, &a) in acc.iter().enumerate() {
                _mm512_storeu_ps(mp.add(fi * span + j * LANES), a);
            }
        }
    }
}

/// Every tile block of `NF` filters from `f0`: 4 vectors at a time, then 2, then 1.
#[target_feature(enable = "avx512f")]
fn product_rows<const NF: usize>(
    u: &[f32],
    v: &[f32],
    m: &mut [f32],
    dims: (usize, usize),
    f0: usize,
) {
    let span = dims.1;
    let mut k0 = 0;
    while k0 + 4 * LANES <= span {
        product_block::<NF, 4>(u, v, m, dims, (f0, k0));
        k0 += 4 * LANES;
    }
    if k0 + 2 * LANES <= span {
        product_block::<NF, 2>(u, v, m, dims, (f0, k0));
        k0 += 2 * LANES;
    }
    if k0 < span {
        product_block::<NF, 1>(u, v, m, dims, (f0, k0));
    }
}

/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn products(u: &[f32], v: &[f32], m: &mut [f32], t: &Tiles) {
    let dims = (t.c, t.span);
    for_filter_blocks((u, v, m), t, |u, v, m, f0, four| match four {
        true => product_rows::<4>(u, v, m, dims, f0),
        false => product_rows::<1>(u, v, m, dims, f0),
    });
}

// The filter-gradient reduction: `reduce_portable` blocked in registers.

/// `NC` channels × `FV` vectors of filters from (c0, f0): dU[c][f] += Σ_k V[c][k]·M̄ᵀ[k][f],
/// each sum in its own lane in tile order (fused multiply-adds).
#[target_feature(enable = "avx512f")]
fn reduce_block<const NC: usize, const FV: usize>(
    mt: &[f32],
    v: &[f32],
    du: &mut [f32],
    t: &Tiles,
    (c0, f0): (usize, usize),
) {
    let (fp, span, n) = (t.fp(), t.span, t.th * t.s);
    assert!(n >= 1 && (n - 1) * fp + f0 + FV * LANES <= mt.len());
    assert!((c0 + NC - 1) * span + n <= v.len() && (c0 + NC) * fp <= du.len());
    let mut acc = [[_mm512_setzero_ps(); FV]; NC];
    // SAFETY: every offset read below is inside the bounds asserted above.
    unsafe {
        let (rows, xs) = (mt.as_ptr().add(f0), v.as_ptr().add(c0 * span));
        for k in 0..n {
            let mut row = [_mm512_setzero_ps(); FV];
            for (j, r) in row.iter_mut().enumerate() {
                *r = _mm512_loadu_ps(rows.add(k * fp + j * LANES));
            }
            for (ci, acc) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*xs.add(ci * span + k));
                for (a, &r) in acc.iter_mut().zip(&row) {
                    *a = _mm512_fmadd_ps(x, r, *a);
                }
            }
        }
        for (ci, acc) in acc.iter().enumerate() {
            for (j, &a) in acc.iter().enumerate() {
                let d = du.as_mut_ptr().add((c0 + ci) * fp + f0 + j * LANES);
                _mm512_storeu_ps(d, _mm512_add_ps(_mm512_loadu_ps(d), a));
            }
        }
    }
}

#[target_feature(enable = "avx512f")]
fn reduce_channels<const NC: usize, const FV: usize>(
    mt: &[f32],
    v: &[f32],
    du: &mut [f32],
    t: &Tiles,
    f0: usize,
) {
    let mut c0 = 0;
    while c0 + NC <= t.c {
        reduce_block::<NC, FV>(mt, v, du, t, (c0, f0));
        c0 += NC;
    }
    while c0 + 4 <= t.c {
        reduce_block::<4, FV>(mt, v, du, t, (c0, f0));
        c0 += 4;
    }
    while c0 < t.c {
        reduce_block::<1, FV>(mt, v, du, t, (c0, f0));
        c0 += 1;
    }
}

/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn reduce(mt: &[f32], v: &[f32], du: &mut [f32], t: &Tiles) {
    let (c, fp, span) = (t.c, t.fp(), t.span);
    for xi in 0..t.tile() {
        let mt = &mt[xi * t.g_stride()..][..span * fp];
        let v = &v[xi * t.v_stride()..][..c * span];
        let du = &mut du[xi * c * fp..][..c * fp];
        let mut f0 = 0;
        while f0 + 2 * LANES <= fp {
            reduce_channels::<8, 2>(mt, v, du, t, f0);
            f0 += 2 * LANES;
        }
        if f0 < fp {
            reduce_channels::<16, 1>(mt, v, du, t, f0);
        }
    }
}

// The output gradient's transform, for both block sizes.

/// dy `[f, oh, ow]` → A dy Aᵀ per tile into `mt` (positions `g_stride` apart, each
/// `[span, fp]`), one tile and 16 filters at a time: the tile's r×r pixels of 16 filters
/// gathered into vectors (one lane per filter) `d[a][b]` (a, b < r; the rest and pixels past
/// the output zero), `transform` gives its `N` positions, stored at the tile's entry. This
/// replaces a scalar scatter of dy into filters-last quads and vector passes over them
/// (blocks of 4: 11.3 → 3.5 µs an image at 16 filters on 28×28). The spare column's tiles are
/// never written and keep the zeros the scratch was made with; lanes past the filters are
/// masked to zero.
///
/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn gathered_output_grads<const N: usize>(
    dy: &[f32],
    t: &Tiles,
    mt: &mut [f32],
    transform: impl Fn(&[[__m512; 4]; 4]) -> [__m512; N],
) {
    let (fp, qs, plane, r) = (t.fp(), t.g_stride(), t.oh * t.ow, t.r);
    assert!(N == t.tile() && r <= 4 && dy.len() == t.f * plane);
    assert!(plane * LANES <= i32::MAX as usize && mt.len() >= (N - 1) * qs + t.span * fp);
    let offsets: [i32; 16] = std::array::from_fn(|l| (l * plane) as i32);
    let idx = lanes(&offsets);
    for f0 in (0..t.f).step_by(LANES) {
        let live: __mmask16 = if t.f - f0 >= LANES {
            0xffff
        } else {
            (1u16 << (t.f - f0)) - 1
        };
        for ty in 0..t.th {
            for tx in 0..t.s - 1 {
                let k = ty * t.s + tx;
                let pixel = |a: usize, b: usize| {
                    let (oy, ox) = (r * ty + a, r * tx + b);
                    if a >= r || b >= r || oy >= t.oh || ox >= t.ow {
                        return _mm512_setzero_ps();
                    }
                    // SAFETY: lane l reads dy[(f0 + l)·plane + oy·ow + ox], inside dy for the
                    // live lanes (f0 + l < f); the others are masked off.
                    unsafe {
                        let base = dy.as_ptr().add(f0 * plane + oy * t.ow + ox);
                        _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), live, idx, base.cast())
                    }
                };
                let d: [[__m512; 4]; 4] =
                    std::array::from_fn(|a| std::array::from_fn(|b| pixel(a, b)));
                for (xi, &v) in transform(&d).iter().enumerate() {
                    // SAFETY: xi·qs + k·fp + f0 + 16 ≤ (N − 1)·qs + span·fp (k < th·s ≤ span,
                    // f0 + 16 ≤ fp), inside mt as asserted.
                    unsafe {
                        let at = xi * qs + k * fp + f0;
                        _mm512_storeu_ps(mt.as_mut_ptr().add(at), v);
                    }
                }
            }
        }
    }
}

/// A dy Aᵀ of each tile's 2×2 pixels in registers: the same operations as
/// `transform_output_grads` (row i of A dy down each column, spread along the row as
/// [a₀, a₀ + a₁, a₀ − a₁, −a₁]), negation by the sign bit as there.
///
/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn output_grads(dy: &[f32], t: &Tiles, mt: &mut [f32]) {
    assert_eq!(t.r, 2);
    let sign = _mm512_set1_epi32(i32::MIN);
    let neg = |x: __m512| _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), sign));
    // SAFETY: the caller's CPU has AVX-512F.
    unsafe {
        gathered_output_grads::<TILE>(dy, t, mt, |d| {
            let ([t0, t1], [b0, b1]) = ([d[0][0], d[0][1]], [d[1][0], d[1][1]]);
            let rows = [
                (t0, t1),
                (_mm512_add_ps(t0, b0), _mm512_add_ps(t1, b1)),
                (_mm512_sub_ps(t0, b0), _mm512_sub_ps(t1, b1)),
                (neg(b0), neg(b1)),
            ];
            let line = |(a0, a1): (__m512, __m512)| {
                [a0, _mm512_add_ps(a0, a1), _mm512_sub_ps(a0, a1), neg(a1)]
            };
            let lines = rows.map(line);
            std::array::from_fn(|xi| lines[xi / 4][xi % 4])
        })
    }
}
