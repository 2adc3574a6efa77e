//! Data movement: permutes, slices along an axis, concatenation, row gathers and their inverses.

use super::for_rows;
use crate::tensor::AxisDims;

/// Output axis `i` is input axis `perm[i]`.
pub fn permute(x: &[f32], dims: &[usize], perm: &[usize]) -> Vec<f32> {
    let rank = dims.len();
    let mut in_strides = vec![1; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        in_strides[i] = in_strides[i + 1] * dims[i + 1];
    }
    let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
    let strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let mut out = vec![0.0; x.len()];
    if rank == 0 {
        out.copy_from_slice(x);
        return out;
    }
    let inner = out_dims[rank - 1];
    let inner_stride = strides[rank - 1];
    for_rows(&mut out, inner, x.len(), |first, rows| {
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
    });
    out
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
    let mut out = vec![0.0; idx.len() * row_len];
    for_rows(&mut out, row_len, idx.len() * row_len, |first, rows| {
        for (r, row) in rows.chunks_mut(row_len).enumerate() {
            let src = idx[first + r] as usize * row_len;
            row.copy_from_slice(&x[src..src + row_len]);
        }
    });
    out
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
