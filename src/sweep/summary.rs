//! A sweep's results, read back from its runs' own run.json and metrics.csv (so a summary can
//! be redrawn from the folder at any time): each trial's metric over its folds (mean ± std),
//! ranked in the metric's direction; the table, summary.csv, the JSON and best.toml.

use std::path::Path;

use serde_json::{json, Value};

use super::{Job, Kind, Plan, CONFIG_FILE};
use crate::config;
use crate::error::{Error, Result};
use crate::files;
use crate::metrics::{direction, lower_is_better};
use crate::run::MetricsTable;
use crate::run::{RunDir, Status};
use crate::table::aligned;

/// One run of the plan as its directory has it.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub job: Job,
    /// As `kiln runs` shows it (`Stopped`: marked running, held by no process); none when the
    /// run has no run.json (not started).
    pub status: Option<Status>,
    /// Whether it has a checkpoint to resume from.
    pub checkpointed: bool,
    /// The metric at the run's best epoch (run.json's `best.value`): the model it kept.
    pub value: Option<f64>,
    pub best_epoch: Option<usize>,
    pub epochs: usize,
    /// Validation metrics at the best epoch (`valid_loss`, `valid_accuracy`, ...).
    pub valid: Vec<(String, f64)>,
    pub error: Option<String>,
}

impl RunResult {
    /// A run that needs no more training: finished (early stopping included) or out of its
    /// time budget.
    pub fn done(&self) -> bool {
        matches!(self.status, Some(Status::Finished | Status::Timeout))
    }

    /// The status's name, or `not started`.
    pub fn status_name(&self) -> &'static str {
        self.status.map_or("not started", Status::name)
    }
}

/// What each of the plan's runs holds now.
pub fn collect(plan: &Plan, folder: &Path) -> Vec<RunResult> {
    plan.jobs(folder)
        .into_iter()
        .map(|job| collect_one(plan, job))
        .collect()
}

/// What one run's directory holds now.
pub fn collect_one(plan: &Plan, job: Job) -> RunResult {
    let mut r = RunResult {
        job,
        status: None,
        checkpointed: false,
        value: None,
        best_epoch: None,
        epochs: 0,
        valid: Vec::new(),
        error: None,
    };
    let Some(info) = RunDir::open(&r.job.dir)
        .ok()
        .and_then(|d| d.read_info_now().ok())
    else {
        return r;
    };
    r.status = Some(info.status);
    r.checkpointed = info.last_checkpoint.is_some();
    r.epochs = info.epochs_done;
    r.error = info.error.clone();
    if let Some(best) = info.best.filter(|b| b.monitor == plan.metric) {
        r.value = Some(best.value);
        r.best_epoch = Some(best.epoch);
        r.valid = MetricsTable::read(&r.job.dir.join("metrics.csv"))
            .row_at_epoch(best.epoch)
            .into_iter()
            .filter(|(k, _)| k.starts_with("valid_"))
            .collect();
    }
    r
}

/// One setting's results over its folds.
#[derive(Clone, Debug)]
pub struct Trial {
    pub trial: usize,
    /// The metric of each run (fold) that is done, in fold order; None for the others.
    pub values: Vec<Option<f64>>,
    pub mean: Option<f64>,
    /// Population standard deviation over the folds (numpy's default, as
    /// `cross_val_score(...).std()` reports); 0 for one run.
    pub std: Option<f64>,
    pub runs: Vec<RunResult>,
}

impl Trial {
    pub fn done(&self) -> usize {
        self.values.iter().flatten().count()
    }
}

/// Mean and population standard deviation.
pub fn mean_std(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    Some((mean, var.sqrt()))
}

/// The trials ranked by their mean metric in its direction; trials with no finished run last.
pub fn rank(plan: &Plan, results: &[RunResult]) -> Vec<Trial> {
    let mut trials: Vec<Trial> = (0..plan.settings.len())
        .map(|trial| {
            let runs: Vec<RunResult> = results
                .iter()
                .filter(|r| r.job.trial == trial)
                .cloned()
                .collect();
            let values: Vec<Option<f64>> =
                runs.iter().map(|r| r.value.filter(|_| r.done())).collect();
            let present: Vec<f64> = values.iter().flatten().copied().collect();
            let stats = mean_std(&present);
            Trial {
                trial,
                values,
                mean: stats.map(|s| s.0),
                std: stats.map(|s| s.1),
                runs,
            }
        })
        .collect();
    let lower = lower_is_better(&plan.metric);
    // A NaN mean (a diverged run) ranks with the trials that have none.
    let score = |t: &Trial| t.mean.filter(|m| !m.is_nan());
    trials.sort_by(|a, b| match (score(a), score(b)) {
        (Some(x), Some(y)) if lower => x.total_cmp(&y),
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.trial.cmp(&b.trial),
    });
    trials
}

/// `0.9533 ± 0.0121`, or `-`.
pub fn mean_pm_std(mean: Option<f64>, std: Option<f64>, folds: bool) -> String {
    match (mean, std) {
        (Some(m), Some(s)) if folds => format!("{m:.4} ± {s:.4}"),
        (Some(m), _) => format!("{m:.4}"),
        _ => "-".into(),
    }
}

/// A setting's value for a key, as its table shows it.
fn value_of(plan: &Plan, trial: usize, key: &str) -> String {
    plan.settings[trial]
        .iter()
        .find(|(k, _)| k == key)
        .map_or("-".into(), |(_, v)| v.trim_matches('"').to_string())
}

/// The ranked table: rank, trial, each swept key, the metric (mean ± std with folds), runs done.
pub fn table(plan: &Plan, trials: &[Trial]) -> String {
    let folds = plan.folds.is_some();
    let mut header: Vec<String> = vec!["rank".into(), "trial".into()];
    header.extend(plan.keys.iter().cloned());
    header.push(if folds {
        format!("{} (mean ± std)", plan.metric)
    } else {
        plan.metric.clone()
    });
    header.push("runs".into());
    let mut rows = vec![header];
    for (rank, t) in trials.iter().enumerate() {
        let mut row = vec![(rank + 1).to_string(), (t.trial + 1).to_string()];
        row.extend(plan.keys.iter().map(|k| value_of(plan, t.trial, k)));
        row.push(mean_pm_std(t.mean, t.std, folds));
        row.push(format!("{}/{}", t.done(), t.runs.len()));
        rows.push(row);
    }
    aligned(&rows, 2)
}

/// summary.csv: one row per trial in rank order, each fold's value in its own column.
pub fn write_csv(plan: &Plan, trials: &[Trial], path: &Path) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let m = &plan.metric;
    let mut header: Vec<String> = vec!["rank".into(), "trial".into()];
    header.extend(plan.keys.iter().cloned());
    header.extend([
        format!("{m}_mean"),
        format!("{m}_std"),
        "runs_done".into(),
        "runs".into(),
    ]);
    let per_run = trials.first().map_or(0, |t| t.runs.len());
    header.extend((1..=per_run).map(|f| match plan.folds {
        Some(_) => format!("{m}_fold_{f}"),
        None => m.clone(),
    }));
    header.push("run_dirs".into());
    let csv_error = |e: csv::Error| Error::Runtime(format!("{}: {e}", path.display()));
    w.write_record(&header).map_err(csv_error)?;
    let number = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
    for (rank, t) in trials.iter().enumerate() {
        let mut row = vec![(rank + 1).to_string(), (t.trial + 1).to_string()];
        row.extend(plan.keys.iter().map(|k| value_of(plan, t.trial, k)));
        row.extend([
            number(t.mean),
            number(t.std),
            t.done().to_string(),
            t.runs.len().to_string(),
        ]);
        row.extend(t.values.iter().map(|v| number(*v)));
        let dirs: Vec<String> = t
            .runs
            .iter()
            .map(|r| r.job.dir.display().to_string())
            .collect();
        row.push(dirs.join(" "));
        w.write_record(&row).map_err(csv_error)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::Runtime(format!("{}: {e}", path.display())))?;
    files::write_atomic(path, &bytes)
}

/// Each validation metric at the runs' best epochs: (name, mean, std), in column order.
pub fn valid_stats(runs: &[RunResult]) -> Vec<(String, f64, f64)> {
    let done: Vec<&RunResult> = runs.iter().filter(|r| r.done()).collect();
    let names: Vec<String> = done
        .first()
        .map(|r| r.valid.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    names
        .into_iter()
        .filter_map(|name| {
            let values: Vec<f64> = done
                .iter()
                .filter_map(|r| r.valid.iter().find(|(k, _)| *k == name).map(|(_, v)| *v))
                .collect();
            let (m, s) = mean_std(&values)?;
            Some((name.replacen('_', ".", 1), m, s))
        })
        .collect()
}

/// Cross-validation's table: each fold's validation metrics at its best epoch, then their
/// mean ± std.
pub fn folds_table(results: &[RunResult]) -> String {
    let stats = valid_stats(results);
    let mut header: Vec<String> = vec!["fold".into(), "status".into(), "best epoch".into()];
    header.extend(stats.iter().map(|(n, _, _)| n.clone()));
    let mut rows = vec![header];
    for r in results {
        let mut row = vec![
            r.job.fold.map_or("-".into(), |f| f.to_string()),
            r.status_name().to_string(),
            r.best_epoch
                .filter(|_| r.done())
                .map_or("-".into(), |e| format!("{e} of {}", r.epochs)),
        ];
        for (name, _, _) in &stats {
            let column = name.replacen('.', "_", 1);
            let v = r
                .valid
                .iter()
                .find(|(k, _)| *k == column)
                .filter(|_| r.done());
            row.push(v.map_or("-".into(), |(_, v)| format!("{v:.4}")));
        }
        rows.push(row);
    }
    // Fewer folds than planned (interrupted, failed): say how many the mean is over.
    let done = results.iter().filter(|r| r.done()).count();
    let label = if done == results.len() {
        "mean ± std".to_string()
    } else {
        format!("mean ± std of {done} of {} folds", results.len())
    };
    let mut last = vec![label, String::new(), String::new()];
    last.extend(stats.iter().map(|(_, m, s)| format!("{m:.4} ± {s:.4}")));
    rows.push(last);
    aligned(&rows, 2)
}

/// A setting's values as JSON (TOML text parsed back, so numbers stay numbers).
fn setting_json(plan: &Plan, trial: usize) -> Value {
    let map: serde_json::Map<String, Value> = plan.settings[trial]
        .iter()
        .map(|(k, v)| {
            let value =
                serde_json::to_value(config::override_value(v)).unwrap_or(Value::String(v.clone()));
            (k.clone(), value)
        })
        .collect();
    Value::Object(map)
}

fn run_json(r: &RunResult) -> Value {
    let valid: serde_json::Map<String, Value> = r
        .valid
        .iter()
        .map(|(k, v)| (k.trim_start_matches("valid_").to_string(), json!(v)))
        .collect();
    json!({
        "run_dir": r.job.dir,
        "fold": r.job.fold,
        "status": r.status_name(),
        "value": r.value,
        "best_epoch": r.best_epoch,
        "epochs": r.epochs,
        "valid": valid,
        "error": r.error,
    })
}

/// The summary as one JSON object.
pub fn to_json(plan: &Plan, folder: &Path, trials: &[Trial], best: Option<&Path>) -> Value {
    let trials_json: Vec<Value> = trials
        .iter()
        .enumerate()
        .map(|(rank, t)| {
            json!({
                "rank": rank + 1,
                "trial": t.trial + 1,
                "setting": setting_json(plan, t.trial),
                "mean": t.mean,
                "std": t.std,
                "values": t.values,
                "valid": valid_stats(&t.runs)
                    .into_iter()
                    .map(|(n, m, s)| (n, json!({ "mean": m, "std": s })))
                    .collect::<serde_json::Map<_, _>>(),
                "runs": t.runs.iter().map(run_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "kind": plan.kind,
        "folder": folder,
        "metric": plan.metric,
        "direction": direction(&plan.metric),
        "keys": plan.keys,
        "folds": plan.folds,
        "trials": trials_json,
        "best_config": best,
    })
}

/// best.toml: the best trial's resolved config (the folder's config with its setting), without
/// the fold, so `kiln train best.toml` trains it on the config's own validation split.
pub fn write_best(plan: &Plan, folder: &Path, best: &Trial) -> Result<std::path::PathBuf> {
    let config = config::load(&folder.join(CONFIG_FILE), &plan.sets(best.trial))?;
    let what = match plan.kind {
        Kind::Sweep => format!(
            "trial {} of {} ({})",
            best.trial + 1,
            folder.display(),
            plan.describe(best.trial)
        ),
        Kind::CrossValidation => folder.display().to_string(),
    };
    let text = format!(
        "# The best setting of the sweep: {what}\n# {} {} over {} run(s)\n{}",
        plan.metric,
        mean_pm_std(best.mean, best.std, plan.folds.is_some()),
        best.done(),
        config::to_toml(&config)
    );
    let path = folder.join("best.toml");
    files::write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn population_std_as_numpy() {
        let (m, s) = mean_std(&[0.9, 0.95, 1.0]).unwrap();
        assert!((m - 0.95).abs() < 1e-12);
        assert!((s - (0.005f64 / 3.0).sqrt()).abs() < 1e-12, "{s}");
        assert_eq!(mean_std(&[2.0]), Some((2.0, 0.0)));
        assert_eq!(mean_std(&[]), None);
    }
}
