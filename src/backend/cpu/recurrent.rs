//! The LSTM on the CPU: the fused cell (one pass over the gates forward, one back, in place of
//! the dozen elementwise ops the composed step would take), and whole sequences, whose batch
//! is split into blocks of rows that each run every step on one thread (rows are independent,
//! so a step costs no synchronisation, and the small per-step products stay whole).

use std::mem::MaybeUninit;

use gemm::Parallelism;
use rayon::prelude::*;

use super::layout::permute;
use super::matmul::{parallelism, product_view, View};
use super::precision::{round_into, rounded};
use super::unary::{sigmoid, tanh};
use super::wide::widest;
use super::{as_slots, for_row_pairs, write_slots};
use crate::backend::precision::Precision;
use crate::backend::spec::{LstmDims, LstmSeqDims};

/// A row's `N` consecutive parts of length `u`.
fn parts<const N: usize>(row: &[f32], u: usize) -> [&[f32]; N] {
    std::array::from_fn(|k| &row[k * u..(k + 1) * u])
}

fn parts_mut<const N: usize, T>(row: &mut [T], u: usize) -> [&mut [T]; N] {
    let mut rest = &mut row[..N * u];
    std::array::from_fn(|_| {
        let (part, tail) = std::mem::take(&mut rest).split_at_mut(u);
        rest = tail;
        part
    })
}

/// One row of the cell forward: the gates' summands `xt`, `b`, `hw` `[4u]` (added in that
/// order), the old states, the mask `k`; writes the new states and the activations
/// `[i, f, g, o, tanh(c_new)]` `[5u]`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn cell_row_forward(
    xt: &[f32],
    b: &[f32],
    hw: &[f32],
    h: &[f32],
    c: &[f32],
    k: f32,
    y_h: &mut [f32],
    y_c: &mut [f32],
    acts: &mut [MaybeUninit<f32>],
) {
    let u = h.len();
    let [si, sf, sg, so, st] = parts_mut::<5, _>(acts, u);
    let ([xi, xf, xg, xo], [hi, hf, hg, ho]) = (parts::<4>(xt, u), parts::<4>(hw, u));
    let [bi, bf, bg, bo] = parts::<4>(b, u);
    let (c, y_h, y_c) = (&c[..u], &mut y_h[..u], &mut y_c[..u]);
    // Slices of length u indexed by j < u: no bounds checks, so the loop vectorises.
    for j in 0..u {
        let i = sigmoid(xi[j] + bi[j] + hi[j]);
        let f = sigmoid(xf[j] + bf[j] + hf[j]);
        let g = tanh(xg[j] + bg[j] + hg[j]);
        let o = sigmoid(xo[j] + bo[j] + ho[j]);
        let c_new = f * c[j] + i * g;
        let tc = tanh(c_new);
        let h_new = o * tc;
        // A padded step (k = 0) carries the state over.
        y_c[j] = c[j] + k * (c_new - c[j]);
        y_h[j] = h[j] + k * (h_new - h[j]);
        si[j].write(i);
        sf[j].write(f);
        sg[j].write(g);
        so[j].write(o);
        st[j].write(tc);
    }
}

/// One row of the cell backward: from the activations, the old cell state, the mask and the
/// gradients of the new states, the gates' pre-activation gradient `dz` `[4u]` and the old
/// states' `dh`, `dc`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn cell_row_backward(
    acts: &[f32],
    c: &[f32],
    k: f32,
    dy_h: &[f32],
    dy_c: &[f32],
    dz: &mut [f32],
    dh: &mut [f32],
    dc: &mut [f32],
) {
    let u = c.len();
    let [i, f, g, o, tc] = parts::<5>(acts, u);
    let [di, df, dg, d_o] = parts_mut::<4, _>(dz, u);
    let (dy_h, dy_c, dh, dc) = (&dy_h[..u], &dy_c[..u], &mut dh[..u], &mut dc[..u]);
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
}

widest!(fn cell_row_forward_wide(
    xt: &[f32],
    b: &[f32],
    hw: &[f32],
    h: &[f32],
    c: &[f32],
    k: f32,
    y_h: &mut [f32],
    y_c: &mut [f32],
    acts: &mut [MaybeUninit<f32>],
) = cell_row_forward);

widest!(fn cell_row_backward_wide(
    acts: &[f32],
    c: &[f32],
    k: f32,
    dy_h: &[f32],
    dy_c: &[f32],
    dz: &mut [f32],
    dh: &mut [f32],
    dc: &mut [f32],
) = cell_row_backward);

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
    let no_bias = vec![0.0; 4 * u]; // the op's xt already holds the biases
    for_row_pairs(
        &mut y,
        2 * u,
        &mut saved,
        5 * u,
        d.rows * 4 * u,
        |r, y, s| {
            let (y_h, y_c) = y.split_at_mut(u);
            cell_row_forward_wide(
                &xt[r * 4 * u..][..4 * u],
                &no_bias,
                &hw[r * 4 * u..][..4 * u],
                &h[r * u..][..u],
                &c[r * u..][..u],
                keep[r],
                y_h,
                y_c,
                // SAFETY: the cell writes only values.
                unsafe { as_slots(s) },
            );
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
            let (dy_h, dy_c) = dy[r * 2 * u..][..2 * u].split_at(u);
            let (dh, dc) = dhc.split_at_mut(u);
            let acts = &saved[r * 5 * u..][..5 * u];
            cell_row_backward_wide(acts, &c[r * u..][..u], keep[r], dy_h, dy_c, dz, dh, dc);
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

/// Rows per block of a sequence's batch. Fixed by the sizes alone, so results do not depend on
/// the thread count; 32 rows keep the per-step product [32, units]·[units, 4·units] efficient
/// while a batch of 64 still fills two cores.
const SEQ_BLOCK_ROWS: usize = 32;

/// One step of one block of rows: the block's first row of the batch, how many rows it has,
/// the step, the sequence length, the units, and whether the block keeps a record of every
/// step (for a backward).
#[derive(Clone, Copy)]
struct BlockStep {
    first: usize,
    rows: usize,
    t: usize,
    len: usize,
    u: usize,
    kept: bool,
}

impl BlockStep {
    /// Where row `r`'s record of this step starts in the block's saved record: `[rows, len,
    /// SAVED·u]` when it is kept, else one step's `[rows, SAVED·u]` reused at every step.
    fn record_at(&self, r: usize) -> usize {
        let sv = LstmSeqDims::SAVED * self.u;
        if self.kept {
            (r * self.len + self.t) * sv
        } else {
            r * sv
        }
    }
}

/// A block's step forward, after `hw` = h · W_hhᵀ (the gates' pre-activations are xw + bias +
/// hw): each row's states before the step and its
/// activations go to the block's saved record (or one step's, when it keeps none), its new
/// states to `h`, `c` and the block's `y`.
#[inline(always)]
fn step_forward_body(
    (xw, bias): (&[f32], &[f32]),
    keep: &[f32],
    hw: &[f32],
    (h, c): (&mut [f32], &mut [f32]),
    (saved, y): (&mut [MaybeUninit<f32>], &mut [MaybeUninit<f32>]),
    b: BlockStep,
) {
    let (u, len, t) = (b.u, b.len, b.t);
    let (g, sv) = (4 * u, LstmSeqDims::SAVED * u);
    for r in 0..b.rows {
        let at = (b.first + r) * len + t;
        let s = &mut saved[b.record_at(r)..][..sv];
        let (before, acts) = s.split_at_mut(2 * u);
        // The states before the step, kept in the record, are the cell's inputs (it writes
        // the new ones over `h` and `c`).
        let (h_slots, c_slots) = before.split_at_mut(u);
        let h_old = write_slots(h_slots, &h[r * u..][..u]);
        let c_old = write_slots(c_slots, &c[r * u..][..u]);
        cell_row_forward(
            &xw[at * g..][..g],
            bias,
            &hw[r * g..][..g],
            h_old,
            c_old,
            keep[at],
            &mut h[r * u..][..u],
            &mut c[r * u..][..u],
            acts,
        );
        write_slots(&mut y[(r * len + t) * u..][..u], &h[r * u..][..u]);
    }
}

widest!(fn step_forward(
    inputs: (&[f32], &[f32]),
    keep: &[f32],
    hw: &[f32],
    states: (&mut [f32], &mut [f32]),
    out: (&mut [MaybeUninit<f32>], &mut [MaybeUninit<f32>]),
    b: BlockStep,
) = step_forward_body);

/// A block's step backward: from the gradients reaching the states after the step (`dh`, `dc`,
/// with the step's dy added to dh here), each row's gate gradients into `dz_step` `[rows, 4u]`
/// (and summed into the block's share of d bias, `db`), and the gradients reaching the states
/// before the step back into `dh` (the recurrent product's share is added after) and `dc`.
#[inline(always)]
fn step_backward_body(
    saved: &[f32],
    keep: &[f32],
    dy: &[f32],
    (dh, dc): (&mut [f32], &mut [f32]),
    (dz, db): (&mut [f32], &mut [f32]),
    b: BlockStep,
) {
    let (u, len, t) = (b.u, b.len, b.t);
    let (g, sv) = (4 * u, LstmSeqDims::SAVED * u);
    // Row-sized scratch (a step's allocation is small beside its rows' work).
    let (mut dh_total, mut dc_in) = (vec![0.0; u], vec![0.0; u]);
    for r in 0..b.rows {
        let at = (b.first + r) * len + t;
        let s = &saved[at * sv..][..sv];
        for ((total, &carried), &out) in dh_total
            .iter_mut()
            .zip(&dh[r * u..][..u])
            .zip(&dy[at * u..][..u])
        {
            *total = carried + out;
        }
        dc_in.copy_from_slice(&dc[r * u..][..u]);
        cell_row_backward(
            &s[2 * u..],
            &s[u..2 * u],
            keep[at],
            &dh_total,
            &dc_in,
            &mut dz[r * g..][..g],
            &mut dh[r * u..][..u],
            &mut dc[r * u..][..u],
        );
        for (s, &v) in db.iter_mut().zip(&dz[r * g..][..g]) {
            *s += v;
        }
    }
}

widest!(fn step_backward(
    saved: &[f32],
    keep: &[f32],
    dy: &[f32],
    grads: (&mut [f32], &mut [f32]),
    gates: (&mut [f32], &mut [f32]),
    b: BlockStep,
) = step_backward_body);

/// The whole sequence forward (see `LstmSeqDims`): h after every step and the saved record.
/// The recurrent products take operands rounded to `p` (the emulation of `train.precision`).
pub fn sequence_forward(
    xw: &[f32],
    bias: &[f32],
    w_hh: &[f32],
    keep: &[f32],
    d: LstmSeqDims,
    p: Precision,
) -> (Vec<f32>, Vec<f32>) {
    let (len, u) = (d.len, d.units);
    let (g, sv) = (4 * u, LstmSeqDims::SAVED * u);
    let (y_len, saved_len) = (
        d.batch * len * u,
        if d.record { d.batch * len * sv } else { 0 },
    );
    if y_len == 0 {
        return (vec![0.0; y_len], vec![0.0; saved_len]);
    }
    // Each block writes every slot of its share of both outputs, so neither is zeroed first.
    let (mut y, mut saved) = (Vec::with_capacity(y_len), Vec::with_capacity(saved_len));
    let rows_per = SEQ_BLOCK_ROWS.min(d.batch);
    let blocks = d.batch.div_ceil(rows_per);
    let mut records: Vec<&mut [MaybeUninit<f32>]> = if d.record {
        saved.spare_capacity_mut()[..saved_len]
            .chunks_mut(rows_per * len * sv)
            .collect()
    } else {
        (0..blocks).map(|_| &mut [][..]).collect()
    };
    // W_hhᵀ `[u, 4u]` once per sequence: a row-major right operand multiplies about twice as
    // fast as one read transposed (which gemm repacks at every step). Transposed in tiles: an
    // element at a time, writes 8 KiB apart took 0.35 ms a batch on mnist_rnn, a tenth of it.
    let mut w_t = permute(w_hh, &[g, u], &[1, 0]);
    if p != Precision::F32 {
        w_t.iter_mut().for_each(|v| *v = p.round(*v));
    }
    y.spare_capacity_mut()[..y_len]
        .par_chunks_mut(rows_per * len * u)
        .zip(records.par_iter_mut())
        .enumerate()
        .for_each(|(block, (y, record))| {
            let rows = y.len() / (len * u);
            let mut one_step = vec![0.0; if d.record { 0 } else { rows * sv }];
            let saved: &mut [MaybeUninit<f32>] = if d.record {
                record
            } else {
                // SAFETY: the steps write only values.
                unsafe { as_slots(&mut one_step) }
            };
            let mut h = vec![0.0; rows * u];
            let mut c = vec![0.0; rows * u];
            let mut hw = vec![0.0; rows * g];
            let mut h_rounded = vec![0.0; if p == Precision::F32 { 0 } else { rows * u }];
            for t in d.steps() {
                let h_operand = if p == Precision::F32 {
                    &h
                } else {
                    round_into(&mut h_rounded, &h, p);
                    &h_rounded
                };
                let hv = View {
                    data: h_operand,
                    rs: u,
                    cs: 1,
                };
                let w = View {
                    data: &w_t,
                    rs: g,
                    cs: 1,
                };
                // hw = h · W_hhᵀ, written over (not added to); at the first step h is 0 and so
                // is hw, as allocated.
                if t != d.first_step() {
                    product_view((rows, g, u), hv, w, &mut hw, g, false, Parallelism::None);
                }
                let b = BlockStep {
                    first: block * rows_per,
                    rows,
                    t,
                    len,
                    u,
                    kept: d.record,
                };
                step_forward((xw, bias), keep, &hw, (&mut h, &mut c), (saved, y), b);
            }
        });
    // SAFETY: every step wrote each row's h into `y` and its states and activations (SAVED·u
    // values) into its record, for every step of every block.
    unsafe {
        y.set_len(y_len);
        saved.set_len(saved_len);
    }
    (y, saved)
}

/// The whole sequence backward from the saved record and dy `[batch, len, units]`: (d xw
/// `[batch, len, 4·units]`, d bias `[4·units]`, d w_hh `[4·units, units]`); the products take
/// operands rounded to `p`, d bias sums the f32 gate gradients.
pub fn sequence_backward(
    saved: &[f32],
    w_hh: &[f32],
    keep: &[f32],
    dy: &[f32],
    d: LstmSeqDims,
    p: Precision,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (len, u) = (d.len, d.units);
    let (g, sv) = (4 * u, LstmSeqDims::SAVED * u);
    assert!(
        d.record && saved.len() == d.batch * len * sv,
        "lstm_seq_bwd without the forward's record"
    );
    let dz_len = d.batch * len * g;
    let mut dw = vec![0.0; g * u];
    let mut dbias = vec![0.0; g];
    if dz_len == 0 {
        return (Vec::new(), dbias, dw);
    }
    // Each block writes every slot of its share of d xw (a step's rows, from the step's
    // scratch), so it is not zeroed first.
    let mut dz = Vec::with_capacity(dz_len);
    let rows_per = SEQ_BLOCK_ROWS.min(d.batch);
    let steps: Vec<usize> = d.steps().collect();
    let w_hh = rounded(w_hh, p);
    // Each block's share of d bias, summed in block order below (fixed by the sizes).
    let dbias_parts: Vec<Vec<f32>> = dz.spare_capacity_mut()[..dz_len]
        .par_chunks_mut(rows_per * len * g)
        .enumerate()
        .map(|(block, dz)| {
            let rows = dz.len() / (len * g);
            // This step's gate gradients: read by d bias and the product below (contiguous),
            // then copied to their rows of d xw.
            let mut dz_step = vec![0.0; rows * g];
            // The gradients reaching the states before the step being undone.
            let mut dh = vec![0.0; rows * u];
            let mut dc = vec![0.0; rows * u];
            let mut db = vec![0.0; g];
            let mut dz_rounded = vec![0.0; if p == Precision::F32 { 0 } else { rows * g }];
            for &t in steps.iter().rev() {
                let b = BlockStep {
                    first: block * rows_per,
                    rows,
                    t,
                    len,
                    u,
                    kept: true,
                };
                step_backward(
                    saved,
                    keep,
                    dy,
                    (&mut dh, &mut dc),
                    (&mut dz_step, &mut db),
                    b,
                );
                for (r, row) in dz_step.chunks_exact(g).enumerate() {
                    write_slots(&mut dz[(r * len + t) * g..][..g], row);
                }
                if t == d.first_step() {
                    break; // what would flow on reaches the initial state, a constant 0
                }
                // dh += dz_t · W_hh.
                let dzt = View {
                    data: if p == Precision::F32 {
                        &dz_step
                    } else {
                        round_into(&mut dz_rounded, &dz_step, p);
                        &dz_rounded
                    },
                    rs: g,
                    cs: 1,
                };
                let w = View {
                    data: &w_hh,
                    rs: u,
                    cs: 1,
                };
                product_view((rows, u, g), dzt, w, &mut dh, u, true, Parallelism::None);
            }
            db
        })
        .collect();
    // SAFETY: every step (all of them run: the loop stops after the first) wrote each of its
    // rows of every block's share.
    unsafe { dz.set_len(dz_len) };
    for part in &dbias_parts {
        dbias.iter_mut().zip(part).for_each(|(s, &v)| *s += v);
    }
    // d W_hh = Σ over rows and steps of dzᵀ · h_before: one product over all of them, the
    // states read in place from the saved record.
    let (m, n, k) = (g, u, d.batch * len);
    let (dz_operand, saved_operand) = (rounded(&dz, p), rounded(saved, p));
    let dz_t = View {
        data: &dz_operand,
        rs: 1,
        cs: g,
    };
    let h_before = View {
        data: &saved_operand,
        rs: sv,
        cs: 1,
    };
    let par = parallelism((m, n, k));
    product_view((m, n, k), dz_t, h_before, &mut dw, n, false, par);
    (dz, dbias, dw)
}
