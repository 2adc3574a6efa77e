//! A starter config for an image folder: one class per subfolder (or `train` / `test` / `valid`
//! folders of them), grey or RGB as the images are, per-channel standardization, and a small
//! convnet.

use std::path::{Path, PathBuf};

use super::doc::{self, Doc};
use super::{Request, Starter};
use crate::data::images::{self, FolderSurvey};
use crate::error::Result;

/// The longer side images are resized to when they are larger: a starter that trains in
/// minutes on a CPU.
const MAX_SIDE: usize = 64;

/// Filters of the convolution rounds.
const FILTERS: [usize; 2] = [16, 32];

/// Units of the dense layer after the convolutions.
const DENSE_UNITS: usize = 64;

/// The folders a dataset's images are in.
struct Folders {
    train: PathBuf,
    valid: Option<PathBuf>,
    test: Option<PathBuf>,
}

/// `dir/train` with `dir/test` and `dir/valid` when `dir` holds split folders and nothing else;
/// else `dir` is the training folder.
fn folders(dir: &Path) -> Folders {
    const SPLITS: [&str; 4] = ["train", "valid", "validation", "test"];
    let subfolders: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let splits = subfolders.iter().any(|s| s == "train")
        && subfolders.iter().all(|s| SPLITS.contains(&s.as_str()));
    if !splits {
        return Folders {
            train: dir.to_path_buf(),
            valid: None,
            test: None,
        };
    }
    let find = |names: &[&str]| names.iter().map(|n| dir.join(n)).find(|p| p.is_dir());
    Folders {
        train: dir.join("train"),
        valid: find(&["valid", "validation"]),
        test: find(&["test"]),
    }
}

pub fn starter(r: &Request) -> Result<Starter> {
    let f = folders(r.data);
    let s = images::survey(&f.train)?;
    let images: usize = s.classes.iter().map(|(_, n)| n).sum();
    let [height, width] = resized(s.height, s.width);
    let channels = if s.grey { 1 } else { 3 };
    let mut doc = super::begin(r)?;
    doc.table(&["data"]);
    doc.set("format", doc::string("images"), "one folder per class");
    doc.set(
        "train",
        doc::string(super::path_text(&f.train)?),
        &format!("{images} images in {} class folders", s.classes.len()),
    );
    doc.comment(&format!(
        "classes (images): {}",
        super::class_list(&s.classes)
    ));
    let valid = match &f.valid {
        Some(v) => {
            doc.set(
                "valid",
                doc::string(super::path_text(v)?),
                "beside train: for validation and early stopping",
            );
            true
        }
        None => false,
    };
    if let Some(t) = &f.test {
        doc.set(
            "test",
            doc::string(super::path_text(t)?),
            "beside train: evaluated with the best model at the end",
        );
    }
    let colour = if s.grey {
        "the images are grey"
    } else {
        "the images have colour"
    };
    doc.set("channels", channels, colour);
    let size_why = if [height, width] == [s.height, s.width] {
        "the first image's size; every image is resized to it".to_string()
    } else {
        format!(
            "the first image is {}×{}: smaller trains faster (raise it for detail)",
            s.height, s.width
        )
    };
    doc.set("size", format!("[{height}, {width}]"), &size_why);
    doc.set(
        "normalize",
        doc::string("standard"),
        "per channel, fitted on the training images",
    );
    let groups: Vec<usize> = s.classes.iter().map(|(_, n)| *n).collect();
    let share = if valid {
        0.0
    } else {
        super::valid_share(&groups)
    };
    if !valid {
        let why = if share > 0.0 {
            "held out (stratified) for validation and early stopping"
        } else {
            "too few images to hold any out for validation"
        };
        doc.set("valid_split", format!("{share:?}"), why);
    }
    write_convnet(&mut doc, height, width, channels, s.classes.len());
    doc.table(&["loss"]);
    doc.set(
        "type",
        doc::string(crate::config::Task::Classification.default_loss().name()),
        "classification's loss",
    );
    let train_rows = ((images as f64) * (1.0 - share)).round() as usize;
    super::write_training(
        &mut doc,
        train_rows,
        "images",
        &["accuracy".into()],
        valid || share > 0.0,
    );
    Ok(Starter {
        toml: doc.finish(),
        summary: summary(&s, &f, images, [height, width]),
    })
}

/// The size to train at: the images' own, or scaled so the longer side is `MAX_SIDE`.
fn resized(height: usize, width: usize) -> [usize; 2] {
    let long = height.max(width);
    if long <= MAX_SIDE {
        return [height, width];
    }
    let scale = |side: usize| ((side * MAX_SIDE + long / 2) / long).max(1);
    [scale(height), scale(width)]
}

/// Rounds of a 3×3 convolution (ReLU, padded to keep the size) and a 2×2 max pool, as many as
/// the size allows (two at most), then a dense layer and one output per class.
fn write_convnet(doc: &mut Doc, height: usize, width: usize, channels: usize, classes: usize) {
    let mut side = height.min(width);
    let rounds = FILTERS.iter().take_while(|_| {
        let fits = side >= 2;
        side /= 2;
        fits
    });
    let rounds: Vec<usize> = rounds.copied().collect();
    doc.blank();
    doc.comment(&format!(
        "The model: a small convnet on {channels}×{height}×{width} images: {} of a 3×3 convolution and\na 2×2 max pool, then a dense layer and one output per class.",
        match rounds.len() {
            0 => "no round (the images are too small)",
            1 => "one round",
            _ => "two rounds",
        }
    ));
    for filters in rounds {
        doc.array_table(&["model", "layers"]);
        doc.set("type", doc::string("conv2d"), "");
        doc.set("filters", filters, "");
        doc.set("kernel", 3, "");
        doc.set(
            "padding",
            doc::string("same"),
            "keeps the size; the pool halves it",
        );
        doc.set("activation", doc::string("relu"), "");
        doc.array_table(&["model", "layers"]);
        doc.set("type", doc::string("maxpool2d"), "");
        doc.set("kernel", 2, "");
    }
    doc.array_table(&["model", "layers"]);
    doc.set("type", doc::string("flatten"), "");
    doc.array_table(&["model", "layers"]);
    doc.set("type", doc::string("dense"), "");
    doc.set("units", DENSE_UNITS, "");
    doc.set("activation", doc::string("relu"), "");
    doc.array_table(&["model", "layers"]);
    doc.set("type", doc::string("dropout"), "");
    doc.set("rate", format!("{:?}", super::DROPOUT), "");
    doc.array_table(&["model", "layers"]);
    doc.set("type", doc::string("dense"), "");
    doc.set(
        "units",
        classes,
        "one per class (the softmax is in the loss)",
    );
}

/// `classification of 10 classes from 28×28 grey images, 8000 images; test: ...`
fn summary(s: &FolderSurvey, f: &Folders, images: usize, size: [usize; 2]) -> String {
    let colour = if s.grey { "grey" } else { "colour" };
    let mut line = format!(
        "classification of {} classes (class folders) from {colour} images at {}×{}, {images} training images",
        s.classes.len(),
        size[0],
        size[1]
    );
    for (name, dir) in [("valid", &f.valid), ("test", &f.test)] {
        if let Some(d) = dir {
            line.push_str(&format!("; {name}: {}", d.display()));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_images_shrink_to_the_longest_side_small_ones_stay() {
        assert_eq!(resized(28, 28), [28, 28]);
        assert_eq!(resized(480, 640), [48, 64]);
        assert_eq!(resized(1, 1000), [1, 64]);
    }
}
