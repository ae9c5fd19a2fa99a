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
        let fin =
            |name: &str, v: f64| if v.is_finite() { Ok(()) } else { Err(format!("{name} must be finite, got {v}")) };
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
// ---------------------------------------------------------------------------------------------
// Log densities and the unconstraining transforms (model side).
// ---------------------------------------------------------------------------------------------

const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8; // ½·ln(2π)

impl Prior {
    /// log p(x) with every normalising constant included, and −∞ outside the support.
    ///
    /// Normal: −½z² − ln σ − ½ln 2π, z = (x−μ)/σ. HalfNormal: that at μ = 0 plus ln 2 (x ≥ 0).
    /// LogNormal: Normal(ln x) − ln x. Beta: (α−1)ln x + (β−1)ln(1−x) − ln B(α,β).
    /// Gamma (shape k, rate θ): k ln θ − ln Γ(k) + (k−1) ln x − θx. TruncatedNormal: Normal minus
    /// ln(Φ(b′) − Φ(a′)). Uniform: −ln(b − a).
    pub fn ln_pdf(&self, x: f64) -> f64 {
        self.ln_pdf_and_deriv(x).0
    }

    /// (log p(x), d log p / dx). Outside the support: (−∞, 0).
    pub fn ln_pdf_and_deriv(&self, x: f64) -> (f64, f64) {
        let out = (f64::NEG_INFINITY, 0.0);
        match *self {
            Prior::Normal { mu, sigma } => {
                let z = (x - mu) / sigma;
                (-0.5 * z * z - sigma.ln() - LN_SQRT_2PI, -z / sigma)
            }
            Prior::HalfNormal { sigma } => {
                if x < 0.0 {
                    return out;
                }
                let z = x / sigma;
                (-0.5 * z * z - sigma.ln() - LN_SQRT_2PI + std::f64::consts::LN_2, -z / sigma)
            }
            Prior::LogNormal { mu, sigma } => {
                if x <= 0.0 {
                    return out;
                }
                let lx = x.ln();
                let z = (lx - mu) / sigma;
                (-0.5 * z * z - sigma.ln() - LN_SQRT_2PI - lx, (-z / sigma - 1.0) / x)
            }
            Prior::Beta { alpha, beta } => {
                if x <= 0.0 || x >= 1.0 {
                    return out;
                }
                let lnb = statrs::function::gamma::ln_gamma(alpha) + statrs::function::gamma::ln_gamma(beta)
                    - statrs::function::gamma::ln_gamma(alpha + beta);
                (
                    (alpha - 1.0) * x.ln() + (beta - 1.0) * (-x).ln_1p() - lnb,
                    (alpha - 1.0) / x - (beta - 1.0) / (1.0 - x),
                )
            }
            Prior::Gamma { shape, rate } => {
                if x <= 0.0 {
                    return out;
                }
                (
                    shape * rate.ln() - statrs::function::gamma::ln_gamma(shape) + (shape - 1.0) * x.ln() - rate * x,
                    (shape - 1.0) / x - rate,
                )
            }
            Prior::TruncatedNormal { mu, sigma, lower, upper } => {
                if x < lower || x > upper {
                    return out;
                }
                let z = (x - mu) / sigma;
                let mass = normal_cdf((upper - mu) / sigma) - normal_cdf((lower - mu) / sigma);
                (-0.5 * z * z - sigma.ln() - LN_SQRT_2PI - mass.ln(), -z / sigma)
            }
            Prior::Uniform { lower, upper } => {
                if x < lower || x > upper {
                    return out;
                }
                (-(upper - lower).ln(), 0.0)
            }
        }
    }

    /// The prior truncated below at `floor` where that raises its lower bound: TruncatedNormal and
    /// Uniform keep their form with lower bound max(lower, floor) (the TruncatedNormal renormalised
    /// over what is left, see [`Prior::ln_pdf`]). Other kinds have no bound to raise, and a floor at
    /// or above the upper bound leaves nothing: both are errors. A floor of −∞ checks the kind only.
    pub fn raise_lower(&self, floor: f64) -> Result<Prior, String> {
        let check = |upper: f64| {
            if floor < upper {
                Ok(())
            } else {
                Err(format!("the floor {floor} is not below the prior's upper bound {upper}"))
            }
        };
        match *self {
            Prior::TruncatedNormal { mu, sigma, lower, upper } => {
                check(upper)?;
                Ok(Prior::TruncatedNormal { mu, sigma, lower: lower.max(floor), upper })
            }
            Prior::Uniform { lower, upper } => {
                check(upper)?;
                Ok(Prior::Uniform { lower: lower.max(floor), upper })
            }
            _ => Err("only a truncated_normal or uniform prior has a lower bound to raise".into()),
        }
    }

    /// The transform from the real line onto this prior's support (see [`Support`]).
    pub fn transform(&self) -> Transform {
        Transform::for_support(self.support())
    }

    /// A central value inside the support, used to initialise optimisers: the median where it has a
    /// closed form, else the mean (clamped into the support).
    pub fn central_value(&self) -> f64 {
        match *self {
            Prior::Normal { mu, .. } => mu,
            Prior::HalfNormal { sigma } => sigma * 0.674_489_750_196_081_7,
            Prior::LogNormal { mu, .. } => mu.exp(),
            Prior::Beta { alpha, beta } => alpha / (alpha + beta),
            Prior::Gamma { shape, rate } => shape / rate,
            Prior::TruncatedNormal { mu, sigma, lower, upper } => {
                if mu > lower && mu < upper {
                    mu
                } else if lower.is_finite() && upper.is_finite() {
                    0.5 * (lower + upper)
                } else if lower.is_finite() {
                    lower + sigma
                } else {
                    upper - sigma
                }
            }
            Prior::Uniform { lower, upper } => 0.5 * (lower + upper),
        }
    }
}

/// Standard normal CDF Φ(z) = ½ erfc(−z/√2).
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * statrs::function::erf::erfc(-z / std::f64::consts::SQRT_2)
}

/// A bijection from an unconstrained y ∈ ℝ onto a parameter's support, with its log-Jacobian.
///
/// - `Identity`: x = y, log|J| = 0.
/// - `Log { lower }`: x = lower + eʸ, log|J| = y.
/// - `Logit { lower, upper }`: x = lower + (upper − lower)·σ(y), σ the logistic function,
///   log|J| = ln(upper − lower) + ln σ(y) + ln(1 − σ(y)), d log|J|/dy = 1 − 2σ(y).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transform {
    Identity,
    Log { lower: f64 },
    Logit { lower: f64, upper: f64 },
}

/// The result of constraining one coordinate: value, dx/dy, log|J| and d log|J| / dy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Constrained {
    pub x: f64,
    pub dx_dy: f64,
    pub log_jac: f64,
    pub dlog_jac_dy: f64,
}

impl Transform {
    pub fn for_support(s: Support) -> Transform {
        match s {
            Support::Real => Transform::Identity,
            Support::LowerBounded(lower) => Transform::Log { lower },
            Support::Interval(lower, upper) => Transform::Logit { lower, upper },
        }
    }

    /// y ↦ x with the Jacobian terms.
    pub fn constrain(&self, y: f64) -> Constrained {
        match *self {
            Transform::Identity => Constrained { x: y, dx_dy: 1.0, log_jac: 0.0, dlog_jac_dy: 0.0 },
            Transform::Log { lower } => {
                let e = y.exp();
                Constrained { x: lower + e, dx_dy: e, log_jac: y, dlog_jac_dy: 1.0 }
            }
            Transform::Logit { lower, upper } => {
                let w = upper - lower;
                // σ(y) and 1 − σ(y) computed without cancellation; ln σ(y) = −ln(1 + e^{−y}).
                let (s, one_minus_s) = if y >= 0.0 {
                    let e = (-y).exp();
                    (1.0 / (1.0 + e), e / (1.0 + e))
                } else {
                    let e = y.exp();
                    (e / (1.0 + e), 1.0 / (1.0 + e))
                };
                let ln_s = -softplus(-y);
                let ln_1ms = -softplus(y);
                Constrained {
                    x: lower + w * s,
                    dx_dy: w * s * one_minus_s,
                    log_jac: w.ln() + ln_s + ln_1ms,
                    dlog_jac_dy: one_minus_s - s,
                }
            }
        }
    }

    /// x ↦ y (the inverse); points on or outside the boundary map to ±∞ or NaN.
    pub fn unconstrain(&self, x: f64) -> f64 {
        match *self {
            Transform::Identity => x,
            Transform::Log { lower } => (x - lower).ln(),
            Transform::Logit { lower, upper } => {
                let p = (x - lower) / (upper - lower);
                p.ln() - (-p).ln_1p()
            }
        }
    }
}

/// ln(1 + eˣ) without overflow.
fn softplus(x: f64) -> f64 {
    if x > 0.0 { x + (-x).exp().ln_1p() } else { x.exp().ln_1p() }
}

#[cfg(test)]
mod density_tests {
    use super::*;
    use proptest::prelude::*;

    fn all_priors() -> Vec<Prior> {
        vec![
            Prior::Normal { mu: 0.3, sigma: 1.7 },
            Prior::HalfNormal { sigma: 2.0 },
            Prior::LogNormal { mu: -0.4, sigma: 0.8 },
            Prior::Beta { alpha: 1.5, beta: 3.0 },
            Prior::Gamma { shape: 2.5, rate: 1.3 },
            Prior::TruncatedNormal { mu: 0.5, sigma: 1.0, lower: 0.0, upper: 2.0 },
            Prior::TruncatedNormal { mu: 0.5, sigma: 1.0, lower: 0.1, upper: f64::INFINITY },
            Prior::Uniform { lower: -1.0, upper: 3.0 },
        ]
    }

    /// Trapezoid integral of exp(ln_pdf) over y-space via the transform (a smooth integrand):
    /// ∫ p(x) dx = ∫ p(x(y)) |dx/dy| dy. With 40 001 points on [−30, 30] the trapezoid error for
    /// these smooth, rapidly decaying integrands is far below 1e-6.
    #[test]
    fn every_prior_density_integrates_to_one() {
        for p in all_priors() {
            let t = p.transform();
            let n = 40_001;
            let (a, b) = (-30.0, 30.0);
            let h = (b - a) / (n - 1) as f64;
            let mut s = 0.0;
            for i in 0..n {
                let y = a + h * i as f64;
                let c = t.constrain(y);
                let v = (p.ln_pdf(c.x) + c.log_jac).exp();
                s += if i == 0 || i == n - 1 { 0.5 * v } else { v };
            }
            assert!((s * h - 1.0).abs() < 1e-6, "{p:?} integrates to {}", s * h);
        }
    }

    #[test]
    fn log_densities_match_statrs() {
        use statrs::distribution::{Beta, Continuous, Gamma, LogNormal, Normal};
        let x = 0.37;
        assert!(
            (Prior::Normal { mu: 0.3, sigma: 1.7 }.ln_pdf(x) - Normal::new(0.3, 1.7).unwrap().ln_pdf(x)).abs() < 1e-12
        );
        let ln = LogNormal::new(-0.4, 0.8).unwrap().ln_pdf(x);
        assert!((Prior::LogNormal { mu: -0.4, sigma: 0.8 }.ln_pdf(x) - ln).abs() < 1e-12);
        let be = Beta::new(1.5, 3.0).unwrap().ln_pdf(x);
        assert!((Prior::Beta { alpha: 1.5, beta: 3.0 }.ln_pdf(x) - be).abs() < 1e-12);
        let ga = Gamma::new(2.5, 1.3).unwrap().ln_pdf(x);
        assert!((Prior::Gamma { shape: 2.5, rate: 1.3 }.ln_pdf(x) - ga).abs() < 1e-12);
        let hn = Normal::new(0.0, 2.0).unwrap().ln_pdf(x) + std::f64::consts::LN_2;
        assert!((Prior::HalfNormal { sigma: 2.0 }.ln_pdf(x) - hn).abs() < 1e-12);
        assert_eq!(Prior::Beta { alpha: 2.0, beta: 2.0 }.ln_pdf(1.2), f64::NEG_INFINITY);
    }

    #[test]
    fn transforms_round_trip_and_respect_bounds() {
        for t in [Transform::Identity, Transform::Log { lower: 0.5 }, Transform::Logit { lower: -1.0, upper: 3.0 }] {
            for y in [-8.0, -1.0, 0.0, 0.7, 5.0] {
                let c = t.constrain(y);
                assert!((t.unconstrain(c.x) - y).abs() < 1e-9, "{t:?} {y}");
            }
        }
        let c = Transform::Logit { lower: 0.0, upper: 1.0 }.constrain(-800.0);
        assert!(c.x >= 0.0 && c.log_jac.is_finite() && c.dlog_jac_dy.is_finite());
    }

    /// Central differences with step h have truncation error O(h²·f‴); with h = 1e-5 and the
    /// smooth densities here the relative error is ~1e-8, so 1e-5 relative is a safe bound.
    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-5 * (1.0 + a.abs().max(b.abs()))
    }

    proptest! {
        #[test]
        fn prior_derivative_matches_finite_differences(which in 0usize..8, y in -6.0f64..6.0) {
            let p = all_priors()[which];
            // evaluate at a point inside the support reached through the prior's own transform
            let x = p.transform().constrain(y).x;
            let (lo, hi) = match p.support() {
                Support::Real => (f64::NEG_INFINITY, f64::INFINITY),
                Support::LowerBounded(l) => (l, f64::INFINITY),
                Support::Interval(a, b) => (a, b),
            };
            // the step shrinks with the distance d to a boundary, where log-densities curve like
            // 1/d: truncation error h²·f‴ ~ h²/d³ stays ~1e-10·(1/d) relative to f′ ~ 1/d
            let h = 1e-5 * (1.0 + x.abs()).min(x - lo).min(hi - x);
            prop_assume!(x - h > lo && x + h < hi);
            let (_, d) = p.ln_pdf_and_deriv(x);
            let fd = (p.ln_pdf(x + h) - p.ln_pdf(x - h)) / (2.0 * h);
            prop_assert!(close(d, fd), "{:?} at {}: {} vs {}", p, x, d, fd);
        }

        #[test]
        fn transform_jacobian_terms_match_finite_differences(which in 0usize..3, y in -20.0f64..20.0) {
            let t = [Transform::Identity, Transform::Log { lower: 0.5 }, Transform::Logit { lower: -1.0, upper: 3.0 }][which];
            let h = 1e-5;
            let c = t.constrain(y);
            let (p, m) = (t.constrain(y + h), t.constrain(y - h));
            prop_assert!(close(c.dx_dy, (p.x - m.x) / (2.0 * h)));
            prop_assert!(close(c.dlog_jac_dy, (p.log_jac - m.log_jac) / (2.0 * h)));
            // log|J| is the log of dx/dy
            if c.dx_dy > 1e-300 { prop_assert!(close(c.log_jac, c.dx_dy.ln())); }
        }
    }
}
