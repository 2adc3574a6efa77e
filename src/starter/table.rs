//! A starter config for a CSV table: the target, each feature column's type with the reason
//! `train` would infer it, a missing-value policy when cells are missing, standardized
//! numbers, and an MLP (text columns read through an embedding and a mean over their tokens).

use std::path::{Path, PathBuf};

use super::doc::{self, Doc};
use super::{Request, Starter};
use crate::config::{ColumnType, Task};
use crate::data::csv::{self, ColumnSurvey, Survey};
use crate::data::NUMBERS_PART;
use crate::error::{Error, Result};
use crate::nn::INPUT_NAME;

/// Column names read as the target, in this order of preference (case ignored).
const TARGET_NAMES: &[&str] = &[
    "target", "label", "labels", "class", "y", "species", "outcome",
];

/// Numbers per token of a text column's embedding.
const EMBED_DIM: usize = 32;

/// Features listed one per line in the config's comment; a wider table lists only the columns
/// with something to say and sums up the other number columns.
const LISTED: usize = 30;

/// What to do about missing cells, and why.
enum Missing {
    None,
    Mean { rows: usize, columns: usize },
    Drop { rows: usize },
}

pub fn starter(r: &Request) -> Result<Starter> {
    let source = r.data.display().to_string();
    let header = csv::reader(csv::open(r.data)?, &source).header()?;
    if header.len() < 2 {
        return Err(Error::data(
            &source,
            format!(
                "one column (\"{}\"): a table needs a target column and at least one feature column",
                header[0]
            ),
        ));
    }
    let (target, target_why) = choose_target(&header, r.target, &source)?;
    let s = csv::survey(r.data, &target)?;
    if s.distinct_targets < 2 {
        let held = match (s.distinct_targets, s.classes.first()) {
            (0, _) => "no value".to_string(),
            (_, Some((class, _))) => format!("one value (\"{class}\")"),
            (_, None) => "one value".to_string(),
        };
        return Err(Error::data(
            &source,
            format!("column \"{target}\" holds {held}: there is nothing to learn; choose another target with --target"),
        ));
    }
    let plan = Plan::new(&s)?;
    let mut doc = super::begin(r)?;
    plan.write_data(&mut doc, r.data, &target_why)?;
    plan.write_model(&mut doc);
    doc.table(&["loss"]);
    let loss = s.task.default_loss().name();
    doc.set(
        "type",
        doc::string(loss),
        &format!("{}'s loss", s.task.name()),
    );
    let metrics: Vec<String> = match s.task {
        Task::Classification => vec!["accuracy".into()],
        Task::Regression => vec!["rmse".into(), "r2".into()],
    };
    let train_rows = ((plan.rows as f64) * (1.0 - plan.valid)).round() as usize;
    super::write_training(&mut doc, train_rows, "rows", &metrics, plan.valid > 0.0);
    Ok(Starter {
        toml: doc.finish(),
        summary: plan.summary(),
    })
}

/// `--target`, else the first column named like a target, else the last column; and why.
fn choose_target(header: &[String], given: Option<&str>, source: &str) -> Result<(String, String)> {
    if let Some(t) = given {
        csv::column_positions(header, &[t.to_string()], source)?;
        return Ok((t.to_string(), "--target".into()));
    }
    for name in TARGET_NAMES {
        if let Some(h) = header.iter().find(|h| h.eq_ignore_ascii_case(name)) {
            return Ok((h.clone(), "named like a target".into()));
        }
    }
    let last = header.last().expect("a header has columns").clone();
    let why = format!(
        "the last column (none is named like a target: {}; --target chooses)",
        TARGET_NAMES.join(", ")
    );
    Ok((last, why))
}

/// The choices for a surveyed table.
struct Plan<'a> {
    s: &'a Survey,
    /// The feature columns the model reads, by type; `left_out` it does not (row identifiers).
    numbers: Vec<&'a ColumnSurvey>,
    categories: Vec<&'a ColumnSurvey>,
    texts: Vec<&'a ColumnSurvey>,
    left_out: Vec<&'a ColumnSurvey>,
    missing: Missing,
    /// Rows training sees (after dropping rows, when it drops them).
    rows: usize,
    valid: f64,
}

impl<'a> Plan<'a> {
    fn new(s: &'a Survey) -> Result<Plan<'a>> {
        // A row identifier teaches nothing that carries over; leave it out unless it is all
        // there is.
        let (mut left_out, mut kept): (Vec<_>, Vec<_>) =
            s.columns.iter().partition(|c| c.identifier);
        if kept.is_empty() {
            kept = std::mem::take(&mut left_out);
        }
        let of = |kind| -> Vec<&ColumnSurvey> {
            kept.iter().copied().filter(|c| c.kind == kind).collect()
        };
        let (numbers, categories, texts) = (
            of(ColumnType::Number),
            of(ColumnType::Category),
            of(ColumnType::Text),
        );
        let missing_numbers: Vec<&&ColumnSurvey> =
            numbers.iter().filter(|c| c.missing > 0).collect();
        let missing = if s.target_missing > 0 {
            Missing::Drop {
                rows: s.rows_incomplete,
            }
        } else if !missing_numbers.is_empty() {
            Missing::Mean {
                rows: s.rows_incomplete,
                columns: missing_numbers.len(),
            }
        } else {
            Missing::None
        };
        let rows = match missing {
            Missing::Drop { rows } => s.rows - rows,
            _ => s.rows,
        };
        let groups: Vec<usize> = match s.task {
            Task::Classification => s.classes.iter().map(|(_, n)| *n).collect(),
            Task::Regression => vec![rows],
        };
        let plan = Plan {
            s,
            numbers,
            categories,
            texts,
            left_out,
            missing,
            rows,
            valid: super::valid_share(&groups),
        };
        plan.check_part_names()?;
        Ok(plan)
    }

    /// Text beside other columns is read by column name, which `input` and `numbers` are not
    /// (they name the whole row and the number columns).
    fn check_part_names(&self) -> Result<()> {
        if !self.by_name() {
            return Ok(());
        }
        let named = self.texts.iter().chain(&self.categories);
        match named.map(|c| &c.name).find(|n| *n == INPUT_NAME || *n == NUMBERS_PART) {
            Some(n) => Err(Error::data(
                &self.s.source,
                format!("column \"{n}\": beside a text column each column is read by its name, and \"{n}\" names another part of the row; rename the column"),
            )),
            None => Ok(()),
        }
    }

    /// Whether the model reads the row's parts by name: text beside any other column.
    fn by_name(&self) -> bool {
        !self.texts.is_empty() && self.numbers.len() + self.categories.len() + self.texts.len() > 1
    }

    /// Values the MLP reads per row: numbers, one-hot slots, each text column's pooled tokens.
    fn width(&self) -> usize {
        let slots: usize = self.categories.iter().map(|c| c.width).sum();
        self.numbers.len() + slots + self.texts.len() * EMBED_DIM
    }

    fn write_data(&self, doc: &mut Doc, data: &Path, target_why: &str) -> Result<()> {
        let s = self.s;
        doc.table(&["data"]);
        doc.set(
            "train",
            doc::string(super::path_text(data)?),
            &format!("{} rows", s.rows),
        );
        if let Some(test) = test_beside(data) {
            doc.comment(&format!(
                "test = {}    # held-out rows beside it: uncomment to evaluate the best model on them",
                doc::string(super::path_text(&test)?)
            ));
        }
        doc.set("target", doc::string(&s.target), target_why);
        let task_why = match s.task {
            Task::Classification => format!("{}; {} classes", s.task_reason, s.classes.len()),
            Task::Regression => s.task_reason.clone(),
        };
        doc.set("task", doc::string(s.task.name()), &task_why);
        if s.task == Task::Classification {
            doc.comment(&format!(
                "classes (rows): {}",
                super::class_list(&s.classes)
            ));
        }
        if !self.left_out.is_empty() {
            let kept: Vec<String> = s
                .columns
                .iter()
                .filter(|c| !self.left_out.iter().any(|l| l.name == c.name))
                .map(|c| c.name.clone())
                .collect();
            doc.set(
                "features",
                doc::list(&kept),
                "every column but the target and the row identifiers",
            );
        }
        if !self.numbers.is_empty() {
            doc.set(
                "normalize",
                doc::string("standard"),
                "numbers to mean 0, std 1 (fitted on the training rows)",
            );
        }
        if s.task == Task::Regression {
            doc.set(
                "target_normalize",
                doc::string("standard"),
                "trained in standard units; metrics and predictions in the target's own",
            );
        }
        match self.missing {
            Missing::None => {}
            Missing::Mean { rows, columns } => doc.set(
                "missing",
                doc::string("mean"),
                &format!(
                    "{rows} rows miss a number in {columns} column{}: the training mean fills it",
                    if columns == 1 { "" } else { "s" }
                ),
            ),
            Missing::Drop { rows } => doc.set(
                "missing",
                doc::string("drop"),
                &format!("{} rows have no target: they are dropped, as is any row missing a number ({rows} rows in all)", s.target_missing),
            ),
        }
        let why = if self.valid > 0.0 {
            let how = match s.task {
                Task::Classification => "stratified",
                Task::Regression => "at random",
            };
            format!("held out ({how}) for validation and early stopping")
        } else {
            "too few rows to hold any out for validation".into()
        };
        doc.set("valid_split", format!("{:?}", self.valid), &why);
        self.write_columns(doc);
        Ok(())
    }

    /// Every feature column's type and why, as a comment; a table per category and text
    /// column, so its type is written down.
    fn write_columns(&self, doc: &mut Doc) {
        let columns = &self.s.columns;
        let wide = columns.len() > LISTED;
        let w = columns
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(0)
            .min(20);
        let mut lines = vec![format!(
            "Feature columns, typed as train infers them (from the first {} rows):",
            csv::columns::SNIFF_ROWS
        )];
        let mut quiet = Vec::new();
        for c in columns {
            let notes = self.notes(c, wide);
            if wide && c.kind == ColumnType::Number && notes.is_empty() {
                quiet.push(c.name.as_str());
            } else {
                lines.push(format!("  {:<w$}  {}{notes}", c.name, c.reason));
            }
        }
        if let (Some(first), Some(last)) = (quiet.first(), quiet.last()) {
            lines.push(format!(
                "  {first} ... {last}: {} columns of numbers",
                quiet.len()
            ));
        }
        doc.blank();
        doc.comment(&lines.join("\n"));
        doc.blank();
        for c in self.categories.iter().chain(&self.texts) {
            doc.table(&["data", "columns", &c.name]);
            let kind = match c.kind {
                ColumnType::Text => "text",
                _ => "category",
            };
            doc.set("type", doc::string(kind), &c.reason);
        }
    }

    /// What a column's line adds to its inferred type: missing cells, left out, and (in a
    /// table narrow enough for it to matter) a hint that a few whole numbers may be codes.
    fn notes(&self, c: &ColumnSurvey, wide: bool) -> String {
        let mut notes = String::new();
        if self.left_out.iter().any(|l| l.name == c.name) {
            notes.push_str("; a row identifier? left out of data.features");
        }
        if let (Some(k @ 3..=12), false) = (c.whole_values, wide) {
            notes.push_str(&format!(
                "; {k} distinct whole numbers (codes or years? type = \"category\" reads them as such)"
            ));
        }
        if c.missing > 0 {
            let filled = match (c.kind, &self.missing) {
                (ColumnType::Number, Missing::Drop { .. }) => "rows dropped",
                (ColumnType::Number, _) => "filled with the mean",
                (ColumnType::Category, _) => "read as (other)",
                (ColumnType::Text, _) => "no tokens",
            };
            notes.push_str(&format!("; {} missing ({filled})", c.missing));
        }
        notes
    }

    fn write_model(&self, doc: &mut Doc) {
        let width = self.width();
        let plural = if width == 1 { "" } else { "s" };
        let mut about = format!("The model: an MLP on the {width} input value{plural} of a row");
        if !self.texts.is_empty() {
            about.push_str(&format!(
                ", text read as {EMBED_DIM} numbers per token\n(an embedding) averaged over the tokens"
            ));
        }
        doc.blank();
        doc.comment(&format!("{about}."));
        let mut parts = Vec::new();
        for t in &self.texts {
            doc.array_table(&["model", "layers"]);
            doc.set("type", doc::string("embedding"), "");
            doc.set("dim", EMBED_DIM, "");
            if self.by_name() {
                doc.set(
                    "inputs",
                    doc::list(std::slice::from_ref(&t.name)),
                    "the column's token ids",
                );
            }
            doc.array_table(&["model", "layers"]);
            doc.set("type", doc::string("sequence_pool"), "");
            doc.set(
                "mode",
                doc::string("mean"),
                "over the real tokens, not the padding",
            );
            if self.by_name() {
                let name = self.layer_name(&format!("{}_mean", t.name));
                doc.set("name", doc::string(&name), "");
                parts.push(name);
            }
        }
        if self.by_name() {
            if !self.numbers.is_empty() {
                parts.push(NUMBERS_PART.into());
            }
            parts.extend(self.categories.iter().map(|c| c.name.clone()));
            doc.array_table(&["model", "layers"]);
            doc.set("type", doc::string("concat"), "");
            doc.set("inputs", doc::list(&parts), "");
        }
        let (outputs, why) = match self.s.task {
            Task::Classification => (
                self.s.classes.len(),
                "one per class (the softmax is in the loss)",
            ),
            Task::Regression => (1, "the predicted value"),
        };
        super::write_mlp(doc, width, outputs, why);
    }

    /// `want`, made different from every column name (a layer may not take a column's name).
    fn layer_name(&self, want: &str) -> String {
        let mut name = want.to_string();
        while self.s.columns.iter().any(|c| c.name == name) || name == self.s.target {
            name.push('_');
        }
        name
    }

    /// `classification of "species" (3 classes) from 7 features (5 number, 2 category), 275
    /// rows; ...`
    fn summary(&self) -> String {
        let s = self.s;
        let what = match s.task {
            Task::Classification => format!(
                "classification of \"{}\" ({} classes)",
                s.target,
                s.classes.len()
            ),
            Task::Regression => format!("regression of \"{}\"", s.target),
        };
        let kinds: Vec<String> = [
            (self.numbers.len(), "number"),
            (self.categories.len(), "category"),
            (self.texts.len(), "text"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, k)| format!("{n} {k}"))
        .collect();
        let features = self.numbers.len() + self.categories.len() + self.texts.len();
        let plural = if features == 1 { "" } else { "s" };
        let mut line = format!(
            "{what} from {features} feature{plural} ({}), {} rows",
            kinds.join(", "),
            s.rows
        );
        match self.missing {
            Missing::None => {}
            Missing::Mean { columns, .. } => line.push_str(&format!(
                "; missing cells in {columns} number column{} filled with the mean",
                if columns == 1 { "" } else { "s" }
            )),
            Missing::Drop { rows } => line.push_str(&format!(
                "; {rows} rows with a missing target or number dropped"
            )),
        }
        for c in &self.left_out {
            line.push_str(&format!("; \"{}\" left out (a row identifier?)", c.name));
        }
        line
    }
}

/// `test.csv` (or `.csv.gz`) beside a `train.csv` (or `.csv.gz`).
fn test_beside(data: &Path) -> Option<PathBuf> {
    let name = data.file_name()?.to_str()?;
    let rest = name.strip_prefix("train")?;
    let test = data.with_file_name(format!("test{rest}"));
    test.is_file().then_some(test)
}
