//! What is true in the world: ROI per channel, and the outcome of a budget over a planning horizon.
//!
//! **ROI** of channel c over the observed weeks (the definition `mmloop_mmm::simulate` uses, and the
//! MMM's `roi`: contribution over the fitted period / spend over it):
//! ```text
//! ROI_c = Σ_{g,t} p_g·β(g,c)·hill(adstock(x_c(g,·)))(t) / Σ_{g,t} spend_c(g,t)
//! ```
//! = the KPI lost over the observed weeks had the channel never spent, per unit of its spend (checked
//! by brute force in the tests).
//!
//! **Outcome of an allocation** over a horizon of H weeks: channel c gets S_c in all, spread evenly
//! over the H weeks and split across geos by the channel's geo shares (the rule [`World::follow`]
//! applies), starting from no adstock and counting the carry-over after the horizon:
//! ```text
//! R_c(S_c) = Σ_g p_g·β(g,c)·Σ_{t=1}^{H+L} hill(W_t·S_c·share(g,c)/(H·p_g))
//! ```
//! with W_t the adstock weights' partial sums (a drifting effect's β taken at the horizon's middle week) — exactly the MMM's planning curves
//! ([`mmloop_mmm::optimize::horizon_pieces`]) with the true parameters, i.e. a one-draw "posterior"
//! that the real optimiser maximises. Misallocation cost = R(true optimum) − R(recommendation) for the
//! same budget and bounds; its share is relative to the oracle's incremental outcome R(true optimum).

use super::WorldError;
use super::generate::World;
use mmloop_mmm::optimize::{
    Allocation, Bounds, Goal, ResponseCurves, Risk, SaturatingCurves, Saturation, SolverSettings, horizon_pieces,
    optimize,
};
use serde::Serialize;

impl World {
    /// True ROI per channel over the observed weeks.
    pub fn true_roi(&self) -> Vec<f64> {
        self.true_roi_between(0, self.weeks())
    }

    /// True ROI per channel of the spend in weeks lo..hi (its contribution counted in those weeks).
    pub fn true_roi_between(&self, lo: usize, hi: usize) -> Vec<f64> {
        (0..self.channels.len())
            .map(|c| {
                let (mut contrib, mut money) = (0.0, 0.0);
                for g in 0..self.geos.len() {
                    let path = &self.spend[c][g][..hi];
                    contrib += self.contribution_path(c, g, path, 0)[lo..hi].iter().sum::<f64>();
                    money += path[lo..hi].iter().sum::<f64>();
                }
                if money > 0.0 { contrib / money } else { 0.0 }
            })
            .collect()
    }

    /// The true response curves over a planning horizon of `horizon` weeks.
    pub fn planner(&self, horizon: usize) -> TruePlanner {
        let h = horizon.max(1);
        let curves = SaturatingCurves::new(self.channels.len(), 1, |c, _| {
            let ch = &self.channels[c];
            // a drifting effect is taken at the horizon's middle week
            let drift = self.drift(c, self.weeks() as f64 + 0.5 * h as f64);
            let mut pieces = Vec::new();
            for g in &self.geos {
                let scale = g.share[c] / g.population;
                let mult = g.population * g.beta[c] * drift;
                pieces.extend(horizon_pieces(&ch.adstock_weights, h, scale).into_iter().map(|(k, m)| (k, m * mult)));
            }
            (1.0, Saturation::Hill { ec: ch.hill_ec, slope: ch.hill_slope }, pieces)
        });
        TruePlanner { horizon: h, names: self.channel_names(), curves }
    }
}

/// The truth's planning problem over one horizon: outcome, optimum, misallocation.
#[derive(Debug, Clone, PartialEq)]
pub struct TruePlanner {
    pub horizon: usize,
    pub names: Vec<String>,
    /// One draw: the true curves.
    pub curves: SaturatingCurves,
}

/// How much a recommendation loses against the truth's optimum for the same budget and bounds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Misallocation {
    /// True incremental outcome (KPI) of the recommendation.
    pub outcome: f64,
    /// True incremental outcome at the true optimum (the oracle).
    pub oracle_outcome: f64,
    /// oracle_outcome − outcome (≥ 0 up to the solver's tolerance).
    pub cost: f64,
    /// cost / oracle_outcome.
    pub share: f64,
    /// The oracle's allocation.
    pub oracle_spend: Vec<f64>,
}

impl Misallocation {
    /// Decision efficiency of this recommendation over a start whose true outcome is
    /// `start_outcome` (same planner, budget and bounds): the share of the achievable improvement,
    /// (outcome − start_outcome) / (oracle_outcome − start_outcome). 1 at the optimum, 0 at the
    /// start, negative when the recommendation is worse than not moving. `None` when the start is
    /// already optimal to the solver's tolerance (room ≤ 1e-9·max(|oracle_outcome|, 1): nothing to
    /// capture).
    pub fn efficiency_over(&self, start_outcome: f64) -> Option<f64> {
        let room = self.oracle_outcome - start_outcome;
        (room > 1e-9 * self.oracle_outcome.abs().max(1.0)).then(|| (self.outcome - start_outcome) / room)
    }
}

impl TruePlanner {
    fn check(&self, spend: &[f64]) -> Result<(), WorldError> {
        if spend.len() != self.names.len() {
            return Err(WorldError::Allocation(format!(
                "{} amounts for {} channels ({}); give one per channel in that order",
                spend.len(),
                self.names.len(),
                self.names.join(", ")
            )));
        }
        if let Some((c, s)) = spend.iter().enumerate().find(|(_, s)| !(s.is_finite() && **s >= 0.0)) {
            return Err(WorldError::Allocation(format!(
                "channel {:?} gets {s}, not a finite non-negative amount",
                self.names[c]
            )));
        }
        Ok(())
    }

    /// True incremental outcome (KPI, over the horizon and its carry-over) of spending `spend[c]`
    /// on channel c.
    pub fn outcome(&self, spend: &[f64]) -> Result<f64, WorldError> {
        self.check(spend)?;
        let mut v = [0.0];
        let mut total = 0.0;
        for (c, &s) in spend.iter().enumerate() {
            self.curves.value(c, s, &mut v);
            total += v[0];
        }
        Ok(total)
    }

    /// Bounds `relative` either side of `current` (as `mmloop_mmm::optimize::relative_bounds`).
    pub fn bounds_around(&self, current: &[f64], relative: f64) -> Bounds {
        Bounds {
            names: self.names.clone(),
            lower: current.iter().map(|s| s * (1.0 - relative).max(0.0)).collect(),
            upper: current.iter().map(|s| s * (1.0 + relative)).collect(),
        }
    }

    /// The true optimum of `budget` within `bounds`: the real optimiser on the true curves.
    pub fn optimum(&self, budget: f64, bounds: &Bounds) -> Result<Allocation, WorldError> {
        Ok(optimize(&self.curves, None, Risk::Mean, bounds, Goal::Budget(budget), None, SolverSettings::default())?)
    }

    /// Misallocation of `spend` against the true optimum of the same total within `bounds`.
    pub fn misallocation_within(&self, spend: &[f64], bounds: &Bounds) -> Result<Misallocation, WorldError> {
        let outcome = self.outcome(spend)?;
        let best = self.optimum(spend.iter().sum(), bounds)?;
        let oracle = self.outcome(&best.spend)?;
        let cost = oracle - outcome;
        Ok(Misallocation {
            outcome,
            oracle_outcome: oracle,
            cost,
            share: if oracle != 0.0 { cost / oracle } else { 0.0 },
            oracle_spend: best.spend,
        })
    }

    /// Misallocation of `spend` against the true optimum of the same total, unconstrained per
    /// channel (bounds 0..total).
    pub fn misallocation(&self, spend: &[f64]) -> Result<Misallocation, WorldError> {
        self.check(spend)?;
        let total: f64 = spend.iter().sum();
        let bounds =
            Bounds { names: self.names.clone(), lower: vec![0.0; spend.len()], upper: vec![total; spend.len()] };
        self.misallocation_within(spend, &bounds)
    }

    /// Decision efficiency: the share of the achievable improvement over `start` (the optimum's
    /// outcome minus the start's, same budget and bounds) that `recommended` captures
    /// ([`Misallocation::efficiency_over`]; a caller that has the recommendation's misallocation
    /// already takes that, which saves the optimiser run).
    pub fn decision_efficiency(
        &self,
        start: &[f64],
        recommended: &[f64],
        bounds: &Bounds,
    ) -> Result<Option<f64>, WorldError> {
        let o_start = self.outcome(start)?;
        Ok(self.misallocation_within(recommended, bounds)?.efficiency_over(o_start))
    }
}
