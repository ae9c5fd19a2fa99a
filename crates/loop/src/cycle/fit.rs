//! Phase 1 of a cycle, also `mmloop fit --ledger`: a fit calibrated by every read readout of the
//! ledger, each with its standard error inflated by its age ([`crate::calibrate`]), the readouts
//! not yet predicted first predicted by the newest earlier fit of the same config
//! ([`predict_before_calibrating`]), `evidence.json` (who is due for re-test), and the fit recorded
//! in the ledger ([`record_fit_dir`]).

use super::CycleError;
use crate::calibrate::{self, LedgerAs};
use crate::decay::{HalfLives, TimeUnit};
use crate::ledger::{Ledger, NewFit};
use crate::validate;
use mmloop_mmm::Dataset;
use mmloop_mmm::analysis::Analysis;
use mmloop_mmm::fit::{FitOptions, FitResult};
use mmloop_mmm::spec::{FitMethod, ModelSpec, RoiPriorRecord};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How a fit uses the ledger: the options of `mmloop fit --ledger` and of a loop config.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerFitSettings {
    /// The time ages are measured to (data notation); `None`: the data's last period.
    pub as_of: Option<String>,
    /// `CHANNEL=WEEKS` overrides of the half-lives (after the config's `[calibration] half_lives`).
    pub half_life_overrides: Vec<String>,
    pub time_unit: TimeUnit,
    pub ledger_as: LedgerAs,
    /// Run the Laplace refits with and without each tested channel's readouts for the re-test verdict.
    pub retest_fits: bool,
}

impl Default for LedgerFitSettings {
    fn default() -> Self {
        Self {
            as_of: None,
            half_life_overrides: Vec::new(),
            time_unit: TimeUnit::Weeks,
            ledger_as: LedgerAs::Likelihood,
            retest_fits: true,
        }
    }
}

/// `weeks` or `days` (with their short forms), as `--time-unit` and the loop config take it.
pub fn parse_time_unit(s: &str, option: &str) -> Result<TimeUnit, CycleError> {
    match s.trim().to_lowercase().as_str() {
        "weeks" | "week" | "w" => Ok(TimeUnit::Weeks),
        "days" | "day" | "d" => Ok(TimeUnit::Days),
        u => Err(CycleError::Option { option: option.into(), message: format!("must be weeks or days, got {u:?}") }),
    }
}

/// `likelihood` or `roi-prior`, as `--ledger-as` and the loop config take it.
pub fn parse_ledger_as(s: &str, option: &str) -> Result<LedgerAs, CycleError> {
    match s.trim().to_lowercase().as_str() {
        "likelihood" => Ok(LedgerAs::Likelihood),
        "roi-prior" | "roi_prior" => Ok(LedgerAs::RoiPrior),
        m => Err(CycleError::Option {
            option: option.into(),
            message: format!("must be likelihood or roi-prior, got {m:?}"),
        }),
    }
}

/// The ledger side of a fit: the open ledger, the half-lives and what the readouts became.
#[derive(Debug)]
pub struct LedgerCalibration {
    pub ledger: Ledger,
    pub half_lives: HalfLives,
    pub combined: calibrate::Combined,
    pub as_of: String,
    pub unit: TimeUnit,
    pub mode: LedgerAs,
}

/// Opens the ledger, ages its readouts and merges them into the spec's lift tests (and, with
/// [`LedgerAs::RoiPrior`], its ROI priors: the ledger's win over the config's). Everything that can
/// be wrong with the ledger or the half-lives fails here, before any fit or output. The notes
/// (what was merged or left out) are in `combined.notes`.
pub fn calibrate_on_ledger(
    settings: &LedgerFitSettings,
    ledger: Ledger,
    spec: &mut ModelSpec,
    data: &Dataset,
) -> Result<LedgerCalibration, CycleError> {
    let as_of = match &settings.as_of {
        Some(a) => {
            data.times.parse_point(a).map_err(|message| CycleError::Option { option: "--as-of".into(), message })?;
            a.trim().to_string()
        }
        None => {
            data.times.labels.last().cloned().ok_or_else(|| CycleError::Option {
                option: "data".into(),
                message: "the data have no periods".into(),
            })?
        }
    };
    let mode = settings.ledger_as;
    if mode == LedgerAs::RoiPrior && spec.data.revenue_per_kpi_column.is_some() {
        return Err(CycleError::Option {
            option: "--ledger-as roi-prior".into(),
            message: format!(
                "the model's ROI is revenue per spend (revenue_per_kpi = {:?}) but readouts are in KPI units; use \
                 --ledger-as likelihood (the lift term converts through the model)",
                spec.data.revenue_per_kpi_column.as_deref().unwrap_or_default()
            ),
        });
    }
    let names: Vec<String> = spec.channels.iter().map(|c| c.name.clone()).collect();
    let half_lives = calibrate::half_lives(&names, &spec.calibration.half_lives, &settings.half_life_overrides)?;
    let aged = calibrate::ledger_calibration(&ledger, &half_lives, &as_of, settings.time_unit)?;
    let combined = calibrate::combine(&spec.calibration.lift_tests, aged, &names, ledger.path(), mode)?;
    spec.calibration.lift_tests = combined.records.clone();
    // the model takes the last ROI prior given for a channel: the ledger's win over the config's
    spec.calibration.roi_priors.extend(combined.roi_priors.iter().map(|p| RoiPriorRecord {
        channel: p.channel.clone(),
        mean: p.mean,
        standard_error: p.standard_error,
    }));
    Ok(LedgerCalibration { ledger, half_lives, combined, as_of, unit: settings.time_unit, mode })
}

/// What [`fit_calibrated`]'s error says about a failing lift term: which ledger experiment the
/// model's lift-test position is.
pub fn fit_error_context(cal: Option<&LedgerCalibration>, config: &Path) -> String {
    match cal {
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
            format!("fitting {} with the ledger's readouts ({})", config.display(), ids.join(", "))
        }
        _ => format!("fitting {}", config.display()),
    }
}

/// Fits the (calibrated) spec; an error names the ledger experiments behind the lift terms.
pub fn fit_calibrated(
    spec: &ModelSpec,
    data: &Dataset,
    options: FitOptions,
    cal: Option<&LedgerCalibration>,
    config: &Path,
) -> Result<FitResult, CycleError> {
    fit_calibrated_from(spec, data, options, cal, config, None)
}

/// [`fit_calibrated`] with a Laplace fit's mode search also starting at `warm`
/// ([`mmloop_mmm::fit::fit_from`]).
pub fn fit_calibrated_from(
    spec: &ModelSpec,
    data: &Dataset,
    options: FitOptions,
    cal: Option<&LedgerCalibration>,
    config: &Path,
    warm: Option<&mmloop_mmm::fit::WarmStart>,
) -> Result<FitResult, CycleError> {
    mmloop_mmm::fit::fit_from(spec, data, options, warm)
        .map_err(|source| CycleError::Fit { context: fit_error_context(cal, config), source })
}

/// Posterior ROI sd per channel of an analysis.
fn roi_sds(a: &Analysis) -> BTreeMap<String, f64> {
    a.channels.iter().map(|c| (c.name.clone(), c.roi.sd)).collect()
}

/// `evidence.json`: per channel the newest readout's age, half-life, inflation and SE_eff, and the
/// ROI sd with and without its readouts (Laplace refits, same seed) with the re-test verdict.
/// `progress` hears of each refit.
pub fn evidence(
    settings: &LedgerFitSettings,
    cal: &LedgerCalibration,
    spec: &ModelSpec,
    data: &Dataset,
    result: &FitResult,
    analysis: &Analysis,
    progress: &mut dyn FnMut(&str),
) -> Result<(Vec<calibrate::ChannelEvidence>, serde_json::Value), CycleError> {
    let names: Vec<String> = spec.channels.iter().map(|c| c.name.clone()).collect();
    let reported = roi_sds(analysis);
    let quiet = FitOptions { quiet: true, ..Default::default() };
    // `without`: the channel whose lift terms and ROI priors are left out
    let laplace_fit = |without: Option<&str>| -> Result<BTreeMap<String, f64>, CycleError> {
        let mut s = spec.clone();
        s.fit.method = FitMethod::Laplace;
        if let Some(c) = without {
            s.calibration.lift_tests = calibrate::records_without(&s.calibration.lift_tests, c);
            s.calibration.roi_priors.retain(|p| p.channel != c);
        }
        let context = format!("the Laplace refit without {}'s readouts", without.unwrap_or("no channel"));
        let r = mmloop_mmm::fit::fit_with(&s, data, quiet)
            .map_err(|source| CycleError::Fit { context: context.clone(), source })?;
        let a = mmloop_mmm::fit::analyse_checked(&r, data).map_err(|source| CycleError::Fit { context, source })?;
        Ok(roi_sds(&a))
    };
    let mut sds: BTreeMap<String, calibrate::RoiSds> = names
        .iter()
        .map(|c| {
            let sd = reported.get(c).copied().unwrap_or(f64::NAN);
            (c.clone(), calibrate::RoiSds { reported: sd, laplace_with: None, laplace_without: None })
        })
        .collect();
    let cal_of = &spec.calibration;
    if settings.retest_fits {
        let with = if result.method == FitMethod::Laplace { reported.clone() } else { laplace_fit(None)? };
        for c in &names {
            let tested = cal_of.lift_tests.iter().any(|r| r.channels.contains(c))
                || cal_of.roi_priors.iter().any(|p| &p.channel == c);
            let Some(entry) = sds.get_mut(c) else { continue };
            entry.laplace_with = with.get(c).copied();
            entry.laplace_without = if tested {
                progress(&format!("evidence: Laplace refit without {c}'s readouts …"));
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
        "without_method": if settings.retest_fits { "laplace, same seed, without the channel's readouts (joint readouts naming it included)" } else { "skipped (--no-retest-fits)" },
        "reported_method": result.method.to_string(),
        "channels": rows,
        "ledger_as": cal.mode,
        "roi_priors": cal.combined.roi_priors,
        "readouts": cal.combined.used,
        "notes": cal.combined.notes,
    });
    Ok((rows, json))
}

/// Records the fit written to `dir` in the ledger, reading what it holds back through the fit
/// directory's one reader. Returns the new fit id.
pub fn record_fit_dir(ledger: &mut Ledger, dir: &Path) -> Result<i64, CycleError> {
    let summary = mmloop_mmm::fitdir::FitDir::open(dir).and_then(|d| d.summary()).map_err(|e| CycleError::FitDir {
        dir: dir.to_path_buf(),
        message: format!("the fit was written but cannot be read back: {e}"),
    })?;
    let roi: serde_json::Map<String, serde_json::Value> =
        summary.channels.iter().map(|ch| (ch.name.clone(), serde_json::json!(ch.roi))).collect();
    let fit = NewFit {
        config_hash: summary.inputs.config.sha256.clone(),
        data_hash: summary.inputs.data.sha256.clone(),
        method: summary.diagnostics.method().to_string(),
        diagnostics: summary.diagnostics.to_json(),
        roi_summary: serde_json::Value::Object(roi),
        fit_dir: Some(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()).display().to_string()),
    };
    ledger.record_fit(&fit).map_err(|e| CycleError::FitDir {
        dir: dir.to_path_buf(),
        message: format!("the fit was written but could not be recorded in the ledger: {e}"),
    })
}

/// What [`predict_before_calibrating`] did, in words: discrepancy lines for the new readouts, or
/// a note saying why they were not predicted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PredictedBefore {
    /// The earlier fit that predicted, if any.
    pub fit_id: Option<i64>,
    /// One per new readout: the prediction against the readout.
    pub discrepancies: Vec<validate::Discrepancy>,
    /// Why nothing was predicted (with the command that does it by hand); none when all went well.
    pub note: Option<String>,
}

/// The model checked against every test: before the ledger's readouts calibrate a fit, the newest
/// earlier fit of the same config that the ledger remembers predicts every read experiment it has
/// no prediction for (out of sample unless that fit had seen the readout), and the predictions are
/// recorded. This never stops the fit: when there is no such fit, or it cannot be loaded or cannot
/// price a test, the note says so and `mmloop ledger FILE predict --fit DIR` is the way to do it by
/// hand.
pub fn predict_before_calibrating(ledger: &mut Ledger, config_sha256: &str) -> PredictedBefore {
    let path = ledger.path().display().to_string();
    let hint = |why: String| PredictedBefore {
        note: Some(format!(
            "the new readouts were not predicted before calibrating ({why}); `mmloop ledger {path} predict --fit DIR` \
             predicts them with a fit of your choice"
        )),
        ..Default::default()
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
            return hint("the ledger holds no earlier fit of this config".into());
        }
        return PredictedBefore::default();
    };
    let model = match mmloop_mmm::optimize::FittedModel::load_checked(&dir) {
        Ok((m, _)) => m,
        Err(e) => return hint(format!("its latest fit {} cannot be loaded: {e}", dir.display())),
    };
    predict_with(ledger, &model, id).unwrap_or_else(|e| hint(format!("fit {id} in {}: {e}", dir.display())))
}

/// Predicts the ledger's unpredicted readouts with `model` (recorded as fit `fit_id`), records the
/// predictions and compares each with its readout at the default threshold.
pub fn predict_with(
    ledger: &mut Ledger,
    model: &mmloop_mmm::optimize::FittedModel,
    fit_id: i64,
) -> Result<PredictedBefore, CycleError> {
    let made = validate::predict_pending(ledger, model, fit_id)?;
    let threshold = validate::Threshold::default();
    let mut discrepancies = Vec::new();
    for p in &made {
        let e = ledger.experiment(p.experiment_id)?;
        if let Some(r) = &e.readout {
            discrepancies.push(validate::discrepancy(Some(e.id), &r.record, &p.prediction, p.in_sample, threshold)?);
        }
    }
    Ok(PredictedBefore { fit_id: Some(fit_id), discrepancies, note: None })
}
