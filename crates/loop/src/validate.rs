//! The MMM checked against every test: what a fit predicted for each read experiment, how far the
//! readout lies from it, whether a calibrated fit can reconcile the readout, and the history of
//! those checks.
//!
//! ## Prediction
//! A fit prices the readout's own test — its window, geos and spend change — through
//! [`mmloop_mmm::pricing`] (the calibration term's rule, [`HypotheticalTest::from_record`]): per
//! posterior draw d the implied lift L_d; the prediction is their mean, sd and 5 %/95 % quantiles.
//! It is an *out-of-sample* check only when the fit was not calibrated on that readout; a fit whose
//! config carries the same record (same channels, geos, window, measured lift and spend change;
//! the SE may differ, e.g. decayed) predicts it *in-sample*, and is labelled so.
//!
//! ## Discrepancy
//! `z = (y − mean) / √(sd² + SE²)`, y the readout and SE its standard error: under the model and
//! an unbiased test, y − mean has variance sd² + SE² (posterior predictive, normal approximation),
//! so |z| > 2 happens about 5 % of the time by chance. The threshold is configurable
//! ([`Threshold`]). The words give direction and size: measured and implied iROAS (lift per unit of
//! spend change) and the ratio implied / measured ("over-credits by 2.6×").
//!
//! ## Posterior predictive check of a calibrated fit
//! Gelman, Meng & Stern (1996) discrepancy T(y, θ) = |y − L(θ)|: with y_rep ~ N(L_d, SE²),
//! `p = (1/D) Σ_d P(|y_rep − L_d| ≥ |y − L_d|) = (1/D) Σ_d erfc(|y − L_d| / (SE·√2))` —
//! the inner probability is exact (Rao–Blackwellised), so p is deterministic. A calibrated fit
//! that cannot come near its own readout (p < [`STRAIN_LEVEL`]) strains against the test: with a
//! precise test that is more likely a misspecified model (e.g. spend that follows a demand signal
//! the model cannot see) than a noisy test. p is conservative (piles towards 0.5–1) for in-sample
//! data, so a small p is strong evidence.

use crate::ledger::{Experiment, FitEntry, Ledger, LedgerError, NewFit, Prediction, Status};
use mmloop_data::LiftTestRecord;
use mmloop_mmm::optimize::FittedModel;
use mmloop_mmm::pricing::{PricingError, price_record};
use serde::Serialize;
use std::collections::HashSet;
use std::path::Path;

/// Φ⁻¹(0.95): half-width of a 90 % normal interval in sds.
pub const Z90: f64 = 1.644_853_626_951_472_2;

/// Below this posterior predictive p-value a calibrated fit "strains against the test".
pub const STRAIN_LEVEL: f64 = 0.05;

/// Default |z| beyond which a readout and its prediction are flagged as disagreeing.
pub const DEFAULT_THRESHOLD: f64 = 2.0;

/// Why a check cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error(
        "{experiment} ({channels}, {start} to {end}): cannot price its test with this fit: {source}; \
         correct the record, discard it (`mmloop ledger FILE discard ID --why ...`), or use a fit whose model has it"
    )]
    Price {
        /// "experiment 7", or "the record" when it is not in a ledger.
        experiment: String,
        channels: String,
        start: String,
        end: String,
        #[source]
        source: Box<PricingError>,
    },
    #[error("{experiment}: {message}")]
    BadReadout { experiment: String, message: String },
    #[error("--threshold {value}: must be a finite number of standard deviations > 0 (default 2)")]
    Threshold { value: f64 },
    #[error("fit directory {dir}: {message}")]
    FitDir { dir: String, message: String },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// |z| threshold of the discrepancy flag: finite and > 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Threshold(f64);

impl Threshold {
    pub fn new(z: f64) -> Result<Self, ValidateError> {
        if z.is_finite() && z > 0.0 { Ok(Self(z)) } else { Err(ValidateError::Threshold { value: z }) }
    }
    pub fn value(self) -> f64 {
        self.0
    }
}

impl Default for Threshold {
    fn default() -> Self {
        Self(DEFAULT_THRESHOLD)
    }
}

/// A fit's prediction of a readout's lift (KPI units).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictedLift {
    pub mean: f64,
    pub sd: f64,
    pub q05: f64,
    pub q95: f64,
    /// The test's change in money as priced (for the implied iROAS).
    pub spend_change: f64,
    /// Implied lift per posterior draw, in the fit's draw order.
    #[serde(skip)]
    pub per_draw: Vec<f64>,
}

fn label(id: Option<i64>) -> String {
    id.map_or_else(|| "the record".to_string(), |i| format!("experiment {i}"))
}

fn price_err(id: Option<i64>, r: &LiftTestRecord, source: PricingError) -> ValidateError {
    ValidateError::Price {
        experiment: label(id),
        channels: if r.channels.is_empty() { "no channel".into() } else { r.channels.join("+") },
        start: r.start.clone(),
        end: r.end.clone(),
        source: Box::new(source),
    }
}

/// The implied lift of exactly the readout's test (window, geos, spend change) under `fit`.
pub fn predict_readout(fit: &FittedModel, record: &LiftTestRecord) -> Result<PredictedLift, ValidateError> {
    predict_with_id(fit, record, None)
}

fn predict_with_id(fit: &FittedModel, r: &LiftTestRecord, id: Option<i64>) -> Result<PredictedLift, ValidateError> {
    let lift = price_record(fit, r).map_err(|e| price_err(id, r, e))?;
    if ![lift.mean, lift.sd, lift.q05, lift.q95].iter().all(|v| v.is_finite()) {
        return Err(price_err(id, r, PricingError::Unsupported { what: "it: the implied lift is not finite".into() }));
    }
    Ok(PredictedLift {
        mean: lift.mean,
        sd: lift.sd,
        q05: lift.q05,
        q95: lift.q95,
        spend_change: lift.spend_change,
        per_draw: lift.per_draw,
    })
}

fn sorted(v: &[String]) -> Vec<&str> {
    let mut s: Vec<&str> = v.iter().map(String::as_str).collect();
    s.sort_unstable();
    s
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-300)
}

/// Whether `fit` was calibrated on this readout: its config carries a lift-test record with the
/// same channels, geos, window, measured lift and spend change (the SE is not compared: a ledger
/// fit calibrates on the decayed SE).
pub fn is_in_sample(fit: &FittedModel, record: &LiftTestRecord) -> bool {
    let anchored = anchor_prior(record).is_some_and(|a| {
        fit.spec
            .calibration
            .roi_priors
            .iter()
            .any(|r| r.channel == a.channel && close(r.mean, a.mean) && close(r.standard_error, a.standard_error))
    });
    anchored
        || fit.spec.calibration.lift_tests.iter().any(|c| {
            sorted(&c.channels) == sorted(&record.channels)
                && sorted(&c.geos) == sorted(&record.geos)
                && c.start == record.start
                && c.end == record.end
                && close(c.incremental_kpi, record.incremental_kpi)
                && close(c.spend_change, record.spend_change)
        })
}

/// The experiment-anchored ROI prior of a one-channel readout with a known spend change: mean =
/// its iROAS y / Δspend, standard error = SE / |Δspend| (the config's `[[calibration.roi_prior]]`,
/// moment-matched to a LogNormal by the model). `None` for a channel set or a zero spend change.
/// The iROAS of a test is the return on the test's increment; the prior is on the channel's ROI
/// over the fitted period: under saturation the two differ, so the anchor is an approximation the
/// user chooses knowingly.
pub fn anchor_prior(record: &LiftTestRecord) -> Option<mmloop_mmm::spec::RoiPriorRecord> {
    let s = record.spend_change;
    (record.channels.len() == 1 && s != 0.0 && s.is_finite() && record.standard_error > 0.0).then(|| {
        mmloop_mmm::spec::RoiPriorRecord {
            channel: record.channels[0].clone(),
            mean: record.incremental_kpi / s,
            standard_error: record.standard_error / s.abs(),
        }
    })
}

/// The remedy "anchor the channel on the experiment" applied to a spec: the readout becomes the
/// channel's ROI prior ([`anchor_prior`], replacing any ROI prior of that channel) and its lift
/// term is removed (the same evidence is not counted twice); the rest of the model adapts when
/// refitted. Errors name the experiment when the readout cannot anchor (a channel set, no spend
/// change, a negative iROAS that a positive ROI prior cannot hold).
pub fn anchored_spec(
    spec: &mmloop_mmm::spec::ModelSpec,
    experiment_id: Option<i64>,
    record: &LiftTestRecord,
) -> Result<mmloop_mmm::spec::ModelSpec, ValidateError> {
    let bad = |m: &str| ValidateError::BadReadout { experiment: label(experiment_id), message: m.to_string() };
    let a = anchor_prior(record)
        .ok_or_else(|| bad("only a one-channel readout with a known spend change can anchor an ROI prior"))?;
    if !a.mean.is_finite() || a.mean <= 0.0 {
        return Err(bad("its iROAS is not positive: an ROI prior cannot hold it; keep it as a lift test"));
    }
    let mut out = spec.clone();
    let same = |c: &LiftTestRecord| {
        sorted(&c.channels) == sorted(&record.channels)
            && sorted(&c.geos) == sorted(&record.geos)
            && c.start == record.start
            && c.end == record.end
            && close(c.incremental_kpi, record.incremental_kpi)
    };
    out.calibration.lift_tests.retain(|c| !same(c));
    out.calibration.roi_priors.retain(|r| r.channel != a.channel);
    out.calibration.roi_priors.push(a);
    Ok(out)
}

fn check_readout(id: Option<i64>, r: &LiftTestRecord) -> Result<(), ValidateError> {
    if !(r.incremental_kpi.is_finite() && r.standard_error.is_finite() && r.standard_error > 0.0) {
        return Err(ValidateError::BadReadout {
            experiment: label(id),
            message: format!(
                "readout {} ± {}: needs a finite lift and a standard error > 0",
                r.incremental_kpi, r.standard_error
            ),
        });
    }
    Ok(())
}

/// A readout against a prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Discrepancy {
    pub experiment_id: Option<i64>,
    pub channels: Vec<String>,
    /// The readout y and its SE.
    pub measured: f64,
    pub standard_error: f64,
    /// The prediction.
    pub predicted: f64,
    pub predicted_sd: f64,
    pub predicted_q05: f64,
    pub predicted_q95: f64,
    /// (y − predicted) / √(sd² + SE²).
    pub z: f64,
    pub threshold: f64,
    /// |z| > threshold.
    pub flagged: bool,
    /// The fit had been calibrated on this readout.
    pub in_sample: bool,
    /// The record's spend change (money); 0 = unknown.
    pub spend_change: f64,
    /// y / spend change and predicted / spend change, when the spend change is known.
    pub measured_iroas: Option<f64>,
    pub implied_iroas: Option<f64>,
    /// predicted / measured, when both have the same sign and are not zero.
    pub ratio: Option<f64>,
}

/// Compares a readout with a prediction (see the module documentation for z).
pub fn discrepancy(
    experiment_id: Option<i64>,
    record: &LiftTestRecord,
    p: &Prediction,
    in_sample: bool,
    threshold: Threshold,
) -> Result<Discrepancy, ValidateError> {
    check_readout(experiment_id, record)?;
    let (y, se) = (record.incremental_kpi, record.standard_error);
    let z = (y - p.mean) / (p.sd * p.sd + se * se).sqrt();
    let s = record.spend_change;
    let iroas = |v: f64| (s != 0.0 && s.is_finite()).then(|| v / s);
    let ratio = (y != 0.0 && p.mean != 0.0 && (y > 0.0) == (p.mean > 0.0)).then(|| p.mean / y);
    Ok(Discrepancy {
        experiment_id,
        channels: record.channels.clone(),
        measured: y,
        standard_error: se,
        predicted: p.mean,
        predicted_sd: p.sd,
        predicted_q05: p.q05,
        predicted_q95: p.q95,
        z,
        threshold: threshold.value(),
        flagged: z.abs() > threshold.value(),
        in_sample,
        spend_change: s,
        measured_iroas: iroas(y),
        implied_iroas: iroas(p.mean),
        ratio,
    })
}

/// A number with thousands separators at a precision that suits its size: every command's
/// formatter ([`mmloop_data::human::amount`]), under the name the loop's text uses.
pub use mmloop_data::human::amount as fmt_num;

fn fmt_p(p: f64) -> String {
    if p < 0.001 { format!("{p:.1e}") } else { format!("{p:.3}") }
}

fn fmt_z(z: f64) -> String {
    format!("{z:.1}").replace('-', "−")
}

impl Discrepancy {
    /// One plain sentence: "experiment 3 (tv): the test measured 4,700 incremental sales (iROAS
    /// 0.09); the model expected 12,300 (0.25): the model over-credits tv by 2.6×, z = −3.1".
    pub fn describe(&self, kpi: &str) -> String {
        let ch = if self.channels.is_empty() { "the channel".to_string() } else { self.channels.join("+") };
        let ir = |v: Option<f64>| v.map(|x| format!(" (iROAS {})", fmt_num(x))).unwrap_or_default();
        let mut s = format!(
            "{} ({ch}): the test measured {} incremental {kpi}{} ± {} SE; the model expected {}{} \
             [90 % {} to {}]",
            label(self.experiment_id),
            fmt_num(self.measured),
            ir(self.measured_iroas),
            fmt_num(self.standard_error),
            fmt_num(self.predicted),
            self.implied_iroas.map(|x| format!(" ({})", fmt_num(x))).unwrap_or_default(),
            fmt_num(self.predicted_q05),
            fmt_num(self.predicted_q95),
        );
        let verdict = if !self.flagged {
            format!("consistent, z = {} (|z| ≤ {})", fmt_z(self.z), self.threshold)
        } else {
            match self.ratio {
                Some(r) if r >= 1.0 => format!("the model over-credits {ch} by {r:.1}×, z = {}", fmt_z(self.z)),
                Some(r) => format!("the model under-credits {ch} by {:.1}×, z = {}", 1.0 / r, fmt_z(self.z)),
                None => format!(
                    "the model expected {} and the test measured {}: opposite signs, z = {}",
                    if self.predicted >= 0.0 { "a gain" } else { "a loss" },
                    if self.measured >= 0.0 { "a gain" } else { "a loss" },
                    fmt_z(self.z)
                ),
            }
        };
        s.push_str(": ");
        s.push_str(&verdict);
        if self.flagged {
            s.push_str(" — FLAGGED");
        }
        if self.in_sample {
            s.push_str(" (in-sample: the fit was calibrated on this readout, not an out-of-sample check)");
        }
        s
    }
}

/// Posterior predictive p-value of a lift term: `(1/D) Σ_d erfc(|y − L_d| / (SE·√2))`, the mean
/// over draws of P(|y_rep − L_d| ≥ |y − L_d|), y_rep ~ N(L_d, SE²). `None` without draws or with
/// SE ≤ 0.
pub fn posterior_predictive_p(per_draw: &[f64], observed: f64, se: f64) -> Option<f64> {
    if per_draw.is_empty() || !(se > 0.0 && se.is_finite()) {
        return None;
    }
    let s =
        per_draw.iter().map(|l| mmloop_geolift::stats::erfc((observed - l).abs() / (se * std::f64::consts::SQRT_2)));
    Some(s.sum::<f64>() / per_draw.len() as f64)
}

/// A fit checked against one readout: the discrepancy and the posterior predictive p-value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitCheck {
    pub discrepancy: Discrepancy,
    pub p_value: f64,
    /// p < [`STRAIN_LEVEL`] for a fit calibrated on the readout (in-sample): the fit cannot
    /// reconcile a test it has seen. Never set for a fit that has not seen the test: its
    /// disagreement is the discrepancy flag, and calibrating on the test comes first.
    pub strained: bool,
}

/// Checks `fit` against one readout.
pub fn check_readout_against(
    fit: &FittedModel,
    experiment_id: Option<i64>,
    record: &LiftTestRecord,
    threshold: Threshold,
) -> Result<FitCheck, ValidateError> {
    check_readout(experiment_id, record)?;
    let pred = predict_with_id(fit, record, experiment_id)?;
    let p = Prediction {
        fit_id: 0,
        experiment_id: experiment_id.unwrap_or(0),
        mean: pred.mean,
        sd: pred.sd,
        q05: pred.q05,
        q95: pred.q95,
    };
    let d = discrepancy(experiment_id, record, &p, is_in_sample(fit, record), threshold)?;
    let p_value = posterior_predictive_p(&pred.per_draw, record.incremental_kpi, record.standard_error)
        .ok_or_else(|| price_err(experiment_id, record, PricingError::NoDraws))?;
    let strained = d.in_sample && p_value < STRAIN_LEVEL;
    Ok(FitCheck { discrepancy: d, p_value, strained })
}

/// What a user can do when a calibrated fit strains against a test, in plain words.
pub fn remedies(check: &FitCheck) -> Vec<String> {
    let d = &check.discrepancy;
    let ch = d.channels.first().cloned().unwrap_or_else(|| "the channel".into());
    let mut out = Vec::new();
    if let (Some(iroas), true) = (d.measured_iroas, d.spend_change != 0.0) {
        let se = d.standard_error / d.spend_change.abs();
        out.push(format!(
            "anchor {ch} on the experiment: its ROI prior from the readout, so the rest of the model adapts \
             (in the config: [[calibration.roi_prior]] channel = {ch:?}, mean = {iroas:.4}, standard_error = {se:.4}; \
             ROI in the KPI per unit of spend: with a revenue-per-KPI column, times the revenue per KPI; \
             the prior is on the channel's average ROI, the test measured the return on its increment: \
             under strong saturation run check-fit on the refit)"
        ));
    } else {
        out.push(format!(
            "anchor {ch} on the experiment: set its ROI prior ([[calibration.roi_prior]]) from the readout"
        ));
    }
    out.push(format!(
        "add a control for the demand signal that drives {ch}'s spend (e.g. search volume, category demand, \
         seasonality of the market) as a [[control]] column: spend that follows demand the model cannot see \
         makes the model credit {ch} with that demand"
    ));
    out.push(
        "check the test itself (window, geos, spend change as recorded); discard it only if it was flawed \
         (`mmloop ledger FILE discard ID --why ...`), never to make the strain go away"
            .to_string(),
    );
    out
}

/// Checks `fit` against every read experiment of the ledger (oldest first). The first
/// experiment that cannot be priced stops the check with an error naming it.
pub fn check_fit(ledger: &Ledger, fit: &FittedModel, threshold: Threshold) -> Result<Vec<FitCheck>, ValidateError> {
    let mut out = Vec::new();
    for e in ledger.experiments()? {
        if let (Status::Read, Some(r)) = (e.status, &e.readout) {
            out.push(check_readout_against(fit, Some(e.id), &r.record, threshold)?);
        }
    }
    Ok(out)
}

/// `check-fit` as text: per experiment the sentence, the p-value and, where it strains, remedies.
pub fn format_checks(checks: &[FitCheck], kpi: &str) -> String {
    let mut s = String::new();
    if checks.is_empty() {
        s.push_str("no read experiments to check\n");
        return s;
    }
    for c in checks {
        s.push_str(&c.discrepancy.describe(kpi));
        s.push('\n');
        let p = fmt_p(c.p_value);
        if c.strained {
            s.push_str(&format!(
                "  posterior predictive p = {p} < {STRAIN_LEVEL}: the calibrated fit STRAINS AGAINST THE TEST — with a \
                 precise test, a likely sign of a misspecified model rather than a noisy test. Remedies:\n"
            ));
            for (i, r) in remedies(c).iter().enumerate() {
                s.push_str(&format!("    {}. {r}\n", i + 1));
            }
        } else if c.discrepancy.in_sample {
            s.push_str(&format!("  posterior predictive p = {p}: the calibrated fit can reconcile the test\n"));
        } else if c.p_value < STRAIN_LEVEL {
            s.push_str(&format!(
                "  posterior predictive p = {p}: this fit was not calibrated on the test and cannot reproduce it; \
                 calibrate on it (add it to [calibration] or `mmloop fit --ledger`) and check the calibrated fit — \
                 if that still strains, suspect the model, not the test\n"
            ));
        } else {
            s.push_str(&format!(
                "  posterior predictive p = {p}: consistent with the test (this fit was not calibrated on it)\n"
            ));
        }
    }
    let (n_flag, n_strain) =
        (checks.iter().filter(|c| c.discrepancy.flagged).count(), checks.iter().filter(|c| c.strained).count());
    s.push_str(&format!(
        "{}: {n_flag} flagged, {n_strain} straining\n",
        mmloop_data::human::count(checks.len(), "experiment")
    ));
    s
}

/// One prediction made by [`predict_pending`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingPrediction {
    pub experiment_id: i64,
    pub prediction: Prediction,
    pub in_sample: bool,
}

/// The read (not discarded) experiments of the ledger that no fit has predicted yet.
pub fn unpredicted_experiments(ledger: &Ledger) -> Result<Vec<Experiment>, ValidateError> {
    let predicted: HashSet<i64> = ledger.all_predictions()?.iter().map(|p| p.prediction.experiment_id).collect();
    Ok(ledger
        .experiments()?
        .into_iter()
        .filter(|e| e.status == Status::Read && e.readout.is_some() && !predicted.contains(&e.id))
        .collect())
}

/// Prices, with `fit`, every read experiment of the ledger that has no prediction yet, without
/// writing anything (the predictions carry `fit_id` 0 until recorded). An experiment that cannot
/// be priced is an error naming it.
pub fn pending_predictions(ledger: &Ledger, fit: &FittedModel) -> Result<Vec<PendingPrediction>, ValidateError> {
    let mut out = Vec::new();
    for e in unpredicted_experiments(ledger)? {
        let Some(r) = e.readout.as_ref() else { continue };
        let p = predict_with_id(fit, &r.record, Some(e.id))?;
        out.push(PendingPrediction {
            experiment_id: e.id,
            prediction: Prediction { fit_id: 0, experiment_id: e.id, mean: p.mean, sd: p.sd, q05: p.q05, q95: p.q95 },
            in_sample: is_in_sample(fit, &r.record),
        });
    }
    Ok(out)
}

/// Records priced predictions as the fit `fit_id`'s, in one transaction.
pub fn record_pending(
    ledger: &mut Ledger,
    fit_id: i64,
    pending: &mut [PendingPrediction],
) -> Result<(), ValidateError> {
    for p in pending.iter_mut() {
        p.prediction.fit_id = fit_id;
    }
    let items: Vec<(Prediction, bool)> = pending.iter().map(|p| (p.prediction, p.in_sample)).collect();
    if !items.is_empty() {
        ledger.record_predictions(&items)?;
    }
    Ok(())
}

/// Predicts, with `fit` (recorded in the ledger as `fit_id`), every read experiment that has no
/// prediction yet, and records them in one transaction labelled in- or out-of-sample
/// ([`is_in_sample`]). All are priced before anything is written: an experiment that cannot be
/// priced is an error naming it, and nothing is recorded. Call it before calibrating on the
/// readouts, so the predictions are out-of-sample.
pub fn predict_pending(
    ledger: &mut Ledger,
    fit: &FittedModel,
    fit_id: i64,
) -> Result<Vec<PendingPrediction>, ValidateError> {
    let mut out = pending_predictions(ledger, fit)?;
    record_pending(ledger, fit_id, &mut out)?;
    Ok(out)
}

/// The fit in `dir` as the ledger records it: the config and data hashes from its
/// `provenance.json` (else the SHA-256 of its saved `config.toml` and of the data file), the method,
/// the diagnostics and per-channel summary from `summary.json`, and the directory. Returns the id
/// of the fit already recorded with the same directory and hashes, or records it.
pub fn register_fit(ledger: &mut Ledger, dir: &Path, fit: &FittedModel) -> Result<(i64, bool), ValidateError> {
    let dir_s = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()).display().to_string();
    let err = |m: String| ValidateError::FitDir { dir: dir.display().to_string(), message: m };
    let prov = dir.join(mmloop_mmm::output::PROVENANCE);
    let (config_hash, data_hash) = if prov.exists() {
        let text = std::fs::read_to_string(&prov).map_err(|e| err(format!("reading {}: {e}", prov.display())))?;
        let p: mmloop_mmm::output::FitProvenance =
            serde_json::from_str(&text).map_err(|e| err(format!("{}: {e}", prov.display())))?;
        (p.config.sha256, p.data.sha256)
    } else {
        let h = |p: &Path| mmloop_data::hash_file(p).map_err(|e| err(format!("hashing {}: {e}", p.display())));
        (h(&dir.join("config.toml"))?, h(&fit.spec.data.path)?)
    };
    let same = |f: &FitEntry| {
        f.fit.fit_dir.as_deref() == Some(dir_s.as_str())
            && f.fit.config_hash == config_hash
            && f.fit.data_hash == data_hash
    };
    if let Some(f) = ledger.fits()?.iter().find(|f| same(f)) {
        return Ok((f.id, false));
    }
    let summary: serde_json::Value = match std::fs::read_to_string(dir.join("summary.json")) {
        Ok(t) => serde_json::from_str(&t).map_err(|e| err(format!("summary.json: {e}")))?,
        Err(_) => serde_json::Value::Null,
    };
    let nf = NewFit {
        config_hash,
        data_hash,
        method: fit.spec.fit.method.to_string(),
        diagnostics: summary.get("diagnostics").cloned().unwrap_or(serde_json::json!({})),
        roi_summary: summary.get("channels").cloned().unwrap_or(serde_json::json!([])),
        fit_dir: Some(dir_s),
    };
    Ok((ledger.record_fit(&nf)?, true))
}

/// One read experiment in the history: its first out-of-sample prediction (else its first
/// in-sample one, labelled and left out of the scores) against its readout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryRow {
    pub experiment_id: i64,
    pub channels: Vec<String>,
    pub start: String,
    pub end: String,
    /// When the readout was recorded (UTC): the history's time axis.
    pub read_out_at: String,
    pub fit_id: i64,
    pub in_sample: bool,
    pub measured: f64,
    pub standard_error: f64,
    pub predicted: f64,
    pub predicted_sd: f64,
    pub predicted_q05: f64,
    pub predicted_q95: f64,
    pub z: f64,
    /// The readout lies in the 90 % prediction interval of the readout,
    /// mean ± Φ⁻¹(0.95)·√(sd² + SE²) (⇔ |z| ≤ 1.645).
    pub covered: bool,
    /// Over the out-of-sample rows up to and including this one (none before the first).
    pub running_coverage: Option<f64>,
    pub running_mean_abs_z: Option<f64>,
}

/// Coverage and mean |z| of a set of out-of-sample rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Score {
    pub n: usize,
    pub coverage: f64,
    pub mean_abs_z: f64,
}

impl Score {
    fn of<'a>(rows: impl Iterator<Item = &'a HistoryRow>) -> Option<Self> {
        let (mut n, mut cov, mut z) = (0usize, 0usize, 0.0);
        for r in rows {
            n += 1;
            cov += r.covered as usize;
            z += r.z.abs();
        }
        (n > 0).then(|| Self { n, coverage: cov as f64 / n as f64, mean_abs_z: z / n as f64 })
    }
}

/// Predicted vs measured for every read test, oldest readout first, with the scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct History {
    pub rows: Vec<HistoryRow>,
    /// Read experiments with no prediction at all.
    pub unpredicted: Vec<i64>,
    /// All out-of-sample rows; the older and the newer half (by readout time).
    pub overall: Option<Score>,
    pub older_half: Option<Score>,
    pub newer_half: Option<Score>,
}

/// Builds the history from the ledger.
pub fn history(ledger: &Ledger) -> Result<History, ValidateError> {
    let preds = ledger.all_predictions()?;
    // by experiment, in fit order (all_predictions sorts by experiment then fit)
    let mut by_exp: std::collections::HashMap<i64, Vec<&crate::ledger::PredictionRow>> =
        std::collections::HashMap::new();
    for p in &preds {
        by_exp.entry(p.prediction.experiment_id).or_default().push(p);
    }
    let mut read: Vec<Experiment> =
        ledger.experiments()?.into_iter().filter(|e| e.status == Status::Read && e.readout.is_some()).collect();
    read.sort_by(|a, b| {
        fn t(e: &Experiment) -> &str {
            e.readout.as_ref().map_or("", |r| r.read_out_at.as_str())
        }
        t(a).cmp(t(b)).then(a.id.cmp(&b.id))
    });
    let (mut rows, mut unpredicted) = (Vec::new(), Vec::new());
    for e in &read {
        let Some(r) = &e.readout else { continue };
        let mine: &[&crate::ledger::PredictionRow] = by_exp.get(&e.id).map_or(&[], Vec::as_slice);
        // predictions come ordered by fit id: the first out-of-sample one, else the first
        let Some(p) = mine.iter().find(|p| !p.in_sample).or(mine.first()).copied() else {
            unpredicted.push(e.id);
            continue;
        };
        let d = discrepancy(Some(e.id), &r.record, &p.prediction, p.in_sample, Threshold::default())?;
        rows.push(HistoryRow {
            experiment_id: e.id,
            channels: e.channels.clone(),
            start: e.start.clone(),
            end: e.end.clone(),
            read_out_at: r.read_out_at.clone(),
            fit_id: p.prediction.fit_id,
            in_sample: p.in_sample,
            measured: d.measured,
            standard_error: d.standard_error,
            predicted: d.predicted,
            predicted_sd: d.predicted_sd,
            predicted_q05: d.predicted_q05,
            predicted_q95: d.predicted_q95,
            z: d.z,
            covered: d.z.abs() <= Z90,
            running_coverage: None,
            running_mean_abs_z: None,
        });
    }
    let (mut n, mut cov, mut z) = (0usize, 0usize, 0.0);
    for row in rows.iter_mut() {
        if !row.in_sample {
            n += 1;
            cov += row.covered as usize;
            z += row.z.abs();
        }
        if n > 0 {
            row.running_coverage = Some(cov as f64 / n as f64);
            row.running_mean_abs_z = Some(z / n as f64);
        }
    }
    let oos: Vec<&HistoryRow> = rows.iter().filter(|r| !r.in_sample).collect();
    let half = oos.len() / 2;
    let (older_half, newer_half) = if oos.len() >= 2 {
        (Score::of(oos[..half].iter().copied()), Score::of(oos[half..].iter().copied()))
    } else {
        (None, None)
    };
    Ok(History { overall: Score::of(oos.iter().copied()), rows, unpredicted, older_half, newer_half })
}

/// The history as a table with its scores.
pub fn format_history(h: &History) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "{:>4} {:<16} {:<23} {:>5} {:>12} {:>10} {:>12} {:>10} {:>7} {:>4} {:>8} {:>8}\n",
        "exp", "channels", "window", "fit", "measured", "SE", "predicted", "pred sd", "z", "in90", "cov", "mean|z|"
    ));
    for r in &h.rows {
        let run = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or_else(|| "-".to_string(), f);
        s.push_str(&format!(
            "{:>4} {:<16} {:<23} {:>5} {:>12} {:>10} {:>12} {:>10} {:>7} {:>4} {:>8} {:>8}{}\n",
            r.experiment_id,
            r.channels.join("+"),
            format!("{}..{}", r.start, r.end),
            r.fit_id,
            fmt_num(r.measured),
            fmt_num(r.standard_error),
            fmt_num(r.predicted),
            fmt_num(r.predicted_sd),
            fmt_z(r.z),
            if r.covered { "yes" } else { "no" },
            run(r.running_coverage, &|v| format!("{:.0}%", 100.0 * v)),
            run(r.running_mean_abs_z, &|v| format!("{v:.2}")),
            if r.in_sample { "  in-sample (not scored)" } else { "" },
        ));
    }
    let score = |name: &str, sc: &Option<Score>| match sc {
        Some(x) => format!(
            "{name}: {} out-of-sample test(s), 90 % interval coverage {:.0}% (nominal 90 %), mean |z| {:.2} (≈0.80 if calibrated)\n",
            x.n,
            100.0 * x.coverage,
            x.mean_abs_z
        ),
        None => String::new(),
    };
    s.push_str(&score("all", &h.overall));
    s.push_str(&score("older half", &h.older_half));
    s.push_str(&score("newer half", &h.newer_half));
    if h.overall.is_none() {
        s.push_str("no out-of-sample prediction yet: `mmloop ledger FILE predict --fit DIR` before calibrating on new readouts\n");
    }
    if !h.unpredicted.is_empty() {
        let ids: Vec<String> = h.unpredicted.iter().map(|i| i.to_string()).collect();
        s.push_str(&format!("read experiment(s) without a prediction: {}\n", ids.join(", ")));
    }
    s
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// The history's rows as CSV (full precision).
pub fn history_csv(h: &History) -> String {
    let mut s = String::from(
        "experiment_id,channels,start,end,read_out_at,fit_id,in_sample,measured,standard_error,predicted,\
         predicted_sd,predicted_q05,predicted_q95,z,covered,running_coverage,running_mean_abs_z\n",
    );
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for r in &h.rows {
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            r.experiment_id,
            csv_field(&r.channels.join(";")),
            csv_field(&r.start),
            csv_field(&r.end),
            r.read_out_at,
            r.fit_id,
            r.in_sample,
            r.measured,
            r.standard_error,
            r.predicted,
            r.predicted_sd,
            r.predicted_q05,
            r.predicted_q95,
            r.z,
            r.covered,
            opt(r.running_coverage),
            opt(r.running_mean_abs_z),
        ));
    }
    s
}

#[cfg(test)]
mod tests;
