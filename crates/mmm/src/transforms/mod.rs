//! Media transforms: adstock (carry-over) and saturation (diminishing returns), as small
//! first-class types. The math (weights, values and parameter derivatives) lives in
//! `adstock.rs` and `saturation.rs`; this module holds their configuration types.

pub mod adstock;
pub mod saturation;

use crate::priors::Prior;
use serde::{Deserialize, Serialize};

/// Carry-over of media into later periods: y_t = Σ_{l=0}^{L} w_l(θ) x_{t−l}.
///
/// Every variant carries the priors of its own parameters. TOML:
/// `adstock = { kind = "geometric", max_lag = 8, alpha = { dist = "beta", alpha = 1, beta = 3 } }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdstockSpec {
    /// w_l = α^l (PyMC-Marketing `GeometricAdstock`); with `normalize`, divided by Σ_l α^l.
    Geometric {
        max_lag: usize,
        alpha: Prior,
        #[serde(default)]
        normalize: bool,
    },
    /// Meridian's binomial adstock: w_l ∝ (1 − l/(L+1))^(1/α − 1), normalised to sum 1, α ∈ (0, 1].
    Binomial { max_lag: usize, alpha: Prior },
    /// Weibull CDF adstock (Robyn): w_l = Π_{i=1}^{l} (1 − F(i; shape, scale)), so w_0 = 1; scale in periods.
    WeibullCdf { max_lag: usize, shape: Prior, scale: Prior },
    /// Weibull PDF adstock (Robyn): delayed peak, w_l = f(l+1; shape, scale) min–max normalised (max 1, min 0);
    /// scale in periods.
    WeibullPdf { max_lag: usize, shape: Prior, scale: Prior },
}

impl AdstockSpec {
    /// The maximum lag L (the window has L + 1 weights).
    pub fn max_lag(&self) -> usize {
        match self {
            AdstockSpec::Geometric { max_lag, .. }
            | AdstockSpec::Binomial { max_lag, .. }
            | AdstockSpec::WeibullCdf { max_lag, .. }
            | AdstockSpec::WeibullPdf { max_lag, .. } => *max_lag,
        }
    }

    /// The parameters' names and priors, in the order the model's parameter vector uses.
    pub fn params(&self) -> Vec<(&'static str, Prior)> {
        match self {
            AdstockSpec::Geometric { alpha, .. } | AdstockSpec::Binomial { alpha, .. } => vec![("alpha", *alpha)],
            AdstockSpec::WeibullCdf { shape, scale, .. } | AdstockSpec::WeibullPdf { shape, scale, .. } => {
                vec![("shape", *shape), ("scale", *scale)]
            }
        }
    }
}

/// Diminishing returns, applied to the (scaled) media series; the media coefficient β multiplies it.
/// TOML: `saturation = { kind = "hill", ec = { ... }, slope = { ... } }` (or `slope = 1`: fixed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SaturationSpec {
    /// Hill: x^s / (x^s + ec^s), half-saturation `ec`, slope `s` (Meridian). With
    /// `ec_floor_quantile = p`, the ec prior is truncated below at the p-quantile of the channel's
    /// non-zero scaled media ([`ec_floor`]).
    Hill {
        ec: Prior,
        slope: HillSlope,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ec_floor_quantile: Option<f64>,
    },
    /// Logistic: (1 − e^{−λx}) / (1 + e^{−λx}) (PyMC-Marketing `LogisticSaturation`).
    Logistic { lam: Prior },
    /// Michaelis–Menten: x / (k + x).
    MichaelisMenten { k: Prior },
}

impl SaturationSpec {
    /// The sampled parameters' names and priors, in the order the model's parameter vector uses.
    /// They are the leading entries of the curve's φ; [`SaturationSpec::fixed`] holds the rest.
    pub fn params(&self) -> Vec<(&'static str, Prior)> {
        match self {
            SaturationSpec::Hill { ec, slope: HillSlope::Prior(slope), .. } => vec![("ec", *ec), ("slope", *slope)],
            SaturationSpec::Hill { ec, slope: HillSlope::Fixed(_), .. } => vec![("ec", *ec)],
            SaturationSpec::Logistic { lam } => vec![("lam", *lam)],
            SaturationSpec::MichaelisMenten { k } => vec![("k", *k)],
        }
    }

    /// The curve's parameters held fixed (not sampled), the trailing entries of φ after those of
    /// [`SaturationSpec::params`]: a fixed Hill slope, else none.
    pub fn fixed(&self) -> Vec<f64> {
        match self {
            SaturationSpec::Hill { slope: HillSlope::Fixed(n), .. } => vec![*n],
            _ => Vec::new(),
        }
    }
}

/// The floor of a Hill curve's ec under `ec_floor_quantile = p`: the p-quantile (linear
/// interpolation between order statistics, numpy's default: position p·(n − 1) in the sorted
/// values) of the channel's non-zero scaled media x̃ (every period: the cells whose mean is the
/// unit of x̃, see [`crate::model`]).
///
/// Why: the data see a Hill curve only over the media they hold. With ec below nearly all of it,
/// s(x) = 1/(1 + (ec/x)ⁿ) is above ½ and nearly flat on those weeks, so the channel adds a
/// near-constant per geo that the geo intercepts can take over: a large ROI with lower intercepts
/// fits as well as a small one, a ridge the data do not bound and NUTS diverges on. The floor
/// states that the channel is at most half saturated at its p-quantile level, so the curve rises
/// from s ≤ ½ there over the rest of the observed range. Meridian's own bound is data-scaled too
/// (ec ≥ 0.1 in units of the median media, `ec_m` TruncatedNormal(0.8, 0.8, 0.1, 10)).
/// `None` if there are no non-zero values.
pub fn ec_floor(mut nonzero: Vec<f64>, p: f64) -> Option<f64> {
    if nonzero.is_empty() {
        return None;
    }
    nonzero.sort_by(f64::total_cmp);
    let h = p * (nonzero.len() - 1) as f64;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(nonzero.len() - 1);
    Some(nonzero[lo] + (h - lo as f64) * (nonzero[hi] - nonzero[lo]))
}

/// The Hill slope n: sampled under a prior, or fixed. Meridian fixes it at 1 for media
/// (`PriorDistribution.slope_m = Deterministic(1.0)`, warning that another prior "may lead to
/// convex Hill curves ... poor MCMC convergence"): with n = 1 the curve x/(x + ec) is concave and
/// cannot flatten over the observed media by a small n (see `crate::config`'s defaults table).
/// Serialised as the prior's table or as the bare number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HillSlope {
    /// Sampled: n ~ the prior.
    Prior(Prior),
    /// Fixed at n (> 0).
    Fixed(f64),
}

/// Order of the two transforms for one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransformOrder {
    /// saturation(adstock(x)) — the default (PyMC-Marketing, Meridian).
    #[default]
    AdstockFirst,
    /// adstock(saturation(x)).
    SaturationFirst,
}
