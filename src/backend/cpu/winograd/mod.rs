//! 3×3 convolutions with stride 1 by Winograd's minimal filtering F(2×2, 3×3) (Lavin and Gray,
//! "Fast Algorithms for Convolutional Neural Networks", 2015). Each 2×2 block of outputs is
//! Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A for its 4×4 input tile d, so the sums over channels take 16
//! products per 4 outputs where the direct convolution takes 36: 2.25× fewer. The transforms'
//! coefficients are 0, ±1 and ±½, so the rounding stays that of a direct sum. On planes where
//! they take fewer products, F(4×4, 3×3) (`f4`): 36 products per 16 outputs, with about 8x
//! the rounding. Both block sizes share the layout, the products and the reduction.
//!
//! Layout: a plane's tiles are numbered k = ty·s + tx with s = tw + 1. The spare column at the
//! end of each tile row makes tile (ty, tx + 1) entry k + 1 and tile (ty + 1, tx) entry k + s
//! everywhere, so each transform is one vector loop over the whole plane whatever its width.
//! Spare entries are computed from real pixels and dropped by the output transform; the weight
//! gradient gives them zero output gradients. Transformed planes are padded to whole vectors
//! (`span`, zeros past the tiles).
//!
//! The gradient of the input is the same convolution of dy with the filters turned 180° and
//! transposed (`Tiles::input_grad`, `flipped_filters`). The gradient of the filters is
//! Gᵀ[Σ_tiles (A dy Aᵀ) ⊙ (Bᵀ d B)]G, a sum over tiles of the same transformed input.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::ops::{Deref, DerefMut};

use super::wide::widest;

#[cfg(target_arch = "x86_64")]
mod avx512;
mod f4;
#[cfg(target_arch = "x86_64")]
mod f4_avx512;

/// Values a transform loop handles at once: the product blocks are whole vectors of this many.
const LANES: usize = 16;
/// Positions of a transformed 4×4 tile.
const TILE: usize = 16;

/// One convolution's tiling: `c` input and `f` output channels, an `h`×`w` input padded by
/// (`ph`, `pw`), an `oh`×`ow` output in `th` rows of `r`×`r` blocks: F(2×2, 3×3) here, or
/// F(4×4, 3×3) (`f4`) on larger planes.
#[derive(Clone, Debug, PartialEq)]
pub struct Tiles {
    pub c: usize,
    pub f: usize,
    h: usize,
    w: usize,
    ph: usize,
    pw: usize,
    oh: usize,
    ow: usize,
    th: usize,
    /// The output block's side: 2 or 4.
    r: usize,
    /// Row stride of the tile grids: the tile columns ⌈ow/r⌉, plus one spare.
    s: usize,
    /// Entries of a sub-plane of the padded input, `th + 1` rows of `s`.
    grid: usize,
    /// Entries of a transformed plane: th·s rounded up to whole vectors.
    span: usize,
}

impl Tiles {
    /// The tiling of a 3×3 stride-1 convolution; `None` where the window never fits or the
    /// padding is over 2 (the input gradient's convolution would need negative padding).
    /// Blocks of 4 where they take fewer products than blocks of 2 once both are rounded up
    /// to whole tiles and vectors (a 28×28 plane: 2,304 against 3,584 per channel pair; a
    /// 14×14 one: 1,152 against 1,024).
    pub fn new(c: usize, f: usize, hw: (usize, usize), pad: (usize, usize)) -> Option<Self> {
        let two = Tiles::with_block(c, f, hw, pad, 2)?;
        let four = Tiles::with_block(c, f, hw, pad, 4)?;
        Some(if four.products_per_image() < two.products_per_image() {
            four
        } else {
            two
        })
    }

    /// The tiling in `r`×`r` output blocks (2 or 4).
    pub fn with_block(
        c: usize,
        f: usize,
        (h, w): (usize, usize),
        (ph, pw): (usize, usize),
        r: usize,
    ) -> Option<Self> {
        assert!(r == 2 || r == 4, "blocks of 2 or 4, not {r}");
        if ph > 2 || pw > 2 || h + 2 * ph < 3 || w + 2 * pw < 3 {
            return None;
        }
        let (oh, ow) = (h + 2 * ph - 2, w + 2 * pw - 2);
        let th = oh.div_ceil(r);
        // One spare column past the ow/r rounded up tile columns.
        let s = ow.div_ceil(r) + 1;
        Some(Tiles {
            c,
            f,
            h,
            w,
            ph,
            pw,
            oh,
            ow,
            th,
            r,
            s,
            grid: (th + 1) * s,
            span: (th * s).next_multiple_of(LANES),
        })
    }

    /// The output block's side: 2 or 4.
    pub fn block(&self) -> usize {
        self.r
    }

    /// Positions of a transformed tile: 16 for blocks of 2, 36 for blocks of 4.
    fn tile(&self) -> usize {
        (self.r + 2) * (self.r + 2)
    }

    /// Entries between the positions of V `[tile, c, span]`.
    fn v_stride(&self) -> usize {
        spaced(self.c * self.span)
    }

    /// Entries between the positions of M `[tile, f, span]`.
    fn m_stride(&self) -> usize {
        spaced(self.f * self.span)
    }

    /// Entries between the positions of the output gradient's layouts `[_, span, fp]`.
    fn g_stride(&self) -> usize {
        spaced(self.span * self.fp())
    }

    /// The tiling of the input gradient: dy `[f, oh, ow]` convolved with the turned filters
    /// (`flipped_filters`) and padding 2 − p gives dx `[c, h, w]`, in blocks of the same size.
    pub fn input_grad(&self) -> Self {
        Tiles::with_block(
            self.f,
            self.c,
            (self.oh, self.ow),
            (2 - self.ph, 2 - self.pw),
            self.r,
        )
        .expect("the input gradient of a valid tiling is valid")
    }

    /// Filters padded to whole vectors: the row length of the filter gradient's layouts.
    fn fp(&self) -> usize {
        self.f.next_multiple_of(LANES)
    }

    /// Length of the transformed filter gradient `[tile, c, fp]`.
    pub fn grad_len(&self) -> usize {
        self.tile() * self.c * self.fp()
    }

    /// Whether the tiles take at most 1/1.6 of the direct sum's multiplies per channel pair
    /// (16 per tile entry against 9 per output). Small planes lose to rounding up: an 11×11
    /// output needs 6 rows of 7 tiles (48 entries in whole vectors), 1.42× fewer multiplies
    /// than direct, and mnist_cnn's 32→64 layer ran 30% slower in tiles than in columns.
    pub fn saves_enough(&self) -> bool {
        9 * self.oh * self.ow * 10 >= 16 * self.tile() * self.span
    }

    /// Multiply-adds of one image's products (for choosing serial or parallel work).
    pub fn products_per_image(&self) -> usize {
        self.tile() * self.c * self.f * self.span
    }
}

/// `len` rounded up to an odd number of 64-byte lines: the stride between the positions of a
/// transformed layout, so that the loops reading or writing many positions at once spread
/// over the L1's sets. With blocks of 4 on 28×28 planes, 16 filters of 64 entries put the 36
/// positions 4 KB apart, all in one set: the output transform took 5.8 µs an image, not 2.
fn spaced(len: usize) -> usize {
    let lines = len.div_ceil(LANES);
    (lines | 1) * LANES
}

/// Per-thread buffers for one tiling (sizes for blocks of r = 2; blocks of 4 as noted).
pub struct Scratch {
    /// The padded input plane's rows by row mod r, `[r, th + 1, r·s]`, zero outside the pixels.
    padded: Vec<f32>,
    /// The row transforms of each row group: `(r + 2)·r` arrays [ry][j] of `grid`.
    rows: Vec<f32>,
    /// The transformed input, `[tile, c, span]`.
    v: Vec<f32>,
    /// The products (or the transformed output gradients), `[tile, f, span]`.
    m: Vec<f32>,
    /// The portable 2×2 output transform's column sums, `[2, 4, span]`; for blocks of 4, the
    /// output gradients' columns `[6, 4, span, fp]`.
    cols: Vec<f32>,
    /// Four `span` arrays: the output's 2×2 positions before interleaving (blocks of 2 only).
    quads: Vec<f32>,
    /// The output's rows by row mod r, `[r, th, r·s]` within `[r, r·span]`.
    out_rows: Vec<f32>,
    /// dy's r×r positions, `[r², span, fp]`.
    dy_quads: Vec<f32>,
    /// The transformed output gradient, `[tile, span, fp]`.
    grads_t: Vec<f32>,
}

impl Scratch {
    /// The buffers of the kernels this CPU runs: the portable loops' own (the 2×2 output
    /// transform's sums, the output gradients' quads and columns: 0.6 MB at 16 channels on
    /// 28×28) only where there is no AVX-512.
    pub fn new(t: &Tiles) -> Self {
        Scratch::sized(t, !available())
    }

    /// With the portable loops' buffers as well, for the tests that run both.
    #[cfg(test)]
    fn with_portable(t: &Tiles) -> Self {
        Scratch::sized(t, true)
    }

    fn sized(t: &Tiles, portable: bool) -> Self {
        let (r, tile, p) = (t.r, t.tile(), usize::from(portable));
        let (rows, slack, cols, quads) = match r {
            2 => (8 * t.grid, 0, 8 * t.span, 4 * t.span),
            _ => (
                24 * f4::row_stride(t),
                f4::PADDED_SLACK,
                24 * t.g_stride(),
                0,
            ),
        };
        Scratch {
            padded: vec![0.0; r * r * t.grid + slack],
            rows: vec![0.0; rows],
            v: vec![0.0; tile * t.v_stride()],
            m: vec![0.0; tile * t.m_stride()],
            cols: vec![0.0; p * cols],
            quads: vec![0.0; p * quads],
            out_rows: vec![0.0; r * r * t.span],
            dy_quads: vec![0.0; p * r * r * t.g_stride()],
            grads_t: vec![0.0; tile * t.g_stride()],
        }
    }
}

impl Scratch {
    fn bytes(&self) -> usize {
        let vecs = [&self.padded, &self.rows, &self.v, &self.m];
        let more = [
            &self.cols,
            &self.quads,
            &self.out_rows,
            &self.dy_quads,
            &self.grads_t,
        ];
        vecs.iter().chain(&more).map(|v| v.len() * 4).sum()
    }
}

/// Bytes of scratch kept per thread between calls. Made fresh for each call (zeroed, about
/// 0.8 MB for a 16-channel 28×28 layer, twice per task in the backward), the buffers cost 8%
/// of mnist_resnet's training time in memset.
const CACHE_BYTES: usize = 32 << 20;

thread_local! {
    /// Scratch buffers by tiling, oldest first. A reused one keeps its invariant: the entries
    /// a tiling never writes are still zero.
    static CACHE: RefCell<Vec<(Tiles, Scratch)>> = const { RefCell::new(Vec::new()) };
}

/// A tiling's scratch taken from this thread's cache (or made), returned to it when dropped.
pub struct Pooled {
    tiles: Tiles,
    scratch: Option<Scratch>,
}

impl Pooled {
    pub fn new(t: &Tiles) -> Self {
        let cached = CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            let at = cache.iter().position(|(k, _)| k == t)?;
            Some(cache.remove(at).1)
        });
        Pooled {
            tiles: t.clone(),
            scratch: Some(cached.unwrap_or_else(|| Scratch::new(t))),
        }
    }
}

impl Deref for Pooled {
    type Target = Scratch;
    fn deref(&self) -> &Scratch {
        self.scratch.as_ref().expect("present until dropped")
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Scratch {
        self.scratch.as_mut().expect("present until dropped")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let Some(scratch) = self.scratch.take() else {
            return;
        };
        // During thread exit the cache may be gone: the buffers are then simply freed.
        let _ = CACHE.try_with(|cache| {
            let mut cache = cache.borrow_mut();
            cache.push((self.tiles.clone(), scratch));
            while cache.iter().map(|(_, s)| s.bytes()).sum::<usize>() > CACHE_BYTES {
                cache.remove(0);
            }
        });
    }
}

/// G g Gᵀ of one 3×3 filter (row-major) as a 4×4 tile.
fn filter_tile(g: &[f32]) -> [f32; TILE] {
    // G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]], applied along each row, then down.
    let apply = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    let along_rows: [[f32; 4]; 3] =
        std::array::from_fn(|y| apply(g[3 * y], g[3 * y + 1], g[3 * y + 2]));
    let mut tile = [0.0; TILE];
    for x in 0..4 {
        let col = apply(along_rows[0][x], along_rows[1][x], along_rows[2][x]);
        for (i, v) in col.into_iter().enumerate() {
            tile[4 * i + x] = v;
        }
    }
    tile
}

/// Filters `[t.f, t.c, 3, 3]` → their transforms U `[tile, f, c]`.
pub fn filters(w: &[f32], t: &Tiles) -> Vec<f32> {
    let (fc_len, tile) = (t.f * t.c, t.tile());
    assert_eq!(w.len(), 9 * fc_len);
    let mut u = vec![0.0; tile * fc_len];
    for (fc, g) in w.chunks_exact(9).enumerate() {
        let mut put = |xi: usize, v: f32| u[xi * fc_len + fc] = v;
        match t.r {
            2 => filter_tile(g)
                .into_iter()
                .enumerate()
                .for_each(|(xi, v)| put(xi, v)),
            _ => f4::filter_tile(g)
                .into_iter()
                .enumerate()
                .for_each(|(xi, v)| put(xi, v)),
        }
    }
    u
}

/// The filters of the input gradient's convolution (tiling `back`, `Tiles::input_grad`):
/// w `[c, f, 3, 3]` of the forward's f = back.c filters over c = back.f channels, as
/// w'[ci][fi] = w[fi][ci] turned 180°, transformed to `[tile, c, f]`.
pub fn flipped_filters(w: &[f32], back: &Tiles) -> Vec<f32> {
    let (f, c) = (back.c, back.f);
    let mut turned = vec![0.0; w.len()];
    for (fc, g) in w.chunks_exact(9).enumerate() {
        let (fi, ci) = (fc / c, fc % c);
        let dst = &mut turned[(ci * f + fi) * 9..][..9];
        for (q, d) in dst.iter_mut().enumerate() {
            *d = g[8 - q];
        }
    }
    filters(&turned, back)
}

/// Gᵀ t G of one transformed 4×4 filter gradient as a 3×3 filter (row-major).
fn filter_grad_tile(t: &[f32; TILE]) -> [f32; 9] {
    // Gᵀ = [[1, ½, ½, 0], [0, ½, −½, 0], [0, ½, ½, 1]].
    let apply =
        |a: f32, b: f32, c: f32, d: f32| [a + 0.5 * (b + c), 0.5 * (b - c), 0.5 * (b + c) + d];
    let along_rows: [[f32; 3]; 4] =
        std::array::from_fn(|r| apply(t[4 * r], t[4 * r + 1], t[4 * r + 2], t[4 * r + 3]));
    let mut out = [0.0; 9];
    for x in 0..3 {
        let col = apply(
            along_rows[0][x],
            along_rows[1][x],
            along_rows[2][x],
            along_rows[3][x],
        );
        for (y, v) in col.into_iter().enumerate() {
            out[3 * y + x] = v;
        }
    }
    out
}

/// The filter gradient dw `[f, c, 3, 3]` = Gᵀ dU G from the transformed one dU `[tile, c, fp]`
/// (`weight_grads_image`).
pub fn filter_grads(du: &[f32], t: &Tiles) -> Vec<f32> {
    let (f, c, fp) = (t.f, t.c, t.fp());
    let mut dw = vec![0.0; f * c * 9];
    for (i, out) in dw.chunks_exact_mut(9).enumerate() {
        let (fi, ci) = (i / c, i % c);
        let at = |xi: usize| du[(xi * c + ci) * fp + fi];
        out.copy_from_slice(&match t.r {
            2 => filter_grad_tile(&std::array::from_fn(at)),
            _ => f4::filter_grad_tile(&std::array::from_fn(at)),
        });
    }
    dw
}

/// Disjoint mutable windows of `len` at increasing `starts` of `buf`.
fn windows_mut<const N: usize>(buf: &mut [f32], starts: [usize; N], len: usize) -> [&mut [f32]; N] {
    let mut rest = buf;
    let mut taken = 0;
    let mut out: [&mut [f32]; N] = std::array::from_fn(|_| Default::default());
    for (slot, start) in out.iter_mut().zip(starts) {
        let tail = std::mem::take(&mut rest);
        let (win, after) = tail[start - taken..].split_at_mut(len);
        *slot = win;
        rest = after;
        taken = start + len;
    }
    out
}

/// `src` copied to `dst` (of the same length): from 16 values on as two overlapping 16-value
/// moves or whole 16-value blocks, short of a `memcpy` call per image row (8% of
/// mnist_resnet's training time when each row went through one).
#[inline(always)]
fn copy_row<T: Copy>(dst: &mut [T], src: &[T]) {
    const V: usize = LANES;
    let n = src.len();
    assert_eq!(dst.len(), n);
    if n < V {
        // Two overlapping moves of 8 or 4 values: an element loop became a memcpy call per
        // row (14-pixel rows: a third of the output transform's time).
        if n >= 8 {
            copy_block::<T, 8>(dst, src, [0, n - 8]);
        } else if n >= 4 {
            copy_block::<T, 4>(dst, src, [0, n - 4]);
        } else {
            for (d, &x) in dst.iter_mut().zip(src) {
                *d = x;
            }
        }
        return;
    }
    let mut at = 0;
    loop {
        let block: [T; V] = src[at..at + V].try_into().unwrap();
        dst[at..at + V].copy_from_slice(&block);
        if at + V == n {
            return;
        }
        at = (at + V).min(n - V);
    }
}

/// `N` values moved from `src` to `dst` at each of `starts`.
#[inline(always)]
fn copy_block<T: Copy, const N: usize>(dst: &mut [T], src: &[T], starts: [usize; 2]) {
    for at in starts {
        let block: [T; N] = src[at..at + N].try_into().unwrap();
        dst[at..at + N].copy_from_slice(&block);
    }
}

/// One input plane → its padded rows by row mod r, `[r, th + 1, r·s]`: padded row r·a + q at
/// (q·(th + 1) + a)·r·s. Padding entries are never written, so they stay zero.
#[inline(always)]
fn pad_plane(plane: &[f32], t: &Tiles, padded: &mut [f32]) {
    let (g, s, r) = (t.grid, t.s, t.r);
    for (iy, src) in plane.chunks_exact(t.w).enumerate() {
        let row = iy + t.ph;
        let at = (row % r) * r * g + (row / r) * r * s + t.pw;
        copy_row(&mut padded[at..at + t.w], src);
    }
}

/// Bᵀ d B for every 4×4 tile of one channel, from its padded rows, into `v` `[16, c, span]`.
/// Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]: first along each row,
/// where tile k's columns are entries 2k .. 2k + 3 of its parity's rows (one loop over all of
/// them, the even and odd columns split in registers), then down.
#[inline(always)]
fn transform_plane(padded: &[f32], rows: &mut [f32], v: &mut [f32], t: &Tiles, ci: usize) {
    let (g, s) = (t.grid, t.s);
    let n = g - 1;
    for ry in 0..2 {
        let p = &padded[2 * ry * g..][..2 * g];
        let (cols, next) = (&p[..2 * n], &p[2..2 * n + 2]);
        let [h0, h1, h2, h3] = windows_mut(rows, std::array::from_fn(|j| (4 * ry + j) * g), n);
        let tiles = cols.chunks_exact(2).zip(next.chunks_exact(2));
        for (k, (d01, d23)) in tiles.enumerate() {
            let (d0, d1, d2, d3) = (d01[0], d01[1], d23[0], d23[1]);
            h0[k] = d0 - d2;
            h1[k] = d1 + d2;
            h2[k] = d2 - d1;
            h3[k] = d1 - d3;
        }
    }
    let n = t.th * s;
    let plane = t.v_stride();
    for j in 0..4 {
        let (top, bottom) = (&rows[j * g..][..g], &rows[(4 + j) * g..][..g]);
        let (a0, a1, b0, b1) = (&top[..n], &top[s..s + n], &bottom[..n], &bottom[s..s + n]);
        let starts = std::array::from_fn(|i| (4 * i + j) * plane + ci * t.span);
        let [v0, v1, v2, v3] = windows_mut(v, starts, n);
        for k in 0..n {
            v0[k] = a0[k] - a1[k];
            v1[k] = b0[k] + a1[k];
            v2[k] = a1[k] - b0[k];
            v3[k] = b0[k] - b1[k];
        }
    }
}

#[inline(always)]
fn transform_input_inner(image: &[f32], t: &Tiles, s: &mut Scratch) {
    for (ci, plane) in image.chunks_exact(t.h * t.w).enumerate() {
        pad_plane(plane, t, &mut s.padded);
        transform_plane(&s.padded, &mut s.rows, &mut s.v, t, ci);
    }
}
widest!(fn transform_input_2(image: &[f32], t: &Tiles, s: &mut Scratch) = transform_input_inner);

/// Bᵀ d B for every tile of every channel of `image` into `s.v`.
fn transform_input(image: &[f32], t: &Tiles, s: &mut Scratch) {
    match t.r {
        2 => transform_input_2(image, t, s),
        _ => f4::transform_input(image, t, s),
    }
}

/// `NF` filters × `NK` tiles of M[f][k] = Σ_c U[f][c]·V[c][k] at one position.
#[inline(always)]
fn product_block<const NF: usize, const NK: usize>(
    u: &[f32],
    v: &[f32],
    m: &mut [f32],
    (c, span): (usize, usize),
    (f0, k0): (usize, usize),
) {
    let mut acc = [[0.0f32; NK]; NF];
    for ci in 0..c {
        let row: [f32; NK] = v[ci * span + k0..][..NK].try_into().unwrap();
        let weights: [f32; NF] = std::array::from_fn(|fi| u[(f0 + fi) * c + ci]);
        for fi in 0..NF {
            for l in 0..NK {
                acc[fi][l] += weights[fi] * row[l];
            }
        }
    }
    for (fi, acc) in acc.iter().enumerate() {
        m[(f0 + fi) * span + k0..][..NK].copy_from_slice(acc);
    }
}

/// Every tile block of `NF` filters from `f0`.
#[inline(always)]
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
        product_block::<NF, { 4 * LANES }>(u, v, m, dims, (f0, k0));
        k0 += 4 * LANES;
    }
    while k0 < span {
        product_block::<NF, LANES>(u, v, m, dims, (f0, k0));
        k0 += LANES;
    }
}

/// Each position's U `[f, c]`, V `[c, span]` and M `[f, span]` handed to `rows(u, v, m, f0,
/// four)` for the blocks of 4 filters, then for the remaining filters one at a time.
#[inline(always)]
fn for_filter_blocks(
    (u, v, m): (&[f32], &[f32], &mut [f32]),
    t: &Tiles,
    mut rows: impl FnMut(&[f32], &[f32], &mut [f32], usize, bool),
) {
    let (c, f, span) = (t.c, t.f, t.span);
    for xi in 0..t.tile() {
        let u = &u[xi * f * c..][..f * c];
        let v = &v[xi * t.v_stride()..][..c * span];
        let m = &mut m[xi * t.m_stride()..][..f * span];
        let mut f0 = 0;
        while f0 + 4 <= f {
            rows(u, v, m, f0, true);
            f0 += 4;
        }
        while f0 < f {
            rows(u, v, m, f0, false);
            f0 += 1;
        }
    }
}

/// M `[tile, f, span]` = U `[tile, f, c]` · V `[tile, c, span]`, position by position.
#[inline(always)]
fn products_inner(u: &[f32], v: &[f32], m: &mut [f32], t: &Tiles) {
    let dims = (t.c, t.span);
    for_filter_blocks((u, v, m), t, |u, v, m, f0, four| match four {
        true => product_rows::<4>(u, v, m, dims, f0),
        false => product_rows::<1>(u, v, m, dims, f0),
    });
}
widest!(fn products_portable(u: &[f32], v: &[f32], m: &mut [f32], t: &Tiles) = products_inner);

/// M `[tile, f, span]` = U `[tile, f, c]` · V `[tile, c, span]`.
fn products(u: &[f32], v: &[f32], m: &mut [f32], t: &Tiles) {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: `available` checked the CPU has AVX-512F.
        return unsafe { avx512::products(u, v, m, t) };
    }
    products_portable(u, v, m, t)
}

/// Aᵀ m A for every tile of every filter, interleaved into y `[f, oh, ow]`.
/// Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]: down the tile's columns into `cols` `[2, 4, span]`,
/// along its rows into `quads` `[2, 2, span]` (loops of few streams: with all 16 positions in
/// one loop their pointers did not fit the registers), then each output row parity is
/// interleaved in one loop into `rows` `[2, th, 2s]` and copied out row by row.
#[inline(always)]
fn transform_output_inner(m: &[f32], t: &Tiles, s: &mut Scratch, y: &mut [MaybeUninit<f32>]) {
    let (n, span) = (t.th * t.s, t.span);
    let (cols, quads, rows) = (&mut s.cols, &mut s.quads, &mut s.out_rows);
    for (fi, plane) in y.chunks_exact_mut(t.oh * t.ow).enumerate() {
        let ms = |xi: usize| &m[xi * t.m_stride() + fi * span..][..n];
        for j in 0..4 {
            let [r0, r1] = windows_mut(cols, [j * span, (4 + j) * span], n);
            combine([ms(j), ms(4 + j), ms(8 + j), ms(12 + j)], r0, r1);
        }
        for a in 0..2 {
            let col = |j: usize| &cols[(4 * a + j) * span..][..n];
            let c = [col(0), col(1), col(2), col(3)];
            let [o0, o1] = windows_mut(quads, [2 * a * span, (2 * a + 1) * span], n);
            combine(c, o0, o1);
        }
        for a in 0..2 {
            let (even, odd) = (
                &quads[2 * a * span..][..n],
                &quads[(2 * a + 1) * span..][..n],
            );
            let out = &mut rows[a * 2 * n..][..2 * n];
            for ((p, &e), &o) in out.chunks_exact_mut(2).zip(even).zip(odd) {
                p[0] = e;
                p[1] = o;
            }
        }
        for (oy, dst) in plane.chunks_exact_mut(t.ow).enumerate() {
            let src = &rows[(oy % 2) * 2 * n + (oy / 2) * 2 * t.s..][..t.ow];
            copy_row(dst, as_slots_ref(src));
        }
    }
}

/// Values seen as the slots they can initialise.
fn as_slots_ref(x: &[f32]) -> &[MaybeUninit<f32>] {
    // SAFETY: MaybeUninit<f32> has f32's layout, and initialised slots are valid to read.
    unsafe { &*(x as *const [f32] as *const [MaybeUninit<f32>]) }
}

/// Aᵀ along one line of a tile: x₀ + x₁ + x₂ and x₁ − x₂ − x₃, for every tile.
#[inline(always)]
fn combine([x0, x1, x2, x3]: [&[f32]; 4], out0: &mut [f32], out1: &mut [f32]) {
    let n = out0.len();
    let (x0, x1, x2, x3, out1) = (&x0[..n], &x1[..n], &x2[..n], &x3[..n], &mut out1[..n]);
    for k in 0..n {
        out0[k] = x0[k] + x1[k] + x2[k];
        out1[k] = x1[k] - x2[k] - x3[k];
    }
}
widest!(fn transform_output_portable(m: &[f32], t: &Tiles, s: &mut Scratch, y: &mut [MaybeUninit<f32>]) = transform_output_inner);

/// Aᵀ m A for every tile of every filter of the products `s.m`, interleaved into y.
fn transform_output(t: &Tiles, s: &mut Scratch, y: &mut [MaybeUninit<f32>]) {
    if t.r == 4 {
        return f4::transform_output(&s.m, t, &mut s.out_rows, y);
    }
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: `available` checked the CPU has AVX-512F.
        return unsafe { avx512::transform_output(&s.m, t, &mut s.out_rows, y) };
    }
    // The portable transform borrows the rest of the scratch around the products.
    let m = std::mem::take(&mut s.m);
    transform_output_portable(&m, t, s, y);
    s.m = m;
}

/// One image `[c, h, w]` convolved with the transformed filters `u` (`filters`) into the slots
/// `y` `[f, oh, ow]`, which are returned written.
pub fn conv_image<'a>(
    image: &[f32],
    u: &[f32],
    t: &Tiles,
    y: &'a mut [MaybeUninit<f32>],
    s: &mut Scratch,
) -> &'a mut [f32] {
    assert_eq!((image.len(), y.len()), (t.c * t.h * t.w, t.f * t.oh * t.ow));
    transform_input(image, t, s);
    products(u, &s.v, &mut s.m, t);
    transform_output(t, s, y);
    // SAFETY: the output transform wrote every row of every plane.
    unsafe { super::written(y) }
}

/// dy `[f, oh, ow]` → A dy Aᵀ per tile into `mt` `[16, span, fp]`: filters last (padded to
/// whole vectors) so the reduction below runs along them, with no sums across lanes.
/// Zero at the spare column, past the output and past the filters, written once when the
/// scratch was made and never over. A = [[1, 0], [1, 1], [1, −1], [0, −1]].
#[inline(always)]
fn transform_output_grads(dy: &[f32], t: &Tiles, dq: &mut [f32], mt: &mut [f32]) {
    let (fp, quad, qs) = (t.fp(), t.span * t.fp(), t.g_stride());
    // dq[2a + b] holds dy[2ty + a][2tx + b] at (2a + b)·qs + (ty·s + tx)·fp + fi.
    assert!(dq.len() >= 3 * qs + quad && mt.len() >= 15 * qs + quad && t.f <= fp);
    for (fi, src) in dy.chunks_exact(t.oh * t.ow).enumerate() {
        for (oy, row) in src.chunks_exact(t.ow).enumerate() {
            let even = (oy % 2) * 2 * qs + (oy / 2) * t.s * fp + fi;
            let odd = even + qs;
            let mut pairs = row.chunks_exact(2);
            // SAFETY: (ty·s + tx)·fp + fi < span·fp = quad for every tile (tx < tw < s,
            // ty < th, th·s ≤ span) and fi < fp, so each index is inside dq's 4 quads
            // (asserted above).
            unsafe {
                for (tx, p) in (&mut pairs).enumerate() {
                    *dq.get_unchecked_mut(even + tx * fp) = p[0];
                    *dq.get_unchecked_mut(odd + tx * fp) = p[1];
                }
                if let [last] = pairs.remainder() {
                    *dq.get_unchecked_mut(even + (t.ow / 2) * fp) = *last;
                }
            }
        }
    }
    let [d00, d01, d10, d11] = [0, 1, 2, 3].map(|q| &dq[q * qs..][..quad]);
    // Down the rows (A on the left) for each column b, then along them: row i of the result
    // is spread over its 4 columns from its two column values.
    let at = |i: usize| std::array::from_fn(|j| (4 * i + j) * qs);
    let (top, bottom) = ((d00, d01), (d10, d11));
    spread(top, bottom, |x, _| x, windows_mut(mt, at(0), quad));
    spread(top, bottom, |x, y| x + y, windows_mut(mt, at(1), quad));
    spread(top, bottom, |x, y| x - y, windows_mut(mt, at(2), quad));
    spread(top, bottom, |_, y| -y, windows_mut(mt, at(3), quad));
}

/// One row of A dy Aᵀ: its two column values a = down(top, bottom) for b = 0 and 1, spread
/// along the row as [a₀, a₀ + a₁, a₀ − a₁, −a₁].
#[inline(always)]
fn spread(
    top: (&[f32], &[f32]),
    bottom: (&[f32], &[f32]),
    down: impl Fn(f32, f32) -> f32,
    [m0, m1, m2, m3]: [&mut [f32]; 4],
) {
    let n = m0.len();
    let (t0, t1, b0, b1) = (&top.0[..n], &top.1[..n], &bottom.0[..n], &bottom.1[..n]);
    let (m1, m2, m3) = (&mut m1[..n], &mut m2[..n], &mut m3[..n]);
    for k in 0..n {
        let (a0, a1) = (down(t0[k], b0[k]), down(t1[k], b1[k]));
        m0[k] = a0;
        m1[k] = a0 + a1;
        m2[k] = a0 - a1;
        m3[k] = -a1;
    }
}

/// `NC` channels × `FW` filters of dU[c][f] += Σ_k V[c][k]·M̄ᵀ[k][f] at one position: each
/// sum runs in its own lane, in tile order.
#[inline(always)]
fn reduce_block<const NC: usize, const FW: usize>(
    mt: &[f32],
    v: &[f32],
    du: &mut [f32],
    t: &Tiles,
    (c0, f0): (usize, usize),
) {
    let (fp, span) = (t.fp(), t.span);
    let mut acc = [[0.0f32; FW]; NC];
    for k in 0..t.th * t.s {
        let row: [f32; FW] = mt[k * fp + f0..][..FW].try_into().unwrap();
        let xs: [f32; NC] = std::array::from_fn(|ci| v[(c0 + ci) * span + k]);
        for ci in 0..NC {
            for l in 0..FW {
                acc[ci][l] += xs[ci] * row[l];
            }
        }
    }
    for (ci, acc) in acc.iter().enumerate() {
        let du = &mut du[(c0 + ci) * fp + f0..][..FW];
        for (d, a) in du.iter_mut().zip(acc) {
            *d += a;
        }
    }
}

/// Every channel block for the `FW` filters from `f0`.
#[inline(always)]
fn reduce_channels<const NC: usize, const FW: usize>(
    mt: &[f32],
    v: &[f32],
    du: &mut [f32],
    t: &Tiles,
    f0: usize,
) {
    let mut c0 = 0;
    while c0 + NC <= t.c {
        reduce_block::<NC, FW>(mt, v, du, t, (c0, f0));
        c0 += NC;
    }
    while c0 < t.c {
        reduce_block::<1, FW>(mt, v, du, t, (c0, f0));
        c0 += 1;
    }
}

/// dU `[tile, c, fp]` += V `[tile, c, span]` · M̄ᵀ `[tile, span, fp]`, position by position.
fn reduce_portable(mt: &[f32], v: &[f32], du: &mut [f32], t: &Tiles) {
    let (c, fp, span) = (t.c, t.fp(), t.span);
    for xi in 0..t.tile() {
        let mt = &mt[xi * t.g_stride()..][..span * fp];
        let v = &v[xi * t.v_stride()..][..c * span];
        let du = &mut du[xi * c * fp..][..c * fp];
        for f0 in (0..fp).step_by(LANES) {
            reduce_channels::<4, LANES>(mt, v, du, t, f0);
        }
    }
}

/// Whether this CPU runs the Winograd kernels at full speed (AVX-512F). Without it the
/// convolution keeps to unfolded columns and gemm.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn reduce(mt: &[f32], v: &[f32], du: &mut [f32], t: &Tiles) {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: `available` checked the CPU has AVX-512F.
        return unsafe { avx512::reduce(mt, v, du, t) };
    }
    reduce_portable(mt, v, du, t)
}

widest!(fn output_grads_2(dy: &[f32], t: &Tiles, dq: &mut [f32], mt: &mut [f32]) = transform_output_grads);

/// The two transforms the filter gradient multiplies: the input's and the output gradient's.
fn transforms_for_grads(image: &[f32], dy: &[f32], t: &Tiles, s: &mut Scratch) {
    transform_input(image, t, s);
    match t.r {
        2 => output_grads(dy, t, &mut s.dy_quads, &mut s.grads_t),
        _ => f4::output_grads(dy, t, &mut s.dy_quads, &mut s.cols, &mut s.grads_t),
    }
}

/// dy `[f, oh, ow]` → A dy Aᵀ per 2×2 tile into `mt` `[16, span, fp]` (`dq` is the portable
/// loop's scratch).
fn output_grads(dy: &[f32], t: &Tiles, dq: &mut [f32], mt: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: `available` checked the CPU has AVX-512F.
        return unsafe { avx512::output_grads(dy, t, mt) };
    }
    output_grads_2(dy, t, dq, mt)
}

/// One image's share of the transformed filter gradient: du `[tile, c, fp]` (`Tiles::grad_len`)
/// += the tiles' sums of (Bᵀ d B) ⊙ (A dy Aᵀ) for image `[c, h, w]` and its output gradient
/// dy `[f, oh, ow]`.
pub fn weight_grads_image(image: &[f32], dy: &[f32], t: &Tiles, du: &mut [f32], s: &mut Scratch) {
    assert_eq!(
        (image.len(), dy.len()),
        (t.c * t.h * t.w, t.f * t.oh * t.ow)
    );
    assert_eq!(du.len(), t.grad_len());
    transforms_for_grads(image, dy, t, s);
    reduce(&s.grads_t, &s.v, du, t);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform(n: usize, rng: &mut crate::Rng) -> Vec<f32> {
        (0..n).map(|_| rng.uniform() * 2.0 - 1.0).collect()
    }

    /// The AVX-512 reduction against the portable one, on a tiling with channel and filter
    /// counts that leave every block size a remainder (13 channels, 37 filters).
    #[test]
    fn reductions_agree() {
        for r in [2, 4] {
            let t = Tiles::with_block(13, 37, (9, 7), (1, 2), r).unwrap();
            let mut rng = crate::Rng::new(3);
            let mut s = Scratch::new(&t);
            let image = uniform(13 * 9 * 7, &mut rng);
            let dy = uniform(37 * t.oh * t.ow, &mut rng);
            transforms_for_grads(&image, &dy, &t, &mut s);
            let (mut fast, mut portable) = (vec![0.0; t.grad_len()], vec![0.0; t.grad_len()]);
            reduce(&s.grads_t, &s.v, &mut fast, &t);
            reduce_portable(&s.grads_t, &s.v, &mut portable, &t);
            for (i, (a, b)) in fast.iter().zip(&portable).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "r{r} entry {i}: {a} vs {b}"
                );
            }
            assert!(portable.iter().any(|&v| v != 0.0));
        }
    }

    /// The AVX-512 products against the portable ones, with filter counts that leave every
    /// block a remainder (6 filters: one block of 4 and two of 1) and spans of 1, 2, 4 and
    /// 7 vectors.
    #[test]
    fn products_agree() {
        let mut rng = crate::Rng::new(4);
        for (c, f, side) in [(9, 6, 4), (9, 6, 8), (5, 6, 13), (3, 6, 20)] {
            for r in [2, 4] {
                let t = Tiles::with_block(c, f, (side, side), (1, 1), r).unwrap();
                let u: Vec<f32> = (0..t.tile() * f * c).map(|_| rng.uniform() - 0.5).collect();
                let v: Vec<f32> = (0..t.tile() * t.v_stride())
                    .map(|_| rng.uniform() - 0.5)
                    .collect();
                let len = t.tile() * t.m_stride();
                let (mut fast, mut portable) = (vec![0.0; len], vec![0.0; len]);
                products(&u, &v, &mut fast, &t);
                products_portable(&u, &v, &mut portable, &t);
                for (i, (a, b)) in fast.iter().zip(&portable).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                        "r{r} {c}x{f}, side {side}, entry {i}: {a} vs {b}"
                    );
                }
            }
        }
    }

    /// Channels, filters, input (h, w) and padding.
    type Plane = (usize, usize, (usize, usize), (usize, usize));

    /// Odd sides, unequal paddings and one-tile planes.
    const PLANES: [Plane; 4] = [
        (3, 5, (9, 7), (1, 2)),
        (2, 3, (28, 28), (1, 1)),
        (1, 2, (3, 3), (0, 0)),
        (4, 1, (14, 5), (2, 0)),
    ];

    /// The AVX-512 output transforms give the portable ones' bits.
    #[test]
    fn output_transforms_agree() {
        let mut rng = crate::Rng::new(6);
        for (c, f, (h, w), pad) in PLANES {
            for r in [2, 4] {
                let t = Tiles::with_block(c, f, (h, w), pad, r).unwrap();
                let (mut fast, mut portable) = (Scratch::new(&t), Scratch::with_portable(&t));
                let m: Vec<f32> = (0..t.tile() * t.m_stride())
                    .map(|_| rng.uniform() - 0.5)
                    .collect();
                let mut ys = [0, 1].map(|_| vec![MaybeUninit::new(f32::NAN); f * t.oh * t.ow]);
                let [y_fast, y_portable] = &mut ys;
                fast.m.copy_from_slice(&m);
                transform_output(&t, &mut fast, y_fast);
                match r {
                    2 => transform_output_portable(&m, &t, &mut portable, y_portable),
                    _ => f4::transform_output_portable(&m, &t, &mut portable.out_rows, y_portable),
                }
                // SAFETY: both transforms wrote every slot.
                let (a, b) = unsafe {
                    (
                        super::super::written(y_fast),
                        super::super::written(y_portable),
                    )
                };
                assert_eq!(a, b, "r{r} {c}x{h}x{w}");
                assert!(a.iter().all(|v| v.is_finite()));
            }
        }
    }

    /// The AVX-512 input transform of blocks of 4 gives the portable one's bits.
    #[test]
    fn input_transforms_agree() {
        let mut rng = crate::Rng::new(7);
        for (c, f, (h, w), pad) in PLANES {
            let t = Tiles::with_block(c, f, (h, w), pad, 4).unwrap();
            let (mut fast, mut portable) = (Scratch::new(&t), Scratch::new(&t));
            let image = uniform(c * h * w, &mut rng);
            transform_input(&image, &t, &mut fast);
            f4::transform_input_portable(&image, &t, &mut portable);
            // The tiles' entries; the spare column's differ (dropped by the output).
            for xi in 0..t.tile() {
                for ci in 0..c {
                    let at = xi * t.v_stride() + ci * t.span;
                    for k in (0..t.th * t.s).filter(|k| k % t.s != t.s - 1) {
                        let (a, b) = (fast.v[at + k], portable.v[at + k]);
                        assert_eq!(a, b, "{c}x{h}x{w} position {xi} channel {ci} tile {k}");
                    }
                }
            }
        }
    }

    /// The AVX-512 output-gradient transforms give the portable ones' values,
    /// with filter counts under, at and over a vector (3, 16, 21).
    #[test]
    fn output_grad_transforms_agree() {
        let mut rng = crate::Rng::new(9);
        for (f, (h, w), pad) in [
            (3, (9, 7), (1, 2)),
            (16, (28, 28), (1, 1)),
            (21, (14, 5), (2, 0)),
        ] {
            for r in [2, 4] {
                let t = Tiles::with_block(2, f, (h, w), pad, r).unwrap();
                let (mut fast, mut portable) = (Scratch::new(&t), Scratch::with_portable(&t));
                let dy = uniform(f * t.oh * t.ow, &mut rng);
                let (s, p) = (&mut fast, &mut portable);
                for _ in 0..2 {
                    // Twice: the second call must not see the first's values.
                    match r {
                        2 => output_grads(&dy, &t, &mut s.dy_quads, &mut s.grads_t),
                        _ => {
                            f4::output_grads(&dy, &t, &mut s.dy_quads, &mut s.cols, &mut s.grads_t)
                        }
                    }
                }
                match r {
                    2 => output_grads_2(&dy, &t, &mut p.dy_quads, &mut p.grads_t),
                    _ => f4::output_grads_portable(
                        &dy,
                        &t,
                        &mut p.dy_quads,
                        &mut p.cols,
                        &mut p.grads_t,
                    ),
                }
                // Equal values: the portable loops also write the spare column and the entries
                // past the tiles, where −a₁ of zeros is −0 (the gathered loop leaves +0).
                assert!(
                    fast.grads_t == portable.grads_t,
                    "r{r}, {f} filters, {h}x{w}"
                );
                assert!(fast.grads_t.iter().any(|&v| v != 0.0));
            }
        }
    }

    /// Blocks of 4 compute what blocks of 2 do (whose results the conv tests check against
    /// direct sums), forward and both gradients, to F(4×4)'s rounding: 1e-6 of each entry's
    /// sum of |terms| bounds it here (1.2e-7 per term in f32, about 8x a direct sum's).
    #[test]
    fn blocks_of_four_match_blocks_of_two() {
        let mut rng = crate::Rng::new(8);
        for (c, f, (h, w), pad) in PLANES {
            let [two, four] = [2, 4].map(|r| Tiles::with_block(c, f, (h, w), pad, r).unwrap());
            let image = uniform(c * h * w, &mut rng);
            let wts = uniform(f * c * 9, &mut rng);
            let dy = uniform(f * two.oh * two.ow, &mut rng);
            let bound = 1e-6 * (c * 9) as f32;
            let close = |what: &str, a: &[f32], b: &[f32], bound: f32| {
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    assert!(
                        (x - y).abs() <= bound,
                        "{what} {c}x{h}x{w} entry {i}: {x} vs {y}"
                    );
                }
            };
            let [y2, y4] = [&two, &four].map(|t| {
                let mut y = vec![MaybeUninit::new(0.0); f * t.oh * t.ow];
                conv_image(&image, &filters(&wts, t), t, &mut y, &mut Scratch::new(t)).to_vec()
            });
            close("forward", &y2, &y4, bound);
            let [dx2, dx4] = [&two, &four].map(|t| {
                let back = t.input_grad();
                let mut dx = vec![MaybeUninit::new(0.0); c * h * w];
                let u = flipped_filters(&wts, &back);
                conv_image(&dy, &u, &back, &mut dx, &mut Scratch::new(&back)).to_vec()
            });
            close("dx", &dx2, &dx4, 1e-6 * (f * 9) as f32);
            let [dw2, dw4] = [&two, &four].map(|t| {
                let mut du = vec![0.0; t.grad_len()];
                weight_grads_image(&image, &dy, t, &mut du, &mut Scratch::new(t));
                filter_grads(&du, t)
            });
            close("dw", &dw2, &dw4, 1e-6 * (two.oh * two.ow) as f32);
        }
    }
}
