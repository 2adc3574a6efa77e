//! Holding out a validation share of the training rows, for every format.

use crate::config::{DataConfig, Task};
use crate::error::{Error, Result};
use crate::tensor::{Rng, Stream};

/// Rows held out of the training data for validation.
pub struct Holdout {
    pub keep: Vec<usize>,
    pub held: Vec<usize>,
    /// Where the validation rows come from, as the log and `check` name it.
    pub source: String,
}

/// The rows to hold out when the config names no valid file and asks for a share
/// (`valid_split`, default 0.1): drawn from the run's holdout stream, stratified for
/// classification (each class keeps at least one training row). `None` when nothing is asked;
/// an error when the share holds out no row at all (a silent "no validation" would mislead).
pub fn holdout_rows(
    cfg: &DataConfig,
    targets: &[f32],
    task: Task,
    seed: u64,
) -> Result<Option<Holdout>> {
    let fraction = cfg.valid_split.unwrap_or(0.1);
    if cfg.valid.is_some() || fraction <= 0.0 {
        return Ok(None);
    }
    let stratify = task == Task::Classification;
    let mut rng = Rng::stream(seed, Stream::Holdout);
    let (keep, held) = holdout(targets, fraction, stratify, &mut rng);
    if held.is_empty() && cfg.valid_split.is_some() {
        return Err(Error::config(
            "data.valid_split",
            format!(
                "{fraction} of {} rows holds out none; raise it, or set 0 for no validation",
                targets.len()
            ),
        ));
    }
    if held.is_empty() || keep.is_empty() {
        return Ok(None); // the default share of a table too small for one
    }
    let source = format!("{} (valid_split {fraction})", cfg.train.display());
    Ok(Some(Holdout { keep, held, source }))
}

/// Split row indices into (kept, held out) with `fraction` held out, shuffled by `rng`. With
/// `stratify`, each class (target value) is split on its own, so the held-out rows keep the
/// class proportions. Both lists come back in ascending row order.
pub fn holdout(
    targets: &[f32],
    fraction: f64,
    stratify: bool,
    rng: &mut Rng,
) -> (Vec<usize>, Vec<usize>) {
    let groups: Vec<Vec<usize>> = if stratify {
        let classes = targets
            .iter()
            .map(|&t| t as usize)
            .max()
            .map_or(0, |m| m + 1);
        let mut g = vec![Vec::new(); classes];
        for (i, &t) in targets.iter().enumerate() {
            g[t as usize].push(i);
        }
        g
    } else {
        vec![(0..targets.len()).collect()]
    };
    let (mut keep, mut held) = (Vec::new(), Vec::new());
    for mut rows in groups {
        rng.shuffle(&mut rows);
        let n_held = held_of_group(rows.len(), fraction);
        held.extend_from_slice(&rows[..n_held]);
        keep.extend_from_slice(&rows[n_held..]);
    }
    keep.sort_unstable();
    held.sort_unstable();
    (keep, held)
}

/// Rows a group (a class, or every row when not stratified) of `len` rows gives up; each
/// group keeps a row for training: a class must not vanish from it.
fn held_of_group(len: usize, fraction: f64) -> usize {
    ((len as f64 * fraction).round() as usize).min(len.saturating_sub(1))
}

/// How many rows `holdout` holds out of groups of these sizes (the classes' row counts when
/// stratified, else the row count alone).
pub fn rows_held_out(groups: &[usize], fraction: f64) -> usize {
    groups.iter().map(|&g| held_of_group(g, fraction)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_holdout_keeps_class_shares() {
        let targets: Vec<f32> = (0..100).map(|i| if i < 80 { 0.0 } else { 1.0 }).collect();
        let (keep, held) = holdout(&targets, 0.1, true, &mut Rng::new(1));
        assert_eq!((keep.len(), held.len()), (90, 10));
        assert_eq!(held.iter().filter(|&&i| targets[i] == 1.0).count(), 2);
        let mut all: Vec<usize> = keep.iter().chain(&held).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(holdout(&targets, 0.1, true, &mut Rng::new(1)), (keep, held));
    }
}
