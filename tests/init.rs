//! `kiln init` on every shipped dataset and on generated tables: the starter config it writes
//! passes `kiln check` and trains, with the choices it infers (target, task, loss, column types,
//! missing cells); its errors; and `kiln print-config`.

mod common;

use std::path::Path;
use std::process::Output;

use common::bin::*;

fn data(rel: &str) -> String {
    Path::new(ROOT).join(rel).display().to_string()
}

/// `kiln init ARGS` in the project; asserts success, one summary line on stderr and nothing on
/// stdout. Returns the summary and the written config, parsed.
fn init(p: &Project, args: &[&str], output: &str) -> (String, toml::Table) {
    let mut all = vec!["init"];
    all.extend_from_slice(args);
    let out = p.kiln(&all);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "stdout stays empty");
    let summary = stderr(&out);
    assert_eq!(summary.lines().count(), 1, "one line: {summary}");
    let text = std::fs::read_to_string(p.path().join(output)).unwrap();
    (summary, toml::from_str(&text).unwrap())
}

/// `kiln check CONFIG` then one epoch of `kiln train CONFIG`, both exit 0.
fn checks_and_trains(p: &Project, config: &str, extra: &[&str]) {
    let check = p.kiln(&["check", config]);
    assert!(check.status.success(), "check: {}", stderr(&check));
    let mut args = vec![
        "train",
        config,
        "--quiet",
        "--set",
        "train.epochs=1",
        "--runs",
        "runs",
    ];
    args.extend_from_slice(extra);
    let train = p.kiln(&args);
    assert!(train.status.success(), "train: {}", stderr(&train));
}

fn get<'a>(t: &'a toml::Table, path: &str) -> &'a toml::Value {
    let mut v = t
        .get(path.split('.').next().unwrap())
        .unwrap_or_else(|| panic!("no {path}"));
    for key in path.split('.').skip(1) {
        v = match key.parse::<usize>() {
            Ok(i) => &v[i],
            Err(_) => v.get(key).unwrap_or_else(|| panic!("no {path}")),
        };
    }
    v
}

fn str_at<'a>(t: &'a toml::Table, path: &str) -> &'a str {
    get(t, path).as_str().unwrap()
}

fn layers(t: &toml::Table) -> Vec<(String, Option<i64>)> {
    get(t, "model.layers")
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let kind = l["type"].as_str().unwrap().to_string();
            (kind, l.get("units").and_then(|u| u.as_integer()))
        })
        .collect()
}

fn last_units(t: &toml::Table) -> i64 {
    layers(t).last().unwrap().1.unwrap()
}

fn fails_with(out: &Output, code: i32, wanted: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let line = first_error_line(out);
    for w in wanted {
        assert!(line.contains(w), "{w:?} not in {line:?}");
    }
}

#[test]
fn iris_is_a_classification_of_species_from_four_numbers() {
    let p = Project::new();
    let (summary, c) = init(&p, &[&data("datasets/iris/iris.csv")], "iris.toml");
    assert!(
        summary.starts_with(
            "wrote iris.toml: classification of \"species\" (3 classes) from 4 features (4 number), 150 rows"
        ),
        "{summary}"
    );
    assert_eq!(str_at(&c, "name"), "iris");
    assert_eq!(str_at(&c, "data.target"), "species");
    assert_eq!(str_at(&c, "data.task"), "classification");
    assert_eq!(str_at(&c, "loss.type"), "cross_entropy");
    assert_eq!(str_at(&c, "data.normalize"), "standard");
    assert!(c["data"].get("missing").is_none(), "no missing cells");
    assert!(c["data"].get("columns").is_none(), "numbers need no type");
    assert_eq!(last_units(&c), 3);
    assert_eq!(
        str_at(&c, "train.early_stopping.monitor"),
        "valid.loss",
        "early stopping on the validation split"
    );
    assert!(get(&c, "data.valid_split").as_float().unwrap() > 0.0);
    checks_and_trains(&p, "iris.toml", &[]);
}

#[test]
fn linreg_is_a_regression_of_y_with_mse() {
    let p = Project::new();
    let (summary, c) = init(&p, &[&data("datasets/linreg/linreg.csv")], "linreg.toml");
    assert!(
        summary.contains("regression of \"y\" from 1 feature (1 number), 100 rows"),
        "{summary}"
    );
    assert_eq!(str_at(&c, "data.task"), "regression");
    assert_eq!(str_at(&c, "loss.type"), "mse");
    assert_eq!(str_at(&c, "data.target_normalize"), "standard");
    assert_eq!(last_units(&c), 1);
    checks_and_trains(&p, "linreg.toml", &[]);
}

#[test]
fn penguins_fill_missing_numbers_and_read_islands_and_sex_as_categories() {
    let p = Project::new();
    let (summary, c) = init(&p, &[&data("datasets/penguins/train.csv")], "penguins.toml");
    assert_eq!(
        summary.trim(),
        "wrote penguins.toml: classification of \"species\" (3 classes) from 7 features (5 number, 2 category), 275 rows; missing cells in 4 number columns filled with the mean"
    );
    assert_eq!(str_at(&c, "data.target"), "species", "named like a target");
    assert_eq!(str_at(&c, "data.missing"), "mean");
    assert_eq!(str_at(&c, "data.columns.island.type"), "category");
    assert_eq!(str_at(&c, "data.columns.sex.type"), "category");
    let columns = get(&c, "data.columns").as_table().unwrap();
    assert_eq!(
        columns.len(),
        2,
        "numbers (year too) are inferred: {columns:?}"
    );
    assert_eq!(last_units(&c), 3);
    let text = std::fs::read_to_string(p.path().join("penguins.toml")).unwrap();
    assert!(
        text.contains("bill_length_mm     numbers; 2 missing (filled with the mean)"),
        "each column's type and reason: {text}"
    );
    assert!(
        text.contains("# test = \""),
        "the test file beside it is named"
    );
    checks_and_trains(&p, "penguins.toml", &[]);
}

#[test]
fn spam_reads_its_text_through_an_embedding() {
    let p = Project::new();
    let (summary, c) = init(&p, &[&data("datasets/spam/train.csv.gz")], "spam.toml");
    assert!(
        summary
            .contains("classification of \"label\" (2 classes) from 1 feature (1 text), 4686 rows"),
        "{summary}"
    );
    assert_eq!(str_at(&c, "data.columns.text.type"), "text");
    let kinds: Vec<String> = layers(&c).into_iter().map(|(k, _)| k).collect();
    assert_eq!(&kinds[..2], ["embedding", "sequence_pool"]);
    assert!(c["data"].get("normalize").is_none(), "no number columns");
    checks_and_trains(&p, "spam.toml", &[]);
}

#[test]
fn mnist_csv_takes_its_first_column_label_as_the_target() {
    let p = Project::new();
    let (summary, c) = init(
        &p,
        &[
            &data("datasets/mnist/train.csv.gz"),
            "--output",
            "digits.toml",
        ],
        "digits.toml",
    );
    assert!(
        summary.contains(
            "classification of \"label\" (10 classes) from 784 features (784 number), 8000 rows"
        ),
        "{summary}"
    );
    assert_eq!(
        str_at(&c, "name"),
        "mnist",
        "train.csv is named after its folder"
    );
    assert_eq!(str_at(&c, "data.task"), "classification");
    assert_eq!(last_units(&c), 10);
    assert!(matches!(layers(&c)[0], (ref k, Some(256)) if k == "dense"));
    checks_and_trains(&p, "digits.toml", &[]);
}

#[test]
fn an_image_folder_gets_a_convnet_on_grey_images_at_their_size() {
    let p = Project::new();
    // The shipped layout: train/ and test/ folders of class folders.
    let (summary, c) = init(&p, &[&data("datasets/mnist/images")], "images.toml");
    assert!(
        summary.contains("classification of 10 classes (class folders) from grey images at 28×28, 8000 training images; test: "),
        "{summary}"
    );
    assert_eq!(str_at(&c, "data.format"), "images");
    assert!(str_at(&c, "data.train").ends_with("images/train"));
    assert!(str_at(&c, "data.test").ends_with("images/test"));
    assert_eq!(get(&c, "data.channels").as_integer(), Some(1));
    let size: Vec<i64> = get(&c, "data.size")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_integer().unwrap())
        .collect();
    assert_eq!(size, [28, 28]);
    assert_eq!(layers(&c)[0].0, "conv2d");
    assert_eq!(last_units(&c), 10);
    let check = p.kiln(&["check", "images.toml"]);
    assert!(check.status.success(), "{}", stderr(&check));
    // A class folder itself, trained: small generated RGB images.
    let p = p.with(|dir| {
        for (k, class) in ["left", "right"].iter().enumerate() {
            let d = dir.join("shapes").join(class);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..12u32 {
                let img = image::RgbImage::from_fn(10, 8, |x, _| {
                    let lit = (x < 5) == (k == 0);
                    image::Rgb([if lit { 200 } else { 10 }, (i * 9) as u8, 30])
                });
                img.save(d.join(format!("{i}.png"))).unwrap();
            }
        }
    });
    let (summary, c) = init(&p, &["shapes"], "shapes.toml");
    assert!(
        summary.contains("from colour images at 8×10, 24 training images"),
        "{summary}"
    );
    assert_eq!(get(&c, "data.channels").as_integer(), Some(3));
    checks_and_trains(&p, "shapes.toml", &[]);
}

/// `id,color,weight,review,outcome`: a row identifier, a category and a number with missing
/// cells, text, and a target column named like one.
fn mixed_table(rows: usize) -> String {
    const WORDS: [&str; 8] = [
        "good", "bad", "fine", "broken", "great", "awful", "cheap", "solid",
    ];
    let mut rng = kiln::Rng::new(11);
    let mut text = String::from("id,color,weight,review,outcome\n");
    for i in 0..rows {
        let color = ["red", "green", "blue"][(rng.uniform() * 3.0) as usize % 3];
        let weight = rng.uniform() * 10.0;
        let review: Vec<&str> = (0..6)
            .map(|_| WORDS[(rng.uniform() * 8.0) as usize % 8])
            .collect();
        let outcome = if (color == "red") != (weight > 5.0) {
            "yes"
        } else {
            "no"
        };
        let color = if i % 23 == 5 { "" } else { color };
        let weight = if i % 17 == 3 {
            "NA".into()
        } else {
            format!("{weight:.2}")
        };
        text.push_str(&format!(
            "{},{color},{weight},\"{}\",{outcome}\n",
            i + 1,
            review.join(" ")
        ));
    }
    text
}

#[test]
fn a_table_with_categories_text_and_missing_cells_reads_each_part_by_name() {
    let p = Project::new().file("shop.csv", mixed_table(300));
    let (summary, c) = init(&p, &["shop.csv"], "shop.toml");
    assert_eq!(
        summary.trim(),
        "wrote shop.toml: classification of \"outcome\" (2 classes) from 3 features (1 number, 1 category, 1 text), 300 rows; missing cells in 1 number column filled with the mean; \"id\" left out (a row identifier?)"
    );
    assert_eq!(str_at(&c, "data.train"), "shop.csv", "the path as given");
    assert_eq!(str_at(&c, "data.missing"), "mean");
    assert_eq!(str_at(&c, "data.columns.color.type"), "category");
    assert_eq!(str_at(&c, "data.columns.review.type"), "text");
    let features: Vec<&str> = get(&c, "data.features")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(features, ["color", "weight", "review"]);
    let concat = get(&c, "model.layers.2");
    assert_eq!(concat["type"].as_str(), Some("concat"));
    let inputs: Vec<&str> = concat["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(inputs, ["review_mean", "numbers", "color"]);
    checks_and_trains(&p, "shop.toml", &[]);
}

#[test]
fn the_target_is_the_last_column_or_the_one_asked_for() {
    let mut text = String::from("a,b,score\n");
    for i in 0..80 {
        let a = i as f64 * 0.37 % 5.0;
        text.push_str(&format!("{a:.2},{},{:.3}\n", i % 7, a * 1.5 + 0.25));
    }
    let p = Project::new().file("t.csv", text);
    let (summary, c) = init(&p, &["t.csv"], "t.toml");
    assert_eq!(str_at(&c, "data.target"), "score");
    assert_eq!(str_at(&c, "data.task"), "regression", "{summary}");
    let written = std::fs::read_to_string(p.path().join("t.toml")).unwrap();
    assert!(written.contains("# the last column"), "{written}");
    // A few whole numbers are classes (kiln's own rule), and --output - prints the config.
    let out = p.kiln(&["init", "t.csv", "--target", "b", "--output", "-"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let c: toml::Table = toml::from_str(&stdout(&out)).unwrap();
    assert_eq!(str_at(&c, "data.target"), "b");
    assert_eq!(str_at(&c, "data.task"), "classification");
    assert_eq!(str_at(&c, "loss.type"), "cross_entropy");
    assert_eq!(last_units(&c), 7);
    assert!(stderr(&out).contains("(7 classes)"), "{}", stderr(&out));
}

#[test]
fn row_identifiers_are_left_out_whether_numbers_or_names() {
    let mut text = String::from("id,user,x,label\n");
    for i in 0..60 {
        let x = (i * 7 % 11) as f64 / 10.0;
        let label = if x > 0.5 { "hi" } else { "lo" };
        text.push_str(&format!("{},u{i:04},{x},{label}\n", 1000 + i));
    }
    let p = Project::new().file("ids.csv", text);
    let (summary, c) = init(&p, &["ids.csv"], "ids.toml");
    let features: Vec<&str> = get(&c, "data.features")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(features, ["x"], "{summary}");
    assert!(
        summary.contains("\"id\" left out") && summary.contains("\"user\" left out"),
        "{summary}"
    );
    checks_and_trains(&p, "ids.toml", &[]);
}

#[test]
fn bad_input_is_exit_2_naming_the_file_and_place() {
    let p = Project::new()
        .file("empty.csv", "")
        .file("header.csv", "a,b\n")
        .file("one.csv", "x\n1\n2\n")
        .file("same.csv", "a,label\n1,x\n2,x\n3,x\n")
        .file("ok.csv", "a,label\n1,x\n2,y\n3,x\n4,y\n");
    fails_with(
        &p.kiln(&["init", "nothing.csv"]),
        2,
        &["nothing.csv", "no such file"],
    );
    fails_with(&p.kiln(&["init", "empty.csv"]), 2, &["empty.csv", "empty"]);
    fails_with(
        &p.kiln(&["init", "header.csv"]),
        2,
        &["header.csv", "no data rows"],
    );
    fails_with(&p.kiln(&["init", "one.csv"]), 2, &["one.csv", "one column"]);
    fails_with(
        &p.kiln(&["init", "same.csv"]),
        2,
        &["same.csv", "\"label\" holds one value"],
    );
    fails_with(
        &p.kiln(&["init", "ok.csv", "--target", "lable"]),
        2,
        &["ok.csv", "no column \"lable\"", "did you mean \"label\""],
    );
    let out = p.kiln(&["init", "ok.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = std::fs::read_to_string(p.path().join("ok.toml")).unwrap();
    std::fs::write(p.path().join("ok.toml"), "mine").unwrap();
    fails_with(
        &p.kiln(&["init", "ok.csv"]),
        2,
        &["ok.toml", "already exists", "--force"],
    );
    assert_eq!(
        std::fs::read_to_string(p.path().join("ok.toml")).unwrap(),
        "mine"
    );
    let out = p.kiln(&["init", "ok.csv", "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(p.path().join("ok.toml")).unwrap(),
        before
    );
    fails_with(
        &p.kiln(&["init", "ok.csv", "--output", "ok.csv", "--force"]),
        2,
        &["ok.csv", "that is the data"],
    );
    let images = data("datasets/mnist/images");
    fails_with(
        &p.kiln(&["init", &images, "--target", "x"]),
        2,
        &["--target x"],
    );
    let leftovers: Vec<String> = std::fs::read_dir(p.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files: {leftovers:?}");
}

#[test]
fn print_config_shows_the_resolved_config_with_overrides() {
    let p = Project::new().file(
        "c.toml",
        "[data]\ntrain = \"d.csv\"\n\n[[model.layers]]\ntype = \"dense\"\nunits = 2\n",
    );
    let out = p.kiln(&["print-config", "c.toml", "--set", "train.epochs=7"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let c: toml::Table = toml::from_str(&stdout(&out)).unwrap();
    assert_eq!(str_at(&c, "name"), "run", "defaults filled");
    assert_eq!(get(&c, "seed").as_integer(), Some(42));
    assert_eq!(get(&c, "train.batch_size").as_integer(), Some(32));
    assert_eq!(str_at(&c, "optimizer.type"), "adam");
    assert_eq!(
        get(&c, "train.epochs").as_integer(),
        Some(7),
        "--set applied"
    );
    fails_with(
        &p.kiln(&["print-config", "c.toml", "--set", "train.epoch=3"]),
        2,
        &["--set train.epoch", "did you mean \"epochs\""],
    );
    let bad = p.file(
        "bad.toml",
        "[data]\ntrain = \"d.csv\"\nnormalise = \"standard\"\n",
    );
    fails_with(
        &bad.kiln(&["print-config", "bad.toml"]),
        2,
        &[
            "bad.toml:3:1",
            "data.normalise",
            "did you mean \"normalize\"",
        ],
    );
    // What it prints is a config kiln reads back to the same thing.
    let iris = data("configs/iris.toml");
    let out = kiln(Path::new(ROOT), &["print-config", &iris]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = bad.path().join("printed.toml");
    std::fs::write(&printed, stdout(&out)).unwrap();
    let again = kiln(
        Path::new(ROOT),
        &["print-config", printed.to_str().unwrap()],
    );
    assert_eq!(stdout(&again), stdout(&out));
}
