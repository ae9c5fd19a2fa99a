//! `mmloop`: the command-line program. A thin layer over the library crates: it parses arguments,
//! calls the libraries and prints; every number is computed in `crates/`.

use clap::{Parser, Subcommand};

mod fit;

#[derive(Parser, Debug)]
#[command(name = "mmloop", version, about = "Marketing-mix models and geo experiments in one measurement loop")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Fit a marketing-mix model from a TOML config; write summary.json, CSV tables and posterior draws.
    Fit(fit::FitArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<()> = match cli.command {
        Command::Fit(a) => fit::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
