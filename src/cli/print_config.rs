//! `kiln print-config`

use std::path::PathBuf;

use crate::config;
use crate::error::Result;

/// Print the resolved config as TOML: the file, then `--set` overrides, then every default,
/// as `train` uses it and stores it in the run's config.toml.
#[derive(clap::Args)]
pub struct Args {
    config: PathBuf,
    /// Override a config key: KEY=VALUE (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

pub fn exec(a: Args) -> Result<()> {
    let config = config::load(&a.config, &a.set)?;
    out!("{}", config::to_toml(&config));
    Ok(())
}
