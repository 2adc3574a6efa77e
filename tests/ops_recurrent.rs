//! The fused LSTM step and the whole-sequence LSTM against a plain f64 reference of PyTorch's
//! LSTM (gates i, f, g, o), on odd sizes, one row, one unit, one step, masked rows and steps,
//! both directions and batches that cross the CPU's row blocks; their gradients against finite
//! differences; and the CPU's sequence kernel against the composition other backends run.

mod common;

use common::*;
use kiln::backend::cpu::Cpu;
use kiln::backend::lstm_seq;
use kiln::backend::spec::LstmSeqDims;
use kiln::backend::Backend;
use kiln::Rng;

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// `[h, c]` per row from the plain formulas; a row with keep 0 keeps its states.
fn reference(xt: &[f32], hw: &[f32], h: &[f32], c: &[f32], keep: &[f32], u: usize) -> Vec<f64> {
    let rows = keep.len();
    let mut out = vec![0.0; rows * 2 * u];
    for r in 0..rows {
        for j in 0..u {
            let z =
                |gate: usize| (xt[r * 4 * u + gate * u + j] + hw[r * 4 * u + gate * u + j]) as f64;
            let (i, f, g, o) = (sigmoid(z(0)), sigmoid(z(1)), z(2).tanh(), sigmoid(z(3)));
            let c_old = c[r * u + j] as f64;
            let c_new = f * c_old + i * g;
            let h_new = o * c_new.tanh();
            let k = keep[r] as f64;
            let h_old = h[r * u + j] as f64;
            out[r * 2 * u + j] = h_old + k * (h_new - h_old);
            out[r * 2 * u + u + j] = c_old + k * (c_new - c_old);
        }
    }
    out
}

fn case(rows: usize, u: usize, seed: u64) -> (Vec<Vec<f32>>, Vec<f32>) {
    let mut rng = Rng::new(seed);
    let inputs = vec![
        uniform(rows * 4 * u, -2.0, 2.0, &mut rng),
        uniform(rows * 4 * u, -2.0, 2.0, &mut rng),
        uniform(rows * u, -1.0, 1.0, &mut rng),
        uniform(rows * u, -1.5, 1.5, &mut rng),
    ];
    // Every third row is padding.
    let keep = (0..rows)
        .map(|r| if r % 3 == 2 { 0.0 } else { 1.0 })
        .collect();
    (inputs, keep)
}

const SIZES: [(usize, usize); 5] = [(1, 1), (3, 5), (4, 1), (1, 7), (6, 3)];

#[test]
fn lstm_cell_matches_the_reference() {
    for (i, &(rows, u)) in SIZES.iter().chain(&[(64, 128)]).enumerate() {
        let (x, keep) = case(rows, u, 10 + i as u64);
        let t = |v: &Vec<f32>, d: &[usize]| tensor(v.clone(), d);
        let y = t(&x[0], &[rows, 4 * u]).lstm_cell(
            &t(&x[1], &[rows, 4 * u]),
            &t(&x[2], &[rows, u]),
            &t(&x[3], &[rows, u]),
            &t(&keep, &[rows]),
        );
        assert_eq!(y.dims(), [rows, 2 * u]);
        let want = reference(&x[0], &x[1], &x[2], &x[3], &keep, u);
        assert_close(&format!("lstm_cell {rows}x{u}"), &y.to_vec(), &want, 1e-6);
    }
}

#[test]
fn lstm_cell_gradients_match_finite_differences() {
    for (i, &(rows, u)) in SIZES.iter().enumerate() {
        let (x, keep) = case(rows, u, 20 + i as u64);
        let keep = tensor(keep, &[rows]);
        let inputs = [
            tensor(x[0].clone(), &[rows, 4 * u]),
            tensor(x[1].clone(), &[rows, 4 * u]),
            tensor(x[2].clone(), &[rows, u]),
            tensor(x[3].clone(), &[rows, u]),
        ];
        check_grads(&format!("lstm_cell {rows}x{u}"), &inputs, |t| {
            t[0].lstm_cell(&t[1], &t[2], &t[3], &keep)
        });
    }
}

#[test]
fn tanh_is_close_to_exact_across_its_range() {
    // The CPU's tanh goes through exp with a series near 0 (backend/cpu/unary.rs).
    let xs: Vec<f32> = (-4000..=4000)
        .map(|i| i as f32 * 0.005)
        .chain([1e-30, -1e-8, 30.0, -100.0])
        .collect();
    let got = tensor(xs.clone(), &[xs.len()]).tanh().to_vec();
    for (&x, &g) in xs.iter().zip(&got) {
        let want = (x as f64).tanh();
        let err = (g as f64 - want).abs();
        assert!(
            err <= 4e-7 * want.abs() + 1e-38,
            "tanh({x}) = {g}, exact {want}"
        );
    }
    let nan = tensor(vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY], &[3])
        .tanh()
        .to_vec();
    assert!(nan[0].is_nan());
    assert_eq!((nan[1], nan[2]), (1.0, -1.0));
}

/// h after every step `[n, len, u]` of one direction from zero states, by the plain formulas;
/// a padded step carries the states over.
fn sequence_reference(
    xw: &[f32],
    bias: &[f32],
    w_hh: &[f32],
    keep: &[f32],
    d: LstmSeqDims,
) -> Vec<f64> {
    let (n, len, u) = (d.batch, d.len, d.units);
    let g = 4 * u;
    let mut y = vec![0.0; n * len * u];
    for b in 0..n {
        let (mut h, mut c) = (vec![0.0f64; u], vec![0.0f64; u]);
        let steps: Vec<usize> = if d.reverse {
            (0..len).rev().collect()
        } else {
            (0..len).collect()
        };
        for t in steps {
            let at = b * len + t;
            let z = |gate: usize, j: usize| {
                let row = gate * u + j;
                xw[at * g + row] as f64
                    + bias[row] as f64
                    + (0..u).map(|q| w_hh[row * u + q] as f64 * h[q]).sum::<f64>()
            };
            let k = keep[at] as f64;
            let (mut h_new, mut c_new) = (vec![0.0; u], vec![0.0; u]);
            for j in 0..u {
                let (i, f, gg, o) = (
                    sigmoid(z(0, j)),
                    sigmoid(z(1, j)),
                    z(2, j).tanh(),
                    sigmoid(z(3, j)),
                );
                let cn = f * c[j] + i * gg;
                c_new[j] = c[j] + k * (cn - c[j]);
                h_new[j] = h[j] + k * (o * cn.tanh() - h[j]);
            }
            (h, c) = (h_new, c_new);
            y[at * u..(at + 1) * u].copy_from_slice(&h);
        }
    }
    y
}

/// (xw, bias, w_hh, keep) for a case: row b is real for its first `lengths[b]` steps, padded after
/// (as text columns are), and every fifth row also has a padded step in the middle.
fn sequence_case(d: LstmSeqDims, seed: u64) -> [Vec<f32>; 4] {
    let (n, len, u) = (d.batch, d.len, d.units);
    let mut rng = Rng::new(seed);
    let xw = uniform(n * len * 4 * u, -2.0, 2.0, &mut rng);
    let bias = uniform(4 * u, -1.0, 1.0, &mut rng);
    // As PyTorch initialises them (±1/√u): larger recurrent weights make a long sequence
    // chaotic, and f32 rounding then grows step by step away from any reference.
    let scale = 1.0 / (u as f32).sqrt();
    let w_hh = uniform(4 * u * u, -scale, scale, &mut rng);
    let keep = (0..n * len)
        .map(|i| {
            let (b, t) = (i / len, i % len);
            let length = len - b % (len + 1); // 0..=len real steps
            let hole = b % 5 == 4 && t == len / 2;
            if t < length && !hole {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    [xw, bias, w_hh, keep]
}

fn seq_dims(batch: usize, len: usize, units: usize, reverse: bool) -> LstmSeqDims {
    LstmSeqDims {
        batch,
        len,
        units,
        reverse,
        record: true,
    }
}

/// Odd sizes, one row, one step, one unit, both directions, and batches of 33 and 70 rows
/// (past the CPU's 32-row blocks, the last block short).
const SEQ_SIZES: [(usize, usize, usize); 6] = [
    (1, 1, 1),
    (3, 5, 2),
    (4, 1, 3),
    (33, 4, 3),
    (70, 3, 5),
    (2, 6, 7),
];

#[test]
fn lstm_sequence_matches_the_reference() {
    for (i, &(n, len, u)) in SEQ_SIZES.iter().chain(&[(64, 28, 128)]).enumerate() {
        for reverse in [false, true] {
            let d = seq_dims(n, len, u, reverse);
            let [xw, bias, w_hh, keep] = sequence_case(d, 40 + i as u64);
            let y = tensor(xw.clone(), &[n, len, 4 * u]).lstm_sequence(
                &tensor(bias.clone(), &[4 * u]),
                &tensor(w_hh.clone(), &[4 * u, u]),
                &tensor(keep.clone(), &[n, len]),
                reverse,
            );
            assert_eq!(y.dims(), [n, len, u]);
            let want = sequence_reference(&xw, &bias, &w_hh, &keep, d);
            assert_close(&format!("lstm_sequence {d:?}"), &y.to_vec(), &want, 2e-6);
        }
    }
}

#[test]
fn lstm_sequence_gradients_match_finite_differences() {
    for (i, &(n, len, u)) in [(1, 1, 1), (2, 3, 2), (6, 4, 3)].iter().enumerate() {
        for reverse in [false, true] {
            let d = seq_dims(n, len, u, reverse);
            let [xw, bias, w_hh, keep] = sequence_case(d, 60 + i as u64);
            let keep = tensor(keep, &[n, len]);
            let inputs = [
                tensor(xw, &[n, len, 4 * u]),
                tensor(bias, &[4 * u]),
                tensor(w_hh, &[4 * u, u]),
            ];
            check_grads(&format!("lstm_sequence {d:?}"), &inputs, |t| {
                t[0].lstm_sequence(&t[1], &t[2], &keep, reverse)
            });
        }
    }
}

/// The CPU's sequence kernel against the composition on one case, under whatever precision
/// is in force: h, and the gradients of xw, the bias and w_hh (and the saved record when
/// `record` says so), each within 1e-6; returns the kernel's h.
fn kernel_matches_composition(
    d: LstmSeqDims,
    [xw, bias, w_hh, keep]: &[Vec<f32>; 4],
    dy: &Vec<f32>,
    record: bool,
    label: &str,
) -> Vec<f32> {
    let (y, saved) = Cpu::lstm_seq_fwd(xw, bias, w_hh, keep, d);
    let (y2, saved2) = lstm_seq::forward::<Cpu>(xw, bias, w_hh, keep, d);
    let (dxw, db, dw) = Cpu::lstm_seq_bwd(&saved, w_hh, keep, dy, d);
    let (dxw2, db2, dw2) = lstm_seq::backward::<Cpu>(&saved2, w_hh, keep, dy, d);
    let wide = |v: &Vec<f32>| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let what = |part: &str| format!("{part} of {label}");
    assert_close(&what("h"), &y, &wide(&y2), 1e-6);
    if record {
        assert_close(&what("saved record"), &saved, &wide(&saved2), 1e-6);
    }
    assert_close(&what("d xw"), &dxw, &wide(&dxw2), 1e-6);
    assert_close(&what("d bias"), &db, &wide(&db2), 1e-6);
    assert_close(&what("d w_hh"), &dw, &wide(&dw2), 1e-6);
    y
}

/// The CPU's sequence kernel (row blocks, products read in place) against the step-by-step
/// composition of primitives that backends without one (CUDA) run: outputs, saved records and
/// both gradients.
#[test]
fn cpu_lstm_sequence_kernel_matches_the_composed_one() {
    for (i, &(n, len, u)) in SEQ_SIZES.iter().enumerate() {
        for reverse in [false, true] {
            let d = seq_dims(n, len, u, reverse);
            let case = sequence_case(d, 80 + i as u64);
            let dy = uniform(n * len * u, -1.0, 1.0, &mut Rng::new(90 + i as u64));
            kernel_matches_composition(d, &case, &dy, true, &format!("{d:?}"));
        }
    }
}

/// Without gradients (inference) the op keeps no record of the steps: the same output, bit
/// for bit, on the CPU kernel and the composition, and an empty record.
#[test]
fn lstm_sequence_without_gradients_keeps_no_record() {
    for (i, &(n, len, u)) in SEQ_SIZES.iter().enumerate() {
        for reverse in [false, true] {
            let d = seq_dims(n, len, u, reverse);
            let [xw, bias, w_hh, keep] = sequence_case(d, 100 + i as u64);
            let lean = LstmSeqDims { record: false, ..d };
            let (y, saved) = Cpu::lstm_seq_fwd(&xw, &bias, &w_hh, &keep, d);
            let (y_lean, none) = Cpu::lstm_seq_fwd(&xw, &bias, &w_hh, &keep, lean);
            assert!(y == y_lean && none.is_empty() && !saved.is_empty(), "{d:?}");
            let (y2, none2) = lstm_seq::forward::<Cpu>(&xw, &bias, &w_hh, &keep, lean);
            let wide = y.iter().map(|&x| x as f64).collect::<Vec<f64>>();
            assert_close(&format!("composed {d:?}"), &y2, &wide, 1e-6);
            assert!(none2.is_empty());
            // Through the op: no_grad gives the same as a recorded forward.
            let t = |v: &Vec<f32>, dims: &[usize]| tensor(v.clone(), dims);
            let run = || {
                t(&xw, &[n, len, 4 * u]).with_requires_grad().lstm_sequence(
                    &t(&bias, &[4 * u]),
                    &t(&w_hh, &[4 * u, u]),
                    &t(&keep, &[n, len]),
                    reverse,
                )
            };
            let recorded = run().to_vec();
            let _guard = kiln::no_grad();
            assert!(run().to_vec() == recorded, "{d:?} under no_grad");
        }
    }
}

/// Under `train.precision`'s emulation the CPU kernel's recurrent products take rounded
/// operands as the composition's (through the backend's matmul) do: the two agree in bf16 and
/// f16 as closely as in f32, and both differ from f32 by the format's rounding.
#[test]
fn cpu_lstm_sequence_kernel_rounds_its_products_as_the_composition_does() {
    use kiln::backend::{autocast, Precision};
    for (i, &(n, len, u)) in SEQ_SIZES.iter().enumerate() {
        let d = seq_dims(n, len, u, i % 2 == 1);
        let case = sequence_case(d, 120 + i as u64);
        let dy = uniform(n * len * u, -1.0, 1.0, &mut Rng::new(130 + i as u64));
        let [xw, bias, w_hh, keep] = &case;
        let (y32, _) = Cpu::lstm_seq_fwd(xw, bias, w_hh, keep, d);
        for p in [Precision::Bf16, Precision::F16] {
            let _scope = autocast(p);
            let label = format!("{d:?} in {p:?}");
            let y = kernel_matches_composition(d, &case, &dy, false, &label);
            // From the second step on, h is nonzero and its product rounds.
            if len > 1 {
                assert!(y != y32, "h of {label}: no rounding reached the products");
            }
        }
    }
}
