//! `mmloop optimize` and `mmloop scenario`: budget decisions on a saved fit.

use anyhow::Context;
use mmloop_data::OutputDir;
use mmloop_data::human::{amount, count, number, percent};
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
    /// Objective over the posterior of the total outcome: `mean` (expected outcome), `mean-sd:K`
    /// (expected outcome less K posterior sd), `quantile:Q` (the outcome's lower Q-quantile), or
    /// `cvar:A` (the mean of the worst A share of draws — the lower tail: cvar:0.1 guards against the
    /// worst 10 %).
    #[arg(long, default_value = "mean")]
    pub objective: String,
    /// Outcome units: kpi, revenue (needs revenue per KPI in the model), or profit (revenue − spend).
    #[arg(long, default_value = "kpi")]
    pub outcome: String,
    /// Instead of a budget: the smallest budget whose expected *incremental* outcome of the media over
    /// the horizon (not the total KPI with baseline) reaches this value.
    #[arg(long, conflicts_with_all = ["budget", "target_roi"], allow_negative_numbers = true)]
    pub target_outcome: Option<f64>,
    /// Instead of a budget: spend until each channel's marginal ROI falls to this value.
    #[arg(long, conflicts_with = "budget", allow_negative_numbers = true)]
    pub target_roi: Option<f64>,
    /// Long-run (steady-state) adstock instead of the exact ramp-up and carry-over over the horizon.
    #[arg(long)]
    pub steady_state: bool,
    /// Output directory for optimize.json, optimize.csv, gain_draws.csv and plan.csv (the
    /// recommendation as a plan `mmloop scenario --plan` reads): new, empty, or an earlier
    /// `mmloop optimize` output; never the fit directory or another input.
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
    /// Each row is one future period after the fit's data, in order; the `period` values are labels
    /// only (dates, week numbers, anything unique). `mmloop optimize` writes one as plan.csv.
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
    out.write("plan.csv", recommendation_as_plan(&report).as_bytes())?;
    let dir = out.commit()?;
    print!("{}", optimize_table(&report));
    crate::say::wrote(
        &dir,
        &[format!(
            "mmloop scenario --fit {} --plan {} --out <dir>   (price the recommendation period by period)",
            crate::say::arg(&args.fit),
            crate::say::arg(&dir.join("plan.csv"))
        )],
    );
    Ok(())
}

fn optimize_table(r: &OptimizationReport) -> String {
    let mut s = String::new();
    let unit = outcome_unit(r.outcome_unit);
    let _ = writeln!(s, "\nBudget allocation over {}; outcome in {unit}", count(r.horizon, "period"));
    let _ = writeln!(s, "objective {}", r.objective);
    let _ = writeln!(
        s,
        "{:<16} {:>14} {:>14} {:>8} {:>14} {:>10}",
        "channel", "current spend", "optimal spend", "change", "outcome", "mROI"
    );
    for c in &r.channels {
        let change =
            if c.current_spend > 0.0 { percent(c.optimal_spend / c.current_spend - 1.0) } else { "new".into() };
        let _ = writeln!(
            s,
            "{:<16} {:>14} {:>14} {:>8} {:>14} {:>10}",
            c.channel,
            amount(c.current_spend),
            amount(c.optimal_spend),
            change,
            amount(c.outcome.mean),
            number(c.marginal_return)
        );
    }
    let _ = writeln!(
        s,
        "expected outcome: current {} [90% {}, {}]  →  optimal {} [90% {}, {}]",
        amount(r.current_outcome.mean),
        amount(r.current_outcome.q05),
        amount(r.current_outcome.q95),
        amount(r.optimal_outcome.mean),
        amount(r.optimal_outcome.q05),
        amount(r.optimal_outcome.q95)
    );
    let _ = writeln!(
        s,
        "gain: {} [90% {}, {}], positive in {} of draws",
        amount(r.gain.mean),
        amount(r.gain.q05),
        amount(r.gain.q95),
        percent(r.prob_gain_positive)
    );
    // the optimality (KKT) residual: the largest gap between channels' marginal returns that the
    // bounds do not explain; only worth a word when the solver stopped short
    if r.kkt_residual > 1e-6 {
        let _ = writeln!(
            s,
            "warning: the solver stopped short of the optimum: marginal returns still differ by {} (KKT residual) \
             where the bounds do not explain it",
            number(r.kkt_residual)
        );
    }
    s
}

/// The recommendation as a scenario plan: the horizon's periods (labelled 1..H) with each channel's
/// optimal spend spread evenly over them, the flat allocation the optimiser priced.
fn recommendation_as_plan(r: &OptimizationReport) -> String {
    let mut csv = String::from("period");
    for c in &r.channels {
        csv.push(',');
        csv.push_str(&c.channel);
    }
    csv.push('\n');
    for p in 1..=r.horizon {
        csv.push_str(&p.to_string());
        for c in &r.channels {
            let _ = write!(csv, ",{}", c.optimal_spend / r.horizon as f64);
        }
        csv.push('\n');
    }
    csv
}

/// The outcome's unit in words.
fn outcome_unit(unit: &str) -> &'static str {
    match unit {
        "revenue" => "revenue",
        _ => "KPI units",
    }
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
    println!(
        "\nScenario: {}, total spend {}; outcome in {}",
        count(report.periods, "period"),
        amount(report.total_spend),
        outcome_unit(report.outcome_unit)
    );
    println!("{:<16} {:>14} {:>14} {:>14} {:>14} {:>9}", "channel", "spend", "outcome", "q05", "q95", "ROI");
    for c in &report.channels {
        println!(
            "{:<16} {:>14} {:>14} {:>14} {:>14} {:>9}",
            c.channel,
            amount(c.spend),
            amount(c.outcome.mean),
            amount(c.outcome.q05),
            amount(c.outcome.q95),
            number(c.roi.mean)
        );
    }
    println!(
        "total incremental outcome {} [90% {}, {}], ROI {}",
        amount(report.total_outcome.mean),
        amount(report.total_outcome.q05),
        amount(report.total_outcome.q95),
        number(report.roi.mean)
    );
    crate::say::wrote(
        &dir,
        &[format!("mmloop report {}   (the plan's outcome per period and per channel)", crate::say::arg(&dir))],
    );
    Ok(())
}
