//! The design record (`design.json`) the loop reads, and the ranked candidate table (`candidates.csv`).
//!
//! Money follows from the relative MDE through the treated geos' expected counterfactual KPI over the
//! test, B = `baseline_kpi` (mean over the simulated windows):
//!
//! * incremental KPI needed to be detected: |MDE|·B;
//! * implied budget at an assumed iROAS R: |MDE|·B / R (the spend change that, at return R, produces
//!   a detectable lift);
//! * detectable iROAS for a budget S: |MDE|·B / S;
//! * precision: se(incremental) = se(lift)·B and se(iROAS) = se(incremental)/|S|, se(lift) from the
//!   simulated spread of the estimates over the historical windows.

use super::power::{DesignEstimator, DesignInference, PowerConfig, PowerPoint};
use super::select::{Candidate, Selection, TestType};
use serde::Serialize;

/// Expected precision and detectability of one cell.
#[derive(Debug, Clone, Serialize)]
pub struct CellRecord {
    pub rank: usize,
    pub treated: Vec<String>,
    pub duration: usize,
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
}

impl CellRecord {
    pub fn new(c: &Candidate, iroas: Option<f64>, budget: Option<f64>) -> Self {
        let b = c.curve.baseline_kpi;
        let mde_inc = c.mde.map(|m| m.abs() * b);
        Self {
            rank: c.rank,
            treated: c.treated.clone(),
            duration: c.duration,
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
        }
    }
}

/// Precision of the chosen treated set as a function of test length.
#[derive(Debug, Clone, Serialize)]
pub struct PrecisionRow {
    pub duration: usize,
    pub mde: Option<f64>,
    pub se_lift: f64,
    pub se_incremental: f64,
    pub se_iroas: Option<f64>,
    pub implied_budget: Option<f64>,
    pub detectable_iroas: Option<f64>,
}

/// `design.json`.
#[derive(Debug, Clone, Serialize)]
pub struct DesignRecord {
    pub method: String,
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
        Self {
            method: cfg.method(),
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
