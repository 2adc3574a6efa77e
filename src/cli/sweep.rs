//! `kiln sweep`, and the cross-validation of `kiln train --folds` (one setting, K folds), which
//! runs the same way.

use std::path::{Path, PathBuf};

use crate::config;
use crate::data;
use crate::error::{Error, Result};
use crate::run::create_stamped_dir;
use crate::sweep::drive::{self, Options};
use crate::sweep::space::{self, Setting};
use crate::sweep::summary::{self, RunResult};
use crate::sweep::{self as plans, Kind, Plan, CONFIG_FILE};

/// Train a config over a grid or random draws of settings (and folds), J runs at a time, and
/// rank the settings by a metric.
#[derive(clap::Args)]
pub struct Args {
    /// The config file (not with --resume).
    config: Option<PathBuf>,
    /// A key and the values to try: KEY=V1,V2,... (repeatable; every combination is tried).
    #[arg(long = "grid", value_name = "KEY=V1,V2,...")]
    grid: Vec<String>,
    /// Draw N settings at random (seeded) instead of every combination: each --grid key
    /// takes one of its values, each --range key a value in its range.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    random: Option<u64>,
    /// A key drawn from an interval by --random: KEY=LO:HI, or KEY=LO:HI:log (log-uniform);
    /// whole numbers when LO and HI are written as integers.
    #[arg(long = "range", value_name = "KEY=LO:HI[:log]", requires = "random")]
    range: Vec<String>,
    /// Cross-validate each setting on K folds of the training rows (stratified, seeded).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(2..=1000))]
    folds: Option<u64>,
    /// Runs trained at once (threads split between them).
    #[arg(long, short = 'j', value_name = "J", default_value = "1", value_parser = super::positive)]
    parallel: usize,
    /// The metric settings are ranked by, in its own direction (default: the config's
    /// train.checkpoint.best, else valid.loss); each run keeps its best model by it.
    #[arg(long)]
    metric: Option<String>,
    /// Override a config key for every run: KEY=VALUE (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// The seed of the random draws (default: the config's seed).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=i64::MAX as u64))]
    seed: Option<u64>,
    /// Folder the sweep's folder is made in.
    #[arg(long, default_value = "runs")]
    runs: PathBuf,
    /// auto, cpu, cuda or cuda:N, for every run.
    #[arg(long, default_value = "auto")]
    device: String,
    /// CPU threads for all runs together (default: every core).
    #[arg(long, value_parser = super::thread_count)]
    threads: Option<usize>,
    /// Continue the sweep in this folder: finished runs are kept, interrupted ones resumed,
    /// the rest trained.
    #[arg(long, value_name = "SWEEP_DIR", conflicts_with_all = ["config", "grid", "random", "range", "folds", "metric", "set", "seed"])]
    resume: Option<PathBuf>,
    /// End with one JSON object on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// No per-run lines on stderr.
    #[arg(long)]
    quiet: bool,
}

pub fn exec(a: Args) -> Result<()> {
    let (plan, folder) = match &a.resume {
        Some(dir) => (Plan::read(dir)?, dir.clone()),
        None => {
            let path = a.config.as_ref().ok_or_else(|| {
                Error::Usage("kiln sweep needs a CONFIG file (or --resume SWEEP_DIR)".into())
            })?;
            new_sweep(&a, path)?
        }
    };
    let opts = options(&a.device, a.threads, a.parallel, a.quiet)?;
    finish(&plan, &folder, &opts, a.json)
}

/// Check everything, then make the folder, its config and its plan.
fn new_sweep(a: &Args, path: &Path) -> Result<(Plan, PathBuf)> {
    let config = config::load(path, &a.set)?;
    let grids = a
        .grid
        .iter()
        .map(|g| space::parse_grid(g))
        .collect::<Result<Vec<_>>>()?;
    let ranges = a
        .range
        .iter()
        .map(|r| space::parse_range(r))
        .collect::<Result<Vec<_>>>()?;
    let keys: Vec<String> = grids
        .iter()
        .map(|g| g.key.clone())
        .chain(ranges.iter().map(|r| r.key.clone()))
        .collect();
    if let Some(k) = keys
        .iter()
        .enumerate()
        .find_map(|(i, k)| keys[..i].contains(k).then_some(k))
    {
        return Err(Error::Usage(format!(
            "{k}: swept twice; give each key once"
        )));
    }
    let set_keys: Vec<&str> = a
        .set
        .iter()
        .map(|s| s.split('=').next().unwrap_or(""))
        .collect();
    if let Some(k) = keys.iter().find(|k| set_keys.contains(&k.as_str())) {
        return Err(Error::Usage(format!(
            "{k}: both swept and given by --set; give it once"
        )));
    }
    if let Some(k) = keys
        .iter()
        .find(|k| k.starts_with("data.kfold") || *k == "name")
    {
        return Err(Error::Usage(format!(
            "{k}: set by the sweep itself (use --folds for folds); sweep other keys"
        )));
    }
    let settings: Vec<Setting> = match a.random {
        Some(n) => {
            if keys.is_empty() {
                return Err(Error::Usage(
                    "--random: give the keys to draw with --range KEY=LO:HI (or --grid KEY=V1,V2)"
                        .into(),
                ));
            }
            let seed = a.seed.unwrap_or(config.seed);
            space::random_settings(&grids, &ranges, n as usize, seed)
        }
        None => space::grid_settings(&grids),
    };
    if keys.is_empty() && a.folds.is_none() {
        return Err(Error::Usage(
            "nothing to sweep: give --grid KEY=V1,V2,..., --random N with --range KEY=LO:HI, or --folds K".into(),
        ));
    }
    const MAX_RUNS: usize = 10_000;
    let runs = settings.len() * a.folds.unwrap_or(1) as usize;
    if runs > MAX_RUNS {
        return Err(Error::Usage(format!(
            "{runs} runs: a sweep trains at most {MAX_RUNS}; use --random N to sample the grid"
        )));
    }
    let metric = a
        .metric
        .clone()
        .or_else(|| config.train.checkpoint.best.clone())
        .unwrap_or_else(|| "valid.loss".into());
    let plan = Plan {
        kind: Kind::Sweep,
        kiln_version: env!("CARGO_PKG_VERSION").into(),
        created: crate::run::now(),
        metric,
        keys,
        settings,
        folds: a.folds.map(|k| k as usize),
    };
    let folder = start(&plan, (path, &a.set), &a.runs, "sweep")?;
    Ok((plan, folder))
}

/// Check every setting's config (and the first one's data, model and metrics) before any run
/// starts; then make `<runs>/<name>-<what>-<time>/` with its config.toml and sweep.json.
pub(super) fn start(
    plan: &Plan,
    config: (&Path, &[String]),
    runs: &Path,
    what: &str,
) -> Result<PathBuf> {
    let base = plans::base_config(config.0, config.1, plan.folds)?;
    let source = config.0.display().to_string();
    let name = config::parse(&base, &source, &[])?.name;
    let mut prepared: Option<(config::DataConfig, data::Prepared)> = None;
    for job in plan.jobs(Path::new("")) {
        if job.fold.is_some_and(|f| Some(f) != plan.folds) {
            // Folds of a setting differ only in the rows they validate on; the last has the
            // fewest, so it is the one that can be empty.
            continue;
        }
        let c = plans::job_config(plan, &base, &source, &job)?;
        let mut same_data = c.data.clone();
        same_data.kfold = None;
        let reuse = prepared
            .as_ref()
            .filter(|(d, _)| *d == same_data)
            .map(|(_, p)| p);
        if reuse.is_none() {
            let p = data::prepare(&c.data, c.loss_kind(), c.seed)
                .map_err(|e| plans::in_trial(plan, &job, c.place(e)))?;
            super::check::trainable(&c, Some(&p)).map_err(|e| plans::in_trial(plan, &job, e))?;
            prepared = Some((same_data, p));
        } else {
            super::check::trainable(&c, reuse).map_err(|e| plans::in_trial(plan, &job, e))?;
        }
    }
    let folder = create_stamped_dir(runs, &format!("{name}-{what}"))?;
    crate::files::write_atomic(&folder.join(CONFIG_FILE), base.as_bytes())?;
    plan.write(&folder)?;
    Ok(folder)
}

pub(super) fn options(
    device: &str,
    threads: Option<usize>,
    parallel: usize,
    quiet: bool,
) -> Result<Options> {
    // The children choose the device; checking it here fails once rather than in every run.
    super::select_device(device)?;
    let exe = std::env::current_exe()
        .map_err(|e| Error::Runtime(format!("cannot find the kiln binary to run: {e}")))?;
    let threads =
        threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    Ok(Options {
        exe,
        device: device.to_string(),
        threads,
        parallel,
        quiet,
    })
}

/// Train what is missing, write summary.csv and best.toml, print the ranked table (or JSON).
/// Interrupted: the same for the runs done, and exit 130 with the line to continue. A failed
/// run: everything written, then exit 1 naming it.
pub(super) fn finish(plan: &Plan, folder: &Path, opts: &Options, json: bool) -> Result<()> {
    let stop = super::stop_counter()?;
    let outcome = drive::drive(plan, folder, opts, &stop)?;
    report(plan, folder, &outcome.results, json)?;
    ending(folder, &outcome.results, outcome.interrupted)
}

fn report(plan: &Plan, folder: &Path, results: &[RunResult], json: bool) -> Result<()> {
    let trials = summary::rank(plan, results);
    summary::write_csv(plan, &trials, &folder.join("summary.csv"))?;
    let best = trials
        .first()
        .filter(|t| t.mean.is_some_and(|m| !m.is_nan()));
    let best_path = best
        .map(|t| summary::write_best(plan, folder, t))
        .transpose()?;
    if json {
        let value = summary::to_json(plan, folder, &trials, best_path.as_deref());
        outln!("{value}");
        return Ok(());
    }
    match plan.kind {
        Kind::CrossValidation => out!("{}", summary::folds_table(results)),
        Kind::Sweep => out!("{}", summary::table(plan, &trials)),
    }
    if let (Some(t), Some(p), Kind::Sweep) = (best, &best_path, plan.kind) {
        outln!(
            "best: trial {} ({}) {} {}; its config: {}",
            t.trial + 1,
            plan.describe(t.trial),
            plan.metric,
            summary::mean_pm_std(t.mean, t.std, plan.folds.is_some()),
            p.display()
        );
    }
    outln!("{}", folder.display());
    Ok(())
}

fn ending(folder: &Path, results: &[RunResult], interrupted: bool) -> Result<()> {
    let done = results.iter().filter(|r| r.done()).count();
    if interrupted {
        return Err(Error::Interrupted(format!(
            "{done} of {} runs done; continue with: kiln sweep --resume {}",
            results.len(),
            folder.display()
        )));
    }
    let failed: Vec<&RunResult> = results.iter().filter(|r| !r.done()).collect();
    if let Some(first) = failed.first() {
        return Err(Error::Runtime(format!(
            "{} of {} runs did not finish; {}: {}{}; the summary lists the rest (kiln sweep --resume {} retries them)",
            failed.len(),
            results.len(),
            first.job.dir.display(),
            first.status_name(),
            first.error.as_deref().map_or(String::new(), |e| format!(": {e}")),
            folder.display()
        )));
    }
    Ok(())
}
