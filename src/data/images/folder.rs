//! Finding, decoding and batching images: files found recursively and sorted, extensions
//! matched case-insensitively; images decoded in parallel, converted to the configured
//! channels, resized, and kept as u8; batches become f32 in [0, 1], normalized per channel,
//! augmented for training.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::Augment;
use crate::error::{Error, Result};
use crate::tensor::{Rng, Tensor};

pub const EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "gif", "webp", "tiff", "tif"];

/// Resizing filter: bilinear (the `image` crate's `Triangle`), as torchvision's default.
pub const RESIZE_FILTER: FilterType = FilterType::Triangle;

/// What a run knows about its images, saved in run.json for eval and predict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageSchema {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// Decoded images `[n, c, h, w]` as u8.
pub struct ImageSet {
    pub data: Vec<u8>,
    pub n: usize,
    pub schema: ImageSchema,
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Image files under `dir`, recursively, sorted by path.
/// Symbolic links are followed (as torchvision's `os.walk(followlinks=True)`), but each folder
/// and each file is taken once, and a link back to the folder or above it (a cycle) is not
/// followed: the walk ends instead of looping or wandering into other classes.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let canonical = |p: &Path| std::fs::canonicalize(p).map_err(|e| Error::input(p, e));
    let root = canonical(dir)?;
    // Every folder above the root counts as seen: a link to one is a cycle.
    seen.extend(root.ancestors().map(Path::to_path_buf));
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            let path = entry.map_err(|e| Error::io(&d, e))?.path();
            let take = |p: &Path, seen: &mut std::collections::HashSet<PathBuf>| {
                std::fs::canonicalize(p).is_ok_and(|c| seen.insert(c))
            };
            if path.is_dir() {
                if take(&path, &mut seen) {
                    stack.push(path);
                }
            } else if is_image(&path) {
                // A dangling link is kept: decoding it says what is wrong with it.
                let dangling = std::fs::metadata(&path).is_err();
                if dangling || take(&path, &mut seen) {
                    files.push(path);
                }
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The class folders of `dir`, sorted by name.
pub fn class_folders(dir: &Path) -> Result<Vec<String>> {
    let mut classes: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::input(dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    classes.sort();
    if classes.is_empty() {
        return Err(Error::data(
            dir.display().to_string(),
            "no class subfolders (expected one folder per class, as torchvision's ImageFolder)",
        ));
    }
    Ok(classes)
}

/// Every image of a labelled folder with its class index in `classes`. A class folder with no
/// image is an error, and so is a folder that is not among `classes`.
pub fn labelled_files(dir: &Path, classes: &[String]) -> Result<Vec<(PathBuf, usize)>> {
    let mut out = Vec::new();
    // Each image file once in the whole set: a link cannot give one file two classes.
    let mut owner: std::collections::HashMap<PathBuf, String> = std::collections::HashMap::new();
    for name in class_folders(dir)? {
        let index = classes.iter().position(|c| *c == name).ok_or_else(|| {
            Error::data(
                dir.join(&name).display().to_string(),
                format!(
                    "class folder \"{name}\" is not a class of the training data ({})",
                    classes.join(", ")
                ),
            )
        })?;
        let files = image_files(&dir.join(&name))?;
        if files.is_empty() {
            return Err(Error::data(
                dir.join(&name).display().to_string(),
                "empty class folder: no image files (png, jpg, jpeg, bmp, gif, webp, tiff)",
            ));
        }
        for f in &files {
            let Ok(real) = std::fs::canonicalize(f) else {
                continue;
            };
            if let Some(other) = owner.insert(real, name.clone()) {
                return Err(Error::data(
                    f.display().to_string(),
                    format!("the same image is in class \"{other}\" too (through a link): a file can have one class"),
                ));
            }
        }
        out.extend(files.into_iter().map(|f| (f, index)));
    }
    Ok(out)
}

/// Decode one image into `[c, h, w]` u8 at the schema's size and channels.
pub fn decode(path: &Path, s: &ImageSchema) -> std::result::Result<Vec<u8>, String> {
    fit(image::open(path).map_err(|e| e.to_string())?, s)
}

/// Decode an image file's bytes (PNG, JPEG, ...) as `decode` does a file. Width and height
/// are capped at 16,384 and decoding at 256 MiB: a small file cannot ask for a huge buffer.
pub fn decode_bytes(bytes: &[u8], s: &ImageSchema) -> std::result::Result<Vec<u8>, String> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(16_384);
    limits.max_image_height = Some(16_384);
    limits.max_alloc = Some(256 << 20);
    reader.limits(limits);
    fit(reader.decode().map_err(|e| e.to_string())?, s)
}

/// An image at the schema's size and channels as `[c, h, w]` u8.
fn fit(img: image::DynamicImage, s: &ImageSchema) -> std::result::Result<Vec<u8>, String> {
    let img = if (img.height() as usize, img.width() as usize) == (s.height, s.width) {
        img
    } else {
        img.resize_exact(s.width as u32, s.height as u32, RESIZE_FILTER)
    };
    let hw = s.height * s.width;
    Ok(match s.channels {
        1 => img.to_luma8().into_raw(),
        _ => {
            let rgb = img.to_rgb8().into_raw();
            (0..3)
                .flat_map(|c| (0..hw).map(move |i| (c, i)))
                .map(|(c, i)| rgb[i * 3 + c])
                .collect()
        }
    })
}

/// Decode `paths` in parallel. A file that does not decode is an error naming it, or with
/// `skip` it is left out; returns the images and the indices kept.
pub fn decode_all(
    paths: &[PathBuf],
    s: &ImageSchema,
    skip: bool,
) -> Result<(ImageSet, Vec<usize>)> {
    let bytes = paths.len() as u128 * (s.channels * s.height * s.width) as u128;
    if let (Err(e), Some(first)) = (crate::limits::fits(bytes), paths.first()) {
        let dir = first.parent().unwrap_or(first);
        return Err(Error::data(
            dir.display().to_string(),
            format!(
                "{} images of {}×{}×{} {e}; use a smaller data.size",
                paths.len(),
                s.channels,
                s.height,
                s.width
            ),
        ));
    }
    let decoded: Vec<std::result::Result<Vec<u8>, String>> =
        paths.par_iter().map(|p| decode(p, s)).collect();
    let mut data = Vec::with_capacity(paths.len() * s.channels * s.height * s.width);
    let mut kept = Vec::with_capacity(paths.len());
    for (i, d) in decoded.into_iter().enumerate() {
        match d {
            Ok(pixels) => {
                data.extend_from_slice(&pixels);
                kept.push(i);
            }
            Err(e) if !skip => {
                return Err(Error::data(paths[i].display().to_string(), format!("cannot decode the image: {e} (set data.on_bad_image = \"skip\" to leave such files out)")));
            }
            Err(_) => {}
        }
    }
    Ok((
        ImageSet {
            data,
            n: kept.len(),
            schema: s.clone(),
        },
        kept,
    ))
}

impl ImageSet {
    fn image_len(&self) -> usize {
        self.schema.channels * self.schema.height * self.schema.width
    }

    /// The images at `rows`, in that order.
    pub fn subset(&self, rows: &[usize]) -> ImageSet {
        let len = self.image_len();
        let data = rows
            .iter()
            .flat_map(|&r| self.data[r * len..(r + 1) * len].iter().copied())
            .collect();
        ImageSet {
            data,
            n: rows.len(),
            schema: self.schema.clone(),
        }
    }

    /// Per-channel mean and standard deviation of the pixels in [0, 1].
    pub fn channel_stats(&self) -> (Vec<f32>, Vec<f32>) {
        let (c, hw) = (self.schema.channels, self.schema.height * self.schema.width);
        let mut sums = vec![(0f64, 0f64); c];
        for img in self.data.chunks_exact(self.image_len()) {
            for (ch, plane) in img.chunks_exact(hw).enumerate() {
                for &p in plane {
                    let v = p as f64 / 255.0;
                    sums[ch].0 += v;
                    sums[ch].1 += v * v;
                }
            }
        }
        let count = (self.n * hw).max(1) as f64;
        sums.iter()
            .map(|&(s, s2)| {
                let mean = s / count;
                (
                    mean as f32,
                    (s2 / count - mean * mean).max(0.0).sqrt() as f32,
                )
            })
            .unzip()
    }

    /// Images `idx` as normalized f32 `[b, c, h, w]`, augmented when `augment` is given.
    pub fn batch(&self, idx: &[u32], augment: Option<(&Augment, &mut Rng)>) -> Tensor {
        self.batch_part(idx, 0..idx.len(), augment)
    }

    /// Images `idx[own]` of the batch `idx`: the augmentation draws of every image of the batch
    /// are made, so a rank's images are augmented as one process would augment them.
    pub fn batch_part(
        &self,
        idx: &[u32],
        own: std::ops::Range<usize>,
        augment: Option<(&Augment, &mut Rng)>,
    ) -> Tensor {
        let s = &self.schema;
        let (len, hw) = (self.image_len(), s.height * s.width);
        let mine = &idx[own.clone()];
        let mut out = vec![0.0f32; mine.len() * len];
        for (dst, &i) in out.chunks_exact_mut(len).zip(mine) {
            let src = &self.data[i as usize * len..][..len];
            for (ch, (d, p)) in dst
                .chunks_exact_mut(hw)
                .zip(src.chunks_exact(hw))
                .enumerate()
            {
                let (mean, inv_std) = (s.mean[ch], 1.0 / s.std[ch]);
                for (o, &v) in d.iter_mut().zip(p) {
                    *o = (v as f32 / 255.0 - mean) * inv_std;
                }
            }
        }
        if let Some((aug, rng)) = augment {
            let mut images = out.chunks_exact_mut(len);
            for at in 0..idx.len() {
                let draw = Draw::new(aug, rng);
                if own.contains(&at) {
                    let img = images.next().expect("one image per own row");
                    augment_one(img, s, aug, &draw);
                }
            }
        }
        Tensor::from_vec(out, [mine.len(), s.channels, s.height, s.width])
    }
}

/// One image's augmentation: whether it flips, and its crop's shift.
struct Draw {
    flip: bool,
    dy: isize,
    dx: isize,
}

impl Draw {
    /// Drawn in a fixed order from the step's stream, whatever the options: flip, then shift.
    fn new(aug: &Augment, rng: &mut Rng) -> Draw {
        let flip = aug.flip_horizontal && rng.uniform() < 0.5;
        let p = aug.random_crop;
        let (dy, dx) = if p > 0 {
            (
                rng.below(2 * p + 1) as isize - p as isize,
                rng.below(2 * p + 1) as isize - p as isize,
            )
        } else {
            (0, 0)
        };
        Draw { flip, dy, dx }
    }
}

/// Flip and pad-then-crop one normalized image in place. Padding is zero after normalization,
/// as torchvision's RandomCrop pads the normalized tensor when it runs after Normalize.
fn augment_one(img: &mut [f32], s: &ImageSchema, aug: &Augment, draw: &Draw) {
    let (h, w) = (s.height, s.width);
    if draw.flip {
        for row in img.chunks_exact_mut(w) {
            row.reverse();
        }
    }
    if aug.random_crop > 0 {
        let (dy, dx) = (draw.dy, draw.dx);
        let src = img.to_vec();
        for (plane_out, plane_in) in img.chunks_exact_mut(h * w).zip(src.chunks_exact(h * w)) {
            for y in 0..h {
                for x in 0..w {
                    let (sy, sx) = (y as isize + dy, x as isize + dx);
                    let inside = sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < w;
                    plane_out[y * w + x] = if inside {
                        plane_in[sy as usize * w + sx as usize]
                    } else {
                        0.0
                    };
                }
            }
        }
    }
}
