//! `mmloop lift`: estimate a geo test's lift from a regional panel.

use anyhow::{Context, bail};
use mmloop_data::{LiftTestRecord, OutputDir};
use mmloop_geolift::inference::{self, Conformal, ConformalStat};
use mmloop_geolift::{
    Ascm, Columns, DiD, GeoLiftError, LiftData, LiftEstimate, LiftEstimator, OUTLIER_THRESHOLD, OutlierWarning, Panel,
    Sdid, SyntheticControl, Tbr, Twfe,
};
use std::path::PathBuf;

/// Estimate the lift of a geo experiment (DiD, SC, ASCM, SDID, TBR) with inference, and write the
/// calibration record the MMM reads.
#[derive(clap::Args, Debug)]
pub struct LiftArgs {
    #[command(flatten)]
    pub panel: crate::panel_args::PanelArgs,
    /// Spend column (enables iROAS).
    #[arg(long)]
    pub spend: Option<String>,
    /// Treated geos, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub treated: Vec<String>,
    /// A 0/1 "treated now" column, instead of --treated/--start.
    #[arg(long)]
    pub treatment_col: Option<String>,
    /// First test period (inclusive), in the data's time notation.
    #[arg(long)]
    pub start: Option<String>,
    /// Last test period (inclusive); later periods are dropped. An --end after the last period in the
    /// data is refused (the window would be cut short).
    #[arg(long)]
    pub end: Option<String>,
    /// Estimator(s): sc, ascm, sdid, did, twfe, tbr or all (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "sc")]
    pub estimator: Vec<String>,
    /// Test cell NAME=geo1,geo2 (repeatable); each cell is estimated against the never-treated geos.
    #[arg(long)]
    pub cell: Vec<String>,
    /// Do not demean each geo by its pre-period mean in SC (augsynth's default; GeoLift demeans).
    #[arg(long)]
    pub no_demean: bool,
    /// Significance level for intervals (GeoLift's default 0.1 gives 90 % intervals).
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    pub alpha: f64,
    /// Conformal test statistic: total (two-sided), positive or negative.
    #[arg(long, default_value = "total")]
    pub stat: String,
    /// Permutations for conformal inference.
    #[arg(long, default_value_t = 1000, value_parser = crate::panel_args::count, allow_hyphen_values = true)]
    pub permutations: usize,
    /// Replications for placebo standard errors.
    #[arg(long, default_value_t = 200, value_parser = crate::panel_args::count, allow_hyphen_values = true)]
    pub placebo_reps: usize,
    /// Donor pre-screen for sc, ascm and sdid: keep the K controls most correlated with the treated average
    /// over the pre-period (0 = all). Panels with at most K controls are unaffected.
    #[arg(long, default_value_t = 50, value_parser = crate::panel_args::count, allow_hyphen_values = true)]
    pub max_donors: usize,
    /// Master seed for permutations and placebos.
    #[arg(long, default_value_t = 20210401)]
    pub seed: u64,
    /// Channel(s) whose spend the test moved (for the calibration record; repeatable).
    #[arg(long)]
    pub channel: Vec<String>,
    /// Total spend change over the window across treated geos (overrides the spend column); negative
    /// for a go-dark test.
    #[arg(long, allow_hyphen_values = true, value_parser = crate::panel_args::real)]
    pub spend_change: Option<f64>,
    /// Output directory (lift.json, lift_periods.csv, calibration.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Also record the readout(s) in this experiment ledger (created when missing).
    #[arg(long)]
    pub ledger: Option<PathBuf>,
}

const ALL: [&str; 6] = ["sc", "ascm", "sdid", "did", "twfe", "tbr"];

struct Cell {
    name: String,
    data: LiftData,
    estimates: Vec<LiftEstimate>,
    spend_change: Option<f64>,
    warnings: Vec<OutlierWarning>,
}

pub fn run(args: LiftArgs) -> anyhow::Result<()> {
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        bail!("--alpha must be between 0 and 1, got {}", args.alpha);
    }
    let stat = match args.stat.to_lowercase().as_str() {
        "total" => ConformalStat::Total,
        "positive" => ConformalStat::Positive,
        "negative" => ConformalStat::Negative,
        s => bail!("--stat must be total, positive or negative, got {s:?}"),
    };
    crate::ledger::check_lift_ledger(args.ledger.as_deref())?;
    let mut estimators: Vec<String> = Vec::new();
    for e in &args.estimator {
        let e = e.trim().to_lowercase();
        match e.as_str() {
            "all" => estimators.extend(ALL.iter().map(|s| s.to_string())),
            "sc" | "ascm" | "sdid" | "did" | "twfe" | "tbr" => estimators.push(e),
            _ => bail!("unknown --estimator {e:?}; use sc, ascm, sdid, did, twfe, tbr or all"),
        }
    }
    estimators.dedup();
    if let Some(s) = args.spend_change
        && s == 0.0
    {
        bail!(
            "--spend-change 0: a zero spend change gives no iROAS; leave --spend-change out, or give the change in spend over the test window (negative for a go-dark test)"
        );
    }
    let cols = Columns {
        time: args.panel.time.clone(),
        geo: args.panel.geo.clone(),
        kpi: args.panel.kpi.clone(),
        spend: args.spend.clone(),
        treatment: args.treatment_col.clone(),
    };
    // gaps are read, and then refused by every estimator except TBR (which aggregates over them)
    let panel = Panel::read_allow_gaps(&args.panel.data, &cols)?;
    if panel.n_missing() > 0
        && let Some(e) = estimators.iter().find(|e| e.as_str() != "tbr")
    {
        let o = panel.observed.as_ref().context("gaps without a mask")?;
        let i = o.iter().position(|&v| !v).unwrap_or(0);
        return Err(GeoLiftError::Gaps {
            estimator: e.clone(),
            source_name: panel.source.clone(),
            missing: panel.n_missing(),
            geo: panel.geos[i / o.ncols()].clone(),
            time: panel.time_labels[i % o.ncols()].clone(),
        }
        .into());
    }
    let bar = crate::panel_args::Bar::new();

    // designs: one per cell
    let mut designs: Vec<(String, mmloop_geolift::Design)> = Vec::new();
    if !args.cell.is_empty() {
        if !args.treated.is_empty() || args.treatment_col.is_some() {
            bail!("use either --cell or --treated/--treatment-col, not both");
        }
        let start = args.start.clone().context("--start is required with --cell")?;
        for c in &args.cell {
            let (name, geos) = c.split_once('=').with_context(|| format!("--cell {c:?}: expected NAME=geo1,geo2"))?;
            let geos: Vec<String> = geos.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
            if geos.is_empty() {
                bail!("--cell {c:?}: no geos listed");
            }
            designs.push((
                name.trim().to_string(),
                mmloop_geolift::Design { treated: geos, start: start.clone(), end: args.end.clone() },
            ));
        }
    } else if args.treatment_col.is_some() {
        if !args.treated.is_empty() {
            bail!("use either --treated or --treatment-col, not both");
        }
        let staggered = matches!(panel.design_from_treatment(), Err(GeoLiftError::StaggeredAdoption { .. }));
        if staggered && estimators.iter().all(|e| e == "twfe") {
            return run_staggered_twfe(&panel, &args);
        }
        let mut d = panel.design_from_treatment()?;
        if let Some(s) = &args.start {
            d.start = s.clone();
        }
        if args.end.is_some() {
            d.end = args.end.clone();
        }
        designs.push(("test".into(), d));
    } else {
        if args.treated.is_empty() {
            bail!("give the treated geos with --treated a,b (or --treatment-col, or --cell NAME=a,b)");
        }
        let start = args.start.clone().context("--start is required with --treated")?;
        designs.push((
            "test".into(),
            mmloop_geolift::Design { treated: args.treated.clone(), start, end: args.end.clone() },
        ));
    }
    let all_treated: Vec<String> = designs.iter().flat_map(|(_, d)| d.treated.clone()).collect();

    let mut cells = Vec::new();
    for (name, d) in &designs {
        let exclude: Vec<String> = all_treated.iter().filter(|g| !d.treated.contains(g)).cloned().collect();
        let data = panel.design_cell(d, &exclude).with_context(|| format!("cell {name}"))?;
        let warnings = data.screen_outliers(OUTLIER_THRESHOLD);
        crate::panel_args::print_outliers(&format!("cell {name}"), &warnings);
        let spend_change = args.spend_change.or_else(|| baseline_spend_change(&data));
        if args.spend_change.is_none() && data.spend.is_some() && spend_change.is_none() {
            eprintln!(
                "warning: cell {name}: the spend column has gaps in the treated geos, so the spend change is unknown; give --spend-change"
            );
        }
        // sc, ascm and sdid run on the pre-screened donor pool (did, twfe and tbr on every control)
        let (screened, screen) = data.screen_donors(args.max_donors);
        let mut estimates = Vec::new();
        for e in &estimators {
            bar.stage(&format!("cell {name}: {e}"));
            let use_screen = matches!(e.as_str(), "sc" | "ascm" | "sdid");
            let d = if use_screen { &screened } else { &data };
            let mut est = run_estimator(e, d, &args, stat).with_context(|| format!("cell {name}, estimator {e}"))?;
            if use_screen && let Some(s) = &screen {
                est.notes.push(format!("{s} (--max-donors {})", args.max_donors));
            }
            if let Some(s) = spend_change {
                est.set_iroas(s);
            }
            d.check_estimate(&est).with_context(|| format!("cell {name}, estimator {e}"))?;
            estimates.push(est);
        }
        bar.clear();
        cells.push(Cell { name: name.clone(), data, estimates, spend_change, warnings });
    }

    // outputs
    let out = OutputDir::create_for(&args.out, "lift", &[&args.panel.data])?;
    let json = lift_json(&panel, &cells, &args);
    out.write("lift.json", serde_json::to_string_pretty(&json)?.as_bytes())?;
    out.write("lift_periods.csv", periods_csv(&cells).as_bytes())?;
    let records: Vec<LiftTestRecord> = cells.iter().map(|c| record(c, &args, &panel)).collect();
    for r in &records {
        if let Err(m) = r.validate() {
            bail!("calibration record for {:?} is not valid: {m}", r.geos);
        }
    }
    out.write("calibration.json", serde_json::to_string_pretty(&records)?.as_bytes())?;
    let target = out.commit()?;
    print_summary(&cells, &args);
    println!("\nwrote {}/lift.json, lift_periods.csv, calibration.json", target.display());
    crate::ledger::record_lift(args.ledger.as_deref(), &target)?;
    if records.iter().any(|r| r.spend_change == 0.0) {
        eprintln!(
            "warning: no spend change known (give --spend-change X, or a --spend COLUMN without gaps in the treated geos); calibration.json has spend_change 0, set it before calibrating the MMM"
        );
    }
    Ok(())
}

/// Spend change when only a spend column is given: treated spend over the window minus the same
/// number of periods at the treated geos' pre-period average spend.
/// `None` when a treated geo's spend cell is missing (a gap).
fn baseline_spend_change(d: &LiftData) -> Option<f64> {
    let s = d.spend.as_ref()?;
    let pre: f64 = d.treated.iter().map(|&g| (0..d.t0).map(|t| s[[g, t]]).sum::<f64>()).sum::<f64>() / d.t0 as f64;
    Some(d.treated_post_spend()? - pre * d.n_post() as f64).filter(|v| v.is_finite())
}

/// Staggered adoption from a 0/1 treatment column: TWFE with cluster-robust SEs and the event
/// study on the whole panel (the other estimators need one common test window).
fn run_staggered_twfe(panel: &Panel, args: &LiftArgs) -> anyhow::Result<()> {
    use mmloop_geolift::EventStudy;
    use serde_json::json;
    let d = panel.treatment.as_ref().context("no treatment column")?;
    let fit = Twfe.fit_matrix(panel.kpi.view(), d.view())?;
    let events = EventStudy.fit_matrix(panel.kpi.view(), d.view())?;
    let (att, se) = (fit.coef[0], fit.se(0));
    let df = (fit.n_clusters - 1) as f64;
    let q = mmloop_geolift::stats::t_quantile(1.0 - args.alpha / 2.0, df);
    let p = 2.0 * (1.0 - mmloop_geolift::stats::t_cdf((att / se).abs(), df));
    let treated: Vec<usize> = (0..panel.geos.len()).filter(|&g| d.row(g).iter().any(|&v| v == 1.0)).collect();
    let treated_cells = d.iter().filter(|&&v| v == 1.0).count() as f64;
    let first = (0..panel.times.len()).find(|&t| treated.iter().any(|&g| d[[g, t]] == 1.0)).unwrap_or(0);
    let last = panel.times.len() - 1;
    let est = json!({
        "att": att, "incremental": att * treated_cells, "se": se,
        "ci_lower": att - q * se, "ci_upper": att + q * se, "p_value": p, "alpha": args.alpha,
        "inference": "cluster-robust (by geo), staggered adoption",
        "event_study": events,
        "notes": ["staggered adoption: TWFE weights cohorts and periods implicitly (Goodman-Bacon 2021); read the event study"],
    });
    let json = json!({
        "source": panel.source, "kpi": args.panel.kpi, "seed": args.seed,
        "cells": [{
            "cell": "staggered",
            "treated": treated.iter().map(|&g| panel.geos[g].clone()).collect::<Vec<_>>(),
            "start": panel.time_labels[first], "end": panel.time_labels[last],
            "treated_geo_periods": treated_cells,
            "estimates": {"twfe": est},
        }],
    });
    let record = LiftTestRecord {
        channels: args.channel.clone(),
        geos: treated.iter().map(|&g| panel.geos[g].clone()).collect(),
        start: panel.time_labels[first].clone(),
        end: panel.time_labels[last].clone(),
        spend_change: args.spend_change.unwrap_or(0.0),
        spend_path: None,
        incremental_kpi: att * treated_cells,
        standard_error: se * treated_cells,
        estimator: "twfe".into(),
        source: panel.source.clone(),
    };
    if let Err(m) = record.validate() {
        bail!("calibration record is not valid: {m}");
    }
    let out = OutputDir::create_for(&args.out, "lift", &[&args.panel.data])?;
    out.write("lift.json", serde_json::to_string_pretty(&json)?.as_bytes())?;
    out.write("calibration.json", serde_json::to_string_pretty(&vec![record])?.as_bytes())?;
    let target = out.commit()?;
    println!(
        "\nGeo lift (staggered adoption, {} treated geos, {} treated geo-periods): TWFE ATT {att:.6}, SE {se:.6}, {:.0}% CI [{:.6}, {:.6}], p {p:.4}",
        treated.len(),
        treated_cells,
        100.0 * (1.0 - args.alpha),
        att - q * se,
        att + q * se
    );
    println!("event study (period relative to adoption: estimate ± SE):");
    for e in &events {
        println!("  {:>4}: {:>12.6} ± {:.6}", e.rel, e.estimate, e.se);
    }
    println!("\nwrote {}/lift.json, calibration.json", target.display());
    crate::ledger::record_lift(args.ledger.as_deref(), &target)?;
    Ok(())
}

/// Per-geo, per-period spend change over the test window against each treated geo's pre-period
/// average (sums to [`baseline_spend_change`]).
fn spend_path(d: &LiftData) -> Option<Vec<mmloop_data::SpendDelta>> {
    let s = d.spend.as_ref()?;
    baseline_spend_change(d)?;
    let mut out = Vec::new();
    for &g in &d.treated {
        let base = (0..d.t0).map(|t| s[[g, t]]).sum::<f64>() / d.t0 as f64;
        for t in d.t0..d.n_periods() {
            out.push(mmloop_data::SpendDelta {
                time: d.time_labels[t].clone(),
                geo: d.geos[g].clone(),
                delta: s[[g, t]] - base,
            });
        }
    }
    Some(out)
}

fn run_estimator(name: &str, data: &LiftData, args: &LiftArgs, stat: ConformalStat) -> anyhow::Result<LiftEstimate> {
    let alpha = args.alpha;
    Ok(match name {
        "sc" => {
            let sc = SyntheticControl { demean: !args.no_demean };
            let mut e = sc.estimate(data)?;
            let conf =
                Conformal { ns: args.permutations, alpha, seed: args.seed, stat, grid_size: 50, demean: sc.demean };
            let r = conf.apply(data, &mut e)?;
            // SE consistent with the reported interval: the conformal CI's half-width over z_{1−α/2}
            // (a normal approximation). The placebo SE over random control groups is reported as a
            // note: it also reflects how badly SC fits hard-to-match controls, not only this test.
            let z = mmloop_geolift::stats::normal_quantile(1.0 - alpha / 2.0);
            if r.ci_lower.is_finite() && r.ci_upper.is_finite() {
                e.se = Some((r.ci_upper - r.ci_lower) / (2.0 * z));
            }
            e.inference =
                Some(format!("conformal p-value and CI ({} permutations); SE = CI half-width / z", args.permutations));
            match inference::placebo_se(&sc, data, args.placebo_reps, args.seed) {
                Ok(se) if !se.is_finite() => return Err(nonfinite("sc", "placebo SE", se, data).into()),
                Ok(se) => e.notes.push(format!("placebo SE ({} random control groups): {se:.6}", args.placebo_reps)),
                Err(m @ GeoLiftError::ResourceLimit { .. }) | Err(m @ GeoLiftError::BadDesign { .. }) => {
                    return Err(m.into());
                }
                Err(m) => e.notes.push(format!("no placebo SE: {m}")),
            }
            match inference::placebo_in_space(&sc, data, e.att) {
                Ok(p) if !(p.p_value.is_finite() && p.sd.is_finite()) => {
                    return Err(nonfinite("sc", "placebo-in-space spread", p.sd, data).into());
                }
                Ok(p) => e.notes.push(format!(
                    "placebo in space ({} controls as fake treated geos): rank p-value {:.4}, SD of placebo ATTs {:.6}",
                    p.placebos.len(),
                    p.p_value,
                    p.sd
                )),
                Err(m) => e.notes.push(format!("no placebo in space: {m}")),
            }
            e.notes.push(format!("conformal p(0) = {:.4}", r.p_value));
            e.notes.push(format!(
                "conformal p(0) for the average effect (|Σu|, the statistic the CI inverts) = {:.4}",
                r.p_value_average
            ));
            let excludes_zero = !(r.ci_lower <= 0.0 && 0.0 <= r.ci_upper);
            if (r.p_value < alpha) != excludes_zero {
                e.notes.push(format!(
                    "the p-value ({:.4}, GeoLift's {stat:?} statistic) and the {:.0}% CI disagree about 0: the \
                     p-value reacts to effects that vary over the test window, the CI is for their average; \
                     read the average-effect p-value ({:.4}) with the CI",
                    r.p_value,
                    100.0 * (1.0 - alpha),
                    r.p_value_average
                ));
            }
            e
        }
        "ascm" => {
            let a = Ascm { demean: !args.no_demean, lambda: None };
            let fit = a.fit(data)?;
            let mut e = a.estimate(data)?;
            // placebo replications keep the cross-validated penalty fixed (re-running the CV per
            // replication would multiply the cost by ~T₀ for little change)
            let fixed = Ascm { lambda: Some(fit.lambda), ..a };
            let se = inference::placebo_se(&fixed, data, args.placebo_reps, args.seed)?;
            inference::apply_se(
                &mut e,
                se,
                alpha,
                &format!("placebo SE ({} reps, λ fixed), normal CI", args.placebo_reps),
            );
            e
        }
        "sdid" => {
            let s = Sdid::default();
            let mut e = s.estimate(data)?;
            let se = inference::sdid_placebo_se(&s, data, args.placebo_reps, args.seed)?;
            inference::apply_se(&mut e, se, alpha, &format!("placebo SE ({} reps), normal CI", args.placebo_reps));
            if let Ok(jk) = inference::sdid_jackknife_se(&s, data) {
                e.notes.push(format!("jackknife SE {jk:.6}"));
            }
            e
        }
        "did" => {
            let mut e = DiD.estimate(data)?;
            let se = inference::sdid_placebo_se(&Sdid::did(), data, args.placebo_reps, args.seed)?;
            inference::apply_se(&mut e, se, alpha, &format!("placebo SE ({} reps), normal CI", args.placebo_reps));
            e
        }
        "twfe" => {
            let mut e = Twfe.estimate(data)?;
            // recompute the interval at the requested alpha
            if let Some(se) = e.se {
                let fit = Twfe.fit(data)?;
                let q = mmloop_geolift::stats::t_quantile(1.0 - alpha / 2.0, (fit.n_clusters - 1) as f64);
                e.alpha = alpha;
                e.ci_lower = Some(e.att - q * se);
                e.ci_upper = Some(e.att + q * se);
            }
            e
        }
        "tbr" => {
            let tbr = Tbr { alpha };
            let mut e = tbr.estimate(data)?;
            // the predictive interval assumes iid errors; the block bootstrap keeps their serial
            // correlation (daily data), reported beside it
            match tbr.block_bootstrap(data, 1000, None, args.seed) {
                Ok(b) if !(b.cumulative_se.is_finite() && b.ci_lower.is_finite() && b.ci_upper.is_finite()) => {
                    return Err(nonfinite("tbr", "block-bootstrap SE", b.cumulative_se, data).into());
                }
                Ok(b) => e.notes.push(format!(
                    "moving-block bootstrap (block {}, {} reps): cumulative effect SE {:.4}, {:.0}% interval [{:.4}, {:.4}], p = {:.4}",
                    b.block_len,
                    b.reps,
                    b.cumulative_se,
                    100.0 * (1.0 - alpha),
                    b.ci_lower,
                    b.ci_upper,
                    b.p_value
                )),
                Err(err) => e.notes.push(format!("moving-block bootstrap not available: {err}")),
            }
            e
        }
        _ => bail!("unknown estimator {name}"),
    })
}

fn nonfinite(estimator: &str, what: &str, value: f64, data: &LiftData) -> GeoLiftError {
    GeoLiftError::NonFiniteResult {
        estimator: estimator.into(),
        what: what.into(),
        value,
        culprit: data.nonfinite_culprit(),
    }
}

fn lift_json(panel: &Panel, cells: &[Cell], args: &LiftArgs) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let cells_json: Vec<Value> = cells
        .iter()
        .map(|c| {
            let mut ests = Map::new();
            for e in &c.estimates {
                let weights: Map<String, Value> = e.weights.iter().map(|(g, w)| (g.clone(), json!(w))).collect();
                let mut o = json!({
                    "att": e.att,
                    "lift_pct": e.lift_pct,
                    "incremental": e.incremental,
                    "se": e.se,
                    "ci_lower": e.ci_lower,
                    "ci_upper": e.ci_upper,
                    "p_value": e.p_value,
                    "alpha": e.alpha,
                    "inference": e.inference,
                    "weights": weights,
                    "pre_fit": e.pre_fit,
                    "bias": e.bias,
                    "iroas": e.iroas,
                    "notes": e.notes,
                });
                if !e.event_study.is_empty() {
                    o["event_study"] = json!(e.event_study);
                }
                if !e.time_weights.is_empty() {
                    let tw: Map<String, Value> = e.time_weights.iter().map(|(g, w)| (g.clone(), json!(w))).collect();
                    o["time_weights"] = Value::Object(tw);
                }
                ests.insert(e.estimator.clone(), o);
            }
            json!({
                "cell": c.name,
                "treated": c.data.treated_names(),
                "controls": c.data.control_names(),
                "start": c.data.time_labels[c.data.t0],
                "end": c.data.time_labels[c.data.n_periods() - 1],
                "n_pre": c.data.t0,
                "n_post": c.data.n_post(),
                "spend_change": c.spend_change,
                "missing_cells": c.data.missing_cells().0,
                "outlier_rule": format!("robust score > {OUTLIER_THRESHOLD} and off by more than half the geo's typical level (modified z-score of the level-scaled series minus the cross-geo median and the ±2-period neighbours' median); the treated geos' test window is exempt"),
                "warnings": c.warnings,
                "estimates": Value::Object(ests),
            })
        })
        .collect();
    json!({
        "source": panel.source,
        "kpi": args.panel.kpi,
        "seed": args.seed,
        "cells": cells_json,
    })
}

fn periods_csv(cells: &[Cell]) -> String {
    let mut s = String::from("cell,estimator,time,post,observed,counterfactual,effect\n");
    for c in cells {
        for e in &c.estimates {
            for p in &e.path {
                s.push_str(&format!(
                    "{},{},{},{},{},{},{}\n",
                    csv_field(&c.name),
                    e.estimator,
                    csv_field(&p.time),
                    u8::from(p.post),
                    p.observed,
                    p.counterfactual,
                    p.observed - p.counterfactual
                ));
            }
        }
    }
    s
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// The calibration record of a cell from its first estimator (the one listed first in --estimator).
fn record(c: &Cell, args: &LiftArgs, panel: &Panel) -> LiftTestRecord {
    let e = &c.estimates[0];
    let scale = (e.n_post * e.n_treated) as f64;
    let se = e.se.or_else(|| {
        // normal-approximation SE from the interval when the method gives only an interval
        let (l, h) = (e.ci_lower?, e.ci_upper?);
        Some((h - l) / (2.0 * mmloop_geolift::stats::normal_quantile(1.0 - e.alpha / 2.0)))
    });
    LiftTestRecord {
        channels: args.channel.clone(),
        geos: c.data.treated_names(),
        start: c.data.time_labels[c.data.t0].clone(),
        end: c.data.time_labels[c.data.n_periods() - 1].clone(),
        spend_change: c.spend_change.unwrap_or(0.0),
        spend_path: if args.spend_change.is_none() { spend_path(&c.data) } else { None },
        incremental_kpi: e.incremental,
        standard_error: se.map(|s| s * scale).unwrap_or(f64::NAN),
        estimator: e.estimator.clone(),
        source: panel.source.clone(),
    }
}

fn fmt_opt(v: Option<f64>, prec: usize) -> String {
    v.map(|x| format!("{x:.prec$}")).unwrap_or_else(|| "-".into())
}

fn print_summary(cells: &[Cell], args: &LiftArgs) {
    let level = 100.0 * (1.0 - args.alpha);
    for c in cells {
        println!(
            "\nGeo lift: cell {} — treated {} — test {}..{} ({} periods; {} pre-periods, {} controls)",
            c.name,
            c.data.treated_names().join(", "),
            c.data.time_labels[c.data.t0],
            c.data.time_labels[c.data.n_periods() - 1],
            c.data.n_post(),
            c.data.t0,
            c.data.controls.len()
        );
        println!(
            "{:<8} {:>12} {:>8} {:>13} {:>10} {:>27} {:>8}",
            "model",
            "ATT",
            "lift %",
            "incremental",
            "SE",
            format!("{level:.0}% CI"),
            "p"
        );
        for e in &c.estimates {
            let ci = match (e.ci_lower, e.ci_upper) {
                (Some(l), Some(h)) => format!("[{l:.3}, {h:.3}]"),
                _ => "-".into(),
            };
            println!(
                "{:<8} {:>12.3} {:>8.2} {:>13.1} {:>10} {:>27} {:>8}",
                e.estimator,
                e.att,
                e.lift_pct,
                e.incremental,
                fmt_opt(e.se, 3),
                ci,
                fmt_opt(e.p_value, 3)
            );
        }
        for e in &c.estimates {
            if let Some(pf) = e.pre_fit {
                println!(
                    "  {}: pre-fit L2 {:.3}, scaled L2 {:.4}, RMSE {:.3}",
                    e.estimator, pf.l2, pf.scaled_l2, pf.rmse
                );
            }
            let mut w: Vec<&(String, f64)> = e.weights.iter().filter(|(_, w)| *w >= 1e-4).collect();
            if matches!(e.estimator.as_str(), "sc" | "ascm" | "sdid") {
                w.sort_by(|a, b| b.1.total_cmp(&a.1));
                let top: Vec<String> = w.iter().take(8).map(|(g, v)| format!("{g} {v:.4}")).collect();
                println!("  {} weights: {}", e.estimator, top.join(", "));
            }
            if let Some(b) = e.bias {
                println!("  {}: estimated SC bias {b:.4} (ATT_ascm = ATT_sc − bias)", e.estimator);
            }
            if let Some(i) = e.iroas {
                println!(
                    "  {} iROAS {:.4} [{}, {}]",
                    e.estimator,
                    i.estimate,
                    fmt_opt(i.ci_lower, 4),
                    fmt_opt(i.ci_upper, 4)
                );
            }
            for n in e.notes.iter().filter(|n| n.contains("disagree about 0")) {
                println!("  {} note: {n}", e.estimator);
            }
        }
    }
}
