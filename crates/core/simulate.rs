//! `mmloop simulate`: does the loop pay? Many simulated worlds, the closed loop under several
//! test-choice arms with common random numbers, scored against the truth. Every step is in
//! `mmloop_loop::simulate`; this parses, shows progress, writes and prints.

use mmloop_loop::simulate::{self, Arm, SimSettings};
use mmloop_mmm::spec::FitMethod;
use std::path::PathBuf;

/// Run the closed loop in many simulated worlds under several arms and report what it buys.
#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    /// Worlds drawn from the distribution (3-8 channels, 8-20 geos, confounding from none to strong).
    #[arg(long, default_value_t = 100, value_parser = crate::panel_args::count)]
    pub worlds: usize,
    /// Quarterly cycles per world and arm.
    #[arg(long, default_value_t = 5, value_parser = crate::panel_args::count)]
    pub cycles: usize,
    /// Arms, comma-separated: evoi, eig, uncertainty, random, none, oracle; also evoi_nodecay (evoi
    /// with evidence that never ages) and evoi_discard (evoi dropping readouts the discrepancy check
    /// flags). random runs as many tests as evoi chose in the same cycle.
    #[arg(long, default_value = "evoi,eig,uncertainty,random,none,oracle")]
    pub arms: String,
    /// Master seed: worlds, noise, fits, designs and EVOI readouts all derive from it.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How the MMM is fitted each cycle: laplace (fast) or nuts.
    #[arg(long, default_value = "laplace")]
    pub method: String,
    /// The world distribution: well_specified, wrong_adstock (delayed Weibull carry-over the geometric
    /// model cannot fit), confounded (strong hidden demand in every world), drift (effects drift up to
    /// ±50 % a year; compare evoi with evoi_nodecay), biased_experiments (20 % of readouts ×1.5-2.5).
    #[arg(long, default_value = "well_specified")]
    pub scenario: String,
    /// Channels per world: a number (5) or a range (3-8).
    #[arg(long, default_value = "3-8")]
    pub channels: String,
    /// Most tests a cycle.
    #[arg(long, default_value_t = 3, value_parser = crate::panel_args::count)]
    pub max_tests: usize,
    /// Posterior draws of each Laplace fit.
    #[arg(long, default_value_t = 400, value_parser = crate::panel_args::count)]
    pub draws: usize,
    /// Simulated readouts per EVOI evaluation (and EVPI draws).
    #[arg(long, default_value_t = 200, value_parser = crate::panel_args::count)]
    pub evoi_readouts: usize,
    /// Start every Laplace fit cold from the model's default starts. By default a fit after an
    /// arm's first cycle starts at that arm's previous mode beside one data-driven start (the same
    /// modes, a fraction of the optimiser's work).
    #[arg(long)]
    pub cold_fits: bool,
    /// The fitted MMM's `[calibration] observational_bias_sd`: the prior sd of ln(observational /
    /// causal effect) per channel, so experiments can correct what the data confound (the loop
    /// demo uses 0.5). 0 takes the data's association as causal.
    #[arg(long, default_value_t = 0.0)]
    pub observational_bias_sd: f64,
    /// Re-run the first K worlds with NUTS fits and say whether the conclusions agree.
    #[arg(long, default_value_t = 0, value_parser = crate::panel_args::count)]
    pub nuts_check: usize,
    /// Worker threads (default: all cores). Results are identical whatever the number.
    #[arg(long, value_parser = crate::panel_args::count)]
    pub jobs: Option<usize>,
    /// Output directory: results.csv, results.parquet, timings.csv, summary.json, summary.txt. A
    /// killed run resumes when run again with the same options (any --worlds): finished worlds are
    /// kept in .NAME.simulate-checkpoint.jsonl beside DIR until DIR is written.
    #[arg(long)]
    pub out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

fn channels_range(s: &str) -> anyhow::Result<(usize, usize)> {
    let bad = || anyhow::anyhow!("--channels: give a number (5) or a range (3-8), got {s:?}");
    let t = s.trim();
    let (a, b) = match t.split_once('-') {
        Some((a, b)) => (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?),
        None => {
            let n = t.parse().map_err(|_| bad())?;
            (n, n)
        }
    };
    Ok((a, b))
}

fn settings(args: &SimulateArgs) -> anyhow::Result<SimSettings> {
    let method = match args.method.trim().to_lowercase().as_str() {
        "laplace" => FitMethod::Laplace,
        "nuts" => FitMethod::Nuts,
        m => anyhow::bail!("--method: must be laplace or nuts, got {m:?}"),
    };
    let mut s = SimSettings {
        worlds: args.worlds,
        cycles: args.cycles,
        arms: Arm::parse_list(&args.arms)?,
        seed: args.seed,
        method,
        max_tests: args.max_tests,
        draws: args.draws,
        evoi_readouts: args.evoi_readouts,
        evpi_draws: args.evoi_readouts,
        warm_start: !args.cold_fits,
        observational_bias_sd: args.observational_bias_sd,
        ..Default::default()
    };
    s.distribution.channels = channels_range(&args.channels)?;
    let s = s.scenario(&args.scenario)?;
    s.validate()?;
    if args.nuts_check > args.worlds {
        anyhow::bail!("--nuts-check: {} is more than the {} worlds simulated", args.nuts_check, args.worlds);
    }
    if args.jobs == Some(0) {
        anyhow::bail!("--jobs: give at least 1 thread");
    }
    Ok(s)
}

fn bar(n: usize, quiet: bool, what: &str) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(n as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} worlds, {elapsed} (eta {eta})")
    {
        b.set_style(style);
    }
    b.set_message(what.to_string());
    b
}

pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let s = settings(&args)?;
    // refuse a bad output directory before the long work
    mmloop_data::OutputDir::check(&args.out, "simulate", &[])?;
    // finished worlds are kept next to the output until it is written: a killed run resumes
    let checkpoint = simulate::checkpoint::Checkpoint::open(&args.out, &s)?;
    if let Some(note) = &checkpoint.replaced {
        eprintln!("note: {note}");
    }
    let worlds: Vec<usize> = (0..s.worlds).collect();
    let resumed = worlds.iter().filter(|w| checkpoint.done.contains_key(w)).count();
    if resumed > 0 {
        eprintln!(
            "resuming: {resumed} of {} worlds were finished by an earlier run ({})",
            s.worlds,
            crate::say::arg(checkpoint.path())
        );
    }
    let pb = bar(s.worlds, args.quiet, "simulating");
    let result = simulate::with_jobs(args.jobs, || {
        simulate::simulate_resuming(&s, &worlds, &checkpoint.done, &|w, rows| checkpoint.record(w, rows), &|| pb.inc(1))
    })??;
    pb.finish_and_clear();
    let mut summary = simulate::summarise(&result);
    let mut nuts_rows = None;
    if args.nuts_check > 0 {
        let nuts_settings = SimSettings { method: FitMethod::Nuts, ..s.clone() };
        let worlds: Vec<usize> = (0..args.nuts_check).collect();
        let pb = bar(worlds.len(), args.quiet, "NUTS check");
        let nuts =
            simulate::with_jobs(args.jobs, || simulate::simulate_worlds(&nuts_settings, &worlds, &|| pb.inc(1)))??;
        pb.finish_and_clear();
        summary.nuts_check = Some(simulate::nuts_check(&result, &nuts));
        nuts_rows = Some(nuts);
    }
    let text = simulate::terminal_summary(&summary);
    let out = mmloop_data::OutputDir::create_for(&args.out, "simulate", &[])?;
    out.write("results.csv", simulate::results_csv(&result).as_bytes())?;
    out.write("timings.csv", simulate::timings_csv(&result).as_bytes())?;
    out.write("results.parquet", &simulate::results_parquet(&result)?)?;
    if let Some(n) = &nuts_rows {
        out.write("nuts_results.csv", simulate::results_csv(n).as_bytes())?;
    }
    out.write("summary.json", serde_json::to_string_pretty(&summary)?.as_bytes())?;
    out.write("summary.txt", text.as_bytes())?;
    let dir = out.commit()?;
    checkpoint.remove()?;
    print!("{text}");
    crate::say::wrote(
        &dir,
        &[format!("mmloop report {}   (the arms' costs over cycles, with their p10/p90 bands)", crate::say::arg(&dir))],
    );
    Ok(())
}
