// What every kernel file shares. Not compiled alone: src/backend/cuda/kernels.rs puts this text
// in place of each `#include "common.cuh"` (NVRTC reads no files at run time).

// Threads per block: the launch shape `BLOCK` in src/backend/cuda/mod.rs, and the size of the
// shared-memory trees of the one-block-per-output kernels.
#define BLOCK 256

// for (k = this thread's first element; k < total; k += every thread of the grid): each kernel
// launched by `grid_for(n)` covers any n with at most 65,535 blocks.
#define GRID_STRIDE(k, total)                                                                   \
    for (unsigned long long k = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; k < (total); \
         k += (unsigned long long)gridDim.x * blockDim.x)

// Where a 2-D window slides (convolution, pooling): `Conv2dGeom` field for field, converted by
// `Geom::from` in src/backend/cuda/ops.rs.
struct Geom {
    unsigned long long n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow;
};
