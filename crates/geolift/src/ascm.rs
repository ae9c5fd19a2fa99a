//! Augmented synthetic control with ridge outcome model.

use crate::error::GeoLiftError;
use crate::panel::LiftData;
use crate::result::{LiftEstimate, LiftEstimator};
use crate::sc::fit_sc;
use crate::simplex::{lu_solve, simplex_ls};
use ndarray::{Array2, ArrayView2};

/// Ridge-augmented synthetic control (Ben-Michael, Feller & Rothstein 2021, JASA 116(536), eq. 6–7),
/// as augsynth computes it (`progfunc = "ridge"`, `scm = TRUE`; GeoLift's `model = "Ridge"`):
///
/// * series demeaned by their pre-period means when `demean` (GeoLift's fixed effects), then every
///   pre-period column centred on the control geos' mean: X_c (controls × T₀), X₁ (treated average);
/// * SC weights ŵ as in [`crate::SyntheticControl`];
/// * ridge correction w_ridge = X_c (X_cᵀX_c + λI)⁻¹ (X₁ − X_cᵀŵ) = (X_c X_cᵀ + λI)⁻¹ X_c (X₁ − X_cᵀŵ);
///   augmented weights w = ŵ + w_ridge (they still sum to one, and may be negative);
/// * counterfactual ŷₜ = Σⱼ wⱼ x̃ⱼₜ + mean_pre x₁; `bias` = mean over the test window of
///   ŷₜ(ASCM) − ŷₜ(SC), the SC bias the ridge model estimates (so ATT_ascm = ATT_sc − bias);
/// * λ by leave-one-period-out cross-validation over the pre-period (augsynth `get_lambda_errors`,
///   holdout length 1, periods 1..T₀−1): for each held-out period, refit SC on the others and score
///   every λ on the held-out error; grid λ_max·r^k, k = 0..20, λ_max = σ₁(X_c)², r = (10⁻⁸)^{1/20};
///   choice by the one-standard-error rule (augsynth's default `min_1se`): the largest λ whose mean
///   error is within one standard error of the minimum.
#[derive(Debug, Clone, Copy)]
pub struct Ascm {
    pub demean: bool,
    /// Fixed ridge penalty; `None` = cross-validation.
    pub lambda: Option<f64>,
}

impl Default for Ascm {
    fn default() -> Self {
        Self { demean: true, lambda: None }
    }
}

/// Details of an ASCM fit.
#[derive(Debug, Clone)]
pub struct AscmFit {
    pub weights: Vec<f64>,
    pub sc_weights: Vec<f64>,
    pub lambda: f64,
    pub counterfactual: Vec<f64>,
    pub sc_counterfactual: Vec<f64>,
    pub l2: f64,
    pub scaled_l2: f64,
}

/// (K + λI)⁻¹ v for a symmetric K.
fn ridge_solve(k: &Array2<f64>, lambda: f64, v: &[f64]) -> Option<Vec<f64>> {
    let n = v.len();
    let mut a: Vec<f64> = (0..n * n).map(|i| k[[i / n, i % n]] + if i / n == i % n { lambda } else { 0.0 }).collect();
    let mut b = v.to_vec();
    lu_solve(&mut a, &mut b, n)
}

/// Ridge correction for controls `xc` (n0 × T) and treated `x1`, given SC weights.
fn ridge_weights(xc: ArrayView2<f64>, x1: &[f64], syn: &[f64], k: &Array2<f64>, lambda: f64) -> Option<Vec<f64>> {
    let (n0, t) = xc.dim();
    let d: Vec<f64> = (0..t).map(|s| x1[s] - (0..n0).map(|j| xc[[j, s]] * syn[j]).sum::<f64>()).collect();
    let v: Vec<f64> = (0..n0).map(|j| (0..t).map(|s| xc[[j, s]] * d[s]).sum()).collect();
    ridge_solve(k, lambda, &v)
}

impl Ascm {
    pub fn fit(&self, data: &LiftData) -> Result<AscmFit, GeoLiftError> {
        data.require_pre("ascm", 3)?;
        data.require_complete("ascm")?;
        let t0 = data.t0;
        let x1 = data.treated_mean();
        let x0 = data.control_matrix();
        let n0 = x0.nrows();
        let tt = x1.len();
        let sc = fit_sc(&x1, x0.view(), t0, self.demean, None);
        let m1 = if self.demean { x1[..t0].iter().sum::<f64>() / t0 as f64 } else { 0.0 };
        let m0: Vec<f64> = (0..n0)
            .map(|j| if self.demean { x0.row(j).iter().take(t0).sum::<f64>() / t0 as f64 } else { 0.0 })
            .collect();
        // demeaned, then centred on the control mean per period
        let cm: Vec<f64> = (0..t0).map(|s| (0..n0).map(|j| x0[[j, s]] - m0[j]).sum::<f64>() / n0 as f64).collect();
        let xc = Array2::from_shape_fn((n0, t0), |(j, s)| x0[[j, s]] - m0[j] - cm[s]);
        let xt: Vec<f64> = (0..t0).map(|s| x1[s] - m1 - cm[s]).collect();
        let lambda = match self.lambda {
            Some(l) => l,
            None => cv_lambda(xc.view(), &xt),
        };
        let k = xc.dot(&xc.t());
        let rw = ridge_weights(xc.view(), &xt, &sc.weights, &k, lambda)
            .ok_or_else(|| crate::error::est_err("ascm", "the ridge system is singular"))?;
        let w: Vec<f64> = (0..n0).map(|j| sc.weights[j] + rw[j]).collect();
        let counterfactual: Vec<f64> =
            (0..tt).map(|t| m1 + (0..n0).map(|j| w[j] * (x0[[j, t]] - m0[j])).sum::<f64>()).collect();
        let l2 = (0..t0).map(|s| (xt[s] - (0..n0).map(|j| w[j] * xc[[j, s]]).sum::<f64>()).powi(2)).sum::<f64>().sqrt();
        let unif = (0..t0).map(|s| xt[s].powi(2)).sum::<f64>().sqrt(); // centred: uniform weights give 0
        Ok(AscmFit {
            weights: w,
            sc_weights: sc.weights,
            lambda,
            counterfactual,
            sc_counterfactual: sc.counterfactual,
            l2,
            scaled_l2: l2 / unif,
        })
    }
}

/// Leave-one-period-out CV for λ with the one-standard-error rule (see [`Ascm`]).
fn cv_lambda(xc: ArrayView2<f64>, xt: &[f64]) -> f64 {
    let (n0, t0) = xc.dim();
    let k_full = xc.dot(&xc.t());
    // largest eigenvalue of X_c X_cᵀ = σ₁(X_c)², by power iteration
    let mut v = vec![1.0 / (n0 as f64).sqrt(); n0];
    let mut lmax = 0.0;
    for _ in 0..200 {
        let kv: Vec<f64> = (0..n0).map(|i| (0..n0).map(|j| k_full[[i, j]] * v[j]).sum()).collect();
        let nrm = kv.iter().map(|x| x * x).sum::<f64>().sqrt();
        if nrm == 0.0 {
            break;
        }
        v = kv.iter().map(|x| x / nrm).collect();
        if (nrm - lmax).abs() < 1e-12 * nrm {
            lmax = nrm;
            break;
        }
        lmax = nrm;
    }
    let n_lambda = 20;
    let ratio: f64 = 1e-8f64.powf(1.0 / n_lambda as f64);
    let lambdas: Vec<f64> = (0..=n_lambda).map(|k| lmax.max(1e-12) * ratio.powi(k)).collect();
    let folds = t0 - 1;
    let mut errors = vec![vec![0.0; lambdas.len()]; folds];
    for (i, row) in errors.iter_mut().enumerate() {
        let keep: Vec<usize> = (0..t0).filter(|&s| s != i).collect();
        let x0f = xc.select(ndarray::Axis(1), &keep);
        let x1f: Vec<f64> = keep.iter().map(|&s| xt[s]).collect();
        let syn = simplex_ls(x0f.view(), &x1f, None).weights;
        let kf = x0f.dot(&x0f.t());
        for (j, &lam) in lambdas.iter().enumerate() {
            row[j] = match ridge_weights(x0f.view(), &x1f, &syn, &kf, lam) {
                Some(rw) => (xt[i] - (0..n0).map(|c| (syn[c] + rw[c]) * xc[[c, i]]).sum::<f64>()).powi(2),
                None => f64::INFINITY,
            };
        }
    }
    let nf = folds as f64;
    let mean: Vec<f64> = (0..lambdas.len()).map(|j| errors.iter().map(|r| r[j]).sum::<f64>() / nf).collect();
    let se: Vec<f64> = (0..lambdas.len())
        .map(|j| {
            let sd = (errors.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / (nf - 1.0).max(1.0)).sqrt();
            sd / nf.sqrt()
        })
        .collect();
    let best = (0..lambdas.len()).min_by(|&a, &b| mean[a].total_cmp(&mean[b])).unwrap_or(0);
    let bound = mean[best] + se[best];
    // lambdas decrease with the index: the largest λ within one SE is the first index that qualifies
    (0..lambdas.len()).find(|&j| mean[j] <= bound).map(|j| lambdas[j]).unwrap_or(lambdas[best])
}

impl LiftEstimator for Ascm {
    fn name(&self) -> &'static str {
        "ascm"
    }
    fn estimate(&self, data: &LiftData) -> Result<LiftEstimate, GeoLiftError> {
        let f = self.fit(data)?;
        let mut e =
            LiftEstimate::from_weighted_fit(self.name(), data, &f.counterfactual, &f.weights, f.l2, f.scaled_l2);
        let t0 = data.t0;
        let n = data.n_post() as f64;
        e.bias = Some((t0..data.n_periods()).map(|t| f.counterfactual[t] - f.sc_counterfactual[t]).sum::<f64>() / n);
        e.notes.push(format!(
            "ridge penalty λ = {:.6e} ({})",
            f.lambda,
            if self.lambda.is_some() { "fixed" } else { "cross-validated, 1-SE rule" }
        ));
        Ok(e)
    }
}
