//! The `kiln` command line: one file per subcommand, each an args struct and `exec`.

/// Write results to stdout, as `print!` and `println!` do, but a closed or full stdout is an
/// error (`?`) rather than a panic: `kiln runs | head -1` ends quietly.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))?
    };
}

macro_rules! outln {
    () => {
        $crate::cli::write_stdout(format_args!("\n"))?
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

mod bench;
mod check;
mod eval;
mod export;
mod init;
mod predict;
mod print_config;
mod runs;
mod serve;
mod sweep;
mod train;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::backend::{cuda, Device};
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
    Export(export::Args),
    Serve(serve::Args),
    Check(check::Args),
    Sweep(sweep::Args),
    Init(init::Args),
    PrintConfig(print_config::Args),
    Runs(runs::Args),
    Bench(bench::Args),
}

impl Command {
    /// The subcommand as typed, for messages.
    fn name(&self) -> &'static str {
        match self {
            Command::Train(_) => "train",
            Command::Eval(_) => "eval",
            Command::Predict(_) => "predict",
            Command::Export(_) => "export",
            Command::Serve(_) => "serve",
            Command::Check(_) => "check",
            Command::Sweep(_) => "sweep",
            Command::Init(_) => "init",
            Command::PrintConfig(_) => "print-config",
            Command::Runs(_) => "runs",
            Command::Bench(_) => "bench",
        }
    }
}

impl Cli {
    pub fn exec(self) -> Result<()> {
        // Only training runs across processes; any other command launched as one of several
        // ranks would do all its work (and write its outputs) once per rank.
        if !matches!(self.command, Command::Train(_)) {
            crate::dist::refuse_launch(&format!("kiln {}", self.command.name()))?;
        }
        let threads = match &self.command {
            Command::Train(a) => a.threads,
            Command::Bench(a) => a.threads,
            Command::Serve(a) => a.threads,
            _ => None,
        };
        // Ranks sharing a machine share its cores, unless told otherwise.
        let ranks_here = crate::dist::ranks_on_this_machine();
        let threads = match (&self.command, threads) {
            (Command::Train(_), None) if ranks_here > 1 => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                Some((cores / ranks_here).max(1))
            }
            (_, t) => t,
        };
        if let Some(n) = threads {
            crate::set_threads(n).map_err(Error::Usage)?;
        }
        // The server's own threads hand each batch to the pool; it must not hold a worker.
        if let Command::Serve(a) = self.command {
            return serve::exec(a);
        }
        crate::backend::cpu::on_pool(|| match self.command {
            Command::Train(a) => train::exec(a),
            Command::Eval(a) => eval::exec(a),
            Command::Predict(a) => predict::exec(a),
            Command::Export(a) => export::exec(a),
            Command::Serve(_) => unreachable!("served above"),
            Command::Check(a) => check::exec(a),
            Command::Sweep(a) => sweep::exec(a),
            Command::Init(a) => init::exec(a),
            Command::PrintConfig(a) => print_config::exec(a),
            Command::Runs(a) => runs::exec(a),
            Command::Bench(a) => bench::exec(a),
        })
    }
}

/// What `out!` and `outln!` write through.
pub(crate) fn write_stdout(args: std::fmt::Arguments) -> Result<()> {
    use std::io::Write;
    std::io::stdout()
        .lock()
        .write_fmt(args)
        .map_err(|e| Error::io(STDOUT, e))
}

/// How errors name standard output.
pub const STDOUT: &str = "<stdout>";

/// A count of at least 1 (`--batch-size`, `--threads`, `--iters`).
pub(crate) fn positive(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "expected a whole number of at least 1, got \"{s}\""
        )),
    }
}

/// `--threads`: 1 to 1,024 (more threads than that is a typo, and each costs a stack).
pub(crate) fn thread_count(s: &str) -> std::result::Result<usize, String> {
    match positive(s)? {
        n if n <= 1024 => Ok(n),
        n => Err(format!("expected at most 1024 threads, got {n}")),
    }
}

/// The flag Ctrl-C and SIGTERM raise: the first asks the command to stop at its next safe
/// point (train checkpoints, predict stops between batches); a second exits at once with 130.
pub(crate) fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    })
    .map_err(|e| Error::Runtime(format!("cannot install the signal handler: {e}")))?;
    Ok(stop)
}

/// The count of Ctrl-C and SIGTERM signals, for a command that passes them on to child
/// processes (a sweep): it never exits on its own, so its children are never orphaned.
pub(crate) fn stop_counter() -> Result<Arc<AtomicUsize>> {
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    ctrlc::set_handler(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    })
    .map_err(|e| Error::Runtime(format!("cannot install the signal handler: {e}")))?;
    Ok(count)
}

/// The device a command runs on, and what `--device auto` fell back from, if it did.
pub(crate) struct DeviceChoice {
    pub device: Device,
    /// Why `auto` chose the CPU; `loud` when a driver is present but CUDA would not start (a
    /// surprise worth a line on stderr, not only in the run's log).
    pub fallback: Option<String>,
    pub loud: bool,
}

impl DeviceChoice {
    /// Say once why `auto` fell back to the CPU (eval and predict; train writes it to its log).
    pub fn warn_if_fell_back(&self) {
        if let (Some(why), true) = (&self.fallback, self.loud) {
            eprintln!("note: {why}");
        }
    }
}

/// `--device`: `cpu`, `cuda` / `cuda:N` (an error, exit 1, when CUDA cannot start), or `auto`
/// (the first CUDA device when one starts, else the CPU).
pub(crate) fn select_device(spec: &str) -> Result<DeviceChoice> {
    let cpu = |fallback: Option<String>, loud| DeviceChoice {
        device: Device::Cpu,
        fallback,
        loud,
    };
    // Under mpirun, one GPU per rank on each machine: `cuda` and `auto` mean the local rank's.
    let local = crate::dist::local_rank();
    let ordinal = match spec {
        "cpu" => return Ok(cpu(None, false)),
        "auto" => {
            if !cuda::driver_present() {
                return Ok(cpu(
                    Some("device auto: no NVIDIA driver found; using the CPU".into()),
                    false,
                ));
            }
            return Ok(match cuda::open(local) {
                Ok(_) => DeviceChoice {
                    device: Device::Cuda,
                    fallback: None,
                    loud: false,
                },
                Err(e) => cpu(
                    Some(format!(
                        "device auto: CUDA is unavailable ({e}); using the CPU"
                    )),
                    true,
                ),
            });
        }
        "cuda" => local,
        d => match d.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => n,
            _ => {
                return Err(Error::Usage(format!(
                    "--device {d}: expected auto, cpu, cuda or cuda:N"
                )))
            }
        },
    };
    cuda::open(ordinal)
        .map(|_| DeviceChoice {
            device: Device::Cuda,
            fallback: None,
            loud: false,
        })
        .map_err(|e| Error::Runtime(format!("--device {spec}: {e}")))
}

/// A trained model ready to use: the run's config and info, and the weights file.
pub(crate) struct Trained {
    pub run_dir: PathBuf,
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
        if path.extension().is_none_or(|e| e != "safetensors") {
            return Err(Error::Usage(format!(
                "{}: not a run directory or a checkpoint (.safetensors); give the run's folder{}",
                path.display(),
                path.parent()
                    .filter(|p| p.join("run.json").is_file())
                    .map(|p| format!(", {}", p.display()))
                    .unwrap_or_default()
            )));
        }
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
        run_dir: run_path,
        config,
        info,
        weights,
    })
}

impl Trained {
    /// The trained model with its saved weights, on `device`, and its loss.
    pub fn model(&self, device: Device) -> Result<(crate::nn::Model, crate::loss::Loss)> {
        let (model, loss) = crate::train::build_model(&self.config, &self.info.schema)?;
        let state = model.named_state();
        // A checkpoint also holds the optimizer's state.
        let optimizer = crate::train::optimizer(&self.config, &model).state();
        let names: Vec<String> = state
            .iter()
            .chain(&optimizer)
            .map(|(n, _)| n.clone())
            .collect();
        let loaded = checkpoint::load_own(&self.weights, &names)?;
        checkpoint::restore(&state, &loaded, &self.weights)?;
        model.to_device(device);
        Ok((model, loss))
    }
}
