//! Dropout masks from a counter-based generator: element i depends only on (seed, i), so the
//! CUDA kernel (kernels/random.cu) draws the same mask, and chunks can fill in parallel.

use super::map_index;

/// Uniform in [0, 1) from (seed, i): the SplitMix64 finalizer over a Weyl sequence (Steele, Lea
/// and Flood, 2014), top 24 bits.
pub fn uniform_at(seed: u64, i: u64) -> f32 {
    let mut z = seed.wrapping_add((i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 40) as f32 * (1.0 / 16_777_216.0)
}

/// 0 with probability `rate`, else 1 / (1 − rate); elements `first..first + len` of the mask
/// `seed` draws.
pub fn dropout_mask(len: usize, rate: f32, seed: u64, first: u64) -> Vec<f32> {
    let keep = 1.0 / (1.0 - rate);
    map_index(len, |i| {
        if uniform_at(seed, first + i as u64) < rate {
            0.0
        } else {
            keep
        }
    })
}
