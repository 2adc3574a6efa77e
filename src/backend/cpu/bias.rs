//! The fused bias + ReLU epilogue on the CPU, over `[outer, c, inner]` with a bias per c.

use rayon::prelude::*;

use super::{filled, CHUNK, PARALLEL_MIN};
use crate::tensor::AxisDims;

/// Outer blocks (`c·inner` elements each) per parallel task: about `CHUNK` elements, a count
/// that depends only on the sizes, so sums split the same way on any number of threads.
fn blocks_per_task(d: AxisDims) -> usize {
    CHUNK.div_ceil((d.len * d.inner).max(1))
}

pub fn forward(x: &[f32], bias: &[f32], d: AxisDims) -> Vec<f32> {
    let block = d.len * d.inner;
    filled(x.len(), |y| {
        if block == 0 {
            return;
        }
        let run = |first: usize, y: &mut [std::mem::MaybeUninit<f32>]| {
            for (r, out) in y.chunks_mut(d.inner.max(1)).enumerate() {
                let row = first * d.len + r; // (outer, channel) row
                let b = bias[row % d.len];
                for (o, &v) in out.iter_mut().zip(&x[row * d.inner..][..d.inner]) {
                    let s = v + b;
                    // A comparison, not `max`, so NaN stays NaN (as `relu`).
                    o.write(if s < 0.0 { 0.0 } else { s });
                }
            }
        };
        if x.len() < PARALLEL_MIN {
            run(0, y);
        } else {
            let per = blocks_per_task(d);
            y.par_chunks_mut(per * block)
                .enumerate()
                .for_each(|(t, y)| run(t * per, y));
        }
    })
}

/// dx = dy where y > 0 (else 0), and dbias[c] = Σ dx over outer and inner: each task sums its
/// blocks into its own partial, and the partials are added in task order.
pub fn backward(y: &[f32], dy: &[f32], d: AxisDims) -> (Vec<f32>, Vec<f32>) {
    let block = d.len * d.inner;
    let mut partials: Vec<Vec<f32>> = Vec::new();
    let dx = filled(y.len(), |dx| {
        if block == 0 {
            return;
        }
        let run = |first: usize, dx: &mut [std::mem::MaybeUninit<f32>]| {
            let mut part = vec![0.0f32; d.len];
            for (r, out) in dx.chunks_mut(d.inner.max(1)).enumerate() {
                let row = first * d.len + r;
                let (ys, gs) = (
                    &y[row * d.inner..][..d.inner],
                    &dy[row * d.inner..][..d.inner],
                );
                // Eight running sums, so the adds do not wait on each other and vectorise.
                let mut lanes = [0.0f32; 8];
                for (i, ((o, &yv), &g)) in out.iter_mut().zip(ys).zip(gs).enumerate() {
                    let v = if yv > 0.0 { g } else { 0.0 };
                    o.write(v);
                    lanes[i % 8] += v;
                }
                let [a, b, c, e, f, g, h, k] = lanes;
                part[row % d.len] += ((a + f) + (b + g)) + ((c + h) + (e + k));
            }
            part
        };
        partials = if y.len() < PARALLEL_MIN {
            vec![run(0, dx)]
        } else {
            let per = blocks_per_task(d);
            dx.par_chunks_mut(per * block)
                .enumerate()
                .map(|(t, dx)| run(t * per, dx))
                .collect()
        };
    });
    let mut dbias = vec![0.0; d.len];
    for p in &partials {
        for (s, &v) in dbias.iter_mut().zip(p) {
            *s += v;
        }
    }
    (dx, dbias)
}
