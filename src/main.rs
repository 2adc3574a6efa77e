//! The `kiln` binary: parse, run, report the error, exit with its code.

use clap::Parser;

fn main() {
    let cli = kiln::cli::Cli::parse();
    if let Err(e) = cli.exec() {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
