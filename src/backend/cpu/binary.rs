//! Elementwise binary ops with NumPy broadcasting on the CPU.

use super::{map2, new_rows};
use crate::backend::spec::{Binary, BroadcastPlan};

pub fn forward(op: Binary, a: &[f32], b: &[f32], plan: &BroadcastPlan) -> Vec<f32> {
    match op {
        Binary::Add => zip(a, b, plan, |x, y| x + y),
        Binary::Sub => zip(a, b, plan, |x, y| x - y),
        Binary::Mul => zip(a, b, plan, |x, y| x * y),
        Binary::Div => zip(a, b, plan, |x, y| x / y),
    }
}

/// `out = f(a, b)` over the plan's (coalesced) output dimensions. The last dimension is the inner
/// loop; each operand steps through it with stride 1 or 0 (broadcast).
fn zip(
    a: &[f32],
    b: &[f32],
    plan: &BroadcastPlan,
    f: impl Fn(f32, f32) -> f32 + Sync + Send + Copy,
) -> Vec<f32> {
    if plan.is_elementwise() {
        return map2(a, b, f);
    }
    let rank = plan.dims.len();
    let inner = plan.dims[rank - 1];
    let (sa, sb) = (plan.a_strides[rank - 1], plan.b_strides[rank - 1]);
    new_rows(plan.out_len, inner, plan.out_len, |first_row, rows| {
        for (r, row) in rows.chunks_mut(inner).enumerate() {
            let (oa, ob) = plan.row_offsets(first_row + r);
            match (sa, sb) {
                (1, 1) => {
                    let (ra, rb) = (&a[oa..oa + inner], &b[ob..ob + inner]);
                    for ((o, &x), &y) in row.iter_mut().zip(ra).zip(rb) {
                        *o = f(x, y);
                    }
                }
                (1, 0) => {
                    let y = b[ob];
                    for (o, &x) in row.iter_mut().zip(&a[oa..oa + inner]) {
                        *o = f(x, y);
                    }
                }
                (0, 1) => {
                    let x = a[oa];
                    for (o, &y) in row.iter_mut().zip(&b[ob..ob + inner]) {
                        *o = f(x, y);
                    }
                }
                _ => {
                    for (j, o) in row.iter_mut().enumerate() {
                        *o = f(a[oa + j * sa], b[ob + j * sb]);
                    }
                }
            }
        }
    })
}
