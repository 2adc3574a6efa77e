// Softmax and log-softmax along the middle axis of [outer, len, inner], max-shifted, as
// src/backend/cpu/softmax.rs. One thread per (outer, inner). `kind` is a SOFTMAX_* code
// (op_codes.cuh, generated from `SoftmaxKind` in src/backend/spec/softmax.rs).

#include "common.cuh"
#include "op_codes.cuh"

// The codes this file handles; any other traps before a value is written.
__device__ __forceinline__ void expect_softmax(int kind) {
    if (kind != SOFTMAX_SOFTMAX && kind != SOFTMAX_LOG_SOFTMAX) __trap();
}

extern "C" __global__ void softmax_fwd(const float* x, float* y, unsigned long long outer,
                                       unsigned long long len, unsigned long long inner, int kind) {
    expect_softmax(kind);
    unsigned long long n = outer * inner;
    GRID_STRIDE(j, n) {
        unsigned long long base = (j / inner) * len * inner + j % inner;
        float max = -__int_as_float(0x7f800000), sum = 0.0f;
        for (unsigned long long l = 0; l < len; ++l) max = fmaxf(max, x[base + l * inner]);
        for (unsigned long long l = 0; l < len; ++l) sum += expf(x[base + l * inner] - max);
        float lse = logf(sum);
        for (unsigned long long l = 0; l < len; ++l) {
            float v = x[base + l * inner] - max;
            y[base + l * inner] = kind == SOFTMAX_SOFTMAX ? expf(v) / sum : v - lse;
        }
    }
}

// softmax: dx = y (dy - sum dy y); log-softmax: dx = dy - exp(y) sum dy.
extern "C" __global__ void softmax_bwd(const float* y, const float* dy, float* dx, unsigned long long outer,
                                       unsigned long long len, unsigned long long inner, int kind) {
    expect_softmax(kind);
    unsigned long long n = outer * inner;
    GRID_STRIDE(j, n) {
        unsigned long long base = (j / inner) * len * inner + j % inner;
        float dot = 0.0f;
        for (unsigned long long l = 0; l < len; ++l) {
            unsigned long long at = base + l * inner;
            dot += kind == SOFTMAX_SOFTMAX ? dy[at] * y[at] : dy[at];
        }
        for (unsigned long long l = 0; l < len; ++l) {
            unsigned long long at = base + l * inner;
            dx[at] = kind == SOFTMAX_SOFTMAX ? y[at] * (dy[at] - dot) : dy[at] - expf(y[at]) * dot;
        }
    }
}
