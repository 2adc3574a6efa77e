//! Category and text columns through the real binary: types inferred or given, encoders fitted
//! on the training rows and stored in the run, applied alike by eval and predict, and the
//! mistakes a config can make with them reported at their place.

use std::path::Path;

mod common;

use common::bin::*;

/// A table a model learns only through its category column: label = yes when the colour is
/// red and x > 0, or the colour is not red and x < 0. `shop` is noise with two rare values.
fn category_table(rows: usize, seed: u64) -> String {
    let mut rng = kiln::Rng::new(seed);
    let mut text = String::from("color,x,shop,label\n");
    let colors = ["red", "green", "blue"];
    for i in 0..rows {
        let color = colors[i % 3];
        let x = rng.uniform() * 2.0 - 1.0;
        let shop = match i % 20 {
            0 => "rare1",
            1 => "rare2",
            k => ["north", "south"][k % 2],
        };
        let yes = (color == "red") == (x > 0.0);
        let label = if yes { "yes" } else { "no" };
        text.push_str(&format!("{color},{x:.4},{shop},{label}\n"));
    }
    text
}

const CATEGORY_CONFIG: &str = r#"name = "shops"
seed = 3

[data]
train = "train.csv"
test = "test.csv"
valid_split = 0.0

[data.columns.shop]
max_categories = 3

[[model.layers]]
type = "dense"
units = 16
activation = "relu"

[[model.layers]]
type = "dense"
units = 2

[optimizer]
type = "adam"
lr = 0.02

[train]
epochs = 40
batch_size = 32
"#;

/// Short "reviews": filler words with one word that decides the label somewhere in them.
fn text_table(rows: usize, seed: u64) -> String {
    let mut rng = kiln::Rng::new(seed);
    let filler = [
        "the", "film", "plot", "was", "a", "it", "and", "actors", "story", "quite",
    ];
    let good = ["great", "Wonderful", "good", "superb"];
    let bad = ["awful", "boring", "BAD", "dull"];
    let mut text = String::from("review,label\n");
    for i in 0..rows {
        let positive = i % 2 == 0;
        let len = 3 + (rng.uniform() * 8.0) as usize;
        let at = (rng.uniform() * len as f32) as usize;
        let mut words: Vec<&str> = (0..len)
            .map(|_| filler[(rng.uniform() * filler.len() as f32) as usize % filler.len()])
            .collect();
        let pool = if positive { &good } else { &bad };
        words.insert(at, pool[(rng.uniform() * 4.0) as usize % 4]);
        // A comma inside the cell: the cell is quoted.
        let label = if positive { "pos" } else { "neg" };
        text.push_str(&format!("\"{}, really\",{label}\n", words.join(" ")));
    }
    text
}

const TEXT_CONFIG: &str = r#"name = "reviews"
seed = 3

[data]
train = "train.csv"
test = "test.csv"
valid_split = 0.0

[data.columns.review]
type = "text"
max_len = 12

[[model.layers]]
type = "embedding"
dim = 8

[[model.layers]]
type = "sequence_pool"
mode = "max"

[[model.layers]]
type = "dense"
units = 2

[optimizer]
type = "adam"
lr = 0.05

[train]
epochs = 15
batch_size = 32
"#;

fn project(config: &str, train: &str, test: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.toml"), config).unwrap();
    std::fs::write(dir.path().join("train.csv"), train).unwrap();
    std::fs::write(dir.path().join("test.csv"), test).unwrap();
    dir
}

fn train_json(dir: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["train", "c.toml", "--json", "--quiet", "--run-dir", "run"];
    args.extend(extra);
    let out = kiln(dir, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(stdout(&out).trim()).unwrap()
}

fn predict(dir: &Path, input: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["predict", "run"];
    args.extend(extra);
    kiln_with_stdin(dir, &args, input.as_bytes())
}

#[test]
fn category_columns_are_one_hot_fitted_on_train_and_stored_in_the_run() {
    let p = project(
        CATEGORY_CONFIG,
        &category_table(600, 1),
        &category_table(200, 2),
    );
    let check = kiln(p.path(), &["check", "c.toml"]);
    assert!(check.status.success(), "{}", stderr(&check));
    let shown = stdout(&check);
    assert!(
        shown.contains("column \"color\": category, one-hot over 3 values and (other) (inferred: category: 3 distinct short values)"),
        "{shown}"
    );
    // shop keeps its 2 most frequent values; the rare ones fold into (other).
    assert!(
        shown.contains("column \"shop\": category, one-hot over 2 values and (other) (inferred"),
        "{shown}"
    );
    // x, then color's 4 slots, then shop's 3.
    assert!(
        shown.contains("3 feature columns (8 values a row)"),
        "{shown}"
    );

    let result = train_json(p.path(), &[]);
    // The rule needs the colour: without it a model is at chance.
    let acc = result["test"]["accuracy"].as_f64().unwrap();
    assert!(acc > 0.9, "test accuracy {acc}");

    let info = run_info(&p.path().join("run"));
    let columns = info["schema"]["columns"].as_array().unwrap();
    let color = columns.iter().find(|c| c["name"] == "color").unwrap();
    assert_eq!(color["type"], "category");
    assert_eq!(
        color["values"],
        serde_json::json!(["(other)", "blue", "green", "red"])
    );
    let shop = columns.iter().find(|c| c["name"] == "shop").unwrap();
    assert_eq!(
        shop["values"],
        serde_json::json!(["(other)", "north", "south"])
    );
    assert_eq!(info["schema"]["features"], serde_json::json!(["x"]));

    // Predict matches columns by name (any order), counts unseen values in one warning.
    let out = predict(
        p.path(),
        "shop,label,x,color\nnorth,?,0.5,red\nmoon,?,-0.5,purple\nsouth,?,-0.5,green\n",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!((lines[1], lines[3]), ("yes", "yes"), "{lines:?}");
    let log = stderr(&out);
    let warned: Vec<&str> = log.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warned.len(), 1, "one warning: {warned:?}");
    assert!(
        warned[0].contains(r#""color" 1 ("purple"); "shop" 1 ("moon")"#),
        "{warned:?}"
    );
    // A bad cell in the first rows: an error, and nothing on stdout, not even the header.
    let out = predict(p.path(), "color,x,shop\nred,oops,north\n", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert!(
        first_error_line(&out).contains("<stdin>:2: column \"x\""),
        "{}",
        stderr(&out)
    );
    // No rows at all: the header alone.
    let out = predict(p.path(), "color,x,shop\n", &[]);
    assert_eq!(stdout(&out), "prediction\n");
}

#[test]
fn text_columns_become_token_ids_read_by_an_embedding() {
    let p = project(TEXT_CONFIG, &text_table(800, 1), &text_table(200, 2));
    let check = kiln(p.path(), &["check", "c.toml"]);
    assert!(check.status.success(), "{}", stderr(&check));
    let shown = stdout(&check);
    assert!(
        shown.contains("column \"review\": text, word tokens, 12 per row, vocabulary of 22 (from data.columns)"),
        "{shown}"
    );
    let result = train_json(p.path(), &[]);
    let acc = result["test"]["accuracy"].as_f64().unwrap();
    assert!(acc > 0.95, "test accuracy {acc}");
    // The vocabulary is saved with the run: pad, unknown, then the most frequent first.
    let info = run_info(&p.path().join("run"));
    let vocab = info["schema"]["columns"][0]["vocab"].as_array().unwrap();
    assert_eq!(vocab[0], "<pad>");
    assert_eq!(vocab[1], "<unk>");
    assert!(
        vocab.iter().any(|t| t == "wonderful"),
        "lower-cased: {vocab:?}"
    );
    // Unknown words, an empty cell, full-width letters (NFKC folds them) and a text longer
    // than max_len all predict.
    let out = predict(
        p.path(),
        "review\n\"zebra superb\"\n\"\"\n\"ｇｒｅａｔ film\"\n\"awful the the the the the the the the the the the the the the\"\n",
        &["--proba"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert!(lines[1].starts_with("pos,"), "{lines:?}");
    assert!(lines[3].starts_with("pos,"), "full-width great: {lines:?}");
    assert!(lines[4].starts_with("neg,"), "{lines:?}");
    // eval reads a labelled file with the run's encoders.
    let out = kiln(p.path(), &["eval", "run", "--data", "test.csv", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["metrics"]["accuracy"].as_f64().unwrap(), acc);
}

#[test]
fn column_mistakes_are_errors_at_their_place() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "a column that is not a feature",
            CATEGORY_CONFIG,
            "[data.columns.colour]\ntype = \"category\"\n",
            "data.columns.colour: no feature column \"colour\"; did you mean \"color\"?",
        ),
        (
            "a text option on a category",
            CATEGORY_CONFIG,
            "[data.columns.color]\ntype = \"category\"\nmax_len = 5\n",
            "max_len does not apply to a category column",
        ),
        (
            "a text option on an inferred category",
            CATEGORY_CONFIG,
            "[data.columns.color]\ntokenizer = \"char\"\n",
            "data.columns.color: tokenizer does not apply to a category column",
        ),
        (
            "a text option at its default on a category",
            CATEGORY_CONFIG,
            "[data.columns.color]\ntype = \"category\"\nlowercase = true\n",
            "lowercase does not apply to a category column",
        ),
        (
            "an embedding on numbers",
            CATEGORY_CONFIG,
            "",
            "model.layers.0 (embedding): an embedding reads the token ids of one text column",
        ),
        (
            "an unknown type",
            CATEGORY_CONFIG,
            "[data.columns.color]\ntype = \"label\"\n",
            "data.columns.color.type: unknown value \"label\"; expected one of number, category, text",
        ),
        (
            "an unknown option",
            CATEGORY_CONFIG,
            "[data.columns.color]\nmax_catgories = 5\n",
            "max_catgories",
        ),
        (
            "a number column read as a number though it is words",
            CATEGORY_CONFIG,
            "[data.columns.color]\ntype = \"number\"\n",
            "train.csv:2: column \"color\": \"red\" is not a number",
        ),
    ];
    for (what, config, extra, want) in cases {
        // Keys added after the [data] table's own keys, before the layers.
        let mut config =
            config.replacen("[[model.layers]]", &format!("{extra}\n[[model.layers]]"), 1);
        if what.contains("embedding") {
            config = config.replacen(
                "type = \"dense\"\nunits = 16\nactivation = \"relu\"",
                "type = \"embedding\"\ndim = 4\nvocab = 10\ninputs = [\"numbers\"]\n\n[[model.layers]]\ntype = \"flatten\"",
                1,
            );
        }
        let p = project(&config, &category_table(60, 1), &category_table(30, 2));
        let out = kiln(p.path(), &["check", "c.toml"]);
        assert_eq!(out.status.code(), Some(2), "{what}: {}", stderr(&out));
        let line = first_error_line(&out);
        assert!(line.contains(want), "{what}: {line}");
    }
}

#[test]
fn text_model_mistakes_are_errors_at_their_place() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "a dense layer on token ids",
            "type = \"embedding\"\ndim = 8",
            "c.toml:13:1: model.layers.0 (dense): reads the token ids of text column \"review\"; a layer on text must be an embedding",
        ),
        (
            "a vocabulary smaller than the column's",
            "type = \"embedding\"\ndim = 8\nvocab = 5",
            "vocab = 5 is smaller than text column \"review\"'s vocabulary of 22 tokens",
        ),
    ];
    for (what, replace, want) in cases {
        let layer = if replace.contains("vocab") {
            replace.to_string()
        } else {
            "type = \"dense\"\nunits = 4".to_string()
        };
        let config = TEXT_CONFIG.replacen("type = \"embedding\"\ndim = 8", &layer, 1);
        let p = project(&config, &text_table(60, 1), &text_table(20, 2));
        let out = kiln(p.path(), &["check", "c.toml"]);
        assert_eq!(out.status.code(), Some(2), "{what}: {}", stderr(&out));
        let line = first_error_line(&out);
        assert!(line.contains(want), "{what}: {line}");
    }
}

/// Text beside a number and a category: a label that needs the review's word and the stars.
fn mixed_table(rows: usize, seed: u64) -> String {
    let mut rng = kiln::Rng::new(seed + 100);
    let mut table = String::from("review,stars,genre,label\n");
    for (i, l) in text_table(rows, seed).lines().skip(1).enumerate() {
        let (text, sentiment) = l.rsplit_once(',').unwrap();
        let stars = rng.uniform() * 5.0;
        let yes = (sentiment == "pos") == (stars > 2.5);
        let genre = ["drama", "comedy"][i % 2];
        let label = if yes { "yes" } else { "no" };
        table.push_str(&format!("{text},{stars:.2},{genre},{label}\n"));
    }
    table
}

const MIXED_LAYERS: &str = r#"[[model.layers]]
type = "embedding"
dim = 8
inputs = ["review"]

[[model.layers]]
type = "sequence_pool"
mode = "max"
name = "words"

[[model.layers]]
type = "concat"
inputs = ["words", "numbers", "genre"]

[[model.layers]]
type = "dense"
units = 16
activation = "relu"

[[model.layers]]
type = "dense"
units = 2
"#;

#[test]
fn text_beside_numbers_and_categories_is_read_by_name() {
    let start = TEXT_CONFIG.find("[[model.layers]]").unwrap();
    let end = TEXT_CONFIG.find("[optimizer]").unwrap();
    let config = format!(
        "{}{MIXED_LAYERS}\n{}",
        &TEXT_CONFIG[..start],
        &TEXT_CONFIG[end..]
    )
    .replace("epochs = 15", "epochs = 30")
    .replace("lr = 0.05", "lr = 0.02")
    .replace(
        "valid_split = 0.0",
        "valid_split = 0.0\nnormalize = \"standard\"",
    );
    let p = project(&config, &mixed_table(1000, 1), &mixed_table(300, 2));
    let check = kiln(p.path(), &["check", "c.toml"]);
    assert!(check.status.success(), "{}", stderr(&check));
    let shown = stdout(&check);
    assert!(
        shown.contains("concat") && shown.contains("words, numbers, genre"),
        "{shown}"
    );
    let result = train_json(p.path(), &[]);
    // Neither the words nor the stars alone do better than chance.
    let acc = result["test"]["accuracy"].as_f64().unwrap();
    assert!(acc > 0.9, "test accuracy {acc}");
    // The whole row mixes token ids with other values: an error naming the way out.
    let whole = config.replace("inputs = [\"review\"]", "inputs = [\"input\"]");
    std::fs::write(p.path().join("c.toml"), whole).unwrap();
    let out = kiln(p.path(), &["check", "c.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let line = first_error_line(&out);
    assert!(
        line.contains("model.layers.0 (embedding): reads the whole row")
            && line.contains("inputs = [\"review\"]"),
        "{line}"
    );
    // A dense layer on a text column read by name is the ids-as-magnitudes mistake too.
    let dense = config.replace(
        "type = \"embedding\"\ndim = 8\ninputs = [\"review\"]",
        "type = \"dense\"\nunits = 4\ninputs = [\"review\"]",
    );
    std::fs::write(p.path().join("c.toml"), dense).unwrap();
    let out = kiln(p.path(), &["check", "c.toml"]);
    assert!(
        first_error_line(&out).contains("a layer on text must be an embedding"),
        "{}",
        first_error_line(&out)
    );
}

#[test]
fn same_seed_gives_the_same_bits_with_text() {
    let p = project(TEXT_CONFIG, &text_table(200, 1), &text_table(50, 2));
    for dir in ["a", "b"] {
        let out = kiln(
            p.path(),
            &[
                "train",
                "c.toml",
                "--quiet",
                "--threads",
                "2",
                "--run-dir",
                dir,
                "--set",
                "train.epochs=2",
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(
        tensors(&p.path().join("a/model.safetensors")),
        tensors(&p.path().join("b/model.safetensors"))
    );
}

#[test]
fn a_row_identifier_among_the_numbers_is_warned_about() {
    let with_id = |text: String| {
        let mut out = String::new();
        for (i, line) in text.lines().enumerate() {
            let id = if i == 0 {
                "id".to_string()
            } else {
                (1000 + i).to_string()
            };
            out.push_str(&format!("{id},{line}\n"));
        }
        out
    };
    let p = project(
        CATEGORY_CONFIG,
        &with_id(category_table(120, 1)),
        &with_id(category_table(30, 2)),
    );
    let out = kiln(p.path(), &["check", "c.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .contains("warning: column \"id\": every training row holds a different whole number"),
        "{}",
        stdout(&out)
    );
    // x is not warned about (fractions), nor is a column of repeated whole numbers.
    assert_eq!(stdout(&out).matches("row identifier").count(), 1);
}
