//! Adstock weights, their parameter derivatives, the truncated convolution and its adjoints.
//!
//! Adstock maps a media series x to y_t = Σ_{l=0}^{L} w_l(θ) x_{t−l}, with x_{s} = 0 before the
//! first period (PyMC-Marketing's `batched_convolution` convention). The kernels:
//!
//! | kind | w_l, l = 0..L | source |
//! |---|---|---|
//! | geometric | α^l, optionally / Σ_j α^j | PyMC-Marketing `geometric_adstock` |
//! | binomial | (1 − l/W)^{1/α − 1} / Σ_j (…), W = L + 1 | Meridian `adstock_hill._compute_single_decay_function_weights` (always normalised) |
//! | weibull_cdf | Π_{i=1}^{l} (1 − F(i; k, λ)) = exp(−Σ_{i=1}^{l} (i/λ)^k) | Robyn `adstock_weibull(type = "cdf")` |
//! | weibull_pdf | min–max normalised f(l + 1; k, λ) | Robyn `adstock_weibull(type = "pdf")` |
//!
//! Robyn expresses the Weibull scale as a quantile of the window, `round(quantile(1:windlen, scale))`;
//! the rounding is not differentiable, so here λ is the scale **in periods** (λ = 1 + q·(W − 1)
//! reproduces Robyn's quantile q without the rounding).
//!
//! ```
//! use mmloop_mmm::transforms::adstock::{AdstockKernel, convolve};
//! use mmloop_mmm::transforms::AdstockSpec;
//! use mmloop_mmm::Prior;
//! let k = AdstockKernel::from_spec(&AdstockSpec::Geometric {
//!     max_lag: 2, alpha: Prior::Beta { alpha: 1.0, beta: 1.0 }, normalize: false });
//! let (mut w, mut dw) = (vec![0.0; 3], vec![0.0; 3]);
//! k.weights(&[0.5], &mut w, &mut dw);
//! assert_eq!(w, vec![1.0, 0.5, 0.25]);
//! let mut y = vec![0.0; 4];
//! convolve(&w, &[1.0, 0.0, 0.0, 2.0], &mut y);
//! assert_eq!(y, vec![1.0, 0.5, 0.25, 2.0]);
//! ```

// Index loops mirror the sums of the math (over g, t, l) and address several arrays at once.
#![allow(clippy::needless_range_loop)]

use super::AdstockSpec;

/// The shape of an adstock kernel, without priors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AdstockKind {
    Geometric { normalize: bool },
    Binomial,
    WeibullCdf,
    WeibullPdf,
}

/// An adstock kernel of window L + 1: computes w(θ) and ∂w/∂θ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdstockKernel {
    pub kind: AdstockKind,
    pub max_lag: usize,
}

impl AdstockKernel {
    pub fn from_spec(spec: &AdstockSpec) -> Self {
        let kind = match spec {
            AdstockSpec::Geometric { normalize, .. } => AdstockKind::Geometric { normalize: *normalize },
            AdstockSpec::Binomial { .. } => AdstockKind::Binomial,
            AdstockSpec::WeibullCdf { .. } => AdstockKind::WeibullCdf,
            AdstockSpec::WeibullPdf { .. } => AdstockKind::WeibullPdf,
        };
        Self { kind, max_lag: spec.max_lag() }
    }

    /// Number of parameters θ (1 for geometric/binomial α; 2 for Weibull shape k, scale λ).
    pub fn n_params(&self) -> usize {
        match self.kind {
            AdstockKind::Geometric { .. } | AdstockKind::Binomial => 1,
            AdstockKind::WeibullCdf | AdstockKind::WeibullPdf => 2,
        }
    }

    /// Number of weights, L + 1.
    pub fn len(&self) -> usize {
        self.max_lag + 1
    }

    /// Always false: a kernel has at least the weight at lag 0.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes w_l(θ) into `w` (length L + 1) and ∂w_l/∂θ_p into `dw[p·(L+1) + l]`.
    pub fn weights(&self, theta: &[f64], w: &mut [f64], dw: &mut [f64]) {
        let n = self.len();
        debug_assert!(w.len() >= n && dw.len() >= n * self.n_params());
        match self.kind {
            AdstockKind::Geometric { normalize } => {
                let a = theta[0];
                let mut p = 1.0; // α^l
                for l in 0..n {
                    w[l] = p;
                    // d α^l / dα = l α^{l−1}
                    dw[l] = if l == 0 { 0.0 } else { l as f64 * if l == 1 { 1.0 } else { p / a } };
                    p *= a;
                }
                // recompute l α^{l−1} robustly at α = 0 (p / a is 0/0 there)
                if a == 0.0 {
                    for l in 2..n {
                        dw[l] = 0.0;
                    }
                } else {
                    let mut q = 1.0; // α^{l−1}
                    for l in 1..n {
                        dw[l] = l as f64 * q;
                        q *= a;
                    }
                }
                if normalize {
                    normalise(&mut w[..n], &mut dw[..n]);
                }
            }
            AdstockKind::Binomial => {
                let a = theta[0];
                let p = 1.0 / a - 1.0;
                let dp = -1.0 / (a * a);
                let big_w = n as f64;
                for l in 0..n {
                    let base = 1.0 - l as f64 / big_w;
                    let v = base.powf(p);
                    w[l] = v;
                    dw[l] = v * base.ln() * dp;
                }
                normalise(&mut w[..n], &mut dw[..n]);
            }
            AdstockKind::WeibullCdf => {
                let (k, lam) = (theta[0], theta[1]);
                let (dk, dl) = dw[..2 * n].split_at_mut(n);
                // ln w_l = −Σ_{i=1}^{l} (i/λ)^k
                let (mut s, mut sk, mut sl) = (0.0, 0.0, 0.0);
                for l in 0..n {
                    if l > 0 {
                        let r = l as f64 / lam;
                        let rk = r.powf(k);
                        s += rk;
                        sk += rk * r.ln();
                        sl += rk * k / lam;
                    }
                    let v = (-s).exp();
                    w[l] = v;
                    dk[l] = -v * sk;
                    dl[l] = v * sl;
                }
            }
            AdstockKind::WeibullPdf => {
                let (k, lam) = (theta[0], theta[1]);
                let (dk, dl) = dw[..2 * n].split_at_mut(n);
                // g_l = f(l+1; k, λ) = (k/λ)(x/λ)^{k−1} e^{−(x/λ)^k};
                // ∂ln f/∂k = 1/k + ln r − r^k ln r, ∂ln f/∂λ = (k/λ)(r^k − 1), r = x/λ.
                for l in 0..n {
                    let r = (l + 1) as f64 / lam;
                    let lr = r.ln();
                    let rk = r.powf(k);
                    let g = (k / lam) * ((k - 1.0) * lr - rk).exp();
                    w[l] = g;
                    dk[l] = g * (1.0 / k + lr - rk * lr);
                    dl[l] = g * (k / lam) * (rk - 1.0);
                }
                let (mut imax, mut imin) = (0, 0);
                for l in 1..n {
                    if w[l] > w[imax] {
                        imax = l;
                    }
                    if w[l] < w[imin] {
                        imin = l;
                    }
                }
                let range = w[imax] - w[imin];
                if range <= 0.0 || !range.is_finite() {
                    // Robyn's `.normalize` returns c(1, 0, …, 0) for a constant vector
                    for l in 0..n {
                        w[l] = if l == 0 { 1.0 } else { 0.0 };
                        dk[l] = 0.0;
                        dl[l] = 0.0;
                    }
                    return;
                }
                let (gmin, dkmin, dlmin) = (w[imin], dk[imin], dl[imin]);
                let (dkr, dlr) = (dk[imax] - dkmin, dl[imax] - dlmin);
                for l in 0..n {
                    let v = (w[l] - gmin) / range;
                    dk[l] = (dk[l] - dkmin - v * dkr) / range;
                    dl[l] = (dl[l] - dlmin - v * dlr) / range;
                    w[l] = v;
                }
            }
        }
    }
}

/// w ← w / Σw and dw ← (dw − w̃·Σdw)/Σw for one parameter.
fn normalise(w: &mut [f64], dw: &mut [f64]) {
    let s: f64 = w.iter().sum();
    let ds: f64 = dw.iter().sum();
    for (wi, di) in w.iter_mut().zip(dw.iter_mut()) {
        *wi /= s;
        *di = (*di - *wi * ds) / s;
    }
}

/// y_t = Σ_{l=0}^{min(L,t)} w_l x_{t−l} (zeros before the series starts).
///
/// Written as one `y[l..] += w_l·x[..n−l]` pass per lag: no reduction in the inner loop, so it
/// vectorises; each y_t still sums its terms in lag order, as the direct formula does.
pub fn convolve(w: &[f64], x: &[f64], y: &mut [f64]) {
    let n = x.len();
    let y = &mut y[..n];
    y.fill(0.0);
    for (l, &wl) in w.iter().enumerate().take(n) {
        for (yt, xs) in y[l..].iter_mut().zip(&x[..n - l]) {
            *yt += wl * xs;
        }
    }
}

/// The adjoint of [`convolve`] in x: given ā = ∂F/∂y, adds ∂F/∂x_s = Σ_l w_l ā_{s+l} into `gx`.
pub fn convolve_adjoint_x(w: &[f64], a: &[f64], gx: &mut [f64]) {
    let n = a.len();
    for (l, &wl) in w.iter().enumerate().take(n) {
        for (g, at) in gx[..n - l].iter_mut().zip(&a[l..]) {
            *g += wl * at;
        }
    }
}

/// The adjoint of [`convolve`] in w: adds ∂F/∂w_l = Σ_t ā_t x_{t−l} into `gw`.
pub fn convolve_adjoint_w(a: &[f64], x: &[f64], gw: &mut [f64]) {
    let n = x.len();
    for (l, g) in gw.iter_mut().enumerate().take(n) {
        *g += dot(&a[l..n], &x[..n - l]);
    }
}

/// Σ a_i b_i over the common length, with four running sums (so the compiler can keep them in
/// vector registers; the order of summation differs from a plain left-to-right loop only by
/// rounding).
#[inline]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    (acc[0] + acc[2]) + (acc[1] + acc[3]) + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn weights(kind: AdstockKind, max_lag: usize, theta: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let k = AdstockKernel { kind, max_lag };
        let mut w = vec![0.0; max_lag + 1];
        let mut dw = vec![0.0; (max_lag + 1) * k.n_params()];
        k.weights(theta, &mut w, &mut dw);
        (w, dw)
    }

    #[test]
    fn geometric_weights_match_pymc_marketing_definition() {
        // PyMC-Marketing: w = α^l, l = 0..l_max−1; normalised divides by the sum.
        let (w, _) = weights(AdstockKind::Geometric { normalize: false }, 3, &[0.4]);
        assert_eq!(w, vec![1.0, 0.4, 0.16000000000000003, 0.06400000000000002]);
        let (w, _) = weights(AdstockKind::Geometric { normalize: true }, 3, &[0.4]);
        let s = 1.0 + 0.4 + 0.16 + 0.064;
        for (a, b) in w.iter().zip([1.0 / s, 0.4 / s, 0.16 / s, 0.064 / s]) {
            assert!((a - b).abs() < 1e-15);
        }
    }

    #[test]
    fn binomial_weights_match_meridian_definition() {
        // Meridian: window W = 4 (max_lag 3), α = 0.5 → exponent 1/α − 1 = 1:
        // raw (1 − l/4) = [1, .75, .5, .25], normalised by 2.5.
        let (w, _) = weights(AdstockKind::Binomial, 3, &[0.5]);
        for (a, b) in w.iter().zip([0.4, 0.3, 0.2, 0.1]) {
            assert!((a - b).abs() < 1e-15, "{w:?}");
        }
        // α = 1/3 → exponent 2: [1, .5625, .25, .0625] / 1.875
        let (w, _) = weights(AdstockKind::Binomial, 3, &[1.0 / 3.0]);
        for (a, b) in w.iter().zip([1.0, 0.5625, 0.25, 0.0625]) {
            assert!((a - b / 1.875).abs() < 1e-12, "{w:?}");
        }
    }

    #[test]
    fn weibull_weights_match_robyn_definitions() {
        // CDF, shape 1 (exponential), λ = 2: 1 − F(i) = e^{−i/2}; w = cumprod([1, e^{−1/2}, e^{−1}])
        let (w, _) = weights(AdstockKind::WeibullCdf, 2, &[1.0, 2.0]);
        for (a, b) in w.iter().zip([1.0, (-0.5f64).exp(), (-1.5f64).exp()]) {
            assert!((a - b).abs() < 1e-15);
        }
        // PDF, shape 3, λ = 3: f(x) = (x/3)² · e^{−(x/3)³} at x = 1..4; min–max normalised.
        let f = |x: f64| (x / 3.0).powi(2) * (-(x / 3.0).powi(3)).exp();
        let g = [f(1.0), f(2.0), f(3.0), f(4.0)];
        let (lo, hi) = (g.iter().cloned().fold(f64::INFINITY, f64::min), g.iter().cloned().fold(0.0, f64::max));
        let (w, _) = weights(AdstockKind::WeibullPdf, 3, &[3.0, 3.0]);
        for (a, b) in w.iter().zip(g.iter().map(|v| (v - lo) / (hi - lo))) {
            assert!((a - b).abs() < 1e-14, "{w:?}");
        }
        assert_eq!((w[0], w[2]), (0.0, 1.0)); // delayed peak at lag 2, the minimum at lag 0
    }

    #[test]
    fn convolution_matches_hand_computation_and_adjoints_are_transposes() {
        let w = [0.5, 0.3, 0.2];
        let x = [1.0, 2.0, 0.0, 4.0];
        let mut y = [0.0; 4];
        convolve(&w, &x, &mut y);
        assert_eq!(y, [0.5, 1.3, 0.8, 2.4]);
        // ⟨a, conv(w, x)⟩ = ⟨conv_adjoint_x(w, a), x⟩ = ⟨conv_adjoint_w(a, x), w⟩
        let a = [0.3, -1.0, 2.0, 0.7];
        let lhs: f64 = a.iter().zip(&y).map(|(p, q)| p * q).sum();
        let mut gx = [0.0; 4];
        convolve_adjoint_x(&w, &a, &mut gx);
        let mut gw = [0.0; 3];
        convolve_adjoint_w(&a, &x, &mut gw);
        let r1: f64 = gx.iter().zip(&x).map(|(p, q)| p * q).sum();
        let r2: f64 = gw.iter().zip(&w).map(|(p, q)| p * q).sum();
        assert!((lhs - r1).abs() < 1e-12 && (lhs - r2).abs() < 1e-12);
    }

    const KINDS: [AdstockKind; 5] = [
        AdstockKind::Geometric { normalize: false },
        AdstockKind::Geometric { normalize: true },
        AdstockKind::Binomial,
        AdstockKind::WeibullCdf,
        AdstockKind::WeibullPdf,
    ];

    proptest! {
        /// Central differences, h = 1e-6·(1+|θ|): truncation O(h²) and rounding O(ε/h) ≈ 1e-10,
        /// so 1e-6 absolute + relative is a safe bound for these O(1)-curvature functions.
        #[test]
        fn weight_derivatives_match_finite_differences(
            which in 0usize..5, max_lag in 0usize..13,
            a in 0.01f64..0.99, k in 0.3f64..5.0, lam in 0.3f64..12.0,
        ) {
            let kind = KINDS[which];
            let theta: Vec<f64> = match kind { AdstockKind::WeibullCdf | AdstockKind::WeibullPdf => vec![k, lam], _ => vec![a] };
            let (w, dw) = weights(kind, max_lag, &theta);
            let n = max_lag + 1;
            for p in 0..theta.len() {
                let h = 1e-6 * (1.0 + theta[p].abs());
                let mut tp = theta.clone(); tp[p] += h;
                let mut tm = theta.clone(); tm[p] -= h;
                let (wp, _) = weights(kind, max_lag, &tp);
                let (wm, _) = weights(kind, max_lag, &tm);
                // the min–max normalisation is not differentiable where argmin/argmax switch
                if kind == AdstockKind::WeibullPdf {
                    let am = |v: &[f64]| (v.iter().cloned().enumerate().fold((0, f64::MIN), |b, (i, x)| if x > b.1 { (i, x) } else { b }).0,
                                         v.iter().cloned().enumerate().fold((0, f64::MAX), |b, (i, x)| if x < b.1 { (i, x) } else { b }).0);
                    prop_assume!(am(&wp) == am(&wm) && am(&wp) == am(&w));
                }
                for l in 0..n {
                    let fd = (wp[l] - wm[l]) / (2.0 * h);
                    let d = dw[p * n + l];
                    prop_assert!((d - fd).abs() <= 1e-6 * (1.0 + d.abs()), "{kind:?} θ={theta:?} p={p} l={l}: {d} vs {fd}");
                }
            }
            prop_assert!(w.iter().all(|v| v.is_finite() && *v >= 0.0));
        }
    }

    #[test]
    fn geometric_derivative_is_finite_at_alpha_zero() {
        let (w, dw) = weights(AdstockKind::Geometric { normalize: false }, 3, &[0.0]);
        assert_eq!(w, vec![1.0, 0.0, 0.0, 0.0]);
        assert_eq!(dw, vec![0.0, 1.0, 0.0, 0.0]);
    }
}
