//! `mmloop`: the command-line program. A thin layer over the library crates: it parses arguments,
//! calls the libraries and prints; every number is computed in `crates/`.

use clap::{Parser, Subcommand};

mod design;
mod fit;
mod ledger;
mod lift;
mod loop_cmd;
mod optimize;
mod panel_args;
mod rank;
mod report;
mod say;
mod simulate;

#[derive(Parser, Debug)]
#[command(name = "mmloop", version, about = "Marketing-mix models and geo experiments in one measurement loop")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Also write the output's HTML report beside it (OUT.html), as `mmloop report OUT` does.
    #[arg(long, global = true)]
    report: bool,
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
    /// The closed loop: calibrated fit, check of new readouts, next tests, budget (`--config`), or a demo world (`--demo`).
    Loop(loop_cmd::LoopArgs),
    /// Does the loop pay? The closed loop over many simulated worlds under several test-choice arms, against the truth.
    Simulate(simulate::SimulateArgs),
    /// Render an output directory as one self-contained HTML report (inline SVG charts, works offline).
    Report(report::ReportArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let report_of = cli.report.then(|| output_dir(&cli.command));
    let result: anyhow::Result<()> = match cli.command {
        Command::Fit(a) => fit::run(a),
        Command::Lift(a) => lift::run(a),
        Command::Optimize(a) => optimize::run_optimize(a),
        Command::Scenario(a) => optimize::run_scenario(a),
        Command::Design(a) => design::run(a),
        Command::Ledger(a) => ledger::run(a),
        Command::Rank(a) => rank::run(a),
        Command::Loop(a) => loop_cmd::run(a),
        Command::Simulate(a) => simulate::run(a),
        Command::Report(a) => report::run(a),
    };
    let result = match (result, report_of) {
        (Ok(()), Some(Some(dir))) => report::run(report::ReportArgs { dir, out: None }),
        (Ok(()), Some(None)) => Err(anyhow::anyhow!(
            "--report: this command's output has no HTML report (every command with --out has one); \
             run `mmloop report LEDGER` to see a ledger"
        )),
        (r, _) => r,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            std::process::ExitCode::from(2)
        }
    }
}

/// The output directory a command writes (`--out`), for `--report`.
fn output_dir(c: &Command) -> Option<std::path::PathBuf> {
    match c {
        Command::Fit(a) => Some(a.out.clone()),
        Command::Lift(a) => Some(a.out.clone()),
        Command::Optimize(a) => Some(a.out.clone()),
        Command::Scenario(a) => Some(a.out.clone()),
        Command::Design(a) => Some(a.out.clone()),
        Command::Rank(a) => Some(a.out.clone()),
        // the loop directory: the history of its cycles and the latest cycle
        Command::Loop(a) => Some(a.out.clone()),
        Command::Simulate(a) => Some(a.out.clone()),
        Command::Ledger(_) | Command::Report(_) => None,
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
