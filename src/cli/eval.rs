//! `kiln eval`

use std::path::PathBuf;

use serde_json::json;

use crate::config::Task;
use crate::data;
use crate::error::{Error, Result};
use crate::metrics::lower_is_better;
use crate::metrics::Accumulator;
use crate::train::{confusion_plot, evaluate, EvalSetup};

/// Evaluate a trained model on a split or a labelled file.
#[derive(clap::Args)]
pub struct Args {
    /// A run directory (its best model) or a checkpoint file.
    run: PathBuf,
    /// A labelled CSV file to evaluate on instead of a split.
    #[arg(long, conflicts_with = "split")]
    data: Option<PathBuf>,
    /// Which split of the run's data: test, valid or train.
    #[arg(long, default_value = "test", value_parser = ["test", "valid", "train"])]
    split: String,
    #[arg(long, default_value = "auto")]
    device: String,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// METRIC=VALUE: exit 1 when the metric is worse than VALUE in its own direction: below it
    /// for accuracy, f1, r2, topK; above it for loss, rmse, mae (repeatable; a CI gate).
    #[arg(long = "fail-under", value_name = "METRIC=VALUE")]
    fail_under: Vec<String>,
    #[arg(long, default_value_t = 256, value_parser = super::positive)]
    batch_size: usize,
    /// Also draw the confusion matrix as a PNG at FILE (eval never changes the run itself).
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
}

pub fn exec(a: Args) -> Result<()> {
    let device = super::select_device(&a.device)?;
    device.warn_if_fell_back();
    let floors: Vec<(String, f64)> = a
        .fail_under
        .iter()
        .map(|f| {
            let (m, v) = f
                .split_once('=')
                .ok_or_else(|| Error::Usage(format!("--fail-under {f}: expected METRIC=VALUE")))?;
            let v: f64 = v
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| {
                    Error::Usage(format!("--fail-under {f}: {v} is not a finite number"))
                })?;
            Ok((m.to_string(), v))
        })
        .collect::<Result<_>>()?;
    let trained = super::open_trained(&a.run)?;
    let (model, loss) = trained.model(device.device)?;
    let schema = &trained.info.schema;
    let (mut data, split) = match &a.data {
        Some(path) => (
            data::read_labelled(path, schema)?,
            path.display().to_string(),
        ),
        None => {
            let prepared = data::prepare(
                &trained.config.data,
                trained.config.loss_kind(),
                trained.config.seed,
            )?;
            for w in trained.info.changed_data(&prepared.files) {
                eprintln!("warning: {w}");
            }
            let chosen = match a.split.as_str() {
                "train" => Some(prepared.train),
                "valid" => prepared.valid,
                _ => prepared.test,
            };
            let s = chosen.ok_or_else(|| {
                Error::Usage(format!(
                    "the run's data has no {} split; pass --data PATH",
                    a.split
                ))
            })?;
            (s, a.split.clone())
        }
    };
    data.to_device(device.device);
    let setup = EvalSetup {
        model: &model,
        loss,
        criterion: &trained.info.criterion,
        schema,
        metrics: &trained.info.metrics,
        batch_size: a.batch_size,
        limit_batches: None,
    };
    let acc = evaluate(&setup, &data)?;
    if let Some(path) = &a.plot {
        if schema.task != Task::Classification {
            return Err(Error::Usage(
                "--plot draws a confusion matrix: the run is not a classification".into(),
            ));
        }
        confusion_plot(path, &split, &schema.classes, &acc)?;
    }
    let metrics = acc.to_json(&trained.info.metrics);
    if a.json {
        let mut out = json!({"split": split, "rows": acc.rows, "metrics": metrics});
        if schema.task == Task::Classification {
            out["confusion"] = json!(acc.confusion);
            out["classes"] = json!(schema.classes);
            let per_class: serde_json::Map<String, serde_json::Value> = schema
                .classes
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let (precision, recall, f1) = acc.per_class(i);
                    let support: u64 = acc.confusion[i].iter().sum();
                    let v = json!({"precision": precision, "recall": recall, "f1": f1, "support": support});
                    (c.clone(), v)
                })
                .collect();
            out["per_class"] = per_class.into();
        }
        outln!("{out}");
    } else {
        print_report(&split, &trained.info.metrics, &acc, schema)?;
    }
    let names = &trained.info.metrics;
    let failed: Vec<String> = floors
        .iter()
        .map(|(m, bound)| {
            let v = match m.as_str() {
                "loss" => acc.loss(),
                _ if names.contains(m) => acc.value(m),
                _ => {
                    return Err(Error::Usage(format!(
                        "--fail-under {m}: no such metric (have: loss, {})",
                        names.join(", ")
                    )))
                }
            };
            // In the metric's own direction; NaN meets no bound.
            let (worse, side) = if lower_is_better(m) {
                (v.is_nan() || v > *bound, "above")
            } else {
                (v.is_nan() || v < *bound, "below")
            };
            Ok(worse.then(|| format!("{m} {v:.4} is {side} {bound}")))
        })
        .filter_map(Result::transpose)
        .collect::<Result<_>>()?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Runtime(format!(
            "quality gate failed: {}",
            failed.join("; ")
        )))
    }
}

fn print_report(
    split: &str,
    metrics: &[String],
    acc: &Accumulator,
    schema: &data::DataSchema,
) -> Result<()> {
    outln!("split {split}: {} rows", acc.rows);
    outln!("{:>10}  {:.4}", "loss", acc.loss());
    for m in metrics {
        outln!("{m:>10}  {:.4}", acc.value(m));
    }
    if schema.task != Task::Classification {
        return Ok(());
    }
    let width = schema
        .classes
        .iter()
        .map(|c| c.len())
        .max()
        .unwrap_or(1)
        .max(6);
    outln!("\nconfusion matrix (rows: true class, columns: predicted)");
    out!("{:>width$}", "");
    for c in &schema.classes {
        out!(" {c:>width$}");
    }
    outln!();
    for (i, row) in acc.confusion.iter().enumerate() {
        out!("{:>width$}", schema.classes[i]);
        for n in row {
            out!(" {n:>width$}");
        }
        outln!();
    }
    outln!(
        "\n{:>width$} {:>9} {:>9} {:>9} {:>8}",
        "class",
        "precision",
        "recall",
        "f1",
        "support"
    );
    for (i, c) in schema.classes.iter().enumerate() {
        let (p, r, f1) = acc.per_class(i);
        let support: u64 = acc.confusion[i].iter().sum();
        outln!("{c:>width$} {p:>9.4} {r:>9.4} {f1:>9.4} {support:>8}");
    }
    Ok(())
}
