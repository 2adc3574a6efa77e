//! Many runs of one config: a hyperparameter sweep (`kiln sweep`) and k-fold cross-validation
//! (`kiln train --folds`), both as ordinary runs in one folder, trained by child `kiln train`
//! processes J at a time and summed up from the runs' own run.json.
//!
//! The folder holds `config.toml` (the resolved config every run starts from), `sweep.json`
//! (the plan: swept keys, settings, folds, metric), one run directory per setting and fold,
//! and at the end `summary.csv` and `best.toml`. A plan that is written is what `--resume`
//! continues: the runs that finished are kept, the interrupted ones resumed, the rest started.

pub mod drive;
pub mod runner;
pub mod space;
pub mod summary;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::files;
use space::Setting;

/// What a sweep folder is for: it changes the folder's name and the summary's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `kiln sweep`: settings ranked by the metric.
    Sweep,
    /// `kiln train --folds`: one setting, its folds' validation metrics.
    CrossValidation,
}

/// sweep.json.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub kind: Kind,
    pub kiln_version: String,
    pub created: String,
    /// The metric runs are ranked by (`valid.accuracy`); each run keeps its best model by it.
    pub metric: String,
    /// The swept keys, in the order given.
    pub keys: Vec<String>,
    /// One setting of the keys per trial.
    pub settings: Vec<Setting>,
    /// Folds per setting; none: one run per setting on the config's own validation data.
    pub folds: Option<usize>,
}

/// One run of a plan: a setting, on one fold.
#[derive(Clone, Debug)]
pub struct Job {
    /// 0-based index into the plan's settings.
    pub trial: usize,
    /// 1-based fold.
    pub fold: Option<usize>,
    /// The run directory, inside the sweep folder.
    pub dir: PathBuf,
}

impl Plan {
    /// Every run of the plan: settings in order, folds within each.
    pub fn jobs(&self, folder: &Path) -> Vec<Job> {
        let width = self.settings.len().to_string().len().max(2);
        let mut jobs = Vec::new();
        for trial in 0..self.settings.len() {
            let folds: Vec<Option<usize>> = match self.folds {
                Some(k) => (1..=k).map(Some).collect(),
                None => vec![None],
            };
            for fold in folds {
                let name = match (self.kind, fold) {
                    (Kind::CrossValidation, Some(f)) => format!("fold-{f}"),
                    (_, Some(f)) => format!("trial-{:0width$}-fold-{f}", trial + 1),
                    (_, None) => format!("trial-{:0width$}", trial + 1),
                };
                jobs.push(Job {
                    trial,
                    fold,
                    dir: folder.join(name),
                });
            }
        }
        jobs
    }

    /// The `--set` arguments of a job's run: its setting, its fold, and the metric as the
    /// measure of its best model.
    pub fn overrides(&self, job: &Job) -> Vec<String> {
        let mut sets = self.sets(job.trial);
        if let (Some(folds), Some(fold)) = (self.folds, job.fold) {
            sets.push("data.valid_split=0".into());
            sets.push(format!("data.kfold={{ folds = {folds}, fold = {fold} }}"));
        }
        sets.push(format!(
            "train.checkpoint.best={}",
            toml::Value::String(self.metric.clone())
        ));
        sets
    }

    /// A trial's setting as `--set` arguments: `key=value`.
    pub fn sets(&self, trial: usize) -> Vec<String> {
        self.settings[trial]
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    /// A setting as `key=value key=value`, for tables and logs.
    pub fn describe(&self, trial: usize) -> String {
        self.sets(trial).join(" ")
    }

    pub fn write(&self, folder: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("a plan serializes");
        files::write_atomic(&folder.join(PLAN_FILE), format!("{text}\n").as_bytes())
    }

    /// The plan of an existing sweep folder.
    pub fn read(folder: &Path) -> Result<Plan> {
        if !folder.is_dir() {
            return Err(Error::Usage(format!(
                "{}: no such folder; give the sweep folder `kiln sweep` printed",
                folder.display()
            )));
        }
        let path = folder.join(PLAN_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Usage(format!(
                    "{}: not a sweep folder (no {PLAN_FILE}); give the folder `kiln sweep` printed",
                    folder.display()
                ))
            } else {
                Error::io(&path, e)
            }
        })?;
        serde_json::from_str(&text).map_err(|e| {
            Error::data(
                path.display().to_string(),
                format!("not a kiln sweep plan: {e}"),
            )
        })
    }
}

/// The plan's file in a sweep folder.
pub const PLAN_FILE: &str = "sweep.json";

/// The config every run of the folder starts from.
pub const CONFIG_FILE: &str = "config.toml";

/// A job's config from the folder's base config text (`source` names it in errors); an error
/// names the trial's setting, and the flag behind a key the sweep sets itself.
pub fn job_config(plan: &Plan, base: &str, source: &str, job: &Job) -> Result<Config> {
    config::parse(base, source, &plan.overrides(job)).map_err(|e| in_trial(plan, job, e))
}

/// An error of one job's config or model: the flag that set a key the sweep sets (`--folds`,
/// `--metric`) rather than a `--set` the user never typed, and the trial's setting.
pub fn in_trial(plan: &Plan, job: &Job, e: Error) -> Error {
    let flag = |place: &str| {
        [
            ("--set data.kfold", "--folds"),
            ("--set data.valid_split", "--folds"),
            ("--set train.checkpoint.best", "--metric"),
        ]
        .iter()
        .find(|(set, _)| place.starts_with(set))
        .map(|(_, flag)| flag.to_string())
    };
    let which = (!plan.settings[job.trial].is_empty())
        .then(|| format!(" (trial {}: {})", job.trial + 1, plan.describe(job.trial)));
    match e {
        Error::Config { place, message } => match flag(&place) {
            Some(f) => {
                // The message names the key the flag set; the flag says it for the user.
                let key = place.trim_start_matches("--set ");
                let why = message
                    .strip_prefix(&format!("{key}: "))
                    .unwrap_or(&message);
                Error::Usage(format!("{f}: {why}"))
            }
            None => Error::Config {
                place: format!("{place}{}", which.unwrap_or_default()),
                message,
            },
        },
        Error::Model { layer, message } => Error::Model {
            layer: format!("{layer}{}", which.unwrap_or_default()),
            message,
        },
        Error::Many(errors) => {
            Error::Many(errors.into_iter().map(|e| in_trial(plan, job, e)).collect())
        }
        e => e,
    }
}

/// The config the runs start from, as written into the folder: the user's file with their
/// `--set`s (`config::written_with_overrides`). Folds replace the config's validation share (each
/// fold's run sets `data.valid_split = 0`); a validation file cannot be folded.
pub fn base_config(path: &Path, overrides: &[String], folds: Option<usize>) -> Result<String> {
    let config = config::load(path, overrides)?;
    if let (Some(k), Some(v)) = (folds, &config.data.valid) {
        return Err(Error::Usage(format!(
            "--folds {k}: the config validates on {} (data.valid); folds are dealt from the training rows, so remove data.valid",
            v.display()
        )));
    }
    let table = config::written_with_overrides(path, overrides)?;
    Ok(toml::to_string(&table).expect("a TOML table serializes"))
}
