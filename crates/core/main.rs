//! `mmloop`: the command-line program. A thin layer over the library crates: it parses arguments,
//! calls the libraries and prints; every number is computed in `crates/`.

use clap::{Parser, Subcommand};

mod design;
mod fit;
mod ledger;
mod lift;
mod optimize;
mod panel_args;
mod rank;

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
    /// Rank candidate tests on a saved fit: EIG, EVOI/EVPI in money, cost, the 2×2 and a portfolio.
    Rank(rank::RankArgs),
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
        Command::Rank(a) => rank::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            std::process::ExitCode::from(2)
        }
    }
}

/// An error and its causes on one line, each stated once: library errors often include their
/// source's text in their own message (`{path}: cannot read the file: {source}`), and `anyhow`'s
/// `{:#}` would append it again, so a cause already in the text is not repeated.
fn message(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}

#[cfg(test)]
mod tests {
    /// An error that states its source in its own text, as the library errors do.
    #[derive(Debug)]
    struct Io {
        source: std::io::Error,
    }
    impl std::fmt::Display for Io {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "data.csv: cannot read the file: {}", self.source)
        }
    }
    impl std::error::Error for Io {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn each_cause_is_stated_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(Io { source: io }).context("--plan");
        assert_eq!(super::message(&e), "--plan: data.csv: cannot read the file: no such file");
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(super::message(&e), "outer: inner");
    }
}
