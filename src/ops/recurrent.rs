//! The fused LSTM step: gates, new cell and hidden state, and the step mask in one pass each
//! way. Composed from elementwise ops the same step takes about twenty ops, each with its own
//! buffer and autograd node, 28 times per sequence; this is what makes an LSTM train at the
//! speed of its matrix products.

use crate::autograd::Backward;
use crate::backend::spec::LstmDims;
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
