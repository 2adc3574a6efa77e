//! Engine micro-benchmark: GEMM throughput, per-op overhead with autograd recording, and one MLP
//! training step. Run with `cargo bench --bench engine`; `KILN_THREADS` sets the thread count
//! (default: every core) and `KILN_PYTHON` the interpreter used for numpy's reference figure.
//! Figures are medians of 5 timed samples after a warm-up.

use std::process::Command;
use std::time::{Duration, Instant};

use kiln::{no_grad, Rng, Tensor};

const SAMPLES: usize = 5;
const SAMPLE_TIME: Duration = Duration::from_millis(150);

/// Median seconds per call of `f`.
fn time_per_call(mut f: impl FnMut()) -> f64 {
    f();
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let (start, mut calls) = (Instant::now(), 0u64);
            while start.elapsed() < SAMPLE_TIME {
                f();
                calls += 1;
            }
            start.elapsed().as_secs_f64() / calls as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[SAMPLES / 2]
}

fn random(dims: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::randn(dims, 0.0, 1.0, rng)
}

/// GFLOP/s of `op(a)·op(b)` with op(a) `[m, k]`, op(b) `[k, n]`.
fn gemm_gflops(m: usize, k: usize, n: usize, ta: bool, tb: bool, rng: &mut Rng) -> f64 {
    let a = random(&if ta { [k, m] } else { [m, k] }, rng);
    let b = random(&if tb { [n, k] } else { [k, n] }, rng);
    let _g = no_grad();
    let secs = time_per_call(|| {
        std::hint::black_box(a.matmul_t(&b, ta, tb));
    });
    2.0 * (m * k * n) as f64 / secs / 1e9
}

/// numpy's GFLOP/s for each `MxKxN:FLAGS` spec, if numpy is importable.
fn numpy_gflops(specs: &[String], threads: usize) -> Option<Vec<f64>> {
    let python = std::env::var("KILN_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/numpy_gemm.py");
    let output = Command::new(&python)
        .arg(script)
        .args(specs)
        .env("OPENBLAS_NUM_THREADS", threads.to_string())
        .env("OMP_NUM_THREADS", threads.to_string())
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "numpy reference skipped ({python}: {})",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("failed")
        );
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    text.lines()
        .map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

struct Mlp {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
}

impl Mlp {
    fn new(rng: &mut Rng) -> Mlp {
        let param = |dims: &[usize], rng: &mut Rng| {
            Tensor::rand_uniform(dims, -0.05, 0.05, rng).with_requires_grad()
        };
        Mlp {
            w1: param(&[128, 784], rng),
            b1: param(&[128], rng),
            w2: param(&[10, 128], rng),
            b2: param(&[10], rng),
        }
    }

    /// Forward, loss, backward: the work of one training step before the optimizer.
    fn step(&self, x: &Tensor, y: &Tensor) {
        let h = x.matmul_t(&self.w1, false, true).add(&self.b1).relu();
        let loss = h
            .matmul_t(&self.w2, false, true)
            .add(&self.b2)
            .cross_entropy(y);
        loss.backward();
        for p in [&self.w1, &self.b1, &self.w2, &self.b2] {
            p.zero_grad();
        }
    }
}

fn main() {
    if let Ok(t) = std::env::var("KILN_THREADS") {
        kiln::set_threads(t.parse().expect("KILN_THREADS is a number")).expect("thread pool");
    }
    let threads = kiln::threads();
    let mut rng = Rng::new(0);
    println!("# kiln engine benchmark ({threads} threads)\n");

    // (label, m, k, n, trans_a, trans_b): square sizes, then the MLP's three products.
    let products: Vec<(String, usize, usize, usize, bool, bool)> = [64, 128, 256, 512, 1024]
        .iter()
        .map(|&n| (format!("{n}×{n}×{n}"), n, n, n, false, false))
        .chain([
            (
                "MLP fwd x·W1ᵀ 32×784×128".to_string(),
                32,
                784,
                128,
                false,
                true,
            ),
            (
                "MLP bwd dW1 = dyᵀ·x 128×32×784".to_string(),
                128,
                32,
                784,
                true,
                false,
            ),
            (
                "MLP bwd dx = dy·W1 32×128×784".to_string(),
                32,
                128,
                784,
                false,
                false,
            ),
        ])
        .collect();
    let specs: Vec<String> = products
        .iter()
        .map(|&(_, m, k, n, ta, tb)| {
            let flag = |t: bool| if t { 't' } else { 'n' };
            format!("{m}x{k}x{n}:{}{}", flag(ta), flag(tb))
        })
        .collect();
    let numpy = numpy_gflops(&specs, threads);
    println!("| GEMM f32 (m×k×n) | kiln GFLOP/s | numpy GFLOP/s | kiln / numpy |");
    println!("|---|---:|---:|---:|");
    for (i, (label, m, k, n, ta, tb)) in products.iter().enumerate() {
        let ours = gemm_gflops(*m, *k, *n, *ta, *tb, &mut rng);
        match &numpy {
            Some(np) => println!(
                "| {label} | {ours:.1} | {:.1} | {:.2} |",
                np[i],
                ours / np[i]
            ),
            None => println!("| {label} | {ours:.1} | – | – |"),
        }
    }

    let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], [4]).with_requires_grad();
    let recorded = time_per_call(|| {
        std::hint::black_box(x.mul_scalar(2.0));
    });
    let plain = {
        let _g = no_grad();
        time_per_call(|| {
            std::hint::black_box(x.mul_scalar(2.0));
        })
    };
    println!("\n| engine overhead | µs |");
    println!("|---|---:|");
    println!(
        "| small op (4 elements) with autograd recording | {:.3} |",
        recorded * 1e6
    );
    println!(
        "| small op (4 elements) under no_grad | {:.3} |",
        plain * 1e6
    );

    let mlp = Mlp::new(&mut rng);
    let batch = Tensor::rand_uniform([32, 784], 0.0, 1.0, &mut rng);
    let labels = Tensor::from_vec((0..32).map(|i| (i % 10) as f32).collect(), [32]);
    let step = time_per_call(|| mlp.step(&batch, &labels));
    let matmuls = time_per_call(|| {
        let _g = no_grad();
        let dy = Tensor::zeros([32, 128]);
        std::hint::black_box(batch.matmul_t(&mlp.w1, false, true));
        std::hint::black_box(dy.matmul_t(&batch, true, false));
    });
    println!(
        "| MLP 784-128-10 forward + backward, batch 32 | {:.1} |",
        step * 1e6
    );
    println!(
        "| of which its two 784-wide matrix products | {:.1} |",
        matmuls * 1e6
    );
}
