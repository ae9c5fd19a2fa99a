//! Does the loop pay? The closed loop run over many simulated worlds with known truth, under
//! several ways of choosing the next tests ([`Arm`]), with common random numbers (`mmloop simulate`,
//! issue 14).
//!
//! For each world (drawn from a [`WorldDistribution`]) and each arm, `cycles` quarterly cycles run.
//! A cycle (every arm but [`Arm::Oracle`]):
//! 1. **validate** the readouts of last cycle's tests against the prediction made when they were
//!    chosen (the implied window lift of the previous fit, [`crate::validate::discrepancy`]): flags;
//! 2. **calibrate and fit**: the world's observed history fitted by the real MMM (Laplace by
//!    default, NUTS selectable), calibrated by every readout in the arm's ledger (a temporary
//!    SQLite file) with its age-inflated variance ([`crate::cycle::fit::calibrate_on_ledger`]);
//! 3. **score** the fit against the truth: ROI RMSE, 90 % interval coverage and width;
//! 4. **recommend** a budget: the posterior-mean optimum ([`recommend`], the separable solver): the
//!    plan's total — the spend of the `horizon` weeks before cycle 1 — re-split within ±`relative`
//!    of the plan's split, the same guardrails every cycle) and score it against the true optimum
//!    within the same guardrails: misallocation cost and decision efficiency;
//! 5. **choose tests** by the arm's rule ([`choose`]) among candidate geo designs on the world's
//!    panel ([`crate::rank::build_candidates`]), run them in the world while it follows the
//!    recommendation for `horizon` weeks, and read them out with the real geo-lift estimators
//!    ([`World::advance`]); the readouts go into the arm's ledger.
//!
//! The oracle spends the true optimum and runs no test: its misallocation cost is zero by
//! construction, the floor.
//!
//! **Common random numbers.** Every random number is a pure function of (seed, world, purpose):
//! the world and its future noise ([`World`] is keyed by (seed, stream, index)), the fit's seed
//! (per world and cycle, not per arm), the design search and EVOI seeds (per world and cycle).
//! Arms differ only in what they decide. Worlds × arms run in parallel and are collected in order,
//! so results are identical whatever the thread count.

pub mod checkpoint;
mod choose;
mod summary;

#[cfg(test)]
mod tests;

pub use choose::{Choice, ChosenTest};
pub use summary::{
    ArmCycleSummary, COLUMNS, NutsCheck, NutsPair, PairedDifference, Quantiles, Reduction, Summary, nuts_check,
    results_csv, results_parquet, summarise, terminal_summary, timings_csv,
};

use crate::cycle::fit::{LedgerFitSettings, calibrate_on_ledger, fit_calibrated_from};
use crate::ledger::Ledger;
use crate::rank::{CandidateOptions, DesignOptions, RankSettings};
use crate::validate::{self, Threshold};
use crate::value::rng;
use crate::world::{Misallocation, ReadoutOptions, TruePlanner, World, WorldDistribution, WorldError};
use mmloop_mmm::analysis::ChannelSummary;
use mmloop_mmm::fit::{FitOptions, WarmStart};
use mmloop_mmm::optimize::{Bounds, FittedModel};
use mmloop_mmm::spec::FitMethod;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How an arm chooses the tests of a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arm {
    /// The ranking's portfolio: greedy on joint EVOI net of cost ([`crate::rank::rank`]).
    Evoi,
    /// `evoi` with evidence that never ages (every half-life 10¹² weeks): what decay buys, in the
    /// `drift` scenario above all. Not in the default arms.
    #[serde(rename = "evoi_nodecay")]
    EvoiNoDecay,
    /// `evoi` that discards a readout from the ledger when the discrepancy check flags it (the
    /// model's prediction and the readout disagree beyond the threshold) before it calibrates a
    /// fit: what acting on the check buys, in the `biased_experiments` scenario above all. Not in
    /// the default arms.
    #[serde(rename = "evoi_discard")]
    EvoiDiscard,
    /// Greedy on joint expected information gain alone (Gaussian, [`crate::value::eig_joint`]).
    Eig,
    /// The channels with the highest posterior ROI sd, each tested by its most precise design.
    Uncertainty,
    /// Random candidates: as many as `evoi` chose in the same world and cycle when `evoi` runs
    /// too, otherwise `max_tests`.
    Random,
    /// No tests: the MMM alone, refitted each cycle on the new data.
    None,
    /// The true optimum, no tests: the floor of the cost.
    Oracle,
}

impl Arm {
    /// The default arms of `mmloop simulate`.
    pub const ALL: [Arm; 6] = [Arm::Evoi, Arm::Eig, Arm::Uncertainty, Arm::Random, Arm::None, Arm::Oracle];
    /// Every arm `--arms` accepts.
    pub const KNOWN: [Arm; 8] = [
        Arm::Evoi,
        Arm::EvoiNoDecay,
        Arm::EvoiDiscard,
        Arm::Eig,
        Arm::Uncertainty,
        Arm::Random,
        Arm::None,
        Arm::Oracle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Arm::Evoi => "evoi",
            Arm::EvoiNoDecay => "evoi_nodecay",
            Arm::EvoiDiscard => "evoi_discard",
            Arm::Eig => "eig",
            Arm::Uncertainty => "uncertainty",
            Arm::Random => "random",
            Arm::None => "none",
            Arm::Oracle => "oracle",
        }
    }

    /// `--arms` as a comma-separated list (order kept, duplicates refused).
    pub fn parse_list(s: &str) -> Result<Vec<Arm>, SimError> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let arm = Arm::KNOWN.into_iter().find(|a| a.name() == part.to_lowercase()).ok_or_else(|| {
                SimError::option(
                    "--arms",
                    format!(
                        "unknown arm {part:?}; choose from {}",
                        Arm::KNOWN.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
            if out.contains(&arm) {
                return Err(SimError::option("--arms", format!("{part} is listed twice")));
            }
            out.push(arm);
        }
        if out.is_empty() {
            return Err(SimError::option("--arms", "give at least one arm, e.g. evoi,none,oracle"));
        }
        Ok(out)
    }
}

impl std::fmt::Display for Arm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What can stop a simulation. Messages name the option, world, arm and cycle.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{option}: {message}")]
    Option { option: String, message: String },
    #[error("world {world}, arm {arm}, cycle {cycle}: {message}")]
    Run { world: usize, arm: Arm, cycle: usize, message: String },
    #[error("writing the results: {0}")]
    Output(String),
}

impl SimError {
    fn option(option: &str, message: impl Into<String>) -> Self {
        SimError::Option { option: option.into(), message: message.into() }
    }
}

/// Everything a simulation depends on. `Default` is `mmloop simulate`'s defaults.
#[derive(Debug, Clone)]
pub struct SimSettings {
    pub worlds: usize,
    pub cycles: usize,
    pub arms: Vec<Arm>,
    pub seed: u64,
    pub method: FitMethod,
    /// The scenario's name ([`crate::world::SCENARIOS`]); `distribution` is its distribution
    /// (see [`SimSettings::scenario`]).
    pub scenario: String,
    pub distribution: WorldDistribution,
    /// Weeks per cycle: the planning horizon and the time the world moves on.
    pub horizon: usize,
    /// The guardrails: each channel within ±`relative` of its spend in the plan (before cycle 1).
    pub relative: f64,
    /// Most tests a cycle (the portfolio's K; the count `eig`, `uncertainty` and `random` pick).
    pub max_tests: usize,
    /// Laplace draws (one chain); NUTS: `nuts_chains` × `nuts_draws` after `nuts_tune`.
    pub draws: usize,
    pub nuts_chains: usize,
    pub nuts_tune: usize,
    pub nuts_draws: usize,
    /// EVOI: simulated readouts per candidate or set; EVPI draws.
    pub evoi_readouts: usize,
    pub evpi_draws: usize,
    /// The design search: rolling windows, treated sets evaluated, best designs kept, lengths.
    pub design_windows: usize,
    pub design_max_candidates: usize,
    pub designs: usize,
    pub durations: Vec<usize>,
    pub readout: ReadoutOptions,
    pub threshold: Threshold,
    /// Laplace fits after an arm's first cycle start at that arm's previous mode
    /// ([`mmloop_mmm::fit::WarmStart`]) beside [`WARM_DATA_STARTS`] data-driven start(s), instead of
    /// the model's default cold starts (`--cold-fits` turns this off).
    pub warm_start: bool,
    /// The fitted MMM's `[calibration] observational_bias_sd` (s): each channel's observational
    /// effect may differ from its causal one by a factor exp(b_c), b_c ~ N(0, s²), so experiments
    /// can move the causal ROI the data cannot (`docs/notes/demo-learning.md`). 0 (the default, as
    /// in the headline runs) takes the data's association as causal; the loop demo uses 0.5.
    pub observational_bias_sd: f64,
}

/// Data-driven starts a warm-started Laplace fit keeps beside the previous mode: the model's own
/// data-driven point ([`mmloop_mmm::model::MmmModel::data_initial_point`]), so a mode the previous
/// cycle missed can still be found. The cold fit's other starts are that point jittered; on world 0
/// with a readout (`laplace_probe`) all four cold starts reach the same mode, the jittered ones
/// after 1,915 and 1,926 gradient evaluations against 362 and 353 for the first two.
pub const WARM_DATA_STARTS: usize = 1;

impl Default for SimSettings {
    fn default() -> Self {
        Self {
            worlds: 100,
            cycles: 5,
            arms: Arm::ALL.to_vec(),
            seed: 1,
            method: FitMethod::Laplace,
            scenario: "well_specified".into(),
            distribution: WorldDistribution::default(),
            horizon: 13,
            relative: 0.3,
            max_tests: 3,
            draws: 400,
            nuts_chains: 2,
            nuts_tune: 400,
            nuts_draws: 200,
            evoi_readouts: 200,
            evpi_draws: 200,
            design_windows: 6,
            design_max_candidates: 20,
            designs: 3,
            durations: vec![4, 8],
            // augmented SC: its 90 % interval covered the true lift 84–89 % of the time over 100
            // worlds where SC's covered 72 % (world::tests::readout_coverage_table); a readout that
            // is over-confident would make every calibrated fit over-confident too
            readout: ReadoutOptions::with_estimator("ascm"),
            threshold: Threshold::default(),
            warm_start: true,
            observational_bias_sd: 0.0,
        }
    }
}

impl SimSettings {
    /// Switches to a named scenario ([`crate::world::SCENARIOS`]), keeping the channel and geo
    /// ranges already set. Errors name `--scenario` and list the scenarios.
    pub fn scenario(mut self, name: &str) -> Result<Self, SimError> {
        let name = name.trim().to_lowercase();
        let mut d = WorldDistribution::scenario(&name).ok_or_else(|| {
            SimError::option(
                "--scenario",
                format!("unknown scenario {name:?}; choose from {}", crate::world::SCENARIOS.join(", ")),
            )
        })?;
        d.channels = self.distribution.channels;
        d.geos = self.distribution.geos;
        self.distribution = d;
        self.scenario = name;
        Ok(self)
    }

    /// Checks every setting; errors name the CLI option.
    pub fn validate(&self) -> Result<(), SimError> {
        let pos = |option: &str, v: usize| {
            if v == 0 { Err(SimError::option(option, format!("must be at least 1, got {v}"))) } else { Ok(()) }
        };
        pos("--worlds", self.worlds)?;
        pos("--cycles", self.cycles)?;
        pos("--horizon", self.horizon)?;
        pos("--max-tests", self.max_tests)?;
        pos("--draws", self.draws)?;
        pos("--evoi-readouts", self.evoi_readouts)?;
        pos("--designs", self.designs)?;
        if self.draws < 2 {
            return Err(SimError::option("--draws", "needs at least 2 posterior draws"));
        }
        if self.arms.is_empty() {
            return Err(SimError::option("--arms", "give at least one arm"));
        }
        if !(self.relative.is_finite() && self.relative > 0.0 && self.relative < 1.0) {
            return Err(SimError::option("--relative", format!("must be in (0, 1), got {}", self.relative)));
        }
        if self.durations.is_empty() || self.durations.iter().any(|&d| d == 0 || d > self.horizon) {
            return Err(SimError::option(
                "--durations",
                format!("test lengths must be 1..={} weeks (a cycle), got {:?}", self.horizon, self.durations),
            ));
        }
        if !(self.observational_bias_sd.is_finite() && self.observational_bias_sd >= 0.0) {
            return Err(SimError::option(
                "--observational-bias-sd",
                format!("must be a finite sd >= 0 (0 = no observational bias), got {}", self.observational_bias_sd),
            ));
        }
        let (lo, hi) = self.distribution.channels;
        if lo < 2 || hi < lo || hi > crate::world::CHANNEL_NAMES.len() {
            return Err(SimError::option(
                "--channels",
                format!(
                    "channels per world must be a range within 2..={}, got {lo}-{hi}",
                    crate::world::CHANNEL_NAMES.len()
                ),
            ));
        }
        Ok(())
    }

    /// The seed of world `world`'s fit in cycle `cycle` (every arm's: common random numbers).
    pub fn fit_seed(&self, world: usize, cycle: usize) -> u64 {
        rng::bits(self.seed, STREAM_FIT + world as u64, cycle as u64)
    }

    /// The seed of everything a cycle's choice draws (design windows, EVOI readouts, random picks):
    /// per (world, cycle), the same for every arm.
    fn choice_seed(&self, world: usize, cycle: usize) -> u64 {
        rng::bits(self.seed, STREAM_CHOICE + world as u64, cycle as u64)
    }

    fn rank_settings(&self, seed: u64, budget: f64, bounds: &[(String, f64, f64)]) -> RankSettings {
        let mut s = RankSettings {
            horizon: self.horizon,
            relative: self.relative,
            budget: Some(budget),
            bounds: bounds.to_vec(),
            ..Default::default()
        };
        s.constraints.max_tests = self.max_tests;
        s.evoi.n_readouts = self.evoi_readouts;
        s.evoi.seed = seed;
        s.evpi_draws = self.evpi_draws;
        s.eig_readouts = self.evoi_readouts;
        s.portfolio_pool = 8;
        // the exhaustive portfolio is a report of rank; the arm uses the greedy pick
        s.exhaustive_max = 0;
        s
    }

    fn candidate_options(&self, seed: u64) -> CandidateOptions {
        let mut o = CandidateOptions::default();
        o.spec.designs = self.designs;
        o.spec.durations = self.durations.clone();
        o.design = DesignOptions {
            durations: self.durations.clone(),
            windows: self.design_windows,
            max_candidates: self.design_max_candidates,
            seed,
            ..DesignOptions::default()
        };
        o
    }
}

// stream ids of the simulator's own random numbers (the world has its own)
const STREAM_FIT: u64 = 0x5349_4d46_0000_0000;
const STREAM_CHOICE: u64 = 0x5349_4d43_0000_0000;

/// One row of `results.csv`: a world, an arm, a cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub world: usize,
    pub arm: Arm,
    pub cycle: usize,
    pub channels: usize,
    pub geos: usize,
    #[serde(with = "checkpoint::exact_f64")]
    pub confounding: f64,
    /// Weeks observed when the cycle fitted and decided.
    pub weeks: usize,
    /// The budget over the horizon: the plan's total (the spend of the `horizon` weeks before
    /// cycle 1), the same every cycle.
    #[serde(with = "checkpoint::exact_f64")]
    pub budget: f64,
    /// True incremental outcome of the true optimum within the bounds.
    #[serde(with = "checkpoint::exact_f64")]
    pub oracle_outcome: f64,
    /// True outcome of the oracle minus that of the recommendation (money: the KPI is sales).
    #[serde(with = "checkpoint::exact_f64")]
    pub misallocation_cost: f64,
    /// `misallocation_cost` / `oracle_outcome`.
    #[serde(with = "checkpoint::exact_f64")]
    pub misallocation_share: f64,
    /// The plan's misallocation cost this cycle (what never moving from the plan would cost).
    #[serde(with = "checkpoint::exact_f64")]
    pub start_cost: f64,
    /// Share of the achievable improvement over the plan captured; NaN when the plan is already
    /// optimal.
    #[serde(with = "checkpoint::exact_f64")]
    pub decision_efficiency: f64,
    /// Posterior-mean ROI against the true ROI over the observed weeks (NaN for the oracle).
    #[serde(with = "checkpoint::exact_f64")]
    pub roi_rmse: f64,
    /// Share of channels whose 90 % ROI interval covers the truth, and the mean interval width.
    #[serde(with = "checkpoint::exact_f64")]
    pub coverage90: f64,
    #[serde(with = "checkpoint::exact_f64")]
    pub width90: f64,
    /// Tests chosen this cycle (run during its weeks) and their true net cost: spend change minus
    /// the true incremental KPI with carry-over, summed (money; negative: the tests paid).
    pub tests: usize,
    #[serde(with = "checkpoint::exact_f64")]
    pub test_cost: f64,
    /// The readouts calibrating this cycle's fit, and those of last cycle's tests whose
    /// pre-calibration prediction disagreed (|z| above the threshold).
    pub readouts: usize,
    pub new_readouts: usize,
    pub discrepancy_flags: usize,
    /// Last cycle's readouts whose 90 % interval covered the true window lift.
    pub readouts_covering_truth: usize,
    pub tested_channels: String,
    #[serde(with = "checkpoint::exact_f64")]
    pub fit_seconds: f64,
    #[serde(with = "checkpoint::exact_f64")]
    pub choose_seconds: f64,
}

/// What a simulation produced: rows in (world, arm, cycle) order and the settings.
#[derive(Debug, Clone)]
pub struct SimResult {
    pub rows: Vec<Row>,
    pub settings: SimSettings,
    pub seconds: f64,
}

/// Runs every world (in parallel, collected in order; a world's arms one after another).
/// `progress` is called once per world finished (all its arms), from any thread.
pub fn simulate(settings: &SimSettings, progress: &(dyn Fn() + Sync)) -> Result<SimResult, SimError> {
    simulate_worlds(settings, &(0..settings.worlds).collect::<Vec<_>>(), progress)
}

/// [`simulate`] on the given world indices only (the NUTS check re-runs a subsample).
pub fn simulate_worlds(
    settings: &SimSettings,
    worlds: &[usize],
    progress: &(dyn Fn() + Sync),
) -> Result<SimResult, SimError> {
    simulate_resuming(settings, worlds, &Default::default(), &|_, _| Ok(()), progress)
}

/// Hears of each world's rows as it finishes (any thread); an error stops the run.
pub type WorldFinished<'a> = dyn Fn(usize, &[Row]) -> Result<(), SimError> + Sync + 'a;

/// [`simulate_worlds`] that takes the rows of the worlds in `done` as they are (a run resumed from
/// its [`checkpoint`]) and hands each world it runs to `finished` (from any thread; an error stops
/// the run) before calling `progress`. The result is the same as a run of every world.
pub fn simulate_resuming(
    settings: &SimSettings,
    worlds: &[usize],
    done: &std::collections::BTreeMap<usize, Vec<Row>>,
    finished: &WorldFinished<'_>,
    progress: &(dyn Fn() + Sync),
) -> Result<SimResult, SimError> {
    settings.validate()?;
    let t0 = std::time::Instant::now();
    let results: Vec<Result<Vec<Row>, SimError>> = worlds
        .par_iter()
        .map(|&w| {
            if let Some(rows) = done.get(&w) {
                progress();
                return Ok(rows.clone());
            }
            let rows = run_world(settings, w)?;
            finished(w, &rows)?;
            progress();
            Ok(rows)
        })
        .collect();
    let mut rows = Vec::new();
    for r in results {
        rows.extend(r?);
    }
    Ok(SimResult { rows, settings: settings.clone(), seconds: t0.elapsed().as_secs_f64() })
}

/// What the arms of one world share.
///
/// - The first cycle's fit: at cycle 1 every arm sees the same world, the same fit seed and an
///   empty ledger, so the fit (a pure function of those) is computed once.
/// - The first cycle's recommendation: a pure function of that fit, the plan's budget and the
///   guardrails (the same for every arm), so it is computed once too.
/// - `random`'s test count: the number `evoi` chose in the same cycle (`evoi` runs first).
/// - The start's misallocation (the plan before cycle 1 against the true optimum of its budget
///   within the guardrails): the true curves depend on the world's draw and the week only (not on
///   what an arm did), so every arm meets the same problem in a cycle, and without drift in every
///   cycle. It is solved once per distinct (true planner, plan, guardrails), compared exactly, and
///   reused: a pure function of equal inputs, so the rows are the same bits.
#[derive(Default)]
struct Shared {
    first_fit: Option<(CycleFit, f64)>,
    first_recommendation: Option<Vec<f64>>,
    evoi_tests: Vec<usize>,
    start: Option<(TruePlanner, Vec<f64>, Bounds, Misallocation)>,
}

/// Every arm of world `w`, rows in the settings' arm order. `evoi` runs first so that `random` can
/// match its number of tests.
pub fn run_world(settings: &SimSettings, w: usize) -> Result<Vec<Row>, SimError> {
    let arms = &settings.arms;
    let mut order: Vec<usize> = (0..arms.len()).collect();
    order.sort_by_key(|&i| arms[i] != Arm::Evoi);
    let mut shared = Shared::default();
    let mut by_arm: Vec<Vec<Row>> = vec![Vec::new(); arms.len()];
    for i in order {
        by_arm[i] = run_arm_shared(settings, w, arms[i], &mut shared, &mut |_, _| {})?;
    }
    Ok(by_arm.into_iter().flatten().collect())
}

/// Runs `f` on `jobs` worker threads (`None`: rayon's default, all cores or `RAYON_NUM_THREADS`).
/// Results of [`simulate`] are the same whatever the number.
pub fn with_jobs<T: Send>(jobs: Option<usize>, f: impl FnOnce() -> T + Send) -> Result<T, SimError> {
    if jobs == Some(0) {
        return Err(SimError::option("--jobs", "give at least 1 thread"));
    }
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(j) = jobs {
        b = b.num_threads(j);
    }
    let pool = b.build().map_err(|e| SimError::option("--jobs", format!("cannot start the worker threads: {e}")))?;
    Ok(pool.install(f))
}

/// A temporary ledger file, removed when dropped.
struct TempLedger(PathBuf);

impl Drop for TempLedger {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

fn temp_ledger(seed: u64, world: usize, arm: Arm) -> TempLedger {
    let unique = format!(
        "mmloop-simulate-{}-{seed}-{world}-{}-{}.sqlite",
        std::process::id(),
        arm.name(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
    );
    TempLedger(std::env::temp_dir().join(unique))
}

/// The world `w` of the settings' distribution.
pub fn world_of(settings: &SimSettings, w: usize) -> Result<World, WorldError> {
    World::new(settings.distribution.sample(settings.seed, w as u64))
}

/// A readout waiting to be validated next cycle: the record, the prediction made when its test was
/// chosen, and whether its interval covered the true window lift.
struct Pending {
    /// The readout's experiment id in the arm's ledger.
    id: i64,
    record: mmloop_data::LiftTestRecord,
    prediction: crate::ledger::Prediction,
    covers: bool,
}

/// One world under one arm, every cycle, alone (`random` then picks `max_tests` tests).
pub fn run_arm(settings: &SimSettings, w: usize, arm: Arm) -> Result<Vec<Row>, SimError> {
    run_arm_with(settings, w, arm, &mut |_, _| {})
}

/// [`run_arm`], handing each cycle's world (before it moves on) to `inspect` (tests use it).
pub fn run_arm_with(
    settings: &SimSettings,
    w: usize,
    arm: Arm,
    inspect: &mut dyn FnMut(usize, &World),
) -> Result<Vec<Row>, SimError> {
    run_arm_shared(settings, w, arm, &mut Shared::default(), inspect)
}

fn run_arm_shared(
    settings: &SimSettings,
    w: usize,
    arm: Arm,
    shared: &mut Shared,
    inspect: &mut dyn FnMut(usize, &World),
) -> Result<Vec<Row>, SimError> {
    let run_err = |cycle: usize, message: String| SimError::Run { world: w, arm, cycle, message };
    let mut world = world_of(settings, w).map_err(|e| run_err(0, e.to_string()))?;
    let tmp = temp_ledger(settings.seed, w, arm);
    let mut ledger = Some(Ledger::open_or_create(&tmp.0).map_err(|e| run_err(0, e.to_string()))?);
    let data_path = Path::new("world.csv");
    let mut pending: Vec<Pending> = Vec::new();
    let mut n_readouts = 0usize;
    let mut rows = Vec::with_capacity(settings.cycles);
    // the previous cycle's mode, where this cycle's Laplace fit starts
    let mut warm: Option<WarmStart> = None;
    // the plan: the split of the last `horizon` weeks before cycle 1. Its total is every cycle's
    // budget and ±`relative` around it are the guardrails every cycle's decision stays within, so
    // costs are comparable across cycles and arms (a moving window around each cycle's own spend
    // would let an arm that drifted away compare itself with a worse optimum)
    let h = settings.horizon;
    let plan0 = world.recent_spend(h);
    let total0: f64 = plan0.iter().sum();
    let guard = world.planner(h).bounds_around(&plan0, settings.relative);
    let overrides: Vec<(String, f64, f64)> =
        guard.names.iter().enumerate().map(|(c, n)| (n.clone(), guard.lower[c], guard.upper[c])).collect();
    for cycle in 1..=settings.cycles {
        inspect(cycle, &world);
        let err = |m: String| run_err(cycle, m);
        let plan = world.planner(h);
        let bounds = guard.clone();
        let start = match &shared.start {
            Some((p, s, b, m)) if *p == plan && *s == plan0 && *b == bounds => m.clone(),
            _ => {
                let m = plan.misallocation_within(&plan0, &bounds).map_err(|e| err(e.to_string()))?;
                shared.start = Some((plan.clone(), plan0.clone(), bounds.clone(), m.clone()));
                m
            }
        };
        let truth = world.true_roi();
        let mut row = Row {
            world: w,
            arm,
            cycle,
            channels: world.channel_names().len(),
            geos: world.geo_names().len(),
            confounding: world.spec().confounding,
            weeks: world.weeks(),
            budget: total0,
            oracle_outcome: start.oracle_outcome,
            misallocation_cost: f64::NAN,
            misallocation_share: f64::NAN,
            start_cost: start.cost,
            decision_efficiency: f64::NAN,
            roi_rmse: f64::NAN,
            coverage90: f64::NAN,
            width90: f64::NAN,
            tests: 0,
            test_cost: 0.0,
            readouts: n_readouts,
            new_readouts: pending.len(),
            discrepancy_flags: 0,
            readouts_covering_truth: pending.iter().filter(|p| p.covers).count(),
            tested_channels: String::new(),
            fit_seconds: 0.0,
            choose_seconds: 0.0,
        };
        // validate last cycle's readouts against their predictions
        for p in &pending {
            let d = validate::discrepancy(None, &p.record, &p.prediction, false, settings.threshold)
                .map_err(|e| err(format!("validating a readout: {e}")))?;
            row.discrepancy_flags += usize::from(d.flagged);
            if d.flagged && arm == Arm::EvoiDiscard {
                let l = ledger.as_mut().ok_or_else(|| err("the ledger was lost".into()))?;
                l.discard(p.id, "flagged by the discrepancy check (evoi_discard arm)")
                    .map_err(|e| err(format!("discarding a flagged readout: {e}")))?;
            }
        }
        let (allocation, chosen) = if arm == Arm::Oracle {
            (start.oracle_spend.clone(), Choice::default())
        } else {
            let t0 = std::time::Instant::now();
            let fit = match (&shared.first_fit, cycle) {
                (Some((f, seconds)), 1) => {
                    row.fit_seconds = *seconds;
                    f.clone()
                }
                _ => {
                    let l = ledger.take().ok_or_else(|| err("the ledger was lost".into()))?;
                    let warm = warm.as_ref().filter(|_| settings.warm_start);
                    let (fit, l) = fit_cycle(settings, &world, data_path, l, w, arm, cycle, warm).map_err(err)?;
                    ledger = Some(l);
                    row.fit_seconds = t0.elapsed().as_secs_f64();
                    if cycle == 1 {
                        shared.first_fit = Some((fit.clone(), row.fit_seconds));
                    }
                    fit
                }
            };
            let CycleFit { fitted, analysis, warm: next } = fit;
            warm = next;
            let (mut se, mut covered, mut width) = (0.0, 0usize, 0.0);
            for (c, t) in analysis.iter().zip(&truth) {
                se += (c.roi.mean - t).powi(2);
                covered += usize::from(c.roi.q05 <= *t && *t <= c.roi.q95);
                width += c.roi.q95 - c.roi.q05;
            }
            let k = truth.len() as f64;
            row.roi_rmse = (se / k).sqrt();
            row.coverage90 = covered as f64 / k;
            row.width90 = width / k;
            let alloc = match (&shared.first_recommendation, cycle) {
                (Some(a), 1) => a.clone(),
                _ => {
                    let a = recommend(&fitted, h, total0, &overrides, settings.relative, &world.channel_names())
                        .map_err(|e| err(format!("the budget recommendation: {e}")))?;
                    if cycle == 1 {
                        shared.first_recommendation = Some(a.clone());
                    }
                    a
                }
            };
            let t1 = std::time::Instant::now();
            // random matches evoi's count when evoi ran first in this world
            let k = match arm {
                Arm::Random => shared.evoi_tests.get(cycle - 1).copied().unwrap_or(settings.max_tests),
                _ => settings.max_tests,
            };
            let chosen = match (arm, ledger.as_ref()) {
                (Arm::None, _) => Choice::default(),
                (_, Some(l)) => {
                    let decision = choose::Decision {
                        seed: settings.choice_seed(w, cycle),
                        k,
                        budget: total0,
                        bounds: &overrides,
                    };
                    choose::choose(arm, settings, &world, &fitted, &analysis, l, &decision).map_err(err)?
                }
                (_, None) => return Err(err("the ledger was lost".into())),
            };
            row.choose_seconds = t1.elapsed().as_secs_f64();
            (alloc, chosen)
        };
        let m = plan.misallocation_within(&allocation, &bounds).map_err(|e| err(e.to_string()))?;
        row.misallocation_cost = m.cost;
        row.misallocation_share = m.share;
        // against the same optimum (the recommendation's budget, the same bounds) as its cost
        row.decision_efficiency = m.efficiency_over(start.outcome).unwrap_or(f64::NAN);
        row.tests = chosen.tests.len();
        if arm == Arm::Evoi {
            shared.evoi_tests.push(row.tests);
        }
        row.tested_channels = chosen.tests.iter().map(|t| t.test.channels.join("+")).collect::<Vec<_>>().join(";");
        // the world follows the recommendation for a cycle, with the tests in it
        world.follow(&allocation, h).map_err(|e| err(e.to_string()))?;
        let tests: Vec<_> = chosen.tests.iter().map(|t| t.test.clone()).collect();
        let runs = world.advance(h, &tests, &settings.readout).map_err(|e| err(e.to_string()))?;
        pending.clear();
        row.test_cost += runs.iter().map(|run| run.spend_change - run.true_lift_with_carryover).sum::<f64>();
        let records: Vec<_> = runs.iter().map(|run| run.record.clone()).collect();
        if !records.is_empty() {
            let l = ledger.as_mut().ok_or_else(|| err("the ledger was lost".into()))?;
            let ids = l.add_readouts(&records, None).map_err(|e| err(format!("recording the readouts: {e}")))?;
            n_readouts += records.len();
            for ((run, t), id) in runs.iter().zip(&chosen.tests).zip(ids) {
                pending.push(Pending {
                    id,
                    record: run.record.clone(),
                    prediction: t.prediction,
                    covers: run.covers_truth(),
                });
            }
        }
        rows.push(row);
    }
    drop(ledger);
    drop(tmp);
    Ok(rows)
}

/// The recommendation: the allocation of `budget` over the next `horizon` weeks that maximises the
/// posterior-mean outcome within the guardrails (`mmloop optimize`'s default objective), found by
/// the separable solver ([`crate::value::SeparableBudget`]: equal marginal returns on concave
/// curves, the exact grid programme on S-shaped ones) — on 16 random S and concave cases never more
/// than 1e-6 below the general optimiser and up to 2 % above it where that stops at a local
/// optimum, and ~20× faster on 400 draws of S-shaped curves (the general optimiser was two thirds
/// of a simulated cycle). Falls back to the general optimiser when the tabulation is not usable.
/// Spend per channel in `names` order.
fn recommend(
    fit: &FittedModel,
    horizon: usize,
    budget: f64,
    bounds: &[(String, f64, f64)],
    relative: f64,
    names: &[String],
) -> Result<Vec<f64>, String> {
    use crate::value::{BudgetDecision, DEFAULT_NODES, DecisionProblem, ValueUnit};
    use mmloop_mmm::optimize::{OutcomeUnit, PlanningBasis, SolverSettings, relative_bounds};
    let basis = PlanningBasis::new(fit, horizon, OutcomeUnit::Kpi).map_err(|e| e.to_string())?;
    let curves = basis.curves(fit, false).map_err(|e| e.to_string())?;
    let bounds = relative_bounds(&basis, relative, bounds).map_err(|e| e.to_string())?;
    let decision =
        BudgetDecision { curves: &curves, bounds, budget, unit: ValueUnit::Kpi, settings: SolverSettings::default() };
    let fast = decision.separable(DEFAULT_NODES).map_err(|e| e.to_string())?;
    let n = fast.n_draws();
    let spend = fast.best_action(Some(&vec![1.0 / n as f64; n]), None).map_err(|e| e.to_string())?;
    names
        .iter()
        .map(|c| {
            basis
                .channels
                .iter()
                .position(|b| b == c)
                .map(|i| spend[i])
                .ok_or_else(|| format!("channel {c:?} is not in the fit"))
        })
        .collect()
}

/// What a simulated cycle's fit hands on: the plannable model, the channels' figures and where the
/// next cycle's fit starts (`None` for NUTS).
#[derive(Clone)]
struct CycleFit {
    fitted: FittedModel,
    analysis: Vec<ChannelSummary>,
    warm: Option<WarmStart>,
}

/// Phase 1 of a simulated cycle: the world's history fitted, calibrated by the ledger's readouts;
/// a Laplace fit with a `warm` start runs it beside [`WARM_DATA_STARTS`] data-driven start(s).
#[allow(clippy::too_many_arguments)]
fn fit_cycle(
    settings: &SimSettings,
    world: &World,
    data_path: &Path,
    ledger: Ledger,
    w: usize,
    arm: Arm,
    cycle: usize,
    warm: Option<&WarmStart>,
) -> Result<(CycleFit, Ledger), String> {
    let data = world.dataset(data_path);
    let mut spec = world.model_spec(data_path).map_err(|e| e.to_string())?;
    spec.fit.method = settings.method;
    spec.fit.seed = settings.fit_seed(w, cycle);
    spec.calibration.observational_bias_sd = settings.observational_bias_sd;
    match settings.method {
        FitMethod::Laplace => {
            spec.fit.chains = 1;
            spec.fit.draws = settings.draws;
            if warm.is_some() {
                spec.fit.laplace_starts = WARM_DATA_STARTS;
            }
        }
        FitMethod::Nuts => {
            spec.fit.chains = settings.nuts_chains;
            spec.fit.tune = settings.nuts_tune;
            spec.fit.draws = settings.nuts_draws;
        }
    }
    let mut fit_settings = LedgerFitSettings { retest_fits: false, ..Default::default() };
    if arm == Arm::EvoiNoDecay {
        // evidence that never ages: exp(ln 2 · age / 10¹²) = 1 to double precision
        fit_settings.half_life_overrides = world.channel_names().iter().map(|c| format!("{c}=1e12")).collect();
    }
    let cal = calibrate_on_ledger(&fit_settings, ledger, &mut spec, &data).map_err(|e| e.to_string())?;
    let quiet = FitOptions { quiet: true, ..Default::default() };
    let result = fit_calibrated_from(&spec, &data, quiet, Some(&cal), data_path, warm).map_err(|e| e.to_string())?;
    // the simulator reads only the channels' figures: the full analysis (per-period rows, response
    // curves) cost ~40 % of a world's Laplace fit (0.98 s of 2.67 s CPU, measured by laplace_probe)
    let analysis =
        mmloop_mmm::fit::analyse_channels_checked(&result, &data).map_err(|e| format!("analysing the fit: {e}"))?;
    let fitted = FittedModel::from_fit(&spec, &data, &result).map_err(|e| e.to_string())?;
    let warm = WarmStart::from_fit(&result);
    Ok((CycleFit { fitted, analysis, warm }, cal.ledger))
}
