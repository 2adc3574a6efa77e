//! Autograd semantics: the textbook example, reuse, accumulation, no_grad, detach.

use kiln::{no_grad, Tensor};

fn approx(got: Vec<f32>, want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-4, "{got:?} != {want:?}");
    }
}

#[test]
fn textbook_mean_of_squares() {
    // x = [1, 2, 3], z = mean(x²): dz/dx = 2x/3
    let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], [3]).with_requires_grad();
    let z = x.mul(&x).mean_all();
    z.backward();
    approx(x.grad().unwrap().to_vec(), &[0.6667, 1.3333, 2.0000]);
}

#[test]
fn a_tensor_used_twice_receives_both_contributions() {
    // y = x·x + x through two paths: dy/dx = 2x + 1
    let x = Tensor::from_vec(vec![0.5, -2.0], [2]).with_requires_grad();
    let h = x.mul_scalar(1.0); // an intermediate used twice, too
    let y = h.mul(&h).add(&x).sum_all();
    y.backward();
    approx(x.grad().unwrap().to_vec(), &[2.0, -3.0]);
}

#[test]
fn gradients_accumulate_until_zeroed() {
    let x = Tensor::from_vec(vec![1.0, 2.0], [2]).with_requires_grad();
    x.mul_scalar(3.0).sum_all().backward();
    x.mul_scalar(3.0).sum_all().backward();
    approx(x.grad().unwrap().to_vec(), &[6.0, 6.0]);
    x.zero_grad();
    assert!(x.grad().is_none());
    x.mul_scalar(3.0).sum_all().backward();
    approx(x.grad().unwrap().to_vec(), &[3.0, 3.0]);
}

#[test]
fn no_grad_records_nothing_and_restores_on_drop() {
    let x = Tensor::from_vec(vec![1.0], [1]).with_requires_grad();
    {
        let _guard = no_grad();
        let y = x.mul_scalar(2.0);
        assert!(!y.requires_grad() && y.is_leaf());
    }
    let y = x.mul_scalar(2.0);
    assert!(y.requires_grad() && !y.is_leaf());
}

#[test]
fn detach_stops_the_gradient() {
    let x = Tensor::from_vec(vec![2.0], [1]).with_requires_grad();
    // y = x · detach(x): only the first factor carries a gradient, dy/dx = detach(x) = 2
    let y = x.mul(&x.detach()).sum_all();
    y.backward();
    approx(x.grad().unwrap().to_vec(), &[2.0]);
}

#[test]
fn only_inputs_that_require_grad_get_one() {
    let w = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], [2, 2]).with_requires_grad();
    let data = Tensor::from_vec(vec![1.0, 1.0], [1, 2]);
    data.matmul(&w).sum_all().backward();
    assert!(data.grad().is_none());
    approx(w.grad().unwrap().to_vec(), &[1.0, 1.0, 1.0, 1.0]);
}

#[test]
fn deep_chains_do_not_overflow_the_stack() {
    let x = Tensor::from_vec(vec![1.0], [1]).with_requires_grad();
    let mut y = x.clone();
    for _ in 0..100_000 {
        y = y.add_scalar(0.0);
    }
    y.sum_all().backward();
    approx(x.grad().unwrap().to_vec(), &[1.0]);
}
