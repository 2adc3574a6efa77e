// im2col and its inverse, as src/backend/cpu/conv.rs, in the per-image layout
// [n, c*kh*kw, oh*ow]. The window's geometry arrives as a `Geom` (kernels/common.cuh).

#include "common.cuh"

// x [n, c, h, w] -> cols [n, c*kh*kw, oh*ow], one thread per element (zero over padding).
extern "C" __global__ void im2col(const float* x, float* cols, Geom g) {
    unsigned long long patch = g.c * g.kh * g.kw, plane = g.oh * g.ow, total = g.n * patch * plane;
    GRID_STRIDE(k, total) {
        unsigned long long p = k % plane, q = (k / plane) % patch, b = k / (plane * patch);
        unsigned long long oy = p / g.ow, ox = p % g.ow;
        unsigned long long ci = q / (g.kh * g.kw), ky = (q / g.kw) % g.kh, kx = q % g.kw;
        long long iy = (long long)(oy * g.sh + ky) - (long long)g.ph;
        long long ix = (long long)(ox * g.sw + kx) - (long long)g.pw;
        bool inside = iy >= 0 && ix >= 0 && iy < (long long)g.h && ix < (long long)g.w;
        cols[k] = inside ? x[((b * g.c + ci) * g.h + iy) * g.w + ix] : 0.0f;
    }
}

// cols -> dx [n, c, h, w]: each input pixel gathers the entries that read it, in the CPU's
// order (kernel cell, then output row), so it needs no atomics.
extern "C" __global__ void col2im(const float* cols, float* dx, Geom g) {
    unsigned long long patch = g.c * g.kh * g.kw, plane = g.oh * g.ow, total = g.n * g.c * g.h * g.w;
    GRID_STRIDE(k, total) {
        unsigned long long ix = k % g.w, iy = (k / g.w) % g.h, ci = (k / (g.w * g.h)) % g.c,
                           b = k / (g.w * g.h * g.c);
        float acc = 0.0f;
        for (long long ky = 0; ky < (long long)g.kh; ++ky) {
            long long ty = (long long)iy + (long long)g.ph - ky;
            if (ty < 0 || ty % (long long)g.sh != 0 || ty / (long long)g.sh >= (long long)g.oh) continue;
            unsigned long long oy = ty / g.sh;
            for (long long kx = 0; kx < (long long)g.kw; ++kx) {
                long long tx = (long long)ix + (long long)g.pw - kx;
                if (tx < 0 || tx % (long long)g.sw != 0 || tx / (long long)g.sw >= (long long)g.ow) continue;
                unsigned long long ox = tx / g.sw;
                unsigned long long q = (ci * g.kh + ky) * g.kw + kx;
                acc += cols[(b * patch + q) * plane + oy * g.ow + ox];
            }
        }
        dx[k] = acc;
    }
}
