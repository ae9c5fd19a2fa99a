//! Response curves: the outcome each channel delivers, per posterior draw, as a function of the
//! spend given to it over the planning horizon.

/// Per-draw response curves of a set of channels: R_{c,d}(s), the outcome (KPI or revenue) of
/// channel `c` under posterior draw `d` when it is given spend `s` over the planning horizon.
///
/// Implementations fill whole draw vectors at once so the optimiser's inner loop has no dynamic
/// dispatch per draw. Curves must be twice differentiable in `s > 0`.
pub trait ResponseCurves: Sync {
    fn n_channels(&self) -> usize;
    fn n_draws(&self) -> usize;
    /// Writes R_{c,d}(s), ∂R/∂s and ∂²R/∂s² for every draw `d` into `v`, `d1`, `d2` (each of
    /// length [`ResponseCurves::n_draws`]).
    fn eval(&self, c: usize, s: f64, v: &mut [f64], d1: &mut [f64], d2: &mut [f64]);
    /// Writes only R_{c,d}(s) (line searches need no derivatives). The default calls `eval`.
    fn value(&self, c: usize, s: f64, v: &mut [f64]) {
        let mut a = vec![0.0; v.len()];
        let mut b = vec![0.0; v.len()];
        self.eval(c, s, v, &mut a, &mut b);
    }
}

/// The shape of a saturation curve h(u), u ≥ 0, with h(0) = 0 and h → 1 as u → ∞: the model's own
/// [`SaturationCurve`](crate::transforms::saturation::SaturationCurve) (one formula for the model,
/// the optimiser and pricing); the optimiser reads (h, h', h'') from its `derivs`.
pub use crate::transforms::saturation::SaturationCurve as Saturation;

/// Curves of the form R_{c,d}(s) = β_{c,d} Σ_j m_{c,d,j} · h_{c,d}(k_{c,d,j} · s): a saturation
/// h applied to spend scaled by a few "pieces" (k_j, m_j).
///
/// This is exactly the MMM's response to spend `s` spread evenly over a horizon of H periods,
/// adstock first: the adstocked input in period t is (s/H)·W_t with W_t a partial sum of the
/// adstock weights, so equal W_t collapse into one piece with multiplicity m. A single piece
/// (k = Σw/H, m = H) is the long-run steady state; `horizon_pieces` builds the exact ramp-up,
/// steady and carry-over tail pieces from the adstock weights.
#[derive(Debug, Clone, PartialEq)]
pub struct SaturatingCurves {
    n_channels: usize,
    n_draws: usize,
    /// [c * n_draws + d]
    beta: Vec<f64>,
    sat: Vec<Saturation>,
    /// pieces of (c, d) are `pieces[offsets[i]..offsets[i + 1]]`, i = c * n_draws + d
    offsets: Vec<usize>,
    pieces: Vec<(f64, f64)>,
    /// beside each piece of a Hill curve, its odds factor (k/ec)^{−n}: `eval` forms the odds of
    /// not saturating at x = k·s as (k/ec)^{−n}·s^{−n}, one power per spend and draw
    /// ([`Saturation::hill_terms_from_odds`]); NaN where |n·ln(k/ec)| > [`ODDS_LN_MAX`] (that
    /// piece takes [`Saturation::derivs`]) and for other kinds (unused)
    odds: Vec<f64>,
}

/// The largest |exponent| either factor of a Hill curve's odds, (k/ec)^{−n} and s^{−n}, may have
/// for the product form (e^{±700} is far inside f64's range, so neither factor overflows or
/// underflows where their product would not); beyond it `eval` takes the direct form.
const ODDS_LN_MAX: f64 = 700.0;

impl SaturatingCurves {
    /// Builds from a function giving, for channel `c` and draw `d`, (β, saturation, pieces).
    pub fn new(
        n_channels: usize,
        n_draws: usize,
        mut f: impl FnMut(usize, usize) -> (f64, Saturation, Vec<(f64, f64)>),
    ) -> Self {
        let mut beta = Vec::with_capacity(n_channels * n_draws);
        let mut sat = Vec::with_capacity(n_channels * n_draws);
        let mut offsets = vec![0];
        let mut pieces = Vec::new();
        let mut odds = Vec::new();
        for c in 0..n_channels {
            for d in 0..n_draws {
                let (b, s, p) = f(c, d);
                odds.extend(p.iter().map(|&(k, _)| match s {
                    Saturation::Hill { ec, slope } => {
                        let e = -slope * (k / ec).ln();
                        if e.abs() <= ODDS_LN_MAX { e.exp() } else { f64::NAN }
                    }
                    _ => f64::NAN,
                }));
                beta.push(b);
                sat.push(s);
                pieces.extend(p);
                offsets.push(pieces.len());
            }
        }
        Self { n_channels, n_draws, beta, sat, offsets, pieces, odds }
    }
}

/// The (k, m) pieces of a flat spend `s` over `horizon` periods through adstock weights `w`
/// (w_0..w_L), counting the carry-over for L periods after the horizon. With per-period input
/// x = s/H, the adstocked input in period t (1-based) is x·W_t, W_t = Σ_{l: 1 ≤ t−l ≤ H} w_l.
/// `input_scale` multiplies the input (e.g. 1/mean spend, the model's internal scaling).
pub fn horizon_pieces(w: &[f64], horizon: usize, input_scale: f64) -> Vec<(f64, f64)> {
    let l_max = w.len().saturating_sub(1);
    let mut out: Vec<(f64, f64)> = Vec::new();
    for t in 1..=horizon + l_max {
        let lo = t.saturating_sub(horizon); // smallest lag with t − l ≤ H
        let hi = (t - 1).min(l_max); // largest lag with t − l ≥ 1
        if lo > hi {
            continue;
        }
        let wt: f64 = w[lo..=hi].iter().sum();
        let k = wt * input_scale / horizon as f64;
        match out.iter_mut().find(|(kk, _)| (*kk - k).abs() <= 1e-14 * k.abs().max(1e-300)) {
            Some(p) => p.1 += 1.0,
            None => out.push((k, 1.0)),
        }
    }
    out
}

impl ResponseCurves for SaturatingCurves {
    fn n_channels(&self) -> usize {
        self.n_channels
    }
    fn n_draws(&self) -> usize {
        self.n_draws
    }
    fn eval(&self, c: usize, s: f64, v: &mut [f64], d1: &mut [f64], d2: &mut [f64]) {
        let ln_s = s.ln();
        for d in 0..self.n_draws {
            let i = c * self.n_draws + d;
            let (a, b, e) = self.sums(i, s, ln_s, true);
            let beta = self.beta[i];
            v[d] = beta * a;
            d1[d] = beta * b;
            d2[d] = beta * e;
        }
    }
    fn value(&self, c: usize, s: f64, v: &mut [f64]) {
        let ln_s = s.ln();
        for (d, out) in v.iter_mut().enumerate() {
            let i = c * self.n_draws + d;
            *out = self.beta[i] * self.sums(i, s, ln_s, false).0;
        }
    }
}

impl SaturatingCurves {
    /// Σ_j m_j·(h, k_j·h′, k_j²·h″)(k_j·s) over the pieces of curve `i` = (c, d) at spend `s`
    /// (`ln_s` = ln s); the derivative sums only `with_derivs`. A Hill curve at s > 0 takes its
    /// odds (k/ec)^{−n}·s^{−n} ([`Saturation::hill_terms_from_odds`]: one exponential per spend
    /// and draw, not one per piece — a geo model's curve has a piece per geo and adstock step);
    /// other kinds, x = k·s = 0 (k·s underflowed) and exponents beyond [`ODDS_LN_MAX`] take
    /// [`Saturation::derivs`].
    #[inline]
    fn sums(&self, i: usize, s: f64, ln_s: f64, with_derivs: bool) -> (f64, f64, f64) {
        let range = self.offsets[i]..self.offsets[i + 1];
        let sat = self.sat[i];
        // the direct form's sums
        let (mut a, mut b, mut e) = (0.0, 0.0, 0.0);
        let mut direct = |k: f64, m: f64| {
            let (h, h1, h2) = sat.derivs(k * s);
            a += m * h;
            if with_derivs {
                b += m * k * h1;
                e += m * k * k * h2;
            }
        };
        match sat {
            Saturation::Hill { slope: n, .. } if s > 0.0 && (n * ln_s).abs() <= ODDS_LN_MAX => {
                let s_odds = (-n * ln_s).exp();
                // the odds form's sums: Σ m·h, Σ m·g₁, Σ m·g₂ (g over s and s² at the end)
                let (mut oa, mut ob, mut oe) = (0.0, 0.0, 0.0);
                for (&(k, m), &odds) in self.pieces[range.clone()].iter().zip(&self.odds[range]) {
                    if odds.is_nan() || k * s <= 0.0 {
                        direct(k, m);
                        continue;
                    }
                    let (h, g1, g2) = Saturation::hill_terms_from_odds(n, odds * s_odds);
                    oa += m * h;
                    ob += m * g1;
                    oe += m * g2;
                }
                // (over s twice: s² underflows to 0 at s ~ 1e-300, where the sums may be 0)
                (a + oa, b + ob / s, e + oe / s / s)
            }
            _ => {
                for &(k, m) in &self.pieces[range] {
                    direct(k, m);
                }
                (a, b, e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fd_check(s: Saturation, u: f64) {
        let e = 1e-6 * u.max(1e-3);
        let (_, d1, d2) = s.derivs(u);
        let (hp, d1p, _) = s.derivs(u + e);
        let (hm, d1m, _) = s.derivs(u - e);
        let fd1 = (hp - hm) / (2.0 * e);
        let fd2 = (d1p - d1m) / (2.0 * e);
        // central differences: truncation O(e²·h''') plus rounding O(ε/e); 1e-6 relative covers both
        assert!((fd1 - d1).abs() <= 1e-6 * (1.0 + d1.abs()), "{s:?} u={u}: d1 {d1} vs fd {fd1}");
        assert!((fd2 - d2).abs() <= 1e-5 * (1.0 + d2.abs()), "{s:?} u={u}: d2 {d2} vs fd {fd2}");
    }

    proptest! {
        #[test]
        fn saturation_derivatives_match_finite_differences(u in 0.01f64..20.0, p in 0.1f64..5.0, n in 0.3f64..3.0) {
            fd_check(Saturation::Hill { ec: p, slope: n }, u);
            fd_check(Saturation::Logistic { lam: p }, u);
            fd_check(Saturation::MichaelisMenten { k: p }, u);
        }
    }

    proptest! {
        /// `eval`'s Hill tabulation, with the odds (k·s/ec)^{−n} formed as (k/ec)^{−n}·s^{−n}, is
        /// the reference Σ_j m_j·(h, k_j·h', k_j²·h'')(k_j·s) of `derivs`, and `value` is its first
        /// sum. The bound per term is its scale times (1e-13 + 4ε·E): the scale is the term's
        /// magnitude plus what one rounding of s moves the derivatives by (n/x in h', n(n+1)/x² in
        /// h''; far into saturation 1 − s is a few ulps of s), and E = n·(|ln s| + |ln(k/ec)| +
        /// |ln(k·s/ec)|) covers the exponents' rounding, which the two forms do differently (the
        /// factors' separately, the reference's once), ε per unit of exponent in the odds' relative
        /// error. Spends near 0 (|n·ln s| past the product form's limit) and pieces with k/ec
        /// huge (the same for the piece's factor: k = 1e70) take the direct form.
        #[test]
        fn hill_eval_with_odds_per_spend_is_the_reference_formula(
            spend in prop_oneof![Just(0.0), Just(1e-300), 1e-3f64..1e3],
            draws in proptest::collection::vec(
                (0.05f64..10.0, prop_oneof![Just(1.0), 0.3f64..5.0], 0.1f64..3.0,
                 proptest::collection::vec((prop_oneof![Just(1e70), 0.01f64..3.0], 1.0f64..5.0), 1..5)),
                1..4,
            ),
        ) {
            let curves = SaturatingCurves::new(1, draws.len(), |_, d| {
                let (ec, slope, beta, p) = &draws[d];
                (*beta, Saturation::Hill { ec: *ec, slope: *slope }, p.clone())
            });
            let n = draws.len();
            let (mut v, mut d1, mut d2) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
            curves.eval(0, spend, &mut v, &mut d1, &mut d2);
            let mut only_v = vec![0.0; n];
            curves.value(0, spend, &mut only_v);
            prop_assert_eq!(&only_v, &v, "value is eval's first output");
            for (d, (ec, slope, beta, p)) in draws.iter().enumerate() {
                let sat = Saturation::Hill { ec: *ec, slope: *slope };
                let (mut a, mut b, mut e) = (0.0, 0.0, 0.0);
                let (mut sa, mut sb, mut se) = (0.0, 0.0, 0.0);
                for &(k, m) in p {
                    let x = k * spend;
                    let (h, h1, h2) = sat.derivs(x);
                    a += m * h;
                    b += m * k * h1;
                    e += m * k * k * h2;
                    // k·n/x and k²·n(n+1)/x², written in s so a tiny k cannot make them 0·∞
                    let (u1, u2) =
                        if x > 0.0 { (slope / spend, slope * (slope + 1.0) / (spend * spend)) } else { (0.0, 0.0) };
                    // the odds' relative rounding: each form rounds its exponents, ε per unit
                    let big = if x > 0.0 {
                        slope * (spend.ln().abs() + (k / ec).ln().abs() + (x / ec).ln().abs())
                    } else {
                        0.0
                    };
                    let rel = 1e-13 + 4.0 * f64::EPSILON * big;
                    sa += m * h.abs() * rel;
                    sb += m * (k * h1.abs() + u1) * rel;
                    se += m * (k * k * h2.abs() + u2) * rel;
                }
                if spend == 0.0 {
                    // no odds at x = 0: the reference itself (h' = f64::MAX when n < 1)
                    let bits = |t: [f64; 3]| t.map(f64::to_bits);
                    prop_assert_eq!(bits([v[d], d1[d], d2[d]]), bits([beta * a, beta * b, beta * e]));
                    continue;
                }
                // equal, infinities included (h'' overflows at x ~ 1e-300), or within the bound
                let close = |got: f64, want: f64, bound: f64| got == want || (got - want).abs() <= bound;
                prop_assert!(close(v[d], beta * a, beta * sa), "value {} vs {}", v[d], beta * a);
                prop_assert!(close(d1[d], beta * b, beta * sb), "d1 {} vs {}", d1[d], beta * b);
                prop_assert!(close(d2[d], beta * e, beta * se), "d2 {} vs {}", d2[d], beta * e);
            }
        }
    }

    #[test]
    fn horizon_pieces_conserve_total_adstock_mass() {
        // every period's spend eventually contributes all of Σw: Σ_j m_j k_j = Σw · scale
        let w = [1.0, 0.6, 0.36, 0.216];
        let p = horizon_pieces(&w, 10, 2.0);
        let mass: f64 = p.iter().map(|(k, m)| k * m).sum();
        assert!((mass - w.iter().sum::<f64>() * 2.0).abs() < 1e-12);
        // ramp-up 3 + steady 1 + tail 3 distinct levels, 13 periods in all
        assert_eq!(p.len(), 7);
        assert_eq!(p.iter().map(|(_, m)| m).sum::<f64>(), 13.0);
    }

    #[test]
    fn horizon_pieces_reproduce_direct_simulation() {
        // simulate x_t = s/H for t = 1..H, zero after, adstock, saturate, sum — against the pieces
        let w = [0.5, 0.3, 0.2];
        let (h, s, scale) = (6usize, 12.0, 0.7);
        let sat = Saturation::Logistic { lam: 1.3 };
        let x: Vec<f64> = (0..h + 2).map(|t| if t < h { s / h as f64 } else { 0.0 }).collect();
        let direct: f64 = (0..x.len())
            .map(|t| {
                let a: f64 = (0..w.len()).filter(|&l| l <= t).map(|l| w[l] * x[t - l]).sum();
                sat.value(a * scale)
            })
            .sum();
        let pieces: f64 = horizon_pieces(&w, h, scale).iter().map(|&(k, m)| m * sat.value(k * s)).sum();
        assert!((direct - pieces).abs() < 1e-12, "{direct} vs {pieces}");
    }
}
