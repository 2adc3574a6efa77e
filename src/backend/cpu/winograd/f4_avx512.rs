//! The F(4×4, 3×3) transforms in AVX-512 registers, the path the blocks of 4 take on the CPUs
//! that run tiles (`available`). `f4`'s portable loops stay as the references the unit tests
//! check these against: the compiler left their row pass (tile k reads entries 4k .. 4k + 5)
//! scalar, and their output transform spilled its 36 vectors through arrays. Same operations
//! in the same order as the portable ones, never fused, so the bits agree.

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use super::avx512::{gathered_output_grads, lanes, HIGH_PAIRS, LOW_PAIRS};
use super::f4::{column_pass, row_stride, PADDED_SLACK, TILE};
use super::{as_slots_ref, copy_row, pad_plane, Scratch, Tiles, LANES};

/// Lanes of two vectors that take every 4th value from q and q + 1 (8 each): lanes 0-7 hold
/// entries q, q + 4, ..., q + 28 of the pair, lanes 8-15 the same from q + 1.
const fn every_fourth(q: i32) -> [i32; 16] {
    let mut idx = [0; 16];
    let mut l = 0;
    while l < 8 {
        idx[l] = q + 4 * l as i32;
        idx[l + 8] = q + 1 + 4 * l as i32;
        l += 1;
    }
    idx
}

/// Lanes 0-7 (8-15) of two vectors, joined: the low (high) halves of a and b.
const LOW_HALVES: [i32; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];
const HIGH_HALVES: [i32; 16] = [8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31];
/// Lanes that interleave the first (last) 4 pairs of values of two vectors (64-bit lanes), as
/// `avx512::LOW_PAIRS` (`HIGH_PAIRS`) interleave single values.
const LOW_PAIRS_64: [i64; 8] = [0, 8, 1, 9, 2, 10, 3, 11];
const HIGH_PAIRS_64: [i64; 8] = [4, 12, 5, 13, 6, 14, 7, 15];

#[target_feature(enable = "avx512f")]
fn lanes_64(idx: &[i64; 8]) -> __m512i {
    // SAFETY: the array holds 8 values.
    unsafe { _mm512_loadu_si512(idx.as_ptr().cast()) }
}

#[target_feature(enable = "avx512f")]
fn add(a: __m512, b: __m512) -> __m512 {
    _mm512_add_ps(a, b)
}

#[target_feature(enable = "avx512f")]
fn sub(a: __m512, b: __m512) -> __m512 {
    _mm512_sub_ps(a, b)
}

#[target_feature(enable = "avx512f")]
fn times(c: f32, a: __m512) -> __m512 {
    _mm512_mul_ps(_mm512_set1_ps(c), a)
}

/// `f4::input_line` on 16 lanes.
#[target_feature(enable = "avx512f")]
fn input_line([d0, d1, d2, d3, d4, d5]: [__m512; 6]) -> [__m512; 6] {
    let (a, b) = (sub(d4, times(4.0, d2)), sub(d3, times(4.0, d1)));
    let (c, e) = (sub(d4, d2), times(2.0, sub(d3, d1)));
    [
        add(sub(times(4.0, d0), times(5.0, d2)), d4),
        add(a, b),
        sub(a, b),
        add(c, e),
        sub(c, e),
        add(sub(times(4.0, d1), times(5.0, d3)), d5),
    ]
}

/// `f4::output_line` on 16 lanes.
#[target_feature(enable = "avx512f")]
fn output_line([m0, m1, m2, m3, m4, m5]: [__m512; 6]) -> [__m512; 4] {
    let (sum12, dif12, sum34, dif34) = (add(m1, m2), sub(m1, m2), add(m3, m4), sub(m3, m4));
    [
        add(add(m0, sum12), sum34),
        add(dif12, times(2.0, dif34)),
        add(sum12, times(4.0, sum34)),
        add(add(dif12, times(8.0, dif34)), m5),
    ]
}

/// `f4::row_pass` 16 tiles at a time: a block's 66 entries (4 vectors and 2 values) split
/// into d₀..d₃ by two rounds of permutes, d₄ and d₅ the next tile's d₀ and d₁.
#[target_feature(enable = "avx512f")]
fn row_pass(padded: &[f32], rows: &mut [f32], t: &Tiles) {
    let (g, gs) = (t.grid, row_stride(t));
    let n = g - 1;
    assert!(padded.len() >= 16 * g + PADDED_SLACK && rows.len() >= 24 * gs);
    let pick = [0, 2].map(|q| lanes(&every_fourth(q)));
    let (low, high) = (lanes(&LOW_HALVES), lanes(&HIGH_HALVES));
    for q in 0..4 {
        for k0 in (0..n).step_by(LANES) {
            // SAFETY: reads end at 4·q·g + 4·k0 + 66 ≤ 16g + PADDED_SLACK (k0 < n = g − 1);
            // writes at (6q + j)·gs + k0 + 16 ≤ 24·gs (k0 < g ≤ gs, both whole vectors).
            unsafe {
                let p = padded.as_ptr().add(4 * q * g + 4 * k0);
                let [a, b, c, d] = [0, 1, 2, 3].map(|i| _mm512_loadu_ps(p.add(16 * i)));
                // [d0 | d1] and [d2 | d3] of the first 8 tiles (a, b) and the last 8 (c, d).
                let first = pick.map(|idx| _mm512_permutex2var_ps(a, idx, b));
                let last = pick.map(|idx| _mm512_permutex2var_ps(c, idx, d));
                let mut ds = [_mm512_setzero_ps(); 6];
                for h in 0..2 {
                    ds[2 * h] = _mm512_permutex2var_ps(first[h], low, last[h]);
                    ds[2 * h + 1] = _mm512_permutex2var_ps(first[h], high, last[h]);
                }
                // d4, d5: d0, d1 shifted one tile, the next block's first tile at the end.
                let next = |e: usize| _mm512_set1_ps(*p.add(64 + e));
                ds[4] = _mm512_castsi512_ps(_mm512_alignr_epi32(
                    _mm512_castps_si512(next(0)),
                    _mm512_castps_si512(ds[0]),
                    1,
                ));
                ds[5] = _mm512_castsi512_ps(_mm512_alignr_epi32(
                    _mm512_castps_si512(next(1)),
                    _mm512_castps_si512(ds[1]),
                    1,
                ));
                let h = input_line(ds);
                let out = rows.as_mut_ptr().add(6 * q * gs + k0);
                for (j, &hj) in h.iter().enumerate() {
                    _mm512_storeu_ps(out.add(j * gs), hj);
                }
            }
        }
    }
}

/// `f4::transform_input` with the row pass in registers; the column pass (contiguous
/// streams) is the portable loop, compiled here for AVX-512.
///
/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn transform_input(image: &[f32], t: &Tiles, s: &mut Scratch) {
    for (ci, plane) in image.chunks_exact(t.h * t.w).enumerate() {
        pad_plane(plane, t, &mut s.padded);
        row_pass(&s.padded, &mut s.rows, t);
        column_pass(&s.rows, &mut s.v, t, ci);
    }
}

/// `f4::transform_output`: 16 tiles at a time in registers, each output row mod 4 interleaved
/// by two rounds of permutes into `rows` `[4, 4·span]`, then copied out row by row.
///
/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn transform_output(m: &[f32], t: &Tiles, rows: &mut [f32], y: &mut [MaybeUninit<f32>]) {
    let (n, span, f, ms) = (t.th * t.s, t.span, t.f, t.m_stride());
    assert!(t.r == 4 && m.len() >= (TILE - 1) * ms + f * span && rows.len() >= 16 * span);
    assert_eq!(y.len(), f * t.oh * t.ow);
    let (low, high) = (lanes(&LOW_PAIRS), lanes(&HIGH_PAIRS));
    let (low64, high64) = (lanes_64(&LOW_PAIRS_64), lanes_64(&HIGH_PAIRS_64));
    for (fi, plane) in y.chunks_exact_mut(t.oh * t.ow).enumerate() {
        for k0 in (0..n).step_by(LANES) {
            // SAFETY: reads inside M's 36 positions of [f, span] (k0 + 16 ≤ span, fi < f,
            // asserted above), writes inside
            // rows' [4, 4·span] (4·k0 + 64 ≤ 4·span).
            unsafe {
                let mp = m.as_ptr().add(fi * span + k0);
                let x = |xi: usize| _mm512_loadu_ps(mp.add(xi * ms));
                // cols[j][a]: row a of Aᵀ m in column j; rows[a][j] the same by row.
                let cols: [[__m512; 4]; 6] =
                    std::array::from_fn(|j| output_line(std::array::from_fn(|i| x(6 * i + j))));
                let by_row: [[__m512; 6]; 4] =
                    std::array::from_fn(|a| std::array::from_fn(|j| cols[j][a]));
                for (a, &row) in by_row.iter().enumerate() {
                    let [o0, o1, o2, o3] = output_line(row);
                    // Pairs (o0, o1) and (o2, o3) per tile, then the two pairs per tile.
                    let (p01_low, p01_high) = (
                        _mm512_permutex2var_ps(o0, low, o1),
                        _mm512_permutex2var_ps(o0, high, o1),
                    );
                    let (p23_low, p23_high) = (
                        _mm512_permutex2var_ps(o2, low, o3),
                        _mm512_permutex2var_ps(o2, high, o3),
                    );
                    let join = |x: __m512, idx: __m512i, y: __m512| {
                        _mm512_castpd_ps(_mm512_permutex2var_pd(
                            _mm512_castps_pd(x),
                            idx,
                            _mm512_castps_pd(y),
                        ))
                    };
                    let dst = rows.as_mut_ptr().add(a * 4 * span + 4 * k0);
                    _mm512_storeu_ps(dst, join(p01_low, low64, p23_low));
                    _mm512_storeu_ps(dst.add(LANES), join(p01_low, high64, p23_low));
                    _mm512_storeu_ps(dst.add(2 * LANES), join(p01_high, low64, p23_high));
                    _mm512_storeu_ps(dst.add(3 * LANES), join(p01_high, high64, p23_high));
                }
            }
        }
        for (oy, dst) in plane.chunks_exact_mut(t.ow).enumerate() {
            let src = &rows[(oy % 4) * 4 * span + (oy / 4) * 4 * t.s..][..t.ow];
            copy_row(dst, as_slots_ref(src));
        }
    }
}

/// `f4::output_grad_line` on 16 lanes.
#[target_feature(enable = "avx512f")]
fn output_grad_line([e0, e1, e2, e3]: [__m512; 4]) -> [__m512; 6] {
    let (even, odd) = (add(e0, e2), add(e1, e3));
    let (even4, odd2) = (add(e0, times(4.0, e2)), add(times(2.0, e1), times(8.0, e3)));
    [
        e0,
        add(even, odd),
        sub(even, odd),
        add(even4, odd2),
        sub(even4, odd2),
        e3,
    ]
}

/// `f4::output_grads`: A dy Aᵀ of each tile's 4×4 pixels in registers
/// (`avx512::gathered_output_grads`).
///
/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn output_grads(dy: &[f32], t: &Tiles, mt: &mut [f32]) {
    assert_eq!(t.r, 4);
    // SAFETY: the caller's CPU has AVX-512F.
    unsafe {
        gathered_output_grads::<TILE>(dy, t, mt, |d| {
            // cols[b][i] = row i of A dy in column b; by_row[i][b] the same by row.
            let cols: [[__m512; 6]; 4] =
                std::array::from_fn(|b| output_grad_line(std::array::from_fn(|a| d[a][b])));
            let by_row: [[__m512; 4]; 6] =
                std::array::from_fn(|i| std::array::from_fn(|b| cols[b][i]));
            let lines = by_row.map(|row| output_grad_line(row));
            std::array::from_fn(|xi| lines[xi / 6][xi % 6])
        })
    }
}
