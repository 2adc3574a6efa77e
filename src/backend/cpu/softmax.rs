//! Softmax and log-softmax along the middle axis of `[outer, len, inner]`, max-shifted so large
//! logits do not overflow.

use super::for_rows;
use crate::backend::spec::{AxisDims, SoftmaxKind};

/// One contiguous row (the last axis): the same operations in the same order as the strided
/// loop below with `inner` = 1, without its per-element bookkeeping (which cost attention's
/// softmax over rows of 64 keys four times its arithmetic).
fn forward_row(kind: SoftmaxKind, x: &[f32], y: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0;
    for (o, &v) in y.iter_mut().zip(x) {
        let e = (v - max).exp();
        *o = e;
        sum += e;
    }
    match kind {
        SoftmaxKind::Softmax => y.iter_mut().for_each(|o| *o /= sum),
        SoftmaxKind::LogSoftmax => {
            let log_sum = sum.ln();
            for (o, &v) in y.iter_mut().zip(x) {
                *o = v - max - log_sum;
            }
        }
    }
}

pub fn forward(kind: SoftmaxKind, x: &[f32], d: AxisDims) -> Vec<f32> {
    let block = d.len * d.inner;
    let mut out = vec![0.0; x.len()];
    if d.inner == 1 {
        for_rows(&mut out, block, x.len(), |first, rows| {
            for (r, y) in rows.chunks_mut(block).enumerate() {
                forward_row(kind, &x[(first + r) * block..][..block], y);
            }
        });
        return out;
    }
    for_rows(&mut out, block, x.len(), |first, rows| {
        let mut max = vec![0.0; d.inner];
        let mut sum = vec![0.0; d.inner];
        for (r, y) in rows.chunks_mut(block).enumerate() {
            let x = &x[(first + r) * block..][..block];
            max.fill(f32::NEG_INFINITY);
            for row in x.chunks_exact(d.inner) {
                for (m, &v) in max.iter_mut().zip(row) {
                    *m = m.max(v);
                }
            }
            sum.fill(0.0);
            for (yrow, xrow) in y.chunks_exact_mut(d.inner).zip(x.chunks_exact(d.inner)) {
                for i in 0..d.inner {
                    let e = (xrow[i] - max[i]).exp();
                    yrow[i] = e;
                    sum[i] += e;
                }
            }
            for (yrow, xrow) in y.chunks_exact_mut(d.inner).zip(x.chunks_exact(d.inner)) {
                for i in 0..d.inner {
                    yrow[i] = match kind {
                        SoftmaxKind::Softmax => yrow[i] / sum[i],
                        SoftmaxKind::LogSoftmax => xrow[i] - max[i] - sum[i].ln(),
                    };
                }
            }
        }
    });
    out
}

/// softmax:     dx = y · (dy − Σ dy·y)
/// log-softmax: dx = dy − exp(y) · Σ dy
pub fn backward(kind: SoftmaxKind, y: &[f32], dy: &[f32], d: AxisDims) -> Vec<f32> {
    let block = d.len * d.inner;
    let mut dx = vec![0.0; y.len()];
    if d.inner == 1 {
        for_rows(&mut dx, block, y.len(), |first, rows| {
            for (r, dx) in rows.chunks_mut(block).enumerate() {
                let span = (first + r) * block..(first + r + 1) * block;
                backward_row(kind, &y[span.clone()], &dy[span], dx);
            }
        });
        return dx;
    }
    for_rows(&mut dx, block, y.len(), |first, rows| {
        let mut dot = vec![0.0; d.inner];
        for (r, dx) in rows.chunks_mut(block).enumerate() {
            let y = &y[(first + r) * block..][..block];
            let dy = &dy[(first + r) * block..][..block];
            dot.fill(0.0);
            for (yrow, grow) in y.chunks_exact(d.inner).zip(dy.chunks_exact(d.inner)) {
                for i in 0..d.inner {
                    dot[i] += match kind {
                        SoftmaxKind::Softmax => grow[i] * yrow[i],
                        SoftmaxKind::LogSoftmax => grow[i],
                    };
                }
            }
            let rows = dx.chunks_exact_mut(d.inner).zip(y.chunks_exact(d.inner));
            for ((dxrow, yrow), grow) in rows.zip(dy.chunks_exact(d.inner)) {
                for i in 0..d.inner {
                    dxrow[i] = match kind {
                        SoftmaxKind::Softmax => yrow[i] * (grow[i] - dot[i]),
                        SoftmaxKind::LogSoftmax => grow[i] - yrow[i].exp() * dot[i],
                    };
                }
            }
        }
    });
    dx
}

/// The backward of one contiguous row, as `forward_row`.
fn backward_row(kind: SoftmaxKind, y: &[f32], dy: &[f32], dx: &mut [f32]) {
    let mut dot = 0.0;
    for (&g, &v) in dy.iter().zip(y) {
        dot += match kind {
            SoftmaxKind::Softmax => g * v,
            SoftmaxKind::LogSoftmax => g,
        };
    }
    for ((o, &v), &g) in dx.iter_mut().zip(y).zip(dy) {
        *o = match kind {
            SoftmaxKind::Softmax => v * (g - dot),
            SoftmaxKind::LogSoftmax => g - v.exp() * dot,
        };
    }
}
