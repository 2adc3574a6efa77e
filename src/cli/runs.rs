//! `kiln runs`: the runs under a folder, or (`--compare`) a few of them side by side.

mod compare;

use std::path::PathBuf;

use serde_json::json;

use crate::error::{Error, Result};
use crate::metrics::direction;
use crate::run::{Best, RunDir};
use crate::sweep::{Kind, Plan, PLAN_FILE};

/// List the runs under a folder (default `runs/`), oldest first; or compare runs.
#[derive(clap::Args)]
pub struct Args {
    #[arg(default_value = "runs")]
    dir: PathBuf,
    /// One JSON array on stdout (with --compare, one object).
    #[arg(long)]
    json: bool,
    /// Compare two or more run directories: the config keys whose values differ, each run's
    /// final metrics, and their learning curves overlaid in one PNG.
    #[arg(long, value_name = "RUN", num_args = 1.., conflicts_with = "dir")]
    compare: Option<Vec<PathBuf>>,
    /// The PNG --compare draws [default: compare.png].
    #[arg(long, value_name = "FILE", requires = "compare")]
    output: Option<PathBuf>,
}

pub fn exec(a: Args) -> Result<()> {
    if let Some(runs) = &a.compare {
        let plot = a.output.unwrap_or_else(|| PathBuf::from("compare.png"));
        return compare::exec(runs, &plot, a.json);
    }
    let entries = std::fs::read_dir(&a.dir).map_err(|e| Error::input(&a.dir, e))?;
    let folders: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| !e.path().is_symlink()) // runs/latest
        .map(|e| e.path())
        .collect();
    let dirs: Vec<RunDir> = folders
        .iter()
        .filter_map(|p| RunDir::open(p).ok())
        .collect();
    let mut runs = Vec::new();
    for r in &dirs {
        match r.read_info_now() {
            Ok(i) => runs.push((r.path.clone(), i)),
            Err(e) => eprintln!("warning: {e}"),
        }
    }
    // Started in the same second (a sweep's runs): by folder name, `x` before `x-2` before `x-10`.
    let name_order = |p: &PathBuf| {
        let n = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (n.len(), n)
    };
    runs.sort_by(|a, b| {
        a.1.started
            .cmp(&b.1.started)
            .then_with(|| name_order(&a.0).cmp(&name_order(&b.0)))
    });
    if a.json {
        let rows: Vec<_> = runs
            .iter()
            .map(|(p, i)| json!({"run_dir": p, "name": i.name, "status": i.status, "epochs": i.epochs_done, "best": i.best.as_ref().map(best_json), "test": i.test, "started": i.started, "ended": i.ended, "device": i.device}))
            .collect();
        outln!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    outln!(
        "{:<40} {:<12} {:>6} {:>30} {:>16} {:>9} {:<6}",
        "run",
        "status",
        "epochs",
        "best",
        "test",
        "seconds",
        "device"
    );
    for (_, i) in &runs {
        let best = i.best.as_ref().map_or("-".into(), best_cell);
        // The run's first metric (the one its config lists first), as training reports it.
        let test = i.test.as_ref().and_then(|t| {
            let k = i.metrics.first()?;
            let v = t.get(k)?.as_f64().unwrap_or(f64::NAN);
            Some(format!("{k} {v:.4}"))
        });
        let secs = i
            .ended
            .as_ref()
            .and_then(|e| seconds_between(&i.started, e))
            .map_or("-".into(), |s| s.to_string());
        let status = i.status.name();
        outln!(
            "{:<40} {:<12} {:>6} {:>30} {:>16} {:>9} {:<6}",
            i.name,
            status,
            i.epochs_done,
            best,
            test.unwrap_or("-".into()),
            secs,
            i.device
        );
    }
    list_sweeps(&folders)
}

/// The sweep and cross-validation folders among `folders`, a line each: their runs are listed
/// by `kiln runs FOLDER`.
fn list_sweeps(folders: &[PathBuf]) -> Result<()> {
    let mut sweeps: Vec<(PathBuf, Plan)> = folders
        .iter()
        .filter(|f| f.join(PLAN_FILE).exists())
        .filter_map(|f| match Plan::read(f) {
            Ok(plan) => Some((f.clone(), plan)),
            Err(e) => {
                eprintln!("warning: {e}");
                None
            }
        })
        .collect();
    if sweeps.is_empty() {
        return Ok(());
    }
    sweeps.sort_by(|a, b| a.1.created.cmp(&b.1.created));
    outln!();
    outln!("sweeps and cross-validations (kiln runs FOLDER lists their runs):");
    for (folder, plan) in &sweeps {
        let results = crate::sweep::summary::collect(plan, folder);
        let done = results.iter().filter(|r| r.done()).count();
        let shape = match (plan.kind, plan.folds) {
            (Kind::CrossValidation, Some(k)) => format!("cross-validation, {k} folds"),
            (_, Some(k)) => format!("sweep, {} settings × {k} folds", plan.settings.len()),
            (_, None) => format!("sweep, {} settings", plan.settings.len()),
        };
        outln!(
            "  {}  {shape}, {done} of {} runs done, by {} ({})",
            folder.display(),
            results.len(),
            plan.metric,
            direction(&plan.metric)
        );
    }
    Ok(())
}

/// The best value with its metric and direction: `valid.accuracy 0.9620 (max)`.
fn best_cell(b: &Best) -> String {
    format!("{} {:.4} ({})", b.monitor, b.value, direction(&b.monitor))
}

/// run.json's best {monitor, value, epoch} with its `direction` added.
fn best_json(b: &Best) -> serde_json::Value {
    json!({"monitor": b.monitor, "value": b.value, "epoch": b.epoch, "direction": direction(&b.monitor)})
}

fn seconds_between(start: &str, end: &str) -> Option<u64> {
    let s = humantime::parse_rfc3339(start).ok()?;
    let e = humantime::parse_rfc3339(end).ok()?;
    e.duration_since(s).ok().map(|d| d.as_secs())
}
