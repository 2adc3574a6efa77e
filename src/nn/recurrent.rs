//! Recurrent layers, as PyTorch's `nn.LSTM` / `nn.GRU` (one layer, `batch_first=True`), with
//! its parameter names and layouts: `weight_ih_l0` `[gates·units, in]`, `weight_hh_l0`
//! `[gates·units, units]`, `bias_ih_l0`, `bias_hh_l0`, and `*_reverse` for the backward
//! direction. Each sequence stops at its length: at a padded step the state carries over
//! unchanged, so the final state is the last real step's (as a packed sequence in PyTorch).

use super::sequence::step_mask;
use super::{pytorch_uniform, Layer, Mode};
use crate::onnx::proto::data_type;
use crate::onnx::{Attr, Graph};
use crate::tensor::{Rng, Shape, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    Lstm,
    Gru,
}

impl Cell {
    fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
}

/// One direction's weights.
struct Direction {
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
}

pub struct Recurrent {
    cell: Cell,
    units: usize,
    dirs: Vec<Direction>,
    return_sequences: bool,
    shape: Shape,
}

impl Recurrent {
    pub fn new(
        cell: Cell,
        input: &Shape,
        units: usize,
        bidirectional: bool,
        return_sequences: bool,
        rng: &mut Rng,
    ) -> Result<Recurrent, String> {
        if input.rank() != 2 {
            return Err(format!(
                "{} needs a sequence [len, features], got {input}; a reshape layer can make one",
                if cell == Cell::Lstm { "lstm" } else { "gru" }
            ));
        }
        let (len, features) = (input.dim(0), input.dim(1));
        let g = cell.gates() * units;
        // PyTorch: every weight and bias U(−1/√units, 1/√units).
        let dirs = (0..if bidirectional { 2 } else { 1 })
            .map(|_| Direction {
                w_ih: pytorch_uniform([g, features], units, rng),
                w_hh: pytorch_uniform([g, units], units, rng),
                b_ih: pytorch_uniform([g], units, rng),
                b_hh: pytorch_uniform([g], units, rng),
            })
            .collect::<Vec<_>>();
        let width = units * dirs.len();
        let shape = if return_sequences {
            Shape::from([len, width])
        } else {
            Shape::from([width])
        };
        Ok(Recurrent {
            cell,
            units,
            dirs,
            return_sequences,
            shape,
        })
    }

    /// One direction over `x` `[n, len, f]` with step mask `m` `[n, len]`: h after every step
    /// `[n, len, units]`; a sequence's final state is the output at the last step visited
    /// (padding carries the state over).
    fn run(&self, d: &Direction, x: &Tensor, m: &Tensor, reverse: bool) -> Tensor {
        match self.cell {
            Cell::Lstm => {
                // The input's share of every gate, for all steps in one product; the
                // recurrence is one op, which adds both biases (the cell sums them anyway).
                let (n, len, f) = (x.dims()[0], x.dims()[1], x.dims()[2]);
                let xw = x
                    .reshape([n * len, f])
                    .matmul_t(&d.w_ih, false, true)
                    .reshape([n, len, 4 * self.units]);
                xw.lstm_sequence(&d.b_ih.add(&d.b_hh), &d.w_hh, m, reverse)
            }
            Cell::Gru => self.run_gru(d, x, m, reverse),
        }
    }

    /// The GRU, step by step from that step's input (the candidate gate needs b_hh inside
    /// r·(h W + b_hh)).
    fn run_gru(&self, d: &Direction, x: &Tensor, m: &Tensor, reverse: bool) -> Tensor {
        let (n, len, f) = (x.dims()[0], x.dims()[1], x.dims()[2]);
        let u = self.units;
        let mut h = Tensor::zeros_on([n, u], x.device());
        let mut outputs = vec![h.clone(); len];
        let steps: Vec<usize> = if reverse {
            (0..len).rev().collect()
        } else {
            (0..len).collect()
        };
        for t in steps {
            let xt = x
                .narrow(1, t, 1)
                .reshape([n, f])
                .matmul_t(&d.w_ih, false, true)
                .add(&d.b_ih);
            let keep = m.narrow(1, t, 1); // [n, 1]: 1 at a real step
            let hw = h.matmul_t(&d.w_hh, false, true).add(&d.b_hh);
            let gate = |t: &Tensor, i: usize| t.narrow(1, i * u, u);
            let r = gate(&xt, 0).add(&gate(&hw, 0)).sigmoid();
            let z = gate(&xt, 1).add(&gate(&hw, 1)).sigmoid();
            let cand = gate(&xt, 2).add(&r.mul(&gate(&hw, 2))).tanh();
            // h' = (1 − z)·cand + z·h; padding: the state carries over.
            let h_new = cand.add(&z.mul(&h.sub(&cand)));
            h = h.add(&h_new.sub(&h).mul(&keep));
            outputs[t] = h.reshape([n, 1, u]);
        }
        Tensor::cat(&outputs, 1)
    }
}

impl Layer for Recurrent {
    fn kind(&self) -> &'static str {
        match self.cell {
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
        }
    }

    fn output_shape(&self) -> &Shape {
        &self.shape
    }

    fn forward(&self, x: &Tensor, mode: &mut Mode) -> Tensor {
        let (n, len, u) = (x.dims()[0], x.dims()[1], self.units);
        let m = step_mask(x, mode);
        let runs: Vec<Tensor> = self
            .dirs
            .iter()
            .enumerate()
            .map(|(i, d)| self.run(d, x, &m, i == 1))
            .collect();
        if !self.return_sequences {
            let finals: Vec<Tensor> = runs
                .iter()
                .enumerate()
                .map(|(i, y)| {
                    let last = if i == 1 { 0 } else { len - 1 };
                    y.narrow(1, last, 1).reshape([n, u])
                })
                .collect();
            return Tensor::cat(&finals, 1);
        }
        let y = Tensor::cat(&runs, 2);
        debug_assert_eq!(y.dims(), [n, len, self.shape.dim(1)]);
        y
    }

    /// ONNX's LSTM / GRU op: its gate order (LSTM i, o, f, c; GRU z, r, h) from PyTorch's
    /// (i, f, g, o; r, z, n), the directions stacked, the input time-major; the GRU's
    /// `linear_before_reset` is PyTorch's r·(h·W + b). A padded sequence (padding after its
    /// real steps, as kiln's text columns are) runs to its length (`sequence_lens`); where
    /// ONNX then outputs 0, the forward direction's output is the state carried over, as in
    /// `forward`.
    fn export(&self, g: &mut Graph, prefix: &str, inputs: &[String]) -> Result<String, String> {
        let u = self.units;
        let gates = self.cell.gates();
        let order: &[usize] = match self.cell {
            Cell::Lstm => &[0, 3, 1, 2],
            Cell::Gru => &[1, 0, 2],
        };
        // Rows come in blocks of `units`, one per gate.
        let reorder = |t: &Tensor| -> Vec<f32> {
            let v = t.to_vec();
            let block = v.len() / gates;
            order
                .iter()
                .flat_map(|&k| v[k * block..(k + 1) * block].iter().copied())
                .collect::<Vec<f32>>()
        };
        let (mut w, mut r, mut b) = (Vec::new(), Vec::new(), Vec::new());
        for d in &self.dirs {
            w.extend(reorder(&d.w_ih));
            r.extend(reorder(&d.w_hh));
            b.extend(reorder(&d.b_ih));
            b.extend(reorder(&d.b_hh));
        }
        let (nd, features) = (self.dirs.len(), self.dirs[0].w_ih.dims()[1]);
        let w = g.constant(&format!("{prefix}.W"), &[nd, gates * u, features], &w);
        let r = g.constant(&format!("{prefix}.R"), &[nd, gates * u, u], &r);
        let b = g.constant(&format!("{prefix}.B"), &[nd, 2 * gates * u], &b);
        let x = g.node(
            "Transpose",
            &[&inputs[0]],
            vec![Attr::Ints("perm", vec![1, 0, 2])],
        );
        let direction = if nd == 2 { "bidirectional" } else { "forward" };
        let mut attrs = vec![
            Attr::Int("hidden_size", u as i64),
            Attr::Str("direction", direction),
        ];
        let op = match self.cell {
            Cell::Lstm => "LSTM",
            Cell::Gru => {
                attrs.push(Attr::Int("linear_before_reset", 1));
                "GRU"
            }
        };
        let mask = g.mask.clone();
        let mut op_inputs = vec![x, w, r, b];
        if let Some(m) = &mask {
            let real = g.reduce("ReduceSum", m, &[1], false);
            op_inputs.push(g.cast(&real, data_type::INT32));
        }
        let refs: Vec<&str> = op_inputs.iter().map(String::as_str).collect();
        // Y [len, dirs, n, units] and Y_h [dirs, n, units].
        let outs = g.node_multi(op, &refs, attrs, 2);
        if self.return_sequences {
            let mut y = outs[0].clone();
            if let Some(m) = &mask {
                // Y + (1 − m)·Y_h on the forward direction: [len, 1, n, 1] · [1, dirs, 1, 1]
                // · [dirs, n, units].
                let one = g.scalar(&format!("{prefix}.one"), 1.0);
                let padded = g.node("Sub", &[&one, m], vec![]);
                let padded = g.node(
                    "Transpose",
                    &[&padded],
                    vec![Attr::Ints("perm", vec![1, 0])],
                );
                let padded = g.reshape(&padded, &[0, 1, -1, 1]);
                let mut forward_only = vec![0.0; nd];
                forward_only[0] = 1.0;
                let forward_only = g.constant(
                    &format!("{prefix}.forward_only"),
                    &[1, nd, 1, 1],
                    &forward_only,
                );
                let carry = g.node("Mul", &[&padded, &forward_only], vec![]);
                let carry = g.node("Mul", &[&carry, &outs[1]], vec![]);
                y = g.node("Add", &[&y, &carry], vec![]);
            }
            let y = g.node(
                "Transpose",
                &[&y],
                vec![Attr::Ints("perm", vec![2, 0, 1, 3])],
            );
            Ok(g.reshape(&y, &[0, 0, -1]))
        } else {
            let h = g.node(
                "Transpose",
                &[&outs[1]],
                vec![Attr::Ints("perm", vec![1, 0, 2])],
            );
            Ok(g.reshape(&h, &[0, -1]))
        }
    }

    fn params(&self) -> Vec<(String, &Tensor)> {
        let mut p = Vec::new();
        for (i, d) in self.dirs.iter().enumerate() {
            let suffix = if i == 1 { "_reverse" } else { "" };
            p.push((format!("weight_ih_l0{suffix}"), &d.w_ih));
            p.push((format!("weight_hh_l0{suffix}"), &d.w_hh));
            p.push((format!("bias_ih_l0{suffix}"), &d.b_ih));
            p.push((format!("bias_hh_l0{suffix}"), &d.b_hh));
        }
        p
    }
}
