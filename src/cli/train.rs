//! `kiln train`

use std::path::PathBuf;

use serde_json::json;

use crate::config;
use crate::error::{Error, Result};
use crate::train::{fit, Options};

/// Train the model a config describes, into a new run directory.
#[derive(clap::Args)]
pub struct Args {
    /// The config file (optional with --resume: the run's own config is used).
    config: Option<PathBuf>,
    /// Override a config key: KEY=VALUE, VALUE as TOML (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// CPU threads (default: every core).
    #[arg(long, value_parser = super::thread_count)]
    pub(super) threads: Option<usize>,
    /// Folder for new runs.
    #[arg(long, default_value = "runs", conflicts_with = "run_dir")]
    runs: PathBuf,
    /// Exact directory for this run (must not exist).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Run name prefix (overrides the config's `name`).
    #[arg(long)]
    name: Option<String>,
    /// Seed (overrides the config's `seed`; 0 to 2^63 − 1, as TOML integers).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=i64::MAX as u64))]
    seed: Option<u64>,
    /// Continue RUN_DIR from its last checkpoint, appending to its metrics.
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,
    /// End with one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// No progress or per-epoch lines on stderr.
    #[arg(long)]
    quiet: bool,
    /// Train, validate and test on one batch each, in a temporary run that is removed: a
    /// quick check that the config runs end to end.
    #[arg(long, conflicts_with_all = ["resume", "run_dir"])]
    fast_dev_run: bool,
    /// At most N batches per epoch of training and of each evaluation (train.limit_batches).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    limit_batches: Option<u64>,
    /// Operand format of the matrix products: f32, bf16 or f16 (train.precision).
    #[arg(long, value_name = "P", value_parser = ["f32", "bf16", "f16"])]
    precision: Option<String>,
    /// Cross-validate: K runs, each validating on one of K folds of the training rows
    /// (stratified for classification, seeded), in `<runs>/<name>-cv-<time>/fold-N`; prints each
    /// fold's validation metrics and their mean ± std.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(2..=1000),
          conflicts_with_all = ["resume", "run_dir", "fast_dev_run"])]
    folds: Option<u64>,
}

/// A resumed run continues the run: what it trained on (data, split, seed), its model and its
/// directory stay. Training length, the optimizer and the schedule may change.
fn refuse_changes_on_resume(a: &Args) -> Result<()> {
    let given = |flag: &str, set: bool| {
        set.then(|| {
            Error::Usage(format!(
                "{flag} cannot change a resumed run; start a new run"
            ))
        })
    };
    let flags = [
        given("--seed", a.seed.is_some()),
        given("--name", a.name.is_some()),
        given("--run-dir", a.run_dir.is_some()),
    ];
    if let Some(e) = flags.into_iter().flatten().next() {
        return Err(e);
    }
    for s in &a.set {
        let key = s.split('=').next().unwrap_or("");
        let top = key.split('.').next().unwrap_or("");
        if ["seed", "name", "data", "model"].contains(&top) {
            return Err(Error::Usage(format!(
                "--set {key}: changes what the resumed run trains on or its model; start a new run (or init_from its weights)"
            )));
        }
    }
    Ok(())
}

pub fn exec(a: Args) -> Result<()> {
    let world = crate::dist::join()?;
    // Under mpirun every rank reads the config and opens its device: all go on, or all stop
    // with the failing ranks' errors. Rank 0 reports; the others end in `finish`.
    let ready = crate::dist::all_ok(read_config(&a, &world));
    crate::dist::finish(ready.and_then(|(config, device, set)| train(a, config, device, &set)))
}

/// The config as the arguments make it, and the device, checked before anything is written.
fn read_config(
    a: &Args,
    world: &crate::dist::World,
) -> Result<(config::Config, super::DeviceChoice, Vec<String>)> {
    if !world.is_single() && a.folds.is_some() {
        return Err(Error::Usage(
            "--folds trains its folds one after another as separate runs; under mpirun each rank would start them all: run it without mpirun, or train one fold (--set data.kfold={folds=K,fold=I}) data-parallel".into(),
        ));
    }
    let device = super::select_device(&a.device)?;
    let mut set = a.set.clone();
    if let Some(n) = &a.name {
        set.push(format!("name={}", toml::Value::String(n.clone())));
    }
    if let Some(s) = a.seed {
        set.push(format!("seed={s}"));
    }
    if let Some(n) = a.limit_batches {
        if a.set.iter().any(|s| s.starts_with("train.limit_batches=")) {
            return Err(Error::Usage(
                "--limit-batches and --set train.limit_batches both set the limit; give one".into(),
            ));
        }
        set.push(format!("train.limit_batches={n}"));
    }
    if let Some(p) = &a.precision {
        if a.set.iter().any(|s| s.starts_with("train.precision=")) {
            return Err(Error::Usage(
                "--precision and --set train.precision both set the precision; give one".into(),
            ));
        }
        set.push(format!("train.precision=\"{p}\""));
    }
    if a.fast_dev_run {
        set.extend(["train.epochs=1".into(), "train.limit_batches=1".into()]);
    }
    let config = match (&a.config, &a.resume) {
        (Some(path), Some(_)) => {
            return Err(Error::Usage(format!(
                "{}: --resume continues with the run's own config; give changes with --set (train.epochs, optimizer.lr, ...)",
                path.display()
            )))
        }
        (Some(path), None) => config::load(path, &set)?,
        (None, Some(run)) => {
            crate::run::RunDir::open(run)?;
            refuse_changes_on_resume(a)?;
            config::load(&run.join("config.toml"), &set)?
        }
        (None, None) => {
            return Err(Error::Usage(
                "kiln train needs a CONFIG file (or --resume RUN_DIR)".into(),
            ))
        }
    };
    Ok((config, device, set))
}

/// Train (or cross-validate) and say what came of it.
fn train(
    a: Args,
    config: config::Config,
    device: super::DeviceChoice,
    set: &[String],
) -> Result<()> {
    if let Some(k) = a.folds {
        let path = a
            .config
            .as_deref()
            .expect("--folds conflicts with --resume");
        return cross_validate(&config, (path, set), k as usize, &a);
    }
    // First Ctrl-C / SIGTERM: finish the step and checkpoint. A second one: leave now.
    let stop = super::stop_flag()?;
    let scratch = a.fast_dev_run.then(scratch_dir).transpose()?;
    let opts = Options {
        runs: a.runs,
        run_dir: scratch.as_ref().map(|d| d.join("run")).or(a.run_dir),
        resume: a.resume,
        quiet: a.quiet,
        device: device.device,
        device_note: device.fallback,
    };
    let outcome = fit(config, &opts, &stop);
    if let Some(dir) = &scratch {
        // Nothing of a fast dev run is kept, whatever its outcome.
        let _ = std::fs::remove_dir_all(dir);
    }
    let outcome = outcome?;
    if !crate::dist::world().is_lead() {
        return Ok(()); // rank 0 says what came of it
    }
    if a.fast_dev_run {
        // Each split's loss on its one batch: a non-finite one fails the smoke test.
        let test_loss = outcome.info.test.iter().flat_map(|t| t.get("loss"));
        let losses: Vec<(String, f64)> = outcome
            .last
            .iter()
            .filter(|(k, _)| k.ends_with("_loss"))
            .map(|(k, v)| (k.clone(), *v))
            .chain(test_loss.map(|v| ("test_loss".into(), v.as_f64().unwrap_or(f64::NAN))))
            .collect();
        if let Some((k, v)) = losses.iter().find(|(_, v)| !v.is_finite()) {
            return Err(Error::Runtime(format!(
                "fast-dev-run failed: {k} is {v}; the model's outputs overflow (a learning rate too high, unscaled features?)"
            )));
        }
        if !a.json {
            let shown: Vec<String> = losses.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
            outln!(
                "fast-dev-run passed: one batch of each split ran ({}); nothing kept",
                shown.join(", ")
            );
            return Ok(());
        }
    }
    if a.json {
        let final_: serde_json::Map<String, serde_json::Value> = outcome
            .last
            .iter()
            .filter(|(k, _)| k.starts_with("train_") || k.starts_with("valid_"))
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let out = json!({
            "run_dir": outcome.run_dir,
            "status": outcome.info.status,
            "epochs": outcome.info.epochs_done,
            "final": final_,
            "best": outcome.info.best,
            "test": outcome.info.test,
        });
        outln!("{out}");
    } else {
        outln!("{}", outcome.run_dir.display());
    }
    Ok(())
}

/// `--folds K`: the sweep machinery with one setting and K folds, one run at a time.
fn cross_validate(
    config: &config::Config,
    file: (&std::path::Path, &[String]),
    folds: usize,
    a: &Args,
) -> Result<()> {
    use crate::sweep::{Kind, Plan};
    let plan = Plan {
        kind: Kind::CrossValidation,
        kiln_version: env!("CARGO_PKG_VERSION").into(),
        created: crate::run::now(),
        metric: config
            .train
            .checkpoint
            .best
            .clone()
            .unwrap_or_else(|| "valid.loss".into()),
        keys: Vec::new(),
        settings: vec![Vec::new()],
        folds: Some(folds),
    };
    let folder = super::sweep::start(&plan, file, &a.runs, "cv")?;
    let opts = super::sweep::options(&a.device, a.threads, 1, a.quiet)?;
    super::sweep::finish(&plan, &folder, &opts, a.json)
}

/// A fresh folder for a fast dev run's temporary run directory.
fn scratch_dir() -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir =
        std::env::temp_dir().join(format!("kiln-fast-dev-run-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    Ok(dir)
}
