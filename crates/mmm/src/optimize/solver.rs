//! The allocation solver: maximise Φ(Σ_c R_c(s_c)) subject to Σ_c s_c = B and l ≤ s ≤ u
//! (or, for a marginal-ROI target r, maximise Φ − r·Σ s over the box).
//!
//! Method: projected Newton with a diagonal curvature model. At s, the gradient is
//! g_c = Σ_d ω_d R'_{c,d}(s_c) and the curvature h_c = Σ_d ω_d R''_{c,d}(s_c) (exact for the mean,
//! whose Hessian is diagonal because channels add up; a Gauss–Newton diagonal otherwise). The step
//! solves the separable quadratic model exactly over the feasible set — a continuous quadratic
//! knapsack: s_c⁺(λ) = clamp(s_c + (g_c − λ)/(−h_c), l_c, u_c) with λ set by bisection so that
//! Σ s⁺ = B — and an Armijo line search keeps every step an ascent step. At the optimum the KKT
//! conditions hold: free channels share one marginal return λ ("equal marginal returns"),
//! channels at a lower bound have g_c ≤ λ, at an upper bound g_c ≥ λ.

use super::curves::ResponseCurves;
use super::objective::Risk;

/// Bounds and names of the channels (names make the errors readable).
#[derive(Debug, Clone, PartialEq)]
pub struct Bounds {
    pub names: Vec<String>,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
}

/// What the spend must satisfy besides the bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// Spend exactly this total.
    Budget(f64),
    /// No total: spend on each channel until its marginal return falls to r (maximise Φ − r·Σs).
    MarginalReturn(f64),
}

/// An optimal allocation and the evidence that it is optimal.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Allocation {
    pub spend: Vec<f64>,
    /// The exact objective Φ at `spend` (outcome units).
    pub objective: f64,
    /// ∂Φ/∂s_c at the optimum: each channel's marginal return.
    pub marginal: Vec<f64>,
    /// The common marginal return of the free channels (the budget's shadow price).
    pub lambda: f64,
    /// Largest relative violation of the KKT conditions (0 at an exact optimum).
    pub kkt_residual: f64,
    pub iterations: usize,
}

/// An amount for a message: six decimals in the everyday range (as before), scientific notation
/// where fixed notation would be unreadable (`1e15` as 1000000000000000.000000) or would round a
/// small non-zero amount to 0.000000.
fn amount(x: f64) -> String {
    if x != 0.0 && (x.abs() >= 1e12 || x.abs() < 1e-6) { format!("{x:.6e}") } else { format!("{x:.6}") }
}

/// Why an allocation cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptimizeError {
    #[error("channel {channel:?}: lower bound {lower} is above upper bound {upper}; swap or widen them")]
    CrossedBounds { channel: String, lower: f64, upper: f64 },
    #[error("channel {channel:?}: bound {value} is not a finite non-negative amount")]
    BadBound { channel: String, value: f64 },
    #[error(
        "the lower bounds sum to {}, above the budget {} by {}; lower some lower bounds or raise the budget",
        amount(*sum), amount(*budget), amount(*excess)
    )]
    BudgetBelowLowerBounds { sum: f64, budget: f64, excess: f64 },
    #[error(
        "the upper bounds sum to {}, below the budget {} by {}; raise some upper bounds or lower the budget",
        amount(*sum), amount(*budget), amount(*shortfall)
    )]
    BudgetAboveUpperBounds { sum: f64, budget: f64, shortfall: f64 },
    #[error("the budget must be a finite non-negative amount, got {0}")]
    BadBudget(f64),
    #[error(
        "the target {} cannot be reached: spending every upper bound (total {}) gives only {}, short by {}; raise \
         the upper bounds or lower the target",
        amount(*target), amount(*spend), amount(*best), amount(*shortfall)
    )]
    TargetUnreachable { target: f64, best: f64, spend: f64, shortfall: f64 },
    #[error("the response of channel {channel:?} is not finite at spend {spend}; check the posterior draws")]
    NonFinite { channel: String, spend: f64 },
    #[error("{0}")]
    Input(String),
}

/// Settings of the solver; the defaults suit every objective.
#[derive(Debug, Clone, Copy)]
pub struct SolverSettings {
    /// Stop when the Newton step moves no channel by more than `step_tol · (1 + max |s|)`.
    pub step_tol: f64,
    pub max_iter: usize,
}

impl Default for SolverSettings {
    fn default() -> Self {
        Self { step_tol: 1e-12, max_iter: 200 }
    }
}

/// Reusable buffers for one problem size, so that repeated solves (EVOI loops) do not allocate.
struct Work {
    v: Vec<f64>,
    d1: Vec<f64>,
    d2: Vec<f64>,
    o: Vec<f64>,
    omega: Vec<f64>,
}

impl Work {
    fn new(c: usize, d: usize) -> Self {
        Self { v: vec![0.0; c * d], d1: vec![0.0; c * d], d2: vec![0.0; c * d], o: vec![0.0; d], omega: vec![0.0; d] }
    }
}

/// Maximises the risk objective over allocations. `weights` weight the posterior draws (uniform
/// when `None`; EVOI passes reweighted posteriors). `start` is an optional feasible warm start.
pub fn optimize<C: ResponseCurves + ?Sized>(
    curves: &C,
    weights: Option<&[f64]>,
    risk: Risk,
    bounds: &Bounds,
    goal: Goal,
    start: Option<&[f64]>,
    settings: SolverSettings,
) -> Result<Allocation, OptimizeError> {
    let nc = curves.n_channels();
    let nd = curves.n_draws();
    check_bounds(bounds, nc)?;
    let w = normalised_weights(weights, nd)?;
    let (lower, upper) = (&bounds.lower, &bounds.upper);
    let mut s = match goal {
        Goal::Budget(b) => {
            check_budget(bounds, b)?;
            match start {
                Some(x) if x.len() == nc && feasible(x, lower, upper, Some(b)) => x.to_vec(),
                _ => proportional_start(lower, upper, b),
            }
        }
        Goal::MarginalReturn(r) => {
            if !r.is_finite() {
                return Err(OptimizeError::Input(format!("the marginal-return target must be finite, got {r}")));
            }
            match start {
                Some(x) if x.len() == nc && feasible(x, lower, upper, None) => x.to_vec(),
                _ => lower
                    .iter()
                    .zip(upper)
                    .map(|(l, u)| if u.is_finite() { 0.5 * (l + u) } else { l.max(1.0) })
                    .collect(),
            }
        }
    };
    let cost = match goal {
        Goal::Budget(_) => 0.0,
        Goal::MarginalReturn(r) => r,
    };
    let mut work = Work::new(nc, nd);
    let mut iterations = 0;
    // smoothing schedule for CVaR / quantile: τ relative to the spread of the outcome
    let taus: Vec<f64> = if risk.is_smooth() {
        vec![1.0]
    } else {
        evaluate(curves, &s, &mut work, bounds)?;
        let spread = spread(&work.o, &w).max(1e-12);
        [1e-2, 1e-4, 1e-6].iter().map(|f| f * spread).collect()
    };
    let mut g = vec![0.0; nc];
    let mut h = vec![0.0; nc];
    let mut trial = vec![0.0; nc];
    let mut cand_work = Work::new(nc, nd);
    for &tau in &taus {
        // one evaluation per iteration: the accepted line-search point's values, derivatives and
        // draw weights are reused as the next iteration's
        evaluate(curves, &s, &mut work, bounds)?;
        let mut phi = risk.value_and_weights(&work.o, &w, tau, &mut work.omega) - cost * s.iter().sum::<f64>();
        for _ in 0..settings.max_iter {
            iterations += 1;
            gradient(&work, nc, nd, &mut g, &mut h);
            g.iter_mut().for_each(|x| *x -= cost);
            curvature_floor(&mut h, &g, lower, upper, goal);
            let lambda = match goal {
                Goal::Budget(b) => knapsack_lambda(&s, &g, &h, lower, upper, b),
                Goal::MarginalReturn(_) => 0.0,
            };
            let mut pred = 0.0;
            for c in 0..nc {
                trial[c] = (s[c] + (g[c] - lambda) / (-h[c])).clamp(lower[c], upper[c]);
                pred += g[c] * (trial[c] - s[c]);
            }
            // stop on the step, not the predicted gain: near the optimum the gain is quadratic in
            // the step, so a gain threshold would leave the spend accurate only to √tol
            let step = trial.iter().zip(&s).map(|(t, x)| (t - x).abs()).fold(0.0, f64::max);
            let size = 1.0 + s.iter().map(|x| x.abs()).fold(0.0, f64::max);
            if step <= settings.step_tol * size || pred <= 1e-18 * (phi.abs() + 1e-300) {
                break;
            }
            // Armijo backtracking on the (smoothed) objective along the projected step
            let dir: Vec<f64> = trial.iter().zip(&s).map(|(t, x)| t - x).collect();
            let mut t = 1.0;
            let mut accepted = false;
            for _ in 0..60 {
                let mut cand: Vec<f64> = s.iter().zip(&dir).map(|(x, d)| x + t * d).collect();
                if let Goal::Budget(b) = goal {
                    // keep Σs = B exactly against rounding drift
                    rebalance(&mut cand, lower, upper, b);
                }
                evaluate(curves, &cand, &mut cand_work, bounds)?;
                let val = risk.value_and_weights(&cand_work.o, &w, tau, &mut cand_work.omega)
                    - cost * cand.iter().sum::<f64>();
                if val >= phi + 1e-4 * t * pred {
                    s = cand;
                    phi = val;
                    std::mem::swap(&mut work, &mut cand_work);
                    accepted = true;
                    break;
                }
                t *= 0.5;
            }
            if !accepted {
                break; // no ascent possible at floating-point precision
            }
        }
    }
    // `work` holds the evaluation at the final s with the smallest smoothing's weights
    gradient(&work, nc, nd, &mut g, &mut h);
    let objective = risk.value(&work.o, &w) - cost * s.iter().sum::<f64>();
    let (lambda, kkt_residual) = kkt(&s, &g, lower, upper, goal);
    Ok(Allocation { spend: s, objective, marginal: g, lambda, kkt_residual, iterations })
}

/// The smallest total budget whose optimal allocation reaches `target` (the objective is
/// nondecreasing in the budget when responses increase with spend); bisection on the budget.
pub fn min_budget_for_target<C: ResponseCurves + ?Sized>(
    curves: &C,
    weights: Option<&[f64]>,
    risk: Risk,
    bounds: &Bounds,
    target: f64,
    settings: SolverSettings,
) -> Result<Allocation, OptimizeError> {
    check_bounds(bounds, curves.n_channels())?;
    let lo_b: f64 = bounds.lower.iter().sum();
    let hi_b: f64 = bounds.upper.iter().sum();
    if !hi_b.is_finite() {
        return Err(OptimizeError::Input(
            "a target outcome needs finite upper bounds on every channel, to bound the search".into(),
        ));
    }
    let at_hi = optimize(curves, weights, risk, bounds, Goal::Budget(hi_b), None, settings)?;
    if at_hi.objective < target {
        return Err(OptimizeError::TargetUnreachable {
            target,
            best: at_hi.objective,
            spend: hi_b,
            shortfall: target - at_hi.objective,
        });
    }
    let at_lo = optimize(curves, weights, risk, bounds, Goal::Budget(lo_b), None, settings)?;
    if at_lo.objective >= target {
        return Ok(at_lo);
    }
    let (mut lo, mut hi, mut best) = (lo_b, hi_b, at_hi);
    while hi - lo > 1e-10 * hi.max(1.0) {
        let mid = 0.5 * (lo + hi);
        let a = optimize(curves, weights, risk, bounds, Goal::Budget(mid), Some(&best.spend), settings)
            .or_else(|_| optimize(curves, weights, risk, bounds, Goal::Budget(mid), None, settings))?;
        if a.objective >= target {
            hi = mid;
            best = a;
        } else {
            lo = mid;
        }
    }
    Ok(best)
}

fn check_bounds(b: &Bounds, nc: usize) -> Result<(), OptimizeError> {
    if b.lower.len() != nc || b.upper.len() != nc || b.names.len() != nc {
        return Err(OptimizeError::Input(format!(
            "bounds are given for {} channels but the curves have {nc}",
            b.lower.len()
        )));
    }
    for c in 0..nc {
        let name = || b.names[c].clone();
        if !(b.lower[c].is_finite() && b.lower[c] >= 0.0) {
            return Err(OptimizeError::BadBound { channel: name(), value: b.lower[c] });
        }
        if b.upper[c].is_nan() || b.upper[c] < 0.0 {
            return Err(OptimizeError::BadBound { channel: name(), value: b.upper[c] });
        }
        if b.lower[c] > b.upper[c] {
            return Err(OptimizeError::CrossedBounds { channel: name(), lower: b.lower[c], upper: b.upper[c] });
        }
    }
    Ok(())
}

fn check_budget(b: &Bounds, budget: f64) -> Result<(), OptimizeError> {
    if !(budget.is_finite() && budget >= 0.0) {
        return Err(OptimizeError::BadBudget(budget));
    }
    let sl: f64 = b.lower.iter().sum();
    let su: f64 = b.upper.iter().sum();
    let tol = 1e-12 * budget.max(1.0);
    if sl > budget + tol {
        return Err(OptimizeError::BudgetBelowLowerBounds { sum: sl, budget, excess: sl - budget });
    }
    if su < budget - tol {
        return Err(OptimizeError::BudgetAboveUpperBounds { sum: su, budget, shortfall: budget - su });
    }
    Ok(())
}

fn normalised_weights(w: Option<&[f64]>, nd: usize) -> Result<Vec<f64>, OptimizeError> {
    if nd == 0 {
        return Err(OptimizeError::Input("the response curves have no posterior draws".into()));
    }
    match w {
        None => Ok(vec![1.0 / nd as f64; nd]),
        Some(w) => {
            if w.len() != nd {
                return Err(OptimizeError::Input(format!("{} draw weights given for {nd} draws", w.len())));
            }
            if w.iter().any(|x| !(x.is_finite() && *x >= 0.0)) {
                return Err(OptimizeError::Input("draw weights must be finite and non-negative".into()));
            }
            let t: f64 = w.iter().sum();
            if t <= 0.0 {
                return Err(OptimizeError::Input("draw weights sum to zero".into()));
            }
            Ok(w.iter().map(|x| x / t).collect())
        }
    }
}

fn feasible(x: &[f64], l: &[f64], u: &[f64], budget: Option<f64>) -> bool {
    let inside = x.iter().zip(l.iter().zip(u)).all(|(v, (a, b))| v >= a && v <= b);
    inside && budget.is_none_or(|b| (x.iter().sum::<f64>() - b).abs() <= 1e-9 * b.max(1.0))
}

/// A feasible start: the lower bounds plus the rest of the budget in proportion to each channel's
/// room (equal shares where room is unbounded).
fn proportional_start(l: &[f64], u: &[f64], b: f64) -> Vec<f64> {
    let mut s = l.to_vec();
    rebalance(&mut s, l, u, b);
    s
}

/// Moves s onto Σs = b within the box, by a common shift clamped to the bounds (bisection).
fn rebalance(s: &mut [f64], l: &[f64], u: &[f64], b: f64) {
    let total =
        |shift: f64, s: &[f64]| -> f64 { s.iter().enumerate().map(|(c, x)| (x + shift).clamp(l[c], u[c])).sum() };
    let base = s.to_vec();
    let span = b.abs() + base.iter().map(|x| x.abs()).sum::<f64>() + 1.0;
    let (mut lo, mut hi) = (-span, span);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if total(mid, &base) < b {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let shift = 0.5 * (lo + hi);
    for (c, x) in s.iter_mut().enumerate() {
        *x = (base[c] + shift).clamp(l[c], u[c]);
    }
}

/// Values and derivatives of every channel's curves at `s`, and the per-draw totals. Channels are
/// evaluated in parallel; each writes its own slice, and totals are summed in channel order, so the
/// result does not depend on the thread count.
fn evaluate<C: ResponseCurves + ?Sized>(
    curves: &C,
    s: &[f64],
    work: &mut Work,
    bounds: &Bounds,
) -> Result<(), OptimizeError> {
    use rayon::prelude::*;
    let nd = curves.n_draws();
    let Work { v, d1, d2, o, .. } = work;
    v.par_chunks_mut(nd)
        .zip(d1.par_chunks_mut(nd))
        .zip(d2.par_chunks_mut(nd))
        .enumerate()
        .for_each(|(c, ((v, d1), d2))| curves.eval(c, s[c], v, d1, d2));
    o.iter_mut().for_each(|x| *x = 0.0);
    for c in 0..s.len() {
        for (o, v) in o.iter_mut().zip(&v[c * nd..(c + 1) * nd]) {
            *o += v;
        }
    }
    if o.iter().any(|x| !x.is_finite()) {
        let c = (0..s.len()).find(|&c| v[c * nd..(c + 1) * nd].iter().any(|x| !x.is_finite())).unwrap_or(0);
        return Err(OptimizeError::NonFinite { channel: bounds.names[c].clone(), spend: s[c] });
    }
    Ok(())
}

fn gradient(work: &Work, nc: usize, nd: usize, g: &mut [f64], h: &mut [f64]) {
    for c in 0..nc {
        let r = c * nd..(c + 1) * nd;
        g[c] = work.d1[r.clone()].iter().zip(&work.omega).map(|(a, w)| a * w).sum();
        h[c] = work.d2[r].iter().zip(&work.omega).map(|(a, w)| a * w).sum();
    }
}

/// Keeps the curvature model strictly concave so each step is bounded: where h_c is not clearly
/// negative (linear or convex stretches of an S-curve), use −(|g_c| + ε)/range_c so a full step
/// moves the channel at most across its feasible range.
fn curvature_floor(h: &mut [f64], g: &[f64], l: &[f64], u: &[f64], goal: Goal) {
    for c in 0..h.len() {
        let range = match goal {
            Goal::Budget(b) => (u[c] - l[c]).min(b).max(1e-12),
            Goal::MarginalReturn(_) => if u[c].is_finite() { u[c] - l[c] } else { l[c].abs() + 1.0 }.max(1e-12),
        };
        let floor = (g[c].abs() + 1e-300) / range;
        // written negated so that a NaN curvature is floored too
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        if !(h[c] < -1e-3 * floor) {
            h[c] = -floor;
        }
    }
}

/// λ such that Σ_c clamp(s_c + (g_c − λ)/(−h_c), l_c, u_c) = b (continuous quadratic knapsack;
/// the sum decreases in λ), by bisection to full precision.
fn knapsack_lambda(s: &[f64], g: &[f64], h: &[f64], l: &[f64], u: &[f64], b: f64) -> f64 {
    let sum = |lam: f64| -> f64 { (0..s.len()).map(|c| (s[c] + (g[c] - lam) / (-h[c])).clamp(l[c], u[c])).sum() };
    // at λ_lo every channel sits at its upper bound, at λ_hi at its lower bound
    let lo0 = (0..s.len()).map(|c| g[c] - (-h[c]) * (u[c].min(s[c] + b + 1.0) - s[c])).fold(f64::INFINITY, f64::min);
    let hi0 = (0..s.len()).map(|c| g[c] + (-h[c]) * (s[c] - l[c])).fold(f64::NEG_INFINITY, f64::max);
    let (mut lo, mut hi) = (lo0 - 1.0 - lo0.abs(), hi0 + 1.0 + hi0.abs());
    for _ in 0..300 {
        let mid = 0.5 * (lo + hi);
        if sum(mid) > b {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-16 * (lo.abs() + hi.abs()) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// λ (the common marginal return of free channels) and the largest relative KKT violation.
fn kkt(s: &[f64], g: &[f64], l: &[f64], u: &[f64], goal: Goal) -> (f64, f64) {
    let at_l = |c: usize| s[c] - l[c] <= 1e-9 * (1.0 + s[c].abs());
    let at_u = |c: usize| u[c] - s[c] <= 1e-9 * (1.0 + s[c].abs());
    let free: Vec<usize> = (0..s.len()).filter(|&c| !at_l(c) && !at_u(c)).collect();
    let lambda = match goal {
        Goal::MarginalReturn(_) => 0.0, // g already has the cost r subtracted
        Goal::Budget(_) if !free.is_empty() => free.iter().map(|&c| g[c]).sum::<f64>() / free.len() as f64,
        Goal::Budget(_) => {
            // every channel at a bound: any λ between max g over lower-bound channels and min g
            // over upper-bound channels is a valid multiplier; take the midpoint of that interval
            let lo = (0..s.len()).filter(|&c| at_l(c)).map(|c| g[c]).fold(f64::NEG_INFINITY, f64::max);
            let hi = (0..s.len()).filter(|&c| at_u(c)).map(|c| g[c]).fold(f64::INFINITY, f64::min);
            match (lo.is_finite(), hi.is_finite()) {
                (true, true) => 0.5 * (lo + hi),
                (true, false) => lo,
                (false, true) => hi,
                (false, false) => 0.0,
            }
        }
    };
    let scale = g.iter().map(|x| x.abs()).fold(0.0, f64::max).max(1e-300);
    let mut res: f64 = 0.0;
    for (c, &gc) in g.iter().enumerate().take(s.len()) {
        let viol = if at_l(c) && at_u(c) {
            0.0
        } else if at_l(c) {
            (gc - lambda).max(0.0)
        } else if at_u(c) {
            (lambda - gc).max(0.0)
        } else {
            (gc - lambda).abs()
        };
        res = res.max(viol / scale);
    }
    let shown = match goal {
        Goal::MarginalReturn(r) => r,
        Goal::Budget(_) => lambda,
    };
    (shown, res)
}

fn spread(o: &[f64], w: &[f64]) -> f64 {
    let m: f64 = o.iter().zip(w).map(|(a, b)| a * b).sum();
    let v: f64 = o.iter().zip(w).map(|(a, b)| b * (a - m) * (a - m)).sum();
    v.sqrt()
}
