//! Data movement: permutes, slices along an axis, concatenation, row gathers and their inverses.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::{filled, new_rows, PARALLEL_MIN};
use crate::backend::spec::AxisDims;

/// Merge output axes that are also adjacent and in order in the input, and drop size-1 axes:
/// `[n, oh, ow, f]` by `[0, 3, 1, 2]` becomes `[n, oh·ow, f]` by `[0, 2, 1]`.
fn collapse(dims: &[usize], perm: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let kept: Vec<usize> = perm.iter().copied().filter(|&p| dims[p] != 1).collect();
    let mut groups: Vec<Vec<usize>> = Vec::new(); // input axes per merged axis, in output order
    for &p in &kept {
        match groups.last_mut() {
            Some(g) if *g.last().expect("groups are never empty") + 1 == p => g.push(p),
            _ => groups.push(vec![p]),
        }
    }
    let mut by_input: Vec<usize> = (0..groups.len()).collect();
    by_input.sort_by_key(|&g| groups[g][0]);
    let merged_dims: Vec<usize> = by_input
        .iter()
        .map(|&g| groups[g].iter().map(|&a| dims[a]).product())
        .collect();
    let merged_perm: Vec<usize> = (0..groups.len())
        .map(|g| {
            by_input
                .iter()
                .position(|&x| x == g)
                .expect("a permutation")
        })
        .collect();
    (merged_dims, merged_perm)
}

/// Output axis `i` is input axis `perm[i]`.
pub fn permute(x: &[f32], dims: &[usize], perm: &[usize]) -> Vec<f32> {
    let (dims, perm) = collapse(dims, perm);
    match perm.as_slice() {
        [] | [0] | [0, 1] | [0, 1, 2] => x.to_vec(),
        [1, 0] => transpose_batched(x, 1, dims[0], dims[1]),
        [0, 2, 1] => transpose_batched(x, dims[0], dims[1], dims[2]),
        _ => permute_strided(x, &dims, &perm),
    }
}

/// `[b, rows, cols]` → `[b, cols, rows]`, in 32×32 tiles so reads and writes both stay in cache.
fn transpose_batched(x: &[f32], batch: usize, rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 32;
    let plane = rows * cols;
    let one = |src: &[f32], dst: &mut [MaybeUninit<f32>]| {
        for r0 in (0..rows).step_by(TILE) {
            for c0 in (0..cols).step_by(TILE) {
                for c in c0..(c0 + TILE).min(cols) {
                    for r in r0..(r0 + TILE).min(rows) {
                        dst[c * rows + r].write(src[r * cols + c]);
                    }
                }
            }
        }
    };
    filled(x.len(), |slots| {
        if x.len() < PARALLEL_MIN || batch < 2 {
            for (src, dst) in x
                .chunks_exact(plane.max(1))
                .zip(slots.chunks_mut(plane.max(1)))
            {
                one(src, dst);
            }
        } else {
            x.par_chunks_exact(plane)
                .zip(slots.par_chunks_mut(plane))
                .for_each(|(src, dst)| one(src, dst));
        }
    })
}

/// Any permutation: each output row gathered with the input's stride.
fn permute_strided(x: &[f32], dims: &[usize], perm: &[usize]) -> Vec<f32> {
    let rank = dims.len();
    let mut in_strides = vec![1; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        in_strides[i] = in_strides[i + 1] * dims[i + 1];
    }
    let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
    let strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let inner = out_dims[rank - 1];
    let inner_stride = strides[rank - 1];
    new_rows(x.len(), inner, x.len(), |first, rows| {
        for (r, row) in rows.chunks_mut(inner).enumerate() {
            // Offset of this output row's first element in the input.
            let mut rest = first + r;
            let mut offset = 0;
            for ax in (0..rank - 1).rev() {
                offset += (rest % out_dims[ax]) * strides[ax];
                rest /= out_dims[ax];
            }
            for (j, o) in row.iter_mut().enumerate() {
                *o = x[offset + j * inner_stride];
            }
        }
    })
}

pub fn slice_axis(x: &[f32], d: AxisDims, start: usize, len: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(d.outer * len * d.inner);
    for o in 0..d.outer {
        let from = (o * d.len + start) * d.inner;
        out.extend_from_slice(&x[from..from + len * d.inner]);
    }
    out
}

pub fn pad_axis(x: &[f32], d: AxisDims, start: usize, full_len: usize) -> Vec<f32> {
    let mut out = vec![0.0; d.outer * full_len * d.inner];
    let part = d.len * d.inner;
    for o in 0..d.outer {
        let to = (o * full_len + start) * d.inner;
        out[to..to + part].copy_from_slice(&x[o * part..][..part]);
    }
    out
}

pub fn cat_axis(parts: &[&Vec<f32>], outer: usize, lens: &[usize], inner: usize) -> Vec<f32> {
    let total: usize = lens.iter().sum();
    let mut out = Vec::with_capacity(outer * total * inner);
    for o in 0..outer {
        for (part, &len) in parts.iter().zip(lens) {
            out.extend_from_slice(&part[o * len * inner..][..len * inner]);
        }
    }
    out
}

pub fn gather_rows(x: &[f32], row_len: usize, idx: &[u32]) -> Vec<f32> {
    new_rows(
        idx.len() * row_len,
        row_len,
        idx.len() * row_len,
        |first, rows| {
            for (r, row) in rows.chunks_mut(row_len).enumerate() {
                let src = idx[first + r] as usize * row_len;
                row.copy_from_slice(&x[src..src + row_len]);
            }
        },
    )
}

/// Sequential on purpose: rows may repeat, and a fixed order keeps the sums bitwise stable.
pub fn scatter_add_rows(dy: &[f32], rows: usize, row_len: usize, idx: &[u32]) -> Vec<f32> {
    let mut out = vec![0.0; rows * row_len];
    for (r, &i) in idx.iter().enumerate() {
        let dst = &mut out[i as usize * row_len..][..row_len];
        for (o, &g) in dst.iter_mut().zip(&dy[r * row_len..][..row_len]) {
            *o += g;
        }
    }
    out
}
