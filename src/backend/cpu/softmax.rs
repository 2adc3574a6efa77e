//! Softmax and log-softmax along the middle axis of `[outer, len, inner]`, max-shifted so large
//! logits do not overflow.

use super::for_rows;
use crate::backend::spec::{AxisDims, SoftmaxKind};

pub fn forward(kind: SoftmaxKind, x: &[f32], d: AxisDims) -> Vec<f32> {
    let block = d.len * d.inner;
    let mut out = vec![0.0; x.len()];
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
