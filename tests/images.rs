//! Image folders end to end on small generated folders: class order, grey and RGB, resizing,
//! corrupt files, empty classes, predict and eval on folders; and mnist_cnn's accuracy floor.

mod common;

use std::path::Path;

use common::bin::*;

/// Classes differ by where a bright square sits; images are 10×12 RGB (the loader converts
/// and resizes). Folder names are chosen so that sorting matters.
fn write_folder(root: &Path, per_class: usize, seed: u64) {
    let mut rng = kiln::Rng::new(seed);
    for (k, class) in ["b_right", "a_left", "c_middle"].iter().enumerate() {
        let dir = root.join(class).join("nested");
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let img = image::RgbImage::from_fn(12, 10, |x, y| {
                let lit = (x as usize / 4) == [2, 0, 1][k] && (2..8).contains(&y);
                let noise = (rng.uniform() * 40.0) as u8;
                let v = if lit { 200 + noise / 4 } else { noise };
                image::Rgb([v, v / 2, 255 - v])
            });
            let ext = if i % 3 == 0 { "PNG" } else { "png" }; // extensions match case-insensitively
            img.save(dir.join(format!("{i:03}.{ext}"))).unwrap();
        }
    }
}

const CONFIG: &str = r#"name = "shapes"
seed = 3

[data]
format = "images"
train = "train"
test = "test"
valid_split = 0.2
channels = 1
size = [8, 8]
normalize = "standard"
augment = { flip_horizontal = false, random_crop = 1 }

[[model.layers]]
type = "conv2d"
filters = 4
kernel = 3
padding = "same"
activation = "relu"

[[model.layers]]
type = "batchnorm"

[[model.layers]]
type = "maxpool2d"

[[model.layers]]
type = "flatten"

[[model.layers]]
type = "dense"
units = 3

[optimizer]
lr = 0.01

[train]
epochs = 8
batch_size = 8
"#;

fn project() -> Project {
    Project::new()
        .with(|dir| write_folder(&dir.join("train"), 20, 1))
        .with(|dir| write_folder(&dir.join("test"), 6, 2))
        .file("shapes.toml", CONFIG)
}

#[test]
fn trains_on_sorted_class_folders_with_grey_conversion_and_resizing() {
    let p = project();
    let out = kiln(
        p.path(),
        &["train", "shapes.toml", "--quiet", "--run-dir", "r"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let info = run_info(&p.path().join("r"));
    assert_eq!(
        info["schema"]["classes"],
        serde_json::json!(["a_left", "b_right", "c_middle"])
    );
    assert_eq!(info["input_shape"], serde_json::json!([1, 8, 8]));
    assert_eq!(info["schema"]["image"]["height"], 8);
    assert!(
        info["test"]["accuracy"].as_f64().unwrap() > 0.9,
        "{}",
        info["test"]
    );
    // RGB kept as 3 channels when asked.
    let out = kiln(
        p.path(),
        &["check", "shapes.toml", "--set", "data.channels=3"],
    );
    assert!(
        stdout(&out).contains("layers.0     conv2d       [4, 8, 8]             112"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("images 8×8, 3 channel(s)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn predict_on_a_folder_on_one_file_and_on_paths_from_stdin() {
    let p = project();
    assert!(kiln(
        p.path(),
        &["train", "shapes.toml", "--quiet", "--run-dir", "r"]
    )
    .status
    .success());
    let out = kiln(p.path(), &["predict", "r", "test", "--proba"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "path,prediction,p_a_left,p_b_right,p_c_middle");
    assert_eq!(lines.len(), 19);
    // Sorted paths; each image's prediction is its folder's class for nearly all.
    let right = lines[1..].iter().filter(|l| {
        let cells: Vec<&str> = l.split(',').collect();
        cells[0].contains(cells[1])
    });
    assert!(right.count() >= 16, "{text}");
    let one = "test/a_left/nested/001.png";
    let out = kiln(p.path(), &["predict", "r", one]);
    assert_eq!(
        stdout(&out).lines().nth(1).unwrap().split(',').next(),
        Some(one)
    );
    let out = kiln_with_stdin(
        p.path(),
        &["predict", "r", "--format", "jsonl"],
        format!("{one}\ntest/b_right/nested/002.png\n").as_bytes(),
    );
    let rows: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["path"], "test/b_right/nested/002.png");
    let out = kiln(p.path(), &["eval", "r", "--data", "test", "--json"]);
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["rows"], 18);
}

#[test]
fn a_corrupt_image_is_an_error_naming_it_unless_skipped() {
    let p = project();
    std::fs::write(p.path().join("train/b_right/nested/999.png"), b"not a png").unwrap();
    let out = kiln(p.path(), &["train", "shapes.toml", "--quiet"]);
    assert_eq!(out.status.code(), Some(2));
    let line = first_error_line(&out);
    assert!(
        line.starts_with("error: train/b_right/nested/999.png: cannot decode the image"),
        "{line}"
    );
    let out = kiln(
        p.path(),
        &[
            "train",
            "shapes.toml",
            "--quiet",
            "--run-dir",
            "s",
            "--set",
            "data.on_bad_image=skip",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let log = std::fs::read_to_string(p.path().join("s/train.log")).unwrap();
    assert!(
        log.contains("warning: skipped 1 image(s) that did not decode"),
        "{log}"
    );
}

#[test]
fn an_empty_class_folder_is_an_error() {
    let p = project();
    std::fs::create_dir_all(p.path().join("train/d_empty")).unwrap();
    std::fs::write(p.path().join("train/d_empty/notes.txt"), "not an image").unwrap();
    let out = kiln(p.path(), &["check", "shapes.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        first_error_line(&out),
        "error: train/d_empty: empty class folder: no image files (png, jpg, jpeg, bmp, gif, webp, tiff)"
    );
}

#[test]
fn augmented_training_is_reproducible() {
    let p = project();
    for dir in ["a", "b"] {
        assert!(kiln(
            p.path(),
            &[
                "train",
                "shapes.toml",
                "--quiet",
                "--threads",
                "2",
                "--run-dir",
                dir,
                "--set",
                "data.augment.flip_horizontal=true"
            ]
        )
        .status
        .success());
    }
    let ck = |d: &str| tensors(&p.path().join(d).join("checkpoints/epoch-0008.safetensors"));
    assert_eq!(ck("a"), ck("b"));
}

#[test]
fn mnist_cnn_reaches_the_accuracy_floor() {
    let acc = shipped_test_accuracy("configs/mnist_cnn.toml");
    assert!(acc >= 0.965, "test accuracy {acc}");
}
