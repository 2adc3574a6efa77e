//! Batch normalization in training mode on the CPU, over `[outer, c, inner]` with statistics per
//! c: one pass for the statistics and one to normalize, forward; one for the sums and one for
//! the input's gradient, backward. Composed from elementwise ops the same layer kept about six
//! batch-sized tensors alive for its backward.

use rayon::prelude::*;

use super::{new_row_pairs, new_rows, PARALLEL_MIN};
use crate::backend::spec::AxisDims;

/// Partial sums per row: 16 interleaved f64 lanes, added in a fixed order at the end. One
/// running sum is a chain of dependent adds (4 cycles each): it made the statistics pass take
/// three times as long as the normalising pass (0.45 against 0.15 ms on a [64, 16, 28, 28]
/// batch), bound by latency, not memory.
const LANES: usize = 16;

/// (Σ a, Σ a·b) over a row in f64, lane j summing the entries at j mod 16, the lanes then
/// added in order, the tail last. Each a·b of two f32 values is exact in f64, so a fused
/// multiply-add gives the same bits as a multiply and an add.
fn pair_sums_portable(a: &[f32], b: &[f32]) -> (f64, f64) {
    let (mut s, mut t) = ([0.0f64; LANES], [0.0f64; LANES]);
    let whole = a.len() / LANES * LANES;
    let (a, a_tail) = a.split_at(whole);
    let (b, b_tail) = b[..a.len() + a_tail.len()].split_at(whole);
    for (ca, cb) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for j in 0..LANES {
            s[j] += ca[j] as f64;
            t[j] += ca[j] as f64 * cb[j] as f64;
        }
    }
    finish(s, t, a_tail, b_tail)
}

/// The lanes added in order, then the tail.
fn finish(s: [f64; LANES], t: [f64; LANES], a_tail: &[f32], b_tail: &[f32]) -> (f64, f64) {
    let (mut s0, mut t0) = (0.0, 0.0);
    for j in 0..LANES {
        s0 += s[j];
        t0 += t[j];
    }
    for (&x, &y) in a_tail.iter().zip(b_tail) {
        s0 += x as f64;
        t0 += x as f64 * y as f64;
    }
    (s0, t0)
}

/// `pair_sums_portable` in AVX-512 registers: the compiler paired each lane's two sums into
/// 2-wide scalar code with spills instead (7.5% of mnist_resnet's training time).
#[cfg(target_arch = "x86_64")]
mod pair_sums_avx512 {
    use super::{finish, LANES};
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn sums(a: &[f32], b: &[f32]) -> (f64, f64) {
        let whole = a.len() / LANES * LANES;
        assert!(b.len() >= a.len());
        let (mut s, mut t) = ([_mm512_setzero_pd(); 2], [_mm512_setzero_pd(); 2]);
        for i in (0..whole).step_by(LANES) {
            for h in 0..2 {
                // SAFETY: i + 8h + 8 ≤ whole ≤ a.len() ≤ b.len().
                let (x, y) = unsafe {
                    (
                        _mm512_cvtps_pd(_mm256_loadu_ps(a.as_ptr().add(i + 8 * h))),
                        _mm512_cvtps_pd(_mm256_loadu_ps(b.as_ptr().add(i + 8 * h))),
                    )
                };
                s[h] = _mm512_add_pd(s[h], x);
                t[h] = _mm512_fmadd_pd(x, y, t[h]);
            }
        }
        let (mut s_lanes, mut t_lanes) = ([0.0f64; LANES], [0.0f64; LANES]);
        for h in 0..2 {
            // SAFETY: each store writes 8 of the 16 lanes.
            unsafe {
                _mm512_storeu_pd(s_lanes.as_mut_ptr().add(8 * h), s[h]);
                _mm512_storeu_pd(t_lanes.as_mut_ptr().add(8 * h), t[h]);
            }
        }
        finish(s_lanes, t_lanes, &a[whole..], &b[whole..a.len()])
    }
}

/// (Σ a, Σ a·b) over a row, the same bits on every CPU: (Σ x, Σ x²) for the statistics,
/// (Σ dy, Σ dy·x̂) for the gradients.
fn pair_sums(a: &[f32], b: &[f32]) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked just above.
        return unsafe { pair_sums_avx512::sums(a, b) };
    }
    pair_sums_portable(a, b)
}

/// Per channel, `f(x_row, other_row)` summed in f64 over every (outer, inner) position, in a
/// fixed order (one task per channel, so any thread count gives the same bits).
fn channel_sums(
    a: &[f32],
    b: &[f32],
    d: AxisDims,
    f: impl Fn(&[f32], &[f32]) -> (f64, f64) + Sync,
) -> Vec<(f64, f64)> {
    let one = |ch: usize| {
        let mut acc = (0.0, 0.0);
        for o in 0..d.outer {
            let span = (o * d.len + ch) * d.inner..(o * d.len + ch + 1) * d.inner;
            let (s, t) = f(&a[span.clone()], &b[span]);
            acc.0 += s;
            acc.1 += t;
        }
        acc
    };
    if d.numel() < PARALLEL_MIN {
        (0..d.len).map(one).collect()
    } else {
        (0..d.len).into_par_iter().map(one).collect()
    }
}

/// y = x̂·w + b with x̂ = (x − mean) / √(var + eps), the batch's mean and biased variance per
/// channel; returns (y, x̂, mean, var).
pub fn forward(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    d: AxisDims,
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let count = (d.outer * d.inner).max(1) as f64;
    let sums = channel_sums(x, x, d, pair_sums);
    let mean: Vec<f64> = sums.iter().map(|s| s.0 / count).collect();
    // var = E[x²] − mean², accumulated in f64 over f32 data: no cancellation at f32 precision
    // unless the mean is some 10⁴ standard deviations away from 0.
    let var: Vec<f64> = sums
        .iter()
        .zip(&mean)
        .map(|(s, m)| (s.1 / count - m * m).max(0.0))
        .collect();
    let inv: Vec<f32> = var
        .iter()
        .map(|v| 1.0 / ((*v as f32) + eps).sqrt())
        .collect();
    let mean32: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
    let (x_hat, y) = new_row_pairs(d.outer * d.len, d.inner, d.inner, x.len(), |row, h, y| {
        let ch = row % d.len;
        let src = &x[row * d.inner..(row + 1) * d.inner];
        // Every slot of both rows is written (the three lengths are d.inner).
        for ((h, y), &v) in h.iter_mut().zip(y.iter_mut()).zip(src) {
            let normalized = (v - mean32[ch]) * inv[ch];
            h.write(normalized);
            y.write(normalized * w[ch] + b[ch]);
        }
    });
    let var32 = var.iter().map(|&v| v as f32).collect();
    (y, x_hat, mean32, var32)
}

/// From x̂, the batch variance, w and dy: (dx, dw, db) with dw = Σ dy·x̂, db = Σ dy and
/// dx = w/√(var + eps) · (dy − db/N − x̂·dw/N), N the positions per channel.
pub fn backward(
    x_hat: &[f32],
    var: &[f32],
    w: &[f32],
    dy: &[f32],
    d: AxisDims,
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let count = (d.outer * d.inner).max(1) as f32;
    let sums = channel_sums(dy, x_hat, d, pair_sums);
    let db: Vec<f32> = sums.iter().map(|s| s.0 as f32).collect();
    let dw: Vec<f32> = sums.iter().map(|s| s.1 as f32).collect();
    let scale: Vec<f32> = (0..d.len)
        .map(|ch| w[ch] / (var[ch] + eps).sqrt())
        .collect();
    let dx = new_rows(dy.len(), d.inner, dy.len(), |first, rows| {
        for (r, out) in rows.chunks_mut(d.inner).enumerate() {
            let row = first + r;
            let ch = row % d.len;
            let span = row * d.inner..(row + 1) * d.inner;
            let (mb, mw) = (db[ch] / count, dw[ch] / count);
            for ((o, &g), &h) in out.iter_mut().zip(&dy[span.clone()]).zip(&x_hat[span]) {
                *o = scale[ch] * (g - mb - h * mw);
            }
        }
    });
    (dx, dw, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path gives the portable sums' bits, on rows with and without a tail.
    #[test]
    fn pair_sums_agree_bit_for_bit() {
        let mut rng = crate::Rng::new(5);
        for len in [0, 1, 15, 16, 17, 33, 784, 1001] {
            let a: Vec<f32> = (0..len).map(|_| rng.uniform() * 8.0 - 3.0).collect();
            let b: Vec<f32> = (0..len).map(|_| rng.uniform() * 2.0 - 1.0).collect();
            let (s, t) = pair_sums_portable(&a, &b);
            assert_eq!(pair_sums(&a, &b), (s, t), "length {len}");
            let exact_s: f64 = a.iter().map(|&x| x as f64).sum();
            assert!(
                (s - exact_s).abs() <= 1e-9 * (1.0 + exact_s.abs()),
                "length {len}"
            );
        }
    }
}
