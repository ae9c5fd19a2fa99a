//! The budget decision of a fit, optimised on the draws that carry weight.
//!
//! Batches of readouts (every candidate's EVOI, the portfolio's sets, and EVPI's one-hot
//! re-optimisations, see [`crate::value::evpi`]) go through the separable solver, tabulated once
//! per ranking ([`FitDecision::fast`]). Single weighted optimisations fall back on the general
//! optimiser only where the tabulation is not usable (an infeasible budget, non-finite curves).
//!
//! [`crate::value::BudgetDecision`] evaluates every posterior draw at every optimiser step, also
//! those with a weight of (nearly) zero: EVPI's one-hot weights and a precise test's reweighted
//! posterior spend almost all of that work on draws that cannot move the optimum. Here the
//! weighted optimum is found on the draws with w_d ≥ [`KEEP`]·max w only (response curves rebuilt for
//! them), when they are at most a quarter of the draws; the dropped draws hold at most N·KEEP of
//! the relative weight, far below the optimiser's own tolerance. Values are always evaluated on
//! every draw.

use crate::value::{
    BudgetDecision, DecisionProblem, PriorOptimum, ReadoutValue, SeparableBudget, ValueError, ValueUnit,
};
use mmloop_mmm::optimize::{FittedModel, PlanningBasis, SaturatingCurves};

/// Relative weight below which a draw is left out of a weighted optimisation.
pub const KEEP: f64 = 1e-12;

/// Newton steps of the general optimiser per re-optimisation. Under concentrated weights on
/// S-shaped (Hill) curves with the exact horizon pieces it creeps along a flat ridge to its
/// 200-step limit, each late step costing dozens of line-search evaluations. Measured on the geo
/// demo (1000 draws, weights of a readout with σ = sd/2, under load): 200 steps took 75–80 s a
/// call, 25 steps changed the weighted objective by 2·10⁻⁶ of its value (≈ 150 money on 8·10⁷)
/// and cost ~1 % of the time; 40 steps are the cap here.
pub const SOLVER_MAX_ITER: usize = 40;

pub(crate) struct FitDecision<'a> {
    pub full: &'a BudgetDecision<'a, SaturatingCurves>,
    /// `full` tabulated once for the whole ranking (every candidate's readouts, EVPI's one-hot
    /// re-optimisations and the portfolio's sets all reuse it).
    pub fast: SeparableBudget<'a, SaturatingCurves>,
    pub fit: &'a FittedModel,
    pub basis: &'a PlanningBasis,
    pub steady_state: bool,
}

impl DecisionProblem for FitDecision<'_> {
    fn n_draws(&self) -> usize {
        self.full.n_draws()
    }

    fn best_action(&self, weights: Option<&[f64]>, start: Option<&[f64]>) -> Result<Vec<f64>, ValueError> {
        let Some(w) = weights else { return self.full.best_action(None, start) };
        let max = w.iter().cloned().fold(0.0, f64::max);
        let keep: Vec<usize> = (0..w.len()).filter(|&d| w[d] >= KEEP * max).collect();
        if max <= 0.0 || 4 * keep.len() > w.len() {
            return self.full.best_action(weights, start);
        }
        let sub = FittedModel {
            spec: self.fit.spec.clone(),
            data: self.fit.data.clone(),
            model: self.fit.model.clone(),
            draws: keep.iter().map(|&d| self.fit.draws[d].clone()).collect(),
        };
        let curves = self
            .basis
            .curves(&sub, self.steady_state)
            .map_err(|e| ValueError::BadOption { option: "curves", message: e.to_string() })?;
        let problem = BudgetDecision {
            curves: &curves,
            bounds: self.full.bounds.clone(),
            budget: self.full.budget,
            unit: self.full.unit,
            settings: self.full.settings,
        };
        let total: f64 = keep.iter().map(|&d| w[d]).sum();
        let sub_w: Vec<f64> = keep.iter().map(|&d| w[d] / total).collect();
        problem.best_action(Some(&sub_w), start)
    }

    fn draw_values(&self, action: &[f64], out: &mut [f64]) {
        self.full.draw_values(action, out)
    }

    fn unit(&self) -> ValueUnit {
        self.full.unit
    }

    /// A batch of readouts through the tabulated separable solver over all draws (equal marginal
    /// returns on concave curves, the exact grid programme on S-shaped ones; see
    /// [`crate::value::SeparableBudget`]), tabulated once in [`FitDecision::fast`].
    fn readout_values(
        &self,
        prior: &PriorOptimum,
        weights: &[Vec<f64>],
        functionals: &[Vec<f64>],
    ) -> Result<(Vec<ReadoutValue>, Vec<f64>), ValueError> {
        if self.fast.is_fast() {
            self.fast.readout_values(prior, weights, functionals)
        } else {
            // infeasible or not finite: the general optimiser on the kept draws reports it
            crate::value::readout_values_by_optimiser(self, prior, weights, functionals)
        }
    }
}

/// At most `max` draws of `fit`, evenly spaced through its draws (all chains kept, no randomness).
pub(crate) fn thin(fit: &FittedModel, max: Option<usize>) -> std::borrow::Cow<'_, FittedModel> {
    let n = fit.draws.len();
    match max {
        Some(m) if m >= 2 && m < n => std::borrow::Cow::Owned(FittedModel {
            spec: fit.spec.clone(),
            data: fit.data.clone(),
            model: fit.model.clone(),
            draws: (0..m).map(|i| fit.draws[i * n / m].clone()).collect(),
        }),
        _ => std::borrow::Cow::Borrowed(fit),
    }
}
