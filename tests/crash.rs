//! kill -9 at random moments of a training run, then `--resume`: every run that wrote a
//! checkpoint resumes and ends with the same weights as an uninterrupted run, metrics.csv holds
//! each epoch once, and no temporary file is left. A run killed before its first checkpoint
//! says so.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::bin::{stderr, table, tensors, Project, KILN};

const CONFIG: &str = r#"name = "k"
seed = 3

[data]
train = "train.csv"
target = "label"
valid_split = 0.2

[[model.layers]]
type = "dense"
units = 16
activation = "relu"

[[model.layers]]
type = "dropout"
rate = 0.2

[[model.layers]]
type = "dense"
units = 2

[train]
epochs = 6
batch_size = 1
checkpoint = { every_seconds = 0, keep_last = 2 }
"#;

fn train_args(dir: &str) -> Vec<String> {
    [
        "train",
        "c.toml",
        "--quiet",
        "--threads",
        "1",
        "--run-dir",
        dir,
    ]
    .map(String::from)
    .to_vec()
}

/// Every file under `dir` whose name marks it temporary.
fn temporary_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().filter_map(|e| e.ok()) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if e.file_name().to_string_lossy().contains(".tmp") {
                found.push(p.display().to_string());
            }
        }
    }
    found
}

fn epochs_in_metrics(run: &Path) -> Vec<u64> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn kill_9_at_random_moments_then_resume_ends_as_an_uninterrupted_run() {
    let p = Project::new()
        .file("train.csv", table(3000))
        .file("c.toml", CONFIG);
    let started = Instant::now();
    let out = p.kiln(
        &train_args("straight")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let full = started.elapsed();
    let reference = tensors(&p.path().join("straight/model.safetensors"));

    let mut rng = kiln::Rng::new(11);
    let (mut resumed, mut before_first) = (0, 0);
    for i in 0..12 {
        let dir = format!("cut{i}");
        let mut child = Command::new(KILN)
            .args(train_args(&dir))
            .current_dir(p.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Anywhere in the run, its start (before any checkpoint) included.
        std::thread::sleep(full.mul_f64(rng.uniform() as f64 * 0.9));
        let _ = child.kill(); // SIGKILL: no handler runs
        child.wait().unwrap();
        let run = p.path().join(&dir);
        if !run.join("run.json").exists() {
            before_first += 1;
            continue; // killed before the run directory was written
        }
        let out = p.kiln(&["train", "--resume", &dir, "--quiet", "--threads", "1"]);
        let err = stderr(&out);
        let has_checkpoint = std::fs::read_dir(run.join("checkpoints"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .any(|e| e.file_name().to_string_lossy().ends_with(".safetensors"))
            })
            .unwrap_or(false);
        if !out.status.success() {
            // Killed before the first checkpoint (or after the last epoch's): said plainly.
            assert!(
                !has_checkpoint && err.contains("no checkpoint")
                    || err.contains("already trained 6 of 6 epochs"),
                "cut{i}: resume failed: {err}"
            );
            before_first += 1;
            continue;
        }
        resumed += 1;
        assert_eq!(
            tensors(&run.join("model.safetensors")),
            reference,
            "cut{i}: resumed weights differ from the uninterrupted run's"
        );
        assert_eq!(
            epochs_in_metrics(&run),
            (1..=6).collect::<Vec<u64>>(),
            "cut{i}: metrics.csv"
        );
        assert_eq!(
            temporary_files(&run),
            Vec::<String>::new(),
            "cut{i}: temporary files"
        );
    }
    eprintln!("straight run {full:?}; {resumed} runs resumed after kill -9, {before_first} killed before a checkpoint or after the end");
    assert!(resumed >= 3, "only {resumed} of 12 kills landed mid-run");
}

/// The states a kill can leave, made by hand: a checkpoint run.json does not record yet (the
/// one it records already pruned), a metrics row of an epoch after it, and temporary files. Resume takes the newest checkpoint,
/// drops the extra row, removes the temporary files, and ends as an uninterrupted run.
#[test]
fn resume_reconciles_what_a_kill_leaves() {
    let p = Project::new()
        .file("train.csv", table(300))
        .file("c.toml", CONFIG);
    let args = |dir: &str, epochs: &str| {
        let mut a = train_args(dir);
        a.extend(["--set".to_string(), format!("train.epochs={epochs}")]);
        a
    };
    let run = |a: Vec<String>| {
        let out = p.kiln(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out.status.success(), "{}", stderr(&out));
    };
    run(args("straight", "6"));
    run(args("cut", "4"));
    let cut = p.path().join("cut");
    let info_path = cut.join("run.json");
    let mut info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&info_path).unwrap()).unwrap();
    info["last_checkpoint"] = "checkpoints/epoch-0003.safetensors".into();
    info["epochs_done"] = 3.into();
    std::fs::write(&info_path, info.to_string()).unwrap();
    // As keep_last = 1 would have pruned it once epoch 4's checkpoint was written.
    std::fs::remove_file(cut.join("checkpoints/epoch-0003.safetensors")).unwrap();
    let metrics = std::fs::read_to_string(cut.join("metrics.csv")).unwrap();
    let last = metrics.lines().last().unwrap().replacen("4,", "5,", 1);
    std::fs::write(cut.join("metrics.csv"), format!("{metrics}{last}\n")).unwrap();
    std::fs::write(cut.join(".run.json.tmp"), "{").unwrap();
    std::fs::write(cut.join("checkpoints/.epoch-0005.safetensors.tmp"), "x").unwrap();

    let mut resume = vec!["train", "--resume", "cut", "--quiet", "--threads", "1"];
    resume.extend(["--set", "train.epochs=6"]);
    let out = p.kiln(&resume);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(epochs_in_metrics(&cut), (1..=6).collect::<Vec<u64>>());
    assert_eq!(temporary_files(&cut), Vec::<String>::new());
    assert_eq!(
        tensors(&cut.join("model.safetensors")),
        tensors(&p.path().join("straight/model.safetensors"))
    );
}

/// A second process cannot resume a run that one is training.
#[test]
fn a_run_in_use_is_refused() {
    let p = Project::new()
        .file("train.csv", table(100))
        .file("c.toml", CONFIG);
    let out = p.kiln(
        &train_args("r")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // This process holds the run, as a training process would.
    kiln::run::RunDir::open(&p.path().join("r"))
        .unwrap()
        .lock()
        .unwrap();
    let out = p.kiln(&["train", "--resume", "r", "--set", "train.epochs=9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::bin::first_error_line(&out).contains("another kiln process is training this run"),
        "{}",
        stderr(&out)
    );
}

/// Predict on stdin, stopped by SIGTERM between batches: exit 130, and an --output file is
/// never written (nor its temporary file left). A missing column fails before any output.
#[test]
fn predict_stops_on_sigterm_and_writes_nothing_partial() {
    use std::io::{BufRead, BufReader, Write};
    let p = Project::new()
        .file("train.csv", table(100))
        .file("c.toml", CONFIG);
    let out = p.kiln(
        &train_args("r")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let out = p.kiln(&["predict", "r", "p.csv"]);
    assert_eq!(out.status.code(), Some(2)); // no p.csv
    std::fs::write(p.path().join("p.csv"), "a,b\n1,2\n").unwrap();
    let out = p.kiln(&["predict", "r", "p.csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no header before the error");

    for output in [None, Some("out.csv")] {
        let mut args = vec!["predict", "r", "-", "--batch-size", "1"];
        args.extend(output.map(|o| ["--output", o]).into_iter().flatten());
        let mut child = Command::new(KILN)
            .args(&args)
            .current_dir(p.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "a,b,c\n0.5,0.5,0.1").unwrap();
        stdin.flush().unwrap();
        if output.is_none() {
            // The first prediction is out: predict now waits for the next row.
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            assert_eq!(lines.next().unwrap().unwrap(), "prediction");
            assert!(lines.next().unwrap().is_ok());
        } else {
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        std::thread::sleep(std::time::Duration::from_millis(100));
        let _ = writeln!(stdin, "0.1,0.2,0.3");
        drop(stdin);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{output:?}");
        let left: Vec<String> = std::fs::read_dir(p.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("out.csv"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
