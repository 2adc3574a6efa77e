//! 2-D max and average pooling over `[n, c, h, w]`, without padding (windows that do not fit
//! are dropped, as PyTorch's floor mode).

use super::conv::Conv2dGeom;
use crate::autograd::Backward;
use crate::tensor::{SharedStorage, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    Max,
    Avg,
}

impl Pool {
    pub const ALL: &'static [Pool] = &[Pool::Max, Pool::Avg];
}

impl Tensor {
    pub fn pool2d(&self, kind: Pool, kernel: (usize, usize), stride: (usize, usize)) -> Tensor {
        let g = Conv2dGeom::new(self.dims(), kernel, stride, (0, 0)).unwrap_or_else(|| {
            panic!(
                "pool2d: window {kernel:?} larger than input {}",
                self.shape()
            )
        });
        let y = crate::tensor::share(self.storage().pool2d_fwd(kind, &g));
        Tensor::from_op_shared(y.clone(), g.output_shape(g.c), &[self], || PoolBackward {
            kind,
            g,
            y,
        })
    }

    pub fn max_pool2d(&self, kernel: (usize, usize), stride: (usize, usize)) -> Tensor {
        self.pool2d(Pool::Max, kernel, stride)
    }

    pub fn avg_pool2d(&self, kernel: (usize, usize), stride: (usize, usize)) -> Tensor {
        self.pool2d(Pool::Avg, kernel, stride)
    }
}

struct PoolBackward {
    kind: Pool,
    g: Conv2dGeom,
    y: SharedStorage,
}

impl Backward for PoolBackward {
    fn backward(&self, dy: &Tensor, inputs: &[Tensor]) -> Vec<Option<Tensor>> {
        let x = &inputs[0];
        let y = self.y.read().expect("storage lock");
        let dx = x
            .storage()
            .pool2d_bwd(self.kind, &y, &dy.storage(), &self.g);
        vec![Some(Tensor::from_storage(dx, x.shape().clone()))]
    }
}
