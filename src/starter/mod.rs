//! Starter configs for `kiln init`: a config written from what a CSV file (`table`) or an image
//! folder (`images`) holds, that trains as it stands, each choice with its reason beside it.
//! What the data is (column types, the task, classes, image size) comes from the data module,
//! the code `train` reads it with; this module only chooses what to do about it.

mod doc;
mod images;
mod table;

use std::path::Path;

use crate::data;
use crate::error::{Error, Result};
use doc::Doc;

/// A starter config and the one line that sums it up.
pub struct Starter {
    pub toml: String,
    pub summary: String,
}

/// What `kiln init` was asked.
pub struct Request<'a> {
    /// A CSV file, or a folder of class folders.
    pub data: &'a Path,
    /// The target column (CSV only); default: one named like a target, else the last.
    pub target: Option<&'a str>,
    /// Where the config goes, as its first comment names it (`-`: standard output).
    pub output: &'a str,
}

/// A folder is a set of images, one subfolder per class; a file is a CSV table.
pub fn starter(r: &Request) -> Result<Starter> {
    let meta = std::fs::metadata(r.data).map_err(|e| Error::input(r.data, e))?;
    if !meta.is_dir() {
        return table::starter(r);
    }
    if let Some(t) = r.target {
        return Err(Error::Usage(format!(
            "--target {t}: {} is an image folder, whose classes are its subfolders; --target names a CSV column",
            r.data.display()
        )));
    }
    images::starter(r)
}

/// What a config for `data` is called: the file's name without `.csv` / `.gz`, or the folder's;
/// for data named `train` (train.csv, images/train), the folder it is in.
pub fn stem(data: &Path) -> String {
    let name = |p: &Path| {
        let n = p.file_name().map(|n| n.to_string_lossy().into_owned());
        n.unwrap_or_default()
    };
    let mut stem = name(data);
    for ext in [".gz", ".csv"] {
        if let Some(s) = stem.strip_suffix(ext).filter(|s| !s.is_empty()) {
            stem = s.to_string();
        }
    }
    if stem == "train" {
        let parent = std::path::absolute(data).ok();
        let up = parent.as_deref().and_then(Path::parent).map(name);
        if let Some(up) = up.filter(|u| !u.is_empty()) {
            stem = up;
        }
    }
    stem
}

/// `stem` as a run name: letters, digits, `.`, `_` and `-`, not starting with `.` or `-`.
fn run_name(data: &Path) -> String {
    let safe: String = stem(data)
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '-',
        })
        .take(100)
        .collect();
    let safe = safe.trim_start_matches(['.', '-']);
    if safe.is_empty() {
        "run".into()
    } else {
        safe.into()
    }
}

/// A path as a config holds it: TOML text, so it must be UTF-8.
fn path_text(path: &Path) -> Result<&str> {
    path.to_str().ok_or_else(|| {
        Error::Usage(format!(
            "{}: the path is not UTF-8, which a TOML config cannot hold",
            path.display()
        ))
    })
}

/// The comment at the top and the keys every starter begins with.
fn begin(r: &Request) -> Result<Doc> {
    let data = path_text(r.data)?;
    let file = if r.output == "-" { "FILE" } else { r.output };
    let mut doc = Doc::default();
    doc.comment(&format!(
        "A starter config written by `kiln init {data}`.\n\
         It trains as it stands: kiln train {file}\n\
         Each choice says why beside it; change what you know better. Paths are relative to\n\
         the folder kiln runs in, as in every kiln config."
    ));
    doc.set(
        "name",
        doc::string(&run_name(r.data)),
        "runs are named <name>-<time>",
    );
    doc.set(
        "seed",
        42,
        "every random draw: init, validation split, shuffles, dropout",
    );
    Ok(doc)
}

/// Optimizer steps a starter aims to train for; early stopping usually ends it sooner.
const STEPS: usize = 2000;

/// How long and in what batches to train on `rows` training rows: bigger batches for more
/// data, and epochs enough for about `STEPS` steps (10 to 200).
struct Pace {
    batch: usize,
    epochs: usize,
    /// Epochs without a better validation loss before early stopping.
    patience: usize,
}

fn pace(rows: usize) -> Pace {
    let batch = match rows {
        0..1_000 => 16,
        1_000..20_000 => 32,
        20_000..200_000 => 64,
        _ => 128,
    };
    let steps = rows.div_ceil(batch).max(1);
    let epochs = STEPS.div_ceil(steps).clamp(10, 200);
    Pace {
        batch,
        epochs,
        patience: (epochs / 10).clamp(3, 10),
    }
}

/// The share of rows held out for validation, from groups of rows (the classes, stratified;
/// or all rows): a fifth of a small table, a tenth of a large one; 0 when that would hold
/// out no row.
fn valid_share(groups: &[usize]) -> f64 {
    let rows: usize = groups.iter().sum();
    let share = if rows < 1000 { 0.2 } else { 0.1 };
    if data::rows_held_out(groups, share) == 0 {
        0.0
    } else {
        share
    }
}

/// `[optimizer]` and `[train]`: Adam, epochs and batches from the training rows, early
/// stopping on the validation loss when there is a validation split.
fn write_training(doc: &mut Doc, train_rows: usize, rows: &str, metrics: &[String], valid: bool) {
    let p = pace(train_rows);
    doc.table(&["optimizer"]);
    doc.set("type", doc::string("adam"), "");
    doc.set("lr", 0.001, "Adam's usual rate");
    doc.table(&["train"]);
    let more = if valid {
        "; early stopping ends sooner"
    } else {
        ""
    };
    doc.set(
        "epochs",
        p.epochs,
        &format!("about {STEPS} steps of {} {rows}{more}", p.batch),
    );
    doc.set(
        "batch_size",
        p.batch,
        &format!("for about {train_rows} training {rows}"),
    );
    doc.set("metrics", doc::list(metrics), "");
    if valid {
        doc.set(
            "early_stopping",
            format!("{{ monitor = \"valid.loss\", patience = {} }}", p.patience),
            "the best epoch's model is the one kept",
        );
    }
}

/// Hidden layer sizes of an MLP on `width` input values: the next power of two of twice the
/// width (16 to 256), then half that.
fn hidden_units(width: usize) -> [usize; 2] {
    let first = (2 * width).next_power_of_two().clamp(16, 256);
    [first, first / 2]
}

/// Dropout after each hidden layer.
const DROPOUT: f64 = 0.2;

/// Dense layers on `width` values: two hidden ReLU layers with dropout, then `outputs` units.
fn write_mlp(doc: &mut Doc, width: usize, outputs: usize, output_why: &str) {
    for (i, units) in hidden_units(width).into_iter().enumerate() {
        doc.array_table(&["model", "layers"]);
        doc.set("type", doc::string("dense"), "");
        let why = if i == 0 {
            format!("hidden sizes from the {width} input values of a row")
        } else {
            String::new()
        };
        doc.set("units", units, &why);
        doc.set("activation", doc::string("relu"), "");
        doc.array_table(&["model", "layers"]);
        doc.set("type", doc::string("dropout"), "");
        doc.set("rate", DROPOUT, "");
    }
    doc.array_table(&["model", "layers"]);
    doc.set("type", doc::string("dense"), "");
    doc.set("units", outputs, output_why);
}

/// `name (count), ...` for the first few classes.
fn class_list(classes: &[(String, usize)]) -> String {
    const SHOWN: usize = 10;
    let mut shown: Vec<String> = classes
        .iter()
        .take(SHOWN)
        .map(|(c, n)| format!("{c} ({n})"))
        .collect();
    if classes.len() > SHOWN {
        shown.push(format!("... {} more", classes.len() - SHOWN));
    }
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_file_or_the_folder_around_a_train_split() {
        assert_eq!(stem(Path::new("data/iris.csv")), "iris");
        assert_eq!(stem(Path::new("sets/spam/train.csv.gz")), "spam");
        assert_eq!(stem(Path::new("mnist/images/train")), "images");
        assert_eq!(stem(Path::new("x.tsv")), "x.tsv");
        assert_eq!(run_name(Path::new("my data (v2).csv")), "my-data--v2-");
        assert_eq!(run_name(Path::new(".hidden.csv")), "hidden");
    }

    #[test]
    fn pace_grows_batches_and_shrinks_epochs_with_the_rows() {
        let small = pace(135);
        assert_eq!((small.batch, small.epochs, small.patience), (16, 200, 10));
        let mnist = pace(7200);
        assert_eq!((mnist.batch, mnist.epochs, mnist.patience), (32, 10, 3));
        assert_eq!(hidden_units(4), [16, 8]);
        assert_eq!(hidden_units(12), [32, 16]);
        assert_eq!(hidden_units(784), [256, 128]);
    }

    #[test]
    fn a_share_that_holds_out_nothing_is_none() {
        assert_eq!(valid_share(&[50, 50, 50]), 0.2);
        assert_eq!(valid_share(&[2000]), 0.1);
        assert_eq!(valid_share(&[1, 1, 2]), 0.0);
    }
}
