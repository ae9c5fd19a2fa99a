//! Which tests to run next, as a user asks it: candidate tests from a geo design (or a stated
//! precision, or a stale readout in the ledger), priced on the fitted posterior, valued by EIG,
//! EVOI and EVPI ([`crate::value`]), costed in money, placed in the 2×2 and chosen as a portfolio.
//!
//! ```no_run
//! use mmloop_loop::rank::{CandidateSpec, DesignOptions, RankSettings, design_candidates, rank, search_designs};
//! use mmloop_geolift::{Columns, NoProgress, Panel};
//! # fn f(fit: &mmloop_mmm::optimize::FittedModel) -> Result<(), mmloop_loop::rank::RankError> {
//! let cols = Columns { time: "date".into(), geo: "geo".into(), kpi: "sales".into(), ..Default::default() };
//! let panel = Panel::read("data/demo_geo.csv", &cols).expect("panel");
//! let selection = search_designs(fit, &panel, &DesignOptions::default(), &NoProgress)?;
//! let candidates = design_candidates(fit, &selection, &CandidateSpec::default())?;
//! let ranking = rank(fit, &candidates, &RankSettings::default(), &NoProgress)?;
//! for c in &ranking.candidates {
//!     println!("{} EIG {:.3} EVOI {:.0} cost {:.0} {:?}", c.name, c.eig, c.evoi.evoi, c.cost.cost, c.quadrant.quadrant);
//! }
//! # Ok(()) }
//! ```
//!
//! # A candidate and what it is worth
//! A candidate test ([`CandidateTest`]) is a channel (or channel set) × treated geos × duration ×
//! spend change (go-dark: media × 0; heavy-up: media × m) × start (a period after the data's end).
//! The model knows it through two numbers per posterior draw d:
//!
//! - **L_d**, the incremental KPI the readout would measure: hypothetical-test pricing
//!   ([`mmloop_mmm::pricing::price_test`]) over the treated geos, *summed* over them, and over the
//!   test window's periods only ([`Tail::WindowOnly`]: a readout that stops with the test does not
//!   see the carry-over after it);
//! - **σ_exp**, the readout's standard error in the same units: from a geo design on the regional
//!   panel, `se_lift × baseline_kpi` ([`mmloop_geolift::design::PowerCurve::se_incremental`]), where
//!   `baseline_kpi` is the treated geos' counterfactual KPI summed over the geos and the window — so
//!   both numbers are totals over the same geos and the same number of periods, in KPI units
//!   ([`check_panel`] makes sure the panel's KPI is the model's); or, without a panel, a stated
//!   relative precision times the treated geos' recent KPI over the window ([`StatedPrecision`]);
//!   or, for a re-test, the standard error the same design achieved last time.
//!
//! EIG, EVOI (budget re-optimised under the readout, over the planning horizon) and EVPI come from
//! [`crate::value`].
//!
//! # Cost
//! The test's opportunity cost in money, from the posterior (see [`TestCost::new`]):
//! ```text
//! cost = max(0, ΔS − v·E_d[L_d^full])
//! ```
//! ΔS the spend change the test makes (money: > 0 heavy-up, < 0 go-dark: the spend saved), v the
//! value of one KPI unit, L^full the implied lift with the whole carry-over ([`Tail::Full`]). For a
//! heavy-up that is the extra spend less its expected return; for a go-dark, the expected outcome
//! lost in the dark geos less the spend saved. A test expected to pay for itself costs nothing
//! (clamped at 0; its expected profit is reported, not added to its value: whether to move the
//! budget is the optimiser's decision, the test is valued for its information).
//!
//! # Re-tests
//! A channel with a readout in the ledger is flagged on every candidate that moves it
//! ([`RetestInfo`]); when its newest readout is stale (its variance inflated by the decay at
//! least [`DEFAULT_STALE_INFLATION`]-fold, i.e. at least one half-life old), the same test repeated
//! from a planned start is added as a candidate of its own, with the standard error the readout
//! had ([`retest_candidates`]).

mod candidates;
mod decision;
mod report;
#[cfg(test)]
mod tests;

pub use candidates::{
    CandidateOptions, CandidateSet, CandidateSpec, DEFAULT_STALE_INFLATION, DesignOptions, DesignReader,
    StatedPrecision, build_candidates, check_panel, design_candidates, ledger_readouts, reader_candidates,
    retest_candidates, search_designs, stated_candidates,
};
pub use report::{portfolio_table, quadrant_table, ranking_csv, ranking_table};

use crate::value::{
    BudgetDecision, Classification, Estimator, Evoi, EvoiSettings, Evpi, MonteCarloEig, PortfolioConstraints,
    PriorOptimum, TestSignal, Thresholds, ValueError, ValueUnit, classify, eig_monte_carlo, eig_single, evoi, evpi,
    exhaustive_portfolio, greedy_portfolio_with_error, paired_marginal,
};
use mmloop_geolift::Progress;
use mmloop_mmm::optimize::{FittedModel, OutcomeUnit, PlanningBasis, SolverSettings, relative_bounds};
use mmloop_mmm::pricing::{HypotheticalTest, ImpliedLift, SpendChange, Tail, price_test};
use serde::Serialize;
use std::collections::HashMap;

/// Why a ranking cannot be made. Each variant names the option or input at fault and what to do.
#[derive(Debug, thiserror::Error)]
pub enum RankError {
    #[error("{option}: {message}")]
    Option { option: &'static str, message: String },
    #[error("the panel {panel} does not match the model: {message}")]
    PanelMismatch { panel: String, message: String },
    #[error("candidate {name:?}: {error}")]
    Pricing {
        name: String,
        #[source]
        error: mmloop_mmm::pricing::PricingError,
    },
    #[error("no candidate tests: {0}")]
    NoCandidates(String),
    #[error(transparent)]
    Value(#[from] ValueError),
    #[error(transparent)]
    Design(#[from] mmloop_geolift::design::DesignError),
    #[error(transparent)]
    Plan(#[from] mmloop_mmm::optimize::PlanError),
    #[error(transparent)]
    Calibrate(#[from] crate::calibrate::CalibrateError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
}

pub(crate) fn bad(option: &'static str, message: impl Into<String>) -> RankError {
    RankError::Option { option, message: message.into() }
}

/// How the spend changes during a candidate test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Media × factor in every treated cell of the window: 0 is go-dark, 1.5 a +50 % heavy-up.
    Multiplier(f64),
    /// Money over the whole window summed over the treated geos (a past test repeated).
    Total(f64),
}

impl Change {
    pub fn to_pricing(self) -> SpendChange {
        match self {
            Change::Multiplier(m) => SpendChange::Multiplier(m),
            Change::Total(v) => SpendChange::Total(v),
        }
    }

    /// go-dark (spend falls) or heavy-up (spend rises).
    pub fn kind(self) -> &'static str {
        match self {
            Change::Multiplier(m) if m < 1.0 => "go-dark",
            Change::Total(v) if v < 0.0 => "go-dark",
            _ => "heavy-up",
        }
    }

    fn label(self) -> String {
        match self {
            Change::Multiplier(0.0) => "go-dark".into(),
            Change::Multiplier(m) => format!("{} {:+.0}%", self.kind(), 100.0 * (m - 1.0)),
            Change::Total(v) => format!("{} {v:+.0}", self.kind()),
        }
    }
}

/// Where a candidate's readout standard error σ_exp comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Precision {
    /// A geo design simulated on the regional panel: σ = `se_lift × baseline_kpi`.
    Design {
        /// The design's rank in the market selection (1 = best).
        design_rank: usize,
        se_lift: f64,
        se_lift_model: f64,
        baseline_kpi: f64,
        /// Relative MDE at the design's target power (heavy-up side), if reached on the grid.
        mde: Option<f64>,
        windows: usize,
    },
    /// A geo design whose σ is the readout estimator's own standard error, predicted on the
    /// panel's latest window of history ([`mmloop_geolift::readout::predict_readout`]):
    /// σ = `relative_se × baseline_kpi`. Chosen when the estimator that will read the test is known
    /// ([`DesignReader`]).
    Reader {
        /// The design's rank in the market selection (1 = best) and in the reader's order (1 = the
        /// smallest relative SE among the designs it can read).
        design_rank: usize,
        reader_rank: usize,
        /// The estimator that reads the test out (the readout's first).
        estimator: String,
        relative_se: f64,
        baseline_kpi: f64,
        /// The readout's estimate on that window of history, nothing injected (a placebo in time).
        placebo_estimate: f64,
        /// Synthetic control's placebo-in-time SE of the same design (the search's), for comparison.
        sc_se_lift: f64,
    },
    /// A stated relative standard error times the treated geos' recent KPI over the window.
    Stated { relative_se: f64, baseline_kpi: f64 },
    /// The standard error the same test's readout had (a re-test).
    PastReadout { experiment_id: i64, standard_error: f64 },
}

/// A channel's earlier evidence, on every candidate that moves it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetestInfo {
    /// The newest readout on the channel set.
    pub experiment_id: i64,
    pub end: String,
    pub age_weeks: f64,
    pub half_life_weeks: f64,
    /// exp(λ·age): SE²_eff / SE².
    pub variance_inflation: f64,
    /// `variance_inflation ≥` the staleness threshold: the evidence has decayed, re-test.
    pub stale: bool,
}

/// A test that could be run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateTest {
    /// Unique among the candidates; also keys the test's readout-noise stream.
    pub name: String,
    pub channels: Vec<String>,
    /// Treated geos; empty: every geo (a national test).
    pub geos: Vec<String>,
    /// First test period as an index on the model's time axis (≥ the data's periods: the future).
    pub start: usize,
    pub duration: usize,
    pub change: Change,
    /// σ_exp: the readout's standard error, KPI units, summed over the treated geos and the window.
    pub sigma: f64,
    pub precision: Precision,
    /// Set when the channel set has a readout in the ledger.
    pub retest: Option<RetestInfo>,
    /// A repeat of a stale ledger test (not a design candidate).
    pub is_retest: bool,
}

impl CandidateTest {
    /// The test as hypothetical-test pricing sees it, with the given tail rule.
    pub fn hypothetical(&self, tail: Tail) -> HypotheticalTest {
        let mut t = HypotheticalTest::new(&[], &[], self.start, self.start + self.duration, self.change.to_pricing());
        t.channels = self.channels.clone();
        t.geos = self.geos.clone();
        t.tail = tail;
        t
    }

    /// The (geo, period) cells the test occupies, for the "no geo in two simultaneous tests" rule.
    fn cells(&self, all_geos: &[String]) -> Vec<String> {
        let geos = if self.geos.is_empty() { all_geos } else { &self.geos };
        geos.iter().flat_map(|g| (self.start..self.start + self.duration).map(move |t| format!("{g}@{t}"))).collect()
    }
}

/// A test's opportunity cost in money (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TestCost {
    /// ΔS: the spend change the test makes, money (< 0: spend saved by going dark).
    pub spend_change: f64,
    /// E_d[L_d^full]: the expected incremental KPI with the whole carry-over.
    pub expected_lift: f64,
    /// v·E[L^full], money.
    pub expected_return: f64,
    /// max(0, ΔS − v·E[L^full]).
    pub cost: f64,
    /// v·E[L^full] − ΔS: what the test is expected to earn (negative: it costs).
    pub expected_profit: f64,
}

impl TestCost {
    /// cost = max(0, ΔS − v·E[L^full]): for a heavy-up the extra spend less its expected return,
    /// for a go-dark (ΔS < 0, L < 0) the expected outcome lost less the spend saved.
    pub fn new(spend_change: f64, expected_lift: f64, value_per_kpi: f64) -> Self {
        let expected_return = value_per_kpi * expected_lift;
        let profit = expected_return - spend_change;
        Self { spend_change, expected_lift, expected_return, cost: (-profit).max(0.0), expected_profit: profit }
    }
}

/// Summary of a posterior of implied lifts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LiftSummary {
    pub mean: f64,
    pub sd: f64,
    pub q05: f64,
    pub q95: f64,
}

impl From<&ImpliedLift> for LiftSummary {
    fn from(l: &ImpliedLift) -> Self {
        Self { mean: l.mean, sd: l.sd, q05: l.q05, q95: l.q95 }
    }
}

/// Which EIG the 2×2 used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EigMethod {
    /// ½·ln(1 + Var(L)/σ²): the implied lift's posterior is close to Gaussian.
    Gaussian,
    /// The nested Monte-Carlo estimate on the draws (floored at 0): |skewness| > 1 or excess
    /// kurtosis > 3.
    MonteCarlo,
}

/// One candidate with every figure of its ranking.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankedCandidate {
    /// 1 = the largest net value.
    pub rank: usize,
    pub name: String,
    pub channels: Vec<String>,
    pub geos: Vec<String>,
    pub start: String,
    pub end: String,
    pub duration: usize,
    pub test_type: &'static str,
    pub change: Change,
    pub precision: Precision,
    pub retest: Option<RetestInfo>,
    pub is_retest: bool,
    /// σ_exp, KPI units.
    pub sigma: f64,
    /// Implied lift over the window (what the readout measures), KPI units.
    pub lift: LiftSummary,
    /// Expected readout z: |E L| / σ.
    pub expected_z: f64,
    /// The EIG the 2×2 uses (nats), and both estimates.
    pub eig: f64,
    pub eig_method: EigMethod,
    pub eig_gaussian: f64,
    pub eig_monte_carlo: MonteCarloEig,
    pub evoi: Evoi,
    /// The value of perfect information of the decision (the same for every candidate; EVOI ≤ EVPI).
    pub evpi: f64,
    pub cost: TestCost,
    /// EVOI − cost.
    pub net_value: f64,
    pub quadrant: Classification,
}

/// How a ranking is computed.
#[derive(Debug, Clone, PartialEq)]
pub struct RankSettings {
    /// Planning horizon in periods: the decision the readout informs is the budget over it.
    pub horizon: usize,
    /// Budget over the horizon (default: the spend of the last `horizon` periods).
    pub budget: Option<f64>,
    /// Each channel may move this share of its current spend either way.
    pub relative: f64,
    /// Absolute (channel, lower, upper) overrides of the relative bounds (a loop config's
    /// `[[budget.bounds]]`), so the ranking values tests for the decision the budget step makes.
    pub bounds: Vec<(String, f64, f64)>,
    /// Money per KPI unit (default: the model's revenue per KPI if it has one, else 1: the KPI is money).
    pub value_per_kpi: Option<f64>,
    /// The portfolio's constraints and stop rule; its `net_floor` is set by the ranking from
    /// `materiality` (whatever it holds here).
    pub constraints: PortfolioConstraints,
    /// The materiality floor of the portfolio's stop rule as a share of the decision's EVPI (in
    /// [0, 1); default 0.01): a test is picked only if its marginal net value exceeds
    /// `materiality` × EVPI plus `constraints.error_z` Monte-Carlo standard errors
    /// ([`crate::value::portfolio`]). EVPI is the value of knowing every channel's response
    /// exactly, the most any test can be worth to this decision, so the default asks a test to be
    /// worth at least 1 % of what is at stake — a scale-free floor that is never a fixed sum of
    /// money, and that removes the values of cents the finite draws' optimiser's curse leaves on
    /// irrelevant tests.
    pub materiality: f64,
    /// The portfolio chooses among the this-many candidates of largest single net value.
    pub portfolio_pool: usize,
    /// The exhaustive optimum is computed beside the greedy one when the pool has at most this many.
    pub exhaustive_max: usize,
    pub thresholds: Thresholds,
    pub evoi: EvoiSettings,
    /// Draws at which EVPI's per-draw optimum is computed (a seeded sample beyond).
    pub evpi_draws: usize,
    /// Simulated readouts of the Monte-Carlo EIG.
    pub eig_readouts: usize,
    /// Rank on at most this many posterior draws, evenly spaced through the fit's (all chains
    /// kept); `None`: every draw. Every EVOI re-optimises the budget once per simulated readout
    /// over all the draws used, so this bounds the run time.
    pub max_draws: Option<usize>,
    /// The decision's response curves at the long-run adstock level (as `mmloop optimize
    /// --steady-state`): faster, exact for a horizon long against the adstock.
    pub steady_state: bool,
}

/// The default materiality floor of the portfolio: 1 % of the decision's EVPI (see
/// [`RankSettings::materiality`]).
pub const DEFAULT_MATERIALITY: f64 = 0.01;

impl Default for RankSettings {
    fn default() -> Self {
        Self {
            horizon: 13,
            budget: None,
            relative: 0.3,
            bounds: Vec::new(),
            value_per_kpi: None,
            constraints: PortfolioConstraints::default(),
            materiality: DEFAULT_MATERIALITY,
            portfolio_pool: 10,
            exhaustive_max: 8,
            thresholds: Thresholds::default(),
            evoi: EvoiSettings::default(),
            evpi_draws: 500,
            eig_readouts: 400,
            max_draws: Some(1000),
            steady_state: false,
        }
    }
}

impl RankSettings {
    /// Checks every setting; errors name the option.
    pub fn validate(&self) -> Result<(), RankError> {
        if self.horizon == 0 {
            return Err(bad("--horizon", "the planning horizon needs at least 1 period"));
        }
        if let Some(b) = self.budget
            && !(b.is_finite() && b > 0.0)
        {
            return Err(bad("--budget", format!("{b} is not a budget: give a finite amount of money > 0")));
        }
        if !(self.relative.is_finite() && (0.0..=1.0).contains(&self.relative)) {
            return Err(bad("--relative", format!("{} is not a fraction from 0 to 1", self.relative)));
        }
        if let Some(v) = self.value_per_kpi
            && !(v.is_finite() && v > 0.0)
        {
            return Err(bad("--value-per-kpi", format!("{v} is not a value: give money per KPI unit, > 0")));
        }
        if self.constraints.max_tests == 0 {
            return Err(bad("--max-tests", "a portfolio needs room for at least 1 test"));
        }
        if let Some(b) = self.constraints.test_budget
            && !(b.is_finite() && b >= 0.0)
        {
            return Err(bad("--test-budget", format!("{b} is not a budget: give a finite amount of money ≥ 0")));
        }
        if !(self.materiality.is_finite() && (0.0..1.0).contains(&self.materiality)) {
            return Err(bad(
                "--materiality",
                format!("{} is not a share of the EVPI from 0 (no floor) to below 1", self.materiality),
            ));
        }
        if !(self.constraints.error_z.is_finite() && self.constraints.error_z >= 0.0) {
            return Err(bad(
                "error_z",
                format!("{} is not a number of Monte-Carlo standard errors ≥ 0", self.constraints.error_z),
            ));
        }
        if self.evoi.quadrature_replicates == 0 {
            return Err(bad("quadrature_replicates", "a single test's EVOI needs at least 1 shifted readout grid"));
        }
        if self.portfolio_pool == 0 {
            return Err(bad("--pool", "the portfolio needs at least 1 candidate to choose from"));
        }
        if self.exhaustive_max > 16 {
            return Err(bad(
                "--exhaustive-max",
                format!("{} candidates is too many to search exhaustively (≤ 16)", self.exhaustive_max),
            ));
        }
        if !(self.thresholds.eig_target_nats.is_finite() && self.thresholds.eig_target_nats > 0.0) {
            return Err(bad("--eig-target", format!("{} nats is not a target > 0", self.thresholds.eig_target_nats)));
        }
        if self.evoi.n_readouts < 2 {
            return Err(bad("--readouts", format!("{} simulated readouts are too few (≥ 2)", self.evoi.n_readouts)));
        }
        if self.evpi_draws == 0 {
            return Err(bad("--evpi-draws", "needs at least 1 draw"));
        }
        if let Some(m) = self.max_draws
            && m < 2
        {
            return Err(bad("--draws", format!("{m} draws are too few to rank on (≥ 2)")));
        }
        if self.eig_readouts < 2 {
            return Err(bad("--eig-readouts", format!("{} readouts are too few (≥ 2)", self.eig_readouts)));
        }
        Ok(())
    }
}

/// The portfolio: greedy (always) and exhaustive (small pools) sets, with their constraints. Each
/// pick's `candidate` indexes [`Ranking::candidates`] (exhaustive picks carry no marginal value: NaN,
/// `null` in JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortfolioReport {
    /// As used: `net_floor` is `materiality` × EVPI.
    pub constraints: PortfolioConstraints,
    /// The materiality floor as a share of the EVPI.
    pub materiality: f64,
    /// The candidates the portfolio chose among (largest single net value first).
    pub pool: Vec<String>,
    pub greedy: crate::value::Portfolio,
    pub exhaustive: Option<crate::value::Portfolio>,
    /// Greedy net value / exhaustive net value (1 when both are empty). The exhaustive optimum
    /// maximises the point estimates without the greedy's materiality floor and error margin, so a
    /// ratio below 1 can also mean the greedy declined tests the estimates cannot vouch for.
    pub greedy_to_exhaustive: Option<f64>,
    /// Joint EVOIs computed (each a preposterior analysis).
    pub sets_evaluated: usize,
}

/// Every candidate ranked, with the decision it informs and the portfolio.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranking {
    pub unit: ValueUnit,
    pub value_per_kpi: f64,
    /// Where `value_per_kpi` came from.
    pub value_per_kpi_source: String,
    pub horizon: usize,
    pub budget: f64,
    /// The budget allocation without any test, per channel.
    pub prior_allocation: Vec<(String, f64)>,
    /// Expected outcome (money) of that allocation over the horizon.
    pub prior_expected_value: f64,
    pub evpi: Evpi,
    pub thresholds: Thresholds,
    /// Readouts per EVOI, seed, and the estimator rule.
    pub evoi_readouts: usize,
    pub seed: u64,
    /// Posterior draws ranked on, and the fit's.
    pub n_draws: usize,
    pub n_draws_fit: usize,
    pub steady_state: bool,
    /// Sorted by net value, largest first.
    pub candidates: Vec<RankedCandidate>,
    pub portfolio: PortfolioReport,
    pub notes: Vec<String>,
}

/// A stable 64-bit key of a name (FNV-1a): the candidate's readout-noise stream, so a candidate
/// gets the same noise whatever the order or set it is evaluated in.
fn stream_id(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// The time label of period `t` on the model's axis (beyond the data: the data's regular step).
pub fn period_label(fit: &FittedModel, t: usize) -> String {
    let times = &fit.data.times;
    let n = times.values.len();
    if t < n {
        return times.labels[t].clone();
    }
    let step = if n >= 2 { times.values[n - 1] - times.values[n - 2] } else { 1.0 };
    times.format(times.values[n - 1] + step * (t + 1 - n) as f64)
}

/// Money per KPI unit and where it came from: the setting, else the model's revenue per KPI
/// (KPI-weighted over the last `horizon` periods), else 1 (the KPI is money, e.g. sales).
fn value_per_kpi(fit: &FittedModel, settings: &RankSettings) -> (f64, String) {
    if let Some(v) = settings.value_per_kpi {
        return (v, "given (--value-per-kpi)".into());
    }
    let m = &fit.model;
    if m.has_revenue {
        let (t_n, tf) = (m.n_times, m.n_fit);
        let h = settings.horizon.min(tf);
        let (mut num, mut den) = (0.0, 0.0);
        for g in 0..m.n_geos() {
            for t in tf - h..tf {
                let k = fit.data.kpi[[g, t]];
                num += m.rpk[g * t_n + t] * k;
                den += k;
            }
        }
        if den > 0.0 && (num / den).is_finite() && num / den > 0.0 {
            return (num / den, format!("the model's revenue per KPI, KPI-weighted over the last {h} periods"));
        }
    }
    (1.0, "the KPI is counted as money (give --value-per-kpi if it is not)".into())
}

fn skew_kurt(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let m2 = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n;
    if m2 <= 0.0 {
        return (0.0, 0.0);
    }
    let m3 = x.iter().map(|v| (v - m).powi(3)).sum::<f64>() / n;
    let m4 = x.iter().map(|v| (v - m).powi(4)).sum::<f64>() / n;
    (m3 / m2.powf(1.5), m4 / (m2 * m2) - 3.0)
}

/// The joint EVOIs the portfolio asks for, cached: a single candidate's is its ranking EVOI (the
/// shifted quadrature); a set's, or a set's marginal over a smaller one, by Monte Carlo on common
/// readouts (the same seed: readout s of S ∪ {c} extends readout s of S), so the marginal is the
/// paired difference with its own standard error ([`paired_marginal`]).
struct SetValues<'a, P: crate::value::DecisionProblem> {
    problem: &'a P,
    prior: &'a PriorOptimum,
    signals: &'a [TestSignal],
    /// Pool position → candidate index.
    pool: &'a [usize],
    /// Pool position → the candidate's own EVOI.
    singles: Vec<&'a Evoi>,
    settings: &'a EvoiSettings,
    /// Monte-Carlo EVOIs of sets of pool positions (sorted), singletons included when a marginal needs one.
    monte_carlo: HashMap<Vec<usize>, Evoi>,
    evaluated: usize,
    progress: &'a dyn Progress,
}

impl<P: crate::value::DecisionProblem> SetValues<'_, P> {
    fn monte_carlo(&mut self, set: &[usize]) -> Result<&Evoi, ValueError> {
        if !self.monte_carlo.contains_key(set) {
            let s: Vec<&TestSignal> = set.iter().map(|&k| &self.signals[self.pool[k]]).collect();
            // plain Monte Carlo for singletons too, so that they pair with their supersets
            let mc = EvoiSettings { quadrature_spacing: 0.0, ..*self.settings };
            let e = evoi(self.problem, self.prior, &s, &mc)?;
            self.evaluated += 1;
            self.progress.inc(1);
            self.monte_carlo.insert(set.to_vec(), e);
        }
        Ok(&self.monte_carlo[set])
    }

    fn joint(&mut self, set: &[usize]) -> Result<f64, ValueError> {
        match set {
            [] => Ok(0.0),
            [k] => Ok(self.singles[*k].evoi),
            _ => Ok(self.monte_carlo(set)?.evoi),
        }
    }

    fn marginal(&mut self, base: &[usize], c: usize) -> Result<crate::value::Marginal, ValueError> {
        if base.is_empty() {
            let e = self.singles[c];
            return Ok(crate::value::Marginal { joint: e.evoi, gain: e.evoi, mcse: e.mcse });
        }
        let mut trial = base.to_vec();
        trial.push(c);
        trial.sort_unstable();
        let with = self.monte_carlo(&trial)?.clone();
        let b = self.monte_carlo(base)?;
        let m = paired_marginal(b, &with)?;
        Ok(crate::value::Marginal { joint: with.evoi, gain: m.gain, mcse: m.mcse })
    }
}

/// Ranks `candidates` on `fit` (see the module documentation). Deterministic given
/// `settings.evoi.seed`, whatever the thread count. `progress` gets one step per candidate and per
/// portfolio set.
pub fn rank(
    fit: &FittedModel,
    candidates: &[CandidateTest],
    settings: &RankSettings,
    progress: &dyn Progress,
) -> Result<Ranking, RankError> {
    settings.validate()?;
    if candidates.is_empty() {
        return Err(RankError::NoCandidates("give a panel, a stated precision or a ledger with readouts".into()));
    }
    let mut seen = std::collections::HashSet::new();
    for c in candidates {
        if !seen.insert(c.name.as_str()) {
            return Err(bad("candidates", format!("two candidates are named {:?}; names must be unique", c.name)));
        }
        if !(c.sigma.is_finite() && c.sigma > 0.0) {
            return Err(bad(
                "candidates",
                format!("candidate {:?}: readout standard error {} must be > 0", c.name, c.sigma),
            ));
        }
    }
    let n_draws_fit = fit.draws.len();
    if n_draws_fit < 2 {
        return Err(ValueError::NoDraws.into());
    }
    let thinned = decision::thin(fit, settings.max_draws);
    let fit: &FittedModel = &thinned;
    let n_draws = fit.draws.len();
    let mut notes = Vec::new();
    let (v, v_source) = value_per_kpi(fit, settings);
    let basis = PlanningBasis::new(fit, settings.horizon, OutcomeUnit::Kpi)?;
    let curves = basis.curves(fit, settings.steady_state)?;
    let bounds = relative_bounds(&basis, settings.relative, &settings.bounds)?;
    let current: f64 = basis.current.iter().sum();
    let budget = match settings.budget {
        Some(b) => b,
        None if current > 0.0 => current,
        None => return Err(bad("--budget", "the last --horizon periods spent nothing: give the budget to plan")),
    };
    let full = BudgetDecision {
        curves: &curves,
        bounds,
        budget,
        unit: ValueUnit::Money { per_kpi: v },
        settings: SolverSettings { max_iter: decision::SOLVER_MAX_ITER, ..Default::default() },
    };
    let problem = decision::FitDecision {
        full: &full,
        fast: full.separable(crate::value::DEFAULT_NODES)?,
        fit,
        basis: &basis,
        steady_state: settings.steady_state,
    };
    progress.stage("rank: the decision without a test and its EVPI");
    let prior = PriorOptimum::new(&problem)?;
    let evpi_all = evpi(&problem, &prior, settings.evpi_draws, settings.evoi.seed)?;

    // price, value and cost every candidate
    progress.start("rank: pricing and valuing candidates", candidates.len() as u64);
    let mut signals: Vec<TestSignal> = Vec::with_capacity(candidates.len());
    let mut ranked: Vec<RankedCandidate> = Vec::with_capacity(candidates.len());
    for c in candidates {
        let price = |tail| {
            price_test(fit, &c.hypothetical(tail)).map_err(|error| RankError::Pricing { name: c.name.clone(), error })
        };
        let window = price(Tail::WindowOnly)?;
        let full = price(Tail::Full)?;
        let signal = TestSignal::new(stream_id(&c.name), c.name.clone(), window.per_draw.clone(), c.sigma);
        let eig_gaussian = eig_single(window.sd * window.sd, c.sigma);
        let mc = eig_monte_carlo(&[&signal], settings.eig_readouts, settings.evoi.seed)?;
        let (skew, kurt) = skew_kurt(&window.per_draw);
        let (eig, eig_method) = if skew.abs() > 1.0 || kurt > 3.0 {
            // information is ≥ 0: a negative estimate is Monte-Carlo noise around 0
            (mc.eig.max(0.0), EigMethod::MonteCarlo)
        } else {
            (eig_gaussian, EigMethod::Gaussian)
        };
        let value = evoi(&problem, &prior, &[&signal], &settings.evoi)?;
        let cost = TestCost::new(full.spend_change, full.mean, v);
        let quadrant = classify(eig, value.evoi, cost.cost, &settings.thresholds);
        ranked.push(RankedCandidate {
            rank: 0,
            name: c.name.clone(),
            channels: c.channels.clone(),
            geos: c.geos.clone(),
            start: period_label(fit, c.start),
            end: period_label(fit, c.start + c.duration - 1),
            duration: c.duration,
            test_type: c.change.kind(),
            change: c.change,
            precision: c.precision.clone(),
            retest: c.retest.clone(),
            is_retest: c.is_retest,
            sigma: c.sigma,
            lift: LiftSummary::from(&window),
            expected_z: window.mean.abs() / c.sigma,
            eig,
            eig_method,
            eig_gaussian,
            eig_monte_carlo: mc,
            net_value: value.evoi - cost.cost,
            evoi: value,
            evpi: evpi_all.evpi,
            cost,
            quadrant,
        });
        signals.push(signal);
        progress.inc(1);
    }
    progress.finish();
    if ranked.iter().any(|r| r.evoi.estimator == Estimator::GaussianLinear) {
        notes.push(
            "some candidates' importance weights degenerated (PSIS k̂ or ESS, see evoi.unhealthy_share): their EVOI is \
             the Gaussian-linear preposterior (evoi.estimator)"
                .into(),
        );
    }

    // order by net value (ties by name), keeping the index into `candidates`
    let mut order: Vec<usize> = (0..ranked.len()).collect();
    order.sort_by(|&a, &b| {
        ranked[b].net_value.total_cmp(&ranked[a].net_value).then(ranked[a].name.cmp(&ranked[b].name))
    });

    // portfolio over the pool of the best single net values
    let pool: Vec<usize> = order.iter().copied().take(settings.portfolio_pool).collect();
    let pool_candidates: Vec<crate::value::Candidate> = pool
        .iter()
        .map(|&i| crate::value::Candidate {
            name: candidates[i].name.clone(),
            geos: candidates[i].cells(&fit.model.geos),
            cost: ranked[i].cost.cost,
        })
        .collect();
    let mut constraints = settings.constraints.clone();
    constraints.net_floor = settings.materiality * evpi_all.evpi;
    let mut values = SetValues {
        problem: &problem,
        prior: &prior,
        signals: &signals,
        pool: &pool,
        singles: pool.iter().map(|&i| &ranked[i].evoi).collect(),
        settings: &settings.evoi,
        monte_carlo: HashMap::new(),
        evaluated: 0,
        progress,
    };
    progress.stage("rank: choosing the portfolio");
    let greedy =
        greedy_portfolio_with_error(&pool_candidates, &constraints, |set: &[usize], c: usize| values.marginal(set, c))?;
    let exhaustive = if pool.len() <= settings.exhaustive_max {
        Some(exhaustive_portfolio(&pool_candidates, &constraints, |set: &[usize]| values.joint(set))?)
    } else {
        notes.push(format!(
            "the exhaustive portfolio was not computed: the pool has {} candidates (more than {})",
            pool.len(),
            settings.exhaustive_max
        ));
        None
    };
    let evaluated = values.evaluated;
    progress.finish();
    let remap = |mut p: crate::value::Portfolio| {
        for pick in &mut p.picks {
            pick.candidate = pool[pick.candidate];
        }
        p
    };
    let greedy = remap(greedy);
    let exhaustive = exhaustive.map(remap);
    let greedy_to_exhaustive =
        exhaustive.as_ref().map(|e| if e.net_value > 0.0 { greedy.net_value / e.net_value } else { 1.0 });
    let portfolio = PortfolioReport {
        constraints,
        materiality: settings.materiality,
        pool: pool.iter().map(|&i| candidates[i].name.clone()).collect(),
        greedy,
        exhaustive,
        greedy_to_exhaustive,
        sets_evaluated: evaluated,
    };
    // picks index the sorted list from here on
    let position: HashMap<usize, usize> = order.iter().enumerate().map(|(r, &i)| (i, r)).collect();
    let mut portfolio = portfolio;
    for p in portfolio.greedy.picks.iter_mut().chain(portfolio.exhaustive.iter_mut().flat_map(|e| e.picks.iter_mut())) {
        p.candidate = position[&p.candidate];
    }
    let mut sorted: Vec<RankedCandidate> = Vec::with_capacity(ranked.len());
    let mut slots: Vec<Option<RankedCandidate>> = ranked.into_iter().map(Some).collect();
    for (r, &i) in order.iter().enumerate() {
        if let Some(mut c) = slots[i].take() {
            c.rank = r + 1;
            sorted.push(c);
        }
    }
    Ok(Ranking {
        unit: ValueUnit::Money { per_kpi: v },
        value_per_kpi: v,
        value_per_kpi_source: v_source,
        horizon: settings.horizon,
        budget,
        prior_allocation: basis.channels.iter().cloned().zip(prior.action.iter().copied()).collect(),
        prior_expected_value: prior.expected_value,
        evpi: evpi_all,
        thresholds: settings.thresholds,
        evoi_readouts: settings.evoi.n_readouts,
        seed: settings.evoi.seed,
        n_draws,
        n_draws_fit,
        steady_state: settings.steady_state,
        candidates: sorted,
        portfolio,
        notes,
    })
}
