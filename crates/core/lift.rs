//! `mmloop lift`: estimate a geo test's lift from a regional panel. A thin caller of
//! [`mmloop_geolift::readout`]: it turns the options into [`ReadoutParams`], reads the panel, calls
//! [`prepare`] (whose warnings it prints before the long work) and [`estimate`], prints and writes
//! `lift.json`, `lift_periods.csv` and `calibration.json`.
//!
//! With `--ledger FILE` the readouts are then recorded in the experiment ledger
//! ([`mmloop_loop::ledger`]) from the written `calibration.json` (its path and SHA-256 are the
//! source the ledger keeps, as with `mmloop ledger FILE add`). `--ledger` needs `--channel` (a readout
//! without a channel calibrates nothing) and a spend change (`--spend-change` or `--spend`; a record
//! whose spend change stays unknown is not recorded, with an error after the output is written), and
//! an existing ledger is opened before any work, so a
//! foreign or newer file fails fast with nothing written. A readout already in the ledger (same file
//! hash or same record) is not added again: the output directory stays written, the terminal says
//! which experiment already holds it, and the exit code is 0 (the ledger already holds what was
//! asked for, so re-running a pipeline is idempotent). Any other ledger failure after the output is
//! written exits with an error that says the output was written and how to add it later.

use anyhow::{Context, bail};
use mmloop_data::OutputDir;
use mmloop_data::human::{amount, number};
use mmloop_geolift::readout::{Body, CellReadout, ReadoutParams, estimate, prepare};
use mmloop_geolift::{Columns, Panel};
use mmloop_loop::ledger::{Ledger, LedgerError};
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
    /// Estimator(s): sc, ascm, sdid, did, twfe, tbr or all (comma separated). The FIRST one listed
    /// feeds calibration.json (with `all`, sc); the others are printed and kept in lift.json for
    /// comparison.
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
    /// Experiment ledger (SQLite, created when missing): record the readout(s) from the written
    /// calibration.json. Needs --channel and a spend change (--spend-change or --spend). A readout already in the ledger is reported and not added
    /// again (exit code 0; the output directory is written either way).
    #[arg(long)]
    pub ledger: Option<PathBuf>,
}

pub fn run(args: LiftArgs) -> anyhow::Result<()> {
    let params = ReadoutParams {
        estimators: args.estimator.clone(),
        treated: args.treated.clone(),
        treatment_col: args.treatment_col.clone(),
        cells: args.cell.clone(),
        start: args.start.clone(),
        end: args.end.clone(),
        demean: !args.no_demean,
        alpha: args.alpha,
        stat: args.stat.clone(),
        permutations: args.permutations,
        placebo_reps: args.placebo_reps,
        max_donors: args.max_donors,
        seed: args.seed,
        channels: args.channel.clone(),
        spend_change: args.spend_change,
    };
    let settings = params.check()?;
    if let Some(l) = &args.ledger {
        if args.channel.is_empty() {
            bail!(
                "--ledger {}: a readout without a channel calibrates nothing; say which channel(s) the test moved with --channel NAME (repeatable)",
                l.display()
            );
        }
        if args.channel.iter().any(|c| c.trim().is_empty()) {
            bail!(
                "--ledger {}: a --channel name is blank; give the channel's name as the model config spells it",
                l.display()
            );
        }
        if args.spend_change.is_none() && args.spend.is_none() {
            bail!(
                "--ledger {}: the readout needs its spend change to calibrate a model (the model's implied lift of a zero spend change is zero); give --spend-change X (negative for go-dark) or a --spend COLUMN",
                l.display()
            );
        }
        // an existing ledger is checked (ours, readable, not from a newer mmloop) before any work
        if l.exists() {
            Ledger::open(l).with_context(|| format!("--ledger {}", l.display()))?;
        }
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
    let prepared = prepare(&panel, &settings)?;
    for c in prepared.cells() {
        crate::panel_args::print_outliers(&format!("cell {}", c.name), &c.outliers);
        if c.spend_gaps {
            eprintln!(
                "warning: cell {}: the spend column has gaps in the treated geos, so the spend change is unknown; give --spend-change",
                c.name
            );
        }
    }
    let bar = crate::panel_args::Bar::new();
    let readout = estimate(&panel, &settings, prepared, &bar);
    bar.clear();
    let readout = readout?;

    // outputs
    let out = OutputDir::create_for(&args.out, "lift", &[&args.panel.data])?;
    out.write("lift.json", serde_json::to_string_pretty(&readout.lift_json(&args.panel.kpi))?.as_bytes())?;
    if let Some(csv) = readout.periods_csv() {
        out.write("lift_periods.csv", csv.as_bytes())?;
    }
    out.write("calibration.json", serde_json::to_string_pretty(&readout.records)?.as_bytes())?;
    let target = out.commit()?;
    match &readout.body {
        Body::Cells(cells) => {
            print_summary(cells, args.alpha);
            println!(
                "calibration.json holds the {} readout (the first estimator listed)",
                cells.first().and_then(|c| c.estimates.first()).map(|e| e.estimator.as_str()).unwrap_or("-")
            );
            crate::say::wrote(&target, &next_after_lift(&target, args.ledger.is_some()));
            if readout.records.iter().any(|r| r.spend_change == 0.0) {
                eprintln!(
                    "warning: no spend change known (give --spend-change X, or a --spend COLUMN without gaps in the treated geos); calibration.json has spend_change 0, set it before calibrating the MMM"
                );
            }
        }
        Body::Staggered(s) => {
            println!(
                "\nGeo lift (staggered adoption, {} treated geos, {} treated geo-periods): TWFE ATT {:.6}, SE {:.6}, {:.0}% CI [{:.6}, {:.6}], p {:.4}",
                s.treated.len(),
                s.treated_geo_periods,
                s.att,
                s.se,
                100.0 * (1.0 - args.alpha),
                s.ci_lower,
                s.ci_upper,
                s.p_value
            );
            println!("event study (period relative to adoption: estimate ± SE):");
            for e in &s.event_study {
                println!("  {:>4}: {:>12.6} ± {:.6}", e.rel, e.estimate, e.se);
            }
            crate::say::wrote(&target, &next_after_lift(&target, args.ledger.is_some()));
        }
    }
    if let Some(l) = &args.ledger {
        let calibration = target.join("calibration.json");
        if readout.records.iter().any(|r| r.spend_change == 0.0) {
            bail!(
                "--ledger {}: not recorded: the spend change is unknown (no --spend-change, and the spend column could not give it: gaps in the treated geos, or a staggered readout), and a readout without it cannot calibrate a model. The lift output was written; set spend_change in {} and run `mmloop ledger {} add {}`, or rerun with --spend-change X",
                l.display(),
                calibration.display(),
                l.display(),
                calibration.display()
            );
        }
        record_in_ledger(l, &calibration)?;
    }
    Ok(())
}

/// Records the written calibration.json in the ledger. A duplicate is reported on stderr and is not
/// an error (see the module docs); any other failure says that the output was written.
fn record_in_ledger(ledger: &std::path::Path, calibration: &std::path::Path) -> anyhow::Result<()> {
    let later = || {
        format!(
            "--ledger {}: the lift output was written, but the readout was not recorded; once the ledger is usable, run `mmloop ledger {} add {}`",
            ledger.display(),
            ledger.display(),
            calibration.display()
        )
    };
    let mut l = Ledger::open_or_create(ledger).with_context(later)?;
    match l.add_calibration_file(calibration) {
        Ok(ids) => {
            let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
            let noun = if ids.len() == 1 { "experiment" } else { "experiments" };
            println!("recorded in ledger {} as {noun} {}", ledger.display(), list.join(", "));
            Ok(())
        }
        Err(LedgerError::DuplicateSource { existing, .. }) => {
            eprintln!(
                "note: ledger {}: this readout is already recorded as experiment(s) {existing} (same calibration.json); not added again",
                ledger.display()
            );
            Ok(())
        }
        Err(LedgerError::DuplicateRecord { index, existing, .. }) => {
            eprintln!(
                "note: ledger {}: readout {index} of this run is already recorded as experiment {existing}; nothing from this run was added again",
                ledger.display()
            );
            Ok(())
        }
        Err(e) => Err(anyhow::Error::new(e).context(later())),
    }
}

fn fmt_opt(v: Option<f64>, prec: usize) -> String {
    v.map(|x| format!("{x:.prec$}")).unwrap_or_else(|| "-".into())
}

/// What to do with a readout: record it in a ledger (unless this run did), then calibrate on it.
fn next_after_lift(target: &std::path::Path, recorded: bool) -> Vec<String> {
    let cal = crate::say::arg(&target.join("calibration.json"));
    let mut next = Vec::new();
    if !recorded {
        next.push(format!("mmloop ledger <ledger file> add {cal}   (keep it with every other readout)"));
    }
    next.push("mmloop fit --config <model.toml> --ledger <ledger file> --out <dir>   (calibrate on it)".to_string());
    next
}

fn print_summary(cells: &[CellReadout], alpha: f64) {
    let level = 100.0 * (1.0 - alpha);
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
                (Some(l), Some(h)) => format!("[{}, {}]", amount(l), amount(h)),
                _ => "-".into(),
            };
            println!(
                "{:<8} {:>12} {:>8.2} {:>13} {:>10} {:>27} {:>8}",
                e.estimator,
                number(e.att),
                e.lift_pct,
                amount(e.incremental),
                e.se.map(amount).unwrap_or_else(|| "-".into()),
                ci,
                fmt_opt(e.p_value, 3)
            );
        }
        for e in &c.estimates {
            if let Some(pf) = e.pre_fit {
                println!(
                    "  {}: pre-period fit: L2 imbalance {}, scaled L2 {:.4} (0 = perfect, 1 = no better than the mean), RMSE {}",
                    e.estimator,
                    amount(pf.l2),
                    pf.scaled_l2,
                    amount(pf.rmse)
                );
            }
            let mut w: Vec<&(String, f64)> = e.weights.iter().filter(|(_, w)| *w >= 1e-4).collect();
            if matches!(e.estimator.as_str(), "sc" | "ascm" | "sdid") {
                w.sort_by(|a, b| b.1.total_cmp(&a.1));
                let top: Vec<String> = w.iter().take(8).map(|(g, v)| format!("{g} {v:.3}")).collect();
                println!("  {} weights: {}", e.estimator, top.join(", "));
            }
            if let Some(b) = e.bias {
                println!("  {}: estimated SC bias {} (ATT_ascm = ATT_sc − bias)", e.estimator, amount(b));
            }
            if let Some(i) = e.iroas {
                println!(
                    "  {} iROAS {} [{}, {}]",
                    e.estimator,
                    number(i.estimate),
                    i.ci_lower.map(number).unwrap_or_else(|| "-".into()),
                    i.ci_upper.map(number).unwrap_or_else(|| "-".into())
                );
            }
            for n in e.notes.iter().filter(|n| n.contains("disagree about 0")) {
                println!("  {} note: {n}", e.estimator);
            }
        }
        // which estimators carry a per-period interval (lift_periods.csv's effect_lower/effect_upper)
        let names = |band: bool| -> Vec<&str> {
            c.estimates.iter().filter(|e| e.period_band.is_some() == band).map(|e| e.estimator.as_str()).collect()
        };
        let (with, without) = (names(true), names(false));
        println!(
            "  per-period {level:.0}% intervals in lift_periods.csv: {}{}",
            if with.is_empty() {
                "none".to_string()
            } else {
                format!("{} (conformal, one test per period)", with.join(", "))
            },
            if without.is_empty() || with.is_empty() {
                String::new()
            } else {
                format!("; none for {}", without.join(", "))
            }
        );
    }
}
