// Dropout masks from a counter-based generator, as src/backend/cpu/random.rs: element i of a
// mask depends only on (seed, i), so both backends draw the same mask for the same seed.

#include "common.cuh"

__device__ __forceinline__ float uniform_at(unsigned long long seed, unsigned long long i) {
    // The SplitMix64 finalizer over a Weyl sequence (Steele, Lea and Flood, 2014).
    unsigned long long z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

// Elements first..first + n of the mask `seed` draws (a rank's rows of a global batch).
extern "C" __global__ void dropout_mask(float* mask, unsigned long long n, unsigned long long seed,
                                        unsigned long long first, float rate, float keep) {
    GRID_STRIDE(i, n) {
        mask[i] = uniform_at(seed, first + i) < rate ? 0.0f : keep;
    }
}
