//! A sequential model: layers built in order, each from the previous one's output shape.

use super::{Activation, Layer, LayerSpec, Mode};
use crate::backend::Device;
use crate::error::{Error, Result};
use crate::tensor::{Rng, Shape, Tensor};

pub struct Model {
    layers: Vec<Box<dyn Layer>>,
    input_shape: Shape,
    /// The final activation left to the loss, which computes it fused (softmax with
    /// cross-entropy, sigmoid with binary cross-entropy); predict applies it to the outputs.
    folded: Option<Activation>,
}

/// One row of the Keras-style summary.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    pub name: String,
    pub kind: String,
    pub output_shape: Shape,
    pub params: usize,
}

impl Model {
    /// Build the layers on a per-sample input shape, initialising weights from `rng`. A layer
    /// that does not fit its input is reported with its index, type and both shapes.
    pub fn build(specs: &[LayerSpec], input_shape: &Shape, rng: &mut Rng) -> Result<Model> {
        if specs.is_empty() {
            return Err(Error::model("model.layers", "the model has no layers"));
        }
        let mut layers: Vec<Box<dyn Layer>> = Vec::with_capacity(specs.len());
        let mut params = 0u128;
        for (i, spec) in specs.iter().enumerate() {
            let input = layers
                .last()
                .map_or(input_shape, |l| l.output_shape())
                .clone();
            let place = || format!("model.layers.{i} ({})", spec.kind);
            let layer = spec
                .build(&input, rng)
                .map_err(|m| Error::model(place(), m))?;
            // Each layer fits alone; together they must fit too (value, gradient, 2 slots).
            params += layer
                .params()
                .iter()
                .map(|(_, t)| t.numel() as u128)
                .sum::<u128>();
            crate::limits::fits(params * 16).map_err(|e| {
                Error::model(
                    place(),
                    format!("the model's {params} weights up to here: training them {e}"),
                )
            })?;
            layers.push(layer);
        }
        Ok(Model {
            layers,
            input_shape: input_shape.clone(),
            folded: None,
        })
    }

    /// The activation the last layer ends with (an activation layer, or a dense or conv
    /// layer's `activation`).
    pub fn final_activation(&self) -> Option<Activation> {
        self.layers.last().and_then(|l| l.final_activation())
    }

    /// Fold a final `activation` into the loss, which computes it fused: the model then outputs
    /// logits. True if the model ended with it.
    pub fn fold_final(&mut self, activation: Activation) -> bool {
        if self.final_activation() != Some(activation) {
            return false;
        }
        self.layers
            .last_mut()
            .expect("a model has layers")
            .fold_activation();
        self.folded = Some(activation);
        true
    }

    /// Fold a final softmax into a cross-entropy loss.
    pub fn fold_final_softmax(&mut self) -> bool {
        self.fold_final(Activation::Softmax)
    }

    pub fn folded(&self) -> Option<Activation> {
        self.folded
    }

    pub fn input_shape(&self) -> &Shape {
        &self.input_shape
    }

    /// Per-sample output shape.
    pub fn output_shape(&self) -> &Shape {
        self.layers
            .last()
            .expect("a model has layers")
            .output_shape()
    }

    /// `x` is `[batch, ...input_shape]`.
    pub fn forward(&self, x: &Tensor, mode: &mut Mode) -> Tensor {
        self.layers
            .iter()
            .fold(x.clone(), |h, layer| layer.forward(&h, mode))
    }

    /// The output for `x` in evaluation mode (dropout off, batchnorm on its running
    /// statistics), without recording gradients; `x` moves to the model's device first.
    pub fn infer(&self, x: &Tensor) -> Tensor {
        let _guard = crate::autograd::no_grad();
        let mut rng = Rng::new(0); // evaluation draws nothing
        let mode = &mut Mode {
            training: false,
            rng: &mut rng,
        };
        self.forward(&x.to_device(self.device()), mode)
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Layer `i` alone, for per-layer timing.
    pub fn forward_layer(&self, i: usize, x: &Tensor, mode: &mut Mode) -> Tensor {
        self.layers[i].forward(x, mode)
    }

    /// Parameters named as in checkpoints: `layers.<index>.<name>`.
    pub fn named_params(&self) -> Vec<(String, Tensor)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                l.params()
                    .into_iter()
                    .map(move |(n, t)| (format!("layers.{i}.{n}"), t.clone()))
            })
            .collect()
    }

    /// Parameters and buffers: everything a model file holds.
    pub fn named_state(&self) -> Vec<(String, Tensor)> {
        let mut state = self.named_params();
        for (i, l) in self.layers.iter().enumerate() {
            state.extend(
                l.buffers()
                    .into_iter()
                    .map(|(n, t)| (format!("layers.{i}.{n}"), t.clone())),
            );
        }
        state
    }

    /// Move every parameter and buffer to `device`, in place (optimizers holding them follow).
    pub fn to_device(&self, device: Device) {
        for (_, t) in self.named_state() {
            t.move_to(device);
        }
    }

    /// Where the model's weights live (the CPU for a model without any).
    pub fn device(&self) -> Device {
        self.named_state()
            .first()
            .map_or(Device::Cpu, |(_, t)| t.device())
    }

    pub fn num_params(&self) -> usize {
        self.named_params().iter().map(|(_, t)| t.numel()).sum()
    }

    pub fn summary(&self) -> Vec<SummaryRow> {
        self.layers
            .iter()
            .enumerate()
            .map(|(i, l)| SummaryRow {
                name: format!("layers.{i}"),
                kind: l.kind().to_string(),
                output_shape: l.output_shape().clone(),
                params: l.params().iter().map(|(_, t)| t.numel()).sum(),
            })
            .collect()
    }
}
