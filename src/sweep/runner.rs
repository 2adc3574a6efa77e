//! Training a plan's runs as child `kiln train` processes, J at a time.
//!
//! A child is an ordinary `kiln train` (a new run, or `--resume` of an interrupted one) with
//! its share of the threads, in a process group of its own: a Ctrl-C at the terminal reaches
//! only the sweep, which passes one SIGTERM to each child (each checkpoints and stops as a
//! single run does) and starts nothing more; a second Ctrl-C passes a second one (the child
//! leaves at once, as a single run does).

use std::collections::VecDeque;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// How to start children.
pub struct Launcher {
    /// The kiln binary.
    pub exe: PathBuf,
    pub device: String,
    pub threads_per_run: usize,
    pub parallel: usize,
}

/// A child to start: a new run (`train CONFIG --set ... --run-dir DIR`) or a resumed one.
#[derive(Clone, Debug)]
pub enum Start {
    New {
        config: PathBuf,
        sets: Vec<String>,
        dir: PathBuf,
    },
    Resume {
        dir: PathBuf,
    },
}

/// What happened to one child.
#[derive(Clone, Debug)]
pub struct Ended {
    /// Index into the list given to `run_all`.
    pub index: usize,
    /// The exit code (None: killed by a signal).
    pub code: Option<i32>,
    /// The last error line the child wrote to stderr, if it failed.
    pub error: Option<String>,
    pub seconds: f64,
}

/// Events as children start and end, for the live table.
pub enum Event {
    Started(usize),
    Ended(Ended),
}

/// Run every start, `parallel` at a time, calling `on_event` on this thread as children start
/// and end. Once `stop` is 1 or more nothing new starts, and each running child gets one
/// SIGTERM per count (the caller's signal handler counts). Returns when every started child
/// has ended.
pub fn run_all(
    launcher: &Launcher,
    starts: Vec<Start>,
    stop: &AtomicUsize,
    mut on_event: impl FnMut(Event),
) {
    let queue = Mutex::new(starts.into_iter().enumerate().collect::<VecDeque<_>>());
    let (send, receive) = mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..launcher.parallel.max(1) {
            let send = send.clone();
            let queue = &queue;
            scope.spawn(move || loop {
                if stop.load(Ordering::SeqCst) > 0 {
                    return;
                }
                let Some((index, start)) = queue.lock().expect("queue").pop_front() else {
                    return;
                };
                let _ = send.send(Event::Started(index));
                let ended = run_one(launcher, index, &start, stop);
                let _ = send.send(Event::Ended(ended));
            });
        }
        drop(send);
        for event in receive {
            on_event(event);
        }
    });
}

fn command(launcher: &Launcher, start: &Start) -> Command {
    let mut c = Command::new(&launcher.exe);
    c.arg("train");
    match start {
        Start::New { config, sets, dir } => {
            c.arg(config);
            for s in sets {
                c.arg("--set").arg(s);
            }
            c.arg("--run-dir").arg(dir);
        }
        Start::Resume { dir } => {
            c.arg("--resume").arg(dir);
        }
    }
    c.args(["--quiet", "--device", &launcher.device, "--threads"])
        .arg(launcher.threads_per_run.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        c.process_group(0);
    }
    c
}

fn run_one(launcher: &Launcher, index: usize, start: &Start, stop: &AtomicUsize) -> Ended {
    let began = Instant::now();
    let failed = |error: String| Ended {
        index,
        code: None,
        error: Some(error),
        seconds: began.elapsed().as_secs_f64(),
    };
    let mut child = match command(launcher, start).spawn() {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot start {}: {e}", launcher.exe.display())),
    };
    let stderr = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            // Keep the end of what the child says: its error is the last line.
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            let tail = text.len().saturating_sub(64 * 1024);
            String::from_utf8_lossy(&text[tail..]).into_owned()
        })
    });
    let status = wait_forwarding_stops(&mut child, stop);
    let said = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    let code = status.and_then(|s| s.code());
    let error = (code != Some(0)).then(|| last_error(&said, code));
    Ended {
        index,
        code,
        error,
        seconds: began.elapsed().as_secs_f64(),
    }
}

/// Wait for the child, sending it a SIGTERM for each count of `stop` it has not had yet.
fn wait_forwarding_stops(
    child: &mut Child,
    stop: &AtomicUsize,
) -> Option<std::process::ExitStatus> {
    let mut forwarded = 0;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(_) => return child.wait().ok(),
        }
        let wanted = stop.load(Ordering::SeqCst).min(2);
        while forwarded < wanted {
            terminate(child);
            forwarded += 1;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[cfg(unix)]
fn terminate(child: &mut Child) {
    // SAFETY: kill(2) on our own child's pid, which has not been reaped (try_wait saw it run).
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
}

#[cfg(not(unix))]
fn terminate(child: &mut Child) {
    let _ = child.kill();
}

/// The child's error: its last `error:` line, else its last line, else the exit code.
fn last_error(said: &str, code: Option<i32>) -> String {
    let lines: Vec<&str> = said
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .rev()
        .find(|l| l.starts_with("error"))
        .or(lines.last())
        .map(|l| l.to_string())
        .unwrap_or_else(|| match code {
            Some(c) => format!("exit code {c}"),
            None => "killed by a signal".into(),
        })
}
