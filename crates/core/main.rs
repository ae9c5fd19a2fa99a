//! `mmloop`: the command-line program. A thin layer over the library crates: it parses arguments,
//! calls the libraries and prints; every number is computed in `crates/`.

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "mmloop", version, about = "Marketing-mix models and geo experiments in one measurement loop")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<()> = match cli.command {};
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
