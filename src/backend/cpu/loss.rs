//! The fused softmax + cross-entropy over integer class targets.

use super::new_rows;

/// Class index of row `r`, checked: data loading validates targets, so a bad one here is a bug.
fn class_of(targets: &[f32], r: usize, c: usize) -> usize {
    let t = targets[r];
    assert!(
        t >= 0.0 && (t as usize) < c && t.fract() == 0.0,
        "cross_entropy: target {t} in row {r} is not a class index below {c}"
    );
    t as usize
}

/// log Σ exp(row), shifted by the row's maximum so it cannot overflow.
fn log_sum_exp(row: &[f32]) -> f32 {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    max + row.iter().map(|&v| (v - max).exp()).sum::<f32>().ln()
}

pub fn cross_entropy_forward(logits: &[f32], targets: &[f32], n: usize, c: usize) -> Vec<f32> {
    let total: f64 = logits
        .chunks_exact(c)
        .enumerate()
        .map(|(r, row)| (log_sum_exp(row) - row[class_of(targets, r, c)]) as f64)
        .sum();
    vec![(total / n as f64) as f32]
}

pub fn cross_entropy_backward(
    logits: &[f32],
    targets: &[f32],
    dloss: f32,
    n: usize,
    c: usize,
) -> Vec<f32> {
    let scale = dloss / n as f32;
    new_rows(n * c, c, n * c, |first, rows| {
        for (r, dx_row) in rows.chunks_mut(c).enumerate() {
            let row = &logits[(first + r) * c..][..c];
            let lse = log_sum_exp(row);
            for (d, &v) in dx_row.iter_mut().zip(row) {
                *d = (v - lse).exp() * scale;
            }
            dx_row[class_of(targets, first + r, c)] -= scale;
        }
    })
}
