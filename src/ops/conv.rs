//! Convolution by im2col: per image, the input under each kernel cell at every output position
//! becomes a row of a matrix `[c·kh·kw, oh·ow]`, so a convolution is one matrix product per
//! image with the shared weights (PyTorch layout `[out, in, kh, kw]`), landing directly in
//! `[n, out, oh, ow]`. `im2col` is an op of its own (gradient: `col2im`, each entry added back
//! where it was read); `conv2d` is one primitive per backend, so a backend may fuse the steps
//! (the CPU unfolds one image at a time into a cache-sized buffer instead of the whole batch).

pub use crate::backend::spec::{Conv2dGeom, ConvGrads};

use crate::autograd::Backward;
use crate::tensor::{share, Shape, SharedStorage, Tensor};

impl Tensor {
    /// `[n, c, h, w]` → `[n, c·kh·kw, oh·ow]`: per image, one row per kernel cell (channel,
    /// ky, kx) holding the input under that cell at every output position (zeros where the
    /// window covers padding).
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
            Shape::from([g.n, g.patch_len(), g.oh * g.ow]),
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
        let y = self.conv2d_with(weight, None, stride, pad);
        match bias {
            Some(b) => y.add(&b.reshape([b.numel(), 1, 1])),
            None => y,
        }
    }

    /// `relu(conv2d(self, weight, bias))` as one op: the bias and ReLU run on each image's
    /// output while it is in cache, and the backward masks dy there too.
    pub fn conv2d_bias_relu(
        &self,
        weight: &Tensor,
        bias: &Tensor,
        stride: (usize, usize),
        pad: (usize, usize),
    ) -> Tensor {
        self.conv2d_with(weight, Some(bias), stride, pad)
    }

    fn conv2d_with(
        &self,
        weight: &Tensor,
        bias_relu: Option<&Tensor>,
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
        let y = match bias_relu {
            None => self.storage().conv2d_fwd(&weight.storage(), None, &g, f),
            Some(b) => {
                assert_eq!(b.dims(), [f], "conv2d: bias {} for {f} filters", b.shape());
                let b = b.storage();
                self.storage()
                    .conv2d_fwd(&weight.storage(), Some(&b), &g, f)
            }
        };
        let y = share(y);
        let relu_out = bias_relu.map(|_| y.clone());
        let inputs: Vec<&Tensor> = [self, weight].into_iter().chain(bias_relu).collect();
        Tensor::from_op_shared(y, Shape::from(g.output_dims(f)), &inputs, || {
            Conv2dBackward {
                g,
                filters: f,
                relu_out,
            }
        })
    }
}

struct Conv2dBackward {
    g: Conv2dGeom,
    filters: usize,
    /// The output, when the bias + ReLU epilogue ran: its positive entries pass the gradient.
    relu_out: Option<SharedStorage>,
}

impl Backward for Conv2dBackward {
    fn backward(&self, dy: &Tensor, inputs: &[Tensor]) -> Vec<Option<Tensor>> {
        let (x, w, bias) = (&inputs[0], &inputs[1], inputs.get(2));
        let want = ConvGrads {
            dx: x.requires_grad(),
            dw: w.requires_grad(),
            dbias: bias.is_some_and(Tensor::requires_grad),
        };
        let relu_out = self
            .relu_out
            .as_ref()
            .map(|y| y.read().expect("storage lock"));
        let [dx, dw, db] = x.storage().conv2d_bwd(
            &w.storage(),
            &dy.storage(),
            relu_out.as_deref(),
            &self.g,
            self.filters,
            want,
        );
        let mut grads = vec![
            dx.map(|d| Tensor::from_storage(d, x.shape().clone())),
            dw.map(|d| Tensor::from_storage(d, w.shape().clone())),
        ];
        if let Some(b) = bias {
            grads.push(db.map(|d| Tensor::from_storage(d, b.shape().clone())));
        }
        grads
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
