//! Choosing the set of tests to run together: maximise the joint EVOI of the set net of its cost.
//!
//! The joint EVOI of a set is the EVOI of reading out all its tests together (their readouts are
//! simulated jointly and their likelihoods multiply in the weights: [`super::evoi::evoi`] with all
//! the set's signals). Constraints: at most K tests (default 3), no geo in two tests of the set (tests
//! running at the same time would contaminate each other), and an optional budget for the tests' cost.
//!
//! Greedy: start empty; repeatedly add the feasible candidate with the largest marginal net value
//! EVOI(S ∪ {c}) − EVOI(S) − cost_c; stop when it is ≤ 0 (the expected net benefit of sampling) or
//! K is reached. EVOI is not submodular in general (two tests can be complements), so greedy carries
//! no (1 − 1/e) guarantee here; [`exhaustive_portfolio`] gives the optimum on small candidate sets to
//! compare against.

use serde::Serialize;

use super::ValueError;

/// A candidate as the portfolio sees it: the geos it occupies and its cost (the decision's unit).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub name: String,
    pub geos: Vec<String>,
    pub cost: f64,
}

/// The constraints of a cycle's portfolio.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortfolioConstraints {
    pub max_tests: usize,
    /// Largest total cost of the chosen tests (`None`: no test budget).
    pub test_budget: Option<f64>,
}

impl Default for PortfolioConstraints {
    fn default() -> Self {
        Self { max_tests: 3, test_budget: None }
    }
}

/// One greedy pick and what it added.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pick {
    /// Index into the candidates.
    pub candidate: usize,
    pub name: String,
    /// EVOI(S ∪ {c}) − EVOI(S).
    pub marginal_evoi: f64,
    /// `marginal_evoi` − cost.
    pub marginal_net: f64,
    /// EVOI of the set after this pick.
    pub joint_evoi: f64,
}

/// A chosen set of tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Portfolio {
    /// In the order picked (greedy) or by index (exhaustive).
    pub picks: Vec<Pick>,
    pub joint_evoi: f64,
    pub total_cost: f64,
    /// joint EVOI − total cost.
    pub net_value: f64,
}

fn feasible(candidates: &[Candidate], set: &[usize], constraints: &PortfolioConstraints) -> bool {
    if set.len() > constraints.max_tests {
        return false;
    }
    let cost: f64 = set.iter().map(|&i| candidates[i].cost).sum();
    if let Some(b) = constraints.test_budget
        && cost > b
    {
        return false;
    }
    for (a, &i) in set.iter().enumerate() {
        for &k in &set[a + 1..] {
            if candidates[i].geos.iter().any(|g| candidates[k].geos.contains(g)) {
                return false;
            }
        }
    }
    true
}

fn check(candidates: &[Candidate]) -> Result<(), ValueError> {
    for c in candidates {
        if !(c.cost.is_finite() && c.cost >= 0.0) {
            return Err(ValueError::BadOption {
                option: "cost",
                message: format!("candidate {:?}: cost {} must be finite and ≥ 0", c.name, c.cost),
            });
        }
    }
    Ok(())
}

/// Greedy portfolio. `joint_evoi(set)` returns the joint EVOI of the candidates at those indices
/// (sorted ascending), typically `evoi(problem, prior, &signals, settings)?.evoi`; with common random
/// numbers the comparisons between sets are far less noisy than the EVOIs themselves.
pub fn greedy_portfolio(
    candidates: &[Candidate],
    constraints: &PortfolioConstraints,
    mut joint_evoi: impl FnMut(&[usize]) -> Result<f64, ValueError>,
) -> Result<Portfolio, ValueError> {
    check(candidates)?;
    let mut set: Vec<usize> = Vec::new();
    let mut picks = Vec::new();
    let mut current = 0.0;
    while set.len() < constraints.max_tests {
        let mut best: Option<(usize, f64, f64)> = None; // (candidate, marginal net, joint evoi)
        for c in 0..candidates.len() {
            if set.contains(&c) {
                continue;
            }
            let mut trial = set.clone();
            trial.push(c);
            trial.sort_unstable();
            if !feasible(candidates, &trial, constraints) {
                continue;
            }
            let v = joint_evoi(&trial)?;
            let net = v - current - candidates[c].cost;
            if best.is_none_or(|(_, b, _)| net > b) {
                best = Some((c, net, v));
            }
        }
        match best {
            Some((c, net, v)) if net > 0.0 => {
                picks.push(Pick {
                    candidate: c,
                    name: candidates[c].name.clone(),
                    marginal_evoi: v - current,
                    marginal_net: net,
                    joint_evoi: v,
                });
                set.push(c);
                current = v;
            }
            _ => break,
        }
    }
    let total_cost: f64 = set.iter().map(|&i| candidates[i].cost).sum();
    Ok(Portfolio { picks, joint_evoi: current, total_cost, net_value: current - total_cost })
}

/// The exhaustive optimum over every feasible set (the empty set, worth 0, included). At most 20
/// candidates (2²⁰ subsets); with the default K = 3 and 12 candidates that is 299 sets.
pub fn exhaustive_portfolio(
    candidates: &[Candidate],
    constraints: &PortfolioConstraints,
    mut joint_evoi: impl FnMut(&[usize]) -> Result<f64, ValueError>,
) -> Result<Portfolio, ValueError> {
    check(candidates)?;
    let n = candidates.len();
    if n > 20 {
        return Err(ValueError::BadOption {
            option: "candidates",
            message: format!("exhaustive search takes at most 20 candidates, got {n}; use the greedy portfolio"),
        });
    }
    let mut best = Portfolio { picks: Vec::new(), joint_evoi: 0.0, total_cost: 0.0, net_value: 0.0 };
    for mask in 1u32..(1u32 << n) {
        if mask.count_ones() as usize > constraints.max_tests {
            continue;
        }
        let set: Vec<usize> = (0..n).filter(|i| mask & (1 << i) != 0).collect();
        if !feasible(candidates, &set, constraints) {
            continue;
        }
        let v = joint_evoi(&set)?;
        let cost: f64 = set.iter().map(|&i| candidates[i].cost).sum();
        if v - cost > best.net_value {
            let picks = set
                .iter()
                .map(|&i| Pick {
                    candidate: i,
                    name: candidates[i].name.clone(),
                    marginal_evoi: f64::NAN,
                    marginal_net: f64::NAN,
                    joint_evoi: v,
                })
                .collect();
            best = Portfolio { picks, joint_evoi: v, total_cost: cost, net_value: v - cost };
        }
    }
    Ok(best)
}
