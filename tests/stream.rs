//! `data.stream = true`: the order a streamed epoch gives (seeded, a permutation of the
//! training rows), shards that together read every row once, the schema the in-memory path
//! fits, and training through the real binary (accuracy, a bad row mid-epoch, resume, keys).

mod common;

use std::io::Write;
use std::path::Path;

use common::bin::{kiln, run_info, stderr, tensors, Project, ROOT};
use kiln::config::DataConfig;
use kiln::data::stream::Shard;
use kiln::data::{self, Prepared};
use kiln::Device;

fn data_config(text: &str) -> DataConfig {
    toml::from_str(text).unwrap()
}

fn prepare(text: &str, seed: u64) -> Prepared {
    data::prepare(&data_config(text), None, seed).unwrap()
}

/// `id,a,label`: row i has id i, a seeded value and a class, with `blank` lines and CRLF
/// line ends when asked; returns the text.
fn id_table(rows: usize, crlf: bool) -> String {
    let end = if crlf { "\r\n" } else { "\n" };
    let mut rng = kiln::Rng::new(3);
    let mut text = format!("id,a,label{end}");
    for i in 0..rows {
        let a = rng.uniform() * 100.0;
        let label = ["p", "q", "r"][i % 3];
        text.push_str(&format!("{i},{a:.3},{label}{end}"));
        if i % 97 == 5 {
            text.push_str(end); // a blank line, skipped
        }
    }
    text
}

/// The id column (the first feature) of every row an epoch of `p`'s streamed training split
/// gives to `shard`, in order.
fn ids(p: &Prepared, epoch: usize, shuffle: bool, shard: Shard) -> Vec<u32> {
    let stream = p.train.stream().expect("a streamed split");
    let mut rows = stream.epoch(epoch, shuffle, shard, 0, Device::Cpu).unwrap();
    let f = p.schema.features.len();
    let mut out = Vec::new();
    while let Some((x, _)) = rows.next_rows(37).unwrap() {
        out.extend(x.to_vec().chunks(f).map(|r| r[0] as u32));
    }
    out
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    if name.ends_with(".gz") {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
    } else {
        std::fs::write(&path, text).unwrap();
    }
    path.display().to_string()
}

#[test]
fn the_order_is_seeded_and_a_permutation_of_the_training_rows() {
    let dir = tempfile::tempdir().unwrap();
    let train = write(dir.path(), "t.csv", &id_table(2000, false));
    let cfg = format!(
        "train = {train:?}\nstream = true\nshuffle_buffer = 300\nvalid_split = 0.2\ntarget = \"label\""
    );
    let p = prepare(&cfg, 1);
    let order = ids(&p, 0, true, Shard::WHOLE);
    assert_eq!(
        order,
        ids(&prepare(&cfg, 1), 0, true, Shard::WHOLE),
        "same seed"
    );
    assert_ne!(
        order,
        ids(&prepare(&cfg, 2), 0, true, Shard::WHOLE),
        "another seed"
    );
    assert_ne!(order, ids(&p, 1, true, Shard::WHOLE), "another epoch");
    let in_file_order = ids(&p, 0, false, Shard::WHOLE);
    assert!(in_file_order.windows(2).all(|w| w[0] < w[1]));
    assert_ne!(order, in_file_order);
    // The training rows and the validation rows part the file between them.
    let valid = p.valid.as_ref().expect("a validation split");
    let held: Vec<u32> = valid
        .table()
        .unwrap()
        .chunks(2)
        .map(|r| r[0] as u32)
        .collect();
    let mut all: Vec<u32> = order.iter().chain(&held).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..2000).collect::<Vec<_>>());
    assert_eq!(order.len(), p.train.len(), "the first pass's count");
    // About a fifth held out, drawn per row.
    assert!((300..500).contains(&held.len()), "{}", held.len());
}

#[test]
fn shards_together_read_every_training_row_once() {
    let dir = tempfile::tempdir().unwrap();
    for crlf in [false, true] {
        let mut text = id_table(1001, crlf);
        // A size that 2 and 3 do not divide.
        while text.len().is_multiple_of(6) {
            text.push('\n');
        }
        for name in ["s.csv", "s.csv.gz"] {
            let train = write(dir.path(), name, &text);
            for valid_split in [0.0, 0.25] {
                let cfg = format!(
                    "train = {train:?}\nstream = true\nvalid_split = {valid_split}\ntarget = \"label\""
                );
                let p = prepare(&cfg, 9);
                let whole = ids(&p, 0, false, Shard::WHOLE);
                assert_eq!(whole.len(), p.train.len());
                for world in 1..=3 {
                    let mut got: Vec<u32> = (0..world)
                        .flat_map(|r| ids(&p, 0, true, Shard::new(r, world)))
                        .collect();
                    got.sort_unstable();
                    assert_eq!(
                        got, whole,
                        "{name} crlf {crlf} valid {valid_split} N {world}"
                    );
                }
            }
        }
    }
}

/// The streamed schema (and row and class counts) against the in-memory path's.
fn same_schema(cfg: &str) {
    let held = prepare(cfg, 5);
    let streamed = prepare(&format!("{cfg}\nstream = true"), 5);
    assert_eq!(streamed.schema, held.schema, "{cfg}");
    assert_eq!(streamed.train.len(), held.train.len(), "{cfg}");
    let classes = held.schema.classes.len();
    assert_eq!(
        streamed.train.class_counts(classes).unwrap(),
        held.train.class_counts(classes).unwrap()
    );
    assert_eq!(streamed.task_reason, held.task_reason);
}

#[test]
fn the_first_pass_fits_the_schema_the_in_memory_path_fits() {
    let mnist = format!("{ROOT}/datasets/mnist/train.csv.gz");
    same_schema(&format!(
        "train = {mnist:?}\nvalid_split = 0\ntarget = \"label\"\nscale = 0.00392156862745098"
    ));
    same_schema(&format!(
        "train = {mnist:?}\nvalid_split = 0\ntarget = \"label\"\nnormalize = \"minmax\""
    ));
    // Regression with missing cells, standardized numbers and targets.
    let dir = tempfile::tempdir().unwrap();
    let mut rng = kiln::Rng::new(11);
    let mut text = String::from("x1,x2,x3,y\n");
    for i in 0..3000 {
        let (a, b) = (rng.uniform() * 1e4, rng.normal());
        let c = if i % 17 == 0 {
            "NA".to_string()
        } else {
            format!("{}", i % 300)
        };
        text.push_str(&format!("{a:.4},{b:.6},{c},{:.5}\n", a * 0.3 + b));
    }
    let train = write(dir.path(), "r.csv", &text);
    for rest in [
        "normalize = \"standard\"\nmissing = \"mean\"\ntarget_normalize = \"standard\"\nvalid_split = 0",
        "normalize = \"minmax\"\nmissing = \"drop\"\nvalid_split = 0",
        "missing = \"zero\"\nvalid_split = 0",
    ] {
        same_schema(&format!("train = {train:?}\n{rest}"));
    }
    // The task and classes inferred from the target, with a validation file.
    let text = id_table(500, false)
        .replace(",p\n", ",10\n")
        .replace(",q\n", ",2\n");
    let train = write(dir.path(), "c.csv", &text);
    let head: String = text.lines().take(100).map(|l| format!("{l}\n")).collect();
    let v = write(dir.path(), "cv.csv", &head);
    same_schema(&format!(
        "train = {train:?}\nvalid = {v:?}\nnormalize = \"standard\""
    ));
    same_schema(&format!(
        "train = {train:?}\nvalid = {v:?}\nmissing = \"mean\""
    ));
}

#[test]
fn mnist_mlp_streamed_reaches_the_in_memory_accuracy_floor() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = common::bin::train_shipped(
        "configs/mnist_mlp.toml",
        &run,
        &["--json", "--set", "data.stream=true"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let acc = v["test"]["accuracy"].as_f64().unwrap();
    eprintln!("mnist_mlp streamed: test accuracy {acc}");
    assert!(acc >= 0.93, "test accuracy {acc}");
    let train = run_info(&run)["data"][0].clone();
    assert_eq!(train["split"], "train", "{train}");
}

/// A small classification table (`a,b,label`) with a bad cell at `bad_line` when given.
fn blobs(rows: usize, bad_line: Option<usize>) -> String {
    let mut rng = kiln::Rng::new(4);
    let mut text = String::from("a,b,label\n");
    for i in 0..rows {
        let (a, b) = (rng.uniform() * 2.0 - 1.0, rng.uniform() * 2.0 - 1.0);
        let label = if a + b > 0.0 { "up" } else { "down" };
        if bad_line == Some(i + 2) {
            text.push_str(&format!("x.xxx,{b:.3},{label}\n"));
        } else {
            text.push_str(&format!("{a:.3},{b:.3},{label}\n"));
        }
    }
    text
}

const BLOBS: &str = r#"
name = "blobs"
[data]
train = "train.csv"
stream = true
shuffle_buffer = 50
valid_split = 0
[[model.layers]]
type = "dense"
units = 8
activation = "relu"
[[model.layers]]
type = "dense"
units = 2
[train]
epochs = 3
batch_size = 16
[train.checkpoint]
every_seconds = 0
"#;

#[test]
fn a_bad_cell_mid_epoch_fails_at_its_line_and_the_mended_run_resumes_to_the_same_weights() {
    let good = blobs(2000, None);
    let bad_line = 1500;
    let p = Project::new()
        .file("t.toml", BLOBS)
        .file("train.csv", blobs(2000, Some(bad_line)));
    assert_eq!(
        good.len(),
        std::fs::read(p.path().join("train.csv")).unwrap().len()
    );
    let args = ["train", "t.toml", "--quiet", "--threads", "1", "--run-dir"];
    let out = p.kiln(&[&args[..], &["cut"]].concat());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("train.csv:{bad_line}")) && err.contains("\"x.xxx\""),
        "{err}"
    );
    let info = run_info(&p.path().join("cut"));
    assert_eq!(info["status"], "failed", "{info}");
    let checkpoint = info["last_checkpoint"].as_str().unwrap().to_string();
    assert!(
        checkpoint.contains("-step-"),
        "a mid-epoch checkpoint: {checkpoint}"
    );
    // Mended, the run goes on from that step and ends where an unbroken run ends.
    std::fs::write(p.path().join("train.csv"), &good).unwrap();
    let resumed = p.kiln(&["train", "--resume", "cut", "--quiet", "--threads", "1"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(run_info(&p.path().join("cut"))["status"], "finished");
    let straight = p.kiln(&[&args[..], &["straight"]].concat());
    assert!(straight.status.success(), "{}", stderr(&straight));
    let ck = "checkpoints/epoch-0003.safetensors";
    assert_eq!(
        tensors(&p.path().join("straight").join(ck)),
        tensors(&p.path().join("cut").join(ck))
    );
    // limit_batches and max_time still bound a streamed epoch.
    let out = p.kiln(&[&args[..], &["short", "--limit-batches", "3", "--json"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let steps = std::fs::read_to_string(p.path().join("short/metrics.csv")).unwrap();
    let last = steps
        .lines()
        .last()
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(last, "9", "3 epochs of 3 batches: {steps}");
}

#[test]
fn stream_keys_where_they_do_not_apply_are_errors() {
    let p = Project::new()
        .file("t.toml", BLOBS)
        .file("train.csv", blobs(100, None))
        .file(
            "cat.csv",
            "a,colour,label\n1,red,up\n2,blue,down\n3,red,up\n4,blue,down\n",
        );
    let check = |sets: &[&str]| {
        let mut args = vec!["check", "t.toml"];
        for s in sets {
            args.extend(["--set", s]);
        }
        let out = p.kiln(&args);
        (out.status.code(), stderr(&out))
    };
    let (code, err) = check(&["data.stream=false"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("data.shuffle_buffer") && err.contains("data.stream = true"),
        "{err}"
    );
    let (code, err) = check(&["train.shuffle=false"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("data.shuffle_buffer") && err.contains("train.shuffle"),
        "{err}"
    );
    let (code, err) = check(&["data.shuffle_buffer=0"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("at least 1"), "{err}");
    let (code, err) = check(&["data.kfold={ folds = 3, fold = 1 }"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("data.kfold") && err.contains("data.stream"),
        "{err}"
    );
    let (code, err) = check(&["data.format=\"images\""]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("data.stream: applies to CSV tables"), "{err}");
    let (code, err) = check(&["data.train=\"cat.csv\""]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("data.stream") && err.contains("\"colour\" is a category column"),
        "{err}"
    );
    // The config's place is named.
    let (_, err) = check(&["data.stream=false"]);
    assert!(err.contains("t.toml:6:"), "{err}"); // shuffle_buffer's line
    assert!(kiln(p.path(), &["check", "t.toml"]).status.success());
}
