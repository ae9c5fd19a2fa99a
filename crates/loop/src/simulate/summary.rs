//! What a simulation says: `results.csv` / `results.parquet` (one row per world × arm × cycle),
//! `summary.json` (quantiles per arm and cycle, reductions, paired differences between arms with
//! seeded bootstrap intervals) and the plain-language terminal summary.

use super::{Arm, Row, SimError, SimResult};
use crate::value::rng;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Median, 10th and 90th percentiles and mean of the finite values (NaN when there are none).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantiles {
    pub n: usize,
    pub median: f64,
    pub p10: f64,
    pub p90: f64,
    pub mean: f64,
}

/// Linear-interpolation quantile (type 7, as numpy's default) of sorted values.
fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let h = (v.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    v[lo] + (h - lo as f64) * (v[hi] - v[lo])
}

impl Quantiles {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let mean = if n == 0 { f64::NAN } else { v.iter().sum::<f64>() / n as f64 };
        Self { n, median: quantile_sorted(&v, 0.5), p10: quantile_sorted(&v, 0.1), p90: quantile_sorted(&v, 0.9), mean }
    }
}

/// One arm at one cycle, over the worlds.
#[derive(Debug, Clone, Serialize)]
pub struct ArmCycleSummary {
    pub arm: Arm,
    pub cycle: usize,
    pub misallocation_cost: Quantiles,
    pub misallocation_share: Quantiles,
    pub decision_efficiency: Quantiles,
    pub roi_rmse: Quantiles,
    pub coverage90: Quantiles,
    pub width90: Quantiles,
    pub tests: Quantiles,
    pub test_cost: Quantiles,
    pub discrepancy_flags: Quantiles,
}

/// An arm's reduction of the misallocation cost by the last cycle, per world: against its own first
/// cycle (the MMM alone: no readout yet) and against the plan (the split before cycle 1: never moving).
#[derive(Debug, Clone, Serialize)]
pub struct Reduction {
    pub arm: Arm,
    /// 1 − cost(last cycle) / cost(cycle 1), over worlds whose cycle-1 cost is above the solver's
    /// tolerance (`n` says how many).
    pub from_first_cycle: Quantiles,
    /// 1 − Σ cost(last) / Σ cost(cycle 1): the pooled reduction (not dominated by tiny denominators).
    pub pooled_from_first_cycle: f64,
    /// 1 − cost(last cycle) / cost of the current split at cycle 1.
    pub from_start: Quantiles,
    pub pooled_from_start: f64,
}

/// `arm` minus `versus`, world by world (negative: `arm` costs less).
#[derive(Debug, Clone, Serialize)]
pub struct PairedDifference {
    pub arm: Arm,
    pub versus: Arm,
    /// `last_cycle` or `cumulative` (the sum over cycles).
    pub over: String,
    pub metric: String,
    pub n: usize,
    pub mean: f64,
    /// Seeded percentile bootstrap over worlds, 90 %.
    pub mean_ci90: (f64, f64),
    pub median: f64,
    pub median_ci90: (f64, f64),
    /// Share of worlds where `arm` is strictly lower (better).
    pub share_arm_better: f64,
}

/// Laplace and NUTS on the same worlds: do the conclusions agree?
#[derive(Debug, Clone, Serialize)]
pub struct NutsCheck {
    pub worlds: Vec<usize>,
    /// Arms ordered by mean cumulative misallocation cost, lowest first, under each method.
    pub order_laplace: Vec<Arm>,
    pub order_nuts: Vec<Arm>,
    /// Per pair: the mean cumulative paired difference under each method and whether the signs agree.
    pub pairs: Vec<NutsPair>,
    pub agree: bool,
    pub roi_coverage_laplace: f64,
    pub roi_coverage_nuts: f64,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NutsPair {
    pub arm: Arm,
    pub versus: Arm,
    pub laplace: f64,
    pub nuts: f64,
    pub same_sign: bool,
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub worlds: usize,
    pub cycles: usize,
    pub arms: Vec<Arm>,
    pub seed: u64,
    pub method: String,
    pub settings: BTreeMap<String, String>,
    pub definitions: BTreeMap<String, String>,
    pub per_arm_cycle: Vec<ArmCycleSummary>,
    pub reductions: Vec<Reduction>,
    pub paired: Vec<PairedDifference>,
    pub nuts_check: Option<NutsCheck>,
    pub seconds: f64,
}

const BOOTSTRAP: usize = 2000;
const STREAM_BOOT: u64 = 0x5349_4d42_0000_0000;

/// Percentile bootstrap 90 % interval of `stat` over resamples of `x` (seeded).
fn bootstrap(x: &[f64], seed: u64, stream: u64, stat: impl Fn(&mut [f64]) -> f64) -> (f64, f64) {
    if x.len() < 2 {
        return (f64::NAN, f64::NAN);
    }
    let n = x.len();
    let mut stats: Vec<f64> = (0..BOOTSTRAP)
        .map(|b| {
            let mut s: Vec<f64> = (0..n).map(|i| x[rng::index(seed, stream, (b * n + i) as u64, n)]).collect();
            stat(&mut s)
        })
        .collect();
    stats.sort_by(f64::total_cmp);
    (quantile_sorted(&stats, 0.05), quantile_sorted(&stats, 0.95))
}

fn mean(v: &mut [f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    quantile_sorted(v, 0.5)
}

/// Per world, the arm's misallocation cost at the last cycle, summed over cycles, and summed over
/// cycles with the tests' true net cost added (what the loop costs in all).
fn per_world(rows: &[Row], arm: Arm, cycles: usize) -> BTreeMap<usize, [f64; 3]> {
    let mut out: BTreeMap<usize, [f64; 3]> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.arm == arm) {
        let e = out.entry(r.world).or_insert([f64::NAN, 0.0, 0.0]);
        if r.cycle == cycles {
            e[0] = r.misallocation_cost;
        }
        e[1] += r.misallocation_cost;
        e[2] += r.misallocation_cost + r.test_cost;
    }
    out
}

fn paired(rows: &[Row], arm: Arm, versus: Arm, cycles: usize, seed: u64, k: u64) -> Vec<PairedDifference> {
    let a = per_world(rows, arm, cycles);
    let b = per_world(rows, versus, cycles);
    let mut out = Vec::new();
    let metrics = [
        ("last_cycle", "misallocation_cost"),
        ("cumulative", "misallocation_cost"),
        ("cumulative", "misallocation_cost_plus_test_cost"),
    ];
    for (j, (over, metric)) in metrics.into_iter().enumerate() {
        let d: Vec<f64> =
            a.iter().filter_map(|(w, x)| b.get(w).map(|y| x[j] - y[j])).filter(|v| v.is_finite()).collect();
        let stream = STREAM_BOOT + k * 4 + j as u64;
        out.push(PairedDifference {
            arm,
            versus,
            over: over.into(),
            metric: metric.into(),
            n: d.len(),
            mean: if d.is_empty() { f64::NAN } else { mean(&mut d.clone()) },
            mean_ci90: bootstrap(&d, seed, stream, mean),
            median: if d.is_empty() { f64::NAN } else { median(&mut d.clone()) },
            median_ci90: bootstrap(&d, seed, stream + 0x1000, median),
            share_arm_better: if d.is_empty() {
                f64::NAN
            } else {
                d.iter().filter(|v| **v < 0.0).count() as f64 / d.len() as f64
            },
        });
    }
    out
}

/// The summary of a simulation (deterministic: the bootstrap is seeded by the simulation's seed).
pub fn summarise(result: &SimResult) -> Summary {
    let s = &result.settings;
    let rows = &result.rows;
    let mut per_arm_cycle = Vec::new();
    for &arm in &s.arms {
        for cycle in 1..=s.cycles {
            let sel: Vec<&Row> = rows.iter().filter(|r| r.arm == arm && r.cycle == cycle).collect();
            let q = |f: fn(&Row) -> f64| Quantiles::of(sel.iter().map(|r| f(r)));
            per_arm_cycle.push(ArmCycleSummary {
                arm,
                cycle,
                misallocation_cost: q(|r| r.misallocation_cost),
                misallocation_share: q(|r| r.misallocation_share),
                decision_efficiency: q(|r| r.decision_efficiency),
                roi_rmse: q(|r| r.roi_rmse),
                coverage90: q(|r| r.coverage90),
                width90: q(|r| r.width90),
                tests: q(|r| r.tests as f64),
                test_cost: q(|r| r.test_cost),
                discrepancy_flags: q(|r| r.discrepancy_flags as f64),
            });
        }
    }
    let mut reductions = Vec::new();
    for &arm in &s.arms {
        let first: BTreeMap<usize, &Row> =
            rows.iter().filter(|r| r.arm == arm && r.cycle == 1).map(|r| (r.world, r)).collect();
        let last: BTreeMap<usize, &Row> =
            rows.iter().filter(|r| r.arm == arm && r.cycle == s.cycles).map(|r| (r.world, r)).collect();
        let (mut from_first, mut from_start) = (Vec::new(), Vec::new());
        let (mut sum_first, mut sum_start, mut sum_last) = (0.0, 0.0, 0.0);
        for (w, l) in &last {
            let Some(f) = first.get(w) else { continue };
            // below 1e-9 of the oracle's outcome a cost is the solver's tolerance, not a cost
            let tol = 1e-9 * f.oracle_outcome.abs().max(1.0);
            if f.misallocation_cost > tol {
                from_first.push(1.0 - l.misallocation_cost / f.misallocation_cost);
            }
            if f.start_cost > tol {
                from_start.push(1.0 - l.misallocation_cost / f.start_cost);
            }
            sum_first += f.misallocation_cost;
            sum_start += f.start_cost;
            sum_last += l.misallocation_cost;
        }
        let pooled = |den: f64| if den > 0.0 { 1.0 - sum_last / den } else { f64::NAN };
        reductions.push(Reduction {
            arm,
            from_first_cycle: Quantiles::of(from_first),
            pooled_from_first_cycle: pooled(sum_first),
            from_start: Quantiles::of(from_start),
            pooled_from_start: pooled(sum_start),
        });
    }
    let mut paired_out = Vec::new();
    let mut k = 0u64;
    for (i, &a) in s.arms.iter().enumerate() {
        for &b in &s.arms[i + 1..] {
            paired_out.extend(paired(rows, a, b, s.cycles, s.seed, k));
            k += 1;
        }
    }
    let mut settings = BTreeMap::new();
    for (key, v) in [
        ("horizon_weeks", s.horizon.to_string()),
        ("relative_bounds", s.relative.to_string()),
        ("max_tests", s.max_tests.to_string()),
        ("laplace_draws", s.draws.to_string()),
        (
            "laplace_starts",
            if s.warm_start {
                format!(
                    "cycle 1 the model's default; later cycles the arm's previous mode + {} data-driven",
                    super::WARM_DATA_STARTS
                )
            } else {
                "the model's default every cycle (--cold-fits)".into()
            },
        ),
        ("nuts", format!("{} chains x ({} tune + {} draws)", s.nuts_chains, s.nuts_tune, s.nuts_draws)),
        ("evoi_readouts", s.evoi_readouts.to_string()),
        ("evpi_draws", s.evpi_draws.to_string()),
        (
            "design_search",
            format!(
                "{} windows, {} treated sets, best {} designs, lengths {:?}",
                s.design_windows, s.design_max_candidates, s.designs, s.durations
            ),
        ),
        ("readout", format!("{:?}", s.readout.params.estimators)),
        ("discrepancy_threshold_z", s.threshold.value().to_string()),
        ("scenario", s.scenario.clone()),
        ("observational_bias_sd", s.observational_bias_sd.to_string()),
        ("distribution", format!("{:?}", s.distribution)),
    ] {
        settings.insert(key.to_string(), v);
    }
    let mut definitions = BTreeMap::new();
    for (key, v) in [
        (
            "misallocation_cost",
            "true outcome of the true optimum within the bounds minus the true outcome of the recommendation, same budget, over the horizon and its carry-over (money: the KPI is sales)",
        ),
        ("misallocation_share", "misallocation_cost / the oracle's true incremental outcome"),
        (
            "decision_efficiency",
            "(outcome(recommendation) - outcome(plan)) / (outcome(true optimum) - outcome(plan)); 1 at the optimum, 0 at the plan (the split before cycle 1), negative when worse than not moving; NaN when the plan is already optimal",
        ),
        ("roi_rmse", "root mean square over channels of posterior-mean ROI minus the true ROI over the observed weeks"),
        ("coverage90", "share of channels whose 90 % ROI interval covers the true ROI"),
        (
            "test_cost",
            "sum over the cycle's tests of the spend change minus the true incremental KPI with carry-over (money; negative: the tests paid for themselves)",
        ),
        (
            "discrepancy_flags",
            "last cycle's readouts whose prediction (made when the test was chosen) differed by |z| above the threshold",
        ),
        (
            "paired",
            "arm minus versus per world; negative: arm costs less; 90 % percentile bootstrap over worlds (2000 resamples, seeded)",
        ),
    ] {
        definitions.insert(key.to_string(), v.to_string());
    }
    Summary {
        worlds: rows.iter().map(|r| r.world).collect::<std::collections::BTreeSet<_>>().len(),
        cycles: s.cycles,
        arms: s.arms.clone(),
        seed: s.seed,
        method: s.method.to_string(),
        settings,
        definitions,
        per_arm_cycle,
        reductions,
        paired: paired_out,
        nuts_check: None,
        seconds: result.seconds,
    }
}

/// Laplace's and NUTS's results on the same worlds compared.
pub fn nuts_check(laplace: &SimResult, nuts: &SimResult) -> NutsCheck {
    let worlds: Vec<usize> =
        nuts.rows.iter().map(|r| r.world).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let lap: Vec<Row> = laplace.rows.iter().filter(|r| worlds.contains(&r.world)).cloned().collect();
    let s = &nuts.settings;
    let order = |rows: &[Row]| {
        let mut v: Vec<(Arm, f64)> = s
            .arms
            .iter()
            .map(|&a| {
                let m = per_world(rows, a, s.cycles);
                (a, m.values().map(|x| x[1]).sum::<f64>() / m.len().max(1) as f64)
            })
            .collect();
        v.sort_by(|x, y| x.1.total_cmp(&y.1).then(x.0.cmp(&y.0)));
        v.into_iter().map(|(a, _)| a).collect::<Vec<_>>()
    };
    let mean_diff = |rows: &[Row], a: Arm, b: Arm| {
        let (x, y) = (per_world(rows, a, s.cycles), per_world(rows, b, s.cycles));
        let d: Vec<f64> = x.iter().filter_map(|(w, v)| y.get(w).map(|u| v[1] - u[1])).collect();
        if d.is_empty() { f64::NAN } else { d.iter().sum::<f64>() / d.len() as f64 }
    };
    let mut pairs = Vec::new();
    for (i, &a) in s.arms.iter().enumerate() {
        for &b in &s.arms[i + 1..] {
            let (l, n) = (mean_diff(&lap, a, b), mean_diff(&nuts.rows, a, b));
            pairs.push(NutsPair { arm: a, versus: b, laplace: l, nuts: n, same_sign: (l < 0.0) == (n < 0.0) });
        }
    }
    let cover = |rows: &[Row]| Quantiles::of(rows.iter().map(|r| r.coverage90)).mean;
    let (order_laplace, order_nuts) = (order(&lap), order(&nuts.rows));
    let agree = order_laplace.first() == order_nuts.first() && pairs.iter().all(|p| p.same_sign);
    NutsCheck {
        worlds,
        order_laplace,
        order_nuts,
        pairs,
        agree,
        roi_coverage_laplace: cover(&lap),
        roi_coverage_nuts: cover(&nuts.rows),
        seconds: nuts.seconds,
    }
}

/// The columns of `results.csv`, in order.
pub const COLUMNS: [&str; 26] = [
    "world",
    "arm",
    "cycle",
    "channels",
    "geos",
    "confounding",
    "weeks",
    "budget",
    "oracle_outcome",
    "misallocation_cost",
    "misallocation_share",
    "start_cost",
    "decision_efficiency",
    "roi_rmse",
    "coverage90",
    "width90",
    "tests",
    "test_cost",
    "readouts",
    "new_readouts",
    "discrepancy_flags",
    "readouts_covering_truth",
    "tested_channels",
    "method",
    "seed",
    "scenario",
];

fn num(v: f64) -> String {
    // full precision so a re-run compares byte for byte; NaN as an empty cell
    if v.is_finite() { format!("{v:?}") } else { String::new() }
}

/// `results.csv`: one row per world × arm × cycle ([`COLUMNS`]); identical for a seed whatever the
/// thread count (the wall times are in [`timings_csv`]).
pub fn results_csv(result: &SimResult) -> String {
    let mut out = COLUMNS.join(",");
    out.push('\n');
    let method = result.settings.method.to_string();
    for r in &result.rows {
        let cells = [
            r.world.to_string(),
            r.arm.name().to_string(),
            r.cycle.to_string(),
            r.channels.to_string(),
            r.geos.to_string(),
            num(r.confounding),
            r.weeks.to_string(),
            num(r.budget),
            num(r.oracle_outcome),
            num(r.misallocation_cost),
            num(r.misallocation_share),
            num(r.start_cost),
            num(r.decision_efficiency),
            num(r.roi_rmse),
            num(r.coverage90),
            num(r.width90),
            r.tests.to_string(),
            num(r.test_cost),
            r.readouts.to_string(),
            r.new_readouts.to_string(),
            r.discrepancy_flags.to_string(),
            r.readouts_covering_truth.to_string(),
            format!("\"{}\"", r.tested_channels.replace('"', "\"\"")),
            method.clone(),
            result.settings.seed.to_string(),
            result.settings.scenario.clone(),
        ];
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// `timings.csv`: the wall time of each world × arm × cycle's fit and choice of tests (seconds).
pub fn timings_csv(result: &SimResult) -> String {
    let mut out = String::from("world,arm,cycle,fit_seconds,choose_seconds\n");
    for r in &result.rows {
        let _ = writeln!(out, "{},{},{},{:.3},{:.3}", r.world, r.arm, r.cycle, r.fit_seconds, r.choose_seconds);
    }
    out
}

/// `results.parquet`: the same table as `results.csv`, typed columns.
pub fn results_parquet(result: &SimResult) -> Result<Vec<u8>, SimError> {
    use polars::prelude::*;
    let rows = &result.rows;
    let u = |f: fn(&Row) -> usize| rows.iter().map(|r| f(r) as u64).collect::<Vec<u64>>();
    let fl = |f: fn(&Row) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
    let method = result.settings.method.to_string();
    let columns: Vec<Column> = vec![
        Column::new("world".into(), u(|r| r.world)),
        Column::new("arm".into(), rows.iter().map(|r| r.arm.name()).collect::<Vec<_>>()),
        Column::new("cycle".into(), u(|r| r.cycle)),
        Column::new("channels".into(), u(|r| r.channels)),
        Column::new("geos".into(), u(|r| r.geos)),
        Column::new("confounding".into(), fl(|r| r.confounding)),
        Column::new("weeks".into(), u(|r| r.weeks)),
        Column::new("budget".into(), fl(|r| r.budget)),
        Column::new("oracle_outcome".into(), fl(|r| r.oracle_outcome)),
        Column::new("misallocation_cost".into(), fl(|r| r.misallocation_cost)),
        Column::new("misallocation_share".into(), fl(|r| r.misallocation_share)),
        Column::new("start_cost".into(), fl(|r| r.start_cost)),
        Column::new("decision_efficiency".into(), fl(|r| r.decision_efficiency)),
        Column::new("roi_rmse".into(), fl(|r| r.roi_rmse)),
        Column::new("coverage90".into(), fl(|r| r.coverage90)),
        Column::new("width90".into(), fl(|r| r.width90)),
        Column::new("tests".into(), u(|r| r.tests)),
        Column::new("test_cost".into(), fl(|r| r.test_cost)),
        Column::new("readouts".into(), u(|r| r.readouts)),
        Column::new("new_readouts".into(), u(|r| r.new_readouts)),
        Column::new("discrepancy_flags".into(), u(|r| r.discrepancy_flags)),
        Column::new("readouts_covering_truth".into(), u(|r| r.readouts_covering_truth)),
        Column::new("tested_channels".into(), rows.iter().map(|r| r.tested_channels.clone()).collect::<Vec<_>>()),
        Column::new("method".into(), rows.iter().map(|_| method.clone()).collect::<Vec<_>>()),
        Column::new("seed".into(), rows.iter().map(|_| result.settings.seed).collect::<Vec<u64>>()),
        Column::new("scenario".into(), rows.iter().map(|_| result.settings.scenario.clone()).collect::<Vec<_>>()),
    ];
    let mut df = DataFrame::new(rows.len(), columns).map_err(|e| SimError::Output(format!("results.parquet: {e}")))?;
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf).finish(&mut df).map_err(|e| SimError::Output(format!("results.parquet: {e}")))?;
    Ok(buf)
}

/// Money ([`mmloop_data::human::money`]): a misallocation cost of −3e-8 is the optimiser's
/// rounding and prints as 0.
fn money(v: f64) -> String {
    mmloop_data::human::money(v)
}

fn pct(v: f64) -> String {
    if v.is_finite() { format!("{:.0} %", 100.0 * v) } else { "n/a".into() }
}

/// The plain-language summary: what came out, whatever it is.
pub fn terminal_summary(s: &Summary) -> String {
    let mut b = String::new();
    let last = s.cycles;
    let _ = writeln!(
        b,
        "{} × {} × {} ({} fits, seed {}, scenario {}{}), {:.0} s",
        mmloop_data::human::count(s.worlds, "world"),
        mmloop_data::human::count(s.cycles, "cycle"),
        mmloop_data::human::count(s.arms.len(), "arm"),
        s.method,
        s.seed,
        s.settings.get("scenario").map_or("well_specified", String::as_str),
        match s.settings.get("observational_bias_sd").map(String::as_str) {
            None | Some("0") => String::new(),
            Some(b) => format!(", observational bias sd {b}"),
        },
        s.seconds
    );
    let _ = writeln!(
        b,
        "\nmisallocation cost per cycle, median [p10, p90] over worlds (money; share of the oracle's outcome):"
    );
    // each cell "median [p10, p90]", every column as wide as its widest cell
    let cells: Vec<Vec<String>> = s
        .arms
        .iter()
        .map(|&arm| {
            (1..=last)
                .map(|c| match s.per_arm_cycle.iter().find(|x| x.arm == arm && x.cycle == c) {
                    Some(x) => {
                        let q = x.misallocation_cost;
                        format!("{} [{}, {}]", money(q.median), money(q.p10), money(q.p90))
                    }
                    None => "n/a".into(),
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..last)
        .map(|c| {
            cells.iter().map(|r| r[c].chars().count()).chain([format!("cycle {}", c + 1).len()]).max().unwrap_or(0)
        })
        .collect();
    let _ = write!(b, "  {:<12}", "arm");
    for (c, w) in widths.iter().enumerate() {
        let _ = write!(b, "  {:>w$}", format!("cycle {}", c + 1));
    }
    b.push('\n');
    for (&arm, row) in s.arms.iter().zip(&cells) {
        let _ = write!(b, "  {:<12}", arm.name());
        for (cell, w) in row.iter().zip(&widths) {
            let _ = write!(b, "  {cell:>w$}");
        }
        b.push('\n');
    }
    let _ = writeln!(b, "\nat the last cycle (cycle {last}), medians over worlds:");
    let _ = writeln!(
        b,
        "  {:<12} {:>9} {:>10} {:>9} {:>9} {:>9} {:>11} {:>6}",
        "arm", "share", "efficiency", "ROI RMSE", "coverage", "tests", "test cost", "flags"
    );
    for &arm in &s.arms {
        let Some(x) = s.per_arm_cycle.iter().find(|x| x.arm == arm && x.cycle == last) else { continue };
        let total_tests: f64 = s.per_arm_cycle.iter().filter(|y| y.arm == arm).map(|y| y.tests.mean).sum::<f64>();
        let _ = writeln!(
            b,
            "  {:<12} {:>9} {:>10} {:>9} {:>9} {:>9} {:>11} {:>6}",
            arm.name(),
            pct(x.misallocation_share.median),
            if x.decision_efficiency.n > 0 { format!("{:.2}", x.decision_efficiency.median) } else { "n/a".into() },
            if x.roi_rmse.n > 0 { format!("{:.3}", x.roi_rmse.median) } else { "n/a".into() },
            if x.coverage90.n > 0 { pct(x.coverage90.mean) } else { "n/a".into() },
            format!("{total_tests:.1}"),
            money(x.test_cost.median),
            format!("{:.1}", x.discrepancy_flags.mean),
        );
    }
    let _ = writeln!(
        b,
        "  (tests: mean tests per world over all cycles; test cost: the last cycle's tests' true net cost (median), negative when heavy-ups returned more than they spent; coverage: mean share of channels whose 90 % interval covers the true ROI)"
    );
    let _ = writeln!(b, "\nreduction of the misallocation cost by cycle {last}:");
    for r in &s.reductions {
        if r.arm == Arm::Oracle {
            continue;
        }
        let _ = writeln!(
            b,
            "  {:<12} vs its cycle 1: median {} [p10 {}, p90 {}] (pooled {}); vs never moving from the plan: median {} (pooled {})",
            r.arm.name(),
            pct(r.from_first_cycle.median),
            pct(r.from_first_cycle.p10),
            pct(r.from_first_cycle.p90),
            pct(r.pooled_from_first_cycle),
            pct(r.from_start.median),
            pct(r.pooled_from_start),
        );
    }
    let claim = s.reductions.iter().filter(|r| {
        matches!(r.arm, Arm::Evoi | Arm::EvoiNoDecay | Arm::EvoiDiscard | Arm::Eig | Arm::Uncertainty | Arm::Random)
    });
    for r in claim {
        let verdict = if r.from_first_cycle.median.is_finite() && r.from_first_cycle.median >= 0.9 {
            "holds"
        } else {
            "does not hold"
        };
        let _ = writeln!(
            b,
            "  the claimed -92 % within five cycles {verdict} for {} here (median reduction {} over {} cycles)",
            r.arm.name(),
            pct(r.from_first_cycle.median),
            last
        );
    }
    if let Some(r) = s.reductions.iter().find(|r| r.arm == Arm::None) {
        let _ = writeln!(
            b,
            "  none (no tests: the MMM alone, refitted on each cycle's new data) reduces it by {} (median): what \
             the tests add is the difference, and the paired comparisons below measure it world by world",
            pct(r.from_first_cycle.median)
        );
    }
    for (metric, title) in [
        ("misallocation_cost", "cumulative misallocation cost"),
        ("misallocation_cost_plus_test_cost", "cumulative misallocation cost plus the tests' true net cost"),
    ] {
        let _ = writeln!(b, "\npaired differences in {title} (arm − versus, per world; 90 % bootstrap):");
        let pairs: Vec<&PairedDifference> = s
            .paired
            .iter()
            .filter(|p| p.over == "cumulative" && p.metric == metric && p.arm != Arm::Oracle && p.versus != Arm::Oracle)
            .collect();
        if pairs.is_empty() {
            let _ = writeln!(b, "  none: the run has fewer than two arms besides the oracle");
        }
        for p in pairs {
            let (lo, hi) = p.mean_ci90;
            let verdict = if hi < 0.0 {
                format!("{} costs less", p.arm)
            } else if lo > 0.0 {
                format!("{} costs less", p.versus)
            } else {
                "no clear difference (the interval includes 0)".into()
            };
            let _ = writeln!(
                b,
                "  {:<11} vs {:<11} mean {} [{}, {}], {} of worlds favour {}: {verdict}",
                p.arm.name(),
                p.versus.name(),
                money(p.mean),
                money(lo),
                money(hi),
                pct(p.share_arm_better),
                p.arm
            );
        }
    }
    if let Some(n) = &s.nuts_check {
        let _ = writeln!(
            b,
            "\nNUTS check on worlds {:?}: arms by mean cumulative cost, Laplace {:?}, NUTS {:?}; ROI coverage Laplace {}, NUTS {}",
            n.worlds,
            n.order_laplace.iter().map(|a| a.name()).collect::<Vec<_>>(),
            n.order_nuts.iter().map(|a| a.name()).collect::<Vec<_>>(),
            pct(n.roi_coverage_laplace),
            pct(n.roi_coverage_nuts)
        );
        let flipped: Vec<String> =
            n.pairs.iter().filter(|p| !p.same_sign).map(|p| format!("{} vs {}", p.arm, p.versus)).collect();
        let _ = writeln!(
            b,
            "  conclusions {}{}",
            if n.agree { "agree" } else { "do NOT agree" },
            if flipped.is_empty() { String::new() } else { format!(" (sign flips: {})", flipped.join(", ")) }
        );
    }
    b
}
