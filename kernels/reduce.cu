// Reductions over the middle axis of [outer, len, inner], the max gradient and the broadcast
// back, as src/backend/cpu/reduce.rs. `op` is a REDUCE_* code (op_codes.cuh, generated from
// `Reduce` in src/backend/spec/reduce.rs).

#include "common.cuh"
#include "op_codes.cuh"

// The codes this file handles; any other traps before a value is written.
__device__ __forceinline__ void expect_reduce(int op) {
    if (op != REDUCE_SUM && op != REDUCE_MEAN && op != REDUCE_MAX) __trap();
}

__device__ __forceinline__ float combine(int op, float acc, float v) {
    return op == REDUCE_MAX ? (v > acc ? v : acc) : acc + v;
}

// One thread per output: for short reductions with many outputs.
extern "C" __global__ void reduce_thread(const float* x, float* y, unsigned long long outer,
                                         unsigned long long len, unsigned long long inner, int op) {
    expect_reduce(op);
    unsigned long long n = outer * inner;
    GRID_STRIDE(j, n) {
        unsigned long long o = j / inner, i = j % inner;
        const float* src = x + o * len * inner + i;
        float acc = op == REDUCE_MAX ? -__int_as_float(0x7f800000) : 0.0f;
        for (unsigned long long l = 0; l < len; ++l) acc = combine(op, acc, src[l * inner]);
        y[j] = op == REDUCE_MEAN ? acc / (float)len : acc;
    }
}

// One block per output: for long reductions (a loss over a batch, a bias gradient). Each thread
// folds a strided share in a fixed order, then a fixed tree: the result does not vary run to run.
extern "C" __global__ void reduce_block(const float* x, float* y, unsigned long long outer,
                                        unsigned long long len, unsigned long long inner, int op) {
    expect_reduce(op);
    __shared__ float part[BLOCK];
    for (unsigned long long j = blockIdx.x; j < outer * inner; j += gridDim.x) {
        unsigned long long o = j / inner, i = j % inner;
        const float* src = x + o * len * inner + i;
        float acc = op == REDUCE_MAX ? -__int_as_float(0x7f800000) : 0.0f;
        for (unsigned long long l = threadIdx.x; l < len; l += BLOCK) acc = combine(op, acc, src[l * inner]);
        part[threadIdx.x] = acc;
        __syncthreads();
        for (int s = BLOCK / 2; s > 0; s >>= 1) {
            if (threadIdx.x < s) part[threadIdx.x] = combine(op, part[threadIdx.x], part[threadIdx.x + s]);
            __syncthreads();
        }
        if (threadIdx.x == 0) y[j] = op == REDUCE_MEAN ? part[0] / (float)len : part[0];
        __syncthreads();
    }
}

// dy routed to the first position along the axis that holds the maximum; zeros elsewhere.
extern "C" __global__ void max_bwd(const float* x, const float* y, const float* dy, float* dx,
                                   unsigned long long outer, unsigned long long len, unsigned long long inner) {
    unsigned long long n = outer * inner;
    GRID_STRIDE(j, n) {
        unsigned long long o = j / inner, i = j % inner;
        unsigned long long base = o * len * inner + i;
        bool routed = false;
        for (unsigned long long l = 0; l < len; ++l) {
            unsigned long long at = base + l * inner;
            bool here = !routed && x[at] == y[j];
            dx[at] = here ? dy[j] : 0.0f;
            routed = routed || here;
        }
    }
}

extern "C" __global__ void expand_axis(const float* x, float* y, unsigned long long outer,
                                       unsigned long long len, unsigned long long inner) {
    unsigned long long n = outer * len * inner;
    GRID_STRIDE(k, n) {
        unsigned long long i = k % inner, o = k / (len * inner);
        y[k] = x[o * inner + i];
    }
}
