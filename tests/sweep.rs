//! `kiln sweep` and `kiln train --folds` through the real binary: the runs a grid with folds
//! makes, a summary that agrees with the runs' own run.json, random draws, an interrupted
//! sweep resumed, and the errors that stop a sweep before it trains anything.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::bin::{first_error_line, run_info, stderr, stdout, table, Project};
use serde_json::Value;

/// 300 rows of a two-class table and a config with a validation share.
fn project(epochs: usize) -> Project {
    let config = format!(
        "name = \"s\"\nseed = 3\n[data]\ntrain = \"train.csv\"\nvalid_split = 0.2\n\n[[model.layers]]\ntype = \"dense\"\nunits = 8\nactivation = \"relu\"\n\n[[model.layers]]\ntype = \"dense\"\nunits = 2\n\n[optimizer]\nlr = 0.01\n\n[train]\nepochs = {epochs}\nbatch_size = 16\nmetrics = [\"accuracy\"]\ncheckpoint = {{ every_seconds = 0 }}\n"
    );
    Project::new()
        .file("train.csv", table(300))
        .file("s.toml", config)
}

fn json_of(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_str(stdout(out).trim()).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// The one folder under `runs/` whose name contains `what`.
fn folder(p: &Project, what: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(p.path().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|d| d.file_name().unwrap().to_string_lossy().contains(what))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

fn run_dirs(folder: &Path) -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn a_two_by_two_grid_on_three_folds_is_twelve_runs_summed_up_from_their_run_json() {
    let p = project(3);
    let out = p.kiln(&[
        "sweep",
        "s.toml",
        "--grid",
        "optimizer.lr=0.01,0.05",
        "--grid",
        "model.layers.0.units=4,16",
        "--folds",
        "3",
        "--parallel",
        "2",
        "--metric",
        "valid.accuracy",
        "--json",
    ]);
    let summary = json_of(&out);
    // The live table sums up each setting when its last fold ends.
    let live = stderr(&out);
    assert_eq!(live.matches(" over 3 folds").count(), 4, "{live}");
    assert!(live.contains("(best so far)"), "{live}");
    let folder = folder(&p, "s-sweep-");
    let dirs = run_dirs(&folder);
    assert_eq!(dirs.len(), 12, "{dirs:?}");
    assert_eq!(dirs[0], "trial-01-fold-1");
    assert_eq!(dirs[11], "trial-04-fold-3");
    assert_eq!(summary["direction"], "max");
    let trials = summary["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 4);
    let mut last_mean = f64::INFINITY;
    for t in trials {
        // Each trial's numbers are its runs' run.json best values, and their mean and std.
        let runs = t["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 3);
        let mut values = Vec::new();
        for (fold, r) in runs.iter().enumerate() {
            let info = run_info(&p.path().join(r["run_dir"].as_str().unwrap()));
            assert_eq!(info["status"], "finished");
            assert_eq!(info["best"]["monitor"], "valid.accuracy");
            let v = info["best"]["value"].as_f64().unwrap();
            assert!((r["value"].as_f64().unwrap() - v).abs() < 1e-12);
            assert!((t["values"][fold].as_f64().unwrap() - v).abs() < 1e-12);
            values.push(v);
        }
        let mean = values.iter().sum::<f64>() / 3.0;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
        assert!((t["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
        assert!((t["std"].as_f64().unwrap() - std).abs() < 1e-12);
        assert!(mean <= last_mean, "ranked best first");
        last_mean = mean;
        // The run trained the trial's setting on its fold.
        let config = std::fs::read_to_string(
            p.path()
                .join(runs[1]["run_dir"].as_str().unwrap())
                .join("config.toml"),
        )
        .unwrap();
        let lr = t["setting"]["optimizer.lr"].as_f64().unwrap();
        assert!(config.contains(&format!("lr = {lr}")), "{config}");
        assert!(
            config.contains("folds = 3") && config.contains("fold = 2"),
            "{config}"
        );
    }
    // summary.csv holds the same numbers; best.toml is the best trial's config without folds.
    let csv = std::fs::read_to_string(folder.join("summary.csv")).unwrap();
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("rank,trial,optimizer.lr,model.layers.0.units,valid.accuracy_mean,valid.accuracy_std,runs_done,runs,valid.accuracy_fold_1"));
    let first: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(first[1], trials[0]["trial"].to_string());
    // (serde_json reads floats to within an ulp)
    let csv_mean: f64 = first[4].parse().unwrap();
    assert!((csv_mean - trials[0]["mean"].as_f64().unwrap()).abs() < 1e-12);
    assert_eq!(lines.count(), 3);
    let best = std::fs::read_to_string(folder.join("best.toml")).unwrap();
    let best: toml::Table = toml::from_str(&best).unwrap();
    assert_eq!(
        best["optimizer"]["lr"].as_float().unwrap(),
        trials[0]["setting"]["optimizer.lr"].as_f64().unwrap()
    );
    assert!(best["data"].get("kfold").is_none());
    assert_eq!(
        best["data"]["valid_split"].as_float(),
        Some(0.2),
        "the config's own validation share stays"
    );
    // `kiln runs` names the sweep folder, whose runs `kiln runs FOLDER` lists.
    let listed = stdout(&p.kiln(&["runs"]));
    assert!(
        listed.contains("sweep, 4 settings × 3 folds, 12 of 12 runs done, by valid.accuracy (max)"),
        "{listed}"
    );
    let inside = stdout(&p.kiln(&["runs", &folder.display().to_string()]));
    assert_eq!(inside.lines().count(), 1 + 12, "{inside}");
    let check = p.kiln(&["check", &folder.join("best.toml").display().to_string()]);
    assert!(check.status.success(), "{}", stderr(&check));
}

#[test]
fn the_table_ranks_settings_and_random_draws_are_seeded() {
    let p = project(2);
    let args = [
        "sweep",
        "s.toml",
        "--random",
        "3",
        "--range",
        "optimizer.lr=0.001:0.1:log",
        "--grid",
        "train.batch_size=8,32",
        "--runs",
    ];
    let a = p.kiln(&[&args[..], &["a"]].concat());
    assert!(a.status.success(), "{}", stderr(&a));
    let table = stdout(&a);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("rank  trial  train.batch_size  optimizer.lr  valid.loss"),
        "{table}"
    );
    assert_eq!(lines.len(), 1 + 3 + 2, "{table}");
    assert!(lines[4].starts_with("best: trial "), "{table}");
    // The live table: a headline and a line per run on stderr.
    let err = stderr(&a);
    assert!(err.contains("3 runs, 1 at a time"), "{err}");
    assert_eq!(err.matches(" started ").count(), 3, "{err}");
    // The same seed draws the same settings.
    let b = p.kiln(&[&args[..], &["b"]].concat());
    let plan = |dir: &str| -> Value {
        let f = std::fs::read_dir(p.path().join(dir))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        serde_json::from_str(&std::fs::read_to_string(f.join("sweep.json")).unwrap()).unwrap()
    };
    assert!(b.status.success());
    assert_eq!(plan("a")["settings"], plan("b")["settings"]);
    let lrs: Vec<f64> = plan("a")["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[1][1].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(lrs.iter().all(|&v| (0.001..=0.1).contains(&v)), "{lrs:?}");
}

#[test]
fn train_with_folds_reports_each_fold_and_the_mean_and_std() {
    let p = project(3);
    let out = p.kiln(&["train", "s.toml", "--folds", "4", "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("fold ")
            && lines[0].contains(" status ")
            && lines[0].contains("valid.loss")
            && lines[0].contains("valid.accuracy"),
        "{text}"
    );
    assert!(lines[5].starts_with("mean ± std"), "{text}");
    let folder = folder(&p, "s-cv-");
    assert_eq!(
        lines[6],
        folder
            .display()
            .to_string()
            .trim_start_matches(&format!("{}/", p.path().display()))
    );
    assert_eq!(run_dirs(&folder), ["fold-1", "fold-2", "fold-3", "fold-4"]);
    // Each fold validates on a quarter of the 300 rows, stratified: the classes' counts in
    // the folds differ by at most one (the unit test of data::split checks they are disjoint).
    let mut no = Vec::new();
    for (f, line) in (1..=4).zip(&lines[1..]) {
        let run = folder.join(format!("fold-{f}"));
        assert_eq!(run_info(&run)["status"], "finished");
        let eval = p.kiln(&[
            "eval",
            &run.display().to_string(),
            "--split",
            "valid",
            "--json",
        ]);
        let eval = json_of(&eval);
        assert_eq!(eval["rows"], 75);
        let cell: f64 = line.split_whitespace().last().unwrap().parse().unwrap();
        assert!((eval["metrics"]["accuracy"].as_f64().unwrap() - cell).abs() < 5e-5);
        no.push(eval["per_class"]["no"]["support"].as_i64().unwrap());
    }
    assert!(
        no.iter().max().unwrap() - no.iter().min().unwrap() <= 1,
        "{no:?}"
    );
    // --json: each fold's validation metrics and their mean and std.
    let p = project(2);
    let j = json_of(&p.kiln(&["train", "s.toml", "--folds", "3", "--json", "--quiet"]));
    let t = &j["trials"][0];
    let losses: Vec<f64> = t["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["valid"]["loss"].as_f64().unwrap())
        .collect();
    assert_eq!(losses.len(), 3);
    let mean = losses.iter().sum::<f64>() / 3.0;
    assert!((t["valid"]["valid.loss"]["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    // Folds are dealt from the training rows: a validation file cannot be folded.
    let p = project(2).file("v.csv", table(20));
    let out = p.kiln(&[
        "train",
        "s.toml",
        "--folds",
        "3",
        "--set",
        "data.valid=\"v.csv\"",
        "--set",
        "data.valid_split=0",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// The runs of a 3-setting, 2-fold sweep, after `trial-`.
const RUNS: [&str; 6] = [
    "01-fold-1",
    "01-fold-2",
    "02-fold-1",
    "02-fold-2",
    "03-fold-1",
    "03-fold-2",
];

#[test]
fn an_interrupted_sweep_resumes_only_what_is_missing() {
    let p = project(40);
    let child = std::process::Command::new(common::bin::KILN)
        .args([
            "sweep",
            "s.toml",
            "--grid",
            "optimizer.lr=0.01,0.02,0.03",
            "--folds",
            "2",
            "--threads",
            "1",
        ])
        .current_dir(p.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first run has finished, Ctrl-C the sweep (the signal a terminal sends).
    let started = Instant::now();
    let first = loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no run finished"
        );
        let f = p.path().join("runs");
        let done = std::fs::read_dir(&f)
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| e.unwrap().path());
        if let Some(folder) = done {
            let r = folder.join("trial-01-fold-1/run.json");
            if std::fs::read_to_string(&r).is_ok_and(|t| t.contains("\"finished\"")) {
                break folder;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("continue with: kiln sweep --resume"), "{err}");
    let statuses = || -> Vec<String> {
        RUNS.iter()
            .map(|n| {
                let path = first.join(format!("trial-{n}/run.json"));
                std::fs::read_to_string(path)
                    .ok()
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                    .map_or("none".into(), |v| v["status"].as_str().unwrap().to_string())
            })
            .collect()
    };
    let before = statuses();
    let finished_before: Vec<usize> = (0..6).filter(|&i| before[i] == "finished").collect();
    assert!(finished_before.len() < 6, "{before:?}");
    assert!(
        before
            .iter()
            .all(|s| ["finished", "interrupted", "none"].contains(&s.as_str())),
        "{before:?}"
    );
    let stamp = |i: usize| {
        std::fs::read_to_string(first.join(format!("trial-{}/run.json", RUNS[i]))).unwrap()
    };
    let kept: Vec<String> = finished_before.iter().map(|&i| stamp(i)).collect();
    // --resume trains the rest; the finished runs are not touched.
    let folder_arg = first.display().to_string();
    // From another folder: the sweep's config names its data by absolute paths.
    let elsewhere = p.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let out = common::bin::kiln(
        &elsewhere,
        &["sweep", "--resume", &first.display().to_string()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("({} left to train)", 6 - finished_before.len())),
        "{err}"
    );
    assert_eq!(statuses(), vec!["finished"; 6]);
    for (k, &i) in finished_before.iter().enumerate() {
        assert_eq!(stamp(i), kept[k], "a finished run stays as it was");
    }
    // An interrupted run was resumed, not restarted: its log says so.
    if let Some(i) = (0..6).find(|&i| before[i] == "interrupted") {
        let log =
            std::fs::read_to_string(first.join(format!("trial-{}/train.log", RUNS[i]))).unwrap();
        assert!(log.to_lowercase().contains("resum"), "{log}");
    }
    // Resuming a finished sweep trains nothing and prints the same ranking.
    let again = p.kiln(&["sweep", "--resume", &folder_arg, "--quiet"]);
    assert!(again.status.success());
    assert_eq!(stdout(&again), stdout(&out));
}

#[test]
fn bad_sweeps_fail_before_any_run_with_the_place() {
    let p = project(2);
    for (args, wanted) in [
        (vec!["--grid", "optimizer.lrr=0.1,0.2"], "optimizer.lrr"),
        (vec!["--grid", "optimizer.lr=0.1,-1"], "optimizer.lr"),
        (
            vec!["--grid", "model.layers.5.units=1,2"],
            "model.layers has 2 entries",
        ),
        (
            vec!["--grid", "optimizer.lr=0.1", "--metric", "valid.acuracy"],
            "valid.acuracy",
        ),
        (vec!["--grid", "optimizer.lr"], "--grid optimizer.lr"),
        (vec!["--random", "2"], "--random"),
        (vec![], "nothing to sweep"),
        (vec!["--grid", "a=1", "--grid", "a=2"], "a: swept twice"),
        (
            vec![
                "--grid",
                "optimizer.lr=0.1,0.2",
                "--set",
                "optimizer.lr=0.5",
            ],
            "optimizer.lr: both swept and given by --set",
        ),
        (
            vec!["--grid", "optimizer.lr=0.1", "--folds", "301"],
            "--folds: 301 folds of 300 rows",
        ),
    ] {
        let mut all = vec!["sweep", "s.toml"];
        all.extend(args.iter());
        let out = p.kiln(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let line = first_error_line(&out);
        assert!(line.contains(wanted), "{args:?}: {line}");
        assert!(
            !p.path().join("runs").exists(),
            "{args:?}: no folder for a bad sweep"
        );
    }
    let out = p.kiln(&["sweep", "--resume", "nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(first_error_line(&out).contains("nowhere: no such folder"));
    std::fs::create_dir(p.path().join("empty")).unwrap();
    let out = p.kiln(&["sweep", "--resume", "empty"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(first_error_line(&out).contains("not a sweep folder"));
    std::fs::remove_dir(p.path().join("empty")).unwrap();
    // A setting may change a kind: sgd after adam (whose betas the config never wrote).
    let out = p.kiln(&[
        "sweep",
        "s.toml",
        "--grid",
        "optimizer.type=adam,sgd",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}
