//! The first pass over a streamed training file: everything the in-memory path fits on the
//! training rows (task, classes in the same order, row count, normalization statistics, fill
//! values, target scaling), computed row by row with the same arithmetic in the same order,
//! so the schema is the same. Standardization needs a second pass (deviations from the mean
//! the first found), as the in-memory path sums them. Validation rows are drawn per row and
//! kept in memory.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use super::records::Records;
use super::{has_missing, missing_value, numbers_of, FeatureValues, Holdout, Shard, TrainStream};
use crate::config::{
    ColumnType, DataConfig, Missing, Normalize, NormalizeSpec, Task, DEFAULT_SHUFFLE_BUFFER,
};
use crate::data::csv::{
    column_positions, columns, encode, file_record, infer_task, is_missing, open, reader,
    task_of_targets, to_split, unseen_warning, RawSplit, MAX_INFERRED_CLASSES,
};
use crate::data::{Features, Prepared, Preprocess, Split, TargetScale, Transform};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::tensor::{Rng, Stream, Tensor};

/// The target column as the pass sees it.
struct Targets {
    known: Option<Task>,
    /// Distinct present values of every row, while they may be classes.
    seen: BTreeSet<String>,
    tracking: bool,
    /// A text value came after tracking stopped: read again knowing it is a classification.
    restart: bool,
    /// Training rows per value, while tracking.
    counts: HashMap<String, usize>,
    /// Training targets as numbers (regression): their sum, and the first that is not one.
    sum: f64,
    bad: Option<(u64, String)>,
}

impl Targets {
    fn new(known: Option<Task>) -> Targets {
        Targets {
            known,
            seen: BTreeSet::new(),
            tracking: known != Some(Task::Regression),
            restart: false,
            counts: HashMap::new(),
            sum: 0.0,
            bad: None,
        }
    }

    /// A present target cell of any row (classes come from every row, as in memory).
    fn see(&mut self, cell: &str) {
        if self.tracking {
            if !self.seen.contains(cell) {
                self.seen.insert(cell.to_string());
            }
            // Past the inferable classes and all numbers so far: a regression, unless text
            // comes later.
            if self.known.is_none()
                && self.seen.len() > MAX_INFERRED_CLASSES
                && self.seen.iter().all(|v| v.parse::<f64>().is_ok())
            {
                self.tracking = false;
                self.counts.clear();
            }
        } else if self.known.is_none() && cell.parse::<f64>().is_err() {
            self.restart = true;
        }
    }

    /// A training row's present target cell.
    fn train(&mut self, cell: &str, line: u64) {
        if self.tracking {
            match self.counts.get_mut(cell) {
                Some(n) => *n += 1,
                None => {
                    self.counts.insert(cell.to_string(), 1);
                }
            }
        }
        match cell.parse::<f32>() {
            Ok(v) if v.is_finite() => self.sum += v as f64,
            _ if self.bad.is_none() => self.bad = Some((line, cell.to_string())),
            _ => {}
        }
    }
}

/// Per number column, over the training rows' present values.
#[derive(Clone, Default)]
struct Column {
    count: usize,
    sum: f64,
    min: Option<f32>,
    max: Option<f32>,
    /// Second pass: squared deviations from the mean.
    squares: f64,
}

/// What one pass over the file found.
struct Pass {
    targets: Targets,
    columns: Vec<Column>,
    rows: usize,
    valid: RawSplit,
}

/// How the pass reads the file.
struct Plan<'a> {
    path: &'a Path,
    source: String,
    header: Vec<String>,
    numbers: Vec<usize>,
    target: usize,
    missing: Missing,
    holdout: Option<Holdout>,
    /// Parse every number cell (statistics, fill values or dropped rows need them); otherwise
    /// a bad cell is found when an epoch reads it.
    parse: bool,
}

/// What a record is to training.
enum Seen<'a> {
    Held,
    Dropped,
    /// A training row, with its numbers when this pass parses them.
    Train(Option<&'a FeatureValues>),
}

impl Plan<'_> {
    /// The first pass: targets, training rows, statistics, validation rows.
    fn first(&self, known: Option<Task>) -> Result<Pass> {
        let f = self.numbers.len();
        let mut pass = Pass {
            targets: Targets::new(known),
            columns: vec![Column::default(); f],
            rows: 0,
            valid: RawSplit {
                source: self.source.clone(),
                x: FeatureValues::default(),
                cells: Vec::new(),
                target: Vec::new(),
                lines: Vec::new(),
            },
        };
        self.each_row(|records, line, seen| {
            let cell = records.record[self.target].trim();
            if !is_missing(cell) {
                pass.targets.see(cell);
            }
            match seen {
                Seen::Dropped => {}
                Seen::Held => {
                    let place = || records.place(line);
                    let x = numbers_of(&records.record, &self.numbers, &self.header, &place)?;
                    for i in 0..f {
                        pass.valid.x.push(x.get(i));
                    }
                    pass.valid.target.push(cell.to_string());
                    pass.valid.lines.push(line);
                }
                Seen::Train(x) => {
                    for (c, col) in pass.columns.iter_mut().enumerate() {
                        let Some(v) = x.map(|x| x.get(c)).filter(|v| !v.is_nan()) else {
                            continue;
                        };
                        col.count += 1;
                        col.sum += v as f64;
                        col.min = Some(col.min.map_or(v, |m| m.min(v)));
                        col.max = Some(col.max.map_or(v, |m| m.max(v)));
                    }
                    pass.targets.train(cell, line);
                    pass.rows += 1;
                }
            }
            Ok(())
        })?;
        Ok(pass)
    }

    /// The second pass, for standardization: each column's squared deviations from its mean,
    /// and the targets' from theirs, summed in row order as the in-memory path sums them.
    fn squares(&self, columns: &mut [Column], means: &[f32], target_mean: f64) -> Result<f64> {
        let mut target_squares = 0.0;
        self.each_row(|records, _, seen| {
            if let Seen::Train(x) = seen {
                if let Some(x) = x {
                    for (c, col) in columns.iter_mut().enumerate() {
                        let v = x.get(c);
                        if !v.is_nan() {
                            col.squares += (v as f64 - means[c] as f64).powi(2);
                        }
                    }
                }
                let cell = records.record[self.target].trim();
                if let Ok(v) = cell.parse::<f32>() {
                    target_squares += (v as f64 - target_mean).powi(2);
                }
            }
            Ok(())
        })?;
        Ok(target_squares)
    }

    /// Every record of the file, with what it is to training; errors that the in-memory path
    /// finds before training (a missing target, a missing number under "error", a bad cell
    /// when the pass parses numbers) stop it at their line.
    fn each_row(&self, mut visit: impl FnMut(&Records, u64, Seen) -> Result<()>) -> Result<()> {
        let mut records = Records::open(self.path, &self.source, self.header.len(), Shard::WHOLE)?;
        let target = &self.header[self.target];
        while let Some((line, key)) = records.next()? {
            if self.holdout.is_some_and(|h| h.holds(key)) {
                visit(&records, line, Seen::Held)?;
                continue;
            }
            if is_missing(records.record[self.target].trim()) {
                if self.missing != Missing::Drop {
                    return Err(Error::data(
                        records.place(line),
                        format!("column \"{target}\": missing target value"),
                    ));
                }
                visit(&records, line, Seen::Dropped)?;
                continue;
            }
            if !self.parse {
                visit(&records, line, Seen::Train(None))?;
                continue;
            }
            let place = || records.place(line);
            let x = numbers_of(&records.record, &self.numbers, &self.header, &place)?;
            let seen = match (has_missing(&x), self.missing) {
                (None, _) | (Some(_), Missing::Mean | Missing::Zero) => Seen::Train(Some(&x)),
                (Some(_), Missing::Drop) => Seen::Dropped,
                (Some(c), Missing::Error) => {
                    return Err(missing_value(place(), &self.header[self.numbers[c]]))
                }
            };
            visit(&records, line, seen)?;
        }
        Ok(())
    }
}

/// Read and prepare a config's splits with the training file streamed: the first pass fits
/// the schema and holds the validation rows; the training split is read per epoch.
pub fn prepare(cfg: &DataConfig, loss: Option<Loss>, seed: u64) -> Result<Prepared> {
    let (layout, target) = columns(cfg)?;
    if let Some((name, spec)) = layout.cells.first() {
        let kind = if spec.kind == Some(ColumnType::Text) {
            "text"
        } else {
            "category"
        };
        return Err(Error::config(
            "data.stream",
            format!(
                "column \"{name}\" is a {kind} column: data.stream = true reads number columns only (a {kind} column's vocabulary would be one more pass and its cells held per row); leave it out with data.features, or train without data.stream"
            ),
        ));
    }
    let path = cfg.train.as_path();
    let source = path.display().to_string();
    let header = reader(open(path)?, &source).header()?;
    let numbers = column_positions(&header, &layout.numbers, &source)?;
    let target_at = column_positions(&header, std::slice::from_ref(&target), &source)?[0];
    let share = cfg.valid_split.unwrap_or(0.1);
    let holdout = (cfg.valid.is_none() && share > 0.0).then(|| Holdout {
        seed: Rng::stream(seed, Stream::Holdout).next_u64(),
        share,
    });
    let normalize = match &cfg.normalize {
        Some(NormalizeSpec::Named(n)) => Some(*n),
        _ => None,
    };
    let plan = Plan {
        path,
        source: source.clone(),
        header,
        numbers,
        target: target_at,
        missing: cfg.missing,
        holdout,
        parse: cfg.missing != Missing::Error || normalize.is_some(),
    };
    let known = (cfg.task.is_some() || loss.is_some()).then(|| infer_task(cfg, loss, &[]));
    let mut pass = plan.first(known.as_ref().map(|k| k.0))?;
    if pass.targets.restart {
        // More than the inferable classes of numbers, then text: every value is a class.
        pass = plan.first(Some(Task::Classification))?;
    }
    let seen: Vec<String> = pass.targets.seen.iter().cloned().collect();
    let (task, task_reason) = match known {
        Some(k) => k,
        None if pass.targets.restart => (
            Task::Classification,
            "inferred: the target has text values".into(),
        ),
        None => task_of_targets(&seen),
    };
    let mut schema = super::super::number_schema(cfg, &layout, target, task, &seen)
        .map_err(|why| Error::data(&source, why))?;
    if task == Task::Regression {
        if let Some((line, cell)) = &pass.targets.bad {
            schema.encode_target(cell, || format!("{source}:{line}"))?;
        }
    }
    let f = schema.features.len();
    if pass.rows == 0 {
        return Err(Error::data(
            &source,
            "no training rows (every row was held out for validation or dropped for missing values)",
        ));
    }
    if plan.parse && cfg.missing != Missing::Error {
        if let Some(c) = pass.columns.iter().position(|c| c.count == 0) {
            return Err(Error::data(
                &source,
                format!(
                    "column \"{}\" has no values in the training rows",
                    schema.features[c]
                ),
            ));
        }
    }
    let means: Vec<f32> = pass
        .columns
        .iter()
        .map(|c| {
            if c.count == 0 {
                0.0
            } else {
                (c.sum / c.count as f64) as f32
            }
        })
        .collect();
    let target_mean = pass.targets.sum / pass.rows as f64;
    let standard = cfg.scale.is_none() && normalize == Some(Normalize::Standard);
    let scale_targets = cfg.target_normalize.is_some() && task == Task::Regression;
    let target_squares = if standard || scale_targets {
        plan.squares(&mut pass.columns, &means, target_mean)?
    } else {
        0.0
    };
    schema.preprocess = Preprocess {
        fill: match cfg.missing {
            Missing::Mean => Some(means.clone()),
            Missing::Zero => Some(vec![0.0; f]),
            Missing::Error | Missing::Drop => None,
        },
        transform: match (cfg.scale, normalize) {
            (Some(factor), _) => Transform::Scale { factor },
            (None, Some(Normalize::Standard)) => Transform::Standard {
                std: pass
                    .columns
                    .iter()
                    .map(|c| (c.squares / c.count.max(1) as f64).sqrt() as f32)
                    .collect(),
                mean: means,
            },
            (None, Some(Normalize::Minmax)) => Transform::Minmax {
                min: pass
                    .columns
                    .iter()
                    .map(|c| c.min.unwrap_or(f32::INFINITY))
                    .collect(),
                max: pass
                    .columns
                    .iter()
                    .map(|c| c.max.unwrap_or(f32::NEG_INFINITY))
                    .collect(),
            },
            (None, None) => Transform::None,
        },
        missing: cfg.missing,
    };
    if cfg.target_normalize.is_some() {
        if task != Task::Regression {
            return Err(Error::config(
                "data.target_normalize",
                "applies to regression targets, and the task is classification",
            ));
        }
        let var = target_squares / pass.rows as f64;
        schema.target_scale = Some(TargetScale {
            mean: target_mean as f32,
            std: if var > 0.0 { var.sqrt() as f32 } else { 1.0 },
        });
    }
    let class_counts = schema
        .classes
        .iter()
        .map(|c| pass.targets.counts.get(c).copied().unwrap_or(0))
        .collect();
    let mut files = vec![file_record("train", path)?];
    let mut warnings = Vec::new();
    let mut split = |name, raw: RawSplit| -> Result<Split> {
        let (split, unseen) = to_split(name, encode(raw, &schema)?, &schema);
        if !unseen.is_empty() {
            warnings.push(unseen_warning(&unseen, &split.source));
        }
        Ok(split)
    };
    let valid = if let Some(path) = &cfg.valid {
        let s = split(
            "valid",
            crate::data::csv::read_file(path, &layout, &schema.target)?,
        )?;
        files.push(file_record("valid", path)?);
        Some(s)
    } else if pass.valid.lines.is_empty() {
        if cfg.valid_split.is_some_and(|v| v > 0.0) {
            return Err(Error::config(
                "data.valid_split",
                format!("{share} of {} rows drew none for validation; raise it, or set 0 for no validation", pass.rows),
            ));
        }
        None
    } else {
        let mut raw = std::mem::replace(&mut pass.valid, RawSplit::empty(&source));
        raw.source = format!("{source} (valid_split {share}, drawn per row)");
        Some(split("valid", raw)?)
    };
    let test = match &cfg.test {
        Some(path) => {
            files.push(file_record("test", path)?);
            Some(split(
                "test",
                crate::data::csv::read_file(path, &layout, &schema.target)?,
            )?)
        }
        None => None,
    };
    let stream = TrainStream {
        path: path.to_path_buf(),
        source: source.clone(),
        header: plan.header.clone(),
        numbers: plan.numbers.clone(),
        target: target_at,
        schema: schema.clone(),
        holdout,
        rows: pass.rows,
        class_counts,
        seed,
        buffer: cfg.shuffle_buffer.unwrap_or(DEFAULT_SHUFFLE_BUFFER),
    };
    let train = Split {
        name: "train",
        source,
        features: Features::Stream(Arc::new(stream)),
        y: Tensor::from_vec(Vec::new(), [0]),
    };
    Ok(Prepared {
        schema,
        task_reason,
        train,
        valid,
        test,
        files,
        warnings,
        column_notes: Vec::new(),
    })
}
