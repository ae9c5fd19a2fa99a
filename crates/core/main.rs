//! `mmloop`: the command-line program. A thin layer over the library crates: it parses arguments,
//! calls the libraries and prints; every number is computed in `crates/`.

use clap::{Parser, Subcommand};

mod design;
mod fit;
mod ledger;
mod lift;
mod optimize;
mod panel_args;

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
    /// Estimate a geo test's lift (SC, ASCM, SDID, DiD, TWFE, TBR) with inference; write the calibration record.
    Lift(lift::LiftArgs),
    /// Optimise the budget across channels on a saved fit (risk-aware objectives, bounds, targets).
    Optimize(optimize::OptimizeArgs),
    /// Evaluate spend plans (per channel, per period) on a saved fit, with credible intervals.
    Scenario(optimize::ScenarioArgs),
    /// Design a geo test: rank markets and lengths by simulated power; MDE, budget and expected precision.
    Design(design::DesignArgs),
    /// The experiment ledger: list, show ID, add calibration.json, discard ID --why, evidence --as-of, check, export.
    Ledger(ledger::LedgerArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<()> = match cli.command {
        Command::Fit(a) => fit::run(a),
        Command::Lift(a) => lift::run(a),
        Command::Optimize(a) => optimize::run_optimize(a),
        Command::Scenario(a) => optimize::run_scenario(a),
        Command::Design(a) => design::run(a),
        Command::Ledger(a) => ledger::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
