//! The F(4×4, 3×3) transforms (Lavin and Gray's interpolation points 0, ±1, ±2): each 4×4
//! block of outputs from a 6×6 input tile, 36 products per 16 outputs where F(2×2, 3×3) takes
//! 64, and 2.25 transformed values per pixel where it writes 4. The coefficients reach 8 and
//! ⅟24, so the rounding is about 8x F(2×2)'s (a relative 1e-6 in f32 over 16 channels):
//! `Tiles::new` takes these blocks only on planes large enough to gain from them.
//!
//! The layout is the parent module's with blocks of 4: a plane's padded rows are split by row
//! mod 4 (`[4, th + 1, 4s]`), tile k of a group reads its entries 4k .. 4k + 5, and the
//! transformed planes, products and gradients hold 36 positions (6i + j, i down) of `span`.

use std::mem::MaybeUninit;

use super::{as_slots_ref, copy_row, widest, windows_mut, Scratch, Tiles, LANES};

/// Positions of a transformed 6×6 tile.
pub(super) const TILE: usize = 36;

/// Bᵀ along one line of a tile: Bᵀ = [[4, 0, −5, 0, 1, 0], [0, −4, −4, 1, 1, 0],
/// [0, 4, −4, −1, 1, 0], [0, −2, −1, 2, 1, 0], [0, 2, −1, −2, 1, 0], [0, 4, 0, −5, 0, 1]].
#[inline(always)]
fn input_line([d0, d1, d2, d3, d4, d5]: [f32; 6]) -> [f32; 6] {
    let (a, b) = (d4 - 4.0 * d2, d3 - 4.0 * d1);
    let (c, e) = (d4 - d2, 2.0 * (d3 - d1));
    [
        4.0 * d0 - 5.0 * d2 + d4,
        a + b,
        a - b,
        c + e,
        c - e,
        4.0 * d1 - 5.0 * d3 + d5,
    ]
}

/// Aᵀ along one line: Aᵀ = [[1, 1, 1, 1, 1, 0], [0, 1, −1, 2, −2, 0], [0, 1, 1, 4, 4, 0],
/// [0, 1, −1, 8, −8, 1]].
#[inline(always)]
fn output_line([m0, m1, m2, m3, m4, m5]: [f32; 6]) -> [f32; 4] {
    let (sum12, dif12, sum34, dif34) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4);
    [
        m0 + sum12 + sum34,
        dif12 + 2.0 * dif34,
        sum12 + 4.0 * sum34,
        dif12 + 8.0 * dif34 + m5,
    ]
}

/// A along one line of the output gradient (A = (Aᵀ)ᵀ, 6 values from 4).
#[inline(always)]
fn output_grad_line([e0, e1, e2, e3]: [f32; 4]) -> [f32; 6] {
    let (even, odd) = (e0 + e2, e1 + e3);
    let (even4, odd2) = (e0 + 4.0 * e2, 2.0 * e1 + 8.0 * e3);
    [e0, even + odd, even - odd, even4 + odd2, even4 - odd2, e3]
}

/// G along one line of a filter: G = [[¼, 0, 0], [−⅙, −⅙, −⅙], [−⅙, ⅙, −⅙],
/// [⅟24, ⅟12, ⅙], [⅟24, −⅟12, ⅙], [0, 0, 1]].
fn filter_line([g0, g1, g2]: [f32; 3]) -> [f32; 6] {
    let (outer, g1_6) = ((g0 + g2) / 6.0, g1 / 6.0);
    let (quarter, g1_12) = (g0 / 24.0 + g2 / 6.0, g1 / 12.0);
    [
        g0 / 4.0,
        -outer - g1_6,
        -outer + g1_6,
        quarter + g1_12,
        quarter - g1_12,
        g2,
    ]
}

/// Gᵀ along one line of a transformed filter gradient (3 values from 6).
fn filter_grad_line([x0, x1, x2, x3, x4, x5]: [f32; 6]) -> [f32; 3] {
    let (sum12, sum34) = (x1 + x2, x3 + x4);
    [
        x0 / 4.0 - sum12 / 6.0 + sum34 / 24.0,
        (x2 - x1) / 6.0 + (x3 - x4) / 12.0,
        (sum34 - sum12) / 6.0 + x5,
    ]
}

/// G g Gᵀ of one 3×3 filter (row-major) as a 6×6 tile.
pub(super) fn filter_tile(g: &[f32]) -> [f32; TILE] {
    let along_rows: [[f32; 6]; 3] =
        std::array::from_fn(|y| filter_line([g[3 * y], g[3 * y + 1], g[3 * y + 2]]));
    let mut tile = [0.0; TILE];
    for x in 0..6 {
        let col = filter_line([along_rows[0][x], along_rows[1][x], along_rows[2][x]]);
        for (i, v) in col.into_iter().enumerate() {
            tile[6 * i + x] = v;
        }
    }
    tile
}

/// Gᵀ t G of one transformed filter gradient t (6×6) as a 3×3 filter (row-major).
pub(super) fn filter_grad_tile(t: &[f32; TILE]) -> [f32; 9] {
    let along_rows: [[f32; 3]; 6] =
        std::array::from_fn(|r| filter_grad_line(t[6 * r..][..6].try_into().unwrap()));
    let mut out = [0.0; 9];
    for x in 0..3 {
        let col = filter_grad_line(std::array::from_fn(|r| along_rows[r][x]));
        for (y, v) in col.into_iter().enumerate() {
            out[3 * y + x] = v;
        }
    }
    out
}

/// Entries between the row transforms' arrays: the grid rounded up to whole vectors, so the
/// AVX-512 row pass writes whole vectors.
pub(super) fn row_stride(t: &Tiles) -> usize {
    t.grid.next_multiple_of(LANES)
}

/// Entries past the padded rows `[4, th + 1, 4s]` that the AVX-512 row pass may read: its
/// last block of 16 tiles reads 4·16 + 2 entries from the block's first.
pub(super) const PADDED_SLACK: usize = 4 * LANES + 2;

/// Bᵀ along the rows of one channel's padded row groups `[4, th + 1, 4s]` (tile k of a group
/// reads its entries 4k .. 4k + 5) into `rows` `[4, 6, row_stride]` ([q][j]).
#[inline(always)]
fn row_pass(padded: &[f32], rows: &mut [f32], t: &Tiles) {
    let (g, gs) = (t.grid, row_stride(t));
    let n = g - 1;
    for q in 0..4 {
        let p = &padded[4 * q * g..][..4 * g];
        let (quads, next) = (&p[..4 * n], &p[4..4 * n + 4]);
        let mut h = windows_mut(rows, std::array::from_fn(|j| (6 * q + j) * gs), n);
        let tiles = quads.chunks_exact(4).zip(next.chunks_exact(4));
        for (k, (d, e)) in tiles.enumerate() {
            put(&mut h, k, input_line([d[0], d[1], d[2], d[3], e[0], e[1]]));
        }
    }
}

/// Bᵀ down the row transforms `rows` of channel `ci` into `v` `[36, c, span]`: row 4ty + i of
/// the plane is group i mod 4, tile entry k + (i / 4)·s.
#[inline(always)]
pub(super) fn column_pass(rows: &[f32], v: &mut [f32], t: &Tiles, ci: usize) {
    let (s, gs) = (t.s, row_stride(t));
    let n = t.th * s;
    let plane = t.v_stride();
    for j in 0..6 {
        let line = |i: usize| &rows[(6 * (i % 4) + j) * gs + (i / 4) * s..][..n];
        let d: [&[f32]; 6] = std::array::from_fn(line);
        let starts = std::array::from_fn(|i| (6 * i + j) * plane + ci * t.span);
        let mut out = windows_mut(v, starts, n);
        for k in 0..n {
            put(&mut out, k, input_line(d.map(|line| line[k])));
        }
    }
}

#[inline(always)]
fn transform_input_inner(image: &[f32], t: &Tiles, s: &mut Scratch) {
    for (ci, plane) in image.chunks_exact(t.h * t.w).enumerate() {
        super::pad_plane(plane, t, &mut s.padded);
        row_pass(&s.padded, &mut s.rows, t);
        column_pass(&s.rows, &mut s.v, t, ci);
    }
}
widest!(pub(super) fn transform_input_portable(image: &[f32], t: &Tiles, s: &mut Scratch) = transform_input_inner);

/// Bᵀ d B for every tile of every channel of `image` into `s.v` `[36, c, span]`.
pub(super) fn transform_input(image: &[f32], t: &Tiles, s: &mut Scratch) {
    #[cfg(target_arch = "x86_64")]
    if super::available() {
        // SAFETY: `available` checked the CPU has AVX-512F.
        return unsafe { super::f4_avx512::transform_input(image, t, s) };
    }
    transform_input_portable(image, t, s)
}

/// Aᵀ m A for every tile of every filter of the products m `[36, f, span]`, into y
/// `[f, oh, ow]`: 16 tiles at a time, down the columns and along the rows in local arrays
/// (vectors of 16 lanes), each output row mod 4 interleaved into `rows` `[4, 4·span]`, then
/// copied out row by row.
#[inline(always)]
fn transform_output_inner(m: &[f32], t: &Tiles, rows: &mut [f32], y: &mut [MaybeUninit<f32>]) {
    let (n, span, f, ms) = (t.th * t.s, t.span, t.f, t.m_stride());
    assert!(m.len() >= (TILE - 1) * ms + f * span && rows.len() >= 16 * span);
    for (fi, plane) in y.chunks_exact_mut(t.oh * t.ow).enumerate() {
        for k0 in (0..n).step_by(LANES) {
            let x = |xi: usize| -> [f32; LANES] {
                m[xi * ms + fi * span + k0..][..LANES].try_into().unwrap()
            };
            // by_column[j][a]: row a of Aᵀ m, column j.
            let mut by_column = [[[0.0f32; LANES]; 4]; 6];
            for (j, col) in by_column.iter_mut().enumerate() {
                let xs: [[f32; LANES]; 6] = std::array::from_fn(|i| x(6 * i + j));
                for l in 0..LANES {
                    let o = output_line(std::array::from_fn(|i| xs[i][l]));
                    for (row, v) in col.iter_mut().zip(o) {
                        row[l] = v;
                    }
                }
            }
            let cols: [[[f32; LANES]; 6]; 4] =
                std::array::from_fn(|a| std::array::from_fn(|j| by_column[j][a]));
            for (a, col) in cols.iter().enumerate() {
                let out = &mut rows[a * 4 * span + 4 * k0..][..4 * LANES];
                for (l, px) in out.chunks_exact_mut(4).enumerate() {
                    let o = output_line(std::array::from_fn(|j| col[j][l]));
                    px.copy_from_slice(&o);
                }
            }
        }
        for (oy, dst) in plane.chunks_exact_mut(t.ow).enumerate() {
            let src = &rows[(oy % 4) * 4 * span + (oy / 4) * 4 * t.s..][..t.ow];
            copy_row(dst, as_slots_ref(src));
        }
    }
}
widest!(pub(super) fn transform_output_portable(m: &[f32], t: &Tiles, rows: &mut [f32], y: &mut [MaybeUninit<f32>]) = transform_output_inner);

/// Aᵀ m A for every tile of every filter of the products m `[36, f, span]` into y.
pub(super) fn transform_output(m: &[f32], t: &Tiles, rows: &mut [f32], y: &mut [MaybeUninit<f32>]) {
    #[cfg(target_arch = "x86_64")]
    if super::available() {
        // SAFETY: `available` checked the CPU has AVX-512F.
        return unsafe { super::f4_avx512::transform_output(m, t, rows, y) };
    }
    transform_output_portable(m, t, rows, y)
}

/// dy `[f, oh, ow]` → A dy Aᵀ per tile into `mt` `[36, span, fp]`, filters last as the
/// reduction wants them. `dq` `[16, span, fp]` holds dy's 4×4 positions: dq[4a + b] has
/// dy[4ty + a][4tx + b] at (ty·s + tx)·fp + fi. Entries outside the output stay zero.
/// `cols` `[6, 4, span, fp]` holds A dy (down the tile's columns) before it is spread along
/// the rows: two passes of 10 streams each, where one pass of 52 ran out of registers.
#[inline(always)]
fn transform_output_grads_inner(
    dy: &[f32],
    t: &Tiles,
    dq: &mut [f32],
    cols: &mut [f32],
    mt: &mut [f32],
) {
    let (fp, quad, qs) = (t.fp(), t.span * t.fp(), t.g_stride());
    assert!(dq.len() >= 15 * qs + quad && cols.len() >= 23 * qs + quad);
    assert!(mt.len() >= (TILE - 1) * qs + quad && t.f <= fp);
    for (fi, src) in dy.chunks_exact(t.oh * t.ow).enumerate() {
        for (oy, row) in src.chunks_exact(t.ow).enumerate() {
            let at = (oy % 4) * 4 * qs + (oy / 4) * t.s * fp + fi;
            let mut quads = row.chunks_exact(4);
            // SAFETY: (ty·s + tx)·fp + fi < span·fp = quad for every tile (tx < s, ty < th,
            // th·s ≤ span) and fi < fp, so each index is inside dq's 16 quads (asserted).
            unsafe {
                for (tx, p) in (&mut quads).enumerate() {
                    for (b, &value) in p.iter().enumerate() {
                        *dq.get_unchecked_mut(at + b * qs + tx * fp) = value;
                    }
                }
                let tx = t.ow / 4;
                for (b, &value) in quads.remainder().iter().enumerate() {
                    *dq.get_unchecked_mut(at + b * qs + tx * fp) = value;
                }
            }
        }
    }
    // Down each column b: cols[i][b] = row i of A dy.
    for b in 0..4 {
        let [e0, e1, e2, e3] = [0, 1, 2, 3].map(|a| &dq[(4 * a + b) * qs..][..quad]);
        let starts = std::array::from_fn(|i| (4 * i + b) * qs);
        spread(e0, e1, e2, e3, windows_mut(cols, starts, quad));
    }
    // Along each row i: mt[6i + j] = (A dy Aᵀ)[i][j].
    for i in 0..6 {
        let [e0, e1, e2, e3] = [0, 1, 2, 3].map(|b| &cols[(4 * i + b) * qs..][..quad]);
        let starts = std::array::from_fn(|j| (6 * i + j) * qs);
        spread(e0, e1, e2, e3, windows_mut(mt, starts, quad));
    }
}

/// A applied to 4 lines of values into 6.
#[inline(always)]
fn spread(e0: &[f32], e1: &[f32], e2: &[f32], e3: &[f32], out: [&mut [f32]; 6]) {
    let n = e0.len();
    let (e1, e2, e3) = (&e1[..n], &e2[..n], &e3[..n]);
    let mut out = out.map(|o| &mut o[..n]);
    for k in 0..n {
        put(&mut out, k, output_grad_line([e0[k], e1[k], e2[k], e3[k]]));
    }
}

/// `values` into entry `k` of six lines.
#[inline(always)]
fn put(lines: &mut [&mut [f32]; 6], k: usize, values: [f32; 6]) {
    for (line, v) in lines.iter_mut().zip(values) {
        line[k] = v;
    }
}
widest!(pub(super) fn output_grads_portable(dy: &[f32], t: &Tiles, dq: &mut [f32], cols: &mut [f32], mt: &mut [f32]) = transform_output_grads_inner);

/// dy `[f, oh, ow]` → A dy Aᵀ per tile into `mt` `[36, span, fp]` (`dq` and `cols` are the
/// portable loops' scratch).
pub(super) fn output_grads(
    dy: &[f32],
    t: &Tiles,
    dq: &mut [f32],
    cols: &mut [f32],
    mt: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if super::available() {
        // SAFETY: `available` checked the CPU has AVX-512F.
        return unsafe { super::f4_avx512::output_grads(dy, t, mt) };
    }
    output_grads_portable(dy, t, dq, cols, mt)
}
