//! Backends: where tensor data lives and the primitive kernels that compute on it.
//!
//! A tensor's data is a [`Storage`], an enum with one variant per backend, chosen at run time
//! (no backend type parameter runs through tensors or layers). Each backend implements the
//! [`Backend`] trait, the complete list of primitives the ops in `crate::ops` are written in; the
//! `Storage` methods below only dispatch to the backend that holds the data. Adding a backend
//! means one more variant, one more `Backend` impl and one more arm in each dispatch, and no
//! change to an op definition.

//!
//! The backend depends on nothing else in the crate: the op descriptors its kernels take live in
//! [`spec`], and the ops above build them from tensor shapes.

pub mod cpu;
pub mod cuda;
pub mod lstm_seq;
pub mod precision;
pub mod spec;
mod storage;

pub use precision::{autocast, Autocast, Precision};
pub use storage::{Device, DeviceError, Storage};

use spec::{
    AdamStep, AxisDims, Binary, BroadcastPlan, Conv2dGeom, ConvGrads, LstmDims, LstmSeqDims,
    MatmulSpec, Pool, Reduce, SgdStep, SoftmaxKind, Unary,
};

/// The primitives every backend provides. Shapes arrive already checked and reduced to the
/// plain extents a kernel needs; a backend never sees autograd.
pub trait Backend {
    type Buf;

    fn full(len: usize, value: f32) -> Self::Buf;

    fn unary_fwd(op: Unary, x: &Self::Buf) -> Self::Buf;
    /// dx from the input, the output and dy (each op reads the ones its derivative needs).
    fn unary_bwd(op: Unary, x: &Self::Buf, y: &Self::Buf, dy: &Self::Buf) -> Self::Buf;

    fn binary_fwd(op: Binary, a: &Self::Buf, b: &Self::Buf, plan: &BroadcastPlan) -> Self::Buf;

    /// Reduce `[outer, len, inner]` over `len` into `[outer, inner]`.
    fn reduce_fwd(op: Reduce, x: &Self::Buf, d: AxisDims) -> Self::Buf;
    /// dx of a max reduction: dy routed to the first position that holds the maximum.
    fn max_bwd(x: &Self::Buf, y: &Self::Buf, dy: &Self::Buf, d: AxisDims) -> Self::Buf;
    /// Repeat `[outer, inner]` along a new middle axis into `[outer, len, inner]`.
    fn expand_axis(x: &Self::Buf, d: AxisDims) -> Self::Buf;

    fn softmax_fwd(kind: SoftmaxKind, x: &Self::Buf, d: AxisDims) -> Self::Buf;
    fn softmax_bwd(kind: SoftmaxKind, y: &Self::Buf, dy: &Self::Buf, d: AxisDims) -> Self::Buf;

    fn matmul(a: &Self::Buf, b: &Self::Buf, spec: &MatmulSpec) -> Self::Buf;

    /// `[n, c, h, w]` → `[n, c·kh·kw, oh·ow]`: per image, one row per kernel cell (channel, ky,
    /// kx) holding the input under it at every output position (zeros over padding).
    fn im2col(x: &Self::Buf, g: &Conv2dGeom) -> Self::Buf;
    /// Inverse of `im2col`: every entry added back into `[n, c, h, w]` where it was read.
    fn col2im(cols: &Self::Buf, g: &Conv2dGeom) -> Self::Buf;
    /// 2-D convolution: x `[n, c, h, w]`, w `[f, c·kh·kw]` → `[n, f, oh·ow]`, followed by
    /// `relu(y + bias)` when `bias_relu` holds a bias `[f]`. By default im2col over the whole
    /// batch, one product per image with the shared weights, then the bias and ReLU.
    fn conv2d_fwd(
        x: &Self::Buf,
        w: &Self::Buf,
        bias_relu: Option<&Self::Buf>,
        g: &Conv2dGeom,
        filters: usize,
    ) -> Self::Buf {
        let y = Self::matmul(w, &Self::im2col(x, g), &g.forward_spec(filters));
        match bias_relu {
            Some(b) => Self::bias_relu_fwd(&y, b, g.channel_dims(filters)),
            None => y,
        }
    }
    /// Gradients of `conv2d_fwd` from dy `[n, f, oh·ow]`, each when `want` asks for it: dx
    /// `[n, c, h, w]`, dw `[f, c·kh·kw]` and (with the epilogue, whose output `relu_out` is)
    /// dbias `[f]`, both summed over the batch. By default composed of the ReLU's gradient,
    /// im2col, per-image products, col2im and a sum over the batch.
    #[allow(clippy::type_complexity)]
    fn conv2d_bwd(
        x: &Self::Buf,
        w: &Self::Buf,
        dy: &Self::Buf,
        relu_out: Option<&Self::Buf>,
        g: &Conv2dGeom,
        filters: usize,
        want: ConvGrads,
    ) -> (Option<Self::Buf>, Option<Self::Buf>, Option<Self::Buf>) {
        let (masked, dbias) = match relu_out {
            Some(y) => {
                let (m, db) = Self::bias_relu_bwd(y, dy, g.channel_dims(filters));
                (Some(m), Some(db))
            }
            None => (None, None),
        };
        let dy = masked.as_ref().unwrap_or(dy);
        let dx = want
            .dx
            .then(|| Self::col2im(&Self::matmul(w, dy, &g.input_grad_spec(filters)), g));
        let dw = want.dw.then(|| {
            let per_image = Self::matmul(dy, &Self::im2col(x, g), &g.weight_grad_spec(filters));
            let d = AxisDims {
                outer: 1,
                len: g.n,
                inner: filters * g.patch_len(),
            };
            Self::reduce_fwd(Reduce::Sum, &per_image, d)
        });
        (dx, dw, dbias.filter(|_| want.dbias))
    }
    fn pool2d_fwd(kind: Pool, x: &Self::Buf, g: &Conv2dGeom) -> Self::Buf;
    /// Max pooling for training: the output and each window's argmax (the first position
    /// holding the maximum, as an index into the window; −1 when the window holds no number).
    fn max_pool2d_fwd(x: &Self::Buf, g: &Conv2dGeom) -> (Self::Buf, Self::Buf);
    /// dx of max pooling: each window's dy at its argmax.
    fn max_pool2d_bwd(argmax: &Self::Buf, dy: &Self::Buf, g: &Conv2dGeom) -> Self::Buf;
    /// dx of average pooling: each window's dy spread evenly over it.
    fn avg_pool2d_bwd(dy: &Self::Buf, g: &Conv2dGeom) -> Self::Buf;

    /// Copy `x` of shape `dims` into the axis order `perm` (output axis i = input axis perm[i]).
    fn permute(x: &Self::Buf, dims: &[usize], perm: &[usize]) -> Self::Buf;
    /// `[outer, start..start+len, inner]` of `[outer, d.len, inner]`.
    fn slice_axis(x: &Self::Buf, d: AxisDims, start: usize, len: usize) -> Self::Buf;
    /// Inverse of `slice_axis`: `x` of `[outer, d.len, inner]` placed at `start` in zeros of
    /// `[outer, full_len, inner]`.
    fn pad_axis(x: &Self::Buf, d: AxisDims, start: usize, full_len: usize) -> Self::Buf;
    /// Concatenate `[outer, lens[i], inner]` parts along the middle axis.
    fn cat_axis(parts: &[&Self::Buf], outer: usize, lens: &[usize], inner: usize) -> Self::Buf;
    /// Rows `idx` of `x` seen as `[rows, row_len]`.
    fn gather_rows(x: &Self::Buf, row_len: usize, idx: &[u32]) -> Self::Buf;
    /// Inverse of `gather_rows`: `dy` rows added into zeros of `[rows, row_len]` at `idx`.
    fn scatter_add_rows(dy: &Self::Buf, rows: usize, row_len: usize, idx: &[u32]) -> Self::Buf;

    /// Mean over `n` rows of `-log softmax(logits)[target]`; logits `[n, c]`, targets holds class
    /// indices as f32. Output has one element.
    fn cross_entropy_fwd(logits: &Self::Buf, targets: &Self::Buf, n: usize, c: usize) -> Self::Buf;
    /// `(softmax(logits) - onehot(target)) * dloss / n`.
    fn cross_entropy_bwd(
        logits: &Self::Buf,
        targets: &Self::Buf,
        dloss: &Self::Buf,
        n: usize,
        c: usize,
    ) -> Self::Buf;

    /// One SGD step in place; `momentum` is the buffer when momentum is on.
    fn sgd_update(p: &mut Self::Buf, g: &Self::Buf, momentum: Option<&mut Self::Buf>, h: &SgdStep);
    /// One Adam/AdamW step in place on the parameter and its moment estimates.
    fn adam_update(
        p: &mut Self::Buf,
        g: &Self::Buf,
        m: &mut Self::Buf,
        v: &mut Self::Buf,
        h: &AdamStep,
    );

    /// `relu(x + bias)`, `bias` `[d.len]` along the middle axis of `[outer, len, inner]`.
    fn bias_relu_fwd(x: &Self::Buf, bias: &Self::Buf, d: AxisDims) -> Self::Buf;
    /// From `y = relu(x + bias)` and dy: dx (dy where y > 0) and dbias (dx summed per channel).
    fn bias_relu_bwd(y: &Self::Buf, dy: &Self::Buf, d: AxisDims) -> (Self::Buf, Self::Buf);

    /// One LSTM step: from the gates' two summands `xt`, `hw` `[rows, 4·units]` (i, f, g, o),
    /// the states `h`, `c` and the step mask `keep` `[rows]`, the new `[h, c]` per row (the
    /// old ones where `keep` is 0) and the activations the backward needs.
    fn lstm_cell_fwd(
        xt: &Self::Buf,
        hw: &Self::Buf,
        h: &Self::Buf,
        c: &Self::Buf,
        keep: &Self::Buf,
        d: LstmDims,
    ) -> (Self::Buf, Self::Buf);
    /// The step's backward: (d gates, d h, d c) from the saved activations, the old `c`, the
    /// mask and d `[h, c]`.
    fn lstm_cell_bwd(
        saved: &Self::Buf,
        c: &Self::Buf,
        keep: &Self::Buf,
        dy: &Self::Buf,
        d: LstmDims,
    ) -> (Self::Buf, Self::Buf, Self::Buf);

    /// One LSTM direction over whole sequences (see `LstmSeqDims`): from the input's share of
    /// the gates `xw`, the gates' bias `[4·units]`, the recurrent weights and the step mask,
    /// the output h after every step and the saved record of every step. By default composed
    /// of products and the fused cell, step by step.
    fn lstm_seq_fwd(
        xw: &Self::Buf,
        bias: &Self::Buf,
        w_hh: &Self::Buf,
        keep: &Self::Buf,
        d: LstmSeqDims,
    ) -> (Self::Buf, Self::Buf) {
        lstm_seq::forward::<Self>(xw, bias, w_hh, keep, d)
    }
    /// Its backward from the saved record and dy `[batch, len, units]`: (d xw, d bias,
    /// d w_hh).
    fn lstm_seq_bwd(
        saved: &Self::Buf,
        w_hh: &Self::Buf,
        keep: &Self::Buf,
        dy: &Self::Buf,
        d: LstmSeqDims,
    ) -> (Self::Buf, Self::Buf, Self::Buf) {
        lstm_seq::backward::<Self>(saved, w_hh, keep, dy, d)
    }

    /// Batch normalization in training mode over `[outer, c, inner]`, statistics per c:
    /// (y = x̂·w + b, x̂, the batch mean, the batch's biased variance).
    fn batch_norm_fwd(
        x: &Self::Buf,
        w: &Self::Buf,
        b: &Self::Buf,
        d: AxisDims,
        eps: f32,
    ) -> (Self::Buf, Self::Buf, Self::Buf, Self::Buf);
    /// Its backward from x̂, the batch variance, w and dy: (dx, dw, db).
    fn batch_norm_bwd(
        x_hat: &Self::Buf,
        var: &Self::Buf,
        w: &Self::Buf,
        dy: &Self::Buf,
        d: AxisDims,
        eps: f32,
    ) -> (Self::Buf, Self::Buf, Self::Buf);

    /// A dropout mask: 0 with probability `rate`, else 1 / (1 − rate); element i drawn from
    /// (seed, first + i) alone, the same on every backend; `first` places a shard of a larger
    /// mask (a rank's rows of the global batch), 0 for a whole one.
    fn dropout_mask(len: usize, rate: f32, seed: u64, first: u64) -> Self::Buf;
}
