//! Synthetic difference in differences, following the synthdid reference implementation.

use crate::error::GeoLiftError;
use crate::panel::LiftData;
use crate::result::{LiftEstimate, LiftEstimator};
use ndarray::{Array2, ArrayView2};

/// Synthetic difference in differences (Arkhangelsky, Athey, Hirshberg, Imbens & Wager 2021,
/// AER 111(12), Algorithm 1), computed as the synthdid R package does (`synthdid_estimate`):
///
/// ```text
/// τ̂ = (Ȳ_tr,post − Σ_t λ_t Ȳ_tr,t) − Σ_i ω_i (Ȳ_i,post − Σ_t λ_t Y_it)
/// ```
///
/// * unit weights ω (simplex, with intercept ω₀): minimise over the pre-period
///   Σ_t (ω₀ + Σ_i ω_i Y_it − Ȳ_tr,t)² / T₀ + ζ_ω² ‖ω‖², ζ_ω = (N_tr T_post)^{1/4} σ̂ (paper eq. 2–3),
///   σ̂ = standard deviation of the first differences of the control geos' pre-period outcomes;
/// * time weights λ (simplex, with intercept λ₀): minimise over the controls
///   Σ_i (λ₀ + Σ_t λ_t Y_it − Ȳ_i,post)² / N₀ + ζ_λ² ‖λ‖², ζ_λ = 10⁻⁶ σ̂ (eq. 4);
/// * both problems are solved on the column-centred "collapsed" panel by Frank–Wolfe with exact line
///   search (synthdid `sc.weight.fw`), stopping when the objective decreases by less than
///   (10⁻⁵ σ̂)² or after `max_iter` steps; first 100 steps, then sparsification (weights ≤ max/4 set
///   to 0 and renormalised) and a restart for up to 10 000 steps.
///
/// Variants give synthdid's other two estimators with the same machinery: [`Sdid::sc`]
/// (`sc_estimate`: no intercept, λ = 0, ζ_ω = 10⁻⁶ σ̂, same early-stopped, sparsified Frank–Wolfe) and [`Sdid::did`] (uniform weights).
#[derive(Debug, Clone)]
pub struct Sdid {
    pub kind: SdidKind,
    /// η_ω multiplying σ̂ in ζ_ω; `None` = (N_tr T_post)^{1/4}.
    pub eta_omega: Option<f64>,
    pub eta_lambda: f64,
    pub sparsify: bool,
    pub max_iter: usize,
    pub max_iter_pre_sparsify: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdidKind {
    Sdid,
    Sc,
    Did,
}

impl Default for Sdid {
    fn default() -> Self {
        Self {
            kind: SdidKind::Sdid,
            eta_omega: None,
            eta_lambda: 1e-6,
            sparsify: true,
            max_iter: 10_000,
            max_iter_pre_sparsify: 100,
        }
    }
}

/// Regularisation and stopping constants fixed once from the original panel (synthdid keeps them in
/// `opts` and reuses them for placebo replications).
#[derive(Debug, Clone, Copy)]
pub struct SdidOpts {
    pub zeta_omega: f64,
    pub zeta_lambda: f64,
    pub min_decrease: f64,
}

/// Weights and estimate from one synthdid fit.
#[derive(Debug, Clone)]
pub struct SdidFit {
    pub tau: f64,
    /// Unit weights over the control rows.
    pub omega: Vec<f64>,
    /// Time weights over the pre-periods.
    pub lambda: Vec<f64>,
    pub opts: SdidOpts,
}

impl Sdid {
    pub fn sc() -> Self {
        Self { kind: SdidKind::Sc, eta_omega: Some(1e-6), ..Self::default() }
    }
    pub fn did() -> Self {
        Self { kind: SdidKind::Did, ..Self::default() }
    }

    /// Computes ζ_ω, ζ_λ and the stopping threshold from a panel `y` (controls first, `n0` of them).
    pub fn opts(&self, y: ArrayView2<f64>, n0: usize, t0: usize) -> SdidOpts {
        let (n, t) = y.dim();
        let (n1, t1) = ((n - n0) as f64, (t - t0) as f64);
        let mut diffs = Vec::with_capacity(n0 * t0.saturating_sub(1));
        for i in 0..n0 {
            for s in 1..t0 {
                diffs.push(y[[i, s]] - y[[i, s - 1]]);
            }
        }
        let m = diffs.iter().sum::<f64>() / diffs.len().max(1) as f64;
        let noise = (diffs.iter().map(|d| (d - m).powi(2)).sum::<f64>() / (diffs.len() as f64 - 1.0).max(1.0)).sqrt();
        let eta_omega = self.eta_omega.unwrap_or_else(|| (n1 * t1).powf(0.25));
        SdidOpts { zeta_omega: eta_omega * noise, zeta_lambda: self.eta_lambda * noise, min_decrease: 1e-5 * noise }
    }

    /// Fits on a panel `y` (rows: `n0` controls then treated; columns: `t0` pre then post periods),
    /// with given constants and optional initial weights (synthdid's `weights` argument).
    pub fn fit_raw(
        &self,
        y: ArrayView2<f64>,
        n0: usize,
        t0: usize,
        opts: &SdidOpts,
        init: Option<(&[f64], &[f64])>,
    ) -> SdidFit {
        let (n, t) = y.dim();
        let yc = collapse(y, n0, t0);
        let (omega, lambda) = match self.kind {
            SdidKind::Did => (vec![1.0 / n0 as f64; n0], vec![1.0 / t0 as f64; t0]),
            SdidKind::Sc | SdidKind::Sdid => {
                let lambda = if self.kind == SdidKind::Sc {
                    vec![0.0; t0]
                } else {
                    // rows: controls; columns: pre periods, then the post mean as target
                    let a = yc.slice(ndarray::s![..n0, ..]).to_owned();
                    self.fw_two_stage(a.view(), opts.zeta_lambda, true, init.map(|i| i.1), opts.min_decrease)
                };
                // rows: pre periods; columns: controls then the treated mean as target
                let a = yc.slice(ndarray::s![.., ..t0]).t().to_owned();
                let omega = self.fw_two_stage(
                    a.view(),
                    opts.zeta_omega,
                    self.kind == SdidKind::Sdid,
                    init.map(|i| i.0),
                    opts.min_decrease,
                );
                (omega, lambda)
            }
        };
        let tau = tau_with_weights(y, n0, t0, &omega, &lambda);
        let _ = (n, t);
        SdidFit { tau, omega, lambda, opts: *opts }
    }

    fn fw_two_stage(
        &self,
        a: ArrayView2<f64>,
        zeta: f64,
        intercept: bool,
        init: Option<&[f64]>,
        min_decrease: f64,
    ) -> Vec<f64> {
        let w = sc_weight_fw(a, zeta, intercept, init, min_decrease, self.max_iter_pre_sparsify);
        if self.sparsify {
            sc_weight_fw(a, zeta, intercept, Some(&sparsify(&w)), min_decrease, self.max_iter)
        } else {
            sc_weight_fw(a, zeta, intercept, Some(&w), min_decrease, self.max_iter)
        }
    }

    /// Fits on a designed panel.
    pub fn fit(&self, data: &LiftData) -> Result<(SdidFit, Array2<f64>), GeoLiftError> {
        data.require_pre(self.name(), 2)?;
        data.require_complete(self.name())?;
        let rows: Vec<usize> = data.controls.iter().chain(data.treated.iter()).copied().collect();
        let y = data.y.select(ndarray::Axis(0), &rows);
        let opts = self.opts(y.view(), data.controls.len(), data.t0);
        Ok((self.fit_raw(y.view(), data.controls.len(), data.t0, &opts, None), y))
    }
}

/// τ̂ = (−ω, 1/N₁)ᵀ Y (−λ, 1/T₁).
pub fn tau_with_weights(y: ArrayView2<f64>, n0: usize, t0: usize, omega: &[f64], lambda: &[f64]) -> f64 {
    let (n, t) = y.dim();
    let (n1, t1) = ((n - n0) as f64, (t - t0) as f64);
    let mut tau = 0.0;
    for i in 0..n {
        let wi = if i < n0 { -omega[i] } else { 1.0 / n1 };
        if wi == 0.0 {
            continue;
        }
        let mut row = 0.0;
        for s in 0..t {
            let ls = if s < t0 { -lambda[s] } else { 1.0 / t1 };
            row += ls * y[[i, s]];
        }
        tau += wi * row;
    }
    tau
}

/// synthdid's collapsed form: (N₀+1) × (T₀+1), the treated rows averaged and the post columns averaged.
fn collapse(y: ArrayView2<f64>, n0: usize, t0: usize) -> Array2<f64> {
    let (n, t) = y.dim();
    let (n1, t1) = ((n - n0) as f64, (t - t0) as f64);
    Array2::from_shape_fn((n0 + 1, t0 + 1), |(i, s)| {
        let rows: Vec<usize> = if i < n0 { vec![i] } else { (n0..n).collect() };
        let cols: Vec<usize> = if s < t0 { vec![s] } else { (t0..t).collect() };
        let mut v = 0.0;
        for &r in &rows {
            for &c in &cols {
                v += y[[r, c]];
            }
        }
        v / (if i < n0 { 1.0 } else { n1 } * if s < t0 { 1.0 } else { t1 })
    })
}

fn sparsify(v: &[f64]) -> Vec<f64> {
    let mx = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = v.iter().map(|&x| if x <= mx / 4.0 { 0.0 } else { x }).collect();
    sum_normalize(&w)
}

/// x / Σx, or uniform weights when Σx = 0 (synthdid `sum_normalize`).
pub fn sum_normalize(x: &[f64]) -> Vec<f64> {
    let s: f64 = x.iter().sum();
    if s != 0.0 { x.iter().map(|v| v / s).collect() } else { vec![1.0 / x.len() as f64; x.len()] }
}

/// Frank–Wolfe for `min ζ²‖λ‖² + ‖A λ − b‖²/N` over the simplex, where `y` = [A | b] (N rows) is
/// column-centred first when `intercept` (synthdid `sc.weight.fw` with its exact line search).
fn sc_weight_fw(
    y: ArrayView2<f64>,
    zeta: f64,
    intercept: bool,
    init: Option<&[f64]>,
    min_decrease: f64,
    max_iter: usize,
) -> Vec<f64> {
    let (nr, nc) = y.dim();
    let t0 = nc - 1;
    let mut yy = y.to_owned();
    if intercept {
        for c in 0..nc {
            let m = yy.column(c).sum() / nr as f64;
            yy.column_mut(c).mapv_inplace(|v| v - m);
        }
    }
    let mut lam: Vec<f64> = match init {
        Some(l) if l.len() == t0 => l.to_vec(),
        _ => vec![1.0 / t0 as f64; t0],
    };
    let eta = nr as f64 * zeta * zeta;
    // columns stored contiguously: the gradient Aᵀ(Ax − b) is t0 dot products of length nr
    let cols: Vec<Vec<f64>> = (0..nc).map(|c| yy.column(c).to_vec()).collect();
    let b = &cols[t0];
    // Ax kept up to date incrementally
    let mut ax: Vec<f64> = vec![0.0; nr];
    for (c, col) in cols[..t0].iter().enumerate() {
        for r in 0..nr {
            ax[r] += col[r] * lam[c];
        }
    }
    // Gram matrix G = AᵀA and c = Aᵀb, so the gradient Aᵀ(Ax − b) = q − c with q = Gλ updated in
    // O(T₀) per step (q ← (1 − s) q + s G e_best) instead of recomputed in O(N T₀)
    let gram: Vec<Vec<f64>> =
        (0..t0).map(|i| (0..t0).map(|j| cols[i].iter().zip(&cols[j]).map(|(x, y)| x * y).sum()).collect()).collect();
    let cvec: Vec<f64> = (0..t0).map(|i| cols[i].iter().zip(b).map(|(x, y)| x * y).sum()).collect();
    let mut q: Vec<f64> = (0..t0).map(|i| (0..t0).map(|j| gram[i][j] * lam[j]).sum()).collect();
    let mut vals: Vec<f64> = Vec::new();
    let thresh = min_decrease * min_decrease;
    let mut it = 0;
    let mut res = vec![0.0; nr];
    let mut derr = vec![0.0; nr];
    while it < max_iter && (it < 2 || vals[it - 2] - vals[it - 1] > thresh) {
        it += 1;
        // half gradient: Aᵀ(Ax − b) + η λ; first minimiser as R's which.min
        for r in 0..nr {
            res[r] = ax[r] - b[r];
        }
        let mut best = 0usize;
        let mut best_v = f64::INFINITY;
        for c in 0..t0 {
            let g = q[c] - cvec[c] + eta * lam[c];
            if g < best_v {
                best_v = g;
                best = c;
            }
        }
        // direction towards vertex `best`: d = e_best − λ
        let moves = lam.iter().enumerate().any(|(c, &v)| if c == best { v != 1.0 } else { v != 0.0 });
        if moves {
            let colb = &cols[best];
            for r in 0..nr {
                derr[r] = colb[r] - ax[r];
            }
            let lam_dx: f64 = lam.iter().enumerate().map(|(c, &v)| v * if c == best { 1.0 - v } else { -v }).sum();
            let dx2: f64 =
                lam.iter().enumerate().map(|(c, &v)| if c == best { (1.0 - v).powi(2) } else { v * v }).sum();
            let num = res.iter().zip(&derr).map(|(x, y)| x * y).sum::<f64>() + eta * lam_dx;
            let den = derr.iter().map(|v| v * v).sum::<f64>() + eta * dx2;
            let step = if den > 0.0 { (-num / den).clamp(0.0, 1.0) } else { 0.0 };
            for (c, v) in lam.iter_mut().enumerate() {
                let dx = if c == best { 1.0 - *v } else { -*v };
                *v += step * dx;
            }
            for r in 0..nr {
                ax[r] += step * derr[r];
            }
            for (c, qc) in q.iter_mut().enumerate() {
                *qc += step * (gram[c][best] - *qc);
            }
        }
        let sse: f64 = ax.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
        vals.push(zeta * zeta * lam.iter().map(|v| v * v).sum::<f64>() + sse / nr as f64);
    }
    lam
}

impl LiftEstimator for Sdid {
    fn name(&self) -> &'static str {
        match self.kind {
            SdidKind::Sdid => "sdid",
            SdidKind::Sc => "synthdid-sc",
            SdidKind::Did => "synthdid-did",
        }
    }

    fn estimate(&self, data: &LiftData) -> Result<LiftEstimate, GeoLiftError> {
        let (f, y) = self.fit(data)?;
        let n0 = data.controls.len();
        let t0 = data.t0;
        let x1 = data.treated_mean();
        let synth: Vec<f64> = (0..data.n_periods()).map(|s| (0..n0).map(|i| f.omega[i] * y[[i, s]]).sum()).collect();
        // counterfactual: synthetic path shifted by the λ-weighted pre-period gap (so mean post gap = τ̂)
        let shift: f64 = (0..t0).map(|s| f.lambda[s] * (x1[s] - synth[s])).sum();
        let cf: Vec<f64> = synth.iter().map(|v| v + shift).collect();
        let mut e = LiftEstimate::from_paths(self.name(), data, &x1, &cf);
        debug_assert!((e.att - f.tau).abs() < 1e-8 * (1.0 + f.tau.abs()));
        e.att = f.tau;
        e.incremental = f.tau * (e.n_post * e.n_treated) as f64;
        e.weights = data.control_names().into_iter().zip(f.omega.iter().copied()).collect();
        e.time_weights = data.time_labels[..t0].iter().cloned().zip(f.lambda.iter().copied()).collect();
        Ok(e)
    }

    fn att(&self, data: &LiftData) -> Result<f64, GeoLiftError> {
        Ok(self.fit(data)?.0.tau)
    }
}
