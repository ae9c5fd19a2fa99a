//! Difference-in-differences: the 2×2 estimator, two-way fixed effects with cluster-robust standard
//! errors (common or staggered adoption), and the event-study regression.

use crate::error::{GeoLiftError, est_err};
use crate::panel::LiftData;
use crate::result::{LiftEstimate, LiftEstimator};
use crate::simplex::lu_solve;
use crate::stats::{t_cdf, t_quantile};
use ndarray::{Array2, ArrayView2};

/// 2×2 difference in differences on group-period means:
///
/// ```text
/// τ̂ = (Ȳ_tr,post − Ȳ_tr,pre) − (Ȳ_co,post − Ȳ_co,pre)
/// ```
///
/// (means over geos and periods). It is synthdid's `did_estimate` (uniform unit and time weights;
/// Arkhangelsky et al. 2021, eq. 1 with ω = 1/N₀, λ = 1/T₀). Counterfactual per period:
/// Ȳ_co,t + (Ȳ_tr,pre − Ȳ_co,pre). Inference: [`crate::inference::placebo_se`] or [`Twfe`], whose
/// coefficient equals τ̂ on a balanced panel with common adoption.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiD;

impl LiftEstimator for DiD {
    fn name(&self) -> &'static str {
        "did"
    }
    fn estimate(&self, data: &LiftData) -> Result<LiftEstimate, GeoLiftError> {
        data.require_pre(self.name(), 1)?;
        data.require_complete(self.name())?;
        let x1 = data.treated_mean();
        let n0 = data.controls.len() as f64;
        let x0: Vec<f64> =
            (0..data.n_periods()).map(|t| data.controls.iter().map(|&g| data.y[[g, t]]).sum::<f64>() / n0).collect();
        let t0 = data.t0;
        let shift = (0..t0).map(|t| x1[t] - x0[t]).sum::<f64>() / t0 as f64;
        let cf: Vec<f64> = x0.iter().map(|v| v + shift).collect();
        let mut e = LiftEstimate::from_paths(self.name(), data, &x1, &cf);
        let w = 1.0 / n0;
        e.weights = data.control_names().into_iter().map(|g| (g, w)).collect();
        Ok(e)
    }
}

/// Two-way fixed effects regression `y_it = α_i + γ_t + τ D_it + ε_it` (unit and period effects),
/// with standard errors clustered by geo.
///
/// On a balanced panel the fixed effects are removed exactly by double demeaning
/// (x̃_it = x_it − x̄_i· − x̄_·t + x̄_··; Frisch–Waugh–Lovell), so τ̂ = Σ D̃ỹ / Σ D̃². The cluster-robust
/// variance (Liang & Zeger 1986; Arellano 1987) is
///
/// ```text
/// V = (Σ D̃²)⁻² Σ_g (Σ_t D̃_gt ê_gt)² · G/(G−1) · (n−1)/(n−K)
/// ```
///
/// with G geos, n = N·T observations and K = T regressors not nested in the clusters (τ and T−1
/// period effects; the unit effects are nested in the geo clusters), the convention of Stata's
/// `xtreg, fe vce(cluster)` and R's fixest. `D` may switch on at different times per geo (staggered
/// adoption in TWFE form, with the caveats of Goodman-Bacon 2021 when effects vary over time).
/// Confidence interval: τ̂ ± t_{G−1, 1−α/2}·se (normal quantile when G > 50).
#[derive(Debug, Clone, Copy, Default)]
pub struct Twfe;

/// A regression fit with cluster-robust covariance.
#[derive(Debug, Clone)]
pub struct ClusteredFit {
    pub coef: Vec<f64>,
    pub vcov: Array2<f64>,
    pub n_clusters: usize,
}

impl ClusteredFit {
    pub fn se(&self, k: usize) -> f64 {
        self.vcov[[k, k]].sqrt()
    }
}

/// Double-demeans a balanced N×T matrix (removes unit and period means).
fn two_way_demean(x: ArrayView2<f64>) -> Array2<f64> {
    let (n, t) = x.dim();
    let rm: Vec<f64> = (0..n).map(|i| x.row(i).sum() / t as f64).collect();
    let cm: Vec<f64> = (0..t).map(|s| x.column(s).sum() / n as f64).collect();
    let gm = rm.iter().sum::<f64>() / n as f64;
    Array2::from_shape_fn((n, t), |(i, s)| x[[i, s]] - rm[i] - cm[s] + gm)
}

/// OLS of `y` on regressors `xs` (each N×T) with unit and period fixed effects, clustered by unit.
pub fn twfe_regression(y: ArrayView2<f64>, xs: &[Array2<f64>]) -> Result<ClusteredFit, GeoLiftError> {
    let (n, t) = y.dim();
    let k = xs.len();
    let yt = two_way_demean(y);
    let xt: Vec<Array2<f64>> = xs.iter().map(|x| two_way_demean(x.view())).collect();
    let mut xx = vec![0.0; k * k];
    let mut xy = vec![0.0; k];
    for a in 0..k {
        for b in 0..k {
            xx[a * k + b] = (&xt[a] * &xt[b]).sum();
        }
        xy[a] = (&xt[a] * &yt).sum();
    }
    let inv = invert(&xx, k).ok_or_else(|| est_err("twfe", "the treatment regressors are collinear with the fixed effects (no variation left after removing geo and period means)"))?;
    let coef: Vec<f64> = (0..k).map(|a| (0..k).map(|b| inv[a * k + b] * xy[b]).sum()).collect();
    let resid =
        Array2::from_shape_fn((n, t), |(i, s)| yt[[i, s]] - (0..k).map(|a| coef[a] * xt[a][[i, s]]).sum::<f64>());
    // meat: Σ_g s_g s_gᵀ, s_g = Σ_t x̃_gt ê_gt
    let mut meat = vec![0.0; k * k];
    for i in 0..n {
        let s: Vec<f64> = (0..k).map(|a| (0..t).map(|u| xt[a][[i, u]] * resid[[i, u]]).sum()).collect();
        for a in 0..k {
            for b in 0..k {
                meat[a * k + b] += s[a] * s[b];
            }
        }
    }
    let nobs = (n * t) as f64;
    let kk = (t - 1 + k) as f64;
    let adj = n as f64 / (n as f64 - 1.0) * (nobs - 1.0) / (nobs - kk);
    let mut vcov = Array2::zeros((k, k));
    for a in 0..k {
        for b in 0..k {
            let mut v = 0.0;
            for c in 0..k {
                for d in 0..k {
                    v += inv[a * k + c] * meat[c * k + d] * inv[d * k + b];
                }
            }
            vcov[[a, b]] = v * adj;
        }
    }
    Ok(ClusteredFit { coef, vcov, n_clusters: n })
}

fn invert(a: &[f64], k: usize) -> Option<Vec<f64>> {
    let mut inv = vec![0.0; k * k];
    for c in 0..k {
        let mut m = a.to_vec();
        let mut e = vec![0.0; k];
        e[c] = 1.0;
        let x = lu_solve(&mut m, &mut e, k)?;
        for r in 0..k {
            inv[r * k + c] = x[r];
        }
    }
    Some(inv)
}

impl Twfe {
    /// TWFE on a designed panel (treated geos switch on at `t0`).
    pub fn fit(&self, data: &LiftData) -> Result<ClusteredFit, GeoLiftError> {
        data.require_pre(self.name(), 1)?;
        data.require_complete(self.name())?;
        let (y, d) = common_adoption(data);
        twfe_regression(y.view(), &[d])
    }

    /// TWFE with an arbitrary 0/1 treatment matrix (staggered adoption), geos × periods.
    pub fn fit_matrix(&self, y: ArrayView2<f64>, d: ArrayView2<f64>) -> Result<ClusteredFit, GeoLiftError> {
        twfe_regression(y, &[d.to_owned()])
    }
}

/// The design's rows (controls then treated) and its treatment indicator.
fn common_adoption(data: &LiftData) -> (Array2<f64>, Array2<f64>) {
    let rows: Vec<usize> = data.controls.iter().chain(data.treated.iter()).copied().collect();
    let y = data.y.select(ndarray::Axis(0), &rows);
    let n0 = data.controls.len();
    let d = Array2::from_shape_fn(y.dim(), |(i, t)| if i >= n0 && t >= data.t0 { 1.0 } else { 0.0 });
    (y, d)
}

impl LiftEstimator for Twfe {
    fn name(&self) -> &'static str {
        "twfe"
    }
    fn estimate(&self, data: &LiftData) -> Result<LiftEstimate, GeoLiftError> {
        let f = self.fit(data)?;
        let mut e = DiD.estimate(data)?;
        e.estimator = self.name().into();
        // on a balanced panel with common adoption the TWFE coefficient is the 2×2 DiD
        debug_assert!((f.coef[0] - e.att).abs() <= 1e-8 * (1.0 + e.att.abs()));
        e.att = f.coef[0];
        let se = f.se(0);
        let q = t_quantile(1.0 - e.alpha / 2.0, (f.n_clusters - 1) as f64);
        e.se = Some(se);
        e.ci_lower = Some(e.att - q * se);
        e.ci_upper = Some(e.att + q * se);
        let tstat = (e.att / se).abs();
        e.p_value = Some(2.0 * (1.0 - t_cdf(tstat, (f.n_clusters - 1) as f64)));
        e.inference = Some("cluster-robust (by geo)".into());
        if data.t0 >= 2 {
            e.event_study = EventStudy.fit(data)?;
        }
        Ok(e)
    }
}

/// Event-study regression: TWFE with one indicator per period relative to adoption,
/// `y_it = α_i + γ_t + Σ_{k≠−1} β_k 1{t − S_i = k} + ε_it` (S_i the adoption period of geo i, none for
/// never-treated geos), clustered by geo. The period just before adoption (k = −1) is the reference.
/// With common adoption β_k = (Ȳ_tr,k − Ȳ_tr,−1) − (Ȳ_co,k − Ȳ_co,−1). Pre-period β_k test parallel
/// trends; post-period β_k are the dynamic effects.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventStudy;

/// One event-study coefficient.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventCoef {
    /// Period relative to adoption (0 = first treated period).
    pub rel: i64,
    pub estimate: f64,
    pub se: f64,
}

impl EventStudy {
    /// Event study from a 0/1 treatment matrix (geos × periods; treatment is absorbing).
    pub fn fit_matrix(&self, y: ArrayView2<f64>, d: ArrayView2<f64>) -> Result<Vec<EventCoef>, GeoLiftError> {
        let (n, t) = y.dim();
        let start: Vec<Option<usize>> = (0..n).map(|i| (0..t).find(|&s| d[[i, s]] == 1.0)).collect();
        let mut rels: Vec<i64> = Vec::new();
        for (i, s) in start.iter().enumerate() {
            if let Some(s) = *s {
                for u in 0..t {
                    let k = u as i64 - s as i64;
                    if k != -1 && !rels.contains(&k) {
                        rels.push(k);
                    }
                }
                if (s..t).any(|u| d[[i, u]] != 1.0) {
                    return Err(est_err(
                        "event-study",
                        format!("treatment of geo row {i} switches off again; adoption must be absorbing"),
                    ));
                }
            }
        }
        rels.sort();
        // with common adoption and no never-treated geos the relative-time dummies are collinear with period effects
        if start.iter().all(|s| s.is_some()) {
            return Err(est_err("event-study", "every geo is treated: a never-treated comparison group is needed"));
        }
        let xs: Vec<Array2<f64>> = rels
            .iter()
            .map(|&k| {
                Array2::from_shape_fn((n, t), |(i, u)| match start[i] {
                    Some(s) if u as i64 - s as i64 == k => 1.0,
                    _ => 0.0,
                })
            })
            .collect();
        let f = twfe_regression(y, &xs)?;
        Ok(rels.iter().enumerate().map(|(j, &k)| EventCoef { rel: k, estimate: f.coef[j], se: f.se(j) }).collect())
    }

    /// Event study on a designed panel (common adoption at `t0`).
    pub fn fit(&self, data: &LiftData) -> Result<Vec<EventCoef>, GeoLiftError> {
        data.require_pre("event-study", 2)?;
        data.require_complete("event-study")?;
        let (y, d) = common_adoption(data);
        self.fit_matrix(y.view(), d.view())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staggered_twfe_and_event_study_recover_a_homogeneous_effect() {
        // 8 geos: 3 never treated, 3 adopt at t = 4, 2 at t = 6; effect 2.5 on adoption, noiseless
        let (n, t) = (8, 10);
        let start = [None, None, None, Some(4), Some(4), Some(4), Some(6), Some(6)];
        let d = Array2::from_shape_fn((n, t), |(i, s)| match start[i] {
            Some(a) if s >= a => 1.0,
            _ => 0.0,
        });
        let y = Array2::from_shape_fn((n, t), |(i, s)| 3.0 * i as f64 + (s as f64 * 0.7).cos() * 4.0 + 2.5 * d[[i, s]]);
        let f = Twfe.fit_matrix(y.view(), d.view()).unwrap();
        assert!((f.coef[0] - 2.5).abs() < 1e-10, "{:?}", f.coef);
        for c in EventStudy.fit_matrix(y.view(), d.view()).unwrap() {
            let truth = if c.rel >= 0 { 2.5 } else { 0.0 };
            assert!((c.estimate - truth).abs() < 1e-9, "{c:?}");
        }
    }

    #[test]
    fn twfe_equals_did_and_event_study_is_exact_on_noiseless_panel() {
        // y = unit effect + time effect + 3 * D for treated rows from t = 4
        let (n, t, t0) = (6, 8, 4);
        let y = Array2::from_shape_fn((n, t), |(i, s)| {
            i as f64 * 2.0 + (s as f64).sin() * 5.0 + if i >= 4 && s >= t0 { 3.0 } else { 0.0 }
        });
        let data = LiftData::from_matrix(y, vec![4, 5], t0).unwrap();
        let e = Twfe.estimate(&data).unwrap();
        assert!((e.att - 3.0).abs() < 1e-12);
        assert!(e.se.unwrap() < 1e-10);
        let ev = EventStudy.fit(&data).unwrap();
        for c in ev {
            let truth = if c.rel >= 0 { 3.0 } else { 0.0 };
            assert!((c.estimate - truth).abs() < 1e-10, "{c:?}");
        }
    }
}
