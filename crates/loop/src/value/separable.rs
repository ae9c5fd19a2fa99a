//! Fast re-optimisation of the risk-neutral budget decision, for EVOI's many readouts.
//!
//! The decision's objective under draw weights w is separable by channel:
//!
//! ```text
//! E_w[v(s)] = Σ_c V_c(s_c),   V_c(s) = Σ_d w_d R_{c,d}(s)
//! ```
//!
//! so each readout needs only the C weighted one-dimensional curves V_c, and the allocation that
//! maximises their sum under Σ s = B and l ≤ s ≤ u is found by equalising marginal returns.
//!
//! **Tabulation.** Every draw's response R_{c,d} and marginal R'_{c,d} are tabulated once, on G
//! spend nodes per channel spread over the channel's feasible range [l_c, min(u_c, B − Σ_{k≠c} l_k)]
//! with quadratic spacing (dense at the low end, where a concave curve bends most). The weighted
//! curves of a batch of readouts are then one matrix product, table (2CG × N) × weights (N × R),
//! and between nodes V_c is the cubic Hermite interpolant of its node values and slopes (error
//! O(h⁴·V'''')). Any other linear functional of the per-draw values — the posterior mean
//! (1/N)Σ_d v_d(a) and the covariances (1/(N−1))Σ_d (L_d − L̄) v_d(a) the Gaussian-linear
//! preposterior needs — is a weighted curve of the same kind, evaluated the same way.
//!
//! **Allocation.** When every tabulated curve is concave (R''_{c,d} ≤ 0 at every node, true of the
//! Michaelis–Menten, logistic and Hill-with-slope-≤-1 saturations), each V_c is concave and the
//! KKT conditions say: there is a multiplier λ with s_c(λ) = argmax_{l_c ≤ s ≤ u_c} V_c(s) − λs and
//! Σ_c s_c(λ) = B. s_c(λ) is found on the interpolant (binary search for the node interval where the
//! marginal crosses λ, then the root of the interval's quadratic marginal), and λ by bisection on
//! the nonincreasing Σ_c s_c(λ). The allocation agrees with [`mmloop_mmm::optimize::optimize`] to
//! the interpolation error (see `separable_allocation_agrees_with_the_general_optimiser` in the
//! tests); the readout's gain E_w[v(a*)] − E_w[v(a₀)] is computed on the same interpolant at both
//! actions, so the interpolation error largely cancels in it.
//!
//! **Non-concave curves (grid dynamic programme).** Where some tabulated curve is not concave (an
//! S-shaped Hill curve with slope > 1), marginal returns are not monotone and equalising them finds
//! only a stationary point. The objective is still separable, so it is maximised exactly on a grid:
//! the free budget B − Σ l is cut into K = [`DP_UNITS`] units of h = (B − Σ l)/K, channel c may take
//! k_c ∈ {0, …, ⌊(u_c − l_c)/h⌋} units, and
//!
//! ```text
//! F_c(k) = max_{0 ≤ j ≤ min(k, cap_c)} F_{c−1}(k − j) + V_c(l_c + j·h),   F_{−1}(k) = [k = 0 ? 0 : −∞]
//! ```
//!
//! gives the best lattice allocation with Σ k_c = K in O(C·K²) interpolant additions (after C·K
//! interpolant evaluations), whatever the curves' shape. **Grid error:** rounding the continuous
//! optimum s* of the interpolated objective to the lattice moves each spend by at most h while
//! keeping the sum; at s* the interior channels share one marginal λ, so the first-order change
//! λ·Σ δ_c vanishes and the lattice optimum is within ½·Σ_c max|V_c''|·h² of the optimum (channels
//! whose upper bound is off the lattice can add max|V_c'|·h: the refinement below recovers that).
//! **Refinement:** a few sweeps over channel pairs (i, j) move spend t between them, t within ±2h
//! (and the bounds), by golden-section search on V_i(s_i + t) + V_j(s_j − t), a move kept only when
//! it raises the objective; so the result is never below the lattice optimum and lands on the
//! nearby continuous optimum where the objective is locally concave. All of it is sequential per
//! readout, with fixed tie-breaking (the first maximiser): deterministic.
//!
//! **Fallback.** Where the problem is not feasible (or a tabulated value is not finite), every call
//! goes to the general optimiser ([`BudgetDecision::best_action`]), which also reports the errors.
//!
//! The matrix products run over fixed chunks of readouts, each chunk sequential, the chunks in
//! parallel: the result does not depend on the thread count.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use mmloop_mmm::optimize::ResponseCurves;
use rayon::prelude::*;

use super::ValueError;
use super::evoi::{BudgetDecision, DecisionProblem, PriorOptimum, ReadoutValue, ValueUnit};

/// Spend nodes per channel. With quadratic spacing the Hermite interpolant of a Michaelis–Menten
/// curve is accurate to ~1e-9 of the curve's scale at 64 nodes (the tests measure the agreement).
pub const DEFAULT_NODES: usize = 32;

/// Budget units of the grid dynamic programme for non-concave curves (see the module doc): the
/// lattice optimum is within ½·Σ_c max|V_c''|·(B/K)² of the interpolant's optimum before refinement.
pub const DP_UNITS: usize = 256;

/// Refinement sweeps over channel pairs after the dynamic programme.
const REFINE_SWEEPS: usize = 3;
/// Readouts per matrix product: a fixed chunk size keeps the summation order independent of the
/// thread count.
const CHUNK: usize = 32;

/// A [`BudgetDecision`] with its curves tabulated for fast re-optimisation (see the module doc).
/// It is a [`DecisionProblem`] like the decision itself, and gives the same answers to the stated
/// tolerance, much faster on many readouts.
pub struct SeparableBudget<'a, C: ResponseCurves + ?Sized> {
    pub decision: &'a BudgetDecision<'a, C>,
    /// Spend nodes of each channel, ascending.
    nodes: Vec<Vec<f64>>,
    /// Row c·G + g: unit-scaled R_{c,d}(node g); row C·G + c·G + g: its slope. Column d: draw d.
    table: Mat<f64>,
    /// Effective upper bound of each channel.
    upper: Vec<f64>,
    /// False when the budget is infeasible or a value not finite: use the general optimiser.
    fast: bool,
    /// Every tabulated curve is concave: equal marginal returns; otherwise the grid programme.
    concave: bool,
}

fn unit_scale(unit: ValueUnit) -> f64 {
    match unit {
        ValueUnit::Money { per_kpi } => per_kpi,
        ValueUnit::Kpi => 1.0,
    }
}

/// A channel's weighted curve: node values and slopes.
struct Curve<'t> {
    s: &'t [f64],
    v: &'t [f64],
    m: &'t [f64],
}

impl Curve<'_> {
    fn interval(&self, x: f64) -> usize {
        let g = self.s.len();
        self.s.partition_point(|n| *n <= x).clamp(1, g - 1) - 1
    }
    /// The cubic Hermite interpolant at x.
    fn value(&self, x: f64) -> f64 {
        let i = self.interval(x);
        let h = self.s[i + 1] - self.s[i];
        let t = ((x - self.s[i]) / h).clamp(0.0, 1.0);
        let (t2, t3) = (t * t, t * t * t);
        (2.0 * t3 - 3.0 * t2 + 1.0) * self.v[i]
            + (t3 - 2.0 * t2 + t) * h * self.m[i]
            + (-2.0 * t3 + 3.0 * t2) * self.v[i + 1]
            + (t3 - t2) * h * self.m[i + 1]
    }
    /// argmax over [s₀, s_{G−1}] of the interpolant minus λ·s, for a nonincreasing marginal.
    fn argmax(&self, lambda: f64) -> f64 {
        let g = self.s.len();
        if self.m[0] <= lambda {
            return self.s[0];
        }
        if self.m[g - 1] >= lambda {
            return self.s[g - 1];
        }
        // first node whose marginal is below λ: the crossing is in [s_{j−1}, s_j]
        let j = self.m.partition_point(|m| *m >= lambda).clamp(1, g - 1);
        let i = j - 1;
        let h = self.s[j] - self.s[i];
        let dv = self.v[j] - self.v[i];
        let (mi, mj) = (h * self.m[i], h * self.m[j]);
        // h·H'(t) − h·λ = a t² + b t + c, with q(0) ≥ 0 > q(1)
        let a = -6.0 * dv + 3.0 * mi + 3.0 * mj;
        let b = 6.0 * dv - 4.0 * mi - 2.0 * mj;
        let c = mi - h * lambda;
        let q = |t: f64| (a * t + b) * t + c;
        let mut t = if a.abs() <= 1e-12 * (b.abs() + c.abs()) {
            -c / b
        } else {
            let disc = (b * b - 4.0 * a * c).max(0.0);
            // the numerically stable pair of roots
            let qq = -0.5 * (b + b.signum() * disc.sqrt());
            let (r1, r2) = (qq / a, if qq != 0.0 { c / qq } else { f64::NAN });
            if (0.0..=1.0).contains(&r1) { r1 } else { r2 }
        };
        if !(0.0..=1.0).contains(&t) || q(t).abs() > 1e-9 * (c.abs() + mi.abs() + mj.abs()) {
            // safeguard: bisection on the sign change
            let (mut lo, mut hi) = (0.0, 1.0);
            for _ in 0..60 {
                let mid = 0.5 * (lo + hi);
                if q(mid) >= 0.0 { lo = mid } else { hi = mid }
            }
            t = 0.5 * (lo + hi);
        }
        self.s[i] + t.clamp(0.0, 1.0) * h
    }
}

impl<C: ResponseCurves + ?Sized> BudgetDecision<'_, C> {
    /// Tabulates the curves for fast re-optimisation on `nodes` spend nodes per channel
    /// ([`DEFAULT_NODES`] is a good default). Costs C·`nodes` curve evaluations over all draws, once.
    pub fn separable(&self, nodes: usize) -> Result<SeparableBudget<'_, C>, ValueError> {
        SeparableBudget::new(self, nodes)
    }
}

impl<'a, C: ResponseCurves + ?Sized> SeparableBudget<'a, C> {
    pub fn new(decision: &'a BudgetDecision<'a, C>, n_nodes: usize) -> Result<Self, ValueError> {
        if n_nodes < 4 {
            return Err(ValueError::BadOption {
                option: "nodes",
                message: format!("the tabulation needs ≥ 4 spend nodes per channel, got {n_nodes}"),
            });
        }
        let curves = decision.curves;
        let (nc, nd) = (curves.n_channels(), curves.n_draws());
        let b = decision.budget;
        let (l, u) = (&decision.bounds.lower, &decision.bounds.upper);
        let sum_l: f64 = l.iter().sum();
        let sum_u: f64 = u.iter().sum();
        let shaped = l.len() == nc && u.len() == nc && nd > 0;
        let feasible = shaped
            && b.is_finite()
            && l.iter().zip(u).all(|(a, z)| a.is_finite() && *a >= 0.0 && !z.is_nan() && a <= z)
            && sum_l <= b
            && sum_u >= b;
        let lower: Vec<f64> = if shaped { l.clone() } else { Vec::new() };
        let upper: Vec<f64> =
            if shaped { (0..nc).map(|c| u[c].min(b - (sum_l - l[c])).max(l[c])).collect() } else { Vec::new() };
        if !feasible || lower.iter().zip(&upper).any(|(a, z)| z - a <= 0.0) {
            // degenerate or infeasible: the general optimiser handles (and reports) it
            return Ok(Self {
                decision,
                nodes: Vec::new(),
                table: Mat::zeros(0, 0),
                upper,
                fast: false,
                concave: false,
            });
        }
        let g = n_nodes;
        let nodes: Vec<Vec<f64>> = (0..nc)
            .map(|c| (0..g).map(|i| lower[c] + (upper[c] - lower[c]) * (i as f64 / (g - 1) as f64).powi(2)).collect())
            .collect();
        let scale = unit_scale(decision.unit);
        // one column of values, slopes, finiteness and concavity per (channel, node), in parallel
        let cols: Vec<(Vec<f64>, Vec<f64>, bool, bool)> = (0..nc * g)
            .into_par_iter()
            .map(|k| {
                let (c, i) = (k / g, k % g);
                let (mut v, mut d1, mut d2) = (vec![0.0; nd], vec![0.0; nd], vec![0.0; nd]);
                curves.eval(c, nodes[c][i], &mut v, &mut d1, &mut d2);
                let range = upper[c] - lower[c];
                // concave up to rounding: R''·range small against R'
                let concave = d1.iter().zip(&d2).all(|(a, b)| *b * range <= 1e-9 * a.abs() + f64::MIN_POSITIVE);
                let finite = v.iter().chain(&d1).all(|x| x.is_finite());
                (v, d1, finite, concave)
            })
            .collect();
        let fast = cols.iter().all(|c| c.2);
        let concave = cols.iter().all(|c| c.3);
        let mut table = Mat::<f64>::zeros(2 * nc * g, nd);
        if fast {
            for (k, (v, d1, _, _)) in cols.iter().enumerate() {
                for d in 0..nd {
                    table[(k, d)] = scale * v[d];
                    table[(nc * g + k, d)] = scale * d1[d];
                }
            }
        }
        Ok(Self { decision, nodes, table, upper, fast, concave })
    }

    /// Whether the fast path is in use (false: every call goes to the general optimiser).
    pub fn is_fast(&self) -> bool {
        self.fast
    }

    /// Whether every tabulated curve is concave (the fast path then equalises marginal returns;
    /// otherwise it solves the grid dynamic programme).
    pub fn is_concave(&self) -> bool {
        self.concave
    }

    fn n_nodes(&self) -> usize {
        self.nodes.first().map_or(0, |n| n.len())
    }

    fn curve<'t>(&'t self, col: &'t [f64], c: usize) -> Curve<'t> {
        let (nc, g) = (self.nodes.len(), self.n_nodes());
        Curve { s: &self.nodes[c], v: &col[c * g..(c + 1) * g], m: &col[nc * g + c * g..nc * g + (c + 1) * g] }
    }

    /// The interpolated weighted objective Σ_c V_c(a_c) of one weighted-curve column.
    fn objective(&self, col: &[f64], a: &[f64]) -> f64 {
        (0..self.nodes.len()).map(|c| self.curve(col, c).value(a[c])).sum()
    }

    /// The allocation maximising the interpolated objective of one weighted-curve column.
    fn allocate(&self, col: &[f64]) -> Vec<f64> {
        if self.concave { self.allocate_concave(col) } else { self.allocate_grid(col, DP_UNITS) }
    }

    /// The grid programme's allocation under draw weights `w`, whatever the curves' shape (tests).
    #[cfg(test)]
    pub(crate) fn grid_action(&self, w: &[f64]) -> Vec<f64> {
        let wc = self.weighted(&[w]);
        self.allocate_grid(column(&wc, 0), DP_UNITS)
    }

    /// The grid dynamic programme plus pairwise refinement (module doc), for any curve shape.
    fn allocate_grid(&self, col: &[f64], units: usize) -> Vec<f64> {
        let nc = self.nodes.len();
        let lower = &self.decision.bounds.lower;
        let b = self.decision.budget;
        let curves: Vec<Curve> = (0..nc).map(|c| self.curve(col, c)).collect();
        let free = b - lower.iter().sum::<f64>();
        let k_all = units.max(1);
        let h = free / k_all as f64;
        let caps: Vec<usize> = (0..nc)
            .map(|c| {
                let room = (self.upper[c] - lower[c]) / h;
                // a bound on the lattice up to rounding counts as on it
                ((room + 1e-9).floor().max(0.0) as usize).min(k_all)
            })
            .collect();
        let vals: Vec<Vec<f64>> =
            (0..nc).map(|c| (0..=caps[c]).map(|j| curves[c].value(lower[c] + j as f64 * h)).collect()).collect();
        let picked = grid_units(&vals, &caps, k_all);
        let mut s: Vec<f64> = (0..nc).map(|c| lower[c] + picked[c] as f64 * h).collect();
        let mut rest = b - s.iter().sum::<f64>();
        for (x, up) in s.iter_mut().zip(&self.upper) {
            if rest <= 0.0 {
                break;
            }
            let add = rest.min(up - *x).max(0.0);
            *x += add;
            rest -= add;
        }
        self.refine(&curves, &mut s, 2.0 * h);
        s
    }

    /// Pairwise golden-section moves of at most `reach` between channels, kept when they help.
    fn refine(&self, curves: &[Curve], s: &mut [f64], reach: f64) {
        let lower = &self.decision.bounds.lower;
        let nc = s.len();
        let inv_phi = 0.5 * (5f64.sqrt() - 1.0);
        for _ in 0..REFINE_SWEEPS {
            // a sweep that moves nothing leaves `s` as it found it, so every later sweep would
            // repeat it exactly: stopping there gives the same allocation bit for bit
            let mut moved = false;
            for i in 0..nc {
                for j in i + 1..nc {
                    let lo = (-reach).max(lower[i] - s[i]).max(s[j] - self.upper[j]);
                    let hi = reach.min(self.upper[i] - s[i]).min(s[j] - lower[j]);
                    if hi - lo <= 0.0 {
                        continue;
                    }
                    let phi = |t: f64| curves[i].value(s[i] + t) + curves[j].value(s[j] - t);
                    let (mut a, mut z) = (lo, hi);
                    let mut x1 = z - inv_phi * (z - a);
                    let mut x2 = a + inv_phi * (z - a);
                    let (mut f1, mut f2) = (phi(x1), phi(x2));
                    for _ in 0..48 {
                        if f1 >= f2 {
                            z = x2;
                            x2 = x1;
                            f2 = f1;
                            x1 = z - inv_phi * (z - a);
                            f1 = phi(x1);
                        } else {
                            a = x1;
                            x1 = x2;
                            f1 = f2;
                            x2 = a + inv_phi * (z - a);
                            f2 = phi(x2);
                        }
                    }
                    let t = if f1 >= f2 { x1 } else { x2 };
                    // the ends too: golden section on a non-unimodal piece may miss a better end
                    let best = [t, lo, hi].into_iter().fold((0.0, phi(0.0)), |acc, t| {
                        let v = phi(t);
                        if v > acc.1 { (t, v) } else { acc }
                    });
                    if best.0 != 0.0 {
                        s[i] += best.0;
                        s[j] -= best.0;
                        moved = true;
                    }
                }
            }
            if !moved {
                break;
            }
        }
    }

    /// Equal marginal returns, for concave curves (module doc).
    fn allocate_concave(&self, col: &[f64]) -> Vec<f64> {
        let nc = self.nodes.len();
        let b = self.decision.budget;
        let curves: Vec<Curve> = (0..nc).map(|c| self.curve(col, c)).collect();
        let total = |lambda: f64| -> f64 { curves.iter().map(|k| k.argmax(lambda)).sum() };
        let mut hi = curves.iter().map(|k| k.m[0]).fold(f64::NEG_INFINITY, f64::max);
        let mut lo = curves.iter().map(|k| k.m[k.m.len() - 1]).fold(f64::INFINITY, f64::min);
        let span = (hi - lo).abs().max(hi.abs()).max(1e-300);
        hi += 1e-9 * span;
        lo -= 1e-9 * span;
        // Σ s_c(λ) is nonincreasing: Σ s(hi) = Σ l ≤ B ≤ Σ u = Σ s(lo)
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if mid <= lo || mid >= hi {
                break;
            }
            if total(mid) > b { lo = mid } else { hi = mid }
        }
        let mut s: Vec<f64> = curves.iter().map(|k| k.argmax(hi)).collect();
        // Σ s(hi) ≤ B: hand the rounding residual to channels with room, in order
        let mut rest = b - s.iter().sum::<f64>();
        for (x, up) in s.iter_mut().zip(&self.upper) {
            if rest <= 0.0 {
                break;
            }
            let add = rest.min(up - *x).max(0.0);
            *x += add;
            rest -= add;
        }
        s
    }

    /// Weighted curves (2CG × columns) of the given draw-weight vectors, chunk by chunk.
    fn weighted(&self, weights: &[&[f64]]) -> Mat<f64> {
        let nd = self.table.ncols();
        let rows = self.table.nrows();
        let chunks: Vec<Mat<f64>> = weights
            .par_chunks(CHUNK)
            .map(|ws| {
                let w = Mat::<f64>::from_fn(nd, ws.len(), |d, j| ws[j][d]);
                let mut out = Mat::<f64>::zeros(rows, ws.len());
                matmul(out.as_mut(), Accum::Replace, self.table.as_ref(), w.as_ref(), 1.0, Par::Seq);
                out
            })
            .collect();
        let mut out = Mat::<f64>::zeros(rows, weights.len());
        for (k, ch) in chunks.iter().enumerate() {
            for j in 0..ch.ncols() {
                for r in 0..rows {
                    out[(r, k * CHUNK + j)] = ch[(r, j)];
                }
            }
        }
        out
    }
}

/// The grid dynamic programme of the module doc: units k_c ∈ {0, …, caps[c]} per channel maximising
/// Σ_c vals[c][k_c] subject to Σ_c k_c = K*, where K* = min(`units`, Σ caps) is the most units the
/// caps let the channels take. `vals[c][j]` is V_c at j units (finite); ties go to the first
/// maximiser in the order of the recursion
///
/// ```text
/// F_c(k) = max_{0 ≤ j ≤ min(k, cap_c)} F_{c−1}(k − j) + V_c(j),   F_{−1}(k) = [k = 0 ? 0 : −∞],
/// ```
///
/// j ascending, a later j kept only when strictly better. The first channel's row is its own
/// values (F_{−1} is finite at 0 only), and the last channel's only at K*; the rows between loop over
/// j outside k, so the inner loop is a branch-light pass over k. That visits, for each k, the same
/// j in the same order as the textbook recursion and keeps the same maximiser: the units are
/// identical to it (tested against it on random S-shaped lattices), at (C − 2)·K·cap + cap
/// additions instead of C·K·cap.
pub(super) fn grid_units(vals: &[Vec<f64>], caps: &[usize], units: usize) -> Vec<usize> {
    let nc = vals.len();
    if nc == 0 {
        return Vec::new();
    }
    let k_star = caps.iter().sum::<usize>().min(units);
    if nc == 1 {
        return vec![k_star];
    }
    // f[k]: best value of the channels so far with k units; choice[c][k]: units of channel c
    let mut f = vec![f64::NEG_INFINITY; units + 1];
    let mut choice = vec![vec![0usize; units + 1]; nc];
    for k in 0..=caps[0].min(units) {
        let v = 0.0 + vals[0][k];
        if v > f64::NEG_INFINITY {
            f[k] = v;
            choice[0][k] = k;
        }
    }
    let mut next = vec![f64::NEG_INFINITY; units + 1];
    for c in 1..nc - 1 {
        next.fill(f64::NEG_INFINITY);
        let ch = &mut choice[c];
        for j in 0..=caps[c].min(units) {
            let add = vals[c][j];
            // −∞ + add = −∞ is never strictly better: the textbook recursion's skip
            for ((slot, pick), prev) in next[j..].iter_mut().zip(&mut ch[j..]).zip(&f) {
                let v = prev + add;
                if v > *slot {
                    *slot = v;
                    *pick = j;
                }
            }
        }
        std::mem::swap(&mut f, &mut next);
    }
    let last = nc - 1;
    let mut best = f64::NEG_INFINITY;
    for j in 0..=caps[last].min(k_star) {
        let v = f[k_star - j] + vals[last][j];
        if v > best {
            best = v;
            choice[last][k_star] = j;
        }
    }
    let mut out = vec![0usize; nc];
    let mut k = k_star;
    for c in (0..nc).rev() {
        out[c] = choice[c][k];
        k -= out[c];
    }
    out
}

fn column(m: &Mat<f64>, j: usize) -> &[f64] {
    m.col(j).try_as_col_major().expect("faer columns of an owned Mat are contiguous").as_slice()
}

impl<C: ResponseCurves + ?Sized> DecisionProblem for SeparableBudget<'_, C> {
    fn n_draws(&self) -> usize {
        self.decision.n_draws()
    }

    /// Uniform weights (the prior optimum) go to the general optimiser, for the exact a₀; other
    /// weights to the tabulated solver.
    fn best_action(&self, weights: Option<&[f64]>, start: Option<&[f64]>) -> Result<Vec<f64>, ValueError> {
        match weights {
            Some(w) if self.fast => {
                check_weights(w, self.n_draws())?;
                let wc = self.weighted(&[w]);
                Ok(self.allocate(column(&wc, 0)))
            }
            _ => self.decision.best_action(weights, start),
        }
    }

    fn draw_values(&self, action: &[f64], out: &mut [f64]) {
        self.decision.draw_values(action, out)
    }

    fn unit(&self) -> ValueUnit {
        self.decision.unit
    }

    fn readout_values(
        &self,
        prior: &PriorOptimum,
        weights: &[Vec<f64>],
        functionals: &[Vec<f64>],
    ) -> Result<(Vec<ReadoutValue>, Vec<f64>), ValueError> {
        if !self.fast {
            return super::evoi::readout_values_by_optimiser(self, prior, weights, functionals);
        }
        let n = self.n_draws();
        for w in weights {
            check_weights(w, n)?;
        }
        let fs: Vec<&[f64]> = functionals.iter().map(|f| f.as_slice()).collect();
        let fcols = self.weighted(&fs);
        let a0 = &prior.action;
        let at_prior: Vec<f64> = (0..functionals.len()).map(|k| self.objective(column(&fcols, k), a0)).collect();
        let ws: Vec<&[f64]> = weights.iter().map(|w| w.as_slice()).collect();
        let wcols = self.weighted(&ws);
        let out: Vec<ReadoutValue> = (0..weights.len())
            .into_par_iter()
            .map(|r| {
                let col = column(&wcols, r);
                let mut action = self.allocate(col);
                let mut gain = self.objective(col, &action) - self.objective(col, a0);
                if gain.is_nan() || gain < 0.0 {
                    // a₀ is feasible: the decision-maker keeps it when the solve finds nothing better
                    action = a0.clone();
                    gain = 0.0;
                }
                let fvals = (0..functionals.len()).map(|k| self.objective(column(&fcols, k), &action)).collect();
                ReadoutValue { action, gain, functionals: fvals }
            })
            .collect();
        Ok((out, at_prior))
    }
}

fn check_weights(w: &[f64], n: usize) -> Result<(), ValueError> {
    if w.len() != n || w.iter().any(|x| !(x.is_finite() && *x >= 0.0)) || w.iter().sum::<f64>() <= 0.0 {
        return Err(ValueError::BadOption {
            option: "weights",
            message: format!("{} draw weights for {n} draws: all must be finite and ≥ 0, not all 0", w.len()),
        });
    }
    Ok(())
}
