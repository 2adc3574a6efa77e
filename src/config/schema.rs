//! The config's typed form, with every default filled: what the run directory stores.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::backend::Precision;
use crate::loss::Loss;
use crate::nn::LayerSpec;
use crate::optim::schedule::Schedule;
use crate::optim::OptimizerKind;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Run name prefix.
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default = "default_seed")]
    pub seed: u64,
    pub data: DataConfig,
    pub model: ModelConfig,
    /// Default: cross_entropy for classification, mse for regression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<LossConfig>,
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    #[serde(default)]
    pub train: TrainConfig,
    /// Where each key was written, for errors found later.
    #[serde(skip)]
    pub places: super::Places,
}

impl Config {
    /// A config error found after parsing (by the data or the model) names its key as its
    /// place; give it the key's file:line:col (or `--set`) instead, and keep the key.
    pub fn place(&self, e: crate::error::Error) -> crate::error::Error {
        use crate::error::Error;
        match e {
            Error::Config { place, message } if is_key_path(&place) => {
                Error::config(self.places.of(&place), format!("{place}: {message}"))
            }
            Error::Many(all) => Error::Many(all.into_iter().map(|e| self.place(e)).collect()),
            e => e,
        }
    }

    /// The loss the config names, if it names one.
    pub fn loss_kind(&self) -> Option<Loss> {
        self.loss.as_ref().and_then(|l| l.kind)
    }
}

/// `[loss]`: the loss (`type`) and its options; each option belongs to some losses only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "LossKeys", into = "LossKeys")]
pub struct LossConfig {
    /// `type`; default: by the task (cross_entropy, or mse).
    pub kind: Option<Loss>,
    /// cross_entropy / bce: a weight per class, or "balanced" (n / (classes · count), fitted
    /// on the training split, as scikit-learn's `compute_class_weight`).
    pub class_weights: Option<ClassWeights>,
    /// cross_entropy: PyTorch's `label_smoothing`.
    pub label_smoothing: f32,
}

/// `loss.class_weights`: given per class, or computed from the training split.
#[derive(Clone, Debug, PartialEq)]
pub enum ClassWeights {
    Balanced,
    Given(Vec<f32>),
}

impl Serialize for ClassWeights {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ClassWeights::Balanced => s.serialize_str("balanced"),
            ClassWeights::Given(w) => w.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ClassWeights {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let expected = "expected a list of numbers (one per class) or \"balanced\"";
        match toml::Value::deserialize(d)? {
            toml::Value::String(s) if s == "balanced" => Ok(ClassWeights::Balanced),
            toml::Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    toml::Value::Float(f) => Some(*f as f32),
                    toml::Value::Integer(i) => Some(*i as f32),
                    _ => None,
                })
                .collect::<Option<Vec<f32>>>()
                .map(ClassWeights::Given)
                .ok_or_else(|| D::Error::custom(expected)),
            _ => Err(D::Error::custom(expected)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum LossName {
    Mse,
    Mae,
    Huber,
    CrossEntropy,
    Bce,
}

/// The keys of `[loss]` as TOML spells them; checked per `type` into a `LossConfig`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LossKeys {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    name: Option<LossName>,
    /// huber only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delta: Option<f32>,
    /// cross_entropy and bce only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    class_weights: Option<ClassWeights>,
    /// cross_entropy only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label_smoothing: Option<f32>,
}

impl TryFrom<LossKeys> for LossConfig {
    type Error = String;

    /// Errors start with "at `key`:" so the config loader can point at the key.
    fn try_from(k: LossKeys) -> Result<LossConfig, String> {
        let kind = k.name.map(|name| match name {
            LossName::Mse => Loss::Mse,
            LossName::Mae => Loss::Mae,
            LossName::Huber => Loss::Huber {
                delta: k.delta.unwrap_or(1.0),
            },
            LossName::CrossEntropy => Loss::CrossEntropy,
            LossName::Bce => Loss::Bce,
        });
        // Without a type the task decides it later; only huber's delta needs the type now.
        let Some(kind) = kind else {
            if k.delta.is_some() {
                return Err(
                    "at `loss.delta`: delta applies to huber only; set loss.type = \"huber\""
                        .into(),
                );
            }
            return Ok(LossConfig {
                kind: None,
                class_weights: k.class_weights,
                label_smoothing: k.label_smoothing.unwrap_or(0.0),
            });
        };
        let owners = [
            ("delta", k.delta.is_some(), "huber"),
            (
                "class_weights",
                k.class_weights.is_some(),
                "cross_entropy and bce",
            ),
            (
                "label_smoothing",
                k.label_smoothing.is_some(),
                "cross_entropy",
            ),
        ];
        for (key, set, owner) in owners {
            if set && !owner.split(" and ").any(|o| o == kind.name()) {
                return Err(format!(
                    "at `loss.{key}`: {key} applies to {owner} only, not {}",
                    kind.name()
                ));
            }
        }
        Ok(LossConfig {
            kind: Some(kind),
            class_weights: k.class_weights,
            label_smoothing: k.label_smoothing.unwrap_or(0.0),
        })
    }
}

impl From<LossConfig> for LossKeys {
    fn from(c: LossConfig) -> LossKeys {
        let (name, delta) = match c.kind {
            None => (None, None),
            Some(Loss::Mse) => (Some(LossName::Mse), None),
            Some(Loss::Mae) => (Some(LossName::Mae), None),
            Some(Loss::Huber { delta }) => (Some(LossName::Huber), Some(delta)),
            Some(Loss::CrossEntropy) => (Some(LossName::CrossEntropy), None),
            Some(Loss::Bce) => (Some(LossName::Bce), None),
        };
        LossKeys {
            name,
            delta,
            class_weights: c.class_weights,
            label_smoothing: (c.label_smoothing != 0.0).then_some(c.label_smoothing),
        }
    }
}

/// `data.target`, `loss`, `model.layers.2.units`: a top-level key of the config, then keys.
fn is_key_path(s: &str) -> bool {
    const TOP: [&str; 7] = [
        "name",
        "seed",
        "data",
        "model",
        "loss",
        "optimizer",
        "train",
    ];
    let first = s.split('.').next().unwrap_or("");
    TOP.contains(&first)
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn default_name() -> String {
    "run".into()
}

fn default_seed() -> u64 {
    42
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Classification,
    Regression,
}

impl Task {
    /// As run.json spells it.
    pub fn name(self) -> &'static str {
        match self {
            Task::Classification => "classification",
            Task::Regression => "regression",
        }
    }

    /// The loss a run trains with when the config names none.
    pub fn default_loss(self) -> Loss {
        match self {
            Task::Classification => Loss::CrossEntropy,
            Task::Regression => Loss::Mse,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    Standard,
    Minmax,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// A missing value is an error naming file, row and column.
    #[default]
    Error,
    /// Replace with the training split's column mean.
    Mean,
    Zero,
    /// Drop the row.
    Drop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    Number,
    Category,
    Text,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tokenizer {
    /// Runs of letters and digits; other visible characters one token each.
    #[default]
    Word,
    /// Every character.
    Char,
}

/// `[data.columns.NAME]`: a feature column's type and its options. Each option belongs to
/// one type; `type` may be left to inference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ColumnKeys", into = "ColumnKeys")]
pub struct ColumnSpec {
    pub kind: Option<ColumnType>,
    /// category: the most frequent values kept (one index is "other"). Default 50.
    pub max_categories: usize,
    pub tokenizer: Tokenizer,
    /// text: tokens per row; default the 95th percentile of the training rows (≤ 512).
    pub max_len: Option<usize>,
    /// text: the vocabulary, padding and unknown included. Default 10,000.
    pub vocab_size: usize,
    /// text: lower-case before tokenizing (after Unicode NFKC normalization). Default true.
    pub lowercase: bool,
    /// The option keys the config gave (a key of another type is an error even at its
    /// default value).
    pub given: Vec<&'static str>,
}

impl Default for ColumnSpec {
    fn default() -> Self {
        ColumnSpec {
            kind: None,
            max_categories: 50,
            tokenizer: Tokenizer::Word,
            max_len: None,
            vocab_size: 10_000,
            lowercase: true,
            given: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnKeys {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    kind: Option<ColumnType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_categories: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tokenizer: Option<Tokenizer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_len: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vocab_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lowercase: Option<bool>,
}

impl ColumnSpec {
    /// The options given that do not belong to `kind` (checked once the type is known, given
    /// or inferred).
    pub fn foreign_keys(&self, kind: ColumnType) -> Vec<&'static str> {
        let own: &[&str] = match kind {
            ColumnType::Number => &[],
            ColumnType::Category => &["max_categories"],
            ColumnType::Text => &["tokenizer", "max_len", "vocab_size", "lowercase"],
        };
        self.given
            .iter()
            .copied()
            .filter(|k| !own.contains(k))
            .collect()
    }

    /// An error naming the first option given that does not belong to `kind`.
    pub fn check_keys(&self, kind: ColumnType) -> Result<(), String> {
        match self.foreign_keys(kind).first() {
            Some(key) => {
                let name = format!("{kind:?}").to_lowercase();
                Err(format!("{key} does not apply to a {name} column"))
            }
            None => Ok(()),
        }
    }
}

impl TryFrom<ColumnKeys> for ColumnSpec {
    type Error = String;

    fn try_from(k: ColumnKeys) -> Result<ColumnSpec, String> {
        let d = ColumnSpec::default();
        let given = [
            ("max_categories", k.max_categories.is_some()),
            ("tokenizer", k.tokenizer.is_some()),
            ("max_len", k.max_len.is_some()),
            ("vocab_size", k.vocab_size.is_some()),
            ("lowercase", k.lowercase.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect();
        let spec = ColumnSpec {
            given,
            kind: k.kind,
            max_categories: k.max_categories.unwrap_or(d.max_categories),
            tokenizer: k.tokenizer.unwrap_or(d.tokenizer),
            max_len: k.max_len,
            vocab_size: k.vocab_size.unwrap_or(d.vocab_size),
            lowercase: k.lowercase.unwrap_or(d.lowercase),
        };
        if let Some(kind) = k.kind {
            spec.check_keys(kind)?;
        }
        Ok(spec)
    }
}

impl From<ColumnSpec> for ColumnKeys {
    fn from(c: ColumnSpec) -> ColumnKeys {
        let d = ColumnSpec::default();
        ColumnKeys {
            kind: c.kind,
            max_categories: (c.max_categories != d.max_categories).then_some(c.max_categories),
            tokenizer: (c.tokenizer != d.tokenizer).then_some(c.tokenizer),
            max_len: c.max_len,
            vocab_size: (c.vocab_size != d.vocab_size).then_some(c.vocab_size),
            lowercase: (c.lowercase != d.lowercase).then_some(c.lowercase),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetNormalize {
    Standard,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    #[default]
    Csv,
    /// Folders of images, one subfolder per class.
    Images,
}

/// `normalize`: a name (fitted on the training split), or given per-channel statistics
/// (images).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NormalizeSpec {
    Named(Normalize),
    Given { mean: Vec<f32>, std: Vec<f32> },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBadImage {
    /// An image that does not decode is an error naming it.
    #[default]
    Error,
    /// Leave it out, with one warning giving the count.
    Skip,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    #[serde(default)]
    pub format: DataFormat,
    pub train: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<PathBuf>,
    /// Fraction of the training file held out for validation when there is no `valid` file
    /// (seeded; stratified for classification). Default 0.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_split: Option<f64>,
    /// Cross-validation: validate on fold `fold` of `folds` (seeded, stratified for
    /// classification) and train on the others, instead of `valid` / `valid_split`. Set by
    /// `train --folds` and `sweep --folds` on each fold's run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kfold: Option<KFold>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<PathBuf>,
    /// Target column; default: the last column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Feature columns; default: every column but the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// Default: inferred from the target column, and said in the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    /// Multiply every feature by this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f32>,
    /// CSV: "standard" or "minmax" per feature, fitted on the training split. Images:
    /// "standard" per channel fitted on the training split, or `{ mean = [..], std = [..] }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalize: Option<NormalizeSpec>,
    #[serde(default)]
    pub missing: Missing,
    /// Images: `[height, width]` to resize to; default: the first training image's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<[usize; 2]>,
    /// Images: 1 (grey) or 3 (RGB). Default 3, as torchvision's and Keras's loaders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<usize>,
    /// Images: training-only augmentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<Augment>,
    #[serde(default)]
    pub on_bad_image: OnBadImage,
    /// Regression: "standard" trains on (y − mean) / std of the training targets; losses are
    /// in those units, metrics and predictions in the target's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_normalize: Option<TargetNormalize>,
    /// CSV: how to read feature columns, by name; a column not listed has its type inferred.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub columns: std::collections::BTreeMap<String, ColumnSpec>,
    /// CSV: read the training file in chunks through a seeded shuffle buffer instead of
    /// holding it, for tables larger than memory (`data::stream`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// With `stream` and `train.shuffle`: rows in the shuffle buffer (default
    /// `DEFAULT_SHUFFLE_BUFFER`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shuffle_buffer: Option<usize>,
}

/// Rows a streamed epoch's shuffle buffer holds when `data.shuffle_buffer` is not given.
pub const DEFAULT_SHUFFLE_BUFFER: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Starting weights (safetensors, named as kiln's checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
    pub layers: Vec<LayerSpec>,
}

/// `[optimizer]`: the update rule (`type`, default adam, with its own keys), the learning rate,
/// weight decay and schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "OptimizerKeys", into = "OptimizerKeys")]
pub struct OptimizerConfig {
    pub kind: OptimizerKind,
    pub lr: f32,
    pub weight_decay: f32,
    pub schedule: Schedule,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::try_from(OptimizerKeys::default()).expect("the defaults are valid")
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum OptimizerName {
    Sgd,
    #[default]
    Adam,
    Adamw,
}

/// The keys of `[optimizer]` as TOML spells them; turned into an `OptimizerConfig` by checking
/// that each key belongs to the chosen `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OptimizerKeys {
    #[serde(rename = "type", default)]
    name: OptimizerName,
    #[serde(default = "default_lr")]
    lr: f32,
    #[serde(default)]
    weight_decay: f32,
    #[serde(default)]
    schedule: Schedule,
    /// sgd only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    momentum: Option<f32>,
    /// sgd only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nesterov: Option<bool>,
    /// adam / adamw only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    betas: Option<[f32; 2]>,
    /// adam / adamw only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    eps: Option<f32>,
}

fn default_lr() -> f32 {
    1e-3
}

impl Default for OptimizerKeys {
    fn default() -> Self {
        OptimizerKeys {
            name: OptimizerName::Adam,
            lr: default_lr(),
            weight_decay: 0.0,
            schedule: Schedule::default(),
            momentum: None,
            nesterov: None,
            betas: None,
            eps: None,
        }
    }
}

impl TryFrom<OptimizerKeys> for OptimizerConfig {
    type Error = String;

    /// Errors start with "at `key`:" so the config loader can point at the key.
    fn try_from(k: OptimizerKeys) -> Result<OptimizerConfig, String> {
        let sgd_only = [
            ("momentum", k.momentum.is_some()),
            ("nesterov", k.nesterov.is_some()),
        ];
        let adam_only = [("betas", k.betas.is_some()), ("eps", k.eps.is_some())];
        let (foreign, owners) = match k.name {
            OptimizerName::Sgd => (adam_only, "betas and eps apply to adam and adamw only"),
            OptimizerName::Adam | OptimizerName::Adamw => {
                (sgd_only, "momentum and nesterov apply to sgd only")
            }
        };
        if let Some((key, _)) = foreign.iter().find(|(_, set)| *set) {
            return Err(format!("at `optimizer.{key}`: {owners}"));
        }
        let [beta1, beta2] = k.betas.unwrap_or([0.9, 0.999]);
        let eps = k.eps.unwrap_or(1e-8);
        let kind = match k.name {
            OptimizerName::Sgd => OptimizerKind::Sgd {
                momentum: k.momentum.unwrap_or(0.0),
                nesterov: k.nesterov.unwrap_or(false),
            },
            OptimizerName::Adam => OptimizerKind::Adam { beta1, beta2, eps },
            OptimizerName::Adamw => OptimizerKind::Adamw { beta1, beta2, eps },
        };
        Ok(OptimizerConfig {
            kind,
            lr: k.lr,
            weight_decay: k.weight_decay,
            schedule: k.schedule,
        })
    }
}

impl From<OptimizerConfig> for OptimizerKeys {
    fn from(c: OptimizerConfig) -> OptimizerKeys {
        let mut keys = OptimizerKeys {
            lr: c.lr,
            weight_decay: c.weight_decay,
            schedule: c.schedule,
            ..OptimizerKeys::default()
        };
        match c.kind {
            OptimizerKind::Sgd { momentum, nesterov } => {
                keys.name = OptimizerName::Sgd;
                (keys.momentum, keys.nesterov) = (Some(momentum), Some(nesterov));
            }
            OptimizerKind::Adam { beta1, beta2, eps }
            | OptimizerKind::Adamw { beta1, beta2, eps } => {
                keys.name = match c.kind {
                    OptimizerKind::Adam { .. } => OptimizerName::Adam,
                    _ => OptimizerName::Adamw,
                };
                (keys.betas, keys.eps) = (Some([beta1, beta2]), Some(eps));
            }
        }
        keys
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub shuffle: bool,
    /// classification: accuracy, top5 (any topK), f1; regression: rmse, mae, r2.
    /// Default: accuracy, or rmse.
    pub metrics: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grad_clip_norm: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
    pub checkpoint: CheckpointConfig,
    /// TensorBoard: the training loss every this many steps (0: never).
    pub log_every_steps: u64,
    /// At most this many batches per epoch, of training and of each evaluation (a quick look
    /// at a large dataset; Lightning's `limit_*_batches`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_batches: Option<usize>,
    /// A wall-clock budget for this process's training: at the first step boundary past it
    /// the run checkpoints and ends with status `timeout` (resumable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_time: Option<Seconds>,
    /// The operand format of the matrix products (PyTorch's autocast): `f32`, `bf16`, `f16`.
    pub precision: Precision,
    /// Dynamic loss scaling (f16 only; on by default there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<LossScale>,
    /// Whole-step CUDA graphs (reserved: capture is not built yet, so only `false` is taken).
    pub cuda_graphs: bool,
}

/// `train.loss_scale`: PyTorch's `GradScaler` settings. The loss is multiplied by the scale
/// before the backward pass and the gradients divided by it before the step; a step whose
/// gradients are not finite is skipped and the scale halved, and after `growth_interval` clean
/// steps in a row the scale doubles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossScale {
    pub init_scale: f64,
    pub growth_interval: u64,
}

impl Default for LossScale {
    fn default() -> Self {
        LossScale {
            init_scale: 65536.0,
            growth_interval: 2000,
        }
    }
}

/// A duration in seconds, written as a number of seconds or as `"90s"`, `"45m"`, `"1h30m"`,
/// `"2d"` or `"HH:MM:SS"`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "DurationText", into = "f64")]
pub struct Seconds(pub f64);

#[derive(Deserialize)]
#[serde(untagged)]
enum DurationText {
    Number(f64),
    Text(String),
}

impl From<Seconds> for f64 {
    fn from(s: Seconds) -> f64 {
        s.0
    }
}

impl TryFrom<DurationText> for Seconds {
    type Error = String;
    fn try_from(d: DurationText) -> Result<Seconds, String> {
        let seconds = match &d {
            DurationText::Number(n) => Some(*n),
            DurationText::Text(t) => parse_duration(t.trim()),
        };
        match seconds {
            Some(s) if s.is_finite() && s > 0.0 => Ok(Seconds(s)),
            _ => Err(format!(
                "{}: a positive number of seconds, or a duration such as \"90s\", \"45m\", \"1h30m\", \"2d\" or \"01:30:00\"",
                match d {
                    DurationText::Number(n) => n.to_string(),
                    DurationText::Text(t) => format!("{t:?}"),
                }
            )),
        }
    }
}

/// `"1h30m"`-style (units d, h, m, s, each at most once, in that order) or `"HH:MM:SS"`.
fn parse_duration(t: &str) -> Option<f64> {
    if t.contains(':') {
        let parts: Vec<f64> = t
            .split(':')
            .map(|p| p.parse::<u32>().ok().map(f64::from))
            .collect::<Option<_>>()?;
        return match parts[..] {
            [h, m, s] if m < 60.0 && s < 60.0 => Some(h * 3600.0 + m * 60.0 + s),
            _ => None,
        };
    }
    let units = [('d', 86400.0), ('h', 3600.0), ('m', 60.0), ('s', 1.0)];
    let (mut total, mut rest, mut next_unit) = (0.0, t, 0);
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let value: f64 = rest[..digits].parse().ok()?;
        let unit = rest[digits..].chars().next()?;
        let k = units[next_unit..].iter().position(|(u, _)| *u == unit)? + next_unit;
        total += value * units[k].1;
        (rest, next_unit) = (&rest[digits + 1..], k + 1);
    }
    (!t.is_empty()).then_some(total)
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 32,
            shuffle: true,
            metrics: Vec::new(),
            grad_clip_norm: None,
            early_stopping: None,
            checkpoint: CheckpointConfig::default(),
            log_every_steps: 50,
            limit_batches: None,
            max_time: None,
            precision: Precision::F32,
            loss_scale: None,
            cuda_graphs: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EarlyStopping {
    /// `valid.loss`, `valid.<metric>`, `train.loss`, ...
    pub monitor: String,
    pub patience: usize,
    pub min_delta: f64,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping {
            monitor: "valid.loss".into(),
            patience: 3,
            min_delta: 0.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    pub every_epochs: usize,
    /// At least this long between checkpoints (seconds), so a run of many short epochs does not
    /// spend its time writing them; the last epoch and an interrupt always write one.
    pub every_seconds: f64,
    pub keep_last: usize,
    /// The metric that picks model.safetensors; default `valid.loss` when there is a valid
    /// split, else the last epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best: Option<String>,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            every_epochs: 1,
            every_seconds: 30.0,
            keep_last: 3,
            best: None,
        }
    }
}

/// One fold of a k-fold cross-validation: `data.kfold = { folds = 5, fold = 2 }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KFold {
    /// How many parts the training rows are dealt into (2 or more).
    pub folds: usize,
    /// The part validated on, 1 to `folds`.
    pub fold: usize,
}

/// Training-only augmentation, drawn from the step's random stream.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Augment {
    /// Mirror left-right with probability ½.
    pub flip_horizontal: bool,
    /// Pad this many zero pixels on each side, then crop back at a random offset.
    pub random_crop: usize,
}

impl Augment {
    pub fn is_active(&self) -> bool {
        self.flip_horizontal || self.random_crop > 0
    }
}
