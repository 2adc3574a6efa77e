//! `kiln check`

use std::path::PathBuf;

use crate::config::{self, Config, Task};
use crate::data;
use crate::error::{Error, Result};
use crate::metrics;
use crate::train::{build_model, Watch};

/// Validate a config and its data, print the model summary; train nothing.
#[derive(clap::Args)]
pub struct Args {
    config: PathBuf,
    /// Override a config key: KEY=VALUE (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

/// The first problem `check` would report for a config: its data, metrics, monitors, loss
/// and model (for `sweep` and `train --folds` before they start runs, and `init` before it
/// writes a config). `prepared` reuses data already read for an equal `data` table.
pub(super) fn trainable(config: &Config, prepared: Option<&data::Prepared>) -> Result<()> {
    let owned;
    let prepared = match prepared {
        Some(p) => p,
        None => {
            owned = data::prepare(&config.data, config.loss_kind(), config.seed)
                .map_err(|e| config.place(e))?;
            &owned
        }
    };
    let schema = &prepared.schema;
    let metrics = metrics::resolve(&config.train.metrics, schema.task, schema.classes.len())
        .map_err(|e| config.place(e))?;
    Watch::new(
        &config.train,
        &config.optimizer,
        &metrics,
        prepared.valid.is_some(),
    )
    .map_err(|e| config.place(e))?;
    crate::train::criterion(config, prepared).map_err(|e| config.place(e))?;
    build_model(config, schema)?;
    Ok(())
}

pub fn exec(a: Args) -> Result<()> {
    let config = config::load(&a.config, &a.set)?;
    let prepared = data::prepare(&config.data, config.loss_kind(), config.seed)
        .map_err(|e| config.place(e))?;
    let schema = &prepared.schema;
    let mut problems = Vec::new();
    // Every problem at once: the monitors are checked against the metrics that are known.
    let metrics = match metrics::resolve(&config.train.metrics, schema.task, schema.classes.len()) {
        Ok(m) => m,
        Err(e) => {
            problems.push(config.place(e));
            let known = |m: &&String| {
                metrics::resolve(&[m.to_string()], schema.task, schema.classes.len()).is_ok()
            };
            let mut kept: Vec<String> =
                config.train.metrics.iter().filter(known).cloned().collect();
            kept.dedup();
            metrics::resolve(&kept, schema.task, schema.classes.len())?
        }
    };
    if let Err(e) = Watch::new(
        &config.train,
        &config.optimizer,
        &metrics,
        prepared.valid.is_some(),
    ) {
        problems.push(config.place(e));
    }
    if let Err(e) = crate::train::criterion(&config, &prepared) {
        problems.push(config.place(e));
    }
    match build_model(&config, schema) {
        Ok((model, loss)) => {
            outln!("Model \"{}\" on input {}", config.name, model.input_shape());
            let rows = model.summary();
            let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(5).max(12);
            let kinds = rows.iter().map(|r| r.kind.len()).max().unwrap_or(4).max(12);
            // A graph shows what each layer reads; a plain stack reads the layer above.
            let graph = !model.is_stack();
            let inputs = if graph { "  inputs" } else { "" };
            outln!(
                "{:<width$} {:<kinds$} {:<14} {:>10}{inputs}",
                "layer",
                "type",
                "output shape",
                "params"
            );
            for row in rows {
                let inputs = if graph {
                    format!("  {}", row.inputs.join(", "))
                } else {
                    String::new()
                };
                outln!(
                    "{:<width$} {:<kinds$} {:<14} {:>10}{inputs}",
                    row.name,
                    row.kind,
                    row.output_shape.to_string(),
                    row.params
                );
            }
            outln!("total parameters: {}", model.num_params());
            if let Some(a) = model.folded() {
                outln!(
                    "the final {} is fused into the {} loss",
                    a.name(),
                    loss.name()
                );
            }
            outln!("loss: {}", loss.name());
        }
        Err(e) => problems.push(e),
    }
    outln!();
    let inputs = match &schema.image {
        Some(i) => format!("images {}×{}, {} channel(s)", i.height, i.width, i.channels),
        None => format!(
            "{} feature columns ({} values a row), target \"{}\"",
            schema.feature_columns().len(),
            schema.input_width(),
            schema.target
        ),
    };
    outln!(
        "data: {inputs}, {:?} ({})",
        schema.task,
        prepared.task_reason
    );
    for n in &prepared.column_notes {
        outln!("  {n}");
    }
    for w in &prepared.warnings {
        outln!("warning: {w}");
    }
    for split in [
        Some(&prepared.train),
        prepared.valid.as_ref(),
        prepared.test.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        outln!(
            "  {:<5} {:>7} rows  {}",
            split.name,
            split.len(),
            split.source
        );
    }
    if schema.task == Task::Classification {
        let counts = prepared.train.class_counts(schema.classes.len())?;
        let shown: Vec<String> = schema
            .classes
            .iter()
            .zip(counts)
            .map(|(c, n)| format!("{c} ({n})"))
            .collect();
        outln!("  classes (train rows): {}", shown.join(", "));
    }
    Error::from_problems(problems)
}
