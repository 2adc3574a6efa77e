//! Matrix products, 2-D and batched, with transpose flags.

/// One (batched) product `C[i] = op(A[i]) · op(B[i])` with op(A) `[m, k]`, op(B) `[k, n]`, all
/// row-major; `trans_a` means A is stored `[k, m]`, `trans_b` that B is stored `[n, k]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulSpec {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    /// Elements between consecutive matrices of each operand (0: one matrix shared by all).
    pub a_batch_stride: usize,
    pub b_batch_stride: usize,
}
