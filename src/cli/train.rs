//! `kiln train`

use std::path::PathBuf;

use serde_json::json;

use crate::config;
use crate::error::{Error, Result};
use crate::train::{fit, Options};

/// Train the model a config describes, into a new run directory.
#[derive(clap::Args)]
pub struct Args {
    /// The config file (optional with --resume: the run's own config is used).
    config: Option<PathBuf>,
    /// Override a config key: KEY=VALUE, VALUE as TOML (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// CPU threads (default: every core).
    #[arg(long, value_parser = super::thread_count)]
    pub(super) threads: Option<usize>,
    /// Folder for new runs.
    #[arg(long, default_value = "runs", conflicts_with = "run_dir")]
    runs: PathBuf,
    /// Exact directory for this run (must not exist).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Run name prefix (overrides the config's `name`).
    #[arg(long)]
    name: Option<String>,
    /// Seed (overrides the config's `seed`).
    #[arg(long)]
    seed: Option<u64>,
    /// Continue RUN_DIR from its last checkpoint, appending to its metrics.
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,
    /// End with one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// No progress or per-epoch lines on stderr.
    #[arg(long)]
    quiet: bool,
}

pub fn exec(a: Args) -> Result<()> {
    let device = super::select_device(&a.device)?;
    let mut set = a.set.clone();
    if let Some(n) = &a.name {
        set.push(format!("name={}", toml::Value::String(n.clone())));
    }
    if let Some(s) = a.seed {
        set.push(format!("seed={s}"));
    }
    let config = match (&a.config, &a.resume) {
        (Some(path), _) => config::load(path, &set)?,
        (None, Some(run)) => {
            crate::run::RunDir::open(run)?;
            config::load(&run.join("config.toml"), &set)?
        }
        (None, None) => {
            return Err(Error::Usage(
                "kiln train needs a CONFIG file (or --resume RUN_DIR)".into(),
            ))
        }
    };
    // First Ctrl-C / SIGTERM: finish the step and checkpoint. A second one: leave now.
    let stop = super::stop_flag()?;
    let opts = Options {
        runs: a.runs,
        run_dir: a.run_dir,
        resume: a.resume,
        quiet: a.quiet,
        device: device.device,
        device_note: device.fallback,
    };
    let outcome = fit(config, &opts, &stop)?;
    if a.json {
        let final_: serde_json::Map<String, serde_json::Value> = outcome
            .last
            .iter()
            .filter(|(k, _)| k.starts_with("train_") || k.starts_with("valid_"))
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let out = json!({
            "run_dir": outcome.run_dir,
            "status": outcome.info.status,
            "epochs": outcome.info.epochs_done,
            "final": final_,
            "best": outcome.info.best,
            "test": outcome.info.test,
        });
        println!("{out}");
    } else {
        println!("{}", outcome.run_dir.display());
    }
    Ok(())
}
