//! 2-D max and average pooling over `[n, c, h, w]`, without padding (windows that do not fit
//! are dropped, as PyTorch's floor mode).

pub use crate::backend::spec::Pool;

use crate::autograd::Backward;
use crate::backend::spec::Conv2dGeom;
use crate::backend::Storage;
use crate::tensor::{Shape, Tensor};

impl Tensor {
    pub fn pool2d(&self, kind: Pool, kernel: (usize, usize), stride: (usize, usize)) -> Tensor {
        let g = Conv2dGeom::new(self.dims(), kernel, stride, (0, 0)).unwrap_or_else(|| {
            panic!(
                "pool2d: window {kernel:?} larger than input {}",
                self.shape()
            )
        });
        let shape = Shape::from(g.output_dims(g.c));
        let recording = crate::autograd::is_grad_enabled() && self.requires_grad();
        if kind == Pool::Max && recording {
            let (y, argmax) = self.storage().max_pool2d_fwd(&g);
            return Tensor::from_op(y, shape, &[self], || PoolBackward {
                g,
                argmax: Some(argmax),
            });
        }
        let y = self.storage().pool2d_fwd(kind, &g);
        Tensor::from_op(y, shape, &[self], || PoolBackward { g, argmax: None })
    }

    pub fn max_pool2d(&self, kernel: (usize, usize), stride: (usize, usize)) -> Tensor {
        self.pool2d(Pool::Max, kernel, stride)
    }

    pub fn avg_pool2d(&self, kernel: (usize, usize), stride: (usize, usize)) -> Tensor {
        self.pool2d(Pool::Avg, kernel, stride)
    }
}

/// Max pooling keeps each window's argmax from the forward pass (a recorded max pool always
/// has one); average pooling (`None`) needs nothing.
struct PoolBackward {
    g: Conv2dGeom,
    argmax: Option<Storage>,
}

impl Backward for PoolBackward {
    fn backward(&self, dy: &Tensor, inputs: &[Tensor]) -> Vec<Option<Tensor>> {
        let dy = dy.storage();
        let dx = match &self.argmax {
            Some(argmax) => argmax.max_pool2d_bwd(&dy, &self.g),
            None => dy.avg_pool2d_bwd(&self.g),
        };
        vec![Some(Tensor::from_storage(dx, inputs[0].shape().clone()))]
    }
}
