//! `relu(x + bias)` in one pass, with its backward (the input's gradient and the bias's sum) in
//! one pass too: the epilogue of a dense or convolution layer with a ReLU, which would otherwise
//! cross its whole output four times (add, relu, relu's gradient, the bias's reduction).

use crate::autograd::Backward;
use crate::tensor::{AxisDims, SharedStorage, Tensor};

impl Tensor {
    /// `relu(self + bias)`, `bias` `[c]` broadcast along `axis` (of size c) of `self`: axis 1
    /// for `[n, units]` and for `[n, channels, h, w]`.
    pub fn bias_relu(&self, bias: &Tensor, axis: usize) -> Tensor {
        let d = self.shape().axis_dims(axis);
        assert_eq!(
            bias.dims(),
            [d.len],
            "bias_relu: bias {} for axis {axis} of {}",
            bias.shape(),
            self.shape()
        );
        let y = crate::tensor::share(self.storage().bias_relu_fwd(&bias.storage(), d));
        Tensor::from_op_shared(y.clone(), self.shape().clone(), &[self, bias], || {
            BiasReluBackward { d, y }
        })
    }
}

struct BiasReluBackward {
    d: AxisDims,
    /// The output: its positive entries are where the gradient passes.
    y: SharedStorage,
}

impl Backward for BiasReluBackward {
    fn backward(&self, dy: &Tensor, inputs: &[Tensor]) -> Vec<Option<Tensor>> {
        let y = self.y.read().expect("storage lock");
        let (dx, dbias) = y.bias_relu_bwd(&dy.storage(), self.d);
        let (x, bias) = (&inputs[0], &inputs[1]);
        vec![
            x.requires_grad()
                .then(|| Tensor::from_storage(dx, x.shape().clone())),
            bias.requires_grad()
                .then(|| Tensor::from_storage(dbias, bias.shape().clone())),
        ]
    }
}
