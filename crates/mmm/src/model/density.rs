//! The model's log density and its analytic gradient (reverse mode, by hand).
//!
//! log p(q) = Σ_i [log prior_i(x_i(q_i)) + log|dx_i/dq_i|] − ½Σ z² + log-likelihood + lift terms,
//! with q the unconstrained vector. The backward pass runs the chain rule through the likelihood,
//! the media coefficients (pooling, ROI parametrisation), the saturation curves and the adstock
//! convolutions (their adjoints, see `transforms::adstock`). Scratch: one buffer per thread, reused
//! (zeroed) by every call.

// Index loops mirror the sums of the math (over g, t, l) and address several arrays at once.
#![allow(clippy::needless_range_loop)]

use super::{ChannelModel, MmmModel};
use crate::spec::Likelihood;
use crate::transforms::TransformOrder;
use crate::transforms::adstock::{convolve, convolve_adjoint_w, convolve_adjoint_x, dot};
use crate::transforms::saturation::SatSlices;
use mmloop_inference::{CountedHessian, HessianSparsity, InferenceError, LogDensity, LogDensityError};

/// Forward pass of one channel on one media series: f = feature, plus what the backward pass needs.
pub(crate) struct ChannelBufs<'a> {
    pub f: &'a mut [f64],
    pub d1: &'a mut [f64],
    pub u: &'a mut [f64],
    pub dp0: &'a mut [f64],
    pub dp1: &'a mut [f64],
}

/// `dp1` (∂f/∂φ₁) is written only when φ₁ is sampled (a held Hill slope has no coordinate, and a
/// slope held at 1 makes the curve x/(x + ec), see [`crate::transforms::saturation`]).
pub(crate) fn channel_forward(ch: &ChannelModel, w: &[f64], phi: &[f64], x: &[f64], b: &mut ChannelBufs) {
    let n = x.len();
    let phi1_sampled = ch.phi1_sampled();
    match ch.order {
        TransformOrder::AdstockFirst => {
            convolve(w, x, &mut b.u[..n]);
            let out = SatSlices {
                s: &mut b.f[..n],
                ds_dx: &mut b.d1[..n],
                ds_dphi0: &mut b.dp0[..n],
                ds_dphi1: phi1_sampled.then_some(&mut b.dp1[..n]),
            };
            ch.sat.eval_into(phi, &b.u[..n], out);
        }
        TransformOrder::SaturationFirst => {
            // d1 (∂s/∂x) is not needed when saturation comes first; it is filled as scratch
            let out = SatSlices {
                s: &mut b.u[..n],
                ds_dx: &mut b.d1[..n],
                ds_dphi0: &mut b.dp0[..n],
                ds_dphi1: phi1_sampled.then_some(&mut b.dp1[..n]),
            };
            ch.sat.eval_into(phi, x, out);
            convolve(w, &b.u[..n], &mut b.f[..n]);
        }
    }
}

/// Backward pass: given ā = ∂F/∂f, adds ∂F/∂w into `gw` and ∂F/∂φ into `gphi` (∂F/∂φ₁ only
/// when φ₁ is sampled, as [`channel_forward`] wrote it). `tmp` is scratch.
#[allow(clippy::too_many_arguments)]
pub(crate) fn channel_backward(
    ch: &ChannelModel,
    w: &[f64],
    x: &[f64],
    a: &[f64],
    b: &ChannelBufs,
    gw: &mut [f64],
    gphi: &mut [f64; 2],
    tmp: &mut [f64],
) {
    let n = x.len();
    let phi1_sampled = ch.phi1_sampled();
    match ch.order {
        TransformOrder::AdstockFirst => {
            for t in 0..n {
                tmp[t] = a[t] * b.d1[t];
            }
            convolve_adjoint_w(&tmp[..n], x, gw);
            gphi[0] += dot(&a[..n], &b.dp0[..n]);
            if phi1_sampled {
                gphi[1] += dot(&a[..n], &b.dp1[..n]);
            }
        }
        TransformOrder::SaturationFirst => {
            convolve_adjoint_w(a, &b.u[..n], gw);
            tmp[..n].fill(0.0);
            convolve_adjoint_x(w, a, &mut tmp[..n]);
            gphi[0] += dot(&tmp[..n], &b.dp0[..n]);
            if phi1_sampled {
                gphi[1] += dot(&tmp[..n], &b.dp1[..n]);
            }
        }
    }
}

/// Constrained parameter values of one draw, in the model's scaled units (see [`super`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ParamValues {
    /// Every coordinate, constrained, in layout order.
    pub values: Vec<f64>,
    /// Adstock θ and saturation φ per channel.
    pub theta: Vec<Vec<f64>>,
    pub phi: Vec<Vec<f64>>,
    /// β_c (derived from ROI_c for ROI-parametrised channels).
    pub beta: Vec<f64>,
    /// β(g, c), [c][g]: the causal effect (what lift tests measure and decisions use).
    pub beta_geo: Vec<Vec<f64>>,
    /// exp(b_c) per channel: the data's likelihood sees β(g,c)·exp(b_c) (1 without observational
    /// bias, see [`super`]).
    pub obs_factor: Vec<f64>,
    /// a_g per geo.
    pub intercept: Vec<f64>,
    pub sigma: f64,
}

impl MmmModel {
    /// Pushes an unconstrained vector through the transforms and derives β for ROI channels.
    pub fn unpack(&self, q: &[f64]) -> ParamValues {
        self.unpack_values(self.constrain(q))
    }

    /// [`MmmModel::unpack`] from constrained values in layout order.
    pub fn unpack_values(&self, values: Vec<f64>) -> ParamValues {
        let g_n = self.n_geos();
        let t_n = self.n_times;
        let mut theta = Vec::new();
        let mut phi = Vec::new();
        let mut beta = Vec::new();
        let mut beta_geo = Vec::new();
        let mut obs_factor = Vec::new();
        let mut f = vec![0.0; t_n];
        for (c, ch) in self.channels.iter().enumerate() {
            let th: Vec<f64> = ch.theta_idx.iter().map(|&i| values[i]).collect();
            let ph = ch.phi_at(&values).to_vec();
            let e: Vec<f64> = (0..g_n)
                .map(|g| match (ch.tau_idx, ch.z_start) {
                    (Some(_), Some(zs)) if ch.geo_centred => values[zs + g].exp(),
                    (Some(ti), Some(zs)) => (values[ti] * values[zs + g]).exp(),
                    _ => 1.0,
                })
                .collect();
            let b = if ch.effect_is_roi {
                let mut d = 0.0;
                for (g, eg) in e.iter().enumerate() {
                    self.channel_feature(c, &th, &ph, &ch.x[g * t_n..(g + 1) * t_n], &mut f);
                    let s: f64 = (0..self.n_fit).map(|t| self.rpk[g * t_n + t] * f[t]).sum();
                    d += eg * self.kpi_scale[g] * s;
                }
                values[ch.effect_idx] * ch.spend_fit / d
            } else {
                // a coefficient prior is on what the data measure, β_obs; the causal β is
                // β_obs·exp(−b) (see `super`)
                values[ch.effect_idx] * ch.bias_idx.map_or(1.0, |i| (-values[i]).exp())
            };
            beta_geo.push(e.iter().map(|eg| b * eg).collect());
            beta.push(b);
            obs_factor.push(ch.bias_idx.map_or(1.0, |i| values[i].exp()));
            theta.push(th);
            phi.push(ph);
        }
        let bl = &self.baseline;
        let w = self.intercept_power();
        let intercept = (0..g_n)
            .map(|g| match bl.geo_intercept {
                Some((scale, us)) => values[bl.intercept_idx] + scale.value(&values).powf(w) * values[us + g],
                None => values[bl.intercept_idx],
            })
            .collect();
        let sigma = values[self.sigma_idx];
        ParamValues { values, theta, phi, beta, beta_geo, obs_factor, intercept, sigma }
    }

    /// Baseline (intercept, trend, seasonality, controls) in scaled units, [g·T + t], all periods.
    pub fn baseline_scaled(&self, p: &ParamValues) -> Vec<f64> {
        let t_n = self.n_times;
        let bl = &self.baseline;
        let pd = bl.design_idx.len();
        let k_n = bl.control_idx.len();
        let mut out = vec![0.0; self.n_geos() * t_n];
        for g in 0..self.n_geos() {
            for t in 0..t_n {
                let mut m = p.intercept[g];
                for j in 0..pd {
                    m += bl.design[t * pd + j] * p.values[bl.design_idx[j]];
                }
                for k in 0..k_n {
                    m += bl.controls[(g * t_n + t) * k_n + k] * p.values[bl.control_idx[k]];
                }
                out[g * t_n + t] = m;
            }
        }
        out
    }
}

impl LogDensity for MmmModel {
    fn dim(&self) -> usize {
        self.params.len()
    }

    fn param_names(&self) -> Vec<String> {
        self.names()
    }

    fn logp_grad(&self, q: &[f64], grad: &mut [f64]) -> Result<f64, LogDensityError> {
        self.logp_grad_mode(q, grad, false)
    }

    fn hessian_sparsity(&self) -> Option<HessianSparsity> {
        self.geo_blocks()
    }

    fn preconditioner_hessian(&self, q: &[f64]) -> Option<Result<CountedHessian, InferenceError>> {
        let sparse = self.sparse_form()?;
        self.level_hessian_from(&sparse, q)
    }
}

impl MmmModel {
    /// The Hessian of this model's log density f (with the level coordinate) at `q` from the
    /// coloured forward-difference Hessian of its [`MmmModel::sparse_form`] g, for preconditioning
    /// (see [`LogDensity::preconditioner_hessian`]); `None` where the mapping's pieces are not
    /// finite. With m = φ(q) (m_ℓ = q_ℓ − h(q_r) in the intercept slot ℓ, m_r = q_r elsewhere,
    /// see [`MmmModel::to_model_coords`]) and J = ∂m/∂q (the identity but for row ℓ:
    /// (1, −∇h)), f = g∘φ gives
    ///
    /// ∇f = Jᵀ∇g,  ∇²f = Jᵀ ∇²g J − (∂g/∂m_ℓ)·∇²h,
    ///
    /// and this returns Jᵀ ∇²g J, the second term dropped: it vanishes at the mode (∂g/∂m_ℓ = 0
    /// there) and a preconditioner needs the curvature's shape, not its last digits. ∇²g costs
    /// (shared + largest geo block) + 1 gradients ([`MmmModel::geo_blocks`]) instead of dim + 1.
    /// ∇h comes exactly from two more gradients: h does not depend on m_ℓ, so at m' = m + e_ℓ
    /// (the intercept one scaled KPI unit up, where ∂g/∂m_ℓ is of order −N/σ², far from 0),
    /// ∂f/∂q_r = ∂g/∂m_r − ∂h/∂q_r·∂g/∂m_ℓ gives ∂h/∂q_r = (∂g/∂m_r − ∂f/∂q_r)/(∂g/∂m_ℓ).
    fn level_hessian_from(&self, sparse: &MmmModel, q: &[f64]) -> Option<Result<CountedHessian, InferenceError>> {
        let d = q.len();
        let l = self.baseline.intercept_idx;
        let m = sparse.convert_point(self, q);
        let (h, evaluations) =
            match mmloop_inference::laplace::hessian_forward_counted(sparse, &m, sparse.geo_blocks().as_ref()) {
                Ok(h) => h,
                Err(e) => return Some(Err(e)),
            };
        let mut shifted = m.clone();
        shifted[l] += 1.0;
        let q_shifted = self.convert_point(sparse, &shifted);
        let (mut gg, mut gf) = (vec![0.0; d], vec![0.0; d]);
        sparse.logp_grad(&shifted, &mut gg).ok()?;
        self.logp_grad(&q_shifted, &mut gf).ok()?;
        let dl = gg[l];
        if !(dl.is_finite() && dl != 0.0) {
            return None;
        }
        let dh: Vec<f64> = (0..d).map(|r| if r == l { 0.0 } else { (gg[r] - gf[r]) / dl }).collect();
        if dh.iter().any(|v| !v.is_finite()) {
            return None;
        }
        // H J: column r gains −H[:, ℓ]·∂h/∂q_r; then Jᵀ (H J): row r gains −∂h/∂q_r·(H J)[ℓ, :]
        let mut hj = h;
        for row in hj.iter_mut() {
            let hl = row[l];
            for r in 0..d {
                row[r] -= hl * dh[r];
            }
        }
        let row_l = hj[l].clone();
        for r in 0..d {
            for c in 0..d {
                hj[r][c] -= dh[r] * row_l[c];
            }
        }
        // and the two gradients of ∇h
        Some(Ok((hj, evaluations + 2)))
    }
}

impl MmmModel {
    /// The geo blocks of the Hessian ([`HessianSparsity`]), where the parametrisation guarantees
    /// them. log p is Σ_g (geo g's likelihood terms and hierarchy priors) + shared priors: a geo's
    /// cells see only its own intercept deviation (δ_g, u_g, whatever the centring: δ_g =
    /// σ_a^w·u_g) and effects β(g,c) = β_c·exp(d_{g,c}) (d = τ_c·z or d itself), besides shared
    /// coordinates (μ_a, σ_a, β_c or ROI_c, τ_c, θ_c, φ_c, b_c, σ, trend, seasonality, control
    /// coefficients); the response-coordinate shear mixes only shared coordinates. So geo g's
    /// coordinates form block g, and ∂log p/∂(geo g) does not depend on another geo's
    /// coordinates. Three things couple geos, and are kept as they are:
    /// - the level coordinate (μ_a = ℓ − h with h the mean over every geo's cells) and the
    ///   geo-levels form (μ_a = ā + σ_a·v/√G, and the hierarchy's Σ_g (a_g − ā)²): every geo's
    ///   coordinates move every cell's mean, a dense coupling of all geos (rank one per
    ///   aggregate, entries of order 1/G of the diagonal), so the model declares no structure
    ///   (`None`: dense Hessians);
    /// - an ROI prior on a pooled channel: β_c = ROI_c·spend/D_c with D_c a sum over every
    ///   geo's exp(d_{g,c}), so that channel's geo effects are shared coordinates;
    /// - a lift test spanning several geos: its implied lift sums β(g,c) over its geos, so
    ///   those geos' effects of its channels are shared coordinates.
    ///
    /// National models have no blocks (`None`).
    pub fn geo_blocks(&self) -> Option<HessianSparsity> {
        let g_n = self.n_geos();
        if g_n < 2 || self.level_coord || self.baseline.geo_levels {
            return None;
        }
        let mut block = vec![None; self.params.len()];
        if let Some((_, us)) = self.baseline.geo_intercept {
            for g in 0..g_n {
                block[us + g] = Some(g);
            }
        }
        for ch in self.channels.iter().filter(|c| !c.effect_is_roi) {
            if let Some(zs) = ch.z_start {
                for g in 0..g_n {
                    block[zs + g] = Some(g);
                }
            }
        }
        for term in &self.lift {
            let first = term.parts.first().map(|p| p.geo);
            if term.parts.iter().all(|p| Some(p.geo) == first) {
                continue;
            }
            for part in &term.parts {
                if let Some(zs) = self.channels[part.channel].z_start {
                    block[zs + part.geo] = None;
                }
            }
        }
        block.iter().any(Option::is_some).then(|| HessianSparsity::new(block))
    }
}

impl MmmModel {
    /// The joint log density and gradient (`collapse` false), or, with `collapse`, the density with
    /// the geo intercept deviations integrated out of the Normal likelihood (see
    /// [`super::collapsed`]): the intercept block's coordinates are then not read (they get no
    /// term and a zero gradient). `collapse` needs a geo model with a Normal likelihood and its
    /// intercepts non-centred (not by levels, not partially centred).
    pub(crate) fn logp_grad_mode(&self, q: &[f64], grad: &mut [f64], collapse: bool) -> Result<f64, LogDensityError> {
        let np = self.params.len();
        if q.len() != np || grad.len() != np {
            return Err(LogDensityError::Fatal(format!("expected {np} coordinates, got {} / {}", q.len(), grad.len())));
        }
        let g_n = self.n_geos();
        let tf = self.n_fit;
        let c_n = self.channels.len();
        let n_cells = g_n * tf;
        let max_w = self.channels.iter().map(|c| c.kernel.len()).max().unwrap_or(1);
        // scratch: model coordinates, values, dxdy, gx | mu/resid | per channel 5 arrays | w, dw, gw | tmp |
        // national baseline and residual sums over geos | b, e, gb | ROI denominators | baseline coefficients |
        // response-coordinate derivatives
        let per_ch = 5 * n_cells;
        let n_coef = self.baseline.design_idx.len() + self.baseline.control_idx.len();
        let len = 4 * np
            + n_cells
            + c_n * per_ch
            + 4 * max_w
            + 3 * tf
            + 3 * c_n * g_n
            + c_n
            + 2 * n_coef
            + g_n
            + 2 * self.response_coords.len();
        SCRATCH.with(|cell| {
            let mut buf = cell.borrow_mut();
            // Not zeroed here: `logp_grad_in` writes every slot before reading it and zeroes its
            // accumulators itself, so stale values from an earlier call are never read.
            buf.resize(len, 0.0);
            self.logp_grad_in(q, grad, &mut buf[..len], collapse)
        })
    }
}

thread_local! {
    /// Scratch of `logp_grad`, one per thread: a NUTS chain evaluates the density on one rayon
    /// thread at a time and `logp_grad` does not re-enter itself, so reusing the buffer is safe; it
    /// is zeroed before each call, so results do not depend on which thread ran the previous call.
    static SCRATCH: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl MmmModel {
    /// The body of `logp_grad` on a scratch buffer of the length it computes (any contents: every
    /// slot is written before it is read; the accumulators `gx`, `g_design`, `g_control` are zeroed
    /// here).
    fn logp_grad_in(
        &self,
        q: &[f64],
        grad: &mut [f64],
        buf: &mut [f64],
        collapse: bool,
    ) -> Result<f64, LogDensityError> {
        let np = self.params.len();
        let collapsed = match self.baseline.geo_intercept {
            Some((scale, us)) if collapse => {
                if self.baseline.geo_levels || self.intercept_power() != 1.0 || self.likelihood != Likelihood::Normal {
                    return Err(LogDensityError::Fatal(
                        "the geo intercepts are integrated out only from a Normal likelihood, non-centred".into(),
                    ));
                }
                Some((scale, us))
            }
            _ => None,
        };
        let g_n = self.n_geos();
        let t_n = self.n_times;
        let tf = self.n_fit;
        let c_n = self.channels.len();
        let n_cells = g_n * tf;
        let max_w = self.channels.iter().map(|c| c.kernel.len()).max().unwrap_or(1);
        let per_ch = 5 * n_cells;
        // model coordinates (see `MmmModel::to_model_coords`); the gradient is mapped back at the end
        // (the level coordinate ℓ stays in the intercept slot until the mean is built)
        // ∂ln s(1; φ)/∂q_φ of each response coordinate, kept for the gradient map at the end
        let (buf, resp_d) = buf.split_at_mut(buf.len() - 2 * self.response_coords.len());
        let (qm, rest) = buf.split_at_mut(np);
        self.response_to_model(q, qm, resp_d);
        let q: &[f64] = qm;
        let (vals, rest) = rest.split_at_mut(np);
        let (dxdy, rest) = rest.split_at_mut(np);
        let (gx, rest) = rest.split_at_mut(np);
        let (resid, rest) = rest.split_at_mut(n_cells);
        let (chbuf, rest) = rest.split_at_mut(c_n * per_ch);
        let (w, rest) = rest.split_at_mut(max_w);
        let (dw, rest) = rest.split_at_mut(2 * max_w);
        let (gw, rest) = rest.split_at_mut(max_w);
        let (tmp, rest) = rest.split_at_mut(tf);
        let (base_t, rest) = rest.split_at_mut(tf);
        let (resid_t, rest) = rest.split_at_mut(tf);
        let (bgc, rest) = rest.split_at_mut(c_n * g_n);
        let (egc, rest) = rest.split_at_mut(c_n * g_n);
        let (gb, rest) = rest.split_at_mut(c_n * g_n);
        let (roi_d, rest) = rest.split_at_mut(c_n);
        let bl = &self.baseline;
        let pd = bl.design_idx.len();
        let k_n = bl.control_idx.len();
        let (coef_design, rest) = rest.split_at_mut(pd);
        let (coef_control, rest) = rest.split_at_mut(k_n);
        let (g_design, rest) = rest.split_at_mut(pd);
        let (g_control, rest) = rest.split_at_mut(k_n);
        // geo-levels form: ∂(hierarchy terms)/∂a_g, then the whole ∂/∂a_g
        let ga_levels = &mut rest[..g_n];
        gx.fill(0.0);
        g_design.fill(0.0);
        g_control.fill(0.0);

        // --- priors and Jacobians ---------------------------------------------------------
        let mut lp = 0.0;
        let level = self.level_coord.then_some(self.baseline.intercept_idx);
        // geo-levels form (see `MmmModel::to_model_coords`): (σ_a index, first ℓ_g index)
        let levels = self.baseline.levels_block();
        let in_levels = |i: usize| levels.is_some_and(|(_, us)| (us..us + g_n).contains(&i));
        for (i, p) in self.params.iter().enumerate() {
            let c = p.transform.constrain(q[i]);
            vals[i] = c.x;
            dxdy[i] = c.dx_dy;
            match p.prior {
                // the intercept's prior is evaluated once μ_a = ℓ − h is known (or, with geo levels,
                // μ_a = ā + σ_a·v/√G)
                Some(_) if level == Some(i) || (levels.is_some() && i == self.baseline.intercept_idx) => grad[i] = 0.0,
                // geo levels ℓ_g: their terms come with the hierarchy's, below
                None if in_levels(i) => grad[i] = 0.0,
                // integrated out: not read
                None if collapsed.is_some_and(|(_, us)| (us..us + g_n).contains(&i)) => grad[i] = 0.0,
                Some(pr) => {
                    let (l, d) = pr.ln_pdf_and_deriv(c.x);
                    lp += l + c.log_jac;
                    gx[i] = d;
                    grad[i] = c.dlog_jac_dy;
                }
                None => {
                    // standard-normal auxiliary of a non-centred hierarchy
                    lp -= 0.5 * q[i] * q[i];
                    grad[i] = -q[i];
                }
            }
        }
        // centred (w = 0) and partially centred (0 < w < 1) hierarchy blocks: the auxiliaries are
        // u = d/s^w ~ N(0, s^(1−w)) (the deviations d themselves when centred), so their term is
        // −½u²/s^(2(1−w)) − (1−w)·ln s (the loop above gave them −½u²) and s's gradient gains
        // (1−w)·(u²/s^(3−2w) − 1/s)
        for (scale, start, w) in self.centred_blocks() {
            let s_val = vals[scale];
            let inv2 = s_val.powf(-2.0 * (1.0 - w));
            for i in start..start + g_n {
                let d = q[i];
                lp += 0.5 * d * d - 0.5 * d * d * inv2 - (1.0 - w) * s_val.ln();
                grad[i] = -d * inv2;
                gx[scale] += (1.0 - w) * (d * d * inv2 / s_val - 1.0 / s_val);
            }
        }
        if !lp.is_finite() {
            return Err(LogDensityError::Recoverable("a parameter is outside its prior's support".into()));
        }

        // --- baseline mean ---------------------------------------------------------------------
        // the design (trend, seasonality) is national: its series is built once for all geos
        for j in 0..pd {
            coef_design[j] = vals[bl.design_idx[j]];
        }
        for k in 0..k_n {
            coef_control[k] = vals[bl.control_idx[k]];
        }
        for t in 0..tf {
            base_t[t] = dot(&bl.design[t * pd..(t + 1) * pd], coef_design);
        }
        // with the level coordinate, μ_a is added after the media, once h is known
        let mu_now = if level.is_some() { 0.0 } else { vals[bl.intercept_idx] };
        let w_int = self.intercept_power();
        for g in 0..g_n {
            let a = match bl.geo_intercept {
                // geo levels: a_g = ℓ_g − h_g is added after the media, once h_g is known
                // integrated out: the mean without the deviations
                Some(_) if collapsed.is_some() => mu_now,
                Some(_) if levels.is_some() => 0.0,
                Some((scale, us)) => mu_now + scale.value(vals).powf(w_int) * vals[us + g],
                None => mu_now,
            };
            let m = &mut resid[g * tf..(g + 1) * tf];
            for t in 0..tf {
                m[t] = a + base_t[t];
            }
            if k_n > 0 {
                let z = &bl.controls[g * t_n * k_n..(g * t_n + tf) * k_n];
                for (mt, row) in m.iter_mut().zip(z.chunks_exact(k_n)) {
                    *mt += dot(row, coef_control);
                }
            }
        }

        // --- media forward --------------------------------------------------------------------
        for (c, ch) in self.channels.iter().enumerate() {
            let n = ch.kernel.len();
            let th: [f64; 2] = [vals[ch.theta_idx[0]], ch.theta_idx.get(1).map_or(0.0, |&i| vals[i])];
            let ph = ch.phi_at(vals);
            ch.kernel.weights(&th, &mut w[..n], &mut dw[..2 * n]);
            let cb = &mut chbuf[c * per_ch..(c + 1) * per_ch];
            let mut d = 0.0;
            for g in 0..g_n {
                let e = match (ch.tau_idx, ch.z_start) {
                    (Some(_), Some(zs)) if ch.geo_centred => vals[zs + g].exp(),
                    (Some(ti), Some(zs)) => (vals[ti] * vals[zs + g]).exp(),
                    _ => 1.0,
                };
                egc[c * g_n + g] = e;
                let o = g * tf;
                let (f, r) = cb.split_at_mut(n_cells);
                let (d1, r) = r.split_at_mut(n_cells);
                let (u, r) = r.split_at_mut(n_cells);
                let (dp0, dp1) = r.split_at_mut(n_cells);
                let mut bufs = ChannelBufs {
                    f: &mut f[o..o + tf],
                    d1: &mut d1[o..o + tf],
                    u: &mut u[o..o + tf],
                    dp0: &mut dp0[o..o + tf],
                    dp1: &mut dp1[o..o + tf],
                };
                channel_forward(ch, &w[..n], &ph, &ch.x[g * t_n..g * t_n + tf], &mut bufs);
                if ch.effect_is_roi {
                    d += e * self.kpi_scale[g] * dot(&self.rpk[g * t_n..g * t_n + tf], bufs.f);
                }
            }
            let beta = if ch.effect_is_roi {
                if !(d > 0.0 && d.is_finite()) {
                    return Err(LogDensityError::Recoverable(format!("channel {}: media effect vanishes", ch.name)));
                }
                roi_d[c] = d;
                vals[ch.effect_idx] * ch.spend_fit / d
            } else {
                // the coefficient coordinate is β_obs: the causal β_c = β_obs·exp(−b)
                vals[ch.effect_idx] * ch.bias_idx.map_or(1.0, |i| (-vals[i]).exp())
            };
            // the data see β(g,c)·exp(b_c); bgc keeps the causal β(g,c)
            let fac = ch.bias_idx.map_or(1.0, |i| vals[i].exp());
            for g in 0..g_n {
                bgc[c * g_n + g] = beta * egc[c * g_n + g];
                let b = bgc[c * g_n + g] * fac;
                let f = &cb[g * tf..(g + 1) * tf];
                let m = &mut resid[g * tf..(g + 1) * tf];
                for t in 0..tf {
                    m[t] += b * f[t];
                }
            }
        }

        // --- level coordinate: μ_a = ℓ − h, h = mean of everything but the intercept -------------
        let mut level_prior_d = 0.0;
        if let Some(ia) = level {
            let total: f64 = resid.iter().sum();
            let mu = q[ia] - total / n_cells as f64;
            for m in resid.iter_mut() {
                *m += mu;
            }
            vals[ia] = mu;
            let prior = self.params[ia].prior.expect("the intercept has a prior");
            let (l, d) = prior.ln_pdf_and_deriv(mu);
            lp += l;
            level_prior_d = d;
        }

        // --- geo levels: a_g = ℓ_g − h_g, μ_a = ā + σ_a·v/√G, the hierarchy's terms ---------------
        if let Some((si, us)) = levels {
            let ia = bl.intercept_idx;
            let gf = g_n as f64;
            let mut a_bar = 0.0;
            for g in 0..g_n {
                let m = &mut resid[g * tf..(g + 1) * tf];
                let a = q[us + g] - m.iter().sum::<f64>() / tf as f64;
                for mt in m.iter_mut() {
                    *mt += a;
                }
                ga_levels[g] = a;
                a_bar += a / gf;
            }
            let s_val = vals[si];
            let v = q[ia];
            let mu = a_bar + s_val * v / gf.sqrt();
            let ss: f64 = ga_levels.iter().map(|a| (a - a_bar) * (a - a_bar)).sum();
            let prior = self.params[ia].prior.expect("the intercept has a prior");
            let (l, dmu) = prior.ln_pdf_and_deriv(mu);
            lp += l - 0.5 * ss / (s_val * s_val) - 0.5 * v * v - (gf - 1.0) * s_val.ln() - 0.5 * gf.ln();
            gx[ia] += -v + dmu * s_val / gf.sqrt();
            gx[si] += ss / (s_val * s_val * s_val) - (gf - 1.0) / s_val + dmu * v / gf.sqrt();
            vals[ia] = mu;
            for g in 0..g_n {
                let a = ga_levels[g];
                vals[us + g] = a - mu;
                // ∂/∂a_g of the hierarchy's terms; the likelihood's part is added below
                ga_levels[g] = -(a - a_bar) / (s_val * s_val) + dmu / gf;
            }
            if !lp.is_finite() {
                return Err(LogDensityError::Recoverable("log density not finite".into()));
            }
        }

        // --- likelihood: resid ← ∂ll/∂μ ---------------------------------------------------------
        let sigma = vals[self.sigma_idx];
        let mut ll = 0.0;
        let mut gsig = 0.0;
        let nobs = n_cells as f64;
        match self.likelihood {
            // intercepts integrated out: per geo, the marginal of its residuals; the adjoint is
            // (r − â_g)/σ² (see `super::collapsed`)
            Likelihood::Normal if collapsed.is_some() => {
                let (scale, _) = collapsed.expect("checked");
                let (s_a, si) = (scale.value(vals), scale.index());
                let inv2 = 1.0 / (sigma * sigma);
                for g in 0..g_n {
                    let m = &mut resid[g * tf..(g + 1) * tf];
                    let (mut s, mut ss) = (0.0, 0.0);
                    for (mt, yt) in m.iter_mut().zip(&self.y[g * t_n..g * t_n + tf]) {
                        *mt = yt - *mt;
                        s += *mt;
                        ss += *mt * *mt;
                    }
                    let gm = super::collapsed::geo_marginal(s, ss, tf as f64, sigma, s_a);
                    ll += gm.ll;
                    gsig += gm.d_sigma;
                    if let Some(si) = si {
                        gx[si] += gm.d_scale;
                    }
                    for mt in m.iter_mut() {
                        *mt = (*mt - gm.a_hat) * inv2;
                    }
                }
            }
            Likelihood::Normal => {
                let inv2 = 1.0 / (sigma * sigma);
                let mut ss = 0.0;
                for g in 0..g_n {
                    let m = &mut resid[g * tf..(g + 1) * tf];
                    for (mt, yt) in m.iter_mut().zip(&self.y[g * t_n..g * t_n + tf]) {
                        *mt = yt - *mt; // the residual, for now
                    }
                    ss += dot(m, m);
                    for mt in m.iter_mut() {
                        *mt *= inv2;
                    }
                }
                ll += -0.5 * ss * inv2 - nobs * (sigma.ln() + 0.918_938_533_204_672_8);
                gsig += ss * inv2 / sigma - nobs / sigma;
            }
            Likelihood::StudentT { nu } => {
                let lg = statrs::function::gamma::ln_gamma;
                let cst = lg(0.5 * (nu + 1.0)) - lg(0.5 * nu) - 0.5 * (nu * std::f64::consts::PI).ln();
                let ns2 = nu * sigma * sigma;
                for g in 0..g_n {
                    for t in 0..tf {
                        let r = self.y[g * t_n + t] - resid[g * tf + t];
                        let den = ns2 + r * r;
                        ll += -0.5 * (nu + 1.0) * (r * r / ns2).ln_1p();
                        resid[g * tf + t] = (nu + 1.0) * r / den;
                        gsig += (nu + 1.0) * r * r / (sigma * den);
                    }
                }
                ll += nobs * (cst - sigma.ln());
                gsig -= nobs / sigma;
            }
        }
        lp += ll;
        gx[self.sigma_idx] += gsig;

        // --- level coordinate: ∂/∂rest|_ℓ = ∂/∂rest|_μ − (∂/∂μ)·∂h/∂rest, h a mean over cells, so
        // every cell's adjoint loses (∂/∂μ)/N; ∂/∂ℓ = ∂/∂μ
        let mut level_grad = 0.0;
        if level.is_some() {
            level_grad = resid.iter().sum::<f64>() + level_prior_d;
            let level_shift = level_grad / n_cells as f64;
            for m in resid.iter_mut() {
                *m -= level_shift;
            }
        }

        // --- geo levels: ∂/∂ℓ_g = ∂/∂a_g; the rest sees a_g = ℓ_g − h_g, h_g a mean over geo g's
        // cells, so each of them loses (∂/∂a_g)/T
        if let Some((_, us)) = levels {
            for g in 0..g_n {
                let m = &mut resid[g * tf..(g + 1) * tf];
                let ga = m.iter().sum::<f64>() + ga_levels[g];
                gx[us + g] += ga;
                let shift = ga / tf as f64;
                for mt in m.iter_mut() {
                    *mt -= shift;
                }
            }
        }

        // --- ∂/∂β(g,c) from the likelihood ----------------------------------------------------
        // with observational bias the likelihood sees β_obs = β·exp(b): ∂/∂β = ∂/∂β_obs·exp(b) and
        // ∂/∂b = Σ_g ∂/∂β_obs(g,c)·β_obs(g,c)
        for (c, ch) in self.channels.iter().enumerate() {
            let cb = &chbuf[c * per_ch..c * per_ch + n_cells];
            let fac = ch.bias_idx.map_or(1.0, |i| vals[i].exp());
            let mut gbias = 0.0;
            for g in 0..g_n {
                let d = dot(&resid[g * tf..(g + 1) * tf], &cb[g * tf..(g + 1) * tf]);
                gbias += d * bgc[c * g_n + g] * fac;
                gb[c * g_n + g] = d * fac;
            }
            if let Some(i) = ch.bias_idx {
                gx[i] += gbias;
            }
        }

        // --- lift tests ---------------------------------------------------------------------
        if !self.lift.is_empty() {
            lp += crate::calibration::lift_logp_grad(self, vals, bgc, gb, gx)?;
        }

        // --- effects chain: β(g,c) = β_c e_gc, β_c from ROI, e_gc = exp(τ z) ------------------
        for (c, ch) in self.channels.iter().enumerate() {
            let beta = if g_n > 0 { bgc[c * g_n] / egc[c * g_n] } else { 0.0 };
            let mut gbeta = 0.0;
            for g in 0..g_n {
                gbeta += gb[c * g_n + g] * egc[c * g_n + g];
            }
            // ge[g] accumulates ∂/∂e_gc (stored in gb, which is no longer needed as such)
            for g in 0..g_n {
                gb[c * g_n + g] *= beta;
            }
            let mut kappa = 0.0;
            if ch.effect_is_roi {
                let d = roi_d[c];
                gx[ch.effect_idx] += gbeta * ch.spend_fit / d;
                kappa = -gbeta * beta / d;
            } else if let Some(bi) = ch.bias_idx {
                // β_c = β_obs·exp(−b): ∂/∂β_obs = ∂/∂β_c·exp(−b), and b gains ∂/∂β_c·(−β_c)
                gx[ch.effect_idx] += gbeta * (-vals[bi]).exp();
                gx[bi] -= gbeta * beta;
            } else {
                gx[ch.effect_idx] += gbeta;
            }
            // adjoint on the features: r·β(g,c) (+ κ·e·κ_g·rpk for the ROI denominator)
            let n = ch.kernel.len();
            let th: [f64; 2] = [vals[ch.theta_idx[0]], ch.theta_idx.get(1).map_or(0.0, |&i| vals[i])];
            ch.kernel.weights(&th, &mut w[..n], &mut dw[..2 * n]);
            gw[..n].fill(0.0);
            let mut gphi = [0.0; 2];
            let cb = &mut chbuf[c * per_ch..(c + 1) * per_ch];
            let (f, r) = cb.split_at_mut(n_cells);
            let (d1, r) = r.split_at_mut(n_cells);
            let (u, r) = r.split_at_mut(n_cells);
            let (dp0, dp1) = r.split_at_mut(n_cells);
            for g in 0..g_n {
                let o = g * tf;
                let e = egc[c * g_n + g];
                if kappa != 0.0 {
                    // ∂D/∂e_gc = κ_g Σ_t rpk f
                    let s = dot(&self.rpk[g * t_n..g * t_n + tf], &f[o..o + tf]);
                    gb[c * g_n + g] += kappa * self.kpi_scale[g] * s;
                }
                // the adjoint overwrites the residual-free `f` slot only after it was used above;
                // the likelihood's residual reaches the feature through β_obs = β·exp(b)
                let b = bgc[c * g_n + g] * ch.bias_idx.map_or(1.0, |i| vals[i].exp());
                let kk = kappa * e * self.kpi_scale[g];
                let a = &mut f[o..o + tf];
                for t in 0..tf {
                    a[t] = resid[o + t] * b + kk * self.rpk[g * t_n + t];
                }
                let bufs = ChannelBufs {
                    f: &mut [],
                    d1: &mut d1[o..o + tf],
                    u: &mut u[o..o + tf],
                    dp0: &mut dp0[o..o + tf],
                    dp1: &mut dp1[o..o + tf],
                };
                channel_backward(
                    ch,
                    &w[..n],
                    &ch.x[g * t_n..g * t_n + tf],
                    &f[o..o + tf],
                    &bufs,
                    &mut gw[..n],
                    &mut gphi,
                    tmp,
                );
            }
            for (p, &ti) in ch.theta_idx.iter().enumerate() {
                let mut s = 0.0;
                for l in 0..n {
                    s += gw[l] * dw[p * n + l];
                }
                gx[ti] += s;
            }
            for (p, &pi) in ch.phi_idx.iter().enumerate() {
                gx[pi] += gphi[p];
            }
            // e_gc = exp(τ z): ∂/∂τ = Σ ge·z·e, ∂/∂z = ge·τ·e; centred, e_gc = exp(d): ∂/∂d = ge·e
            if let (Some(ti), Some(zs)) = (ch.tau_idx, ch.z_start) {
                let tau = vals[ti];
                for g in 0..g_n {
                    let ge = gb[c * g_n + g] * egc[c * g_n + g];
                    if ch.geo_centred {
                        gx[zs + g] += ge;
                    } else {
                        gx[ti] += ge * vals[zs + g];
                        gx[zs + g] += ge * tau;
                    }
                }
            }
        }

        // --- baseline gradient ----------------------------------------------------------------
        let mut g_mu = 0.0;
        resid_t.fill(0.0);
        for g in 0..g_n {
            let r = &resid[g * tf..(g + 1) * tf];
            let ga: f64 = r.iter().sum();
            for t in 0..tf {
                resid_t[t] += r[t];
            }
            if k_n > 0 {
                let z = &bl.controls[g * t_n * k_n..(g * t_n + tf) * k_n];
                for (rt, row) in r.iter().zip(z.chunks_exact(k_n)) {
                    for k in 0..k_n {
                        g_control[k] += rt * row[k];
                    }
                }
            }
            g_mu += ga;
            match bl.geo_intercept {
                Some(_) if levels.is_some() || collapsed.is_some() => {}
                // δ_g = σ_a^w·u_g: ∂/∂σ_a = ga·w·σ_a^(w−1)·u_g, ∂/∂u_g = ga·σ_a^w
                Some((scale, us)) => {
                    let s_a = scale.value(vals);
                    if let Some(si) = scale.index()
                        && w_int != 0.0
                    {
                        gx[si] += ga * w_int * s_a.powf(w_int - 1.0) * vals[us + g];
                    }
                    gx[us + g] += ga * s_a.powf(w_int);
                }
                None => {}
            }
        }
        match level {
            Some(ia) => gx[ia] = level_grad,
            None if levels.is_some() => {}
            None => gx[bl.intercept_idx] += g_mu,
        }
        for t in 0..tf {
            let row = &bl.design[t * pd..(t + 1) * pd];
            for j in 0..pd {
                g_design[j] += resid_t[t] * row[j];
            }
        }
        for j in 0..pd {
            gx[bl.design_idx[j]] += g_design[j];
        }
        for k in 0..k_n {
            gx[bl.control_idx[k]] += g_control[k];
        }

        // --- back to unconstrained coordinates ---------------------------------------------------
        for i in 0..np {
            grad[i] += gx[i] * dxdy[i];
        }
        // ... and to sampling coordinates: ∂/∂q_φ|_r = ∂/∂q_φ|_{ln β} − ∂/∂ln β · ∂ln s(1; φ)/∂q_φ
        for (j, rc) in self.response_coords.iter().enumerate() {
            for (p, &i) in rc.phi.iter().enumerate() {
                grad[i] -= grad[rc.beta] * resp_d[2 * j + p];
            }
        }
        if !lp.is_finite() || grad.iter().any(|v| !v.is_finite()) {
            return Err(LogDensityError::Recoverable("log density or gradient not finite".into()));
        }
        Ok(lp)
    }
}
