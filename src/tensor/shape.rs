//! Shapes: dimension lists and the index arithmetic every op shares.

use std::fmt;

pub use crate::backend::spec::AxisDims;

/// A tensor's dimensions, outermost first (row-major). A scalar has no dimensions.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<usize>);

impl Shape {
    pub fn new(dims: impl Into<Vec<usize>>) -> Shape {
        Shape(dims.into())
    }

    pub fn scalar() -> Shape {
        Shape(Vec::new())
    }

    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    pub fn rank(&self) -> usize {
        self.0.len()
    }

    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }

    pub fn dim(&self, axis: usize) -> usize {
        self.0[axis]
    }

    /// Row-major element strides.
    pub fn strides(&self) -> Vec<usize> {
        let mut strides = vec![1; self.rank()];
        for i in (0..self.rank().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * self.0[i + 1];
        }
        strides
    }

    pub fn axis_dims(&self, axis: usize) -> AxisDims {
        assert!(
            axis < self.rank(),
            "axis {axis} out of range for shape {self}"
        );
        AxisDims {
            outer: self.0[..axis].iter().product(),
            len: self.0[axis],
            inner: self.0[axis + 1..].iter().product(),
        }
    }

    /// The same shape with `axis` set to `len` (or removed when `len` is `None`).
    pub fn with_axis(&self, axis: usize, len: Option<usize>) -> Shape {
        let mut dims = self.0.clone();
        match len {
            Some(len) => dims[axis] = len,
            None => {
                dims.remove(axis);
            }
        }
        Shape(dims)
    }

    /// NumPy broadcasting: dimensions aligned from the right, each pair equal or one of them 1.
    pub fn broadcast(a: &Shape, b: &Shape) -> Option<Shape> {
        let rank = a.rank().max(b.rank());
        let mut dims = vec![0; rank];
        for (i, dim) in dims.iter_mut().enumerate() {
            let da = a.dim_from_right(rank - 1 - i);
            let db = b.dim_from_right(rank - 1 - i);
            *dim = match (da, db) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => return None,
            };
        }
        Some(Shape(dims))
    }

    /// Dimension `k` counted from the last (0 = last); 1 beyond the rank, as broadcasting reads it.
    fn dim_from_right(&self, k: usize) -> usize {
        if k < self.rank() {
            self.0[self.rank() - 1 - k]
        } else {
            1
        }
    }

    /// Strides for reading this shape as if broadcast to `out`: 0 along broadcast dimensions.
    pub fn broadcast_strides(&self, out: &Shape) -> Vec<usize> {
        crate::backend::spec::broadcast_strides(&self.0, &out.0)
    }
}

impl From<&[usize]> for Shape {
    fn from(dims: &[usize]) -> Shape {
        Shape(dims.to_vec())
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(dims: [usize; N]) -> Shape {
        Shape(dims.to_vec())
    }
}

impl From<Vec<usize>> for Shape {
    fn from(dims: Vec<usize>) -> Shape {
        Shape(dims)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_follows_numpy() {
        let s = |d: &[usize]| Shape::from(d);
        assert_eq!(Shape::broadcast(&s(&[7, 5]), &s(&[5])), Some(s(&[7, 5])));
        assert_eq!(
            Shape::broadcast(&s(&[3, 1, 5]), &s(&[4, 1])),
            Some(s(&[3, 4, 5]))
        );
        assert_eq!(Shape::broadcast(&s(&[]), &s(&[2, 3])), Some(s(&[2, 3])));
        assert_eq!(Shape::broadcast(&s(&[7, 5]), &s(&[7])), None);
    }

    #[test]
    fn broadcast_strides_zero_where_stretched() {
        let out = Shape::from([2, 3, 4]);
        assert_eq!(Shape::from([3, 1]).broadcast_strides(&out), vec![0, 1, 0]);
        assert_eq!(
            Shape::from([2, 3, 4]).broadcast_strides(&out),
            vec![12, 4, 1]
        );
    }

    #[test]
    fn axis_dims_split_around_the_axis() {
        let d = Shape::from([2, 3, 4]).axis_dims(1);
        assert_eq!((d.outer, d.len, d.inner), (2, 3, 4));
    }
}
