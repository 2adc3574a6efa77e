//! Mistakes a user cannot see, made visible: a final sigmoid before bce is fused, not applied
//! twice; `check` reports every problem; changed data is reported; results are in the target's
//! own units; the newest run is linked; eval's JSON holds per-class figures; an existing output
//! file keeps its permissions; an image folder with a link cycle is read once; several MPI ranks
//! are refused rather than each training a run of its own.

mod common;

use common::bin::{first_error_line, run_info, stderr, stdout, table, tensors, Project};

const BCE: &str = r#"name = "b"
seed = 4

[data]
train = "train.csv"
target = "label"
valid_split = 0.2

[[model.layers]]
type = "dense"
units = 8
activation = "relu"

[[model.layers]]
type = "dense"
units = 1

[loss]
type = "bce"

[train]
epochs = 4
batch_size = 8
"#;

#[test]
fn a_final_sigmoid_before_bce_is_fused_not_applied_twice() {
    let sigmoid = BCE.replace("units = 1\n", "units = 1\nactivation = \"sigmoid\"\n");
    let p = Project::new()
        .file("train.csv", table(200))
        .file("plain.toml", BCE)
        .file("sigmoid.toml", sigmoid);
    for (config, dir) in [("plain.toml", "plain"), ("sigmoid.toml", "sigmoid")] {
        let out = p.kiln(&[
            "train",
            config,
            "--quiet",
            "--run-dir",
            dir,
            "--threads",
            "1",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // The same weights: the sigmoid is the loss's, once.
    assert_eq!(
        tensors(&p.path().join("plain/model.safetensors")),
        tensors(&p.path().join("sigmoid/model.safetensors"))
    );
    let log = std::fs::read_to_string(p.path().join("sigmoid/train.log")).unwrap();
    let last = log.lines().find(|l| l.starts_with("epoch 4/4")).unwrap();
    assert!(last.contains("valid_accuracy"), "{last}");
    let out = p.kiln(&["check", "sigmoid.toml"]);
    assert!(
        stdout(&out).contains("the final sigmoid is fused into the bce loss"),
        "{}",
        stdout(&out)
    );
    // Probabilities from predict are the sigmoid of the logits, in [0, 1], two columns.
    let out = p.kiln(&["predict", "sigmoid", "train.csv", "--proba"]);
    let text = stdout(&out);
    assert!(text.starts_with("prediction,p_no,p_yes\n"), "{text}");
    for row in text.lines().skip(1).take(5) {
        let p: Vec<f64> = row.split(',').skip(1).map(|v| v.parse().unwrap()).collect();
        assert!((p[0] + p[1] - 1.0).abs() < 1e-5 && p.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}

#[test]
fn check_reports_every_problem_on_its_own_line() {
    let p = Project::new()
        .file("train.csv", table(50))
        .file("b.toml", BCE);
    let out = p.kiln(&[
        "check",
        "b.toml",
        "--set",
        "train.metrics=[\"accuracy\", \"bogus\"]",
        "--set",
        "train.early_stopping={monitor=\"valid.acc\"}",
        "--set",
        "model.layers.1.units=3",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let errors: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.starts_with("error: "))
        .map(String::from)
        .collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].contains("--set train.metrics") && errors[0].contains("bogus"));
    assert!(errors[1].contains("--set train.early_stopping") && errors[1].contains("valid.acc"));
    assert!(errors[2].contains("--set model.layers.1.units") && errors[2].contains("needs [1]"));
}

#[test]
fn changed_data_is_reported_on_eval_and_resume() {
    let p = Project::new()
        .file("train.csv", table(60))
        .file("b.toml", BCE);
    let out = p.kiln(&["train", "b.toml", "--quiet", "--run-dir", "r"]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::write(p.path().join("train.csv"), table(61)).unwrap();
    let out = p.kiln(&["eval", "r", "--split", "valid"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: the train data")
            && stderr(&out).contains("changed since the run trained"),
        "{}",
        stderr(&out)
    );
    let out = p.kiln(&["train", "--resume", "r", "--set", "train.epochs=5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = std::fs::read_to_string(p.path().join("r/train.log")).unwrap();
    assert!(log.contains("changed since the run trained"), "{log}");
}

#[test]
fn regression_targets_can_be_standardized_with_results_in_their_units() {
    // y = 1000 + 200·x: far from unit scale.
    let mut csv = String::from("x,y\n");
    for i in 0..200 {
        let x = i as f64 / 100.0 - 1.0;
        csv.push_str(&format!("{x},{}\n", 1000.0 + 200.0 * x));
    }
    let config = r#"[data]
train = "t.csv"
test = "t.csv"
target_normalize = "standard"
valid_split = 0

[[model.layers]]
type = "dense"
units = 1

[optimizer]
lr = 0.05

[train]
epochs = 60
batch_size = 16
metrics = ["rmse", "mae"]
"#;
    let p = Project::new().file("t.csv", csv).file("c.toml", config);
    let out = p.kiln(&["train", "c.toml", "--quiet", "--run-dir", "r", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let rmse = v["final"]["train_rmse"].as_f64().unwrap();
    assert!(rmse < 5.0, "rmse {rmse} in the target's units");
    let scale = &run_info(&p.path().join("r"))["schema"]["target_scale"];
    assert!(
        (scale["mean"].as_f64().unwrap() - 999.0).abs() < 1.0,
        "{scale}"
    );
    std::fs::write(p.path().join("x.csv"), "x\n0\n0.5\n").unwrap();
    let out = p.kiln(&["predict", "r", "x.csv"]);
    let values: Vec<f64> = stdout(&out)
        .lines()
        .skip(1)
        .map(|l| l.parse().unwrap())
        .collect();
    assert!(
        (values[0] - 1000.0).abs() < 5.0 && (values[1] - 1100.0).abs() < 5.0,
        "{values:?}"
    );
    // `kiln runs` shows the first metric the config lists (rmse), not the first by name (mae).
    let out = p.kiln(&["runs", "."]);
    let row = stdout(&out).lines().nth(1).unwrap().to_string();
    assert!(row.contains("rmse") && !row.contains("mae"), "{row}");
}

#[test]
fn runs_latest_per_class_json_and_output_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let p = Project::new().file("train.csv", table(80)).file(
        "b.toml",
        BCE.replace(
            "valid_split = 0.2",
            "valid_split = 0.2\ntest = \"train.csv\"",
        ),
    );
    for _ in 0..2 {
        let out = p.kiln(&["train", "b.toml", "--quiet"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let latest = std::fs::read_link(p.path().join("runs/latest")).unwrap();
    let newest = {
        let mut runs: Vec<String> = std::fs::read_dir(p.path().join("runs"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("b-"))
            .collect();
        runs.sort();
        assert_eq!(runs.len(), 2, "two runs in the same second get two folders");
        runs.pop().unwrap()
    };
    assert_eq!(latest.to_string_lossy(), newest);
    let out = p.kiln(&["runs"]);
    assert_eq!(
        stdout(&out).lines().count(),
        3,
        "latest is not listed twice"
    );

    let out = p.kiln(&["eval", "runs/latest", "--json"]);
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    for class in ["no", "yes"] {
        let c = &v["per_class"][class];
        assert!(
            c["precision"].is_f64() && c["recall"].is_f64() && c["f1"].is_f64(),
            "{v}"
        );
        assert!(c["support"].as_u64().unwrap() > 0, "{v}");
    }

    let out_file = p.path().join("out.csv");
    std::fs::write(&out_file, "old").unwrap();
    std::fs::set_permissions(&out_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = p.kiln(&["predict", "runs/latest", "train.csv", "--output", "out.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = std::fs::metadata(&out_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    assert!(std::fs::read_to_string(&out_file)
        .unwrap()
        .starts_with("prediction\n"));
}

#[test]
fn an_image_folder_with_a_link_cycle_is_read_once() {
    let p = Project::new().with(|dir| {
        for (k, class) in ["a", "b"].iter().enumerate() {
            let d = dir.join("imgs").join(class);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..3u8 {
                image::GrayImage::from_pixel(4, 4, image::Luma([k as u8 * 200 + i]))
                    .save(d.join(format!("{i}.png")))
                    .unwrap();
            }
            // A link back up: a cycle a naive walk would follow forever.
            std::os::unix::fs::symlink("..", d.join("up")).unwrap();
        }
    });
    let config = "[data]\nformat = \"images\"\ntrain = \"imgs\"\nchannels = 1\nvalid_split = 0\n\n[[model.layers]]\ntype = \"flatten\"\n\n[[model.layers]]\ntype = \"dense\"\nunits = 2\n";
    let p = p.file("i.toml", config);
    let out = p.kiln(&["check", "i.toml"]);
    assert!(out.status.success(), "{}", first_error_line(&out));
    assert!(stdout(&out).contains("a (3), b (3)"), "{}", stdout(&out));
}

#[test]
fn several_mpi_ranks_are_refused_rather_than_each_training_a_run() {
    let p = Project::new()
        .file("train.csv", table(60))
        .file("b.toml", BCE);
    let sweep = vec!["sweep", "b.toml", "--grid", "optimizer.lr=0.1,0.2"];
    // Built with MPI, train joins the launch's world (tests/mpi.rs); a sweep never does.
    let cases = if cfg!(feature = "mpi") {
        vec![("OMPI_COMM_WORLD_SIZE", sweep)]
    } else {
        vec![
            ("OMPI_COMM_WORLD_SIZE", vec!["train", "b.toml", "--quiet"]),
            ("PMI_SIZE", vec!["train", "b.toml", "--quiet"]),
            ("OMPI_COMM_WORLD_SIZE", sweep),
        ]
    };
    for (var, args) in cases {
        let out = std::process::Command::new(common::bin::KILN)
            .args(&args)
            .env(var, "2")
            .current_dir(p.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}: {}", stderr(&out));
        let line = first_error_line(&out);
        assert!(
            line.contains(&format!("one of 2 MPI ranks ({var}=2)")),
            "{line}"
        );
        assert!(!p.path().join("runs").exists(), "no run directory");
    }
    // One rank (mpirun -np 1) is a plain run.
    let out = std::process::Command::new(common::bin::KILN)
        .args(["train", "b.toml", "--quiet"])
        .env("OMPI_COMM_WORLD_SIZE", "1")
        .current_dir(p.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}
