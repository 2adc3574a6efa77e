//! im2col and its inverse on the CPU, in the per-image layout `[n, c·kh·kw, oh·ow]`: each row
//! holds one kernel cell (channel, ky, kx) at every output position, so with stride 1 a row is
//! a run of contiguous input segments (plain copies), and `W · cols` yields `[n, f, oh·ow]`
//! with no transpose.

use std::mem::MaybeUninit;

use gemm::Parallelism;
use rayon::prelude::*;

use super::layout::permute;
use super::matmul::{product_into, product_parallelism, product_uninit};
use super::winograd::{self, Tiles};
use super::{bias, filled, zeroed, CHUNK, PARALLEL_MIN};
use crate::backend::spec::{Conv2dGeom, ConvGrads, MatmulSpec};

/// Input columns `ix = ox·sw + kx − pw` that fall inside `[0, w)`: the first and one past the
/// last output column `ox` that read a real pixel.
fn inside_columns(g: &Conv2dGeom, kx: usize) -> (usize, usize) {
    let first = (g.pw.saturating_sub(kx)).div_ceil(g.sw);
    // ox·sw + kx − pw < w  ⇔  ox·sw < w + pw − kx
    let end = (g.w + g.pw).saturating_sub(kx).div_ceil(g.sw).min(g.ow);
    (first.min(end), end)
}

/// One im2col row: kernel cell `q` = (ci, ky, kx) of one image `[c, h, w]` at every output
/// position.
fn fill_row(image: &[f32], g: &Conv2dGeom, q: usize, row: &mut [f32]) {
    let (ci, ky, kx) = (q / (g.kh * g.kw), (q / g.kw) % g.kh, q % g.kw);
    let plane = &image[ci * g.h * g.w..][..g.h * g.w];
    if g.sh == 1 && g.sw == 1 && g.ow == g.w {
        return fill_row_shifted(plane, g, (ky, kx), row);
    }
    let (first, end) = inside_columns(g, kx);
    for (oy, out) in row.chunks_exact_mut(g.ow).enumerate() {
        let iy = (oy * g.sh + ky) as isize - g.ph as isize;
        if iy < 0 || iy as usize >= g.h || first >= end {
            out.fill(0.0);
            continue;
        }
        let src = &plane[iy as usize * g.w..][..g.w];
        out[..first].fill(0.0);
        out[end..].fill(0.0);
        let ix0 = first * g.sw + kx - g.pw;
        if g.sw == 1 {
            out[first..end].copy_from_slice(&src[ix0..ix0 + (end - first)]);
        } else {
            for (o, ix) in out[first..end].iter_mut().zip((ix0..).step_by(g.sw)) {
                *o = src[ix];
            }
        }
    }
}

/// `fill_row` for stride 1 when the output is as wide as the input ("same" padding): the row
/// is the whole plane shifted by (ky − ph) rows and (kx − pw) columns, so it is one copy of
/// the rows that stay inside, then zeros over the columns that crossed the left or right
/// edge. Row by row, a 28-wide MNIST plane took a memmove call per 28 values: 7% of
/// mnist_resnet's training time.
fn fill_row_shifted(plane: &[f32], g: &Conv2dGeom, (ky, kx): (usize, usize), row: &mut [f32]) {
    let s = Shift::new(g, (ky, kx));
    row[..s.rows.start * g.w].fill(0.0);
    row[s.rows.end * g.w..].fill(0.0);
    let inside = &mut row[s.rows.start * g.w..s.rows.end * g.w];
    inside[..s.lo].fill(0.0);
    if s.hi > s.lo {
        inside[s.lo..s.hi].copy_from_slice(&plane[s.from..s.from + (s.hi - s.lo)]);
    }
    inside[s.hi..].fill(0.0);
    s.zero_edges(inside, g.w);
}

/// Where a kernel cell's row of the columns meets the input plane, for stride 1 with the output
/// as wide as the input: output rows `rows` read input rows; within them (flattened), entries
/// `lo..hi` are plane values from flat index `from` on (past the plane when `lo == hi`: a
/// plane narrower than the window's reach), and per row of `w` the first `left`
/// and last `right` crossed the left or right edge into padding.
struct Shift {
    rows: std::ops::Range<usize>,
    lo: usize,
    hi: usize,
    from: usize,
    left: usize,
    right: usize,
}

impl Shift {
    fn new(g: &Conv2dGeom, (ky, kx): (usize, usize)) -> Shift {
        let w = g.w;
        // Output rows whose input row oy + ky − ph lies inside [0, h).
        let oy0 = g.ph.saturating_sub(ky).min(g.oh);
        let oy1 = (g.h + g.ph).saturating_sub(ky).clamp(oy0, g.oh);
        let len = ((oy1 - oy0) * w) as isize;
        // Entry i of those rows reads plane[start + i] (running across row ends; the columns
        // that do are `left` and `right`).
        let start = ((oy0 + ky).saturating_sub(g.ph) * w) as isize + kx as isize - g.pw as isize;
        let lo = (-start).clamp(0, len);
        let hi = ((g.h * w) as isize - start).clamp(lo, len);
        Shift {
            rows: oy0..oy1,
            lo: lo as usize,
            hi: hi as usize,
            from: (start + lo).max(0) as usize,
            left: g.pw.saturating_sub(kx).min(w),
            right: (kx + w).saturating_sub(g.pw + w).min(w),
        }
    }

    /// Zeros over the entries of `inside` (rows of `w`) that read padding.
    fn zero_edges(&self, inside: &mut [f32], w: usize) {
        if self.left + self.right > 0 {
            for out in inside.chunks_exact_mut(w) {
                out[..self.left].fill(0.0);
                out[w - self.right..].fill(0.0);
            }
        }
    }
}

/// `fold_image` into `dx` from columns that may be overwritten (the backward's scratch): for
/// stride 1 with the output as wide as the input, each row's entries that read padding are
/// zeroed, then the row is added to the plane in one contiguous run (its zeros land on
/// neighbouring pixels and change nothing), not output row by output row.
fn fold_scratch(cols: &mut [f32], g: &Conv2dGeom, dx: &mut [f32]) {
    if !(g.sh == 1 && g.sw == 1 && g.ow == g.w) {
        return fold_image(cols, g, dx);
    }
    let plane_len = g.h * g.w;
    for (q, row) in cols.chunks_exact_mut(g.oh * g.ow).enumerate() {
        let (ci, ky, kx) = (q / (g.kh * g.kw), (q / g.kw) % g.kh, q % g.kw);
        let s = Shift::new(g, (ky, kx));
        let inside = &mut row[s.rows.start * g.w..s.rows.end * g.w];
        s.zero_edges(inside, g.w);
        let dplane = &mut dx[ci * plane_len..][..plane_len];
        if s.hi == s.lo {
            // The cell reads only padding here (a plane narrower than the window's reach):
            // `from` may then point past the plane.
            continue;
        }
        let dst = &mut dplane[s.from..s.from + (s.hi - s.lo)];
        for (d, &v) in dst.iter_mut().zip(&inside[s.lo..s.hi]) {
            *d += v;
        }
    }
}

/// One image `[c, h, w]` → its columns `[c·kh·kw, oh·ow]`.
fn unfold_image(image: &[f32], g: &Conv2dGeom, cols: &mut [f32]) {
    for (q, row) in cols.chunks_exact_mut(g.oh * g.ow).enumerate() {
        fill_row(image, g, q, row);
    }
}

/// One image's columns `[c·kh·kw, oh·ow]` added back into its `dx` `[c, h, w]` where each
/// entry was read, in a fixed order (kernel cell, then output row).
fn fold_image(cols: &[f32], g: &Conv2dGeom, dx: &mut [f32]) {
    for (q, row) in cols.chunks_exact(g.oh * g.ow).enumerate() {
        let (ci, ky, kx) = (q / (g.kh * g.kw), (q / g.kw) % g.kh, q % g.kw);
        let (first, end) = inside_columns(g, kx);
        if first >= end {
            continue;
        }
        let dplane = &mut dx[ci * g.h * g.w..][..g.h * g.w];
        let ix0 = first * g.sw + kx - g.pw;
        for (oy, src) in row.chunks_exact(g.ow).enumerate() {
            let iy = (oy * g.sh + ky) as isize - g.ph as isize;
            if iy < 0 || iy as usize >= g.h {
                continue;
            }
            let dst = &mut dplane[iy as usize * g.w..][..g.w];
            if g.sw == 1 {
                let dst = &mut dst[ix0..ix0 + (end - first)];
                for (d, &v) in dst.iter_mut().zip(&src[first..end]) {
                    *d += v;
                }
            } else {
                for (i, &v) in src[first..end].iter().enumerate() {
                    dst[ix0 + i * g.sw] += v;
                }
            }
        }
    }
}

/// x `[n, c, h, w]` → cols `[n, c·kh·kw, oh·ow]` (zeros where a window covers padding).
pub fn im2col(x: &[f32], g: &Conv2dGeom) -> Vec<f32> {
    let (image, patch, plane) = (g.c * g.h * g.w, g.patch_len(), g.oh * g.ow);
    let mut cols = vec![0.0; g.n * patch * plane];
    if cols.is_empty() {
        return cols;
    }
    let fill = |r: usize, row: &mut [f32]| fill_row(&x[r / patch * image..], g, r % patch, row);
    if cols.len() < PARALLEL_MIN {
        cols.chunks_mut(plane)
            .enumerate()
            .for_each(|(r, row)| fill(r, row));
    } else {
        let rows_per_task = CHUNK.div_ceil(plane).max(1);
        cols.par_chunks_mut(rows_per_task * plane)
            .enumerate()
            .for_each(|(t, rows)| {
                for (i, row) in rows.chunks_mut(plane).enumerate() {
                    fill(t * rows_per_task + i, row);
                }
            });
    }
    cols
}

/// cols `[n, c·kh·kw, oh·ow]` → dx `[n, c, h, w]`, adding every patch entry back where it was
/// read. Images are independent, so each is summed by one task.
pub fn col2im(cols: &[f32], g: &Conv2dGeom) -> Vec<f32> {
    let (image, patch, plane) = (g.c * g.h * g.w, g.patch_len(), g.oh * g.ow);
    let mut dx = vec![0.0; g.n * image];
    let one =
        |b: usize, dx: &mut [f32]| fold_image(&cols[b * patch * plane..][..patch * plane], g, dx);
    if cols.len() < PARALLEL_MIN {
        dx.chunks_mut(image.max(1))
            .enumerate()
            .for_each(|(b, d)| one(b, d));
    } else {
        dx.par_chunks_mut(image.max(1))
            .enumerate()
            .for_each(|(b, d)| one(b, d));
    }
    dx
}

/// Images whose weight-gradient products are summed into one partial. A count fixed by the
/// batch size alone, so the sum of partials adds in the same order on any number of threads.
const WEIGHT_GRAD_GROUPS: usize = 16;

/// A 1×1 window with stride 1 and no padding reads every pixel once in place: an image is its
/// own columns, so nothing needs unfolding.
fn is_pointwise(g: &Conv2dGeom) -> bool {
    (g.kh, g.kw, g.sh, g.sw, g.ph, g.pw) == (1, 1, 1, 1, 0, 0)
}

/// The columns of image `b`: unfolded into `scratch`, or the image itself when pointwise.
fn columns<'a>(x: &'a [f32], g: &Conv2dGeom, b: usize, scratch: &'a mut [f32]) -> &'a [f32] {
    let image = &x[b * g.c * g.h * g.w..][..g.c * g.h * g.w];
    if is_pointwise(g) {
        return image;
    }
    unfold_image(image, g, scratch);
    scratch
}

/// Fewer channels in or out than this and the tiles' transforms, which cost the same per
/// output whatever the channels, outweigh the multiplies they save (mnist_resnet's 1-channel
/// stem: 0.38 ms forward with columns, 0.62 ms with tiles).
const WINOGRAD_MIN_CHANNELS: usize = 8;

/// The Winograd tiling (F(2×2, 3×3) or F(4×4, 3×3)) when `g` is a 3×3 stride-1 convolution
/// it applies to, the CPU runs its kernels (`winograd::available`) and `allowed` (f32
/// products: under autocast the products take the rounded operands as they are).
fn winograd_tiles(g: &Conv2dGeom, filters: usize, allowed: bool) -> Option<Tiles> {
    if !allowed
        || (g.kh, g.kw, g.sh, g.sw) != (3, 3, 1, 1)
        || g.c.min(filters) < WINOGRAD_MIN_CHANNELS
        || !winograd::available()
    {
        return None;
    }
    Tiles::new(g.c, filters, (g.h, g.w), (g.ph, g.pw)).filter(Tiles::saves_enough)
}

/// The block side of the Winograd tiles an f32 convolution of `g` by `filters` filters goes
/// through here, if any.
pub fn winograd_block(g: &Conv2dGeom, filters: usize) -> Option<usize> {
    winograd_tiles(g, filters, true).map(|t| t.block())
}

/// Images per task when `n` images of `work` multiply-adds each are shared among the pool's
/// threads: one task (one set of scratch buffers) per thread, or all on the caller when small.
fn images_per_task(n: usize, work: usize) -> usize {
    if n * work < PARALLEL_MIN {
        n.max(1)
    } else {
        n.div_ceil(rayon::current_num_threads()).max(1)
    }
}

/// `relu(y + bias)` over each filter's plane of one image's output.
fn bias_relu_planes(y: &mut [f32], bias: &[f32], plane: usize) {
    for (row, &b) in y.chunks_exact_mut(plane).zip(bias) {
        bias::relu_in_place(row, b);
    }
}

/// Convolution x `[n, c, h, w]` by w `[f, c·kh·kw]` → `[n, f, oh·ow]`, one image at a time.
/// A 3×3 stride-1 window (with `winograd` allowed) goes through Winograd tiles; any other
/// through columns unfolded into a buffer the size of one image's patches, which stays in
/// cache for the product that reads it, instead of the whole batch's columns crossing memory.
/// With `bias_relu`, each image's output becomes `relu(y + bias)` while still in cache.
pub fn conv2d_fwd(
    x: &[f32],
    w: &[f32],
    bias_relu: Option<&[f32]>,
    g: &Conv2dGeom,
    filters: usize,
    winograd: bool,
) -> Vec<f32> {
    match winograd_tiles(g, filters, winograd) {
        Some(t) => winograd_fwd(x, w, bias_relu, g, &t),
        None => columns_fwd(x, w, bias_relu, g, filters),
    }
}

fn winograd_fwd(
    x: &[f32],
    w: &[f32],
    bias_relu: Option<&[f32]>,
    g: &Conv2dGeom,
    t: &Tiles,
) -> Vec<f32> {
    let u = winograd::filters(w, t);
    let (image, plane) = (g.c * g.h * g.w, g.oh * g.ow);
    let out = t.f * plane;
    let per_task = images_per_task(g.n, t.products_per_image());
    let task = |first: usize, y: &mut [MaybeUninit<f32>]| {
        let mut scratch = winograd::Pooled::new(t);
        for (i, y) in y.chunks_mut(out).enumerate() {
            let b = first + i;
            let y = winograd::conv_image(&x[b * image..][..image], &u, t, y, &mut scratch);
            if let Some(bias) = bias_relu {
                bias_relu_planes(y, bias, plane);
            }
        }
    };
    filled(g.n * out, |y| {
        if out == 0 {
            return;
        }
        y.par_chunks_mut(per_task * out)
            .enumerate()
            .for_each(|(t, y)| task(t * per_task, y));
    })
}

fn columns_fwd(
    x: &[f32],
    w: &[f32],
    bias_relu: Option<&[f32]>,
    g: &Conv2dGeom,
    filters: usize,
) -> Vec<f32> {
    let spec = g.forward_spec(filters);
    let (out, cols_len) = (spec.m * spec.n, spec.k * spec.n);
    let par = product_parallelism(&spec);
    let one = |b: usize, y: &mut [MaybeUninit<f32>], scratch: &mut Vec<f32>| {
        let cols = columns(x, g, b, scratch);
        product_uninit(w, cols, y, &spec, par);
        if let Some(bias) = bias_relu {
            // SAFETY: the product above wrote every slot of `y`.
            let y = unsafe { &mut *(y as *mut [MaybeUninit<f32>] as *mut [f32]) };
            bias_relu_planes(y, bias, spec.n);
        }
    };
    filled(g.n * out, |y| {
        if out == 0 {
            return;
        }
        let serial = !matches!(par, Parallelism::None) || g.n * out * spec.k < PARALLEL_MIN;
        if serial {
            let mut scratch = vec![0.0; cols_len];
            for (b, y) in y.chunks_mut(out).enumerate() {
                one(b, y, &mut scratch);
            }
        } else {
            y.par_chunks_mut(out)
                .enumerate()
                .for_each_init(|| vec![0.0; cols_len], |scratch, (b, y)| one(b, y, scratch));
        }
    })
}

/// A group's share of the parameter gradients: dw (in the method's own layout) and dbias
/// summed over its images.
struct GroupGrads {
    dw_part: Vec<f32>,
    dbias: Vec<f32>,
}

/// How the backward computes one image's dw share and dx.
enum Method {
    /// Unfolded columns and gemm: dwᵀ `[c·kh·kw, f]` += cols · dyᵀ, dx folded from wᵀ · dy.
    Columns {
        wt_spec: MatmulSpec,
        ispec: MatmulSpec,
        par: Parallelism,
    },
    /// Winograd tiles: the transformed dU `[tile, c, fp]` += the tiles' sums, dx the convolution of dy
    /// with the turned filters.
    Winograd {
        fwd: Tiles,
        back: Tiles,
        u_back: Vec<f32>,
    },
}

/// A task's scratch buffers for its method.
enum Work {
    Columns(Vec<f32>),
    Winograd(Box<(winograd::Pooled, winograd::Pooled)>),
}

impl Method {
    fn work(&self) -> Work {
        match self {
            Method::Columns { ispec, .. } => Work::Columns(vec![0.0; ispec.m * ispec.n]),
            Method::Winograd { fwd, back, .. } => Work::Winograd(Box::new((
                winograd::Pooled::new(fwd),
                winograd::Pooled::new(back),
            ))),
        }
    }

    /// Whether images run in parallel tasks (else the products split themselves, or the work
    /// is too small to share).
    fn parallel(&self, g: &Conv2dGeom) -> bool {
        match self {
            Method::Columns { par, .. } => matches!(par, Parallelism::None),
            Method::Winograd { fwd, .. } => g.n * fwd.products_per_image() >= PARALLEL_MIN,
        }
    }

    /// Image `b`'s dw share added into `dw_part` (set when `first`) and its dx written.
    #[allow(clippy::too_many_arguments)]
    fn image(
        &self,
        work: &mut Work,
        (x, w, g): (&[f32], &[f32], &Conv2dGeom),
        b: usize,
        dy: &[f32],
        dw_part: Option<(&mut [f32], bool)>,
        dx: Option<&mut [MaybeUninit<f32>]>,
    ) {
        match (self, work) {
            (
                Method::Columns {
                    wt_spec,
                    ispec,
                    par,
                },
                Work::Columns(scratch),
            ) => {
                if let Some((dw_t, first)) = dw_part {
                    let cols = columns(x, g, b, scratch);
                    product_into(cols, dy, dw_t, wt_spec, !first, *par);
                }
                if let Some(dx) = dx {
                    let dx = zeroed(dx);
                    if is_pointwise(g) {
                        product_into(w, dy, dx, ispec, false, *par);
                    } else {
                        product_into(w, dy, scratch, ispec, false, *par);
                        fold_scratch(scratch, g, dx);
                    }
                }
            }
            (Method::Winograd { fwd, back, u_back }, Work::Winograd(scratch)) => {
                let (sf, sb) = &mut **scratch;
                let image = g.c * g.h * g.w;
                if let Some((du, _)) = dw_part {
                    winograd::weight_grads_image(&x[b * image..][..image], dy, fwd, du, sf);
                }
                if let Some(dx) = dx {
                    winograd::conv_image(dy, u_back, back, dx, sb);
                }
            }
            _ => unreachable!("a method's work is made by that method"),
        }
    }

    /// The batch's dw `[f, c·kh·kw]` from the sum of the groups' parts.
    fn dw(&self, total: &[f32]) -> Vec<f32> {
        match self {
            Method::Columns { wt_spec, .. } => permute(total, &[wt_spec.m, wt_spec.n], &[1, 0]),
            Method::Winograd { fwd, .. } => winograd::filter_grads(total, fwd),
        }
    }
}

/// Gradients of `conv2d_fwd`, one image at a time as the forward, by the forward's method:
/// with the epilogue, the image's dy is masked by the ReLU (and summed for dbias) into a
/// cache-sized buffer; dw accumulates per group of images (columns or tiles recomputed, as
/// cheap as keeping the batch's), and dx is written image by image.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_bwd(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    relu_out: Option<&[f32]>,
    g: &Conv2dGeom,
    filters: usize,
    want: ConvGrads,
    winograd: bool,
) -> [Option<Vec<f32>>; 3] {
    let method = match winograd_tiles(g, filters, winograd) {
        Some(fwd) => {
            let back = fwd.input_grad();
            Method::Winograd {
                u_back: if want.dx {
                    winograd::flipped_filters(w, &back)
                } else {
                    Vec::new()
                },
                back,
                fwd,
            }
        }
        None => {
            let (wspec, ispec) = (g.weight_grad_spec(filters), g.input_grad_spec(filters));
            // dwᵀ `[c·kh·kw, f]` = cols · dyᵀ per image, turned once at the end: gemm packs a
            // transposed operand for either order, but multiplies this one 10-35% faster on
            // every shape measured (16 to 128 filters; [32, 288]: 29.6 -> 19.1 µs an image).
            let wt_spec = MatmulSpec {
                m: wspec.n,
                n: wspec.m,
                a_batch_stride: wspec.b_batch_stride,
                b_batch_stride: wspec.a_batch_stride,
                ..wspec
            };
            Method::Columns {
                wt_spec,
                par: product_parallelism(&ispec),
                ispec,
            }
        }
    };
    let dw_part_len = match &method {
        Method::Columns { .. } => w.len(),
        Method::Winograd { fwd, .. } => fwd.grad_len(),
    };
    let (image, plane) = (g.c * g.h * g.w, g.oh * g.ow);
    let out = filters * plane;
    let per_group = g.n.div_ceil(WEIGHT_GRAD_GROUPS).max(1);
    let groups = g.n.div_ceil(per_group);
    // dx is written image by image into fresh slots (zeroed first where it is summed into),
    // not zeroed all at once by one thread's calloc.
    let dx_len = if want.dx { g.n * image } else { 0 };
    let mut dx = Vec::with_capacity(dx_len);
    let mut dx_groups: Vec<&mut [MaybeUninit<f32>]> = if want.dx && image > 0 {
        dx.spare_capacity_mut()[..dx_len]
            .chunks_mut(per_group * image)
            .collect()
    } else {
        (0..groups).map(|_| &mut [][..]).collect()
    };
    let group = |t: usize,
                 dx: &mut [MaybeUninit<f32>],
                 work: &mut Work,
                 masked: &mut [f32]|
     -> GroupGrads {
        let mut sums = GroupGrads {
            dw_part: vec![0.0; if want.dw { dw_part_len } else { 0 }],
            dbias: vec![0.0; if relu_out.is_some() { filters } else { 0 }],
        };
        let first = t * per_group;
        for b in first..(first + per_group).min(g.n) {
            let mut dy = &dy[b * out..][..out];
            if let Some(y) = relu_out {
                let y = &y[b * out..][..out];
                let rows = y.chunks_exact(plane).zip(dy.chunks_exact(plane));
                for ((m, (y, dy)), s) in masked
                    .chunks_exact_mut(plane)
                    .zip(rows)
                    .zip(&mut sums.dbias)
                {
                    *s += bias::relu_grad_row(y, dy, m);
                }
                dy = masked;
            }
            let dw_part = want.dw.then_some((&mut sums.dw_part[..], b == first));
            let dx = want.dx.then(|| &mut dx[(b - first) * image..][..image]);
            method.image(work, (x, w, g), b, dy, dw_part, dx);
        }
        sums
    };
    // Groups are shared among one task per thread, each with one set of buffers; a group's
    // sums do not depend on which task computes it.
    let tasks = if method.parallel(g) {
        rayon::current_num_threads().clamp(1, groups.max(1))
    } else {
        1
    };
    let groups_per_task = groups.div_ceil(tasks).max(1);
    let task = |(k, dx_groups): (usize, &mut [&mut [MaybeUninit<f32>]])| -> Vec<GroupGrads> {
        let mut work = method.work();
        let mut masked = vec![0.0; if relu_out.is_some() { out } else { 0 }];
        dx_groups
            .iter_mut()
            .enumerate()
            .map(|(i, dx)| group(k * groups_per_task + i, dx, &mut work, &mut masked))
            .collect()
    };
    let partials: Vec<GroupGrads> = if tasks == 1 {
        task((0, &mut dx_groups))
    } else {
        dx_groups
            .par_chunks_mut(groups_per_task)
            .enumerate()
            .map(task)
            .flatten_iter()
            .collect()
    };
    // The groups' partials, added in group order.
    let total = |len: usize, part: fn(&GroupGrads) -> &[f32]| {
        let mut sum = vec![0.0; len];
        for p in &partials {
            sum.iter_mut().zip(part(p)).for_each(|(s, &v)| *s += v);
        }
        sum
    };
    let dw = want
        .dw
        .then(|| method.dw(&total(dw_part_len, |p| &p.dw_part)));
    let dbias = (want.dbias && relu_out.is_some()).then(|| total(filters, |p| &p.dbias));
    // SAFETY: every image's dx slots were written by the task of its group.
    unsafe { dx.set_len(dx_len) };
    [want.dx.then_some(dx), dw, dbias]
}
