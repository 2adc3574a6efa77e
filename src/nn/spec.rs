//! `[[model.layers]]` entries: one flat record whose keys each layer type picks from, validated
//! per type so an error names the layer and the key.

use serde::{Deserialize, Serialize};

use super::activation::ActivationLayer;
use super::attention::{Attention, EncoderSpec, TransformerEncoder};
use super::batchnorm::BatchNorm;
use super::conv2d::Conv2d;
use super::dense::Dense;
use super::dropout::Dropout;
use super::embedding::Embedding;
use super::flatten::Flatten;
use super::layernorm::LayerNorm;
use super::merge::{Add, Concat};
use super::pool::{GlobalAvgPool, Pool2d};
use super::recurrent::{Cell, Recurrent};
use super::sequence::{PoolMode, Reshape, SequencePool};
use super::{Activation, Layer};
use crate::ops::Pool;
use crate::tensor::{Rng, Shape};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    #[serde(rename = "type")]
    pub kind: String,
    /// A name other layers' `inputs` can read this layer by.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The layers (by name, or "input") this one reads; default: the layer before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bias: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f32>,
    /// Negative slope of leaky_relu.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slope: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<usize>,
    /// Window size: N or [height, width].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<Pair>,
    /// Step: N or [height, width].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stride: Option<Pair>,
    /// "valid" (none), "same" (output size = input size; odd kernels, stride 1) or N.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub padding: Option<Padding>,
    /// Batchnorm: weight of each new batch in the running statistics (PyTorch: 0.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f32>,
    /// Batchnorm, layernorm: added to the variance (PyTorch: 1e-5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eps: Option<f32>,
    /// Embedding: the size of each token's vector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dim: Option<usize>,
    /// Embedding: how many token ids there are (default: the text column's vocabulary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vocab: Option<usize>,
    /// Embedding: add a learned vector per position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positional: Option<bool>,
    /// lstm, gru: also run the sequence backwards and join both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bidirectional: Option<bool>,
    /// lstm, gru: output every step `[len, units]` instead of the last real one `[units]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_sequences: Option<bool>,
    /// attention, transformer_encoder: attention heads (the model width must divide by it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heads: Option<usize>,
    /// transformer_encoder: the feed-forward width (PyTorch: 2048).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ff_units: Option<usize>,
    /// transformer_encoder: how many blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks: Option<usize>,
    /// transformer_encoder: layer norm before attention and feed-forward (pre-norm) instead
    /// of after (PyTorch's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub norm_first: Option<bool>,
    /// sequence_pool: "mean", "max" or "last".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// reshape: the per-sample shape out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shape: Option<Vec<usize>>,
}

/// A size given as one number or as `[height, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Pair {
    Same(usize),
    Each([usize; 2]),
}

impl Pair {
    fn get(self) -> (usize, usize) {
        match self {
            Pair::Same(n) => (n, n),
            Pair::Each([h, w]) => (h, w),
        }
    }

    /// The smaller of the two sizes.
    pub fn min(self) -> usize {
        let (h, w) = self.get();
        h.min(w)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Padding {
    Size(usize),
    Mode(String),
}

/// Layer types and the keys each accepts besides `type`.
pub const LAYER_KEYS: &[(&str, &[&str])] = &[
    ("dense", &["units", "activation", "bias", "slope"]),
    ("dropout", &["rate"]),
    (
        "conv2d",
        &[
            "filters",
            "kernel",
            "stride",
            "padding",
            "activation",
            "bias",
            "slope",
        ],
    ),
    ("maxpool2d", &["kernel", "stride"]),
    ("avgpool2d", &["kernel", "stride"]),
    ("global_avgpool", &[]),
    ("batchnorm", &["momentum", "eps"]),
    ("flatten", &[]),
    ("relu", &[]),
    ("leaky_relu", &["slope"]),
    ("gelu", &[]),
    ("sigmoid", &[]),
    ("tanh", &[]),
    ("softmax", &[]),
    ("add", &[]),
    ("concat", &[]),
    ("reshape", &["shape"]),
    ("embedding", &["dim", "vocab", "positional"]),
    ("layernorm", &["eps"]),
    ("sequence_pool", &["mode"]),
    ("lstm", &["units", "bidirectional", "return_sequences"]),
    ("gru", &["units", "bidirectional", "return_sequences"]),
    ("attention", &["heads", "rate"]),
    (
        "transformer_encoder",
        &[
            "heads",
            "ff_units",
            "blocks",
            "norm_first",
            "rate",
            "activation",
        ],
    ),
];

/// Layers that read several inputs.
const MERGES: &[&str] = &["add", "concat"];

/// Bytes a parameter costs while training: the value, its gradient and two optimizer slots.
const BYTES_PER_PARAM: u128 = 16;

/// Refuse a layer whose weights or per-sample output could not fit in memory, before they are
/// allocated.
fn check_size(weights: u128, outputs: u128) -> Result<(), String> {
    crate::limits::fits(weights * BYTES_PER_PARAM)
        .map_err(|e| format!("{weights} weights: training them {e}"))?;
    crate::limits::fits(outputs * 8)
        .map_err(|e| format!("an output of {outputs} values per sample {e}"))
}

/// Convolution and pooling need `[channels, height, width]` samples.
fn image_input(kind: &str, input: &Shape) -> Result<(), String> {
    if input.rank() == 3 {
        Ok(())
    } else {
        Err(format!(
            "{kind} needs an image input [channels, height, width], got {input}"
        ))
    }
}

/// The window must fit the (padded) input at least once.
fn fits(
    input: &Shape,
    kernel: (usize, usize),
    stride: (usize, usize),
    pad: (usize, usize),
) -> Result<(), String> {
    let (h, w) = (input.dim(1) + 2 * pad.0, input.dim(2) + 2 * pad.1);
    if kernel.0 == 0 || kernel.1 == 0 || stride.0 == 0 || stride.1 == 0 {
        return Err("`kernel` and `stride` must be at least 1".into());
    }
    if kernel.0 > h || kernel.1 > w {
        return Err(format!(
            "window {kernel:?} does not fit input {input} (padded to {h}×{w})"
        ));
    }
    Ok(())
}

impl LayerSpec {
    fn activation(&self) -> Result<Option<Activation>, String> {
        let leaky = self.activation.as_deref() == Some("leaky_relu") || self.kind == "leaky_relu";
        if self.slope.is_some() && !leaky {
            return Err("`slope` goes with activation = \"leaky_relu\"".into());
        }
        let Some(name) = &self.activation else {
            return Ok(None);
        };
        Activation::from_name(name, self.slope)
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "unknown activation \"{name}\"{}; known: {}",
                    crate::suggest::did_you_mean(name, Activation::NAMES),
                    Activation::NAMES.join(", ")
                )
            })
    }

    fn padding(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
    ) -> Result<(usize, usize), String> {
        match &self.padding {
            None => Ok((0, 0)),
            Some(Padding::Size(n)) => Ok((*n, *n)),
            Some(Padding::Mode(m)) if m == "valid" => Ok((0, 0)),
            Some(Padding::Mode(m)) if m == "same" => {
                if stride != (1, 1) || kernel.0.is_multiple_of(2) || kernel.1.is_multiple_of(2) {
                    return Err(format!("padding \"same\" needs stride 1 and an odd kernel, got kernel {kernel:?} stride {stride:?}"));
                }
                Ok((kernel.0 / 2, kernel.1 / 2))
            }
            Some(Padding::Mode(m)) => Err(format!(
                "unknown padding \"{m}\"; use \"valid\", \"same\" or a number"
            )),
        }
    }

    /// Keys set in this entry, besides `type`.
    fn keys_set(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let set: [(&'static str, bool); 22] = [
            ("units", self.units.is_some()),
            ("activation", self.activation.is_some()),
            ("bias", self.bias.is_some()),
            ("rate", self.rate.is_some()),
            ("slope", self.slope.is_some()),
            ("filters", self.filters.is_some()),
            ("kernel", self.kernel.is_some()),
            ("stride", self.stride.is_some()),
            ("padding", self.padding.is_some()),
            ("momentum", self.momentum.is_some()),
            ("eps", self.eps.is_some()),
            ("dim", self.dim.is_some()),
            ("vocab", self.vocab.is_some()),
            ("positional", self.positional.is_some()),
            ("bidirectional", self.bidirectional.is_some()),
            ("return_sequences", self.return_sequences.is_some()),
            ("heads", self.heads.is_some()),
            ("ff_units", self.ff_units.is_some()),
            ("blocks", self.blocks.is_some()),
            ("norm_first", self.norm_first.is_some()),
            ("mode", self.mode.is_some()),
            ("shape", self.shape.is_some()),
        ];
        for (k, present) in set {
            if present {
                keys.push(k);
            }
        }
        keys
    }

    /// Build this layer on inputs of per-sample shapes `inputs` (one for every layer but the
    /// merges). Errors are messages; the caller adds the layer's place.
    pub fn build(&self, inputs: &[Shape], rng: &mut Rng) -> Result<Box<dyn Layer>, String> {
        let Some((_, allowed)) = LAYER_KEYS.iter().find(|(k, _)| *k == self.kind) else {
            let known: Vec<&str> = LAYER_KEYS.iter().map(|(k, _)| *k).collect();
            return Err(format!(
                "unknown layer type \"{}\"{}; known types: {}",
                self.kind,
                crate::suggest::did_you_mean(&self.kind, &known),
                known.join(", ")
            ));
        };
        if let Some(k) = self.keys_set().into_iter().find(|k| !allowed.contains(k)) {
            return Err(format!(
                "a {} layer takes no `{k}` (it takes: {})",
                self.kind,
                {
                    let mut a = vec!["type"];
                    a.extend(allowed.iter());
                    a.join(", ")
                }
            ));
        }
        let merge = MERGES.contains(&self.kind.as_str());
        match (merge, inputs.len()) {
            (true, n) if n < 2 => {
                return Err(format!(
                    "{} merges layers: give it two or more with `inputs = [\"a\", \"b\"]`",
                    self.kind
                ))
            }
            (false, n) if n != 1 => {
                return Err(format!(
                    "a {} layer reads one input, `inputs` names {n}; merge them first with add or concat",
                    self.kind
                ))
            }
            _ => {}
        }
        let input = &inputs[0];
        Ok(match self.kind.as_str() {
            "add" => Box::new(Add::new(inputs)?),
            "concat" => Box::new(Concat::new(inputs)?),
            "reshape" => {
                let shape = self.shape.as_ref().ok_or("a reshape layer needs `shape`")?;
                Box::new(Reshape::new(input, shape)?)
            }
            "embedding" => {
                let dim = self.dim.ok_or("an embedding needs `dim`")?;
                let vocab = self
                    .vocab
                    .ok_or("an embedding needs `vocab`, or a text column to read it from")?;
                check_size(vocab as u128 * dim as u128, (input.numel() * dim) as u128)?;
                let positional = self.positional.unwrap_or(false);
                Box::new(Embedding::new(input, vocab, dim, positional, rng)?)
            }
            "layernorm" => {
                if input.rank() == 0 {
                    return Err("layernorm needs features to normalize".into());
                }
                Box::new(LayerNorm::new(input, self.eps.unwrap_or(1e-5)))
            }
            "sequence_pool" => {
                let mode = PoolMode::from_name(self.mode.as_deref().unwrap_or("mean"))?;
                Box::new(SequencePool::new(input, mode)?)
            }
            "lstm" | "gru" => {
                let units = self.units.ok_or("a recurrent layer needs `units`")?;
                let cell = if self.kind == "lstm" {
                    Cell::Lstm
                } else {
                    Cell::Gru
                };
                let width = input.dim(input.rank().saturating_sub(1)) as u128;
                check_size(
                    4 * units as u128 * (width + units as u128) * 2,
                    input.numel() as u128 * units as u128,
                )?;
                Box::new(Recurrent::new(
                    cell,
                    input,
                    units,
                    self.bidirectional.unwrap_or(false),
                    self.return_sequences.unwrap_or(false),
                    rng,
                )?)
            }
            "attention" => {
                let heads = self.heads.ok_or("attention needs `heads`")?;
                Box::new(Attention::new(input, heads, self.rate.unwrap_or(0.0), rng)?)
            }
            "transformer_encoder" => {
                let spec = EncoderSpec {
                    heads: self.heads.ok_or("a transformer_encoder needs `heads`")?,
                    ff_units: self.ff_units.unwrap_or(2048),
                    blocks: self.blocks.unwrap_or(1),
                    norm_first: self.norm_first.unwrap_or(false),
                    rate: self.rate.unwrap_or(0.1),
                    activation: self.activation()?.unwrap_or(Activation::Relu),
                };
                let d = input.dim(input.rank().saturating_sub(1)) as u128;
                let per_block = 4 * d * d + 2 * d * spec.ff_units as u128;
                check_size(per_block * spec.blocks as u128, input.numel() as u128 * 4)?;
                Box::new(TransformerEncoder::new(input, &spec, rng)?)
            }
            "dense" => {
                let units = self.units.ok_or("a dense layer needs `units`")?;
                if units == 0 {
                    return Err("`units` must be at least 1".into());
                }
                if input.rank() != 1 {
                    return Err(format!(
                        "dense needs a flat input [features], got {input}; add a flatten layer before it"
                    ));
                }
                let activation = self.activation()?;
                let bias = self.bias.unwrap_or(true);
                check_size(input.dim(0) as u128 * units as u128, units as u128)?;
                Box::new(Dense::new(input.dim(0), units, bias, activation, rng))
            }
            "dropout" => {
                let rate = self.rate.ok_or("a dropout layer needs `rate`")?;
                if !(0.0..1.0).contains(&rate) {
                    return Err(format!("`rate` must be in [0, 1), got {rate}"));
                }
                Box::new(Dropout::new(rate, input))
            }
            "flatten" => Box::new(Flatten::new(input)),
            "conv2d" => {
                image_input("conv2d", input)?;
                let filters = self.filters.ok_or("a conv2d layer needs `filters`")?;
                let kernel = self.kernel.ok_or("a conv2d layer needs `kernel`")?.get();
                let stride = self.stride.map_or((1, 1), Pair::get);
                let pad = self.padding(kernel, stride)?;
                fits(input, kernel, stride, pad)?;
                if filters == 0 || stride.0 == 0 || stride.1 == 0 {
                    return Err("`filters` and `stride` must be at least 1".into());
                }
                let bias = self.bias.unwrap_or(true);
                let (f, k) = (filters as u128, (kernel.0 * kernel.1) as u128);
                let out = |size: usize, k: usize, s: usize, p: usize| (size + 2 * p - k) / s + 1;
                let plane = out(input.dim(1), kernel.0, stride.0, pad.0) as u128
                    * out(input.dim(2), kernel.1, stride.1, pad.1) as u128;
                check_size(f * input.dim(0) as u128 * k, f * plane)?;
                Box::new(Conv2d::new(
                    input,
                    filters,
                    kernel,
                    stride,
                    pad,
                    bias,
                    self.activation()?,
                    rng,
                ))
            }
            "maxpool2d" | "avgpool2d" => {
                image_input(&self.kind, input)?;
                let kernel = self.kernel.map_or((2, 2), Pair::get);
                let stride = self.stride.map_or(kernel, Pair::get);
                fits(input, kernel, stride, (0, 0))?;
                let kind = if self.kind == "maxpool2d" {
                    Pool::Max
                } else {
                    Pool::Avg
                };
                Box::new(Pool2d::new(kind, input, kernel, stride))
            }
            "global_avgpool" => {
                image_input("global_avgpool", input)?;
                Box::new(GlobalAvgPool::new(input))
            }
            "batchnorm" => {
                if input.rank() != 1 && input.rank() != 3 {
                    return Err(format!("batchnorm follows a dense ([features]) or conv2d ([channels, height, width]) layer, got {input}"));
                }
                Box::new(BatchNorm::new(
                    input,
                    self.momentum.unwrap_or(0.1),
                    self.eps.unwrap_or(1e-5),
                ))
            }
            name => {
                let activation = Activation::from_name(name, self.slope).expect("listed above");
                Box::new(ActivationLayer::new(activation, input))
            }
        })
    }
}
