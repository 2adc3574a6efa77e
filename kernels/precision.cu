// Operands of mixed-precision matrix products (train.precision): f32 rounded to bf16 or f16 bits
// for cuBLAS's GemmEx, to nearest with ties to even, as src/backend/precision.rs rounds on the
// CPU. Both are written without cuda_bf16.h / cuda_fp16.h (NVRTC reads no headers here) and
// without bf16 instructions, so the file compiles for every architecture kiln runs on.

#include "common.cuh"

// bfloat16 is the top half of an f32: add half an ulp of the kept part (minus one when the kept
// part is even, so exact ties go to even), then truncate. NaN stays a quiet NaN.
extern "C" __global__ void to_bf16(const float* x, unsigned short* y, unsigned long long n) {
    GRID_STRIDE(i, n) {
        unsigned int u = __float_as_uint(x[i]);
        if ((u & 0x7fffffffu) > 0x7f800000u) {
            y[i] = (unsigned short)((u >> 16) | 0x0040u);
        } else {
            y[i] = (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
        }
    }
}

// IEEE binary16 by the hardware conversion (round to nearest even, overflow to inf, subnormals).
extern "C" __global__ void to_f16(const float* x, unsigned short* y, unsigned long long n) {
    GRID_STRIDE(i, n) {
        unsigned short h;
        asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(x[i]));
        y[i] = h;
    }
}
