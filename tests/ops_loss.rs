//! Fused softmax + cross-entropy and mean squared error.

mod common;

use common::*;
use kiln::Rng;

fn cross_entropy_reference(logits: &[f32], targets: &[f32], c: usize) -> f64 {
    let n = targets.len();
    let total: f64 = logits
        .chunks(c)
        .zip(targets)
        .map(|(row, &t)| {
            let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            let lse = max
                + row
                    .iter()
                    .map(|&v| (v as f64 - max).exp())
                    .sum::<f64>()
                    .ln();
            lse - row[t as usize] as f64
        })
        .sum();
    total / n as f64
}

#[test]
fn cross_entropy_forward_and_backward() {
    let mut rng = Rng::new(40);
    for (n, c, scale) in [
        (7, 5, 3.0),
        (1, 1, 1.0),
        (3, 10, 2.0),
        (16, 10, 1.0),
        (2, 4, 1000.0),
    ] {
        let logits = uniform(n * c, -scale, scale, &mut rng);
        let targets: Vec<f32> = (0..n).map(|_| rng.below(c) as f32).collect();
        let t = tensor(targets.clone(), &[n]);
        let loss = tensor(logits.clone(), &[n, c]).cross_entropy(&t);
        assert_eq!(loss.dims(), &[] as &[usize]);
        assert!(
            loss.item().is_finite(),
            "cross_entropy overflowed at scale {scale}"
        );
        let want = cross_entropy_reference(&logits, &targets, c);
        assert_close(
            &format!("ce {n}x{c} x{scale}"),
            &loss.to_vec(),
            &[want],
            1e-5,
        );
        if scale < 100.0 {
            check_grads(&format!("ce {n}x{c}"), &[tensor(logits, &[n, c])], |x| {
                x[0].cross_entropy(&t)
            });
        }
    }
}

#[test]
fn cross_entropy_equals_the_unfused_composition() {
    let mut rng = Rng::new(41);
    let logits = tensor(uniform(21, -2.0, 2.0, &mut rng), &[3, 7]);
    let targets = [4.0f32, 0.0, 6.0];
    let fused = logits.cross_entropy(&tensor(targets.to_vec(), &[3])).item();
    let logp = logits.log_softmax(1).to_vec();
    let unfused = -(0..3)
        .map(|r| logp[r * 7 + targets[r] as usize])
        .sum::<f32>()
        / 3.0;
    assert!((fused - unfused).abs() < 1e-6, "{fused} vs {unfused}");
}

#[test]
fn mse_forward_and_backward() {
    let mut rng = Rng::new(42);
    for dims in [&[7, 5][..], &[1], &[3, 1]] {
        let p = uniform(numel(dims), -2.0, 2.0, &mut rng);
        let y = uniform(numel(dims), -2.0, 2.0, &mut rng);
        let loss = tensor(p.clone(), dims).mse(&tensor(y.clone(), dims));
        let want = p
            .iter()
            .zip(&y)
            .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
            .sum::<f64>()
            / p.len() as f64;
        assert_close(&format!("mse {dims:?}"), &loss.to_vec(), &[want], 1e-6);
        let target = tensor(y, dims);
        check_grads(&format!("mse {dims:?}"), &[tensor(p, dims)], |x| {
            x[0].mse(&target)
        });
    }
}
