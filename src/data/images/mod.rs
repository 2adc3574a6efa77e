//! Image folders, following torchvision's ImageFolder: classes are the immediate subfolders
//! sorted by name (a class's index is its position), each holding its images at any depth.
//! Prepared into splits with per-channel normalization fitted on the training images; read the
//! same way for `eval --data`, and file by file for `predict`.

mod folder;

use std::io::BufRead;
use std::path::{Path, PathBuf};

pub use folder::{
    class_folders, decode, decode_all, decode_bytes, image_files, labelled_files, ImageSchema,
    ImageSet, EXTENSIONS, RESIZE_FILTER,
};

use super::split::holdout_rows;
use super::{DataFile, DataSchema, Features, InputBatch, Inputs, Prepared, Split};
use crate::config::{DataConfig, Missing, Normalize, NormalizeSpec, OnBadImage, Task};
use crate::data::{Preprocess, Transform};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// A folder as run.json records it: total bytes, and a SHA-256 over its files' relative paths
/// and contents in sorted order.
fn folder_record(split: &str, dir: &Path, files: &[PathBuf]) -> Result<DataFile> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut bytes = 0;
    for f in files {
        hasher.update(
            f.strip_prefix(dir)
                .unwrap_or(f)
                .to_string_lossy()
                .as_bytes(),
        );
        let mut file = std::fs::File::open(f).map_err(|e| Error::input(f, e))?;
        bytes += std::io::copy(&mut file, &mut hasher).map_err(|e| Error::io(f, e))?;
    }
    let sha256 = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(DataFile {
        split: split.into(),
        path: std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()),
        bytes,
        sha256,
    })
}

/// Decode a labelled folder with the run's image schema; also returns how many files were
/// skipped as undecodable.
fn read_folder(
    name: &'static str,
    dir: &Path,
    schema: &ImageSchema,
    classes: &[String],
    skip_bad: bool,
) -> Result<(Split, DataFile, usize)> {
    let labelled = labelled_files(dir, classes)?;
    let paths: Vec<PathBuf> = labelled.iter().map(|(p, _)| p.clone()).collect();
    let (set, kept) = decode_all(&paths, schema, skip_bad)?;
    let y: Vec<f32> = kept.iter().map(|&i| labelled[i].1 as f32).collect();
    let record = folder_record(name, dir, &paths)?;
    let n = y.len();
    let split = Split {
        name,
        source: dir.display().to_string(),
        features: Features::Images(set),
        y: Tensor::from_vec(y, [n]),
    };
    Ok((split, record, paths.len() - kept.len()))
}

/// A labelled folder read with a run's image schema and classes (`eval --data`).
pub fn read_labelled(dir: &Path, schema: &ImageSchema, classes: &[String]) -> Result<Split> {
    Ok(read_folder("data", dir, schema, classes, false)?.0)
}

/// The image size a config asks for, else the first training image's.
fn image_size(cfg: &DataConfig, classes: &[String]) -> Result<(usize, usize)> {
    if let Some([h, w]) = cfg.size {
        return Ok((h, w));
    }
    // read_folder lists the files again; this walk happens only when the size is inferred.
    let first = labelled_files(&cfg.train, classes)?.remove(0).0;
    size_of(&first)
}

/// An image file's (height, width), read from its header.
fn size_of(path: &Path) -> Result<(usize, usize)> {
    let (w, h) = image::image_dimensions(path).map_err(|e| {
        Error::data(
            path.display().to_string(),
            format!("cannot read the image size: {e}"),
        )
    })?;
    Ok((h as usize, w as usize))
}

/// The class folders of a training folder: at least two.
fn training_classes(dir: &Path) -> Result<Vec<String>> {
    let classes = class_folders(dir)?;
    if classes.len() < 2 {
        return Err(Error::data(
            dir.display().to_string(),
            format!(
                "one class folder ({}): classification needs at least two",
                classes.join(", ")
            ),
        ));
    }
    Ok(classes)
}

/// What a training folder holds, for `kiln init`: its classes (in kiln's order) with their
/// image counts, the size `train` would take (the first image's), and whether the images are
/// grey.
pub struct FolderSurvey {
    pub classes: Vec<(String, usize)>,
    pub height: usize,
    pub width: usize,
    /// Every image looked at (the first of each class) has no colour.
    pub grey: bool,
}

pub fn survey(dir: &Path) -> Result<FolderSurvey> {
    let classes = training_classes(dir)?;
    let files = labelled_files(dir, &classes)?;
    let mut counts = vec![0; classes.len()];
    for (_, c) in &files {
        counts[*c] += 1;
    }
    let (height, width) = size_of(&files[0].0)?;
    let mut grey = true;
    for c in 0..classes.len() {
        let (path, _) = files
            .iter()
            .find(|(_, k)| *k == c)
            .expect("no class is empty");
        let image = image::open(path).map_err(|e| {
            Error::data(
                path.display().to_string(),
                format!("cannot decode the image: {e}"),
            )
        })?;
        grey &= !image.color().has_color();
    }
    Ok(FolderSurvey {
        classes: classes.into_iter().zip(counts).collect(),
        height,
        width,
        grey,
    })
}

/// Per-channel mean and std: given, fitted on the training images, or none (0 and 1).
fn normalization(cfg: &DataConfig, train: &ImageSet) -> Result<(Vec<f32>, Vec<f32>)> {
    let channels = train.schema.channels;
    Ok(match &cfg.normalize {
        Some(NormalizeSpec::Given { mean, std }) => {
            if mean.len() != channels {
                return Err(Error::config(
                    "data.normalize",
                    format!("{} means for {channels} channels", mean.len()),
                ));
            }
            (mean.clone(), std.clone())
        }
        Some(NormalizeSpec::Named(Normalize::Standard)) => {
            let (mean, std) = train.channel_stats();
            let std = std
                .iter()
                .map(|s| if *s > 0.0 { *s } else { 1.0 })
                .collect();
            (mean, std)
        }
        _ => (vec![0.0; channels], vec![1.0; channels]),
    })
}

/// Read and prepare the image splits a config names.
pub fn prepare(cfg: &DataConfig, seed: u64) -> Result<Prepared> {
    if cfg.target_normalize.is_some() {
        return Err(Error::config(
            "data.target_normalize",
            "applies to regression targets; image folders are classification",
        ));
    }
    let classes = training_classes(&cfg.train)?;
    let (height, width) = image_size(cfg, &classes)?;
    let channels = cfg.channels.unwrap_or(3);
    if let Some(crop) = cfg.augment.as_ref().map(|a| a.random_crop) {
        if crop >= height.min(width) {
            return Err(Error::config(
                "data.augment.random_crop",
                format!("{crop} pixels of padding for {height}×{width} images: must be less than the smaller side"),
            ));
        }
    }
    let mut shape = ImageSchema {
        height,
        width,
        channels,
        mean: vec![0.0; channels],
        std: vec![1.0; channels],
    };
    let skip = cfg.on_bad_image == OnBadImage::Skip;
    let (mut train, record, mut skipped) =
        read_folder("train", &cfg.train, &shape, &classes, skip)?;
    let mut files = vec![record];
    let mut valid = None;
    if let Some(dir) = &cfg.valid {
        let (v, record, s) = read_folder("valid", dir, &shape, &classes, skip)?;
        (valid, skipped) = (Some(v), skipped + s);
        files.push(record);
    } else if let Some(h) = holdout_rows(cfg, &train.y.to_vec(), Task::Classification, seed)? {
        let Features::Images(set) = &train.features else {
            unreachable!("an image split")
        };
        let part = |name: &'static str, rows: &[usize], source: String| Split {
            name,
            source,
            features: Features::Images(set.subset(rows)),
            y: train
                .y
                .index_select(&rows.iter().map(|&r| r as u32).collect::<Vec<_>>()),
        };
        let v = part("valid", &h.held, h.source);
        let t = part("train", &h.keep, train.source.clone());
        (train, valid) = (t, Some(v));
    }
    let mut test = None;
    if let Some(dir) = &cfg.test {
        let (t, record, s) = read_folder("test", dir, &shape, &classes, skip)?;
        (test, skipped) = (Some(t), skipped + s);
        files.push(record);
    }
    let Features::Images(train_set) = &train.features else {
        unreachable!("an image split")
    };
    (shape.mean, shape.std) = normalization(cfg, train_set)?;
    for split in [Some(&mut train), valid.as_mut(), test.as_mut()]
        .into_iter()
        .flatten()
    {
        if let Features::Images(set) = &mut split.features {
            set.schema = shape.clone();
        }
    }
    let warnings = if skipped > 0 {
        vec![format!(
            "skipped {skipped} image(s) that did not decode (data.on_bad_image = \"skip\")"
        )]
    } else {
        Vec::new()
    };
    let schema = DataSchema {
        features: Vec::new(),
        target: "class".into(),
        task: Task::Classification,
        classes,
        preprocess: Preprocess {
            transform: Transform::None,
            missing: Missing::Error,
            fill: None,
        },
        image: Some(shape),
        target_scale: None,
        columns: Vec::new(),
    };
    Ok(Prepared {
        schema,
        task_reason: "image folders: one class per subfolder".into(),
        train,
        valid,
        test,
        files,
        warnings,
        column_notes: Vec::new(),
    })
}

/// Image files for predict: one file, a folder (recursive, sorted), or paths on stdin.
pub struct FileInputs<'a> {
    paths: std::vec::IntoIter<PathBuf>,
    schema: &'a ImageSchema,
}

impl<'a> FileInputs<'a> {
    pub fn open(input: Option<&Path>, schema: &'a ImageSchema) -> Result<FileInputs<'a>> {
        let paths: Vec<PathBuf> = match input {
            Some(p) if p.is_dir() => image_files(p)?,
            Some(p) => vec![p.to_path_buf()],
            None => std::io::stdin()
                .lock()
                .lines()
                .map(|l| l.map_err(|e| Error::io("<stdin>", e)))
                .filter(|l| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
                .map(|l| l.map(|l| PathBuf::from(l.trim())))
                .collect::<Result<_>>()?,
        };
        Ok(FileInputs {
            paths: paths.into_iter(),
            schema,
        })
    }
}

impl Inputs for FileInputs<'_> {
    fn named(&self) -> bool {
        true
    }

    fn next_batch(&mut self, n: usize) -> Result<Option<InputBatch>> {
        let chunk: Vec<PathBuf> = self.paths.by_ref().take(n.max(1)).collect();
        if chunk.is_empty() {
            return Ok(None);
        }
        let (set, _) = decode_all(&chunk, self.schema, false)?;
        let idx: Vec<u32> = (0..set.n as u32).collect();
        let paths = chunk.iter().map(|p| p.display().to_string()).collect();
        Ok(Some(InputBatch {
            x: set.batch(&idx, None),
            paths: Some(paths),
        }))
    }
}
