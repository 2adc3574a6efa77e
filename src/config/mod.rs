//! The TOML config: strict parsing with places in errors, `--set` overrides, defaults.

mod suggest;

pub use suggest::did_you_mean;
