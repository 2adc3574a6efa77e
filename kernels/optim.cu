// Fused optimizer updates, one thread per element, in PyTorch's order of operations as
// src/backend/cpu/optim.rs.

#include "common.cuh"

extern "C" __global__ void sgd_update(float* p, const float* g, unsigned long long n, float lr, float wd) {
    GRID_STRIDE(i, n) { p[i] -= lr * (g[i] + wd * p[i]); }
}

extern "C" __global__ void sgd_momentum_update(float* p, const float* g, float* buf, unsigned long long n, float lr,
                                               float wd, float mu, int nesterov, int first_step) {
    GRID_STRIDE(i, n) {
        float d = g[i] + wd * p[i];
        float b = first_step ? d : mu * buf[i] + d;
        buf[i] = b;
        p[i] -= lr * (nesterov ? d + mu * b : b);
    }
}

extern "C" __global__ void adam_update(float* p, const float* g, float* m, float* v, unsigned long long n,
                                       float step_size, float b1, float b2, float eps, float wd, float decay,
                                       float bc2_sqrt, int decoupled) {
    GRID_STRIDE(i, n) {
        float grad = g[i], w = p[i];
        if (decoupled) {
            w *= decay;
        } else {
            grad += wd * w;
        }
        float mi = m[i] + (1.0f - b1) * (grad - m[i]);
        float vi = v[i] * b2 + (1.0f - b2) * grad * grad;
        m[i] = mi;
        v[i] = vi;
        p[i] = w - step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
    }
}
