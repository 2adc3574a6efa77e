// Batch normalization in training mode, as src/backend/cpu/norm.rs, over [outer, c, inner] with
// statistics per c. The sums are one block per channel with a fixed tree (f32 here, f64 on
// the CPU: the CUDA tests compare within 1e-5).

#include "common.cuh"

// Tree-sum two values per thread over the block; thread 0 gets the totals.
__device__ void block_sum2(float* a_part, float* b_part, float a, float b) {
    a_part[threadIdx.x] = a;
    b_part[threadIdx.x] = b;
    __syncthreads();
    for (int s = BLOCK / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            a_part[threadIdx.x] += a_part[threadIdx.x + s];
            b_part[threadIdx.x] += b_part[threadIdx.x + s];
        }
        __syncthreads();
    }
}

// mean[ch] and the biased var[ch] (two passes: the mean, then the squared deviations).
extern "C" __global__ void batch_norm_stats(const float* x, float* mean, float* var, unsigned long long outer,
                                            unsigned long long c, unsigned long long inner) {
    __shared__ float a_part[BLOCK];
    __shared__ float b_part[BLOCK];
    unsigned long long count = outer * inner;
    for (unsigned long long ch = blockIdx.x; ch < c; ch += gridDim.x) {
        float acc = 0.0f;
        for (unsigned long long j = threadIdx.x; j < count; j += BLOCK) {
            acc += x[((j / inner) * c + ch) * inner + j % inner];
        }
        block_sum2(a_part, b_part, acc, 0.0f);
        float m = a_part[0] / (float)(count > 0 ? count : 1);
        __syncthreads();
        float sq = 0.0f;
        for (unsigned long long j = threadIdx.x; j < count; j += BLOCK) {
            float d = x[((j / inner) * c + ch) * inner + j % inner] - m;
            sq += d * d;
        }
        block_sum2(a_part, b_part, sq, 0.0f);
        if (threadIdx.x == 0) {
            mean[ch] = m;
            var[ch] = a_part[0] / (float)(count > 0 ? count : 1);
        }
        __syncthreads();
    }
}

extern "C" __global__ void batch_norm_apply(const float* x, const float* mean, const float* var, const float* w,
                                            const float* b, float* x_hat, float* y, unsigned long long outer,
                                            unsigned long long c, unsigned long long inner, float eps) {
    GRID_STRIDE(k, outer * c * inner) {
        unsigned long long ch = (k / inner) % c;
        float h = (x[k] - mean[ch]) / sqrtf(var[ch] + eps);
        x_hat[k] = h;
        y[k] = h * w[ch] + b[ch];
    }
}

// dw[ch] = sum of dy * x_hat, db[ch] = sum of dy.
extern "C" __global__ void batch_norm_sums(const float* dy, const float* x_hat, float* dw, float* db,
                                           unsigned long long outer, unsigned long long c, unsigned long long inner) {
    __shared__ float a_part[BLOCK];
    __shared__ float b_part[BLOCK];
    unsigned long long count = outer * inner;
    for (unsigned long long ch = blockIdx.x; ch < c; ch += gridDim.x) {
        float sg = 0.0f, sgh = 0.0f;
        for (unsigned long long j = threadIdx.x; j < count; j += BLOCK) {
            unsigned long long k = ((j / inner) * c + ch) * inner + j % inner;
            sg += dy[k];
            sgh += dy[k] * x_hat[k];
        }
        block_sum2(a_part, b_part, sg, sgh);
        if (threadIdx.x == 0) {
            db[ch] = a_part[0];
            dw[ch] = b_part[0];
        }
        __syncthreads();
    }
}

extern "C" __global__ void batch_norm_dx(const float* dy, const float* x_hat, const float* var, const float* w,
                                         const float* dw, const float* db, float* dx, unsigned long long outer,
                                         unsigned long long c, unsigned long long inner, float eps) {
    float n = (float)(outer * inner > 0 ? outer * inner : 1);
    GRID_STRIDE(k, outer * c * inner) {
        unsigned long long ch = (k / inner) % c;
        float scale = w[ch] / sqrtf(var[ch] + eps);
        dx[k] = scale * (dy[k] - db[ch] / n - x_hat[k] * dw[ch] / n);
    }
}
