//! Datasets behind one face: a config's data prepared into splits, labelled data read for
//! `eval`, and inputs read in batches for `predict`, with the schema (features, target,
//! classes, preprocessing, image size) a run saves beside its model. Each format lives in its
//! own module (`csv`, `images`); this module is the only place that picks between them.

pub mod csv;
pub mod images;
mod split;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use csv::stream;
pub use csv::{ByteTable, Column, FeatureValues, Preprocess, Transform};
pub use split::rows_held_out;

use crate::backend::Device;
use crate::config::{Augment, DataConfig, DataFormat, Task};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::tensor::{Rng, Shape, Tensor};

/// What a run knows about its data: saved in run.json, used by eval and predict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataSchema {
    pub features: Vec<String>,
    pub target: String,
    pub task: Task,
    /// Class names in index order (classification only).
    pub classes: Vec<String>,
    pub preprocess: Preprocess,
    /// Image runs: size, channels and per-channel normalization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<images::ImageSchema>,
    /// Regression with `data.target_normalize`: the training targets' mean and standard
    /// deviation; the model learns (y − mean) / std.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_scale: Option<TargetScale>,
    /// The category and text feature columns with their fitted encoders; `features` are the
    /// number columns. A row's input is the numbers (preprocessed), then each of these
    /// columns' encoding (one-hot slots, or token ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<csv::Column>,
}

/// The name layers read a table's number columns by, beside category and text columns.
pub const NUMBERS_PART: &str = "numbers";

/// A standardization of regression targets.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetScale {
    pub mean: f32,
    pub std: f32,
}

impl TargetScale {
    /// Fitted on the training targets (a constant target keeps std 1).
    pub fn fit(y: &[f32]) -> TargetScale {
        let n = y.len().max(1) as f64;
        let mean = y.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = y.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let std = if var > 0.0 { var.sqrt() as f32 } else { 1.0 };
        TargetScale {
            mean: mean as f32,
            std,
        }
    }

    pub fn apply(&self, y: &mut [f32]) {
        y.iter_mut().for_each(|v| *v = (*v - self.mean) / self.std);
    }

    pub fn invert(&self, y: &mut [f32]) {
        y.iter_mut().for_each(|v| *v = *v * self.std + self.mean);
    }
}

impl DataSchema {
    /// Model outputs or targets of a regression back in the target's own units.
    pub fn to_target_units(&self, v: &mut [f32]) {
        if let Some(s) = &self.target_scale {
            s.invert(v);
        }
    }

    /// Per-sample input shape: `[features]` (numbers and encoded columns; token ids for a
    /// text column) or `[channels, height, width]`.
    pub fn input_shape(&self) -> Shape {
        match &self.image {
            Some(i) => Shape::from([i.channels, i.height, i.width]),
            None => Shape::from([self.input_width()]),
        }
    }

    /// Values per row of a table's input.
    pub fn input_width(&self) -> usize {
        self.features.len() + self.columns.iter().map(|c| c.width()).sum::<usize>()
    }

    /// Every column a CSV row's features are read from: the numbers, then the others.
    pub fn feature_columns(&self) -> Vec<String> {
        let mut all = self.features.clone();
        all.extend(self.columns.iter().map(|c| c.name.clone()));
        all
    }

    /// The spans of a table's row that layers can read by name: `numbers` (the number columns,
    /// when there are category or text columns beside them) and each category or text column
    /// by its name. A column called `input` or `numbers` is read only within the whole row.
    pub fn input_parts(&self) -> Vec<crate::nn::InputPart> {
        if self.columns.is_empty() {
            return Vec::new();
        }
        let mut parts = Vec::new();
        let f = self.features.len();
        if f > 0 {
            parts.push(crate::nn::InputPart {
                name: NUMBERS_PART.into(),
                start: 0,
                width: f,
            });
        }
        let mut start = f;
        for c in &self.columns {
            if c.name != crate::nn::INPUT_NAME && c.name != NUMBERS_PART {
                parts.push(crate::nn::InputPart {
                    name: c.name.clone(),
                    start,
                    width: c.width(),
                });
            }
            start += c.width();
        }
        parts
    }

    /// Rows of the input: each row's `numbers` (already preprocessed) followed by its encoded
    /// category and text cells (`cells[column][row]`); also how many category values fell
    /// outside their column's categories, by column.
    pub fn join_columns(
        &self,
        numbers: Vec<f32>,
        cells: &[Vec<String>],
        n: usize,
    ) -> (Vec<f32>, csv::Unseen) {
        let f = self.features.len();
        let mut unseen = csv::Unseen::default();
        if self.columns.is_empty() {
            return (numbers, unseen);
        }
        let encoders: Vec<_> = self.columns.iter().map(|c| c.encoder()).collect();
        let mut out = Vec::with_capacity(n * self.input_width());
        for r in 0..n {
            out.extend_from_slice(&numbers[r * f..(r + 1) * f]);
            for (c, enc) in encoders.iter().enumerate() {
                if enc.encode(&cells[c][r], &mut out) {
                    unseen.note(&self.columns[c].name, cells[c][r].trim());
                }
            }
        }
        (out, unseen)
    }
}

/// A split's inputs: a feature table `[n, f]` (preprocessed f32, or bytes preprocessed per
/// batch), images kept as u8 until batched, or a training file read per epoch
/// (`data.stream`), whose batches come from `Split::stream`.
pub enum Features {
    Table(Tensor),
    Bytes(ByteTable),
    Images(images::ImageSet),
    Stream(std::sync::Arc<stream::TrainStream>),
}

/// One split: inputs and targets `[n]` (class indices or values).
pub struct Split {
    pub name: &'static str,
    pub source: String,
    pub features: Features,
    pub y: Tensor,
}

impl Split {
    pub fn len(&self) -> usize {
        match &self.features {
            Features::Stream(s) => s.rows(),
            _ => self.y.numel(),
        }
    }

    /// A streamed split's reader (`data.stream`); `None` for a split held in memory.
    pub fn stream(&self) -> Option<&std::sync::Arc<stream::TrainStream>> {
        match &self.features {
            Features::Stream(s) => Some(s),
            _ => None,
        }
    }

    /// Rows per class (classification), read from the targets or counted by a streamed
    /// split's first pass.
    pub fn class_counts(&self, classes: usize) -> Result<Vec<usize>> {
        if let Features::Stream(s) = &self.features {
            return Ok(s.class_counts().to_vec());
        }
        let mut counts = vec![0usize; classes];
        for t in self.y.try_to_vec()? {
            if let Some(c) = counts.get_mut(t as usize) {
                *c += 1;
            }
        }
        Ok(counts)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where the split's tensors live: f32 feature tables and targets move whole, once; byte
    /// tables and images stay on the host and each batch is copied over.
    pub fn device(&self) -> Device {
        self.y.device()
    }

    pub fn to_device(&mut self, device: Device) {
        if let Features::Table(x) = &mut self.features {
            *x = x.to_device(device);
        }
        self.y = self.y.to_device(device);
    }

    /// The inputs of rows `idx`, augmented when `augment` is given (images only).
    pub fn batch(&self, idx: &[u32], augment: Option<(&Augment, &mut Rng)>) -> Tensor {
        self.batch_part(idx, 0..idx.len(), augment)
    }

    /// The inputs of rows `idx[own]`, augmented as they would be within the whole batch `idx`
    /// (a rank's share of a global batch).
    pub fn batch_part(
        &self,
        idx: &[u32],
        own: std::ops::Range<usize>,
        augment: Option<(&Augment, &mut Rng)>,
    ) -> Tensor {
        let mine = &idx[own.clone()];
        match &self.features {
            Features::Table(x) => x.index_select(mine),
            Features::Bytes(t) => t
                .batch(mine.iter().map(|&i| i as usize))
                .to_device(self.device()),
            Features::Images(set) => set.batch_part(idx, own, augment).to_device(self.device()),
            Features::Stream(_) => unreachable!("a streamed split is read through Split::stream"),
        }
    }

    /// Every row's preprocessed features, row-major, for a CSV split (plots over the whole
    /// split); `None` for images.
    pub fn table(&self) -> Option<Vec<f32>> {
        match &self.features {
            Features::Table(x) => Some(x.to_vec()),
            Features::Bytes(t) => Some(t.to_floats()),
            Features::Images(_) | Features::Stream(_) => None,
        }
    }

    /// The inputs of rows `start..start + len`, for evaluation.
    pub fn rows(&self, start: usize, len: usize) -> Tensor {
        match &self.features {
            Features::Table(x) => x.narrow(0, start, len),
            Features::Bytes(t) => t.batch(start..start + len).to_device(self.device()),
            Features::Images(set) => {
                let idx: Vec<u32> = (start as u32..(start + len) as u32).collect();
                set.batch(&idx, None).to_device(self.device())
            }
            Features::Stream(_) => unreachable!("a streamed split is read through Split::stream"),
        }
    }
}

/// A data file (or folder) as run.json records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataFile {
    pub split: String,
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

pub struct Prepared {
    pub schema: DataSchema,
    /// How the task was decided, for the log.
    pub task_reason: String,
    pub train: Split,
    pub valid: Option<Split>,
    pub test: Option<Split>,
    pub files: Vec<DataFile>,
    /// Things the log should say (skipped images).
    pub warnings: Vec<String>,
    /// How each category and text column is read, and why its type was chosen.
    pub column_notes: Vec<String>,
}

impl Prepared {
    /// Move every split's tensors to `device`.
    pub fn to_device(&mut self, device: Device) {
        self.train.to_device(device);
        for s in [&mut self.valid, &mut self.test].into_iter().flatten() {
            s.to_device(device);
        }
    }
}

/// Read and prepare every split the config names.
pub fn prepare(cfg: &DataConfig, loss: Option<Loss>, seed: u64) -> Result<Prepared> {
    let prepared = match cfg.format {
        DataFormat::Csv => csv::prepare(cfg, loss, seed)?,
        DataFormat::Images => images::prepare(cfg, seed)?,
    };
    every_class_trains(&prepared)?;
    Ok(prepared)
}

/// A class the training rows lack (all its rows dropped for missing values, all its images
/// skipped) would be learned as never occurring: an error, not a silent gap.
fn every_class_trains(p: &Prepared) -> Result<()> {
    let classes = &p.schema.classes;
    if p.schema.task != Task::Classification {
        return Ok(());
    }
    let counts = p.train.class_counts(classes.len())?;
    match counts.iter().position(|&c| c == 0) {
        None => Ok(()),
        Some(c) => Err(Error::data(
            &p.train.source,
            format!(
                "class \"{}\" has no training rows (after dropping rows with missing values or skipping images); give it some, or leave it out of the data",
                classes[c]
            ),
        )),
    }
}

/// Labelled data read with a run's schema, for `eval --data`: a CSV file, or a folder of
/// class folders for an image run.
pub fn read_labelled(path: &Path, schema: &DataSchema) -> Result<Split> {
    match &schema.image {
        Some(image) => images::read_labelled(path, image, &schema.classes),
        None => csv::read_labelled(path, schema),
    }
}

/// One batch of inputs to predict on: the model's input, and for inputs that are files (images)
/// each one's path.
pub struct InputBatch {
    pub x: Tensor,
    pub paths: Option<Vec<String>>,
}

/// Inputs for `predict`, read a batch at a time so memory stays flat however long the input.
pub trait Inputs {
    /// Whether each row is named by a path (image files), which predict writes first.
    fn named(&self) -> bool;
    /// Up to `n` more inputs; `None` at the end.
    fn next_batch(&mut self, n: usize) -> Result<Option<InputBatch>>;
}

/// Open predict's input with a run's schema: CSV rows from a file or stdin (`None`), or an
/// image file, a folder of images (recursive, sorted) or a list of paths on stdin. Columns are
/// checked here, before anything is written.
pub fn open_inputs<'a>(
    input: Option<&Path>,
    schema: &'a DataSchema,
) -> Result<Box<dyn Inputs + 'a>> {
    Ok(match &schema.image {
        Some(image) => Box::new(images::FileInputs::open(input, image)?),
        None => Box::new(csv::RowInputs::open(input, schema)?),
    })
}
