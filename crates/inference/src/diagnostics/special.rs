//! The few special functions the diagnostics need: the standard-normal quantile (for rank
//! normalisation) and the beta quantile (for quantile Monte Carlo standard errors).

/// Standard-normal quantile function, Wichura's algorithm AS 241 (PPND16), the algorithm behind R's
/// `qnorm`: relative accuracy about 1e-16 over (0, 1). Returns -inf at 0, +inf at 1, NaN outside.
#[allow(clippy::excessive_precision)] // the coefficients as published
pub fn qnorm(p: f64) -> f64 {
    // Coefficients from M. J. Wichura (1988), "Algorithm AS 241: The percentage points of the normal
    // distribution", Applied Statistics 37(3), 477-484.
    const A: [f64; 8] = [
        3.387_132_872_796_366_608,
        1.331_416_678_917_843_774_5e2,
        1.971_590_950_306_551_442_7e3,
        1.373_169_376_550_946_112_5e4,
        4.592_195_393_154_987_145_7e4,
        6.726_577_092_700_870_085_3e4,
        3.343_057_558_358_812_810_5e4,
        2.509_080_928_730_122_672_7e3,
    ];
    const B: [f64; 8] = [
        1.0,
        4.231_333_070_160_091_125_2e1,
        6.871_870_074_920_579_083e2,
        5.394_196_021_424_751_107_7e3,
        2.121_379_430_158_659_586_7e4,
        3.930_789_580_009_271_061e4,
        2.872_908_573_572_194_267_4e4,
        5.226_495_278_852_854_561e3,
    ];
    const C: [f64; 8] = [
        1.423_437_110_749_683_577_34,
        4.630_337_846_156_545_295_9,
        5.769_497_221_460_691_405_5,
        3.647_848_324_763_204_605_04,
        1.270_458_252_452_368_382_58,
        2.417_807_251_774_506_117_7e-1,
        2.272_384_498_926_918_458_33e-2,
        7.745_450_142_783_414_076_4e-4,
    ];
    const D: [f64; 8] = [
        1.0,
        2.053_191_626_637_758_821_87,
        1.676_384_830_183_803_849_4,
        6.897_673_349_851_000_045_5e-1,
        1.481_039_764_274_800_745_9e-1,
        1.519_866_656_361_645_719_66e-2,
        5.475_938_084_995_344_946e-4,
        1.050_750_071_644_416_843_24e-9,
    ];
    const E: [f64; 8] = [
        6.657_904_643_501_103_777_2,
        5.463_784_911_164_114_369_9,
        1.784_826_539_917_291_335_8,
        2.965_605_718_285_048_912_3e-1,
        2.653_218_952_657_612_309_3e-2,
        1.242_660_947_388_078_438_6e-3,
        2.711_555_568_743_487_578_15e-5,
        2.010_334_399_292_288_132_65e-7,
    ];
    const F: [f64; 8] = [
        1.0,
        5.998_322_065_558_879_376_9e-1,
        1.369_298_809_227_358_053_1e-1,
        1.487_536_129_085_061_485_25e-2,
        7.868_691_311_456_132_591e-4,
        1.846_318_317_510_054_681_8e-5,
        1.421_511_758_316_445_888_7e-7,
        2.044_263_103_389_939_785_64e-15,
    ];
    fn ratio(num: &[f64; 8], den: &[f64; 8], r: f64) -> f64 {
        let horner = |c: &[f64; 8]| c.iter().rev().fold(0.0, |acc, &ci| acc * r + ci);
        horner(num) / horner(den)
    }

    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return q * ratio(&A, &B, r);
    }
    let tail = if q < 0.0 { p } else { 1.0 - p };
    let r = (-tail.ln()).sqrt();
    let z = if r <= 5.0 { ratio(&C, &D, r - 1.6) } else { ratio(&E, &F, r - 5.0) };
    if q < 0.0 { -z } else { z }
}

/// Remainder of Stirling's formula, `log Γ(x) - [(x - 1/2) log x - x + log(2π)/2]`, for x ≥ 15
/// (series truncation error below 3e-16 there).
fn stirling_remainder(x: f64) -> f64 {
    debug_assert!(x >= 15.0);
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    // Bernoulli-number coefficients of the Stirling series: 1/12, -1/360, 1/1260, -1/1680, 1/1188.
    inv * (1.0 / 12.0 + inv2 * (-1.0 / 360.0 + inv2 * (1.0 / 1260.0 + inv2 * (-1.0 / 1680.0 + inv2 / 1188.0))))
}

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// log Γ(x) for x > 0: Stirling's series for x ≥ 15 and the recurrence
/// Γ(x) = Γ(x + n) / (x (x+1) … (x+n-1)) below; absolute error ~1e-15 · |log Γ(x)|.
pub fn ln_gamma(x: f64) -> f64 {
    debug_assert!(x > 0.0);
    if x < 15.0 {
        let mut shifted = x;
        let mut prod = 1.0;
        while shifted < 15.0 {
            prod *= shifted;
            shifted += 1.0;
        }
        return ln_gamma(shifted) - prod.ln();
    }
    (x - 0.5) * x.ln() - x + HALF_LN_2PI + stirling_remainder(x)
}

/// `log[x^a (1-x)^b / B(a, b)]`. For large a and b the naive sum of log-gammas loses ~1e-12 to
/// cancellation; there the Stirling terms are combined analytically first (the idea of TOMS 708's
/// `brcomp`): `a log1p((x y - a)/a) + b log1p((a - x y)/b) + log(a b / (2π y))/2 - Δremainder`
/// with `y = a + b`.
fn ln_beta_front(x: f64, a: f64, b: f64) -> f64 {
    if a.min(b) >= 15.0 {
        let y = a + b;
        let xy = x * y;
        a * ((xy - a) / a).ln_1p() + b * ((a - xy) / b).ln_1p() + 0.5 * (a * b / y).ln()
            - HALF_LN_2PI
            - (stirling_remainder(a) + stirling_remainder(b) - stirling_remainder(y))
    } else {
        ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (-x).ln_1p()
    }
}

/// Continued fraction for the incomplete beta function (modified Lentz), valid for
/// x < (a + 1) / (a + b + 2).
fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-16;
    let qab = a + b;
    let qap = a + 1.0;
    let qam = a - 1.0;
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..100_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// Regularised incomplete beta function I_x(a, b) for a, b > 0.
pub fn pbeta(x: f64, a: f64, b: f64) -> f64 {
    if x.is_nan() || a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = ln_beta_front(x, a, b).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_continued_fraction(b, a, 1.0 - x) / b
    }
}

/// Beta quantile: the x with I_x(a, b) = p, by bisection to the resolution of f64 (I_x is monotone,
/// so this cannot fail to converge). NaN if any argument is NaN or a, b are not positive.
pub fn qbeta(p: f64, a: f64, b: f64) -> f64 {
    if p.is_nan() || a.is_nan() || b.is_nan() || a <= 0.0 || b <= 0.0 || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return 0.0;
    }
    if p == 1.0 {
        return 1.0;
    }
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if pbeta(mid, a, b) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qnorm_known_values() {
        // Values from R: qnorm(c(0.975, 0.5, 1e-10, 0.3, 0.999)).
        assert!((qnorm(0.975) - 1.959_963_984_540_054).abs() < 1e-15);
        assert_eq!(qnorm(0.5), 0.0);
        assert!((qnorm(1e-10) + 6.361_340_902_404_056).abs() < 1e-12);
        assert!((qnorm(0.3) + 0.524_400_512_708_041).abs() < 1e-12);
        assert!((qnorm(0.999) - 3.090_232_306_167_814).abs() < 1e-12);
        for &p in &[0.01, 0.2, 0.45] {
            assert!((qnorm(p) + qnorm(1.0 - p)).abs() < 1e-13);
        }
        assert!(qnorm(0.0).is_infinite() && qnorm(1.0).is_infinite());
        assert!(qnorm(-0.1).is_nan() && qnorm(f64::NAN).is_nan());
    }

    #[test]
    fn ln_gamma_known_values() {
        assert!(ln_gamma(1.0).abs() < 1e-14);
        assert!(ln_gamma(2.0).abs() < 1e-14);
        assert!((ln_gamma(0.5) - 0.5 * std::f64::consts::PI.ln()).abs() < 1e-14);
        // lgamma(101) = ln(100!)
        let ln_fact: f64 = (1..=100).map(|k| (k as f64).ln()).sum();
        assert!((ln_gamma(101.0) - ln_fact).abs() < 1e-12);
        // Γ(n + 1/2) = (2n)! √π / (4^n n!), on both sides of the Stirling switch at 15.
        for n in [3u32, 12, 40] {
            let ln_fact = |k: u32| (1..=k).map(|j| (j as f64).ln()).sum::<f64>();
            let expected = ln_fact(2 * n) + 0.5 * std::f64::consts::PI.ln() - (n as f64) * 4f64.ln() - ln_fact(n);
            assert!((ln_gamma(n as f64 + 0.5) - expected).abs() < 1e-13);
        }
    }

    #[test]
    fn beta_quantiles_round_trip() {
        // pbeta(0.3, 2, 5) = 0.579825 (R), closed form 1 - sum_{j<2} C(6,j) 0.3^j 0.7^(6-j).
        let closed = 1.0 - 0.7f64.powi(6) - 6.0 * 0.3 * 0.7f64.powi(5);
        assert!((pbeta(0.3, 2.0, 5.0) - closed).abs() < 1e-14, "{} vs {closed}", pbeta(0.3, 2.0, 5.0));
        for &(a, b) in &[(0.5, 0.5), (2.0, 3.0), (21.0, 1980.0), (1001.0, 1001.0), (400.5, 12.25)] {
            for &p in &[0.001, 0.158_655_3, 0.5, 0.841_344_7, 0.999] {
                let x = qbeta(p, a, b);
                assert!((pbeta(x, a, b) - p).abs() < 1e-12, "a={a} b={b} p={p} x={x}");
            }
        }
        // Uniform: qbeta(p, 1, 1) = p.
        assert!((qbeta(0.37, 1.0, 1.0) - 0.37).abs() < 1e-14);
    }
}
