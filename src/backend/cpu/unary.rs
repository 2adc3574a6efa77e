//! Elementwise unary ops on the CPU: each op's value and derivative side by side.

use std::f32::consts::FRAC_1_SQRT_2;

use super::{map1, map2};
use crate::backend::spec::Unary;

/// 1 / sqrt(2π), for the normal density in GELU's derivative.
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

pub(super) use super::vmath::{sigmoid, tanh};

/// Φ(v), the standard normal CDF.
fn normal_cdf(v: f32) -> f32 {
    0.5 * (1.0 + libm::erff(v * FRAC_1_SQRT_2))
}

/// ReLU: a comparison rather than `max`, so a NaN input stays NaN, as in PyTorch.
#[inline(always)]
pub(super) fn relu(v: f32) -> f32 {
    if v < 0.0 {
        0.0
    } else {
        v
    }
}

/// ReLU's gradient: `g` where `v > 0`, else 0, picked with a bit mask rather than a branch so
/// loops over it vectorise (with a branch the compiler kept a conditional load per element).
#[inline(always)]
pub(super) fn relu_grad(v: f32, g: f32) -> f32 {
    let keep = ((v > 0.0) as u32).wrapping_neg();
    f32::from_bits(g.to_bits() & keep)
}

pub fn forward(op: Unary, x: &[f32]) -> Vec<f32> {
    match op {
        Unary::Neg => map1(x, |v| -v),
        Unary::Abs => map1(x, f32::abs),
        Unary::Exp => map1(x, f32::exp),
        Unary::Log => map1(x, f32::ln),
        Unary::Sqrt => map1(x, f32::sqrt),
        Unary::Relu => map1(x, relu),
        Unary::LeakyRelu(slope) => map1(x, |v| if v < 0.0 { slope * v } else { v }),
        // Exact GELU, v·Φ(v) (PyTorch's default, approximate = "none").
        Unary::Gelu => map1(x, |v| v * normal_cdf(v)),
        Unary::Sigmoid => map1(x, sigmoid),
        Unary::Tanh => map1(x, tanh),
        // max(x, 0) + log(1 + e^-|x|): exp never overflows.
        Unary::Softplus => map1(x, |v| v.max(0.0) + (-v.abs()).exp().ln_1p()),
        Unary::Silu => map1(x, |v| v * sigmoid(v)),
        Unary::Clamp(lo, hi) => map1(x, |v| v.max(lo).min(hi)),
        Unary::Pow(p) => map1(x, |v| v.powf(p)),
        Unary::AddScalar(c) => map1(x, |v| v + c),
        Unary::MulScalar(c) => map1(x, |v| v * c),
    }
}

pub fn backward(op: Unary, x: &[f32], y: &[f32], dy: &[f32]) -> Vec<f32> {
    match op {
        Unary::Neg => map1(dy, |g| -g),
        // d|x|/dx = sign(x), 0 at 0 as in PyTorch.
        Unary::Abs => map2(x, dy, |v, g| {
            if v > 0.0 {
                g
            } else if v < 0.0 {
                -g
            } else {
                0.0
            }
        }),
        Unary::Exp => map2(y, dy, |y, g| g * y),
        Unary::Log => map2(x, dy, |v, g| g / v),
        Unary::Sqrt => map2(y, dy, |y, g| g * 0.5 / y),
        Unary::Relu => map2(x, dy, relu_grad),
        Unary::LeakyRelu(slope) => map2(x, dy, |v, g| if v > 0.0 { g } else { slope * g }),
        // d/dv v·Φ(v) = Φ(v) + v·φ(v)
        Unary::Gelu => map2(x, dy, |v, g| {
            let pdf = FRAC_1_SQRT_2PI * (-0.5 * v * v).exp();
            g * (normal_cdf(v) + v * pdf)
        }),
        Unary::Sigmoid => map2(y, dy, |y, g| g * y * (1.0 - y)),
        Unary::Tanh => map2(y, dy, |y, g| g * (1.0 - y * y)),
        Unary::Softplus => map2(x, dy, |v, g| g * sigmoid(v)),
        // d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x)))
        Unary::Silu => map2(x, dy, |v, g| {
            let s = sigmoid(v);
            g * s * (1.0 + v * (1.0 - s))
        }),
        // Gradient passes where the input is inside the range (PyTorch: including the bounds).
        Unary::Clamp(lo, hi) => map2(x, dy, |v, g| if v < lo || v > hi { 0.0 } else { g }),
        Unary::Pow(p) => map2(x, dy, |v, g| g * p * v.powf(p - 1.0)),
        Unary::AddScalar(_) => dy.to_vec(),
        Unary::MulScalar(c) => map1(dy, |g| g * c),
    }
}
