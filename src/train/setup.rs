//! Building the model and loss for a config and data schema, checking they fit together.

use crate::config::{Config, Task};
use crate::data::DataSchema;
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::nn::Model;
use crate::tensor::Rng;

/// The loss the config names, or the task's default (cross-entropy / mse).
pub fn loss_for(config: &Config, task: Task) -> Loss {
    config.loss.unwrap_or(match task {
        Task::Classification => Loss::CrossEntropy,
        Task::Regression => Loss::Mse,
    })
}

/// Build the model on the data's feature count, initialised from the run's seed, and check
/// that its output fits the loss and the targets. A final softmax is folded into
/// cross-entropy.
pub fn build_model(config: &Config, schema: &DataSchema) -> Result<(Model, Loss)> {
    let loss = loss_for(config, schema.task);
    let input = schema.input_shape();
    let mut model = Model::build(
        &config.model.layers,
        &input,
        &mut Rng::derive(config.seed, 0),
    )?;
    if loss == Loss::CrossEntropy {
        model.fold_final_softmax();
    }
    let last = config.model.layers.len() - 1;
    let layer = format!("model.layers.{last} ({})", config.model.layers[last].kind);
    let out = model.output_shape().clone();
    let want = match (schema.task, loss) {
        (Task::Classification, Loss::CrossEntropy) => schema.classes.len(),
        (Task::Classification, Loss::Bce) => {
            if schema.classes.len() != 2 {
                return Err(Error::config(
                    "loss",
                    format!("bce needs exactly 2 classes; the target has {}", schema.classes.len()),
                ));
            }
            1
        }
        (Task::Classification, other) => {
            return Err(Error::config(
                "loss",
                format!("{} is a regression loss, but the task is classification (use cross_entropy or bce, or set data.task)", other.name()),
            ))
        }
        (Task::Regression, l) if l.is_classification() => {
            return Err(Error::config(
                "loss",
                format!("{} is a classification loss, but the task is regression (use mse, mae or huber, or set data.task)", l.name()),
            ))
        }
        (Task::Regression, _) => 1,
    };
    if out.dims() != [want] {
        return Err(Error::model(
            layer,
            format!(
                "outputs {out} but {} needs [{want}]; set its units to {want}",
                loss.name()
            ),
        ));
    }
    Ok((model, loss))
}
