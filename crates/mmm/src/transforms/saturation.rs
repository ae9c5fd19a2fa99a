//! Saturation curves s(x; φ), their derivative in x and in the parameters φ.
//!
//! | kind | s(x) | ∂s/∂x | source |
//! |---|---|---|---|
//! | hill | xⁿ/(xⁿ + ecⁿ) = σ(n·ln(x/ec)) | s(1−s)·n/x | Meridian `_hill` |
//! | logistic | (1 − e^{−λx})/(1 + e^{−λx}) = tanh(λx/2) | (λ/2)(1 − s²) | PyMC-Marketing `logistic_saturation` |
//! | michaelis_menten | x/(k + x) | k/(k + x)² | PyMC-Marketing `michaelis_menten` with α = 1 (β scales it) |
//!
//! Parameter derivatives: Hill ∂s/∂ec = −s(1−s)·n/ec, ∂s/∂n = s(1−s)·ln(x/ec); logistic
//! ∂s/∂λ = (x/2)(1 − s²); Michaelis–Menten ∂s/∂k = −x/(k + x)².
//!
//! At x = 0 the Hill curve has ∂s/∂x = +∞ when n < 1; this module returns 0 there, which is what
//! every product it enters needs: an adstocked input is 0 only when every input in its window is 0,
//! so the factor it multiplies is exactly 0 as well.
//!
//! ```
//! use mmloop_mmm::transforms::saturation::{Saturation, SaturationKind};
//! let s = Saturation { kind: SaturationKind::Hill };
//! assert_eq!(s.value(&[2.0, 1.0], 2.0), 0.5); // x = ec is half saturation
//! ```

use super::SaturationSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaturationKind {
    /// φ = [ec, slope]
    Hill,
    /// φ = [λ]
    Logistic,
    /// φ = [k]
    MichaelisMenten,
}

/// A saturation curve (kind only; parameters are passed to each call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saturation {
    pub kind: SaturationKind,
}

/// Value and derivatives of s at one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SatEval {
    pub s: f64,
    pub ds_dx: f64,
    /// ∂s/∂φ_p (unused entries 0).
    pub ds_dphi: [f64; 2],
}

impl Saturation {
    pub fn from_spec(spec: &SaturationSpec) -> Self {
        let kind = match spec {
            SaturationSpec::Hill { .. } => SaturationKind::Hill,
            SaturationSpec::Logistic { .. } => SaturationKind::Logistic,
            SaturationSpec::MichaelisMenten { .. } => SaturationKind::MichaelisMenten,
        };
        Self { kind }
    }

    pub fn n_params(&self) -> usize {
        match self.kind {
            SaturationKind::Hill => 2,
            SaturationKind::Logistic | SaturationKind::MichaelisMenten => 1,
        }
    }

    /// s(x; φ) for x ≥ 0.
    #[inline]
    pub fn value(&self, phi: &[f64], x: f64) -> f64 {
        match self.kind {
            SaturationKind::Hill => {
                if x <= 0.0 {
                    return 0.0;
                }
                let u = phi[1] * (x / phi[0]).ln();
                1.0 / (1.0 + (-u).exp())
            }
            SaturationKind::Logistic => (0.5 * phi[0] * x).tanh(),
            SaturationKind::MichaelisMenten => x / (phi[0] + x),
        }
    }

    /// s with ∂s/∂x and ∂s/∂φ.
    #[inline]
    pub fn eval(&self, phi: &[f64], x: f64) -> SatEval {
        match self.kind {
            SaturationKind::Hill => {
                let (ec, n) = (phi[0], phi[1]);
                if x <= 0.0 {
                    let ds_dx = if n == 1.0 { 1.0 / ec } else { 0.0 };
                    return SatEval { s: 0.0, ds_dx, ds_dphi: [0.0, 0.0] };
                }
                let lr = (x / ec).ln();
                let s = 1.0 / (1.0 + (-n * lr).exp());
                let q = s * (1.0 - s);
                SatEval { s, ds_dx: q * n / x, ds_dphi: [-q * n / ec, q * lr] }
            }
            SaturationKind::Logistic => {
                let lam = phi[0];
                let s = (0.5 * lam * x).tanh();
                let q = 0.5 * (1.0 - s * s);
                SatEval { s, ds_dx: lam * q, ds_dphi: [x * q, 0.0] }
            }
            SaturationKind::MichaelisMenten => {
                let k = phi[0];
                let d = 1.0 / (k + x);
                let s = x * d;
                SatEval { s, ds_dx: k * d * d, ds_dphi: [-x * d * d, 0.0] }
            }
        }
    }
}

impl Saturation {
    /// ln s(1; φ), the log of the curve at the reference level x = 1 (the mean non-zero scaled
    /// media), with its derivatives in φ; computed in log space so it stays finite where s(1)
    /// underflows:
    /// Hill ln s = −softplus(n·ln ec); logistic ln tanh(λ/2), ∂/∂λ = 1/sinh λ;
    /// Michaelis–Menten −ln(1 + k).
    pub fn ln_value_at_one(&self, phi: &[f64]) -> (f64, [f64; 2]) {
        match self.kind {
            SaturationKind::Hill => {
                let (ec, n) = (phi[0], phi[1]);
                let lec = ec.ln();
                let u = n * lec;
                let softplus = u.max(0.0) + (-u.abs()).exp().ln_1p();
                let sig = 1.0 / (1.0 + (-u).exp());
                (-softplus, [-sig * n / ec, -sig * lec])
            }
            SaturationKind::Logistic => {
                let lam = phi[0];
                ((0.5 * lam).tanh().ln(), [1.0 / lam.sinh(), 0.0])
            }
            SaturationKind::MichaelisMenten => {
                let k = phi[0];
                (-k.ln_1p(), [-1.0 / (1.0 + k), 0.0])
            }
        }
    }
}

/// Outputs of [`Saturation::eval_into`], one slot per input point.
pub struct SatSlices<'a> {
    pub s: &'a mut [f64],
    pub ds_dx: &'a mut [f64],
    pub ds_dphi0: &'a mut [f64],
    pub ds_dphi1: &'a mut [f64],
}

impl Saturation {
    /// [`Saturation::eval`] over a whole series: the kind is matched once and the per-curve
    /// constants (ln ec, 1/ec, λ/2) are computed once, so the loop body is a few multiplications
    /// and one or two transcendental calls. Agrees with `eval` to rounding (Hill uses
    /// ln x − ln ec for ln(x/ec)).
    pub fn eval_into(&self, phi: &[f64], x: &[f64], out: SatSlices) {
        let n = x.len();
        let (s, d1, d0p, d1p) = (&mut out.s[..n], &mut out.ds_dx[..n], &mut out.ds_dphi0[..n], &mut out.ds_dphi1[..n]);
        match self.kind {
            SaturationKind::Hill => {
                // Three passes: the libm calls (ln, exp) in loops of their own, then pure
                // arithmetic that vectorises and pipelines its division; one division per point,
                // r = 1/((1 + e)·x), gives both s = 1/(1 + e) = x·r and 1/x = (1 + e)·r.
                let (ec, slope) = (phi[0], phi[1]);
                let ln_ec = ec.ln();
                let inv_ec = 1.0 / ec;
                let d1_at_zero = if slope == 1.0 { inv_ec } else { 0.0 };
                for t in 0..n {
                    d1p[t] = if x[t] > 0.0 { x[t].ln() - ln_ec } else { 0.0 }; // lr
                }
                for t in 0..n {
                    s[t] = (-slope * d1p[t]).exp(); // e = (ec/x)^n
                }
                for t in 0..n {
                    let (xt, e, lr) = (x[t], s[t], d1p[t]);
                    let pos = xt > 0.0;
                    let xs = if pos { xt } else { 1.0 };
                    let r = 1.0 / ((1.0 + e) * xs);
                    let st = xs * r;
                    let q = st * (1.0 - st);
                    let qn = q * slope;
                    s[t] = if pos { st } else { 0.0 };
                    d1[t] = if pos { qn * ((1.0 + e) * r) } else { d1_at_zero };
                    d0p[t] = if pos { -qn * inv_ec } else { 0.0 };
                    d1p[t] = if pos { q * lr } else { 0.0 };
                }
            }
            SaturationKind::Logistic => {
                // tanh(λx/2) = (1 − e)/(1 + e) with e = exp(−λx) ∈ (0, 1] for x ≥ 0: one exp instead
                // of tanh (which calls expm1); for tiny λx the absolute error stays ~1e-16, and
                // 1 − s² = 4e/(1 + e)².
                let lam = phi[0];
                for t in 0..n {
                    let e = (-lam * x[t]).exp();
                    let inv = 1.0 / (1.0 + e);
                    let q = 2.0 * e * inv * inv;
                    s[t] = (1.0 - e) * inv;
                    d1[t] = lam * q;
                    d0p[t] = x[t] * q;
                    d1p[t] = 0.0;
                }
            }
            SaturationKind::MichaelisMenten => {
                let k = phi[0];
                for t in 0..n {
                    let d = 1.0 / (k + x[t]);
                    s[t] = x[t] * d;
                    d1[t] = k * d * d;
                    d0p[t] = -x[t] * d * d;
                    d1p[t] = 0.0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn values_match_reference_definitions() {
        let hill = Saturation { kind: SaturationKind::Hill };
        // Meridian: t1 / (t1 + t2), t1 = x^slope, t2 = ec^slope
        let (x, ec, n): (f64, f64, f64) = (1.7, 0.8, 2.5);
        assert!((hill.value(&[ec, n], x) - x.powf(n) / (x.powf(n) + ec.powf(n))).abs() < 1e-15);
        let lo = Saturation { kind: SaturationKind::Logistic };
        // PyMC-Marketing: (1 − e^{−λx}) / (1 + e^{−λx})
        let (x, lam): (f64, f64) = (0.6, 3.0);
        let e = (-lam * x).exp();
        assert!((lo.value(&[lam], x) - (1.0 - e) / (1.0 + e)).abs() < 1e-15);
        let mm = Saturation { kind: SaturationKind::MichaelisMenten };
        assert_eq!(mm.value(&[3.0], 1.0), 0.25);
        assert_eq!(hill.value(&[1.0, 0.5], 0.0), 0.0);
        assert_eq!(lo.value(&[2.0], 0.0), 0.0);
    }

    #[test]
    fn ln_value_at_one_stays_finite_where_the_curve_underflows() {
        let hill = Saturation { kind: SaturationKind::Hill };
        // ec = 1e200, n = 5: s(1) = 1e-1000 underflows; ln s = −1000·ln 10
        let (l, d) = hill.ln_value_at_one(&[1e200, 5.0]);
        assert!((l + 5.0 * 200.0 * std::f64::consts::LN_10).abs() < 1e-9 && d.iter().all(|v| v.is_finite()));
        let lo = Saturation { kind: SaturationKind::Logistic };
        let (l, d) = lo.ln_value_at_one(&[800.0]);
        assert!(l == 0.0 && d[0] == 0.0, "{l} {d:?}");
    }

    #[test]
    fn hill_at_zero_and_huge_inputs_is_finite() {
        let hill = Saturation { kind: SaturationKind::Hill };
        for n in [0.3, 1.0, 4.0] {
            let e = hill.eval(&[1.0, n], 0.0);
            assert!(e.s == 0.0 && e.ds_dx.is_finite() && e.ds_dphi.iter().all(|v| v.is_finite()));
            // x/ec = 1e15: s = σ(n·ln 1e15) ≥ σ(10.36) = 1 − 3.2e-5 for n ≥ 0.3
            let e = hill.eval(&[1e-3, n], 1e12);
            assert!((e.s - 1.0).abs() < 4e-5 && e.ds_dx.is_finite() && e.ds_dphi.iter().all(|v| v.is_finite()));
        }
    }

    proptest! {
        /// ln s(1; φ) is the log of the curve at 1, and its φ-derivatives match central differences.
        #[test]
        fn ln_value_at_one_matches_value_and_finite_differences(
            which in 0usize..3, p0 in 0.05f64..10.0, p1 in 0.3f64..5.0,
        ) {
            let kind = [SaturationKind::Hill, SaturationKind::Logistic, SaturationKind::MichaelisMenten][which];
            let sat = Saturation { kind };
            let phi = vec![p0, p1];
            let (l, d) = sat.ln_value_at_one(&phi);
            prop_assert!((l - sat.value(&phi, 1.0).ln()).abs() < 1e-13 * (1.0 + l.abs()));
            for p in 0..sat.n_params() {
                let h = 1e-6 * (1.0 + phi[p]);
                let mut a = phi.clone(); a[p] += h;
                let mut b = phi.clone(); b[p] -= h;
                let fd = (sat.ln_value_at_one(&a).0 - sat.ln_value_at_one(&b).0) / (2.0 * h);
                prop_assert!((d[p] - fd).abs() <= 1e-6 * (1.0 + fd.abs()), "p{} {} vs {}", p, d[p], fd);
            }
        }

        /// The batch evaluation is the scalar one, point by point (to rounding), zeros included.
        #[test]
        fn eval_into_matches_eval(
            which in 0usize..3, xs in proptest::collection::vec(prop_oneof![Just(0.0), 1e-6f64..50.0], 1..40),
            p0 in 0.05f64..10.0, p1 in prop_oneof![Just(1.0), 0.3f64..5.0],
        ) {
            let kind = [SaturationKind::Hill, SaturationKind::Logistic, SaturationKind::MichaelisMenten][which];
            let sat = Saturation { kind };
            let phi = [p0, p1];
            let n = xs.len();
            let (mut s, mut d1, mut a, mut b) = (vec![9.0; n], vec![9.0; n], vec![9.0; n], vec![9.0; n]);
            sat.eval_into(&phi, &xs, SatSlices { s: &mut s, ds_dx: &mut d1, ds_dphi0: &mut a, ds_dphi1: &mut b });
            let close = |u: f64, v: f64| (u - v).abs() <= 1e-13 * (1.0 + v.abs());
            for t in 0..n {
                let e = sat.eval(&phi, xs[t]);
                prop_assert!(close(s[t], e.s) && close(d1[t], e.ds_dx), "x {} s {} {} d1 {} {}", xs[t], s[t], e.s, d1[t], e.ds_dx);
                prop_assert!(close(a[t], e.ds_dphi[0]) && close(b[t], e.ds_dphi[1]), "x {} dphi {} {} / {} {}", xs[t], a[t], e.ds_dphi[0], b[t], e.ds_dphi[1]);
            }
        }

        /// Central differences with h = 1e-6·(1+|v|): error ≲ 1e-9 for these smooth curves.
        #[test]
        fn saturation_derivatives_match_finite_differences(
            which in 0usize..3, x in 1e-4f64..20.0, p0 in 0.05f64..10.0, p1 in 0.3f64..5.0,
        ) {
            let kind = [SaturationKind::Hill, SaturationKind::Logistic, SaturationKind::MichaelisMenten][which];
            let s = Saturation { kind };
            let phi = vec![p0, p1];
            let e = s.eval(&phi, x);
            prop_assert!((e.s - s.value(&phi, x)).abs() < 1e-15);
            let h = 1e-6 * (1.0 + x);
            let fd = (s.value(&phi, x + h) - s.value(&phi, x - h)) / (2.0 * h);
            prop_assert!((e.ds_dx - fd).abs() <= 1e-6 * (1.0 + fd.abs()), "dx {} vs {}", e.ds_dx, fd);
            for p in 0..s.n_params() {
                let h = 1e-6 * (1.0 + phi[p]);
                let mut a = phi.clone(); a[p] += h;
                let mut b = phi.clone(); b[p] -= h;
                let fd = (s.value(&a, x) - s.value(&b, x)) / (2.0 * h);
                prop_assert!((e.ds_dphi[p] - fd).abs() <= 1e-6 * (1.0 + fd.abs()), "p{} {} vs {}", p, e.ds_dphi[p], fd);
            }
        }
    }
}
