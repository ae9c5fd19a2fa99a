//! Calibrating a fit on the ledger: every read (not discarded) readout becomes the window-aware
//! lift-test likelihood term the MMM already has, with its standard error inflated by its age
//! ([`crate::decay`]):
//!
//! ```text
//! SE²_eff = SE² · exp(λ_c · t),   λ_c = ln 2 / h_c,   t = as_of − readout end (weeks)
//! ```
//!
//! - A readout on a set of channels stays one joint term; its half-life is the shortest of its
//!   channels' ([`HalfLives::for_channels`]). Several readouts on one channel are independent terms
//!   (the likelihood multiplies them).
//! - The age runs from the readout window's last period to `as_of` (the data's last period unless
//!   given), in the data's own notation: ISO dates in days / 7, numeric periods in steps of the time
//!   unit. A readout ending after `as_of` is refused (no negative ages, no clamping).
//! - Config readouts (`[calibration] lift_tests`) enter undecayed, as written; a readout that is both
//!   in the config and in the ledger (same [`record_hash`]) enters once, as the ledger's decayed term.
//! - A readout so old that its variance overflows (more than ~1000 half-lives) carries no weight and
//!   is left out, with a note.
//!
//! Due for re-test ([`channel_evidence`]): a channel whose experiments no longer pin its ROI, i.e.
//! whose posterior ROI sd with its experiments is more than [`RETEST_SD_RATIO`] (0.8) of the sd
//! without them (a Laplace fit without that channel's readouts), or that has no readout at all.

use crate::decay::{Age, DecayError, HalfLife, HalfLifeSource, HalfLives, TimeUnit, decayed_se, variance_inflation};
use crate::ledger::{Ledger, LedgerError, Status, record_hash};
use mmloop_data::LiftTestRecord;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

/// A channel is due for re-test when `sd_with / sd_without` of its ROI exceeds this: its decayed
/// experiments shrink the posterior sd by less than 20 %.
pub const RETEST_SD_RATIO: f64 = 0.8;

/// What went wrong turning ledger readouts into calibration terms.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("ledger {path}: experiment {id}: {source}")]
    Age { path: PathBuf, id: i64, source: DecayError },
    #[error(
        "ledger {path}: experiment {id} names channel {channel:?}, which is not in the model (channels: {known}); \
         discard it (`mmloop ledger {path} discard {id} --why ...`) or fit a model with that channel"
    )]
    UnknownChannel { path: PathBuf, id: i64, channel: String, known: String },
    #[error(
        "ledger {path}: experiment {id} names no channel, so no fit can calibrate on it; discard it \
         (`mmloop ledger {path} discard {id} --why ...`) and add the readout again with its channel"
    )]
    NoChannel { path: PathBuf, id: i64 },
    #[error("{option}: no channel named {channel:?} in the model; use one of: {known}")]
    HalfLifeChannel { option: String, channel: String, known: String },
    #[error("{option}: half-life must be a positive number of weeks, got {value}")]
    BadHalfLife { option: String, value: String },
    #[error("--half-life {text:?}: expected CHANNEL=WEEKS, for example tv=52")]
    HalfLifeSyntax { text: String },
    #[error(
        "--ledger-as roi-prior: ledger {path}: experiment {id} ({channel}) has no spend change, so it has no ROI; \
         use --ledger-as likelihood, or discard it"
    )]
    NoSpendChange { path: PathBuf, id: i64, channel: String },
    #[error(
        "--ledger-as roi-prior: channel {channel}: its readouts (experiments {ids}) combine to an ROI of {mean} ± {sd}; \
         a LogNormal ROI prior needs a positive ROI. Use --ledger-as likelihood (a lift term takes any sign)"
    )]
    NonPositiveRoi { channel: String, ids: String, mean: f64, sd: f64 },
}

/// How ledger readouts enter the fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LedgerAs {
    /// The window-aware lift-test likelihood term (default).
    Likelihood,
    /// A moment-matched LogNormal ROI prior per channel (single-channel readouts; a joint readout
    /// stays a likelihood term).
    RoiPrior,
}

/// A channel's ROI prior made from its (aged) ledger readouts.
///
/// Each single-channel readout i measures the channel's return as r_i = incremental KPI / spend
/// change with standard error s_i = SE_eff,i / |spend change|. Several are independent Gaussian
/// measurements of one ROI, so their product is Gaussian with precision Σ 1/s_i² and mean
/// Σ (r_i/s_i²) / Σ 1/s_i² (the same information the independent likelihood terms carry); that
/// mean and sd are moment-matched to a LogNormal by `Prior::lognormal_from_moments`
/// (σ² = ln(1 + sd²/mean²), μ = ln mean − σ²/2). Caveat, as in Meridian's use of experiment ROI
/// as its `roi_m` prior: a test measures the return of its window at its spend level, which the
/// prior treats as the channel's ROI over the fitted period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LedgerRoiPrior {
    pub channel: String,
    pub mean: f64,
    pub standard_error: f64,
    pub experiments: Vec<i64>,
}

/// How one ledger readout entered the fit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgeInfo {
    pub experiment_id: i64,
    pub record_hash: String,
    pub channels: Vec<String>,
    /// The readout window's last period and the time its age is measured to.
    pub end: String,
    pub as_of: String,
    pub age_weeks: f64,
    pub half_life_weeks: f64,
    /// exp(λ t): SE²_eff / SE².
    pub variance_inflation: f64,
    pub standard_error: f64,
    pub effective_se: f64,
}

/// Validated half-lives: the class defaults, then the config's `[calibration] half_lives`, then
/// the command line's `--half-life CHANNEL=WEEKS` (the last word wins). Every channel named must be
/// a model channel; errors name the key or option.
pub fn half_lives(
    model_channels: &[String],
    config: &BTreeMap<String, f64>,
    cli: &[String],
) -> Result<HalfLives, CalibrateError> {
    let known = model_channels.join(", ");
    let mut h = HalfLives::default();
    let mut set = |option: String, channel: &str, weeks: f64, shown: String| -> Result<(), CalibrateError> {
        if !model_channels.iter().any(|c| c == channel) {
            return Err(CalibrateError::HalfLifeChannel { option, channel: channel.into(), known: known.clone() });
        }
        HalfLife::named(weeks, &option)
            .map_err(|_| CalibrateError::BadHalfLife { option: option.clone(), value: shown })?;
        h.set_channel(channel, weeks).map_err(|_| CalibrateError::BadHalfLife { option, value: weeks.to_string() })
    };
    for (ch, &w) in config {
        set(format!("[calibration] half_lives.{ch}"), ch, w, w.to_string())?;
    }
    for text in cli {
        let (ch, w) = text.split_once('=').ok_or_else(|| CalibrateError::HalfLifeSyntax { text: text.clone() })?;
        let (ch, w_text) = (ch.trim(), w.trim());
        let weeks = w_text.parse::<f64>().unwrap_or(f64::NAN);
        set(format!("--half-life {ch}"), ch, weeks, w_text.to_string())?;
    }
    Ok(h)
}

/// The ledger's read readouts (discarded ones left out), in experiment-id order, each with its
/// standard error decayed by its age at `as_of` (see the module documentation). Ages are measured
/// with [`Age::between`]; a readout ending after `as_of` is an error naming the experiment.
pub fn ledger_calibration(
    ledger: &Ledger,
    half_lives: &HalfLives,
    as_of: &str,
    unit: TimeUnit,
) -> Result<Vec<(LiftTestRecord, AgeInfo)>, CalibrateError> {
    let path = ledger.path().to_path_buf();
    let mut out = Vec::new();
    for e in ledger.experiments()? {
        if e.status != Status::Read {
            continue;
        }
        let Some(readout) = e.readout else { continue };
        let mut rec = readout.record;
        let Some(h) = half_lives.for_channels(&rec.channels) else {
            return Err(CalibrateError::NoChannel { path, id: e.id });
        };
        let age = Age::between(&rec.end, as_of, unit).map_err(|source| CalibrateError::Age {
            path: path.clone(),
            id: e.id,
            source,
        })?;
        let se = rec.standard_error;
        let effective_se = decayed_se(se, age, h);
        rec.standard_error = effective_se;
        // the fit's saved config.toml copies its records; the tag lets a later `fit --ledger` on
        // that config recognise this (aged, so differently hashed) copy as the ledger's readout
        rec.source = format!("{} {}", rec.source, ledger_tag(&readout.record_hash)).trim().to_string();
        let info = AgeInfo {
            experiment_id: e.id,
            record_hash: readout.record_hash,
            channels: rec.channels.clone(),
            end: rec.end.clone(),
            as_of: as_of.to_string(),
            age_weeks: age.in_weeks(),
            half_life_weeks: h.in_weeks(),
            variance_inflation: variance_inflation(age, h),
            standard_error: se,
            effective_se,
        };
        out.push((rec, info));
    }
    Ok(out)
}

/// The tag `[ledger record <sha256>]` appended to the `source` of a record taken from the ledger.
pub fn ledger_tag(record_hash: &str) -> String {
    format!("[ledger record {record_hash}]")
}

/// The ledger record hash a record's `source` is tagged with, if any.
fn tagged_hash(source: &str) -> Option<&str> {
    let i = source.rfind("[ledger record ")? + "[ledger record ".len();
    source.get(i..)?.split(']').next()
}

/// The lift tests a fit calibrates on: the config's, then the ledger's.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Combined {
    pub records: Vec<LiftTestRecord>,
    /// The ledger readouts that entered, with their ages.
    pub used: Vec<AgeInfo>,
    /// What was merged or left out, in words.
    pub notes: Vec<String>,
    /// ROI priors made from single-channel readouts (`--ledger-as roi-prior`).
    pub roi_priors: Vec<LedgerRoiPrior>,
}

/// Combines the config's lift tests (undecayed) with the ledger's decayed readouts. A ledger
/// readout naming a channel the model lacks is an error; one also in the config (same record hash,
/// or a copy tagged with [`ledger_tag`] by an earlier fit) replaces the config's copy (noted); one whose effective SE overflowed is left out (noted).
///
/// With [`LedgerAs::RoiPrior`], single-channel readouts become one [`LedgerRoiPrior`] per channel
/// instead of lift terms (joint readouts stay lift terms).
pub fn combine(
    config: &[LiftTestRecord],
    ledger: Vec<(LiftTestRecord, AgeInfo)>,
    model_channels: &[String],
    ledger_path: &std::path::Path,
    mode: LedgerAs,
) -> Result<Combined, CalibrateError> {
    let mut notes = Vec::new();
    // channel → (Σ 1/s², Σ r/s², experiment ids, the first readout's (r, s))
    type Pooled = (f64, f64, Vec<i64>, (f64, f64));
    let mut precision: BTreeMap<String, Pooled> = BTreeMap::new();
    let mut used = Vec::new();
    let mut from_ledger = Vec::new();
    let mut in_ledger: HashSet<String> = HashSet::new();
    for (rec, info) in ledger {
        for ch in &rec.channels {
            if !model_channels.contains(ch) {
                return Err(CalibrateError::UnknownChannel {
                    path: ledger_path.to_path_buf(),
                    id: info.experiment_id,
                    channel: ch.clone(),
                    known: model_channels.join(", "),
                });
            }
        }
        if !info.effective_se.is_finite() {
            notes.push(format!(
                "experiment {} is {:.0} weeks old ({:.0} half-lives): it carries no weight and is left out",
                info.experiment_id,
                info.age_weeks,
                info.age_weeks / info.half_life_weeks
            ));
            in_ledger.insert(info.record_hash.clone());
            continue;
        }
        in_ledger.insert(info.record_hash.clone());
        if mode == LedgerAs::RoiPrior && rec.channels.len() == 1 {
            let ch = rec.channels[0].clone();
            if rec.spend_change == 0.0 {
                return Err(CalibrateError::NoSpendChange {
                    path: ledger_path.to_path_buf(),
                    id: info.experiment_id,
                    channel: ch,
                });
            }
            let r = rec.incremental_kpi / rec.spend_change;
            let se = info.effective_se / rec.spend_change.abs();
            let e = precision.entry(ch).or_insert((0.0, 0.0, Vec::new(), (r, se)));
            e.0 += 1.0 / (se * se);
            e.1 += r / (se * se);
            e.2.push(info.experiment_id);
            used.push(info);
            continue;
        }
        from_ledger.push(rec);
        used.push(info);
    }
    let mut roi_priors = Vec::new();
    for (channel, (p, pr, experiments, single)) in precision {
        // one readout: its own figures (the precision round trip could move them by an ulp)
        let (mean, sd) = if experiments.len() == 1 { single } else { (pr / p, p.sqrt().recip()) };
        let ids = experiments.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
        if !(mean > 0.0 && mean.is_finite() && sd.is_finite() && sd > 0.0) {
            return Err(CalibrateError::NonPositiveRoi { channel, ids, mean, sd });
        }
        notes.push(format!(
            "channel {channel}: ROI prior LogNormal moment-matched to {mean:.4} ± {sd:.4} from experiment(s) {ids}"
        ));
        roi_priors.push(LedgerRoiPrior { channel, mean, standard_error: sd, experiments });
    }
    let mut records = Vec::with_capacity(config.len() + from_ledger.len());
    for (i, r) in config.iter().enumerate() {
        if in_ledger.contains(&record_hash(r)) || tagged_hash(&r.source).is_some_and(|h| in_ledger.contains(h)) {
            notes.push(format!(
                "config lift test {} ({:?} {}..{}) is also in the ledger: used once, as the ledger's (aged) readout",
                i + 1,
                r.channels,
                r.start,
                r.end
            ));
        } else {
            records.push(r.clone());
        }
    }
    records.extend(from_ledger);
    Ok(Combined { records, used, notes, roi_priors })
}

/// The records that do not involve `channel` (a joint readout including it is left out too): the
/// calibration of the "without its experiments" fit.
pub fn records_without(records: &[LiftTestRecord], channel: &str) -> Vec<LiftTestRecord> {
    records.iter().filter(|r| !r.channels.iter().any(|c| c == channel)).cloned().collect()
}

/// One channel's evidence in `evidence.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelEvidence {
    pub channel: String,
    /// Readouts (ledger and config) that name the channel and entered the fit (as lift terms or
    /// through its ROI prior).
    pub n_readouts: usize,
    pub half_life_weeks: f64,
    pub half_life_source: HalfLifeSource,
    /// The newest ledger readout naming the channel: experiment id, age, exp(λt), SE and SE_eff.
    pub newest_experiment: Option<i64>,
    pub newest_age_weeks: Option<f64>,
    pub variance_inflation: Option<f64>,
    pub standard_error: Option<f64>,
    pub effective_se: Option<f64>,
    /// Posterior sd of ROI in the reported fit (its own method).
    pub roi_sd: f64,
    /// Posterior sd of ROI by Laplace with all readouts and without this channel's readouts.
    pub laplace_roi_sd_with: Option<f64>,
    pub laplace_roi_sd_without: Option<f64>,
    /// `laplace_roi_sd_with / laplace_roi_sd_without`.
    pub sd_ratio: Option<f64>,
    /// No readout, or `sd_ratio > RETEST_SD_RATIO`; `None` when the "without" fits were skipped
    /// and the channel has readouts.
    pub due_for_retest: Option<bool>,
}

/// Posterior ROI sd per channel for the evidence report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoiSds {
    pub reported: f64,
    pub laplace_with: Option<f64>,
    pub laplace_without: Option<f64>,
}

/// The per-channel evidence table: for each model channel its half-life, its newest ledger readout
/// (age, inflation, SEs), the ROI sds and the re-test rule (see the module documentation).
pub fn channel_evidence(
    model_channels: &[String],
    half_lives: &HalfLives,
    combined: &Combined,
    sds: &BTreeMap<String, RoiSds>,
) -> Vec<ChannelEvidence> {
    model_channels
        .iter()
        .map(|ch| {
            let (h, source) = half_lives.for_channel(ch);
            let n_readouts = combined.records.iter().filter(|r| r.channels.contains(ch)).count()
                + combined.roi_priors.iter().filter(|p| &p.channel == ch).map(|p| p.experiments.len()).sum::<usize>();
            let newest = combined
                .used
                .iter()
                .filter(|a| a.channels.contains(ch))
                .min_by(|a, b| a.age_weeks.total_cmp(&b.age_weeks).then(b.experiment_id.cmp(&a.experiment_id)));
            let s = sds.get(ch).copied().unwrap_or(RoiSds {
                reported: f64::NAN,
                laplace_with: None,
                laplace_without: None,
            });
            let sd_ratio = s.laplace_with.zip(s.laplace_without).map(|(w, wo)| w / wo);
            let due_for_retest = if n_readouts == 0 { Some(true) } else { sd_ratio.map(|r| r > RETEST_SD_RATIO) };
            ChannelEvidence {
                channel: ch.clone(),
                n_readouts,
                half_life_weeks: h.in_weeks(),
                half_life_source: source,
                newest_experiment: newest.map(|a| a.experiment_id),
                newest_age_weeks: newest.map(|a| a.age_weeks),
                variance_inflation: newest.map(|a| a.variance_inflation),
                standard_error: newest.map(|a| a.standard_error),
                effective_se: newest.map(|a| a.effective_se),
                roi_sd: s.reported,
                laplace_roi_sd_with: s.laplace_with,
                laplace_roi_sd_without: s.laplace_without,
                sd_ratio,
                due_for_retest,
            }
        })
        .collect()
}

/// A short fixed-width table of [`channel_evidence`].
pub fn evidence_table(rows: &[ChannelEvidence]) -> String {
    let opt = |v: Option<f64>, p: usize| v.map(|x| format!("{x:.p$}")).unwrap_or_else(|| "-".into());
    let mut s = format!(
        "{:<16} {:>4} {:>9} {:>9} {:>9} {:>11} {:>9} {:>9} {:>9} {:>6}  {}\n",
        "channel", "n", "age (w)", "half-life", "var ×", "SE_eff", "sd (fit)", "sd with", "sd w/o", "ratio", "re-test"
    );
    for r in rows {
        s += &format!(
            "{:<16} {:>4} {:>9} {:>9.0} {:>9} {:>11} {:>9.3} {:>9} {:>9} {:>6}  {}\n",
            r.channel,
            r.n_readouts,
            opt(r.newest_age_weeks, 1),
            r.half_life_weeks,
            opt(r.variance_inflation, 2),
            opt(r.effective_se, 1),
            r.roi_sd,
            opt(r.laplace_roi_sd_with, 3),
            opt(r.laplace_roi_sd_without, 3),
            opt(r.sd_ratio, 2),
            match r.due_for_retest {
                Some(true) => "due",
                Some(false) => "no",
                None => "?",
            }
        );
    }
    s += &format!(
        "(ROI sd: the fit's own, and by Laplace with / without the channel's readouts; due for re-test when \
         with / without > {RETEST_SD_RATIO} or never tested)\n"
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ch: &[&str], end: &str, se: f64) -> LiftTestRecord {
        LiftTestRecord {
            channels: ch.iter().map(|s| s.to_string()).collect(),
            geos: vec![],
            start: end.into(),
            end: end.into(),
            spend_change: 1000.0,
            spend_path: None,
            incremental_kpi: 2000.0,
            standard_error: se,
            estimator: "sc".into(),
            source: "t".into(),
        }
    }

    fn chans() -> Vec<String> {
        vec!["tv".into(), "search".into()]
    }

    fn ledger_with(records: &[LiftTestRecord]) -> (tempfile::TempDir, Ledger) {
        let d = tempfile::tempdir().unwrap();
        let mut l = Ledger::open_or_create(d.path().join("l.ledger")).unwrap();
        l.add_readouts(records, None).unwrap();
        (d, l)
    }

    #[test]
    fn se_doubles_in_variance_at_one_half_life_and_is_unchanged_at_age_zero() {
        // search: 26 weeks by default; 2023-01-29 + 182 days = 2023-07-30
        let (_d, l) = ledger_with(&[rec(&["search"], "2023-01-29", 300.0), rec(&["tv"], "2023-01-29", 300.0)]);
        let h = HalfLives::default();
        let at0 = ledger_calibration(&l, &h, "2023-01-29", TimeUnit::Weeks).unwrap();
        assert_eq!(at0[0].0.standard_error, 300.0);
        let at26 = ledger_calibration(&l, &h, "2023-07-30", TimeUnit::Weeks).unwrap();
        // exp(ln2) = 2 up to rounding of ln2/26·26: 1e-12 relative
        assert!((at26[0].0.standard_error / (300.0 * 2f64.sqrt()) - 1.0).abs() < 1e-12);
        assert!((at26[0].1.variance_inflation - 2.0).abs() < 1e-12);
        // tv (52 weeks) is at half a half-life: variance × √2
        assert!((at26[1].1.variance_inflation - 2f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn readouts_after_as_of_are_refused_naming_the_experiment() {
        let (_d, l) = ledger_with(&[rec(&["search"], "2023-03-05", 300.0)]);
        let e = ledger_calibration(&l, &HalfLives::default(), "2023-01-29", TimeUnit::Weeks).unwrap_err().to_string();
        assert!(e.contains("experiment 1") && e.contains("after the as-of"), "{e}");
    }

    #[test]
    fn half_life_options_are_checked_and_named() {
        let none = BTreeMap::new();
        let e = half_lives(&chans(), &[("radio".to_string(), 10.0)].into(), &[]).unwrap_err().to_string();
        assert!(e.contains("[calibration] half_lives.radio") && e.contains("tv, search"), "{e}");
        for bad in ["tv=-3", "tv=0", "tv=nan", "tv=abc"] {
            let e = half_lives(&chans(), &none, &[bad.into()]).unwrap_err().to_string();
            assert!(e.contains("--half-life tv") && e.contains("positive"), "{bad}: {e}");
        }
        assert!(half_lives(&chans(), &none, &["tv52".into()]).unwrap_err().to_string().contains("CHANNEL=WEEKS"));
        let h = half_lives(&chans(), &[("tv".to_string(), 10.0)].into(), &["tv=20".into()]).unwrap();
        assert_eq!(h.for_channel("tv").0.in_weeks(), 20.0);
    }

    #[test]
    fn combine_uses_a_shared_readout_once_and_rejects_unknown_channels() {
        let r = rec(&["tv"], "2023-01-29", 300.0);
        let other = rec(&["search"], "2023-02-05", 100.0);
        let (_d, l) = ledger_with(std::slice::from_ref(&r));
        let led = ledger_calibration(&l, &HalfLives::default(), "2023-01-29", TimeUnit::Weeks).unwrap();
        let c = combine(&[r.clone(), other.clone()], led, &chans(), l.path(), LedgerAs::Likelihood).unwrap();
        assert_eq!(c.records.len(), 2);
        assert_eq!(c.records[0], other);
        assert_eq!(c.records[1].standard_error, r.standard_error);
        assert_eq!(c.notes.len(), 1, "{:?}", c.notes);
        // an earlier fit's aged, tagged copy of the same readout (from its saved config) is also
        // recognised
        let led = ledger_calibration(&l, &HalfLives::default(), "2023-06-29", TimeUnit::Weeks).unwrap();
        let aged_copy = led[0].0.clone();
        assert!(aged_copy.standard_error > 300.0 && aged_copy.source.contains("[ledger record"));
        let c = combine(&[aged_copy], led, &chans(), l.path(), LedgerAs::Likelihood).unwrap();
        assert_eq!(c.records.len(), 1);
        assert!(c.notes[0].contains("used once"), "{:?}", c.notes);
        let (_d2, l2) = ledger_with(&[rec(&["radio"], "2023-01-29", 300.0)]);
        let led = ledger_calibration(&l2, &HalfLives::default(), "2023-01-29", TimeUnit::Weeks).unwrap();
        let e = combine(&[], led, &chans(), l2.path(), LedgerAs::Likelihood).unwrap_err().to_string();
        assert!(e.contains("experiment 1") && e.contains("\"radio\""), "{e}");
    }

    #[test]
    fn discarded_readouts_do_not_calibrate_and_overflowed_ones_are_left_out() {
        let (_d, mut l) = ledger_with(&[rec(&["tv"], "2023-01-29", 300.0), rec(&["search"], "2000-01-02", 10.0)]);
        l.discard(1, "test").unwrap();
        // search at 26 weeks: 23 years ≈ 46 half-lives → finite; use 1 week half-life to overflow
        let h = half_lives(&chans(), &[("search".to_string(), 0.5)].into(), &[]).unwrap();
        let led = ledger_calibration(&l, &h, "2023-01-29", TimeUnit::Weeks).unwrap();
        assert_eq!(led.len(), 1);
        let c = combine(&[], led, &chans(), l.path(), LedgerAs::Likelihood).unwrap();
        assert!(c.records.is_empty() && c.notes[0].contains("no weight"), "{:?}", c.notes);
    }

    #[test]
    fn roi_prior_mode_combines_readouts_by_precision() {
        // search: iROAS 2.0 ± 0.3 and 3.0 ± 0.4 (SE 6000/8000 on 20000 of spend), at age 0
        let mut a = rec(&["search"], "2023-01-29", 6000.0);
        a.spend_change = 20000.0;
        a.incremental_kpi = 40000.0;
        let mut b = a.clone();
        b.incremental_kpi = 60000.0;
        b.standard_error = 8000.0;
        b.source = "b".into();
        let joint = rec(&["tv", "search"], "2023-01-29", 500.0);
        let (_d, l) = ledger_with(&[a, b, joint.clone()]);
        let led = ledger_calibration(&l, &HalfLives::default(), "2023-01-29", TimeUnit::Weeks).unwrap();
        let c = combine(&[], led, &chans(), l.path(), LedgerAs::RoiPrior).unwrap();
        assert_eq!(c.records.len(), 1, "the joint readout stays a lift term");
        assert_eq!((&c.records[0].channels, c.records[0].standard_error), (&joint.channels, joint.standard_error));
        let p = &c.roi_priors[0];
        // precision 1/0.09 + 1/0.16; mean (2/0.09 + 3/0.16) / that
        let prec = 1.0 / 0.09 + 1.0 / 0.16;
        assert!((p.mean - (2.0 / 0.09 + 3.0 / 0.16) / prec).abs() < 1e-12, "{p:?}");
        assert!((p.standard_error - prec.sqrt().recip()).abs() < 1e-12);
        assert_eq!(p.experiments, vec![1, 2]);
        // a negative readout cannot be a LogNormal prior
        let mut n = rec(&["tv"], "2023-01-29", 100.0);
        n.incremental_kpi = -5000.0;
        let (_d2, l2) = ledger_with(&[n]);
        let led = ledger_calibration(&l2, &HalfLives::default(), "2023-01-29", TimeUnit::Weeks).unwrap();
        let e = combine(&[], led, &chans(), l2.path(), LedgerAs::RoiPrior).unwrap_err().to_string();
        assert!(e.contains("channel tv") && e.contains("likelihood"), "{e}");
    }

    #[test]
    fn retest_rule_flags_untested_channels_and_weakly_pinned_ones() {
        let (_d, l) = ledger_with(&[rec(&["tv"], "2023-01-01", 300.0), rec(&["tv"], "2023-01-29", 200.0)]);
        let led = ledger_calibration(&l, &HalfLives::default(), "2023-01-29", TimeUnit::Weeks).unwrap();
        let c = combine(&[], led, &chans(), l.path(), LedgerAs::Likelihood).unwrap();
        let sd = |w: f64, wo: f64| RoiSds { reported: w, laplace_with: Some(w), laplace_without: Some(wo) };
        let sds: BTreeMap<String, RoiSds> =
            [("tv".to_string(), sd(0.5, 1.0)), ("search".to_string(), sd(1.0, 1.0))].into();
        let rows = channel_evidence(&chans(), &HalfLives::default(), &c, &sds);
        // tv: two readouts, the newest (experiment 2) at age 0; sd halved → pinned
        assert_eq!((rows[0].n_readouts, rows[0].newest_experiment, rows[0].newest_age_weeks), (2, Some(2), Some(0.0)));
        assert_eq!(rows[0].due_for_retest, Some(false));
        // search: never tested → due whatever the sds
        assert_eq!((rows[1].n_readouts, rows[1].due_for_retest), (0, Some(true)));
        // just above the threshold → due; without the refits → unknown
        let sds: BTreeMap<String, RoiSds> = [("tv".to_string(), sd(0.81, 1.0))].into();
        assert_eq!(channel_evidence(&chans(), &HalfLives::default(), &c, &sds)[0].due_for_retest, Some(true));
        let sds: BTreeMap<String, RoiSds> =
            [("tv".to_string(), RoiSds { reported: 0.5, laplace_with: None, laplace_without: None })].into();
        assert_eq!(channel_evidence(&chans(), &HalfLives::default(), &c, &sds)[0].due_for_retest, None);
        assert!(evidence_table(&channel_evidence(&chans(), &HalfLives::default(), &c, &sds)).contains("re-test"));
    }
}
