//! The result every estimator returns, and the trait they share.

use crate::error::GeoLiftError;
use crate::panel::LiftData;
use serde::Serialize;

/// One lift estimate. Effects are in KPI units per treated geo per period (`att`), summed over
/// treated geos and test periods (`incremental = att × periods × geos`), and relative to the
/// counterfactual (`lift_pct`, GeoLift's definition: (Σ observed − Σ counterfactual) / |Σ counterfactual|
/// over the test window, on the treated-geo average, × 100).
#[derive(Debug, Clone, Serialize)]
pub struct LiftEstimate {
    pub estimator: String,
    pub att: f64,
    pub lift_pct: f64,
    pub incremental: f64,
    /// Standard error of `att`, when the inference method provides one.
    pub se: Option<f64>,
    /// Confidence interval for `att` at level `1 − alpha`.
    pub ci_lower: Option<f64>,
    pub ci_upper: Option<f64>,
    pub p_value: Option<f64>,
    pub alpha: f64,
    /// Which inference method produced se/CI/p (e.g. "conformal", "placebo", "cluster-robust").
    pub inference: Option<String>,
    /// Donor weights (geo, weight); empty for estimators without weights.
    pub weights: Vec<(String, f64)>,
    /// Time weights (period, weight), SDID only.
    pub time_weights: Vec<(String, f64)>,
    pub pre_fit: Option<PreFit>,
    /// Estimated bias (ASCM's augmentation minus plain SC).
    pub bias: Option<f64>,
    /// Observed and counterfactual treated-geo average per period, with the effect's interval per
    /// test period where [`LiftEstimate::period_band`] says how it was made.
    pub path: Vec<PeriodPoint>,
    /// How the per-period intervals in `path` were made (e.g. conformal per period for sc and ascm);
    /// `None`: this estimate has no per-period band.
    pub period_band: Option<String>,
    pub iroas: Option<Iroas>,
    /// Per-period effects relative to adoption with cluster-robust SEs (TWFE event study).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_study: Vec<crate::did::EventCoef>,
    pub n_treated: usize,
    pub n_post: usize,
    pub notes: Vec<String>,
    /// Placebo in space: (control geo, ATT when that control is treated as the treated unit), for
    /// estimators that compute it (SC); the reference distribution of the observed ATT.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub placebos: Vec<(String, f64)>,
}

/// Pre-period fit: `l2` = ‖x₁ − X₀w‖ over the pre-period (on demeaned data when the estimator demeans),
/// `scaled_l2` = `l2` divided by the same norm for uniform weights (augsynth's scaled L2 imbalance),
/// `rmse` = root mean squared pre-period gap of the treated average on the KPI scale.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PreFit {
    pub l2: f64,
    pub scaled_l2: f64,
    pub rmse: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeriodPoint {
    pub time: String,
    pub post: bool,
    pub observed: f64,
    pub counterfactual: f64,
    /// The interval of the effect (observed − counterfactual) in this test period at the estimate's
    /// level 1 − α, and the period's p-value for no effect ([`crate::inference::PeriodConformal`]);
    /// `None` before the window and for estimators without a per-period band.
    pub effect_lower: Option<f64>,
    pub effect_upper: Option<f64>,
    pub effect_p_value: Option<f64>,
}

/// Incremental return on ad spend: incremental KPI / spend change over the test window.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Iroas {
    pub estimate: f64,
    pub ci_lower: Option<f64>,
    pub ci_upper: Option<f64>,
}

/// A lift estimator: a fit on a designed panel. Inference is added by the functions in
/// [`crate::inference`] (or by the estimator itself where it has its own, like TWFE or TBR).
pub trait LiftEstimator: Sync {
    fn name(&self) -> &'static str;
    /// Point estimate with path, weights and pre-fit, no inference.
    fn estimate(&self, data: &LiftData) -> Result<LiftEstimate, GeoLiftError>;
    /// The ATT alone (used by placebo and jackknife loops; may skip bookkeeping).
    fn att(&self, data: &LiftData) -> Result<f64, GeoLiftError> {
        Ok(self.estimate(data)?.att)
    }
}

impl LiftEstimate {
    /// Builds an estimate from the treated-average observed path and a counterfactual path.
    pub(crate) fn from_paths(estimator: &str, data: &LiftData, observed: &[f64], counterfactual: &[f64]) -> Self {
        let t0 = data.t0;
        let n_post = data.n_post();
        let post_obs: f64 = observed[t0..].iter().sum();
        let post_cf: f64 = counterfactual[t0..].iter().sum();
        let att = (post_obs - post_cf) / n_post as f64;
        let lift_pct = 100.0 * (post_obs - post_cf) / post_cf.abs();
        let path = (0..observed.len())
            .map(|t| PeriodPoint {
                time: data.time_labels[t].clone(),
                post: t >= t0,
                observed: observed[t],
                counterfactual: counterfactual[t],
                effect_lower: None,
                effect_upper: None,
                effect_p_value: None,
            })
            .collect();
        Self {
            estimator: estimator.into(),
            att,
            lift_pct,
            incremental: att * n_post as f64 * data.treated.len() as f64,
            se: None,
            ci_lower: None,
            ci_upper: None,
            p_value: None,
            alpha: 0.1,
            inference: None,
            weights: vec![],
            time_weights: vec![],
            pre_fit: None,
            bias: None,
            path,
            period_band: None,
            iroas: None,
            event_study: vec![],
            n_treated: data.treated.len(),
            n_post,
            notes: vec![],
            placebos: vec![],
        }
    }

    /// An estimate from a donor-weighted fit (SC, ASCM): the treated-average path against the
    /// weighted counterfactual, with the donor weights and the pre-period fit.
    pub(crate) fn from_weighted_fit(
        estimator: &str,
        data: &LiftData,
        counterfactual: &[f64],
        weights: &[f64],
        l2: f64,
        scaled_l2: f64,
    ) -> Self {
        let mut e = Self::from_paths(estimator, data, &data.treated_mean(), counterfactual);
        e.weights = data.control_names().into_iter().zip(weights.iter().copied()).collect();
        e.pre_fit = Some(PreFit { l2, scaled_l2, rmse: e.pre_rmse() });
        e
    }

    /// Root mean squared pre-period gap between observed and counterfactual.
    pub(crate) fn pre_rmse(&self) -> f64 {
        let pre: Vec<f64> =
            self.path.iter().filter(|p| !p.post).map(|p| (p.observed - p.counterfactual).powi(2)).collect();
        (pre.iter().sum::<f64>() / pre.len().max(1) as f64).sqrt()
    }

    /// Fills `iroas` from the spend change over the window (incremental / spend) and the ATT interval.
    pub fn set_iroas(&mut self, spend_change: f64) {
        if spend_change == 0.0 || !spend_change.is_finite() {
            return;
        }
        let k = (self.n_post * self.n_treated) as f64 / spend_change;
        let (lo, hi) = match (self.ci_lower, self.ci_upper) {
            (Some(l), Some(h)) => {
                let (a, b) = (l * k, h * k);
                (Some(a.min(b)), Some(a.max(b)))
            }
            _ => (None, None),
        };
        self.iroas = Some(Iroas { estimate: self.incremental / spend_change, ci_lower: lo, ci_upper: hi });
    }
}
