//! `mmloop fit`: config → data → posterior → analysis → output directory, with a summary table.

use anyhow::{Context, bail};
use mmloop_loop::calibrate::{self, LedgerAs};
use mmloop_loop::decay::{HalfLives, TimeUnit};
use mmloop_loop::ledger::{Ledger, NewFit};
use mmloop_loop::validate;
use mmloop_mmm::config::{FitOverrides, apply_overrides, load_config, to_toml};
use mmloop_mmm::spec::{FitMethod, RoiPriorRecord};
use std::collections::BTreeMap;
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

/// The ledger side of a fit: the open ledger, the half-lives and what the readouts became.
struct LedgerCalibration {
    ledger: Ledger,
    half_lives: HalfLives,
    combined: calibrate::Combined,
    as_of: String,
    unit: TimeUnit,
    mode: LedgerAs,
}

/// Opens the ledger, ages its readouts and merges them into the spec's lift tests. Everything that
/// can be wrong with the ledger or the half-lives fails here, before any fit or output.
fn calibrate_on_ledger(
    args: &FitArgs,
    path: &Path,
    spec: &mut mmloop_mmm::spec::ModelSpec,
    data: &mmloop_mmm::Dataset,
) -> anyhow::Result<LedgerCalibration> {
    let unit = match args.time_unit.to_lowercase().as_str() {
        "weeks" | "week" | "w" => TimeUnit::Weeks,
        "days" | "day" | "d" => TimeUnit::Days,
        u => bail!("--time-unit must be weeks or days, got {u:?}"),
    };
    let as_of = match &args.as_of {
        Some(a) => {
            data.times.parse_point(a).map_err(anyhow::Error::msg).context("--as-of")?;
            a.trim().to_string()
        }
        None => data.times.labels.last().cloned().context("the data have no periods")?,
    };
    let mode = match args.ledger_as.to_lowercase().as_str() {
        "likelihood" => LedgerAs::Likelihood,
        "roi-prior" | "roi_prior" => LedgerAs::RoiPrior,
        m => bail!("--ledger-as must be likelihood or roi-prior, got {m:?}"),
    };
    if mode == LedgerAs::RoiPrior && spec.data.revenue_per_kpi_column.is_some() {
        bail!(
            "--ledger-as roi-prior: the model's ROI is revenue per spend (revenue_per_kpi = {:?}) but readouts are in KPI \
             units; use --ledger-as likelihood (the lift term converts through the model)",
            spec.data.revenue_per_kpi_column.as_deref().unwrap_or_default()
        );
    }
    let names: Vec<String> = spec.channels.iter().map(|c| c.name.clone()).collect();
    let half_lives = calibrate::half_lives(&names, &spec.calibration.half_lives, &args.half_life)?;
    let ledger = Ledger::open(path)?;
    let aged = calibrate::ledger_calibration(&ledger, &half_lives, &as_of, unit)?;
    let combined = calibrate::combine(&spec.calibration.lift_tests, aged, &names, path, mode)?;
    for n in &combined.notes {
        eprintln!("note: {n}");
    }
    spec.calibration.lift_tests = combined.records.clone();
    // the model takes the last ROI prior given for a channel: the ledger's win over the config's
    spec.calibration.roi_priors.extend(combined.roi_priors.iter().map(|p| RoiPriorRecord {
        channel: p.channel.clone(),
        mean: p.mean,
        standard_error: p.standard_error,
    }));
    Ok(LedgerCalibration { ledger, half_lives, combined, as_of, unit, mode })
}

/// Posterior ROI sd per channel of an analysis.
fn roi_sds(a: &mmloop_mmm::analysis::Analysis) -> BTreeMap<String, f64> {
    a.channels.iter().map(|c| (c.name.clone(), c.roi.sd)).collect()
}

/// `evidence.json`: per channel the newest readout's age, half-life, inflation and SE_eff, and the
/// ROI sd with and without its readouts (Laplace refits, same seed) with the re-test verdict.
fn evidence(
    args: &FitArgs,
    cal: &LedgerCalibration,
    spec: &mmloop_mmm::spec::ModelSpec,
    data: &mmloop_mmm::Dataset,
    result: &mmloop_mmm::fit::FitResult,
    analysis: &mmloop_mmm::analysis::Analysis,
) -> anyhow::Result<(Vec<calibrate::ChannelEvidence>, serde_json::Value)> {
    let names: Vec<String> = spec.channels.iter().map(|c| c.name.clone()).collect();
    let reported = roi_sds(analysis);
    let quiet = mmloop_mmm::fit::FitOptions { quiet: true, ..Default::default() };
    // `without`: the channel whose lift terms and ROI priors are left out
    let laplace_fit = |without: Option<&str>| -> anyhow::Result<BTreeMap<String, f64>> {
        let mut s = spec.clone();
        s.fit.method = FitMethod::Laplace;
        if let Some(c) = without {
            s.calibration.lift_tests = calibrate::records_without(&s.calibration.lift_tests, c);
            s.calibration.roi_priors.retain(|p| p.channel != c);
        }
        let r = mmloop_mmm::fit::fit_with(&s, data, quiet)?;
        Ok(roi_sds(&mmloop_mmm::fit::analyse_checked(&r, data)?))
    };
    let mut sds: BTreeMap<String, calibrate::RoiSds> = names
        .iter()
        .map(|c| {
            let sd = reported.get(c).copied().unwrap_or(f64::NAN);
            (c.clone(), calibrate::RoiSds { reported: sd, laplace_with: None, laplace_without: None })
        })
        .collect();
    let cal_of = &spec.calibration;
    if !args.no_retest_fits {
        let with = if result.method == FitMethod::Laplace { reported.clone() } else { laplace_fit(None)? };
        for c in &names {
            let tested = cal_of.lift_tests.iter().any(|r| r.channels.contains(c))
                || cal_of.roi_priors.iter().any(|p| &p.channel == c);
            let entry = sds.get_mut(c).context("channel list")?;
            entry.laplace_with = with.get(c).copied();
            entry.laplace_without = if tested {
                eprintln!("evidence: Laplace refit without {c}'s readouts …");
                laplace_fit(Some(c))?.get(c).copied()
            } else {
                entry.laplace_with
            };
        }
    }
    let rows = calibrate::channel_evidence(&names, &cal.half_lives, &cal.combined, &sds);
    let json = serde_json::json!({
        "as_of": cal.as_of,
        "time_unit": match cal.unit { TimeUnit::Days => "days", TimeUnit::Weeks => "weeks" },
        "formula": "SE_eff^2 = SE^2 * exp(ln(2) / half_life_weeks * age_weeks)",
        "retest_rule": format!(
            "due_for_retest when the channel has no readout, or laplace_roi_sd_with / laplace_roi_sd_without > {}",
            calibrate::RETEST_SD_RATIO
        ),
        "without_method": if args.no_retest_fits { "skipped (--no-retest-fits)" } else { "laplace, same seed, without the channel's readouts (joint readouts naming it included)" },
        "reported_method": result.method.to_string(),
        "channels": rows,
        "ledger_as": cal.mode,
        "roi_priors": cal.combined.roi_priors,
        "readouts": cal.combined.used,
        "notes": cal.combined.notes,
    });
    Ok((rows, json))
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
    let mut cal = match &args.ledger {
        Some(path) => Some(calibrate_on_ledger(&args, path, &mut spec, &data)?),
        None => None,
    };
    if let Some(c) = &mut cal {
        predict_before_calibrating(&mut c.ledger, &inputs.config.sha256, &spec.data.kpi_column);
    }
    for w in mmloop_mmm::config::national_geo_warnings(&spec) {
        eprintln!("warning: {w}");
    }
    eprintln!(
        "fitting {} ({} geos × {} periods, {} channels) by {} …",
        args.config.display(),
        data.n_geos(),
        data.n_times(),
        data.n_channels(),
        spec.fit.method
    );
    let options = mmloop_mmm::fit::FitOptions { quiet: args.quiet, ..Default::default() };
    let result = mmloop_mmm::fit::fit_with(&spec, &data, options).with_context(|| match &cal {
        // a lift-test error names its position in the combined list: say which experiment it is
        Some(c) if !c.combined.used.is_empty() => {
            let first = c.combined.records.len() + 1
                - c.combined.records.iter().filter(|r| r.source.contains("[ledger record")).count();
            let ids: Vec<String> = c
                .combined
                .used
                .iter()
                .filter(|a| !c.combined.roi_priors.iter().any(|p| p.experiments.contains(&a.experiment_id)))
                .enumerate()
                .map(|(i, a)| format!("lift test {} = ledger experiment {}", first + i, a.experiment_id))
                .collect();
            format!("fitting {} with the ledger's readouts ({})", args.config.display(), ids.join(", "))
        }
        _ => format!("fitting {}", args.config.display()),
    })?;
    let analysis = mmloop_mmm::fit::analyse_checked(&result, &data)?;
    let info = mmloop_mmm::fit::model_info(&spec, &data, &result);
    let mut extra = Vec::new();
    let mut table = String::new();
    if let Some(c) = &cal {
        let (rows, json) = evidence(&args, c, &spec, &data, &result, &analysis)?;
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
    eprintln!("wrote {}", dir.display());
    if let Some(c) = &mut cal {
        // the ledger records what the fit directory holds, read back through its one reader
        let summary = mmloop_mmm::fitdir::FitDir::open(&dir)
            .and_then(|d| d.summary())
            .with_context(|| format!("the fit was written to {} but cannot be read back", dir.display()))?;
        let roi: serde_json::Map<String, serde_json::Value> =
            summary.channels.iter().map(|ch| (ch.name.clone(), serde_json::json!(ch.roi))).collect();
        let fit = NewFit {
            config_hash: summary.inputs.config.sha256.clone(),
            data_hash: summary.inputs.data.sha256.clone(),
            method: summary.diagnostics.method().to_string(),
            diagnostics: summary.diagnostics.to_json(),
            roi_summary: serde_json::Value::Object(roi),
            fit_dir: Some(std::fs::canonicalize(&dir).unwrap_or(dir.clone()).display().to_string()),
        };
        let id = c.ledger.record_fit(&fit).with_context(|| {
            format!("the fit was written to {} but could not be recorded in the ledger", dir.display())
        })?;
        eprintln!("recorded fit {id} in {}", c.ledger.path().display());
    }
    Ok(())
}

/// The model checked against every test: before the ledger's readouts calibrate this fit, the
/// newest earlier fit of the same config that the ledger remembers predicts every read experiment
/// it has no prediction for (out of sample unless that fit had seen the readout), and the
/// predictions are recorded. This never stops the fit: when there is no such fit, or it cannot be
/// loaded or cannot price a test, a note says so and `mmloop ledger FILE predict --fit DIR` is the
/// way to do it by hand.
fn predict_before_calibrating(ledger: &mut Ledger, config_sha256: &str, kpi: &str) {
    let path = ledger.path().display().to_string();
    let hint = |why: String| {
        eprintln!(
            "note: the new readouts were not predicted before calibrating ({why}); `mmloop ledger {path} predict --fit DIR` \
             predicts them with a fit of your choice"
        )
    };
    let fits = match ledger.fits() {
        Ok(f) => f,
        Err(e) => return hint(e.to_string()),
    };
    let Some((id, dir)) = fits
        .iter()
        .rev()
        .filter(|f| f.fit.config_hash == config_sha256)
        .find_map(|f| f.fit.fit_dir.as_ref().filter(|d| Path::new(d).is_dir()).map(|d| (f.id, PathBuf::from(d))))
    else {
        // nothing to say when nothing is waiting for a prediction
        if validate::unpredicted_experiments(ledger).is_ok_and(|e| !e.is_empty()) {
            hint("the ledger holds no earlier fit of this config".into());
        }
        return;
    };
    let model = match mmloop_mmm::optimize::FittedModel::load_checked(&dir) {
        Ok((m, _)) => m,
        Err(e) => return hint(format!("its latest fit {} cannot be loaded: {e}", dir.display())),
    };
    let made = match validate::predict_pending(ledger, &model, id) {
        Ok(m) => m,
        Err(e) => return hint(format!("fit {id} in {}: {e}", dir.display())),
    };
    let threshold = match validate::Threshold::new(validate::DEFAULT_THRESHOLD) {
        Ok(t) => t,
        Err(e) => return hint(e.to_string()),
    };
    for p in &made {
        let Ok(e) = ledger.experiment(p.experiment_id) else { continue };
        if let Some(r) = &e.readout
            && let Ok(d) = validate::discrepancy(Some(e.id), &r.record, &p.prediction, p.in_sample, threshold)
        {
            eprintln!("predicted by fit {id} before calibrating: {}", d.describe(kpi));
        }
    }
}
