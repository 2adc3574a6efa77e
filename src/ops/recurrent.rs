//! The LSTM as ops: one fused step (gates, new cell and hidden state, and the step mask in one
//! pass each way; composed from elementwise ops the same step takes about twenty ops, each with
//! its own buffer and autograd node), and one direction over whole sequences, whose backward
//! gives the recurrent weights' gradient in one product over every step instead of one small
//! product and one gradient sum per step.

use crate::autograd::Backward;
use crate::backend::spec::{LstmDims, LstmSeqDims};
use crate::backend::Storage;
use crate::tensor::Tensor;

impl Tensor {
    /// One LSTM step, PyTorch's gate order (i, f, g, o): `self` and `hw` are the two summands
    /// of the gates' pre-activations `[rows, 4·units]` (the input's and the state's share),
    /// `h` and `c` the states `[rows, units]`, `keep` `[rows]` 1 for a real step and 0 for
    /// padding (the states carry over). Returns `[rows, 2·units]`: the new h, then the new c.
    /// `keep` takes no gradient.
    pub fn lstm_cell(&self, hw: &Tensor, h: &Tensor, c: &Tensor, keep: &Tensor) -> Tensor {
        let (rows, g) = (self.dims()[0], self.dims()[1]);
        let units = g / 4;
        let d = LstmDims { rows, units };
        assert!(
            self.dims() == [rows, 4 * units]
                && hw.dims() == self.dims()
                && h.dims() == [rows, units]
                && c.dims() == h.dims()
                && keep.dims() == [rows],
            "lstm_cell: gates {} and {}, h {}, c {}, keep {}",
            self.shape(),
            hw.shape(),
            h.shape(),
            c.shape(),
            keep.shape()
        );
        let (y, saved) = Storage::lstm_cell_fwd(
            &self.storage(),
            &hw.storage(),
            &h.storage(),
            &c.storage(),
            &keep.storage(),
            d,
        );
        Tensor::from_op(y, [rows, 2 * units].into(), &[self, hw, h, c, keep], || {
            LstmCellBackward { d, saved }
        })
    }
}

impl Tensor {
    /// One LSTM direction over whole sequences: `self` is the input's share of the gates
    /// `[batch, len, 4·units]` (PyTorch's order i, f, g, o), `bias` the gates' bias `[4·units]`
    /// (PyTorch's two summed), `w_hh` the recurrent weights `[4·units, units]`, `keep` `[batch, len]` 1 at a real step and 0 at padding
    /// (the states carry over). Runs from the last step to the first when `reverse`, from zero
    /// states. Returns h after every step `[batch, len, units]`. `keep` takes no gradient.
    pub fn lstm_sequence(
        &self,
        bias: &Tensor,
        w_hh: &Tensor,
        keep: &Tensor,
        reverse: bool,
    ) -> Tensor {
        let (batch, len, g) = (self.dims()[0], self.dims()[1], self.dims()[2]);
        let units = g / 4;
        assert!(
            self.rank() == 3
                && g == 4 * units
                && bias.dims() == [g]
                && w_hh.dims() == [g, units]
                && keep.dims() == [batch, len],
            "lstm_sequence: gates {}, bias {}, w_hh {}, keep {}",
            self.shape(),
            bias.shape(),
            w_hh.shape(),
            keep.shape()
        );
        let d = LstmSeqDims {
            batch,
            len,
            units,
            reverse,
            record: crate::autograd::is_grad_enabled()
                && [self, bias, w_hh].iter().any(|t| t.requires_grad()),
        };
        let (y, saved) = Storage::lstm_seq_fwd(
            &self.storage(),
            &bias.storage(),
            &w_hh.storage(),
            &keep.storage(),
            d,
        );
        Tensor::from_op(
            y,
            [batch, len, units].into(),
            &[self, bias, w_hh, keep],
            || LstmSequenceBackward { d, saved },
        )
    }
}

struct LstmSequenceBackward {
    d: LstmSeqDims,
    /// Every step's states before it and activations (`LstmSeqDims::SAVED`).
    saved: Storage,
}

impl Backward for LstmSequenceBackward {
    fn backward(&self, dy: &Tensor, inputs: &[Tensor]) -> Vec<Option<Tensor>> {
        let (w_hh, keep) = (&inputs[2], &inputs[3]);
        let (dxw, dbias, dw) =
            self.saved
                .lstm_seq_bwd(&w_hh.storage(), &keep.storage(), &dy.storage(), self.d);
        let grad = |i: usize, g: Storage| {
            inputs[i]
                .requires_grad()
                .then(|| Tensor::from_storage(g, inputs[i].shape().clone()))
        };
        vec![grad(0, dxw), grad(1, dbias), grad(2, dw), None]
    }
}

struct LstmCellBackward {
    d: LstmDims,
    /// The step's activations: i, f, g, o and tanh of the new cell state, per row.
    saved: Storage,
}

impl Backward for LstmCellBackward {
    fn backward(&self, dy: &Tensor, inputs: &[Tensor]) -> Vec<Option<Tensor>> {
        let (c, keep) = (&inputs[3], &inputs[4]);
        let (dz, dh, dc) =
            self.saved
                .lstm_cell_bwd(&c.storage(), &keep.storage(), &dy.storage(), self.d);
        let dz = Tensor::from_storage(dz, inputs[0].shape().clone());
        let want = |i: usize| inputs[i].requires_grad();
        vec![
            want(0).then(|| dz.clone()),
            want(1).then(|| dz.clone()),
            want(2).then(|| Tensor::from_storage(dh, inputs[2].shape().clone())),
            want(3).then(|| Tensor::from_storage(dc, inputs[3].shape().clone())),
            None,
        ]
    }
}
