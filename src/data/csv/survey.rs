//! What a CSV file holds when read as training data with a given target column: each feature
//! column's type and why, missing cells, and the task the target suggests. `kiln init` writes
//! a starter config from it; every answer comes from the code `train` reads the file with
//! (`layout`, `read_file`, `task_of_targets`, `Column::fit`), so the config reads the file as
//! the survey did.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{
    class_names, column_positions, identifier_columns, is_missing, layout, open, read_file, reader,
    regular_file, task_of_targets, Column, FeatureValues,
};
use crate::config::{ColumnType, Task};
use crate::error::{Error, Result};

/// One feature column as `train` would read it.
pub struct ColumnSurvey {
    pub name: String,
    pub kind: ColumnType,
    /// Why the type was inferred, as the log says it: `numbers`, `category: 3 distinct short
    /// values`, `text: ...`.
    pub reason: String,
    /// Missing cells (empty, `NA`, ...).
    pub missing: usize,
    /// Values the column adds to a row: 1 for a number, the one-hot slots of a category, the
    /// token ids of text.
    pub width: usize,
    /// A number column holding whole numbers only: how many distinct ones (a year or a code
    /// may be better read as a category).
    pub whole_values: Option<usize>,
    /// A number column whose rows each hold a different whole number close together: a row
    /// identifier, which `train` warns about.
    pub identifier: bool,
}

pub struct Survey {
    pub source: String,
    pub target: String,
    /// Data rows.
    pub rows: usize,
    /// Feature columns in the file's order.
    pub columns: Vec<ColumnSurvey>,
    /// Rows whose target cell is missing.
    pub target_missing: usize,
    /// Rows `data.missing = "drop"` would drop: a missing target or number.
    pub rows_incomplete: usize,
    pub task: Task,
    /// How `train` would decide the task from the target's values.
    pub task_reason: String,
    /// Classification: each class with its row count, in kiln's class order.
    pub classes: Vec<(String, usize)>,
    /// Distinct values of the target.
    pub distinct_targets: usize,
}

/// Whole-number counts above this are not told apart (a column of many whole numbers is a
/// quantity, not a code).
const MAX_WHOLE_VALUES: usize = 1000;

/// A category column whose cells are all present and all different, in a table of
/// `ID_MIN_ROWS` rows or more: a row identifier (a name, a key), which one-hot encoding would
/// turn into one slot per row.
fn all_distinct(cells: &[String]) -> bool {
    if cells.len() < super::ID_MIN_ROWS || cells.iter().any(|c| is_missing(c)) {
        return false;
    }
    let mut seen = std::collections::HashSet::new();
    cells.iter().all(|c| seen.insert(c.trim()))
}

/// Read `path` as `train` would with `target` as its target and every other column a feature.
pub fn survey(path: &Path, target: &str) -> Result<Survey> {
    regular_file(path)?;
    let source = path.display().to_string();
    let header = reader(open(path)?, &source).header()?;
    column_positions(&header, &[target.to_string()], &source)?;
    let features: Vec<String> = header.iter().filter(|c| *c != target).cloned().collect();
    if features.is_empty() {
        return Err(Error::data(
            &source,
            format!("one column (\"{target}\"): a table needs a target column and at least one feature column"),
        ));
    }
    let layout = layout(path, &BTreeMap::new(), &features)?;
    let raw = read_file(path, &layout, target)?;
    let rows = raw.lines.len();
    let f = layout.numbers.len();
    let identifiers = match &raw.x {
        FeatureValues::Floats(x) => identifier_columns(x, f, &layout.numbers),
        FeatureValues::Bytes(_) => Vec::new(),
    };
    let reason = |name: &str| {
        let found = layout.reasons.iter().find(|(n, _)| n == name);
        found.map_or(String::new(), |(_, why)| why.clone())
    };
    let mut columns = Vec::with_capacity(features.len());
    for name in &features {
        let column = if let Some(c) = layout.numbers.iter().position(|n| n == name) {
            let values = (0..rows).map(|r| raw.x.get(r * f + c));
            let (missing, whole_values) = number_stats(values);
            ColumnSurvey {
                name: name.clone(),
                kind: ColumnType::Number,
                reason: reason(name),
                missing,
                width: 1,
                whole_values,
                identifier: identifiers.contains(name),
            }
        } else {
            let j = layout.cells.iter().position(|(n, _)| n == name);
            let j = j.expect("a feature is a number or a cell column");
            let (_, spec) = &layout.cells[j];
            let cells = &raw.cells[j];
            ColumnSurvey {
                name: name.clone(),
                kind: spec.kind.expect("layout types every column"),
                reason: reason(name),
                missing: cells.iter().filter(|c| is_missing(c)).count(),
                width: Column::fit(name, spec, cells).width(),
                whole_values: None,
                identifier: spec.kind == Some(ColumnType::Category) && all_distinct(cells),
            }
        };
        columns.push(column);
    }
    let rows_incomplete = (0..rows)
        .filter(|&r| is_missing(&raw.target[r]) || (0..f).any(|c| raw.x.get(r * f + c).is_nan()))
        .count();
    let present: Vec<&String> = raw.target.iter().filter(|t| !is_missing(t)).collect();
    let (task, task_reason) = task_of_targets(&raw.target);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &present {
        *counts.entry(t.as_str()).or_default() += 1;
    }
    let classes = match task {
        Task::Classification => class_names(&raw.target)
            .into_iter()
            .map(|c| {
                let n = counts[c.as_str()];
                (c, n)
            })
            .collect(),
        Task::Regression => Vec::new(),
    };
    Ok(Survey {
        source,
        target: target.to_string(),
        rows,
        columns,
        target_missing: rows - present.len(),
        rows_incomplete,
        task,
        task_reason,
        classes,
        distinct_targets: counts.len(),
    })
}

/// A number column's missing cells, and how many distinct whole numbers it holds when it
/// holds nothing else (`None` past `MAX_WHOLE_VALUES`).
fn number_stats(values: impl Iterator<Item = f32>) -> (usize, Option<usize>) {
    let mut missing = 0;
    let mut whole = Some(BTreeSet::new());
    for v in values {
        if v.is_nan() {
            missing += 1;
        } else if let Some(seen) = &mut whole {
            seen.insert(v as i64);
            if v.fract() != 0.0 || seen.len() > MAX_WHOLE_VALUES {
                whole = None;
            }
        }
    }
    (missing, whole.map(|s| s.len()))
}
