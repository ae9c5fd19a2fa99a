//! Time-based regression.

use crate::did::t_quantile;
use crate::error::{GeoLiftError, est_err};
use crate::panel::LiftData;
use crate::result::{LiftEstimate, LiftEstimator};

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

impl Tbr {
    pub fn fit(&self, data: &LiftData) -> Result<(TbrFit, Vec<f64>, Vec<f64>), GeoLiftError> {
        data.require_pre("tbr", 3)?;
        let t0 = data.t0;
        let tt = data.n_periods();
        let y: Vec<f64> = (0..tt).map(|t| data.treated.iter().map(|&g| data.y[[g, t]]).sum()).collect();
        let x: Vec<f64> = (0..tt).map(|t| data.controls.iter().map(|&g| data.y[[g, t]]).sum()).collect();
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
        e.p_value = Some(2.0 * (1.0 - crate::did::t_cdf((e.att / se).abs(), f.df)));
        e.inference = Some(format!("TBR predictive variance, t({})", f.df));
        e.notes.push(format!(
            "pre-period regression: treated = {:.4} + {:.6} × control, σ = {:.4}",
            f.intercept, f.slope, f.sigma
        ));
        Ok(e)
    }
}
