//! `mmloop loop`: one measurement cycle on real data (`--config`), or several against a simulated
//! world (`--demo`). Every step is in `mmloop_loop::cycle`; this prints.

use anyhow::Context;
use mmloop_loop::cycle::{self, CycleOptions, LoopConfig, LoopDir, NoTests};
use std::path::PathBuf;

/// Run the closed loop: calibrated fit, validation of new readouts, the next tests, the budget.
#[derive(clap::Args, Debug)]
pub struct LoopArgs {
    /// The loop config (TOML): the MMM config, ledger, panel, budget, test constraints, half-lives.
    #[arg(long, required_unless_present = "demo", conflicts_with = "demo")]
    pub config: Option<PathBuf>,
    /// Run the loop against a simulated world with known truth (needs no files).
    #[arg(long)]
    pub demo: bool,
    /// Cycles of the demo.
    #[arg(long, default_value_t = 4, requires = "demo", value_parser = crate::panel_args::count)]
    pub cycles: usize,
    /// Seed of the demo world and its fits.
    #[arg(long, requires = "demo")]
    pub seed: Option<u64>,
    /// The loop's directory: `cycle-N/` per cycle, `fit-N/` its fit. New, empty, or an earlier
    /// `mmloop loop` directory (the next cycle is added; a finished one is not run again).
    #[arg(long)]
    pub out: PathBuf,
    /// Fit and recommend only: plan no tests this cycle.
    #[arg(long)]
    pub no_tests: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: LoopArgs) -> anyhow::Result<()> {
    let options = CycleOptions { quiet: args.quiet };
    let mut progress = |m: &str| eprintln!("{m}");
    if args.demo {
        anyhow::ensure!(args.cycles >= 1, "--cycles must be at least 1, got {}", args.cycles);
        return run_demo(&args, options);
    }
    let config = args.config.as_ref().context("--config or --demo")?;
    let cfg = LoopConfig::load(config)?;
    let mut inputs = vec![config.as_path(), cfg.model.as_path(), cfg.spec.data.path.as_path()];
    if let Some(p) = &cfg.panel {
        inputs.push(&p.path);
    }
    let dir = LoopDir::open(&args.out, &inputs)?;
    let mut chooser = NoTests("no tests planned (--no-tests)".into());
    anyhow::ensure!(args.no_tests, "test ranking is not available in this build yet; run with --no-tests");
    let report = cycle::run_cycle(&cfg, &dir, &mut chooser, options, &mut progress)?;
    if report.up_to_date {
        eprintln!(
            "cycle {} is finished and its inputs (config, data, ledger readouts) are unchanged: nothing to do",
            report.state.cycle
        );
    }
    print!("{}", report.brief);
    for f in &report.files {
        eprintln!("wrote {}", report.dir.join(f).display());
    }
    eprintln!("wrote {}", report.state.fit_dir);
    eprintln!(
        "next: run the planned tests, record each readout with `mmloop lift ... --ledger {}`, then run `mmloop loop --config {} --out {}` again",
        cfg.ledger.display(),
        config.display(),
        args.out.display()
    );
    Ok(())
}

fn run_demo(_args: &LoopArgs, _options: CycleOptions) -> anyhow::Result<()> {
    anyhow::bail!("--demo needs the simulated world, which this build does not have yet")
}
