//! 2-D pooling windows (their geometry is a `Conv2dGeom` without padding).

use super::OpCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    Max,
    Avg,
}

impl Pool {
    pub const ALL: &'static [Pool] = &[Pool::Max, Pool::Avg];
}

impl OpCode for Pool {
    const FAMILY: &'static str = "POOL";

    fn all() -> &'static [Pool] {
        Pool::ALL
    }

    fn name(self) -> &'static str {
        match self {
            Pool::Max => "max",
            Pool::Avg => "avg",
        }
    }
}
