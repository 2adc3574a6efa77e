//! im2col and its inverse on the CPU.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::{filled, CHUNK, PARALLEL_MIN};
use crate::ops::conv::Conv2dGeom;

/// x `[n, c, h, w]` → cols `[n·oh·ow, c·kh·kw]`, every slot written once (no zeroing first).
pub fn im2col(x: &[f32], g: &Conv2dGeom) -> Vec<f32> {
    let patch = g.patch_len();
    let fill_rows = |first: usize, rows: &mut [MaybeUninit<f32>]| {
        for (r, row) in rows.chunks_mut(patch).enumerate() {
            let r = first + r;
            let (b, oy, ox) = (r / (g.oh * g.ow), (r / g.ow) % g.oh, r % g.ow);
            let mut slots = row.iter_mut();
            for ci in 0..g.c {
                let plane = &x[(b * g.c + ci) * g.h * g.w..][..g.h * g.w];
                for ky in 0..g.kh {
                    let iy = (oy * g.sh + ky) as isize - g.ph as isize;
                    for kx in 0..g.kw {
                        let ix = (ox * g.sw + kx) as isize - g.pw as isize;
                        let inside =
                            iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w;
                        let v = if inside {
                            plane[iy as usize * g.w + ix as usize]
                        } else {
                            0.0
                        };
                        slots.next().expect("patch_len slots per row").write(v);
                    }
                }
            }
        }
    };
    filled(g.rows() * patch, |slots| {
        if slots.len() < PARALLEL_MIN {
            fill_rows(0, slots);
        } else {
            let rows_per_chunk = CHUNK.div_ceil(patch.max(1));
            slots
                .par_chunks_mut(rows_per_chunk * patch.max(1))
                .enumerate()
                .for_each(|(i, chunk)| fill_rows(i * rows_per_chunk, chunk));
        }
    })
}

/// cols `[n·oh·ow, c·kh·kw]` → dx `[n, c, h, w]`, adding overlapping patches. Images are
/// independent, so each is summed by one task in a fixed order.
pub fn col2im(cols: &[f32], g: &Conv2dGeom) -> Vec<f32> {
    let image = g.c * g.h * g.w;
    let patch = g.patch_len();
    let mut dx = vec![0.0; g.n * image];
    let one = |b: usize, dx: &mut [f32]| {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let row = &cols[((b * g.oh + oy) * g.ow + ox) * patch..][..patch];
                let mut i = 0;
                for ci in 0..g.c {
                    for ky in 0..g.kh {
                        let iy = (oy * g.sh + ky) as isize - g.ph as isize;
                        for kx in 0..g.kw {
                            let ix = (ox * g.sw + kx) as isize - g.pw as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                                dx[(ci * g.h + iy as usize) * g.w + ix as usize] += row[i];
                            }
                            i += 1;
                        }
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
