//! Choosing the set of tests to run together: maximise the joint EVOI of the set net of its cost.
//!
//! The joint EVOI of a set is the EVOI of reading out all its tests together (their readouts are
//! simulated jointly and their likelihoods multiply in the weights: [`super::evoi::evoi`] with all
//! the set's signals). Constraints: at most K tests (default 3), no geo in two tests of the set (tests
//! running at the same time would contaminate each other), and an optional budget for the tests' cost.
//!
//! Greedy: start empty; repeatedly add the feasible candidate with the largest marginal net value
//! Δ_c = EVOI(S ∪ {c}) − EVOI(S) − cost_c; stop when no candidate's Δ_c clears its threshold (the
//! stop rule below) or K is reached. EVOI is not submodular in general (two tests can be
//! complements), so greedy carries no (1 − 1/e) guarantee here; [`exhaustive_portfolio`] gives the
//! optimum on small candidate sets to compare against.
//!
//! # The stop rule against Monte-Carlo error
//! The expected net benefit of sampling says: add c while its true Δ_c > 0. Only an estimate Δ̂_c
//! with a Monte-Carlo standard error s_c is known (the readout integral is random; the cost is
//! exact), and "add while Δ̂_c > 0" adds a candidate whose true Δ_c is 0 about half the time, more
//! often for EVOI: every readout's gain is ≥ 0 (the re-optimised action is never worse under its
//! own weights), so the estimate of a useless test is a small positive number, and among several
//! such candidates the largest (the optimiser's curse) is picked — which one changes with the seed.
//! So a pick must pass a one-sided test of H₀: Δ_c ≤ f,
//!
//! ```text
//! Δ̂_c > f + z·s_c        (threshold, reported per pick)
//! ```
//!
//! at level Φ(−z) under the normal approximation of the estimate (z = [`PortfolioConstraints::error_z`],
//! default 2: 2.3 %; with the 3 degrees of freedom of 4 quadrature replicates, ≈ 7 %). f ≥ 0 is a
//! stated materiality floor ([`PortfolioConstraints::net_floor`], the decision's unit; `mmloop
//! rank` sets it to a share of the decision's EVPI, [`crate::rank::RankSettings::materiality`]). The
//! floor is needed beside the error because s_c only measures the error of the readout integral
//! given the posterior draws: the finite draws' own optimiser's curse (reweighting N draws by an
//! irrelevant likelihood still finds a "better" allocation, a bias of order 1/N that no seed
//! changes) is not in s_c, and a value of cents on a budget of millions is not worth a test's
//! organisation even if it is exact.
//!
//! Ties: the best candidate b is the eligible one with the largest Δ̂; every eligible c with
//! Δ̂_c ≥ Δ̂_b − z·√(s_b² + s_c²) is indistinguishable from it (the two-sided difference test at the
//! same z, treating the estimates as independent: conservative when common random numbers make
//! them positively correlated). Among those the pick is the cheapest, then the one occupying the
//! fewest geo-cells (a shorter or smaller test: read sooner, less disruption), then by name — what a
//! user would choose when the numbers cannot tell the tests apart, and not a coin the seed tosses.
//! The others are reported in [`Pick::tied_with`]. With exact values (s = 0) the band holds only
//! exact ties and the rule is the plain "Δ > f".

use serde::Serialize;

use super::ValueError;

/// A candidate as the portfolio sees it: the geos it occupies and its cost (the decision's unit).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub name: String,
    pub geos: Vec<String>,
    pub cost: f64,
}

/// The constraints of a cycle's portfolio and its stop rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortfolioConstraints {
    pub max_tests: usize,
    /// Largest total cost of the chosen tests (`None`: no test budget).
    pub test_budget: Option<f64>,
    /// The materiality floor f ≥ 0 (the decision's unit): a pick's marginal net value must exceed
    /// f + z·(its Monte-Carlo error). Default 0.
    pub net_floor: f64,
    /// z ≥ 0: how many Monte-Carlo standard errors a pick's marginal net value must clear the floor
    /// by (default 2, a one-sided test at ≈ 2.3 %). 0: the point estimate decides.
    pub error_z: f64,
}

/// The default z of the stop rule.
pub const DEFAULT_ERROR_Z: f64 = 2.0;

impl Default for PortfolioConstraints {
    fn default() -> Self {
        Self { max_tests: 3, test_budget: None, net_floor: 0.0, error_z: DEFAULT_ERROR_Z }
    }
}

/// What adding candidate c to the set S is worth, as the greedy needs it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Marginal {
    /// EVOI(S ∪ {c}) (the set's own estimate, as the exhaustive search sees it).
    pub joint: f64,
    /// EVOI(S ∪ {c}) − EVOI(S), best estimated on common readouts (see
    /// [`super::evoi::paired_marginal`]).
    pub gain: f64,
    /// The Monte-Carlo standard error of `gain` (0 for exact values).
    pub mcse: f64,
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
    /// The Monte-Carlo standard error of `marginal_evoi` (and of `marginal_net`: the cost is exact).
    pub mcse: f64,
    /// What `marginal_net` had to exceed: the floor + z·`mcse`.
    pub threshold: f64,
    /// EVOI of the set after this pick.
    pub joint_evoi: f64,
    /// Eligible candidates whose marginal net value was equal to this pick's within Monte-Carlo
    /// error; this one won the tie-break (cheapest, fewest geo-cells, name).
    pub tied_with: Vec<String>,
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
    /// Why the greedy stopped (or how the exhaustive set was found), in words.
    pub stop_reason: String,
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

fn check(candidates: &[Candidate], constraints: &PortfolioConstraints) -> Result<(), ValueError> {
    for c in candidates {
        if !(c.cost.is_finite() && c.cost >= 0.0) {
            return Err(ValueError::BadOption {
                option: "cost",
                message: format!("candidate {:?}: cost {} must be finite and ≥ 0", c.name, c.cost),
            });
        }
    }
    if !(constraints.net_floor.is_finite() && constraints.net_floor >= 0.0) {
        return Err(ValueError::BadOption {
            option: "net_floor",
            message: format!("the materiality floor {} must be finite and ≥ 0", constraints.net_floor),
        });
    }
    if !(constraints.error_z.is_finite() && constraints.error_z >= 0.0) {
        return Err(ValueError::BadOption {
            option: "error_z",
            message: format!(
                "the stop rule's multiple of the Monte-Carlo error {} must be finite and ≥ 0",
                constraints.error_z
            ),
        });
    }
    Ok(())
}

fn money(x: f64) -> String {
    mmloop_data::human::money(x)
}

/// Greedy portfolio on exact set values: `joint_evoi(set)` returns the joint EVOI of the candidates
/// at those indices (sorted ascending). The marginal is the difference of two calls, its error 0,
/// so the stop rule is "marginal net > `net_floor`". For Monte-Carlo EVOIs use
/// [`greedy_portfolio_with_error`].
pub fn greedy_portfolio(
    candidates: &[Candidate],
    constraints: &PortfolioConstraints,
    mut joint_evoi: impl FnMut(&[usize]) -> Result<f64, ValueError>,
) -> Result<Portfolio, ValueError> {
    greedy_portfolio_with_error(candidates, constraints, |set: &[usize], c: usize| {
        let base = if set.is_empty() { 0.0 } else { joint_evoi(set)? };
        let mut trial = set.to_vec();
        trial.push(c);
        trial.sort_unstable();
        let joint = joint_evoi(&trial)?;
        Ok(Marginal { joint, gain: joint - base, mcse: 0.0 })
    })
}

/// Greedy portfolio with the stop rule against Monte-Carlo error (module doc). `marginal(S, c)`
/// returns what candidate `c` adds to the set `S` (indices sorted ascending; empty at the first
/// step) and the standard error of that, typically paired on common readouts.
pub fn greedy_portfolio_with_error(
    candidates: &[Candidate],
    constraints: &PortfolioConstraints,
    mut marginal: impl FnMut(&[usize], usize) -> Result<Marginal, ValueError>,
) -> Result<Portfolio, ValueError> {
    check(candidates, constraints)?;
    let (floor, z) = (constraints.net_floor, constraints.error_z);
    let mut set: Vec<usize> = Vec::new();
    let mut picks = Vec::new();
    let mut current = 0.0;
    let stop_reason = loop {
        if set.len() >= constraints.max_tests {
            break format!("stopped at the most tests allowed ({})", constraints.max_tests);
        }
        // every feasible candidate: (candidate, marginal, net, threshold)
        let mut scored: Vec<(usize, Marginal, f64, f64)> = Vec::new();
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
            let m = marginal(&set, c)?;
            let net = m.gain - candidates[c].cost;
            scored.push((c, m, net, floor + z * m.mcse));
        }
        if scored.is_empty() {
            break if set.is_empty() {
                "no candidate fits the constraints (test budget)".to_string()
            } else {
                "no other candidate fits beside the picks (no geo in two tests; test budget)".to_string()
            };
        }
        let eligible: Vec<&(usize, Marginal, f64, f64)> = scored.iter().filter(|s| s.2 > s.3).collect();
        let Some(best) = eligible.iter().copied().reduce(|a, b| if b.2 > a.2 { b } else { a }) else {
            // name the best by its net value and say why it falls short
            let b = scored.iter().reduce(|a, b| if b.2 > a.2 { b } else { a }).expect("non-empty");
            let what = if set.is_empty() { "the best test" } else { "the best next test" };
            break format!(
                "{what}, {}, adds {} net of its cost {} (marginal EVOI {} ± {}), not more than its threshold {} \
                 (materiality floor {} + {z} × its Monte-Carlo error){}",
                candidates[b.0].name,
                money(b.2),
                money(candidates[b.0].cost),
                money(b.1.gain),
                money(b.1.mcse),
                money(b.3),
                money(floor),
                if b.2 <= 0.0 {
                    ": it is worth less than it costs"
                } else if b.2 <= floor {
                    ": it is below the floor"
                } else {
                    ": above the floor by less than its error, not distinguishable from it"
                }
            );
        };
        // the candidates indistinguishable from the best; the pick among them by cost, size, name
        let band: Vec<&(usize, Marginal, f64, f64)> = eligible
            .iter()
            .copied()
            .filter(|s| s.2 >= best.2 - z * (best.1.mcse.powi(2) + s.1.mcse.powi(2)).sqrt())
            .collect();
        let key = |s: &&(usize, Marginal, f64, f64)| {
            let c = &candidates[s.0];
            (c.cost, c.geos.len(), c.name.clone())
        };
        let chosen = *band
            .iter()
            .copied()
            .min_by(|a, b| {
                let (ka, kb) = (key(a), key(b));
                ka.0.total_cmp(&kb.0).then(ka.1.cmp(&kb.1)).then(ka.2.cmp(&kb.2))
            })
            .expect("the band holds the best");
        let (c, m, net, threshold) = chosen;
        picks.push(Pick {
            candidate: c,
            name: candidates[c].name.clone(),
            marginal_evoi: m.gain,
            marginal_net: net,
            mcse: m.mcse,
            threshold,
            joint_evoi: m.joint,
            tied_with: band.iter().filter(|s| s.0 != c).map(|s| candidates[s.0].name.clone()).collect(),
        });
        set.push(c);
        set.sort_unstable();
        current = m.joint;
    };
    let total_cost: f64 = set.iter().map(|&i| candidates[i].cost).sum();
    Ok(Portfolio { picks, joint_evoi: current, total_cost, net_value: current - total_cost, stop_reason })
}

/// The exhaustive optimum over every feasible set (the empty set, worth 0, included), by the point
/// estimates: it applies neither the materiality floor nor the error margin of the greedy's stop
/// rule, so it is an upper bound for the greedy on the same estimates. At most 20 candidates (2²⁰
/// subsets); with the default K = 3 and 12 candidates that is 299 sets.
pub fn exhaustive_portfolio(
    candidates: &[Candidate],
    constraints: &PortfolioConstraints,
    mut joint_evoi: impl FnMut(&[usize]) -> Result<f64, ValueError>,
) -> Result<Portfolio, ValueError> {
    check(candidates, constraints)?;
    let n = candidates.len();
    if n > 20 {
        return Err(ValueError::BadOption {
            option: "candidates",
            message: format!("exhaustive search takes at most 20 candidates, got {n}; use the greedy portfolio"),
        });
    }
    let mut best =
        Portfolio { picks: Vec::new(), joint_evoi: 0.0, total_cost: 0.0, net_value: 0.0, stop_reason: String::new() };
    let mut n_feasible = 1usize; // the empty set
    for mask in 1u32..(1u32 << n) {
        if mask.count_ones() as usize > constraints.max_tests {
            continue;
        }
        let set: Vec<usize> = (0..n).filter(|i| mask & (1 << i) != 0).collect();
        if !feasible(candidates, &set, constraints) {
            continue;
        }
        n_feasible += 1;
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
                    mcse: f64::NAN,
                    threshold: f64::NAN,
                    joint_evoi: v,
                    tied_with: Vec::new(),
                })
                .collect();
            best =
                Portfolio { picks, joint_evoi: v, total_cost: cost, net_value: v - cost, stop_reason: String::new() };
        }
    }
    best.stop_reason = format!(
        "the largest estimated net value of {n_feasible} feasible sets (the empty set included; no materiality floor or \
         error margin: the optimum of the estimates)"
    );
    Ok(best)
}
