//! Time-based regression.

use crate::error::{GeoLiftError, est_err};
use crate::panel::LiftData;
use crate::result::{LiftEstimate, LiftEstimator};
use crate::stats::t_quantile;

/// Time-based regression (Kerman, Wang & Vaver 2017, "Estimating ad effectiveness using geo
/// experiments in a time-based regression framework", Google):
///
/// ```text
/// y_t = α + β x_t + ε_t,  ε_t ~ N(0, σ²),  fitted by OLS on the pre-period
/// ```
///
/// with y_t the total KPI of the treated geos and x_t that of the control geos. Counterfactual
/// ŷ_t = α̂ + β̂ x_t in the test window; cumulative effect Δ = Σ_post (y_t − ŷ_t) with predictive
/// variance (n = test length, T₀ pre periods, S_xx = Σ_pre (x_t − x̄_pre)²)
///
/// ```text
/// Var(Δ) = σ̂² [ n + n² (1/T₀ + (x̄_post − x̄_pre)² / S_xx) ]
/// ```
///
/// and a Student-t interval with T₀ − 2 degrees of freedom (the paper's posterior under a flat prior).
/// Reported per treated geo and period as `att = Δ / (n · N_tr)` with `se = √Var(Δ) / (n · N_tr)`;
/// with a spend change S, iROAS = Δ / S and its interval is the effect interval divided by S.
///
/// # Gaps
/// TBR only needs the two group totals per period, so it accepts a panel with missing (time, geo)
/// cells ([`crate::Panel::read_allow_gaps`]). A group's total in period t is estimated from the geos
/// present, scaled by their usual share of the group (a ratio estimator):
///
/// ```text
/// Ŝ_t = Σ_{g∈A_t} y_gt · Σ_{g∈G} m_g / Σ_{g∈A_t} m_g
/// ```
///
/// with A_t the group's geos present at t and m_g geo g's mean over the pre-period periods where the
/// whole group is present (so every m_g is taken over the same periods; over the geo's own
/// pre-period cells if no period is complete). It
/// assumes a missing geo would have moved like the present geos of its group; summing only what is
/// present (treating a gap as zero) would instead read every gap as a drop in the KPI. It refuses when
/// a geo has no pre-period cell or a group has no geo in some period. The estimate's notes say how
/// many cells were missing per group and the largest share of a group total that was imputed.
#[derive(Debug, Clone, Copy)]
pub struct Tbr {
    pub alpha: f64,
}

impl Default for Tbr {
    fn default() -> Self {
        Self { alpha: 0.1 }
    }
}

/// TBR fit details.
#[derive(Debug, Clone, Copy)]
pub struct TbrFit {
    pub intercept: f64,
    pub slope: f64,
    pub sigma: f64,
    pub cumulative: f64,
    pub cumulative_se: f64,
    pub df: f64,
}

/// How gaps were bridged in one group's totals (see [`Tbr`], "Gaps").
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct GroupGaps {
    /// Missing (time, geo) cells of the group's geos.
    pub missing: usize,
    /// Periods with at least one missing geo.
    pub periods: usize,
    /// Largest share of the group's total (by pre-period means) imputed in any one period.
    pub max_imputed_share: f64,
}

/// Treated totals, control totals (per period) and how gaps were bridged in each (treated, control).
pub type GroupTotals = (Vec<f64>, Vec<f64>, [GroupGaps; 2]);

/// Per-period totals of `geos` with gaps bridged by the ratio estimator described on [`Tbr`].
pub fn group_totals(data: &LiftData, geos: &[usize], group: &str) -> Result<(Vec<f64>, GroupGaps), GeoLiftError> {
    let tt = data.n_periods();
    let mut gaps = GroupGaps::default();
    if data.observed.is_none() {
        return Ok(((0..tt).map(|t| geos.iter().map(|&g| data.y[[g, t]]).sum()).collect(), gaps));
    }
    let complete: Vec<usize> = (0..data.t0).filter(|&t| geos.iter().all(|&g| data.is_observed(g, t))).collect();
    let mut m = Vec::with_capacity(geos.len());
    for &g in geos {
        let pre: Vec<f64> = if complete.is_empty() {
            (0..data.t0).filter(|&t| data.is_observed(g, t)).map(|t| data.y[[g, t]]).collect()
        } else {
            complete.iter().map(|&t| data.y[[g, t]]).collect()
        };
        if pre.is_empty() {
            return Err(est_err(
                "tbr",
                format!(
                    "{} geo {:?} has no pre-period row, so its share of the {group} total cannot be estimated: drop it or fill its rows",
                    group, data.geos[g]
                ),
            ));
        }
        m.push(pre.iter().sum::<f64>() / pre.len() as f64);
    }
    let m_all: f64 = m.iter().sum();
    let mut totals = Vec::with_capacity(tt);
    for t in 0..tt {
        let (mut sum, mut m_present, mut n_missing) = (0.0, 0.0, 0usize);
        for (i, &g) in geos.iter().enumerate() {
            if data.is_observed(g, t) {
                sum += data.y[[g, t]];
                m_present += m[i];
            } else {
                n_missing += 1;
            }
        }
        if n_missing == 0 {
            totals.push(sum);
            continue;
        }
        if n_missing == geos.len() || m_present <= 0.0 || m_all <= 0.0 {
            return Err(est_err(
                "tbr",
                format!(
                    "the {group} group has {} of its {} geos missing at {} and the rest cannot stand in for them (their pre-period mean is not positive): drop that period or fill the gaps",
                    n_missing,
                    geos.len(),
                    data.time_labels[t]
                ),
            ));
        }
        gaps.missing += n_missing;
        gaps.periods += 1;
        gaps.max_imputed_share = gaps.max_imputed_share.max(1.0 - m_present / m_all);
        totals.push(sum * m_all / m_present);
    }
    Ok((totals, gaps))
}

impl Tbr {
    /// The treated and control totals per period and how gaps were bridged (treated, control).
    pub fn totals(&self, data: &LiftData) -> Result<GroupTotals, GeoLiftError> {
        let (y, gy) = group_totals(data, &data.treated, "treated")?;
        let (x, gx) = group_totals(data, &data.controls, "control")?;
        Ok((y, x, [gy, gx]))
    }

    pub fn fit(&self, data: &LiftData) -> Result<(TbrFit, Vec<f64>, Vec<f64>), GeoLiftError> {
        data.require_pre("tbr", 3)?;
        let t0 = data.t0;
        let tt = data.n_periods();
        let (y, x, _) = self.totals(data)?;
        let xm = x[..t0].iter().sum::<f64>() / t0 as f64;
        let ym = y[..t0].iter().sum::<f64>() / t0 as f64;
        let sxx: f64 = x[..t0].iter().map(|v| (v - xm).powi(2)).sum();
        if sxx <= 0.0 {
            return Err(est_err(
                "tbr",
                "the control total is constant over the pre-period; the regression is undefined",
            ));
        }
        let sxy: f64 = (0..t0).map(|t| (x[t] - xm) * (y[t] - ym)).sum();
        let slope = sxy / sxx;
        let intercept = ym - slope * xm;
        let df = t0 as f64 - 2.0;
        let sigma = ((0..t0).map(|t| (y[t] - intercept - slope * x[t]).powi(2)).sum::<f64>() / df).sqrt();
        let n = (tt - t0) as f64;
        let xpost = x[t0..].iter().sum::<f64>() / n;
        let cf: Vec<f64> = x.iter().map(|v| intercept + slope * v).collect();
        let cumulative: f64 = (t0..tt).map(|t| y[t] - cf[t]).sum();
        let var = sigma * sigma * (n + n * n * (1.0 / t0 as f64 + (xpost - xm).powi(2) / sxx));
        Ok((TbrFit { intercept, slope, sigma, cumulative, cumulative_se: var.sqrt(), df }, y, cf))
    }
}

impl LiftEstimator for Tbr {
    fn name(&self) -> &'static str {
        "tbr"
    }
    fn estimate(&self, data: &LiftData) -> Result<LiftEstimate, GeoLiftError> {
        let (f, y, cf) = self.fit(data)?;
        let k = data.treated.len() as f64;
        let obs: Vec<f64> = y.iter().map(|v| v / k).collect();
        let cfm: Vec<f64> = cf.iter().map(|v| v / k).collect();
        let mut e = LiftEstimate::from_paths(self.name(), data, &obs, &cfm);
        let scale = (data.n_post() as f64) * k;
        e.att = f.cumulative / scale;
        e.incremental = f.cumulative;
        let se = f.cumulative_se / scale;
        let q = t_quantile(1.0 - self.alpha / 2.0, f.df);
        e.se = Some(se);
        e.alpha = self.alpha;
        e.ci_lower = Some(e.att - q * se);
        e.ci_upper = Some(e.att + q * se);
        e.p_value = Some(2.0 * (1.0 - crate::stats::t_cdf((e.att / se).abs(), f.df)));
        e.inference = Some(format!("TBR predictive variance, t({})", f.df));
        e.notes.push(format!(
            "pre-period regression: treated = {:.4} + {:.6} × control, σ = {:.4}",
            f.intercept, f.slope, f.sigma
        ));
        let (_, _, [gy, gx]) = self.totals(data)?;
        if gy.missing + gx.missing > 0 {
            e.notes.push(format!(
                "gaps: {} (time, geo) cells missing ({} treated, {} control, in {} and {} periods); each period's group total was scaled up from the geos present by their pre-period share (at most {:.1} % of the treated and {:.1} % of the control total imputed in any period)",
                gy.missing + gx.missing,
                gy.missing,
                gx.missing,
                gy.periods,
                gx.periods,
                100.0 * gy.max_imputed_share,
                100.0 * gx.max_imputed_share
            ));
        }
        Ok(e)
    }
}

/// The moving-block bootstrap of a TBR estimate (Künsch 1989; residual resampling for regression
/// with serially correlated errors, as in Politis & Romano's block methods).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TbrBootstrap {
    /// Standard error of the cumulative effect Δ.
    pub cumulative_se: f64,
    /// Basic (pivotal) interval for Δ at the requested level.
    pub ci_lower: f64,
    pub ci_upper: f64,
    /// Two-sided p-value of Δ = 0: the share of replicates whose |error| reaches |Δ̂|.
    pub p_value: f64,
    pub block_len: usize,
    pub reps: usize,
}

impl Tbr {
    /// Block-bootstrap inference for the cumulative effect, for when the pre-period residuals are
    /// autocorrelated (daily data with weekly patterns), which the iid predictive variance ignores.
    ///
    /// The error of Δ̂ is Σ_post ε_t − Σ_post[(α̂ − α) + (β̂ − β) x_t]. Each replicate rebuilds the
    /// pre-period as ŷ_t + e*_t from moving blocks of the OLS residuals and refits (α*, β*); the
    /// test-window errors are one contiguous run of n residuals (blocks when n > T₀), so their
    /// sum keeps the serial correlation whole. Each replicate is one draw of that error. The interval
    /// is Δ̂ minus the error's quantiles; `block_len` defaults to ⌈T₀^{1/3}⌉. Replicate b uses its
    /// own generator seeded by `derive_seed(seed, 7, b)`: identical for any thread count.
    ///
    /// Like every block method it estimates a long-run variance from one pre-period, and OLS
    /// residuals sum to zero there, so with strong autocorrelation and a short pre-period it still
    /// under-covers (measured: 0.76 for nominal 0.90 at ρ = 0.7, T₀ = 100, n = 20 — the iid
    /// interval gives 0.53); it is near nominal for moderate ρ and longer pre-periods (tested).
    pub fn block_bootstrap(
        &self,
        data: &LiftData,
        reps: usize,
        block_len: Option<usize>,
        seed: u64,
    ) -> Result<TbrBootstrap, GeoLiftError> {
        use rand::{RngExt, SeedableRng};
        use rayon::prelude::*;
        let (f, y, cf) = self.fit(data)?;
        let t0 = data.t0;
        let tt = data.n_periods();
        let n = tt - t0;
        if reps < 20 {
            return Err(est_err("tbr", "the block bootstrap needs at least 20 replicates"));
        }
        let l = block_len.unwrap_or_else(|| (t0 as f64).cbrt().ceil() as usize).clamp(1, t0);
        let (_, x, _) = self.totals(data)?;
        let resid: Vec<f64> = (0..t0).map(|t| y[t] - cf[t]).collect();
        let starts = t0 - l + 1; // moving blocks e[s..s+l]
        let errors: Vec<f64> = (0..reps)
            .into_par_iter()
            .map(|b| {
                let mut rng =
                    rand::rngs::Xoshiro256PlusPlus::seed_from_u64(crate::inference::derive_seed(seed, 7, b as u64));
                let mut draw = |len: usize| -> Vec<f64> {
                    let mut v = Vec::with_capacity(len + l);
                    while v.len() < len {
                        let s = rng.random_range(0..starts);
                        v.extend_from_slice(&resid[s..s + l]);
                    }
                    v.truncate(len);
                    v
                };
                let e_pre = draw(t0);
                // the window's error is a sum of n consecutive errors: draw it as one contiguous run
                // of residuals so its autocorrelation is kept whole (blocks would cut it at joins)
                let e_post = if n <= t0 {
                    let s = rng.random_range(0..=t0 - n);
                    resid[s..s + n].to_vec()
                } else {
                    draw(n)
                };
                let ys: Vec<f64> = (0..t0).map(|t| cf[t] + e_pre[t]).collect();
                let xm = x[..t0].iter().sum::<f64>() / t0 as f64;
                let ym = ys.iter().sum::<f64>() / t0 as f64;
                let sxx: f64 = x[..t0].iter().map(|v| (v - xm).powi(2)).sum();
                let slope = (0..t0).map(|t| (x[t] - xm) * (ys[t] - ym)).sum::<f64>() / sxx;
                let intercept = ym - slope * xm;
                let refit: f64 = (t0..tt).map(|t| (intercept - f.intercept) + (slope - f.slope) * x[t]).sum();
                e_post.iter().sum::<f64>() - refit
            })
            .collect();
        let mean = errors.iter().sum::<f64>() / reps as f64;
        let se = (errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (reps - 1) as f64).sqrt();
        let mut sorted = errors.clone();
        sorted.sort_by(f64::total_cmp);
        let q = |p: f64| {
            let h = p * (reps - 1) as f64;
            let (i, w) = (h.floor() as usize, h - h.floor());
            sorted[i] + w * (sorted[(i + 1).min(reps - 1)] - sorted[i])
        };
        let p_value = (1 + errors.iter().filter(|e| e.abs() >= f.cumulative.abs()).count()) as f64 / (reps + 1) as f64;
        Ok(TbrBootstrap {
            cumulative_se: se,
            ci_lower: f.cumulative - q(1.0 - self.alpha / 2.0),
            ci_upper: f.cumulative - q(self.alpha / 2.0),
            p_value,
            block_len: l,
            reps,
        })
    }
}

#[cfg(test)]
mod bootstrap_tests {
    use super::*;
    use ndarray::Array2;
    use rand::{RngExt, SeedableRng};

    /// Panels with AR(1) errors on the treated total and no effect: 200 pre periods, 14 test periods.
    fn ar1_panel(seed: u64, rho: f64) -> LiftData {
        let (g, t, t0) = (6, 214, 200);
        let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut normal = || {
            // Box–Muller
            let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random::<f64>());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        };
        let common: Vec<f64> = (0..t).map(|k| 100.0 + 10.0 * (k as f64 * 0.3).sin()).collect();
        let mut y = Array2::zeros((g, t));
        let mut e = 0.0;
        for k in 0..t {
            e = rho * e + normal();
            y[[0, k]] = common[k] + 3.0 * e;
            for j in 1..g {
                y[[j, k]] = common[k] * (1.0 + 0.1 * j as f64) + normal();
            }
        }
        LiftData::from_matrix(y, vec![0], t0).unwrap()
    }

    #[test]
    fn block_bootstrap_is_reproducible_and_thread_count_free() {
        let d = ar1_panel(1, 0.5);
        let tbr = Tbr::default();
        let a = tbr.block_bootstrap(&d, 200, None, 42).unwrap();
        let b = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| tbr.block_bootstrap(&d, 200, None, 42).unwrap());
        assert_eq!(a, b);
        assert_eq!(a.block_len, 6); // ⌈200^{1/3}⌉
    }

    #[test]
    fn block_bootstrap_covers_near_nominal_under_autocorrelation() {
        // 90% intervals over 200 AR(1) panels (ρ = 0.5) with no effect. The binomial sd of a 0.9 coverage
        // over 200 panels is 0.021; the bootstrap is asymptotic, so allow 3 sd below nominal.
        let tbr = Tbr::default();
        let (mut boot_cover, mut iid_cover) = (0, 0);
        for s in 0..200 {
            let d = ar1_panel(1000 + s, 0.5);
            let bb = tbr.block_bootstrap(&d, 300, None, s).unwrap();
            if bb.ci_lower <= 0.0 && 0.0 <= bb.ci_upper {
                boot_cover += 1;
            }
            let e = tbr.estimate(&d).unwrap();
            if e.ci_lower.unwrap() <= 0.0 && 0.0 <= e.ci_upper.unwrap() {
                iid_cover += 1;
            }
        }
        let boot = boot_cover as f64 / 200.0;
        let iid = iid_cover as f64 / 200.0;
        eprintln!("coverage of 90% intervals under AR(1) errors: block bootstrap {boot}, iid predictive {iid}");
        assert!(boot >= 0.9 - 3.0 * 0.021, "block bootstrap coverage {boot}");
        assert!(boot > iid, "the block bootstrap should beat the iid interval under autocorrelation");
    }
}
