//! Convolution by im2col: the patches under every output position become rows of a matrix, so
//! a convolution is one matrix product with the weights (PyTorch layout `[out, in, kh, kw]`).
//! `im2col` is the op with a gradient rule (`col2im`: each patch gradient added back where it
//! came from); `conv2d` composes it with matmul, bias and a permute.

use crate::autograd::Backward;
use crate::tensor::{Shape, Tensor};

/// Where a 2-D window slides over `[n, c, h, w]`: kernel, stride, zero padding, output size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Conv2dGeom {
    /// `None` when the window does not fit the padded input even once.
    pub fn new(
        dims: &[usize],
        kernel: (usize, usize),
        stride: (usize, usize),
        pad: (usize, usize),
    ) -> Option<Self> {
        assert_eq!(dims.len(), 4, "2-D windows need [n, c, h, w], got {dims:?}");
        let (n, c, h, w) = (dims[0], dims[1], dims[2], dims[3]);
        let (kh, kw, sh, sw, ph, pw) = (
            kernel.0,
            kernel.1,
            stride.0.max(1),
            stride.1.max(1),
            pad.0,
            pad.1,
        );
        if kh == 0 || kw == 0 || h + 2 * ph < kh || w + 2 * pw < kw {
            return None;
        }
        let (oh, ow) = ((h + 2 * ph - kh) / sh + 1, (w + 2 * pw - kw) / sw + 1);
        Some(Conv2dGeom {
            n,
            c,
            h,
            w,
            kh,
            kw,
            sh,
            sw,
            ph,
            pw,
            oh,
            ow,
        })
    }

    /// Elements per im2col row: one patch, ordered (channel, ky, kx) as the weights flatten.
    pub fn patch_len(&self) -> usize {
        self.c * self.kh * self.kw
    }

    pub fn rows(&self) -> usize {
        self.n * self.oh * self.ow
    }

    pub fn output_shape(&self, channels: usize) -> Shape {
        Shape::from([self.n, channels, self.oh, self.ow])
    }
}

impl Tensor {
    /// `[n, c, h, w]` → `[n·oh·ow, c·kh·kw]`: one row per output position holding its patch
    /// (zeros where the window covers padding).
    pub fn im2col(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
        pad: (usize, usize),
    ) -> Tensor {
        let g = Conv2dGeom::new(self.dims(), kernel, stride, pad).unwrap_or_else(|| {
            panic!(
                "im2col: kernel {kernel:?} larger than padded input {}",
                self.shape()
            )
        });
        let cols = self.storage().im2col(&g);
        Tensor::from_op(
            cols,
            Shape::from([g.rows(), g.patch_len()]),
            &[self],
            || Im2colBackward { g },
        )
    }

    /// 2-D convolution (cross-correlation, as PyTorch's `conv2d`): `x` `[n, c, h, w]`, `weight`
    /// `[f, c, kh, kw]`, `bias` `[f]` → `[n, f, oh, ow]`.
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: (usize, usize),
        pad: (usize, usize),
    ) -> Tensor {
        let wd = weight.dims();
        assert!(
            wd.len() == 4 && self.rank() == 4 && wd[1] == self.dims()[1],
            "conv2d: input {} and weight {} do not fit",
            self.shape(),
            weight.shape()
        );
        let f = wd[0];
        let g = Conv2dGeom::new(self.dims(), (wd[2], wd[3]), stride, pad).unwrap_or_else(|| {
            panic!(
                "conv2d: kernel {:?} larger than padded input {}",
                &wd[2..],
                self.shape()
            )
        });
        let cols = self.im2col((g.kh, g.kw), (g.sh, g.sw), (g.ph, g.pw));
        let mut y = cols.matmul_t(&weight.reshape([f, g.patch_len()]), false, true); // [n·oh·ow, f]
        if let Some(b) = bias {
            y = y.add(b);
        }
        y.reshape([g.n, g.oh, g.ow, f]).permute(&[0, 3, 1, 2])
    }
}

struct Im2colBackward {
    g: Conv2dGeom,
}

impl Backward for Im2colBackward {
    fn backward(&self, dy: &Tensor, inputs: &[Tensor]) -> Vec<Option<Tensor>> {
        let dx = dy.storage().col2im(&self.g);
        vec![Some(Tensor::from_storage(dx, inputs[0].shape().clone()))]
    }
}
