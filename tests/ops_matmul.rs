//! Matrix products: every transpose flag, batched and folded shapes, size-1 dimensions.

mod common;

use common::*;
use kiln::Rng;

/// (batch dims, m, k, n)
const CASES: &[(&[usize], usize, usize, usize)] = &[
    (&[], 7, 5, 3),
    (&[], 1, 1, 1),
    (&[], 1, 5, 1),
    (&[], 4, 1, 6),
    (&[3], 4, 5, 2),
    (&[2, 3], 2, 3, 4),
    (&[1], 3, 2, 1),
    // k small beside n: B's gradient (B transposed) is computed transposed, then turned.
    (&[], 6, 3, 17),
];

/// Stored dims of an operand whose op() is `[rows, cols]`.
fn stored(batch: &[usize], rows: usize, cols: usize, trans: bool) -> Vec<usize> {
    let mut d = batch.to_vec();
    d.extend(if trans { [cols, rows] } else { [rows, cols] });
    d
}

/// op(A)·op(B) by triple loop in f64.
#[allow(clippy::too_many_arguments)]
fn matmul_reference(
    a: &[f32],
    b: &[f32],
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    ta: bool,
    tb: bool,
) -> Vec<f64> {
    let mut out = vec![0.0; batch * m * n];
    for z in 0..batch {
        let (a, b) = (&a[z * m * k..], &b[z * k * n..]);
        for i in 0..m {
            for j in 0..n {
                out[z * m * n + i * n + j] = (0..k)
                    .map(|p| {
                        let av = if ta { a[p * m + i] } else { a[i * k + p] };
                        let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                        av as f64 * bv as f64
                    })
                    .sum();
            }
        }
    }
    out
}

const FLAGS: [(bool, bool); 4] = [(false, false), (false, true), (true, false), (true, true)];

#[test]
fn matmul_forward_for_every_transpose_flag() {
    let mut rng = Rng::new(20);
    for &(batch, m, k, n) in CASES {
        for (ta, tb) in FLAGS {
            let (ad, bd) = (stored(batch, m, k, ta), stored(batch, k, n, tb));
            let a = uniform(numel(&ad), -1.0, 1.0, &mut rng);
            let b = uniform(numel(&bd), -1.0, 1.0, &mut rng);
            let y = tensor(a.clone(), &ad).matmul_t(&tensor(b.clone(), &bd), ta, tb);
            let mut want_dims = batch.to_vec();
            want_dims.extend([m, n]);
            assert_eq!(y.dims(), want_dims.as_slice());
            let want = matmul_reference(&a, &b, numel(batch), m, k, n, ta, tb);
            assert_close(
                &format!("{batch:?} {m}x{k}x{n} {ta} {tb}"),
                &y.to_vec(),
                &want,
                1e-5,
            );
        }
    }
}

#[test]
fn matmul_backward_for_every_transpose_flag() {
    let mut rng = Rng::new(21);
    for &(batch, m, k, n) in CASES {
        for (ta, tb) in FLAGS {
            let a = tensor(
                uniform(m * k * numel(batch), -1.0, 1.0, &mut rng),
                &stored(batch, m, k, ta),
            );
            let b = tensor(
                uniform(k * n * numel(batch), -1.0, 1.0, &mut rng),
                &stored(batch, k, n, tb),
            );
            check_grads(&format!("{batch:?} {m}x{k}x{n} {ta} {tb}"), &[a, b], |t| {
                t[0].matmul_t(&t[1], ta, tb)
            });
        }
    }
}

#[test]
fn matmul_with_a_shared_2d_right_operand_folds_leading_axes() {
    let mut rng = Rng::new(22);
    for tb in [false, true] {
        let a = uniform(3 * 4 * 5, -1.0, 1.0, &mut rng);
        let b = uniform(5 * 2, -1.0, 1.0, &mut rng);
        let bd = stored(&[], 5, 2, tb);
        let y = tensor(a.clone(), &[3, 4, 5]).matmul_t(&tensor(b.clone(), &bd), false, tb);
        assert_eq!(y.dims(), &[3, 4, 2]);
        let want = matmul_reference(&a, &b, 1, 12, 5, 2, false, tb);
        assert_close("folded", &y.to_vec(), &want, 1e-5);
        let (ta_, tb_) = (tensor(a, &[3, 4, 5]), tensor(b, &bd));
        check_grads("folded", &[ta_, tb_], |t| t[0].matmul_t(&t[1], false, tb));
    }
}

#[test]
fn large_matmul_matches_reference() {
    let mut rng = Rng::new(23);
    // Above gemm's threading threshold, and a batch of small products run one per thread.
    for (batch, m, k, n) in [(1usize, 130, 257, 65), (16, 9, 33, 17)] {
        for (ta, tb) in FLAGS {
            let a = uniform(batch * m * k, -1.0, 1.0, &mut rng);
            let b = uniform(batch * k * n, -1.0, 1.0, &mut rng);
            let bdims: &[usize] = if batch > 1 { &[batch] } else { &[] };
            let y = tensor(a.clone(), &stored(bdims, m, k, ta)).matmul_t(
                &tensor(b.clone(), &stored(bdims, k, n, tb)),
                ta,
                tb,
            );
            let want = matmul_reference(&a, &b, batch, m, k, n, ta, tb);
            assert_close(
                &format!("{batch} {m}x{k}x{n} {ta} {tb}"),
                &y.to_vec(),
                &want,
                1e-4,
            );
        }
    }
}

/// One 2-D operand shared by every matrix of a batched one, either side, every transpose flag:
/// the forward against the reference with the shared matrix repeated, the backward (the shared
/// operand's gradient summed over the batch) against finite differences.
#[test]
fn matmul_with_a_shared_2d_operand_on_either_side() {
    let mut rng = Rng::new(23);
    let (batch, m, k, n) = ([2usize, 3], 4, 5, 2);
    let repeat = |v: &[f32]| v.repeat(numel(&batch));
    for (ta, tb) in FLAGS {
        for shared_left in [true, false] {
            let (ab, bb): (&[usize], &[usize]) = if shared_left {
                (&[], &batch)
            } else {
                (&batch, &[])
            };
            let (ad, bd) = (stored(ab, m, k, ta), stored(bb, k, n, tb));
            let a = uniform(numel(&ad), -1.0, 1.0, &mut rng);
            let b = uniform(numel(&bd), -1.0, 1.0, &mut rng);
            let what = format!(
                "shared {} {ta} {tb}",
                if shared_left { "left" } else { "right" }
            );
            let y = tensor(a.clone(), &ad).matmul_t(&tensor(b.clone(), &bd), ta, tb);
            assert_eq!(y.dims(), &[2, 3, m, n], "{what}");
            let (fa, fb) = if shared_left {
                (repeat(&a), b.clone())
            } else {
                (a.clone(), repeat(&b))
            };
            let want = matmul_reference(&fa, &fb, numel(&batch), m, k, n, ta, tb);
            assert_close(&what, &y.to_vec(), &want, 1e-5);
            check_grads(&what, &[tensor(a, &ad), tensor(b, &bd)], |t| {
                t[0].matmul_t(&t[1], ta, tb)
            });
        }
    }
}
