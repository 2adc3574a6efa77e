// Elementwise unary ops: each op's value and derivative side by side, as src/backend/cpu/unary.rs.
// `op` is a UNARY_* code (op_codes.cuh, generated from `Unary` in src/backend/spec/unary.rs) and
// `a`, `b` its constants (`Unary::constants`). An unknown code traps.

#include "common.cuh"
#include "op_codes.cuh"

#define FRAC_1_SQRT_2 0.70710678118654752f
#define FRAC_1_SQRT_2PI 0.3989422804014327f

__device__ __forceinline__ float sigmoid_f(float v) { return 1.0f / (1.0f + expf(-v)); }
__device__ __forceinline__ float normal_cdf(float v) { return 0.5f * (1.0f + erff(v * FRAC_1_SQRT_2)); }

__device__ float unary_value(int op, float v, float a, float b) {
    switch (op) {
    case UNARY_NEG: return -v;
    case UNARY_ABS: return fabsf(v);
    case UNARY_EXP: return expf(v);
    case UNARY_LOG: return logf(v);
    case UNARY_SQRT: return sqrtf(v);
    case UNARY_RELU: return v < 0.0f ? 0.0f : v;  // NaN stays NaN
    case UNARY_LEAKY_RELU: return v < 0.0f ? a * v : v;
    case UNARY_GELU: return v * normal_cdf(v);  // exact, not the tanh approximation
    case UNARY_SIGMOID: return sigmoid_f(v);
    case UNARY_TANH: return tanhf(v);
    case UNARY_SOFTPLUS: return fmaxf(v, 0.0f) + log1pf(expf(-fabsf(v)));  // no overflow
    case UNARY_SILU: return v * sigmoid_f(v);
    case UNARY_CLAMP: return fminf(fmaxf(v, a), b);
    case UNARY_POW: return powf(v, a);
    case UNARY_ADD_SCALAR: return v + a;
    case UNARY_MUL_SCALAR: return v * a;
    default: __trap();
    }
}

__device__ float unary_grad(int op, float x, float y, float g, float a, float b) {
    switch (op) {
    case UNARY_NEG: return -g;
    case UNARY_ABS: return x > 0.0f ? g : (x < 0.0f ? -g : 0.0f);
    case UNARY_EXP: return g * y;
    case UNARY_LOG: return g / x;
    case UNARY_SQRT: return g * 0.5f / y;
    case UNARY_RELU: return x > 0.0f ? g : 0.0f;
    case UNARY_LEAKY_RELU: return x > 0.0f ? g : a * g;
    case UNARY_GELU: {
        float pdf = FRAC_1_SQRT_2PI * expf(-0.5f * x * x);
        return g * (normal_cdf(x) + x * pdf);
    }
    case UNARY_SIGMOID: return g * y * (1.0f - y);
    case UNARY_TANH: return g * (1.0f - y * y);
    case UNARY_SOFTPLUS: return g * sigmoid_f(x);
    case UNARY_SILU: {
        float s = sigmoid_f(x);
        return g * s * (1.0f + x * (1.0f - s));
    }
    case UNARY_CLAMP: return (x < a || x > b) ? 0.0f : g;
    case UNARY_POW: return g * a * powf(x, a - 1.0f);
    case UNARY_ADD_SCALAR: return g;
    case UNARY_MUL_SCALAR: return g * a;
    default: __trap();
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
