//! What training shows: an indicatif bar on a terminal, one plain line per epoch elsewhere, and
//! every line also in train.log.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use crate::error::Result;
use crate::run::RunDir;

pub struct Reporter {
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl Reporter {
    pub fn new(quiet: bool) -> Reporter {
        Reporter { bar: None, quiet }
    }

    fn interactive(&self) -> bool {
        !self.quiet && std::io::stderr().is_terminal()
    }

    pub fn start_epoch(&mut self, epoch: usize, epochs: usize, steps: usize, done: usize) {
        if !self.interactive() {
            return;
        }
        let bar = ProgressBar::new(steps as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} {msg} {per_sec} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{epochs}"));
        bar.set_position(done as u64);
        self.bar = Some(bar);
    }

    pub fn step(&self, loss: f32, samples_per_sec: f64) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(format!("loss {loss:.4} {samples_per_sec:.0} samples/s"));
        }
    }

    pub fn finish_epoch(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    /// A line for the terminal (unless quiet) and train.log.
    pub fn line(&self, run: &RunDir, line: &str) -> Result<()> {
        if !self.quiet {
            match &self.bar {
                Some(bar) => bar.println(line),
                None => eprintln!("{line}"),
            }
        }
        run.log(line)
    }
}
