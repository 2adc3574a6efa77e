//! Shape and layout ops: reshape, permute/transpose, slicing and gathering along an axis,
//! concatenation.

use crate::autograd::Backward;
use crate::backend::Storage;
use crate::tensor::{AxisDims, Shape, Tensor};

impl Tensor {
    /// The same data with another shape of the same size; shares the data, copies nothing.
    pub fn reshape(&self, shape: impl Into<Shape>) -> Tensor {
        let shape = shape.into();
        assert_eq!(
            shape.numel(),
            self.numel(),
            "cannot reshape {} into {shape}",
            self.shape()
        );
        Tensor::from_op_shared(self.shared_storage().clone(), shape, &[self], || {
            ReshapeBackward
        })
    }

    /// Axis `i` of the result is axis `perm[i]` of `self`.
    pub fn permute(&self, perm: &[usize]) -> Tensor {
        let mut seen = vec![false; self.rank()];
        for &p in perm {
            assert!(
                p < self.rank() && !seen[p],
                "permute: {perm:?} is not a permutation of the axes of {}",
                self.shape()
            );
            seen[p] = true;
        }
        assert_eq!(
            perm.len(),
            self.rank(),
            "permute: {perm:?} for shape {}",
            self.shape()
        );
        let y = self.storage().permute(self.dims(), perm);
        let dims: Vec<usize> = perm.iter().map(|&p| self.dims()[p]).collect();
        Tensor::from_op(y, Shape::new(dims), &[self], || PermuteBackward {
            perm: perm.to_vec(),
        })
    }

    /// Swap two axes (a copy).
    pub fn transpose(&self, axis0: usize, axis1: usize) -> Tensor {
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(axis0, axis1);
        self.permute(&perm)
    }

    /// `len` entries of `axis` starting at `start` (row slicing is `narrow(0, ..)`).
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Tensor {
        let d = self.shape().axis_dims(axis);
        assert!(
            start + len <= d.len,
            "narrow: {start}..{} out of range for axis {axis} of {}",
            start + len,
            self.shape()
        );
        let y = self.storage().slice_axis(d, start, len);
        Tensor::from_op(y, self.shape().with_axis(axis, Some(len)), &[self], || {
            NarrowBackward { d, start, len }
        })
    }

    /// The rows (entries of axis 0) at `idx`, in that order; rows may repeat (batch gathering).
    pub fn index_select(&self, idx: &[u32]) -> Tensor {
        assert!(self.rank() >= 1, "index_select on a scalar");
        let rows = self.dims()[0];
        if let Some(&bad) = idx.iter().find(|&&i| i as usize >= rows) {
            panic!(
                "index_select: row {bad} out of range for shape {}",
                self.shape()
            );
        }
        let row_len = self.numel() / rows.max(1);
        let y = self.storage().gather_rows(row_len, idx);
        Tensor::from_op(
            y,
            self.shape().with_axis(0, Some(idx.len())),
            &[self],
            || IndexSelectBackward { idx: idx.to_vec() },
        )
    }

    /// Join tensors along `axis`; all other dimensions must agree.
    pub fn cat(parts: &[Tensor], axis: usize) -> Tensor {
        assert!(!parts.is_empty(), "cat of no tensors");
        let first = parts[0].shape();
        for p in parts {
            assert!(
                p.rank() == first.rank()
                    && (0..first.rank()).all(|i| i == axis || p.dims()[i] == first.dim(i)),
                "cat along axis {axis}: shapes {first} and {} differ elsewhere",
                p.shape()
            );
        }
        let d = first.axis_dims(axis);
        let lens: Vec<usize> = parts.iter().map(|p| p.dims()[axis]).collect();
        let guards: Vec<_> = parts.iter().map(|p| p.storage()).collect();
        let refs: Vec<&Storage> = guards.iter().map(|g| &**g).collect();
        let y = Storage::cat_axis(&refs, d.outer, &lens, d.inner);
        drop(guards);
        let shape = first.with_axis(axis, Some(lens.iter().sum()));
        let inputs: Vec<&Tensor> = parts.iter().collect();
        Tensor::from_op(y, shape, &inputs, || CatBackward { axis, lens })
    }
}

struct ReshapeBackward;

impl Backward for ReshapeBackward {
    fn backward(&self, dy: &Tensor, inputs: &[Tensor]) -> Vec<Option<Tensor>> {
        vec![Some(dy.reshape(inputs[0].shape().clone()))]
    }
}

struct PermuteBackward {
    perm: Vec<usize>,
}

impl Backward for PermuteBackward {
    fn backward(&self, dy: &Tensor, _inputs: &[Tensor]) -> Vec<Option<Tensor>> {
        let mut inverse = vec![0; self.perm.len()];
        for (i, &p) in self.perm.iter().enumerate() {
            inverse[p] = i;
        }
        vec![Some(dy.permute(&inverse))]
    }
}

struct NarrowBackward {
    d: AxisDims,
    start: usize,
    len: usize,
}

impl Backward for NarrowBackward {
    fn backward(&self, dy: &Tensor, inputs: &[Tensor]) -> Vec<Option<Tensor>> {
        let small = AxisDims {
            len: self.len,
            ..self.d
        };
        let dx = dy.storage().pad_axis(small, self.start, self.d.len);
        vec![Some(Tensor::from_storage(dx, inputs[0].shape().clone()))]
    }
}

struct IndexSelectBackward {
    idx: Vec<u32>,
}

impl Backward for IndexSelectBackward {
    fn backward(&self, dy: &Tensor, inputs: &[Tensor]) -> Vec<Option<Tensor>> {
        let x = &inputs[0];
        let rows = x.dims()[0];
        let dx = dy
            .storage()
            .scatter_add_rows(rows, x.numel() / rows.max(1), &self.idx);
        vec![Some(Tensor::from_storage(dx, x.shape().clone()))]
    }
}

struct CatBackward {
    axis: usize,
    lens: Vec<usize>,
}

impl Backward for CatBackward {
    fn backward(&self, dy: &Tensor, inputs: &[Tensor]) -> Vec<Option<Tensor>> {
        let d = dy.shape().axis_dims(self.axis);
        let mut start = 0;
        let mut grads = Vec::with_capacity(inputs.len());
        for (x, &len) in inputs.iter().zip(&self.lens) {
            grads.push(x.requires_grad().then(|| {
                Tensor::from_storage(dy.storage().slice_axis(d, start, len), x.shape().clone())
            }));
            start += len;
        }
        grads
    }
}
