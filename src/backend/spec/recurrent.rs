//! The LSTM's extents: one step (the fused cell) and a whole sequence.

/// One LSTM step over a batch: `rows` sequences, `units` per state. Its tensors are the gate
/// pre-activations `[rows, 4·units]` in PyTorch's order (i, f, g, o), the states `[rows,
/// units]`, the step mask `[rows]` and the output `[rows, 2·units]` (h, then c).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LstmDims {
    pub rows: usize,
    pub units: usize,
}

/// One LSTM direction over whole sequences: `batch` sequences of `len` steps, `units` per
/// state, run from the last step to the first when `reverse`. Its tensors, batch-major: the
/// input's share of the gates with both biases `xw` `[batch, len, 4·units]`, the recurrent
/// weights `w_hh` `[4·units, units]`, the step mask `[batch, len]` (1 at a real step; at a
/// padded one the states carry over), the output h after every step `[batch, len, units]`, and
/// the saved record of every step `[batch, len, SAVED·units]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LstmSeqDims {
    pub batch: usize,
    pub len: usize,
    pub units: usize,
    pub reverse: bool,
    /// Whether to keep the saved record (for a backward); without it the record comes back
    /// empty, and inference holds only one step's states.
    pub record: bool,
}

impl LstmSeqDims {
    /// Values saved per step and row, in units: the states before the step (h, c), the gates
    /// i, f, g, o and tanh of the new cell state.
    pub const SAVED: usize = 7;

    /// The steps in the order the recurrence visits them.
    pub fn steps(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len).map(move |i| if self.reverse { self.len - 1 - i } else { i })
    }

    /// The step the recurrence visits first (its states before it are 0).
    pub fn first_step(&self) -> usize {
        if self.reverse {
            self.len.saturating_sub(1)
        } else {
            0
        }
    }

    pub fn cell(&self) -> LstmDims {
        LstmDims {
            rows: self.batch,
            units: self.units,
        }
    }
}
