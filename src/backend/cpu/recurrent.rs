//! The fused LSTM cell on the CPU: one pass over the gates forward, one back, in place of the
//! dozen elementwise ops (each with its own buffer) the composed step would take.

use super::for_row_pairs;
use super::unary::{sigmoid, tanh};
use crate::backend::spec::LstmDims;

/// `y = [h_out, c_out]` per row and the saved activations `[i, f, g, o, tanh(c_new)]`.
pub fn forward(
    xt: &[f32],
    hw: &[f32],
    h: &[f32],
    c: &[f32],
    keep: &[f32],
    d: LstmDims,
) -> (Vec<f32>, Vec<f32>) {
    let u = d.units;
    let mut y = vec![0.0; d.rows * 2 * u];
    let mut saved = vec![0.0; d.rows * 5 * u];
    for_row_pairs(
        &mut y,
        2 * u,
        &mut saved,
        5 * u,
        d.rows * 4 * u,
        |r, y, s| {
            let (xt, hw) = (&xt[r * 4 * u..][..4 * u], &hw[r * 4 * u..][..4 * u]);
            let (h, c, k) = (&h[r * u..][..u], &c[r * u..][..u], keep[r]);
            let (y_h, y_c) = y.split_at_mut(u);
            for j in 0..u {
                let i = sigmoid(xt[j] + hw[j]);
                let f = sigmoid(xt[u + j] + hw[u + j]);
                let g = tanh(xt[2 * u + j] + hw[2 * u + j]);
                let o = sigmoid(xt[3 * u + j] + hw[3 * u + j]);
                let c_new = f * c[j] + i * g;
                let tc = tanh(c_new);
                let h_new = o * tc;
                // A padded step (k = 0) carries the state over.
                y_c[j] = c[j] + k * (c_new - c[j]);
                y_h[j] = h[j] + k * (h_new - h[j]);
                for (slot, v) in [i, f, g, o, tc].into_iter().enumerate() {
                    s[slot * u + j] = v;
                }
            }
        },
    );
    (y, saved)
}

/// From the saved activations, the previous cell state, the mask and dy `[rows, 2·units]`:
/// the gate pre-activations' gradient `[rows, 4·units]` (the same for both of their summands)
/// and the previous states' `[rows, units]` each.
pub fn backward(
    saved: &[f32],
    c: &[f32],
    keep: &[f32],
    dy: &[f32],
    d: LstmDims,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let u = d.units;
    let mut dz = vec![0.0; d.rows * 4 * u];
    let mut dhc = vec![0.0; d.rows * 2 * u]; // [dh, dc] per row
    for_row_pairs(
        &mut dz,
        4 * u,
        &mut dhc,
        2 * u,
        d.rows * 4 * u,
        |r, dz, dhc| {
            let s = &saved[r * 5 * u..][..5 * u];
            let (dy_h, dy_c) = dy[r * 2 * u..][..2 * u].split_at(u);
            let (c, k) = (&c[r * u..][..u], keep[r]);
            let (dh, dc) = dhc.split_at_mut(u);
            for j in 0..u {
                let (i, f, g, o, tc) = (s[j], s[u + j], s[2 * u + j], s[3 * u + j], s[4 * u + j]);
                let dh_new = k * dy_h[j];
                let dc_new = k * dy_c[j] + dh_new * o * (1.0 - tc * tc);
                dz[j] = dc_new * g * i * (1.0 - i);
                dz[u + j] = dc_new * c[j] * f * (1.0 - f);
                dz[2 * u + j] = dc_new * i * (1.0 - g * g);
                dz[3 * u + j] = dh_new * tc * o * (1.0 - o);
                dh[j] = (1.0 - k) * dy_h[j];
                dc[j] = (1.0 - k) * dy_c[j] + dc_new * f;
            }
        },
    );
    let (mut dh, mut dc) = (
        Vec::with_capacity(d.rows * u),
        Vec::with_capacity(d.rows * u),
    );
    for row in dhc.chunks(2 * u) {
        dh.extend_from_slice(&row[..u]);
        dc.extend_from_slice(&row[u..]);
    }
    (dz, dh, dc)
}
