//! Bringing a sweep folder up to date: each run that is not done is started (or resumed from
//! its checkpoint), J at a time, with a line on stderr as each starts and ends.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::runner::{self, Event, Launcher, Start};
use super::summary::{self, RunResult};
use super::{Kind, Plan, CONFIG_FILE};
use crate::error::{Error, Result};
use crate::metrics::direction;
use crate::run::Status;

/// How to train a folder's runs.
pub struct Options {
    /// The kiln binary the children run.
    pub exe: PathBuf,
    pub device: String,
    /// Threads for all runs together, split evenly between the `parallel` runs.
    pub threads: usize,
    pub parallel: usize,
    /// No per-run lines on stderr.
    pub quiet: bool,
}

/// The folder's runs after training what was missing; `interrupted` when a Ctrl-C or SIGTERM
/// (counted in `stop`) cut it short.
pub struct Outcome {
    pub results: Vec<RunResult>,
    pub interrupted: bool,
}

/// Train every run of `plan` in `folder` that is not done.
pub fn drive(plan: &Plan, folder: &Path, opts: &Options, stop: &AtomicUsize) -> Result<Outcome> {
    let before = summary::collect(plan, folder);
    let mut todo: Vec<(usize, Start)> = Vec::new();
    for (i, r) in before.iter().enumerate() {
        if r.done() {
            continue;
        }
        todo.push((i, start_of(plan, r, folder)?));
    }
    let parallel = opts.parallel.clamp(1, todo.len().max(1));
    let threads_per_run = (opts.threads / parallel).max(1);
    let total = before.len();
    if !opts.quiet {
        eprintln!(
            "{}",
            headline(plan, folder, total, todo.len(), parallel, threads_per_run)
        );
    }
    let launcher = Launcher {
        exe: opts.exe.clone(),
        device: opts.device.clone(),
        threads_per_run,
        parallel,
    };
    let (indices, starts): (Vec<usize>, Vec<Start>) = todo.into_iter().unzip();
    let mut finished = total - indices.len();
    // The runs as they stand, for a trial's line when its last fold ends.
    let mut now = before.clone();
    runner::run_all(&launcher, starts, stop, |event| {
        if opts.quiet {
            return;
        }
        match event {
            Event::Started(i) => {
                let r = &before[indices[i]];
                let line = format!("        {}  started  {}", run_name(r), setting(plan, r));
                eprintln!("{}", line.trim_end());
            }
            Event::Ended(e) => {
                finished += 1;
                let r = summary::collect_one(plan, before[indices[e.index]].job.clone());
                eprintln!(
                    "[{finished:>w$}/{total}] {}  {:.1} s  {}",
                    run_name(&r),
                    e.seconds,
                    ended_line(plan, &r, e.error.as_deref()),
                    w = total.to_string().len()
                );
                let trial = r.job.trial;
                now[indices[e.index]] = r;
                if let Some(line) = trial_line(plan, &now, trial) {
                    eprintln!("{line}");
                }
            }
        }
    });
    Ok(Outcome {
        results: summary::collect(plan, folder),
        interrupted: stop.load(Ordering::SeqCst) > 0,
    })
}

/// With folds, once every fold of `trial` is done: its mean ± std, and whether it leads the
/// trials done so far.
fn trial_line(plan: &Plan, now: &[RunResult], trial: usize) -> Option<String> {
    plan.folds?;
    let folds: Vec<&RunResult> = now.iter().filter(|r| r.job.trial == trial).collect();
    if !folds.iter().all(|r| r.done()) {
        return None;
    }
    let mut trial_done = vec![true; plan.settings.len()];
    for r in now {
        trial_done[r.job.trial] &= r.done();
    }
    let complete: Vec<RunResult> = now
        .iter()
        .filter(|r| trial_done[r.job.trial])
        .cloned()
        .collect();
    let ranked = summary::rank(plan, &complete);
    let this = ranked.iter().find(|t| t.trial == trial)?;
    let leads = ranked
        .first()
        .is_some_and(|t| t.trial == trial && t.mean.is_some());
    let what = match plan.kind {
        Kind::CrossValidation => "folds".to_string(),
        Kind::Sweep => format!("trial {}", trial + 1),
    };
    Some(format!(
        "        {what}: {} {} over {} folds{}",
        plan.metric,
        summary::mean_pm_std(this.mean, this.std, true),
        this.done(),
        if leads && plan.kind == Kind::Sweep {
            "  (best so far)"
        } else {
            ""
        }
    ))
}

/// A run not done: resumed from its checkpoint when it has one and was cut short, else
/// started afresh (a failed run or a skeleton is removed first).
fn start_of(plan: &Plan, r: &RunResult, folder: &Path) -> Result<Start> {
    let dir = r.job.dir.clone();
    let resumable =
        matches!(r.status, Some(Status::Interrupted | Status::Stopped)) && r.checkpointed;
    if r.status == Some(Status::Running) {
        return Err(Error::Usage(format!(
            "{}: a run of this sweep is training now (another kiln sweep --resume?); wait for it or stop it",
            dir.display()
        )));
    }
    if resumable {
        return Ok(Start::Resume { dir });
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    Ok(Start::New {
        config: folder.join(CONFIG_FILE),
        sets: plan.overrides(&r.job),
        dir,
    })
}

fn headline(
    plan: &Plan,
    folder: &Path,
    total: usize,
    todo: usize,
    parallel: usize,
    threads: usize,
) -> String {
    let direction = direction(&plan.metric);
    let shape = match (plan.kind, plan.folds) {
        (Kind::CrossValidation, Some(k)) => format!("{k} folds"),
        (_, Some(k)) => format!(
            "{} settings × {k} folds = {total} runs",
            plan.settings.len()
        ),
        (_, None) => format!("{total} runs"),
    };
    let left = if todo == total {
        String::new()
    } else {
        format!(" ({todo} left to train)")
    };
    format!(
        "{}: {shape}{left}, {parallel} at a time, {threads} thread{} each; by {} ({direction})",
        folder.display(),
        if threads == 1 { "" } else { "s" },
        plan.metric
    )
}

fn run_name(r: &RunResult) -> String {
    r.job
        .dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

fn setting(plan: &Plan, r: &RunResult) -> String {
    match plan.kind {
        Kind::Sweep => plan.describe(r.job.trial),
        Kind::CrossValidation => String::new(),
    }
}

/// `valid.accuracy 0.9533 at epoch 4 of 5  lr=0.01`, or the run's status and error.
fn ended_line(plan: &Plan, r: &RunResult, error: Option<&str>) -> String {
    let what = match (r.done(), r.value, r.best_epoch) {
        (true, Some(v), Some(e)) => {
            format!("{} {v:.4} at epoch {e} of {}", plan.metric, r.epochs)
        }
        (true, _, _) => format!("{} (no {})", r.status_name(), plan.metric),
        (false, _, _) => {
            let why = r.error.as_deref().or(error).unwrap_or("");
            format!(
                "{}{}{why}",
                r.status_name(),
                if why.is_empty() { "" } else { ": " }
            )
        }
    };
    let s = setting(plan, r);
    if s.is_empty() {
        what
    } else {
        format!("{what}  {s}")
    }
}
