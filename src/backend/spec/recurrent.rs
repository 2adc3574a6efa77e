//! The fused LSTM cell's extents.

/// One LSTM step over a batch: `rows` sequences, `units` per state. Its tensors are the gate
/// pre-activations `[rows, 4·units]` in PyTorch's order (i, f, g, o), the states `[rows,
/// units]`, the step mask `[rows]` and the output `[rows, 2·units]` (h, then c).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LstmDims {
    pub rows: usize,
    pub units: usize,
}
