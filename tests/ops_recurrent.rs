//! The fused LSTM step against a plain f64 reference of PyTorch's LSTM cell (gates i, f, g, o),
//! on odd sizes, one row, one unit and masked rows, and its gradients against finite
//! differences.

mod common;

use common::*;
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
