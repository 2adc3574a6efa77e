// Elementwise binary ops with NumPy broadcasting, as src/backend/cpu/binary.rs. `op` is a BINARY_*
// code (op_codes.cuh, generated from `Binary` in src/backend/spec/binary.rs); an unknown code
// traps.

#include "common.cuh"
#include "op_codes.cuh"

// The plan's merged dimensions and per-operand strides (0 where broadcast): `Plan` in
// src/backend/cuda/ops.rs.
struct Plan {
    unsigned long long dims[MAX_RANK];
    unsigned long long a_strides[MAX_RANK];
    unsigned long long b_strides[MAX_RANK];
    int rank;
};

__device__ __forceinline__ float apply(int op, float x, float y) {
    switch (op) {
    case BINARY_ADD: return x + y;
    case BINARY_SUB: return x - y;
    case BINARY_MUL: return x * y;
    case BINARY_DIV: return x / y;
    default: __trap();
    }
}

extern "C" __global__ void binary_fwd(const float* a, const float* b, float* out, unsigned long long n,
                                      int op, Plan plan) {
    GRID_STRIDE(i, n) {
        unsigned long long rest = i, oa = 0, ob = 0;
        for (int d = plan.rank - 1; d >= 0; --d) {
            unsigned long long idx = rest % plan.dims[d];
            rest /= plan.dims[d];
            oa += idx * plan.a_strides[d];
            ob += idx * plan.b_strides[d];
        }
        out[i] = apply(op, a[oa], b[ob]);
    }
}

// The common case with no broadcasting: both operands read in step.
extern "C" __global__ void binary_same(const float* a, const float* b, float* out, unsigned long long n, int op) {
    GRID_STRIDE(i, n) {
        out[i] = apply(op, a[i], b[i]);
    }
}
