// 2-D max and average pooling, as src/backend/cpu/pool.rs. `kind` is a POOL_* code (op_codes.cuh,
// generated from `Pool` in src/backend/spec/pool.rs).

#include "common.cuh"
#include "op_codes.cuh"

// The codes this file handles; any other traps before a value is written.
__device__ __forceinline__ void expect_pool(int kind) {
    if (kind != POOL_MAX && kind != POOL_AVG) __trap();
}

// Without gradients (inference, average pooling): the pooled value alone.
extern "C" __global__ void pool2d_fwd(const float* x, float* y, Geom g, int kind) {
    expect_pool(kind);
    float area = (float)(g.kh * g.kw);
    GRID_STRIDE(k, g.n * g.c * g.oh * g.ow) {
        unsigned long long ox = k % g.ow, oy = (k / g.ow) % g.oh, p = k / (g.ow * g.oh);
        const float* plane = x + p * g.h * g.w;
        float acc = kind == POOL_MAX ? -__int_as_float(0x7f800000) : 0.0f;
        for (unsigned long long ky = 0; ky < g.kh; ++ky)
            for (unsigned long long kx = 0; kx < g.kw; ++kx) {
                float v = plane[(oy * g.sh + ky) * g.w + ox * g.sw + kx];
                acc = kind == POOL_MAX ? fmaxf(acc, v) : acc + v;
            }
        y[k] = kind == POOL_MAX ? acc : acc / area;
    }
}

// Max pooling for training: the maximum and the index in the window of its first occurrence
// (NaN never wins; -1 when the window holds no number).
extern "C" __global__ void max_pool2d_fwd(const float* x, float* y, float* argmax, Geom g) {
    GRID_STRIDE(k, g.n * g.c * g.oh * g.ow) {
        unsigned long long ox = k % g.ow, oy = (k / g.ow) % g.oh, p = k / (g.ow * g.oh);
        const float* plane = x + p * g.h * g.w;
        float best = -__int_as_float(0x7f800000), at = -1.0f;
        for (unsigned long long ky = 0; ky < g.kh; ++ky)
            for (unsigned long long kx = 0; kx < g.kw; ++kx) {
                float v = plane[(oy * g.sh + ky) * g.w + ox * g.sw + kx];
                if (v > best || (at < 0.0f && v == v)) {
                    best = v;
                    at = (float)(ky * g.kw + kx);
                }
            }
        y[k] = best;
        argmax[k] = at;
    }
}

// One thread per input pixel, gathering from the windows that cover it in output order.
extern "C" __global__ void max_pool2d_bwd(const float* argmax, const float* dy, float* dx, Geom g) {
    GRID_STRIDE(k, g.n * g.c * g.h * g.w) {
        unsigned long long ix = k % g.w, iy = (k / g.w) % g.h, p = k / (g.w * g.h);
        unsigned long long oy0 = iy + 1 > g.kh ? (iy + 1 - g.kh + g.sh - 1) / g.sh : 0;
        unsigned long long ox0 = ix + 1 > g.kw ? (ix + 1 - g.kw + g.sw - 1) / g.sw : 0;
        float acc = 0.0f;
        for (unsigned long long oy = oy0; oy <= iy / g.sh && oy < g.oh; ++oy)
            for (unsigned long long ox = ox0; ox <= ix / g.sw && ox < g.ow; ++ox) {
                unsigned long long o = p * g.oh * g.ow + oy * g.ow + ox;
                float here = (float)((iy - oy * g.sh) * g.kw + (ix - ox * g.sw));
                if (argmax[o] == here) acc += dy[o];
            }
        dx[k] = acc;
    }
}

extern "C" __global__ void avg_pool2d_bwd(const float* dy, float* dx, Geom g) {
    float area = (float)(g.kh * g.kw);
    GRID_STRIDE(k, g.n * g.c * g.h * g.w) {
        unsigned long long ix = k % g.w, iy = (k / g.w) % g.h, p = k / (g.w * g.h);
        unsigned long long oy0 = iy + 1 > g.kh ? (iy + 1 - g.kh + g.sh - 1) / g.sh : 0;
        unsigned long long ox0 = ix + 1 > g.kw ? (ix + 1 - g.kw + g.sw - 1) / g.sw : 0;
        float acc = 0.0f;
        for (unsigned long long oy = oy0; oy <= iy / g.sh && oy < g.oh; ++oy)
            for (unsigned long long ox = ox0; ox <= ix / g.sw && ox < g.ow; ++ox)
                acc += dy[p * g.oh * g.ow + oy * g.ow + ox] / area;
        dx[k] = acc;
    }
}
