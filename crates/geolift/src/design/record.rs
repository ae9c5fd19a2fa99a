//! The design record (`design.json`) the loop reads, and the ranked candidate table (`candidates.csv`).
//!
//! Money follows from the relative MDE through the treated geos' expected counterfactual KPI over the
//! test, B = `baseline_kpi` (mean over the simulated windows):
//!
//! * incremental KPI needed to be detected: |MDE|·B;
//! * implied budget at an assumed iROAS R: |MDE|·B / R (the spend change that, at return R, produces
//!   a detectable lift);
//! * detectable iROAS for a budget S: |MDE|·B / S;
//! * precision: se(incremental) = se(lift)·B and se(iROAS) = se(incremental)/|S|, se(lift) the root
//!   mean square of the placebo-in-time errors over the historical windows ([`super::PowerCurve::se_lift`],
//!   checked against the spread of real readouts on simulated panels in tests/design_se.rs).
//!
//! The record also carries what the loop needs to plan and rank the test ([`DesignRecord::set_plan`]):
//! the channel(s) it moves, the planned start and each cell's planned end (start + duration − 1
//! periods at the panel's median period step, in the panel's notation), the spend change per cell
//! and its cost ([`TestCost`]). `design.json` reads back with `serde_json::from_slice` into a
//! [`DesignRecord`]; files written before these fields existed read back with them empty.
//!
//! **Cost.** A heavy-up test's cost is cash: the spend change S > 0 per cell (`extra_spend`).
//! A go-dark test spends nothing extra (`extra_spend` 0; `spend_cut` = |S| is money not spent); its
//! cost is the KPI the treated geos lose while dark. The design records that loss in KPI units at
//! the MDE, |MDE|·B (`kpi_at_risk`); turning KPI into money (and netting a heavy-up's expected
//! return against its spend) needs the model's posterior and is the ranking's job (issue 12).

use super::power::{DesignEstimator, DesignInference, PowerConfig, PowerPoint};
use super::select::{Candidate, Selection, TestType};
use serde::{Deserialize, Serialize};

/// What one cell of the test costs (see the module docs). Per cell, in money except `kpi_at_risk`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TestCost {
    /// Cash spent beyond business as usual: the heavy-up's spend change (> 0); 0 for go-dark.
    pub extra_spend: f64,
    /// Spend a go-dark test does not spend (|spend change|); 0 for heavy-up.
    pub spend_cut: f64,
    /// Go-dark: the KPI the treated geos are expected to lose at the MDE, |MDE|·B (KPI units);
    /// `None` for heavy-up or when the MDE is not reached on the effect grid.
    pub kpi_at_risk: Option<f64>,
}

impl TestCost {
    /// The cost of a cell with spend change `spend_change` (> 0 heavy-up, < 0 go-dark) and
    /// incremental KPI at the MDE `mde_incremental` (|MDE|·B).
    pub fn new(spend_change: f64, mde_incremental: Option<f64>) -> Self {
        if spend_change >= 0.0 {
            Self { extra_spend: spend_change, spend_cut: 0.0, kpi_at_risk: None }
        } else {
            Self { extra_spend: 0.0, spend_cut: -spend_change, kpi_at_risk: mde_incremental }
        }
    }
}

/// Expected precision and detectability of one cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellRecord {
    pub rank: usize,
    pub treated: Vec<String>,
    pub duration: usize,
    /// Planned last period of the test (inclusive), when a start was given ([`DesignRecord::set_plan`]).
    #[serde(default)]
    pub end: Option<String>,
    pub power_curve: Vec<PowerPoint>,
    /// Signed relative MDE in the test's direction at the target power (`null`: not reached on the grid).
    pub mde: Option<f64>,
    pub mde_positive: Option<f64>,
    pub mde_negative: Option<f64>,
    pub mde_incremental: Option<f64>,
    pub se_lift: f64,
    pub se_lift_model: f64,
    pub se_incremental: f64,
    /// se of the iROAS at the given budget.
    pub se_iroas: Option<f64>,
    /// Budget needed at the assumed iROAS for the MDE to be produced.
    pub implied_budget: Option<f64>,
    /// iROAS detectable with the given budget.
    pub detectable_iroas: Option<f64>,
    pub baseline_kpi: f64,
    pub lift_at_zero: f64,
    pub scaled_l2: f64,
    pub treated_share: f64,
    /// What the cell costs at the given spend change (`None` without one).
    #[serde(default)]
    pub cost: Option<TestCost>,
}

impl CellRecord {
    pub fn new(c: &Candidate, iroas: Option<f64>, budget: Option<f64>) -> Self {
        let b = c.curve.baseline_kpi;
        let mde_inc = c.mde.map(|m| m.abs() * b);
        Self {
            rank: c.rank,
            treated: c.treated.clone(),
            duration: c.duration,
            end: None,
            power_curve: c.curve.points.clone(),
            mde: c.mde,
            mde_positive: c.mde_both.positive,
            mde_negative: c.mde_both.negative,
            mde_incremental: mde_inc,
            se_lift: c.curve.se_lift,
            se_lift_model: c.curve.se_lift_model,
            se_incremental: c.curve.se_incremental(),
            se_iroas: budget.map(|s| c.curve.se_iroas(s)),
            implied_budget: iroas.and_then(|r| mde_inc.map(|m| m / r.abs())),
            detectable_iroas: budget.and_then(|s| mde_inc.map(|m| m / s.abs())),
            baseline_kpi: b,
            lift_at_zero: c.curve.lift_at_zero,
            scaled_l2: c.curve.scaled_l2,
            treated_share: c.treated_share,
            cost: budget.map(|s| TestCost::new(s, mde_inc)),
        }
    }
}

/// Precision of the chosen treated set as a function of test length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrecisionRow {
    pub duration: usize,
    pub mde: Option<f64>,
    pub se_lift: f64,
    pub se_incremental: f64,
    pub se_iroas: Option<f64>,
    pub implied_budget: Option<f64>,
    pub detectable_iroas: Option<f64>,
}

/// `design.json`. Reads back with serde (`serde_json::from_slice::<DesignRecord>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesignRecord {
    pub method: String,
    /// Channel(s) whose spend the test moves (`--channel`); empty when not given.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Planned first test period (`--start`), in the panel's time notation; each cell's planned end
    /// is in [`CellRecord::end`].
    #[serde(default)]
    pub start: Option<String>,
    /// Spend change over the test per cell (> 0 heavy-up, < 0 go-dark): the `--budget`, under the
    /// name the calibration record and the ledger use.
    #[serde(default)]
    pub spend_change: Option<f64>,
    /// Sum of the cells' costs (`None` without a spend change).
    #[serde(default)]
    pub total_cost: Option<TestCost>,
    pub estimator: DesignEstimator,
    pub inference: DesignInference,
    pub alpha: f64,
    pub target_power: f64,
    pub windows: usize,
    pub step: usize,
    pub seed: u64,
    pub test_type: TestType,
    pub effect_grid: Vec<f64>,
    pub iroas: Option<f64>,
    pub budget: Option<f64>,
    /// The chosen design, one entry per cell.
    pub cells: Vec<CellRecord>,
    /// The first cell's treated set at every searched duration.
    pub precision_by_duration: Vec<PrecisionRow>,
    pub n_shortlisted: usize,
    pub n_evaluated: usize,
    /// Shortlisted treated sets not evaluated because of the candidate limit.
    pub n_capped: usize,
    /// Donor pre-screen: each synthetic-control design's donors are the K geos most correlated with
    /// its treated average before the earliest simulated test (`null`: every other geo).
    pub max_donors: Option<usize>,
    /// Cells of the input that look like typos (robust score per geo series; warned, not dropped).
    pub warnings: Vec<crate::screen::OutlierWarning>,
}

impl DesignRecord {
    pub fn new(sel: &Selection, cfg: &PowerConfig, target_power: f64, iroas: Option<f64>, budget: Option<f64>) -> Self {
        let cells: Vec<CellRecord> = sel.cells.iter().map(|c| CellRecord::new(c, iroas, budget)).collect();
        let first = &sel.cells[0].treated;
        let mut precision_by_duration: Vec<PrecisionRow> = sel
            .candidates
            .iter()
            .filter(|c| &c.treated == first)
            .map(|c| {
                let r = CellRecord::new(c, iroas, budget);
                PrecisionRow {
                    duration: r.duration,
                    mde: r.mde,
                    se_lift: r.se_lift,
                    se_incremental: r.se_incremental,
                    se_iroas: r.se_iroas,
                    implied_budget: r.implied_budget,
                    detectable_iroas: r.detectable_iroas,
                }
            })
            .collect();
        precision_by_duration.sort_by_key(|r| r.duration);
        let total_cost = budget.map(|_| {
            let costs: Vec<TestCost> = cells.iter().filter_map(|c| c.cost).collect();
            TestCost {
                extra_spend: costs.iter().map(|c| c.extra_spend).sum(),
                spend_cut: costs.iter().map(|c| c.spend_cut).sum(),
                kpi_at_risk: costs.iter().map(|c| c.kpi_at_risk).sum(),
            }
        });
        Self {
            method: cfg.method(),
            channels: vec![],
            start: None,
            spend_change: budget,
            total_cost,
            estimator: cfg.estimator,
            inference: cfg.inference,
            alpha: cfg.alpha,
            target_power,
            windows: cfg.windows,
            step: cfg.step,
            seed: cfg.seed,
            test_type: sel.test_type,
            effect_grid: cfg.effects.clone(),
            iroas,
            budget,
            cells,
            precision_by_duration,
            n_shortlisted: sel.n_shortlisted,
            n_evaluated: sel.candidates.len(),
            n_capped: sel.n_capped,
            max_donors: sel.donor_screen,
            warnings: vec![],
        }
    }

    /// Reads a `design.json` back. Errors name the file and say what is wrong (unreadable, not JSON
    /// with line and column, a field missing or of the wrong type).
    pub fn read(path: impl AsRef<std::path::Path>) -> Result<Self, super::DesignError> {
        let path = path.as_ref();
        let bad = |message: String| super::DesignError::BadRecordFile { path: path.to_path_buf(), message };
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))
    }

    /// Records the channel(s) and the planned start, and sets each cell's planned end: `start` plus
    /// `duration − 1` periods at the panel's median period step (periods in the data's own unit:
    /// days for dates, the number itself otherwise). `start` must be in the panel's notation
    /// (`YYYY-MM-DD` for a dated panel).
    pub fn set_plan(
        &mut self,
        channels: Vec<String>,
        start: Option<String>,
        panel: &crate::Panel,
    ) -> Result<(), super::DesignError> {
        self.channels = channels;
        self.start = None;
        for c in &mut self.cells {
            c.end = None;
        }
        let Some(start) = start else { return Ok(()) };
        let at = planned_start(panel, &start)?;
        let step = median_step(&panel.times).ok_or_else(|| {
            super::error::bad("--start", "the panel needs at least two periods to know its period length")
        })?;
        for c in &mut self.cells {
            let end = at + step * (c.duration.saturating_sub(1)) as f64;
            c.end = Some(match panel.time_kind {
                mmloop_data::TimeKind::Date => mmloop_data::format_date(end),
                mmloop_data::TimeKind::Numeric => format!("{end}"),
            });
        }
        self.start = Some(start.trim().to_string());
        Ok(())
    }
}

/// Parses a planned start in the panel's notation (`YYYY-MM-DD` for a dated panel, a number
/// otherwise) into the panel's time unit (days since 1970-01-01 for dates).
pub fn planned_start(panel: &crate::Panel, start: &str) -> Result<f64, super::DesignError> {
    match panel.time_kind {
        mmloop_data::TimeKind::Date => mmloop_data::parse_date(start),
        mmloop_data::TimeKind::Numeric => start.trim().parse::<f64>().ok().filter(|v| v.is_finite()),
    }
    .ok_or_else(|| {
        super::error::bad(
            "--start",
            format!(
                "{start:?} is not a time in the panel's notation ({}, e.g. {:?})",
                match panel.time_kind {
                    mmloop_data::TimeKind::Date => "dates YYYY-MM-DD",
                    mmloop_data::TimeKind::Numeric => "numbers",
                },
                panel.time_labels.last().map(String::as_str).unwrap_or("")
            ),
        )
    })
}

/// Median difference between consecutive (sorted) times; `None` with fewer than two.
fn median_step(times: &[f64]) -> Option<f64> {
    let mut d: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).filter(|v| *v > 0.0).collect();
    if d.is_empty() {
        return None;
    }
    d.sort_by(f64::total_cmp);
    Some(d[d.len() / 2])
}

fn num(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The ranked candidates as CSV: one row per (treated set, duration), a power column per effect.
pub fn candidates_csv(sel: &Selection, cfg: &PowerConfig, iroas: Option<f64>, budget: Option<f64>) -> String {
    let mut out = String::from(
        "rank,treated,n_treated,duration,mde,mde_incremental,mean_power,scaled_l2,treated_share,correlation,lift_at_zero,se_lift,se_lift_model,se_incremental,se_iroas,implied_budget,detectable_iroas",
    );
    for e in &cfg.effects {
        out.push_str(&format!(",power_{e}"));
    }
    out.push('\n');
    for c in &sel.candidates {
        let r = CellRecord::new(c, iroas, budget);
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            c.rank,
            quote(&c.treated.join(";")),
            c.treated.len(),
            c.duration,
            num(r.mde),
            num(r.mde_incremental),
            c.mean_power,
            r.scaled_l2,
            r.treated_share,
            c.correlation,
            r.lift_at_zero,
            r.se_lift,
            r.se_lift_model,
            r.se_incremental,
            num(r.se_iroas),
            num(r.implied_budget),
            num(r.detectable_iroas)
        ));
        for p in &c.curve.points {
            out.push_str(&format!(",{}", p.power));
        }
        out.push('\n');
    }
    out
}
