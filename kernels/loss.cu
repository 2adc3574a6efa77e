// The fused softmax + cross-entropy over integer class targets, as src/backend/cpu/loss.rs.
// A target that is not a class index gives NaN (data loading rejects such targets first).

#include "common.cuh"

__device__ float log_sum_exp(const float* row, unsigned long long c) {
    float max = -__int_as_float(0x7f800000), sum = 0.0f;
    for (unsigned long long k = 0; k < c; ++k) max = fmaxf(max, row[k]);
    for (unsigned long long k = 0; k < c; ++k) sum += expf(row[k] - max);
    return max + logf(sum);
}

__device__ __forceinline__ bool is_class(float t, unsigned long long c) {
    return t >= 0.0f && t < (float)c && floorf(t) == t;
}

// One block: rows split among threads, partial sums in double added in a fixed tree.
extern "C" __global__ void cross_entropy_fwd(const float* logits, const float* targets, float* out,
                                             unsigned long long n, unsigned long long c) {
    __shared__ double part[BLOCK];
    double acc = 0.0;
    for (unsigned long long r = threadIdx.x; r < n; r += BLOCK) {
        const float* row = logits + r * c;
        float t = targets[r];
        acc += is_class(t, c) ? (double)(log_sum_exp(row, c) - row[(unsigned long long)t]) : (double)__int_as_float(0x7fffffff);
    }
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int s = BLOCK / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[0] = (float)(part[0] / (double)n);
}

// (softmax(logits) - onehot(target)) * dloss / n, one thread per row.
extern "C" __global__ void cross_entropy_bwd(const float* logits, const float* targets, const float* dloss,
                                             float* dx, unsigned long long n, unsigned long long c) {
    float scale = dloss[0] / (float)n;
    GRID_STRIDE(r, n) {
        const float* row = logits + r * c;
        float lse = log_sum_exp(row, c);
        float t = targets[r];
        bool ok = is_class(t, c);
        for (unsigned long long k = 0; k < c; ++k) {
            float d = expf(row[k] - lse) * scale;
            dx[r * c + k] = !ok ? __int_as_float(0x7fffffff) : ((float)k == t ? d - scale : d);
        }
    }
}
