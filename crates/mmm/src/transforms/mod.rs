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
/// TOML: `saturation = { kind = "hill", ec = { ... }, slope = { ... } }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SaturationSpec {
    /// Hill: x^s / (x^s + ec^s), half-saturation `ec`, slope `s` (Meridian).
    Hill { ec: Prior, slope: Prior },
    /// Logistic: (1 − e^{−λx}) / (1 + e^{−λx}) (PyMC-Marketing `LogisticSaturation`).
    Logistic { lam: Prior },
    /// Michaelis–Menten: x / (k + x).
    MichaelisMenten { k: Prior },
}

impl SaturationSpec {
    /// The parameters' names and priors, in the order the model's parameter vector uses.
    pub fn params(&self) -> Vec<(&'static str, Prior)> {
        match self {
            SaturationSpec::Hill { ec, slope } => vec![("ec", *ec), ("slope", *slope)],
            SaturationSpec::Logistic { lam } => vec![("lam", *lam)],
            SaturationSpec::MichaelisMenten { k } => vec![("k", *k)],
        }
    }
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
