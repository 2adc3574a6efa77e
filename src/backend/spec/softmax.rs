//! Softmax and log-softmax along the middle axis of `[outer, len, inner]`.

use super::OpCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoftmaxKind {
    Softmax,
    LogSoftmax,
}

impl SoftmaxKind {
    pub const ALL: &'static [SoftmaxKind] = &[SoftmaxKind::Softmax, SoftmaxKind::LogSoftmax];
}

impl OpCode for SoftmaxKind {
    const FAMILY: &'static str = "SOFTMAX";

    fn all() -> &'static [SoftmaxKind] {
        SoftmaxKind::ALL
    }

    fn name(self) -> &'static str {
        match self {
            SoftmaxKind::Softmax => "softmax",
            SoftmaxKind::LogSoftmax => "log_softmax",
        }
    }
}
