//! The `kiln` command. The engine is in place; the train / eval / predict / check / runs
//! subcommands arrive with the CLI (see README.md).

use clap::Parser;

/// Train, evaluate and predict with neural networks described in TOML files.
#[derive(Parser)]
#[command(name = "kiln", version)]
struct Cli {}

fn main() {
    Cli::parse();
    eprintln!(
        "kiln {}: no subcommands yet; see README.md",
        env!("CARGO_PKG_VERSION")
    );
}
