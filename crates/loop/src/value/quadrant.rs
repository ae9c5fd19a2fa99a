//! The 2×2 of information and value: is a test worth running now, worth running to learn, worth
//! watching, or to be left?
//!
//! Both axes have a threshold with a meaning, not a median split:
//! - **Informative**: EIG ≥ the information target. The default target ½·ln 2 nats is the EIG of a
//!   test whose readout halves the posterior variance of its implied lift: with V = Var(L),
//!   Var(L | y) = V·σ²/(V + σ²) ≤ V/2 ⇔ V ≥ σ² ⇔ ½·ln(1 + V/σ²) ≥ ½·ln 2 (Gaussian case).
//! - **Worth its cost**: EVOI > the test's cost (both in the decision's unit over the planning
//!   horizon): the expected net benefit of sampling is positive.

use serde::Serialize;

/// The four quadrants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Quadrant {
    /// Informative and worth more than it costs.
    TestNow,
    /// Informative, but the decision would not change enough to pay for it: run it to learn.
    TestToLearn,
    /// Worth more than it costs but weakly informative (the stake is large): watch, improve the design.
    Watch,
    /// Neither.
    Leave,
}

/// The thresholds, stated in every classification.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// EIG (nats) at or above which a test is informative. Default ½·ln 2: the readout at least
    /// halves the posterior variance of the test's implied lift.
    pub eig_target_nats: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { eig_target_nats: 0.5 * std::f64::consts::LN_2 }
    }
}

/// A test's place in the 2×2 with the figures and thresholds that put it there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    pub quadrant: Quadrant,
    pub eig: f64,
    pub eig_target: f64,
    pub evoi: f64,
    pub cost: f64,
    /// The rule, in words, for the output.
    pub rule: &'static str,
}

/// Places a test in the 2×2: informative ⇔ `eig` ≥ target, worth its cost ⇔ `evoi` > `cost`.
pub fn classify(eig: f64, evoi: f64, cost: f64, thresholds: &Thresholds) -> Classification {
    let informative = eig >= thresholds.eig_target_nats;
    let worth = evoi > cost;
    let quadrant = match (informative, worth) {
        (true, true) => Quadrant::TestNow,
        (true, false) => Quadrant::TestToLearn,
        (false, true) => Quadrant::Watch,
        (false, false) => Quadrant::Leave,
    };
    Classification {
        quadrant,
        eig,
        eig_target: thresholds.eig_target_nats,
        evoi,
        cost,
        rule: "informative: EIG ≥ target nats (½·ln 2: the readout halves the implied lift's posterior variance); \
               worth its cost: EVOI > cost (same unit, planning horizon)",
    }
}
