//! Centred or non-centred geo hierarchies, chosen per block from how strongly the data inform
//! each geo.
//!
//! A hierarchy block is a set of geo deviations with a common scale: the geo intercepts
//! δ_g = a_g − μ_a ~ N(0, σ_a), and each channel's log effects d_{g,c} = ln β(g,c) − ln β_c ~
//! N(0, τ_c). It can be sampled *centred* (the deviations themselves) or *non-centred*
//! (u = δ/σ, z ~ N(0, 1)). Which geometry is easier depends on κ, the ratio of the likelihood's
//! information about one geo's deviation to the prior's precision 1/s² (Papaspiliopoulos, Roberts
//! & Sköld 2007, "A general framework for the parametrization of hierarchical models"; Betancourt &
//! Girolami 2015): with κ ≫ 1 each deviation is pinned by its own data, the non-centred posterior
//! is a curved ridge (s·u fixed, s and u free along it) that a diagonal metric cannot follow and a
//! Gaussian at the mode describes badly; with κ ≪ 1 the centred posterior is a funnel (the
//! deviations shrink with s), which the non-centred form removes. The shrinkage weight of the
//! deviation towards 0 is 1/(1 + κ), so the block is centred when κ > 1 (the data weigh more than
//! the prior).
//!
//! ## What the default does, and why
//! [`MmmModel::new`] samples each block in the form [`MmmModel::sampling_centring`] picks from κ
//! and the number of geos; [`MmmModel::set_centring`] switches forms (the density, its gradient and
//! the point map [`MmmModel::convert_point`] support every combination). Besides centred and
//! non-centred, the geo intercepts have two more forms:
//! - *by levels* (`intercept_levels`): the block holds each geo's fitted level ℓ_g = a_g + h_g and
//!   the intercept coordinate the standardised global mean v = √G·(μ_a − ā)/σ_a (see
//!   [`MmmModel::to_model_coords`]): the classical centred hierarchy a_g ~ N(μ_a, σ_a) in the
//!   coordinates the data pin, meant for κ_a ≫ 1 with σ_a identified (G ≥ 3); measured but not
//!   yet the default (see [`MmmModel::sampling_centring`]).
//!   Plain centred deviations δ_g = a_g − μ_a are not: their common mode is pinned only by the
//!   prior (sd σ_a/√G; the level coordinate holds the fitted level, so a shift of every δ_g is a
//!   shift of μ_a the data do not see), a funnel in σ_a — measured on a 12-geo × 4-channel Hill
//!   world (κ_a ≈ 3000–9000), 2 chains × 300 + 200: max R-hat 1.59 / 1.54 and 23 / 46 divergences
//!   centred against 1.18 / 1.12 and 1 / 0 non-centred;
//! - *partially centred* (`intercept_power` w): u = δ/σ_a^w ~ N(0, σ_a^(1−w)) (Papaspiliopoulos,
//!   Roberts & Sköld 2007), for two geos, where σ_a is not identified and its posterior spans both
//!   regimes.
//!
//! The automatic choice also steers the **mode search** of the Laplace fit (`fit::mode_search`, in
//! the centred/non-centred forms [`CentringChoice::centred`] gives): L-BFGS converges in the
//! centred form where κ ≫ 1 and stalls on the non-centred ridge (same world: |∇log p| ≈ 40–70
//! after 2000 iterations), and the point is then mapped into the sampled form. κ also drives the
//! prior-domination warnings ([`prior_dominated_warnings`]).
//!
//! κ is estimated from the data before any fit, so it is a fixed function of the config and the
//! data (a saved fit rebuilds the same parameter layout):
//! - intercepts: κ_a = T·s_a²/σ̂², with s_a² the variance across geos of the geos' mean scaled KPI
//!   (the deviations' spread) and σ̂² the residual variance of the scaled KPI after removing geo and
//!   period means (two-way fixed effects: an over-estimate of the noise, so κ errs low);
//! - channel c: κ_c = τ₀² · mean_g I_{g,c}, I_{g,c} = b_c²·Σ_t ẍ(g,t,c)² / σ̂_e², the information
//!   about ln β(g,c) of a linear response b_c·x̃ fitted by pooled least squares on the two-way
//!   demeaned data (ẍ, ÿ) jointly for all channels, σ̂_e² its residual variance; τ₀ the central value
//!   of the pooling prior (the data cannot estimate τ before the fit).

use super::{LevelShifts, MmmModel};
use crate::spec::{ModelSpec, Pooling};

/// Which hierarchy blocks are centred.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Centring {
    /// The geo intercepts.
    pub intercept: bool,
    /// The geo intercepts by the geos' fitted levels ([`MmmModel::set_centring`]; overrides
    /// `intercept`, needs an intercept prior on the whole real line).
    pub intercept_levels: bool,
    /// The geo intercepts partially centred with this power w ∈ (0, 1) (u = δ/σ_a^w; overrides
    /// `intercept` when neither 0 nor 1, see [`MmmModel::set_centring`]).
    pub intercept_power: Option<f64>,
    /// Per channel, the geo effects (ignored for channels without partial pooling).
    pub beta: Vec<bool>,
}

/// The data's information ratio κ per block and the centring rule's choice (see the module doc).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CentringChoice {
    /// κ of the intercept block (`None`: national model, or σ_a held: nothing to centre).
    pub intercept_kappa: Option<f64>,
    /// κ per channel (`None`: no partial pooling for the channel).
    pub beta_kappa: Vec<Option<f64>>,
}

/// A block is centred when its κ exceeds this: the data weigh more than the prior.
pub const CENTRE_ABOVE_KAPPA: f64 = 1.0;

impl CentringChoice {
    pub fn centred(&self) -> Centring {
        let on = |k: &Option<f64>| k.is_some_and(|k| k > CENTRE_ABOVE_KAPPA);
        Centring {
            intercept: on(&self.intercept_kappa),
            intercept_levels: false,
            intercept_power: None,
            beta: self.beta_kappa.iter().map(on).collect(),
        }
    }
}

/// The power w of a geo-intercept block with fewer geos than [`MIN_GEOS_FOR_POOLING_SCALE`]:
/// partially centred, u = δ/σ_a^w (see [`MmmModel::sampling_centring`]).
pub const FEW_GEOS_INTERCEPT_POWER: f64 = 0.5;

impl MmmModel {
    /// The form NUTS samples each hierarchy block in (with a Normal likelihood NUTS integrates
    /// the geo intercepts out instead, [`super::collapsed`]; their form is then only the one the
    /// draws are written in):
    /// - geo intercepts with fewer geos than [`MIN_GEOS_FOR_POOLING_SCALE`]: partially centred
    ///   with w = [`FEW_GEOS_INTERCEPT_POWER`]. The data cannot bound σ_a then, so its posterior
    ///   spans both regimes: σ_a ≫ ε (ε the sd to which the data pin a geo's deviation), where
    ///   u = δ/σ_a^w has width ε/σ_a^w, and σ_a ≪ ε, where it has width σ_a^(1−w); w = ½ balances
    ///   the two ends (non-centred, w = 1, leaves widths down to ε/σ_a: a funnel towards large σ_a;
    ///   centred and by levels, w = 0, widths down to σ_a: a funnel towards σ_a → 0). PyMC 2-geo
    ///   example, NUTS 4 × (1000 + 1000), target_accept 0.8, seeds 42 / 2: 132–149 divergences
    ///   non-centred, 306–386 by levels (at small σ_a), 35–59 with w = ½ (5–10 at 0.9, 0–3 at 0.95
    ///   on seeds 1–5).
    /// - every other block non-centred. The geo intercepts by levels are not the default yet: on
    ///   the Meridian 20-geo example (κ_a = 15.6), seed 42, they cut the divergences from 28 to 12,
    ///   the leapfrog steps per draw from 65–79 to 31 and raised the min bulk ESS from 305 to 500,
    ///   but max R-hat rose from 1.008 to 1.011 (intercept), the min tail ESS fell from 354 to 237
    ///   (intercept_geo_sd), the whole fit took 301 s of CPU against 193 s non-centred (seed 2; the
    ///   warm-up's trajectories are longer), on seed 2 it had not finished after 1042 s of CPU
    ///   (stopped), and the Laplace fallback in that form fails on `data/demo_geo` (Hessian not
    ///   negative definite). Partially centred on the same example, seed 42: w = ½ 10 divergences,
    ///   R-hat 1.016 (intercept_geo_sd), min bulk / tail ESS 456 / 326; w = ¼ 45 divergences, R-hat
    ///   1.011, ESS 355 / 210 (183 and 178 s of CPU): no form meets the bar there yet.
    pub fn sampling_centring(&self) -> Centring {
        let few = self.n_geos() < MIN_GEOS_FOR_POOLING_SCALE;
        Centring {
            intercept: false,
            intercept_levels: false,
            intercept_power: few.then_some(FEW_GEOS_INTERCEPT_POWER),
            beta: vec![false; self.channels.len()],
        }
    }
}

/// Two-way (geo and period) demeaned copy of a [g·T + t] series over the fitted periods, [g·T_fit + t].
fn demean_two_way(v: &[f64], g_n: usize, t_n: usize, tf: usize) -> Vec<f64> {
    let mut gm = vec![0.0; g_n];
    let mut tm = vec![0.0; tf];
    let mut all = 0.0;
    for g in 0..g_n {
        for t in 0..tf {
            let x = v[g * t_n + t];
            gm[g] += x / tf as f64;
            tm[t] += x / g_n as f64;
            all += x / (g_n * tf) as f64;
        }
    }
    let mut out = vec![0.0; g_n * tf];
    for g in 0..g_n {
        for t in 0..tf {
            out[g * tf + t] = v[g * t_n + t] - gm[g] - tm[t] + all;
        }
    }
    out
}

/// Solves the symmetric system `a x = b` (n × n, row-major) by Gaussian elimination with partial
/// pivoting and a ridge of 1e-10 of the mean diagonal (collinear media: the ridge picks the
/// minimum-norm-like solution instead of failing). Returns zeros for an all-zero matrix.
fn solve(mut a: Vec<f64>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    let ridge = 1e-10 * (0..n).map(|i| a[i * n + i]).sum::<f64>() / n.max(1) as f64;
    if ridge.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return vec![0.0; n];
    }
    for i in 0..n {
        a[i * n + i] += ridge;
    }
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs())).unwrap_or(col);
        if piv != col {
            for k in 0..n {
                a.swap(col * n + k, piv * n + k);
            }
            b.swap(col, piv);
        }
        let d = a[col * n + col];
        if d == 0.0 {
            continue;
        }
        for i in col + 1..n {
            let f = a[i * n + col] / d;
            for k in col..n {
                a[i * n + k] -= f * a[col * n + k];
            }
            b[i] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| a[i * n + k] * x[k]).sum();
        let d = a[i * n + i];
        x[i] = if d == 0.0 { 0.0 } else { (b[i] - s) / d };
    }
    x
}

/// τ₀, the central value of the media pooling scale's prior, at which the centring rule takes κ
/// (0 without partial pooling).
fn pooling_tau_centre(spec: &ModelSpec) -> f64 {
    match spec.pooling {
        Pooling::Partial { tau } => tau.central_value(),
        Pooling::Complete => 0.0,
    }
}

/// κ per block from the model's scaled data (see the module doc).
pub fn choose(model: &MmmModel, spec: &ModelSpec) -> CentringChoice {
    let (g_n, t_n, tf) = (model.n_geos(), model.n_times, model.n_fit);
    let c_n = model.channels.len();
    if g_n < 2 || tf < 2 {
        return CentringChoice { intercept_kappa: None, beta_kappa: vec![None; c_n] };
    }
    let dof = ((g_n - 1) * (tf - 1)) as f64;
    let yy = demean_two_way(&model.y, g_n, t_n, tf);
    let sigma2_two_way = yy.iter().map(|v| v * v).sum::<f64>() / dof;
    // a ratio with a zero noise estimate (noiseless data) is infinite: the data pin every geo
    let ratio = |num: f64, den: f64| {
        if den > 0.0 {
            num / den
        } else if num > 0.0 {
            f64::INFINITY
        } else {
            0.0
        }
    };
    let intercept_kappa = model.baseline.pooled_intercepts().map(|_| {
        let means: Vec<f64> =
            (0..g_n).map(|g| model.y[g * t_n..g * t_n + tf].iter().sum::<f64>() / tf as f64).collect();
        let m = means.iter().sum::<f64>() / g_n as f64;
        let s2 = means.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (g_n - 1) as f64;
        ratio(tf as f64 * s2, sigma2_two_way)
    });
    let pooled: Vec<usize> = (0..c_n).filter(|&c| model.channels[c].tau_idx.is_some()).collect();
    let mut beta_kappa = vec![None; c_n];
    if !pooled.is_empty() {
        let xs: Vec<Vec<f64>> = pooled.iter().map(|&c| demean_two_way(&model.channels[c].x, g_n, t_n, tf)).collect();
        let n = xs.len();
        let mut a = vec![0.0; n * n];
        let mut b = vec![0.0; n];
        for i in 0..n {
            b[i] = xs[i].iter().zip(&yy).map(|(x, y)| x * y).sum();
            for j in 0..=i {
                let v: f64 = xs[i].iter().zip(&xs[j]).map(|(x, y)| x * y).sum();
                a[i * n + j] = v;
                a[j * n + i] = v;
            }
        }
        let coef = solve(a, b);
        let sse: f64 = (0..g_n * tf)
            .map(|k| {
                let e = yy[k] - (0..n).map(|i| coef[i] * xs[i][k]).sum::<f64>();
                e * e
            })
            .sum();
        let sigma2_e = sse / (dof - n as f64).max(1.0);
        let tau0 = pooling_tau_centre(spec);
        for (i, &c) in pooled.iter().enumerate() {
            let info: f64 = (0..g_n)
                .map(|g| {
                    ratio(coef[i] * coef[i] * xs[i][g * tf..(g + 1) * tf].iter().map(|x| x * x).sum::<f64>(), sigma2_e)
                })
                .sum::<f64>()
                / g_n as f64;
            beta_kappa[c] = Some(tau0 * tau0 * info);
        }
    }
    CentringChoice { intercept_kappa, beta_kappa }
}

impl MmmModel {
    /// The power w of the geo-intercept block: u_g = δ_g/σ_a^w (0 centred, or by levels, whose
    /// model coordinates are the centred deviations; 1 non-centred; in between partially centred).
    pub fn intercept_power(&self) -> f64 {
        if self.baseline.geo_centred { 0.0 } else { self.baseline.geo_power }
    }

    /// (scale index, first deviation index, power w) of every centred (w = 0) or partially centred
    /// (0 < w < 1) hierarchy block sampled as such (not the geo-levels block).
    pub(crate) fn centred_blocks(&self) -> Vec<(usize, usize, f64)> {
        let mut out = Vec::new();
        if let Some((si, us)) = self.baseline.pooled_intercepts()
            && self.intercept_power() < 1.0
            && !self.baseline.geo_levels
        {
            out.push((si, us, self.intercept_power()));
        }
        for ch in &self.channels {
            if let (Some(ti), Some(zs)) = (ch.tau_idx, ch.z_start)
                && ch.geo_centred
            {
                out.push((ti, zs, 0.0));
            }
        }
        out
    }

    /// The blocks' current centring.
    pub fn centring(&self) -> Centring {
        Centring {
            intercept: self.baseline.geo_centred,
            intercept_levels: self.baseline.geo_levels,
            intercept_power: (self.baseline.geo_power != 1.0).then_some(self.baseline.geo_power),
            beta: self.channels.iter().map(|c| c.geo_centred).collect(),
        }
    }

    /// Sets which hierarchy blocks are centred and names their coordinates accordingly:
    /// `intercept_geo_z[g]` / `beta_geo_z[c,g]` non-centred (standard-normal u, z),
    /// `intercept_geo_dev[g]` / `beta_geo_dev[c,g]` centred (the deviations a_g − μ_a and
    /// ln β(g,c) − ln β_c). Blocks the model does not have are ignored. The density changes (a
    /// different parametrisation of the same model): map points with [`MmmModel::convert_point`].
    ///
    /// `intercept_levels` samples the geo intercepts by the geos' fitted levels (see
    /// [`MmmModel::to_model_coords`]) when the intercept's prior is on the whole real line (else
    /// the block is centred or not as `intercept` says); its model coordinates are the centred
    /// deviations (`intercept_geo_dev[g]`), and it replaces the national level coordinate.
    pub fn set_centring(&mut self, centring: &Centring) {
        let g_n = self.n_geos();
        let real_intercept = self.params[self.baseline.intercept_idx].transform == crate::priors::Transform::Identity;
        // a held σ_a's block stays non-centred: centring it would only rescale it
        let pooled = self.baseline.pooled_intercepts().is_some();
        let levels = centring.intercept_levels && real_intercept && pooled;
        self.baseline.geo_levels = levels;
        self.level_coord = real_intercept && !levels;
        if let Some((_, us)) = self.baseline.geo_intercept {
            let partial = centring.intercept_power.filter(|w| *w > 0.0 && *w < 1.0 && !levels && pooled);
            self.baseline.geo_centred = (centring.intercept && pooled && partial.is_none()) || levels;
            self.baseline.geo_power = partial.unwrap_or(1.0);
            let kind = match (self.baseline.geo_centred, partial) {
                (true, _) => "dev",
                (false, Some(_)) => "pc",
                (false, None) => "z",
            };
            for g in 0..g_n {
                self.params[us + g].name = format!("intercept_geo_{kind}[{}]", self.geos[g]);
            }
        }
        for (c, ch) in self.channels.iter_mut().enumerate() {
            if let Some(zs) = ch.z_start {
                ch.geo_centred = centring.beta.get(c).copied().unwrap_or(false);
                let kind = if ch.geo_centred { "dev" } else { "z" };
                for g in 0..g_n {
                    self.params[zs + g].name = format!("beta_geo_{kind}[{},{}]", ch.name, self.geos[g]);
                }
            }
        }
    }

    /// A copy of the model with every hierarchy block non-centred.
    pub fn non_centred(&self) -> MmmModel {
        let mut m = self.clone();
        m.set_centring(&Centring::default());
        m
    }

    /// This model with the intercept coordinate holding μ_a itself instead of the fitted level
    /// (`level_coord` off, see [`MmmModel::to_model_coords`]), when that gives its Hessian geo
    /// blocks ([`MmmModel::geo_blocks`]) and it has none as it is; `None` otherwise. The level
    /// coordinate is a shear with unit Jacobian, so the two forms have the same log density at the
    /// same parameter values (map points with [`MmmModel::convert_point`]) and the same modes; the
    /// level coordinate couples every geo with every other (its h is a mean over all cells), the
    /// μ_a coordinate does not, so the finite-difference Hessians of this form cost
    /// (shared + largest block) gradient differences instead of dim. The Laplace mode search's
    /// preconditioner Hessians are taken here and mapped back (`preconditioner_hessian`); the
    /// search itself stays in the level form, where L-BFGS needs fewer iterations (searching in
    /// this form instead was measured: 10 simulator worlds with a readout took 35.2 s of CPU
    /// against 21.4 s, 1.5–3.6× the L-BFGS gradients on 7 of them).
    pub fn sparse_form(&self) -> Option<MmmModel> {
        if !self.level_coord || self.geo_blocks().is_some() {
            return None;
        }
        let mut m = self.clone();
        m.level_coord = false;
        m.geo_blocks().is_some().then_some(m)
    }

    /// The point of this model's sampling coordinates that is the same constrained parameter
    /// values as `q` in `from`'s (the same model in another centring): deviations d = s·z, z = d/s.
    pub fn convert_point(&self, from: &MmmModel, q: &[f64]) -> Vec<f64> {
        self.to_sampling_coords(&self.model_coords_from(from, q))
    }

    /// [`MmmModel::convert_point`] and the point's constrained parameter values (this model's
    /// [`MmmModel::constrain`] of it), both from the model coordinates the conversion passes
    /// through, with one forward pass of the model for the level shifts (`from`'s, reused for this
    /// model: they depend on the parameter values alone), where converting and then constraining
    /// takes three. The constrained values are those of the exact model coordinates instead of
    /// their round trip through the sampling coordinates, and the sampling coordinates carry
    /// `from`'s shifts, so both can differ from `constrain(convert_point(..))` in the last bits.
    pub fn convert_point_constrained(&self, from: &MmmModel, q: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (qm, shifts) = self.model_coords_from_shifts(from, q);
        (self.to_sampling_coords_given(&qm, &shifts), self.constrain_model_coords(&qm))
    }

    /// The model coordinates in this model's centring of the point `q` of `from`'s sampling
    /// coordinates (see [`MmmModel::convert_point`]).
    fn model_coords_from(&self, from: &MmmModel, q: &[f64]) -> Vec<f64> {
        self.model_coords_from_shifts(from, q).0
    }

    /// [`MmmModel::model_coords_from`] and the level shifts `from`'s conversion computed: functions
    /// of the parameter values alone, so valid for this model too (one forward pass per point
    /// where converting took two; the sampling coordinates then agree with
    /// [`MmmModel::convert_point`]'s up to rounding).
    fn model_coords_from_shifts(&self, from: &MmmModel, q: &[f64]) -> (Vec<f64>, LevelShifts) {
        let mut qm = vec![0.0; q.len()];
        let shifts = from.to_model_coords_shifts(q, &mut qm);
        // (scale, first index, power w before, power w after): d = s^w_before·u, u' = d/s^w_after
        let power = |centred: bool| if centred { 0.0 } else { 1.0 };
        let mut blocks: Vec<(usize, usize, f64, f64)> = Vec::new();
        if let (Some((si, us)), Some(_)) = (self.baseline.pooled_intercepts(), from.baseline.pooled_intercepts()) {
            blocks.push((si, us, from.intercept_power(), self.intercept_power()));
        }
        for (a, b) in from.channels.iter().zip(&self.channels) {
            if let (Some(ti), Some(zs)) = (b.tau_idx, b.z_start) {
                blocks.push((ti, zs, power(a.geo_centred), power(b.geo_centred)));
            }
        }
        for (si, start, was, now) in blocks {
            if was == now {
                continue;
            }
            let s = self.params[si].transform.constrain(qm[si]).x;
            for v in &mut qm[start..start + self.n_geos()] {
                *v *= s.powf(was - now);
            }
        }
        (qm, shifts)
    }
}

impl MmmModel {
    /// A data-driven starting point, in sampling coordinates: the priors' central values
    /// ([`MmmModel::initial_point`]) except the fitted level at the mean scaled KPI (with the level
    /// coordinate), the geo-intercept deviations at the geos' mean scaled KPI minus the overall mean
    /// with their scale at the deviations' sd (floored at 1e-3), and the noise sd at the two-way
    /// residual sd of the scaled KPI (an over-estimate: media and controls are not removed). These
    /// are what the data say before any fit; starting there the optimiser does not first have to
    /// travel to the data's level, through the region where a centred hierarchy's scale can fall
    /// into its spike at zero.
    pub fn data_initial_point(&self) -> Vec<f64> {
        let real_intercept = self.params[self.baseline.intercept_idx].transform == crate::priors::Transform::Identity;
        if real_intercept && !self.level_coord && !self.baseline.geo_levels {
            // without the level coordinate (`sparse_form`): the same point as with it, the fitted
            // level at the mean scaled KPI
            let mut with_level = self.clone();
            with_level.level_coord = true;
            return self.convert_point(&with_level, &with_level.data_initial_point());
        }
        let (g_n, t_n, tf) = (self.n_geos(), self.n_times, self.n_fit);
        let mut qm = vec![0.0; self.params.len()];
        self.to_model_coords(&self.initial_point(), &mut qm);
        let means: Vec<f64> = (0..g_n).map(|g| self.y[g * t_n..g * t_n + tf].iter().sum::<f64>() / tf as f64).collect();
        let overall = means.iter().sum::<f64>() / g_n as f64;
        let set = |qm: &mut Vec<f64>, i: usize, x: f64| {
            let y = self.params[i].transform.unconstrain(x);
            if y.is_finite() {
                qm[i] = y;
            }
        };
        if let Some((scale, us)) = self.baseline.geo_intercept
            && g_n > 1
        {
            let sd = (means.iter().map(|m| (m - overall).powi(2)).sum::<f64>() / (g_n - 1) as f64).sqrt().max(1e-3);
            if let Some(si) = scale.index() {
                set(&mut qm, si, sd);
            }
            let s = self.intercept_scale_at(&qm).expect("a geo model");
            for g in 0..g_n {
                let d = means[g] - overall;
                qm[us + g] = d / s.powf(self.intercept_power());
            }
        }
        if g_n > 1 && tf > 1 {
            let yy = demean_two_way(&self.y, g_n, t_n, tf);
            let sd = (yy.iter().map(|v| v * v).sum::<f64>() / ((g_n - 1) * (tf - 1)) as f64).sqrt();
            if sd > 0.0 {
                set(&mut qm, self.sigma_idx, sd);
            }
        }
        let mut q = self.to_sampling_coords(&qm);
        if self.level_coord {
            q[self.baseline.intercept_idx] = overall;
        }
        if let Some((_, us)) = self.baseline.levels_block() {
            // each geo's fitted level at its mean scaled KPI, the global intercept at their mean (v = 0)
            q[us..us + g_n].copy_from_slice(&means);
            q[self.baseline.intercept_idx] = 0.0;
        }
        q
    }
}

/// Below this κ a channel's geo effects are prior-dominated: the shrinkage weight 1/(1 + κ) towards
/// the channel mean exceeds 0.9, so the per-geo effects mostly repeat the pooling prior.
pub const PRIOR_DOMINATED_KAPPA: f64 = 1.0 / 9.0;

/// Geos needed before the data can say much about a pooling scale: a scale estimated from G − 1
/// deviations has a relative sd of about 1/√(2(G − 1)), above 50 % with fewer than 3 geos.
pub const MIN_GEOS_FOR_POOLING_SCALE: usize = 3;

/// Plain-language warnings for hierarchies the data cannot inform (empty for national models):
/// - fewer than [`MIN_GEOS_FOR_POOLING_SCALE`] geos: the pooling scales (`intercept_geo_sd`,
///   `beta_geo_sd[...]`) are set by their priors;
/// - a channel whose κ (see the module doc) is below [`PRIOR_DOMINATED_KAPPA`]: its per-geo effects
///   sit near the channel's mean, where the pooling prior puts them.
///
/// κ = τ²·(the data's information about one geo's log effect) is the shrinkage ratio at the pooling
/// scale τ. Before a fit only the prior's central value τ₀ is known (the centring rule uses it);
/// after one, `tau_hat[c]` (channel c's fitted scale, e.g. its posterior median) replaces it,
/// κ = κ(τ₀)·(τ̂/τ₀)²: a scale the data pushed well above its prior's centre shrinks less than τ₀
/// says (Meridian 40-geo, Channel2: κ(τ₀) = 0.10, τ̂ = 1.53 against τ₀ = 0.67, κ = 0.50: its per-geo
/// effects are the data's, not the prior's). `None` entries, or a short slice, keep τ₀.
pub fn prior_dominated_warnings(model: &MmmModel, spec: &ModelSpec, tau_hat: &[Option<f64>]) -> Vec<String> {
    let g_n = model.n_geos();
    if g_n < 2 {
        return Vec::new();
    }
    let mut out = Vec::new();
    // the sampled pooling scales (a held intercept sd is what the user set)
    let scales: Vec<&str> = [
        model.baseline.pooled_intercepts().map(|_| "intercept_geo_sd"),
        model.channels.iter().any(|c| c.tau_idx.is_some()).then_some("beta_geo_sd[...]"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if g_n < MIN_GEOS_FOR_POOLING_SCALE && !scales.is_empty() {
        out.push(format!(
            "{g_n} geos cannot inform a pooling scale (a spread estimated from {} deviation(s)): \
             {} follow their priors, which decide how far the geos may differ. Set them \
             ([baseline] intercept_geo_sd, [pooling] tau) to what you believe, or use [pooling] kind = \"complete\"",
            g_n - 1,
            scales.join(" and ")
        ));
    }
    let choice = choose(model, spec);
    let tau0 = pooling_tau_centre(spec);
    for (c, k) in choice.beta_kappa.iter().enumerate() {
        let Some(k0) = *k else { continue };
        let (k, at) = match tau_hat.get(c).copied().flatten() {
            Some(t) if tau0 > 0.0 && t.is_finite() => {
                (k0 * (t / tau0).powi(2), format!("at the fitted pooling scale {t:.2}"))
            }
            _ => (k0, format!("at the pooling prior's centre {tau0:.2}")),
        };
        if k < PRIOR_DOMINATED_KAPPA {
            out.push(format!(
                "channel {}: the data say little about how its effect differs between geos (information \
                 ratio κ = {k:.2} < {PRIOR_DOMINATED_KAPPA:.2} {at}): its per-geo effects stay near the channel's \
                 mean, where the pooling prior puts them; per-geo ROIs of this channel reflect the prior",
                model.channels[c].name
            ));
        }
    }
    out
}
