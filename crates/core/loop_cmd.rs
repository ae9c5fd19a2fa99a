//! `mmloop loop`: one measurement cycle on real data (`--config`), or several against a simulated
//! world (`--demo`). Every step is in `mmloop_loop::cycle`; this prints.

use anyhow::Context;
use mmloop_loop::cycle::demo::DemoSettings;
use mmloop_loop::cycle::{self, CycleOptions, LoopConfig, LoopDir, NoTests, RankChooser};
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
    /// Fitting method of the demo: nuts (default) or laplace.
    #[arg(long, requires = "demo")]
    pub method: Option<String>,
    /// Demo: NUTS warm-up and kept draws per chain (default 300 and 300, 4 chains, dense metric).
    #[arg(long, requires = "demo", value_parser = crate::panel_args::count)]
    pub draws: Option<usize>,
    /// Plant a biased experiment in the demo: the first test planned in this cycle reads out at
    /// --plant-factor × its true lift (default 0.3: as if most of its extra spend was never delivered;
    /// -1: the wrong sign, as if treated and control were swapped).
    #[arg(long, requires = "demo")]
    pub plant_bias: Option<u32>,
    /// The planted test's readout as a multiple of its true lift (with --plant-bias).
    #[arg(long, requires = "plant_bias", default_value_t = 0.3, allow_negative_numbers = true)]
    pub plant_factor: f64,
    /// Demo: rank on this many posterior draws (evenly thinned) with this many preposterior readouts per EVOI.
    #[arg(long, requires = "demo", num_args = 2, value_names = ["DRAWS", "READOUTS"])]
    pub rank_effort: Option<Vec<usize>>,
    /// Demo: the model's prior sd of each channel's ln(observational / causal ROI), `[calibration]
    /// observational_bias_sd` (default 0.5; 0 takes the data's association as causal).
    #[arg(long, requires = "demo")]
    pub observational_bias_sd: Option<f64>,
    /// Demo: the geo-lift estimator that reads the tests out (sc, ascm, sdid, did, twfe, tbr; default ascm).
    #[arg(long, requires = "demo")]
    pub estimator: Option<String>,
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
    let mut none = NoTests("no tests planned (--no-tests)".into());
    let mut ranked;
    let chooser: &mut dyn cycle::TestChooser = if args.no_tests {
        &mut none
    } else {
        ranked = RankChooser::from_config(&cfg)?;
        &mut ranked
    };
    let report = match cycle::run_cycle(&cfg, &dir, chooser, options, &mut progress) {
        Ok(r) => r,
        Err(e) => {
            // a failed first cycle leaves no half-made loop directory behind
            dir.abandon();
            return Err(e.into());
        }
    };
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

fn run_demo(args: &LoopArgs, options: CycleOptions) -> anyhow::Result<()> {
    let mut s = DemoSettings { cycles: args.cycles, ..Default::default() };
    if let Some(seed) = args.seed {
        s.seed = seed;
    }
    if let Some(m) = &args.method {
        s.method = m.parse().map_err(anyhow::Error::msg).context("--method")?;
    }
    if let Some(d) = args.draws {
        anyhow::ensure!(d >= 10, "--draws must be at least 10 per chain, got {d}");
        s.draws = d;
        s.tune = d;
    }
    if let Some(e) = &args.rank_effort {
        s.rank_draws = e[0];
        s.evoi_readouts = e[1];
    }
    if let Some(c) = args.plant_bias {
        if !args.plant_factor.is_finite() {
            anyhow::bail!(
                "--plant-factor: {} is not a number; give a multiple of the true lift, e.g. 0.3",
                args.plant_factor
            );
        }
        s.plant_bias = Some((c, args.plant_factor));
    }
    if let Some(e) = &args.estimator {
        s.estimator = e.clone();
    }
    if let Some(b) = args.observational_bias_sd {
        anyhow::ensure!(b.is_finite() && b >= 0.0, "--observational-bias-sd must be >= 0, got {b}");
        s.observational_bias_sd = b;
    }
    eprintln!(
        "demo: a 12-geo world (seed {}) where search's spend follows demand the model cannot see; {} of {} weeks",
        s.seed,
        mmloop_data::human::count(s.cycles, "cycle"),
        s.horizon
    );
    let mut progress = |m: &str| eprintln!("{m}");
    let report = cycle::demo::run_demo(&s, &args.out, options, &mut progress)?;
    for (k, b) in &report.briefs {
        println!("\n==== cycle {k} ====\n{b}");
    }
    println!("\ntrajectory against the truth:\n{}", cycle::demo::trajectory_table(&report.rows));
    eprintln!("wrote {}", report.trajectory.display());
    eprintln!("wrote {} (cycle-N/, fit-N/, world-N/ per cycle)", args.out.display());
    eprintln!(
        "next: `mmloop ledger {} list` shows every test and its readout; `mmloop loop --demo --cycles {} --out {}` adds cycles",
        report.ledger.display(),
        s.cycles + 1,
        args.out.display()
    );
    Ok(())
}
