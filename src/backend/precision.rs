//! Mixed precision as PyTorch's autocast has it: tensors stay f32 everywhere, and the matrix
//! products (dense layers, the GEMMs of convolutions, attention and recurrent layers) take their
//! operands rounded to a 16-bit format and accumulate in f32. Everything else (elementwise ops,
//! softmax, losses, norms, reductions, optimizer updates) runs in f32, and so do the master
//! weights and optimizer state.
//!
//! The precision is a property of the thread that runs the ops, set for a scope by [`autocast`]
//! (as `torch.autocast` is a thread-local context): training sets it around its loop; eval,
//! predict, serve and export never do, so they compute in f32. The backends read it at each
//! product: CUDA casts the operands to bf16/f16 and calls cuBLAS's mixed GEMM; the CPU rounds
//! them to the format and back (an emulation for checking numerics, not for speed).

use std::cell::Cell;

/// The format of a matrix product's operands. The products accumulate in f32 in every case.
/// In configs: `"f32"`, `"bf16"`, `"f16"`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    /// bfloat16: f32's 8 exponent bits and 8 significant bits (unit roundoff 2^-8).
    Bf16,
    /// IEEE binary16: 5 exponent bits (largest finite 65504) and 11 significant bits (unit
    /// roundoff 2^-11); gradients need loss scaling to stay in its range.
    F16,
}

impl Precision {
    pub const ALL: [Precision; 3] = [Precision::F32, Precision::Bf16, Precision::F16];

    /// The config's word for it.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }

    pub fn from_name(name: &str) -> Option<Precision> {
        Precision::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The unit roundoff of rounding to nearest in the operand format: half the distance
    /// between 1 and the next value (0 for f32 operands, which are not rounded).
    pub fn unit_roundoff(self) -> f32 {
        match self {
            Precision::F32 => 0.0,
            Precision::Bf16 => 2f32.powi(-8),
            Precision::F16 => 2f32.powi(-11),
        }
    }

    /// `x` rounded to the operand format and back to f32, rounding to nearest with ties to
    /// even, as the hardware's conversions (`cvt.rn`) do: NaN stays NaN, values beyond the
    /// format's range become ±inf (f16 above 65504), and f16's subnormals keep what bits they
    /// can.
    #[inline]
    pub fn round(self, x: f32) -> f32 {
        match self {
            Precision::F32 => x,
            Precision::Bf16 => half::bf16::from_f32(x).to_f32(),
            Precision::F16 => half::f16::from_f32(x).to_f32(),
        }
    }
}

thread_local! {
    static CURRENT: Cell<Precision> = const { Cell::new(Precision::F32) };
}

/// The precision of this thread's matrix products.
pub fn current() -> Precision {
    CURRENT.with(Cell::get)
}

/// Run this thread's matrix products in `p` until the guard drops (the previous setting then
/// returns, so scopes nest).
pub fn autocast(p: Precision) -> Autocast {
    let previous = CURRENT.with(|c| c.replace(p));
    Autocast { previous }
}

/// The scope of an [`autocast`].
#[must_use = "the precision returns to the previous one when the guard drops"]
pub struct Autocast {
    previous: Precision,
}

impl Drop for Autocast {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_restore() {
        assert_eq!(current(), Precision::F32);
        {
            let _a = autocast(Precision::Bf16);
            assert_eq!(current(), Precision::Bf16);
            {
                let _b = autocast(Precision::F16);
                assert_eq!(current(), Precision::F16);
            }
            assert_eq!(current(), Precision::Bf16);
        }
        assert_eq!(current(), Precision::F32);
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        let bf = Precision::Bf16;
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even significand (1).
        assert_eq!(bf.round(1.0 + 2f32.powi(-8)), 1.0);
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
        assert_eq!(bf.round(1.0 + 3.0 * 2f32.powi(-8)), 1.0 + 2f32.powi(-6));
        // Just above the halfway point rounds up.
        assert_eq!(
            bf.round(1.0 + 2f32.powi(-8) + 2f32.powi(-20)),
            1.0 + 2f32.powi(-7)
        );
        let h = Precision::F16;
        assert_eq!(h.round(1.0 + 2f32.powi(-11)), 1.0);
        assert_eq!(h.round(65504.0), 65504.0);
        // Beyond f16's range (65520 and up round past 65504): infinity.
        assert_eq!(h.round(65520.0), f32::INFINITY);
        assert_eq!(h.round(-1e6), f32::NEG_INFINITY);
        assert!(h.round(f32::NAN).is_nan() && bf.round(f32::NAN).is_nan());
        // bf16 keeps f32's range.
        assert_eq!(bf.round(1e30), half::bf16::from_f32(1e30).to_f32());
        assert!(bf.round(1e30).is_finite());
        // f16's smallest subnormal is 2^-24; half of it ties to 0.
        assert_eq!(h.round(2f32.powi(-24)), 2f32.powi(-24));
        assert_eq!(h.round(2f32.powi(-25)), 0.0);
        assert_eq!(Precision::F32.round(0.1), 0.1);
    }

    #[test]
    fn rounding_error_is_within_the_unit_roundoff() {
        let mut x = 0.3117f32;
        for _ in 0..1000 {
            x = (x * 3.7 + 0.13) % 1000.0 - 500.0;
            for p in [Precision::Bf16, Precision::F16] {
                let r = p.round(x);
                assert!(
                    (r - x).abs() <= p.unit_roundoff() * x.abs(),
                    "{p:?}: {x} -> {r}"
                );
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for p in Precision::ALL {
            assert_eq!(Precision::from_name(p.name()), Some(p));
        }
        assert_eq!(Precision::from_name("fp16"), None);
    }
}
