//! The config's typed form, with every default filled: what the run directory stores.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::loss::Loss;
use crate::nn::LayerSpec;
use crate::optim::schedule::Schedule;

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
    pub loss: Option<Loss>,
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    #[serde(default)]
    pub train: TrainConfig,
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
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Starting weights (safetensors, named as kiln's checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
    pub layers: Vec<LayerSpec>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerType {
    Sgd,
    #[default]
    Adam,
    Adamw,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerConfig {
    #[serde(rename = "type")]
    pub kind: OptimizerType,
    pub lr: f32,
    pub weight_decay: f32,
    /// sgd only.
    pub momentum: f32,
    /// sgd only.
    pub nesterov: bool,
    /// adam / adamw only.
    pub betas: [f32; 2],
    /// adam / adamw only.
    pub eps: f32,
    pub schedule: Schedule,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            kind: OptimizerType::Adam,
            lr: 1e-3,
            weight_decay: 0.0,
            momentum: 0.0,
            nesterov: false,
            betas: [0.9, 0.999],
            eps: 1e-8,
            schedule: Schedule::default(),
        }
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
            keep_last: 3,
            best: None,
        }
    }
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
