//! Datasets: CSV files into tensors, with the schema (features, target, classes,
//! preprocessing) that predict needs saved beside the model.

mod csv_file;
mod preprocess;
mod split;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use csv_file::{column_positions, header, is_missing, open, read_rows, reader};
pub use preprocess::{Preprocess, Transform};

use crate::config::{DataConfig, Missing, Task};
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
}

/// One split as tensors: features `[n, f]`, targets `[n]` (class indices or values).
pub struct Split {
    pub name: &'static str,
    pub source: String,
    pub x: Tensor,
    pub y: Tensor,
}

impl Split {
    pub fn len(&self) -> usize {
        self.y.numel()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
}

/// Rows read from one file, before encoding.
struct RawSplit {
    source: String,
    x: Vec<f32>,
    target: Vec<String>,
    lines: Vec<u64>,
}

fn read_file(path: &Path, features: &[String], target: &str) -> Result<RawSplit> {
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
fn encode(raw: RawSplit, schema: &DataSchema) -> Result<(Vec<f32>, Vec<f32>, String)> {
    let f = schema.features.len();
    let (mut x, mut y) = (
        Vec::with_capacity(raw.x.len()),
        Vec::with_capacity(raw.lines.len()),
    );
    for (i, line) in raw.lines.iter().enumerate() {
        let row = &raw.x[i * f..(i + 1) * f];
        let cell = &raw.target[i];
        let place = || format!("{}:{line}", raw.source);
        if schema.preprocess.missing == Missing::Drop
            && (is_missing(cell) || row.iter().any(|v| v.is_nan()))
        {
            continue;
        }
        if schema.preprocess.missing == Missing::Error {
            if let Some(c) = row.iter().position(|v| v.is_nan()) {
                return Err(Error::data(
                    place(),
                    format!("column \"{}\": missing value (set data.missing = \"mean\", \"zero\" or \"drop\" to accept it)", schema.features[c]),
                ));
            }
        }
        y.push(schema.encode_target(cell, place)?);
        x.extend_from_slice(row);
    }
    if y.is_empty() {
        return Err(Error::data(
            &raw.source,
            "no rows left after dropping rows with missing values",
        ));
    }
    Ok((x, y, raw.source))
}

fn file_record(split: &str, path: &Path) -> Result<DataFile> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(DataFile {
        split: split.into(),
        path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        bytes: bytes.len() as u64,
        sha256: crate::run::sha256_hex(&bytes),
    })
}

/// Read and prepare every split the config names.
pub fn prepare(cfg: &DataConfig, loss: Option<Loss>, seed: u64) -> Result<Prepared> {
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
                let pick = |rows: &[usize], x: &[f32], y: &[f32]| {
                    let xs = rows
                        .iter()
                        .flat_map(|&r| x[r * f..(r + 1) * f].iter().copied())
                        .collect();
                    let ys = rows.iter().map(|&r| y[r]).collect();
                    (xs, ys)
                };
                let (vx, vy) = pick(&held, &train_x, &train_y);
                valid = Some((
                    vx,
                    vy,
                    format!("{} (valid_split {fraction})", cfg.train.display()),
                ));
                (train_x, train_y) = pick(&keep, &train_x, &train_y);
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

    schema.preprocess = Preprocess::fit(&train_x, f, cfg.scale, cfg.normalize, cfg.missing);
    let to_split = |name: &'static str, (mut x, y, source): (Vec<f32>, Vec<f32>, String)| {
        schema.preprocess.apply(&mut x, f);
        let n = y.len();
        Split {
            name,
            source,
            x: Tensor::from_vec(x, [n, f]),
            y: Tensor::from_vec(y, [n]),
        }
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
    })
}
