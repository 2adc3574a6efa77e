//! Half-precision products on the CPU, emulated: the operands are rounded to bf16 or f16 (to
//! nearest, ties to even, as the GPU's conversions) and back to f32, then multiplied by the f32
//! GEMM, which accumulates in f32 as cuBLAS's mixed GEMMs do. This reproduces the numerics of
//! `train.precision` for tests and for checking a model on a machine without a GPU; it is
//! slower than f32 (an extra pass over each operand), never faster.

use std::borrow::Cow;

use super::map1;
use crate::backend::precision::Precision;

/// `x` with every element rounded to `p` (borrowed unchanged for f32).
pub fn rounded(x: &[f32], p: Precision) -> Cow<'_, [f32]> {
    match p {
        Precision::F32 => Cow::Borrowed(x),
        p => Cow::Owned(map1(x, move |v| p.round(v))),
    }
}

/// `src` rounded to `p` into `dst` (a buffer reused across the steps of a recurrence).
pub fn round_into(dst: &mut [f32], src: &[f32], p: Precision) {
    dst.iter_mut().zip(src).for_each(|(d, &v)| *d = p.round(v));
}
