//! The monitored metric's direction in `kiln runs`, through the real binary.

mod common;

use common::bin::{run_info, stderr, stdout, table, Project};

/// 200 rows of the two-class table, a test file, and a config of 2 epochs with a validation
/// split and accuracy as its metric. Every run trains it under the same name and seed, so runs
/// differ only in the keys a test sets.
fn project() -> Project {
    let config = "name = \"t\"\nseed = 5\n\n[data]\ntrain = \"train.csv\"\ntest = \"test.csv\"\nvalid_split = 0.25\n\n[[model.layers]]\ntype = \"dense\"\nunits = 8\nactivation = \"relu\"\n\n[[model.layers]]\ntype = \"dense\"\nunits = 2\n\n[train]\nepochs = 2\nbatch_size = 10\nmetrics = [\"accuracy\"]\n";
    Project::new()
        .file("train.csv", table(200))
        .file("test.csv", table(50))
        .file("t.toml", config)
}

/// Train `t.toml` into `run_dir` with `--set` of each of `sets`.
fn train(p: &Project, run_dir: &str, sets: &[&str]) {
    let mut args = vec!["train", "t.toml", "--quiet", "--run-dir", run_dir];
    for s in sets {
        args.extend(["--set", s]);
    }
    let out = p.kiln(&args);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn runs_shows_the_best_value_in_its_metrics_direction() {
    let p = project();
    train(&p, "runs/by-loss", &[]);
    train(
        &p,
        "runs/by-accuracy",
        &["train.checkpoint.best=valid.accuracy"],
    );
    let out = p.kiln(&["runs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for (run, monitor, direction) in [
        ("by-loss", "valid.loss", "(min)"),
        ("by-accuracy", "valid.accuracy", "(max)"),
    ] {
        let best = run_info(&p.path().join("runs").join(run))["best"]["value"]
            .as_f64()
            .unwrap();
        let cell = format!("{monitor} {best:.4} {direction}");
        assert!(
            text.lines()
                .any(|l| l.starts_with(run) && l.contains(&cell)),
            "no row of {run} with {cell}:\n{text}"
        );
    }
    // --json keeps run.json's best and adds its direction.
    let out = p.kiln(&["runs", "--json"]);
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    for row in v.as_array().unwrap() {
        let best = &row["best"];
        let want = if best["monitor"] == "valid.loss" {
            "min"
        } else {
            "max"
        };
        assert_eq!(best["direction"], want, "{row}");
        assert!(best["value"].is_f64() && best["epoch"].is_u64(), "{row}");
    }
}
