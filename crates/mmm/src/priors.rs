//! Prior distributions as small first-class types.
//!
//! In a TOML config a prior is written as a table tagged by `dist`:
//! ```toml
//! alpha = { dist = "beta", alpha = 1.0, beta = 3.0 }
//! roi   = { dist = "lognormal", mu = 0.2, sigma = 0.9 }
//! ```

use serde::{Deserialize, Serialize};

/// A univariate prior. Parameters are checked by [`Prior::validate`] when a config is parsed, so
/// code inside the crate may assume they are valid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case")]
pub enum Prior {
    /// Normal(μ, σ).
    Normal { mu: f64, sigma: f64 },
    /// |Normal(0, σ)| on x ≥ 0.
    HalfNormal { sigma: f64 },
    /// log x ~ Normal(μ, σ), x > 0.
    #[serde(rename = "lognormal")]
    LogNormal { mu: f64, sigma: f64 },
    /// Beta(α, β) on (0, 1).
    Beta { alpha: f64, beta: f64 },
    /// Gamma with shape k and rate θ (mean k/θ), x > 0.
    Gamma { shape: f64, rate: f64 },
    /// Normal(μ, σ) truncated to [lower, upper] (either bound may be infinite).
    TruncatedNormal { mu: f64, sigma: f64, lower: f64, upper: f64 },
    /// Uniform on [lower, upper].
    Uniform { lower: f64, upper: f64 },
}

/// Where a prior puts its mass: this decides the unconstraining transform used for the parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Support {
    /// The whole real line (identity transform).
    Real,
    /// (lower, ∞) (log transform of x − lower).
    LowerBounded(f64),
    /// (lower, upper) (logit transform).
    Interval(f64, f64),
}

impl Prior {
    /// Checks the parameters: scales positive and finite, bounds ordered.
    pub fn validate(&self) -> Result<(), String> {
        let pos = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 { Ok(()) } else { Err(format!("{name} must be a positive number, got {v}")) }
        };
        let fin = |name: &str, v: f64| if v.is_finite() { Ok(()) } else { Err(format!("{name} must be finite, got {v}")) };
        match *self {
            Prior::Normal { mu, sigma } | Prior::LogNormal { mu, sigma } => {
                fin("mu", mu)?;
                pos("sigma", sigma)
            }
            Prior::HalfNormal { sigma } => pos("sigma", sigma),
            Prior::Beta { alpha, beta } => {
                pos("alpha", alpha)?;
                pos("beta", beta)
            }
            Prior::Gamma { shape, rate } => {
                pos("shape", shape)?;
                pos("rate", rate)
            }
            Prior::TruncatedNormal { mu, sigma, lower, upper } => {
                fin("mu", mu)?;
                pos("sigma", sigma)?;
                if lower.is_nan() || upper.is_nan() || lower >= upper {
                    return Err(format!("lower ({lower}) must be below upper ({upper})"));
                }
                Ok(())
            }
            Prior::Uniform { lower, upper } => {
                fin("lower", lower)?;
                fin("upper", upper)?;
                if lower >= upper {
                    return Err(format!("lower ({lower}) must be below upper ({upper})"));
                }
                Ok(())
            }
        }
    }

    /// The support of the distribution.
    pub fn support(&self) -> Support {
        match *self {
            Prior::Normal { .. } => Support::Real,
            Prior::HalfNormal { .. } | Prior::LogNormal { .. } | Prior::Gamma { .. } => Support::LowerBounded(0.0),
            Prior::Beta { .. } => Support::Interval(0.0, 1.0),
            Prior::Uniform { lower, upper } => Support::Interval(lower, upper),
            Prior::TruncatedNormal { lower, upper, .. } => match (lower.is_finite(), upper.is_finite()) {
                (true, true) => Support::Interval(lower, upper),
                (true, false) => Support::LowerBounded(lower),
                // an upper bound only is rare for our parameters; keep it on the real line via the
                // density (which is −∞ above `upper`) would break samplers, so require a lower bound
                (false, _) => Support::Real,
            },
        }
    }

    /// A LogNormal matched to a mean and standard deviation on the natural scale:
    /// σ² = ln(1 + sd²/mean²), μ = ln(mean) − σ²/2. Used to turn an experiment's ROI readout
    /// (estimate, standard error) into an ROI prior.
    pub fn lognormal_from_moments(mean: f64, sd: f64) -> Result<Prior, String> {
        if !(mean.is_finite() && mean > 0.0) {
            return Err(format!("a LogNormal needs a positive mean, got {mean}"));
        }
        if !(sd.is_finite() && sd > 0.0) {
            return Err(format!("a LogNormal needs a positive standard deviation, got {sd}"));
        }
        let s2 = (1.0 + (sd / mean).powi(2)).ln();
        Ok(Prior::LogNormal { mu: mean.ln() - s2 / 2.0, sigma: s2.sqrt() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priors_parse_from_toml_tables() {
        #[derive(Deserialize)]
        struct W {
            p: Prior,
        }
        let w: W = toml::from_str(r#"p = { dist = "beta", alpha = 1.0, beta = 3.0 }"#).unwrap();
        assert_eq!(w.p, Prior::Beta { alpha: 1.0, beta: 3.0 });
        let w: W = toml::from_str(r#"p = { dist = "lognormal", mu = 0.0, sigma = 1.0 }"#).unwrap();
        assert_eq!(w.p, Prior::LogNormal { mu: 0.0, sigma: 1.0 });
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        assert!(Prior::Normal { mu: 0.0, sigma: 0.0 }.validate().is_err());
        assert!(Prior::Uniform { lower: 1.0, upper: 1.0 }.validate().is_err());
        assert!(Prior::Gamma { shape: 2.0, rate: f64::NAN }.validate().is_err());
        assert!(Prior::Beta { alpha: 2.0, beta: 2.0 }.validate().is_ok());
    }

    #[test]
    fn lognormal_from_moments_reproduces_the_moments() {
        let Prior::LogNormal { mu, sigma } = Prior::lognormal_from_moments(2.5, 0.8).unwrap() else { unreachable!() };
        let mean = (mu + sigma * sigma / 2.0).exp();
        let var = ((sigma * sigma).exp() - 1.0) * (2.0 * mu + sigma * sigma).exp();
        assert!((mean - 2.5).abs() < 1e-12 && (var.sqrt() - 0.8).abs() < 1e-12);
    }
}
