//! metrics.csv: a fixed header, one row per epoch, appended and flushed every epoch; and its
//! reader.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub struct MetricsCsv {
    path: PathBuf,
    columns: Vec<String>,
    /// Opened at the first row and kept open.
    file: Option<std::fs::File>,
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
            file: None,
        }
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Append one row (values by column name; missing ones are left empty). Writes the header
    /// first when the file is new; on resume the existing file is appended to. Not synced:
    /// `sync` at checkpoints.
    pub fn append(&mut self, values: &[(String, f64)]) -> Result<()> {
        let io = |e| Error::io(&self.path, e);
        let mut new = false;
        if self.file.is_none() {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(io)?;
            new = f.metadata().map_err(io)?.len() == 0;
            self.file = Some(f);
        }
        let f = self.file.as_mut().expect("opened above");
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
        f.write_all(text.as_bytes()).map_err(io)
    }

    /// Drop the rows of epochs after `epoch` (written after the checkpoint a run resumes from),
    /// so a resumed run does not repeat them.
    pub fn keep_epochs_through(path: &Path, epoch: usize) -> Result<()> {
        let Ok(text) = std::fs::read_to_string(path) else {
            return Ok(());
        };
        let mut lines = text.lines();
        let Some(header) = lines.next() else {
            return Ok(());
        };
        let kept: Vec<&str> = lines
            .filter(|l| {
                l.split(',')
                    .next()
                    .and_then(|e| e.parse::<usize>().ok())
                    .is_some_and(|e| e <= epoch)
            })
            .collect();
        if kept.len() + 1 == text.lines().count() {
            return Ok(());
        }
        let mut out = String::from(header);
        out.push('\n');
        for l in kept {
            out.push_str(l);
            out.push('\n');
        }
        crate::files::write_atomic(path, out.as_bytes())
    }

    /// Wait until the rows appended so far are on disk (at checkpoints and at the end).
    pub fn sync(&self) -> Result<()> {
        match &self.file {
            Some(f) => f.sync_data().map_err(|e| Error::io(&self.path, e)),
            None => Ok(()),
        }
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
        self.rows.last().map_or_else(Vec::new, |r| self.named(r))
    }

    /// A row's cells as (column, value) pairs, skipping empty cells.
    fn named(&self, row: &[Option<f64>]) -> Vec<(String, f64)> {
        self.header
            .iter()
            .zip(row)
            .filter_map(|(k, v)| v.map(|v| (k.clone(), v)))
            .collect()
    }

    /// The row of `epoch` (1-based, as the `epoch` column) as (column, value) pairs, skipping
    /// empty cells; empty when there is no such row.
    pub fn row_at_epoch(&self, epoch: usize) -> Vec<(String, f64)> {
        let Some(e) = self.header.iter().position(|h| h == "epoch") else {
            return Vec::new();
        };
        self.rows
            .iter()
            .rev()
            .find(|r| r.get(e).copied().flatten() == Some(epoch as f64))
            .map_or_else(Vec::new, |r| self.named(r))
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
