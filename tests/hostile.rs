//! Hostile input: a table of bad configs, data files, image folders, weight files, run
//! directories and arguments. Each case runs the real binary in a fresh project and asserts the
//! exit code, a first error line that names the place (file:line:col, the `--set`, the file or
//! the layer), no panic, and that no file of the project was changed, created or left behind.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::bin::{first_error_line, stderr, table, Project};

const CONFIG: &str = r#"name = "h"
seed = 1

[data]
train = "train.csv"
target = "label"
valid_split = 0.25

[[model.layers]]
type = "dense"
units = 8
activation = "relu"

[[model.layers]]
type = "dense"
units = 2

[train]
epochs = 2
batch_size = 8
"#;

const IMAGES: &str = r#"name = "img"

[data]
format = "images"
train = "imgs"
channels = 1
valid_split = 0

[[model.layers]]
type = "flatten"

[[model.layers]]
type = "dense"
units = 2
"#;

/// Two classes of 4×4 grey PNGs.
fn write_images(root: &Path) {
    for (k, class) in ["dark", "light"].iter().enumerate() {
        let dir = root.join("imgs").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..4 {
            let img = image::GrayImage::from_fn(4, 4, |x, _| {
                image::Luma([(k as u8) * 200 + (x as u8 + i) * 5])
            });
            img.save(dir.join(format!("{i}.png"))).unwrap();
        }
    }
}

/// The project's files: relative path → (size, content), to prove a failing command changed
/// nothing and left nothing behind.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if meta.is_symlink() {
                out.insert(rel, b"<link>".to_vec());
            } else if !meta.is_dir() && !meta.is_file() {
                out.insert(rel, b"<special>".to_vec()); // a pipe: reading it would block
            } else if meta.is_dir() {
                out.insert(rel, b"<dir>".to_vec());
                stack.push(p);
            } else if meta.len() < (1 << 20) {
                out.insert(rel, std::fs::read(&p).unwrap());
            } else {
                out.insert(rel, format!("<{} bytes>", meta.len()).into_bytes());
            }
        }
    }
    out
}

struct Case {
    name: &'static str,
    /// Files to write (or replace) in the project before the command.
    files: Vec<(&'static str, Vec<u8>)>,
    /// Extra setup (image folders, links, a trained run).
    setup: Option<fn(&Path)>,
    args: Vec<String>,
    code: i32,
    /// What the first error line must contain: the place and the reason.
    want: Vec<&'static str>,
}

fn case(name: &'static str, args: &[&str], code: i32, want: &[&'static str]) -> Case {
    Case {
        name,
        files: Vec::new(),
        setup: None,
        args: args.iter().map(|s| s.to_string()).collect(),
        code,
        want: want.to_vec(),
    }
}

impl Case {
    fn file(mut self, name: &'static str, contents: impl Into<Vec<u8>>) -> Case {
        self.files.push((name, contents.into()));
        self
    }

    fn setup(mut self, f: fn(&Path)) -> Case {
        self.setup = Some(f);
        self
    }
}

/// `train c.toml --set KEY=VALUE`: a config value out of range, placed at the `--set`.
fn set(name: &'static str, kv: &str, want: &[&'static str]) -> Case {
    case(name, &["train", "c.toml", "--set", kv], 2, want)
}

/// `train c.toml` with a config whose `from` text is replaced by `to`, placed in the file.
fn edit(name: &'static str, from: &str, to: &str, want: &[&'static str]) -> Case {
    assert!(CONFIG.contains(from), "{name}: {from:?} not in the config");
    case(name, &["train", "c.toml"], 2, want).file("c.toml", CONFIG.replacen(from, to, 1))
}

/// `train c.toml` on a training table `csv`.
fn csv(name: &'static str, csv: impl Into<Vec<u8>>, want: &[&'static str]) -> Case {
    case(name, &["train", "c.toml"], 2, want).file("train.csv", csv)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A trained run at `run/` (for weight-file and run-directory cases).
fn trained(dir: &Path) {
    let out = common::bin::kiln(
        dir,
        &[
            "train",
            "c.toml",
            "--quiet",
            "--run-dir",
            "run",
            "--set",
            "train.checkpoint.every_seconds=0",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

fn config_cases() -> Vec<Case> {
    vec![
        case(
            "missing config",
            &["train", "nope.toml"],
            2,
            &["nope.toml", "no such config file"],
        ),
        case(
            "config is a folder",
            &["check", "sub"],
            2,
            &["sub", "a folder"],
        )
        .file("sub/x", "x"),
        case(
            "config not UTF-8",
            &["train", "c.toml"],
            2,
            &["c.toml:2", "not UTF-8"],
        )
        .file("c.toml", b"name = \"h\"\n\xff\xfe = 1\n".to_vec()),
        case("TOML syntax", &["train", "c.toml"], 2, &["c.toml:3:"])
            .file("c.toml", "name = \"h\"\n[data]\ntrain = \n"),
        edit(
            "unknown top key",
            "seed = 1",
            "sed = 1",
            &["c.toml:2:1", "did you mean \"seed\""],
        ),
        edit(
            "unknown data key",
            "valid_split = 0.25",
            "valid_splt = 0.25",
            &["c.toml:7:1", "data.valid_splt", "did you mean"],
        ),
        edit(
            "unknown layer key",
            "units = 8\n",
            "unit = 8\n",
            &["model.layers.0", "unit"],
        ),
        edit(
            "unknown train key",
            "epochs = 2",
            "epoch = 2",
            &["c.toml:19:1", "train.epoch", "did you mean \"epochs\""],
        ),
        case(
            "unknown loss key",
            &["train", "c.toml"],
            2,
            &["c.toml:", "loss.class_weight", "unknown key"],
        )
        .file(
            "c.toml",
            format!("{CONFIG}\n[loss]\ntype = \"cross_entropy\"\nclass_weight = [1, 2]\n"),
        ),
        case(
            "unknown optimizer key",
            &["train", "c.toml"],
            2,
            &["c.toml:", "optimizer.beta", "did you mean \"betas\""],
        )
        .file(
            "c.toml",
            format!("{CONFIG}\n[optimizer]\nbeta = [0.9, 0.99]\n"),
        ),
        set(
            "unknown schedule key",
            "optimizer.schedule={type=\"step\",step_epochs=1,gama=0.5}",
            &["--set optimizer.schedule", "gama"],
        ),
        set(
            "unknown early stopping key",
            "train.early_stopping={monitor=\"valid.loss\",patient=2}",
            &["--set train.early_stopping", "patient"],
        ),
        set(
            "unknown checkpoint key",
            "train.checkpoint={every=1}",
            &["--set train.checkpoint", "every"],
        ),
        set(
            "unknown augment key",
            "data.augment={flip=true}",
            &["--set data.augment", "flip"],
        ),
        set(
            "unknown layer type",
            "model.layers.0.type=\"dens\"",
            &["--set model.layers.0.type", "did you mean \"dense\""],
        ),
        set(
            "unknown activation",
            "model.layers.0.activation=\"rleu\"",
            &["--set model.layers.0.activation", "did you mean \"relu\""],
        ),
        set(
            "unknown loss type",
            "loss={type=\"cross_entropi\"}",
            &["--set loss", "cross_entropi"],
        ),
        set(
            "unknown optimizer type",
            "optimizer.type=\"adamx\"",
            &["--set optimizer.type", "adamx"],
        ),
        set(
            "epochs a string",
            "train.epochs=\"many\"",
            &["--set train.epochs", "invalid type"],
        ),
        set(
            "epochs negative",
            "train.epochs=-1",
            &["--set train.epochs"],
        ),
        set(
            "epochs zero",
            "train.epochs=0",
            &["--set train.epochs", "at least 1"],
        ),
        set(
            "batch size zero",
            "train.batch_size=0",
            &["--set train.batch_size", "at least 1"],
        ),
        set(
            "lr zero",
            "optimizer.lr=0",
            &["--set optimizer.lr", "positive"],
        ),
        set(
            "lr nan",
            "optimizer.lr=nan",
            &["--set optimizer.lr", "positive"],
        ),
        set(
            "lr infinite",
            "optimizer.lr=inf",
            &["--set optimizer.lr", "positive"],
        ),
        set(
            "weight decay negative",
            "optimizer.weight_decay=-0.1",
            &["--set optimizer.weight_decay"],
        ),
        set(
            "adam beta1 of 1",
            "optimizer.betas=[1.0, 0.999]",
            &["--set optimizer.betas", "beta1"],
        ),
        set(
            "adam beta2 above 1",
            "optimizer.betas=[0.9, 1.5]",
            &["--set optimizer.betas", "beta2"],
        ),
        set(
            "adam eps zero",
            "optimizer.eps=0",
            &["--set optimizer.eps", "positive"],
        ),
        set(
            "momentum under adam",
            "optimizer.momentum=0.9",
            &["--set optimizer.momentum", "sgd only"],
        ),
        case(
            "betas under sgd",
            &[
                "train",
                "c.toml",
                "--set",
                "optimizer.type=\"sgd\"",
                "--set",
                "optimizer.betas=[0.9, 0.9]",
            ],
            2,
            &["--set optimizer.betas", "adam"],
        ),
        case(
            "sgd momentum of 1",
            &[
                "train",
                "c.toml",
                "--set",
                "optimizer.type=\"sgd\"",
                "--set",
                "optimizer.momentum=1.0",
            ],
            2,
            &["--set optimizer.momentum", "[0, 1)"],
        ),
        case(
            "nesterov without momentum",
            &[
                "train",
                "c.toml",
                "--set",
                "optimizer.type=\"sgd\"",
                "--set",
                "optimizer.nesterov=true",
            ],
            2,
            &["--set optimizer.nesterov", "momentum"],
        ),
        set(
            "step schedule of 0 epochs",
            "optimizer.schedule={type=\"step\",step_epochs=0}",
            &["--set optimizer.schedule", "step_epochs"],
        ),
        set(
            "step schedule gamma 0",
            "optimizer.schedule={type=\"step\",step_epochs=1,gamma=0}",
            &["--set optimizer.schedule", "gamma"],
        ),
        set(
            "negative warmup",
            "optimizer.schedule={type=\"cosine\",warmup_epochs=-1}",
            &["--set optimizer.schedule", "warmup_epochs"],
        ),
        set(
            "negative min lr",
            "optimizer.schedule={type=\"cosine\",min_lr=-0.1}",
            &["--set optimizer.schedule", "min_lr"],
        ),
        set(
            "huber delta negative",
            "loss={type=\"huber\",delta=-1}",
            &["--set loss", "delta"],
        ),
        set(
            "delta under cross entropy",
            "loss={type=\"cross_entropy\",delta=1}",
            &["--set loss", "huber only"],
        ),
        set(
            "label smoothing of 1",
            "loss={type=\"cross_entropy\",label_smoothing=1.0}",
            &["--set loss", "label_smoothing"],
        ),
        set(
            "label smoothing under bce",
            "loss={type=\"bce\",label_smoothing=0.1}",
            &["--set loss", "cross_entropy only"],
        ),
        set(
            "class weights negative",
            "loss={type=\"cross_entropy\",class_weights=[-1, 1]}",
            &["--set loss", "class_weights"],
        ),
        set(
            "class weights all zero",
            "loss={type=\"cross_entropy\",class_weights=[0, 0]}",
            &["--set loss", "class_weights"],
        ),
        set(
            "class weights of text",
            "loss={type=\"cross_entropy\",class_weights=\"even\"}",
            &["--set loss", "balanced"],
        ),
        set(
            "class weights, wrong count",
            "loss={type=\"cross_entropy\",class_weights=[1, 2, 3]}",
            &["--set loss", "3 weights for 2 classes"],
        ),
        set(
            "class weights under mse",
            "loss={type=\"mse\",class_weights=[1, 2]}",
            &["--set loss", "cross_entropy and bce only"],
        ),
        set(
            "valid split of 1",
            "data.valid_split=1.0",
            &["--set data.valid_split", "[0, 1)"],
        ),
        set(
            "valid split negative",
            "data.valid_split=-0.2",
            &["--set data.valid_split"],
        ),
        set("scale zero", "data.scale=0", &["--set data.scale"]),
        case(
            "scale and normalize",
            &[
                "train",
                "c.toml",
                "--set",
                "data.scale=2",
                "--set",
                "data.normalize=\"standard\"",
            ],
            2,
            &["data.scale", "not both"],
        ),
        set(
            "dropout rate 1",
            "model.layers.1={type=\"dropout\",rate=1.0}",
            &["--set model.layers.1", "rate"],
        ),
        set(
            "units zero",
            "model.layers.0.units=0",
            &["--set model.layers.0.units", "at least 1"],
        ),
        set(
            "units absurd",
            "model.layers.0.units=1000000000000",
            &[
                "--set model.layers.0.units",
                "model.layers.0 (dense)",
                "memory",
            ],
        ),
        set(
            "layers not a list",
            "model.layers=3",
            &["--set model.layers"],
        ),
        set(
            "no layers",
            "model.layers=[]",
            &["--set model.layers", "no layers"],
        ),
        set(
            "conv on a table",
            "model.layers.0={type=\"conv2d\",filters=2,kernel=3}",
            &["--set model.layers.0", "conv2d needs an image input"],
        ),
        set(
            "batchnorm momentum 0",
            "model.layers.1={type=\"batchnorm\",momentum=0}",
            &["--set model.layers.1", "momentum"],
        ),
        set(
            "layer key of another type",
            "model.layers.0.rate=0.5",
            &["model.layers.0 (dense)", "takes no `rate`"],
        ),
        set(
            "wrong output width",
            "model.layers.1.units=3",
            &["--set model.layers.1.units", "needs [2]"],
        ),
        set(
            "sigmoid before cross entropy",
            "model.layers.1.activation=\"sigmoid\"",
            &[
                "--set model.layers.1.activation",
                "applies sigmoid but cross_entropy takes logits",
            ],
        ),
        case(
            "softmax before bce",
            &[
                "train",
                "c.toml",
                "--set",
                "loss={type=\"bce\"}",
                "--set",
                "model.layers.1={type=\"dense\",units=1,activation=\"softmax\"}",
            ],
            2,
            &["--set model.layers.1", "applies softmax but bce"],
        ),
        set(
            "grad clip zero",
            "train.grad_clip_norm=0",
            &["--set train.grad_clip_norm", "positive"],
        ),
        set(
            "keep_last zero",
            "train.checkpoint.keep_last=0",
            &["--set train.checkpoint.keep_last"],
        ),
        set(
            "every_seconds negative",
            "train.checkpoint.every_seconds=-1",
            &["--set train.checkpoint.every_seconds"],
        ),
        set(
            "min_delta negative",
            "train.early_stopping={monitor=\"valid.loss\",min_delta=-1}",
            &["--set train.early_stopping", "min_delta"],
        ),
        set(
            "early stopping on no metric",
            "train.early_stopping={monitor=\"valid.acc\"}",
            &["--set train.early_stopping", "no metric \"valid.acc\""],
        ),
        set(
            "best on no metric",
            "train.checkpoint.best=\"valid.f2\"",
            &["--set train.checkpoint.best", "no metric"],
        ),
        set(
            "unknown metric",
            "train.metrics=[\"acuracy\"]",
            &["--set train.metrics", "did you mean \"accuracy\""],
        ),
        set(
            "regression metric on a classifier",
            "train.metrics=[\"rmse\"]",
            &["--set train.metrics", "rmse"],
        ),
        set(
            "target normalize on a classifier",
            "data.target_normalize=\"standard\"",
            &["--set data.target_normalize", "regression"],
        ),
        set(
            "name escapes the runs folder",
            "name=\"../../x\"",
            &["--set name", "safe run name"],
        ),
        case(
            "--name with a slash",
            &["train", "c.toml", "--name", "a/b"],
            2,
            &["--set name", "safe run name"],
        ),
        case(
            "--name with a newline",
            &["train", "c.toml", "--name", "a\nb"],
            2,
            &["--set name"],
        ),
        set("name empty", "name=\"\"", &["--set name", "safe run name"]),
        case(
            "--set without =",
            &["train", "c.toml", "--set", "train.epochs"],
            2,
            &["--set train.epochs", "KEY=VALUE"],
        ),
        case(
            "--set index out of range",
            &["train", "c.toml", "--set", "model.layers.7.units=1"],
            2,
            &["--set model.layers.7.units", "no index 7"],
        ),
        case(
            "--set into a value",
            &["train", "c.toml", "--set", "seed.x=1"],
            2,
            &["--set seed.x", "a value"],
        ),
        case(
            "threads zero",
            &["train", "c.toml", "--threads", "0"],
            2,
            &["--threads"],
        ),
        case(
            "threads absurd",
            &["train", "c.toml", "--threads", "100000"],
            2,
            &["--threads", "1024"],
        ),
        case(
            "unknown device",
            &["train", "c.toml", "--device", "tpu"],
            2,
            &["--device tpu"],
        ),
        case("train without a config", &["train"], 2, &["CONFIG"]),
    ]
}

fn csv_cases() -> Vec<Case> {
    let big_line = gzip(&[b"a,b,c,label\n".as_slice(), &vec![b'1'; 70 << 20]].concat());
    vec![
        case(
            "missing training file",
            &["train", "c.toml", "--set", "data.train=\"none.csv\""],
            2,
            &["none.csv", "no such file"],
        ),
        case(
            "training file is a folder",
            &["train", "c.toml", "--set", "data.train=\"d\""],
            2,
            &["d", "a folder"],
        )
        .file("d/x", "x"),
        csv("empty file", "", &["train.csv", "empty"]),
        csv(
            "header only",
            "a,b,c,label\n",
            &["train.csv", "no data rows"],
        ),
        csv(
            "duplicate column",
            "a,a,c,label\n1,2,3,yes\n",
            &["train.csv:1", "both named \"a\""],
        ),
        csv(
            "unnamed column",
            "a,,c,label\n1,2,3,yes\n",
            &["train.csv:1", "no name"],
        ),
        csv(
            "ragged row",
            "a,b,c,label\n1,2,3,yes\n1,2,no\n",
            &["train.csv:3", "3 fields"],
        ),
        csv(
            "text in a number column",
            "a,b,c,label\n1,2,3,yes\n1,x,3,no\n",
            &["train.csv:3", "column \"b\"", "\"x\" is not a number"],
        ),
        csv(
            "infinity",
            "a,b,c,label\n1,2,3,yes\n1,inf,3,no\n",
            &["train.csv:3", "\"inf\""],
        ),
        csv(
            "not UTF-8",
            b"a,b,c,label\n1,2,3,yes\n1,\xff,3,no\n".to_vec(),
            &["train.csv:3", "not UTF-8"],
        ),
        csv(
            "line numbers after blank lines",
            "a,b,c,label\n\n\n1,2,3,yes\n1,2,z,no\n",
            &["train.csv:5", "\"z\""],
        ),
        csv(
            "line numbers after a quoted break",
            "a,b,c,label\n1,2,\"3\n\",yes\n1,q,3,no\n",
            &["train.csv:4", "\"q\""],
        ),
        csv(
            "a long cell is shortened",
            // Two numbers beside it: b is a number column (a column of text alone would be text).
            format!(
                "a,b,c,label\n1,2,3,no\n1,{},3,yes\n1,4,3,no\n",
                "y".repeat(5000)
            ),
            &["train.csv:3", "…\" is not a number"],
        ),
        csv(
            "missing value by default",
            "a,b,c,label\n1,2,3,yes\n1,,3,no\n",
            &["train.csv:3", "missing value"],
        ),
        csv(
            "missing target",
            "a,b,c,label\n1,2,3,yes\n1,2,3,no\n1,2,3,\n",
            &["train.csv:4", "missing target"],
        ),
        csv(
            "one class",
            "a,b,c,label\n1,2,3,yes\n1,2,4,yes\n",
            &["train.csv", "one class", "at least two"],
        ),
        case(
            "a line without end",
            &["train", "c.toml", "--set", "data.train=\"big.csv.gz\""],
            2,
            &["big.csv.gz", "longer than 64 MiB"],
        )
        .file("big.csv.gz", big_line),
        case(
            "not gzip",
            &["train", "c.toml", "--set", "data.train=\"t.csv.gz\""],
            2,
            &["t.csv.gz", "cannot read"],
        )
        .file("t.csv.gz", "a,b\n1,2\n"),
        set(
            "no such target",
            "data.target=\"lable\"",
            &[
                "--set data.target",
                "no column \"lable\"",
                "did you mean \"label\"",
            ],
        ),
        set(
            "no such feature",
            "data.features=[\"a\", \"z\"]",
            &["train.csv", "no column \"z\""],
        ),
        set(
            "feature listed twice",
            "data.features=[\"a\", \"a\"]",
            &["--set data.features", "twice"],
        ),
        set(
            "target as a feature",
            "data.features=[\"a\", \"label\"]",
            &["--set data.features", "cannot be a feature"],
        ),
        case(
            "valid file missing a column",
            &[
                "train",
                "c.toml",
                "--set",
                "data.valid=\"v.csv\"",
                "--set",
                "data.valid_split=0",
            ],
            2,
            &["v.csv", "no column \"c\""],
        )
        .file("v.csv", "a,b,label\n1,2,yes\n"),
        case(
            "test file with an unknown class",
            &["train", "c.toml", "--set", "data.test=\"t.csv\""],
            2,
            &["t.csv:2", "unknown class \"maybe\""],
        )
        .file("t.csv", "a,b,c,label\n1,2,3,maybe\n"),
        case(
            "class weights on a bad file",
            &["check", "c.toml", "--set", "data.train=\"t.csv\""],
            2,
            &["t.csv:2"],
        )
        .file("t.csv", "a,b,c,label\n1,2,3\n"),
    ]
}

fn image_cases() -> Vec<Case> {
    let img = |name, args: &[&str], want: &[&'static str]| {
        case(name, args, 2, want)
            .file("i.toml", IMAGES)
            .setup(write_images)
    };
    vec![
        img(
            "image folder missing",
            &["train", "i.toml", "--set", "data.train=\"nope\""],
            &["nope", "no such file or folder"],
        ),
        img(
            "no class folders",
            &["train", "i.toml", "--set", "data.train=\"flat\""],
            &["flat", "no class subfolders"],
        )
        .file("flat/a.png", "x"),
        img(
            "one class folder",
            &["train", "i.toml", "--set", "data.train=\"one\""],
            &["one", "at least two"],
        )
        .file("one/only/a.txt", "x"),
        img(
            "empty class folder",
            &["train", "i.toml", "--set", "data.train=\"e\""],
            &["e/b", "empty class folder"],
        )
        .file("e/a/x.png", "x")
        .file("e/b/readme.txt", "x"),
        img(
            "undecodable image",
            &["train", "i.toml"],
            &["imgs/dark/bad.png", "cannot decode"],
        )
        .file("imgs/dark/bad.png", "not a png"),
        img(
            "channels 2 on images",
            &["train", "i.toml", "--set", "data.channels=2"],
            &["--set data.channels"],
        ),
        img(
            "crop larger than the image",
            &["train", "i.toml", "--set", "data.augment={random_crop=4}"],
            &["--set data.augment", "random_crop"],
        ),
        img(
            "size too big for memory",
            &[
                "train",
                "i.toml",
                "--set",
                "data.size=[16384, 16384]",
                "--set",
                "data.channels=3",
            ],
            &["memory"],
        ),
        img(
            "dense on images",
            &[
                "train",
                "i.toml",
                "--set",
                "model.layers.0={type=\"dense\",units=2}",
            ],
            &["model.layers.0 (dense)", "add a flatten layer"],
        ),
        img(
            "target normalize on images",
            &[
                "train",
                "i.toml",
                "--set",
                "data.target_normalize=\"standard\"",
            ],
            &["--set data.target_normalize"],
        ),
    ]
}

fn run_cases() -> Vec<Case> {
    let run = |name, args: &[&str], code, want: &[&'static str]| {
        case(name, args, code, want).setup(trained)
    };
    vec![
        run(
            "weights altered",
            &["eval", "run"],
            2,
            &["model.safetensors", "checksum"],
        )
        .setup(|d| {
            trained(d);
            let p = d.join("run/model.safetensors");
            let mut b = std::fs::read(&p).unwrap();
            let n = b.len();
            b[n - 3] ^= 0x40;
            std::fs::write(&p, b).unwrap();
        }),
        run(
            "weights truncated",
            &["eval", "run"],
            2,
            &["model.safetensors", "not a readable safetensors"],
        )
        .setup(|d| {
            trained(d);
            let p = d.join("run/model.safetensors");
            let b = std::fs::read(&p).unwrap();
            std::fs::write(&p, &b[..b.len() / 2]).unwrap();
        }),
        run(
            "weights are text",
            &["predict", "run", "train.csv"],
            2,
            &["model.safetensors", "not a readable safetensors"],
        )
        .setup(|d| {
            trained(d);
            std::fs::write(d.join("run/model.safetensors"), "hello").unwrap();
        }),
        run(
            "huge header length",
            &["eval", "run"],
            2,
            &["model.safetensors"],
        )
        .setup(|d| {
            trained(d);
            let mut b = u64::MAX.to_le_bytes().to_vec();
            b.extend_from_slice(b"{}");
            std::fs::write(d.join("run/model.safetensors"), b).unwrap();
        }),
        case(
            "init_from with other shapes",
            &[
                "train",
                "c.toml",
                "--set",
                "model.init_from=\"run/model.safetensors\"",
                "--set",
                "model.layers.0.units=5",
            ],
            2,
            &["model.safetensors", "layers.0.weight has shape"],
        )
        .setup(trained),
        case(
            "init_from missing",
            &[
                "train",
                "c.toml",
                "--set",
                "model.init_from=\"none.safetensors\"",
            ],
            2,
            &["none.safetensors", "no such file"],
        ),
        case(
            "resume a folder that is not a run",
            &["train", "--resume", "sub"],
            2,
            &["sub", "not a run directory"],
        )
        .file("sub/x", "x"),
        run(
            "resume a finished run",
            &["train", "--resume", "run"],
            2,
            &["run", "already trained 2 of 2 epochs"],
        ),
        run(
            "run dir exists",
            &["train", "c.toml", "--run-dir", "run"],
            2,
            &["--run-dir run", "already exists"],
        ),
        run(
            "resume a run without checkpoints",
            &["train", "--resume", "run", "--set", "train.epochs=4"],
            2,
            &["run", "no checkpoint"],
        )
        .setup(|d| {
            trained(d);
            std::fs::remove_dir_all(d.join("run/checkpoints")).unwrap();
            std::fs::create_dir(d.join("run/checkpoints")).unwrap();
        }),
        run(
            "eval a missing file",
            &["eval", "run", "--data", "x.csv"],
            2,
            &["x.csv", "no such file"],
        ),
        run(
            "eval batch size 0",
            &["eval", "run", "--batch-size", "0"],
            2,
            &["--batch-size"],
        ),
        run(
            "predict batch size 0",
            &["predict", "run", "train.csv", "--batch-size", "0"],
            2,
            &["--batch-size"],
        ),
        run(
            "predict a missing column",
            &["predict", "run", "p.csv", "--output", "out.csv"],
            2,
            &["p.csv", "no column \"c\""],
        )
        .file("p.csv", "a,b\n1,2\n"),
        run(
            "predict a bad cell",
            &["predict", "run", "p.csv", "--output", "out.csv"],
            2,
            &["p.csv:3", "\"?x\""],
        )
        .file("p.csv", "a,b,c\n1,2,3\n1,?x,3\n"),
        run(
            "predict into a missing folder",
            &["predict", "run", "train.csv", "--output", "no/out.csv"],
            1,
            &["no/out.csv"],
        ),
        run(
            "predict a missing file",
            &["predict", "run", "nope.csv"],
            2,
            &["nope.csv", "no such file"],
        ),
        run(
            "gate on no metric",
            &["eval", "run", "--split", "valid", "--fail-under", "acc=0.5"],
            2,
            &["--fail-under acc", "no such metric"],
        ),
        run(
            "gate without a value",
            &["eval", "run", "--fail-under", "accuracy"],
            2,
            &["--fail-under accuracy", "METRIC=VALUE"],
        ),
        run(
            "gate on a loss",
            &[
                "eval",
                "run",
                "--split",
                "valid",
                "--fail-under",
                "loss=0.000001",
            ],
            1,
            &["quality gate failed", "loss", "is above 0.000001"],
        ),
        run(
            "gate on accuracy",
            &[
                "eval",
                "run",
                "--split",
                "valid",
                "--fail-under",
                "accuracy=1.01",
            ],
            1,
            &["quality gate failed", "accuracy", "is below 1.01"],
        ),
        run(
            "eval a split the run lacks",
            &["eval", "run"],
            2,
            &["no test split"],
        ),
        run(
            "plot a regression",
            &["eval", "run", "--plot", "x.png", "--split", "train"],
            0,
            &[],
        ),
        case(
            "runs of a missing folder",
            &["runs", "nope"],
            2,
            &["nope", "no such file"],
        ),
        case(
            "eval nothing",
            &["eval", "nope"],
            2,
            &["nope", "no such run directory"],
        ),
    ]
}

fn run_case(c: &Case) -> Result<(), String> {
    let p = Project::new()
        .file("train.csv", table(40))
        .file("c.toml", CONFIG);
    for (name, contents) in &c.files {
        let path = p.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    if let Some(setup) = c.setup {
        setup(p.path());
    }
    let before = snapshot(p.path());
    let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
    let out = p.kiln(&args);
    let err = stderr(&out);
    let first = first_error_line(&out);
    let mut problems = Vec::new();
    if out.status.code() != Some(c.code) {
        problems.push(format!("exit {:?}, want {}", out.status.code(), c.code));
    }
    if err.contains("panicked") || err.contains("RUST_BACKTRACE") {
        problems.push("panicked".into());
    }
    if c.code != 0 {
        if !first.starts_with("error: ") {
            problems.push("no error line".into());
        }
        for w in &c.want {
            if !first.contains(w) {
                problems.push(format!("error line lacks {w:?}"));
            }
        }
        let after = snapshot(p.path());
        for (path, content) in &after {
            match before.get(path) {
                None => problems.push(format!("left {} behind", path.display())),
                Some(old) if old != content => problems.push(format!("changed {}", path.display())),
                _ => {}
            }
        }
        for path in before.keys().filter(|k| !after.contains_key(*k)) {
            problems.push(format!("removed {}", path.display()));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}\n  stderr: {}",
            c.name,
            problems.join("; "),
            err.lines().take(3).collect::<Vec<_>>().join(" | ")
        ))
    }
}

fn run_all(cases: Vec<Case>) -> usize {
    let n = cases.len();
    let failures: Vec<String> = cases.iter().filter_map(|c| run_case(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {n} hostile cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    n
}

#[test]
fn hostile_configs_are_errors_at_their_place() {
    let n = run_all(config_cases());
    eprintln!("{n} config cases");
}

#[test]
fn hostile_tables_are_errors_at_their_line() {
    let n = run_all(csv_cases());
    eprintln!("{n} table cases");
}

#[test]
fn hostile_image_folders_are_errors_naming_the_path() {
    let n = run_all(image_cases());
    eprintln!("{n} image cases");
}

#[test]
fn hostile_weights_and_run_directories_are_errors() {
    let n = run_all(run_cases());
    eprintln!("{n} run cases");
}

#[test]
fn the_suite_has_at_least_a_hundred_cases() {
    let total = config_cases().len() + csv_cases().len() + image_cases().len() + run_cases().len();
    assert!(total >= 100, "{total} cases");
}

/// Cases found by trying kiln as a hostile user would (the second round).
fn more_config_cases() -> Vec<Case> {
    vec![
        set("image size on a table", "data.size=[8, 8]", &["--set data.size", "applies to image folders"]),
        set("channels on a table", "data.channels=1", &["--set data.channels", "applies to image folders"]),
        set("given statistics on a table", "data.normalize={mean=[0.5],std=[1]}", &["--set data.normalize", "applies to image folders"]),
        set("augmentation on a table", "data.augment={flip_horizontal=true}", &["--set data.augment", "applies to image folders"]),
        set("two softmaxes", "model.layers=[{type=\"dense\",units=2,activation=\"softmax\"},{type=\"softmax\"}]", &["--set model.layers", "model.layers.1 (softmax)", "squashed twice"]),
        set("softmax hidden by dropout", "model.layers=[{type=\"dense\",units=2,activation=\"softmax\"},{type=\"dropout\",rate=0.1}]", &["--set model.layers", "model.layers.0 (dense)", "before the end"]),
        set("slope without leaky relu", "model.layers.0.slope=0.2", &["--set model.layers.0", "slope"]),
        set("metric twice", "train.metrics=[\"accuracy\", \"accuracy\"]", &["--set train.metrics", "twice"]),
        set("top-k of all classes", "train.metrics=[\"top2\"]", &["--set train.metrics", "always 1"]),
        set("min lr above lr", "optimizer.schedule={type=\"cosine\",min_lr=0.5}", &["--set optimizer.schedule", "would rise"]),
        set("valid split too small", "data.valid_split=0.001", &["--set data.valid_split", "holds out none"]),
        set("delta without a type", "loss={delta=2}", &["--set loss", "set loss.type"]),
        case("a resumed run's seed", &["train", "--resume", "run", "--seed", "5"], 2, &["--seed", "resumed run"]).setup(trained),
        case("a resumed run's data", &["train", "--resume", "run", "--set", "data.valid_split=0.5"], 2, &["--set data.valid_split", "start a new run"]).setup(trained),
        case("a config beside --resume", &["train", "c.toml", "--resume", "run"], 2, &["c.toml", "--resume continues with the run's own config"]).setup(trained),
        case("seed beyond TOML", &["train", "c.toml", "--seed", "18446744073709551615"], 2, &["--seed"]),
        case("a huge config", &["train", "big.toml"], 2, &["big.toml", "at most 1 MiB"]).file("big.toml", format!("x = [{}]", "1,".repeat(600_000))),
        case("a duplicate key", &["train", "c.toml"], 2, &["c.toml:3:1", "duplicate key `seed`"]).file("c.toml", CONFIG.replacen("seed = 1", "seed = 1\nseed = 2", 1)),
        case("a training file that is a pipe", &["train", "c.toml", "--set", "data.train=\"fifo\""], 2, &["fifo", "not a regular file"]).setup(|d| {
            let fifo = std::ffi::CString::new(d.join("fifo").to_str().unwrap()).unwrap();
            // SAFETY: mkfifo with a valid path.
            assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        }),
        case("a test file that is a folder", &["train", "c.toml", "--set", "data.test=\"d\""], 2, &["d", "a folder"]).file("d/x", "x"),
        case("a class lost to dropped rows", &["train", "c.toml", "--set", "data.missing=\"drop\""], 2, &["class \"no\" has no training rows"])
            .file("train.csv", "a,b,c,label\n1,2,3,yes\n1,2,3,yes\n1,,3,no\n"),
        case("a column with no values", &["train", "c.toml", "--set", "data.missing=\"mean\""], 2, &["column \"b\" has no values"])
            .file("train.csv", "a,b,c,label\n1,,3,yes\n1,,3,no\n1,,2,no\n"),
    ]
}

fn more_image_cases() -> Vec<Case> {
    let img = |name, args: &[&str], want: &[&'static str]| {
        case(name, args, 2, want)
            .file("i.toml", IMAGES)
            .setup(write_images)
    };
    vec![
        img(
            "size of zero",
            &["train", "i.toml", "--set", "data.size=[0, 0]"],
            &["--set data.size", "height"],
        ),
        img(
            "size absurd",
            &["train", "i.toml", "--set", "data.size=[100000, 10]"],
            &["--set data.size", "16384"],
        ),
        img(
            "normalize std 0",
            &[
                "train",
                "i.toml",
                "--set",
                "data.normalize={mean=[0.5],std=[0]}",
            ],
            &["--set data.normalize", "std"],
        ),
        img(
            "normalize lengths",
            &[
                "train",
                "i.toml",
                "--set",
                "data.normalize={mean=[0.5, 0.5],std=[1]}",
            ],
            &["--set data.normalize", "2 means but 1"],
        ),
        img(
            "table keys on images",
            &["train", "i.toml", "--set", "data.scale=2"],
            &["--set data.scale", "applies to CSV tables"],
        ),
        img(
            "a link into another class",
            &["train", "i.toml"],
            &["imgs/light/dup.png", "class \"dark\" too"],
        )
        .setup(|d| {
            write_images(d);
            std::os::unix::fs::symlink("../dark/0.png", d.join("imgs/light/dup.png")).unwrap();
        }),
        img(
            "a class with every image skipped",
            &["train", "i.toml", "--set", "data.on_bad_image=\"skip\""],
            &["class \"light\" has no training rows"],
        )
        .setup(|d| {
            write_images(d);
            for i in 0..4 {
                std::fs::write(d.join(format!("imgs/light/{i}.png")), "broken").unwrap();
            }
        }),
    ]
}

fn more_run_cases() -> Vec<Case> {
    let run = |name, args: &[&str], code, want: &[&'static str]| {
        case(name, args, code, want).setup(trained)
    };
    vec![
        run(
            "eval --split and --data",
            &["eval", "run", "--split", "valid", "--data", "x.csv"],
            2,
            &["--split"],
        ),
        run(
            "a gate of NaN",
            &[
                "eval",
                "run",
                "--split",
                "valid",
                "--fail-under",
                "accuracy=nan",
            ],
            2,
            &["--fail-under accuracy=nan", "finite"],
        ),
        run(
            "a damaged run.json",
            &["eval", "run"],
            2,
            &["run/run.json", "not a run.json"],
        )
        .setup(|d| {
            trained(d);
            std::fs::write(d.join("run/run.json"), "{").unwrap();
        }),
        run(
            "a model file without its checksum",
            &["eval", "run", "--split", "valid"],
            2,
            &["model.safetensors", "no checksum"],
        )
        .setup(|d| {
            trained(d);
            // Saved the way another tool would: no metadata, so no checksum.
            let p = d.join("run/model.safetensors");
            let loaded = kiln::run::checkpoint::load(&p).unwrap();
            let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = loaded
                .tensors
                .into_iter()
                .map(|(n, (shape, v))| (n, shape, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
                .collect();
            let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
                .iter()
                .map(|(n, s, d)| {
                    let view =
                        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d);
                    (n.clone(), view.unwrap())
                })
                .collect();
            std::fs::write(&p, safetensors::serialize(views, None).unwrap()).unwrap();
        }),
        run(
            "plot to a file not named .png",
            &["eval", "run", "--split", "valid", "--plot", "x.jpg"],
            2,
            &["x.jpg", "PNG"],
        ),
    ]
}

#[test]
fn hostile_cases_of_the_second_round() {
    let mut all = more_config_cases();
    all.extend(more_image_cases());
    all.extend(more_run_cases());
    let n = run_all(all);
    eprintln!("{n} second-round cases");
}
