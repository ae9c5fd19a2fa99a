//! Synthetic control with GeoLift's conventions.

use crate::error::GeoLiftError;
use crate::panel::LiftData;
use crate::result::{LiftEstimate, LiftEstimator};
use crate::simplex::simplex_ls;
use ndarray::{Array2, ArrayView2};

/// Synthetic control (Abadie, Diamond & Hainmueller 2010) as GeoLift runs it through augsynth
/// (`augsynth(Y ~ D, progfunc = "none", scm = TRUE, fixedeff = TRUE)`; Ben-Michael, Feller &
/// Rothstein 2021):
///
/// * the treated geos are averaged into one series x₁ (per period);
/// * with `demean` (GeoLift's "fixed effects", our default) every series is centred on its own
///   pre-period mean: x̃ᵢₜ = xᵢₜ − mean_{s<T₀} xᵢₛ;
/// * weights w = argmin ‖x̃₁,pre − X̃₀,pre w‖² subject to w ≥ 0, Σw = 1 (no intercept, no V matrix),
///   solved exactly by [`simplex_ls`];
/// * counterfactual ŷₜ = Σⱼ wⱼ x̃ⱼₜ + mean_{s<T₀} x₁ₛ (without demeaning: Σⱼ wⱼ xⱼₜ);
/// * ATT = mean over the test window of x₁ₜ − ŷₜ;
/// * `pre_fit.l2` = ‖x̃₁,pre − X̃₀,pre w‖ and `scaled_l2` = that divided by the same norm at uniform
///   weights 1/N₀ (augsynth `fit_synth_formatted`: `l2_imbalance`, `scaled_l2_imbalance`).
#[derive(Debug, Clone, Copy)]
pub struct SyntheticControl {
    pub demean: bool,
}

impl Default for SyntheticControl {
    fn default() -> Self {
        Self { demean: true }
    }
}

/// Raw synthetic-control fit on a treated series and a donor matrix.
#[derive(Debug, Clone)]
pub struct ScFit {
    pub weights: Vec<f64>,
    /// Counterfactual for every period of `x1`.
    pub counterfactual: Vec<f64>,
    pub l2: f64,
    pub scaled_l2: f64,
    pub kkt_residual: f64,
}

/// Fits SC weights on the first `fit_cols` periods of `x1` (treated average, length T) and `x0`
/// (donors × T), demeaning each series by its mean over those periods when `demean`.
pub fn fit_sc(x1: &[f64], x0: ArrayView2<f64>, fit_cols: usize, demean: bool, w0: Option<&[f64]>) -> ScFit {
    let n0 = x0.nrows();
    let tt = x1.len();
    let mean = |v: &mut dyn Iterator<Item = f64>| v.sum::<f64>() / fit_cols as f64;
    let m1 = if demean { mean(&mut x1[..fit_cols].iter().copied()) } else { 0.0 };
    let m0: Vec<f64> =
        (0..n0).map(|j| if demean { mean(&mut x0.row(j).iter().take(fit_cols).copied()) } else { 0.0 }).collect();
    let a = Array2::from_shape_fn((n0, fit_cols), |(j, t)| x0[[j, t]] - m0[j]);
    let b: Vec<f64> = (0..fit_cols).map(|t| x1[t] - m1).collect();
    let sol = simplex_ls(a.view(), &b, w0);
    let w = sol.weights;
    let counterfactual: Vec<f64> =
        (0..tt).map(|t| m1 + (0..n0).map(|j| w[j] * (x0[[j, t]] - m0[j])).sum::<f64>()).collect();
    let l2 = sol.sse.sqrt();
    let unif: f64 =
        (0..fit_cols).map(|t| ((0..n0).map(|j| a[[j, t]]).sum::<f64>() / n0 as f64 - b[t]).powi(2)).sum::<f64>().sqrt();
    ScFit { weights: w, counterfactual, l2, scaled_l2: l2 / unif, kkt_residual: sol.kkt_residual }
}

impl SyntheticControl {
    /// The fit on a design (weights over `data.controls`).
    pub fn fit(&self, data: &LiftData) -> Result<ScFit, GeoLiftError> {
        data.require_pre(self.name(), 2)?;
        data.require_complete(self.name())?;
        let x1 = data.treated_mean();
        let x0 = data.control_matrix();
        Ok(fit_sc(&x1, x0.view(), data.t0, self.demean, None))
    }
}

impl LiftEstimator for SyntheticControl {
    fn name(&self) -> &'static str {
        "sc"
    }

    fn estimate(&self, data: &LiftData) -> Result<LiftEstimate, GeoLiftError> {
        let f = self.fit(data)?;
        let mut e =
            LiftEstimate::from_weighted_fit(self.name(), data, &f.counterfactual, &f.weights, f.l2, f.scaled_l2);
        if !self.demean {
            e.notes.push("no demeaning (--no-demean)".into());
        }
        Ok(e)
    }

    fn att(&self, data: &LiftData) -> Result<f64, GeoLiftError> {
        let f = self.fit(data)?;
        let x1 = data.treated_mean();
        let t0 = data.t0;
        Ok((t0..x1.len()).map(|t| x1[t] - f.counterfactual[t]).sum::<f64>() / (x1.len() - t0) as f64)
    }
}
