//! `kiln runs --compare RUN RUN ...`: the runs' config differences and final metrics side by
//! side, one column per run, and their learning curves overlaid in one PNG.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::{best_cell, best_json};
use crate::config;
use crate::error::{Error, Result};
use crate::run::{MetricsTable, RunDir, RunInfo};
use crate::train::comparison_plot;

/// A run as a comparison reads it: named by the path it was given as, its run.json, its
/// config.toml as a table, its metrics.csv.
struct Compared {
    label: String,
    info: RunInfo,
    config: toml::Table,
    metrics: MetricsTable,
}

impl Compared {
    fn open(path: &Path) -> Result<Compared> {
        let run = RunDir::open(path)?;
        let info = run.read_info()?;
        let config_path = run.file("config.toml");
        let text =
            std::fs::read_to_string(&config_path).map_err(|e| Error::input(&config_path, e))?;
        let config = toml::from_str(&text).map_err(|e: toml::de::Error| {
            Error::data(
                config_path.display().to_string(),
                format!("not a config kiln can read: {}", e.message().trim()),
            )
        })?;
        Ok(Compared {
            label: path.display().to_string(),
            info,
            config,
            metrics: MetricsTable::read(&run.file("metrics.csv")),
        })
    }

    /// The last metrics.csv row's train and valid metrics, as `kiln train --json`'s `final`.
    fn final_metrics(&self) -> Vec<(String, f64)> {
        self.metrics
            .last_row()
            .into_iter()
            .filter(|(k, _)| k.starts_with("train_") || k.starts_with("valid_"))
            .collect()
    }

    /// The test metrics from run.json as `test_<metric>`: the loss, then the config's metrics
    /// in its order, then any others.
    fn test_metrics(&self) -> Vec<(String, f64)> {
        let Some(test) = &self.info.test else {
            return Vec::new();
        };
        let names = std::iter::once("loss")
            .chain(self.info.metrics.iter().map(String::as_str))
            .chain(test.keys().map(String::as_str));
        let mut out: Vec<(String, f64)> = Vec::new();
        for name in names {
            let key = format!("test_{name}");
            if let (Some(v), false) = (test.get(name), out.iter().any(|(k, _)| *k == key)) {
                out.push((key, v.as_f64().unwrap_or(f64::NAN)));
            }
        }
        out
    }
}

pub fn exec(paths: &[PathBuf], plot: &Path, json: bool) -> Result<()> {
    if paths.len() < 2 {
        return Err(Error::Usage(format!(
            "--compare needs two or more run directories, got {} ({})",
            paths.len(),
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let runs: Vec<Compared> = paths
        .iter()
        .map(|p| Compared::open(p))
        .collect::<Result<_>>()?;
    // A run with no epochs yet still has a config and a status to compare: its columns are
    // shown and its curves are not, with a note. With no epochs anywhere, nothing is drawn.
    // A file that is missing, empty or not kiln's (no epoch column) has no curve to draw.
    let empty: Vec<&Compared> = runs
        .iter()
        .filter(|r| r.metrics.by_epoch("train_loss").is_empty())
        .collect();
    let csv = |r: &Compared| {
        Path::new(&r.label)
            .join("metrics.csv")
            .display()
            .to_string()
    };
    if empty.len() == runs.len() {
        let files: Vec<String> = runs.iter().map(csv).collect();
        return Err(Error::Usage(format!(
            "{}: no epoch rows (missing, empty or unreadable, or no run finished an epoch): nothing to compare",
            files.join(", ")
        )));
    }
    for r in &empty {
        eprintln!(
            "note: {}: no epoch rows (missing, empty or unreadable, or no epoch finished): the run's curves are not drawn",
            csv(r)
        );
    }
    let curves: Vec<(String, &MetricsTable, &[String])> = runs
        .iter()
        .map(|r| (r.label.clone(), &r.metrics, r.info.metrics.as_slice()))
        .collect();
    comparison_plot(plot, &curves)?;
    let configs: Vec<&toml::Table> = runs.iter().map(|r| &r.config).collect();
    let differences = config::differences(&configs);
    if json {
        outln!("{}", to_json(&runs, &differences, plot));
    } else {
        print_tables(&runs, &differences)?;
        outln!();
        outln!("plot: {}", plot.display());
    }
    Ok(())
}

fn to_json(
    runs: &[Compared],
    differences: &[(String, Vec<Option<toml::Value>>)],
    plot: &Path,
) -> Value {
    let toml_to_json = |v: &toml::Value| serde_json::to_value(v).unwrap_or(json!(v.to_string()));
    let differences: Map<String, Value> = differences
        .iter()
        .map(|(key, values)| {
            let values = values
                .iter()
                .map(|v| v.as_ref().map_or(Value::Null, toml_to_json));
            (key.clone(), values.collect())
        })
        .collect();
    let object = |pairs: Vec<(String, f64)>| -> Value {
        pairs.into_iter().map(|(k, v)| (k, json!(v))).collect()
    };
    json!({
        "runs": runs.iter().map(|r| json!({
            "run_dir": r.label,
            "name": r.info.name,
            "status": r.info.status,
            "epochs": r.info.epochs_done,
        })).collect::<Vec<_>>(),
        "differences": differences,
        "metrics": {
            "best": runs.iter().map(|r| r.info.best.as_ref().map(best_json)).collect::<Vec<_>>(),
            "final": runs.iter().map(|r| object(r.final_metrics())).collect::<Vec<_>>(),
            "test": runs.iter().map(|r| &r.info.test).collect::<Vec<_>>(),
        },
        "plot": plot,
    })
}

/// A config value as a cell: a string without its quotes, anything else as TOML writes it.
fn config_cell(value: Option<&toml::Value>) -> String {
    match value {
        None => "-".into(),
        Some(toml::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// The config differences, then the metrics, one column per run, both tables in the same
/// column widths.
fn print_tables(
    runs: &[Compared],
    differences: &[(String, Vec<Option<toml::Value>>)],
) -> Result<()> {
    // One table, a blank row between its parts, so both parts share the column widths.
    let rows = [
        config_table(runs, differences),
        vec![Vec::new()],
        metrics_table(runs),
    ]
    .concat();
    out!("{}", crate::table::aligned(&rows, 3));
    Ok(())
}

/// A row: its name, then a cell per run.
fn row(name: &str, cells: impl Iterator<Item = String>) -> Vec<String> {
    std::iter::once(name.to_string()).chain(cells).collect()
}

fn config_table(
    runs: &[Compared],
    differences: &[(String, Vec<Option<toml::Value>>)],
) -> Vec<Vec<String>> {
    let mut table = vec![row("config", runs.iter().map(|r| r.label.clone()))];
    for (key, values) in differences {
        table.push(row(key, values.iter().map(|v| config_cell(v.as_ref()))));
    }
    if differences.is_empty() {
        table.push(vec!["(no differences)".into()]);
    }
    table
}

fn metrics_table(runs: &[Compared]) -> Vec<Vec<String>> {
    let best = |r: &Compared| r.info.best.as_ref().map_or("-".into(), best_cell);
    let best_epoch = |r: &Compared| {
        r.info
            .best
            .as_ref()
            .map_or("-".into(), |b| b.epoch.to_string())
    };
    let mut table = vec![
        row("metrics", runs.iter().map(|r| r.label.clone())),
        row(
            "status",
            runs.iter().map(|r| r.info.status.name().to_string()),
        ),
        row(
            "epochs",
            runs.iter().map(|r| r.info.epochs_done.to_string()),
        ),
        row("best", runs.iter().map(best)),
        row("best epoch", runs.iter().map(best_epoch)),
    ];
    let values: Vec<Vec<(String, f64)>> = runs
        .iter()
        .map(|r| [r.final_metrics(), r.test_metrics()].concat())
        .collect();
    // Every metric any run has, in the order the runs list them: final ones, then test.
    let mut names: Vec<&String> = Vec::new();
    for test in [false, true] {
        for (name, _) in values.iter().flatten() {
            if name.starts_with("test_") == test && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    for name in names {
        let cells = values.iter().map(|pairs| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map_or("-".into(), |(_, v)| format!("{v:.4}"))
        });
        table.push(row(name, cells));
    }
    table
}
