//! Elementwise unary ops: activations, exp/log, powers and scalar arithmetic.

use super::OpCode;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    Neg,
    Abs,
    Exp,
    Log,
    Sqrt,
    Relu,
    /// Slope for negative inputs (PyTorch's default is 0.01).
    LeakyRelu(f32),
    /// The exact GELU, x·Φ(x).
    Gelu,
    Sigmoid,
    Tanh,
    /// log(1 + eˣ), computed without overflow.
    Softplus,
    /// x·σ(x) (SiLU, swish).
    Silu,
    /// min(max(x, lo), hi).
    Clamp(f32, f32),
    /// x^p for a constant p.
    Pow(f32),
    AddScalar(f32),
    MulScalar(f32),
}

impl Unary {
    /// Every op, with representative constants: tests loop over this list.
    pub const ALL: &'static [Unary] = &[
        Unary::Neg,
        Unary::Abs,
        Unary::Exp,
        Unary::Log,
        Unary::Sqrt,
        Unary::Relu,
        Unary::LeakyRelu(0.01),
        Unary::Gelu,
        Unary::Sigmoid,
        Unary::Tanh,
        Unary::Softplus,
        Unary::Silu,
        Unary::Clamp(-0.5, 1.0),
        Unary::Pow(3.0),
        Unary::Pow(-1.5),
        Unary::AddScalar(2.5),
        Unary::MulScalar(-0.75),
    ];

    /// The op's constants as a kernel takes them (`a`, `b`; 0 when unused).
    pub fn constants(self) -> (f32, f32) {
        match self {
            Unary::LeakyRelu(a) | Unary::Pow(a) | Unary::AddScalar(a) | Unary::MulScalar(a) => {
                (a, 0.0)
            }
            Unary::Clamp(lo, hi) => (lo, hi),
            _ => (0.0, 0.0),
        }
    }
}

impl OpCode for Unary {
    const FAMILY: &'static str = "UNARY";

    fn all() -> &'static [Unary] {
        Unary::ALL
    }

    fn name(self) -> &'static str {
        match self {
            Unary::Neg => "neg",
            Unary::Abs => "abs",
            Unary::Exp => "exp",
            Unary::Log => "log",
            Unary::Sqrt => "sqrt",
            Unary::Relu => "relu",
            Unary::LeakyRelu(_) => "leaky_relu",
            Unary::Gelu => "gelu",
            Unary::Sigmoid => "sigmoid",
            Unary::Tanh => "tanh",
            Unary::Softplus => "softplus",
            Unary::Silu => "silu",
            Unary::Clamp(..) => "clamp",
            Unary::Pow(_) => "pow",
            Unary::AddScalar(_) => "add_scalar",
            Unary::MulScalar(_) => "mul_scalar",
        }
    }
}
