//! Datasets: CSV files into tensors, with the schema (features, target, classes,
//! preprocessing) that predict needs saved beside the model.

mod csv_file;
pub mod images;
mod preprocess;
mod split;
mod values;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use csv_file::{column_positions, header, is_missing, open, read_rows, reader};
pub use preprocess::{Preprocess, Transform};
pub use values::{ByteTable, FeatureValues};

use crate::backend::Device;
use crate::config::{DataConfig, DataFormat, Missing, Normalize, NormalizeSpec, OnBadImage, Task};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::tensor::{Rng, Tensor};

/// Classification is inferred for integer targets with at most this many distinct values.
const MAX_INFERRED_CLASSES: usize = 50;

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
}

/// A split's inputs: a feature table `[n, f]` (preprocessed f32, or bytes preprocessed per
/// batch), or images kept as u8 until batched.
pub enum Features {
    Table(Tensor),
    Bytes(ByteTable),
    Images(images::ImageSet),
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
        self.y.numel()
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

    /// A split of CSV rows whose missing values the run's policy has dealt with: f32 features
    /// preprocessed once, bytes kept as they are and preprocessed per batch.
    pub fn from_values(
        name: &'static str,
        source: String,
        x: FeatureValues,
        y: Vec<f32>,
        schema: &DataSchema,
    ) -> Split {
        let (n, f) = (y.len(), schema.features.len());
        let features = match x {
            FeatureValues::Floats(mut x) => {
                schema.preprocess.apply(&mut x, f);
                Features::Table(Tensor::from_vec(x, [n, f]))
            }
            FeatureValues::Bytes(values) => Features::Bytes(ByteTable {
                values,
                features: f,
                preprocess: schema.preprocess.clone(),
            }),
        };
        Split {
            name,
            source,
            features,
            y: Tensor::from_vec(y, [n]),
        }
    }

    /// The inputs of rows `idx`, augmented when `augment` is given (images only).
    pub fn batch(
        &self,
        idx: &[u32],
        augment: Option<(&crate::config::Augment, &mut Rng)>,
    ) -> Tensor {
        match &self.features {
            Features::Table(x) => x.index_select(idx),
            Features::Bytes(t) => t
                .batch(idx.iter().map(|&i| i as usize))
                .to_device(self.device()),
            Features::Images(set) => set.batch(idx, augment).to_device(self.device()),
        }
    }

    /// Every row's preprocessed features, row-major, for a CSV split (plots over the whole
    /// split); `None` for images.
    pub fn table(&self) -> Option<Vec<f32>> {
        match &self.features {
            Features::Table(x) => Some(x.to_vec()),
            Features::Bytes(t) => Some(t.to_floats()),
            Features::Images(_) => None,
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
        }
    }
}

/// A data file as run.json records it.
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

/// Rows read from one file, before encoding.
pub(crate) struct RawSplit {
    pub source: String,
    pub x: FeatureValues,
    pub target: Vec<String>,
    pub lines: Vec<u64>,
}

/// The feature columns (NaN where missing) and target cells of a CSV file.
pub(crate) fn read_file(path: &Path, features: &[String], target: &str) -> Result<RawSplit> {
    let source = path.display().to_string();
    let mut rdr = reader(open(path)?);
    let header = header(&mut rdr, &source)?;
    let feature_cols = column_positions(&header, features, &source)?;
    let target_col = column_positions(&header, &[target.to_string()], &source)?[0];
    let rows = read_rows(
        &mut rdr,
        &source,
        &header,
        &feature_cols,
        Some(target_col),
        usize::MAX,
    )?;
    if rows.lines.is_empty() {
        return Err(Error::data(&source, "no data rows after the header"));
    }
    Ok(RawSplit {
        source,
        x: rows.x,
        target: rows.target,
        lines: rows.lines,
    })
}

/// Decide the task: the config's, else the loss's, else the target values'.
fn infer_task(cfg: &DataConfig, loss: Option<Loss>, targets: &[String]) -> (Task, String) {
    if let Some(t) = cfg.task {
        return (t, "from data.task".into());
    }
    if let Some(l) = loss {
        let t = if l.is_classification() {
            Task::Classification
        } else {
            Task::Regression
        };
        return (t, format!("from loss {}", l.name()));
    }
    let present: Vec<&String> = targets.iter().filter(|t| !is_missing(t)).collect();
    let numbers: Option<Vec<f64>> = present.iter().map(|t| t.parse::<f64>().ok()).collect();
    match numbers {
        None => (
            Task::Classification,
            "inferred: the target has text values".into(),
        ),
        Some(v) => {
            let distinct: BTreeSet<&String> = present.iter().copied().collect();
            if v.iter().all(|x| x.fract() == 0.0) && distinct.len() <= MAX_INFERRED_CLASSES {
                let why = format!(
                    "inferred: integer target with {} distinct values",
                    distinct.len()
                );
                (Task::Classification, why)
            } else {
                (Task::Regression, "inferred: numeric target".into())
            }
        }
    }
}

/// Class names sorted: numerically when every name is a number, else as text.
fn class_names(targets: &[String]) -> Vec<String> {
    let mut names: Vec<String> = targets
        .iter()
        .filter(|t| !is_missing(t))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if names.iter().all(|n| n.parse::<f64>().is_ok()) {
        names.sort_by(|a, b| {
            a.parse::<f64>()
                .unwrap()
                .total_cmp(&b.parse::<f64>().unwrap())
        });
    }
    names
}

impl DataSchema {
    /// Make rows read at predict time into model inputs, in place: `check_missing`, then the
    /// run's transform.
    pub fn prepare_rows(
        &self,
        x: &mut [f32],
        lines: &[u64],
        source: &str,
        hint: &str,
    ) -> Result<()> {
        self.check_missing(x, lines, source, hint)?;
        self.preprocess.apply(x, self.features.len());
        Ok(())
    }

    /// A missing value is an error naming file, line and column (with `hint` appended) unless
    /// the run fills missing values.
    pub fn check_missing(&self, x: &[f32], lines: &[u64], source: &str, hint: &str) -> Result<()> {
        let f = self.features.len();
        if self.preprocess.fill.is_none() {
            if let Some(i) = x.iter().position(|v| v.is_nan()) {
                return Err(Error::data(
                    format!("{source}:{}", lines[i / f]),
                    format!("column \"{}\": missing value{hint}", self.features[i % f]),
                ));
            }
        }
        Ok(())
    }

    /// Per-sample input shape: `[features]` or `[channels, height, width]`.
    pub fn input_shape(&self) -> crate::tensor::Shape {
        match &self.image {
            Some(i) => crate::tensor::Shape::from([i.channels, i.height, i.width]),
            None => crate::tensor::Shape::from([self.features.len()]),
        }
    }

    /// Encode one target cell: its class index, or its value.
    pub fn encode_target(&self, cell: &str, place: impl Fn() -> String) -> Result<f32> {
        let bad = |why: String| Error::data(place(), format!("column \"{}\": {why}", self.target));
        if is_missing(cell) {
            return Err(bad("missing target value".into()));
        }
        match self.task {
            Task::Classification => self
                .classes
                .iter()
                .position(|c| c == cell)
                .map(|i| i as f32)
                .ok_or_else(|| {
                    bad(format!(
                        "unknown class \"{cell}\" (classes: {})",
                        self.classes.join(", ")
                    ))
                }),
            Task::Regression => cell
                .parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad(format!("\"{cell}\" is not a number"))),
        }
    }
}

/// Apply the missing-value policy and encode targets; returns row-major features and targets.
/// The features are copied only when rows are dropped.
fn encode(raw: RawSplit, schema: &DataSchema) -> Result<(FeatureValues, Vec<f32>, String)> {
    let f = schema.features.len();
    let (mut kept, mut y) = (
        Vec::with_capacity(raw.lines.len()),
        Vec::with_capacity(raw.lines.len()),
    );
    for (i, line) in raw.lines.iter().enumerate() {
        let cell = &raw.target[i];
        let place = || format!("{}:{line}", raw.source);
        // Bytes hold no missing values (NaN is not a byte).
        let missing_feature = match &raw.x {
            FeatureValues::Floats(x) => x[i * f..(i + 1) * f].iter().position(|v| v.is_nan()),
            FeatureValues::Bytes(_) => None,
        };
        if schema.preprocess.missing == Missing::Drop
            && (is_missing(cell) || missing_feature.is_some())
        {
            continue;
        }
        if schema.preprocess.missing == Missing::Error {
            if let Some(c) = missing_feature {
                return Err(Error::data(
                    place(),
                    format!("column \"{}\": missing value (set data.missing = \"mean\", \"zero\" or \"drop\" to accept it)", schema.features[c]),
                ));
            }
        }
        y.push(schema.encode_target(cell, place)?);
        kept.push(i);
    }
    if y.is_empty() {
        return Err(Error::data(
            &raw.source,
            "no rows left after dropping rows with missing values",
        ));
    }
    let x = if kept.len() == raw.lines.len() {
        raw.x
    } else {
        raw.x.select_rows(&kept, f)
    };
    Ok((x, y, raw.source))
}

fn file_record(split: &str, path: &Path) -> Result<DataFile> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(DataFile {
        split: split.into(),
        path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        bytes: bytes.len() as u64,
        sha256: crate::files::sha256_hex(&bytes),
    })
}

/// Read and prepare every split the config names.
pub fn prepare(cfg: &DataConfig, loss: Option<Loss>, seed: u64) -> Result<Prepared> {
    match cfg.format {
        DataFormat::Csv => prepare_csv(cfg, loss, seed),
        DataFormat::Images => prepare_images(cfg, seed),
    }
}

fn prepare_csv(cfg: &DataConfig, loss: Option<Loss>, seed: u64) -> Result<Prepared> {
    let train_source = cfg.train.display().to_string();
    let mut rdr = reader(open(&cfg.train)?);
    let columns = header(&mut rdr, &train_source)?;
    drop(rdr);
    let target = cfg
        .target
        .clone()
        .unwrap_or_else(|| columns.last().cloned().unwrap_or_default());
    column_positions(&columns, std::slice::from_ref(&target), &train_source)
        .map_err(|e| Error::config("data.target", e.to_string()))?;
    let features: Vec<String> = match &cfg.features {
        Some(f) => f.clone(),
        None => columns.iter().filter(|c| **c != target).cloned().collect(),
    };
    if features.is_empty() {
        return Err(Error::data(
            &train_source,
            "no feature columns besides the target",
        ));
    }
    if features.contains(&target) {
        return Err(Error::config(
            "data.features",
            format!("the target column \"{target}\" cannot be a feature"),
        ));
    }
    let raw_train = read_file(&cfg.train, &features, &target)?;
    let (task, task_reason) = infer_task(cfg, loss, &raw_train.target);
    let classes = match task {
        Task::Classification => class_names(&raw_train.target),
        Task::Regression => Vec::new(),
    };
    let mut schema = DataSchema {
        features,
        target,
        task,
        classes,
        preprocess: Preprocess {
            transform: Transform::None,
            missing: cfg.missing,
            fill: None,
        },
        image: None,
    };
    let f = schema.features.len();
    let (train_x, train_y, _) = encode(raw_train, &schema)?;
    let mut files = vec![file_record("train", &cfg.train)?];

    // The validation rows: a file, or a seeded (stratified) share of the training rows.
    let (mut train_x, mut train_y, mut valid) = (train_x, train_y, None);
    if let Some(path) = &cfg.valid {
        valid = Some(encode(
            read_file(path, &schema.features, &schema.target)?,
            &schema,
        )?);
        files.push(file_record("valid", path)?);
    } else {
        let fraction = cfg.valid_split.unwrap_or(0.1);
        if fraction > 0.0 {
            let stratify = task == Task::Classification;
            let (keep, held) =
                split::holdout(&train_y, fraction, stratify, &mut Rng::derive(seed, 1));
            if !held.is_empty() && !keep.is_empty() {
                let ys = |rows: &[usize]| rows.iter().map(|&r| train_y[r]).collect::<Vec<f32>>();
                valid = Some((
                    train_x.select_rows(&held, f),
                    ys(&held),
                    format!("{} (valid_split {fraction})", cfg.train.display()),
                ));
                (train_x, train_y) = (train_x.select_rows(&keep, f), ys(&keep));
            }
        }
    }
    let test = match &cfg.test {
        Some(path) => {
            files.push(file_record("test", path)?);
            Some(encode(
                read_file(path, &schema.features, &schema.target)?,
                &schema,
            )?)
        }
        None => None,
    };

    let normalize = match &cfg.normalize {
        Some(NormalizeSpec::Named(n)) => Some(*n),
        _ => None,
    };
    schema.preprocess = Preprocess::fit(&train_x, f, cfg.scale, normalize, cfg.missing);
    let to_split = |name: &'static str, (x, y, source): (FeatureValues, Vec<f32>, String)| {
        Split::from_values(name, source, x, y, &schema)
    };
    let train = to_split("train", (train_x, train_y, train_source));
    let valid = valid.map(|v| to_split("valid", v));
    let test = test.map(|t| to_split("test", t));
    Ok(Prepared {
        schema,
        task_reason,
        train,
        valid,
        test,
        files,
        warnings: Vec::new(),
    })
}

/// A folder as run.json records it: total bytes, and a SHA-256 over its files' relative paths
/// and contents in sorted order.
fn folder_record(split: &str, dir: &Path, files: &[PathBuf]) -> Result<DataFile> {
    let mut all = Vec::new();
    for f in files {
        all.extend_from_slice(
            f.strip_prefix(dir)
                .unwrap_or(f)
                .to_string_lossy()
                .as_bytes(),
        );
        all.extend(std::fs::read(f).map_err(|e| Error::io(f, e))?);
    }
    let bytes = files
        .iter()
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum();
    Ok(DataFile {
        split: split.into(),
        path: std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()),
        bytes,
        sha256: crate::files::sha256_hex(&all),
    })
}

/// Decode a labelled folder with the run's image schema; also returns how many files were
/// skipped as undecodable.
pub fn read_image_folder(
    name: &'static str,
    dir: &Path,
    schema: &images::ImageSchema,
    classes: &[String],
    skip_bad: bool,
) -> Result<(Split, DataFile, usize)> {
    let labelled = images::labelled_files(dir, classes)?;
    let paths: Vec<PathBuf> = labelled.iter().map(|(p, _)| p.clone()).collect();
    let (set, kept) = images::decode_all(&paths, schema, skip_bad)?;
    let y: Vec<f32> = kept.iter().map(|&i| labelled[i].1 as f32).collect();
    let record = folder_record(name, dir, &paths)?;
    let n = y.len();
    let split = Split {
        name,
        source: dir.display().to_string(),
        features: Features::Images(set),
        y: Tensor::from_vec(y, [n]),
    };
    Ok((split, record, paths.len() - kept.len()))
}

fn prepare_images(cfg: &DataConfig, seed: u64) -> Result<Prepared> {
    let classes = images::class_folders(&cfg.train)?;
    let (height, width) = match cfg.size {
        Some([h, w]) => (h, w),
        None => {
            // The first training image's size (read_image_folder below lists them again;
            // this walk happens only when the size must be inferred).
            let first = images::labelled_files(&cfg.train, &classes)?.remove(0).0;
            let (w, h) = image::image_dimensions(&first).map_err(|e| {
                Error::data(
                    first.display().to_string(),
                    format!("cannot read the image size: {e}"),
                )
            })?;
            (h as usize, w as usize)
        }
    };
    let channels = cfg.channels.unwrap_or(3);
    let mut shape = images::ImageSchema {
        height,
        width,
        channels,
        mean: vec![0.0; channels],
        std: vec![1.0; channels],
    };
    let skip = cfg.on_bad_image == OnBadImage::Skip;
    let (mut train, record, mut skipped) =
        read_image_folder("train", &cfg.train, &shape, &classes, skip)?;
    let mut files = vec![record];
    let mut valid = None;
    if let Some(dir) = &cfg.valid {
        let (v, record, s) = read_image_folder("valid", dir, &shape, &classes, skip)?;
        (valid, skipped) = (Some(v), skipped + s);
        files.push(record);
    } else if cfg.valid_split.unwrap_or(0.1) > 0.0 {
        let fraction = cfg.valid_split.unwrap_or(0.1);
        let (keep, held) =
            split::holdout(&train.y.to_vec(), fraction, true, &mut Rng::derive(seed, 1));
        if !keep.is_empty() && !held.is_empty() {
            let Features::Images(set) = &train.features else {
                unreachable!("an image split")
            };
            let part = |name: &'static str, rows: &[usize], source: String| Split {
                name,
                source,
                features: Features::Images(set.subset(rows)),
                y: train
                    .y
                    .index_select(&rows.iter().map(|&r| r as u32).collect::<Vec<_>>()),
            };
            let v = part(
                "valid",
                &held,
                format!("{} (valid_split {fraction})", cfg.train.display()),
            );
            let t = part("train", &keep, train.source.clone());
            (train, valid) = (t, Some(v));
        }
    }
    let mut test = None;
    if let Some(dir) = &cfg.test {
        let (t, record, s) = read_image_folder("test", dir, &shape, &classes, skip)?;
        (test, skipped) = (Some(t), skipped + s);
        files.push(record);
    }
    let Features::Images(train_set) = &train.features else {
        unreachable!("an image split")
    };
    (shape.mean, shape.std) = match &cfg.normalize {
        Some(NormalizeSpec::Given { mean, std }) => {
            if mean.len() != channels {
                return Err(Error::config(
                    "data.normalize",
                    format!("{} means for {channels} channels", mean.len()),
                ));
            }
            (mean.clone(), std.clone())
        }
        Some(NormalizeSpec::Named(Normalize::Standard)) => {
            let (mean, std) = train_set.channel_stats();
            (
                mean,
                std.iter()
                    .map(|s| if *s > 0.0 { *s } else { 1.0 })
                    .collect(),
            )
        }
        _ => (shape.mean.clone(), shape.std.clone()),
    };
    for split in [Some(&mut train), valid.as_mut(), test.as_mut()]
        .into_iter()
        .flatten()
    {
        if let Features::Images(set) = &mut split.features {
            set.schema = shape.clone();
        }
    }
    let warnings = if skipped > 0 {
        vec![format!(
            "skipped {skipped} image(s) that did not decode (data.on_bad_image = \"skip\")"
        )]
    } else {
        Vec::new()
    };
    let schema = DataSchema {
        features: Vec::new(),
        target: "class".into(),
        task: Task::Classification,
        classes,
        preprocess: Preprocess {
            transform: Transform::None,
            missing: Missing::Error,
            fill: None,
        },
        image: Some(shape),
    };
    let task_reason = "image folders: one class per subfolder".to_string();
    Ok(Prepared {
        schema,
        task_reason,
        train,
        valid,
        test,
        files,
        warnings,
    })
}
