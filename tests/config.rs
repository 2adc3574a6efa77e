//! Config parsing: defaults, overrides, and errors that name file, line, column and key.

use kiln::config;
use kiln::optim::OptimizerKind;

const BASE: &str = r#"name = "t"

[data]
train = "train.csv"

[[model.layers]]
type = "dense"
units = 4

[[model.layers]]
type = "dense"
units = 2

[train]
epochs = 3
"#;

fn err(text: &str, overrides: &[&str]) -> String {
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    config::parse(text, "c.toml", &o).unwrap_err().to_string()
}

#[test]
fn defaults_fill_everything_not_given() {
    let c = config::parse(BASE, "c.toml", &[]).unwrap();
    assert_eq!(c.seed, 42);
    assert!(matches!(c.optimizer.kind, OptimizerKind::Adam { .. }));
    assert_eq!(c.optimizer.lr, 1e-3);
    assert_eq!(c.train.batch_size, 32);
    assert_eq!(c.train.epochs, 3);
    // The resolved config round-trips through TOML.
    let again = config::parse(&config::to_toml(&c), "resolved.toml", &[]).unwrap();
    assert_eq!(again, c);
}

#[test]
fn overrides_are_toml_or_bare_strings_and_index_lists() {
    let o = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let c = config::parse(
        BASE,
        "c.toml",
        &o(&[
            "optimizer.lr=3e-4",
            "model.layers.1.units=7",
            "data.train=other.csv",
            "data.test=\"t.csv\"",
            "train.shuffle=false",
        ]),
    )
    .unwrap();
    assert_eq!(c.optimizer.lr, 3e-4);
    assert_eq!(c.model.layers[1].units, Some(7));
    assert_eq!(c.data.train.to_str(), Some("other.csv"));
    assert_eq!(
        c.data.test.as_deref().and_then(|p| p.to_str()),
        Some("t.csv")
    );
    assert!(!c.train.shuffle);
}

#[test]
fn misspelt_key_names_place_path_and_suggestion() {
    let text = BASE.replace("epochs = 3", "epoch = 3");
    assert_eq!(
        err(&text, &[]),
        "c.toml:15:1: train.epoch: unknown key; did you mean \"epochs\"? (known: epochs, batch_size, shuffle, metrics, grad_clip_norm, early_stopping, checkpoint, log_every_steps, limit_batches, max_time, precision, loss_scale, cuda_graphs)"
    );
    let text = BASE.replace("units = 2", "unit = 2");
    let e = err(&text, &[]);
    assert!(
        e.starts_with("c.toml:12:1: model.layers.1.unit: unknown key; did you mean \"units\"?"),
        "{e}"
    );
}

#[test]
fn bad_values_name_their_place() {
    let text = BASE.replace("epochs = 3", "epochs = \"three\"");
    let e = err(&text, &[]);
    assert!(
        e.starts_with("c.toml:15:1: train.epochs: invalid type: string \"three\""),
        "{e}"
    );
    let e = err(BASE, &["optimizer.type=adma"]);
    assert!(
        e.starts_with(
            "--set optimizer.type: optimizer.type: unknown value \"adma\"; did you mean \"adam\"?"
        ),
        "{e}"
    );
    let e = err(BASE, &["train.epochz=4"]);
    assert!(
        e.starts_with("--set train.epochz: train.epochz: unknown key; did you mean \"epochs\"?"),
        "{e}"
    );
    let e = err(BASE, &["model.layers.5.units=4"]);
    assert_eq!(
        e,
        "--set model.layers.5.units: model.layers has 2 entries, no index 5"
    );
    let e = err("[data]\ntrain = \n", &[]);
    assert!(e.starts_with("c.toml:2:9:"), "{e}");
    let e = err("[model]\nlayers = []\n", &[]);
    assert!(e.contains("missing key `data`"), "{e}");
}

#[test]
fn semantic_checks_report_every_problem() {
    let e = err(BASE, &["train.epochs=0", "optimizer.lr=-1"]);
    assert!(
        e.contains("train.epochs: must be at least 1")
            && e.contains("optimizer.lr: must be a positive number"),
        "{e}"
    );
    let e = err(BASE, &["optimizer.momentum=0.9"]);
    assert!(e.contains("apply to sgd only"), "{e}");
}
