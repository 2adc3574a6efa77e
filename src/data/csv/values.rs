//! Feature values as read from a CSV, kept as bytes while they fit in one: a table of pixel
//! intensities (integers 0..=255, as MNIST's CSV) takes a quarter of the memory of f32, and
//! is converted and preprocessed per batch, as image folders are.

use crate::tensor::Tensor;

use super::Preprocess;

/// Row-major feature values: bytes while every value read so far is an integer in 0..=255,
/// f32 (NaN where missing) from the first that is not.
#[derive(Clone, Debug, PartialEq)]
pub enum FeatureValues {
    Bytes(Vec<u8>),
    Floats(Vec<f32>),
}

impl Default for FeatureValues {
    fn default() -> Self {
        FeatureValues::Bytes(Vec::new())
    }
}

impl FeatureValues {
    /// Append one value, switching the whole store to f32 at the first non-byte value.
    pub fn push(&mut self, v: f32) {
        match self {
            FeatureValues::Bytes(b) if is_byte(v) => b.push(v as u8),
            FeatureValues::Bytes(b) => {
                let mut floats: Vec<f32> = b.iter().map(|&x| x as f32).collect();
                floats.push(v);
                *self = FeatureValues::Floats(floats);
            }
            FeatureValues::Floats(f) => f.push(v),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            FeatureValues::Bytes(b) => b.len(),
            FeatureValues::Floats(f) => f.len(),
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        match self {
            FeatureValues::Bytes(b) => b.len(),
            FeatureValues::Floats(f) => f.len() * 4,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> f32 {
        match self {
            FeatureValues::Bytes(b) => b[i] as f32,
            FeatureValues::Floats(f) => f[i],
        }
    }

    /// Rows `rows` (of `f` values each), in that order.
    pub fn select_rows(&self, rows: &[usize], f: usize) -> FeatureValues {
        fn pick<T: Copy>(x: &[T], rows: &[usize], f: usize) -> Vec<T> {
            rows.iter()
                .flat_map(|&r| x[r * f..(r + 1) * f].iter().copied())
                .collect()
        }
        match self {
            FeatureValues::Bytes(b) => FeatureValues::Bytes(pick(b, rows, f)),
            FeatureValues::Floats(x) => FeatureValues::Floats(pick(x, rows, f)),
        }
    }

    pub fn into_floats(self) -> Vec<f32> {
        match self {
            FeatureValues::Bytes(b) => b.into_iter().map(f32::from).collect(),
            FeatureValues::Floats(f) => f,
        }
    }

    /// Append a value known to be a byte (read from a cell of 1 to 3 digits).
    pub fn push_byte(&mut self, v: u8) {
        match self {
            FeatureValues::Bytes(b) => b.push(v),
            FeatureValues::Floats(f) => f.push(f32::from(v)),
        }
    }
}

/// An integer in 0..=255 (compared through a cast: `fract` is a libm call without SSE4.1).
fn is_byte(v: f32) -> bool {
    (0.0..=255.0).contains(&v) && v == f32::from(v as u8)
}

/// The value of a cell of one to three ASCII digits up to 255, without float parsing (the
/// common cell of a pixel table).
pub fn small_uint(cell: &[u8]) -> Option<u8> {
    if cell.is_empty() || cell.len() > 3 || !cell.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = cell
        .iter()
        .fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0'));
    u8::try_from(v).ok()
}

/// A feature table kept as bytes; rows become preprocessed f32 when batched.
pub struct ByteTable {
    pub values: Vec<u8>,
    pub features: usize,
    pub preprocess: Preprocess,
}

impl ByteTable {
    /// Rows `idx` as `[idx.len(), features]` f32, preprocessed.
    pub fn batch(&self, idx: impl ExactSizeIterator<Item = usize>) -> Tensor {
        let (n, f) = (idx.len(), self.features);
        let mut x = Vec::with_capacity(n * f);
        for r in idx {
            x.extend(
                self.values[r * f..(r + 1) * f]
                    .iter()
                    .map(|&v| f32::from(v)),
            );
        }
        self.preprocess.apply(&mut x, f);
        Tensor::from_vec(x, [n, f])
    }

    /// Every row, preprocessed (for plots over the whole split).
    pub fn to_floats(&self) -> Vec<f32> {
        self.batch(0..self.values.len() / self.features.max(1))
            .to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_until_a_value_does_not_fit() {
        let mut v = FeatureValues::default();
        for x in [0.0, 255.0, 7.0] {
            v.push(x);
        }
        assert_eq!(v, FeatureValues::Bytes(vec![0, 255, 7]));
        v.push(0.5);
        assert_eq!(v, FeatureValues::Floats(vec![0.0, 255.0, 7.0, 0.5]));
        assert_eq!(small_uint(b"007"), Some(7));
        assert_eq!(small_uint(b"255"), Some(255));
        for cell in [&b"256"[..], b"", b"1000", b"1.0", b"-1", b" 1"] {
            assert_eq!(small_uint(cell), None, "{cell:?}");
        }
        for x in [256.0, -1.0, 0.5, f32::NAN] {
            let mut w = FeatureValues::default();
            w.push(x);
            assert!(matches!(w, FeatureValues::Floats(_)), "{x}");
        }
        assert_eq!(
            FeatureValues::Bytes(vec![1, 2, 3, 4, 5, 6]).select_rows(&[2, 0], 2),
            FeatureValues::Bytes(vec![5, 6, 1, 2])
        );
    }

    /// A byte table fits the same preprocessing as the same values in f32, and its batches
    /// equal the f32 table's rows, bit for bit, for every transform.
    #[test]
    fn byte_batches_equal_the_float_table() {
        use crate::config::{Missing, Normalize};
        let bytes: Vec<u8> = (0..30u32).map(|i| (i * 37 % 256) as u8).collect();
        let floats: Vec<f32> = bytes.iter().map(|&b| b as f32).collect();
        let f = 3;
        let fits = [
            (None, None),
            (Some(1.0 / 255.0), None),
            (None, Some(Normalize::Standard)),
            (None, Some(Normalize::Minmax)),
        ];
        for (scale, normalize) in fits {
            let fit = |x: &FeatureValues| Preprocess::fit(x, f, scale, normalize, Missing::Error);
            let pre = fit(&FeatureValues::Bytes(bytes.clone()));
            assert_eq!(pre, fit(&FeatureValues::Floats(floats.clone())));
            let mut want = floats.clone();
            pre.apply(&mut want, f);
            let table = ByteTable {
                values: bytes.clone(),
                features: f,
                preprocess: pre,
            };
            assert_eq!(table.to_floats(), want, "{scale:?} {normalize:?}");
            let rows = table.batch([7usize, 2, 2].into_iter());
            assert_eq!(rows.dims(), &[3, 3]);
            let picked: Vec<f32> = [7, 2, 2]
                .iter()
                .flat_map(|&r| want[r * f..(r + 1) * f].to_vec())
                .collect();
            assert_eq!(rows.to_vec(), picked);
        }
    }
}
