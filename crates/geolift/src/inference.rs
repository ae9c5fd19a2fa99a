//! Inference: conformal (GeoLift's default), placebo in space, synthdid's placebo and jackknife
//! standard errors. Every random draw comes from its own generator seeded by
//! `derive_seed(master, stream, index)`, so results are identical for any thread count.

use crate::error::{GeoLiftError, check_memory, est_err};
use crate::panel::LiftData;
use crate::result::{LiftEstimate, LiftEstimator};
use crate::sc::fit_sc;
use crate::sdid::{Sdid, SdidKind, sum_normalize, tau_with_weights};
use crate::stats::{normal_cdf, normal_quantile};
use ndarray::Array2;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand::seq::SliceRandom;
use rayon::prelude::*;

/// A seed for draw `index` of stream `stream` under master seed `master` (SplitMix64 finaliser over
/// the three words), independent of which thread runs the draw.
pub fn derive_seed(master: u64, stream: u64, index: u64) -> u64 {
    let mut z = master ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    for _ in 0..2 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
    }
    z
}

fn rng(master: u64, stream: u64, index: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(derive_seed(master, stream, index))
}

/// Test statistic on the test-window residuals (GeoLift `type_of_test`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConformalStat {
    /// Σ|uₜ|, two-sided (GeoLift "Total", the default).
    Total,
    /// Σuₜ, against negative effects (GeoLift "Positive").
    Positive,
    /// −Σuₜ, against positive effects (GeoLift "Negative").
    Negative,
    /// |Σuₜ|, two-sided test of the average effect (used to invert for the confidence interval).
    AbsSum,
}

impl ConformalStat {
    fn eval(self, u: impl Iterator<Item = f64>) -> f64 {
        match self {
            Self::Total => u.map(f64::abs).sum(),
            Self::Positive => u.sum(),
            Self::Negative => -u.sum::<f64>(),
            Self::AbsSum => u.sum::<f64>().abs(),
        }
    }
}

/// Conformal inference for synthetic control (Chernozhukov, Wüthrich & Zhu 2021, JASA 116(536)),
/// as augsynth's `conformal_inf` runs it for GeoLift:
///
/// 1. under the null of a constant effect h₀, subtract h₀ from the treated average in the test
///    window, refit the SC weights on **all** periods (pre and test, demeaned over all periods when
///    demeaning) and take the residuals uₜ = x₁ₜ − h₀·1{t ≥ T₀} − ŷₜ for every period;
/// 2. statistic S(u) on the test window (Σ|uₜ| by default); p(h₀) = share of `ns` iid permutations π
///    of the T residuals with S(u_π) ≥ S(u) (augsynth `compute_permute_pval`, `type = "iid"`);
/// 3. p-value of the experiment = p(0) with the chosen statistic; the 1 − α confidence set for the
///    average effect is {h₀ : p(h₀) ≥ α} (test inversion) with the statistic |Σuₜ| — the sum-of-absolute
///    statistic also rejects constant-effect nulls when the effect varies over the window, so inverting
///    it can give an empty set (it does on GeoLift_Test), whereas |Σuₜ| targets the average effect.
///    The set is found on a grid around the ATT (expanded until both ends are rejected) and refined by
///    bisection at both boundaries.
///
/// The same `ns` permutations are used for every h₀ (common random numbers), so p(h₀) is a step
/// function of h₀ and the interval ends are well defined.
#[derive(Debug, Clone, Copy)]
pub struct Conformal {
    pub ns: usize,
    pub alpha: f64,
    pub seed: u64,
    pub stat: ConformalStat,
    pub grid_size: usize,
    pub demean: bool,
}

impl Default for Conformal {
    fn default() -> Self {
        Self { ns: 1000, alpha: 0.1, seed: 20_210_401, stat: ConformalStat::Total, grid_size: 50, demean: true }
    }
}

/// Result of conformal inference.
#[derive(Debug, Clone)]
pub struct ConformalResult {
    /// p(0) with the chosen statistic (GeoLift's p-value; Σ|uₜ| by default).
    pub p_value: f64,
    /// p(0) with |Σuₜ|, the statistic the confidence interval inverts: below α exactly when the
    /// interval excludes 0 (up to the grid's resolution). Σ|uₜ| also reacts to effects that vary
    /// over the window around a zero average, so the two p-values can disagree.
    pub p_value_average: f64,
    pub ci_lower: f64,
    pub ci_upper: f64,
    /// (h₀, p(h₀)) on the grid.
    pub grid: Vec<(f64, f64)>,
}

impl Conformal {
    fn perms(&self, t: usize) -> Vec<Vec<u16>> {
        (0..self.ns)
            .into_par_iter()
            .map(|k| {
                let mut p: Vec<u16> = (0..t as u16).collect();
                p.shuffle(&mut rng(self.seed, 1, k as u64));
                p
            })
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn pval(
        &self,
        stat: ConformalStat,
        data: &LiftData,
        x1: &[f64],
        x0: &ndarray::Array2<f64>,
        w0: &[f64],
        perms: &[Vec<u16>],
        h0: f64,
    ) -> f64 {
        let t0 = data.t0;
        let tt = x1.len();
        let adj: Vec<f64> = (0..tt).map(|t| if t >= t0 { x1[t] - h0 } else { x1[t] }).collect();
        let f = fit_sc(&adj, x0.view(), tt, self.demean, Some(w0));
        let u: Vec<f64> = (0..tt).map(|t| adj[t] - f.counterfactual[t]).collect();
        let obs = stat.eval(u[t0..].iter().copied());
        // a relative tolerance so that permutations that only reorder the test-window residuals
        // (equal statistics up to summation order) count as ties, as they are exactly
        let tol = 1e-10 * u.iter().map(|v| v.abs()).sum::<f64>();
        let hits = perms.iter().filter(|p| stat.eval(p[t0..].iter().map(|&i| u[i as usize])) >= obs - tol).count();
        hits as f64 / perms.len() as f64
    }

    /// Runs conformal inference for SC on `data` with point estimate `est` (from [`crate::SyntheticControl`]).
    pub fn run(&self, data: &LiftData, est: &LiftEstimate) -> Result<ConformalResult, GeoLiftError> {
        if self.ns == 0 {
            return Err(est_err("conformal", "need at least one permutation"));
        }
        if data.n_periods() > u16::MAX as usize {
            return Err(est_err("conformal", "too many periods"));
        }
        // the permutations are stored (common random numbers across the grid): ns × T × 2 bytes
        check_memory(
            "--permutations",
            self.ns,
            self.ns as f64,
            2.0 * data.n_periods() as f64,
            &format!("storing {} permutations of {} periods", self.ns, data.n_periods()),
        )?;
        let x1 = data.treated_mean();
        let x0 = data.control_matrix();
        let w0: Vec<f64> = est.weights.iter().map(|(_, w)| *w).collect();
        let perms = self.perms(data.n_periods());
        let p0 = self.pval(self.stat, data, &x1, &x0, &w0, &perms, 0.0);
        let att = est.att;
        let post: Vec<f64> = est.path.iter().filter(|p| p.post).map(|p| p.observed - p.counterfactual).collect();
        let mut half = 2.0 * (post.iter().map(|v| v * v).sum::<f64>() / post.len() as f64).sqrt();
        if half == 0.0 {
            half = 1.0;
        }
        let p = |h: f64| self.pval(ConformalStat::AbsSum, data, &x1, &x0, &w0, &perms, h);
        let mut grid: Vec<(f64, f64)>;
        let mut tries = 0;
        loop {
            let g = self.grid_size.max(3);
            grid = (0..g)
                .into_par_iter()
                .map(|i| {
                    let h = att - half + 2.0 * half * i as f64 / (g - 1) as f64;
                    (h, p(h))
                })
                .collect();
            let ends_rejected = grid[0].1 < self.alpha && grid[grid.len() - 1].1 < self.alpha;
            tries += 1;
            if ends_rejected || tries >= 8 {
                break;
            }
            half *= 2.0;
        }
        let accepted: Vec<usize> = (0..grid.len()).filter(|&i| grid[i].1 >= self.alpha).collect();
        let (lo, hi) = match (accepted.first(), accepted.last()) {
            (Some(&a), Some(&b)) => {
                let refine = |mut inside: f64, mut outside: f64| {
                    for _ in 0..30 {
                        let mid = 0.5 * (inside + outside);
                        if p(mid) >= self.alpha {
                            inside = mid;
                        } else {
                            outside = mid;
                        }
                        if (inside - outside).abs() <= 1e-9 * (1.0 + att.abs()) {
                            break;
                        }
                    }
                    inside
                };
                let lo = if a > 0 { refine(grid[a].0, grid[a - 1].0) } else { grid[a].0 };
                let hi = if b + 1 < grid.len() { refine(grid[b].0, grid[b + 1].0) } else { grid[b].0 };
                (lo, hi)
            }
            _ => (f64::NAN, f64::NAN),
        };
        Ok(ConformalResult { p_value: p0, p_value_average: p(0.0), ci_lower: lo, ci_upper: hi, grid })
    }

    /// Runs and writes p-value and CI into `est`.
    pub fn apply(&self, data: &LiftData, est: &mut LiftEstimate) -> Result<ConformalResult, GeoLiftError> {
        let r = self.run(data, est)?;
        est.p_value = Some(r.p_value);
        if r.ci_lower.is_finite() && r.ci_upper.is_finite() {
            est.ci_lower = Some(r.ci_lower);
            est.ci_upper = Some(r.ci_upper);
        } else {
            est.ci_lower = None;
            est.ci_upper = None;
            est.notes.push(format!(
                "no conformal interval: no effect on the searched grid reached p ≥ {} (the confidence set is empty)",
                self.alpha
            ));
        }
        est.alpha = self.alpha;
        est.inference = Some(format!("conformal ({} permutations)", self.ns));
        Ok(r)
    }
}

/// Placebo in space (Abadie, Diamond & Hainmueller 2010, §4): every control geo in turn is treated
/// as if it had been the (single) treated geo, with the remaining controls as donors.
#[derive(Debug, Clone)]
pub struct PlaceboInSpace {
    /// (geo, placebo ATT) for every control.
    pub placebos: Vec<(String, f64)>,
    /// (1 + #{|placebo ATT| ≥ |ATT|}) / (1 + #placebos): the rank p-value of the actual ATT.
    pub p_value: f64,
    /// Standard deviation of the placebo ATTs.
    pub sd: f64,
}

pub fn placebo_in_space(est: &dyn LiftEstimator, data: &LiftData, att: f64) -> Result<PlaceboInSpace, GeoLiftError> {
    if data.controls.len() < 3 {
        return Err(est_err("placebo", "need at least 3 control geos for placebos in space"));
    }
    let placebos: Vec<(String, f64)> = data
        .controls
        .par_iter()
        .map(|&j| {
            let others: Vec<usize> = data.controls.iter().copied().filter(|&g| g != j).collect();
            let d = data.with_groups(vec![j], others);
            est.att(&d).map(|a| (data.geos[j].clone(), a))
        })
        .collect::<Result<_, _>>()?;
    let k = placebos.iter().filter(|(_, a)| a.abs() >= att.abs()).count();
    let n = placebos.len() as f64;
    let m = placebos.iter().map(|(_, a)| a).sum::<f64>() / n;
    let sd = (placebos.iter().map(|(_, a)| (a - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    Ok(PlaceboInSpace { placebos, p_value: (1.0 + k as f64) / (1.0 + n), sd })
}

/// synthdid's placebo standard error (Arkhangelsky et al. 2021, Algorithm 4): `reps` times, draw a
/// random permutation of the controls, call its last N₁ geos treated and the rest controls, and
/// re-estimate; se = √((R−1)/R) · sd(τ̂⁽ʳ⁾). Needs more controls than treated geos. For SDID use
/// [`sdid_placebo_se`], which reuses the original regularisation as synthdid does.
pub fn placebo_se(est: &dyn LiftEstimator, data: &LiftData, reps: usize, seed: u64) -> Result<f64, GeoLiftError> {
    check_reps(reps)?;
    let n1 = data.treated.len();
    let n0 = data.controls.len();
    if n0 <= n1 {
        return Err(est_err(
            "placebo",
            format!("placebo standard errors need more controls ({n0}) than treated geos ({n1})"),
        ));
    }
    let taus: Vec<f64> = (0..reps)
        .into_par_iter()
        .map(|r| {
            let mut c = data.controls.clone();
            c.shuffle(&mut rng(seed, 2, r as u64));
            let d = data.with_groups(c[n0 - n1..].to_vec(), c[..n0 - n1].to_vec());
            est.att(&d)
        })
        .collect::<Result<_, _>>()?;
    Ok(rep_se(&taus))
}

/// Most placebo replications accepted: the Monte Carlo error of a standard deviation from R
/// replications is about 1/√(2R) of it, 0.07 % at 10⁶; more only costs time (each is a refit).
pub const MAX_REPS: usize = 1_000_000;

/// Placebo replications: at least 2 (a standard deviation), at most [`MAX_REPS`] (which also bounds
/// the memory of their estimates at 8 MB).
pub fn check_reps(reps: usize) -> Result<(), GeoLiftError> {
    if reps < 2 {
        return Err(GeoLiftError::BadDesign {
            what: "--placebo-reps".into(),
            message: format!("{reps} replications cannot give a standard deviation: use at least 2 (200 is usual)"),
        });
    }
    if reps > MAX_REPS {
        return Err(GeoLiftError::BadDesign {
            what: "--placebo-reps".into(),
            message: format!(
                "{reps} replications would refit the estimator {reps} times; beyond {MAX_REPS} the standard error's Monte Carlo error (≈ 1/√(2R), 0.07 % at 10⁶) no longer improves in any way that matters: use at most {MAX_REPS}"
            ),
        });
    }
    Ok(())
}

fn rep_se(taus: &[f64]) -> f64 {
    let r = taus.len() as f64;
    let m = taus.iter().sum::<f64>() / r;
    let var = taus.iter().map(|t| (t - m).powi(2)).sum::<f64>() / (r - 1.0);
    ((r - 1.0) / r).sqrt() * var.sqrt()
}

/// synthdid `placebo_se` for the synthdid family: as [`placebo_se`], with ζ and the stopping rule
/// fixed from the original fit and the weights initialised from it (ω restricted to the placebo
/// controls and renormalised).
pub fn sdid_placebo_se(sdid: &Sdid, data: &LiftData, reps: usize, seed: u64) -> Result<f64, GeoLiftError> {
    check_reps(reps)?;
    let (fit, y) = sdid.fit(data)?;
    let n0 = data.controls.len();
    let n1 = data.treated.len();
    if n0 <= n1 {
        return Err(est_err(
            "placebo",
            format!("placebo standard errors need more controls ({n0}) than treated geos ({n1})"),
        ));
    }
    let t0 = data.t0;
    let taus: Vec<f64> = (0..reps)
        .into_par_iter()
        .map(|r| {
            let mut ind: Vec<usize> = (0..n0).collect();
            ind.shuffle(&mut rng(seed, 2, r as u64));
            let yb = y.select(ndarray::Axis(0), &ind);
            let n0b = n0 - n1;
            let om: Vec<f64> = sum_normalize(&ind[..n0b].iter().map(|&i| fit.omega[i]).collect::<Vec<_>>());
            sdid.fit_raw(yb.view(), n0b, t0, &fit.opts, Some((&om, &fit.lambda))).tau
        })
        .collect();
    Ok(rep_se(&taus))
}

/// synthdid `jackknife_se` (Arkhangelsky et al. 2021, Algorithm 3): leave one geo out at a time with
/// the unit weights restricted and renormalised and the time weights kept fixed;
/// se = √((n−1)/n · Σ(τ̂₍ᵢ₎ − τ̄)²). Undefined with a single treated geo (synthdid returns NA).
pub fn sdid_jackknife_se(sdid: &Sdid, data: &LiftData) -> Result<f64, GeoLiftError> {
    let (fit, y) = sdid.fit(data)?;
    let n0 = data.controls.len();
    let n = y.nrows();
    if n - n0 < 2 {
        return Err(est_err(
            "jackknife",
            "the jackknife needs at least 2 treated geos (leaving out the only treated geo leaves nothing to estimate); use placebo standard errors",
        ));
    }
    let t0 = data.t0;
    let taus: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| {
            let keep: Vec<usize> = (0..n).filter(|&r| r != i).collect();
            let yb = y.select(ndarray::Axis(0), &keep);
            let n0b = if i < n0 { n0 - 1 } else { n0 };
            let om = sum_normalize(&(0..n0).filter(|&r| r != i).map(|r| fit.omega[r]).collect::<Vec<_>>());
            let lam = if sdid.kind == SdidKind::Did { vec![1.0 / t0 as f64; t0] } else { fit.lambda.clone() };
            tau_with_weights(yb.view(), n0b, t0, &om, &lam)
        })
        .collect();
    let nf = n as f64;
    let m = taus.iter().sum::<f64>() / nf;
    Ok(((nf - 1.0) / nf * taus.iter().map(|t| (t - m).powi(2)).sum::<f64>()).sqrt())
}

/// Writes a standard error with its normal-approximation CI and p-value into `est`
/// (synthdid's convention: τ̂ ± z_{1−α/2}·se).
pub fn apply_se(est: &mut LiftEstimate, se: f64, alpha: f64, method: &str) {
    let z = normal_quantile(1.0 - alpha / 2.0);
    est.se = Some(se);
    est.alpha = alpha;
    est.ci_lower = Some(est.att - z * se);
    est.ci_upper = Some(est.att + z * se);
    est.p_value = Some(2.0 * (1.0 - normal_cdf((est.att / se).abs())));
    est.inference = Some(method.into());
}

// ---- per-period conformal intervals --------------------------------------------------------------

/// The outcome model refitted under each per-period null by [`PeriodConformal`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PeriodModel {
    /// Synthetic control ([`crate::SyntheticControl`]).
    Sc,
    /// Ridge-augmented synthetic control ([`crate::Ascm`]) with its penalty held at `lambda`, the
    /// original fit's (augsynth keeps the cross-validated λ in `extra_args` for its refits).
    Ascm { lambda: f64 },
}

impl PeriodModel {
    fn name(self) -> &'static str {
        match self {
            PeriodModel::Sc => "sc",
            PeriodModel::Ascm { .. } => "ascm",
        }
    }
}

/// Per-period conformal intervals for the effect in each test period (Chernozhukov, Wüthrich & Zhu
/// 2021, JASA 116(536), §2–3; augsynth's `conformal_inf`, which `summary(augsynth)` prints as each
/// period's `lower_bound`, `upper_bound` and `p_val`):
///
/// For test period t and a hypothesised effect τ (the sharp null H₀: effect_t = τ):
/// 1. keep the pre-period and period t only (m = T₀ + 1 periods; the other test periods are left
///    out), subtract τ from the treated average in period t;
/// 2. refit the estimator on all m periods (demeaning over them when demeaning; ASCM with λ fixed)
///    and take the residuals u_s = x₁ₛ − τ·1{s = t} − ŷₛ, s = 1..m;
/// 3. p_t(τ) = #{s : |u_s| ≥ |u_t|} / m: the share of the m! permutations of the residuals whose
///    last entry is at least as large in absolute value, i.e. augsynth's iid-permutation p-value
///    with statistic |u_t| computed exactly rather than from `ns` random permutations (which
///    converge to it);
/// 4. the 1 − α interval is {τ : p_t(τ) ≥ α}, found on a grid of `grid_size` points over
///    effect_t ± 2·√(mean of the squared test-window effects) (augsynth's grid), widened until both
///    ends are rejected, with both boundaries refined by bisection; the interval is the hull of the
///    accepted grid points. `p_value` is p_t(0).
///
/// Validity: the refit treats the m periods symmetrically, so when the periods' data are
/// exchangeable under H₀ the residuals are too and P(p_t(τ) < α) = (⌈αm⌉ − 1)/m ≤ α, exactly;
/// otherwise the coverage is approximate (CWZ Theorem 1: under a consistent estimator). No interval
/// rejects anything when m·α ≤ 1 (p_t ≥ 1/m always): then there is no band.
///
/// Cost: the donor side of each period's problem is fixed; only the treated series moves with τ,
/// linearly. The Gram matrix G = AAᵀ (and for ASCM the ridge operator (K + λI)⁻¹X_c) is formed once
/// per period and each τ costs one warm-started active-set solve of the simplex problem
/// ([`crate::simplex::simplex_gram`]) and a few matrix–vector products.
#[derive(Debug, Clone, Copy)]
pub struct PeriodConformal {
    pub alpha: f64,
    pub grid_size: usize,
    pub demean: bool,
    pub model: PeriodModel,
}

impl PeriodConformal {
    /// Default grid: 20 points (augsynth uses 50 without refinement; the bisection makes up for it).
    pub fn new(model: PeriodModel, alpha: f64, demean: bool) -> Self {
        Self { alpha, grid_size: 20, demean, model }
    }
}

/// One test period's interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PeriodInterval {
    /// Index of the period in the panel (t ≥ T₀).
    pub period: usize,
    /// The estimate's effect in the period (observed − counterfactual).
    pub effect: f64,
    pub lower: f64,
    pub upper: f64,
    /// p_t(0): the period's p-value for no effect.
    pub p_value: f64,
    /// The search hit its limit with an end still accepted: the bound is the grid's end, not a
    /// rejection boundary.
    pub open: bool,
}

/// The ridge part of an ASCM refit: X_c (controls × m, demeaned then centred per period), the
/// control mean per period, and R = (X_c X_cᵀ + λI)⁻¹ X_c, so that the ridge correction is R·d.
struct RidgePart {
    xc: Array2<f64>,
    cm: Vec<f64>,
    r: Array2<f64>,
}

/// The problem of one test period: the donors on the pre-period and the period (demeaned), the
/// treated series at τ = 0 and its derivative in τ, and the Gram form of the SC problem.
struct PeriodRefit {
    a: Array2<f64>,
    b0: Vec<f64>,
    db: Vec<f64>,
    g: Array2<f64>,
    c0: Vec<f64>,
    dc: Vec<f64>,
    ridge: Option<RidgePart>,
}

impl PeriodRefit {
    /// The panel of pre-periods `0..t0` and period `t` of `x1` (treated average) and `x0` (donors).
    fn new(
        x1: &[f64],
        x0: &Array2<f64>,
        t0: usize,
        t: usize,
        demean: bool,
        model: PeriodModel,
    ) -> Result<Self, GeoLiftError> {
        let cols: Vec<usize> = (0..t0).chain(std::iter::once(t)).collect();
        let m = cols.len();
        let n0 = x0.nrows();
        let mean = |v: &mut dyn Iterator<Item = f64>| if demean { v.sum::<f64>() / m as f64 } else { 0.0 };
        let m1 = mean(&mut cols.iter().map(|&s| x1[s]));
        let a = Array2::from_shape_fn((n0, m), |(j, k)| x0[[j, cols[k]]]);
        let a = {
            let mut a = a;
            for mut row in a.rows_mut() {
                let mj = mean(&mut row.iter().copied());
                row.iter_mut().for_each(|v| *v -= mj);
            }
            a
        };
        let b0: Vec<f64> = cols.iter().map(|&s| x1[s] - m1).collect();
        // subtracting τ in the last period moves the demeaned series by −τ(e_last − 1/m)
        let db: Vec<f64> = (0..m)
            .map(|k| {
                let last = if k + 1 == m { 1.0 } else { 0.0 };
                -(last - if demean { 1.0 / m as f64 } else { 0.0 })
            })
            .collect();
        let g = a.dot(&a.t());
        let c0: Vec<f64> = (0..n0).map(|j| (0..m).map(|k| a[[j, k]] * b0[k]).sum()).collect();
        let dc: Vec<f64> = (0..n0).map(|j| (0..m).map(|k| a[[j, k]] * db[k]).sum()).collect();
        let ridge = match model {
            PeriodModel::Sc => None,
            PeriodModel::Ascm { lambda } => {
                let cm: Vec<f64> = (0..m).map(|k| a.column(k).sum() / n0 as f64).collect();
                let xc = Array2::from_shape_fn((n0, m), |(j, k)| a[[j, k]] - cm[k]);
                let kk = xc.dot(&xc.t());
                let mut r = Array2::zeros((n0, m));
                for k in 0..m {
                    let mut mat: Vec<f64> = (0..n0 * n0)
                        .map(|i| kk[[i / n0, i % n0]] + if i / n0 == i % n0 { lambda } else { 0.0 })
                        .collect();
                    let mut rhs: Vec<f64> = xc.column(k).to_vec();
                    let sol = crate::simplex::lu_solve(&mut mat, &mut rhs, n0)
                        .ok_or_else(|| est_err("ascm", "the ridge system of a per-period refit is singular"))?;
                    r.column_mut(k).assign(&ndarray::Array1::from(sol));
                }
                Some(RidgePart { xc, cm, r })
            }
        };
        Ok(Self { a, b0, db, g, c0, dc, ridge })
    }

    /// Residuals of the refit under H₀: effect = τ; `warm` carries the SC weights from one τ to the next.
    fn residuals(&self, tau: f64, warm: &mut Option<Vec<f64>>) -> Vec<f64> {
        let (n0, m) = self.a.dim();
        let b: Vec<f64> = (0..m).map(|k| self.b0[k] + tau * self.db[k]).collect();
        let c: Vec<f64> = (0..n0).map(|j| self.c0[j] + tau * self.dc[j]).collect();
        let sc = crate::simplex::simplex_gram(&self.g, &c, warm.as_deref()).weights;
        let mut w = sc.clone();
        *warm = Some(sc);
        if let Some(rp) = &self.ridge {
            let d: Vec<f64> =
                (0..m).map(|k| b[k] - rp.cm[k] - (0..n0).map(|j| rp.xc[[j, k]] * w[j]).sum::<f64>()).collect();
            for (j, wj) in w.iter_mut().enumerate() {
                *wj += (0..m).map(|k| rp.r[[j, k]] * d[k]).sum::<f64>();
            }
        }
        (0..m).map(|k| b[k] - (0..n0).map(|j| w[j] * self.a[[j, k]]).sum::<f64>()).collect()
    }

    /// p(τ): the exact iid-permutation p-value of the last period's |residual|.
    fn pval(&self, tau: f64, warm: &mut Option<Vec<f64>>) -> f64 {
        let u = self.residuals(tau, warm);
        let m = u.len();
        let last = u[m - 1].abs();
        // ties up to rounding count as ties (a permutation that swaps equal residuals)
        let tol = 1e-10 * u.iter().map(|v| v.abs()).sum::<f64>();
        u.iter().filter(|v| v.abs() >= last - tol).count() as f64 / m as f64
    }
}

impl PeriodConformal {
    /// The interval of every test period of `data`, around the per-period effects of `est` (the
    /// estimate of the same estimator, with its path). `Ok(None)` when the pre-period is too short
    /// for any rejection at this α (m·α ≤ 1, see the type's docs).
    pub fn run(&self, data: &LiftData, est: &LiftEstimate) -> Result<Option<Vec<PeriodInterval>>, GeoLiftError> {
        let name = self.model.name();
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(est_err(name, format!("per-period intervals need 0 < α < 1, got {}", self.alpha)));
        }
        data.require_pre(name, 2)?;
        data.require_complete(name)?;
        let t0 = data.t0;
        let tt = data.n_periods();
        if ((t0 + 1) as f64) * self.alpha <= 1.0 {
            return Ok(None);
        }
        if est.path.len() != tt {
            return Err(est_err(name, "the estimate's path does not cover the panel's periods"));
        }
        let x1 = data.treated_mean();
        let x0 = data.control_matrix();
        let effects: Vec<f64> = est.path.iter().map(|p| p.observed - p.counterfactual).collect();
        let post_sd = (effects[t0..].iter().map(|v| v * v).sum::<f64>() / (tt - t0) as f64).sqrt();
        let scale = x1.iter().map(|v| v.abs()).fold(0.0, f64::max).max(1e-300);
        let half0 = if post_sd > 0.0 { 2.0 * post_sd } else { 1e-3 * scale };
        let g = self.grid_size.max(3);
        let out: Vec<PeriodInterval> = (t0..tt)
            .into_par_iter()
            .map(|t| -> Result<PeriodInterval, GeoLiftError> {
                let refit = PeriodRefit::new(&x1, &x0, t0, t, self.demean, self.model)?;
                let mut warm = None;
                let mut p = |tau: f64| refit.pval(tau, &mut warm);
                let centre = effects[t];
                let mut half = half0;
                let mut grid: Vec<(f64, f64)>;
                let mut tries = 0;
                loop {
                    grid = (0..g)
                        .map(|i| {
                            let h = centre - half + 2.0 * half * i as f64 / (g - 1) as f64;
                            (h, p(h))
                        })
                        .collect();
                    tries += 1;
                    let ends_rejected = grid[0].1 < self.alpha && grid[g - 1].1 < self.alpha;
                    let accepted = grid.iter().any(|x| x.1 >= self.alpha);
                    if (ends_rejected && accepted) || tries >= 12 {
                        break;
                    }
                    // nothing accepted: the accepted set lies between grid points; else an end is accepted
                    half *= if accepted { 2.0 } else { 0.5 };
                }
                let acc: Vec<usize> = (0..g).filter(|&i| grid[i].1 >= self.alpha).collect();
                let p0 = p(0.0);
                let (lower, upper, open) = match (acc.first(), acc.last()) {
                    (Some(&lo), Some(&hi)) => {
                        let tol = 1e-7 * half;
                        let mut refine = |mut inside: f64, mut outside: f64| {
                            while (inside - outside).abs() > tol {
                                let mid = 0.5 * (inside + outside);
                                if p(mid) >= self.alpha {
                                    inside = mid;
                                } else {
                                    outside = mid;
                                }
                            }
                            inside
                        };
                        let lower = if lo > 0 { refine(grid[lo].0, grid[lo - 1].0) } else { grid[lo].0 };
                        let upper = if hi + 1 < g { refine(grid[hi].0, grid[hi + 1].0) } else { grid[hi].0 };
                        (lower, upper, lo == 0 || hi + 1 == g)
                    }
                    // no τ accepted anywhere searched: an empty confidence set, shown as the estimate
                    _ => (f64::NAN, f64::NAN, false),
                };
                Ok(PeriodInterval { period: t, effect: centre, lower, upper, p_value: p0, open })
            })
            .collect::<Result<_, _>>()?;
        Ok(Some(out))
    }

    /// Runs and writes each test period's interval and p-value into `est.path`, and says so in
    /// `est.period_band` (or, without a band, in a note).
    pub fn apply(&self, data: &LiftData, est: &mut LiftEstimate) -> Result<(), GeoLiftError> {
        let level = 100.0 * (1.0 - self.alpha);
        match self.run(data, est)? {
            None => est.notes.push(format!(
                "no per-period band: with {} pre-periods no single period can be rejected at α = {} (needs T₀ + 1 > 1/α)",
                data.t0, self.alpha
            )),
            Some(iv) => {
                let mut open = Vec::new();
                let mut empty = Vec::new();
                for i in &iv {
                    let pt = &mut est.path[i.period];
                    if i.lower.is_finite() && i.upper.is_finite() {
                        pt.effect_lower = Some(i.lower);
                        pt.effect_upper = Some(i.upper);
                    } else {
                        empty.push(pt.time.clone());
                    }
                    pt.effect_p_value = Some(i.p_value);
                    if i.open {
                        open.push(pt.time.clone());
                    }
                }
                est.period_band = Some(format!(
                    "{level:.0} % conformal interval per test period (Chernozhukov, Wüthrich & Zhu 2021; augsynth's per-period inference): H₀ effect = τ in one period, refit on the pre-period and that period{}, exact permutation p-value of its residual",
                    match self.model {
                        PeriodModel::Sc => String::new(),
                        PeriodModel::Ascm { lambda } => format!(" with λ fixed at {lambda:.6e}"),
                    }
                ));
                if !open.is_empty() {
                    est.notes.push(format!(
                        "per-period interval reached the search limit (a bound is the grid's end) in: {}",
                        open.join(", ")
                    ));
                }
                if !empty.is_empty() {
                    est.notes.push(format!(
                        "per-period confidence set empty on the searched grid in: {} (no interval written)",
                        empty.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ascm, SyntheticControl};
    use rand_distr::{Distribution, StandardNormal};

    /// A panel whose periods are iid (exchangeable): two iid N(0, 1) factors f_t, donors
    /// x_jt = μ_j + λ_jᵀ f_t + σ ε_jt, the treated geo (row 0) a convex combination ω of the donors'
    /// means and loadings plus its own noise, and `effect` added in every test period.
    fn iid_panel(seed: u64, n0: usize, t0: usize, post: usize, effect: f64) -> LiftData {
        let mut r = rng(seed, 7, 0);
        let mut z = || -> f64 { StandardNormal.sample(&mut r) };
        let tt = t0 + post;
        let mu: Vec<f64> = (0..n0).map(|_| 100.0 + 10.0 * z()).collect();
        let lam: Vec<[f64; 2]> = (0..n0).map(|_| [5.0 + z(), z()]).collect();
        let raw: Vec<f64> = (0..n0).map(|_| z().abs() + 0.1).collect();
        let omega: Vec<f64> = raw.iter().map(|v| v / raw.iter().sum::<f64>()).collect();
        let f: Vec<[f64; 2]> = (0..tt).map(|_| [z(), z()]).collect();
        let mut y = Array2::zeros((n0 + 1, tt));
        for t in 0..tt {
            let mut treated = 0.0;
            for j in 0..n0 {
                let signal = mu[j] + lam[j][0] * f[t][0] + lam[j][1] * f[t][1];
                y[[j + 1, t]] = signal + z();
                treated += omega[j] * signal;
            }
            y[[0, t]] = treated + z() + if t >= t0 { effect } else { 0.0 };
        }
        LiftData::from_matrix(y, vec![0], t0).unwrap()
    }

    #[test]
    fn the_per_period_refit_equals_refitting_sc_and_ascm_on_the_period_panel() {
        let d = iid_panel(3, 6, 15, 4, 2.0);
        let (x1, x0) = (d.treated_mean(), d.control_matrix());
        let (t0, t, tau) = (d.t0, d.t0 + 2, 1.7);
        // the panel of the pre-period and period t, with τ taken off the treated series in period t
        let cols: Vec<usize> = (0..t0).chain([t]).collect();
        let m = cols.len();
        let mut adj: Vec<f64> = cols.iter().map(|&s| x1[s]).collect();
        adj[m - 1] -= tau;
        let x0m = x0.select(ndarray::Axis(1), &cols);
        for demean in [true, false] {
            let sc = fit_sc(&adj, x0m.view(), m, demean, None);
            let want: Vec<f64> = (0..m).map(|s| adj[s] - sc.counterfactual[s]).collect();
            let got = PeriodRefit::new(&x1, &x0, t0, t, demean, PeriodModel::Sc).unwrap().residuals(tau, &mut None);
            for s in 0..m {
                assert!((got[s] - want[s]).abs() < 1e-9, "sc demean={demean} s={s}: {} vs {}", got[s], want[s]);
            }
            // ASCM on the period panel: all m periods as its pre-period (one dummy test period after)
            let lambda = 0.7;
            let mut y = Array2::zeros((x0.nrows() + 1, m + 1));
            for s in 0..m {
                y[[0, s]] = adj[s];
                for j in 0..x0.nrows() {
                    y[[j + 1, s]] = x0m[[j, s]];
                }
            }
            let pd = LiftData::from_matrix(y, vec![0], m).unwrap();
            let fit = Ascm { demean, lambda: Some(lambda) }.fit(&pd).unwrap();
            let want: Vec<f64> = (0..m).map(|s| adj[s] - fit.counterfactual[s]).collect();
            let got = PeriodRefit::new(&x1, &x0, t0, t, demean, PeriodModel::Ascm { lambda })
                .unwrap()
                .residuals(tau, &mut None);
            for s in 0..m {
                assert!((got[s] - want[s]).abs() < 1e-8, "ascm demean={demean} s={s}: {} vs {}", got[s], want[s]);
            }
        }
    }

    /// Coverage of the true constant effect by the per-period 90 % intervals over `seeds` panels of
    /// `post` test periods each: (share covered, share with p(τ) ≥ α).
    fn coverage(model: fn(&LiftData) -> (LiftEstimate, PeriodModel), seeds: u64, post: usize) -> (f64, f64, usize) {
        let (t0, effect, alpha) = (40, 3.0, 0.1);
        let per_seed: Vec<(usize, usize)> = (0..seeds)
            .into_par_iter()
            .map(|seed| {
                let d = iid_panel(1000 + seed, 8, t0, post, effect);
                let (est, m) = model(&d);
                let pc = PeriodConformal::new(m, alpha, true);
                let iv = pc.run(&d, &est).unwrap().unwrap();
                let covered = iv.iter().filter(|i| i.lower <= effect && effect <= i.upper).count();
                let accepted = iv
                    .iter()
                    .filter(|i| {
                        let r =
                            PeriodRefit::new(&d.treated_mean(), &d.control_matrix(), t0, i.period, true, m).unwrap();
                        r.pval(effect, &mut None) >= alpha
                    })
                    .count();
                (covered, accepted)
            })
            .collect();
        let n = (seeds as usize * post) as f64;
        let cov = per_seed.iter().map(|p| p.0).sum::<usize>() as f64 / n;
        let acc = per_seed.iter().map(|p| p.1).sum::<usize>() as f64 / n;
        (cov, acc, per_seed.len())
    }

    /// The exact coverage of the permutation test with m = T₀ + 1 = 41 exchangeable periods at
    /// α = 0.1: p(τ) = R/m with R uniform on 1..m, accepted when R ≥ αm = 4.1, so 37/41 = 0.9024.
    const EXACT_90: f64 = 37.0 / 41.0;

    /// The Monte Carlo tolerance: the pooled share over S seeds × P periods is a mean of S independent
    /// per-seed shares, each with variance ≤ c(1 − c) (periods of one panel share its pre-period, so
    /// they are correlated; the bound holds for any correlation), so its standard error is at most
    /// √(c(1 − c)/S), the binomial error of S draws. Four of them: a false failure ≈ 6e-5.
    fn tolerance(seeds: usize) -> f64 {
        4.0 * (EXACT_90 * (1.0 - EXACT_90) / seeds as f64).sqrt()
    }

    /// A coverage run `(coverage, test acceptance, seeds)` of 6 periods a seed against the exact
    /// rate, both within [`tolerance`]. The test itself (p(τ) ≥ α at the true τ) is exact; the
    /// interval is the hull of the accepted grid, so it covers about as often (a hole inside the
    /// hull covers too, an accepted island the grid missed does not).
    fn assert_exact_coverage(label: &str, (cov, acc, s): (f64, f64, usize)) {
        let tol = tolerance(s);
        eprintln!(
            "{label}: coverage {cov:.4}, test acceptance {acc:.4}, exact {EXACT_90:.4} ± {tol:.4} ({s} seeds × 6 periods)"
        );
        assert!((acc - EXACT_90).abs() <= tol, "{label}: test acceptance {acc} vs exact {EXACT_90} ± {tol}");
        assert!((cov - EXACT_90).abs() <= tol, "{label}: coverage {cov} vs {EXACT_90} ± {tol} (acc {acc})");
    }

    #[test]
    fn sc_per_period_intervals_cover_a_constant_effect_at_the_exact_nominal_rate() {
        let run = coverage(|d| (SyntheticControl { demean: true }.estimate(d).unwrap(), PeriodModel::Sc), 1500, 6);
        assert_exact_coverage("sc", run);
    }

    #[test]
    fn ascm_per_period_intervals_cover_a_constant_effect_at_the_exact_nominal_rate() {
        let run = coverage(
            |d| (Ascm { demean: true, lambda: Some(5.0) }.estimate(d).unwrap(), PeriodModel::Ascm { lambda: 5.0 }),
            1000,
            6,
        );
        assert_exact_coverage("ascm", run);
    }

    #[test]
    fn a_large_effect_excludes_zero_and_a_short_pre_period_has_no_band() {
        let d = iid_panel(11, 8, 30, 5, 40.0);
        let mut est = SyntheticControl { demean: true }.estimate(&d).unwrap();
        PeriodConformal::new(PeriodModel::Sc, 0.1, true).apply(&d, &mut est).unwrap();
        assert!(est.period_band.as_deref().unwrap().contains("conformal"));
        for p in &est.path {
            if p.post {
                let (lo, hi) = (p.effect_lower.unwrap(), p.effect_upper.unwrap());
                let effect = p.observed - p.counterfactual;
                assert!(lo > 0.0 && lo <= effect && effect <= hi, "{}: [{lo}, {hi}] around {effect}", p.time);
                // zero is as extreme as it gets: only the period's own residual reaches it
                assert_eq!(p.effect_p_value, Some(1.0 / 31.0));
            } else {
                assert!(p.effect_lower.is_none() && p.effect_p_value.is_none());
            }
        }
        // m = 9 periods at α = 0.1: p ≥ 1/9 > α for every τ, nothing can be rejected
        let d = iid_panel(11, 8, 8, 3, 1.0);
        let mut est = SyntheticControl { demean: true }.estimate(&d).unwrap();
        PeriodConformal::new(PeriodModel::Sc, 0.1, true).apply(&d, &mut est).unwrap();
        assert!(est.period_band.is_none() && est.path.iter().all(|p| p.effect_lower.is_none()));
        assert!(est.notes.iter().any(|n| n.contains("no per-period band")), "{:?}", est.notes);
    }

    /// The cost on a GeoLift-sized panel (40 geos, 120 days, 15 test days): `cargo test -p
    /// mmloop-geolift --lib per_period_band_time -- --ignored --nocapture`.
    #[test]
    #[ignore = "a timing, not a check"]
    fn per_period_band_time_on_a_40_geo_panel() {
        let w = crate::simulate::World::new(crate::simulate::PanelSpec::default(), 5);
        let d = LiftData::from_matrix(w.draw(0), vec![0, 1], 105).unwrap();
        for (name, est, m) in [("sc", SyntheticControl::default().estimate(&d).unwrap(), PeriodModel::Sc), {
            let f = Ascm::default().fit(&d).unwrap();
            ("ascm", Ascm::default().estimate(&d).unwrap(), PeriodModel::Ascm { lambda: f.lambda })
        }] {
            let start = std::time::Instant::now();
            let iv = PeriodConformal::new(m, 0.1, true).run(&d, &est).unwrap().unwrap();
            let dt = start.elapsed();
            println!(
                "{name}: {} periods × (40 geos, 105 pre-periods) in {:.1} ms on {} threads; first [{:.1}, {:.1}]",
                iv.len(),
                dt.as_secs_f64() * 1e3,
                rayon::current_num_threads(),
                iv[0].lower,
                iv[0].upper
            );
        }
    }
}
