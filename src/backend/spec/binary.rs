//! Elementwise binary ops with NumPy broadcasting, and the plan kernels read operands by.

use super::OpCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
}

impl Binary {
    pub const ALL: &'static [Binary] = &[Binary::Add, Binary::Sub, Binary::Mul, Binary::Div];
}

impl OpCode for Binary {
    const FAMILY: &'static str = "BINARY";

    fn all() -> &'static [Binary] {
        Binary::ALL
    }

    fn name(self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
        }
    }
}

/// Strides for reading `dims` as if broadcast to `out` (aligned from the right): 0 along
/// broadcast dimensions.
pub fn broadcast_strides(dims: &[usize], out: &[usize]) -> Vec<usize> {
    let mut own = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        own[i] = own[i + 1] * dims[i + 1];
    }
    let offset = out.len() - dims.len();
    (0..out.len())
        .map(|i| {
            if i < offset || dims[i - offset] == 1 {
                0
            } else {
                own[i - offset]
            }
        })
        .collect()
}

/// How two operands are read while broadcast to the output, with adjacent dimensions that step
/// alike merged (a per-channel `[N, C, H, W] · [1, C, 1, 1]` becomes `[N, C, H·W]`), so kernels
/// loop over as few dimensions as possible. Backends share it.
#[derive(Clone, Debug)]
pub struct BroadcastPlan {
    /// Merged output dimensions (at least one).
    pub dims: Vec<usize>,
    /// Element strides of each operand per merged dimension; 0 where it is broadcast.
    pub a_strides: Vec<usize>,
    pub b_strides: Vec<usize>,
    pub out_len: usize,
}

impl BroadcastPlan {
    /// The plan for operands of dimensions `a` and `b` broadcast to `out`.
    pub fn new(a: &[usize], b: &[usize], out: &[usize]) -> BroadcastPlan {
        let (sa, sb) = (broadcast_strides(a, out), broadcast_strides(b, out));
        let (mut dims, mut a_strides, mut b_strides): (Vec<usize>, Vec<usize>, Vec<usize>) =
            (Vec::new(), Vec::new(), Vec::new());
        for (i, &d) in out.iter().enumerate() {
            if d == 1 {
                continue;
            }
            if let Some(last) = dims.len().checked_sub(1) {
                if a_strides[last] == sa[i] * d && b_strides[last] == sb[i] * d {
                    dims[last] *= d;
                    a_strides[last] = sa[i];
                    b_strides[last] = sb[i];
                    continue;
                }
            }
            dims.push(d);
            a_strides.push(sa[i]);
            b_strides.push(sb[i]);
        }
        if dims.is_empty() {
            (dims, a_strides, b_strides) = (vec![1], vec![0], vec![0]);
        }
        BroadcastPlan {
            dims,
            a_strides,
            b_strides,
            out_len: out.iter().product(),
        }
    }

    /// Both operands have the output's shape: a plain zip.
    pub fn is_elementwise(&self) -> bool {
        self.dims.len() == 1 && self.a_strides[0] == 1 && self.b_strides[0] == 1
    }

    /// Offsets into a and b of the first element of output row `row` (rows run along the last
    /// merged dimension).
    pub fn row_offsets(&self, row: usize) -> (usize, usize) {
        let (mut oa, mut ob, mut rest) = (0, 0, row);
        for ax in (0..self.dims.len() - 1).rev() {
            let i = rest % self.dims[ax];
            rest /= self.dims[ax];
            oa += i * self.a_strides[ax];
            ob += i * self.b_strides[ax];
        }
        (oa, ob)
    }
}
