//! Candidate tests: from a geo design on the regional panel, from a stated precision, and from
//! stale readouts in the ledger.

use super::{CandidateTest, Change, Precision, RankError, RetestInfo, bad, period_label};
use crate::calibrate::{AgeInfo, half_lives, ledger_calibration};
use crate::decay::TimeUnit;
use crate::ledger::Ledger;
use mmloop_data::{LiftTestRecord, TimeKind};
use mmloop_geolift::design::{
    DesignEstimator, DesignInference, PowerConfig, SearchSpec, Selection, search_with_progress,
};
use mmloop_geolift::readout::{ReadoutParams, predict_readout};
use mmloop_geolift::{Panel, Progress};
use mmloop_mmm::optimize::FittedModel;

/// A channel's newest readout is stale, and the test is repeated as a candidate, when the decay
/// has inflated its variance at least this much: 2 = one half-life old, the readout's weight 1/SE²
/// halved.
pub const DEFAULT_STALE_INFLATION: f64 = 2.0;

/// What every design (or stated precision) is crossed with.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateSpec {
    /// Channel sets to test (each moved together); empty: every model channel alone.
    pub channels: Vec<Vec<String>>,
    /// Spend changes; default go-dark (media × 0) and a +50 % heavy-up (media × 1.5).
    pub changes: Vec<Change>,
    /// Starts as periods after the data's last period (0: the period right after it).
    pub starts: Vec<usize>,
    /// How many of the design search's best (treated set, duration) designs become candidates.
    pub designs: usize,
    /// Test lengths of the stated-precision (national) candidates, periods.
    pub durations: Vec<usize>,
    /// Staleness threshold of re-tests ([`DEFAULT_STALE_INFLATION`]).
    pub stale_inflation: f64,
}

impl Default for CandidateSpec {
    fn default() -> Self {
        Self {
            channels: vec![],
            changes: vec![Change::Multiplier(0.0), Change::Multiplier(1.5)],
            starts: vec![0],
            designs: 4,
            durations: vec![4, 8],
            stale_inflation: DEFAULT_STALE_INFLATION,
        }
    }
}

impl CandidateSpec {
    /// Checks the spec against the model; errors name the option.
    pub fn validate(&self, fit: &FittedModel) -> Result<(), RankError> {
        let names = fit.channel_names();
        for set in &self.channels {
            if set.is_empty() {
                return Err(bad("--channels", "an empty channel set; name at least one channel"));
            }
            if let Some(c) = set.iter().find(|c| !names.contains(c)) {
                return Err(bad(
                    "--channels",
                    format!("channel {c:?} is not in the model (channels: {}); name one of them", names.join(", ")),
                ));
            }
        }
        if self.changes.is_empty() {
            return Err(bad(
                "--heavy-up/--no-go-dark",
                "no spend change left to test: keep go-dark or give --heavy-up",
            ));
        }
        for ch in &self.changes {
            match *ch {
                Change::Multiplier(m) if !(m.is_finite() && m >= 0.0 && m != 1.0) => {
                    return Err(bad(
                        "--heavy-up",
                        format!("media multiplier {m} must be finite, ≥ 0 and not 1 (0 = go-dark, 1.5 = +50 %)"),
                    ));
                }
                Change::Total(v) if !(v.is_finite() && v != 0.0) => {
                    return Err(bad("spend change", format!("{v} must be a finite non-zero amount of money")));
                }
                _ => {}
            }
        }
        if self.starts.is_empty() {
            return Err(bad("--starts", "give at least one start (periods after the data's end, 0 = next period)"));
        }
        if let Some(s) = self.starts.iter().find(|&&s| s > 104) {
            return Err(bad(
                "--starts",
                format!("{s} periods ahead is too far to price at the recent spend level (≤ 104)"),
            ));
        }
        if self.designs == 0 {
            return Err(bad("--designs", "take at least 1 design from the search"));
        }
        if self.durations.is_empty() || self.durations.contains(&0) {
            return Err(bad("--durations", "give test lengths of at least 1 period"));
        }
        if !(self.stale_inflation.is_finite() && self.stale_inflation >= 1.0) {
            return Err(bad(
                "--stale-inflation",
                format!("{} must be ≥ 1 (2 = one half-life old)", self.stale_inflation),
            ));
        }
        Ok(())
    }

    fn channel_sets(&self, fit: &FittedModel) -> Vec<Vec<String>> {
        if self.channels.is_empty() {
            fit.channel_names().into_iter().map(|c| vec![c]).collect()
        } else {
            self.channels.clone()
        }
    }
}

/// The design search run for ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct DesignOptions {
    /// Treated geos per design, inclusive range.
    pub n_min: usize,
    pub n_max: usize,
    /// Test lengths, periods.
    pub durations: Vec<usize>,
    /// Rolling historical windows simulated per design.
    pub windows: usize,
    /// Most treated sets evaluated.
    pub max_candidates: usize,
    pub seed: u64,
    /// The estimator that will read the tests out, when known: see [`reader_candidates`]. `None`:
    /// σ_exp is synthetic control's placebo-in-time SE from the search ([`design_candidates`]).
    pub reader: Option<DesignReader>,
}

impl Default for DesignOptions {
    fn default() -> Self {
        Self {
            n_min: 2,
            n_max: 3,
            durations: vec![4, 8],
            windows: 10,
            max_candidates: 50,
            seed: 20_210_401,
            reader: None,
        }
    }
}

/// How the tests will be read out, so that a design is priced with the standard error its readout
/// will report ([`reader_candidates`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DesignReader {
    /// The readout's settings (estimators — the first gives the record —, α, permutations, placebo
    /// replications, seed); the treated geos and window are set per design.
    pub params: ReadoutParams,
    /// Periods of pre-period the readout will use (the panel it reads ends with the test).
    pub pre_periods: usize,
}

fn median_step(v: &[f64]) -> Option<f64> {
    let mut d: Vec<f64> = v.windows(2).map(|w| w[1] - w[0]).filter(|x| *x > 0.0).collect();
    if d.is_empty() {
        return None;
    }
    d.sort_by(f64::total_cmp);
    Some(d[d.len() / 2])
}

/// Checks that `panel` can price the model's tests: a geo-level model; the same time notation and
/// period length; at least one shared (geo, period) cell, on which the panel's KPI equals the
/// model's data KPI (sums within 0.5 %: the same column up to rounding — a per-capita or rescaled
/// KPI would make σ_exp and the implied lift different units). Returns the panel geos that are not
/// model geos (they can be controls, never treated).
pub fn check_panel(fit: &FittedModel, panel: &Panel) -> Result<Vec<String>, RankError> {
    let mismatch = |message: String| RankError::PanelMismatch { panel: panel.source.clone(), message };
    let data = &fit.data;
    if fit.model.n_geos() < 2 {
        return Err(mismatch(
            "the model is national (one series): a geo design's readout covers only its treated geos, which a \
             national model cannot price; rank with a stated precision instead (no --panel)"
                .into(),
        ));
    }
    let same_kind = matches!(
        (panel.time_kind, data.times.kind),
        (TimeKind::Date, TimeKind::Date) | (TimeKind::Numeric, TimeKind::Numeric)
    );
    if !same_kind {
        return Err(mismatch(
            "one has dates and the other numeric periods; give the panel the model was fitted on".into(),
        ));
    }
    let (ps, ms) = (median_step(&panel.times), median_step(&data.times.values));
    if let (Some(p), Some(m)) = (ps, ms)
        && (p - m).abs() > 1e-9 * m.abs()
    {
        return Err(mismatch(format!(
            "its period is {p} time units but the model's is {m}; a design's duration must be in the model's periods"
        )));
    }
    let mut shared = 0usize;
    let (mut sum_panel, mut sum_model) = (0.0, 0.0);
    // both columns are parsed by the same reader, so equal times are equal bits
    let model_time: std::collections::HashMap<u64, usize> =
        data.times.values.iter().enumerate().map(|(i, v)| (v.to_bits(), i)).collect();
    for (gp, name) in panel.geos.iter().enumerate() {
        let Some(gm) = data.geos.iter().position(|g| g == name) else { continue };
        for (tp, tv) in panel.times.iter().enumerate() {
            let Some(&tm) = model_time.get(&tv.to_bits()) else { continue };
            let x = panel.kpi[[gp, tp]];
            if x.is_finite() {
                shared += 1;
                sum_panel += x;
                sum_model += data.kpi[[gm, tm]];
            }
        }
    }
    if shared == 0 {
        return Err(mismatch(format!(
            "no (geo, period) cell is in both (model geos: {}); the KPI units cannot be checked — give the panel the \
             model was fitted on, with its geo and time columns",
            data.geos.join(", ")
        )));
    }
    let rel = (sum_panel - sum_model).abs() / sum_model.abs().max(f64::MIN_POSITIVE);
    if rel > 5e-3 {
        return Err(mismatch(format!(
            "its KPI sums to {sum_panel:.6e} on the {shared} cells both hold, the model's KPI ({:?}) to \
             {sum_model:.6e} ({:.1} % apart); give --kpi the column the model was fitted on (σ_exp and the implied lift \
             must be in the same units)",
            fit.spec.data.kpi_column,
            100.0 * rel
        )));
    }
    Ok(panel.geos.iter().filter(|g| !data.geos.contains(g)).cloned().collect())
}

/// Runs the geo design's market selection on `panel` for ranking: synthetic control over
/// `windows` rolling historical windows (the readout's standard error is the spread of the
/// estimate with nothing injected, which does not depend on the test's p-value, so the fast
/// normal test is used), treated sets drawn from the model's geos only.
pub fn search_designs(
    fit: &FittedModel,
    panel: &Panel,
    options: &DesignOptions,
    progress: &dyn Progress,
) -> Result<Selection, RankError> {
    let not_in_model = check_panel(fit, panel)?;
    if options.durations.is_empty() || options.durations.contains(&0) {
        return Err(bad("--durations", "give test lengths of at least 1 period"));
    }
    let cfg = PowerConfig {
        estimator: DesignEstimator::Sc { demean: true },
        inference: DesignInference::Normal,
        windows: options.windows,
        seed: options.seed,
        effects: vec![0.0, 0.05, 0.1, 0.2],
        ..Default::default()
    };
    let spec = SearchSpec {
        n_min: options.n_min,
        n_max: options.n_max,
        durations: options.durations.clone(),
        exclude: not_in_model,
        max_candidates: options.max_candidates,
        ..Default::default()
    };
    let sel = search_with_progress(panel, &spec, &cfg, progress)?;
    sel.check_finite()?;
    Ok(sel)
}

fn names_for(channels: &[String], geos: &[String], duration: usize, change: Change, start: &str) -> String {
    let where_ = if geos.is_empty() { "national".to_string() } else { geos.join("+") };
    format!("{} {} {where_} {duration}p @{start}", channels.join("+"), change.label())
}

/// Candidates from the design search: its `spec.designs` best designs × channel sets × spend
/// changes × starts. σ_exp = the design's `se_incremental()`: the readout's standard error of the
/// incremental KPI summed over the treated geos and the test's periods, the units of the window
/// lift the model implies for the same geos and periods.
pub fn design_candidates(
    fit: &FittedModel,
    selection: &Selection,
    spec: &CandidateSpec,
) -> Result<Vec<CandidateTest>, RankError> {
    spec.validate(fit)?;
    let designs = spread_designs(&selection.candidates, spec.designs)
        .into_iter()
        .map(|d| {
            let precision = Precision::Design {
                design_rank: d.rank,
                se_lift: d.curve.se_lift,
                se_lift_model: d.curve.se_lift_model,
                baseline_kpi: d.curve.baseline_kpi,
                mde: d.mde,
                windows: d.curve.windows,
            };
            (d, d.curve.se_incremental(), precision)
        })
        .collect();
    crossed(fit, designs, spec)
}

/// Candidates from the design search priced by the estimator that will read them out: every design
/// the search evaluated is read, as if its test had just ended, on the panel's latest window of
/// history ([`predict_readout`]: the reader's own code, nothing injected), and σ_exp is the
/// standard error that readout reports. Designs the reader cannot read (the readout fails, e.g.
/// ASCM's placebo SE with no more controls than treated geos) are dropped with a note. The rest
/// are ordered by the reader's relative SE (σ over the treated geos' counterfactual KPI in the
/// window; ties by the search's rank): under the reader's normal interval a design's relative MDE
/// at any power is (z₁₋α/₂ + z_power) × that SE, so this is the search's own first criterion, |MDE|,
/// for the estimator that will actually read the test. The `spec.designs` best, disjoint ones
/// first ([`spread_designs`]), are crossed with channel sets × spend changes × starts.
///
/// Why: the search simulates synthetic control, and a test read by another estimator reports
/// another SE (ASCM's placebo SE was 1.5–5 × SC's design SE on the demo's world,
/// docs/notes/demo-learning.md §6); pricing a test with an SE its readout will not have overstates
/// what it teaches, and a design the reader cannot read would fall back to another estimator.
/// Cost: one readout per evaluated design (≈ 20 ms with ASCM on 12 geos × 60 weeks).
pub fn reader_candidates(
    fit: &FittedModel,
    panel: &Panel,
    selection: &Selection,
    spec: &CandidateSpec,
    reader: &DesignReader,
    progress: &dyn Progress,
) -> Result<(Vec<CandidateTest>, Vec<String>), RankError> {
    spec.validate(fit)?;
    let estimator = reader.params.estimators.first().cloned().unwrap_or_else(|| "sc".into());
    let mut notes = Vec::new();
    let mut read = Vec::new();
    let mut unreadable = Vec::new();
    for d in &selection.candidates {
        progress.stage(&format!("reading design {} ({}) by {estimator}", d.rank, d.treated.join("+")));
        match predict_readout(panel, &reader.params, &d.treated, d.duration, reader.pre_periods) {
            Ok(p) if p.standard_error.is_finite() && p.standard_error > 0.0 && p.baseline_kpi > 0.0 => {
                read.push((d, p))
            }
            Ok(p) => unreadable.push(format!(
                "{} {}p (standard error {}, baseline {})",
                d.treated.join("+"),
                d.duration,
                p.standard_error,
                p.baseline_kpi
            )),
            Err(e) => unreadable.push(format!(
                "{} {}p ({})",
                d.treated.join("+"),
                d.duration,
                std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(": ")
            )),
        }
    }
    progress.finish();
    if let Some(first) = unreadable.first() {
        notes.push(format!(
            "{} of {} designs cannot be read by {estimator} and are not candidates (e.g. {first})",
            unreadable.len(),
            selection.candidates.len(),
        ));
    }
    let rel = |(_, p): &(&mmloop_geolift::design::Candidate, mmloop_geolift::PredictedReadout)| {
        p.standard_error / p.baseline_kpi
    };
    read.sort_by(|a, b| rel(a).total_cmp(&rel(b)).then(a.0.rank.cmp(&b.0.rank)));
    let order = spread(read.len(), spec.designs, |i| &read[i].0.treated);
    let designs = order
        .into_iter()
        .map(|i| {
            let (d, p) = &read[i];
            let precision = Precision::Reader {
                design_rank: d.rank,
                reader_rank: i + 1,
                estimator: estimator.clone(),
                relative_se: p.standard_error / p.baseline_kpi,
                baseline_kpi: p.baseline_kpi,
                placebo_estimate: p.placebo_estimate,
                sc_se_lift: d.curve.se_lift,
            };
            (*d, p.standard_error, precision)
        })
        .collect();
    Ok((crossed(fit, designs, spec)?, notes))
}

/// Each design (with its σ_exp and where it comes from) × channel sets × spend changes × starts.
fn crossed(
    fit: &FittedModel,
    designs: Vec<(&mmloop_geolift::design::Candidate, f64, Precision)>,
    spec: &CandidateSpec,
) -> Result<Vec<CandidateTest>, RankError> {
    let n = fit.model.n_times;
    let mut out = Vec::new();
    for (d, sigma, precision) in designs {
        if !(sigma.is_finite() && sigma > 0.0) {
            continue;
        }
        for channels in spec.channel_sets(fit) {
            for &change in &spec.changes {
                for &s in &spec.starts {
                    let start = n + s;
                    out.push(CandidateTest {
                        name: names_for(&channels, &d.treated, d.duration, change, &period_label(fit, start)),
                        channels: channels.clone(),
                        geos: d.treated.clone(),
                        start,
                        duration: d.duration,
                        change,
                        sigma,
                        precision: precision.clone(),
                        retest: None,
                        is_retest: false,
                    });
                }
            }
        }
    }
    if out.is_empty() {
        return Err(RankError::NoCandidates(
            "the design search gave no design with a positive standard error (that its reader can read); check the \
             panel"
                .into(),
        ));
    }
    Ok(out)
}

/// The `k` designs that become candidates: in rank order, first every design whose treated geos are
/// disjoint from those already taken, then the best of the rest. The search ranks designs by the
/// KPI panel alone, so its top designs tend to share their best markets; taken in plain rank order
/// they would leave a portfolio room for a single test a cycle. Disjoint designs first let up to
/// `k` tests run side by side (no geo in two tests).
fn spread_designs(ranked: &[mmloop_geolift::design::Candidate], k: usize) -> Vec<&mmloop_geolift::design::Candidate> {
    spread(ranked.len(), k, |i| &ranked[i].treated).into_iter().map(|i| &ranked[i]).collect()
}

/// [`spread_designs`] on indices: `treated(i)` is the i-th ranked design's treated geos.
fn spread<'a>(n: usize, k: usize, treated: impl Fn(usize) -> &'a [String]) -> Vec<usize> {
    let mut taken: Vec<usize> = Vec::with_capacity(k);
    for i in 0..n {
        if taken.len() == k {
            break;
        }
        if taken.iter().all(|&j| treated(j).iter().all(|g| !treated(i).contains(g))) {
            taken.push(i);
        }
    }
    for i in 0..n {
        if taken.len() == k {
            break;
        }
        if !taken.contains(&i) {
            taken.push(i);
        }
    }
    taken.sort_unstable();
    taken
}

#[cfg(test)]
mod spread_tests {
    #[test]
    fn disjoint_designs_come_first_then_the_best_of_the_rest_in_rank_order() {
        let sets: Vec<Vec<String>> = [vec!["a", "b"], vec!["a", "c"], vec!["d", "e"], vec!["b", "f"], vec!["g"]]
            .iter()
            .map(|s| s.iter().map(|g| g.to_string()).collect())
            .collect();
        let t = |i: usize| sets[i].as_slice();
        assert_eq!(super::spread(5, 2, t), [0, 2]);
        assert_eq!(super::spread(5, 3, t), [0, 2, 4]);
        // only three are disjoint: the fourth is the best of the rest
        assert_eq!(super::spread(5, 4, t), [0, 1, 2, 4]);
        assert_eq!(super::spread(5, 9, t), [0, 1, 2, 3, 4]);
        assert_eq!(super::spread(0, 3, t), Vec::<usize>::new());
    }
}

/// A stated readout precision for tests without a panel: the standard error of the incremental
/// KPI as a share of the treated KPI over the test window, by test type.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct StatedPrecision {
    pub go_dark: f64,
    pub heavy_up: f64,
    /// Periods at the data's end whose mean KPI per period is the level the share applies to.
    pub recent_periods: usize,
}

impl Default for StatedPrecision {
    /// 2 % for both: a well-run 4–8-week geo test reaches an MDE of about 5 % at 80 % power and
    /// α = 0.1 (GeoLift's market selection on its example panel), and se ≈ MDE / (z₀.₉₅ + z₀.₈) ≈ MDE / 2.5.
    fn default() -> Self {
        Self { go_dark: 0.02, heavy_up: 0.02, recent_periods: 13 }
    }
}

impl StatedPrecision {
    pub fn validate(&self) -> Result<(), RankError> {
        for (option, v) in [("--relative-se-go-dark", self.go_dark), ("--relative-se-heavy-up", self.heavy_up)] {
            if !(v.is_finite() && v > 0.0 && v < 1.0) {
                return Err(bad(
                    option,
                    format!(
                        "{v} is not a relative standard error: give the share of the window's KPI, in (0, 1), e.g. 0.02"
                    ),
                ));
            }
        }
        if self.recent_periods == 0 {
            return Err(bad("recent_periods", "needs at least 1 period"));
        }
        Ok(())
    }

    /// The share for a spend change.
    pub fn relative_se(&self, change: Change) -> f64 {
        if change.kind() == "go-dark" { self.go_dark } else { self.heavy_up }
    }
}

/// The KPI of `geos` (all when empty) per period over the data's last `h` periods, times `duration`.
fn window_baseline(fit: &FittedModel, geos: &[String], h: usize, duration: usize) -> f64 {
    let data = &fit.data;
    let t_n = data.kpi.ncols();
    let h = h.min(t_n);
    let idx: Vec<usize> = if geos.is_empty() {
        (0..data.geos.len()).collect()
    } else {
        geos.iter().filter_map(|g| data.geos.iter().position(|x| x == g)).collect()
    };
    let total: f64 = idx.iter().map(|&g| (t_n - h..t_n).map(|t| data.kpi[[g, t]]).sum::<f64>()).sum();
    total / h as f64 * duration as f64
}

/// National candidates (every geo treated) at a stated precision: channel sets × spend changes ×
/// `spec.durations` × starts, σ_exp = relative SE × the KPI over the window at the recent level.
pub fn stated_candidates(
    fit: &FittedModel,
    precision: &StatedPrecision,
    spec: &CandidateSpec,
) -> Result<Vec<CandidateTest>, RankError> {
    spec.validate(fit)?;
    precision.validate()?;
    let n = fit.model.n_times;
    let mut out = Vec::new();
    for channels in spec.channel_sets(fit) {
        for &change in &spec.changes {
            for &duration in &spec.durations {
                for &s in &spec.starts {
                    let start = n + s;
                    let rel = precision.relative_se(change);
                    let baseline = window_baseline(fit, &[], precision.recent_periods, duration);
                    out.push(CandidateTest {
                        name: names_for(&channels, &[], duration, change, &period_label(fit, start)),
                        channels: channels.clone(),
                        geos: vec![],
                        start,
                        duration,
                        change,
                        sigma: rel * baseline,
                        precision: Precision::Stated { relative_se: rel, baseline_kpi: baseline },
                        retest: None,
                        is_retest: false,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The ledger's read readouts aged to the data's last period, with the half-lives of the fit's
/// config (`[calibration] half_lives`, else the class defaults). Numeric time columns count in weeks.
pub fn ledger_readouts(fit: &FittedModel, ledger: &Ledger) -> Result<Vec<(LiftTestRecord, AgeInfo)>, RankError> {
    let names = fit.channel_names();
    let h = half_lives(&names, &fit.spec.calibration.half_lives, &[])?;
    let as_of = fit.data.times.labels.last().cloned().ok_or_else(|| bad("--fit", "the fit's data have no periods"))?;
    Ok(ledger_calibration(ledger, &h, &as_of, TimeUnit::Weeks)?)
}

/// Everything that shapes the candidate list.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CandidateOptions {
    pub spec: CandidateSpec,
    /// The design search on a panel.
    pub design: DesignOptions,
    /// The precision of tests without a panel.
    pub precision: StatedPrecision,
}

/// The candidates and how they were made.
#[derive(Debug, Clone)]
pub struct CandidateSet {
    pub candidates: Vec<CandidateTest>,
    /// The design search, when a panel was given.
    pub selection: Option<Selection>,
    /// Things the user should know (re-tests that could not be repeated, …).
    pub notes: Vec<String>,
}

/// The candidate tests of a fit: from a design search on `panel` when given (a geo-level model),
/// else national tests at the stated precision; with a `ledger`, re-tests of stale channels are
/// added and every candidate on a tested channel is flagged ([`retest_candidates`]).
pub fn build_candidates(
    fit: &FittedModel,
    panel: Option<&Panel>,
    ledger: Option<&Ledger>,
    options: &CandidateOptions,
    progress: &dyn Progress,
) -> Result<CandidateSet, RankError> {
    options.spec.validate(fit)?;
    let mut notes = Vec::new();
    let (mut candidates, selection) = match panel {
        Some(p) => {
            let sel = search_designs(fit, p, &options.design, progress)?;
            let c = match &options.design.reader {
                Some(r) => {
                    let (c, n) = reader_candidates(fit, p, &sel, &options.spec, r, progress)?;
                    notes.extend(n);
                    c
                }
                None => design_candidates(fit, &sel, &options.spec)?,
            };
            (c, Some(sel))
        }
        None => (stated_candidates(fit, &options.precision, &options.spec)?, None),
    };
    if let Some(l) = ledger {
        let readouts = ledger_readouts(fit, l)?;
        if readouts.is_empty() {
            notes.push("the ledger has no read readout: no re-test candidates".into());
        }
        notes.extend(retest_candidates(fit, &readouts, &options.spec, &mut candidates)?);
    }
    Ok(CandidateSet { candidates, selection, notes })
}

/// Re-tests from the ledger's aged readouts (see [`ledger_readouts`]): every candidate whose channel
/// set has a readout is flagged with the newest one ([`RetestInfo`]); for each channel set whose
/// newest readout is stale, the same test (geos, length, spend change) from each planned start is
/// added, with the standard error that readout had. Returns the notes of tests that could not be
/// repeated (a spend path, no spend change, a window not on the model's axis).
pub fn retest_candidates(
    fit: &FittedModel,
    readouts: &[(LiftTestRecord, AgeInfo)],
    spec: &CandidateSpec,
    candidates: &mut Vec<CandidateTest>,
) -> Result<Vec<String>, RankError> {
    spec.validate(fit)?;
    let names = fit.channel_names();
    let mut notes = Vec::new();
    // newest readout per channel set (sorted names)
    let mut newest: Vec<(Vec<String>, &LiftTestRecord, &AgeInfo)> = Vec::new();
    for (rec, info) in readouts {
        let mut key = rec.channels.clone();
        key.sort();
        if key.is_empty() || key.iter().any(|c| !names.contains(c)) {
            notes.push(format!(
                "ledger experiment {}: channels {:?} are not the model's; not a re-test candidate",
                info.experiment_id, rec.channels
            ));
            continue;
        }
        match newest.iter_mut().find(|(k, _, _)| *k == key) {
            Some(slot) if info.age_weeks < slot.2.age_weeks => *slot = (key, rec, info),
            Some(_) => {}
            None => newest.push((key, rec, info)),
        }
    }
    let info_of = |i: &AgeInfo| RetestInfo {
        experiment_id: i.experiment_id,
        end: i.end.clone(),
        age_weeks: i.age_weeks,
        half_life_weeks: i.half_life_weeks,
        variance_inflation: i.variance_inflation,
        stale: i.variance_inflation >= spec.stale_inflation,
    };
    for c in candidates.iter_mut() {
        let mut key = c.channels.clone();
        key.sort();
        if let Some((_, _, i)) = newest.iter().find(|(k, _, _)| *k == key) {
            c.retest = Some(info_of(i));
        }
    }
    let n = fit.model.n_times;
    for (key, rec, info) in &newest {
        let retest = info_of(info);
        if !retest.stale {
            continue;
        }
        if rec.spend_path.is_some() || rec.spend_change == 0.0 {
            notes.push(format!(
                "ledger experiment {}: a {} cannot be repeated as a flat test; not a re-test candidate",
                info.experiment_id,
                if rec.spend_path.is_some() { "spend path" } else { "zero spend change" }
            ));
            continue;
        }
        let window = mmloop_mmm::pricing::period_index(&fit.data, &rec.start)
            .and_then(|s| mmloop_mmm::pricing::period_index(&fit.data, &rec.end).map(|e| (s, e)));
        let duration = match window {
            Ok((s, e)) if e >= s => e - s + 1,
            _ => {
                notes.push(format!(
                    "ledger experiment {}: its window {}..{} is not on the model's time axis; not a re-test candidate",
                    info.experiment_id, rec.start, rec.end
                ));
                continue;
            }
        };
        let change = Change::Total(rec.spend_change);
        for &s in &spec.starts {
            let start = n + s;
            let name = format!(
                "re-test #{} {}",
                info.experiment_id,
                names_for(key, &rec.geos, duration, change, &period_label(fit, start))
            );
            candidates.push(CandidateTest {
                name,
                channels: rec.channels.clone(),
                geos: rec.geos.clone(),
                start,
                duration,
                change,
                sigma: info.standard_error,
                precision: Precision::PastReadout {
                    experiment_id: info.experiment_id,
                    standard_error: info.standard_error,
                },
                retest: Some(retest.clone()),
                is_retest: true,
            });
        }
    }
    Ok(notes)
}
