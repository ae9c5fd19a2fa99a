//! Which tests to run next: the mathematical core of experiment ranking (issue 12).
//!
//! A candidate test is known to the model through its *implied lift per posterior draw* L_d
//! (hypothetical-test pricing, [`mmloop_mmm::pricing::price_test`]) and its readout noise σ (the
//! design's predicted standard error, KPI units). Everything here works on those two numbers and on
//! a [`DecisionProblem`] (what the readout could change: the budget allocation), so no refit is ever
//! needed:
//!
//! - [`eig`]: expected information gain in nats — closed form ½·ln(1 + Var(L)/σ²), the joint
//!   ½·ln det(I + D^{-1/2} Σ_L D^{-1/2}) of a set, and a Monte-Carlo EIG on the draws.
//! - [`evoi`]: expected value of sample information in money by preposterior analysis over the
//!   posterior draws (importance weights, Pareto-smoothed, with a Gaussian-linear fallback), and
//!   the expected value of perfect information, its upper bound. A single test's readout is
//!   integrated by quadrature (seed-stable), a set's by Monte Carlo.
//! - [`separable`]: the budget decision tabulated once, so each readout's re-optimisation is a
//!   matrix product and a one-dimensional search on the multiplier (equal marginal returns); use
//!   `decision.separable(DEFAULT_NODES)?` as the problem for ranking many candidates.
//! - [`psis`]: Pareto-smoothed importance sampling (k̂ and smoothed weights) and the effective
//!   sample size that decide which EVOI estimator is trustworthy.
//! - [`quadrant`]: the 2×2 of EIG against an information target and EVOI against the test's cost.
//! - [`portfolio`]: greedy (and, on small sets, exhaustive) choice of the tests to run together,
//!   by the joint EVOI of the set net of its cost, under a test-count, geo and budget constraint; a
//!   greedy pick must clear a materiality floor by more than its Monte-Carlo error.
//!
//! Randomness is counter-based ([`rng`]): the normal deviate of readout `s` of candidate `id`
//! depends only on (seed, id, s), so candidates share common random numbers, results do not depend
//! on evaluation order or thread count, and a candidate's readout noise is the same in every set
//! it belongs to.

pub mod eig;
pub mod evoi;
pub mod portfolio;
pub mod psis;
pub mod quadrant;
pub mod rng;
pub mod separable;

#[cfg(test)]
mod tests;

pub use eig::{MonteCarloEig, eig_joint, eig_monte_carlo, eig_single, lift_covariance};
pub use evoi::{
    BudgetDecision, DecisionProblem, EVPI_BATCH, Estimator, Evoi, EvoiSettings, Evpi, PairedMarginal, PriorOptimum,
    ReadoutGain, ReadoutValue, Sampling, TestSignal, ValueUnit, evoi, evpi, health_thresholds, paired_marginal,
    readout_quadrature, readout_values_by_optimiser,
};
pub use portfolio::{
    Candidate, Marginal, Pick, Portfolio, PortfolioConstraints, exhaustive_portfolio, greedy_portfolio,
    greedy_portfolio_with_error,
};
pub use psis::{PsisResult, ess, psis_smooth};
pub use quadrant::{Classification, Quadrant, Thresholds, classify};
pub use separable::{DEFAULT_NODES, DP_UNITS, SeparableBudget};

/// Why a value computation cannot be done. Each variant names the input at fault and what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    #[error(
        "test {test:?}: {got} implied-lift draws but the posterior has {expected}; price the test on the same fit \
         as the decision problem"
    )]
    DrawCount { test: String, got: usize, expected: usize },
    #[error("test {test:?}: the readout standard error must be finite and > 0, got {sigma}; check the design's se")]
    BadSigma { test: String, sigma: f64 },
    #[error("test {test:?}: implied lift of draw {draw} is not finite ({value}); check the fit's draws")]
    NonFiniteLift { test: String, draw: usize, value: f64 },
    #[error("option {option}: {message}")]
    BadOption { option: &'static str, message: String },
    #[error("no posterior draws: the fit holds none; refit with draws > 0")]
    NoDraws,
    #[error("budget re-optimisation failed: {0}")]
    Optimize(#[from] mmloop_mmm::optimize::OptimizeError),
    #[error("linear algebra: {0}")]
    Linalg(String),
}
