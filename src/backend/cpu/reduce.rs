//! Reductions over one axis of `[outer, len, inner]`, their max gradient, and the broadcast back.

use rayon::prelude::*;

use super::{for_rows, new_rows, CHUNK, PARALLEL_MIN};
use crate::backend::spec::{AxisDims, Reduce};

pub fn forward(op: Reduce, x: &[f32], d: AxisDims) -> Vec<f32> {
    match op {
        Reduce::Sum => sum_axis(x, d),
        Reduce::Mean => {
            let scale = 1.0 / d.len as f32;
            let mut out = sum_axis(x, d);
            out.iter_mut().for_each(|v| *v *= scale);
            out
        }
        Reduce::Max => fold_axis(x, d, f32::NEG_INFINITY, |m, v| if v > m { v } else { m }),
    }
}

/// Sum of a contiguous slice with eight independent accumulators, so the loop vectorises; the
/// order of additions depends only on the length.
fn sum_slice(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = v.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for &x in rest {
        s += x;
    }
    s
}

/// Sum of a long slice: fixed-size blocks summed in parallel, partial sums added in order.
fn sum_long(v: &[f32]) -> f32 {
    if v.len() < PARALLEL_MIN {
        return sum_slice(v);
    }
    let partials: Vec<f32> = v.par_chunks(CHUNK).map(sum_slice).collect();
    partials.iter().sum()
}

fn sum_axis(x: &[f32], d: AxisDims) -> Vec<f32> {
    if d.inner == 1 && d.outer == 1 {
        return vec![sum_long(x)];
    }
    if d.inner == 1 {
        return new_rows(d.outer, 1, x.len(), |first, rows| {
            for (r, o) in rows.iter_mut().enumerate() {
                let start = (first + r) * d.len;
                *o = sum_slice(&x[start..start + d.len]);
            }
        });
    }
    fold_axis(x, d, 0.0, |acc, v| acc + v)
}

/// `out[o, i] = fold(init, x[o, 0, i], x[o, 1, i], ...)`, vectorised across `i`.
fn fold_axis(
    x: &[f32],
    d: AxisDims,
    init: f32,
    f: impl Fn(f32, f32) -> f32 + Sync + Send + Copy,
) -> Vec<f32> {
    let mut out = vec![init; d.outer * d.inner];
    for_rows(&mut out, d.inner, x.len(), |first, rows| {
        for (r, row) in rows.chunks_mut(d.inner).enumerate() {
            let block = &x[(first + r) * d.len * d.inner..][..d.len * d.inner];
            for src in block.chunks_exact(d.inner) {
                for (acc, &v) in row.iter_mut().zip(src) {
                    *acc = f(*acc, v);
                }
            }
        }
    });
    out
}

pub fn max_backward(x: &[f32], y: &[f32], dy: &[f32], d: AxisDims) -> Vec<f32> {
    let block = d.len * d.inner;
    new_rows(x.len(), block, x.len(), |first, rows| {
        for (r, dx_block) in rows.chunks_mut(block).enumerate() {
            let o = first + r;
            let x_block = &x[o * block..][..block];
            for i in 0..d.inner {
                let max = y[o * d.inner + i];
                if let Some(l) = (0..d.len).find(|&l| x_block[l * d.inner + i] == max) {
                    dx_block[l * d.inner + i] = dy[o * d.inner + i];
                }
            }
        }
    })
}

pub fn expand_axis(x: &[f32], d: AxisDims) -> Vec<f32> {
    let block = d.len * d.inner;
    new_rows(d.numel(), block, d.numel(), |first, rows| {
        for (r, out_block) in rows.chunks_mut(block).enumerate() {
            let src = &x[(first + r) * d.inner..][..d.inner];
            if let [v] = src {
                // One value per block (the gradient of a full sum): a fill, not a copy call
                // per element.
                out_block.fill(*v);
                continue;
            }
            for dst in out_block.chunks_exact_mut(d.inner) {
                dst.copy_from_slice(src);
            }
        }
    })
}
