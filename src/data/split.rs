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
    let stratify = task == Task::Classification;
    if let Some(k) = cfg.kfold {
        let mut rng = Rng::stream(seed, Stream::Holdout);
        let (keep, held) = kfold(targets, k.folds, k.fold, stratify, &mut rng);
        if keep.is_empty() || held.is_empty() {
            return Err(Error::config(
                "data.kfold",
                format!(
                    "{} folds of {} rows leave fold {} or its training rows empty; use fewer folds",
                    k.folds,
                    targets.len(),
                    k.fold
                ),
            ));
        }
        let source = format!("{} (fold {} of {})", cfg.train.display(), k.fold, k.folds);
        return Ok(Some(Holdout { keep, held, source }));
    }
    let fraction = cfg.valid_split.unwrap_or(0.1);
    if cfg.valid.is_some() || fraction <= 0.0 {
        return Ok(None);
    }
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

/// The rows of each group (each class when `stratify`, else all rows), shuffled by `rng`.
fn shuffled_groups(targets: &[f32], stratify: bool, rng: &mut Rng) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = if stratify {
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
    for rows in &mut groups {
        rng.shuffle(rows);
    }
    groups
}

/// Split row indices into (kept, held out) for fold `fold` (1-based) of `folds`: the groups'
/// shuffled rows, one group after another, are dealt to the folds in turn, so every fold
/// gets each class's share (within one row) and the folds' sizes differ by at most one. Every
/// row is held out by exactly one fold. Both lists come back in ascending row order.
pub fn kfold(
    targets: &[f32],
    folds: usize,
    fold: usize,
    stratify: bool,
    rng: &mut Rng,
) -> (Vec<usize>, Vec<usize>) {
    let (mut keep, mut held) = (Vec::new(), Vec::new());
    let dealt = shuffled_groups(targets, stratify, rng)
        .into_iter()
        .flatten();
    for (position, row) in dealt.enumerate() {
        if position % folds == fold - 1 {
            held.push(row);
        } else {
            keep.push(row);
        }
    }
    keep.sort_unstable();
    held.sort_unstable();
    (keep, held)
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
    let (mut keep, mut held) = (Vec::new(), Vec::new());
    for rows in shuffled_groups(targets, stratify, rng) {
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

    #[test]
    fn each_row_is_validated_by_exactly_one_fold_and_classes_keep_their_shares() {
        // 83 rows: classes of 50, 30 and 3 rows; 4 folds of 20 or 21 rows.
        let targets: Vec<f32> = (0..83)
            .map(|i| match i {
                0..50 => 0.0,
                50..80 => 1.0,
                _ => 2.0,
            })
            .collect();
        let mut seen = vec![0; 83];
        for fold in 1..=4 {
            let (keep, held) = kfold(&targets, 4, fold, true, &mut Rng::new(7));
            assert_eq!(keep.len() + held.len(), 83);
            assert!((20..=21).contains(&held.len()), "{}", held.len());
            let class = |c: f32| held.iter().filter(|&&i| targets[i] == c).count();
            assert!((12..=13).contains(&class(0.0)), "{}", class(0.0));
            assert!((7..=8).contains(&class(1.0)), "{}", class(1.0));
            assert!(keep.iter().all(|i| !held.contains(i)));
            for &i in &held {
                seen[i] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n == 1), "{seen:?}");
        // The same seed deals the same folds; another seed others.
        let a = kfold(&targets, 4, 2, true, &mut Rng::new(7));
        assert_eq!(a, kfold(&targets, 4, 2, true, &mut Rng::new(7)));
        assert_ne!(a, kfold(&targets, 4, 2, true, &mut Rng::new(8)));
        // Not stratified: sizes still within one row.
        let (_, held) = kfold(&targets, 5, 5, false, &mut Rng::new(7));
        assert_eq!(held.len(), 16);
    }
}
