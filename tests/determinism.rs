//! Bitwise-identical results run to run at a fixed thread count, through every parallel path:
//! a GEMM large enough to be split across threads, large elementwise ops, reductions, softmax.

use kiln::{no_grad, Rng, Tensor};

/// A few SGD steps of a small model, returning every parameter's final bits and the loss curve.
fn train_bits() -> Vec<u32> {
    let mut rng = Rng::new(5);
    let x = Tensor::randn([256, 300], 0.0, 1.0, &mut rng);
    let labels = Tensor::from_vec((0..256).map(|i| (i % 7) as f32).collect(), [256]);
    let mut w1 = Tensor::randn([300, 256], 0.0, 0.05, &mut rng).with_requires_grad();
    let mut w2 = Tensor::randn([256, 7], 0.0, 0.05, &mut rng).with_requires_grad();
    let mut bits = Vec::new();
    for _ in 0..3 {
        let h = x.matmul(&w1).gelu();
        let loss = h
            .matmul(&w2)
            .cross_entropy(&labels)
            .add(&h.mul(&h).mean_all().mul_scalar(1e-3));
        loss.backward();
        bits.push(loss.item().to_bits());
        let _g = no_grad();
        let step = |w: &Tensor| {
            w.sub(&w.grad().unwrap().mul_scalar(0.1))
                .with_requires_grad()
        };
        (w1, w2) = (step(&w1), step(&w2));
    }
    let probs = x.matmul(&w1).softmax(1).sum(0, false);
    bits.extend(
        w1.to_vec()
            .iter()
            .chain(&w2.to_vec())
            .chain(&probs.to_vec())
            .map(|v| v.to_bits()),
    );
    bits
}

#[test]
fn training_is_bitwise_reproducible_for_each_thread_count() {
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let first = pool.install(train_bits);
        let second = pool.install(train_bits);
        assert!(first == second, "{threads} threads: two runs differ");
    }
}
