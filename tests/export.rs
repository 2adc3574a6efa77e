//! `kiln export` checked by the consumer users run ONNX files in: onnx's checker and
//! onnxruntime (tests/onnx/check.py) give what `kiln predict --proba` gives, to 1e-5, at batch
//! 1 and 1,000. Python with onnx, onnxruntime, numpy and Pillow comes from KILN_ONNX_PYTHON
//! (default `python3`); without them the checks skip with a visible line, unless
//! REQUIRE_ONNX=1 (`.ci/run` installs them and sets it).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::bin::{first_error_line, kiln, predict_jsonl, stderr, train_shipped, ROOT};

/// The Python that has onnxruntime, or None (the test then skips, loudly).
fn onnx_python() -> Option<String> {
    let python = std::env::var("KILN_ONNX_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import onnx, onnxruntime, numpy, PIL"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    if std::env::var("REQUIRE_ONNX").is_ok_and(|v| v == "1") {
        panic!("REQUIRE_ONNX=1 but {python} cannot import onnx, onnxruntime, numpy and PIL");
    }
    eprintln!("SKIPPED: {python} lacks onnx/onnxruntime/numpy/Pillow (set KILN_ONNX_PYTHON)");
    None
}

/// Export `run`, predict `input` with kiln, and check the ONNX model against it.
fn export_and_check(python: &str, dir: &Path, run: &Path, input: &str) -> serde_json::Value {
    let model = dir.join("model.onnx");
    let out = kiln(
        dir,
        &[
            "export",
            run.to_str().unwrap(),
            "--output",
            model.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "export: {}", stderr(&out));
    let preds = dir.join("preds.jsonl");
    let out = predict_jsonl(run, input, &["--output", preds.to_str().unwrap()]);
    assert!(out.status.success(), "predict: {}", stderr(&out));
    let report = onnxruntime_agrees(python, Path::new(ROOT), &model, Path::new(input), &preds);
    eprintln!("{}: {report}", run.display());
    serde_json::from_str(report.trim()).unwrap()
}

/// tests/onnx/check.py run in `cwd`: onnxruntime on `model` and `input` gives `preds` (kiln
/// predict's JSON lines); its report.
fn onnxruntime_agrees(
    python: &str,
    cwd: &Path,
    model: &Path,
    input: &Path,
    preds: &Path,
) -> String {
    let check = Command::new(python)
        .arg(PathBuf::from(ROOT).join("tests/onnx/check.py"))
        .args([model, input, preds])
        .current_dir(cwd)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout).to_string();
    assert!(
        check.status.success(),
        "{}: onnxruntime differs from kiln predict: {report}\n{}",
        model.display(),
        String::from_utf8_lossy(&check.stderr)
    );
    report
}

/// `run` (a path in `dir`) exported at each opset and checked against the same predictions.
fn agrees_at_opsets(
    python: &str,
    dir: &Path,
    run: &str,
    opsets: &[&str],
    input: &str,
    preds: &str,
) {
    for opset in opsets {
        let model = format!("{run}{opset}.onnx");
        let out = kiln(dir, &["export", run, "--opset", opset, "-o", &model]);
        assert!(out.status.success(), "{}", stderr(&out));
        let (input, preds) = (Path::new(input), Path::new(preds));
        onnxruntime_agrees(python, dir, Path::new(&model), input, preds);
    }
}

/// The first `rows` data rows of the MNIST test CSV, as a plain CSV file.
fn mnist_test_rows(dir: &Path, rows: usize) -> PathBuf {
    use std::io::{BufRead, BufReader, Write};
    let gz = std::fs::File::open(PathBuf::from(ROOT).join("datasets/mnist/test.csv.gz")).unwrap();
    let lines = BufReader::new(flate2::read::GzDecoder::new(gz)).lines();
    let path = dir.join("test.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    for line in lines.take(rows + 1) {
        writeln!(f, "{}", line.unwrap()).unwrap();
    }
    path
}

#[test]
fn shipped_mlp_and_linreg_match_onnxruntime() {
    let Some(py) = onnx_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mlp = dir.path().join("mlp");
    let out = train_shipped("configs/mnist_mlp.toml", &mlp, &["--set", "train.epochs=1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let input = mnist_test_rows(dir.path(), 1000);
    let report = export_and_check(&py, dir.path(), &mlp, input.to_str().unwrap());
    assert_eq!(report["rows"], 1000);
    assert_eq!(
        report["outputs"],
        serde_json::json!(["probabilities", "class"])
    );

    let lin = dir.path().join("linreg");
    let out = train_shipped("configs/linreg.toml", &lin, &["--set", "train.epochs=200"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = export_and_check(&py, dir.path(), &lin, "datasets/linreg/linreg.csv");
    assert_eq!(report["outputs"], serde_json::json!(["value"]));
}

#[test]
fn image_models_with_conv_batchnorm_pools_and_residuals_match_onnxruntime() {
    let Some(py) = onnx_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The shipped CNN, and the residual network (conv + batchnorm + add + max pool + global
    // average pool), one epoch each, on the 2,000 test PNGs.
    for config in ["configs/mnist_cnn.toml", "configs/mnist_resnet.toml"] {
        let run = dir.path().join(config.replace(['/', '.'], "_"));
        let out = train_shipped(config, &run, &["--set", "train.epochs=1"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let report = export_and_check(&py, dir.path(), &run, "datasets/mnist/images/test");
        assert_eq!(report["rows"], 2000);
    }
}

/// A table with string classes, a missing cell, standardization, strided and padded conv
/// layers over a reshaped row, average pooling, batchnorm after a dense layer, dropout and
/// every activation.
const TABLE_CONFIG: &str = r#"
name = "table"
seed = 3
[data]
train = "train.csv"
target = "species"
normalize = "standard"
missing = "mean"
valid_split = 0.0
[[model.layers]]
type = "reshape"
shape = [1, 4, 4]
[[model.layers]]
type = "conv2d"
filters = 3
kernel = 3
padding = "same"
activation = "leaky_relu"
[[model.layers]]
type = "conv2d"
filters = 4
kernel = 2
stride = 2
activation = "tanh"
[[model.layers]]
type = "avgpool2d"
kernel = 2
[[model.layers]]
type = "flatten"
[[model.layers]]
type = "dense"
units = 8
activation = "gelu"
[[model.layers]]
type = "batchnorm"
[[model.layers]]
type = "sigmoid"
[[model.layers]]
type = "dropout"
rate = 0.2
[[model.layers]]
type = "dense"
units = 3
activation = "softmax"
[optimizer]
type = "adam"
lr = 0.01
[train]
epochs = 5
batch_size = 16
"#;

fn table_csv(rows: usize, seed: u64) -> String {
    let mut rng = kiln::Rng::new(seed);
    let names = ["setosa", "versicolor", "virginica"];
    let mut s: String = (0..16).map(|i| format!("f{i},")).collect();
    s.push_str("species\n");
    for r in 0..rows {
        let class = r % 3;
        for i in 0..16 {
            if r == 5 && i == 2 {
                s.push(','); // a missing cell: filled with the training mean
                continue;
            }
            let v = 10.0 * class as f32 + 3.0 * rng.uniform() + i as f32;
            s.push_str(&format!("{v},"));
        }
        s.push_str(names[class]);
        s.push('\n');
    }
    s
}

#[test]
fn a_table_with_string_classes_missing_cells_and_every_activation_matches_onnxruntime() {
    let Some(py) = onnx_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train.csv"), table_csv(120, 1)).unwrap();
    std::fs::write(dir.path().join("new.csv"), table_csv(1000, 2)).unwrap();
    std::fs::write(dir.path().join("table.toml"), TABLE_CONFIG).unwrap();
    let run = dir.path().join("run");
    let out = kiln(
        dir.path(),
        &["train", "table.toml", "--quiet", "--run-dir", "run"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let input = dir.path().join("new.csv");
    let report = export_and_check(&py, dir.path(), &run, input.to_str().unwrap());
    assert_eq!(report["rows"], 1000);
    // The same at the lowest opset kiln writes (GELU composed from Erf before opset 20).
    let model = dir.path().join("m13.onnx");
    let out = kiln(
        dir.path(),
        &["export", "run", "--opset", "13", "-o", "m13.onnx"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(model.is_file());
}

/// Recurrent layers in both directions, layernorm and every sequence pooling mode, joined.
const SEQUENCE_CONFIG: &str = r#"
name = "seq"
seed = 5
[data]
train = "ROOT/datasets/mnist/train.csv.gz"
target = "label"
scale = 0.00392156862745098
valid_split = 0.0
[[model.layers]]
type = "reshape"
shape = [28, 28]
[[model.layers]]
type = "gru"
units = 12
bidirectional = true
return_sequences = true
[[model.layers]]
type = "layernorm"
name = "norm"
[[model.layers]]
type = "lstm"
units = 8
bidirectional = true
return_sequences = true
name = "l2"
[[model.layers]]
type = "sequence_pool"
mode = "max"
name = "pmax"
[[model.layers]]
type = "sequence_pool"
mode = "last"
inputs = ["l2"]
name = "plast"
[[model.layers]]
type = "sequence_pool"
mode = "mean"
inputs = ["norm"]
name = "pmean"
[[model.layers]]
type = "concat"
inputs = ["pmax", "plast", "pmean"]
[[model.layers]]
type = "dense"
units = 10
[train]
epochs = 1
batch_size = 128
"#;

#[test]
fn recurrent_layers_layernorm_and_sequence_pooling_match_onnxruntime() {
    let Some(py) = onnx_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = mnist_test_rows(dir.path(), 1000);
    let rnn = dir.path().join("rnn");
    let out = train_shipped(
        "configs/mnist_rnn.toml",
        &rnn,
        &["--set", "train.epochs=1", "--set", "train.batch_size=256"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    export_and_check(&py, dir.path(), &rnn, input.to_str().unwrap());

    std::fs::write(
        dir.path().join("seq.toml"),
        SEQUENCE_CONFIG.replace("ROOT", ROOT),
    )
    .unwrap();
    let out = kiln(
        dir.path(),
        &["train", "seq.toml", "--quiet", "--run-dir", "seq"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = Command::new(common::bin::KILN)
        .args([
            "predict",
            "seq",
            input.to_str().unwrap(),
            "--proba",
            "--format",
            "jsonl",
            "--output",
            "seq.jsonl",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Layernorm composed before opset 17, reductions' axes as inputs from 18.
    let input = input.to_str().unwrap();
    agrees_at_opsets(
        &py,
        dir.path(),
        "seq",
        &["13", "17", "18"],
        input,
        "seq.jsonl",
    );
}

#[test]
fn category_columns_become_string_inputs_that_match_onnxruntime() {
    let Some(py) = onnx_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("penguins");
    let out = train_shipped("configs/penguins.toml", &run, &["--set", "train.epochs=5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The test rows with every measurement present, one island unseen in training and one
    // species missing: both take the "(other)" slot in kiln and in the ONNX model.
    let text =
        std::fs::read_to_string(PathBuf::from(ROOT).join("datasets/penguins/test.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let names: Vec<&str> = header.split(',').collect();
    let col = |n: &str| names.iter().position(|h| *h == n).unwrap();
    let (island, species) = (col("island"), col("species"));
    let mut rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(String::from).collect::<Vec<_>>())
        .filter(|r: &Vec<String>| {
            r.iter()
                .enumerate()
                .all(|(i, v)| names[i] == "sex" || (!v.is_empty() && v != "NA"))
        })
        .collect();
    rows[0][island] = "Atlantis".into();
    rows[1][species] = String::new();
    let mut csv = format!("{header}\n");
    for r in &rows {
        csv.push_str(&format!("{}\n", r.join(",")));
    }
    let input = dir.path().join("input.csv");
    std::fs::write(&input, csv).unwrap();
    let report = export_and_check(&py, dir.path(), &run, input.to_str().unwrap());
    assert_eq!(report["rows"], rows.len());
}

/// Reviews (word tokens: mixed case, punctuation, accents, ligatures and full-width letters
/// that NFKC folds, empty cells), codes (character tokens, case kept), a number with missing
/// cells and a category: every kind of input an exported text model takes.
fn reviews_csv(rows: usize, seed: u64) -> String {
    let mut rng = kiln::Rng::new(seed);
    let mut pick =
        |items: &[&'static str]| items[(rng.uniform() * items.len() as f32) as usize % items.len()];
    let good = ["Great", "fine", "LOVED", "superb", "nice", "café"];
    let bad = ["awful", "Poor", "hated", "bad", "dull", "naïve"];
    let filler = [
        "the",
        "a",
        "movie",
        "plot",
        "it's",
        "!",
        "was",
        "really",
        "?",
        "ﬁlm",
        "Ｆｕｌｌ",
    ];
    let mut s = String::from("review,code,stars,genre,label\n");
    for r in 0..rows {
        let positive = r % 2 == 0;
        let words = (r * 7 + 3) % 15; // 0 to 14 words
        let review: Vec<&str> = (0..words)
            .map(|w| match (w + r) % 3 {
                0 => pick(if positive { &good } else { &bad }),
                _ => pick(&filler),
            })
            .collect();
        let letters = if positive {
            ["A", "b", "X", "y"]
        } else {
            ["a", "B", "x", "Y"]
        };
        let code: String = (0..(r % 9)).map(|_| pick(&letters)).collect();
        let stars = match r % 17 {
            0 => "NA".to_string(),
            k => format!("{:.2}", 3.0 + f32::from(positive) + k as f32 / 17.0),
        };
        let genre = pick(&["drama", "comedy", "horror"]);
        let label = if positive { "pos" } else { "neg" };
        s.push_str(&format!(
            "\"{}\",{code},{stars},{genre},{label}\n",
            review.join(" ")
        ));
    }
    s
}

/// Two text columns, each through its own embedding, into every sequence layer: a
/// transformer encoder (norm first, GELU), self-attention, bidirectional LSTM, GRUs with and
/// without `return_sequences`, and pooling by mean, max and last real step; one branch reads
/// the padded steps too (flatten), where kiln carries the state over.
const TEXT_CONFIG: &str = r#"seed = 3
[data]
train = "train.csv"
target = "label"
missing = "mean"
[data.columns.review]
type = "text"
max_len = 12
[data.columns.code]
type = "text"
tokenizer = "char"
lowercase = false
max_len = 7
[data.columns.genre]
type = "category"

[[model.layers]]
type = "embedding"
dim = 8
positional = true
inputs = ["review"]
name = "review_ids"

[[model.layers]]
type = "embedding"
dim = 4
inputs = ["code"]

[[model.layers]]
type = "lstm"
units = 6
bidirectional = true
return_sequences = true

[[model.layers]]
type = "attention"
heads = 2

[[model.layers]]
type = "sequence_pool"
mode = "last"
name = "code_last"

[[model.layers]]
type = "transformer_encoder"
heads = 2
ff_units = 16
blocks = 2
norm_first = true
activation = "gelu"
inputs = ["review_ids"]

[[model.layers]]
type = "sequence_pool"
mode = "mean"
name = "review_mean"

[[model.layers]]
type = "gru"
units = 5
inputs = ["review_ids"]
name = "review_gru"

[[model.layers]]
type = "embedding"
dim = 4
inputs = ["code"]
name = "code_vec"

[[model.layers]]
type = "lstm"
units = 3
return_sequences = true

[[model.layers]]
type = "sequence_pool"
mode = "max"
name = "code_max"

[[model.layers]]
type = "gru"
units = 2
return_sequences = true
inputs = ["code_vec"]

[[model.layers]]
type = "flatten"
name = "code_steps"

[[model.layers]]
type = "concat"
inputs = ["review_mean", "code_last", "review_gru", "code_max", "code_steps", "numbers", "genre"]

[[model.layers]]
type = "dense"
units = 2

[train]
epochs = 3
batch_size = 32"#;

#[test]
fn text_columns_embeddings_attention_and_padded_sequences_match_onnxruntime() {
    let Some(py) = onnx_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train.csv"), reviews_csv(400, 1)).unwrap();
    std::fs::write(dir.path().join("new.csv"), reviews_csv(300, 2)).unwrap();
    std::fs::write(dir.path().join("text.toml"), TEXT_CONFIG).unwrap();
    let out = kiln(
        dir.path(),
        &["train", "text.toml", "--quiet", "--run-dir", "run"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let input = dir.path().join("new.csv");
    let run = dir.path().join("run");
    let report = export_and_check(&py, dir.path(), &run, input.to_str().unwrap());
    assert_eq!(report["rows"], 300);
    // GELU and layernorm composed before opsets 20 and 17, reductions' axes inputs from 18.
    agrees_at_opsets(
        &py,
        dir.path(),
        "run",
        &["13", "18", "21"],
        "new.csv",
        "preds.jsonl",
    );
}

#[test]
fn an_opset_kiln_does_not_write_or_a_file_that_is_no_checkpoint_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = train_shipped("configs/linreg.toml", &run, &["--set", "train.epochs=1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for opset in ["9", "22"] {
        let out = kiln(
            dir.path(),
            &["export", "run", "--opset", opset, "-o", "m.onnx"],
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = first_error_line(&out);
        assert!(
            err.contains("--opset") && err.contains(&format!("{opset} is not in 13..=21")),
            "{err}"
        );
        assert!(!dir.path().join("m.onnx").exists());
    }
    // A file of the run that is not a checkpoint names the way out.
    let out = kiln(dir.path(), &["export", "run/config.toml", "-o", "m.onnx"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = first_error_line(&out);
    assert!(
        err.contains("run/config.toml: not a run directory or a checkpoint (.safetensors); give the run's folder, run"),
        "{err}"
    );
}
