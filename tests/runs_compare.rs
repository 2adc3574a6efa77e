//! `kiln runs --compare` (config differences, final metrics, overlaid curves) and the monitored
//! metric's direction in `kiln runs`, through the real binary.

mod common;

use std::path::Path;

use common::bin::{first_error_line, run_info, stderr, stdout, table, Project};

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

/// The runs a, b and c: b changes the rate and the first layer's width, c the rate.
fn three_runs() -> Project {
    let p = project();
    train(&p, "runs/a", &[]);
    train(
        &p,
        "runs/b",
        &["optimizer.lr=0.1", "model.layers.0.units=16"],
    );
    train(&p, "runs/c", &["optimizer.lr=0.01"]);
    p
}

/// The cells of a printed table's rows (split on runs of 3+ spaces), up to the blank line.
fn table_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .take_while(|l| !l.is_empty())
        .map(|l| {
            l.split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
        .collect()
}

/// The last metrics.csv value of `column`.
fn last_value(run: &Path, column: &str) -> f64 {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let at = lines
        .next()
        .unwrap()
        .split(',')
        .position(|h| h == column)
        .unwrap();
    lines
        .last()
        .unwrap()
        .split(',')
        .nth(at)
        .unwrap()
        .parse()
        .unwrap()
}

/// Whether the image has a pixel of exactly `rgb`.
fn has_color(png: &image::RgbImage, rgb: [u8; 3]) -> bool {
    png.pixels().any(|p| p.0 == rgb)
}

#[test]
fn compare_prints_the_keys_that_differ_and_the_metrics_and_draws_the_curves() {
    let p = three_runs();
    let out = p.kiln(&["runs", "--compare", "runs/a", "runs/b", "runs/c"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let config = table_rows(&text);
    assert_eq!(
        config[0],
        ["config", "runs/a", "runs/b", "runs/c"],
        "{text}"
    );
    // Exactly the keys the runs were given differently: not name, seed or any default.
    assert_eq!(
        config[1..],
        [
            ["model.layers.0.units", "8", "16", "8"],
            ["optimizer.lr", "0.001", "0.1", "0.01"],
        ],
        "{text}"
    );
    // The metrics in the same columns: best (valid.loss, the default monitor, with its
    // direction), the last epoch's train and valid metrics, the test metrics.
    let metrics = table_rows(text.split("\n\n").nth(1).unwrap());
    assert_eq!(
        metrics[0],
        ["metrics", "runs/a", "runs/b", "runs/c"],
        "{text}"
    );
    let row = |name: &str| -> Vec<String> {
        metrics
            .iter()
            .find(|r| r[0] == name)
            .unwrap_or_else(|| panic!("no {name} row in\n{text}"))[1..]
            .to_vec()
    };
    assert_eq!(row("status"), ["finished"; 3]);
    assert_eq!(row("epochs"), ["2"; 3]);
    for (i, run) in ["a", "b", "c"].iter().enumerate() {
        let dir = p.path().join("runs").join(run);
        let info = run_info(&dir);
        let best = format!(
            "valid.loss {:.4} (min)",
            info["best"]["value"].as_f64().unwrap()
        );
        assert_eq!(row("best")[i], best, "{text}");
        assert_eq!(row("best epoch")[i], info["best"]["epoch"].to_string());
        for column in [
            "train_loss",
            "train_accuracy",
            "valid_loss",
            "valid_accuracy",
        ] {
            assert_eq!(row(column)[i], format!("{:.4}", last_value(&dir, column)));
        }
        let test = info["test"]["accuracy"].as_f64().unwrap();
        assert_eq!(row("test_accuracy")[i], format!("{test:.4}"));
        assert!(!row("test_loss")[i].is_empty());
    }
    assert_eq!(text.lines().last(), Some("plot: compare.png"), "{text}");

    // The PNG: a loss panel and an accuracy panel, 560 x 420 each; each run drawn in its own
    // colour (matplotlib's first three), written atomically (no temporary file left).
    let png = image::open(p.path().join("compare.png")).unwrap().to_rgb8();
    assert_eq!(png.dimensions(), (2 * 560, 420));
    for rgb in [[31, 119, 180], [255, 127, 14], [44, 160, 44]] {
        assert!(has_color(&png, rgb), "no line of colour {rgb:?}");
    }
    let left: Vec<String> = std::fs::read_dir(p.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");

    // --json: the same, as one object; --output names the PNG (folders made).
    let out = p.kiln(&[
        "runs",
        "--compare",
        "runs/a",
        "runs/b",
        "runs/c",
        "--json",
        "--output",
        "plots/ab.png",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let dirs: Vec<&str> = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_dir"].as_str().unwrap())
        .collect();
    assert_eq!(dirs, ["runs/a", "runs/b", "runs/c"]);
    assert_eq!(v["runs"][1]["status"], "finished");
    assert_eq!(
        v["differences"],
        serde_json::json!({
            "model.layers.0.units": [8, 16, 8],
            "optimizer.lr": [0.001, 0.1, 0.01],
        })
    );
    for (i, run) in ["a", "b", "c"].iter().enumerate() {
        let dir = p.path().join("runs").join(run);
        let info = run_info(&dir);
        let best = &v["metrics"]["best"][i];
        assert_eq!(best["monitor"], info["best"]["monitor"]);
        assert_eq!(best["value"], info["best"]["value"]);
        assert_eq!(best["epoch"], info["best"]["epoch"]);
        assert_eq!(best["direction"], "min");
        let valid_loss = v["metrics"]["final"][i]["valid_loss"].as_f64().unwrap();
        assert_eq!(valid_loss, last_value(&dir, "valid_loss"));
        // As run.json and `kiln train --json` name them.
        assert_eq!(v["metrics"]["test"][i], info["test"]);
    }
    assert_eq!(v["plot"], "plots/ab.png");
    let png = image::open(p.path().join("plots/ab.png")).unwrap();
    assert_eq!((png.width(), png.height()), (1120, 420));
}

#[test]
fn compare_of_runs_that_differ_in_nothing_says_so() {
    let p = project();
    train(&p, "runs/a", &[]);
    train(&p, "runs/b", &[]);
    let out = p.kiln(&["runs", "--compare", "runs/a", "runs/b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(
        table_rows(&text),
        [vec!["config", "runs/a", "runs/b"], vec!["(no differences)"]],
        "{text}"
    );
}

#[test]
fn compare_errors_are_exit_2_naming_the_path() {
    let p = project();
    train(&p, "runs/a", &[]);
    let fails = |args: &[&str], says: &str| {
        let out = p.kiln(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let line = first_error_line(&out);
        assert!(line.contains(says), "{args:?}: {line}");
        assert!(stdout(&out).is_empty(), "{args:?}: nothing on stdout");
    };
    fails(
        &["runs", "--compare", "runs/a"],
        "--compare needs two or more run directories, got 1 (runs/a)",
    );
    std::fs::create_dir(p.path().join("notes")).unwrap();
    fails(
        &["runs", "--compare", "runs/a", "notes"],
        "notes: not a run directory (no run.json)",
    );
    fails(
        &["runs", "--compare", "runs/a", "runs/a", "--output", "c.jpg"],
        "c.jpg: plots are PNG images",
    );
    // Runs that finished no epoch (as one killed in its first): a note when another run has
    // curves, an error when none has.
    for dir in ["early", "early2"] {
        std::fs::create_dir(p.path().join(dir)).unwrap();
        for file in ["run.json", "config.toml"] {
            std::fs::copy(
                p.path().join("runs/a").join(file),
                p.path().join(dir).join(file),
            )
            .unwrap();
        }
    }
    fails(
        &["runs", "--compare", "early", "early2"],
        "early/metrics.csv, early2/metrics.csv: no epoch rows",
    );
    let out = p.kiln(&["runs", "--compare", "runs/a", "early"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("note: early/metrics.csv: no epoch rows"),
        "{}",
        stderr(&out)
    );
    assert!(!p.path().join("c.jpg").exists());
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
