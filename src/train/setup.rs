//! Everything before the first step: the data, the model and its loss, the optimizer, the run
//! directory (new, or reopened to resume from its last checkpoint), and the first log lines.

use std::path::{Path, PathBuf};

use super::{Options, Output, Progress, Session, Watch};
use crate::backend::Device;
use crate::config::{self, ClassWeights, Config, Task};
use crate::data::{self, DataSchema, Prepared};
use crate::error::{Error, Result};
use crate::loss::{Criterion, Loss};
use crate::metrics::{self, Accumulator};
use crate::nn::{Activation, LayerSpec, Model, INPUT_NAME};
use crate::optim::Optimizer;
use crate::run::{checkpoint, Checkpoints, MetricsCsv, RunDir, RunInfo, Status};
use crate::tensor::{Rng, Stream};

use super::report::Reporter;
use super::visuals;

/// The loss the config names, or the task's default (cross-entropy / mse).
pub fn loss_for(config: &Config, task: Task) -> Loss {
    config.loss_kind().unwrap_or(task.default_loss())
}

/// Build the model on the data's feature count, initialised from the run's seed, and check
/// that its output fits the loss and the targets. A final softmax is folded into
/// cross-entropy.
pub fn build_model(config: &Config, schema: &DataSchema) -> Result<(Model, Loss)> {
    build_model_unplaced(config, schema).map_err(|e| place_error(config, e))
}

/// A model or loss error with the file:line:col (or `--set`) of the key it is about.
fn place_error(config: &Config, e: Error) -> Error {
    match e {
        Error::Model { layer, message } => {
            let key = layer.split(' ').next().unwrap_or("model.layers");
            let layer = format!("{}: {layer}", config.places.of(key));
            Error::Model { layer, message }
        }
        e => config.place(e),
    }
}

/// The layers as the config writes them, with an embedding over a text column given the
/// column's vocabulary. A text column's token ids are read only by embeddings (anything else
/// would treat ids as magnitudes), with a vocabulary that covers every id: by the column's
/// name, or as the whole row when the column is the only feature.
fn layers_for_data(config: &Config, schema: &DataSchema) -> Result<Vec<LayerSpec>> {
    let mut layers = config.model.layers.clone();
    let texts: Vec<&data::Column> = schema.columns.iter().filter(|c| c.is_text()).collect();
    let alone = schema.image.is_none() && schema.feature_columns().len() == 1;
    for (i, spec) in layers.iter_mut().enumerate() {
        let reads: Vec<String> = match &spec.inputs {
            None if i == 0 => vec![INPUT_NAME.to_string()],
            None => Vec::new(),
            Some(names) => names.clone(),
        };
        let place = format!("model.layers.{i} ({})", spec.kind);
        let mut read_text = None;
        for name in &reads {
            let text = if *name == INPUT_NAME && !texts.is_empty() {
                if !alone {
                    let t = &texts[0].name;
                    return Err(Error::model(
                        place,
                        format!(
                            "reads the whole row, which holds the token ids of text column \"{t}\" beside other columns; read each by name: inputs = [\"{t}\"] for an embedding, [\"{}\"] for the number columns, a category column by its name",
                            data::NUMBERS_PART
                        ),
                    ));
                }
                Some(texts[0])
            } else {
                texts.iter().find(|t| t.name == *name).copied()
            };
            if let Some(text) = text {
                if spec.kind != "embedding" {
                    return Err(Error::model(
                        place,
                        format!(
                            "reads the token ids of text column \"{}\"; a layer on text must be an embedding (type = \"embedding\", dim = ...)",
                            text.name
                        ),
                    ));
                }
                read_text = Some(text);
            }
        }
        if spec.kind != "embedding" {
            continue;
        }
        // An embedding looks up token ids: anything else (numbers, one-hot slots, pixels, a
        // layer's output) would be rounded to ids without a word.
        let Some(text) = read_text.filter(|_| reads.len() == 1) else {
            return Err(Error::model(
                place,
                "an embedding reads the token ids of one text column (data.columns.NAME.type = \"text\"; inputs = [\"NAME\"] when other columns sit beside it)",
            ));
        };
        let vocab = text.vocab_size().expect("a text column has a vocabulary");
        match spec.vocab {
            None => spec.vocab = Some(vocab),
            Some(v) if v < vocab => {
                return Err(Error::model(
                    place,
                    format!(
                        "vocab = {v} is smaller than text column \"{}\"'s vocabulary of {vocab} tokens (set data.columns.{}.vocab_size, or leave vocab out)",
                        text.name, text.name
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(layers)
}

fn build_model_unplaced(config: &Config, schema: &DataSchema) -> Result<(Model, Loss)> {
    let loss = loss_for(config, schema.task);
    let input = schema.input_shape();
    let mut model = Model::build_with_parts(
        &layers_for_data(config, schema)?,
        &input,
        &schema.input_parts(),
        &mut Rng::stream(config.seed, Stream::Init),
    )?;
    let last = config.model.layers.len() - 1;
    let layer = format!("model.layers.{last} ({})", config.model.layers[last].kind);
    // A loss on logits computes its activation fused, stably: a final one in the model is
    // folded into it (as PyTorch users write the model without it), the other one is a mistake.
    let fused = match loss {
        Loss::CrossEntropy => Some((Activation::Softmax, Activation::Sigmoid)),
        Loss::Bce => Some((Activation::Sigmoid, Activation::Softmax)),
        _ => None,
    };
    if let Some((own, wrong)) = fused {
        let probs: Vec<(usize, Activation)> = model
            .tail_activations()
            .into_iter()
            .filter(|(_, a)| matches!(a, Activation::Softmax | Activation::Sigmoid))
            .collect();
        let at = |i: usize| format!("model.layers.{i} ({})", config.model.layers[i].kind);
        match probs.as_slice() {
            [] => {}
            [(i, a)] if *a == wrong => {
                return Err(Error::model(
                    at(*i),
                    format!(
                        "applies {} but {} takes logits and applies {} itself; remove that activation{}",
                        wrong.name(),
                        loss.name(),
                        own.name(),
                        if loss == Loss::CrossEntropy { " (or use bce for two classes with one output)" } else { "" }
                    ),
                ))
            }
            [(i, _)] if *i == last => {
                model.fold_final(own);
            }
            [(i, a)] => {
                return Err(Error::model(
                    at(*i),
                    format!(
                        "applies {} before the end of the model (layers without weights after it do not undo it); {} applies {} itself: put the {} last, where it is fused into the loss, or remove it",
                        a.name(),
                        loss.name(),
                        own.name(),
                        a.name()
                    ),
                ))
            }
            [(i, a), (j, b), ..] => {
                return Err(Error::model(
                    at(*i),
                    format!(
                        "applies {} after the {} of {}: the outputs would be squashed twice; {} applies {} itself, so keep at most one, last",
                        a.name(),
                        b.name(),
                        at(*j),
                        loss.name(),
                        own.name()
                    ),
                ))
            }
        }
    }
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

/// The optimizer the config names, over the model's parameters.
pub fn optimizer(config: &Config, model: &Model) -> Optimizer {
    let o = &config.optimizer;
    Optimizer::new(o.kind, o.weight_decay, model.named_params())
}

/// Everything training needs, with the run directory created (or reopened) and its first lines
/// logged.
pub(super) fn start(config: Config, opts: &Options) -> Result<Session> {
    let report = Reporter::new(opts.quiet);
    // Under mpirun, every rank reads the data and builds the model before rank 0 creates the
    // run: a rank that cannot (a file missing on its machine) stops them all, nothing written.
    let (mut data, model, loss, metrics, criterion, watch) =
        crate::dist::all_ok(prepare_parts(&config, opts))?;
    let mut optim = optimizer(&config, &model);
    let world = crate::dist::world();
    let opened = crate::dist::all_ok(open_run(
        &config, opts, &mut data, &model, &mut optim, loss, &metrics,
    ));
    let (run, mut info, mut progress) = opened?;
    info.criterion = criterion.clone();
    let empty = Accumulator::new(data.schema.task, data.schema.classes.len(), &metrics);
    share_start(&world, &model, &mut optim, &mut progress, empty)?;
    finish_start(
        config,
        opts,
        (data, model, loss, metrics, criterion, watch),
        optim,
        (run, info, progress),
        report,
    )
}

/// The data, the model and its loss, the metrics, the criterion and the watch of a run.
type Parts = (Prepared, Model, Loss, Vec<String>, Criterion, Watch);

fn prepare_parts(config: &Config, opts: &Options) -> Result<Parts> {
    let mut data = data::prepare(&config.data, config.loss_kind(), config.seed)
        .map_err(|e| config.place(e))?;
    let (model, loss) = build_model(config, &data.schema)?;
    // Initialised on the CPU from the seed (the same weights on every device), then moved.
    model.to_device(opts.device);
    data.to_device(opts.device);
    let place = |e| config.place(e);
    let metrics = metrics::resolve(
        &config.train.metrics,
        data.schema.task,
        data.schema.classes.len(),
    )
    .map_err(place)?;
    let criterion = criterion(config, &data)?;
    let watch = Watch::new(
        &config.train,
        &config.optimizer,
        &metrics,
        data.valid.is_some(),
    )
    .map_err(place)?;
    Ok((data, model, loss, metrics, criterion, watch))
}

/// The run directory, new or reopened to resume (rank 0; the other ranks have none), its
/// run.json and where training stands.
fn open_run(
    config: &Config,
    opts: &Options,
    data: &mut Prepared,
    model: &Model,
    optim: &mut Optimizer,
    loss: Loss,
    metrics: &[String],
) -> Result<(Option<RunDir>, RunInfo, Progress)> {
    let world = crate::dist::world();
    Ok(match &opts.resume {
        // Ranks other than 0 neither open nor write the run: they get its state from rank 0.
        _ if !world.is_lead() => {
            let info = new_info("", config, opts, data, model, loss, metrics);
            (None, info, Progress::default())
        }
        Some(dir) => {
            let names: Vec<String> = model
                .named_state()
                .into_iter()
                .chain(optim.state())
                .map(|(n, _)| n)
                .collect();
            let (run, info, progress, (path, loaded)) = resume_run(dir, config, &names)?;
            data.warnings.extend(info.changed_data(&data.files));
            checkpoint::restore(&model.named_state(), &loaded, &path)?;
            optim
                .load_state(progress.optimizer_steps(), |name| {
                    loaded.tensors.get(name).map(|(_, v)| v.clone())
                })
                .map_err(|e| Error::Runtime(format!("{}: {e}", path.display())))?;
            (Some(run), info, progress)
        }
        None => {
            // Everything that can be wrong with the input is checked before the run exists.
            if let Some(init) = &config.model.init_from {
                checkpoint::restore(&model.named_state(), &checkpoint::load(init)?, init)?;
            }
            let run = RunDir::create(&opts.runs, &config.name, opts.run_dir.as_deref())?;
            run.lock()?;
            let name = run.path.file_name().unwrap_or_default().to_string_lossy();
            let info = new_info(&name, config, opts, data, model, loss, metrics);
            (Some(run), info, Progress::default())
        }
    })
}

/// The run's files opened, its config and run.json written, the session assembled and its
/// first lines logged.
fn finish_start(
    mut config: Config,
    opts: &Options,
    (data, model, loss, metrics, criterion, watch): Parts,
    optim: Optimizer,
    (run, mut info, progress): (Option<RunDir>, RunInfo, Progress),
    report: Reporter,
) -> Result<Session> {
    let world = crate::dist::world();
    // Errors above name the paths as the user wrote them; the stored config works anywhere.
    absolute_paths(&mut config);
    (info.status, info.ended, info.device) = (Status::Running, None, opts.device.name());
    info.world_size = world.size;
    let out = match run {
        Some(run) => {
            crate::files::write_atomic(
                &run.file("config.toml"),
                config::to_toml(&config).as_bytes(),
            )?;
            run.write_info(&info)?;
            Some(Output {
                csv: MetricsCsv::new(&run.file("metrics.csv"), &metrics),
                checkpoints: Checkpoints::new(&run.path, config.train.checkpoint.keep_last),
                events: visuals::Events::create(&run, data.valid.is_some())?,
                run,
            })
        }
        None => None,
    };
    let on_device = opts.device == Device::Cuda && super::parallel::join_nccl(&world)?;
    let s = Session {
        run_path: lead_run_path(&world, out.as_ref().map(|o| &o.run)),
        out,
        world,
        reduce_time: super::parallel::ReduceTime {
            on_device,
            ..Default::default()
        },
        params: model.named_params(),
        config,
        data,
        model,
        loss,
        criterion,
        metrics,
        optim,
        watch,
        info,
        report,
        progress,
        lr: 0.0,
        first_batch: 0,
        last_saved: std::time::Instant::now(),
        info_written: std::time::Instant::now(),
        best_written: std::time::Instant::now(),
        pending_best: None,
        deadline: None,
        timed_out: false,
    };
    announce(&s, opts)?;
    Ok(s)
}

/// The loss's options resolved against the training split: class weights given (one per
/// class) or balanced (n / (classes · count), a class absent from the split weighing 0).
pub fn criterion(config: &Config, data: &Prepared) -> Result<Criterion> {
    let Some(loss) = &config.loss else {
        return Ok(Criterion::default());
    };
    // With the loss the task chose, the options must belong to it.
    let kind = loss_for(config, data.schema.task);
    let owner = |key: &str, owners: &[Loss], names: &str| {
        let given = match key {
            "class_weights" => loss.class_weights.is_some(),
            _ => loss.label_smoothing != 0.0,
        };
        if given && !owners.contains(&kind) {
            return Err(Error::config(
                config.places.of(&format!("loss.{key}")),
                format!(
                    "loss.{key}: applies to {names} only, and the loss is {}",
                    kind.name()
                ),
            ));
        }
        Ok(())
    };
    owner(
        "class_weights",
        &[Loss::CrossEntropy, Loss::Bce],
        "cross_entropy and bce",
    )?;
    owner("label_smoothing", &[Loss::CrossEntropy], "cross_entropy")?;
    let classes = data.schema.classes.len();
    let class_weights = match &loss.class_weights {
        None => None,
        Some(ClassWeights::Given(w)) if w.len() != classes => {
            return Err(Error::config(
                config.places.of("loss.class_weights"),
                format!(
                    "loss.class_weights: {} weights for {classes} classes ({})",
                    w.len(),
                    data.schema.classes.join(", ")
                ),
            ))
        }
        Some(ClassWeights::Given(w)) => Some(w.clone()),
        Some(ClassWeights::Balanced) => {
            let counts = data.train.class_counts(classes)?;
            let n = data.train.len() as f64;
            let w = counts
                .iter()
                .map(|&c| {
                    if c == 0 {
                        0.0
                    } else {
                        (n / (classes * c) as f64) as f32
                    }
                })
                .collect();
            Some(w)
        }
    };
    Ok(Criterion {
        class_weights,
        label_smoothing: loss.label_smoothing,
    })
}

/// The run directory's path as rank 0 has it, on every rank (for messages).
fn lead_run_path(world: &crate::dist::World, run: Option<&RunDir>) -> PathBuf {
    let mut bytes = run
        .map(|r| r.path.to_string_lossy().into_owned().into_bytes())
        .unwrap_or_default();
    world.broadcast(&mut bytes);
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}

/// Rank 0's weights, optimizer state and progress on every rank (several ranks): the same
/// start whatever each rank built or read. Only rank 0 keeps the training statistics of a
/// resumed epoch, so that summing the ranks' statistics counts them once.
fn share_start(
    world: &crate::dist::World,
    model: &Model,
    optim: &mut Optimizer,
    progress: &mut Progress,
    empty: Accumulator,
) -> Result<()> {
    if world.is_single() {
        return Ok(());
    }
    let mut tensors = model.named_state();
    tensors.extend(optim.state());
    let mut bytes = serde_json::to_vec(&*progress).expect("progress serializes");
    super::parallel::share_state(world, &tensors, &mut bytes)?;
    if !world.is_lead() {
        *progress = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Runtime(format!("rank 0's training progress: {e}")))?;
        progress.train = empty;
        optim.set_steps(progress.optimizer_steps());
    }
    Ok(())
}

/// run.json of a new run.
fn new_info(
    name: &str,
    config: &Config,
    opts: &Options,
    data: &Prepared,
    model: &Model,
    loss: Loss,
    metrics: &[String],
) -> RunInfo {
    RunInfo {
        kiln_version: env!("CARGO_PKG_VERSION").into(),
        name: name.into(),
        status: Status::Running,
        device: opts.device.name(),
        threads: crate::threads(),
        world_size: 1,
        seed: config.seed,
        started: crate::run::now(),
        ended: None,
        data: data.files.clone(),
        input_shape: model.input_shape().dims().to_vec(),
        loss: loss.name().into(),
        criterion: Default::default(),
        metrics: metrics.to_vec(),
        schema: data.schema.clone(),
        epochs_done: 0,
        last_checkpoint: None,
        best: None,
        test: None,
        error: None,
        first_step_at: None,
    }
}

/// The run's first lines: where it is, the device, warnings, the task, loss and size.
fn announce(s: &Session, opts: &Options) -> Result<()> {
    let line = |l: &str| s.say(l);
    line(&format!("run {}", s.run_path.display()))?;
    if !s.world.is_single() {
        let how = match (opts.device, s.reduce_time.on_device) {
            (Device::Cpu, _) => "gradients summed by MPI",
            (Device::Cuda, true) => "gradients summed on the GPUs by NCCL",
            (Device::Cuda, false) => "gradients summed through the host by MPI (libnccl not found)",
        };
        let bs = s.config.train.batch_size;
        let shares: Vec<String> = (0..s.world.size)
            .map(|rank| {
                let w = crate::dist::World {
                    rank,
                    size: s.world.size,
                };
                w.share(bs).len().to_string()
            })
            .collect();
        line(&format!(
            "data-parallel: {} ranks, global batch {bs} (rows per rank: {}), {how}",
            s.world.size,
            shares.join(", ")
        ))?;
    }
    line(&match opts.device {
        Device::Cpu => format!("device: cpu, {} threads", crate::threads()),
        Device::Cuda => format!(
            "device: {} ({})",
            opts.device.name(),
            crate::backend::cuda::gpu().name
        ),
    })?;
    if let Some(note) = &opts.device_note {
        line(&format!("note: {note}"))?;
    }
    for w in &s.data.warnings {
        line(&format!("warning: {w}"))?;
    }
    for n in &s.data.column_notes {
        line(n)?;
    }
    line(&format!(
        "task: {:?} ({}); loss {}; {} parameters",
        s.data.schema.task,
        s.data.task_reason,
        s.loss.name(),
        s.model.num_params()
    ))
}

/// Data and weight paths made absolute, so the run's config.toml works from any directory
/// (eval and resume re-read it).
fn absolute_paths(config: &mut Config) {
    let d = &mut config.data;
    for p in [
        Some(&mut d.train),
        d.valid.as_mut(),
        d.test.as_mut(),
        config.model.init_from.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        if let Ok(abs) = std::path::absolute(&*p) {
            *p = abs;
        }
    }
}

/// Open a run to continue from its newest checkpoint that loads, checked against the config
/// given now, and put the run directory back in the state that checkpoint saw: a kill at any
/// moment may have left a checkpoint run.json does not name yet, metrics.csv rows of epochs
/// after it, and temporary files.
fn resume_run(
    dir: &Path,
    config: &Config,
    names: &[String],
) -> Result<(RunDir, RunInfo, Progress, (PathBuf, checkpoint::Loaded))> {
    let run = RunDir::open(dir)?;
    run.lock()?;
    let mut info = run.read_info()?;
    let (name, loaded, progress, skipped) = newest_checkpoint(&run, &info, names)?;
    for s in skipped {
        eprintln!("warning: {s}; resuming from {name}");
    }
    if progress.epoch >= config.train.epochs {
        return Err(Error::Usage(format!(
            "{}: already trained {} of {} epochs; raise train.epochs (--set train.epochs=N) to continue",
            dir.display(),
            progress.epoch,
            config.train.epochs
        )));
    }
    run.remove_temporary_files()?;
    MetricsCsv::keep_epochs_through(&run.file("metrics.csv"), progress.epoch)?;
    (info.last_checkpoint, info.epochs_done) = (Some(name.clone()), progress.epoch);
    let path = run.path.join(&name);
    Ok((run, info, progress, (path, loaded)))
}

/// The newest checkpoint on disk that loads and holds training progress: the one run.json
/// names, or a newer one a kill kept it from recording. A damaged one is passed over.
fn newest_checkpoint(
    run: &RunDir,
    info: &RunInfo,
    tensors: &[String],
) -> Result<(String, checkpoint::Loaded, Progress, Vec<String>)> {
    let dir = run.file("checkpoints");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".safetensors") && !n.starts_with('.'))
        .map(|n| format!("checkpoints/{n}"))
        .collect();
    // Names sort in training order (a mid-epoch checkpoint before its epoch's end).
    names.sort();
    let mut problems = Vec::new();
    for name in names.iter().rev() {
        let path = run.path.join(name);
        let progress = checkpoint::load_own(&path, tensors).and_then(|loaded| {
            let progress: Progress = loaded
                .meta("progress")
                .and_then(|p| serde_json::from_str(p).ok())
                .ok_or_else(|| {
                    Error::data(name.clone(), "the checkpoint has no training progress")
                })?;
            Ok((loaded, progress))
        });
        match progress {
            Ok((loaded, progress)) => return Ok((name.clone(), loaded, progress, problems)),
            Err(e) => problems.push(e.to_string()),
        }
    }
    let why = match (&info.last_checkpoint, problems.is_empty()) {
        (None, true) => "the run has no checkpoint to resume from".to_string(),
        _ => format!("no checkpoint loads: {}", problems.join("; ")),
    };
    Err(Error::Usage(format!("{}: {why}", run.path.display())))
}
