//! Expected information gain of a test (or a set of tests) about the model, in nats.
//!
//! A test's readout is y = L + ε, ε ~ N(0, σ²), with L the test's implied lift (a function of the
//! model parameters). The information the readout carries about the parameters equals the
//! information it carries about L (y depends on the parameters only through L), so
//! EIG = I(θ; y) = I(L; y) = H(y) − H(y | L). When the posterior of L is Gaussian with variance V,
//! y ~ N(m, V + σ²) and EIG = ½·ln(1 + V/σ²) (Lindley 1956; Chaloner & Verdinelli 1995, §2.2).
//! For J tests read out together, L ~ N(m, Σ_L) and y = L + ε, ε ~ N(0, D), D = diag(σ_j²), so
//! EIG = ½·ln det(I + D^{-1/2} Σ_L D^{-1/2}) — tests of correlated channels share information, and the
//! joint EIG is at most the sum of the single EIGs (Hadamard's inequality applied to
//! I + D^{-1/2} Σ_L D^{-1/2}), with equality when Σ_L is diagonal.
//!
//! Where the implied-lift posterior is far from Gaussian (skewed, bimodal), [`eig_monte_carlo`]
//! estimates I(L; y) on the draws themselves: E over (d, y ~ N(L_d, D)) of
//! ln p(y | L_d) − ln( (1/N) Σ_{d'} p(y | L_{d'}) ), the nested estimator of Ryan (2003) with the
//! inner sum over all N posterior draws (the outer draw included — the "prior contrastive"
//! form, a lower bound on I that is within ln N of it and converges to it as N grows; Foster et al. 2019).

use faer::{Mat, Side};

use super::ValueError;
use super::evoi::TestSignal;
use super::rng;

/// EIG of one test in nats: ½·ln(1 + `var_lift`/σ²), `var_lift` the posterior variance of its
/// implied lift and `sigma` the readout's standard error (same units).
pub fn eig_single(var_lift: f64, sigma: f64) -> f64 {
    0.5 * (var_lift / (sigma * sigma)).ln_1p()
}

/// The posterior covariance (divisor N − 1) of the tests' implied lifts across the draws.
pub fn lift_covariance(tests: &[&TestSignal]) -> Result<Mat<f64>, ValueError> {
    let j = tests.len();
    let n = tests.first().map(|t| t.lifts.len()).unwrap_or(0);
    if n < 2 {
        return Err(ValueError::NoDraws);
    }
    for t in tests {
        t.check(n)?;
    }
    let means: Vec<f64> = tests.iter().map(|t| t.lifts.iter().sum::<f64>() / n as f64).collect();
    let mut cov = Mat::<f64>::zeros(j, j);
    for a in 0..j {
        for b in 0..=a {
            let (la, lb) = (&tests[a].lifts, &tests[b].lifts);
            let c = la.iter().zip(lb).map(|(x, y)| (x - means[a]) * (y - means[b])).sum::<f64>() / (n - 1) as f64;
            cov[(a, b)] = c;
            cov[(b, a)] = c;
        }
    }
    Ok(cov)
}

/// Joint EIG of a set of tests read out together, in nats: ½·ln det(I + D^{-1/2} Σ_L D^{-1/2}) with
/// Σ_L the posterior covariance of their implied lifts across the draws and D = diag(σ_j²).
/// The determinant comes from a Cholesky factor (the matrix is symmetric positive definite:
/// identity plus a covariance). An empty set gains 0.
pub fn eig_joint(tests: &[&TestSignal]) -> Result<f64, ValueError> {
    if tests.is_empty() {
        return Ok(0.0);
    }
    let cov = lift_covariance(tests)?;
    let j = tests.len();
    let m = Mat::<f64>::from_fn(j, j, |a, b| {
        let scaled = cov[(a, b)] / (tests[a].sigma * tests[b].sigma);
        if a == b { 1.0 + scaled } else { scaled }
    });
    let llt =
        m.llt(Side::Lower).map_err(|e| ValueError::Linalg(format!("I + Σ_L/σ² is not positive definite ({e:?})")))?;
    let l = llt.L();
    Ok((0..j).map(|i| l[(i, i)].ln()).sum())
}

/// A Monte-Carlo EIG and its Monte-Carlo standard error.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MonteCarloEig {
    pub eig: f64,
    pub mcse: f64,
    pub n_outer: usize,
}

/// Monte-Carlo EIG (nats) of a set of tests on the empirical posterior of their implied lifts (see
/// the module doc). `n_outer` simulated readouts; readout s uses draw `rng::index(seed, 0, s)` and
/// noise `rng::normal(seed, 1 + test.id, s)`, the same streams as [`super::evoi::evoi`].
pub fn eig_monte_carlo(tests: &[&TestSignal], n_outer: usize, seed: u64) -> Result<MonteCarloEig, ValueError> {
    use rayon::prelude::*;
    let n = tests.first().map(|t| t.lifts.len()).unwrap_or(0);
    if n == 0 {
        return Err(ValueError::NoDraws);
    }
    for t in tests {
        t.check(n)?;
    }
    if n_outer < 2 {
        return Err(ValueError::BadOption {
            option: "n_outer", message: format!("needs ≥ 2 readouts, got {n_outer}")
        });
    }
    let terms: Vec<f64> = (0..n_outer)
        .into_par_iter()
        .map(|s| {
            let d = rng::index(seed, 0, s as u64, n);
            let y: Vec<f64> =
                tests.iter().map(|t| t.lifts[d] + t.sigma * rng::normal(seed, 1 + t.id, s as u64)).collect();
            // log-likelihood up to the constant shared by all draws
            let ll = |dd: usize| -> f64 {
                tests.iter().zip(&y).map(|(t, yy)| -0.5 * ((yy - t.lifts[dd]) / t.sigma).powi(2)).sum()
            };
            let own = ll(d);
            let all: Vec<f64> = (0..n).map(ll).collect();
            let mx = all.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = mx + (all.iter().map(|v| (v - mx).exp()).sum::<f64>() / n as f64).ln();
            own - lse
        })
        .collect();
    let m = terms.iter().sum::<f64>() / n_outer as f64;
    let v = terms.iter().map(|t| (t - m).powi(2)).sum::<f64>() / (n_outer - 1) as f64;
    Ok(MonteCarloEig { eig: m, mcse: (v / n_outer as f64).sqrt(), n_outer })
}
