//! Unary and binary elementwise ops: forward against an f64 reference, backward against finite
//! differences, for every op in `Unary::ALL` / `Binary::ALL`.

mod common;

use common::*;
use kiln::ops::{Binary, Unary};
use kiln::{Rng, Shape, Tensor};

/// The f64 reference for each unary op. The match is exhaustive: a new op fails to compile here
/// until its reference exists.
fn unary_reference(op: Unary, x: f64) -> f64 {
    match op {
        Unary::Neg => -x,
        Unary::Abs => x.abs(),
        Unary::Exp => x.exp(),
        Unary::Log => x.ln(),
        Unary::Sqrt => x.sqrt(),
        Unary::Relu => x.max(0.0),
        Unary::LeakyRelu(s) => {
            if x < 0.0 {
                s as f64 * x
            } else {
                x
            }
        }
        Unary::Gelu => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
        Unary::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Unary::Tanh => x.tanh(),
        Unary::Softplus => x.exp().ln_1p(),
        Unary::Silu => x / (1.0 + (-x).exp()),
        Unary::Clamp(lo, hi) => x.max(lo as f64).min(hi as f64),
        Unary::Pow(p) => x.powf(p as f64),
        Unary::AddScalar(c) => x + c as f64,
        Unary::MulScalar(c) => x * c as f64,
    }
}

/// Inputs inside each op's domain and off its kinks.
fn unary_input(op: Unary, n: usize, rng: &mut Rng) -> Vec<f32> {
    match op {
        Unary::Log | Unary::Sqrt | Unary::Pow(_) => uniform(n, 0.5, 2.0, rng),
        // Off the clamp bounds by more than the finite-difference step.
        Unary::Clamp(lo, hi) => away_from_zero(n, rng)
            .into_iter()
            .map(|v| {
                if (v - lo).abs() < 0.05 || (v - hi).abs() < 0.05 {
                    v + 0.1
                } else {
                    v
                }
            })
            .collect(),
        _ => away_from_zero(n, rng),
    }
}

#[test]
fn unary_forward_matches_reference() {
    let mut rng = Rng::new(1);
    for &op in Unary::ALL {
        for dims in SHAPES {
            let x = unary_input(op, numel(dims), &mut rng);
            let y = tensor(x.clone(), dims).unary(op);
            assert_eq!(y.dims(), *dims);
            let want: Vec<f64> = x.iter().map(|&v| unary_reference(op, v as f64)).collect();
            assert_close(&format!("{op:?} {dims:?}"), &y.to_vec(), &want, 1e-5);
        }
    }
}

#[test]
fn unary_backward_matches_finite_differences() {
    let mut rng = Rng::new(2);
    for &op in Unary::ALL {
        for dims in SHAPES {
            let x = tensor(unary_input(op, numel(dims), &mut rng), dims);
            check_grads(&format!("{op:?} {dims:?}"), &[x], |t| t[0].unary(op));
        }
    }
}

#[test]
fn unary_large_input_takes_the_parallel_path_with_the_same_values() {
    let mut rng = Rng::new(3);
    let n = 100_003;
    for &op in Unary::ALL {
        let x = unary_input(op, n, &mut rng);
        let y = tensor(x.clone(), &[n]).unary(op).to_vec();
        for (i, &v) in x.iter().enumerate().step_by(997) {
            let small = tensor(vec![v], &[1]).unary(op).item();
            assert_eq!(y[i].to_bits(), small.to_bits(), "{op:?} element {i}");
        }
    }
}

fn binary_reference(op: Binary, a: f64, b: f64) -> f64 {
    match op {
        Binary::Add => a + b,
        Binary::Sub => a - b,
        Binary::Mul => a * b,
        Binary::Div => a / b,
    }
}

/// `out[i] = op(a[i'], b[i''])` by explicit multi-index arithmetic.
fn broadcast_reference(op: Binary, a: &[f32], ad: &[usize], b: &[f32], bd: &[usize]) -> Vec<f64> {
    let out = Shape::broadcast(&Shape::from(ad), &Shape::from(bd)).unwrap();
    let od = out.dims();
    let pick = |idx: &[usize], dims: &[usize]| {
        let off = od.len() - dims.len();
        let own: Vec<usize> = (0..dims.len())
            .map(|i| if dims[i] == 1 { 0 } else { idx[i + off] })
            .collect();
        ravel(&own, dims)
    };
    (0..out.numel())
        .map(|i| {
            let idx = unravel(i, od);
            binary_reference(op, a[pick(&idx, ad)] as f64, b[pick(&idx, bd)] as f64)
        })
        .collect()
}

#[test]
fn binary_forward_broadcasts_like_numpy() {
    let mut rng = Rng::new(4);
    for &op in Binary::ALL {
        for &(ad, bd) in BROADCASTS {
            let a = away_from_zero(numel(ad), &mut rng);
            let b = away_from_zero(numel(bd), &mut rng);
            let y = tensor(a.clone(), ad).binary(op, &tensor(b.clone(), bd));
            let want = broadcast_reference(op, &a, ad, &b, bd);
            assert_close(&format!("{op:?} {ad:?} {bd:?}"), &y.to_vec(), &want, 1e-6);
        }
    }
}

#[test]
fn binary_backward_sums_over_broadcast_axes() {
    let mut rng = Rng::new(5);
    for &op in Binary::ALL {
        for &(ad, bd) in BROADCASTS {
            let a = tensor(away_from_zero(numel(ad), &mut rng), ad);
            let b = tensor(away_from_zero(numel(bd), &mut rng), bd);
            check_grads(&format!("{op:?} {ad:?} {bd:?}"), &[a, b], |t| {
                t[0].binary(op, &t[1])
            });
        }
    }
}

#[test]
fn binary_large_broadcast_takes_the_parallel_path_with_the_same_values() {
    let mut rng = Rng::new(6);
    let (ad, bd): (&[usize], &[usize]) = (&[4, 64, 300], &[64, 1]);
    let a = away_from_zero(numel(ad), &mut rng);
    let b = away_from_zero(numel(bd), &mut rng);
    for &op in Binary::ALL {
        let y = tensor(a.clone(), ad).binary(op, &tensor(b.clone(), bd));
        let want = broadcast_reference(op, &a, ad, &b, bd);
        assert_close(&format!("{op:?} large"), &y.to_vec(), &want, 1e-6);
    }
}

#[test]
fn operators_are_the_binary_ops() {
    let a = tensor(vec![1.0, 2.0], &[2]);
    let b = tensor(vec![4.0, 8.0], &[2]);
    assert_eq!((&a + &b).to_vec(), vec![5.0, 10.0]);
    assert_eq!((&a - &b).to_vec(), vec![-3.0, -6.0]);
    assert_eq!((&a * &b).to_vec(), vec![4.0, 16.0]);
    assert_eq!((&a / &b).to_vec(), vec![0.25, 0.25]);
    assert_eq!((-&a).to_vec(), vec![-1.0, -2.0]);
    assert_eq!(Tensor::scalar(3.0).dims(), &[] as &[usize]);
}

/// The fused `relu(x + bias)` (dense and convolution epilogues): the forward against an f64
/// reference and the backward (input and bias) against finite differences, for the bias on
/// each kind of axis, size-1 dimensions included; inputs kept clear of the kink at 0.
#[test]
fn bias_relu_matches_reference_and_finite_differences() {
    let mut rng = Rng::new(31);
    let cases: &[(&[usize], usize)] = &[
        (&[7, 5], 1),
        (&[2, 3, 4, 5], 1),
        (&[3, 4], 0),
        (&[6, 1], 1),
        (&[1, 3, 1, 1], 1),
        (&[2, 2, 3], 2),
    ];
    for &(dims, axis) in cases {
        let c = dims[axis];
        let inner: usize = dims[axis + 1..].iter().product();
        let x = away_from_zero(numel(dims), &mut rng);
        // Bias values on a 0.05 grid and x two decimal places off it: x + b is never within
        // the finite-difference step of 0.
        let b: Vec<f32> = (0..c).map(|i| 0.05 * (i as f32) - 0.1).collect();
        let x: Vec<f32> = x
            .iter()
            .map(|v| (v * 20.0).round() / 20.0 + 0.025)
            .collect();
        let y = tensor(x.clone(), dims).bias_relu(&tensor(b.clone(), &[c]), axis);
        let want: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, &v)| (v as f64 + b[(i / inner) % c] as f64).max(0.0))
            .collect();
        assert_close(
            &format!("bias_relu {dims:?} axis {axis}"),
            &y.to_vec(),
            &want,
            1e-6,
        );
        check_grads(
            &format!("bias_relu {dims:?} axis {axis}"),
            &[tensor(x, dims), tensor(b, &[c])],
            |t| t[0].bias_relu(&t[1], axis),
        );
    }
}

/// Large enough for the parallel path: the same values and gradients as `relu(x + bias)` built
/// from separate ops (the bias sum may round differently, so within 1e-5).
#[test]
fn bias_relu_large_input_matches_the_unfused_ops() {
    let mut rng = Rng::new(32);
    let dims = [64, 32, 30];
    let x = uniform(numel(&dims), -1.0, 1.0, &mut rng);
    let b = uniform(32, -0.5, 0.5, &mut rng);
    let w = uniform(numel(&dims), -1.0, 1.0, &mut rng);
    let run = |fused: bool| {
        let (xt, bt) = (
            tensor(x.clone(), &dims).with_requires_grad(),
            tensor(b.clone(), &[32]).with_requires_grad(),
        );
        let y = if fused {
            xt.bias_relu(&bt, 1)
        } else {
            xt.add(&bt.reshape([32, 1])).relu()
        };
        y.mul(&tensor(w.clone(), &dims)).sum_all().backward();
        (
            y.to_vec(),
            xt.grad().unwrap().to_vec(),
            bt.grad().unwrap().to_vec(),
        )
    };
    let (fused, unfused) = (run(true), run(false));
    assert_eq!(fused.0, unfused.0, "forward");
    assert_eq!(fused.1, unfused.1, "input gradient");
    let want: Vec<f64> = unfused.2.iter().map(|&v| v as f64).collect();
    assert_close("bias gradient", &fused.2, &want, 1e-5);
}
