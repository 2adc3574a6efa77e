//! Where a 2-D window slides (convolution, im2col, pooling), and which convolution gradients to
//! compute.

use super::{AxisDims, MatmulSpec};

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

    /// `[n, channels, oh, ow]`.
    pub fn output_dims(&self, channels: usize) -> [usize; 4] {
        [self.n, channels, self.oh, self.ow]
    }

    /// The output `[n, f, oh·ow]` as `[outer, len, inner]` around its channel axis.
    pub fn channel_dims(&self, filters: usize) -> AxisDims {
        AxisDims {
            outer: self.n,
            len: filters,
            inner: self.oh * self.ow,
        }
    }

    /// Per image: y `[f, oh·ow]` = w `[f, c·kh·kw]` · cols `[c·kh·kw, oh·ow]`, w shared.
    pub fn forward_spec(&self, filters: usize) -> MatmulSpec {
        let (patch, plane) = (self.patch_len(), self.oh * self.ow);
        MatmulSpec {
            batch: self.n,
            m: filters,
            n: plane,
            k: patch,
            trans_a: false,
            trans_b: false,
            a_batch_stride: 0,
            b_batch_stride: patch * plane,
        }
    }

    /// Per image: dcols `[c·kh·kw, oh·ow]` = wᵀ · dy `[f, oh·ow]`, w shared.
    pub fn input_grad_spec(&self, filters: usize) -> MatmulSpec {
        let (patch, plane) = (self.patch_len(), self.oh * self.ow);
        MatmulSpec {
            batch: self.n,
            m: patch,
            n: plane,
            k: filters,
            trans_a: true,
            trans_b: false,
            a_batch_stride: 0,
            b_batch_stride: filters * plane,
        }
    }

    /// Per image: dw `[f, c·kh·kw]` = dy `[f, oh·ow]` · colsᵀ (summed over images after).
    pub fn weight_grad_spec(&self, filters: usize) -> MatmulSpec {
        let (patch, plane) = (self.patch_len(), self.oh * self.ow);
        MatmulSpec {
            batch: self.n,
            m: filters,
            n: patch,
            k: plane,
            trans_a: false,
            trans_b: true,
            a_batch_stride: filters * plane,
            b_batch_stride: patch * plane,
        }
    }
}

/// Which gradients a convolution's backward computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGrads {
    pub dx: bool,
    pub dw: bool,
    /// The epilogue's bias (only with the bias + ReLU epilogue).
    pub dbias: bool,
}
