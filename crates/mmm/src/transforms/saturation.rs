//! Saturation curves s(x; φ): the one owner of their formulas — value, first and second derivative
//! in x, derivatives in the parameters φ — shared by the model's density
//! ([`crate::model`]), the budget optimiser ([`crate::optimize`]) and hypothetical-test pricing
//! ([`crate::pricing`]).
//!
//! | kind | s(x) | ∂s/∂x | ∂²s/∂x² | source |
//! |---|---|---|---|---|
//! | hill | xⁿ/(xⁿ + ecⁿ) = σ(n·ln(x/ec)) | n·s(1−s)/x | n·s(1−s)·(n(1−2s) − 1)/x² | Meridian `_hill` |
//! | logistic | (1 − e^{−λx})/(1 + e^{−λx}) = tanh(λx/2) | (λ/2)(1 − s²) | −λ·s·∂s/∂x | PyMC-Marketing `logistic_saturation` |
//! | michaelis_menten | x/(k + x) | k/(k + x)² | −2k/(k + x)³ | PyMC-Marketing `michaelis_menten` with α = 1 (β scales it) |
//!
//! (Hill: with u = n·ln(x/ec), s = σ(u), ds/du = s(1−s), du/dx = n/x, so ∂s/∂x = n·s(1−s)/x and
//! ∂²s/∂x² = n/x·(1−2s)·∂s/∂x − n·s(1−s)/x², which is the table's form; logistic: d tanh = 1 − tanh².)
//!
//! Parameter derivatives: Hill ∂s/∂ec = −s(1−s)·n/ec, ∂s/∂n = s(1−s)·ln(x/ec); logistic
//! ∂s/∂λ = (x/2)(1 − s²); Michaelis–Menten ∂s/∂k = −x/(k + x)².
//!
//! The curves are defined for x ≥ 0 (adstocked media and spend); a negative input is read as 0.
//! At x = 0 the Hill curve has ∂s/∂x = +∞ when n < 1; [`SaturationCurve::eval`] returns 0 there,
//! which is what every product it enters in the model needs: an adstocked input is 0 only when every
//! input in its window is 0, so the factor it multiplies is exactly 0 as well. The optimiser, which
//! needs the marginal return of a channel at zero spend, reads the one-sided limit from
//! [`SaturationCurve::derivs`] instead (`f64::MAX` for +∞). At x = 0, ∂²s/∂x² is reported as 0.
//!
//! ```
//! use mmloop_mmm::transforms::saturation::{Saturation, SaturationCurve, SaturationKind};
//! let s = Saturation { kind: SaturationKind::Hill };
//! assert_eq!(s.value(&[2.0, 1.0], 2.0), 0.5); // x = ec is half saturation
//! let c = SaturationCurve::Hill { ec: 2.0, slope: 1.0 };
//! let (v, d1, d2) = c.derivs(2.0); // x/(x + 2): 1/2, 2/16, −4/64
//! assert!((v - 0.5).abs() < 1e-15 && (d1 - 0.125).abs() < 1e-15 && (d2 + 0.0625).abs() < 1e-15);
//! ```

use super::SaturationSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaturationKind {
    /// φ = `[ec, slope]`
    Hill,
    /// φ = `[λ]`
    Logistic,
    /// φ = `[k]`
    MichaelisMenten,
}

/// A saturation curve with its parameters h(x) = s(x; φ), x ≥ 0, h(0) = 0, h → 1 as x → ∞: the
/// single place the formulas live (see the module documentation for the math and sources).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SaturationCurve {
    /// Hill: h(x) = xⁿ / (xⁿ + ecⁿ) (Meridian). Concave for n ≤ 1, S-shaped for n > 1.
    Hill { ec: f64, slope: f64 },
    /// Logistic: h(x) = (1 − e^{−λx}) / (1 + e^{−λx}) = tanh(λx/2) (PyMC-Marketing). Concave.
    Logistic { lam: f64 },
    /// Michaelis–Menten: h(x) = x / (k + x). Concave.
    MichaelisMenten { k: f64 },
}

/// Value and derivatives of s at one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SatEval {
    pub s: f64,
    pub ds_dx: f64,
    pub d2s_dx2: f64,
    /// ∂s/∂φ_p (unused entries 0).
    pub ds_dphi: [f64; 2],
}

impl SaturationCurve {
    /// The curve of `kind` at parameters φ (in the model's order: Hill `[ec, slope]`, logistic `[λ]`,
    /// Michaelis–Menten `[k]`; only the entries the kind uses are read).
    #[inline]
    pub fn new(kind: SaturationKind, phi: &[f64]) -> Self {
        match kind {
            SaturationKind::Hill => SaturationCurve::Hill { ec: phi[0], slope: phi[1] },
            SaturationKind::Logistic => SaturationCurve::Logistic { lam: phi[0] },
            SaturationKind::MichaelisMenten => SaturationCurve::MichaelisMenten { k: phi[0] },
        }
    }

    pub fn kind(&self) -> SaturationKind {
        match self {
            SaturationCurve::Hill { .. } => SaturationKind::Hill,
            SaturationCurve::Logistic { .. } => SaturationKind::Logistic,
            SaturationCurve::MichaelisMenten { .. } => SaturationKind::MichaelisMenten,
        }
    }

    /// φ in the model's order (unused entries 0).
    pub fn params(&self) -> [f64; 2] {
        match *self {
            SaturationCurve::Hill { ec, slope } => [ec, slope],
            SaturationCurve::Logistic { lam } => [lam, 0.0],
            SaturationCurve::MichaelisMenten { k } => [k, 0.0],
        }
    }

    /// s(x).
    #[inline]
    pub fn value(&self, x: f64) -> f64 {
        match *self {
            SaturationCurve::Hill { ec, slope } => {
                if x <= 0.0 {
                    return 0.0;
                }
                let u = slope * (x / ec).ln();
                1.0 / (1.0 + (-u).exp())
            }
            SaturationCurve::Logistic { lam } => (0.5 * lam * nonneg(x)).tanh(),
            SaturationCurve::MichaelisMenten { k } => {
                let x = nonneg(x);
                x / (k + x)
            }
        }
    }

    /// s with ∂s/∂x, ∂²s/∂x² and ∂s/∂φ (at x = 0: see the module documentation).
    #[inline]
    pub fn eval(&self, x: f64) -> SatEval {
        match *self {
            SaturationCurve::Hill { ec, slope: n } => {
                if x <= 0.0 {
                    let ds_dx = if n == 1.0 { 1.0 / ec } else { 0.0 };
                    return SatEval { s: 0.0, ds_dx, d2s_dx2: 0.0, ds_dphi: [0.0, 0.0] };
                }
                hill_at(ec, n, x, (x / ec).ln())
            }
            SaturationCurve::Logistic { lam } => {
                let x = nonneg(x);
                let s = (0.5 * lam * x).tanh();
                let q = 0.5 * (1.0 - s * s);
                let d1 = lam * q;
                SatEval { s, ds_dx: d1, d2s_dx2: -lam * s * d1, ds_dphi: [x * q, 0.0] }
            }
            SaturationCurve::MichaelisMenten { k } => {
                let x = nonneg(x);
                let d = 1.0 / (k + x);
                let s = x * d;
                let d1 = k * d * d;
                SatEval { s, ds_dx: d1, d2s_dx2: -2.0 * d1 * d, ds_dphi: [-x * d * d, 0.0] }
            }
        }
    }

    /// (s(x), s'(x), s''(x)) for the optimiser: [`SaturationCurve::eval`], except that a Hill curve
    /// with n < 1 reports its one-sided slope at 0, +∞, as `f64::MAX`.
    #[inline]
    pub fn derivs(&self, x: f64) -> (f64, f64, f64) {
        let e = self.eval(x);
        match *self {
            SaturationCurve::Hill { slope, .. } if x <= 0.0 && slope < 1.0 => (e.s, f64::MAX, e.d2s_dx2),
            _ => (e.s, e.ds_dx, e.d2s_dx2),
        }
    }

    /// Hill at x = k·t > 0 from its odds of not saturating, r = (x/ec)^{−n} = e^{−n·ln(x/ec)}:
    /// (s, g₁, g₂) with s = 1/(1 + r), g₁ = n·s(1−s) = t·k·∂s/∂x and g₂ = g₁·(n(1−2s) − 1) =
    /// t²·k²·∂²s/∂x² (the formulas of [`SaturationCurve::derivs`] with x = k·t, the k cancelled). For
    /// a caller summing one curve over many pieces x_j = k_j·t (the optimiser's tabulation,
    /// [`crate::optimize::SaturatingCurves`]), r factors as (k_j/ec)^{−n}·t^{−n}, and the sums
    /// Σ m_j·k_j·s′ and Σ m_j·k_j²·s″ are Σ m_j·g₁/t and Σ m_j·g₂/t²: a power per t and a
    /// product and one division per piece instead of a logarithm, an exponential and three
    /// divisions. Equal to `derivs` up to the rounding of r and of the cancelled k.
    #[inline]
    pub fn hill_terms_from_odds(n: f64, r: f64) -> (f64, f64, f64) {
        let s = 1.0 / (1.0 + r);
        let g1 = n * s * (1.0 - s);
        (s, g1, g1 * (n * (1.0 - 2.0 * s) - 1.0))
    }

    /// ln s(1; φ), the log of the curve at the reference level x = 1 (the mean non-zero scaled
    /// media), with its derivatives in φ; computed in log space so it stays finite where s(1)
    /// underflows:
    /// Hill ln s = −softplus(n·ln ec); logistic ln tanh(λ/2), ∂/∂λ = 1/sinh λ;
    /// Michaelis–Menten −ln(1 + k).
    pub fn ln_value_at_one(&self) -> (f64, [f64; 2]) {
        match *self {
            SaturationCurve::Hill { ec, slope: n } => {
                let lec = ec.ln();
                let u = n * lec;
                let softplus = u.max(0.0) + (-u.abs()).exp().ln_1p();
                let sig = 1.0 / (1.0 + (-u).exp());
                (-softplus, [-sig * n / ec, -sig * lec])
            }
            SaturationCurve::Logistic { lam } => ((0.5 * lam).tanh().ln(), [1.0 / lam.sinh(), 0.0]),
            SaturationCurve::MichaelisMenten { k } => (-k.ln_1p(), [-1.0 / (1.0 + k), 0.0]),
        }
    }
}

/// The Hill curve at x > 0 from lr = ln(x/ec) (see the module documentation): s = σ(n·lr),
/// ∂s/∂x = n·s(1−s)/x, ∂²s/∂x² = ∂s/∂x·(n(1−2s) − 1)/x, ∂s/∂ec = −s(1−s)·n/ec, ∂s/∂n = s(1−s)·lr.
#[inline]
fn hill_at(ec: f64, n: f64, x: f64, lr: f64) -> SatEval {
    let s = 1.0 / (1.0 + (-n * lr).exp());
    let q = s * (1.0 - s);
    let d1 = q * n / x;
    SatEval { s, ds_dx: d1, d2s_dx2: d1 * (n * (1.0 - 2.0 * s) - 1.0) / x, ds_dphi: [-q * n / ec, q * lr] }
}

/// x, with negative inputs read as 0 (NaN stays NaN, so a bad parameter is not hidden).
#[inline]
fn nonneg(x: f64) -> f64 {
    if x < 0.0 { 0.0 } else { x }
}

/// A saturation curve (kind only; parameters are passed to each call): the model's per-channel
/// handle on [`SaturationCurve`], whose formulas every method here calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saturation {
    pub kind: SaturationKind,
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

    /// The curve at parameters φ.
    #[inline]
    pub fn curve(&self, phi: &[f64]) -> SaturationCurve {
        SaturationCurve::new(self.kind, phi)
    }

    /// s(x; φ) for x ≥ 0.
    #[inline]
    pub fn value(&self, phi: &[f64], x: f64) -> f64 {
        self.curve(phi).value(x)
    }

    /// s with its derivatives in x and φ.
    #[inline]
    pub fn eval(&self, phi: &[f64], x: f64) -> SatEval {
        self.curve(phi).eval(x)
    }

    /// [`SaturationCurve::ln_value_at_one`] at φ.
    pub fn ln_value_at_one(&self, phi: &[f64]) -> (f64, [f64; 2]) {
        self.curve(phi).ln_value_at_one()
    }
}

/// A curve evaluated at several multiples of each input: s(m_k·x) for fixed multipliers m_k ≥ 0
/// (response curves, the marginal-ROI perturbation). For Hill, with e = (ec/x)ⁿ,
/// s(m·x) = 1/(1 + e·m⁻ⁿ), so one ln and one exp per input serve every multiplier (m⁻ⁿ is computed
/// once here); at m = 1 this is exactly [`SaturationCurve::value`]. The other kinds evaluate
/// s(m_k·x) directly.
#[derive(Debug, Clone)]
pub struct ScaledCurve {
    curve: SaturationCurve,
    multipliers: Vec<f64>,
    /// Hill: m_k⁻ⁿ (unused for m_k = 0).
    pow: Vec<f64>,
}

impl ScaledCurve {
    pub fn new(curve: SaturationCurve, multipliers: &[f64]) -> Self {
        let pow = match curve {
            SaturationCurve::Hill { slope, .. } => {
                multipliers.iter().map(|&m| if m > 0.0 { m.powf(-slope) } else { 0.0 }).collect()
            }
            _ => Vec::new(),
        };
        ScaledCurve { curve, multipliers: multipliers.to_vec(), pow }
    }

    /// s(m_k·x) into `out[k]` for every multiplier k.
    #[inline]
    pub fn values(&self, x: f64, out: &mut [f64]) {
        match self.curve {
            SaturationCurve::Hill { ec, slope } => {
                if x <= 0.0 {
                    out[..self.multipliers.len()].fill(0.0);
                    return;
                }
                let e = (-(slope * (x / ec).ln())).exp();
                for ((o, &m), &p) in out.iter_mut().zip(&self.multipliers).zip(&self.pow) {
                    *o = if m > 0.0 { 1.0 / (1.0 + e * p) } else { 0.0 };
                }
            }
            _ => {
                for (o, &m) in out.iter_mut().zip(&self.multipliers) {
                    *o = self.curve.value(m * x);
                }
            }
        }
    }
}

/// Outputs of [`Saturation::eval_into`], one slot per input point.
pub struct SatSlices<'a> {
    pub s: &'a mut [f64],
    pub ds_dx: &'a mut [f64],
    pub ds_dphi0: &'a mut [f64],
    /// ∂s/∂φ₁, or `None` when the caller holds φ₁ fixed (a Hill slope given in the config has no
    /// coordinate, so nothing needs its derivative). Only a Hill curve has a φ₁ and writes it.
    pub ds_dphi1: Option<&'a mut [f64]>,
}

/// Hill's first two passes over a series (the libm calls, in loops of their own so the arithmetic
/// pass vectorises): lr = ln(x/ec) (0 at x ≤ 0) and e = (ec/x)ⁿ = exp(−n·lr).
#[inline]
fn hill_ln_exp(x: &[f64], ln_ec: f64, slope: f64, lr: &mut [f64], e: &mut [f64]) {
    for t in 0..x.len() {
        lr[t] = if x[t] > 0.0 { x[t].ln() - ln_ec } else { 0.0 };
    }
    for t in 0..x.len() {
        e[t] = (-slope * lr[t]).exp();
    }
}

/// Hill at one point from x and e = (ec/x)ⁿ: (s, ∂s/∂x, s(1−s), x > 0). One division,
/// r = 1/((1 + e)·x), gives both s = 1/(1 + e) = x·r and 1/x = (1 + e)·r; at x ≤ 0, s = 0 and
/// ∂s/∂x = `d1_at_zero`.
#[inline(always)]
fn hill_point(xt: f64, e: f64, slope: f64, d1_at_zero: f64) -> (f64, f64, f64, bool) {
    let pos = xt > 0.0;
    let xs = if pos { xt } else { 1.0 };
    let r = 1.0 / ((1.0 + e) * xs);
    let st = xs * r;
    let q = st * (1.0 - st);
    let d1 = if pos { q * slope * ((1.0 + e) * r) } else { d1_at_zero };
    (if pos { st } else { 0.0 }, d1, q, pos)
}

impl Saturation {
    /// s(x; φ) in place over a whole series: [`SaturationCurve::value`] per point, except that a
    /// Hill curve whose slope the caller holds at 1 (`phi1_held`, φ₁ = 1: Meridian's default) is
    /// x/(x + ec), arithmetic only, as in [`Saturation::eval_into`]. The model's per-draw
    /// features ([`crate::model::MmmModel::channel_feature`]) come from here; a sampled slope
    /// keeps the general form even where it equals 1 (a prior's median), so that fits with a
    /// sampled slope do not depend on this path.
    pub fn saturate_in_place(&self, phi: &[f64], phi1_held: bool, xs: &mut [f64]) {
        if self.kind == SaturationKind::Hill && phi1_held && phi[1] == 1.0 {
            let ec = phi[0];
            for v in xs.iter_mut() {
                let xt = nonneg(*v);
                *v = xt / (xt + ec);
            }
            return;
        }
        let curve = self.curve(phi);
        for v in xs.iter_mut() {
            *v = curve.value(*v);
        }
    }
}

impl Saturation {
    /// [`Saturation::eval`] over a whole series: the kind is matched once and the per-curve
    /// constants (ln ec, 1/ec, λ/2) are computed once, so the loop body is a few multiplications
    /// and one or two transcendental calls. Agrees with `eval` to rounding (Hill uses
    /// ln x − ln ec for ln(x/ec)).
    ///
    /// A Hill curve whose slope is held at 1 (`ds_dphi1` is `None` and φ₁ = 1: Meridian's
    /// default, `slope = 1` in the config) is x/(x + ec): with r = 1/(x + ec), s = x·r,
    /// ∂s/∂x = ec·r² and ∂s/∂ec = −x·r², arithmetic only, where the general path takes a
    /// logarithm and an exponential per point.
    pub fn eval_into(&self, phi: &[f64], x: &[f64], out: SatSlices) {
        let n = x.len();
        let (s, d1, d0p) = (&mut out.s[..n], &mut out.ds_dx[..n], &mut out.ds_dphi0[..n]);
        match (self.kind, out.ds_dphi1) {
            (SaturationKind::Hill, None) if phi[1] == 1.0 => {
                let ec = phi[0];
                for t in 0..n {
                    // x ≤ 0 reads as 0, the curve's domain: s = 0, ∂s/∂x = 1/ec, ∂s/∂ec = 0
                    let xt = nonneg(x[t]);
                    let r = 1.0 / (xt + ec);
                    let r2 = r * r;
                    s[t] = xt * r;
                    d1[t] = ec * r2;
                    d0p[t] = -xt * r2;
                }
            }
            (SaturationKind::Hill, d1p) => {
                let (ec, slope) = (phi[0], phi[1]);
                let inv_ec = 1.0 / ec;
                let d1_at_zero = if slope == 1.0 { inv_ec } else { 0.0 };
                match d1p {
                    Some(d1p) => {
                        let d1p = &mut d1p[..n];
                        // lr waits in ∂s/∂n's slot, e in s's
                        hill_ln_exp(x, ec.ln(), slope, d1p, s);
                        for t in 0..n {
                            let (st, d, q, pos) = hill_point(x[t], s[t], slope, d1_at_zero);
                            s[t] = st;
                            d1[t] = d;
                            d0p[t] = if pos { -q * slope * inv_ec } else { 0.0 };
                            d1p[t] = if pos { q * d1p[t] } else { 0.0 };
                        }
                    }
                    None => {
                        // a fixed slope other than 1: lr waits in ∂s/∂ec's slot
                        hill_ln_exp(x, ec.ln(), slope, d0p, s);
                        for t in 0..n {
                            let (st, d, q, pos) = hill_point(x[t], s[t], slope, d1_at_zero);
                            s[t] = st;
                            d1[t] = d;
                            d0p[t] = if pos { -q * slope * inv_ec } else { 0.0 };
                        }
                    }
                }
            }
            (SaturationKind::Logistic, _) => {
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
                }
            }
            (SaturationKind::MichaelisMenten, _) => {
                let k = phi[0];
                for t in 0..n {
                    let d = 1.0 / (k + x[t]);
                    s[t] = x[t] * d;
                    d1[t] = k * d * d;
                    d0p[t] = -x[t] * d * d;
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

    #[test]
    fn second_derivatives_match_the_closed_forms() {
        // Hill n = 2, ec = 1 at x = 1: s = x²/(1+x²), s' = 2x/(1+x²)², s'' = (2 − 6x²)/(1+x²)³
        let e = SaturationCurve::Hill { ec: 1.0, slope: 2.0 }.eval(1.0);
        assert!((e.s - 0.5).abs() < 1e-15 && (e.ds_dx - 0.5).abs() < 1e-15 && (e.d2s_dx2 + 0.5).abs() < 1e-15);
        // logistic λ = 2 at x = 0.5: s = tanh(0.5), s'' = −λ²/2·(1 − s²)·s
        let t = 0.5f64.tanh();
        let e = SaturationCurve::Logistic { lam: 2.0 }.eval(0.5);
        assert!((e.d2s_dx2 + 2.0 * (1.0 - t * t) * t).abs() < 1e-15);
        // Michaelis–Menten k = 3 at x = 1: s'' = −2k/(k + x)³ = −6/64
        assert_eq!(SaturationCurve::MichaelisMenten { k: 3.0 }.eval(1.0).d2s_dx2, -6.0 / 64.0);
    }

    #[test]
    fn slope_at_zero_follows_each_callers_convention() {
        // the model's products need 0 where the true slope is infinite; the optimiser needs the limit
        let concave = SaturationCurve::Hill { ec: 2.0, slope: 0.5 };
        assert_eq!(concave.eval(0.0).ds_dx, 0.0);
        assert_eq!(concave.derivs(0.0).1, f64::MAX);
        assert_eq!(SaturationCurve::Hill { ec: 2.0, slope: 1.0 }.derivs(0.0).1, 0.5);
        assert_eq!(SaturationCurve::Hill { ec: 2.0, slope: 3.0 }.derivs(0.0).1, 0.0);
        // negative inputs read as 0, NaN is not hidden
        assert_eq!(SaturationCurve::Logistic { lam: 1.0 }.derivs(-1.0), (0.0, 0.5, 0.0));
        assert!(SaturationCurve::MichaelisMenten { k: 1.0 }.value(f64::NAN).is_nan());
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

        /// The batch evaluations are the scalar ones, point by point, zeros included: `eval_into`
        /// to rounding; `saturate_in_place` bit for bit, but for a held slope of 1 (x/(x + ec), equal to
        /// the general 1/(1 + e) to a few ulps; its error ≲ ε/(1 − s) as s → 1 stays within 1e-14
        /// on this range).
        #[test]
        fn eval_into_and_saturate_in_place_match_the_scalar_curve(
            which in 0usize..3, xs in proptest::collection::vec(prop_oneof![Just(0.0), 1e-6f64..50.0], 1..40),
            p0 in 0.05f64..10.0, p1 in prop_oneof![Just(1.0), 0.3f64..5.0], slope_fixed: bool,
        ) {
            // a held φ₁ (slope_fixed) takes the arithmetic path at slope 1 and leaves ∂s/∂φ₁ alone
            let kind = [SaturationKind::Hill, SaturationKind::Logistic, SaturationKind::MichaelisMenten][which];
            let sat = Saturation { kind };
            let phi = [p0, p1];
            let n = xs.len();
            let (mut s, mut d1, mut a, mut b) = (vec![9.0; n], vec![9.0; n], vec![9.0; n], vec![9.0; n]);
            let d1p = (kind == SaturationKind::Hill && !slope_fixed).then_some(&mut b[..]);
            sat.eval_into(&phi, &xs, SatSlices { s: &mut s, ds_dx: &mut d1, ds_dphi0: &mut a, ds_dphi1: d1p });
            let close = |u: f64, v: f64| (u - v).abs() <= 1e-13 * (1.0 + v.abs());
            for t in 0..n {
                let e = sat.eval(&phi, xs[t]);
                prop_assert!(close(s[t], e.s) && close(d1[t], e.ds_dx), "x {} s {} {} d1 {} {}", xs[t], s[t], e.s, d1[t], e.ds_dx);
                prop_assert!(close(a[t], e.ds_dphi[0]), "x {} dphi0 {} {}", xs[t], a[t], e.ds_dphi[0]);
                if kind == SaturationKind::Hill && !slope_fixed {
                    prop_assert!(close(b[t], e.ds_dphi[1]), "x {} dphi1 {} {}", xs[t], b[t], e.ds_dphi[1]);
                } else {
                    prop_assert_eq!(b[t], 9.0, "∂s/∂φ₁ written though not asked for");
                }
            }
            let mut out = xs.clone();
            sat.saturate_in_place(&phi, slope_fixed, &mut out);
            for (&x, &o) in xs.iter().zip(&out) {
                let v = sat.value(&phi, x);
                if kind == SaturationKind::Hill && slope_fixed && p1 == 1.0 {
                    prop_assert!((o - v).abs() <= 1e-14 * v, "x {x}: {o} against {v}");
                } else {
                    prop_assert_eq!(o.to_bits(), v.to_bits(), "x {}", x);
                }
            }
        }

        /// The second derivative (what the optimiser's Newton steps use) against central
        /// differences of the first: truncation O(h²·s'''') plus rounding O(ε·|s'|/h) ≈ 1e-10·|s'|
        /// with h = 1e-6·(1 + x), so 1e-6 relative is a loose but failing-capable bound.
        #[test]
        fn saturation_second_derivative_matches_finite_differences(
            which in 0usize..3, x in 1e-3f64..20.0, p0 in 0.05f64..10.0, p1 in 0.3f64..5.0,
        ) {
            let kind = [SaturationKind::Hill, SaturationKind::Logistic, SaturationKind::MichaelisMenten][which];
            let c = SaturationCurve::new(kind, &[p0, p1]);
            let h = 1e-6 * x.min(1.0);
            let e = c.eval(x);
            let fd = (c.eval(x + h).ds_dx - c.eval(x - h).ds_dx) / (2.0 * h);
            let scale = 1.0 + fd.abs() + e.ds_dx.abs() / x;
            prop_assert!((e.d2s_dx2 - fd).abs() <= 1e-6 * scale, "{:?} x {}: d2 {} vs fd {}", c, x, e.d2s_dx2, fd);
            // the optimiser's triple is the same numbers away from 0
            prop_assert_eq!(c.derivs(x), (e.s, e.ds_dx, e.d2s_dx2));
        }

        /// The kind-only handle and the curve are one formula: identical bits.
        #[test]
        fn kind_handle_calls_the_curve_formulas(
            which in 0usize..3, x in prop_oneof![Just(0.0), 1e-6f64..50.0], p0 in 0.05f64..10.0, p1 in 0.3f64..5.0,
        ) {
            let kind = [SaturationKind::Hill, SaturationKind::Logistic, SaturationKind::MichaelisMenten][which];
            let sat = Saturation { kind };
            let c = sat.curve(&[p0, p1]);
            prop_assert_eq!(c.kind(), kind);
            prop_assert_eq!(sat.value(&[p0, p1], x).to_bits(), c.value(x).to_bits());
            prop_assert_eq!(sat.eval(&[p0, p1], x), c.eval(x));
            prop_assert_eq!(SaturationCurve::new(kind, &c.params()), c);
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
