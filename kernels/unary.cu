// Elementwise unary ops: each op's value and derivative side by side, as src/backend/cpu/unary.rs.
// The op code matches `Unary::code` in src/backend/cuda/ops.rs; `a` and `b` are its constants.

#include "common.cuh"

#define FRAC_1_SQRT_2 0.70710678118654752f
#define FRAC_1_SQRT_2PI 0.3989422804014327f

__device__ __forceinline__ float sigmoid_f(float v) { return 1.0f / (1.0f + expf(-v)); }
__device__ __forceinline__ float normal_cdf(float v) { return 0.5f * (1.0f + erff(v * FRAC_1_SQRT_2)); }

__device__ float unary_value(int op, float v, float a, float b) {
    switch (op) {
    case 0: return -v;
    case 1: return fabsf(v);
    case 2: return expf(v);
    case 3: return logf(v);
    case 4: return sqrtf(v);
    case 5: return v < 0.0f ? 0.0f : v;               // relu, NaN stays NaN
    case 6: return v < 0.0f ? a * v : v;              // leaky relu
    case 7: return v * normal_cdf(v);                 // exact gelu
    case 8: return sigmoid_f(v);
    case 9: return tanhf(v);
    case 10: return fmaxf(v, 0.0f) + log1pf(expf(-fabsf(v)));  // softplus
    case 11: return fminf(fmaxf(v, a), b);            // clamp
    case 12: return powf(v, a);
    case 13: return v + a;
    default: return v * a;                            // 14: mul scalar
    }
}

__device__ float unary_grad(int op, float x, float y, float g, float a, float b) {
    switch (op) {
    case 0: return -g;
    case 1: return x > 0.0f ? g : (x < 0.0f ? -g : 0.0f);
    case 2: return g * y;
    case 3: return g / x;
    case 4: return g * 0.5f / y;
    case 5: return x > 0.0f ? g : 0.0f;
    case 6: return x > 0.0f ? g : a * g;
    case 7: {
        float pdf = FRAC_1_SQRT_2PI * expf(-0.5f * x * x);
        return g * (normal_cdf(x) + x * pdf);
    }
    case 8: return g * y * (1.0f - y);
    case 9: return g * (1.0f - y * y);
    case 10: return g * sigmoid_f(x);
    case 11: return (x < a || x > b) ? 0.0f : g;
    case 12: return g * a * powf(x, a - 1.0f);
    case 13: return g;
    default: return g * a;
    }
}

extern "C" __global__ void unary_fwd(const float* x, float* y, unsigned long long n, int op, float a, float b) {
    GRID_STRIDE(i, n) {
        y[i] = unary_value(op, x[i], a, b);
    }
}

extern "C" __global__ void unary_bwd(const float* x, const float* y, const float* dy, float* dx,
                                     unsigned long long n, int op, float a, float b) {
    GRID_STRIDE(i, n) {
        dx[i] = unary_grad(op, x[i], y[i], dy[i], a, b);
    }
}

extern "C" __global__ void fill(float* y, unsigned long long n, float value) {
    GRID_STRIDE(i, n) {
        y[i] = value;
    }
}
