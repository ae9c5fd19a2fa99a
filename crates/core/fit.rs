//! `mmloop fit`: config → data → posterior → analysis → output directory, with a summary table.

use anyhow::Context;
use mmloop_loop::calibrate;
use mmloop_loop::cycle::fit::{self as cfit, LedgerFitSettings};
use mmloop_loop::ledger::Ledger;
use mmloop_mmm::config::{FitOverrides, apply_overrides, load_config, to_toml};
use mmloop_mmm::spec::FitMethod;
use std::path::{Path, PathBuf};

/// Fit a marketing-mix model and write its posterior and analysis.
#[derive(clap::Args, Debug)]
pub struct FitArgs {
    /// The model's TOML config (see examples/).
    #[arg(long)]
    pub config: PathBuf,
    /// Output directory: new, empty, or an earlier `mmloop fit` output (replaced atomically; nothing
    /// is written on failure). May not be or hold the config or data file.
    #[arg(long)]
    pub out: PathBuf,
    /// Fitting method: `laplace` or `nuts` (default: the config's `[fit] method`).
    #[arg(long)]
    pub method: Option<String>,
    /// Random seed (default: the config's `[fit] seed`).
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<u64>,
    /// No progress bar (none is drawn when stderr is not a terminal either).
    #[arg(long)]
    pub quiet: bool,
    /// Experiment ledger: calibrate on its read (not discarded) readouts, each with its SE inflated
    /// by its age (SE²·exp(ln2·age/half-life)), write `evidence.json`, and record the fit in it.
    #[arg(long)]
    pub ledger: Option<PathBuf>,
    /// The time readout ages are measured to (data notation: a date or a period number); default:
    /// the data's last period. A readout ending after it is refused.
    #[arg(long, requires = "ledger")]
    pub as_of: Option<String>,
    /// A channel's evidence half-life in weeks, `CHANNEL=WEEKS` (repeatable; overrides the config's
    /// `[calibration] half_lives` and the class defaults: search/display/digital 26, social 39,
    /// TV/video/radio/OOH/print 52).
    #[arg(long = "half-life", requires = "ledger", value_name = "CHANNEL=WEEKS")]
    pub half_life: Vec<String>,
    /// The step of a numeric time column, `weeks` or `days` (dates are always measured in days).
    #[arg(long, requires = "ledger", default_value = "weeks")]
    pub time_unit: String,
    /// Skip the Laplace refits without each channel's readouts (evidence.json then has no
    /// "without" sd and no re-test verdict for tested channels).
    #[arg(long, requires = "ledger")]
    pub no_retest_fits: bool,
    /// How ledger readouts enter: `likelihood` (the window-aware lift-test term) or `roi-prior`
    /// (single-channel readouts become a moment-matched LogNormal ROI prior per channel, combined
    /// by precision; joint readouts stay lift terms).
    #[arg(long, requires = "ledger", default_value = "likelihood")]
    pub ledger_as: String,
}

/// The lift-test files named in the config's `[calibration] lift_tests` (a path or a list),
/// relative to the config's folder: inputs the output directory may not overlap. Their records are
/// copied into the saved config, so its hash covers their contents.
fn lift_test_files(config: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(config) else { return Vec::new() };
    let Ok(table) = text.parse::<toml::Table>() else { return Vec::new() };
    let base = config.parent().unwrap_or(Path::new(""));
    let entries = match table.get("calibration").and_then(|c| c.get("lift_tests")) {
        Some(toml::Value::String(s)) => vec![s.clone()],
        Some(toml::Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
        _ => Vec::new(),
    };
    entries.into_iter().map(|p| base.join(p)).collect()
}

/// The ledger settings of `fit --ledger`, checked.
fn ledger_settings(args: &FitArgs) -> anyhow::Result<LedgerFitSettings> {
    Ok(LedgerFitSettings {
        as_of: args.as_of.clone(),
        half_life_overrides: args.half_life.clone(),
        time_unit: cfit::parse_time_unit(&args.time_unit, "--time-unit")?,
        ledger_as: cfit::parse_ledger_as(&args.ledger_as, "--ledger-as")?,
        retest_fits: !args.no_retest_fits,
    })
}

pub fn run(args: FitArgs) -> anyhow::Result<()> {
    let method = match &args.method {
        Some(m) => Some(m.parse::<FitMethod>().map_err(anyhow::Error::msg).context("--method")?),
        None => None,
    };
    let mut spec = load_config(&args.config)?;
    apply_overrides(&mut spec, &FitOverrides { method, seed: args.seed });
    // refuse an unusable --out now, not after the fit
    let mut lift_files = lift_test_files(&args.config);
    let mut protected: Vec<&Path> = vec![&args.config, &spec.data.path];
    protected.extend(lift_files.iter().map(PathBuf::as_path));
    if let Some(l) = &args.ledger {
        protected.push(l);
    }
    mmloop_data::OutputDir::check(&args.out, "fit", &protected)?;
    if let Some(l) = &args.ledger {
        lift_files.push(l.clone());
    }
    let config_hash = mmloop_data::FileHash::of(&args.config)?;
    let data = mmloop_mmm::Dataset::load(&spec)?;
    // hashed right after reading, so the record describes the data the model saw
    let inputs = mmloop_mmm::output::FitInputs {
        config: config_hash,
        data: mmloop_data::FileHash::of(&spec.data.path)?,
        others: lift_files,
    };
    let settings = ledger_settings(&args)?;
    let mut cal = match &args.ledger {
        Some(path) => {
            let c = cfit::calibrate_on_ledger(&settings, Ledger::open(path)?, &mut spec, &data)?;
            for n in &c.combined.notes {
                eprintln!("note: {n}");
            }
            Some(c)
        }
        None => None,
    };
    if let Some(c) = &mut cal {
        let p = cfit::predict_before_calibrating(&mut c.ledger, &inputs.config.sha256);
        if let Some(n) = &p.note {
            eprintln!("note: {n}");
        }
        for d in &p.discrepancies {
            eprintln!(
                "predicted by fit {} before calibrating: {}",
                p.fit_id.unwrap_or(0),
                d.describe(&spec.data.kpi_column)
            );
        }
    }
    for w in mmloop_mmm::config::national_geo_warnings(&spec) {
        eprintln!("warning: {w}");
    }
    eprintln!(
        "fitting {} ({} × {}, {}) by {} …",
        args.config.display(),
        mmloop_data::human::count(data.n_geos(), "geo"),
        mmloop_data::human::count(data.n_times(), "period"),
        mmloop_data::human::count(data.n_channels(), "channel"),
        spec.fit.method
    );
    let options = mmloop_mmm::fit::FitOptions { quiet: args.quiet, ..Default::default() };
    let result = cfit::fit_calibrated(&spec, &data, options, cal.as_ref(), &args.config)?;
    let analysis = mmloop_mmm::fit::analyse_checked(&result, &data)?;
    let info = mmloop_mmm::fit::model_info(&spec, &data, &result);
    let mut extra = Vec::new();
    let mut table = String::new();
    if let Some(c) = &cal {
        let (rows, json) = cfit::evidence(&settings, c, &spec, &data, &result, &analysis, &mut |m| eprintln!("{m}"))?;
        extra.push(("evidence.json", serde_json::to_string_pretty(&json)?.into_bytes()));
        table = calibrate::evidence_table(&rows);
    }
    // the saved config names the data by its absolute path, so the fit reloads from anywhere
    let mut saved = spec.clone();
    if let Ok(p) = std::fs::canonicalize(&saved.data.path) {
        saved.data.path = p;
    }
    let dir = mmloop_mmm::output::write_outputs_with(
        &args.out,
        &result.model,
        &analysis,
        &result.draws,
        &result.diagnostics,
        &result.sample_stats,
        &info,
        &to_toml(&saved),
        &inputs,
        &extra,
    )?;
    print!("{}", mmloop_mmm::output::summary_table(&analysis));
    if !table.is_empty() {
        print!("\nevidence (ages to {}):\n{table}", cal.as_ref().map(|c| c.as_of.as_str()).unwrap_or(""));
    }
    eprint!("{}", mmloop_mmm::output::diagnostics_report(&result.diagnostics));
    let fit_arg = crate::say::arg(&dir);
    crate::say::wrote(
        &dir,
        &[
            format!("mmloop optimize --fit {fit_arg} --out <dir>   (the budget on this posterior)"),
            format!("mmloop rank --fit {fit_arg} --out <dir>   (which test to run next)"),
            format!("mmloop report {fit_arg}   (the fit's charts in one HTML page)"),
        ],
    );
    if let Some(c) = &mut cal {
        let id = cfit::record_fit_dir(&mut c.ledger, &dir)?;
        eprintln!("recorded fit {id} in {}", c.ledger.path().display());
    }
    Ok(())
}
