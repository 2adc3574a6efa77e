//! Per-layer timing in the spirit of `caffe time`: each layer's forward and backward on one
//! batch, so the next optimisation is chosen from figures.

use std::time::Instant;

use crate::error::Result;
use crate::loss::Loss;
use crate::nn::{Mode, Model, Source};
use crate::tensor::{Rng, Tensor};

pub struct LayerTime {
    pub name: String,
    pub kind: String,
    pub output: String,
    pub forward_ms: f64,
    pub backward_ms: f64,
}

/// Mean forward and backward milliseconds per batch of each layer and of the loss, over `iters`
/// runs after two warm-up runs. Each layer runs on the outputs it reads, detached, so its
/// backward is timed alone (from a sum over its output, whose cost is included).
pub fn profile(
    model: &Model,
    loss: Loss,
    x: &Tensor,
    y: &Tensor,
    iters: usize,
) -> Result<Vec<LayerTime>> {
    let n = model.num_layers();
    let (mut fwd, mut bwd) = (vec![0.0; n + 1], vec![0.0; n + 1]);
    let params = model.named_params();
    let mut rng = Rng::new(0);
    for it in 0..iters + 2 {
        let keep = it >= 2;
        let mut outputs: Vec<Tensor> = Vec::with_capacity(n);
        for i in 0..=n {
            // The data needs no gradient; a layer's output does (its reader's backward).
            let read = |s: &Source| match s {
                Source::Input => x.clone(),
                Source::Part(k) => model.part(x, *k),
                Source::Layer(j) => outputs[*j].detach().with_requires_grad(),
            };
            let inputs: Vec<Tensor> = if i < n {
                model.layer_inputs(i).iter().map(read).collect()
            } else {
                vec![read(&Source::Layer(n - 1))]
            };
            let start = Instant::now();
            let out = if i < n {
                let mode = &mut Mode::new(true, &mut rng);
                model.forward_layer(i, &inputs, mode)
            } else {
                loss.compute(&inputs[0], y)
            };
            out.device().check()?;
            let forward = start.elapsed().as_secs_f64();
            for (_, p) in &params {
                p.zero_grad();
            }
            let start = Instant::now();
            if out.requires_grad() {
                out.sum_all().backward();
            }
            out.device().check()?;
            let backward = start.elapsed().as_secs_f64();
            if keep {
                fwd[i] += forward * 1e3 / iters as f64;
                bwd[i] += backward * 1e3 / iters as f64;
            }
            outputs.push(out.detach());
        }
    }
    let mut rows: Vec<LayerTime> = model
        .summary()
        .into_iter()
        .enumerate()
        .map(|(i, r)| LayerTime {
            name: r.name,
            kind: r.kind,
            output: r.output_shape.to_string(),
            forward_ms: fwd[i],
            backward_ms: bwd[i],
        })
        .collect();
    rows.push(LayerTime {
        name: "loss".into(),
        kind: loss.name().into(),
        output: "[]".into(),
        forward_ms: fwd[n],
        backward_ms: bwd[n],
    });
    Ok(rows)
}
