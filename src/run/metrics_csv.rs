//! metrics.csv: a fixed header, one row per epoch, appended and flushed every epoch.

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
