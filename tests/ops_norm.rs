//! Batch normalization in training mode as one op, against a plain f64 reference (statistics per
//! index of axis 1 over every other axis) on odd shapes and size-1 dimensions, and its
//! gradients against finite differences.

mod common;

use common::*;
use kiln::Rng;

const EPS: f32 = 1e-5;

/// (y, mean, biased var) of `x` `[n, c, inner...]` flattened to `[n, c, inner]`.
fn reference(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    n: usize,
    c: usize,
    inner: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let at = |o: usize, ch: usize, i: usize| x[(o * c + ch) * inner + i] as f64;
    let count = (n * inner) as f64;
    let mut mean = vec![0.0; c];
    let mut var = vec![0.0; c];
    for ch in 0..c {
        let vals: Vec<f64> = (0..n)
            .flat_map(|o| (0..inner).map(move |i| (o, i)))
            .map(|(o, i)| at(o, ch, i))
            .collect();
        mean[ch] = vals.iter().sum::<f64>() / count;
        var[ch] = vals.iter().map(|v| (v - mean[ch]).powi(2)).sum::<f64>() / count;
    }
    let mut y = vec![0.0; x.len()];
    for o in 0..n {
        for ch in 0..c {
            for i in 0..inner {
                let h = (at(o, ch, i) - mean[ch]) / (var[ch] + EPS as f64).sqrt();
                y[(o * c + ch) * inner + i] = h * w[ch] as f64 + b[ch] as f64;
            }
        }
    }
    (y, mean, var)
}

const SHAPES: [&[usize]; 6] = [
    &[7, 5],
    &[3, 2, 4, 5],
    &[1, 3, 2, 2],
    &[2, 1, 3, 1],
    &[4, 3, 1, 1],
    &[5, 1],
];

#[test]
fn batch_norm_matches_the_reference() {
    for (k, dims) in SHAPES
        .iter()
        .chain([&[64usize, 16, 28, 28][..]].iter())
        .enumerate()
    {
        let mut rng = Rng::new(40 + k as u64);
        let (n, c) = (dims[0], dims[1]);
        let inner: usize = dims[2..].iter().product();
        let x = uniform(numel(dims), -3.0, 5.0, &mut rng);
        let w = uniform(c, 0.5, 1.5, &mut rng);
        let b = uniform(c, -1.0, 1.0, &mut rng);
        let (y, mean, var) = tensor(x.clone(), dims).batch_norm_train(
            &tensor(w.clone(), &[c]),
            &tensor(b.clone(), &[c]),
            EPS,
        );
        let (wy, wm, wv) = reference(&x, &w, &b, n, c, inner);
        let what = format!("batch_norm {dims:?}");
        assert_eq!(y.dims(), *dims);
        assert_close(&what, &y.to_vec(), &wy, 2e-5);
        assert_close(&format!("{what} mean"), &mean.to_vec(), &wm, 1e-6);
        assert_close(&format!("{what} var"), &var.to_vec(), &wv, 1e-6);
    }
}

#[test]
fn batch_norm_gradients_match_finite_differences() {
    for (k, dims) in SHAPES.iter().enumerate() {
        let mut rng = Rng::new(60 + k as u64);
        let c = dims[1];
        let inputs = [
            tensor(uniform(numel(dims), -2.0, 2.0, &mut rng), dims),
            tensor(uniform(c, 0.5, 1.5, &mut rng), &[c]),
            tensor(uniform(c, -1.0, 1.0, &mut rng), &[c]),
        ];
        check_grads(&format!("batch_norm {dims:?}"), &inputs, |t| {
            t[0].batch_norm_train(&t[1], &t[2], EPS).0
        });
    }
}
