//! Token embeddings (PyTorch's `nn.Embedding(vocab, dim, padding_idx=0)`): each token id of a
//! `[len]` sequence becomes a learned `[dim]` vector; id 0 is padding, a zero vector that gets
//! no gradient. With `positional = true` a learned vector per position is added (as BERT and
//! GPT-2 do). The layer marks the sequences' real steps for the layers after it.

use super::{named, Layer, Mode};
use crate::onnx::proto::data_type;
use crate::onnx::Graph;
use crate::tensor::{Rng, Shape, Tensor};

pub struct Embedding {
    weight: Tensor,
    /// `[len, dim]` when positional.
    position: Option<Tensor>,
    vocab: usize,
    shape: Shape,
}

impl Embedding {
    pub fn new(
        input: &Shape,
        vocab: usize,
        dim: usize,
        positional: bool,
        rng: &mut Rng,
    ) -> Result<Embedding, String> {
        if input.rank() != 1 {
            return Err(format!(
                "embedding reads token ids [len], got {input}; it comes first, on a text column"
            ));
        }
        let len = input.dim(0);
        let mut w = Tensor::randn([vocab, dim], 0.0, 1.0, rng).to_vec();
        w[..dim].iter_mut().for_each(|v| *v = 0.0); // the padding id's vector
        let weight = Tensor::from_vec(w, [vocab, dim]).with_requires_grad();
        let position =
            positional.then(|| Tensor::randn([len, dim], 0.0, 0.02, rng).with_requires_grad());
        Ok(Embedding {
            weight,
            position,
            vocab,
            shape: Shape::from([len, dim]),
        })
    }
}

impl Layer for Embedding {
    fn kind(&self) -> &'static str {
        "embedding"
    }

    fn output_shape(&self) -> &Shape {
        &self.shape
    }

    fn forward(&self, x: &Tensor, mode: &mut Mode) -> Tensor {
        let (n, len, dim) = (x.dims()[0], x.dims()[1], self.shape.dim(1));
        // Token ids come as f32 from the data, checked against the vocabulary when read.
        let ids: Vec<u32> = x
            .to_vec()
            .iter()
            .map(|&v| (v as u32).min(self.vocab as u32 - 1))
            .collect();
        let mask: Vec<f32> = ids.iter().map(|&i| f32::from(u8::from(i != 0))).collect();
        let mask = Tensor::from_vec(mask, [n, len]).to_device(self.weight.device());
        let mut y = self.weight.index_select(&ids).reshape([n, len, dim]);
        if let Some(p) = &self.position {
            y = y.add(p);
        }
        // Padding steps are zero (and pass no gradient to the padding row or the positions).
        let y = y.mul(&mask.reshape([n, len, 1]));
        mode.mask = Some(mask);
        y
    }

    /// Gather by token id (clipped into the vocabulary as in `forward`), positions added,
    /// padding steps zeroed; the mask `id ≠ 0` goes to the layers after, as in `forward`.
    fn export(&self, g: &mut Graph, prefix: &str, inputs: &[String]) -> Result<String, String> {
        let ids = g.cast(&inputs[0], data_type::INT64);
        let (low, high) = (
            g.scalar_i64(&format!("{prefix}.first_id"), 0),
            g.scalar_i64(&format!("{prefix}.last_id"), self.vocab as i64 - 1),
        );
        let ids = g.node("Clip", &[&ids, &low, &high], vec![]);
        let table = g.tensor(
            &format!("{prefix}.weight"),
            &self.weight,
            self.weight.dims(),
        );
        let mut y = g.node("Gather", &[&table, &ids], vec![]);
        if let Some(p) = &self.position {
            let p = g.tensor(&format!("{prefix}.position"), p, p.dims());
            y = g.node("Add", &[&y, &p], vec![]);
        }
        let pad = g.scalar_i64(&format!("{prefix}.pad_id"), 0);
        let is_pad = g.node("Equal", &[&ids, &pad], vec![]);
        let real = g.node("Not", &[&is_pad], vec![]);
        let mask = g.cast(&real, data_type::FLOAT);
        let mask3 = g.reshape(&mask, &[0, 0, 1]);
        g.mask = Some(mask);
        Ok(g.node("Mul", &[&y, &mask3], vec![]))
    }

    fn params(&self) -> Vec<(String, &Tensor)> {
        let mut p = named(&[("weight", &self.weight)]);
        if let Some(pos) = &self.position {
            p.push(("position".into(), pos));
        }
        p
    }
}
