//! Multi-head self-attention (PyTorch's `nn.MultiheadAttention(d, heads, batch_first=True)`,
//! its parameters named alike) and the transformer encoder built on it
//! (`nn.TransformerEncoder` of `nn.TransformerEncoderLayer`s). Padded keys are ignored.

use super::layernorm::{export_layer_norm, layer_norm};
use super::sequence::step_mask;
use super::{pytorch_uniform, Activation, Layer, Mode};
use crate::onnx::{Attr, Graph};
use crate::tensor::{Rng, Shape, Tensor};

/// `x · wᵀ + b`, a linear map over the last axis.
fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    x.matmul_t(w, false, true).add(b)
}

/// `linear` as ONNX nodes: the weight under its checkpoint name `{w_name}` in PyTorch's
/// `[out, in]` layout, transposed in the graph (a constant onnxruntime folds at load).
fn export_linear(
    g: &mut Graph,
    x: &str,
    (w_name, w): (&str, &Tensor),
    (b_name, b): (&str, &Tensor),
) -> String {
    let w = g.tensor(w_name, w, w.dims());
    let wt = g.node("Transpose", &[&w], vec![Attr::Ints("perm", vec![1, 0])]);
    let y = g.node("MatMul", &[x, &wt], vec![]);
    let b = g.tensor(b_name, b, b.dims());
    g.node("Add", &[&y, &b], vec![])
}

use super::dropout::apply as dropout;

/// Self-attention weights: `in_proj_weight` `[3d, d]` (queries, keys, values stacked),
/// `in_proj_bias`, `out_proj.weight` `[d, d]`, `out_proj.bias`.
pub struct SelfAttention {
    in_w: Tensor,
    in_b: Tensor,
    out_w: Tensor,
    out_b: Tensor,
    heads: usize,
    /// Dropout on the attention weights (training only).
    rate: f32,
}

impl SelfAttention {
    /// PyTorch's initialisation: Xavier-uniform input projection, zero biases, the output
    /// projection as a linear layer's weight.
    pub fn new(d: usize, heads: usize, rate: f32, rng: &mut Rng) -> Result<SelfAttention, String> {
        if heads == 0 || !d.is_multiple_of(heads) {
            return Err(format!("{d} features do not split into {heads} heads"));
        }
        let bound = (6.0 / (4 * d) as f32).sqrt();
        Ok(SelfAttention {
            in_w: Tensor::rand_uniform([3 * d, d], -bound, bound, rng).with_requires_grad(),
            in_b: Tensor::zeros([3 * d]).with_requires_grad(),
            out_w: pytorch_uniform([d, d], d, rng),
            out_b: Tensor::zeros([d]).with_requires_grad(),
            heads,
            rate,
        })
    }

    /// Values per sample alive at the peak of a forward over `len` steps of `d` features:
    /// scores, their masked and softmaxed copies (heads·len² each), queries, keys, values and
    /// the merged heads.
    fn working_floats(&self, len: usize, d: usize) -> usize {
        3 * self.heads * len * len + 6 * len * d
    }

    /// `x` `[n, len, d]` → `[n, len, d]`; keys at padded steps get no attention.
    pub fn forward(&self, x: &Tensor, mode: &mut Mode) -> Tensor {
        let (n, len, d) = (x.dims()[0], x.dims()[1], x.dims()[2]);
        let (h, dh) = (self.heads, d / self.heads);
        let qkv = linear(x, &self.in_w, &self.in_b);
        // [n, len, d] → [n, heads, len, dh]
        let split = |i: usize| {
            qkv.narrow(2, i * d, d)
                .reshape([n, len, h, dh])
                .permute(&[0, 2, 1, 3])
        };
        let (q, k, v) = (split(0), split(1), split(2));
        let scores = q
            .matmul_t(&k, false, true)
            .mul_scalar(1.0 / (dh as f32).sqrt());
        // A large negative score for padded keys: their softmax weight is exactly 0 in f32.
        let keys = step_mask(x, mode).reshape([n, 1, 1, len]);
        let scores = scores.add(&keys.add_scalar(-1.0).mul_scalar(1e9));
        let weights = dropout(&scores.softmax(3), self.rate, mode);
        let context = weights
            .matmul(&v)
            .permute(&[0, 2, 1, 3])
            .reshape([n, len, d]);
        linear(&context, &self.out_w, &self.out_b)
    }

    /// `forward` in evaluation mode as ONNX nodes over `x` `[n, len, d]`, with `g.mask`'s
    /// padded keys pushed out of the softmax; tensors named `{prefix}in_proj_weight`, ...
    pub fn export(&self, g: &mut Graph, prefix: &str, x: &str) -> String {
        let d = self.out_w.dims()[0] as i64;
        let (h, dh) = (self.heads as i64, d / self.heads as i64);
        let name = |n: &str| format!("{prefix}{n}");
        let qkv = export_linear(
            g,
            x,
            (&name("in_proj_weight"), &self.in_w),
            (&name("in_proj_bias"), &self.in_b),
        );
        // [n, len, d] → [n, heads, len, dh] (keys: [n, heads, dh, len]).
        let split = |g: &mut Graph, i: i64, perm: Vec<i64>| {
            let (start, end, axis) = (
                g.constant_i64("qkv_start", &[i * d]),
                g.constant_i64("qkv_end", &[(i + 1) * d]),
                g.constant_i64("qkv_axis", &[2]),
            );
            let part = g.node("Slice", &[&qkv, &start, &end, &axis], vec![]);
            let heads = g.reshape(&part, &[0, 0, h, dh]);
            g.node("Transpose", &[&heads], vec![Attr::Ints("perm", perm)])
        };
        let q = split(g, 0, vec![0, 2, 1, 3]);
        let k = split(g, 1, vec![0, 2, 3, 1]);
        let v = split(g, 2, vec![0, 2, 1, 3]);
        let scores = g.node("MatMul", &[&q, &k], vec![]);
        let scale = g.scalar(&name("scale"), 1.0 / (dh as f32).sqrt());
        let mut scores = g.node("Mul", &[&scores, &scale], vec![]);
        if let Some(m) = g.mask.clone() {
            let (one, big) = (g.scalar("one", 1.0), g.scalar("key_mask_scale", 1e9));
            let keys = g.reshape(&m, &[0, 1, 1, -1]);
            let off = g.node("Sub", &[&keys, &one], vec![]);
            let off = g.node("Mul", &[&off, &big], vec![]);
            scores = g.node("Add", &[&scores, &off], vec![]);
        }
        let weights = g.node("Softmax", &[&scores], vec![Attr::Int("axis", -1)]);
        let context = g.node("MatMul", &[&weights, &v], vec![]);
        let context = g.node(
            "Transpose",
            &[&context],
            vec![Attr::Ints("perm", vec![0, 2, 1, 3])],
        );
        let context = g.reshape(&context, &[0, 0, d]);
        export_linear(
            g,
            &context,
            (&name("out_proj.weight"), &self.out_w),
            (&name("out_proj.bias"), &self.out_b),
        )
    }

    pub fn params(&self, prefix: &str) -> Vec<(String, &Tensor)> {
        vec![
            (format!("{prefix}in_proj_weight"), &self.in_w),
            (format!("{prefix}in_proj_bias"), &self.in_b),
            (format!("{prefix}out_proj.weight"), &self.out_w),
            (format!("{prefix}out_proj.bias"), &self.out_b),
        ]
    }
}

/// `attention`: self-attention over a sequence `[len, d]`.
pub struct Attention {
    attn: SelfAttention,
    shape: Shape,
}

impl Attention {
    pub fn new(input: &Shape, heads: usize, rate: f32, rng: &mut Rng) -> Result<Attention, String> {
        if input.rank() != 2 {
            return Err(format!(
                "attention needs a sequence [len, features], got {input}"
            ));
        }
        Ok(Attention {
            attn: SelfAttention::new(input.dim(1), heads, rate, rng)?,
            shape: input.clone(),
        })
    }
}

impl Layer for Attention {
    fn kind(&self) -> &'static str {
        "attention"
    }

    fn output_shape(&self) -> &Shape {
        &self.shape
    }

    fn forward(&self, x: &Tensor, mode: &mut Mode) -> Tensor {
        self.attn.forward(x, mode)
    }

    fn eval_floats_per_sample(&self) -> usize {
        self.attn
            .working_floats(self.shape.dim(0), self.shape.dim(1))
    }

    fn params(&self) -> Vec<(String, &Tensor)> {
        self.attn.params("")
    }

    fn export(&self, g: &mut Graph, prefix: &str, inputs: &[String]) -> Result<String, String> {
        Ok(self.attn.export(g, &format!("{prefix}."), &inputs[0]))
    }
}

/// One encoder block (PyTorch's `TransformerEncoderLayer`): self-attention and a feed-forward
/// network, each with dropout, a residual connection and layer norm (after, or before with
/// `norm_first`).
struct Block {
    attn: SelfAttention,
    linear1: (Tensor, Tensor),
    linear2: (Tensor, Tensor),
    norm1: (Tensor, Tensor),
    norm2: (Tensor, Tensor),
}

pub struct TransformerEncoder {
    blocks: Vec<Block>,
    norm_first: bool,
    rate: f32,
    activation: Activation,
    shape: Shape,
}

/// Settings of a transformer encoder.
pub struct EncoderSpec {
    pub heads: usize,
    pub ff_units: usize,
    pub blocks: usize,
    pub norm_first: bool,
    pub rate: f32,
    pub activation: Activation,
}

impl TransformerEncoder {
    pub fn new(
        input: &Shape,
        s: &EncoderSpec,
        rng: &mut Rng,
    ) -> Result<TransformerEncoder, String> {
        if input.rank() != 2 {
            return Err(format!(
                "transformer_encoder needs a sequence [len, features], got {input}"
            ));
        }
        if !matches!(s.activation, Activation::Relu | Activation::Gelu) {
            return Err("a transformer_encoder's activation is relu or gelu (as PyTorch's)".into());
        }
        let d = input.dim(1);
        let norm = || {
            (
                Tensor::ones([d]).with_requires_grad(),
                Tensor::zeros([d]).with_requires_grad(),
            )
        };
        let blocks = (0..s.blocks)
            .map(|_| {
                let attn = SelfAttention::new(d, s.heads, s.rate, rng)?;
                let linear1 = (
                    pytorch_uniform([s.ff_units, d], d, rng),
                    pytorch_uniform([s.ff_units], d, rng),
                );
                let linear2 = (
                    pytorch_uniform([d, s.ff_units], s.ff_units, rng),
                    pytorch_uniform([d], s.ff_units, rng),
                );
                Ok(Block {
                    attn,
                    linear1,
                    linear2,
                    norm1: norm(),
                    norm2: norm(),
                })
            })
            .collect::<Result<Vec<Block>, String>>()?;
        Ok(TransformerEncoder {
            blocks,
            norm_first: s.norm_first,
            rate: s.rate,
            activation: s.activation,
            shape: input.clone(),
        })
    }

    fn feed_forward(&self, b: &Block, x: &Tensor, mode: &mut Mode) -> Tensor {
        let hidden = self
            .activation
            .apply(&linear(x, &b.linear1.0, &b.linear1.1));
        linear(
            &dropout(&hidden, self.rate, mode),
            &b.linear2.0,
            &b.linear2.1,
        )
    }
}

impl Layer for TransformerEncoder {
    fn kind(&self) -> &'static str {
        "transformer_encoder"
    }

    /// Blocks run one after another: the largest block's attention plus its feed-forward
    /// layer's hidden values.
    fn eval_floats_per_sample(&self) -> usize {
        let (len, d) = (self.shape.dim(0), self.shape.dim(1));
        self.blocks
            .iter()
            .map(|b| b.attn.working_floats(len, d) + len * b.linear1.0.dims()[0])
            .max()
            .unwrap_or(0)
    }

    fn output_shape(&self) -> &Shape {
        &self.shape
    }

    fn forward(&self, x: &Tensor, mode: &mut Mode) -> Tensor {
        let norm = |x: &Tensor, n: &(Tensor, Tensor)| layer_norm(x, &n.0, &n.1, 1e-5);
        let mut x = x.clone();
        for b in &self.blocks {
            x = if self.norm_first {
                let a = b.attn.forward(&norm(&x, &b.norm1), mode);
                let x1 = x.add(&dropout(&a, self.rate, mode));
                let f = self.feed_forward(b, &norm(&x1, &b.norm2), mode);
                x1.add(&dropout(&f, self.rate, mode))
            } else {
                let a = b.attn.forward(&x, mode);
                let x1 = norm(&x.add(&dropout(&a, self.rate, mode)), &b.norm1);
                let f = self.feed_forward(b, &x1, mode);
                norm(&x1.add(&dropout(&f, self.rate, mode)), &b.norm2)
            };
        }
        x
    }

    /// `forward` in evaluation mode (dropout gone), block by block.
    fn export(&self, g: &mut Graph, prefix: &str, inputs: &[String]) -> Result<String, String> {
        let mut x = inputs[0].clone();
        for (i, b) in self.blocks.iter().enumerate() {
            let at = |n: &str| format!("{prefix}.layers.{i}.{n}");
            let norm = |g: &mut Graph, x: &str, n: &str, t: &(Tensor, Tensor)| {
                export_layer_norm(g, &at(n), x, (&t.0, &t.1), 1e-5)
            };
            let feed_forward = |g: &mut Graph, x: &str| {
                let (w1, b1) = (at("linear1.weight"), at("linear1.bias"));
                let hidden = export_linear(g, x, (&w1, &b.linear1.0), (&b1, &b.linear1.1));
                let hidden = self.activation.export(g, &hidden);
                let (w2, b2) = (at("linear2.weight"), at("linear2.bias"));
                export_linear(g, &hidden, (&w2, &b.linear2.0), (&b2, &b.linear2.1))
            };
            let attn = at("self_attn.");
            x = if self.norm_first {
                let normed = norm(g, &x, "norm1", &b.norm1);
                let a = b.attn.export(g, &attn, &normed);
                let x1 = g.node("Add", &[&x, &a], vec![]);
                let normed = norm(g, &x1, "norm2", &b.norm2);
                let f = feed_forward(g, &normed);
                g.node("Add", &[&x1, &f], vec![])
            } else {
                let a = b.attn.export(g, &attn, &x);
                let sum = g.node("Add", &[&x, &a], vec![]);
                let x1 = norm(g, &sum, "norm1", &b.norm1);
                let f = feed_forward(g, &x1);
                let sum = g.node("Add", &[&x1, &f], vec![]);
                norm(g, &sum, "norm2", &b.norm2)
            };
        }
        Ok(x)
    }

    fn params(&self) -> Vec<(String, &Tensor)> {
        let mut p = Vec::new();
        for (i, b) in self.blocks.iter().enumerate() {
            let at = |n: &str| format!("layers.{i}.{n}");
            p.extend(b.attn.params(&at("self_attn.")));
            p.push((at("linear1.weight"), &b.linear1.0));
            p.push((at("linear1.bias"), &b.linear1.1));
            p.push((at("linear2.weight"), &b.linear2.0));
            p.push((at("linear2.bias"), &b.linear2.1));
            p.push((at("norm1.weight"), &b.norm1.0));
            p.push((at("norm1.bias"), &b.norm1.1));
            p.push((at("norm2.weight"), &b.norm2.0));
            p.push((at("norm2.bias"), &b.norm2.1));
        }
        p
    }
}
