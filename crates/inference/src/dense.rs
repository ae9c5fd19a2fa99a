//! The dense metric as a change of variables: NUTS with inverse metric Σ = LLᵀ on x is NUTS with
//! the identity metric on z = L⁻¹(x − μ) (Neal 2011, "MCMC using Hamiltonian dynamics", §4.1), so
//! a diagonal-metric sampler (nuts-rs) run on [`Whitened`] samples with a dense metric.
//!
//! ```
//! use mmloop_inference::{LogDensity, LogDensityError};
//! use mmloop_inference::dense::{Whitened, covariance_factor};
//! struct Gauss; // N(0, diag(4, 1))
//! impl LogDensity for Gauss {
//!     fn dim(&self) -> usize { 2 }
//!     fn logp_grad(&self, x: &[f64], g: &mut [f64]) -> Result<f64, LogDensityError> {
//!         g[0] = -x[0] / 4.0; g[1] = -x[1];
//!         Ok(-x[0] * x[0] / 8.0 - x[1] * x[1] / 2.0)
//!     }
//! }
//! let draws = vec![vec![2.0, 1.0], vec![-2.0, -1.0], vec![2.0, -1.0], vec![-2.0, 1.0]];
//! let (mean, l) = covariance_factor(&draws, &["a".into(), "b".into()]).unwrap();
//! let w = Whitened::new(&Gauss, mean, l);
//! let x = w.to_x(&[1.0, 0.0]); // one unit of z is about one posterior sd of x
//! assert!(x[0] > 1.5 && x[1] == 0.0);
//! ```

use faer::{Mat, Side};

use crate::{InferenceError, LogDensity, LogDensityError};

/// `density` seen in whitened coordinates: x = μ + Lz, log p_z(z) = log p(x) (the Jacobian |L| is
/// a constant), ∇_z = Lᵀ∇_x.
pub struct Whitened<'a, D: ?Sized> {
    density: &'a D,
    mean: Vec<f64>,
    /// Lower-triangular factor, row-major d × d.
    l: Vec<f64>,
}

impl<'a, D: LogDensity + ?Sized> Whitened<'a, D> {
    /// `l` is the lower-triangular Cholesky factor (row-major, d × d) of the metric Σ = LLᵀ.
    pub fn new(density: &'a D, mean: Vec<f64>, l: Vec<f64>) -> Self {
        debug_assert_eq!(l.len(), mean.len() * mean.len());
        Whitened { density, mean, l }
    }

    /// x = μ + Lz.
    pub fn to_x(&self, z: &[f64]) -> Vec<f64> {
        let d = self.mean.len();
        (0..d).map(|i| self.mean[i] + crate::dense::dot(&self.l[i * d..i * d + i + 1], &z[..i + 1])).collect()
    }

    /// z = L⁻¹(x − μ) (forward substitution).
    pub fn to_z(&self, x: &[f64]) -> Vec<f64> {
        let d = self.mean.len();
        let mut z = vec![0.0; d];
        for i in 0..d {
            let s = dot(&self.l[i * d..i * d + i], &z[..i]);
            z[i] = (x[i] - self.mean[i] - s) / self.l[i * d + i];
        }
        z
    }

    /// The diagonal of LDLᵀ: the inverse metric in x of a diagonal metric D on z.
    pub fn metric_diag_in_x(&self, d_z: &[f64]) -> Vec<f64> {
        let d = self.mean.len();
        (0..d).map(|i| (0..=i).map(|k| self.l[i * d + k] * self.l[i * d + k] * d_z[k]).sum()).collect()
    }
}

impl<D: LogDensity + ?Sized> LogDensity for Whitened<'_, D> {
    fn dim(&self) -> usize {
        self.mean.len()
    }

    fn logp_grad(&self, z: &[f64], grad: &mut [f64]) -> Result<f64, LogDensityError> {
        let d = self.mean.len();
        let x = self.to_x(z);
        let mut gx = vec![0.0; d];
        let lp = self.density.logp_grad(&x, &mut gx)?;
        // ∇_z = Lᵀ ∇_x: row i of L scatters g_i into columns 0..=i
        grad.fill(0.0);
        for i in 0..d {
            let gi = gx[i];
            for (gk, lik) in grad[..=i].iter_mut().zip(&self.l[i * d..i * d + i + 1]) {
                *gk += lik * gi;
            }
        }
        Ok(lp)
    }

    fn param_names(&self) -> Vec<String> {
        self.density.param_names().into_iter().map(|n| format!("whitened {n}")).collect()
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Mean μ and the Cholesky factor L (row-major, lower) of the shrunk covariance of `draws`:
/// Σ̂ = (1 − γ)S + γ·diag(S), γ = d/(n + d), with S the sample covariance of n draws in d
/// dimensions. Shrinking towards the diagonal keeps Σ̂ positive definite and damps the noise of
/// the off-diagonal estimates when n is not much larger than d; with n ≫ d it is S.
///
/// Errors when fewer than two draws are given or a coordinate did not move (zero variance):
/// no metric can be learned from such draws.
pub fn covariance_factor(draws: &[Vec<f64>], names: &[String]) -> Result<(Vec<f64>, Vec<f64>), InferenceError> {
    let n = draws.len();
    let d = names.len();
    if n < 2 {
        return Err(InferenceError::InvalidSettings(format!(
            "the dense metric needs at least 2 warm-up draws to estimate a covariance, got {n}"
        )));
    }
    let mut mean = vec![0.0; d];
    for x in draws {
        for (m, v) in mean.iter_mut().zip(x) {
            *m += v;
        }
    }
    for m in &mut mean {
        *m /= n as f64;
    }
    let mut s = Mat::<f64>::zeros(d, d);
    let mut c = vec![0.0; d];
    for x in draws {
        for i in 0..d {
            c[i] = x[i] - mean[i];
        }
        for j in 0..d {
            for i in j..d {
                s[(i, j)] += c[i] * c[j];
            }
        }
    }
    let gamma = d as f64 / (n + d) as f64;
    for j in 0..d {
        let var = s[(j, j)] / (n - 1) as f64;
        if !(var.is_finite() && var > 0.0) {
            return Err(InferenceError::Sampler {
                chain: 0,
                message: format!(
                    "the first warm-up stage of the dense metric did not move `{}` (variance {var}); \
                     use the diagonal metric, or check that the parameter is identified",
                    names[j]
                ),
            });
        }
    }
    for j in 0..d {
        for i in j..d {
            let v = s[(i, j)] / (n - 1) as f64;
            let shrunk = if i == j { v } else { (1.0 - gamma) * v };
            s[(i, j)] = shrunk;
            s[(j, i)] = shrunk;
        }
    }
    let llt = s.llt(Side::Lower).map_err(|e| InferenceError::Sampler {
        chain: 0,
        message: format!("the warm-up covariance of the dense metric is not positive definite ({e:?})"),
    })?;
    let lm = llt.L();
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            l[i * d + j] = lm[(i, j)];
        }
    }
    Ok((mean, l))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// N(m, Σ) with Σ = [[4, 1.8], [1.8, 1]].
    struct Corr;
    const M: [f64; 2] = [1.0, -2.0];
    const P: [[f64; 2]; 2] = [[1.0 / 0.76, -1.8 / 0.76], [-1.8 / 0.76, 4.0 / 0.76]]; // Σ⁻¹

    impl LogDensity for Corr {
        fn dim(&self) -> usize {
            2
        }
        fn logp_grad(&self, x: &[f64], g: &mut [f64]) -> Result<f64, LogDensityError> {
            let c = [x[0] - M[0], x[1] - M[1]];
            g[0] = -(P[0][0] * c[0] + P[0][1] * c[1]);
            g[1] = -(P[1][0] * c[0] + P[1][1] * c[1]);
            Ok(0.5 * (c[0] * g[0] + c[1] * g[1]))
        }
    }

    #[test]
    fn whitening_by_the_true_covariance_gives_a_standard_normal() {
        // L of Σ: [[2, 0], [0.9, √0.19]]
        let l = vec![2.0, 0.0, 0.9, 0.19f64.sqrt()];
        let w = Whitened::new(&Corr, M.to_vec(), l);
        let mut g = [0.0; 2];
        for z in [[0.3, -1.2], [2.0, 0.5], [-0.7, 0.0]] {
            let lp = w.logp_grad(&z, &mut g).unwrap();
            // log N(z; 0, I) up to the constant, and its gradient −z
            assert!((lp + 0.5 * (z[0] * z[0] + z[1] * z[1])).abs() < 1e-12, "lp {lp} at {z:?}");
            assert!((g[0] + z[0]).abs() < 1e-12 && (g[1] + z[1]).abs() < 1e-12, "grad {g:?} at {z:?}");
            let x = w.to_x(&z);
            let back = w.to_z(&x);
            assert!((back[0] - z[0]).abs() < 1e-12 && (back[1] - z[1]).abs() < 1e-12);
        }
        // metric diag in x of the identity on z is diag(Σ)
        let dx = w.metric_diag_in_x(&[1.0, 1.0]);
        assert!((dx[0] - 4.0).abs() < 1e-12 && (dx[1] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn covariance_factor_recovers_the_sample_covariance_when_draws_are_many() {
        // draws on a 2-D lattice with known moments: x = M + A·u, u ∈ {±1}² (cov AAᵀ exactly
        // when n/(n−1) is accounted for)
        let a = [[2.0, 0.0], [0.9, 0.19f64.sqrt()]];
        let mut draws = Vec::new();
        for _ in 0..5000 {
            for u in [[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]] {
                draws.push(vec![M[0] + a[0][0] * u[0], M[1] + a[1][0] * u[0] + a[1][1] * u[1]]);
            }
        }
        let n = draws.len() as f64;
        let (mean, l) = covariance_factor(&draws, &["a".into(), "b".into()]).unwrap();
        assert!((mean[0] - M[0]).abs() < 1e-12 && (mean[1] - M[1]).abs() < 1e-12);
        let gamma = 2.0 / (n + 2.0);
        let k = n / (n - 1.0);
        let sigma = [[4.0 * k, 1.8 * k * (1.0 - gamma)], [1.8 * k * (1.0 - gamma), 1.0 * k]];
        let llt = [[l[0] * l[0], l[0] * l[2]], [l[2] * l[0], l[2] * l[2] + l[3] * l[3]]];
        for i in 0..2 {
            for j in 0..2 {
                assert!((llt[i][j] - sigma[i][j]).abs() < 1e-12, "({i},{j}) {} vs {}", llt[i][j], sigma[i][j]);
            }
        }
    }

    #[test]
    fn a_coordinate_that_never_moved_is_an_error_naming_it() {
        let draws = vec![vec![1.0, 0.5], vec![2.0, 0.5], vec![3.0, 0.5]];
        let e = covariance_factor(&draws, &["tau".into(), "stuck".into()]).unwrap_err().to_string();
        assert!(e.contains("`stuck`") && e.contains("diagonal metric"), "{e}");
        assert!(covariance_factor(&draws[..1], &["tau".into(), "stuck".into()]).is_err());
    }
}
