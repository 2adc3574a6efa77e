// The fused LSTM cell, as src/backend/cpu/recurrent.rs: one thread per (row, unit). Gates in
// PyTorch's order (i, f, g, o); a row whose mask is 0 carries its state over.

#include "common.cuh"

__device__ __forceinline__ float lstm_sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

// y = [h_out, c_out] per row [rows, 2u]; saved = [i, f, g, o, tanh(c_new)] per row [rows, 5u].
extern "C" __global__ void lstm_cell_fwd(const float* xt, const float* hw, const float* h, const float* c,
                                         const float* keep, float* y, float* saved, unsigned long long rows,
                                         unsigned long long u) {
    GRID_STRIDE(k, rows * u) {
        unsigned long long r = k / u, j = k % u;
        const float* a = xt + r * 4 * u;
        const float* b = hw + r * 4 * u;
        float i = lstm_sigmoid(a[j] + b[j]);
        float f = lstm_sigmoid(a[u + j] + b[u + j]);
        float g = tanhf(a[2 * u + j] + b[2 * u + j]);
        float o = lstm_sigmoid(a[3 * u + j] + b[3 * u + j]);
        float c_old = c[k], h_old = h[k], m = keep[r];
        float c_new = f * c_old + i * g;
        float tc = tanhf(c_new);
        float h_new = o * tc;
        y[r * 2 * u + u + j] = c_old + m * (c_new - c_old);
        y[r * 2 * u + j] = h_old + m * (h_new - h_old);
        float* s = saved + r * 5 * u;
        s[j] = i;
        s[u + j] = f;
        s[2 * u + j] = g;
        s[3 * u + j] = o;
        s[4 * u + j] = tc;
    }
}

// dz [rows, 4u] (the gates' pre-activations), dh and dc [rows, u] (the previous states).
extern "C" __global__ void lstm_cell_bwd(const float* saved, const float* c, const float* keep, const float* dy,
                                         float* dz, float* dh, float* dc, unsigned long long rows,
                                         unsigned long long u) {
    GRID_STRIDE(k, rows * u) {
        unsigned long long r = k / u, j = k % u;
        const float* s = saved + r * 5 * u;
        float i = s[j], f = s[u + j], g = s[2 * u + j], o = s[3 * u + j], tc = s[4 * u + j];
        float m = keep[r];
        float dy_h = dy[r * 2 * u + j], dy_c = dy[r * 2 * u + u + j];
        float dh_new = m * dy_h;
        float dc_new = m * dy_c + dh_new * o * (1.0f - tc * tc);
        float* z = dz + r * 4 * u;
        z[j] = dc_new * g * i * (1.0f - i);
        z[u + j] = dc_new * c[k] * f * (1.0f - f);
        z[2 * u + j] = dc_new * i * (1.0f - g * g);
        z[3 * u + j] = dh_new * tc * o * (1.0f - o);
        dh[k] = (1.0f - m) * dy_h;
        dc[k] = (1.0f - m) * dy_c + dc_new * f;
    }
}
