//! im2col and its inverse on the CPU, in the per-image layout `[n, c·kh·kw, oh·ow]`: each row
//! holds one kernel cell (channel, ky, kx) at every output position, so with stride 1 a row is
//! a run of contiguous input segments (plain copies), and `W · cols` yields `[n, f, oh·ow]`
//! with no transpose.

use rayon::prelude::*;

use super::{CHUNK, PARALLEL_MIN};
use crate::ops::conv::Conv2dGeom;

/// Input columns `ix = ox·sw + kx − pw` that fall inside `[0, w)`: the first and one past the
/// last output column `ox` that read a real pixel.
fn inside_columns(g: &Conv2dGeom, kx: usize) -> (usize, usize) {
    let first = (g.pw.saturating_sub(kx)).div_ceil(g.sw);
    // ox·sw + kx − pw < w  ⇔  ox·sw < w + pw − kx
    let end = (g.w + g.pw).saturating_sub(kx).div_ceil(g.sw).min(g.ow);
    (first.min(end), end)
}

/// One im2col row: kernel cell (ci, ky, kx) of image `b` at every output position.
fn fill_row(x: &[f32], g: &Conv2dGeom, b: usize, q: usize, row: &mut [f32]) {
    let (ci, ky, kx) = (q / (g.kh * g.kw), (q / g.kw) % g.kh, q % g.kw);
    let plane = &x[(b * g.c + ci) * g.h * g.w..][..g.h * g.w];
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

/// x `[n, c, h, w]` → cols `[n, c·kh·kw, oh·ow]` (zeros where a window covers padding).
pub fn im2col(x: &[f32], g: &Conv2dGeom) -> Vec<f32> {
    let (patch, plane) = (g.patch_len(), g.oh * g.ow);
    let mut cols = vec![0.0; g.n * patch * plane];
    if cols.is_empty() {
        return cols;
    }
    let fill = |r: usize, row: &mut [f32]| fill_row(x, g, r / patch, r % patch, row);
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
/// read. Images are independent, so each is summed by one task in a fixed order (kernel cell,
/// then output row).
pub fn col2im(cols: &[f32], g: &Conv2dGeom) -> Vec<f32> {
    let (image, patch, plane) = (g.c * g.h * g.w, g.patch_len(), g.oh * g.ow);
    let mut dx = vec![0.0; g.n * image];
    let one = |b: usize, dx: &mut [f32]| {
        for q in 0..patch {
            let (ci, ky, kx) = (q / (g.kh * g.kw), (q / g.kw) % g.kh, q % g.kw);
            let (first, end) = inside_columns(g, kx);
            if first >= end {
                continue;
            }
            let row = &cols[(b * patch + q) * plane..][..plane];
            let dplane = &mut dx[ci * g.h * g.w..][..g.h * g.w];
            for (oy, src) in row.chunks_exact(g.ow).enumerate() {
                let iy = (oy * g.sh + ky) as isize - g.ph as isize;
                if iy < 0 || iy as usize >= g.h {
                    continue;
                }
                let dst = &mut dplane[iy as usize * g.w..][..g.w];
                let ix0 = first * g.sw + kx - g.pw;
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
    };
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
