//! Running a geo test in the world: the spend change injected into the treated cells (so its effect
//! passes through the true adstock and saturation, carry-over included), the regional panel of the
//! pre-period and the test window, and its readout by the real geo-lift estimators.
//!
//! **Spend change.** [`SpendChange::Total`] S (or [`SpendChange::PerPeriod`] P, S = P·weeks) is
//! spread evenly over the treated geos and weeks — the calibration record's own rule, so the record
//! (without a `spend_path`) describes exactly what was done — and shared among a channel set in
//! proportion to the channels' business-as-usual spend in the window (equally if none).
//! [`SpendChange::Multiplier`] m sets the treated cells' spend to m × business as usual (m = 0 is
//! go-dark). A cut below zero spend is clipped at zero. When the applied change is not even across
//! cells (a multiplier, or clipping), the record carries the exact `spend_path`.
//!
//! **Truth.** The true lift is Σ over the test's channels, treated geos and weeks of
//! p_g·β(g,c)·[hill(adstock(x))(t) − hill(adstock(x − Δ))(t)]: the factual world minus the same world
//! without this test's spend change (same noise, so the difference is exact). In the window it is what
//! the readout estimates; with the carry-over (through the window's end + max_lag) it is what the MMM's
//! lift-test term implies for the record.

use super::WorldError;
use super::generate::{Segment, World, cents};
use crate::value::rng;
use mmloop_data::{LiftTestRecord, SpendDelta, TimeColumn, TimeKind};
use mmloop_geolift::design::DesignRecord;
use mmloop_geolift::readout::{ReadoutParams, read_out};
use mmloop_geolift::{NoProgress, Panel};
use mmloop_mmm::pricing::{HypotheticalTest, SpendChange};
use rayon::prelude::*;

/// Random stream of the world's occasional experiment bias.
const S_EXPERIMENT_BIAS: u64 = 20;

/// A test to run in the world (the world's own notion of `HypotheticalTest` / a design cell).
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTest {
    /// The channel(s) whose spend changes.
    pub channels: Vec<String>,
    /// Treated geos.
    pub geos: Vec<String>,
    /// First week of the window (index on the world's axis, see [`World::week_index`]).
    pub start: usize,
    /// Length of the window in weeks.
    pub weeks: usize,
    pub change: SpendChange,
    /// Planted bias: the readout's incremental KPI (and interval) is multiplied by this factor
    /// (1 = an honest experiment; 0.3: most of the extra spend never delivered; −1: the wrong sign,
    /// as if treated and control were swapped). Finite and non-zero. For the discrepancy check's proof.
    pub readout_bias: f64,
    /// Provenance written to the record's `source` (e.g. the ledger's test id); empty: generated.
    pub label: String,
}

impl PlannedTest {
    /// An honest test.
    pub fn new(channels: &[&str], geos: &[&str], start: usize, weeks: usize, change: SpendChange) -> Self {
        Self {
            channels: channels.iter().map(|s| s.to_string()).collect(),
            geos: geos.iter().map(|s| s.to_string()).collect(),
            start,
            weeks,
            change,
            readout_bias: 1.0,
            label: String::new(),
        }
    }

    /// The same test with a planted readout bias.
    pub fn biased(mut self, factor: f64) -> Self {
        self.readout_bias = factor;
        self
    }

    /// The test a pricing description stands for (window [start, end) on the world's axis, which
    /// is the MMM's axis when the MMM is fitted to [`World::dataset`]).
    pub fn from_hypothetical(t: &HypotheticalTest) -> Self {
        Self {
            channels: t.channels.clone(),
            geos: t.geos.clone(),
            start: t.start,
            weeks: t.end.saturating_sub(t.start),
            change: t.change,
            readout_bias: 1.0,
            label: String::new(),
        }
    }

    /// The pricing description of this test (full carry-over tail).
    pub fn to_hypothetical(&self) -> HypotheticalTest {
        let ch: Vec<&str> = self.channels.iter().map(String::as_str).collect();
        let geos: Vec<&str> = self.geos.iter().map(String::as_str).collect();
        HypotheticalTest::new(&ch, &geos, self.start, self.start + self.weeks, self.change)
    }

    /// Cell `cell` of a geo-lift design record (`mmloop design` with `--channel`, `--start` and a
    /// spend change): its channels, planned start, the cell's treated geos and planned end, and the
    /// record's spend change as a total.
    pub fn from_design(world: &World, design: &DesignRecord, cell: usize) -> Result<Self, WorldError> {
        let err = |m: String| WorldError::Test { test: format!("design cell {cell}"), message: m };
        let c = design.cells.get(cell).ok_or_else(|| err(format!("the design has {} cells", design.cells.len())))?;
        let start = design.start.as_deref().ok_or_else(|| err("the design has no planned start".into()))?;
        let spend = design.spend_change.ok_or_else(|| err("the design has no spend change".into()))?;
        let start = world.week_index(start)?;
        let weeks = match &c.end {
            Some(end) => world.week_index(end)?.checked_sub(start).map(|d| d + 1),
            None => Some(c.duration),
        }
        .ok_or_else(|| err("the cell ends before it starts".into()))?;
        Ok(Self {
            channels: design.channels.clone(),
            geos: c.treated.clone(),
            start,
            weeks,
            change: SpendChange::Total(spend),
            readout_bias: 1.0,
            label: String::new(),
        })
    }

    fn name(&self) -> String {
        format!(
            "{} in {} (weeks {}..{})",
            self.channels.join("+"),
            self.geos.join(","),
            self.start,
            self.start + self.weeks
        )
    }
}

/// How tests are read out.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadoutOptions {
    /// The geo-lift settings (estimators, α, permutations, …). Its `treated`, `start`, `end`,
    /// `channels`, `spend_change` and `seed` are set per test; the seed is `seed` + the test's
    /// running number in the world.
    pub params: ReadoutParams,
    /// Weeks of pre-period in the panel (fewer if the history is shorter).
    pub pre_weeks: usize,
    /// What reads a test `params` cannot read out (the readout fails); `None`: the failure is an error.
    pub fallback: Option<Fallback>,
}

impl Default for ReadoutOptions {
    /// `mmloop lift`'s defaults (synthetic control, conformal inference, 1000 permutations) on a
    /// 52-week pre-period.
    fn default() -> Self {
        Self { params: ReadoutParams::default(), pre_weeks: 52, fallback: None }
    }
}

/// Synthetic control's actual error over the standard error it reports, on the demo worlds: the
/// root mean square of (readout − true lift) over the mean reported SE was 1.66 (search heavy-up,
/// 3 geos, 6 weeks: error sd 0.85M, mean 0.16M, SE 0.52M) and 1.83 (tv go-dark, 3 geos, 8 weeks:
/// 1.16M, 0.39M, 0.67M) over 100 worlds each (`world::tests::readout_coverage_table`); this is
/// their mean. The conformal test's exchangeability over time ignores the autocorrelation of the
/// geos' demand deviations, so its interval is too narrow (72–73 % coverage at a nominal 90 %).
pub const SC_SE_INFLATION: f64 = 1.75;

/// The reader of tests the chosen estimator cannot read: its settings and the factor its
/// standard error (and its interval about the estimate) is multiplied by before the record leaves
/// the world, so that a readout whose SE is known to understate its error never enters a ledger
/// at face value (the record attached is the inflated one; there is no later correction to miss).
#[derive(Debug, Clone, PartialEq)]
pub struct Fallback {
    pub params: ReadoutParams,
    /// ≥ 1; 1 for an estimator whose SE is honest.
    pub se_inflation: f64,
}

impl Fallback {
    /// Synthetic control (`mmloop lift`'s default) with its SE × [`SC_SE_INFLATION`].
    pub fn sc() -> Self {
        Self { params: ReadoutParams::default(), se_inflation: SC_SE_INFLATION }
    }
}

impl ReadoutOptions {
    /// Synthetic control with 200 conformal permutations and 50 placebo replications: the CLI's
    /// estimator at a fraction of the cost, for simulations over many worlds.
    pub fn fast() -> Self {
        Self {
            params: ReadoutParams { permutations: 200, placebo_reps: 50, ..ReadoutParams::default() },
            pre_weeks: 52,
            fallback: None,
        }
    }

    /// One estimator (`sc`, `ascm`, `sdid`, `did`, `twfe`, `tbr`) with the CLI's other defaults.
    /// Over 100 demo worlds the 90 % intervals of `did` and `ascm` covered the true lift 84–91 % of
    /// the time, `sc`'s conformal interval 72 % (see the world's `readout_coverage_table` test).
    pub fn with_estimator(name: &str) -> Self {
        Self {
            params: ReadoutParams { estimators: vec![name.to_string()], ..ReadoutParams::default() },
            pre_weeks: 52,
            fallback: None,
        }
    }
}

/// A test run in the world: its calibration record and its truth.
#[derive(Debug, Clone)]
pub struct TestRun {
    pub test: PlannedTest,
    /// The readout as the ledger stores it (planted bias applied).
    pub record: LiftTestRecord,
    /// The readout's (1 − α) interval of the incremental KPI (planted bias applied).
    pub interval: (f64, f64),
    /// The spend change actually applied (money, summed over channels, geos, weeks).
    pub spend_change: f64,
    /// True incremental KPI inside the window (what the readout estimates).
    pub true_lift_in_window: f64,
    /// True incremental KPI through the window's end + max_lag (what the MMM's lift term implies).
    pub true_lift_with_carryover: f64,
    /// The regional panel the readout ran on (pre-period + window).
    pub panel: Panel,
    /// The bias factor applied to the readout: the test's `readout_bias` times the world's
    /// occasional experiment bias ([`super::ExperimentBias`]); 1 for an honest readout.
    pub bias: f64,
    /// Why the chosen estimator could not read the test, when the [`Fallback`] read it.
    pub fallback: Option<String>,
}

impl TestRun {
    /// The same readout as a record of the *reverse* test — spend change and incremental KPI negated
    /// (and the spend path's deltas): what restoring the test's cells to business as usual would do.
    ///
    /// Why: `mmloop_mmm::calibration` implies a record's lift as f(x_data + Δ) − f(x_data), taking
    /// the data as the no-test state, but data observed after a test contains it (x_data = x_bau + Δ).
    /// For such data the reverse record's implied lift, f(x_data − Δ) − f(x_data), is exactly minus the
    /// test's lift f(x_bau + Δ) − f(x_bau), and its observation is minus the readout: the readout
    /// enters the likelihood correctly. (A go-dark's original record implies 0 on such data:
    /// x_data = 0 and 0 + Δ clips at 0.)
    pub fn reversed_record(&self) -> LiftTestRecord {
        let mut r = self.record.clone();
        r.spend_change = -r.spend_change;
        r.incremental_kpi = -r.incremental_kpi;
        if let Some(p) = &mut r.spend_path {
            p.iter_mut().for_each(|d| d.delta = -d.delta);
        }
        r
    }

    /// Whether the readout's interval covers the true in-window lift.
    pub fn covers_truth(&self) -> bool {
        self.interval.0 <= self.true_lift_in_window && self.true_lift_in_window <= self.interval.1
    }
}

/// A test checked against the world: channel and geo indices, window [start, end).
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub channels: Vec<usize>,
    pub geos: Vec<usize>,
    pub start: usize,
    pub end: usize,
    pub change: SpendChange,
}

pub(crate) fn resolve(world: &World, t: &PlannedTest, from: usize, to: usize) -> Result<Resolved, WorldError> {
    let err = |m: String| WorldError::Test { test: t.name(), message: m };
    let names = world.channel_names();
    let geo_names = world.geo_names();
    if t.channels.is_empty() {
        return Err(err("names no channel; set `channels`".into()));
    }
    let mut channels = Vec::new();
    for c in &t.channels {
        let i = names
            .iter()
            .position(|n| n == c)
            .ok_or_else(|| err(format!("channel {c:?} is not in the world (channels: {})", names.join(", "))))?;
        if channels.contains(&i) {
            return Err(err(format!("channel {c:?} is listed twice")));
        }
        channels.push(i);
    }
    let mut geos = Vec::new();
    for g in &t.geos {
        let i = geo_names
            .iter()
            .position(|n| n == g)
            .ok_or_else(|| err(format!("geo {g:?} is not in the world (geos: {})", geo_names.join(", "))))?;
        if geos.contains(&i) {
            return Err(err(format!("geo {g:?} is listed twice")));
        }
        geos.push(i);
    }
    if geos.is_empty() || geos.len() + 2 > geo_names.len() {
        return Err(err(format!(
            "treats {} geos of {}; a geo test needs at least one treated geo and two controls",
            geos.len(),
            geo_names.len()
        )));
    }
    if t.weeks == 0 {
        return Err(err("the window has no weeks".into()));
    }
    let (start, end) = (t.start, t.start + t.weeks);
    if start < from || end > to {
        return Err(err(format!(
            "the window must lie in the weeks being generated, {from}..{to} (the observed history ends at week {from}); \
             plan it after the data"
        )));
    }
    if start < 10 {
        return Err(err("needs at least 10 pre-period weeks".into()));
    }
    match t.change {
        SpendChange::Total(v) | SpendChange::PerPeriod(v) if !v.is_finite() || v == 0.0 => {
            return Err(err(format!("spend change {v} must be a finite non-zero amount")));
        }
        SpendChange::Multiplier(m) if !(m.is_finite() && m >= 0.0 && m != 1.0) => {
            return Err(err(format!("multiplier {m} must be finite, >= 0 and not 1")));
        }
        _ => {}
    }
    if !(t.readout_bias.is_finite() && t.readout_bias != 0.0) {
        return Err(err(format!(
            "readout_bias {} must be a finite non-zero factor of the true lift (1 = honest, -1 = the wrong sign)",
            t.readout_bias
        )));
    }
    Ok(Resolved { channels, geos, start, end, change: t.change })
}

/// Applies a test's spend change to a segment's spend ([c][g][t − from], money); returns the
/// deltas actually applied, (c, g, t, Δ).
pub(crate) fn apply(r: &Resolved, spend: &mut [Vec<Vec<f64>>], from: usize) -> Vec<(usize, usize, usize, f64)> {
    let weeks = r.end - r.start;
    let cells = (r.geos.len() * weeks) as f64;
    let bau: Vec<f64> = r
        .channels
        .iter()
        .map(|&c| r.geos.iter().map(|&g| spend[c][g][r.start - from..r.end - from].iter().sum::<f64>()).sum())
        .collect();
    let bau_total: f64 = bau.iter().sum();
    let mut out = Vec::new();
    for (k, &c) in r.channels.iter().enumerate() {
        let share = if bau_total > 0.0 { bau[k] / bau_total } else { 1.0 / r.channels.len() as f64 };
        for &g in &r.geos {
            for t in r.start..r.end {
                let x = &mut spend[c][g][t - from];
                let target = match r.change {
                    SpendChange::Total(s) => *x + share * s / cells,
                    SpendChange::PerPeriod(p) => *x + share * p * weeks as f64 / cells,
                    SpendChange::Multiplier(m) => *x * m,
                };
                let new = cents(target.max(0.0));
                out.push((c, g, t, new - *x));
                *x = new;
            }
        }
    }
    out
}

/// Per test (before readout): the true lifts and the spend change applied.
pub(crate) struct Truths {
    pub spend_change: f64,
    pub in_window: f64,
    pub with_carryover: f64,
}

pub(crate) fn truths(world: &World, seg: &Segment, tests: &[Resolved]) -> Vec<Truths> {
    tests
        .iter()
        .zip(&seg.deltas)
        .map(|(r, deltas)| {
            let l = world.spec.max_lag;
            let (mut in_window, mut with_carryover) = (0.0, 0.0);
            for &c in &r.channels {
                for &g in &r.geos {
                    let factual: Vec<f64> = [world.spend[c][g].as_slice(), seg.spend[c][g].as_slice()].concat();
                    let mut cf = factual.clone();
                    for &(_, _, t, d) in deltas.iter().filter(|d| d.0 == c && d.1 == g) {
                        cf[t] -= d;
                    }
                    let (f, n) = (world.contribution_path(c, g, &factual, 0), world.contribution_path(c, g, &cf, 0));
                    for t in r.start..(r.end + l).min(factual.len()) {
                        let d = f[t] - n[t];
                        with_carryover += d;
                        if t < r.end {
                            in_window += d;
                        }
                    }
                }
            }
            Truths { spend_change: deltas.iter().map(|d| d.3).sum(), in_window, with_carryover }
        })
        .collect()
}

/// The regional panel of weeks lo..hi: KPI and the spend of `channels` (summed), in money.
pub(crate) fn panel(
    world: &World,
    lo: usize,
    hi: usize,
    channels: &[usize],
    source: &str,
) -> Result<Panel, WorldError> {
    let g_n = world.geos.len();
    let mut time = TimeColumn { kind: TimeKind::Date, values: Vec::new(), labels: Vec::new() };
    let (mut geo, mut kpi) = (Vec::new(), Vec::new());
    for t in lo..hi {
        for g in 0..g_n {
            time.values.push(super::generate::FIRST_WEEK + 7.0 * t as f64);
            time.labels.push(world.week_label(t));
            geo.push(world.geos[g].name.clone());
            kpi.push(world.kpi[g][t]);
        }
    }
    let mut p = Panel::from_long(source, time, &geo, "sales", &kpi)?;
    let spend = mmloop_geolift::ndarray::Array2::from_shape_fn((g_n, hi - lo), |(g, k)| {
        channels.iter().map(|&c| world.spend[c][g][lo + k]).sum::<f64>()
    });
    p.spend = Some(spend);
    Ok(p)
}

/// Reads out every test on the world's (already extended) history.
pub(crate) fn read_all(
    world: &World,
    tests: &[Resolved],
    seg: &Segment,
    truths: Vec<Truths>,
    planned: &[PlannedTest],
    opts: &ReadoutOptions,
    first_index: usize,
) -> Result<Vec<TestRun>, WorldError> {
    if let Some(fb) = &opts.fallback
        && !(fb.se_inflation.is_finite() && fb.se_inflation >= 1.0)
    {
        return Err(WorldError::Test {
            test: "readout fallback".into(),
            message: format!("se_inflation {} must be a finite factor ≥ 1", fb.se_inflation),
        });
    }
    let jobs: Vec<_> = tests.iter().zip(truths).zip(planned).zip(&seg.deltas).enumerate().collect();
    jobs.into_par_iter()
        .map(|(k, (((r, truth), plan), deltas))| {
            let name = plan.name();
            let wrap = |e| WorldError::Readout { test: name.clone(), source: Box::new(e) };
            if truth.spend_change == 0.0 {
                return Err(WorldError::Test {
                    test: name.clone(),
                    message: "changed no spend (a cut of a channel that was not spending?)".into(),
                });
            }
            let lo = r.start.saturating_sub(opts.pre_weeks);
            let source = if plan.label.is_empty() {
                format!("world seed {} test {}", world.spec.seed, first_index + k + 1)
            } else {
                plan.label.clone()
            };
            let p = panel(world, lo, r.end, &r.channels, &source)?;
            let read = |params: &ReadoutParams| {
                let settings = ReadoutParams {
                    treated: plan.geos.clone(),
                    treatment_col: None,
                    cells: Vec::new(),
                    start: Some(world.week_label(r.start)),
                    end: Some(world.week_label(r.end - 1)),
                    channels: plan.channels.clone(),
                    spend_change: Some(truth.spend_change),
                    seed: params.seed.wrapping_add((first_index + k) as u64),
                    ..params.clone()
                }
                .check()?;
                read_out(&p, &settings, &NoProgress)
            };
            let (readout, inflation, fallback) = match (read(&opts.params), &opts.fallback) {
                (Ok(r), _) => (r, 1.0, None),
                (Err(e), Some(fb)) => {
                    let why = std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join(": ");
                    (read(&fb.params).map_err(wrap)?, fb.se_inflation, Some(why))
                }
                (Err(e), None) => return Err(wrap(e)),
            };
            let mut record = readout.records().first().cloned().ok_or_else(|| WorldError::Test {
                test: name.clone(),
                message: "the readout produced no record".into(),
            })?;
            let est = &readout.cells()[0].estimates[0];
            let scale = (est.n_post * est.n_treated) as f64;
            let z = mmloop_geolift::stats::normal_quantile(1.0 - readout.alpha / 2.0);
            let mut interval = match (est.ci_lower, est.ci_upper) {
                (Some(a), Some(b)) => (a * scale, b * scale),
                _ => (
                    record.incremental_kpi - z * record.standard_error,
                    record.incremental_kpi + z * record.standard_error,
                ),
            };
            if inflation != 1.0 {
                // the fallback's SE, and its interval about the estimate, widened before the record
                // leaves the world
                let m = record.incremental_kpi;
                record.standard_error *= inflation;
                interval = (m - inflation * (m - interval.0), m + inflation * (interval.1 - m));
                record.estimator = format!("{} (SE x{inflation})", record.estimator);
            }
            // the world's occasional bias, keyed by (seed, the test's running number)
            let eb = world.spec.experiment_bias;
            let index = (first_index + k) as u64;
            let drawn = if eb.probability > 0.0
                && rng::uniform(world.spec.seed, S_EXPERIMENT_BIAS, 2 * index) < eb.probability
            {
                eb.factor.0
                    + (eb.factor.1 - eb.factor.0) * rng::uniform(world.spec.seed, S_EXPERIMENT_BIAS, 2 * index + 1)
            } else {
                1.0
            };
            let b = plan.readout_bias * drawn;
            record.incremental_kpi *= b;
            // a negative factor (the wrong sign) swaps the interval's ends
            interval = ((interval.0 * b).min(interval.1 * b), (interval.0 * b).max(interval.1 * b));
            record.source = source;
            // even per channel (to the cent): the record's spread-evenly rule is then exact (a channel
            // set's split follows the window's spend, which the change keeps in proportion)
            let even = r.channels.iter().all(|&c| {
                let d: Vec<f64> = deltas.iter().filter(|d| d.0 == c).map(|d| d.3).collect();
                d.windows(2).all(|w| (w[0] - w[1]).abs() <= 0.011)
            });
            record.spend_path = if even {
                None
            } else {
                Some(
                    deltas
                        .iter()
                        .map(|&(_, g, t, d)| SpendDelta {
                            time: world.week_label(t),
                            geo: world.geos[g].name.clone(),
                            delta: d,
                        })
                        .collect(),
                )
            };
            Ok(TestRun {
                test: plan.clone(),
                record,
                interval,
                spend_change: truth.spend_change,
                true_lift_in_window: truth.in_window,
                true_lift_with_carryover: truth.with_carryover,
                panel: p,
                bias: b,
                fallback,
            })
        })
        .collect()
}
