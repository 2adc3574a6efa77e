//! Reductions over the middle axis of `[outer, len, inner]`.

use super::OpCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    Sum,
    Mean,
    Max,
}

impl Reduce {
    pub const ALL: &'static [Reduce] = &[Reduce::Sum, Reduce::Mean, Reduce::Max];
}

impl OpCode for Reduce {
    const FAMILY: &'static str = "REDUCE";

    fn all() -> &'static [Reduce] {
        Reduce::ALL
    }

    fn name(self) -> &'static str {
        match self {
            Reduce::Sum => "sum",
            Reduce::Mean => "mean",
            Reduce::Max => "max",
        }
    }
}
