//! Phase 4: the budget recommendation on the calibrated posterior, and what changed since the
//! last cycle. The optimisation is `mmloop optimize`'s ([`mmloop_mmm::optimize::optimize_plan`]).

use super::CycleError;
use super::config::BudgetSettings;
use super::run::EvidenceSummary;
use mmloop_mmm::analysis::Stat;
use mmloop_mmm::optimize::{FittedModel, OptimizationReport, OutcomeUnit, PlanGoal, PlanningBasis, relative_bounds};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The budget recommendation of a cycle.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetOutcome {
    pub report: OptimizationReport,
    /// Recommended spend per channel over the horizon.
    pub spend: BTreeMap<String, f64>,
}

/// Optimises the budget on `fit` with the loop's settings (KPI outcomes, or revenue when the
/// model has a revenue-per-KPI column). With [`BudgetSettings::against_plan`] the objective
/// scores the gain over `plan` (the plan in force: (channel, spend) over the horizon, the last
/// cycle's recommendation; a channel it does not name, or no plan, takes the current spend).
pub fn recommend(
    fit: &FittedModel,
    s: &BudgetSettings,
    plan: Option<&[(String, f64)]>,
) -> Result<BudgetOutcome, CycleError> {
    let unit = if fit.model.has_revenue { OutcomeUnit::Revenue } else { OutcomeUnit::Kpi };
    let basis = PlanningBasis::new(fit, s.horizon, unit)?;
    let curves = basis.curves(fit, false)?;
    let bounds = relative_bounds(&basis, s.relative, &s.bounds)?;
    let goal = PlanGoal::Budget(s.total.unwrap_or_else(|| basis.current.iter().sum()));
    let reference: Option<Vec<f64>> = s.against_plan.then(|| {
        basis
            .channels
            .iter()
            .zip(&basis.current)
            .map(|(c, &now)| {
                plan.and_then(|p| p.iter().find(|(n, _)| n == c).map(|(_, x)| *x))
                    .filter(|x| x.is_finite())
                    .unwrap_or(now)
            })
            .collect()
    });
    let report =
        mmloop_mmm::optimize::optimize_plan_against(&basis, &curves, s.objective, &bounds, goal, reference.as_deref())?;
    let spend = report.channels.iter().map(|c| (c.channel.clone(), c.optimal_spend)).collect();
    Ok(BudgetOutcome { report, spend })
}

/// A channel as a cycle saw it: what the next cycle compares with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelState {
    pub channel: String,
    pub roi: Stat,
    pub recommended_spend: f64,
    /// The experiments calibrating it, and the newest one's age and variance inflation.
    pub experiments: Vec<i64>,
    pub newest_age_weeks: Option<f64>,
    pub variance_inflation: Option<f64>,
}

/// How a channel moved since the last cycle, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelChange {
    pub channel: String,
    pub roi_before: Stat,
    pub roi_now: Stat,
    pub spend_before: f64,
    pub spend_now: f64,
    /// Experiments that calibrate it now and did not before.
    pub new_experiments: Vec<i64>,
    /// `new evidence`, `decay`, `data`, or `unchanged`.
    pub reason: String,
    /// In words.
    pub sentence: String,
}

/// The channels' states of a cycle: posterior ROI, recommended spend and evidence.
pub fn channel_states(
    roi: &[(String, Stat)],
    budget: &BudgetOutcome,
    evidence: &[EvidenceSummary],
    experiments_of: &BTreeMap<String, Vec<i64>>,
) -> Vec<ChannelState> {
    roi.iter()
        .map(|(c, r)| {
            let ev = evidence.iter().find(|e| &e.channel == c);
            ChannelState {
                channel: c.clone(),
                roi: *r,
                recommended_spend: budget.spend.get(c).copied().unwrap_or(f64::NAN),
                experiments: experiments_of.get(c).cloned().unwrap_or_default(),
                newest_age_weeks: ev.and_then(|e| e.newest_age_weeks),
                variance_inflation: ev.and_then(|e| e.variance_inflation),
            }
        })
        .collect()
}

/// Relative move of a figure that counts as a change worth a sentence (5 %): smaller moves are
/// within the Monte Carlo error of a refit of the same posterior at the default draw counts.
pub const MOVE: f64 = 0.05;

/// What changed per channel between two cycles, and why: new experiments calibrate it (new
/// evidence); its evidence aged and its interval widened (decay); or only the data moved it.
pub fn changes(before: &[ChannelState], now: &[ChannelState]) -> Vec<ChannelChange> {
    let mut out = Vec::new();
    for n in now {
        let Some(b) = before.iter().find(|b| b.channel == n.channel) else { continue };
        let new_experiments: Vec<i64> = n.experiments.iter().filter(|e| !b.experiments.contains(e)).copied().collect();
        let rel = |x: f64, y: f64| if y.abs() > 0.0 { (x - y).abs() / y.abs() } else { (x - y).abs() };
        let width = |s: &Stat| s.q95 - s.q05;
        let roi_moved = rel(n.roi.mean, b.roi.mean) > MOVE || rel(width(&n.roi), width(&b.roi)) > MOVE;
        let spend_moved = rel(n.recommended_spend, b.recommended_spend) > MOVE;
        let aged = matches!((n.variance_inflation, b.variance_inflation), (Some(x), Some(y)) if x > y)
            && new_experiments.is_empty();
        let (reason, why) = if !new_experiments.is_empty() {
            let ids = new_experiments.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
            ("new evidence", format!("new evidence: experiment {ids}"))
        } else if aged && width(&n.roi) > width(&b.roi) {
            (
                "decay",
                format!(
                    "its evidence aged to {:.0} weeks (variance ×{:.2}), so its interval widened",
                    n.newest_age_weeks.unwrap_or(f64::NAN),
                    n.variance_inflation.unwrap_or(f64::NAN)
                ),
            )
        } else if roi_moved || spend_moved {
            ("data", "no new test on it: the new data and the other channels' evidence moved it".to_string())
        } else {
            (
                "unchanged",
                format!("little change: ROI, its interval and the spend each moved less than {:.0} %", 100.0 * MOVE),
            )
        };
        let sentence = format!(
            "{}: ROI {:.3} [{:.3}, {:.3}] → {:.3} [{:.3}, {:.3}], spend {} → {} ({why})",
            n.channel,
            b.roi.mean,
            b.roi.q05,
            b.roi.q95,
            n.roi.mean,
            n.roi.q05,
            n.roi.q95,
            mmloop_data::human::amount(b.recommended_spend),
            mmloop_data::human::amount(n.recommended_spend)
        );
        out.push(ChannelChange {
            channel: n.channel.clone(),
            roi_before: b.roi,
            roi_now: n.roi,
            spend_before: b.recommended_spend,
            spend_now: n.recommended_spend,
            new_experiments,
            reason: reason.to_string(),
            sentence,
        });
    }
    out
}
