//! CSV tables: numeric feature columns and a target column, read into splits with the
//! preprocessing fitted on the training split; the same reading for `eval --data` and, a batch
//! at a time, for `predict`.

mod preprocess;
mod reader;
mod values;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

pub use preprocess::{Preprocess, Transform};
pub use reader::{column_positions, is_missing, open, reader, CsvReader, MAX_LINE};
pub use values::{ByteTable, FeatureValues};

use super::split::holdout_rows;
use super::{DataFile, DataSchema, Features, InputBatch, Inputs, Prepared, Split, TargetScale};
use crate::config::{DataConfig, Missing, NormalizeSpec, Task};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::tensor::Tensor;

/// Classification is inferred for integer targets with at most this many distinct values.
const MAX_INFERRED_CLASSES: usize = 50;

/// Rows read from one file, before encoding.
struct RawSplit {
    source: String,
    x: FeatureValues,
    target: Vec<String>,
    lines: Vec<u64>,
}

/// Training and evaluation data is read whole and hashed: it must be a regular file (a pipe
/// would be read once, or block, and a folder is the other format).
fn regular_file(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::input(path, e))?;
    if meta.is_dir() {
        return Err(Error::data(
            path.display().to_string(),
            "a folder, not a CSV file (image folders need data.format = \"images\")",
        ));
    }
    if !meta.is_file() {
        return Err(Error::data(
            path.display().to_string(),
            "not a regular file (a pipe or device); training data must be a file",
        ));
    }
    Ok(())
}

/// The feature columns (NaN where missing) and target cells of a CSV file.
fn read_file(path: &Path, features: &[String], target: &str) -> Result<RawSplit> {
    regular_file(path)?;
    let source = path.display().to_string();
    let mut rdr = reader(open(path)?, &source);
    let header = rdr.header()?;
    let feature_cols = column_positions(&header, features, &source)?;
    let target_col = column_positions(&header, &[target.to_string()], &source)?[0];
    let rows = rdr.read_rows(&header, &feature_cols, Some(target_col), usize::MAX)?;
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

/// Encoded rows of one split: features, targets and where they came from.
type Encoded = (FeatureValues, Vec<f32>, String);

/// Apply the missing-value policy and encode targets; returns row-major features and targets.
/// The features are copied only when rows are dropped.
fn encode(raw: RawSplit, schema: &DataSchema) -> Result<Encoded> {
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
    regular_file(path)?;
    let (bytes, sha256) = crate::files::sha256_file(path)?;
    Ok(DataFile {
        split: split.into(),
        path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        bytes,
        sha256,
    })
}

/// A split of CSV rows whose missing values the run's policy has dealt with: f32 features
/// preprocessed once, bytes kept as they are and preprocessed per batch.
fn to_split(name: &'static str, (x, mut y, source): Encoded, schema: &DataSchema) -> Split {
    let (n, f) = (y.len(), schema.features.len());
    if let Some(s) = &schema.target_scale {
        s.apply(&mut y);
    }
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

/// The feature and target columns the config names (default: the last column is the target,
/// every other one a feature), checked against the training file's header.
fn columns(cfg: &DataConfig) -> Result<(Vec<String>, String)> {
    regular_file(&cfg.train)?;
    let train_source = cfg.train.display().to_string();
    let columns = reader(open(&cfg.train)?, &train_source).header()?;
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
    Ok((features, target))
}

/// Read and prepare the CSV splits a config names.
pub fn prepare(cfg: &DataConfig, loss: Option<Loss>, seed: u64) -> Result<Prepared> {
    let (features, target) = columns(cfg)?;
    let raw_train = read_file(&cfg.train, &features, &target)?;
    let (task, task_reason) = infer_task(cfg, loss, &raw_train.target);
    let classes = match task {
        Task::Classification => class_names(&raw_train.target),
        Task::Regression => Vec::new(),
    };
    if task == Task::Classification && classes.len() < 2 {
        return Err(Error::data(
            &raw_train.source,
            format!(
                "column \"{target}\" holds {} ({}): classification needs at least two classes",
                if classes.is_empty() {
                    "no class"
                } else {
                    "one class"
                },
                classes.join(", ")
            ),
        ));
    }
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
        target_scale: None,
    };
    let f = schema.features.len();
    let read = |path: &Path| encode(read_file(path, &schema.features, &schema.target)?, &schema);
    let (mut train_x, mut train_y, train_source) = encode(raw_train, &schema)?;
    let mut files = vec![file_record("train", &cfg.train)?];
    let mut valid = None;
    if let Some(path) = &cfg.valid {
        valid = Some(read(path)?);
        files.push(file_record("valid", path)?);
    } else if let Some(h) = holdout_rows(cfg, &train_y, task, seed)? {
        let ys = |rows: &[usize]| rows.iter().map(|&r| train_y[r]).collect::<Vec<f32>>();
        valid = Some((train_x.select_rows(&h.held, f), ys(&h.held), h.source));
        (train_x, train_y) = (train_x.select_rows(&h.keep, f), ys(&h.keep));
    }
    let test = match &cfg.test {
        Some(path) => {
            files.push(file_record("test", path)?);
            Some(read(path)?)
        }
        None => None,
    };
    let normalize = match &cfg.normalize {
        Some(NormalizeSpec::Named(n)) => Some(*n),
        _ => None,
    };
    if let FeatureValues::Floats(x) = &train_x {
        // A column with no value in the training rows has no statistics to fill or scale by.
        let rows = train_y.len();
        if let Some(c) = (0..f).find(|&c| (0..rows).all(|r| x[r * f + c].is_nan())) {
            return Err(Error::data(
                &train_source,
                format!(
                    "column \"{}\" has no values in the training rows",
                    schema.features[c]
                ),
            ));
        }
    }
    schema.preprocess = Preprocess::fit(&train_x, f, cfg.scale, normalize, cfg.missing);
    if cfg.target_normalize.is_some() {
        if task != Task::Regression {
            return Err(Error::config(
                "data.target_normalize",
                "applies to regression targets, and the task is classification",
            ));
        }
        schema.target_scale = Some(TargetScale::fit(&train_y));
    }
    let train = to_split("train", (train_x, train_y, train_source), &schema);
    let valid = valid.map(|v| to_split("valid", v, &schema));
    let test = test.map(|t| to_split("test", t, &schema));
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

/// A labelled CSV file read with a run's schema (`eval --data`).
pub fn read_labelled(path: &Path, schema: &DataSchema) -> Result<Split> {
    let rows = read_file(path, &schema.features, &schema.target)?;
    let source = rows.source;
    if let FeatureValues::Floats(values) = &rows.x {
        schema.check_missing(values, &rows.lines, &source, "")?;
    }
    let y = rows
        .target
        .iter()
        .zip(&rows.lines)
        .map(|(cell, line)| schema.encode_target(cell, || format!("{source}:{line}")))
        .collect::<Result<Vec<f32>>>()?;
    Ok(to_split("data", (rows.x, y, source), schema))
}

/// CSV rows for predict, from a file or stdin, feature columns matched by header name.
pub struct RowInputs<'a> {
    rdr: CsvReader,
    header: Vec<String>,
    cols: Vec<usize>,
    schema: &'a DataSchema,
}

impl<'a> RowInputs<'a> {
    pub fn open(input: Option<&Path>, schema: &'a DataSchema) -> Result<RowInputs<'a>> {
        let (stream, source): (Box<dyn Read>, String) = match input {
            Some(p) => (open(p)?, p.display().to_string()),
            None => (Box::new(std::io::stdin().lock()), "<stdin>".into()),
        };
        let mut rdr = reader(stream, &source);
        let header = rdr.header()?;
        let cols = column_positions(&header, &schema.features, &source)?;
        Ok(RowInputs {
            rdr,
            header,
            cols,
            schema,
        })
    }
}

impl Inputs for RowInputs<'_> {
    fn named(&self) -> bool {
        false
    }

    fn next_batch(&mut self, n: usize) -> Result<Option<InputBatch>> {
        let schema = self.schema;
        let rows = self
            .rdr
            .read_rows(&self.header, &self.cols, None, n.max(1))?;
        let count = rows.lines.len();
        if count == 0 {
            return Ok(None);
        }
        let drop_hint = if schema.preprocess.missing == Missing::Drop {
            " (a dropped row would break input order)"
        } else {
            ""
        };
        let mut x = rows.x.into_floats();
        schema.prepare_rows(&mut x, &rows.lines, self.rdr.source(), drop_hint)?;
        let x = Tensor::from_vec(x, [count, schema.features.len()]);
        Ok(Some(InputBatch { x, paths: None }))
    }
}
