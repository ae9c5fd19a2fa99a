//! NUTS and the Laplace approximation agree on a well-identified MMM.

use mmloop_inference::diagnostics::mcse_mean;
use mmloop_mmm::model::simulate::{SimOptions, simulate};
use mmloop_mmm::spec::FitMethod;

/// 208 weeks, two channels, noise sd 0.01 of the mean KPI: every parameter is well identified. In
/// the unconstrained coordinates the Laplace draws are centred at the mode; the NUTS posterior mean differs from it by
/// (a) Monte Carlo error, at most 4 MCSE of the NUTS mean (MCSE from the bulk ESS), and
/// (b) the Laplace error mean − mode, of order skewness × sd / 2 = O(n^{-1/2}) sd (the third-order
///     Laplace expansion, Tierney & Kadane 1986): ≈ 0.07 sd at n = 208, bounded here by 0.3 sd.
/// The exception is known and checked as such: log σ. The Laplace draws sit at the *joint* mode,
/// where σ̂² = RSS/n, while the marginal posterior of σ² centres on RSS/(n − p) (the p regression-
/// like parameters use up degrees of freedom), so E[log σ] − mode ≈ −½·log(1 − p/n) ≈ p/(2n), which
/// is p/√(2n) posterior sd (sd(log σ) ≈ 1/√(2n)) — 0.69 sd here with p = 14, n = 208. For log σ the
/// gap is compared with that shift.
/// Posterior sds agree within 25%: the Gaussian approximation's sd error is O(n^{-1/2}) as well,
/// plus the sd's own Monte Carlo error (~2% at ESS ≥ 1000).
#[test]
fn nuts_and_laplace_agree_on_a_well_identified_mmm() {
    // noise sd 0.01 of the mean KPI over four years of weeks
    let sim = simulate(&SimOptions { n_times: 208, seed: 3, sigma: 0.01, ..Default::default() }).expect("simulates");
    let mut spec = sim.spec.clone();
    spec.fit.method = FitMethod::Laplace;
    spec.fit.seed = 5;
    let lap = mmloop_mmm::fit::fit(&spec, &sim.data).expect("laplace fit");
    spec.fit.method = FitMethod::Nuts;
    spec.fit.chains = 4;
    spec.fit.tune = 500;
    spec.fit.draws = 500;
    let nuts = mmloop_mmm::fit::fit(&spec, &sim.data).expect("nuts fit");
    assert_eq!(nuts.diagnostics.nuts().map(|d| d.divergences), Some(0), "{}", nuts.diagnostics);
    let names = nuts.model.names();
    let mut worst: f64 = 0.0;
    for j in 0..names.len() {
        let col = |d: &mmloop_mmm::output::Draws| -> Vec<f64> { d.values.iter().map(|q| q[j]).collect() };
        let (l, n) = (col(&lap.draws), col(&nuts.draws));
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let sd = |v: &[f64]| {
            let m = mean(v);
            (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
        };
        let chains: Vec<Vec<f64>> = n.chunks(500).map(<[f64]>::to_vec).collect();
        let mcse = mcse_mean(&chains);
        let (ml, mn, sl, sn) = (mean(&l), mean(&n), sd(&l), sd(&n));
        let expected = if names[j] == "sigma" {
            let (p, nobs) = (names.len() as f64, nuts.model.n_fit as f64);
            -0.5 * (1.0 - p / nobs).ln()
        } else {
            0.0
        };
        let gap = (mn - ml - expected).abs();
        worst = worst.max(gap / sn);
        eprintln!(
            "{:24} NUTS {mn:9.4} ± {sn:.4} (MCSE {mcse:.4})  Laplace {ml:9.4} ± {sl:.4}  gap {:.2} sd",
            names[j],
            gap / sn
        );
        assert!(gap < 4.0 * mcse + 0.3 * sn, "{}: means {mn} vs {ml} (sd {sn}, MCSE {mcse})", names[j]);
        assert!((sl / sn - 1.0).abs() < 0.25, "{}: sds {sn} (NUTS) vs {sl} (Laplace)", names[j]);
    }
    eprintln!("largest mean gap {worst:.2} posterior sd");
}
