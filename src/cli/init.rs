//! `kiln init`

use std::path::{Path, PathBuf};

use crate::config;
use crate::error::{Error, Result};
use crate::files;
use crate::starter::{self, Request};

/// Write a commented starter config for a CSV file or an image folder, one that trains as it
/// stands.
#[derive(clap::Args)]
pub struct Args {
    /// A CSV file (.csv or .csv.gz), or a folder with one subfolder of images per class.
    data: PathBuf,
    /// The target column (CSV); default: a column named like a target (label, target, class,
    /// y, species, ...), else the last column.
    #[arg(long, value_name = "COL")]
    target: Option<String>,
    /// Where to write (`-`: stdout); default `<data name>.toml` here. Written atomically.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Replace the output file if it exists.
    #[arg(long)]
    force: bool,
}

pub fn exec(a: Args) -> Result<()> {
    let output = a
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.toml", starter::stem(&a.data))));
    let to_stdout = output.as_os_str() == "-";
    if !to_stdout {
        refuse_to_replace(&output, &a.data, a.force)?;
    }
    let shown = output.display().to_string();
    let s = starter::starter(&Request {
        data: &a.data,
        target: a.target.as_deref(),
        output: &shown,
    })?;
    check(&s.toml, &shown)?;
    if to_stdout {
        out!("{}", s.toml);
        eprintln!("wrote a config to stdout: {}", s.summary);
    } else {
        files::write_atomic(&output, s.toml.as_bytes())?;
        eprintln!("wrote {shown}: {}", s.summary);
    }
    Ok(())
}

/// An existing file stays unless `--force`; the data itself is never replaced.
fn refuse_to_replace(output: &Path, data: &Path, force: bool) -> Result<()> {
    let same = |a: &Path, b: &Path| matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y);
    if same(output, data) {
        return Err(Error::Usage(format!(
            "{}: that is the data; give --output another file",
            output.display()
        )));
    }
    let parent = output.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = parent.filter(|p| !p.is_dir()) {
        return Err(Error::Usage(format!(
            "{}: the folder {} does not exist; make it first, or give --output another file",
            output.display(),
            dir.display()
        )));
    }
    if output.is_dir() {
        return Err(Error::Usage(format!(
            "{}: a folder; give --output a file",
            output.display()
        )));
    }
    if !force && std::fs::symlink_metadata(output).is_ok() {
        return Err(Error::Usage(format!(
            "{}: already exists; give --force to replace it, or --output another file",
            output.display()
        )));
    }
    Ok(())
}

/// Check the starter as `kiln check` would (config, data, model, metrics) before writing it:
/// a config that does not train is never written.
fn check(text: &str, source: &str) -> Result<()> {
    let config = config::parse(text, source, &[])?;
    super::check::trainable(&config, None)
}
