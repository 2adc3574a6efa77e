//! Shared helpers for the op tests: seeded inputs, tolerant comparison, finite differences.
#![allow(dead_code)]

pub mod bin;

use kiln::{no_grad, Rng, Shape, Tensor};

/// Odd shapes, size-1 dimensions and a scalar: every elementwise op is run on each.
pub const SHAPES: &[&[usize]] = &[&[7, 5], &[3, 1, 4], &[1], &[1, 1], &[2, 3, 1, 5], &[]];

/// Broadcast pairs for binary ops (CPU reference and CUDA against CPU): same shapes, trailing
/// vectors, columns, per-channel terms, both sides stretched, missing leading axes, scalars,
/// and a high-rank pattern whose stretched axes alternate (nothing merges).
pub const BROADCASTS: &[(&[usize], &[usize])] = &[
    (&[7, 5], &[7, 5]),
    (&[7, 5], &[5]),
    (&[5], &[7, 5]),
    (&[7, 5], &[7, 1]),
    (&[7, 1], &[1, 5]),
    (&[7, 5], &[]),
    (&[3, 4, 5], &[1, 4, 1]),
    (&[2, 3, 4, 5], &[1, 3, 1, 1]),
    (&[4, 3, 6, 6], &[1, 3, 1, 1]),
    (&[3, 1, 5], &[4, 1]),
    (&[3, 1, 4], &[1, 5, 1]),
    (&[2, 3, 1, 5], &[3, 4, 1]),
    (&[1], &[3, 4]),
    (&[], &[2, 3]),
    (&[1, 1], &[1, 1]),
    (&[], &[]),
    (&[2, 1, 3, 1, 2, 1, 2, 1, 3], &[1, 2, 1, 2, 1, 2, 1, 2, 1]),
];

/// Shapes reduced over each axis: odd sizes, size-1 axes first, last and inside.
pub const REDUCE_SHAPES: &[&[usize]] =
    &[&[7, 5], &[3, 4, 5], &[1, 6], &[6, 1], &[2, 1, 3, 2], &[1]];

pub fn numel(dims: &[usize]) -> usize {
    dims.iter().product()
}

pub fn uniform(n: usize, low: f32, high: f32, rng: &mut Rng) -> Vec<f32> {
    (0..n).map(|_| low + (high - low) * rng.uniform()).collect()
}

/// Values in ±[0.2, 2]: off the kinks of relu/abs and away from division by zero, by more than
/// the finite-difference step.
pub fn away_from_zero(n: usize, rng: &mut Rng) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let v = 0.2 + 1.8 * rng.uniform();
            if rng.uniform() < 0.5 {
                -v
            } else {
                v
            }
        })
        .collect()
}

/// Distinct values 0.1 apart in random order: no ties for max, even after a finite-difference
/// step.
pub fn distinct(n: usize, rng: &mut Rng) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n).map(|i| 0.1 * i as f32 - 0.05 * n as f32).collect();
    rng.shuffle(&mut v);
    v
}

pub fn tensor(data: Vec<f32>, dims: &[usize]) -> Tensor {
    Tensor::from_vec(data, Shape::from(dims))
}

/// `|got - want| <= tol · (1 + |want|)` element by element.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g as f64 - w).abs() <= tol * (1.0 + w.abs()),
            "{what}: element {i} is {g}, reference {w}"
        );
    }
}

/// Central-difference step. In f32 the step trades truncation error (~h²·|f'''|/6, about 1e-4
/// here) against rounding (~1e-6·|f| / h, about 1e-4): both far below the tolerances below,
/// while a wrong gradient is off by O(1).
const STEP: f32 = 1e-2;
const ABS_TOL: f64 = 2e-3;
const REL_TOL: f64 = 1e-2;

/// Check the gradients `backward()` gives for every element of every input of `f` against
/// central finite differences of `Σ w·f(inputs)`, with fixed random weights `w` so each output
/// element contributes a different amount.
pub fn check_grads(what: &str, inputs: &[Tensor], f: impl Fn(&[Tensor]) -> Tensor) {
    let leaves: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.detach().with_requires_grad())
        .collect();
    let y = f(&leaves);
    let mut rng = Rng::new(99);
    let w = tensor(uniform(y.numel(), -1.0, 1.0, &mut rng), y.dims());
    y.mul(&w).sum_all().backward();

    let weights: Vec<f64> = w.to_vec().iter().map(|&v| v as f64).collect();
    let objective = |xs: &[Tensor]| -> f64 {
        let _g = no_grad();
        f(xs)
            .to_vec()
            .iter()
            .zip(&weights)
            .map(|(&v, &w)| v as f64 * w)
            .sum()
    };
    for (i, leaf) in leaves.iter().enumerate() {
        let analytic = leaf
            .grad()
            .unwrap_or_else(|| panic!("{what}: input {i} received no gradient"))
            .to_vec();
        let base = inputs[i].to_vec();
        for j in 0..base.len() {
            let at = |delta: f32| {
                let mut xs: Vec<Tensor> = inputs.to_vec();
                let mut v = base.clone();
                v[j] += delta;
                xs[i] = tensor(v, inputs[i].dims());
                objective(&xs)
            };
            let numeric = (at(STEP) - at(-STEP)) / (2.0 * STEP as f64);
            let got = analytic[j] as f64;
            assert!(
                (got - numeric).abs() <= ABS_TOL + REL_TOL * numeric.abs(),
                "{what}: d/d input{i}[{j}] is {got}, finite differences give {numeric}"
            );
        }
    }
}

/// Multi-index of flat position `i` in `dims`.
pub fn unravel(mut i: usize, dims: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; dims.len()];
    for ax in (0..dims.len()).rev() {
        idx[ax] = i % dims[ax];
        i /= dims[ax];
    }
    idx
}

/// Flat position of a multi-index in `dims`.
pub fn ravel(idx: &[usize], dims: &[usize]) -> usize {
    idx.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// Whether a CUDA device is open for this test binary. Where none opens, the test calling this
/// prints one line saying it was skipped, written past the harness's output capture so it shows
/// in a plain `cargo test`; with `REQUIRE_CUDA=1` (a GPU machine, where a skip would hide a broken
/// setup) it fails instead.
pub fn cuda_or_skip(test: &str) -> bool {
    use std::io::Write;
    static OPEN: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    match OPEN.get_or_init(|| kiln::backend::cuda::open(0).map(|_| ())) {
        Ok(()) => true,
        Err(why) => {
            assert!(
                std::env::var("REQUIRE_CUDA").as_deref() != Ok("1"),
                "{test}: REQUIRE_CUDA=1 but no CUDA device opens ({why})"
            );
            let _ = writeln!(std::io::stderr(), "SKIPPED {test}: no CUDA device ({why})");
            false
        }
    }
}
