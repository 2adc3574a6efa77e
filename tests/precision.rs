//! `train.precision` on the CPU (the emulation: operands rounded to bf16/f16, f32 products):
//! matrix products and convolutions, forward and backward, against the f32 reference within
//! bounds derived from the format, and layers built on them.
//!
//! The bound. Rounding to nearest gives fl(a) = a(1 + δ) with |δ| ≤ u, the format's unit
//! roundoff (bf16: 8 significant bits, u = 2^-8; f16: 11 bits, u = 2^-11). A product of two
//! rounded operands is then ab(1 + δ₁)(1 + δ₂), off by at most (2u + u²)|a||b|, and a dot
//! product of length k off by at most (2u + u²)·Σ|a||b| from the rounding, plus the f32
//! accumulation's own error, at most k·2^-24·Σ|a||b| (Higham, Accuracy and Stability of
//! Numerical Algorithms, §3.1). Σ|a||b| is the same product of the operands' absolute values,
//! computed here in f32; for a gradient, the same backward run on absolute values.

mod common;

use common::*;
use kiln::backend::{autocast, Precision};
use kiln::nn::{LayerSpec, Mode, Model};
use kiln::{Rng, Shape, Tensor};

const HALVES: [Precision; 2] = [Precision::Bf16, Precision::F16];

/// The worst-case error of a length-`k` dot product with both operands rounded to `p`, per unit
/// of Σ|a||b|.
fn dot_bound(p: Precision, k: usize) -> f32 {
    let u = p.unit_roundoff();
    2.0 * u + u * u + k as f32 * 2f32.powi(-24)
}

fn random(dims: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    tensor(uniform(numel(dims), -2.0, 2.0, &mut rng), dims)
}

/// Every element of `got` within `bound · magnitude` of `want`; and, so that the check can tell
/// an emulation from plain f32, at least one element different from it.
fn within(what: &str, got: &[f32], want: &[f32], magnitude: &[f32], bound: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let mut differs = false;
    for (i, ((g, w), m)) in got.iter().zip(want).zip(magnitude).enumerate() {
        let tol = bound * m;
        assert!(
            (g - w).abs() <= tol,
            "{what}[{i}]: {g} against f32 {w}, off by {} > bound {tol}",
            (g - w).abs()
        );
        differs |= g != w;
    }
    assert!(differs, "{what}: identical to f32, so nothing was rounded");
}

/// (output, dA, dB) of `f(a, b)` with loss Σ f(a, b) ⊙ r.
fn run(
    a: &Tensor,
    b: &Tensor,
    r: &Tensor,
    f: &dyn Fn(&Tensor, &Tensor) -> Tensor,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (a, b) = (
        a.detach().with_requires_grad(),
        b.detach().with_requires_grad(),
    );
    let y = f(&a, &b);
    y.mul(r).sum_all().backward();
    (
        y.to_vec(),
        a.grad().unwrap().to_vec(),
        b.grad().unwrap().to_vec(),
    )
}

/// A bilinear op `f` (a product or a convolution) under each half precision, forward and both
/// gradients, against f32 within `dot_bound` of its magnitudes (`f` and its backward on |a|,
/// |b|, |r|); `k` is the longest dot product the op forms.
fn check_bilinear(
    what: &str,
    a: &Tensor,
    b: &Tensor,
    k: usize,
    f: &dyn Fn(&Tensor, &Tensor) -> Tensor,
) {
    let y_shape = f(a, b);
    let r = random(y_shape.dims(), 99);
    let reference = run(a, b, &r, f);
    let magnitude = run(&a.abs(), &b.abs(), &r.abs(), f);
    for p in HALVES {
        let got = {
            let _scope = autocast(p);
            run(a, b, &r, f)
        };
        let bound = dot_bound(p, k);
        within(
            &format!("{what} {p:?} forward"),
            &got.0,
            &reference.0,
            &magnitude.0,
            bound,
        );
        within(
            &format!("{what} {p:?} da"),
            &got.1,
            &reference.1,
            &magnitude.1,
            bound,
        );
        within(
            &format!("{what} {p:?} db"),
            &got.2,
            &reference.2,
            &magnitude.2,
            bound,
        );
    }
}

#[test]
fn matmul_in_half_precision_is_within_the_rounding_bound() {
    // 2-D with every transpose flag, batched, and a shared 2-D operand.
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = random(if ta { &[33, 7] } else { &[7, 33] }, 1);
        let b = random(if tb { &[5, 33] } else { &[33, 5] }, 2);
        check_bilinear(&format!("matmul t{ta}{tb}"), &a, &b, 33, &|a, b| {
            a.matmul_t(b, ta, tb)
        });
    }
    let (a, b) = (random(&[3, 7, 20], 3), random(&[3, 20, 5], 4));
    check_bilinear("batched matmul", &a, &b, 20, &|a, b| a.matmul(b));
    let (a, b) = (random(&[3, 7, 20], 5), random(&[20, 5], 6));
    check_bilinear("matmul by a shared matrix", &a, &b, 20, &|a, b| a.matmul(b));
}

#[test]
fn conv2d_in_half_precision_is_within_the_rounding_bound() {
    let x = random(&[3, 2, 7, 6], 7);
    let w = random(&[4, 2, 3, 3], 8);
    // k: a forward or dx dot product runs over c·kh·kw (18) inputs; dw over n·oh·ow (up to
    // 3·7·6).
    let k = 3 * 7 * 6;
    for (stride, pad) in [((1, 1), (1, 1)), ((2, 1), (0, 2))] {
        check_bilinear(
            &format!("conv2d s{stride:?} p{pad:?}"),
            &x,
            &w,
            k,
            &|x, w| x.conv2d(w, None, stride, pad),
        );
    }
}

#[test]
fn the_emulation_is_the_f32_product_of_rounded_operands() {
    // Exactly, not only within a bound: the CPU's half precision is defined as this.
    let (a, b) = (random(&[9, 31], 10), random(&[31, 6], 11));
    for p in HALVES {
        let round = |t: &Tensor| {
            let v = t.to_vec().iter().map(|&x| p.round(x)).collect();
            Tensor::from_vec(v, t.shape().clone())
        };
        let want = round(&a).matmul(&round(&b)).to_vec();
        let _scope = autocast(p);
        assert_eq!(a.matmul(&b).to_vec(), want, "{p:?}");
    }
}

#[test]
fn conv_bias_relu_keeps_its_bias_gradient_in_f32() {
    // The fused conv + bias + ReLU: the products take rounded operands, the bias gradient (a
    // reduction) sums the f32 dy, so it equals f32's exactly when the ReLU mask agrees.
    let x = random(&[2, 3, 6, 6], 12);
    let w = random(&[4, 3, 3, 3], 13).mul_scalar(0.2);
    let b = Tensor::from_vec(vec![3.0, 2.5, 3.5, 4.0], [4]);
    let grads = |p: Precision| {
        let _scope = autocast(p);
        let (x, w, b) = (
            x.detach().with_requires_grad(),
            w.detach().with_requires_grad(),
            b.detach().with_requires_grad(),
        );
        let y = x.conv2d_bias_relu(&w, &b, (1, 1), (1, 1));
        let mask: Vec<bool> = y.to_vec().iter().map(|&v| v > 0.0).collect();
        y.sum_all().backward();
        (mask, b.grad().unwrap().to_vec(), w.grad().unwrap().to_vec())
    };
    let reference = grads(Precision::F32);
    for p in HALVES {
        let got = grads(p);
        assert_eq!(
            got.0, reference.0,
            "{p:?}: a bias this large keeps every output positive"
        );
        assert_eq!(got.1, reference.1, "{p:?}: dbias");
        assert_ne!(got.2, reference.2, "{p:?}: dw came from rounded operands");
    }
}

fn spec(kind: &str) -> LayerSpec {
    LayerSpec {
        kind: kind.into(),
        ..Default::default()
    }
}

/// A model's output and every parameter's gradient (loss Σ y ⊙ r), in precision `p`.
fn layer_run(layers: &[LayerSpec], input: &[usize], x: &Tensor, p: Precision) -> Vec<Vec<f32>> {
    let model = Model::build(layers, &Shape::from(input.to_vec()), &mut Rng::new(3)).unwrap();
    let _scope = autocast(p);
    let mut rng = Rng::new(0);
    let y = model.forward(x, &mut Mode::new(true, &mut rng));
    let r = random(y.dims(), 98);
    y.mul(&r).sum_all().backward();
    let mut out = vec![y.to_vec()];
    out.extend(
        model
            .named_params()
            .iter()
            .map(|(_, t)| t.grad().unwrap().to_vec()),
    );
    out
}

#[test]
fn layers_in_half_precision_stay_near_f32() {
    // Layers chain several products through nonlinearities, so the bound of one product does
    // not apply as such: each product adds up to about 2u relative to the magnitudes it sums,
    // the chains here are at most 5 products long (attention: projections, scores, weighted
    // values, output), and the activations between them do not amplify (Lipschitz ≤ 1 for
    // relu, tanh, sigmoid, softmax). So the tolerance is 2u per product × 5 × a factor 4 for
    // cancellation in the sums, relative to the largest value of each output or gradient.
    let dense = LayerSpec {
        units: Some(16),
        activation: Some("relu".into()),
        ..spec("dense")
    };
    let lstm = LayerSpec {
        units: Some(6),
        return_sequences: Some(true),
        ..spec("lstm")
    };
    let attention = LayerSpec {
        heads: Some(2),
        ..spec("attention")
    };
    let conv = LayerSpec {
        filters: Some(4),
        kernel: Some(kiln::nn::Pair::Same(3)),
        activation: Some("relu".into()),
        ..spec("conv2d")
    };
    // (name, layers, one sample's shape, the batch's shape)
    type Case = (&'static str, Vec<LayerSpec>, Vec<usize>, Vec<usize>);
    let cases: Vec<Case> = vec![
        ("dense", vec![dense], vec![12], vec![5, 12]),
        ("lstm", vec![lstm], vec![5, 4], vec![3, 5, 4]),
        ("attention", vec![attention], vec![5, 8], vec![3, 5, 8]),
        ("conv2d", vec![conv], vec![2, 7, 7], vec![3, 2, 7, 7]),
    ];
    for (name, layers, input, batch) in cases {
        let x = random(&batch, 21);
        let reference = layer_run(&layers, &input, &x, Precision::F32);
        for p in HALVES {
            let got = layer_run(&layers, &input, &x, p);
            let tol_rel = 2.0 * p.unit_roundoff() * 5.0 * 4.0;
            let mut differs = false;
            for (i, (g, r)) in got.iter().zip(&reference).enumerate() {
                let scale = r.iter().fold(0f32, |m, v| m.max(v.abs()));
                let worst = g.iter().zip(r).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                let what = if i == 0 {
                    "output".into()
                } else {
                    format!("gradient {i}")
                };
                assert!(
                    worst <= tol_rel * scale,
                    "{name} {p:?} {what}: off by {worst} > {} (max |f32| {scale})",
                    tol_rel * scale
                );
                differs |= worst > 0.0;
            }
            // A bias gradient may match f32 exactly (a reduction of f32 values); the outputs
            // and weight gradients must not all.
            assert!(differs, "{name} {p:?}: identical to f32");
        }
    }
}
