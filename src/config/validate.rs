//! Range checks that serde's types cannot express: every numeric key has a meaningful range,
//! and a value outside it is an error at the key's place (file:line:col, or the `--set`),
//! all problems reported at once.

use super::{Config, NormalizeSpec};
use crate::error::{Error, Result};
use crate::optim::schedule::Schedule;
use crate::optim::OptimizerKind;

/// Largest image side accepted (pixels); larger sizes are almost surely typos and would need
/// gigabytes per image.
pub const MAX_IMAGE_SIDE: usize = 16_384;

/// Collects problems with their places.
struct Problems<'a> {
    config: &'a Config,
    found: Vec<Error>,
}

impl Problems<'_> {
    fn bad(&mut self, key: &str, why: impl Into<String>) {
        let place = self.config.places.of(key);
        self.found
            .push(Error::config(place, format!("{key}: {}", why.into())));
    }

    /// A finite number at least `lo` (or above it, when `open`).
    fn at_least(&mut self, key: &str, v: f64, lo: f64, open: bool) {
        let ok = v.is_finite() && if open { v > lo } else { v >= lo };
        if !ok {
            let what = match (open, lo == 0.0) {
                (true, true) => "a positive number".to_string(),
                (true, false) => format!("a number above {lo}"),
                (false, true) => "a number of at least 0".to_string(),
                (false, false) => format!("a number of at least {lo}"),
            };
            self.bad(key, format!("must be {what}, got {v}"));
        }
    }

    fn finite(&mut self, key: &str, v: f64) {
        if !v.is_finite() {
            self.bad(key, format!("must be a finite number, got {v}"));
        }
    }

    /// A finite number in `[lo, hi)`.
    fn in_range(&mut self, key: &str, v: f64, lo: f64, hi: f64) {
        if !(v.is_finite() && v >= lo && v < hi) {
            self.bad(key, format!("must be in [{lo}, {hi}), got {v}"));
        }
    }
}

/// A run name is a single path component of safe characters, so a run directory always lands
/// inside `--runs`: letters, digits, `.`, `_` and `-`, not starting with `.` or `-`, at most 100.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    let safe = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if name.is_empty() || name.len() > 100 || !safe || name.starts_with(['.', '-']) {
        return Err(format!(
            "{name:?} is not a safe run name: use 1 to 100 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
        ));
    }
    Ok(())
}

pub fn validate(c: &Config) -> Result<()> {
    let mut p = Problems {
        config: c,
        found: Vec::new(),
    };
    if let Err(why) = check_name(&c.name) {
        p.bad("name", why);
    }
    data(&mut p, c);
    layers(&mut p, c);
    if let Some(loss) = &c.loss {
        if let Some(crate::loss::Loss::Huber { delta }) = loss.kind {
            p.at_least("loss.delta", delta as f64, 0.0, true);
        }
        p.in_range(
            "loss.label_smoothing",
            loss.label_smoothing as f64,
            0.0,
            1.0,
        );
        if let Some(super::ClassWeights::Given(w)) = &loss.class_weights {
            if w.iter().any(|v| !(v.is_finite() && *v >= 0.0)) || !w.iter().any(|v| *v > 0.0) {
                p.bad(
                    "loss.class_weights",
                    "must be numbers of at least 0, not all 0",
                );
            }
        }
    }
    optimizer(&mut p, c);
    train(&mut p, c);
    Error::from_problems(p.found)
}

/// Keys of one data format given for the other would be ignored: they are errors.
fn format_keys(p: &mut Problems, c: &Config) {
    use super::{DataFormat, Missing, Normalize, OnBadImage, Task};
    let d = &c.data;
    let images = d.format == DataFormat::Images;
    let set: Vec<(&str, bool)> = if images {
        vec![
            ("data.scale", d.scale.is_some()),
            (
                "data.normalize",
                matches!(d.normalize, Some(NormalizeSpec::Named(Normalize::Minmax))),
            ),
            ("data.missing", d.missing != Missing::Error),
            ("data.target", d.target.is_some()),
            ("data.features", d.features.is_some()),
            ("data.task", d.task == Some(Task::Regression)),
            ("data.target_normalize", d.target_normalize.is_some()),
            ("data.columns", !d.columns.is_empty()),
            ("data.stream", d.stream),
        ]
    } else {
        vec![
            ("data.size", d.size.is_some()),
            ("data.channels", d.channels.is_some()),
            ("data.augment", d.augment.is_some()),
            ("data.on_bad_image", d.on_bad_image != OnBadImage::Error),
            (
                "data.normalize",
                matches!(d.normalize, Some(NormalizeSpec::Given { .. })),
            ),
        ]
    };
    let (this, other) = if images {
        ("image folders", "CSV tables")
    } else {
        ("CSV tables", "image folders (data.format = \"images\")")
    };
    for (key, given) in set {
        if given {
            p.bad(key, format!("applies to {other}, and this data is {this}"));
        }
    }
}

fn data(p: &mut Problems, c: &Config) {
    format_keys(p, c);
    stream(p, c);
    let d = &c.data;
    for (name, col) in &d.columns {
        let key = |k: &str| format!("data.columns.{name}.{k}");
        // One value besides "other"; pad, unknown and one token; a token per row.
        p.at_least(
            &key("max_categories"),
            col.max_categories as f64,
            2.0,
            false,
        );
        p.at_least(&key("vocab_size"), col.vocab_size as f64, 3.0, false);
        if let Some(len) = col.max_len {
            p.in_range(&key("max_len"), len as f64, 1.0, 65_537.0);
        }
    }
    if let Some(v) = d.valid_split {
        p.in_range("data.valid_split", v, 0.0, 1.0);
        if d.valid.is_some() && v > 0.0 {
            p.bad(
                "data.valid_split",
                "give either data.valid or data.valid_split, not both",
            );
        }
    }
    if let Some(k) = d.kfold {
        p.in_range("data.kfold.folds", k.folds as f64, 2.0, 1001.0);
        if k.fold < 1 || k.fold > k.folds {
            p.bad(
                "data.kfold.fold",
                format!("must be 1 to folds ({}), got {}", k.folds, k.fold),
            );
        }
        if d.valid.is_some() || d.valid_split.is_some_and(|v| v > 0.0) {
            p.bad(
                "data.kfold",
                "validates on a fold of the training rows; give it without data.valid, and with data.valid_split = 0 or none",
            );
        }
    }
    if d.scale.is_some() && d.normalize.is_some() {
        p.bad(
            "data.scale",
            "give either data.scale or data.normalize, not both",
        );
    }
    if let Some(s) = d.scale {
        if !(s.is_finite() && s != 0.0) {
            p.bad(
                "data.scale",
                format!("must be a finite number other than 0, got {s}"),
            );
        }
    }
    if let Some(features) = &d.features {
        if features.is_empty() {
            p.bad("data.features", "lists no column");
        }
        for (i, f) in features.iter().enumerate() {
            if features[..i].contains(f) {
                p.bad("data.features", format!("lists \"{f}\" twice"));
            }
        }
    }
    if let Some([h, w]) = d.size {
        for (side, v) in [("height", h), ("width", w)] {
            if v == 0 || v > MAX_IMAGE_SIDE {
                p.bad(
                    "data.size",
                    format!("{side} must be 1 to {MAX_IMAGE_SIDE} pixels, got {v}"),
                );
            }
        }
    }
    if let Some(ch) = d.channels {
        if ch != 1 && ch != 3 {
            p.bad(
                "data.channels",
                format!("must be 1 (grey) or 3 (RGB), got {ch}"),
            );
        }
    }
    if let Some(NormalizeSpec::Given { mean, std }) = &d.normalize {
        if mean.len() != std.len() {
            p.bad(
                "data.normalize",
                format!("{} means but {} standard deviations", mean.len(), std.len()),
            );
        }
        if mean.iter().any(|m| !m.is_finite()) {
            p.bad("data.normalize.mean", "must be finite numbers");
        }
        if std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            p.bad("data.normalize.std", "must be numbers above 0");
        }
    }
}

/// `data.stream` reads the training rows once per epoch, in order through a buffer: what
/// needs every row at hand (folds) is refused, and the buffer's size only applies to it.
fn stream(p: &mut Problems, c: &Config) {
    let d = &c.data;
    if let Some(n) = d.shuffle_buffer {
        if !d.stream {
            p.bad(
                "data.shuffle_buffer",
                "applies with data.stream = true (the table is held and shuffled whole otherwise)",
            );
        } else if !c.train.shuffle {
            p.bad(
                "data.shuffle_buffer",
                "applies when train.shuffle = true (without shuffling rows come in file order)",
            );
        }
        if n == 0 {
            p.bad("data.shuffle_buffer", "must be at least 1 row");
        }
    }
    if d.stream && d.kfold.is_some() {
        p.bad(
            "data.kfold",
            "folds deal every training row at once, which data.stream = true does not hold; train the folds without data.stream",
        );
    }
}

fn layers(p: &mut Problems, c: &Config) {
    if c.model.layers.is_empty() {
        p.bad("model.layers", "the model has no layers");
    }
    for (i, l) in c.model.layers.iter().enumerate() {
        let key = |k: &str| format!("model.layers.{i}.{k}");
        for (k, v) in [("units", l.units), ("filters", l.filters)] {
            if v == Some(0) {
                p.bad(&key(k), "must be at least 1");
            }
        }
        for (k, v) in [("kernel", l.kernel), ("stride", l.stride)] {
            if v.is_some_and(|v| v.min() == 0) {
                p.bad(&key(k), "must be at least 1");
            }
        }
        if let Some(rate) = l.rate {
            p.in_range(&key("rate"), rate as f64, 0.0, 1.0);
        }
        if let Some(slope) = l.slope {
            p.finite(&key("slope"), slope as f64);
        }
        if let Some(m) = l.momentum {
            if !(m > 0.0 && m <= 1.0) {
                p.bad(&key("momentum"), format!("must be in (0, 1], got {m}"));
            }
        }
        if let Some(eps) = l.eps {
            p.at_least(&key("eps"), eps as f64, 0.0, true);
        }
    }
}

fn optimizer(p: &mut Problems, c: &Config) {
    let o = &c.optimizer;
    p.at_least("optimizer.lr", o.lr as f64, 0.0, true);
    p.at_least("optimizer.weight_decay", o.weight_decay as f64, 0.0, false);
    match o.kind {
        OptimizerKind::Sgd { momentum, nesterov } => {
            p.in_range("optimizer.momentum", momentum as f64, 0.0, 1.0);
            if nesterov && momentum == 0.0 {
                p.bad("optimizer.nesterov", "nesterov needs a momentum above 0");
            }
        }
        OptimizerKind::Adam { beta1, beta2, eps } | OptimizerKind::Adamw { beta1, beta2, eps } => {
            for (i, b) in [beta1, beta2].into_iter().enumerate() {
                if !(b.is_finite() && (0.0..1.0).contains(&b)) {
                    p.bad(
                        "optimizer.betas",
                        format!("beta{} must be in [0, 1), got {b}", i + 1),
                    );
                }
            }
            p.at_least("optimizer.eps", eps as f64, 0.0, true);
        }
    }
    let warmup = match &o.schedule {
        Schedule::Constant { warmup_epochs } => *warmup_epochs,
        Schedule::Step {
            step_epochs,
            gamma,
            warmup_epochs,
        } => {
            if *step_epochs == 0 {
                p.bad("optimizer.schedule.step_epochs", "must be at least 1");
            }
            p.at_least("optimizer.schedule.gamma", *gamma as f64, 0.0, true);
            *warmup_epochs
        }
        Schedule::ReduceOnPlateau {
            factor,
            min_delta,
            min_lr,
            warmup_epochs,
            ..
        } => {
            if !(*factor > 0.0 && *factor < 1.0) {
                p.bad(
                    "optimizer.schedule.factor",
                    format!("{factor}: the rate is multiplied by it, so it lies between 0 and 1 (exclusive)"),
                );
            }
            p.at_least("optimizer.schedule.min_delta", *min_delta, 0.0, false);
            p.at_least("optimizer.schedule.min_lr", *min_lr as f64, 0.0, false);
            if *min_lr >= o.lr {
                p.bad(
                    "optimizer.schedule.min_lr",
                    format!(
                        "{min_lr} is not below optimizer.lr {}: the rate could never be reduced",
                        o.lr
                    ),
                );
            }
            *warmup_epochs
        }
        Schedule::Cosine {
            warmup_epochs,
            min_lr,
        } => {
            let (warmup_epochs, min_lr) = (*warmup_epochs, *min_lr);
            p.at_least("optimizer.schedule.min_lr", min_lr as f64, 0.0, false);
            if min_lr > o.lr {
                p.bad(
                    "optimizer.schedule.min_lr",
                    format!(
                        "{min_lr} is above optimizer.lr {}: the rate would rise",
                        o.lr
                    ),
                );
            }
            warmup_epochs
        }
    };
    p.at_least(
        "optimizer.schedule.warmup_epochs",
        warmup as f64,
        0.0,
        false,
    );
}

fn train(p: &mut Problems, c: &Config) {
    let t = &c.train;
    if t.epochs == 0 {
        p.bad("train.epochs", "must be at least 1");
    }
    if t.batch_size == 0 {
        p.bad("train.batch_size", "must be at least 1");
    }
    if let Some(clip) = t.grad_clip_norm {
        p.at_least("train.grad_clip_norm", clip as f64, 0.0, true);
    }
    if let Some(es) = &t.early_stopping {
        p.at_least("train.early_stopping.min_delta", es.min_delta, 0.0, false);
    }
    p.at_least(
        "train.checkpoint.every_seconds",
        t.checkpoint.every_seconds,
        0.0,
        false,
    );
    if t.checkpoint.keep_last == 0 {
        p.bad("train.checkpoint.keep_last", "must be at least 1");
    }
    if t.limit_batches == Some(0) {
        p.bad("train.limit_batches", "must be at least 1");
    }
    if let Some(ls) = &t.loss_scale {
        if t.precision != crate::backend::Precision::F16 {
            p.bad(
                "train.loss_scale",
                format!(
                    "loss scaling is for train.precision = \"f16\" (here \"{}\": its range needs none)",
                    t.precision.name()
                ),
            );
        }
        // A power of two keeps scaling and unscaling exact.
        let s = ls.init_scale;
        if !(s.is_finite() && s >= 1.0 && s <= 2f64.powi(100) && s.log2().fract() == 0.0) {
            p.bad(
                "train.loss_scale.init_scale",
                format!("must be a power of two from 1 to 2^100, got {s}"),
            );
        }
        if ls.growth_interval == 0 {
            p.bad("train.loss_scale.growth_interval", "must be at least 1");
        }
    }
    if t.cuda_graphs {
        p.bad(
            "train.cuda_graphs",
            "whole-step CUDA graph capture is not built yet (issue 16: its bookkeeping is, the capture is not); set it to false or leave it out",
        );
    }
}
