//! The switches for a quick look and a bounded run: `--fast-dev-run`, `--limit-batches`,
//! `train.max_time`, and the `reduce_on_plateau` schedule, through the real binary.

mod common;

use common::bin::{first_error_line, run_info, stderr, stdout, table, Project};

/// 400 rows of a three-class table (`common::bin::table`), a test file, and a config with a
/// validation split.
fn project(extra: &str) -> Project {
    let config = format!(
        "name = \"t\"\nseed = 5\n{extra}\n[data]\ntrain = \"train.csv\"\ntest = \"test.csv\"\nvalid_split = 0.25\n\n[[model.layers]]\ntype = \"dense\"\nunits = 8\nactivation = \"relu\"\n\n[[model.layers]]\ntype = \"dense\"\nunits = 2\n\n[train]\nepochs = 4\nbatch_size = 10\ncheckpoint = {{ every_seconds = 0 }}\n"
    );
    Project::new()
        .file("train.csv", table(400))
        .file("test.csv", table(100))
        .file("t.toml", config)
}

/// metrics.csv as rows of named numbers.
fn metrics(run: &std::path::Path) -> Vec<Vec<(String, String)>> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(String::from))
                .collect()
        })
        .collect()
}

fn column(rows: &[Vec<(String, String)>], name: &str) -> Vec<String> {
    rows.iter()
        .map(|r| r.iter().find(|(k, _)| k == name).unwrap().1.clone())
        .collect()
}

#[test]
fn fast_dev_run_runs_one_batch_of_each_split_and_keeps_nothing() {
    let p = project("");
    // Its temporary run goes under TMPDIR: one of the project's own, to see it removed.
    let tmp = p.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let out = std::process::Command::new(common::bin::KILN)
        .args(["train", "t.toml", "--fast-dev-run", "--quiet"])
        .env("TMPDIR", &tmp)
        .current_dir(p.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let line = stdout(&out);
    assert!(
        line.starts_with("fast-dev-run passed: one batch of each split ran (train_loss ")
            && line.contains("valid_loss ")
            && line.contains("test_loss ")
            && line.trim_end().ends_with("nothing kept"),
        "{line}"
    );
    assert!(
        !p.path().join("runs").exists(),
        "no run directory in the project"
    );
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "the temporary run is removed"
    );
    // A loss that overflows fails the smoke test, rather than passing with a NaN in it.
    let out = p.kiln(&[
        "train",
        "t.toml",
        "--fast-dev-run",
        "--quiet",
        "--set",
        "optimizer.lr=1e30",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        first_error_line(&out).contains("fast-dev-run failed: valid_loss is NaN"),
        "{}",
        stderr(&out)
    );
    // It cannot be combined with a run directory of its own.
    let out = p.kiln(&["train", "t.toml", "--fast-dev-run", "--run-dir", "x"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn limit_batches_caps_the_steps_of_every_epoch_and_the_evaluations() {
    let p = project("");
    let out = p.kiln(&[
        "train",
        "t.toml",
        "--limit-batches",
        "3",
        "--quiet",
        "--run-dir",
        "run",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = metrics(&p.path().join("run"));
    assert_eq!(column(&rows, "step"), ["3", "6", "9", "12"]);
    let info = run_info(&p.path().join("run"));
    assert_eq!(info["status"], "finished");
    // Kept in the run's config, so a resumed run keeps the limit.
    let config = std::fs::read_to_string(p.path().join("run/config.toml")).unwrap();
    assert!(config.contains("limit_batches = 3"), "{config}");
    let out = p.kiln(&["train", "t.toml", "--limit-batches", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = p.kiln(&[
        "train",
        "t.toml",
        "--limit-batches",
        "2",
        "--set",
        "train.limit_batches=5",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn max_time_checkpoints_ends_as_timeout_with_test_metrics_and_resumes() {
    // 1 ms: the budget runs out within the first epoch (or soon after).
    let p = project("");
    let out = p.kiln(&[
        "train",
        "t.toml",
        "--quiet",
        "--run-dir",
        "run",
        "--set",
        "train.max_time=0.001",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = p.path().join("run");
    let info = run_info(&run);
    assert_eq!(info["status"], "timeout", "{info}");
    let checkpoint = info["last_checkpoint"].as_str().unwrap().to_string();
    assert!(run.join(&checkpoint).is_file(), "{checkpoint}");
    assert!(info["epochs_done"].as_u64().unwrap() < 4, "{info}");
    assert!(info["test"]["accuracy"].is_number(), "{info}");
    // Resumed without a budget, the run finishes all its epochs.
    let out = p.kiln(&[
        "train",
        "--resume",
        "run",
        "--quiet",
        "--set",
        "train.max_time=\"1h\"",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let info = run_info(&run);
    assert_eq!(
        (info["status"].as_str(), info["epochs_done"].as_u64()),
        (Some("finished"), Some(4))
    );
    // Durations are checked where they are written.
    for (bad, why) in [
        (
            "\"ten minutes\"",
            "\"ten minutes\": a positive number of seconds, or a duration such as",
        ),
        ("-5", "-5: a positive number"),
    ] {
        let out = p.kiln(&["check", "t.toml", "--set", &format!("train.max_time={bad}")]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = first_error_line(&out);
        assert!(err.contains("train.max_time") && err.contains(why), "{err}");
    }
    for good in ["90", "\"90s\"", "\"1h30m\"", "\"2d\"", "\"01:30:00\""] {
        let out = p.kiln(&[
            "check",
            "t.toml",
            "--set",
            &format!("train.max_time={good}"),
        ]);
        assert!(out.status.success(), "{good}: {}", stderr(&out));
    }
}

#[test]
fn reduce_on_plateau_lowers_the_rate_after_patience_epochs_without_improvement() {
    // A min_delta no epoch can beat: every epoch after the first counts as no improvement.
    let p = project(
        "[optimizer]\nlr = 0.01\nschedule = { type = \"reduce_on_plateau\", patience = 1, factor = 0.5, min_delta = 100.0 }\n",
    );
    let out = p.kiln(&["train", "t.toml", "--run-dir", "run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = metrics(&p.path().join("run"));
    let lr: Vec<f64> = column(&rows, "lr")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(lr, [0.01, 0.01, 0.005, 0.0025]);
    assert!(
        stderr(&out).contains("reduce_on_plateau: learning rate 1e-2 -> 5e-3"),
        "{}",
        stderr(&out)
    );
    // Its monitor must be a metric the run has.
    let p = project(
        "[optimizer]\nschedule = { type = \"reduce_on_plateau\", monitor = \"valid.acuracy\" }\n",
    );
    let out = p.kiln(&["check", "t.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        first_error_line(&out).contains("optimizer.schedule.monitor"),
        "{}",
        stderr(&out)
    );
    let p = project(
        "[optimizer]\nlr = 0.001\nschedule = { type = \"reduce_on_plateau\", min_lr = 0.001 }\n",
    );
    let out = p.kiln(&["check", "t.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        first_error_line(&out).contains("the rate could never be reduced"),
        "{}",
        stderr(&out)
    );
    let p = project("[optimizer]\nschedule = { type = \"reduce_on_plateau\", factor = 1.5 }\n");
    let out = p.kiln(&["check", "t.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        first_error_line(&out).contains("optimizer.schedule.factor"),
        "{}",
        stderr(&out)
    );
}
