//! Running the real `kiln` binary from tests and reading what it leaves behind.

use std::path::Path;
use std::process::{Command, Output};

pub const KILN: &str = env!("CARGO_BIN_EXE_kiln");
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub fn kiln(dir: &Path, args: &[&str]) -> Output {
    Command::new(KILN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("kiln runs")
}

/// `kiln args` in `dir` with `input` on its standard input.
pub fn kiln_with_stdin(dir: &Path, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(KILN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kiln runs");
    // A child that exits without reading its input closes the pipe: not the test's failure.
    let _ = child.stdin.take().expect("piped").write_all(input);
    child.wait_with_output().expect("kiln runs")
}

/// `kiln predict RUN INPUT --proba --format jsonl [extra...]` run from the repository root.
pub fn predict_jsonl(run: &Path, input: &str, extra: &[&str]) -> Output {
    Command::new(KILN)
        .args([
            "predict",
            run.to_str().unwrap(),
            input,
            "--proba",
            "--format",
            "jsonl",
        ])
        .args(extra)
        .current_dir(ROOT)
        .output()
        .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn first_error_line(o: &Output) -> String {
    stderr(o)
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or("")
        .to_string()
}

/// Train a shipped config (paths relative to the repository) into `run_dir`.
pub fn train_shipped(config: &str, run_dir: &Path, extra: &[&str]) -> Output {
    Command::new(KILN)
        .args(["train", config, "--quiet", "--run-dir"])
        .arg(run_dir)
        .args(extra)
        .current_dir(ROOT)
        .output()
        .unwrap()
}

/// Train a shipped config to the end and return its test accuracy.
pub fn shipped_test_accuracy(config: &str) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let out = train_shipped(config, &dir.path().join("run"), &["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let acc = v["test"]["accuracy"].as_f64().unwrap();
    eprintln!("{config}: test accuracy {acc}");
    acc
}

pub fn run_info(run_dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run_dir.join("run.json")).unwrap()).unwrap()
}

/// Every tensor of a safetensors file as (name, bit patterns), sorted by name: for bitwise
/// comparisons.
pub fn tensors(path: &Path) -> Vec<(String, Vec<u32>)> {
    let loaded = kiln::run::checkpoint::load(path).unwrap();
    let mut t: Vec<(String, Vec<u32>)> = loaded
        .tensors
        .into_iter()
        .map(|(k, (_, v))| (k, v.iter().map(|x| x.to_bits()).collect()))
        .collect();
    t.sort();
    t
}

/// A small 2-class table (`a,b,c,label`, label yes where a + b > 0) of `rows` rows.
pub fn table(rows: usize) -> String {
    let mut rng = kiln::Rng::new(5);
    let mut text = String::from("a,b,c,label\n");
    for _ in 0..rows {
        let (a, b, c) = (
            rng.uniform() * 2.0 - 1.0,
            rng.uniform() * 2.0 - 1.0,
            rng.uniform(),
        );
        let label = if a + b > 0.0 { "yes" } else { "no" };
        text.push_str(&format!("{a:.3},{b:.3},{c:.3},{label}\n"));
    }
    text
}

/// A project in a temporary folder: the files a test writes (data, configs), and the binary
/// run inside it. The folder goes when the project does.
pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        Project {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write `contents` to `name` (folders created as needed).
    pub fn file(self, name: &str, contents: impl AsRef<[u8]>) -> Project {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, contents).unwrap();
        self
    }

    /// Let `write` fill the folder (image folders, generated tables).
    pub fn with(self, write: impl FnOnce(&Path)) -> Project {
        write(self.path());
        self
    }

    /// Run `kiln ARGS` in the project folder.
    pub fn kiln(&self, args: &[&str]) -> Output {
        kiln(self.path(), args)
    }
}
