//! Convolution (im2col + matmul, and on AVX-512 CPUs F(2×2, 3×3) Winograd tiles for 3×3
//! stride-1 windows with 8 or more channels in and out) and pooling: forward against direct
//! f64 loops, backward against finite differences, over odd sizes and stride / padding
//! combinations.

mod common;

use common::*;
use kiln::backend::spec::Conv2dGeom;
use kiln::ops::Pool;
use kiln::Rng;

/// (input [n, c, h, w], filters, kernel (kh, kw), stride, pad)
type ConvCase = (
    [usize; 4],
    usize,
    (usize, usize),
    (usize, usize),
    (usize, usize),
);

const CONV_CASES: &[ConvCase] = &[
    ([1, 1, 5, 5], 1, (3, 3), (1, 1), (0, 0)),
    ([2, 3, 7, 6], 4, (3, 3), (1, 1), (1, 1)),
    ([2, 2, 7, 7], 3, (3, 3), (2, 2), (1, 1)),
    ([1, 3, 6, 5], 2, (2, 3), (2, 1), (0, 2)),
    ([3, 1, 4, 4], 2, (1, 1), (1, 1), (0, 0)),
    ([1, 2, 5, 5], 1, (5, 5), (1, 1), (2, 2)),
    ([2, 1, 9, 8], 2, (3, 2), (3, 2), (1, 0)),
    // Stride 1, output as wide as the input (the CPU's shifted-plane unfolding): a kernel
    // taller than wide without padding, rows wholly in the padding, a one-pixel-wide plane.
    ([2, 2, 6, 5], 2, (3, 1), (1, 1), (0, 0)),
    ([1, 2, 3, 4], 2, (1, 3), (1, 1), (2, 1)),
    ([1, 1, 4, 1], 1, (3, 1), (1, 1), (1, 0)),
    // More images than the CPU's weight-gradient groups: several images summed per group.
    ([37, 2, 4, 3], 3, (3, 3), (1, 1), (1, 1)),
    // 3×3 stride 1 with 8+ channels where columns stay faster or the tiles do not apply (on
    // AVX-512 CPUs the tiles take the `TILED` cases): a small plane, a 1×1 and a
    // one-pixel-wide plane, padding 3.
    ([2, 8, 7, 6], 8, (3, 3), (1, 1), (1, 1)),
    ([2, 8, 1, 1], 8, (3, 3), (1, 1), (1, 1)),
    ([1, 8, 3, 1], 8, (3, 3), (1, 1), (1, 1)),
    ([1, 8, 2, 2], 8, (3, 3), (1, 1), (3, 3)),
];

/// 3×3 stride 1 with 8+ channels on planes large enough for Winograd tiles on CPUs with
/// AVX-512, run by every conv test beside `CONV_CASES`: odd height, odd width with counts not
/// multiples of 4, no padding, padding 2 (an output larger than the input), unequal padding.
/// Blocks of 2 on the first and fourth, of 4 on the others and `TILED_MANY`.
const TILED: &[ConvCase] = &[
    ([2, 8, 13, 16], 8, (3, 3), (1, 1), (1, 1)),
    ([1, 9, 16, 15], 10, (3, 3), (1, 1), (1, 1)),
    ([1, 8, 18, 14], 8, (3, 3), (1, 1), (0, 0)),
    ([1, 8, 12, 14], 9, (3, 3), (1, 1), (2, 2)),
    ([1, 8, 14, 11], 8, (3, 3), (1, 1), (0, 2)),
    ([1, 8, 13, 17], 8, (3, 3), (1, 1), (2, 1)),
];

/// Tiles over more images than the weight-gradient groups (the gradient test only: finite
/// differences over its inputs would be slow).
const TILED_MANY: ConvCase = ([19, 8, 12, 16], 8, (3, 3), (1, 1), (1, 1));

fn all_cases() -> impl Iterator<Item = &'static ConvCase> {
    CONV_CASES.iter().chain(TILED)
}

/// Each method is covered: the `TILED` cases take the tiles where the CPU has AVX-512, in
/// blocks of 2 and of 4, and the small-plane, 1×1 and padding-3 cases take columns.
#[test]
fn tiled_cases_take_the_tiles() {
    let geom = |&(xd, f, k, s, p): &ConvCase| (Conv2dGeom::new(&xd, k, s, p).unwrap(), f);
    let avx512 = std::arch::is_x86_feature_detected!("avx512f");
    if !avx512 {
        eprintln!("skipped: no AVX-512 here, every convolution takes columns");
    }
    let mut blocks = Vec::new();
    for case in TILED.iter().chain([&TILED_MANY]) {
        let (g, f) = geom(case);
        let block = kiln::backend::cpu::conv_tile_block(&g, f);
        assert_eq!(block.is_some(), avx512, "{case:?}");
        blocks.extend(block);
    }
    if avx512 {
        assert!(blocks.contains(&2) && blocks.contains(&4), "{blocks:?}");
    }
    for case in &CONV_CASES[CONV_CASES.len() - 4..] {
        let (g, f) = geom(case);
        assert_eq!(kiln::backend::cpu::conv_tile_block(&g, f), None, "{case:?}");
    }
}

/// The output dims `[n, f, oh, ow]` of `case`.
fn conv_dims((xd, f, k, s, p): ConvCase) -> [usize; 4] {
    let oh = (xd[2] + 2 * p.0 - k.0) / s.0 + 1;
    let ow = (xd[3] + 2 * p.1 - k.1) / s.1 + 1;
    [xd[0], f, oh, ow]
}

/// `tap(out, x, w)` with the flat indices of every (output, input, weight) triple the
/// convolution multiplies, in output order (taps on padding skipped).
fn conv_taps(case: ConvCase, mut tap: impl FnMut(usize, usize, usize)) {
    let ([n, c, h, wd], f, k, s, p) = case;
    let [_, _, oh, ow] = conv_dims(case);
    for bi in 0..n {
        for fi in 0..f {
            for oy in 0..oh {
                for ox in 0..ow {
                    let out = ((bi * f + fi) * oh + oy) * ow + ox;
                    for ci in 0..c {
                        for ky in 0..k.0 {
                            for kx in 0..k.1 {
                                let iy = (oy * s.0 + ky) as isize - p.0 as isize;
                                let ix = (ox * s.1 + kx) as isize - p.1 as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let xi = ((bi * c + ci) * h + iy as usize) * wd + ix as usize;
                                tap(out, xi, ((fi * c + ci) * k.0 + ky) * k.1 + kx);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn conv_reference(case: ConvCase, x: &[f32], w: &[f32], b: &[f32]) -> (Vec<f64>, [usize; 4]) {
    let (out, _, dims) = conv_reference_with_sums(case, x, w, b);
    (out, dims)
}

/// `conv_reference`, and each output's sum of |terms| (the bias's included).
fn conv_reference_with_sums(
    case: ConvCase,
    x: &[f32],
    w: &[f32],
    b: &[f32],
) -> (Vec<f64>, Vec<f64>, [usize; 4]) {
    let dims = conv_dims(case);
    let plane = dims[2] * dims[3];
    let mut out: Vec<f64> = (0..numel(&dims))
        .map(|o| b[o / plane % case.1] as f64)
        .collect();
    let mut abs: Vec<f64> = out.iter().map(|v| v.abs()).collect();
    conv_taps(case, |o, xi, wi| {
        let term = x[xi] as f64 * w[wi] as f64;
        out[o] += term;
        abs[o] += term.abs();
    });
    (out, abs, dims)
}

#[test]
fn conv2d_forward_matches_direct_loops() {
    let mut rng = Rng::new(50);
    for &(xd, f, k, s, p) in all_cases() {
        let x = uniform(numel(&xd), -1.0, 1.0, &mut rng);
        let wd = [f, xd[1], k.0, k.1];
        let w = uniform(numel(&wd), -1.0, 1.0, &mut rng);
        let b = uniform(f, -1.0, 1.0, &mut rng);
        let y = tensor(x.clone(), &xd).conv2d(
            &tensor(w.clone(), &wd),
            Some(&tensor(b.clone(), &[f])),
            s,
            p,
        );
        let (want, abs, od) = conv_reference_with_sums((xd, f, k, s, p), &x, &w, &b);
        assert_eq!(y.dims(), od, "{xd:?} k{k:?} s{s:?} p{p:?}");
        assert_sum_close(
            &format!("conv {xd:?} k{k:?} s{s:?} p{p:?}"),
            &y.to_vec(),
            &want,
            &abs,
        );
    }
}

#[test]
fn conv2d_backward_matches_finite_differences() {
    let mut rng = Rng::new(51);
    for &(xd, f, k, s, p) in all_cases() {
        let wd = [f, xd[1], k.0, k.1];
        let x = tensor(uniform(numel(&xd), -1.0, 1.0, &mut rng), &xd);
        let w = tensor(uniform(numel(&wd), -1.0, 1.0, &mut rng), &wd);
        let b = tensor(uniform(f, -1.0, 1.0, &mut rng), &[f]);
        check_grads(
            &format!("conv {xd:?} k{k:?} s{s:?} p{p:?}"),
            &[x, w, b],
            |t| t[0].conv2d(&t[1], Some(&t[2]), s, p),
        );
    }
}

/// dx and dw of Σ conv(x, w) ⊙ dy by direct f64 loops: each output's dy times the input and
/// weight it multiplied.
/// Also returns each entry's sum of |terms|, the scale of f32 rounding in a long sum.
fn conv_grads_reference(case: ConvCase, x: &[f32], w: &[f32], dy: &[f32]) -> [Vec<f64>; 4] {
    let (mut dx, mut dw) = (vec![0.0; x.len()], vec![0.0; w.len()]);
    let (mut dx_abs, mut dw_abs) = (vec![0.0; x.len()], vec![0.0; w.len()]);
    conv_taps(case, |o, xi, wi| {
        let (tx, tw) = (dy[o] as f64 * w[wi] as f64, dy[o] as f64 * x[xi] as f64);
        dx[xi] += tx;
        dw[wi] += tw;
        dx_abs[xi] += tx.abs();
        dw_abs[wi] += tw.abs();
    });
    [dx, dw, dx_abs, dw_abs]
}

/// `got` within 1e-5 of `want` (relative above 1), plus 32 f32 ε times the largest sum of
/// |terms| among the entries: a dw summed over thousands of positions rounds by more than
/// 1e-5, and Winograd's F(4×4, 3×3) tiles, whose transforms multiply by up to 8 and divide by
/// 24, round each output by a few ε of the magnitudes in its whole 6×6 tile (measured: up to
/// 10 ε of the largest sum on these cases; 29 ε of a corner output's own, which has 4 of the 9
/// taps). A wrong coefficient or a misplaced tap is off by the size of a term, about 0.25.
fn assert_sum_close(what: &str, got: &[f32], want: &[f64], abs_sums: &[f64]) {
    let largest = abs_sums.iter().cloned().fold(0.0, f64::max);
    let rounding = 32.0 * f32::EPSILON as f64 * largest;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-5 * (1.0 + w.abs()) + rounding;
        assert!(
            (g as f64 - w).abs() <= tol,
            "{what}: element {i} is {g}, reference {w}"
        );
    }
}

/// dx and dw against the direct sums to 1e-5: finite differences in f32 would let a slightly
/// wrong transform through.
#[test]
fn conv2d_gradients_match_direct_loops() {
    let mut rng = Rng::new(56);
    for &(xd, f, k, s, p) in all_cases().chain([&TILED_MANY]) {
        let wd = [f, xd[1], k.0, k.1];
        let x = uniform(numel(&xd), -1.0, 1.0, &mut rng);
        let w = uniform(numel(&wd), -1.0, 1.0, &mut rng);
        let xt = tensor(x.clone(), &xd).with_requires_grad();
        let wt = tensor(w.clone(), &wd).with_requires_grad();
        let y = xt.conv2d(&wt, None, s, p);
        let dy = uniform(y.numel(), -1.0, 1.0, &mut rng);
        y.mul(&tensor(dy.clone(), y.dims())).sum_all().backward();
        let [dx, dw, dx_abs, dw_abs] = conv_grads_reference((xd, f, k, s, p), &x, &w, &dy);
        let what = format!("{xd:?} k{k:?} s{s:?} p{p:?}");
        let (gx, gw) = (xt.grad().unwrap().to_vec(), wt.grad().unwrap().to_vec());
        assert_sum_close(&format!("dx {what}"), &gx, &dx, &dx_abs);
        assert_sum_close(&format!("dw {what}"), &gw, &dw, &dw_abs);
    }
}

/// The fused `relu(conv2d + bias)`: forward against the direct loops and backward against
/// finite differences with each filter's bias far enough from zero (±(c·kh·kw + 1), inputs in
/// [−1, 1]) that it is wholly on or wholly off, so no output sits near the ReLU's kink and both
/// sides of the mask are covered. Not over `TILED`: with outputs near ±73 on planes of
/// thousands, the f32 objective's rounding reaches the finite differences' tolerance (the
/// tiles' fused backward is checked against the unfused ops, whose gradients are checked
/// against direct sums).
#[test]
fn conv2d_bias_relu_matches_reference_and_finite_differences() {
    let mut rng = Rng::new(54);
    for &(xd, f, k, s, p) in CONV_CASES {
        let wd = [f, xd[1], k.0, k.1];
        let x = uniform(numel(&xd), -1.0, 1.0, &mut rng);
        let w = uniform(numel(&wd), -1.0, 1.0, &mut rng);
        let far = (xd[1] * k.0 * k.1 + 1) as f32;
        let b: Vec<f32> = (0..f)
            .map(|i| if i % 2 == 0 { far } else { -far })
            .collect();
        let what = format!("conv+bias+relu {xd:?} k{k:?} s{s:?} p{p:?}");
        let y = tensor(x.clone(), &xd).conv2d_bias_relu(
            &tensor(w.clone(), &wd),
            &tensor(b.clone(), &[f]),
            s,
            p,
        );
        let (want, od) = conv_reference((xd, f, k, s, p), &x, &w, &b);
        assert_eq!(y.dims(), od, "{what}");
        let want: Vec<f64> = want.iter().map(|v| v.max(0.0)).collect();
        assert_close(&what, &y.to_vec(), &want, 1e-5);
        check_grads(
            &what,
            &[tensor(x, &xd), tensor(w, &wd), tensor(b, &[f])],
            |t| t[0].conv2d_bias_relu(&t[1], &t[2], s, p),
        );
    }
}

/// With random biases (outputs on both sides of the kink within one filter), the fused op
/// gives the values and gradients of `relu(conv2d(x, w, b))` built from separate ops.
#[test]
fn conv2d_bias_relu_matches_the_unfused_ops() {
    let mut rng = Rng::new(55);
    for &(xd, f, k, s, p) in all_cases() {
        let wd = [f, xd[1], k.0, k.1];
        let x = uniform(numel(&xd), -1.0, 1.0, &mut rng);
        let w = uniform(numel(&wd), -1.0, 1.0, &mut rng);
        let b = uniform(f, -0.5, 0.5, &mut rng);
        let run = |fused: bool| {
            let leaves = [
                tensor(x.clone(), &xd).with_requires_grad(),
                tensor(w.clone(), &wd).with_requires_grad(),
                tensor(b.clone(), &[f]).with_requires_grad(),
            ];
            let [xt, wt, bt] = &leaves;
            let y = if fused {
                xt.conv2d_bias_relu(wt, bt, s, p)
            } else {
                xt.conv2d(wt, Some(bt), s, p).relu()
            };
            let weights = tensor(uniform(y.numel(), -1.0, 1.0, &mut Rng::new(7)), y.dims());
            y.mul(&weights).sum_all().backward();
            let grads = leaves.map(|l| l.grad().unwrap().to_vec());
            (y.to_vec(), grads)
        };
        let ((fused, fg), (plain, pg)) = (run(true), run(false));
        let what = format!("{xd:?} k{k:?} s{s:?} p{p:?}");
        assert_eq!(fused, plain, "forward {what}");
        for (name, (got, want)) in ["dx", "dw", "dbias"].iter().zip(fg.iter().zip(&pg)) {
            let want: Vec<f64> = want.iter().map(|&v| v as f64).collect();
            assert_close(&format!("{name} {what}"), got, &want, 1e-5);
        }
    }
}

fn pool_reference(
    kind: Pool,
    x: &[f32],
    xd: [usize; 4],
    k: (usize, usize),
    s: (usize, usize),
) -> (Vec<f64>, [usize; 4]) {
    let [n, c, h, w] = xd;
    let (oh, ow) = ((h - k.0) / s.0 + 1, (w - k.1) / s.1 + 1);
    let mut out = Vec::new();
    for plane in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let vals: Vec<f64> = (0..k.0)
                    .flat_map(|ky| (0..k.1).map(move |kx| (ky, kx)))
                    .map(|(ky, kx)| x[plane * h * w + (oy * s.0 + ky) * w + ox * s.1 + kx] as f64)
                    .collect();
                out.push(match kind {
                    Pool::Max => vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                    Pool::Avg => vals.iter().sum::<f64>() / vals.len() as f64,
                });
            }
        }
    }
    (out, [n, c, oh, ow])
}

/// (input, kernel, stride): tiling, overlapping, uneven sizes, 1×1 and whole-plane windows.
/// (input [n, c, h, w], kernel, stride)
type PoolCase = ([usize; 4], (usize, usize), (usize, usize));

const POOL_CASES: &[PoolCase] = &[
    ([1, 1, 4, 4], (2, 2), (2, 2)),
    ([2, 3, 7, 5], (2, 2), (2, 2)),
    ([1, 2, 7, 7], (3, 3), (2, 2)),
    ([2, 1, 5, 6], (2, 3), (1, 2)),
    ([1, 2, 3, 3], (1, 1), (1, 1)),
    ([2, 2, 4, 5], (4, 5), (1, 1)),
];

#[test]
fn pooling_forward_and_backward_for_every_kind() {
    let mut rng = Rng::new(52);
    for &kind in Pool::ALL {
        for &(xd, k, s) in POOL_CASES {
            // Distinct values: no ties for max, even after a finite-difference step.
            let x = distinct(numel(&xd), &mut rng);
            let y = tensor(x.clone(), &xd).pool2d(kind, k, s);
            let (want, od) = pool_reference(kind, &x, xd, k, s);
            assert_eq!(y.dims(), od);
            assert_close(
                &format!("{kind:?} {xd:?} k{k:?} s{s:?}"),
                &y.to_vec(),
                &want,
                1e-6,
            );
            check_grads(
                &format!("{kind:?} {xd:?} k{k:?} s{s:?}"),
                &[tensor(x, &xd)],
                |t| t[0].pool2d(kind, k, s),
            );
        }
    }
}

#[test]
fn large_convolution_takes_the_parallel_paths() {
    let mut rng = Rng::new(53);
    let (xd, f, k, s, p) = ([8, 3, 20, 20], 5, (3, 3), (1, 1), (1, 1));
    let x = uniform(numel(&xd), -1.0, 1.0, &mut rng);
    let wd = [f, 3, 3, 3];
    let w = uniform(numel(&wd), -1.0, 1.0, &mut rng);
    let b = vec![0.0; f];
    let y = tensor(x.clone(), &xd).conv2d(&tensor(w.clone(), &wd), None, s, p);
    let (want, _) = conv_reference((xd, f, k, s, p), &x, &w, &b);
    assert_close("large conv", &y.to_vec(), &want, 1e-5);
    // col2im over many images: the gradient of Σ conv wrt x equals the direct sum of weights
    // over each input's covering windows, checked on one image against a small run.
    let xt = tensor(x, &xd).with_requires_grad();
    xt.conv2d(&tensor(w.clone(), &wd), None, s, p)
        .sum_all()
        .backward();
    let g = xt.grad().unwrap().to_vec();
    let one = tensor(vec![0.5; 3 * 20 * 20], &[1, 3, 20, 20]).with_requires_grad();
    one.conv2d(&tensor(w, &wd), None, s, p).sum_all().backward();
    assert_eq!(&g[..1200], one.grad().unwrap().to_vec().as_slice());
    let pooled =
        tensor(distinct(8 * 3 * 40 * 40, &mut rng), &[8, 3, 40, 40]).max_pool2d((2, 2), (2, 2));
    assert_eq!(pooled.dims(), &[8, 3, 20, 20]);
}

/// Ties: the gradient of a max window goes to its first maximum (row by row), as PyTorch's
/// does, on the 2×2 stride-2 fast path and on the general path alike; an all-NaN window passes
/// none.
#[test]
fn max_pool_gradient_goes_to_the_first_maximum() {
    let x = vec![
        1.0,
        3.0,
        3.0,
        0.0, //
        3.0,
        2.0,
        3.0,
        3.0, //
        5.0,
        5.0,
        f32::NAN,
        f32::NAN, //
        5.0,
        5.0,
        f32::NAN,
        f32::NAN,
    ];
    for (k, s, want) in [
        // 2×2 windows, stride 2: maxima 3 (first at (0,1)), 3 (at (0,2)), 5 (at (2,0)), none.
        (
            (2, 2),
            (2, 2),
            vec![
                0.0, 1.0, 1.0, 0.0, //
                0.0, 0.0, 0.0, 0.0, //
                1.0, 0.0, 0.0, 0.0, //
                0.0, 0.0, 0.0, 0.0,
            ],
        ),
        // 2×2 windows, stride 1 (general path, overlapping): each of the 9 windows sends 1 to
        // its first maximum; NaN cells are skipped where a window also holds numbers.
        (
            (2, 2),
            (1, 1),
            vec![
                0.0, 2.0, 1.0, 0.0, //
                0.0, 0.0, 1.0, 0.0, //
                2.0, 2.0, 0.0, 0.0, //
                0.0, 0.0, 0.0, 0.0,
            ],
        ),
    ] {
        let t = tensor(x.clone(), &[1, 1, 4, 4]).with_requires_grad();
        t.max_pool2d(k, s).sum_all().backward();
        assert_eq!(
            t.grad().unwrap().to_vec(),
            want,
            "kernel {k:?} stride {s:?}"
        );
    }
}
