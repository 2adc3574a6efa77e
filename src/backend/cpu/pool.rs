//! 2-D pooling on the CPU, one (image, channel) plane per task.

use rayon::prelude::*;

use super::PARALLEL_MIN;
use crate::ops::conv::Conv2dGeom;
use crate::ops::pool::Pool;

/// Visit each output position of each plane with its window's input offsets.
fn windows(g: &Conv2dGeom, mut f: impl FnMut(usize, &mut dyn Iterator<Item = usize>)) {
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            let mut cells = (0..g.kh).flat_map(move |ky| {
                (0..g.kw).map(move |kx| (oy * g.sh + ky) * g.w + ox * g.sw + kx)
            });
            f(oy * g.ow + ox, &mut cells);
        }
    }
}

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

pub fn forward(kind: Pool, x: &[f32], g: &Conv2dGeom) -> Vec<f32> {
    let (in_plane, out_plane) = (g.h * g.w, g.oh * g.ow);
    let mut y = vec![0.0; g.n * g.c * out_plane];
    let area = (g.kh * g.kw) as f32;
    per_plane(&mut y, out_plane.max(1), x.len(), |p, y| {
        let x = &x[p * in_plane..][..in_plane];
        windows(g, |o, cells| {
            y[o] = match kind {
                Pool::Max => cells.map(|i| x[i]).fold(f32::NEG_INFINITY, f32::max),
                Pool::Avg => cells.map(|i| x[i]).sum::<f32>() / area,
            };
        });
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
        windows(g, |o, cells| match kind {
            Pool::Max => {
                for i in cells {
                    if x[i] == y[o] {
                        dx[i] += dy[o];
                        break;
                    }
                }
            }
            Pool::Avg => cells.for_each(|i| dx[i] += dy[o] / area),
        });
    });
    dx
}
