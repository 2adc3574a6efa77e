//! metrics.csv: a fixed header, one row per epoch, appended and flushed every epoch; and its
//! reader.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub struct MetricsCsv {
    path: PathBuf,
    columns: Vec<String>,
}

impl MetricsCsv {
    /// Columns: epoch, step, lr, seconds, train_loss, train_<m>..., valid_loss, valid_<m>...
    pub fn new(path: &Path, metrics: &[String]) -> MetricsCsv {
        let mut columns: Vec<String> = ["epoch", "step", "lr", "seconds", "train_loss"]
            .map(String::from)
            .into();
        columns.extend(metrics.iter().map(|m| format!("train_{m}")));
        columns.push("valid_loss".into());
        columns.extend(metrics.iter().map(|m| format!("valid_{m}")));
        MetricsCsv {
            path: path.to_path_buf(),
            columns,
        }
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Append one row (values by column name; missing ones are left empty). Writes the header
    /// first when the file is new; on resume the existing file is appended to.
    pub fn append(&self, values: &[(String, f64)]) -> Result<()> {
        let io = |e| Error::io(&self.path, e);
        let new = !self.path.exists();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        let mut text = String::new();
        if new {
            text.push_str(&self.columns.join(","));
            text.push('\n');
        }
        let cells: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                values
                    .iter()
                    .find(|(k, _)| k == c)
                    .map_or(String::new(), |(k, v)| {
                        if k == "epoch" || k == "step" {
                            format!("{}", *v as u64)
                        } else if k == "seconds" {
                            format!("{v:.6}")
                        } else if k == "lr" {
                            format!("{}", *v as f32) // the f32 the optimizer used, without widening noise
                        } else {
                            format!("{v}")
                        }
                    })
            })
            .collect();
        text.push_str(&cells.join(","));
        text.push('\n');
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_data().map_err(io)
    }
}

/// metrics.csv as read back: the header and each row's cells (`None` where empty or not a
/// number).
pub struct MetricsTable {
    pub header: Vec<String>,
    pub rows: Vec<Vec<Option<f64>>>,
}

impl MetricsTable {
    /// The file at `path`; empty when it does not exist yet.
    pub fn read(path: &Path) -> MetricsTable {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut lines = text.lines();
        let header = lines
            .next()
            .unwrap_or("")
            .split(',')
            .map(String::from)
            .collect();
        let rows = lines
            .map(|l| l.split(',').map(|c| c.parse().ok()).collect())
            .collect();
        MetricsTable { header, rows }
    }

    /// The last row as (column, value) pairs, skipping empty cells.
    pub fn last_row(&self) -> Vec<(String, f64)> {
        let Some(last) = self.rows.last() else {
            return Vec::new();
        };
        self.header
            .iter()
            .zip(last)
            .filter_map(|(k, v)| v.map(|v| (k.clone(), v)))
            .collect()
    }

    /// (epoch, value) of column `name` over the rows that have both.
    pub fn by_epoch(&self, name: &str) -> Vec<(f64, f64)> {
        let position = |n: &str| self.header.iter().position(|h| h == n);
        let (Some(e), Some(c)) = (position("epoch"), position(name)) else {
            return Vec::new();
        };
        self.rows
            .iter()
            .filter_map(|r| Some((r.get(e).copied()??, r.get(c).copied()??)))
            .collect()
    }
}
