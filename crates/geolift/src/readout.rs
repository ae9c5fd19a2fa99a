//! A geo test's readout as a library call: the choice of inference per estimator, the standard
//! error taken from the interval where a method gives only an interval, the spend path, and the
//! estimate → [`LiftTestRecord`] step. `mmloop lift` and the measurement loop both call
//! [`read_out`] (= [`prepare`], cheap: cells, outlier screen, spend change; then [`estimate`], the
//! long part); the CLI only parses arguments, prints the warnings between the two, and writes.
//!
//! Settings come in two steps, like linfa's checked hyper-parameters: [`ReadoutParams`] holds what
//! the user gave (plain public fields, `Default` = the CLI's defaults), and
//! [`ReadoutParams::check`] parses and validates it once into a [`ReadoutSettings`] whose fields
//! can no longer be wrong (α in (0, 1), known estimators, a test assignment that is complete).
//!
//! ```no_run
//! use mmloop_geolift::{Columns, NoProgress, Panel};
//! use mmloop_geolift::readout::{ReadoutParams, read_out};
//! let panel = Panel::read_allow_gaps("GeoLift_Test.csv", &Columns::default())?;
//! let settings = ReadoutParams {
//!     treated: vec!["chicago".into(), "portland".into()],
//!     start: Some("2021-04-01".into()),
//!     end: Some("2021-04-15".into()),
//!     channels: vec!["tv".into()],
//!     spend_change: Some(50_000.0),
//!     ..Default::default()
//! }
//! .check()?;
//! let readout = read_out(&panel, &settings, &NoProgress)?;
//! println!("{:?}", readout.records()[0]);
//! # Ok::<(), mmloop_geolift::readout::ReadoutError>(())
//! ```
//!
//! Inference per estimator (as GeoLift, synthdid and the TBR papers do it):
//! * `sc`: conformal p-value and interval (Chernozhukov–Wüthrich–Zhu, GeoLift's), SE = interval
//!   half-width / z₁₋α/₂; placebo SE over random control groups and placebo-in-space reported as notes (the placebo ATTs
//!   per control geo in `lift.json` as `placebo_atts`);
//! * `ascm`: placebo SE with the cross-validated penalty held fixed, normal interval;
//! * per test period (`lift_periods.csv`'s `effect_lower`, `effect_upper`, `effect_p_value`): sc and
//!   ascm carry a conformal interval per period ([`PeriodConformal`], augsynth's pointwise
//!   inference); sdid, did, twfe and tbr carry none ([`LiftEstimate::period_band`] is `None`);
//! * `sdid`, `did`: synthdid's placebo SE (Arkhangelsky et al. 2021, Algorithm 4), normal interval;
//!   the jackknife SE of SDID as a note;
//! * `twfe`: cluster-robust (by geo) SE, t interval with G − 1 degrees of freedom;
//! * `tbr`: the regression's predictive interval; a moving-block bootstrap as a note.
//!
//! The calibration record of a cell comes from its first estimator: incremental KPI = ATT · n_post ·
//! n_treated, and its SE is the ATT's SE scaled the same way; when a method gives only an interval,
//! SE = (upper − lower) / (2 z₁₋α/₂) (normal approximation).

use crate::did::EventCoef;
use crate::error::GeoLiftError;
use crate::inference::{self, Conformal, ConformalStat, PeriodConformal, PeriodModel};
use crate::panel::{Design, LiftData, Panel};
use crate::progress::Progress;
use crate::result::{LiftEstimate, LiftEstimator};
use crate::screen::{OUTLIER_THRESHOLD, OutlierWarning};
use crate::{Ascm, DiD, EventStudy, Sdid, SyntheticControl, Tbr, Twfe};
use mmloop_data::{LiftTestRecord, SpendDelta};

/// Everything that can stop a readout. Messages name the option, cell or estimator and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum ReadoutError {
    /// A setting is wrong or missing; `option` names it (`--alpha`, `--cell`, ...).
    #[error("{message}")]
    Settings { option: &'static str, message: String },

    #[error(transparent)]
    GeoLift(#[from] GeoLiftError),

    /// Setting up a cell failed (unknown geo, window outside the data, ...).
    #[error("cell {cell}")]
    Cell {
        cell: String,
        #[source]
        source: Box<GeoLiftError>,
    },

    /// An estimator or its inference failed on a cell.
    #[error("cell {cell}, estimator {estimator}")]
    Estimator {
        cell: String,
        estimator: &'static str,
        #[source]
        source: Box<GeoLiftError>,
    },

    /// The calibration record built from the estimate does not pass [`LiftTestRecord::validate`].
    #[error("{what} is not valid: {message}")]
    InvalidRecord { what: String, message: String },
}

fn settings(option: &'static str, message: impl Into<String>) -> ReadoutError {
    ReadoutError::Settings { option, message: message.into() }
}

/// A lift estimator with the inference the readout attaches to it (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Estimator {
    Sc,
    Ascm,
    Sdid,
    Did,
    Twfe,
    Tbr,
}

impl Estimator {
    /// Every estimator, in the order `all` expands to.
    pub const ALL: [Estimator; 6] =
        [Estimator::Sc, Estimator::Ascm, Estimator::Sdid, Estimator::Did, Estimator::Twfe, Estimator::Tbr];

    /// The name used on the command line and in `lift.json`.
    pub fn name(self) -> &'static str {
        match self {
            Estimator::Sc => "sc",
            Estimator::Ascm => "ascm",
            Estimator::Sdid => "sdid",
            Estimator::Did => "did",
            Estimator::Twfe => "twfe",
            Estimator::Tbr => "tbr",
        }
    }

    /// Parses one name (case-insensitive, trimmed); `all` is handled by [`ReadoutParams::check`].
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_lowercase();
        Self::ALL.into_iter().find(|e| e.name() == s)
    }

    /// sc, ascm and sdid weight the donors and run on the pre-screened donor pool.
    pub fn uses_donor_screen(self) -> bool {
        matches!(self, Estimator::Sc | Estimator::Ascm | Estimator::Sdid)
    }
}

/// How the treated geos and the test window are given.
#[derive(Debug, Clone, PartialEq)]
pub enum Assignment {
    /// One cell named `test`: these geos, treated from `start`.
    Treated { geos: Vec<String>, start: String },
    /// Named cells, each estimated against the never-treated geos, all from `start`.
    Cells { cells: Vec<(String, Vec<String>)>, start: String },
    /// The panel's 0/1 treatment column (`column`); `start` overrides its first treated period.
    /// Staggered adoption is read by TWFE with an event study ([`Readout::Staggered`]).
    TreatmentColumn { column: String, start: Option<String> },
}

/// What the user asked for, unchecked. `Default` gives the CLI's defaults (sc, α = 0.1, 1000
/// permutations, 200 placebo replications, 50 donors, seed 20210401). Field docs name the CLI option.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadoutParams {
    /// `--estimator`: sc, ascm, sdid, did, twfe, tbr or all; the first one gives the calibration record.
    pub estimators: Vec<String>,
    /// `--treated`.
    pub treated: Vec<String>,
    /// `--treatment-col`: the name of the 0/1 column (the panel must have been read with it).
    pub treatment_col: Option<String>,
    /// `--cell NAME=geo1,geo2`.
    pub cells: Vec<String>,
    /// `--start`, `--end` (inclusive), in the data's time notation.
    pub start: Option<String>,
    pub end: Option<String>,
    /// Not `--no-demean`: demean each geo by its pre-period mean in SC and ASCM (GeoLift).
    pub demean: bool,
    /// `--alpha`: intervals at level 1 − α.
    pub alpha: f64,
    /// `--stat`: total, positive or negative.
    pub stat: String,
    /// `--permutations`, `--placebo-reps`, `--max-donors` (0 = all), `--seed`.
    pub permutations: usize,
    pub placebo_reps: usize,
    pub max_donors: usize,
    pub seed: u64,
    /// `--channel`: the channel(s) the test moved (copied to the calibration record).
    pub channels: Vec<String>,
    /// `--spend-change`: total spend change over the window across treated geos (overrides the
    /// spend column); negative for go-dark.
    pub spend_change: Option<f64>,
}

impl Default for ReadoutParams {
    fn default() -> Self {
        Self {
            estimators: vec!["sc".into()],
            treated: vec![],
            treatment_col: None,
            cells: vec![],
            start: None,
            end: None,
            demean: true,
            alpha: 0.1,
            stat: "total".into(),
            permutations: 1000,
            placebo_reps: 200,
            max_donors: 50,
            seed: 20210401,
            channels: vec![],
            spend_change: None,
        }
    }
}

/// Checked settings of a readout: built only by [`ReadoutParams::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReadoutSettings {
    estimators: Vec<Estimator>,
    assignment: Assignment,
    end: Option<String>,
    demean: bool,
    alpha: f64,
    stat: ConformalStat,
    permutations: usize,
    placebo_reps: usize,
    max_donors: usize,
    seed: u64,
    channels: Vec<String>,
    spend_change: Option<f64>,
}

impl ReadoutParams {
    /// Parses and validates the settings. Errors are [`ReadoutError::Settings`] naming the option.
    pub fn check(self) -> Result<ReadoutSettings, ReadoutError> {
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(settings("--alpha", format!("--alpha must be between 0 and 1, got {}", self.alpha)));
        }
        let stat = match self.stat.to_lowercase().as_str() {
            "total" => ConformalStat::Total,
            "positive" => ConformalStat::Positive,
            "negative" => ConformalStat::Negative,
            s => return Err(settings("--stat", format!("--stat must be total, positive or negative, got {s:?}"))),
        };
        let mut estimators: Vec<Estimator> = Vec::new();
        for e in &self.estimators {
            let e = e.trim().to_lowercase();
            if e == "all" {
                estimators.extend(Estimator::ALL);
            } else {
                estimators.push(Estimator::parse(&e).ok_or_else(|| {
                    settings(
                        "--estimator",
                        format!("unknown --estimator {e:?}; use sc, ascm, sdid, did, twfe, tbr or all"),
                    )
                })?);
            }
        }
        estimators.dedup();
        if estimators.is_empty() {
            return Err(settings("--estimator", "no --estimator given; use sc, ascm, sdid, did, twfe, tbr or all"));
        }
        if let Some(s) = self.spend_change {
            if s == 0.0 {
                return Err(settings(
                    "--spend-change",
                    "--spend-change 0: a zero spend change gives no iROAS; leave --spend-change out, or give the change in spend over the test window (negative for a go-dark test)",
                ));
            }
            if !s.is_finite() {
                return Err(settings("--spend-change", format!("--spend-change {s} is not a finite number")));
            }
        }
        let assignment = if !self.cells.is_empty() {
            if !self.treated.is_empty() || self.treatment_col.is_some() {
                return Err(settings("--cell", "use either --cell or --treated/--treatment-col, not both"));
            }
            let start = self.start.clone().ok_or_else(|| settings("--start", "--start is required with --cell"))?;
            let mut cells = Vec::new();
            for c in &self.cells {
                let (name, geos) = c
                    .split_once('=')
                    .ok_or_else(|| settings("--cell", format!("--cell {c:?}: expected NAME=geo1,geo2")))?;
                let geos: Vec<String> =
                    geos.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
                if geos.is_empty() {
                    return Err(settings("--cell", format!("--cell {c:?}: no geos listed")));
                }
                cells.push((name.trim().to_string(), geos));
            }
            Assignment::Cells { cells, start }
        } else if let Some(column) = &self.treatment_col {
            if !self.treated.is_empty() {
                return Err(settings("--treatment-col", "use either --treated or --treatment-col, not both"));
            }
            Assignment::TreatmentColumn { column: column.clone(), start: self.start.clone() }
        } else {
            if self.treated.is_empty() {
                return Err(settings(
                    "--treated",
                    "give the treated geos with --treated a,b (or --treatment-col, or --cell NAME=a,b)",
                ));
            }
            let start = self.start.clone().ok_or_else(|| settings("--start", "--start is required with --treated"))?;
            Assignment::Treated { geos: self.treated.clone(), start }
        };
        Ok(ReadoutSettings {
            estimators,
            assignment,
            end: self.end,
            demean: self.demean,
            alpha: self.alpha,
            stat,
            permutations: self.permutations,
            placebo_reps: self.placebo_reps,
            max_donors: self.max_donors,
            seed: self.seed,
            channels: self.channels,
            spend_change: self.spend_change,
        })
    }
}

impl ReadoutSettings {
    pub fn estimators(&self) -> &[Estimator] {
        &self.estimators
    }
    pub fn assignment(&self) -> &Assignment {
        &self.assignment
    }
    pub fn end(&self) -> Option<&str> {
        self.end.as_deref()
    }
    pub fn demean(&self) -> bool {
        self.demean
    }
    pub fn alpha(&self) -> f64 {
        self.alpha
    }
    pub fn stat(&self) -> ConformalStat {
        self.stat
    }
    pub fn permutations(&self) -> usize {
        self.permutations
    }
    pub fn placebo_reps(&self) -> usize {
        self.placebo_reps
    }
    pub fn max_donors(&self) -> usize {
        self.max_donors
    }
    pub fn seed(&self) -> u64 {
        self.seed
    }
    pub fn channels(&self) -> &[String] {
        &self.channels
    }
    pub fn spend_change(&self) -> Option<f64> {
        self.spend_change
    }
}

/// One test cell read out.
#[derive(Debug, Clone)]
pub struct CellReadout {
    pub name: String,
    /// The cell's data: its treated geos, the never-treated controls, the window.
    pub data: LiftData,
    /// One estimate per estimator, in the settings' order.
    pub estimates: Vec<LiftEstimate>,
    /// The spend change used for iROAS: `--spend-change`, else from the spend column (see
    /// [`baseline_spend_change`]); `None` when unknown.
    pub spend_change: Option<f64>,
    /// Suspicious input values in the cell (robust score above [`OUTLIER_THRESHOLD`]).
    pub outliers: Vec<OutlierWarning>,
    /// The spend column has gaps in the treated geos, so the spend change is unknown.
    pub spend_gaps: bool,
}

/// A staggered-adoption readout: TWFE with cluster-robust SEs and the event study on the whole panel.
#[derive(Debug, Clone)]
pub struct StaggeredReadout {
    pub treated: Vec<String>,
    /// First period any geo is treated, and the panel's last period.
    pub start: String,
    pub end: String,
    /// Number of treated (geo, period) cells: incremental KPI = ATT × this.
    pub treated_geo_periods: f64,
    pub att: f64,
    pub se: f64,
    pub ci_lower: f64,
    pub ci_upper: f64,
    pub p_value: f64,
    pub event_study: Vec<EventCoef>,
}

/// What a readout found.
#[derive(Debug, Clone)]
pub enum Body {
    Cells(Vec<CellReadout>),
    Staggered(StaggeredReadout),
}

/// A geo test read out: estimates per cell (or the staggered TWFE) and the calibration records.
#[derive(Debug, Clone)]
pub struct Readout {
    /// The panel's file.
    pub source: String,
    pub seed: u64,
    pub alpha: f64,
    pub body: Body,
    /// One calibration record per cell (each validated), in cell order.
    pub records: Vec<LiftTestRecord>,
}

impl Readout {
    pub fn records(&self) -> &[LiftTestRecord] {
        &self.records
    }

    /// The cells (empty for a staggered readout).
    pub fn cells(&self) -> &[CellReadout] {
        match &self.body {
            Body::Cells(c) => c,
            Body::Staggered(_) => &[],
        }
    }

    /// `lift.json`; `kpi` is the KPI column's name.
    pub fn lift_json(&self, kpi: &str) -> serde_json::Value {
        match &self.body {
            Body::Cells(cells) => cells_json(&self.source, kpi, self.seed, cells),
            Body::Staggered(s) => staggered_json(&self.source, kpi, self.seed, self.alpha, s),
        }
    }

    /// `lift_periods.csv` (observed and counterfactual treated average per period, per cell and
    /// estimator); `None` for a staggered readout.
    pub fn periods_csv(&self) -> Option<String> {
        match &self.body {
            Body::Cells(cells) => Some(periods_csv(cells)),
            Body::Staggered(_) => None,
        }
    }
}

/// A cell set up and screened, before any estimator runs.
#[derive(Debug, Clone)]
pub struct PreparedCell {
    pub name: String,
    pub data: LiftData,
    pub spend_change: Option<f64>,
    pub outliers: Vec<OutlierWarning>,
    pub spend_gaps: bool,
}

/// What [`prepare`] found: cells to estimate, or a staggered adoption for TWFE.
#[derive(Debug, Clone)]
pub enum Prepared {
    Cells(Vec<PreparedCell>),
    Staggered,
}

impl Prepared {
    /// The prepared cells (empty for staggered adoption).
    pub fn cells(&self) -> &[PreparedCell] {
        match self {
            Prepared::Cells(c) => c,
            Prepared::Staggered => &[],
        }
    }
}

/// Reads out a geo test on `panel` (read with [`Panel::read_allow_gaps`], and with the treatment
/// column when the settings use one): [`prepare`] then [`estimate`]. Deterministic for a given seed.
pub fn read_out(panel: &Panel, s: &ReadoutSettings, progress: &dyn Progress) -> Result<Readout, ReadoutError> {
    estimate(panel, s, prepare(panel, s)?, progress)
}

/// What a readout of a test would report, predicted on history: see [`predict_readout`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictedReadout {
    /// The standard error of the incremental KPI (treated geos, whole test) the readout reports —
    /// the calibration record's `standard_error`.
    pub standard_error: f64,
    /// The estimate of the incremental KPI with nothing injected (a placebo in time; 0 on average
    /// for an unbiased estimator).
    pub placebo_estimate: f64,
    /// The counterfactual KPI of the treated geos over the window (observed − estimate): what a
    /// relative lift is a share of, so `standard_error / baseline_kpi` is the relative SE.
    pub baseline_kpi: f64,
}

/// The readout's own standard error for a test of `treated` lasting `duration` periods, predicted
/// before the test runs: the readout of `params` (estimators, α, permutations, placebo
/// replications, seed; the first estimator gives the record, as in [`read_out`]) run on the
/// panel's latest window of history as if it were the test — test window = the last `duration`
/// periods, pre-period = the `pre_periods` before it (fewer if the history is shorter), nothing
/// injected — and the same record SE [`read_out`] would report for it.
///
/// Why this predicts the reported SE: each estimator's reported SE is a function of the window's
/// data, computed by the same code here as at the readout. For `ascm` (and `sdid`, `did`) it is the
/// placebo SE over random control groups (the spread of the estimate when `n₁` control geos stand
/// in for the treated ones): only the control geos' series and the ridge penalty (cross-validated
/// on the treated geos' pre-period) enter, none of which the test's spend change touches. The
/// real readout differs only by its window lying `duration` periods later and by the placebo
/// draws' Monte Carlo error (≈ 1/√(2R) relative for R replications). It is the SE the readout will
/// *report*; whether that SE is honest (covers the truth) is a property of the estimator (see
/// `crate::design::PowerEngine::se_windows` for synthetic control's placebo-in-time SE).
///
/// Errors as [`read_out`] would on that window: a design the estimator cannot read (e.g. ASCM's
/// placebo SE with no more controls than treated geos) fails here as it would at the readout.
pub fn predict_readout(
    panel: &Panel,
    params: &ReadoutParams,
    treated: &[String],
    duration: usize,
    pre_periods: usize,
) -> Result<PredictedReadout, ReadoutError> {
    let t_n = panel.times.len();
    if duration == 0 || pre_periods < 3 || duration + 3 > t_n {
        return Err(settings(
            "--duration",
            format!(
                "a {duration}-period test after a {pre_periods}-period pre-period cannot be predicted on {t_n} periods of \
                 history (need a test of at least 1 period and at least 3 pre-periods)"
            ),
        ));
    }
    let lo = t_n.saturating_sub(duration + pre_periods);
    let mut window = panel.periods(lo, t_n)?;
    window.spend = None;
    let n = window.times.len();
    let s = ReadoutParams {
        treated: treated.to_vec(),
        treatment_col: None,
        cells: vec![],
        start: Some(window.time_labels[n - duration].clone()),
        end: Some(window.time_labels[n - 1].clone()),
        channels: vec![],
        spend_change: None,
        ..params.clone()
    }
    .check()?;
    let readout = read_out(&window, &s, &crate::progress::NoProgress)?;
    let r = &readout.records()[0];
    let cell = &readout.cells()[0].data;
    let observed: f64 =
        cell.treated.iter().map(|&g| (cell.t0..cell.n_periods()).map(|t| cell.y[[g, t]]).sum::<f64>()).sum();
    Ok(PredictedReadout {
        standard_error: r.standard_error,
        placebo_estimate: r.incremental_kpi,
        baseline_kpi: observed - r.incremental_kpi,
    })
}

/// The cheap first half of a readout: refuses gaps the estimators cannot take, sets up every cell
/// (window, treated geos, controls without the other cells' geos), screens it for suspicious values
/// and finds its spend change. A caller shows the warnings before the long estimation starts.
pub fn prepare(panel: &Panel, s: &ReadoutSettings) -> Result<Prepared, ReadoutError> {
    // gaps are read, and then refused by every estimator except TBR (which aggregates over them)
    if panel.n_missing() > 0
        && let Some(e) = s.estimators.iter().find(|e| **e != Estimator::Tbr)
        && let Some(o) = panel.observed.as_ref()
    {
        let i = o.iter().position(|&v| !v).unwrap_or(0);
        return Err(GeoLiftError::Gaps {
            estimator: e.name().into(),
            source_name: panel.source.clone(),
            missing: panel.n_missing(),
            geo: panel.geos[i / o.ncols()].clone(),
            time: panel.time_labels[i % o.ncols()].clone(),
        }
        .into());
    }

    // designs: one per cell
    let mut designs: Vec<(String, Design)> = Vec::new();
    match &s.assignment {
        Assignment::Cells { cells, start } => {
            for (name, geos) in cells {
                designs
                    .push((name.clone(), Design { treated: geos.clone(), start: start.clone(), end: s.end.clone() }));
            }
        }
        Assignment::TreatmentColumn { start, .. } => {
            let staggered = matches!(panel.design_from_treatment(), Err(GeoLiftError::StaggeredAdoption { .. }));
            if staggered && s.estimators.iter().all(|e| *e == Estimator::Twfe) {
                return Ok(Prepared::Staggered);
            }
            let mut d = panel.design_from_treatment()?;
            if let Some(st) = start {
                d.start = st.clone();
            }
            if s.end.is_some() {
                d.end = s.end.clone();
            }
            designs.push(("test".into(), d));
        }
        Assignment::Treated { geos, start } => {
            designs.push(("test".into(), Design { treated: geos.clone(), start: start.clone(), end: s.end.clone() }));
        }
    }
    let all_treated: Vec<String> = designs.iter().flat_map(|(_, d)| d.treated.clone()).collect();
    let mut cells = Vec::new();
    for (name, d) in &designs {
        let exclude: Vec<String> = all_treated.iter().filter(|g| !d.treated.contains(g)).cloned().collect();
        let data = panel
            .design_cell(d, &exclude)
            .map_err(|e| ReadoutError::Cell { cell: name.clone(), source: Box::new(e) })?;
        let outliers = data.screen_outliers(OUTLIER_THRESHOLD);
        let spend_change = s.spend_change.or_else(|| baseline_spend_change(&data));
        let spend_gaps = s.spend_change.is_none() && data.spend.is_some() && spend_change.is_none();
        cells.push(PreparedCell { name: name.clone(), data, spend_change, outliers, spend_gaps });
    }
    Ok(Prepared::Cells(cells))
}

/// The second half of a readout: every estimator with its inference on every prepared cell, then
/// the calibration records (each validated).
pub fn estimate(
    panel: &Panel,
    s: &ReadoutSettings,
    prepared: Prepared,
    progress: &dyn Progress,
) -> Result<Readout, ReadoutError> {
    let prepared = match prepared {
        Prepared::Staggered => return staggered_twfe(panel, s),
        Prepared::Cells(c) => c,
    };
    let mut cells = Vec::new();
    for PreparedCell { name, data, spend_change, outliers, spend_gaps } in prepared {
        // sc, ascm and sdid run on the pre-screened donor pool (did, twfe and tbr on every control)
        let (screened, screen) = data.screen_donors(s.max_donors);
        let mut estimates = Vec::new();
        for &e in &s.estimators {
            progress.stage(&format!("cell {name}: {}", e.name()));
            let d = if e.uses_donor_screen() { &screened } else { &data };
            let wrap = |err| ReadoutError::Estimator { cell: name.clone(), estimator: e.name(), source: Box::new(err) };
            let mut est = estimate_one(e, d, s).map_err(wrap)?;
            if e.uses_donor_screen()
                && let Some(sc) = &screen
            {
                est.notes.push(format!("{sc} (--max-donors {})", s.max_donors));
            }
            if let Some(sp) = spend_change {
                est.set_iroas(sp);
            }
            d.check_estimate(&est).map_err(wrap)?;
            estimates.push(est);
        }
        progress.finish();
        cells.push(CellReadout { name, data, estimates, spend_change, outliers, spend_gaps });
    }
    let mut records = Vec::with_capacity(cells.len());
    for c in &cells {
        let r = record(c, s, &panel.source);
        if let Err(m) = r.validate() {
            return Err(ReadoutError::InvalidRecord {
                what: format!("calibration record for {:?}", r.geos),
                message: m,
            });
        }
        records.push(r);
    }
    Ok(Readout { source: panel.source.clone(), seed: s.seed, alpha: s.alpha, body: Body::Cells(cells), records })
}

/// Spend change when only a spend column is given: treated spend over the window minus the same
/// number of periods at the treated geos' pre-period average spend.
/// `None` when a treated geo's spend cell is missing (a gap) or there is no spend column.
pub fn baseline_spend_change(d: &LiftData) -> Option<f64> {
    let s = d.spend.as_ref()?;
    let pre: f64 = d.treated.iter().map(|&g| (0..d.t0).map(|t| s[[g, t]]).sum::<f64>()).sum::<f64>() / d.t0 as f64;
    Some(d.treated_post_spend()? - pre * d.n_post() as f64).filter(|v| v.is_finite())
}

/// Per-geo, per-period spend change over the test window against each treated geo's pre-period
/// average (sums to [`baseline_spend_change`]).
pub fn spend_path(d: &LiftData) -> Option<Vec<SpendDelta>> {
    let s = d.spend.as_ref()?;
    baseline_spend_change(d)?;
    let mut out = Vec::new();
    for &g in &d.treated {
        let base = (0..d.t0).map(|t| s[[g, t]]).sum::<f64>() / d.t0 as f64;
        for t in d.t0..d.n_periods() {
            out.push(SpendDelta { time: d.time_labels[t].clone(), geo: d.geos[g].clone(), delta: s[[g, t]] - base });
        }
    }
    Some(out)
}

/// The standard error of an estimate's ATT: its own, or from its interval by the normal
/// approximation, (upper − lower) / (2 z₁₋α/₂), when the method gives only an interval.
pub fn att_se(e: &LiftEstimate) -> Option<f64> {
    e.se.or_else(|| {
        let (l, h) = (e.ci_lower?, e.ci_upper?);
        Some((h - l) / (2.0 * crate::stats::normal_quantile(1.0 - e.alpha / 2.0)))
    })
}

/// The calibration record of a cell from its first estimator (the one listed first).
fn record(c: &CellReadout, s: &ReadoutSettings, source: &str) -> LiftTestRecord {
    let e = &c.estimates[0];
    let scale = (e.n_post * e.n_treated) as f64;
    LiftTestRecord {
        channels: s.channels.clone(),
        geos: c.data.treated_names(),
        start: c.data.time_labels[c.data.t0].clone(),
        end: c.data.time_labels[c.data.n_periods() - 1].clone(),
        spend_change: c.spend_change.unwrap_or(0.0),
        spend_path: if s.spend_change.is_none() { spend_path(&c.data) } else { None },
        incremental_kpi: e.incremental,
        standard_error: att_se(e).map(|x| x * scale).unwrap_or(f64::NAN),
        estimator: e.estimator.clone(),
        source: source.to_string(),
    }
}

/// Staggered adoption from a 0/1 treatment column: TWFE with cluster-robust SEs and the event
/// study on the whole panel (the other estimators need one common test window).
fn staggered_twfe(panel: &Panel, s: &ReadoutSettings) -> Result<Readout, ReadoutError> {
    let d = panel
        .treatment
        .as_ref()
        .ok_or_else(|| settings("--treatment-col", "no treatment column: read the panel with its treatment column"))?;
    let fit = Twfe.fit_matrix(panel.kpi.view(), d.view())?;
    let events = EventStudy.fit_matrix(panel.kpi.view(), d.view())?;
    let (att, se) = (fit.coef[0], fit.se(0));
    let df = (fit.n_clusters - 1) as f64;
    let q = crate::stats::t_quantile(1.0 - s.alpha / 2.0, df);
    let p = 2.0 * (1.0 - crate::stats::t_cdf((att / se).abs(), df));
    let treated: Vec<usize> = (0..panel.geos.len()).filter(|&g| d.row(g).iter().any(|&v| v == 1.0)).collect();
    let treated_cells = d.iter().filter(|&&v| v == 1.0).count() as f64;
    let first = (0..panel.times.len()).find(|&t| treated.iter().any(|&g| d[[g, t]] == 1.0)).unwrap_or(0);
    let last = panel.times.len() - 1;
    let st = StaggeredReadout {
        treated: treated.iter().map(|&g| panel.geos[g].clone()).collect(),
        start: panel.time_labels[first].clone(),
        end: panel.time_labels[last].clone(),
        treated_geo_periods: treated_cells,
        att,
        se,
        ci_lower: att - q * se,
        ci_upper: att + q * se,
        p_value: p,
        event_study: events,
    };
    let record = LiftTestRecord {
        channels: s.channels.clone(),
        geos: st.treated.clone(),
        start: st.start.clone(),
        end: st.end.clone(),
        spend_change: s.spend_change.unwrap_or(0.0),
        spend_path: None,
        incremental_kpi: att * treated_cells,
        standard_error: se * treated_cells,
        estimator: "twfe".into(),
        source: panel.source.clone(),
    };
    if let Err(m) = record.validate() {
        return Err(ReadoutError::InvalidRecord { what: "calibration record".into(), message: m });
    }
    Ok(Readout {
        source: panel.source.clone(),
        seed: s.seed,
        alpha: s.alpha,
        body: Body::Staggered(st),
        records: vec![record],
    })
}

fn nonfinite(estimator: &str, what: &str, value: f64, data: &LiftData) -> GeoLiftError {
    GeoLiftError::NonFiniteResult {
        estimator: estimator.into(),
        what: what.into(),
        value,
        culprit: data.nonfinite_culprit(),
    }
}

/// One estimator with its inference on one cell.
fn estimate_one(name: Estimator, data: &LiftData, s: &ReadoutSettings) -> Result<LiftEstimate, GeoLiftError> {
    let alpha = s.alpha;
    let (reps, seed) = (s.placebo_reps, s.seed);
    Ok(match name {
        Estimator::Sc => {
            let sc = SyntheticControl { demean: s.demean };
            let mut e = sc.estimate(data)?;
            let conf = Conformal { ns: s.permutations, alpha, seed, stat: s.stat, grid_size: 50, demean: sc.demean };
            let r = conf.apply(data, &mut e)?;
            // SE consistent with the reported interval: the conformal CI's half-width over z_{1−α/2}
            // (a normal approximation). The placebo SE over random control groups is reported as a
            // note: it also reflects how badly SC fits hard-to-match controls, not only this test.
            let z = crate::stats::normal_quantile(1.0 - alpha / 2.0);
            if r.ci_lower.is_finite() && r.ci_upper.is_finite() {
                e.se = Some((r.ci_upper - r.ci_lower) / (2.0 * z));
            }
            e.inference =
                Some(format!("conformal p-value and CI ({} permutations); SE = CI half-width / z", s.permutations));
            match inference::placebo_se(&sc, data, reps, seed) {
                Ok(se) if !se.is_finite() => return Err(nonfinite("sc", "placebo SE", se, data)),
                Ok(se) => e.notes.push(format!("placebo SE ({reps} random control groups): {se:.6}")),
                Err(m @ GeoLiftError::ResourceLimit { .. }) | Err(m @ GeoLiftError::BadDesign { .. }) => {
                    return Err(m);
                }
                Err(m) => e.notes.push(format!("no placebo SE: {m}")),
            }
            match inference::placebo_in_space(&sc, data, e.att) {
                Ok(p) if !(p.p_value.is_finite() && p.sd.is_finite()) => {
                    return Err(nonfinite("sc", "placebo-in-space spread", p.sd, data));
                }
                Ok(p) => {
                    e.notes.push(format!(
                        "placebo in space ({} controls as fake treated geos): rank p-value {:.4}, SD of placebo ATTs {:.6}",
                        p.placebos.len(),
                        p.p_value,
                        p.sd
                    ));
                    e.placebos = p.placebos;
                }
                Err(m) => e.notes.push(format!("no placebo in space: {m}")),
            }
            PeriodConformal::new(PeriodModel::Sc, alpha, sc.demean).apply(data, &mut e)?;
            e.notes.push(format!("conformal p(0) = {:.4}", r.p_value));
            e.notes.push(format!(
                "conformal p(0) for the average effect (|Σu|, the statistic the CI inverts) = {:.4}",
                r.p_value_average
            ));
            let excludes_zero = !(r.ci_lower <= 0.0 && 0.0 <= r.ci_upper);
            if (r.p_value < alpha) != excludes_zero {
                e.notes.push(format!(
                    "the p-value ({:.4}, GeoLift's {:?} statistic) and the {:.0}% CI disagree about 0: the \
                     p-value reacts to effects that vary over the test window, the CI is for their average; \
                     read the average-effect p-value ({:.4}) with the CI",
                    r.p_value,
                    s.stat,
                    100.0 * (1.0 - alpha),
                    r.p_value_average
                ));
            }
            e
        }
        Estimator::Ascm => {
            let a = Ascm { demean: s.demean, lambda: None };
            let fit = a.fit(data)?;
            let mut e = a.estimate(data)?;
            // placebo replications keep the cross-validated penalty fixed (re-running the CV per
            // replication would multiply the cost by ~T₀ for little change)
            let fixed = Ascm { lambda: Some(fit.lambda), ..a };
            let se = inference::placebo_se(&fixed, data, reps, seed)?;
            inference::apply_se(&mut e, se, alpha, &format!("placebo SE ({reps} reps, λ fixed), normal CI"));
            PeriodConformal::new(PeriodModel::Ascm { lambda: fit.lambda }, alpha, s.demean).apply(data, &mut e)?;
            e
        }
        Estimator::Sdid => {
            let sd = Sdid::default();
            let mut e = sd.estimate(data)?;
            let se = inference::sdid_placebo_se(&sd, data, reps, seed)?;
            inference::apply_se(&mut e, se, alpha, &format!("placebo SE ({reps} reps), normal CI"));
            if let Ok(jk) = inference::sdid_jackknife_se(&sd, data) {
                e.notes.push(format!("jackknife SE {jk:.6}"));
            }
            e
        }
        Estimator::Did => {
            let mut e = DiD.estimate(data)?;
            let se = inference::sdid_placebo_se(&Sdid::did(), data, reps, seed)?;
            inference::apply_se(&mut e, se, alpha, &format!("placebo SE ({reps} reps), normal CI"));
            e
        }
        Estimator::Twfe => {
            let mut e = Twfe.estimate(data)?;
            // recompute the interval at the requested alpha
            if let Some(se) = e.se {
                let fit = Twfe.fit(data)?;
                let q = crate::stats::t_quantile(1.0 - alpha / 2.0, (fit.n_clusters - 1) as f64);
                e.alpha = alpha;
                e.ci_lower = Some(e.att - q * se);
                e.ci_upper = Some(e.att + q * se);
            }
            e
        }
        Estimator::Tbr => {
            let tbr = Tbr { alpha };
            let mut e = tbr.estimate(data)?;
            // the predictive interval assumes iid errors; the block bootstrap keeps their serial
            // correlation (daily data), reported beside it
            match tbr.block_bootstrap(data, 1000, None, seed) {
                Ok(b) if !(b.cumulative_se.is_finite() && b.ci_lower.is_finite() && b.ci_upper.is_finite()) => {
                    return Err(nonfinite("tbr", "block-bootstrap SE", b.cumulative_se, data));
                }
                Ok(b) => e.notes.push(format!(
                    "moving-block bootstrap (block {}, {} reps): cumulative effect SE {:.4}, {:.0}% interval [{:.4}, {:.4}], p = {:.4}",
                    b.block_len,
                    b.reps,
                    b.cumulative_se,
                    100.0 * (1.0 - alpha),
                    b.ci_lower,
                    b.ci_upper,
                    b.p_value
                )),
                Err(err) => e.notes.push(format!("moving-block bootstrap not available: {err}")),
            }
            e
        }
    })
}

fn cells_json(source: &str, kpi: &str, seed: u64, cells: &[CellReadout]) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let cells_json: Vec<Value> = cells
        .iter()
        .map(|c| {
            let mut ests = Map::new();
            for e in &c.estimates {
                let weights: Map<String, Value> = e.weights.iter().map(|(g, w)| (g.clone(), json!(w))).collect();
                let mut o = json!({
                    "att": e.att,
                    "lift_pct": e.lift_pct,
                    "incremental": e.incremental,
                    "se": e.se,
                    "ci_lower": e.ci_lower,
                    "ci_upper": e.ci_upper,
                    "p_value": e.p_value,
                    "alpha": e.alpha,
                    "inference": e.inference,
                    "weights": weights,
                    "pre_fit": e.pre_fit,
                    "bias": e.bias,
                    "iroas": e.iroas,
                    "period_band": e.period_band,
                    "notes": e.notes,
                });
                if !e.event_study.is_empty() {
                    o["event_study"] = json!(e.event_study);
                }
                if !e.placebos.is_empty() {
                    let pl: Map<String, Value> = e.placebos.iter().map(|(g, a)| (g.clone(), json!(a))).collect();
                    o["placebo_atts"] = Value::Object(pl);
                }
                if !e.time_weights.is_empty() {
                    let tw: Map<String, Value> = e.time_weights.iter().map(|(g, w)| (g.clone(), json!(w))).collect();
                    o["time_weights"] = Value::Object(tw);
                }
                ests.insert(e.estimator.clone(), o);
            }
            json!({
                "cell": c.name,
                "treated": c.data.treated_names(),
                "controls": c.data.control_names(),
                "start": c.data.time_labels[c.data.t0],
                "end": c.data.time_labels[c.data.n_periods() - 1],
                "n_pre": c.data.t0,
                "n_post": c.data.n_post(),
                "spend_change": c.spend_change,
                "missing_cells": c.data.missing_cells().0,
                "outlier_rule": format!("robust score > {OUTLIER_THRESHOLD} and off by more than half the geo's typical level (modified z-score of the level-scaled series minus the cross-geo median and the ±2-period neighbours' median); the treated geos' test window is exempt"),
                "warnings": c.outliers,
                "estimates": Value::Object(ests),
            })
        })
        .collect();
    json!({
        "source": source,
        "kpi": kpi,
        "seed": seed,
        "cells": cells_json,
    })
}

fn staggered_json(source: &str, kpi: &str, seed: u64, alpha: f64, s: &StaggeredReadout) -> serde_json::Value {
    use serde_json::json;
    let est = json!({
        "att": s.att, "incremental": s.att * s.treated_geo_periods, "se": s.se,
        "ci_lower": s.ci_lower, "ci_upper": s.ci_upper, "p_value": s.p_value, "alpha": alpha,
        "inference": "cluster-robust (by geo), staggered adoption",
        "event_study": s.event_study,
        "notes": ["staggered adoption: TWFE weights cohorts and periods implicitly (Goodman-Bacon 2021); read the event study"],
    });
    json!({
        "source": source, "kpi": kpi, "seed": seed,
        "cells": [{
            "cell": "staggered",
            "treated": s.treated,
            "start": s.start, "end": s.end,
            "treated_geo_periods": s.treated_geo_periods,
            "estimates": {"twfe": est},
        }],
    })
}

/// `lift_periods.csv`: per cell, estimator and period the treated average, the counterfactual and
/// the effect, and for the estimators with a per-period band ([`LiftEstimate::period_band`]: sc and
/// ascm) the effect's interval and p-value in each test period (empty otherwise).
fn periods_csv(cells: &[CellReadout]) -> String {
    let mut s = String::from(
        "cell,estimator,time,post,observed,counterfactual,effect,effect_lower,effect_upper,effect_p_value\n",
    );
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for c in cells {
        for e in &c.estimates {
            for p in &e.path {
                s.push_str(&format!(
                    "{},{},{},{},{},{},{},{},{},{}\n",
                    csv_field(&c.name),
                    e.estimator,
                    csv_field(&p.time),
                    u8::from(p.post),
                    p.observed,
                    p.counterfactual,
                    p.observed - p.counterfactual,
                    opt(p.effect_lower),
                    opt(p.effect_upper),
                    opt(p.effect_p_value)
                ));
            }
        }
    }
    s
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ReadoutParams {
        ReadoutParams { treated: vec!["a".into()], start: Some("3".into()), ..Default::default() }
    }

    fn option_of(p: ReadoutParams) -> &'static str {
        match p.check() {
            Err(ReadoutError::Settings { option, .. }) => option,
            other => panic!("expected a settings error, got {other:?}"),
        }
    }

    #[test]
    fn all_expands_in_order_and_repeats_collapse() {
        let s = ReadoutParams { estimators: vec!["SC".into(), " all ".into()], ..base() }.check().unwrap();
        // "sc" then all six: the sc repeated next to itself collapses (as the CLI always did)
        assert_eq!(s.estimators(), Estimator::ALL.as_slice());
        assert_eq!(s.assignment(), &Assignment::Treated { geos: vec!["a".into()], start: "3".into() });
    }

    #[test]
    fn each_bad_setting_names_its_option() {
        assert_eq!(option_of(ReadoutParams { alpha: 1.0, ..base() }), "--alpha");
        assert_eq!(option_of(ReadoutParams { alpha: f64::NAN, ..base() }), "--alpha");
        assert_eq!(option_of(ReadoutParams { stat: "both".into(), ..base() }), "--stat");
        assert_eq!(option_of(ReadoutParams { estimators: vec!["lasso".into()], ..base() }), "--estimator");
        assert_eq!(option_of(ReadoutParams { estimators: vec![], ..base() }), "--estimator");
        assert_eq!(option_of(ReadoutParams { spend_change: Some(0.0), ..base() }), "--spend-change");
        assert_eq!(option_of(ReadoutParams { start: None, ..base() }), "--start");
        assert_eq!(option_of(ReadoutParams { treated: vec![], ..base() }), "--treated");
        assert_eq!(option_of(ReadoutParams { cells: vec!["x=b".into()], ..base() }), "--cell");
        let cells = |c: &str| ReadoutParams { treated: vec![], cells: vec![c.into()], ..base() };
        assert_eq!(option_of(cells("no-equals-sign")), "--cell");
        assert_eq!(option_of(cells("x= , ")), "--cell");
        let both = ReadoutParams { treatment_col: Some("D".into()), ..base() };
        assert_eq!(option_of(both), "--treatment-col");
    }

    #[test]
    fn cells_and_treatment_column_become_typed_assignments() {
        let p = ReadoutParams { treated: vec![], cells: vec![" one = a, b ,".into(), "two=c".into()], ..base() };
        let want = vec![("one".to_string(), vec!["a".to_string(), "b".to_string()]), ("two".into(), vec!["c".into()])];
        assert_eq!(p.check().unwrap().assignment(), &Assignment::Cells { cells: want, start: "3".into() });
        let p = ReadoutParams { treated: vec![], start: None, treatment_col: Some("D".into()), ..base() };
        assert_eq!(p.check().unwrap().assignment(), &Assignment::TreatmentColumn { column: "D".into(), start: None });
    }

    #[test]
    fn se_from_the_interval_is_the_normal_half_width() {
        let mut e = LiftEstimate {
            estimator: "x".into(),
            att: 1.0,
            lift_pct: 0.0,
            incremental: 0.0,
            se: None,
            ci_lower: Some(-1.0),
            ci_upper: Some(3.0),
            p_value: None,
            alpha: 0.05,
            inference: None,
            weights: vec![],
            time_weights: vec![],
            pre_fit: None,
            bias: None,
            path: vec![],
            period_band: None,
            iroas: None,
            event_study: vec![],
            n_treated: 1,
            n_post: 1,
            notes: vec![],
            placebos: vec![],
        };
        // 95 % interval of half-width 2: SE = 2 / 1.959964 (z_{0.975} to 7 digits)
        assert!((att_se(&e).unwrap() - 2.0 / 1.959_964).abs() < 1e-6);
        e.se = Some(0.5);
        assert_eq!(att_se(&e), Some(0.5));
    }
}
