//! The whole-sequence LSTM composed of a backend's primitives: the recurrence step by step
//! (a product with the recurrent weights, the fused cell), then the recurrent weights'
//! gradient in one product over every step. A backend without a fused sequence kernel (CUDA)
//! runs this; the CPU runs its own (`cpu/recurrent.rs`), which this must agree with.

use super::spec::{AxisDims, Binary, BroadcastPlan, LstmSeqDims, MatmulSpec, Reduce};
use super::Backend;

fn product(m: usize, n: usize, k: usize, trans_a: bool, trans_b: bool) -> MatmulSpec {
    MatmulSpec {
        batch: 1,
        m,
        n,
        k,
        trans_a,
        trans_b,
        a_batch_stride: 0,
        b_batch_stride: 0,
    }
}

/// Columns `start..start + len` of a `[rows, width]` buffer.
fn columns<B: Backend + ?Sized>(
    x: &B::Buf,
    rows: usize,
    width: usize,
    start: usize,
    len: usize,
) -> B::Buf {
    let d = AxisDims {
        outer: rows,
        len: width,
        inner: 1,
    };
    B::slice_axis(x, d, start, len)
}

/// Step `t` of a batch-major `[batch, len, inner]` buffer: `[batch, inner]`.
fn step<B: Backend + ?Sized>(x: &B::Buf, d: &LstmSeqDims, inner: usize, t: usize) -> B::Buf {
    let axis = AxisDims {
        outer: d.batch,
        len: d.len,
        inner,
    };
    B::slice_axis(x, axis, t, 1)
}

/// Per-step `[batch, inner]` parts (indexed by step) joined into `[batch, len, inner]`.
fn join_steps<B: Backend + ?Sized>(parts: &[Option<B::Buf>], batch: usize, inner: usize) -> B::Buf {
    let parts: Vec<&B::Buf> = parts
        .iter()
        .map(|p| p.as_ref().expect("every step"))
        .collect();
    B::cat_axis(&parts, batch, &vec![inner; parts.len()], 1)
}

pub fn forward<B: Backend + ?Sized>(
    xw: &B::Buf,
    bias: &B::Buf,
    w_hh: &B::Buf,
    keep: &B::Buf,
    d: LstmSeqDims,
) -> (B::Buf, B::Buf) {
    let (n, u) = (d.batch, d.units);
    let mut h = B::full(n * u, 0.0);
    let mut c = B::full(n * u, 0.0);
    let mut outputs: Vec<Option<B::Buf>> = (0..d.len).map(|_| None).collect();
    let mut saved: Vec<Option<B::Buf>> = (0..d.len).map(|_| None).collect();
    let with_bias = BroadcastPlan::new(&[n, 4 * u], &[4 * u], &[n, 4 * u]);
    for t in d.steps() {
        let hw = B::matmul(&h, w_hh, &product(n, 4 * u, u, false, true));
        let xt = B::binary_fwd(Binary::Add, &step::<B>(xw, &d, 4 * u, t), bias, &with_bias);
        let (hc, acts) = B::lstm_cell_fwd(&xt, &hw, &h, &c, &step::<B>(keep, &d, 1, t), d.cell());
        if d.record {
            saved[t] = Some(B::cat_axis(&[&h, &c, &acts], n, &[u, u, 5 * u], 1));
        }
        h = columns::<B>(&hc, n, 2 * u, 0, u);
        c = columns::<B>(&hc, n, 2 * u, u, u);
        outputs[t] = Some(columns::<B>(&hc, n, 2 * u, 0, u));
    }
    let saved = if d.record {
        join_steps::<B>(&saved, n, LstmSeqDims::SAVED * u)
    } else {
        B::full(0, 0.0)
    };
    (join_steps::<B>(&outputs, n, u), saved)
}

pub fn backward<B: Backend + ?Sized>(
    saved: &B::Buf,
    w_hh: &B::Buf,
    keep: &B::Buf,
    dy: &B::Buf,
    d: LstmSeqDims,
) -> (B::Buf, B::Buf, B::Buf) {
    let (n, u) = (d.batch, d.units);
    let sv = LstmSeqDims::SAVED * u;
    let same = BroadcastPlan::new(&[n, u], &[n, u], &[n, u]);
    // The gradients reaching the states before the step being undone, from later steps.
    let mut dh = B::full(n * u, 0.0);
    let mut dc = B::full(n * u, 0.0);
    let mut dz: Vec<Option<B::Buf>> = (0..d.len).map(|_| None).collect();
    let steps: Vec<usize> = d.steps().collect();
    for &t in steps.iter().rev() {
        let s = step::<B>(saved, &d, sv, t);
        let dh_total = B::binary_fwd(Binary::Add, &dh, &step::<B>(dy, &d, u, t), &same);
        let (dzt, dh_carried, dc_prev) = B::lstm_cell_bwd(
            &columns::<B>(&s, n, sv, 2 * u, 5 * u),
            &columns::<B>(&s, n, sv, u, u),
            &step::<B>(keep, &d, 1, t),
            &B::cat_axis(&[&dh_total, &dc], n, &[u, u], 1),
            d.cell(),
        );
        let through_w = B::matmul(&dzt, w_hh, &product(n, u, 4 * u, false, false));
        dh = B::binary_fwd(Binary::Add, &dh_carried, &through_w, &same);
        dc = dc_prev;
        dz[t] = Some(dzt);
    }
    let dxw = join_steps::<B>(&dz, n, 4 * u);
    let rows = AxisDims {
        outer: 1,
        len: n * d.len,
        inner: 4 * u,
    };
    let dbias = B::reduce_fwd(Reduce::Sum, &dxw, rows);
    // Σ over steps and rows of dzᵀ · h_before: one product over all of them.
    let h_before = columns::<B>(saved, n * d.len, sv, 0, u);
    let dw_hh = B::matmul(&dxw, &h_before, &product(4 * u, u, n * d.len, true, false));
    (dxw, dbias, dw_hh)
}
