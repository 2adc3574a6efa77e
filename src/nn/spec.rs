//! `[[model.layers]]` entries: one flat record whose keys each layer type picks from, validated
//! per type so an error names the layer and the key.

use serde::{Deserialize, Serialize};

use super::activation::ActivationLayer;
use super::dense::Dense;
use super::dropout::Dropout;
use super::flatten::Flatten;
use super::{Activation, Layer};
use crate::tensor::{Rng, Shape};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    #[serde(rename = "type")]
    pub kind: String,
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
}

/// Layer types and the keys each accepts besides `type`.
pub const LAYER_KEYS: &[(&str, &[&str])] = &[
    ("dense", &["units", "activation", "bias", "slope"]),
    ("dropout", &["rate"]),
    ("flatten", &[]),
    ("relu", &[]),
    ("leaky_relu", &["slope"]),
    ("gelu", &[]),
    ("sigmoid", &[]),
    ("tanh", &[]),
    ("softmax", &[]),
];

impl LayerSpec {
    /// Keys set in this entry, besides `type`.
    fn keys_set(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let set: [(&'static str, bool); 5] = [
            ("units", self.units.is_some()),
            ("activation", self.activation.is_some()),
            ("bias", self.bias.is_some()),
            ("rate", self.rate.is_some()),
            ("slope", self.slope.is_some()),
        ];
        for (k, present) in set {
            if present {
                keys.push(k);
            }
        }
        keys
    }

    /// Build this layer on an input of per-sample shape `input`. Errors are messages; the
    /// caller adds the layer's place.
    pub fn build(&self, input: &Shape, rng: &mut Rng) -> Result<Box<dyn Layer>, String> {
        let Some((_, allowed)) = LAYER_KEYS.iter().find(|(k, _)| *k == self.kind) else {
            let known: Vec<&str> = LAYER_KEYS.iter().map(|(k, _)| *k).collect();
            return Err(format!(
                "unknown layer type \"{}\"{}; known types: {}",
                self.kind,
                crate::config::did_you_mean(&self.kind, &known),
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
        Ok(match self.kind.as_str() {
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
                let activation = match &self.activation {
                    None => None,
                    Some(name) => {
                        Some(Activation::from_name(name, self.slope).ok_or_else(|| {
                            format!(
                                "unknown activation \"{name}\"{}; known: {}",
                                crate::config::did_you_mean(name, Activation::NAMES),
                                Activation::NAMES.join(", ")
                            )
                        })?)
                    }
                };
                let bias = self.bias.unwrap_or(true);
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
            name => {
                let activation = Activation::from_name(name, self.slope).expect("listed above");
                Box::new(ActivationLayer::new(activation, input))
            }
        })
    }
}
