//! Shared helpers for the integration tests: locating the reference datasets.
#![allow(dead_code, clippy::needless_range_loop, clippy::neg_cmp_op_on_partial_ord)]

use std::path::PathBuf;

/// The shared reference datasets folder (`$MMLOOP_DATASETS`, else `../shared/datasets` beside the
/// repository root), or `None` with a message on stderr so the calling test can skip visibly.
pub fn datasets_dir(test: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("MMLOOP_DATASETS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets"),
    };
    if dir.join("inference").is_dir() {
        Some(dir.join("inference"))
    } else {
        eprintln!(
            "SKIPPED {test}: reference datasets not found at {} (set MMLOOP_DATASETS to the shared/datasets folder)",
            dir.display()
        );
        None
    }
}

use mmloop_inference::diagnostics::special::qnorm;
use mmloop_inference::summary::{ParamSummary, summarize};
use mmloop_inference::{LogDensity, LogDensityError, Posterior};

/// Independent normals N(mu_j, sigma_j²).
pub struct IidNormal {
    pub mu: Vec<f64>,
    pub sigma: Vec<f64>,
}

impl LogDensity for IidNormal {
    fn dim(&self) -> usize {
        self.mu.len()
    }
    fn logp_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, LogDensityError> {
        let mut lp = 0.0;
        for j in 0..x.len() {
            let z = (x[j] - self.mu[j]) / self.sigma[j];
            lp -= 0.5 * z * z;
            grad[j] = -z / self.sigma[j];
        }
        Ok(lp)
    }
}

/// Multivariate normal N(mean, cov), evaluated through its precision matrix.
pub struct Gaussian {
    pub mean: Vec<f64>,
    pub cov: Vec<Vec<f64>>,
    pub precision: Vec<Vec<f64>>,
}

impl Gaussian {
    pub fn new(mean: Vec<f64>, cov: Vec<Vec<f64>>) -> Gaussian {
        let precision = inverse_spd(&cov);
        Gaussian { mean, cov, precision }
    }

    /// Correlation rho^|i-j| (AR(1)) with standard deviations `sds`.
    pub fn ar1(sds: &[f64], rho: f64) -> Gaussian {
        let d = sds.len();
        let cov =
            (0..d).map(|i| (0..d).map(|j| sds[i] * sds[j] * rho.powi((i as i32 - j as i32).abs())).collect()).collect();
        Gaussian::new(vec![0.5; d], cov)
    }
}

impl LogDensity for Gaussian {
    fn dim(&self) -> usize {
        self.mean.len()
    }
    fn logp_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, LogDensityError> {
        let d = x.len();
        let diff: Vec<f64> = (0..d).map(|j| x[j] - self.mean[j]).collect();
        let mut lp = 0.0;
        for i in 0..d {
            let pd: f64 = (0..d).map(|j| self.precision[i][j] * diff[j]).sum();
            grad[i] = -pd;
            lp -= 0.5 * diff[i] * pd;
        }
        Ok(lp)
    }
}

/// Cholesky factor (lower) of a symmetric positive-definite matrix.
pub fn cholesky(a: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = a.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                let v = a[i][i] - s;
                assert!(v > 0.0, "matrix not positive definite");
                l[i][j] = v.sqrt();
            } else {
                l[i][j] = (a[i][j] - s) / l[j][j];
            }
        }
    }
    l
}

/// Inverse of a symmetric positive-definite matrix via its Cholesky factor.
pub fn inverse_spd(a: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = a.len();
    let l = cholesky(a);
    let mut inv = vec![vec![0.0; n]; n];
    for col in 0..n {
        // Solve L y = e_col, then L' x = y.
        let mut y = vec![0.0; n];
        for i in 0..n {
            let rhs = if i == col { 1.0 } else { 0.0 };
            y[i] = (rhs - (0..i).map(|k| l[i][k] * y[k]).sum::<f64>()) / l[i][i];
        }
        let mut x = vec![0.0; n];
        for i in (0..n).rev() {
            x[i] = (y[i] - (i + 1..n).map(|k| l[k][i] * x[k]).sum::<f64>()) / l[i][i];
        }
        for i in 0..n {
            inv[i][col] = x[i];
        }
    }
    inv
}

/// Conjugate Bayesian linear regression with known noise: y ~ N(X beta, sigma²),
/// beta ~ N(0, tau² I). The posterior is Gaussian with covariance (X'X/σ² + I/τ²)⁻¹.
pub struct LinearRegression {
    pub x: Vec<Vec<f64>>,
    pub y: Vec<f64>,
    pub sigma: f64,
    pub tau: f64,
}

impl LinearRegression {
    /// A deterministic design: intercept plus `d - 1` smooth, correlated covariates; coefficients
    /// `1, -0.5, 0.25, ...`; noise from a fixed sequence.
    pub fn synthetic(n: usize, d: usize) -> LinearRegression {
        let x: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                let t = i as f64 / n as f64;
                (0..d).map(|j| if j == 0 { 1.0 } else { (t * (j as f64 + 1.0) * 3.1).sin() + 0.5 * t }).collect()
            })
            .collect();
        let beta: Vec<f64> = (0..d).map(|j| (-0.5f64).powi(j as i32)).collect();
        let y = x
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let noise = qnorm(((i as f64 * 0.618_033_988_75).fract() * 0.98) + 0.01);
                row.iter().zip(&beta).map(|(a, b)| a * b).sum::<f64>() + 0.7 * noise
            })
            .collect();
        LinearRegression { x, y, sigma: 0.7, tau: 5.0 }
    }

    /// Exact posterior mean and covariance.
    pub fn posterior(&self) -> (Vec<f64>, Vec<Vec<f64>>) {
        let d = self.x[0].len();
        let s2 = self.sigma * self.sigma;
        let mut prec = vec![vec![0.0; d]; d];
        let mut xty = vec![0.0; d];
        for (row, yi) in self.x.iter().zip(&self.y) {
            for i in 0..d {
                xty[i] += row[i] * yi / s2;
                for j in 0..d {
                    prec[i][j] += row[i] * row[j] / s2;
                }
            }
        }
        for (i, row) in prec.iter_mut().enumerate() {
            row[i] += 1.0 / (self.tau * self.tau);
        }
        let cov = inverse_spd(&prec);
        let mean = (0..d).map(|i| (0..d).map(|j| cov[i][j] * xty[j]).sum()).collect();
        (mean, cov)
    }
}

impl LogDensity for LinearRegression {
    fn dim(&self) -> usize {
        self.x[0].len()
    }
    fn logp_grad(&self, beta: &[f64], grad: &mut [f64]) -> Result<f64, LogDensityError> {
        let s2 = self.sigma * self.sigma;
        let t2 = self.tau * self.tau;
        let mut lp = 0.0;
        for (g, b) in grad.iter_mut().zip(beta) {
            lp -= 0.5 * b * b / t2;
            *g = -b / t2;
        }
        for (row, yi) in self.x.iter().zip(&self.y) {
            let r = yi - row.iter().zip(beta).map(|(a, b)| a * b).sum::<f64>();
            lp -= 0.5 * r * r / s2;
            for (g, a) in grad.iter_mut().zip(row) {
                *g += r * a / s2;
            }
        }
        Ok(lp)
    }
    fn param_names(&self) -> Vec<String> {
        (0..self.dim()).map(|j| format!("beta[{}]", j + 1)).collect()
    }
}

/// Eight schools (posteriordb): mu ~ N(0, 5), tau ~ HalfCauchy(0, 5), y_j ~ N(theta_j, sigma_j).
/// Non-centred: theta_j = mu + tau * theta_tilde_j with theta_tilde_j ~ N(0, 1); centred:
/// theta_j ~ N(mu, tau). Unconstrained parameters: [mu, log tau, theta_tilde or theta (8)].
pub struct EightSchools {
    pub y: Vec<f64>,
    pub sigma: Vec<f64>,
    pub centered: bool,
}

impl EightSchools {
    pub fn new(centered: bool) -> EightSchools {
        EightSchools {
            y: vec![28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0],
            sigma: vec![15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0],
            centered,
        }
    }

    /// Unconstrained draw -> [theta[1..8], mu, tau] (posteriordb's names and order).
    pub fn constrain(&self, x: &[f64]) -> Vec<f64> {
        let (mu, tau) = (x[0], x[1].exp());
        let mut out: Vec<f64> = x[2..].iter().map(|&t| if self.centered { t } else { mu + tau * t }).collect();
        out.push(mu);
        out.push(tau);
        out
    }

    pub fn constrained_names() -> Vec<String> {
        let mut names: Vec<String> = (1..=8).map(|j| format!("theta[{j}]")).collect();
        names.push("mu".into());
        names.push("tau".into());
        names
    }
}

impl LogDensity for EightSchools {
    fn dim(&self) -> usize {
        2 + self.y.len()
    }
    fn logp_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, LogDensityError> {
        let (mu, s) = (x[0], x[1]);
        let tau = s.exp();
        let u = tau * tau / 25.0;
        // mu ~ N(0, 5); tau ~ HalfCauchy(0, 5) with the log-Jacobian s of tau = exp(s).
        let mut lp = -0.5 * mu * mu / 25.0 - u.ln_1p() + s;
        grad[0] = -mu / 25.0;
        grad[1] = 1.0 - 2.0 * u / (1.0 + u);
        for j in 0..self.y.len() {
            let v = x[2 + j];
            let s2 = self.sigma[j] * self.sigma[j];
            if self.centered {
                let d = v - mu;
                lp += -0.5 * d * d / (tau * tau) - s - 0.5 * (self.y[j] - v).powi(2) / s2;
                grad[0] += d / (tau * tau);
                grad[1] += d * d / (tau * tau) - 1.0;
                grad[2 + j] = -d / (tau * tau) + (self.y[j] - v) / s2;
            } else {
                let r = self.y[j] - mu - tau * v;
                lp += -0.5 * v * v - 0.5 * r * r / s2;
                grad[0] += r / s2;
                grad[1] += tau * v * r / s2;
                grad[2 + j] = -v + tau * r / s2;
            }
        }
        Ok(lp)
    }
    fn param_names(&self) -> Vec<String> {
        let mut names = vec!["mu".to_string(), "log_tau".to_string()];
        let base = if self.centered { "theta" } else { "theta_tilde" };
        names.extend((1..=self.y.len()).map(|j| format!("{base}[{j}]")));
        names
    }
}

/// posteriordb's `blr`: beta_d ~ N(0, 10), sigma ~ N+(0, 10), y ~ N(X beta, sigma).
/// Unconstrained parameters: [beta (D), log sigma].
pub struct Blr {
    pub x: Vec<Vec<f64>>,
    pub y: Vec<f64>,
}

impl Blr {
    pub fn constrain(x: &[f64]) -> Vec<f64> {
        let mut out = x.to_vec();
        let last = out.len() - 1;
        out[last] = out[last].exp();
        out
    }
}

impl LogDensity for Blr {
    fn dim(&self) -> usize {
        self.x[0].len() + 1
    }
    fn logp_grad(&self, p: &[f64], grad: &mut [f64]) -> Result<f64, LogDensityError> {
        let d = self.x[0].len();
        let (beta, s) = (&p[..d], p[d]);
        let sigma = s.exp();
        let s2 = sigma * sigma;
        let n = self.y.len() as f64;
        let mut lp = -0.5 * s2 / 100.0 + s - n * s;
        grad[d] = -s2 / 100.0 + 1.0 - n;
        for j in 0..d {
            lp -= 0.5 * beta[j] * beta[j] / 100.0;
            grad[j] = -beta[j] / 100.0;
        }
        for (row, yi) in self.x.iter().zip(&self.y) {
            let r = yi - row.iter().zip(beta).map(|(a, b)| a * b).sum::<f64>();
            lp -= 0.5 * r * r / s2;
            grad[d] += r * r / s2;
            for j in 0..d {
                grad[j] += r * row[j] / s2;
            }
        }
        Ok(lp)
    }
    fn param_names(&self) -> Vec<String> {
        let d = self.x[0].len();
        let mut names: Vec<String> = (1..=d).map(|j| format!("beta[{j}]")).collect();
        names.push("log_sigma".into());
        names
    }
}

/// The checks of the sampler-correctness suite for one parameter with known marginal N(m, s²):
/// mean, sd, q05 and q95 within `k` Monte Carlo standard errors of the truth.
pub fn check_normal_marginal(p: &ParamSummary, m: f64, s: f64, k: f64) -> Vec<String> {
    let mut problems = Vec::new();
    let z05 = qnorm(0.05);
    let checks = [
        ("mean", p.mean, m, p.mcse_mean),
        ("sd", p.sd, s, p.mcse_sd),
        ("q05", p.q05, m + s * z05, p.mcse_q05),
        ("q95", p.q95, m - s * z05, p.mcse_q95),
    ];
    for (what, got, truth, mcse) in checks {
        if !((got - truth).abs() <= k * mcse) {
            problems.push(format!(
                "{} {what}: {got:.5} vs truth {truth:.5} ({:.1} MCSE, mcse {mcse:.2e})",
                p.name,
                (got - truth).abs() / mcse
            ));
        }
    }
    problems
}

/// Convergence checks every correctness test requires: R-hat < 1.01, bulk/tail ESS > 400, no
/// divergences.
pub fn check_convergence(posterior: &Posterior, params: &[ParamSummary]) -> Vec<String> {
    let mut problems = Vec::new();
    for p in params {
        if !(p.rhat < 1.01) {
            problems.push(format!("{} rhat {:.4}", p.name, p.rhat));
        }
        if !(p.ess_bulk > 400.0 && p.ess_tail > 400.0) {
            problems.push(format!("{} ess bulk {:.0} tail {:.0}", p.name, p.ess_bulk, p.ess_tail));
        }
    }
    if posterior.divergences() > 0 {
        problems.push(format!("{} divergences", posterior.divergences()));
    }
    problems
}

/// Summaries of a posterior (re-exported for brevity).
pub fn summaries(posterior: &Posterior) -> Vec<ParamSummary> {
    summarize(posterior)
}
