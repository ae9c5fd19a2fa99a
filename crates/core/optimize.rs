//! `mmloop optimize` and `mmloop scenario`: budget decisions on a saved fit.

use anyhow::Context;
use mmloop_data::OutputDir;
use mmloop_mmm::optimize::{
    FittedModel, OptimizationReport, OutcomeUnit, PlanGoal, PlanningBasis, Risk, ScenarioReport, SpendPlan,
    evaluate_plan, optimize_plan, relative_bounds,
};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Optimise the budget split across channels on a fitted posterior.
#[derive(clap::Args, Debug)]
pub struct OptimizeArgs {
    /// A fit directory written by `mmloop fit`.
    #[arg(long)]
    pub fit: PathBuf,
    /// Total budget over the horizon (default: the spend of the last `--horizon` periods).
    #[arg(long, allow_negative_numbers = true)]
    pub budget: Option<f64>,
    /// Planning horizon in periods; the current allocation is the spend of the last this-many periods.
    #[arg(long, default_value_t = 13, allow_negative_numbers = true, value_parser = whole_periods)]
    pub horizon: usize,
    /// Bounds relative to current spend: each channel may move this fraction either way (Meridian's ±30 %).
    #[arg(long, default_value_t = 0.3, allow_negative_numbers = true)]
    pub relative: f64,
    /// CSV of absolute bounds overriding `--relative`: columns channel, lower, upper (equal = fixed).
    #[arg(long)]
    pub bounds: Option<PathBuf>,
    /// Objective: mean, mean-sd:K, quantile:Q, cvar:A.
    #[arg(long, default_value = "mean")]
    pub objective: String,
    /// Outcome units: kpi, revenue (needs revenue per KPI in the model), or profit (revenue − spend).
    #[arg(long, default_value = "kpi")]
    pub outcome: String,
    /// Instead of a budget: the smallest budget reaching this expected outcome.
    #[arg(long, conflicts_with_all = ["budget", "target_roi"], allow_negative_numbers = true)]
    pub target_outcome: Option<f64>,
    /// Instead of a budget: spend until each channel's marginal ROI falls to this value.
    #[arg(long, conflicts_with = "budget", allow_negative_numbers = true)]
    pub target_roi: Option<f64>,
    /// Long-run (steady-state) adstock instead of the exact ramp-up and carry-over over the horizon.
    #[arg(long)]
    pub steady_state: bool,
    /// Output directory for optimize.json and optimize.csv: new, empty, or an earlier `mmloop optimize`
    /// output; never the fit directory or another input.
    #[arg(long)]
    pub out: PathBuf,
}

/// Evaluate spend plans on a fitted posterior.
#[derive(clap::Args, Debug)]
pub struct ScenarioArgs {
    /// A fit directory written by `mmloop fit`.
    #[arg(long)]
    pub fit: PathBuf,
    /// Plan CSV/Parquet: a `period` column and one spend column per channel (missing channels spend 0).
    #[arg(long)]
    pub plan: PathBuf,
    /// Outcome units: kpi or revenue.
    #[arg(long, default_value = "kpi")]
    pub outcome: String,
    /// Output directory for scenario.json and scenario.csv: new, empty, or an earlier `mmloop scenario`
    /// output; never the fit directory or another input.
    #[arg(long)]
    pub out: PathBuf,
}

/// `--horizon`: a whole number of periods, at least 1 (the upper limit, the fit's periods, is
/// checked against the fit).
fn whole_periods(s: &str) -> Result<usize, String> {
    match s.trim().parse::<i128>() {
        Ok(v) if v >= 1 => usize::try_from(v).map_err(|_| format!("must be at most {} periods, got {s}", usize::MAX)),
        Ok(_) => Err(format!("must be a whole number of periods, at least 1, got {s}")),
        Err(_) => Err(format!("must be a whole number of periods (at least 1), got {s:?}")),
    }
}

/// Checks the numeric options of `mmloop optimize` before any file is read: each must be a finite
/// number in its range, and the message says what the range is.
fn validate_optimize(args: &OptimizeArgs) -> anyhow::Result<()> {
    let positive = |name: &str, v: Option<f64>, what: &str| -> anyhow::Result<()> {
        match v {
            Some(x) if !(x.is_finite() && x > 0.0) => {
                anyhow::bail!("{name} must be {what}, a finite number greater than 0, got {x}")
            }
            _ => Ok(()),
        }
    };
    positive("--budget", args.budget, "the money to spend over the horizon")?;
    positive("--target-outcome", args.target_outcome, "the outcome to reach over the horizon")?;
    positive("--target-roi", args.target_roi, "the marginal return per unit of spend to stop at (e.g. 1.0)")?;
    if !(args.relative.is_finite() && (0.0..=1.0).contains(&args.relative)) {
        anyhow::bail!(
            "--relative must be a fraction from 0 to 1 (each channel may move this share of its current spend \
             either way; 0.3 = ±30 %), got {}. For wider or asymmetric limits give --bounds",
            args.relative
        );
    }
    Ok(())
}

fn unit(s: &str) -> anyhow::Result<(OutcomeUnit, bool)> {
    match s {
        "kpi" => Ok((OutcomeUnit::Kpi, false)),
        "revenue" => Ok((OutcomeUnit::Revenue, false)),
        "profit" => Ok((OutcomeUnit::Revenue, true)),
        _ => anyhow::bail!("--outcome must be kpi, revenue or profit, got {s:?}"),
    }
}

/// Loads a saved fit, refusing changed inputs or foreign draws; prints warnings (an old fit
/// without hashes).
pub fn load_fit(dir: &std::path::Path) -> anyhow::Result<FittedModel> {
    let (fit, warnings) = FittedModel::load_checked(dir)?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    Ok(fit)
}

/// Reads `--bounds`: columns channel, lower, upper; one row per channel.
fn read_bounds(path: &PathBuf) -> anyhow::Result<Vec<(String, f64, f64)>> {
    let t = mmloop_data::Table::read(path)?;
    let names = t.str_column("channel")?;
    let lo = t.f64_column("lower")?;
    let hi = t.f64_column("upper")?;
    for (i, n) in names.iter().enumerate() {
        if let Some(j) = names[..i].iter().position(|m| m == n) {
            anyhow::bail!(
                "{}: channel {n:?} has two rows ({} and {}); give each channel one row of bounds",
                path.display(),
                j + 1,
                i + 1
            );
        }
    }
    Ok(names.into_iter().zip(lo).zip(hi).map(|((n, l), h)| (n, l, h)).collect())
}

pub fn run_optimize(args: OptimizeArgs) -> anyhow::Result<()> {
    validate_optimize(&args)?;
    let risk = Risk::parse(&args.objective).map_err(anyhow::Error::msg).context("--objective")?;
    let (unit, profit) = unit(&args.outcome)?;
    let mut inputs: Vec<&std::path::Path> = vec![&args.fit];
    inputs.extend(args.bounds.as_deref());
    OutputDir::check(&args.out, "optimize", &inputs)?;
    let fit = load_fit(&args.fit)?;
    inputs.push(&fit.spec.data.path);
    let basis = PlanningBasis::new(&fit, args.horizon, unit)?;
    let curves = basis.curves(&fit, args.steady_state)?;
    let overrides = match &args.bounds {
        Some(p) => read_bounds(p).context("--bounds")?,
        None => Vec::new(),
    };
    let bounds = relative_bounds(&basis, args.relative, &overrides)?;
    let goal = match (args.budget, args.target_outcome, args.target_roi) {
        (_, Some(t), _) => PlanGoal::TargetOutcome(t),
        (_, _, Some(r)) => PlanGoal::TargetMarginalReturn(r),
        (Some(b), _, _) => PlanGoal::Budget(b),
        // profit = revenue − spend: with a fixed budget the revenue-optimal split also maximises
        // profit; with no budget given, profit peaks where every channel's marginal ROI is 1
        (None, _, _) if profit => PlanGoal::TargetMarginalReturn(1.0),
        (None, _, _) => PlanGoal::Budget(basis.current.iter().sum()),
    };
    let report = optimize_plan(&basis, &curves, risk, &bounds, goal)?;
    let out = OutputDir::create_for(&args.out, "optimize", &inputs)?;
    out.write("optimize.json", serde_json::to_string_pretty(&report)?.as_bytes())?;
    let mut csv = String::from(
        "channel,current_spend,optimal_spend,lower,upper,outcome_mean,outcome_q05,outcome_q95,marginal_return\n",
    );
    for c in &report.channels {
        writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{}",
            c.channel,
            c.current_spend,
            c.optimal_spend,
            c.lower,
            c.upper,
            c.outcome.mean,
            c.outcome.q05,
            c.outcome.q95,
            c.marginal_return
        )?;
    }
    out.write("optimize.csv", csv.as_bytes())?;
    let mut gains = String::from("draw,current_outcome,optimal_outcome,gain\n");
    for (d, (c, o)) in report.draws.iter().enumerate() {
        writeln!(gains, "{d},{c},{o},{}", o - c)?;
    }
    out.write("gain_draws.csv", gains.as_bytes())?;
    let dir = out.commit()?;
    print!("{}", optimize_table(&report));
    eprintln!("wrote {}", dir.display());
    Ok(())
}

fn optimize_table(r: &OptimizationReport) -> String {
    let mut s = String::new();
    let _ =
        writeln!(s, "\nBudget allocation over {} periods ({}; objective {})", r.horizon, r.outcome_unit, r.objective);
    let _ = writeln!(
        s,
        "{:<16} {:>14} {:>14} {:>8} {:>14} {:>10}",
        "channel", "current", "optimal", "change", "outcome", "mROI"
    );
    for c in &r.channels {
        let change = if c.current_spend > 0.0 { 100.0 * (c.optimal_spend / c.current_spend - 1.0) } else { f64::NAN };
        let _ = writeln!(
            s,
            "{:<16} {:>14.0} {:>14.0} {:>7.1}% {:>14.1} {:>10.4}",
            c.channel, c.current_spend, c.optimal_spend, change, c.outcome.mean, c.marginal_return
        );
    }
    let _ = writeln!(
        s,
        "expected outcome: current {:.1} [90% {:.1}, {:.1}]  →  optimal {:.1} [90% {:.1}, {:.1}]",
        r.current_outcome.mean,
        r.current_outcome.q05,
        r.current_outcome.q95,
        r.optimal_outcome.mean,
        r.optimal_outcome.q05,
        r.optimal_outcome.q95
    );
    let _ = writeln!(
        s,
        "gain: {:.1} [90% {:.1}, {:.1}], positive in {:.0}% of draws; KKT residual {:.1e}",
        r.gain.mean,
        r.gain.q05,
        r.gain.q95,
        100.0 * r.prob_gain_positive,
        r.kkt_residual
    );
    s
}

pub fn run_scenario(args: ScenarioArgs) -> anyhow::Result<()> {
    let (unit, profit) = unit(&args.outcome)?;
    anyhow::ensure!(!profit, "--outcome for a scenario is kpi or revenue");
    let mut inputs: Vec<&std::path::Path> = vec![&args.fit, &args.plan];
    OutputDir::check(&args.out, "scenario", &inputs)?;
    let fit = load_fit(&args.fit)?;
    inputs.push(&fit.spec.data.path);
    let plan = SpendPlan::read(&args.plan, &fit.channel_names())?;
    let basis = PlanningBasis::new(&fit, fit.model.n_fit.min(plan.periods.len().max(1)), unit)?;
    let report: ScenarioReport = evaluate_plan(&fit, &basis, &plan)?;
    let out = OutputDir::create_for(&args.out, "scenario", &inputs)?;
    out.write("scenario.json", serde_json::to_string_pretty(&report)?.as_bytes())?;
    let mut csv =
        String::from("channel,spend,outcome_mean,outcome_sd,outcome_q05,outcome_q95,roi_mean,roi_q05,roi_q95\n");
    for c in &report.channels {
        writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{}",
            c.channel,
            c.spend,
            c.outcome.mean,
            c.outcome.sd,
            c.outcome.q05,
            c.outcome.q95,
            c.roi.mean,
            c.roi.q05,
            c.roi.q95
        )?;
    }
    out.write("scenario.csv", csv.as_bytes())?;
    let dir = out.commit()?;
    println!("\nScenario: {} periods, total spend {:.0} ({})", report.periods, report.total_spend, report.outcome_unit);
    println!("{:<16} {:>14} {:>14} {:>14} {:>14} {:>9}", "channel", "spend", "outcome", "q05", "q95", "ROI");
    for c in &report.channels {
        println!(
            "{:<16} {:>14.0} {:>14.1} {:>14.1} {:>14.1} {:>9.3}",
            c.channel, c.spend, c.outcome.mean, c.outcome.q05, c.outcome.q95, c.roi.mean
        );
    }
    println!(
        "total incremental outcome {:.1} [90% {:.1}, {:.1}], ROI {:.3}",
        report.total_outcome.mean, report.total_outcome.q05, report.total_outcome.q95, report.roi.mean
    );
    eprintln!("wrote {}", dir.display());
    Ok(())
}
