//! Budget optimisation on the posterior: how to split a budget across channels.
//!
//! The problem, for posterior draws d = 1..D of each channel's response curve R_{c,d}:
//!
//! ```text
//! maximise   Φ( O_1, …, O_D ),   O_d = Σ_c R_{c,d}(s_c)        (Φ: mean, mean − k·sd, quantile, CVaR)
//! subject to Σ_c s_c = B,   l_c ≤ s_c ≤ u_c
//! ```
//!
//! With concave responses and a concave Φ (mean, CVaR) this is a smooth convex problem, solved
//! exactly by a projected Newton method (see [`solver`]), and the answer is checked by its KKT
//! conditions (equal marginal returns across free channels). The inverse problems — the smallest
//! budget reaching a target outcome, and spending until a target marginal return — use the same
//! solver. Everything works on a [`ResponseCurves`] and optional draw weights, so value-of-
//! information loops can call [`optimize`] thousands of times without touching files.
//!
//! ```
//! use mmloop_mmm::optimize::*;
//! // two channels, one draw: R_1(s) = 2·s/(1+s), R_2(s) = s/(1+s)
//! let curves = SaturatingCurves::new(2, 1, |c, _| {
//!     (if c == 0 { 2.0 } else { 1.0 }, Saturation::MichaelisMenten { k: 1.0 }, vec![(1.0, 1.0)])
//! });
//! let bounds = Bounds { names: vec!["a".into(), "b".into()], lower: vec![0.0; 2], upper: vec![10.0; 2] };
//! let a = optimize(&curves, None, Risk::Mean, &bounds, Goal::Budget(3.0), None, SolverSettings::default())?;
//! // equal marginal returns 2/(1+s₁)² = 1/(1+s₂)² with s₁ + s₂ = 3 give s₁ = (4√2 − 1)/(√2 + 1)
//! let s1 = (4.0 * 2f64.sqrt() - 1.0) / (2f64.sqrt() + 1.0);
//! assert!((a.spend[0] - s1).abs() < 1e-9 && (a.spend[1] - (3.0 - s1)).abs() < 1e-9);
//! assert!((a.marginal[0] - a.marginal[1]).abs() < 1e-9);
//! # Ok::<(), OptimizeError>(())
//! ```

mod curves;
mod objective;
mod plan;
mod solver;

pub use curves::{ResponseCurves, SaturatingCurves, Saturation, horizon_pieces};
pub use objective::{Risk, lower_tail_mean, weighted_quantile};
pub use plan::{
    ChannelPlan, FittedModel, GainOver, InputChanged, OptimizationReport, OutcomeUnit, PlanError, PlanGoal,
    PlanningBasis, ScenarioChannel, ScenarioReport, SpendPlan, evaluate_plan, optimize_plan, optimize_plan_against,
    outcome_draws, relative_bounds,
};
pub use solver::{Allocation, Bounds, Goal, OptimizeError, SolverSettings, min_budget_for_target, optimize};

#[cfg(test)]
mod tests;
