//! 2-D pooling on the CPU, one (image, channel) plane per task, in plain nested loops.

use rayon::prelude::*;

use super::PARALLEL_MIN;
use crate::ops::conv::Conv2dGeom;
use crate::ops::pool::Pool;

/// Run `f(plane_index, plane)` over the planes of `out`, in parallel when `work` is large.
fn per_plane(
    out: &mut [f32],
    plane: usize,
    work: usize,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) {
    if work < PARALLEL_MIN {
        out.chunks_mut(plane).enumerate().for_each(|(p, o)| f(p, o));
    } else {
        out.par_chunks_mut(plane)
            .enumerate()
            .for_each(|(p, o)| f(p, o));
    }
}

/// Offset in the plane of the window cell (ky, kx) of output (oy, ox).
#[inline]
fn cell(g: &Conv2dGeom, oy: usize, ox: usize, ky: usize, kx: usize) -> usize {
    (oy * g.sh + ky) * g.w + ox * g.sw + kx
}

pub fn forward(kind: Pool, x: &[f32], g: &Conv2dGeom) -> Vec<f32> {
    let (in_plane, out_plane) = (g.h * g.w, g.oh * g.ow);
    let mut y = vec![0.0; g.n * g.c * out_plane];
    let area = (g.kh * g.kw) as f32;
    per_plane(&mut y, out_plane.max(1), x.len(), |p, y| {
        let x = &x[p * in_plane..][..in_plane];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let mut acc = if kind == Pool::Max {
                    f32::NEG_INFINITY
                } else {
                    0.0
                };
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        let v = x[cell(g, oy, ox, ky, kx)];
                        acc = if kind == Pool::Max {
                            acc.max(v)
                        } else {
                            acc + v
                        };
                    }
                }
                y[oy * g.ow + ox] = if kind == Pool::Max { acc } else { acc / area };
            }
        }
    });
    y
}

/// Max: dy goes to the first position holding the window's maximum. Avg: spread evenly.
pub fn backward(kind: Pool, x: &[f32], y: &[f32], dy: &[f32], g: &Conv2dGeom) -> Vec<f32> {
    let (in_plane, out_plane) = (g.h * g.w, g.oh * g.ow);
    let mut dx = vec![0.0; x.len()];
    let area = (g.kh * g.kw) as f32;
    per_plane(&mut dx, in_plane.max(1), x.len(), |p, dx| {
        let x = &x[p * in_plane..][..in_plane];
        let (y, dy) = (
            &y[p * out_plane..][..out_plane],
            &dy[p * out_plane..][..out_plane],
        );
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let o = oy * g.ow + ox;
                match kind {
                    Pool::Max => {
                        let first_max = (0..g.kh)
                            .flat_map(|ky| (0..g.kw).map(move |kx| (ky, kx)))
                            .map(|(ky, kx)| cell(g, oy, ox, ky, kx))
                            .find(|&i| x[i] == y[o]);
                        if let Some(i) = first_max {
                            dx[i] += dy[o];
                        }
                    }
                    Pool::Avg => {
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                dx[cell(g, oy, ox, ky, kx)] += dy[o] / area;
                            }
                        }
                    }
                }
            }
        }
    });
    dx
}
