//! Matrix products, 2-D and batched, with transpose flags so backward passes never copy a
//! transpose.

pub use crate::backend::spec::MatmulSpec;

use crate::autograd::Backward;
use crate::tensor::{Shape, Tensor};

impl Tensor {
    /// `self · other`.
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        self.matmul_t(other, false, false)
    }

    /// `op(self) · op(other)`, op transposing the last two axes where its flag is set.
    ///
    /// Shapes: both at least 2-D; leading (batch) dimensions equal, or one operand 2-D and
    /// shared by every matrix of the other (a convolution's weights over images). `other` 2-D
    /// and `self` N-D without `trans_a` (a linear layer over extra leading axes) is computed as
    /// one 2-D product.
    pub fn matmul_t(&self, other: &Tensor, trans_a: bool, trans_b: bool) -> Tensor {
        let (a, b) = (self, other);
        assert!(
            a.rank() >= 2 && b.rank() >= 2,
            "matmul needs 2-D or batched operands, got {} and {}",
            a.shape(),
            b.shape()
        );
        let (ar, br) = (a.rank(), b.rank());
        if br == 2 && ar > 2 && !trans_a {
            let rows = a.numel() / a.dims()[ar - 1];
            let y = a
                .reshape([rows, a.dims()[ar - 1]])
                .matmul_t(b, false, trans_b);
            let mut dims = a.dims()[..ar - 1].to_vec();
            dims.push(y.dims()[1]);
            return y.reshape(dims);
        }
        let last2 = |t: &Tensor, trans: bool| {
            let (r, c) = (t.dims()[t.rank() - 2], t.dims()[t.rank() - 1]);
            if trans {
                (c, r)
            } else {
                (r, c)
            }
        };
        let ((m, k), (kb, n)) = (last2(a, trans_a), last2(b, trans_b));
        let batch_dims = if ar > 2 {
            &a.dims()[..ar - 2]
        } else {
            &b.dims()[..br - 2]
        };
        let fits = |t: &Tensor| t.rank() == 2 || &t.dims()[..t.rank() - 2] == batch_dims;
        assert!(
            k == kb && fits(a) && fits(b),
            "matmul: shapes {} (trans {trans_a}) and {} (trans {trans_b}) do not multiply",
            a.shape(),
            b.shape()
        );
        let batch: usize = batch_dims.iter().product();
        // A 2-D operand beside a batched one is shared: stride 0 between its "matrices".
        let spec = MatmulSpec {
            batch,
            m,
            n,
            k,
            trans_a,
            trans_b,
            a_batch_stride: if ar > 2 { m * k } else { 0 },
            b_batch_stride: if br > 2 { k * n } else { 0 },
        };
        let y = a.storage().matmul(&b.storage(), &spec);
        let mut dims = batch_dims.to_vec();
        dims.extend([m, n]);
        Tensor::from_op(y, Shape::new(dims), &[a, b], || MatmulBackward {
            trans_a,
            trans_b,
        })
    }
}

struct MatmulBackward {
    trans_a: bool,
    trans_b: bool,
}

impl Backward for MatmulBackward {
    /// For C = op(A)·op(B): dop(A) = dC·op(B)ᵀ and dop(B) = op(A)ᵀ·dC, arranged so each result
    /// lands in its operand's stored layout. A shared 2-D operand's gradient is the sum of its
    /// per-matrix gradients.
    fn backward(&self, dy: &Tensor, inputs: &[Tensor]) -> Vec<Option<Tensor>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let (ta, tb) = (self.trans_a, self.trans_b);
        let da = a.requires_grad().then(|| {
            let g = if ta {
                b.matmul_t(dy, tb, true)
            } else {
                dy.matmul_t(b, false, !tb)
            };
            sum_to_shared(g, a)
        });
        let db = b.requires_grad().then(|| {
            let g = if tb {
                dy.matmul_t(a, true, ta)
            } else {
                a.matmul_t(dy, !ta, false)
            };
            sum_to_shared(g, b)
        });
        vec![da, db]
    }
}

/// The gradient `g` of one operand, summed over the batch when the operand was a shared 2-D
/// matrix (`g` is then `[batch..., r, c]`).
fn sum_to_shared(g: Tensor, operand: &Tensor) -> Tensor {
    if operand.rank() == 2 && g.rank() > 2 {
        let (r, c) = (operand.dims()[0], operand.dims()[1]);
        g.reshape([g.numel() / (r * c), r, c]).sum(0, false)
    } else {
        g
    }
}
