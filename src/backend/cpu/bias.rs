//! The fused bias + ReLU epilogue on the CPU, over `[outer, c, inner]` with a bias per c.

use rayon::prelude::*;

use super::unary::{relu, relu_grad};
use super::{filled, CHUNK, PARALLEL_MIN};
use crate::backend::spec::AxisDims;

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
                    o.write(relu(v + b));
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

/// `row[i] = relu(row[i] + b)`.
pub fn relu_in_place(row: &mut [f32], b: f32) {
    for v in row {
        *v = relu(*v + b);
    }
}

/// One row of a ReLU's backward: `out[i] = dy[i]` where `y[i] > 0`, else 0; returns the sum of
/// `out` (a bias's gradient share), added in eight running sums so the adds vectorise.
pub fn relu_grad_row(y: &[f32], dy: &[f32], out: &mut [f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let whole = y.len() / 8 * 8;
    let blocks = out[..whole]
        .chunks_exact_mut(8)
        .zip(y.chunks_exact(8))
        .zip(dy.chunks_exact(8));
    for ((o, y), dy) in blocks {
        for i in 0..8 {
            o[i] = relu_grad(y[i], dy[i]);
            lanes[i] += o[i];
        }
    }
    let mut tail = 0.0;
    for ((o, &y), &dy) in out[whole..].iter_mut().zip(&y[whole..]).zip(&dy[whole..]) {
        *o = relu_grad(y, dy);
        tail += *o;
    }
    let [a, b, c, d, e, f, g, h] = lanes;
    (((a + e) + (b + f)) + ((c + g) + (d + h))) + tail
}

/// dx = dy where y > 0 (else 0), and dbias[c] = Σ dx over outer and inner: each task sums its
/// blocks into its own partial, and the partials are added in task order.
pub fn backward(y: &[f32], dy: &[f32], d: AxisDims) -> (Vec<f32>, Vec<f32>) {
    let block = d.len * d.inner;
    let mut dx = vec![0.0; y.len()];
    if block == 0 {
        return (dx, vec![0.0; d.len]);
    }
    let run = |first: usize, dx: &mut [f32]| {
        let mut part = vec![0.0f32; d.len];
        for (r, out) in dx.chunks_mut(d.inner.max(1)).enumerate() {
            let row = first * d.len + r;
            let span = row * d.inner..(row + 1) * d.inner;
            part[row % d.len] += relu_grad_row(&y[span.clone()], &dy[span], out);
        }
        part
    };
    let partials = if y.len() < PARALLEL_MIN {
        vec![run(0, &mut dx)]
    } else {
        let per = blocks_per_task(d);
        dx.par_chunks_mut(per * block)
            .enumerate()
            .map(|(t, dx)| run(t * per, dx))
            .collect()
    };
    let mut dbias = vec![0.0; d.len];
    for p in &partials {
        for (s, &v) in dbias.iter_mut().zip(p) {
            *s += v;
        }
    }
    (dx, dbias)
}
