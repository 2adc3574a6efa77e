//! The `kiln` command line: one file per subcommand, each an args struct and `exec`.

mod bench;
mod check;
mod eval;
mod predict;
mod runs;
mod train;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::run::{checkpoint, RunDir, RunInfo};

/// Train, evaluate and predict with neural networks described in TOML files.
#[derive(Parser)]
#[command(name = "kiln", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Train(train::Args),
    Eval(eval::Args),
    Predict(predict::Args),
    Check(check::Args),
    Runs(runs::Args),
    Bench(bench::Args),
}

impl Cli {
    pub fn exec(self) -> Result<()> {
        match self.command {
            Command::Train(a) => train::exec(a),
            Command::Eval(a) => eval::exec(a),
            Command::Predict(a) => predict::exec(a),
            Command::Check(a) => check::exec(a),
            Command::Runs(a) => runs::exec(a),
            Command::Bench(a) => bench::exec(a),
        }
    }
}

/// `--device`: `auto` (the default) or `cpu`; CUDA arrives with the CUDA backend.
pub(crate) fn select_device(device: &str) -> Result<()> {
    match device {
        "auto" | "cpu" => Ok(()),
        d if d == "cuda" || d.starts_with("cuda:") => Err(Error::Runtime(format!(
            "--device {d}: this build of kiln has no CUDA backend yet; use --device cpu"
        ))),
        d => Err(Error::Usage(format!(
            "--device {d}: expected auto, cpu, cuda or cuda:N"
        ))),
    }
}

pub(crate) fn set_threads(threads: Option<usize>) -> Result<()> {
    if let Some(n) = threads {
        crate::set_threads(n).map_err(Error::Usage)?;
    }
    Ok(())
}

/// A trained model ready to use: the run's config and info, and the weights file.
pub(crate) struct Trained {
    pub run: RunDir,
    pub config: Config,
    pub info: RunInfo,
    pub weights: PathBuf,
}

/// Resolve a run directory (its best model, else its last checkpoint) or a checkpoint file
/// inside one.
pub(crate) fn open_trained(path: &Path) -> Result<Trained> {
    let (run_path, weights) = if path.is_dir() {
        (path.to_path_buf(), None)
    } else if path.is_file() {
        let run = path
            .ancestors()
            .skip(1)
            .find(|d| d.join("run.json").is_file())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{}: no run.json beside or above this checkpoint",
                    path.display()
                ))
            })?;
        (run.to_path_buf(), Some(path.to_path_buf()))
    } else {
        return Err(Error::Usage(format!(
            "{}: no such run directory or checkpoint",
            path.display()
        )));
    };
    let run = RunDir::open(&run_path)?;
    let info = run.read_info()?;
    let config = config::load(&run.file("config.toml"), &[])?;
    let weights = match weights {
        Some(w) => w,
        None if run.file("model.safetensors").is_file() => run.file("model.safetensors"),
        None => run.path.join(info.last_checkpoint.clone().ok_or_else(|| {
            Error::Usage(format!("{}: the run has no model yet", run_path.display()))
        })?),
    };
    Ok(Trained {
        run,
        config,
        info,
        weights,
    })
}

impl Trained {
    /// The model with the saved weights, and its loss.
    pub fn model(&self) -> Result<(crate::nn::Model, crate::loss::Loss)> {
        let (model, loss) = crate::train::build_model(&self.config, &self.info.schema)?;
        let loaded = checkpoint::load(&self.weights)?;
        checkpoint::restore(&model.named_state(), &loaded, &self.weights)?;
        Ok((model, loss))
    }
}
