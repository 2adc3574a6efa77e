// The fused bias + ReLU epilogue, as src/backend/cpu/bias.rs, over [outer, c, inner] with a
// bias per c.

#include "common.cuh"

extern "C" __global__ void bias_relu_fwd(const float* x, const float* bias, float* y, unsigned long long outer,
                                         unsigned long long c, unsigned long long inner) {
    GRID_STRIDE(k, outer * c * inner) {
        float s = x[k] + bias[(k / inner) % c];
        y[k] = s < 0.0f ? 0.0f : s;  // NaN stays NaN
    }
}

// dx = dy where y > 0, else 0.
extern "C" __global__ void bias_relu_bwd_dx(const float* y, const float* dy, float* dx, unsigned long long n) {
    GRID_STRIDE(k, n) { dx[k] = y[k] > 0.0f ? dy[k] : 0.0f; }
}

// dbias[c] = sum of dx over outer and inner: one block per channel, a fixed tree.
extern "C" __global__ void bias_relu_bwd_bias(const float* dx, float* dbias, unsigned long long outer,
                                              unsigned long long c, unsigned long long inner) {
    __shared__ float part[BLOCK];
    for (unsigned long long ch = blockIdx.x; ch < c; ch += gridDim.x) {
        float acc = 0.0f;
        for (unsigned long long j = threadIdx.x; j < outer * inner; j += BLOCK) {
            unsigned long long o = j / inner, i = j % inner;
            acc += dx[(o * c + ch) * inner + i];
        }
        part[threadIdx.x] = acc;
        __syncthreads();
        for (int s = BLOCK / 2; s > 0; s >>= 1) {
            if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
            __syncthreads();
        }
        if (threadIdx.x == 0) dbias[ch] = part[0];
        __syncthreads();
    }
}
