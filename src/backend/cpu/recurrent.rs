//! The fused LSTM cell on the CPU: one pass over the gates forward, one back, in place of the
//! dozen elementwise ops (each with its own buffer) the composed step would take.

use super::for_row_pairs;
use super::unary::{sigmoid, tanh};
use crate::backend::spec::LstmDims;

/// A row's `N` consecutive parts of length `u`.
fn parts<const N: usize>(row: &[f32], u: usize) -> [&[f32]; N] {
    std::array::from_fn(|k| &row[k * u..(k + 1) * u])
}

fn parts_mut<const N: usize>(row: &mut [f32], u: usize) -> [&mut [f32]; N] {
    let mut rest = &mut row[..N * u];
    std::array::from_fn(|_| {
        let (part, tail) = std::mem::take(&mut rest).split_at_mut(u);
        rest = tail;
        part
    })
}

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
            let [si, sf, sg, so, st] = parts_mut::<5>(s, u);
            let ([xi, xf, xg, xo], [hi, hf, hg, ho]) = (parts::<4>(xt, u), parts::<4>(hw, u));
            // Slices of length u indexed by j < u: no bounds checks, so the loop vectorises.
            for j in 0..u {
                let i = sigmoid(xi[j] + hi[j]);
                let f = sigmoid(xf[j] + hf[j]);
                let g = tanh(xg[j] + hg[j]);
                let o = sigmoid(xo[j] + ho[j]);
                let c_new = f * c[j] + i * g;
                let tc = tanh(c_new);
                let h_new = o * tc;
                // A padded step (k = 0) carries the state over.
                y_c[j] = c[j] + k * (c_new - c[j]);
                y_h[j] = h[j] + k * (h_new - h[j]);
                (si[j], sf[j], sg[j], so[j], st[j]) = (i, f, g, o, tc);
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
            let [i, f, g, o, tc] = parts::<5>(&saved[r * 5 * u..][..5 * u], u);
            let (dy_h, dy_c) = dy[r * 2 * u..][..2 * u].split_at(u);
            let (c, k) = (&c[r * u..][..u], keep[r]);
            let (dh, dc) = dhc.split_at_mut(u);
            let [di, df, dg, d_o] = parts_mut::<4>(dz, u);
            for j in 0..u {
                let (i, f, g, o, tc) = (i[j], f[j], g[j], o[j], tc[j]);
                let dh_new = k * dy_h[j];
                let dc_new = k * dy_c[j] + dh_new * o * (1.0 - tc * tc);
                di[j] = dc_new * g * i * (1.0 - i);
                df[j] = dc_new * c[j] * f * (1.0 - f);
                dg[j] = dc_new * i * (1.0 - g * g);
                d_o[j] = dh_new * tc * o * (1.0 - o);
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
