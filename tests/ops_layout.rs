//! Reshape, permute/transpose, narrow, index_select and cat: forward values and gradients.

mod common;

use common::*;
use kiln::{Rng, Tensor};

#[test]
fn reshape_keeps_data_and_routes_gradients() {
    let mut rng = Rng::new(30);
    let x = uniform(24, -1.0, 1.0, &mut rng);
    for dims in [&[24][..], &[2, 12], &[2, 3, 4], &[4, 1, 6, 1]] {
        let y = tensor(x.clone(), &[6, 4]).reshape(dims);
        assert_eq!(y.dims(), dims);
        assert_eq!(y.to_vec(), x);
        check_grads(
            &format!("reshape {dims:?}"),
            &[tensor(x.clone(), &[6, 4])],
            |t| t[0].reshape(dims).mul_scalar(2.0),
        );
    }
}

/// Every permutation of `n` axes.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

#[test]
fn permute_forward_and_backward_for_every_permutation() {
    let mut rng = Rng::new(31);
    for dims in [&[7, 5][..], &[2, 3, 4], &[2, 1, 3, 2]] {
        for perm in permutations(dims.len()) {
            let x = uniform(numel(dims), -1.0, 1.0, &mut rng);
            let y = tensor(x.clone(), dims).permute(&perm);
            let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
            assert_eq!(y.dims(), out_dims.as_slice());
            let got = y.to_vec();
            for (o, &v) in got.iter().enumerate() {
                let oi = unravel(o, &out_dims);
                let mut xi = vec![0; dims.len()];
                for (ax, &p) in perm.iter().enumerate() {
                    xi[p] = oi[ax];
                }
                assert_eq!(v, x[ravel(&xi, dims)], "permute {dims:?} {perm:?}");
            }
            check_grads(
                &format!("permute {dims:?} {perm:?}"),
                &[tensor(x, dims)],
                |t| t[0].permute(&perm),
            );
        }
    }
    let t = tensor((0..6).map(|v| v as f32).collect(), &[2, 3]).transpose(0, 1);
    assert_eq!(
        (t.dims(), t.to_vec()),
        (&[3, 2][..], vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0])
    );
}

#[test]
fn narrow_forward_and_backward_along_each_axis() {
    let mut rng = Rng::new(32);
    let dims = [4, 5, 3];
    for axis in 0..3 {
        for (start, len) in [(0, 1), (1, 2), (0, dims[axis]), (dims[axis] - 1, 1)] {
            let x = uniform(numel(&dims), -1.0, 1.0, &mut rng);
            let y = tensor(x.clone(), &dims).narrow(axis, start, len);
            let mut out_dims = dims.to_vec();
            out_dims[axis] = len;
            assert_eq!(y.dims(), out_dims.as_slice());
            for (o, &v) in y.to_vec().iter().enumerate() {
                let mut idx = unravel(o, &out_dims);
                idx[axis] += start;
                assert_eq!(v, x[ravel(&idx, &dims)]);
            }
            check_grads(
                &format!("narrow {axis} {start} {len}"),
                &[tensor(x, &dims)],
                |t| t[0].narrow(axis, start, len),
            );
        }
    }
}

#[test]
fn index_select_gathers_rows_and_scatters_gradients_back() {
    let mut rng = Rng::new(33);
    for dims in [&[5, 3][..], &[4], &[3, 2, 2]] {
        let x = uniform(numel(dims), -1.0, 1.0, &mut rng);
        let rows = dims[0];
        let idx: Vec<u32> = vec![(rows - 1) as u32, 0, 1, 1, 0];
        let y = tensor(x.clone(), dims).index_select(&idx);
        let row_len = numel(dims) / rows;
        let want: Vec<f32> = idx
            .iter()
            .flat_map(|&i| x[i as usize * row_len..][..row_len].to_vec())
            .collect();
        assert_eq!(y.to_vec(), want);
        assert_eq!(y.dims()[0], idx.len());
        // Repeated rows receive the sum of their gradients.
        check_grads(&format!("index_select {dims:?}"), &[tensor(x, dims)], |t| {
            t[0].index_select(&idx)
        });
    }
}

#[test]
fn cat_joins_along_each_axis() {
    let mut rng = Rng::new(34);
    for axis in 0..3 {
        let shapes: Vec<Vec<usize>> = [1, 3, 2]
            .iter()
            .map(|&len| {
                let mut d = vec![2, 3, 4];
                d[axis] = len;
                d
            })
            .collect();
        let parts: Vec<Tensor> = shapes
            .iter()
            .map(|d| tensor(uniform(numel(d), -1.0, 1.0, &mut rng), d))
            .collect();
        let y = Tensor::cat(&parts, axis);
        let mut out_dims = vec![2, 3, 4];
        out_dims[axis] = 6;
        assert_eq!(y.dims(), out_dims.as_slice());
        let got = y.to_vec();
        for (o, &v) in got.iter().enumerate() {
            let mut idx = unravel(o, &out_dims);
            let mut part = 0;
            while idx[axis] >= shapes[part][axis] {
                idx[axis] -= shapes[part][axis];
                part += 1;
            }
            assert_eq!(v, parts[part].to_vec()[ravel(&idx, &shapes[part])]);
        }
        check_grads(&format!("cat axis {axis}"), &parts, |t| {
            Tensor::cat(t, axis)
        });
    }
}

#[test]
fn large_permutes_take_the_tiled_and_parallel_paths() {
    let mut rng = Rng::new(35);
    // [4, 100, 90]: 36,000 elements, above the parallel threshold; both transposes of a
    // conv output ([n, h·w, f] ↔ [n, f, h·w]) and a general 3-axis permutation.
    let dims = [4, 100, 90];
    let x = uniform(numel(&dims), -1.0, 1.0, &mut rng);
    for perm in [vec![0, 2, 1], vec![1, 0, 2], vec![2, 1, 0], vec![1, 2, 0]] {
        let y = tensor(x.clone(), &dims).permute(&perm).to_vec();
        let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
        for (o, &v) in y.iter().enumerate().step_by(7) {
            let oi = unravel(o, &out_dims);
            let mut xi = vec![0; 3];
            for (ax, &p) in perm.iter().enumerate() {
                xi[p] = oi[ax];
            }
            assert_eq!(v, x[ravel(&xi, &dims)], "permute {perm:?}");
        }
    }
    let t = tensor(x[..100 * 90].to_vec(), &[100, 90])
        .transpose(0, 1)
        .to_vec();
    assert_eq!(t[5 * 100 + 7], x[7 * 90 + 5]);
}
