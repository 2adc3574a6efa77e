//! The one random-number generator of kiln: PCG-64 (O'Neill, "PCG: A Family of Simple Fast
//! Space-Efficient Statistically Good Algorithms for Random Number Generation", 2014; the
//! `Lcg128Xsl64` of `rand_pcg`). Every random draw of a run (initial weights, shuffling, dropout)
//! comes from a generator seeded from the run's seed, so a run is reproducible from it.

use rand::{Rng as _, RngCore, SeedableRng};
use rand_pcg::Pcg64;

pub struct Rng(Pcg64);

/// The random streams of a run, each derived from the run's seed by its own id, so no two
/// purposes share draws and a resumed run recreates any of them without stored state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Initial weights.
    Init,
    /// The validation rows held out of the training data.
    Holdout,
    /// The order of the training rows in an epoch (0-based).
    Shuffle(usize),
    /// Dropout masks and augmentation of one optimizer step (0-based).
    Step(u64),
}

impl Stream {
    fn id(self) -> u64 {
        match self {
            Stream::Init => 0,
            Stream::Holdout => 1,
            Stream::Shuffle(epoch) => 1_000_000 + epoch as u64,
            Stream::Step(step) => (1 << 40) + step,
        }
    }
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(Pcg64::seed_from_u64(seed))
    }

    /// An independent stream for one purpose (say, the shuffle of epoch 3) derived from a seed,
    /// so that a resumed run can recreate it without stored generator state.
    pub fn derive(seed: u64, stream: u64) -> Rng {
        Rng(Pcg64::new(
            (seed as u128) << 64 | 0x9e37_79b9_7f4a_7c15,
            stream as u128,
        ))
    }

    /// The generator of one purpose of a run seeded with `seed`.
    pub fn stream(seed: u64, stream: Stream) -> Rng {
        Rng::derive(seed, stream.id())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1) with 24 random bits: every value is an exact f32.
    pub fn uniform(&mut self) -> f32 {
        (self.0.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// Standard normal by the Box–Muller transform, computed in f64.
    pub fn normal(&mut self) -> f32 {
        let u1 = 1.0 - self.0.random::<f64>(); // (0, 1]: ln stays finite
        let u2 = self.0.random::<f64>();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    /// Uniform integer in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.0.random_range(0..n)
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = Rng::new(7);
        assert!(a.iter().all(|&v| v == r.next_u64()));
        assert_ne!(Rng::new(8).next_u64(), a[0]);
        assert_ne!(Rng::derive(7, 1).next_u64(), Rng::derive(7, 2).next_u64());
    }

    #[test]
    fn uniform_and_normal_have_the_right_moments() {
        let mut r = Rng::new(1);
        let n = 20_000;
        let u: Vec<f32> = (0..n).map(|_| r.uniform()).collect();
        assert!(u.iter().all(|&v| (0.0..1.0).contains(&v)));
        let mean = u.iter().sum::<f32>() / n as f32;
        assert!((mean - 0.5).abs() < 0.01, "uniform mean {mean}");
        let z: Vec<f32> = (0..n).map(|_| r.normal()).collect();
        let mean = z.iter().sum::<f32>() / n as f32;
        let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n as f32;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "normal {mean} {var}"
        );
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<usize> = (0..50).collect();
        Rng::new(3).shuffle(&mut v);
        assert_ne!(v, (0..50).collect::<Vec<_>>());
        v.sort();
        assert_eq!(v, (0..50).collect::<Vec<_>>());
    }
}
