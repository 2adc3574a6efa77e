//! CSV tables: numeric feature columns and a target column, read into splits with the
//! preprocessing fitted on the training split; the same reading for `eval --data` and, a batch
//! at a time, for `predict`.

pub mod columns;
mod preprocess;
mod reader;
pub mod stream;
mod survey;
mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

pub use columns::{Column, Unseen};
pub use preprocess::{Preprocess, Transform};
pub use reader::{
    body_reader, column_positions, is_missing, open, push_number, reader, CsvReader, MAX_LINE,
};
pub use survey::{survey, ColumnSurvey, Survey};
pub use values::{ByteTable, FeatureValues};

use super::split::holdout_rows;
use super::{DataFile, DataSchema, Features, InputBatch, Inputs, Prepared, Split, TargetScale};
use crate::config::{ColumnSpec, ColumnType, DataConfig, Missing, NormalizeSpec, Task};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::tensor::Tensor;

/// Classification is inferred for integer targets with at most this many distinct values.
pub(super) const MAX_INFERRED_CLASSES: usize = 50;

/// Rows read from one file, before encoding.
pub(super) struct RawSplit {
    source: String,
    x: FeatureValues,
    /// Per category or text column, its cells.
    cells: Vec<Vec<String>>,
    target: Vec<String>,
    lines: Vec<u64>,
}

impl RawSplit {
    fn empty(source: &str) -> RawSplit {
        RawSplit {
            source: source.to_string(),
            x: FeatureValues::default(),
            cells: Vec::new(),
            target: Vec::new(),
            lines: Vec::new(),
        }
    }
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

/// The number columns (NaN where missing), the cells of the category and text columns, and
/// the target cells of a CSV file.
fn read_file(path: &Path, layout: &Layout, target: &str) -> Result<RawSplit> {
    regular_file(path)?;
    let source = path.display().to_string();
    let mut rdr = reader(open(path)?, &source);
    let header = rdr.header()?;
    let number_cols = column_positions(&header, &layout.numbers, &source)?;
    let cell_cols = column_positions(&header, &layout.cell_names(), &source)?;
    let target_col = column_positions(&header, &[target.to_string()], &source)?[0];
    let rows = rdr.read_rows_with(
        &header,
        &number_cols,
        &cell_cols,
        Some(target_col),
        usize::MAX,
    )?;
    if rows.lines.is_empty() {
        return Err(Error::data(&source, "no data rows after the header"));
    }
    Ok(RawSplit {
        source,
        x: rows.x,
        cells: rows.cells,
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
    task_of_targets(targets)
}

/// The task a target column's values suggest: classification for text, or for whole numbers
/// with at most `MAX_INFERRED_CLASSES` distinct values; regression otherwise.
fn task_of_targets(targets: &[String]) -> (Task, String) {
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

/// Encoded rows of one split: number features, category and text cells, targets, and where
/// they came from.
struct Encoded {
    x: FeatureValues,
    cells: Vec<Vec<String>>,
    y: Vec<f32>,
    source: String,
}

/// Rows `rows` of each cell column, in that order.
fn select_cells(cells: &[Vec<String>], rows: &[usize]) -> Vec<Vec<String>> {
    cells
        .iter()
        .map(|col| rows.iter().map(|&r| col[r].clone()).collect())
        .collect()
}

impl Encoded {
    /// Rows `rows`, in that order.
    fn select(&self, rows: &[usize], f: usize, source: String) -> Encoded {
        Encoded {
            x: self.x.select_rows(rows, f),
            cells: select_cells(&self.cells, rows),
            y: rows.iter().map(|&r| self.y[r]).collect(),
            source,
        }
    }
}

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
    let all = kept.len() == raw.lines.len();
    let x = if all {
        raw.x
    } else {
        raw.x.select_rows(&kept, f)
    };
    let cells = if all {
        raw.cells
    } else {
        select_cells(&raw.cells, &kept)
    };
    Ok(Encoded {
        x,
        cells,
        y,
        source: raw.source,
    })
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

/// A split of CSV rows whose missing values the run's policy has dealt with: number features
/// preprocessed (f32 once, bytes per batch), then each category and text column's encoding.
/// Also returns how many category cells were not among their column's categories.
fn to_split(name: &'static str, e: Encoded, schema: &DataSchema) -> (Split, Unseen) {
    let Encoded {
        x,
        cells,
        mut y,
        source,
    } = e;
    let (n, f) = (y.len(), schema.features.len());
    if let Some(s) = &schema.target_scale {
        s.apply(&mut y);
    }
    let mut unseen = Unseen::default();
    let features = match x {
        FeatureValues::Bytes(values) if schema.columns.is_empty() => Features::Bytes(ByteTable {
            values,
            features: f,
            preprocess: schema.preprocess.clone(),
        }),
        x => {
            let mut numbers = x.into_floats();
            schema.preprocess.apply(&mut numbers, f);
            let (table, u) = schema.join_columns(numbers, &cells, n);
            unseen = u;
            Features::Table(Tensor::from_vec(table, [n, schema.input_width()]))
        }
    };
    let split = Split {
        name,
        source,
        features,
        y: Tensor::from_vec(y, [n]),
    };
    (split, unseen)
}

/// Which feature columns are numbers and which are categories or text (with their options),
/// and why each type was chosen.
struct Layout {
    numbers: Vec<String>,
    cells: Vec<(String, ColumnSpec)>,
    /// Why a column's type was inferred, as `columns::infer` says it (a column not listed was
    /// typed in the config).
    reasons: Vec<(String, String)>,
}

impl Layout {
    fn cell_names(&self) -> Vec<String> {
        self.cells.iter().map(|(n, _)| n.clone()).collect()
    }
}

/// The type of each feature column: `[data.columns.NAME]`'s, or inferred from the first rows
/// of the training file (`columns::SNIFF_ROWS`).
fn layout(
    train: &Path,
    given: &BTreeMap<String, ColumnSpec>,
    features: &[String],
) -> Result<Layout> {
    let source = train.display().to_string();
    for name in given.keys() {
        if !features.contains(name) {
            let known: Vec<&str> = features.iter().map(String::as_str).collect();
            return Err(Error::config(
                format!("data.columns.{name}"),
                format!(
                    "no feature column \"{name}\"{}",
                    crate::suggest::did_you_mean(name, &known)
                ),
            ));
        }
    }
    let untyped: Vec<String> = features
        .iter()
        .filter(|f| given.get(*f).is_none_or(|c| c.kind.is_none()))
        .cloned()
        .collect();
    // Count numbers first without keeping cells (a 784-pixel table would otherwise hold 784
    // thousand strings); only columns that are not mostly numbers are read again as cells.
    let mut sniffed = reader(open(train)?, &source);
    let head = sniffed.header()?;
    let cols = column_positions(&head, &untyped, &source)?;
    let mut counts = vec![(0usize, 0usize); untyped.len()]; // (present, numbers)
    sniffed.visit_cells(&head, &cols, columns::SNIFF_ROWS, |j, cell| {
        if !is_missing(cell) {
            counts[j].0 += 1;
            counts[j].1 += usize::from(columns::is_number(cell));
        }
    })?;
    let wordy: Vec<String> = untyped
        .iter()
        .zip(&counts)
        .filter(|(_, &(present, numbers))| !columns::mostly_numbers(present, numbers))
        .map(|(name, _)| name.clone())
        .collect();
    let sample = if wordy.is_empty() {
        None
    } else {
        let mut rdr = reader(open(train)?, &source);
        let head = rdr.header()?;
        let cols = column_positions(&head, &wordy, &source)?;
        Some(rdr.read_rows_with(&head, &[], &cols, None, columns::SNIFF_ROWS)?)
    };
    let mut layout = Layout {
        numbers: Vec::new(),
        cells: Vec::new(),
        reasons: Vec::new(),
    };
    for name in features {
        let given = given.get(name).cloned().unwrap_or_default();
        let kind = match given.kind {
            Some(k) => k,
            None => {
                let (k, why) = match (&sample, wordy.iter().position(|w| w == name)) {
                    (Some(sample), Some(at)) => {
                        let cells: Vec<&str> =
                            sample.cells[at].iter().map(String::as_str).collect();
                        columns::infer(&cells)
                    }
                    _ => (ColumnType::Number, "numbers".to_string()),
                };
                layout.reasons.push((name.clone(), why));
                k
            }
        };
        given
            .check_keys(kind)
            .map_err(|why| Error::config(format!("data.columns.{name}"), why))?;
        match kind {
            ColumnType::Number => layout.numbers.push(name.clone()),
            _ => layout.cells.push((
                name.clone(),
                ColumnSpec {
                    kind: Some(kind),
                    ..given
                },
            )),
        }
    }
    Ok(layout)
}

/// The feature and target columns the config names (default: the last column is the target,
/// every other one a feature), checked against the training file's header.
fn columns(cfg: &DataConfig) -> Result<(Layout, String)> {
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
    Ok((layout(&cfg.train, &cfg.columns, &features)?, target))
}

/// The schema of a table's number columns and target before anything is fitted: the classes
/// of the training targets `seen` (at least two for classification), no transform yet.
fn number_schema(
    cfg: &DataConfig,
    layout: &Layout,
    target: String,
    task: Task,
    seen: &[String],
) -> std::result::Result<DataSchema, String> {
    let classes = match task {
        Task::Classification => class_names(seen),
        Task::Regression => Vec::new(),
    };
    if task == Task::Classification && classes.len() < 2 {
        let count = if classes.is_empty() {
            "no class"
        } else {
            "one class"
        };
        return Err(format!(
            "column \"{target}\" holds {count} ({}): classification needs at least two classes",
            classes.join(", ")
        ));
    }
    Ok(DataSchema {
        features: layout.numbers.clone(),
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
        columns: Vec::new(),
    })
}

/// Read and prepare the CSV splits a config names.
pub fn prepare(cfg: &DataConfig, loss: Option<Loss>, seed: u64) -> Result<Prepared> {
    if cfg.stream {
        return stream::prepare(cfg, loss, seed);
    }
    let (layout, target) = columns(cfg)?;
    let raw_train = read_file(&cfg.train, &layout, &target)?;
    let (task, task_reason) = infer_task(cfg, loss, &raw_train.target);
    let mut schema = number_schema(cfg, &layout, target, task, &raw_train.target)
        .map_err(|why| Error::data(&raw_train.source, why))?;
    let f = schema.features.len();
    let read = |path: &Path| encode(read_file(path, &layout, &schema.target)?, &schema);
    let mut train = encode(raw_train, &schema)?;
    let mut files = vec![file_record("train", &cfg.train)?];
    let mut valid = None;
    if let Some(path) = &cfg.valid {
        valid = Some(read(path)?);
        files.push(file_record("valid", path)?);
    } else if let Some(h) = holdout_rows(cfg, &train.y, task, seed)? {
        valid = Some(train.select(&h.held, f, h.source));
        train = train.select(&h.keep, f, train.source.clone());
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
    if let FeatureValues::Floats(x) = &train.x {
        // A column with no value in the training rows has no statistics to fill or scale by.
        let rows = train.y.len();
        if let Some(c) = (0..f).find(|&c| (0..rows).all(|r| x[r * f + c].is_nan())) {
            return Err(Error::data(
                &train.source,
                format!(
                    "column \"{}\" has no values in the training rows",
                    schema.features[c]
                ),
            ));
        }
    }
    let identifiers = match &train.x {
        FeatureValues::Floats(x) => identifier_columns(x, f, &schema.features),
        FeatureValues::Bytes(_) => Vec::new(),
    };
    schema.preprocess = Preprocess::fit(&train.x, f, cfg.scale, normalize, cfg.missing);
    // Categories and vocabularies from the training rows only.
    schema.columns = layout
        .cells
        .iter()
        .zip(&train.cells)
        .map(|((name, spec), cells)| Column::fit(name, spec, cells))
        .collect();
    if cfg.target_normalize.is_some() {
        if task != Task::Regression {
            return Err(Error::config(
                "data.target_normalize",
                "applies to regression targets, and the task is classification",
            ));
        }
        schema.target_scale = Some(TargetScale::fit(&train.y));
    }
    let column_notes = schema
        .columns
        .iter()
        .map(|c| {
            let why = layout
                .reasons
                .iter()
                .find(|(n, _)| *n == c.name)
                .map_or("from data.columns".into(), |(_, w)| {
                    format!("inferred: {w}")
                });
            format!("column \"{}\": {} ({why})", c.name, c.describe())
        })
        .collect();
    let mut warnings: Vec<String> = identifiers
        .iter()
        .map(|c| format!("column \"{c}\": every training row holds a different whole number, close together (a row identifier?); it is read as a number feature — leave it out with data.features"))
        .collect();
    let mut split = |name, e: Encoded| {
        let source = e.source.clone();
        let (split, unseen) = to_split(name, e, &schema);
        if !unseen.is_empty() {
            warnings.push(unseen_warning(&unseen, &source));
        }
        split
    };
    let train = split("train", train);
    let valid = valid.map(|v| split("valid", v));
    let test = test.map(|t| split("test", t));
    Ok(Prepared {
        schema,
        task_reason,
        train,
        valid,
        test,
        files,
        warnings,
        column_notes,
    })
}

/// Number columns that look like row identifiers: at least `ID_MIN_ROWS` training rows, each a
/// different whole number, spanning at most twice as many values as there are rows (1..n, or
/// 1000..1000+n). A model would learn from them, and nothing carries over to new rows.
/// Rows a table needs before an all-distinct column is taken for a row identifier (fewer, and
/// distinct values are as likely to be chance).
pub(super) const ID_MIN_ROWS: usize = 50;

fn identifier_columns(x: &[f32], f: usize, names: &[String]) -> Vec<String> {
    let rows = x.len().checked_div(f).unwrap_or(0);
    if rows < ID_MIN_ROWS {
        return Vec::new();
    }
    (0..f)
        .filter(|&c| {
            let mut v: Vec<f32> = (0..rows).map(|r| x[r * f + c]).collect();
            if v.iter().any(|a| !a.is_finite() || a.fract() != 0.0) {
                return false;
            }
            v.sort_by(f32::total_cmp);
            let distinct = v.windows(2).all(|w| w[0] != w[1]);
            distinct && (v[rows - 1] - v[0]) as f64 + 1.0 <= 2.0 * rows as f64
        })
        .map(|c| names[c].clone())
        .collect()
}

/// The one warning for category values outside their columns' categories.
fn unseen_warning(unseen: &Unseen, source: &str) -> String {
    format!(
        "{source}: category values not among their columns' categories (unseen in training, or too rare to keep) were encoded as {}: {}",
        columns::OTHER,
        unseen.describe()
    )
}

/// A layout of a run's columns, for reading more files with its schema.
fn schema_layout(schema: &DataSchema) -> Layout {
    Layout {
        numbers: schema.features.clone(),
        cells: schema
            .columns
            .iter()
            .map(|c| (c.name.clone(), ColumnSpec::default()))
            .collect(),
        reasons: Vec::new(),
    }
}

/// A labelled CSV file read with a run's schema (`eval --data`), its missing values dealt with
/// by the run's policy; unseen categories are a warning on stderr.
pub fn read_labelled(path: &Path, schema: &DataSchema) -> Result<Split> {
    let rows = read_file(path, &schema_layout(schema), &schema.target)?;
    let e = encode(rows, schema)?;
    let source = e.source.clone();
    let (split, unseen) = to_split("data", e, schema);
    if !unseen.is_empty() {
        eprintln!("warning: {}", unseen_warning(&unseen, &source));
    }
    Ok(split)
}

/// CSV rows for predict, from a file or stdin, feature columns matched by header name.
pub struct RowInputs<'a> {
    rdr: CsvReader,
    header: Vec<String>,
    cols: Vec<usize>,
    cell_cols: Vec<usize>,
    schema: &'a DataSchema,
    /// Category values outside their columns' categories so far (one warning at the end).
    unseen: Unseen,
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
        let names: Vec<String> = schema.columns.iter().map(|c| c.name.clone()).collect();
        let cell_cols = column_positions(&header, &names, &source)?;
        Ok(RowInputs {
            rdr,
            header,
            cols,
            cell_cols,
            schema,
            unseen: Unseen::default(),
        })
    }
}

impl Inputs for RowInputs<'_> {
    fn named(&self) -> bool {
        false
    }

    fn next_batch(&mut self, n: usize) -> Result<Option<InputBatch>> {
        let schema = self.schema;
        let rows =
            self.rdr
                .read_rows_with(&self.header, &self.cols, &self.cell_cols, None, n.max(1))?;
        let count = rows.lines.len();
        if count == 0 {
            if !self.unseen.is_empty() {
                let source = self.rdr.source().to_string();
                eprintln!("warning: {}", unseen_warning(&self.unseen, &source));
                self.unseen = Unseen::default();
            }
            return Ok(None);
        }
        let drop_hint = if schema.preprocess.missing == Missing::Drop {
            " (a dropped row would break input order)"
        } else {
            ""
        };
        let mut x = rows.x.into_floats();
        schema.prepare_rows(&mut x, &rows.lines, self.rdr.source(), drop_hint)?;
        let (table, unseen) = schema.join_columns(x, &rows.cells, count);
        self.unseen.merge(unseen);
        let x = Tensor::from_vec(table, [count, schema.input_width()]);
        Ok(Some(InputBatch { x, paths: None }))
    }
}
