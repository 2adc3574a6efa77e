//! Reductions and softmax over every axis, forward and backward.

mod common;

use common::*;
use kiln::ops::{Reduce, SoftmaxKind};
use kiln::Rng;

/// Reduce `x` (shape `dims`) over `axis` with an f64 reference.
fn reduce_reference(op: Reduce, x: &[f32], dims: &[usize], axis: usize) -> Vec<f64> {
    let mut out_dims = dims.to_vec();
    out_dims[axis] = 1;
    (0..numel(&out_dims))
        .map(|o| {
            let mut idx = unravel(o, &out_dims);
            let vals: Vec<f64> = (0..dims[axis])
                .map(|l| {
                    idx[axis] = l;
                    x[ravel(&idx, dims)] as f64
                })
                .collect();
            match op {
                Reduce::Sum => vals.iter().sum(),
                Reduce::Mean => vals.iter().sum::<f64>() / vals.len() as f64,
                Reduce::Max => vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            }
        })
        .collect()
}

#[test]
fn reduce_forward_over_each_axis_and_all() {
    let mut rng = Rng::new(10);
    for &op in Reduce::ALL {
        for dims in REDUCE_SHAPES {
            let x = distinct(numel(dims), &mut rng);
            for axis in 0..dims.len() {
                let want = reduce_reference(op, &x, dims, axis);
                for keepdim in [false, true] {
                    let y = tensor(x.clone(), dims).reduce(op, axis, keepdim);
                    let mut want_dims = dims.to_vec();
                    if keepdim {
                        want_dims[axis] = 1;
                    } else {
                        want_dims.remove(axis);
                    }
                    assert_eq!(
                        y.dims(),
                        want_dims.as_slice(),
                        "{op:?} {dims:?} axis {axis}"
                    );
                    assert_close(
                        &format!("{op:?} {dims:?} axis {axis}"),
                        &y.to_vec(),
                        &want,
                        1e-5,
                    );
                }
            }
            let all = tensor(x.clone(), dims).reduce_all(op);
            assert_eq!(all.dims(), &[] as &[usize]);
            let want = reduce_reference(op, &x, &[x.len()], 0);
            assert_close(&format!("{op:?} {dims:?} all"), &all.to_vec(), &want, 1e-5);
        }
    }
}

#[test]
fn reduce_backward_over_each_axis_and_all() {
    let mut rng = Rng::new(11);
    for &op in Reduce::ALL {
        for dims in REDUCE_SHAPES {
            for axis in 0..dims.len() {
                let x = tensor(distinct(numel(dims), &mut rng), dims);
                check_grads(&format!("{op:?} {dims:?} axis {axis}"), &[x], |t| {
                    t[0].reduce(op, axis, false)
                });
            }
            let x = tensor(distinct(numel(dims), &mut rng), dims);
            check_grads(&format!("{op:?} {dims:?} all"), &[x], |t| {
                t[0].reduce_all(op)
            });
        }
    }
}

#[test]
fn large_reductions_match_the_reference() {
    let mut rng = Rng::new(12);
    for (dims, axis) in [
        (&[200_001usize][..], 0),
        (&[3, 70_000][..], 1),
        (&[70_000, 3][..], 0),
        (&[20, 3000, 2][..], 1),
    ] {
        let x = uniform(numel(dims), -1.0, 1.0, &mut rng);
        for &op in Reduce::ALL {
            let y = tensor(x.clone(), dims).reduce(op, axis, false);
            let want = reduce_reference(op, &x, dims, axis);
            // Long f32 sums carry ~sqrt(n)·eps of rounding.
            assert_close(&format!("{op:?} {dims:?}"), &y.to_vec(), &want, 1e-3);
        }
    }
}

#[test]
fn max_gradient_goes_to_the_first_maximum() {
    let x = tensor(vec![1.0, 3.0, 3.0, 2.0], &[4]).with_requires_grad();
    x.max_all().backward();
    assert_eq!(x.grad().unwrap().to_vec(), vec![0.0, 1.0, 0.0, 0.0]);
}

fn softmax_reference(kind: SoftmaxKind, x: &[f32], dims: &[usize], axis: usize) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let mut idx = unravel(i, dims);
            let own = x[i] as f64;
            let others: Vec<f64> = (0..dims[axis])
                .map(|l| {
                    idx[axis] = l;
                    x[ravel(&idx, dims)] as f64
                })
                .collect();
            let max = others.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + others.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
            match kind {
                SoftmaxKind::Softmax => (own - lse).exp(),
                SoftmaxKind::LogSoftmax => own - lse,
            }
        })
        .collect()
}

#[test]
fn softmax_forward_over_each_axis_is_stable() {
    let mut rng = Rng::new(13);
    for &kind in SoftmaxKind::ALL {
        for dims in REDUCE_SHAPES {
            for axis in 0..dims.len() {
                for offset in [0.0, 300.0] {
                    let x: Vec<f32> = uniform(numel(dims), -3.0, 3.0, &mut rng)
                        .iter()
                        .map(|v| v + offset)
                        .collect();
                    let y = tensor(x.clone(), dims).softmax_kind(kind, axis).to_vec();
                    assert!(y.iter().all(|v| v.is_finite()), "{kind:?} overflowed");
                    // Shifting by a constant leaves softmax unchanged; compare against the
                    // unshifted reference with the tolerance the shift's rounding allows.
                    let want = softmax_reference(kind, &x, dims, axis);
                    let tol = if offset == 0.0 { 1e-5 } else { 1e-4 };
                    assert_close(
                        &format!("{kind:?} {dims:?} axis {axis} +{offset}"),
                        &y,
                        &want,
                        tol,
                    );
                }
            }
        }
    }
}

#[test]
fn softmax_backward_over_each_axis() {
    let mut rng = Rng::new(14);
    for &kind in SoftmaxKind::ALL {
        for dims in REDUCE_SHAPES {
            for axis in 0..dims.len() {
                let x = tensor(uniform(numel(dims), -2.0, 2.0, &mut rng), dims);
                check_grads(&format!("{kind:?} {dims:?} axis {axis}"), &[x], |t| {
                    t[0].softmax_kind(kind, axis)
                });
            }
        }
    }
}
