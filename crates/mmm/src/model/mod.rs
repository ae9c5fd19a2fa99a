//! The MMM as a log density over an unconstrained parameter vector.
//!
//! ## The model (scaled units)
//! ```text
//! ỹ(g,t) = a_g + trend(t) + Σ_j s_j(t)·b_j + Σ_k γ_k z̃(g,t,k) + Σ_c β(g,c)·f_c(x̃(g,·,c))(t) + ε,
//! ε ~ Normal(0, σ) or Student-t(ν, 0, σ)
//! f_c = sat_c(adstock_c(x̃))  (or adstock_c(sat_c(x̃)) with `order = "saturation_first"`)
//! ```
//! - a_g = μ_a + δ_g, δ_g ~ N(0, σ_a) (geo models; national: a = μ_a).
//! - β(g,c) = β_c·exp(d_{g,c}), d_{g,c} ~ N(0, τ_c) (partial pooling, log-normal hierarchy, geo
//!   models only); complete pooling: β(g,c) = β_c.
//! - Each hierarchy block (the geo intercepts; each channel's geo effects) can be sampled centred
//!   (the deviations δ, d themselves) or non-centred (u = δ/σ_a, z = d/τ_c ~ N(0, 1)); the geo
//!   intercepts also by the geos' fitted levels or partially centred. [`MmmModel::new`] picks the
//!   form per block from the data ([`MmmModel::sampling_centring`]), [`MmmModel::set_centring`]
//!   switches: see [`centring`] for the measurements behind the default. With a Normal likelihood
//!   NUTS samples the geo intercepts' marginal instead (integrated out in closed form, then drawn
//!   per draw from their conditional): see [`collapsed`].
//! - ROI priors (Meridian's parametrisation): the sampled parameter is ROI_c and
//!   β_c = ROI_c · Σ_{g,t} spend / Σ_{g,t} exp(τ_c z_{g,c})·κ_g·rpk(g,t)·f_c(g,t), sums over the
//!   fitted period, so that the model's ROI over the fitted period is exactly ROI_c.
//! - Lift tests add Normal(observed | implied, se) terms (see [`crate::calibration`]).
//! - Observational bias (`[calibration] observational_bias_sd` = s > 0): the data's mean uses
//!   β_obs(g,c) = β(g,c)·exp(b_c), b_c ~ Normal(0, s), while the lift terms, the reported ROI,
//!   contributions and every decision use the causal β(g,c). Spend that follows demand the model
//!   cannot see makes the association the data measure differ from the effect an experiment
//!   measures; b_c is that difference on the log scale (the bias model of evidence synthesis, e.g.
//!   Turner et al. 2009, JRSS A 172). An untested channel's causal β is its observational one
//!   widened by the prior on b_c; a tested channel's is pinned by its experiments, and b_c
//!   absorbs the rest. A coefficient prior is on β_obs (what the data measure; the sampled
//!   coordinate), so β = β_obs·exp(−b) and an untested channel's causal β is centred on its
//!   observational one on the log scale; an ROI prior (often from experiments) is on the causal
//!   ROI_c. With s = 0 (the default) there is no b_c and β_obs = β.
//!
//! ## Internal scaling (reversible)
//! With size_g = population_g if a population column is given, else the mean KPI of geo g over the
//! fitted period, and r_g = size_g / mean_g size_g (1 for a national model):
//! - KPI: ỹ(g,t) = y(g,t) / κ_g with κ_g = r_g · mean_{g,t} y (so κ_g is the geo's mean KPI
//!   without a population column);
//! - media: x̃(g,t,c) = x(g,t,c) / (r_g·m_c), m_c the mean over non-zero cells of x/r_g;
//! - controls: z̃ = z / max|z| per control (0/1 dummies stay as they are);
//! - trend time: t̃ = t/(n_fit − 1) ∈ [0, 1] over the fitted period; Fourier terms use the period
//!   index t = 0, 1, … (sin(2πkt/P), cos(2πkt/P)).
//!
//! So β is "share of the geo's mean KPI at full saturation", σ is relative to the mean KPI, and
//! priors are unit-free as in Meridian and PyMC-Marketing. Every number reported to a user is
//! converted back: contribution(g,t) = κ_g·β(g,c)·f_c(g,t) in KPI units.

// Index loops mirror the sums of the math (over g, t, l) and address several arrays at once.
#![allow(clippy::needless_range_loop)]

pub mod centring;
pub mod collapsed;
pub mod density;
pub mod simulate;

use crate::dataset::Dataset;
use crate::priors::{Prior, Transform};
use crate::spec::{EffectPrior, GeoInterceptSd, Likelihood, ModelSpec, Pooling, Trend};
use crate::transforms::TransformOrder;
use crate::transforms::adstock::AdstockKernel;
use crate::transforms::saturation::{Saturation, ScaledCurve};

pub use density::ParamValues;

/// Errors building a model from a spec and a dataset.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{0}")]
    Invalid(String),
    #[error("lift test {index} ({start} to {end}): {message}")]
    LiftTest { index: usize, start: String, end: String, message: String },
}

/// One coordinate of the parameter vector.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamInfo {
    /// Name of the constrained parameter, e.g. `adstock_alpha[tv]`, `beta_geo_z[tv,geo3]`.
    pub name: String,
    /// Its prior; `None` for the standard-normal auxiliaries of non-centred hierarchies.
    pub prior: Option<Prior>,
    /// Unconstrained → constrained map.
    pub transform: Transform,
}

/// A channel's transforms, scaled data and parameter indices.
#[derive(Debug, Clone)]
pub struct ChannelModel {
    pub name: String,
    pub kernel: AdstockKernel,
    pub sat: Saturation,
    pub order: TransformOrder,
    /// Scaled media x̃, [g·T + t] over all periods (holdout included).
    pub x: Vec<f64>,
    /// Scale m_c (media units per scaled unit, before the geo factor r_g).
    pub media_scale: f64,
    /// Σ spend over the fitted period (money).
    pub spend_fit: f64,
    /// Indices of θ (adstock) and of the sampled φ (saturation) parameters.
    pub theta_idx: Vec<usize>,
    pub phi_idx: Vec<usize>,
    /// The φ entries held fixed, after the sampled ones (a fixed Hill slope;
    /// [`crate::transforms::SaturationSpec::fixed`]): φ = (values at `phi_idx`, `phi_fixed`).
    pub phi_fixed: Vec<f64>,
    /// Index of β_c (coefficient prior) or ROI_c (ROI prior).
    pub effect_idx: usize,
    pub effect_is_roi: bool,
    /// Partial pooling: τ_c index and first index of z_{g,c} (g = 0..G).
    pub tau_idx: Option<usize>,
    pub z_start: Option<usize>,
    /// Index of the observational bias b_c (`[calibration] observational_bias_sd` > 0).
    pub bias_idx: Option<usize>,
    /// Partial pooling, centred: the block at `z_start` holds the log deviations
    /// d_{g,c} = ln β(g,c) − ln β_c ~ N(0, τ_c) themselves instead of z_{g,c} = d_{g,c}/τ_c (see
    /// [`centring`]).
    pub geo_centred: bool,
}

impl ChannelModel {
    /// φ at constrained values in layout order: the sampled entries at `phi_idx`, then the fixed
    /// ones (unused entries 0).
    #[inline]
    pub fn phi_at(&self, values: &[f64]) -> [f64; 2] {
        let mut phi = [0.0; 2];
        for (p, &i) in self.phi_idx.iter().enumerate() {
            phi[p] = values[i];
        }
        phi[self.phi_idx.len()..self.phi_idx.len() + self.phi_fixed.len()].copy_from_slice(&self.phi_fixed);
        phi
    }

    /// Whether φ₁ has a coordinate (a Hill slope the config does not hold fixed). Where it does
    /// not, nothing needs ∂s/∂φ₁, and a slope held at 1 takes Hill's arithmetic form x/(x + ec)
    /// ([`crate::transforms::saturation`]).
    #[inline]
    pub fn phi1_sampled(&self) -> bool {
        self.phi_idx.len() > 1
    }
}

/// The sd σ_a of the geo intercepts: a coordinate, or held ([`crate::spec::GeoInterceptSd`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InterceptScale {
    /// The index of σ_a's coordinate (partial pooling).
    Sampled(usize),
    /// Held at this value (independent geo intercepts around μ_a).
    Fixed(f64),
}

impl InterceptScale {
    /// σ_a, given the parameters' constrained values.
    pub fn value(self, values: &[f64]) -> f64 {
        match self {
            InterceptScale::Sampled(i) => values[i],
            InterceptScale::Fixed(s) => s,
        }
    }

    /// σ_a's coordinate, if sampled.
    pub fn index(self) -> Option<usize> {
        match self {
            InterceptScale::Sampled(i) => Some(i),
            InterceptScale::Fixed(_) => None,
        }
    }
}

/// Baseline coefficient blocks.
#[derive(Debug, Clone)]
pub struct BaselineModel {
    pub intercept_idx: usize,
    /// (σ_a, first u_g index) for geo models: a_g = μ_a + σ_a·u_g.
    pub geo_intercept: Option<(InterceptScale, usize)>,
    /// Geo intercepts centred: the block holds δ_g = a_g − μ_a ~ N(0, σ_a) instead of u_g = δ_g/σ_a
    /// (see [`centring`]).
    pub geo_centred: bool,
    /// Geo intercepts by the geos' fitted levels (see [`MmmModel::to_model_coords`]): the block
    /// holds ℓ_g and the intercept coordinate v; the model coordinates are the centred deviations
    /// (`geo_centred` is set too).
    pub geo_levels: bool,
    /// Partial centring of the geo intercepts (not centred, not by levels): the block holds
    /// u_g = δ_g/σ_a^w ~ N(0, σ_a^(1−w)) with this w (1: non-centred; see [`centring`]).
    pub geo_power: f64,
    /// National design columns X[t·p + j] over all periods (trend, Fourier), with the coefficient
    /// index of each column.
    pub design: Vec<f64>,
    pub design_idx: Vec<usize>,
    /// Scaled controls [(g·T + t)·K + k] and coefficient indices.
    pub controls: Vec<f64>,
    pub control_idx: Vec<usize>,
    pub control_scale: Vec<f64>,
}

impl BaselineModel {
    /// (σ_a index, first deviation index) of a geo-intercept block whose scale is sampled: the
    /// blocks that can be centred, partially centred or sampled by levels (a held scale's block is
    /// always non-centred: its centring would only rescale it).
    pub fn pooled_intercepts(&self) -> Option<(usize, usize)> {
        self.geo_intercept.and_then(|(s, us)| s.index().map(|si| (si, us)))
    }

    /// [`BaselineModel::pooled_intercepts`] when sampled by the geos' levels.
    pub(crate) fn levels_block(&self) -> Option<(usize, usize)> {
        self.pooled_intercepts().filter(|_| self.geo_levels)
    }
}

/// A built model: scaled data, parameter layout, lift-test terms. Implements
/// [`mmloop_inference::LogDensity`] (see [`density`]).
#[derive(Debug, Clone)]
pub struct MmmModel {
    pub params: Vec<ParamInfo>,
    pub geos: Vec<String>,
    pub n_times: usize,
    /// Periods entering the likelihood (the first `n_fit`; the rest is the holdout).
    pub n_fit: usize,
    /// Scaled KPI ỹ, [g·T + t].
    pub y: Vec<f64>,
    /// κ_g: KPI units per scaled unit, per geo.
    pub kpi_scale: Vec<f64>,
    /// r_g: relative geo size.
    pub geo_size: Vec<f64>,
    /// Revenue per KPI, [g·T + t] (1 when absent).
    pub rpk: Vec<f64>,
    pub has_revenue: bool,
    /// Spend [c][g·T + t] (money).
    pub spend: Vec<Vec<f64>>,
    pub channels: Vec<ChannelModel>,
    pub baseline: BaselineModel,
    pub sigma_idx: usize,
    pub likelihood: Likelihood,
    pub lift: Vec<crate::calibration::LiftTerm>,
    /// Channels sampled by their response at the reference level: the β coordinate holds
    /// r = ln(β_c·s_c(1; φ_c)) instead of ln β_c (see [`MmmModel::to_model_coords`]).
    pub response_coords: Vec<ResponseCoord>,
    /// The intercept coordinate holds the mean fitted level ℓ = μ_a + h instead of μ_a (see
    /// [`MmmModel::to_model_coords`]); on when the intercept's prior is on the whole real line.
    pub level_coord: bool,
    /// The data's information ratio κ per hierarchy block and the centring it implies (see
    /// [`centring`]); the mode search runs in that centring.
    pub centring_choice: centring::CentringChoice,
    /// NUTS samples this model with its geo intercepts integrated out
    /// ([`collapsed::CollapsedIntercepts`]; geo models with a Normal likelihood). The model's own
    /// density ([`mmloop_inference::LogDensity`]) and the Laplace fit are the joint one either way.
    pub collapse_intercepts: bool,
}

/// The level shifts a conversion from sampling to model coordinates computed
/// ([`MmmModel::to_model_coords`]): h with the level coordinate, the h_g with geo levels; each a
/// forward pass of the model, reused by [`MmmModel::to_sampling_coords_given`].
#[derive(Debug, Clone, Default)]
pub(crate) struct LevelShifts {
    pub(crate) level: Option<f64>,
    pub(crate) geo: Option<Vec<f64>>,
}

/// A channel whose β coordinate is sampled as r = ln(β·s(1; φ)).
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseCoord {
    pub channel: usize,
    /// Index of the β coordinate.
    pub beta: usize,
    /// Indices of the saturation parameters φ.
    pub phi: Vec<usize>,
}

impl MmmModel {
    /// Builds the model: scales the data, lays out the parameters, resolves lift tests.
    pub fn new(spec: &ModelSpec, data: &Dataset) -> Result<Self, ModelError> {
        let g_n = data.n_geos();
        let t_n = data.n_times();
        let c_n = data.n_channels();
        let inv = |m: String| ModelError::Invalid(m);
        if spec.channels.len() != c_n {
            return Err(inv(format!("spec has {} channels, data {}", spec.channels.len(), c_n)));
        }
        if spec.holdout >= t_n {
            return Err(inv(format!("holdout ({}) must be smaller than the number of periods ({t_n})", spec.holdout)));
        }
        let n_fit = t_n - spec.holdout;
        if n_fit < 2 {
            return Err(inv("at least two periods are needed to fit".into()));
        }
        // --- scaling -------------------------------------------------------------------------
        let mean_fit = |g: usize| (0..n_fit).map(|t| data.kpi[[g, t]]).sum::<f64>() / n_fit as f64;
        let size: Vec<f64> = match &data.population {
            Some(p) => (0..g_n).map(|g| p[g]).collect(),
            None => (0..g_n).map(mean_fit).collect(),
        };
        let mean_size = size.iter().sum::<f64>() / g_n as f64;
        if !(mean_size.is_finite() && mean_size > 0.0) || size.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(inv("every geo needs a positive mean KPI (or population) to scale the data".into()));
        }
        let geo_size: Vec<f64> = size.iter().map(|s| s / mean_size).collect();
        let y_mean = (0..g_n).map(mean_fit).sum::<f64>() / g_n as f64;
        if !(y_mean.is_finite() && y_mean > 0.0) {
            return Err(inv("the KPI's mean over the fitted period must be positive to scale it".into()));
        }
        let kpi_scale: Vec<f64> = geo_size.iter().map(|r| r * y_mean).collect();
        let mut y = vec![0.0; g_n * t_n];
        for g in 0..g_n {
            for t in 0..t_n {
                y[g * t_n + t] = data.kpi[[g, t]] / kpi_scale[g];
            }
        }
        let (rpk, has_revenue) = match &data.revenue_per_kpi {
            Some(r) => ((0..g_n * t_n).map(|i| r[[i / t_n, i % t_n]]).collect(), true),
            None => (vec![1.0; g_n * t_n], false),
        };

        // --- parameters ----------------------------------------------------------------------
        let mut params: Vec<ParamInfo> = Vec::new();
        fn push(params: &mut Vec<ParamInfo>, name: String, prior: Option<Prior>) -> usize {
            let transform = prior.map(|p| p.transform()).unwrap_or(Transform::Identity);
            params.push(ParamInfo { name, prior, transform });
            params.len() - 1
        }
        let geo_model = g_n > 1;
        let mut channels = Vec::with_capacity(c_n);
        let mut spend_all = Vec::with_capacity(c_n);
        for (c, cs) in spec.channels.iter().enumerate() {
            let kernel = AdstockKernel::from_spec(&cs.adstock);
            let sat = Saturation::from_spec(&cs.saturation);
            let theta_idx = cs
                .adstock
                .params()
                .into_iter()
                .map(|(n, p)| push(&mut params, format!("adstock_{n}[{}]", cs.name), Some(p)))
                .collect();
            let phi_idx: Vec<usize> = cs
                .saturation
                .params()
                .into_iter()
                .map(|(n, p)| push(&mut params, format!("sat_{n}[{}]", cs.name), Some(p)))
                .collect();
            let phi_fixed = cs.saturation.fixed();
            let roi_override = spec.calibration.roi_priors.iter().rev().find(|r| r.channel == cs.name);
            let effect = match roi_override {
                Some(r) => EffectPrior::Roi(
                    Prior::lognormal_from_moments(r.mean, r.standard_error)
                        .map_err(|m| inv(format!("ROI prior for channel {}: {m}", cs.name)))?,
                ),
                None => cs.effect,
            };
            let (effect_idx, effect_is_roi) = match effect {
                EffectPrior::Coefficient(p) => (push(&mut params, format!("beta[{}]", cs.name), Some(p)), false),
                EffectPrior::Roi(p) => {
                    if p.support() == crate::priors::Support::Real {
                        return Err(inv(format!(
                            "channel {}: an ROI prior must be positive (lognormal, gamma, half_normal, ...)",
                            cs.name
                        )));
                    }
                    (push(&mut params, format!("roi[{}]", cs.name), Some(p)), true)
                }
            };
            let (tau_idx, z_start) = match (spec.pooling, geo_model) {
                (Pooling::Partial { tau }, true) => {
                    let ti = push(&mut params, format!("beta_geo_sd[{}]", cs.name), Some(tau));
                    let zs = params.len();
                    for g in &data.geos {
                        push(&mut params, format!("beta_geo_z[{},{g}]", cs.name), None);
                    }
                    (Some(ti), Some(zs))
                }
                _ => (None, None),
            };
            let bias_sd = spec.calibration.observational_bias_sd;
            if !(bias_sd.is_finite() && bias_sd >= 0.0) {
                return Err(inv(format!("observational_bias_sd must be finite and >= 0, got {bias_sd}")));
            }
            let bias_idx = (bias_sd > 0.0).then(|| {
                push(&mut params, format!("obs_bias[{}]", cs.name), Some(Prior::Normal { mu: 0.0, sigma: bias_sd }))
            });
            // media scaling
            let mut nz_sum = 0.0;
            let mut nz_n = 0usize;
            for g in 0..g_n {
                for t in 0..t_n {
                    let v = data.media[[g, t, c]];
                    if v != 0.0 {
                        nz_sum += v / geo_size[g];
                        nz_n += 1;
                    }
                }
            }
            if nz_n == 0 {
                return Err(inv(format!("channel {}: media is zero everywhere; remove the channel", cs.name)));
            }
            let media_scale = nz_sum / nz_n as f64;
            let mut x = vec![0.0; g_n * t_n];
            let mut sp = vec![0.0; g_n * t_n];
            let mut spend_fit = 0.0;
            for g in 0..g_n {
                for t in 0..t_n {
                    x[g * t_n + t] = data.media[[g, t, c]] / (geo_size[g] * media_scale);
                    sp[g * t_n + t] = data.spend[[g, t, c]];
                    if t < n_fit {
                        spend_fit += data.spend[[g, t, c]];
                    }
                }
            }
            if effect_is_roi && spend_fit <= 0.0 {
                return Err(inv(format!(
                    "channel {}: an ROI prior needs positive spend in the fitted period",
                    cs.name
                )));
            }
            if let crate::transforms::SaturationSpec::Hill { ec_floor_quantile: Some(q), .. } = cs.saturation {
                // the ec prior truncated below at the quantile of the channel's non-zero scaled media
                let nonzero: Vec<f64> = x.iter().copied().filter(|v| *v != 0.0).collect();
                let floor = crate::transforms::ec_floor(nonzero, q).expect("the channel has non-zero media");
                let ec = &mut params[phi_idx[0]];
                let prior = ec.prior.expect("ec has a prior").raise_lower(floor).map_err(|m| {
                    inv(format!("channel {}: saturation.ec_floor_quantile = {q} (ec ≥ {floor:.4}): {m}", cs.name))
                })?;
                ec.prior = Some(prior);
                ec.transform = prior.transform();
            }
            spend_all.push(sp);
            channels.push(ChannelModel {
                name: cs.name.clone(),
                kernel,
                sat,
                order: cs.order,
                x,
                media_scale,
                spend_fit,
                theta_idx,
                phi_idx,
                phi_fixed,
                effect_idx,
                effect_is_roi,
                tau_idx,
                z_start,
                bias_idx,
                geo_centred: false,
            });
        }
        // baseline
        let intercept_idx = push(&mut params, "intercept".into(), Some(spec.baseline.intercept));
        let geo_intercept = if geo_model {
            let scale = match spec.baseline.intercept_geo_sd {
                GeoInterceptSd::Prior(p) => {
                    InterceptScale::Sampled(push(&mut params, "intercept_geo_sd".into(), Some(p)))
                }
                GeoInterceptSd::Fixed(s) => InterceptScale::Fixed(s),
            };
            let us = params.len();
            for g in &data.geos {
                push(&mut params, format!("intercept_geo_z[{g}]"), None);
            }
            Some((scale, us))
        } else {
            None
        };
        let mut cols: Vec<Vec<f64>> = Vec::new();
        let mut design_idx = Vec::new();
        let tt = |t: usize| t as f64 / (n_fit - 1) as f64;
        match &spec.baseline.trend {
            Trend::None => {}
            Trend::Linear { slope } => {
                design_idx.push(push(&mut params, "trend_slope".into(), Some(*slope)));
                cols.push((0..t_n).map(tt).collect());
            }
            Trend::Piecewise { changepoints, slope, delta } => {
                design_idx.push(push(&mut params, "trend_slope".into(), Some(*slope)));
                cols.push((0..t_n).map(tt).collect());
                for j in 1..=*changepoints {
                    let knot = j as f64 / (*changepoints + 1) as f64;
                    design_idx.push(push(&mut params, format!("trend_delta[{j}]"), Some(*delta)));
                    cols.push((0..t_n).map(|t| (tt(t) - knot).max(0.0)).collect());
                }
            }
        }
        for f in &spec.baseline.seasonality {
            for k in 1..=f.order {
                let w = 2.0 * std::f64::consts::PI * k as f64 / f.period;
                design_idx.push(push(&mut params, format!("season_sin[{},{k}]", f.period), Some(f.prior)));
                cols.push((0..t_n).map(|t| (w * t as f64).sin()).collect());
                design_idx.push(push(&mut params, format!("season_cos[{},{k}]", f.period), Some(f.prior)));
                cols.push((0..t_n).map(|t| (w * t as f64).cos()).collect());
            }
        }
        let p = cols.len();
        let mut design = vec![0.0; t_n * p];
        for (j, col) in cols.iter().enumerate() {
            for t in 0..t_n {
                design[t * p + j] = col[t];
            }
        }
        let k_n = spec.controls.len();
        let mut control_idx = Vec::with_capacity(k_n);
        let mut control_scale = Vec::with_capacity(k_n);
        let mut controls = vec![0.0; g_n * t_n * k_n];
        for (k, cs) in spec.controls.iter().enumerate() {
            control_idx.push(push(&mut params, format!("gamma[{}]", cs.column), Some(cs.prior)));
            let mut m = 0.0f64;
            for g in 0..g_n {
                for t in 0..t_n {
                    m = m.max(data.control_values[[g, t, k]].abs());
                }
            }
            let m = if m > 0.0 { m } else { 1.0 };
            control_scale.push(m);
            for g in 0..g_n {
                for t in 0..t_n {
                    controls[(g * t_n + t) * k_n + k] = data.control_values[[g, t, k]] / m;
                }
            }
        }
        let sigma_idx = push(&mut params, "sigma".into(), Some(spec.noise_prior));
        let baseline = BaselineModel {
            intercept_idx,
            geo_intercept,
            geo_centred: false,
            geo_levels: false,
            geo_power: 1.0,
            design,
            design_idx,
            controls,
            control_idx,
            control_scale,
        };
        let mut model = MmmModel {
            params,
            geos: data.geos.clone(),
            n_times: t_n,
            n_fit,
            y,
            kpi_scale,
            geo_size,
            rpk,
            has_revenue,
            spend: spend_all,
            channels,
            baseline,
            sigma_idx,
            likelihood: spec.likelihood,
            lift: Vec::new(),
            response_coords: Vec::new(),
            level_coord: false,
            centring_choice: centring::CentringChoice::default(),
            collapse_intercepts: false,
        };
        model.level_coord = model.params[model.baseline.intercept_idx].transform == Transform::Identity;
        model.response_coords = model
            .channels
            .iter()
            .enumerate()
            .filter(|(_, ch)| {
                !ch.effect_is_roi && model.params[ch.effect_idx].transform == Transform::Log { lower: 0.0 }
            })
            .map(|(c, ch)| ResponseCoord { channel: c, beta: ch.effect_idx, phi: ch.phi_idx.clone() })
            .collect();
        model.lift = crate::calibration::build_lift_terms(&model, spec, data)?;
        // the sampled form of each block; the κ choice also steers the mode search (see `centring`)
        model.centring_choice = centring::choose(&model, spec);
        let form = model.sampling_centring();
        model.set_centring(&form);
        // NUTS integrates the geo intercepts out where it can and where that measured better (see
        // `collapsed`): not with fewer geos than can inform a pooling scale, where the partially
        // centred joint form does better
        model.collapse_intercepts =
            g_n >= centring::MIN_GEOS_FOR_POOLING_SCALE && spec.likelihood == Likelihood::Normal;
        Ok(model)
    }

    pub fn n_geos(&self) -> usize {
        self.geos.len()
    }

    /// Parameter names in vector order.
    pub fn names(&self) -> Vec<String> {
        self.params.iter().map(|p| p.name.clone()).collect()
    }

    /// A starting point: every parameter at its prior's central value (z's at 0), in sampling
    /// coordinates.
    pub fn initial_point(&self) -> Vec<f64> {
        let q: Vec<f64> = self
            .params
            .iter()
            .map(|p| match p.prior {
                Some(pr) => {
                    let y = p.transform.unconstrain(pr.central_value());
                    if y.is_finite() { y } else { 0.0 }
                }
                None => 0.0,
            })
            .collect();
        self.to_sampling_coords(&q)
    }

    /// Sampling coordinates → model coordinates (each parameter's own unconstrained value).
    ///
    /// The data identify a channel's response at its usual spend level far better than β and the
    /// curve's parameters apart: unsaturated, a logistic channel's response is ≈ (βλ/2)·x and a
    /// Hill channel's ≈ β·(x/ec)ⁿ, so ln β lies along ridges with ln λ or ln ec that a diagonal
    /// metric cannot follow (on the demo data, corr(ln β, ln ec) = 0.98); saturated, β alone is
    /// identified. The sampler therefore uses r = ln(β·s(1; φ)), the log response at the reference
    /// level x̃ = 1 (the mean non-zero scaled media), in the β coordinate: ln β = r − ln s(1; φ),
    /// which is ln(βλ/2) for an unsaturated logistic channel and ln β for a saturated one. The map
    /// is a shear, (r, φ) ↦ (r − h(φ), φ), whose Jacobian determinant is 1, so the density of the
    /// sampling coordinates is the model's density at the mapped point (the same priors on β and
    /// φ, no extra term), and the gradient maps back by the transpose:
    /// ∂/∂r = ∂/∂ln β, ∂/∂q_φ|_r = ∂/∂q_φ|_{ln β} − ∂/∂ln β · ∂ln s(1; φ)/∂q_φ.
    /// Applies to channels with coefficient (not ROI) priors on (0, ∞).
    ///
    /// Likewise the data pin the model's mean level over the fitted period far better than the
    /// intercept, which trades off against every media, control and trend term (all add a
    /// non-zero mean; on the PyMC example corr(intercept, β_x1) = −0.92). With `level_coord` the
    /// intercept coordinate holds ℓ = μ_a + h(rest), h the mean over fitted cells of everything
    /// else in the mean (geo deviations, trend, seasonality, controls, media): another
    /// shear, so again no Jacobian term, and ∂/∂rest|_ℓ = ∂/∂rest|_{μ_a} − ∂/∂μ_a·∂h/∂rest, which the
    /// density computes by taking ∂/∂μ_a / N off every cell's adjoint.
    ///
    /// With `baseline.geo_levels` (geo models, see [`centring`]) the geo intercepts are sampled the
    /// same way, one level per geo: the block holds ℓ_g = a_g + h_g, h_g the mean over geo g's
    /// fitted cells of everything else in its mean (trend, seasonality, controls, media), which the
    /// data pin to about σ/√T whatever the pooling scale σ_a; and the intercept coordinate holds
    /// v = √G·(μ_a − ā)/σ_a, ā = mean_g a_g, the global intercept standardised around the geos'
    /// mean level (given the a_g, μ_a ~ N(ā, σ_a/√G) up to its own prior, so v ≈ N(0, 1) at every
    /// σ_a). The model coordinates are the centred deviations δ_g = a_g − μ_a and μ_a. The map
    /// (ℓ, v) ↦ (a, μ_a) ↦ (δ, μ_a) has Jacobian determinant σ_a/√G (the shear a = ℓ − h and
    /// δ = a − μ_a are unit), so the density gains ln σ_a − ½ln G over the centred model's. The
    /// hierarchy's terms then read, with S = Σ_g (a_g − ā)² (Σ_g (a_g − μ_a)² = S + σ_a²v²):
    /// Σ_g ln N(a_g | μ_a, σ_a) + ln σ_a − ½ln G = −S/(2σ_a²) − v²/2 − (G − 1)·ln σ_a − ½ln G (+ const),
    /// a classical centred hierarchy (no funnel where each geo's data pin its level, which they do
    /// for intercepts: T periods each) whose global mean needs no step size of its own.
    pub fn to_model_coords(&self, q: &[f64], out: &mut [f64]) {
        self.to_model_coords_shifts(q, out);
    }

    /// [`MmmModel::to_model_coords`], returning the level shifts it computed (a forward pass of the
    /// model each) for [`MmmModel::to_sampling_coords_given`] to reuse. With geo levels it also
    /// returns the whole level's shift, h = (1/G)·Σ_g (h_g + a_g − μ_a) (h and the h_g average the
    /// same cells), so a conversion into the level-coordinate form needs no forward pass of its own.
    pub(crate) fn to_model_coords_shifts(&self, q: &[f64], out: &mut [f64]) -> LevelShifts {
        let mut shifts = LevelShifts::default();
        self.response_to_model(q, out, &mut []);
        if self.level_coord {
            let i = self.baseline.intercept_idx;
            let h = self.level_shift(out);
            out[i] = q[i] - h;
            shifts.level = Some(h);
        }
        if let Some((si, us)) = self.baseline.levels_block() {
            let g_n = self.n_geos();
            let h = self.geo_level_shifts(out);
            let s = self.params[si].transform.constrain(q[si]).x;
            let a: Vec<f64> = (0..g_n).map(|g| q[us + g] - h[g]).collect();
            let a_bar = a.iter().sum::<f64>() / g_n as f64;
            let mu = a_bar + s * q[self.baseline.intercept_idx] / (g_n as f64).sqrt();
            out[self.baseline.intercept_idx] = mu;
            for g in 0..g_n {
                out[us + g] = a[g] - mu;
            }
            // every geo has the same fitted cells, so the whole level's shift (without μ_a) is the
            // geos' mean of h_g + (a_g − μ_a): what a level-coordinate form of this point needs
            let level = (0..g_n).map(|g| h[g] + out[us + g]).sum::<f64>() / g_n as f64;
            shifts.level.get_or_insert(level);
            shifts.geo = Some(h);
        }
        shifts
    }

    /// σ_a of the geo intercepts at model coordinates `q_model` (`None` in national models).
    pub fn intercept_scale_at(&self, q_model: &[f64]) -> Option<f64> {
        self.baseline.geo_intercept.map(|(scale, _)| match scale {
            InterceptScale::Sampled(si) => self.params[si].transform.constrain(q_model[si]).x,
            InterceptScale::Fixed(s) => s,
        })
    }

    /// The response-coordinate part of [`MmmModel::to_model_coords`] (the intercept coordinate is
    /// left as it is).
    /// With `dln` of length 2 per response coordinate, it also receives ∂ln s(1; φ)/∂q_φ of each
    /// (what the density's gradient map needs); pass `&mut []` otherwise.
    pub(crate) fn response_to_model(&self, q: &[f64], out: &mut [f64], dln: &mut [f64]) {
        out.copy_from_slice(q);
        for (j, rc) in self.response_coords.iter().enumerate() {
            let (l, d) = self.ln_response_ref(rc, q);
            out[rc.beta] = q[rc.beta] - l;
            if let Some(slot) = dln.get_mut(2 * j..2 * j + 2) {
                slot.copy_from_slice(&d);
            }
        }
    }

    /// Model coordinates → sampling coordinates (the inverse of [`MmmModel::to_model_coords`]).
    pub fn to_sampling_coords(&self, q_model: &[f64]) -> Vec<f64> {
        self.to_sampling_coords_given(q_model, &LevelShifts::default())
    }

    /// [`MmmModel::to_sampling_coords`] with the level shifts that `known` holds taken from it
    /// instead of computed (each a forward pass of the model). The shifts are functions of the
    /// parameter values alone (h: the mean fitted level without μ_a; h_g: geo g's without a_g), so
    /// those computed by another centring of the same model at the same point
    /// ([`MmmModel::to_model_coords_shifts`]) are valid here, equal up to rounding.
    pub(crate) fn to_sampling_coords_given(&self, q_model: &[f64], known: &LevelShifts) -> Vec<f64> {
        let mut q = q_model.to_vec();
        for rc in &self.response_coords {
            q[rc.beta] = q_model[rc.beta] + self.ln_response_ref(rc, q_model).0;
        }
        if self.level_coord {
            let i = self.baseline.intercept_idx;
            q[i] = q_model[i] + known.level.unwrap_or_else(|| self.level_shift(q_model));
        }
        if let Some((si, us)) = self.baseline.levels_block() {
            let g_n = self.n_geos();
            let h = match &known.geo {
                Some(h) if h.len() == g_n => h.clone(),
                _ => self.geo_level_shifts(q_model),
            };
            let s = self.params[si].transform.constrain(q_model[si]).x;
            let mu = q_model[self.baseline.intercept_idx];
            let dev_bar = (0..g_n).map(|g| q_model[us + g]).sum::<f64>() / g_n as f64;
            q[self.baseline.intercept_idx] = -dev_bar * (g_n as f64).sqrt() / s;
            for g in 0..g_n {
                q[us + g] = mu + q_model[us + g] + h[g];
            }
        }
        q
    }

    /// h_g: the mean over geo g's fitted cells of the model's mean without the geo's intercept a_g
    /// (trend, seasonality, controls, media), at model coordinates `q_model` (whose intercept
    /// coordinates are not read).
    pub fn geo_level_shifts(&self, q_model: &[f64]) -> Vec<f64> {
        let p = self.unpack_values(self.constrain_model_coords(q_model));
        let t_n = self.n_times;
        let base = self.baseline_scaled(&p);
        let mut f = vec![0.0; t_n];
        (0..self.n_geos())
            .map(|g| {
                let mut total: f64 = (0..self.n_fit).map(|t| base[g * t_n + t] - p.intercept[g]).sum();
                self.visit_geo_media(&p, g, &mut f, |b, f| total += b * f[..self.n_fit].iter().sum::<f64>());
                total / self.n_fit as f64
            })
            .collect()
    }

    /// h: the mean over fitted cells of the model's mean without the global intercept μ_a (geo
    /// deviations included, so ℓ is the whole fitted level), at model coordinates `q_model` (whose
    /// intercept coordinate is not read).
    pub fn level_shift(&self, q_model: &[f64]) -> f64 {
        let p = self.unpack_values(self.constrain_model_coords(q_model));
        let t_n = self.n_times;
        let base = self.baseline_scaled(&p);
        let mut total = 0.0;
        let mut f = vec![0.0; t_n];
        for g in 0..self.n_geos() {
            for t in 0..self.n_fit {
                total += base[g * t_n + t] - p.values[self.baseline.intercept_idx];
            }
            self.visit_geo_media(&p, g, &mut f, |b, f| total += b * f[..self.n_fit].iter().sum::<f64>());
        }
        total / (self.n_geos() * self.n_fit) as f64
    }

    /// Geo g's media terms of the mean at parameter values `p`: for each channel c in order, its
    /// weight β(g,c)·exp(b_c) and its feature f_c(g, ·) over every period (written into `f`, of
    /// length T), handed to `visit`. The level shifts and the collapsed intercepts' conditional
    /// each sum them their own way.
    pub(crate) fn visit_geo_media(&self, p: &ParamValues, g: usize, f: &mut [f64], mut visit: impl FnMut(f64, &[f64])) {
        let t_n = self.n_times;
        for c in 0..self.channels.len() {
            self.channel_feature(c, &p.theta[c], &p.phi[c], &self.channels[c].x[g * t_n..(g + 1) * t_n], f);
            visit(p.beta_geo[c][g] * p.obs_factor[c], f);
        }
    }

    /// ln s(1; φ) of a response coordinate's channel at the φ coordinates of `q` (sampling and
    /// model coordinates agree on φ), with its derivatives in those unconstrained coordinates.
    pub(crate) fn ln_response_ref(&self, rc: &ResponseCoord, q: &[f64]) -> (f64, [f64; 2]) {
        let ch = &self.channels[rc.channel];
        let mut phi = [0.0; 2];
        let mut dxdy = [0.0; 2];
        // fixed entries (after the sampled ones) have no coordinate: their dxdy stays 0
        phi[rc.phi.len()..rc.phi.len() + ch.phi_fixed.len()].copy_from_slice(&ch.phi_fixed);
        for (p, &i) in rc.phi.iter().enumerate() {
            let c = self.params[i].transform.constrain(q[i]);
            phi[p] = c.x;
            dxdy[p] = c.dx_dy;
        }
        let (l, d) = ch.sat.ln_value_at_one(&phi);
        (l, [d[0] * dxdy[0], d[1] * dxdy[1]])
    }

    /// Every parameter's constrained value at a point in sampling coordinates. The conversion to
    /// model coordinates costs a forward pass of the model with the level coordinate or geo levels
    /// (see [`MmmModel::to_model_coords`]); a caller holding a point's model coordinates takes
    /// [`MmmModel::constrain_model_coords`] instead.
    pub fn constrain(&self, q: &[f64]) -> Vec<f64> {
        let mut m = vec![0.0; q.len()];
        self.to_model_coords(q, &mut m);
        self.constrain_model_coords(&m)
    }

    /// Every parameter's constrained value at a point in model coordinates: each coordinate through
    /// its own parameter's transform, x_i = T_i(y_i).
    pub fn constrain_model_coords(&self, q_model: &[f64]) -> Vec<f64> {
        self.params.iter().zip(q_model).map(|(p, &y)| p.transform.constrain(y).x).collect()
    }

    /// The media feature f_c(g, ·) over all periods for an arbitrary scaled media series `x`
    /// (length T), at constrained adstock parameters θ and saturation parameters φ.
    pub fn channel_feature(&self, c: usize, theta: &[f64], phi: &[f64], x: &[f64], out: &mut [f64]) {
        let ch = &self.channels[c];
        let n = ch.kernel.len();
        let mut w = vec![0.0; n];
        let mut dw = vec![0.0; n * ch.kernel.n_params()];
        ch.kernel.weights(theta, &mut w, &mut dw);
        match ch.order {
            // a held slope (no coordinate) takes the density's arithmetic form at 1
            TransformOrder::AdstockFirst => {
                crate::transforms::adstock::convolve(&w, x, out);
                ch.sat.saturate_in_place(phi, !ch.phi1_sampled(), &mut out[..x.len()]);
            }
            TransformOrder::SaturationFirst => {
                let mut s = x.to_vec();
                ch.sat.saturate_in_place(phi, !ch.phi1_sampled(), &mut s);
                crate::transforms::adstock::convolve(&w, &s, out);
            }
        }
    }

    /// [`MmmModel::channel_feature`] of the scaled series m_k·x for every multiplier m_k ≥ 0 at once,
    /// into `out[k·T + t]` (T = x.len()): the adstock is linear, so it runs once, and the
    /// saturation of all multiples comes from one [`ScaledCurve`] call per period. Agrees with
    /// `channel_feature(m_k·x)` to rounding.
    pub fn channel_features_scaled(
        &self,
        c: usize,
        theta: &[f64],
        phi: &[f64],
        x: &[f64],
        multipliers: &[f64],
        out: &mut [f64],
    ) {
        let ch = &self.channels[c];
        let (t_n, k_n) = (x.len(), multipliers.len());
        let mut w = vec![0.0; ch.kernel.len()];
        let mut dw = vec![0.0; ch.kernel.len() * ch.kernel.n_params()];
        ch.kernel.weights(theta, &mut w, &mut dw);
        let curve = ScaledCurve::new(ch.sat.curve(phi), multipliers);
        let mut vals = vec![0.0; k_n];
        match ch.order {
            TransformOrder::AdstockFirst => {
                // adstock(m·x) = m·adstock(x): saturate the multiples of the adstocked series
                let mut a = vec![0.0; t_n];
                crate::transforms::adstock::convolve(&w, x, &mut a);
                for (t, &at) in a.iter().enumerate() {
                    curve.values(at, &mut vals);
                    for k in 0..k_n {
                        out[k * t_n + t] = vals[k];
                    }
                }
            }
            TransformOrder::SaturationFirst => {
                let mut s = vec![0.0; k_n * t_n];
                for (t, &xt) in x.iter().enumerate() {
                    curve.values(xt, &mut vals);
                    for k in 0..k_n {
                        s[k * t_n + t] = vals[k];
                    }
                }
                for k in 0..k_n {
                    crate::transforms::adstock::convolve(
                        &w,
                        &s[k * t_n..(k + 1) * t_n],
                        &mut out[k * t_n..(k + 1) * t_n],
                    );
                }
            }
        }
    }
}
