//! Reading CSV files (optionally gzip-compressed) into feature rows and target strings.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::values::small_uint;
use super::FeatureValues;
use crate::error::{Error, Result};
use crate::suggest::did_you_mean;

/// Cells read as missing values.
const MISSING: &[&str] = &["", "NA", "N/A", "NaN", "nan", "null", "?"];

pub fn is_missing(cell: &str) -> bool {
    MISSING.contains(&cell.trim())
}

/// Open a CSV file, decompressing `.gz` transparently.
pub fn open(path: &Path) -> Result<Box<dyn Read>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = BufReader::with_capacity(1 << 16, file);
    Ok(if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    })
}

pub fn reader(input: Box<dyn Read>) -> csv::Reader<Box<dyn Read>> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(input)
}

/// The header row as names.
pub fn header(rdr: &mut csv::Reader<Box<dyn Read>>, source: &str) -> Result<Vec<String>> {
    let h = rdr
        .headers()
        .map_err(|e| Error::data(source, format!("cannot read the header row: {e}")))?;
    if h.is_empty() || h.iter().all(|c| c.trim().is_empty()) {
        return Err(Error::data(
            source,
            "the file is empty or has no header row",
        ));
    }
    Ok(h.iter().map(|c| c.trim().to_string()).collect())
}

/// Position of each wanted column in `header`; a missing one is an error naming it.
pub fn column_positions(header: &[String], wanted: &[String], source: &str) -> Result<Vec<usize>> {
    wanted
        .iter()
        .map(|name| {
            header.iter().position(|h| h == name).ok_or_else(|| {
                let known: Vec<&str> = header.iter().map(String::as_str).collect();
                Error::data(
                    source,
                    format!(
                        "no column \"{name}\" in the header{}",
                        did_you_mean(name, &known)
                    ),
                )
            })
        })
        .collect()
}

/// Rows of a CSV read as numeric features (NaN where missing) and, optionally, a target cell.
pub struct Rows {
    pub x: FeatureValues,
    pub target: Vec<String>,
    /// 1-based line number of each row in its file, for errors found later.
    pub lines: Vec<u64>,
}

/// Read up to `limit` rows. `feature_cols` are positions in the header; `target_col` too.
/// A non-numeric feature cell or a ragged row is an error naming file, line, column and value.
pub fn read_rows(
    rdr: &mut csv::Reader<Box<dyn Read>>,
    source: &str,
    header: &[String],
    feature_cols: &[usize],
    target_col: Option<usize>,
    limit: usize,
) -> Result<Rows> {
    let mut rows = Rows {
        x: FeatureValues::default(),
        target: Vec::new(),
        lines: Vec::new(),
    };
    let mut record = csv::StringRecord::new();
    while rows.lines.len() < limit {
        let more = rdr
            .read_record(&mut record)
            .map_err(|e| Error::data(source, format!("malformed CSV: {e}")))?;
        if !more {
            break;
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != header.len() {
            return Err(Error::data(
                format!("{source}:{line}"),
                format!(
                    "row has {} fields, the header has {}",
                    record.len(),
                    header.len()
                ),
            ));
        }
        for &c in feature_cols {
            if let Some(b) = small_uint(record[c].as_bytes()) {
                rows.x.push_byte(b);
                continue;
            }
            let cell = record[c].trim();
            let value = if is_missing(cell) {
                f32::NAN
            } else {
                cell.parse::<f32>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        Error::data(
                            format!("{source}:{line}"),
                            format!("column \"{}\": \"{cell}\" is not a number", header[c]),
                        )
                    })?
            };
            rows.x.push(value);
        }
        if let Some(t) = target_col {
            rows.target.push(record[t].trim().to_string());
        }
        rows.lines.push(line);
    }
    Ok(rows)
}
