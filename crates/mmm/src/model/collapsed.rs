//! Geo intercepts integrated out of a Normal likelihood (NUTS samples the rest; each draw's
//! intercepts are then drawn exactly from their conditional).
//!
//! ## The marginal
//! With a Normal likelihood and one noise sd σ, geo g's intercept enters its mean linearly:
//! ỹ(g,t) = μ_a + δ_g + m(g,t) + ε, δ_g ~ N(0, σ_a²), ε ~ N(0, σ²), m everything else in the mean
//! (trend, seasonality, controls, media) over the T = `n_fit` fitted periods of the geo (every geo
//! has the same fitted periods). With r_t = ỹ(g,t) − μ_a − m(g,t), r ~ N(0, σ²I_T + σ_a²11ᵀ), and
//! by the matrix determinant lemma and Sherman–Morrison (e.g. Rasmussen & Williams 2006, A.3), with
//! D = σ² + Tσ_a², S = Σ_t r_t, Q = Σ_t r_t²:
//! ```text
//! ln p(r) = −(T/2)·ln(2πσ²) − ½·ln(D/σ²) − [Q − σ_a²S²/D] / (2σ²)
//! ∂/∂r_t   = −(r_t − â)/σ²,   â = σ_a²S/D
//! ∂/∂σ_a   = σ_a·(S²/D² − T/D)
//! ∂/∂σ     = −(T − 1)/σ − σ/D + Q/σ³ − σ_a²S²(D + σ²)/(σ³D²)
//! δ_g | r  ~ N(â, σ²σ_a²/D)
//! ```
//! â is the conditional mean of the geo's deviation, so the residual's adjoint is the joint
//! model's with that mean subtracted, and the rest of the gradient code (media, controls, trend,
//! the level coordinate) is the joint model's.
//!
//! ## Why
//! Sampling (σ_a, δ) jointly makes a funnel or a ridge whatever the parametrisation: non-centred,
//! the data pin σ_a·u_g, a curved ridge; centred, the deviations shrink with σ_a (see
//! [`super::centring`]). The Meridian 20-geo example, non-centred, left 28–62 divergences at small
//! σ_a with large |u_g|. Integrated out, neither exists: NUTS samples (μ_a, σ_a, σ, the media
//! and baseline parameters) from their exact marginal, G fewer coordinates.
//!
//! ## The draws
//! The intercepts are recovered per draw from δ_g | rest ~ N(â, σ²σ_a²/D) with the chain's own
//! seeded stream, in the model's own coordinates ([`MmmModel::convert_point`]'s form), so a fit
//! writes the same parameters as the joint model. Student-t likelihoods have no closed-form
//! marginal: they are sampled jointly.
//!
//! ## Where it is the default
//! Geo models with a Normal likelihood and at least
//! [`super::centring::MIN_GEOS_FOR_POOLING_SCALE`] geos ([`MmmModel::collapse_intercepts`]). With
//! two geos the data cannot bound σ_a and the global intercept μ_a (the mean of two geos give or
//! take σ_a/√2) is heavy-tailed in the marginal: on the PyMC 2-geo example (target_accept 0.95,
//! seeds 1–5, dev profile) integrated out gave 0, 0, 0, 2, 1 divergences but seed 4's min tail ESS
//! 368 (intercept) and seed 5's R-hat 1.0128 (a drawn intercept), where the partially centred joint
//! form meets the bar on all five (2, 0, 3, 1, 0 divergences, R-hat ≤ 1.0082, ESS ≥ 567 / 505).

// Index loops mirror the sums of the math (over g, t) and address several arrays at once.
#![allow(clippy::needless_range_loop)]

use super::MmmModel;
use crate::spec::Likelihood;
use mmloop_inference::{LogDensity, LogDensityError};

/// One geo's marginal over its intercept deviation (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GeoMarginal {
    /// ln p(r), normalising constants included.
    pub ll: f64,
    /// â = σ_a²S/D: the conditional mean of δ_g.
    pub a_hat: f64,
    /// σ²σ_a²/D: the conditional variance of δ_g.
    pub var: f64,
    /// ∂ln p/∂σ.
    pub d_sigma: f64,
    /// ∂ln p/∂σ_a.
    pub d_scale: f64,
}

/// The marginal of one geo's residuals r (sum `s`, sum of squares `q`, `t` periods) over its
/// intercept deviation δ ~ N(0, σ_a²), with noise sd `sigma` and scale `scale` = σ_a.
pub(crate) fn geo_marginal(s: f64, q: f64, t: f64, sigma: f64, scale: f64) -> GeoMarginal {
    const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;
    let s2 = sigma * sigma;
    let v = scale * scale;
    let d = s2 + t * v;
    let a_hat = v * s / d;
    let ll = -t * (sigma.ln() + LN_SQRT_2PI) - 0.5 * (d / s2).ln() - (q - v * s * s / d) / (2.0 * s2);
    let d_scale = scale * (s * s / (d * d) - t / d);
    let d_sigma = -(t - 1.0) / sigma - sigma / d + q / (s2 * sigma) - v * s * s * (d + s2) / (s2 * sigma * d * d);
    GeoMarginal { ll, a_hat, var: s2 * v / d, d_sigma, d_scale }
}

/// The model with its geo intercepts integrated out, as a [`LogDensity`] over every coordinate but
/// the intercept deviations (see the module doc).
#[derive(Debug, Clone)]
pub struct CollapsedIntercepts {
    /// The model in its own form: the form of the points [`CollapsedIntercepts::expand`] returns.
    pub full: MmmModel,
    /// The model with its geo intercepts non-centred: the density reads its coordinates with the
    /// u_g left at 0.
    base: MmmModel,
    /// First index and length of the intercept block in the full vector.
    start: usize,
    g_n: usize,
}

impl CollapsedIntercepts {
    /// `None` for models whose intercepts cannot be integrated out: national models and Student-t
    /// likelihoods.
    pub fn new(model: &MmmModel) -> Option<Self> {
        let (_, start) = model.baseline.geo_intercept?;
        if model.likelihood != Likelihood::Normal {
            return None;
        }
        let mut base = model.clone();
        base.set_centring(&super::centring::Centring {
            intercept: false,
            intercept_levels: false,
            intercept_power: None,
            ..model.centring()
        });
        // the level coordinate as the model has it (the geo-levels form replaces it; the base
        // then takes set_centring's choice)
        if !model.baseline.geo_levels {
            base.level_coord = model.level_coord;
        }
        Some(CollapsedIntercepts { full: model.clone(), base, start, g_n: model.n_geos() })
    }

    /// A full vector of the base (non-centred) model with the intercept block at 0.
    fn insert(&self, q: &[f64]) -> Vec<f64> {
        let mut out = Vec::with_capacity(q.len() + self.g_n);
        out.extend_from_slice(&q[..self.start]);
        out.extend(std::iter::repeat_n(0.0, self.g_n));
        out.extend_from_slice(&q[self.start..]);
        out
    }

    /// The collapsed coordinates of a point of the full model (its intercept deviations dropped).
    pub fn reduce(&self, q_full: &[f64]) -> Vec<f64> {
        let mut qm = vec![0.0; q_full.len()];
        self.full.to_model_coords(q_full, &mut qm);
        qm[self.start..self.start + self.g_n].fill(0.0);
        let mut q = self.base.to_sampling_coords(&qm);
        q.drain(self.start..self.start + self.g_n);
        q
    }

    /// The conditional mean and sd of every geo's intercept deviation δ_g at a collapsed point, and
    /// the model coordinates of the base model there (intercept block at 0).
    pub fn conditional(&self, q: &[f64]) -> (Vec<(f64, f64)>, Vec<f64>) {
        let full = self.insert(q);
        let mut qm = vec![0.0; full.len()];
        self.base.to_model_coords(&full, &mut qm);
        let values: Vec<f64> = self.base.params.iter().zip(&qm).map(|(p, &y)| p.transform.constrain(y).x).collect();
        let p = self.base.unpack_values(values);
        let (t_n, tf) = (self.base.n_times, self.base.n_fit);
        // the mean without the deviations: u_g = 0, so p.intercept[g] = μ_a
        let mut mean = self.base.baseline_scaled(&p);
        let mut f = vec![0.0; t_n];
        for g in 0..self.g_n {
            self.base.visit_geo_media(&p, g, &mut f, |b, f| {
                for t in 0..tf {
                    mean[g * t_n + t] += b * f[t];
                }
            });
        }
        let (scale, _) = self.base.baseline.geo_intercept.expect("a geo model");
        let scale = scale.value(&p.values);
        let out = (0..self.g_n)
            .map(|g| {
                let (mut s, mut sq) = (0.0, 0.0);
                for t in 0..tf {
                    let r = self.base.y[g * t_n + t] - mean[g * t_n + t];
                    s += r;
                    sq += r * r;
                }
                let m = geo_marginal(s, sq, tf as f64, p.sigma, scale);
                (m.a_hat, m.var.sqrt())
            })
            .collect();
        (out, qm)
    }

    /// The full model's point (its own form) at a collapsed point with the intercept deviations
    /// δ_g = â_g + sd_g·z_g; `z` = None puts them at their conditional means.
    pub fn expand(&self, q: &[f64], z: Option<&[f64]>) -> Vec<f64> {
        let (cond, mut qm) = self.conditional(q);
        let scale = self.base.intercept_scale_at(&qm).expect("a geo model");
        // the full model's block holds u_g = δ_g/σ_a^w (the centred deviations for w = 0, also
        // the model coordinates of the geo-levels form)
        let w = self.full.intercept_power();
        for (g, (m, sd)) in cond.iter().enumerate() {
            let delta = m + sd * z.map_or(0.0, |z| z[g]);
            qm[self.start + g] = delta / scale.powf(w);
        }
        self.full.to_sampling_coords(&qm)
    }

    /// The posterior of the full model from a posterior of this density: each draw expanded
    /// ([`CollapsedIntercepts::expand`]) with standard-normal z from ChaCha8 seeded with `seed`
    /// on stream 2³² + chain (the sampler's own streams are 1 + chain), so the draws are
    /// deterministic under the seed for any thread count.
    pub fn expand_posterior(&self, post: &mmloop_inference::Posterior, seed: u64) -> mmloop_inference::Posterior {
        use rand::SeedableRng;
        use rand_distr::Distribution;
        let draws = post
            .draws
            .iter()
            .enumerate()
            .map(|(c, chain)| {
                let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream((1u64 << 32) + c as u64);
                chain
                    .iter()
                    .map(|q| {
                        let z: Vec<f64> = (0..self.g_n).map(|_| rand_distr::StandardNormal.sample(&mut rng)).collect();
                        self.expand(q, Some(&z))
                    })
                    .collect()
            })
            .collect();
        mmloop_inference::Posterior { param_names: self.full.names(), draws, ..post.clone() }
    }
}

impl LogDensity for CollapsedIntercepts {
    fn dim(&self) -> usize {
        self.full.params.len() - self.g_n
    }

    fn param_names(&self) -> Vec<String> {
        let mut n = self.full.names();
        n.drain(self.start..self.start + self.g_n);
        n
    }

    fn logp_grad(&self, q: &[f64], grad: &mut [f64]) -> Result<f64, LogDensityError> {
        let d = self.dim();
        if q.len() != d || grad.len() != d {
            return Err(LogDensityError::Fatal(format!("expected {d} coordinates, got {} / {}", q.len(), grad.len())));
        }
        let full = self.insert(q);
        let mut g = vec![0.0; full.len()];
        let lp = self.base.logp_grad_mode(&full, &mut g, true)?;
        grad[..self.start].copy_from_slice(&g[..self.start]);
        grad[self.start..].copy_from_slice(&g[self.start + self.g_n..]);
        Ok(lp)
    }
}
