//! The run directory: resolved config, run.json, metrics.csv, train.log, checkpoints and the
//! best model, every file written atomically.

pub mod checkpoint;
mod metrics_csv;
pub mod plots;
pub mod tensorboard;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub use checkpoint::Checkpoints;
pub use metrics_csv::{MetricsCsv, MetricsTable};

use crate::data::{DataFile, DataSchema};
use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::loss::Criterion;

/// Seconds since the Unix epoch.
pub fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// UTC time in RFC 3339, to the second.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Finished,
    Failed,
    Interrupted,
    /// Stopped at `train.max_time`, checkpointed and evaluated; resumable.
    Timeout,
    /// Shown for a run marked running that no process holds (killed): never written.
    Stopped,
}

impl Status {
    /// As run.json and the tables write it: `finished`, `timeout`, ...
    pub fn name(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Finished => "finished",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
            Status::Timeout => "timeout",
            Status::Stopped => "stopped",
        }
    }
}

/// The best epoch by the monitored metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Best {
    pub monitor: String,
    pub value: f64,
    pub epoch: usize,
}

/// run.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub kiln_version: String,
    pub name: String,
    pub status: Status,
    pub device: String,
    /// Threads per process.
    pub threads: usize,
    /// Processes that trained the run together (`mpirun -np N`); 1 for a plain launch. A run
    /// resumed with another count records the latest.
    #[serde(default = "one")]
    pub world_size: usize,
    pub seed: u64,
    pub started: String,
    pub ended: Option<String>,
    pub data: Vec<DataFile>,
    pub input_shape: Vec<usize>,
    pub loss: String,
    /// The loss's resolved options (class weights, label smoothing), for eval.
    #[serde(default)]
    pub criterion: Criterion,
    pub metrics: Vec<String>,
    /// Features, target, class names, preprocessing statistics.
    pub schema: DataSchema,
    pub epochs_done: usize,
    pub last_checkpoint: Option<String>,
    pub best: Option<Best>,
    /// Metrics of the saved model on the test split, when there is one.
    pub test: Option<serde_json::Map<String, serde_json::Value>>,
    pub error: Option<String>,
    /// Wall-clock time (Unix seconds) when the first training step finished, for the
    /// benchmark's start-to-first-step figure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_step_at: Option<f64>,
}

fn one() -> usize {
    1
}

impl RunInfo {
    /// A warning for each data file of the run whose content differs now (by SHA-256), or that
    /// is gone: results from changed data are not the run's.
    pub fn changed_data(&self, now: &[DataFile]) -> Vec<String> {
        self.data
            .iter()
            .filter_map(|then| match now.iter().find(|f| f.split == then.split) {
                Some(f) if f.sha256 == then.sha256 => None,
                Some(f) => Some(format!(
                    "the {} data {} changed since the run trained (SHA-256 {} then, {} now)",
                    then.split,
                    f.path.display(),
                    &then.sha256[..12.min(then.sha256.len())],
                    &f.sha256[..12.min(f.sha256.len())]
                )),
                None => Some(format!(
                    "the run's {} data {} is not read now",
                    then.split,
                    then.path.display()
                )),
            })
            .collect()
    }
}

/// A folder a run was starting in when it was killed: no run.json, and nothing but kiln's own
/// temporary files, its lock and an empty `checkpoints/`.
fn abandoned(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.filter_map(|e| e.ok()).all(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        let empty_dir = |p: &Path| std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none());
        name == ".lock"
            || (name.starts_with('.') && name.ends_with(".tmp"))
            || (name == "checkpoints" && empty_dir(&e.path()))
    })
}

/// `<runs>/latest` → the newest run, replaced atomically. Best effort: a `latest` that is not a
/// link (the user's own folder) is left alone, and a platform without links has none.
fn point_latest(runs: &Path, run: &Path) {
    let latest = runs.join("latest");
    if latest.exists() && !latest.is_symlink() {
        return;
    }
    let (Some(name), tmp) = (
        run.file_name(),
        runs.join(format!(".latest.{}.tmp", crate::files::unique_suffix())),
    ) else {
        return;
    };
    let _ = std::fs::remove_file(&tmp);
    #[cfg(unix)]
    if std::os::unix::fs::symlink(name, &tmp).is_ok() && std::fs::rename(&tmp, &latest).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// A new folder `<parent>/<prefix>-<YYYYMMDD-HHMMSS>` (with `-2`, `-3`... if that exists):
/// never an existing one, even for two made in the same second.
pub fn create_stamped_dir(parent: &Path, prefix: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let stamp: String = now()
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(14)
        .collect();
    let base = format!("{prefix}-{}-{}", &stamp[..8], &stamp[8..]);
    let mut n = 1;
    loop {
        let candidate = match n {
            1 => parent.join(&base),
            _ => parent.join(format!("{base}-{n}")),
        };
        match std::fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(Error::io(&candidate, e)),
        }
    }
}

pub struct RunDir {
    pub path: PathBuf,
    /// train.log, opened at the first line and kept open.
    log: std::sync::Mutex<Option<std::fs::File>>,
}

impl RunDir {
    /// A new run directory: `dir` exactly, or `<runs>/<name>-<YYYYMMDD-HHMMSS>` (with `-2`,
    /// `-3`... if that exists), and `<runs>/latest` pointing at it. An existing directory is
    /// never reused, even by two runs starting in the same second.
    pub fn create(runs: &Path, name: &str, exact: Option<&Path>) -> Result<RunDir> {
        let taken = |p: &Path| {
            Error::Usage(format!(
                "--run-dir {}: already exists; kiln never overwrites a run (use --resume to continue it)",
                p.display()
            ))
        };
        let path = match exact {
            Some(p) => {
                if let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                }
                match std::fs::create_dir(p) {
                    Ok(()) => p.to_path_buf(),
                    // A run killed as it started left only its skeleton: take it over.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && abandoned(p) => {
                        p.to_path_buf()
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        return Err(taken(p))
                    }
                    Err(e) => return Err(Error::io(p, e)),
                }
            }
            None => create_stamped_dir(runs, name)?,
        };
        std::fs::create_dir_all(path.join("checkpoints")).map_err(|e| Error::io(&path, e))?;
        if exact.is_none() {
            point_latest(runs, &path);
        }
        Ok(RunDir {
            path,
            log: Default::default(),
        })
    }

    pub fn open(path: &Path) -> Result<RunDir> {
        if !path.join("run.json").is_file() {
            return Err(Error::Usage(format!(
                "{}: not a run directory (no run.json)",
                path.display()
            )));
        }
        Ok(RunDir {
            path: path.to_path_buf(),
            log: Default::default(),
        })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Rewrite run.json atomically without waiting for the disk (each epoch).
    pub fn write_info(&self, info: &RunInfo) -> Result<()> {
        let json = serde_json::to_string_pretty(info).expect("run info serializes");
        crate::files::replace(&self.file("run.json"), json.as_bytes())
    }

    /// Rewrite run.json and wait until it is on disk (at checkpoints and at the end).
    pub fn write_info_durable(&self, info: &RunInfo) -> Result<()> {
        let json = serde_json::to_string_pretty(info).expect("run info serializes");
        write_atomic(&self.file("run.json"), json.as_bytes())
    }

    pub fn read_info(&self) -> Result<RunInfo> {
        let path = self.file("run.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::data(
                path.display().to_string(),
                format!("not a run.json kiln can read: {e}"),
            )
        })
    }

    /// run.json as a listing shows it: a run marked running that no process holds was killed,
    /// and is `Stopped`.
    pub fn read_info_now(&self) -> Result<RunInfo> {
        let mut info = self.read_info()?;
        if info.status == Status::Running && !self.in_use() {
            info.status = Status::Stopped;
        }
        Ok(info)
    }

    /// Hold the run for this process: a second process training or resuming the same run gets
    /// an error instead of both writing it. Released when the process ends.
    pub fn lock(&self) -> Result<()> {
        let path = self.file(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        // SAFETY: flock on a file descriptor this function owns, kept open below.
        let held = unsafe {
            use std::os::fd::AsRawFd;
            libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB)
        };
        if held != 0 {
            return Err(Error::Usage(format!(
                "{}: another kiln process is training this run; wait for it or stop it first",
                self.path.display()
            )));
        }
        // The lock lives as long as the descriptor: keep it open for the process's life.
        std::mem::forget(file);
        Ok(())
    }

    /// Whether a process holds the run now (a run marked running that nobody holds was
    /// killed).
    pub fn in_use(&self) -> bool {
        let Ok(file) = std::fs::File::open(self.file(".lock")) else {
            return false;
        };
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor owned here; a lock taken is released when it closes.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) != 0 }
    }

    /// Remove the temporary files kiln writes beside its files (`.<name>.tmp`), which a kill
    /// may have left.
    pub fn remove_temporary_files(&self) -> Result<()> {
        for dir in [
            self.path.clone(),
            self.file("checkpoints"),
            self.file("plots"),
        ] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.filter_map(|e| e.ok()) {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') && (name.ends_with(".tmp") || name.ends_with(".tmp.png")) {
                    std::fs::remove_file(e.path()).map_err(|err| Error::io(e.path(), err))?;
                }
            }
        }
        Ok(())
    }

    /// Append a line to train.log.
    pub fn log(&self, line: &str) -> Result<()> {
        let path = self.file("train.log");
        let mut log = self.log.lock().expect("log lock");
        if log.is_none() {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            *log = Some(f);
        }
        let f = log.as_mut().expect("opened above");
        writeln!(f, "{line}").map_err(|e| Error::io(&path, e))
    }
}
