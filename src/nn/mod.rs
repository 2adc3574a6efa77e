//! Layers and the sequential model built from the config's `[[model.layers]]`.

mod activation;
mod attention;
mod batchnorm;
mod conv2d;
mod dense;
mod dropout;
mod embedding;
mod flatten;
mod layernorm;
mod merge;
mod model;
mod pool;
mod recurrent;
mod sequence;
mod spec;

pub use activation::Activation;
pub use model::{InputPart, Model, Source, SummaryRow, INPUT_NAME};
pub use spec::{LayerSpec, Padding, Pair};

use crate::onnx::Graph;
use crate::tensor::{Rng, Shape, Tensor};

/// How a forward pass runs: training mode enables dropout, which draws from `rng`; `mask`
/// marks the real (1) and padding (0) steps `[batch, len]` of the sequences in flight, set by
/// the embedding that reads token ids, so pooling, attention and recurrent layers skip padding.
pub struct Mode<'a> {
    pub training: bool,
    pub rng: &'a mut Rng,
    pub mask: Option<Tensor>,
    /// Where this batch's first row sits in the step's global batch: a rank of a data-parallel
    /// run draws its rows' part of the masks one process would draw for the whole batch.
    pub first_row: usize,
}

impl<'a> Mode<'a> {
    pub fn new(training: bool, rng: &'a mut Rng) -> Mode<'a> {
        Mode {
            training,
            rng,
            mask: None,
            first_row: 0,
        }
    }

    /// The same, for rows starting at `first_row` of the global batch.
    pub fn at_row(self, first_row: usize) -> Mode<'a> {
        Mode { first_row, ..self }
    }
}

/// One layer of a sequential model. Shapes are per sample (no batch axis); tensors passed to
/// `forward` carry the batch as their first axis.
pub trait Layer: Send + Sync {
    /// The config's type name: "dense", "dropout", ...
    fn kind(&self) -> &'static str;
    fn output_shape(&self) -> &Shape;
    fn forward(&self, x: &Tensor, mode: &mut Mode) -> Tensor;
    /// The forward pass on the layer's inputs: one for most layers, several for the merge
    /// layers (`add`, `concat`), which override this.
    fn forward_many(&self, inputs: &[Tensor], mode: &mut Mode) -> Tensor {
        self.forward(&inputs[0], mode)
    }
    /// Learned parameters by local name ("weight", "bias"), in checkpoint order.
    fn params(&self) -> Vec<(String, &Tensor)> {
        Vec::new()
    }
    /// State that is saved and restored but not learned (batchnorm's running statistics).
    fn buffers(&self) -> Vec<(String, &Tensor)> {
        Vec::new()
    }
    /// The activation this layer ends with, if any.
    fn final_activation(&self) -> Option<Activation> {
        None
    }
    /// Stop applying `final_activation` (a loss computes it fused with itself).
    fn fold_activation(&mut self) {}
    /// Values per sample the layer holds at once while evaluating: its output, and for
    /// attention its score tensors, which grow with the square of the sequence length.
    fn eval_floats_per_sample(&self) -> usize {
        self.output_shape().numel()
    }
    /// The layer in evaluation mode as ONNX nodes reading `inputs` (value names, batch axis
    /// first); returns the output's name. `prefix` names its tensors as the checkpoint does
    /// (`layers.3`).
    fn export(&self, g: &mut Graph, prefix: &str, inputs: &[String]) -> Result<String, String>;
}

/// `activation(y + bias)` with the bias along `axis` of `y` (a dense layer's last axis, a
/// convolution's channel axis). A ReLU after a bias, the common case, runs as one fused op.
pub(crate) fn bias_activation(
    y: Tensor,
    bias: Option<&Tensor>,
    axis: usize,
    activation: Option<Activation>,
) -> Tensor {
    if let (Some(b), Some(Activation::Relu)) = (bias, activation) {
        return y.bias_relu(b, axis);
    }
    let y = match bias {
        Some(b) => {
            let mut dims = vec![1; y.rank() - axis];
            dims[0] = b.numel();
            y.add(&b.reshape(dims))
        }
        None => y,
    };
    match activation {
        Some(a) => a.apply(&y),
        None => y,
    }
}

/// `weight` and, when present, `bias`: the parameters of dense and conv layers.
pub(crate) fn weight_and_bias<'a>(
    weight: &'a Tensor,
    bias: &'a Option<Tensor>,
) -> Vec<(String, &'a Tensor)> {
    let mut p = vec![("weight".to_string(), weight)];
    if let Some(b) = bias {
        p.push(("bias".to_string(), b));
    }
    p
}

/// A dense or conv layer's `weight` and, when present, `bias` as ONNX initializers under
/// their checkpoint names: the node's inputs after its data input.
pub(crate) fn export_weight_and_bias(
    g: &mut Graph,
    prefix: &str,
    weight: &Tensor,
    bias: &Option<Tensor>,
) -> Vec<String> {
    let mut names = vec![g.tensor(&format!("{prefix}.weight"), weight, weight.dims())];
    if let Some(b) = bias {
        names.push(g.tensor(&format!("{prefix}.bias"), b, b.dims()));
    }
    names
}

/// Tensors with their local names (PyTorch's: `weight`, `self_attn.in_proj_weight`, ...).
pub(crate) fn named<'a>(tensors: &[(&str, &'a Tensor)]) -> Vec<(String, &'a Tensor)> {
    tensors.iter().map(|(n, t)| (n.to_string(), *t)).collect()
}

/// PyTorch's default initialisation for dense and conv layers: U(-1/√fan_in, 1/√fan_in) for
/// weights (kaiming_uniform with a = √5 reduces to this) and biases alike.
pub(crate) fn pytorch_uniform(shape: impl Into<Shape>, fan_in: usize, rng: &mut Rng) -> Tensor {
    let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
    Tensor::rand_uniform(shape, -bound, bound, rng).with_requires_grad()
}
