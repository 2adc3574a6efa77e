//! `kiln export`

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::backend::Device;
use crate::error::{Error, Result};
use crate::export::{self, DEFAULT_OPSET, OPSETS};
use crate::files;

/// Write a trained model as an ONNX model: evaluation mode, the run's preprocessing and the
/// output's softmax inside, a dynamic batch axis.
#[derive(clap::Args)]
pub struct Args {
    /// A run directory (its best model) or a checkpoint file.
    run: PathBuf,
    #[arg(long, default_value = "onnx", value_parser = ["onnx"])]
    format: String,
    /// Where to write (`-`: stdout); default `<run directory name>.onnx` here, or
    /// `<run directory name>-<checkpoint>.onnx` for a checkpoint. Written atomically.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// The ONNX opset (13-21).
    #[arg(long, default_value_t = DEFAULT_OPSET,
          value_parser = clap::value_parser!(i64).range(*OPSETS.start()..=*OPSETS.end()))]
    opset: i64,
}

/// The file name used when `--output` is not given.
fn default_output(run_dir: &Path, weights: &Path) -> PathBuf {
    let run = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let best = weights
        .file_name()
        .is_some_and(|n| n == "model.safetensors");
    match weights.file_stem() {
        Some(stem) if !best => PathBuf::from(format!("{run}-{}.onnx", stem.to_string_lossy())),
        _ => PathBuf::from(format!("{run}.onnx")),
    }
}

pub fn exec(a: Args) -> Result<()> {
    let trained = super::open_trained(&a.run)?;
    let (model, loss) = trained.model(Device::Cpu)?;
    let config_path = trained.run_dir.join("config.toml");
    let config_bytes = std::fs::read(&config_path).map_err(|e| Error::io(&config_path, e))?;
    let source = export::Source {
        model: &model,
        loss,
        schema: &trained.info.schema,
        run_name: &trained.info.name,
        config_sha256: files::sha256_hex(&config_bytes),
    };
    let bytes = export::to_onnx(&source, a.opset)
        .map_err(|e| Error::Usage(format!("{}: cannot export: {e}", a.run.display())))?;
    let out = a
        .output
        .unwrap_or_else(|| default_output(&trained.run_dir, &trained.weights));
    if out.as_os_str() == "-" {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(&bytes)
            .and_then(|_| stdout.flush())
            .map_err(|e| Error::io(Path::new("<stdout>"), e))?;
    } else {
        files::write_atomic(&out, &bytes)?;
        eprintln!(
            "wrote {} (ONNX opset {}, {} parameters, {:.1} KiB)",
            out.display(),
            a.opset,
            model.num_params(),
            bytes.len() as f64 / 1024.0
        );
    }
    Ok(())
}
