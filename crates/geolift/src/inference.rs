//! Inference: conformal (GeoLift's default), placebo in space, synthdid's placebo and jackknife
//! standard errors. Every random draw comes from its own generator seeded by
//! `derive_seed(master, stream, index)`, so results are identical for any thread count.

use crate::error::{GeoLiftError, check_memory, est_err};
use crate::panel::LiftData;
use crate::result::{LiftEstimate, LiftEstimator};
use crate::sc::fit_sc;
use crate::sdid::{Sdid, SdidKind, sum_normalize, tau_with_weights};
use crate::stats::{normal_cdf, normal_quantile};
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
