// Data movement, as src/backend/cpu/layout.rs: permutes, slices along an axis and their
// inverse, concatenation, row gathers and their inverse.

#include "common.cuh"
#include "op_codes.cuh"

// `Permutation` in src/backend/cuda/ops.rs.
struct Permutation {
    unsigned long long out_dims[MAX_RANK];
    unsigned long long in_strides[MAX_RANK];  // input stride of each output axis
    int rank;
};

extern "C" __global__ void permute(const float* x, float* y, unsigned long long n, Permutation p) {
    GRID_STRIDE(k, n) {
        unsigned long long rest = k, at = 0;
        for (int d = p.rank - 1; d >= 0; --d) {
            at += (rest % p.out_dims[d]) * p.in_strides[d];
            rest /= p.out_dims[d];
        }
        y[k] = x[at];
    }
}

// y [outer, len, inner] = x [outer, full, inner] from `start` along the middle axis.
extern "C" __global__ void slice_axis(const float* x, float* y, unsigned long long outer, unsigned long long len,
                                      unsigned long long inner, unsigned long long start, unsigned long long full) {
    GRID_STRIDE(k, outer * len * inner) {
        unsigned long long i = k % inner, l = (k / inner) % len, o = k / (inner * len);
        y[k] = x[(o * full + start + l) * inner + i];
    }
}

// y [outer, full, inner]: x [outer, len, inner] at `start`, zeros elsewhere.
extern "C" __global__ void pad_axis(const float* x, float* y, unsigned long long outer, unsigned long long len,
                                    unsigned long long inner, unsigned long long start, unsigned long long full) {
    GRID_STRIDE(k, outer * full * inner) {
        unsigned long long i = k % inner, l = (k / inner) % full, o = k / (inner * full);
        y[k] = (l >= start && l < start + len) ? x[(o * len + l - start) * inner + i] : 0.0f;
    }
}

// One part of a concatenation: part [outer, len, inner] into y [outer, total, inner] at `offset`.
extern "C" __global__ void cat_part(const float* part, float* y, unsigned long long outer, unsigned long long len,
                                    unsigned long long inner, unsigned long long offset, unsigned long long total) {
    GRID_STRIDE(k, outer * len * inner) {
        unsigned long long i = k % inner, l = (k / inner) % len, o = k / (inner * len);
        y[(o * total + offset + l) * inner + i] = part[k];
    }
}

extern "C" __global__ void gather_rows(const float* x, const unsigned int* idx, float* y, unsigned long long row_len,
                                       unsigned long long count) {
    GRID_STRIDE(k, count * row_len) {
        y[k] = x[(unsigned long long)idx[k / row_len] * row_len + k % row_len];
    }
}

// out (zeroed) [rows, row_len] += dy rows at idx. One thread per column walks idx in order, so
// repeated indices add in a fixed order without atomics.
extern "C" __global__ void scatter_add_rows(const float* dy, const unsigned int* idx, float* out,
                                            unsigned long long row_len, unsigned long long count) {
    GRID_STRIDE(j, row_len) {
        for (unsigned long long r = 0; r < count; ++r) out[(unsigned long long)idx[r] * row_len + j] += dy[r * row_len + j];
    }
}
