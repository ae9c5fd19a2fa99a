//! Parameter recovery on data simulated from the model itself (`model::simulate`): over a batch of
//! simulations the 90 % posterior intervals of the channels' ROIs must cover the true ROIs at about
//! the nominal rate.
//!
//! Tolerances are binomial: with n intervals each covering with probability 0.9, the number that
//! cover is ~Binomial(n, 0.9) (intervals of the two channels of one simulation are mildly dependent,
//! which widens the spread a little). We fail when the count is below the 0.5 % quantile of that
//! binomial (computed below) — a well-calibrated fit fails this about once in 200 runs of a fresh
//! seed set, and the seeds are fixed. A badly calibrated posterior (intervals too narrow by half)
//! covers ~60 % and fails for sure.
//!
//! The suite's batches use quick Laplace fits (1000 draws); the larger batch (also NUTS) runs with
//! `cargo test -p mmloop-mmm --test recovery -- --ignored`.

use mmloop_mmm::model::simulate::{SimOptions, simulate};
use mmloop_mmm::spec::FitMethod;

/// The largest k with P(Binomial(n, p) < k) ≤ alpha: fewer than k successes is rejected.
fn binomial_lower_bound(n: usize, p: f64, alpha: f64) -> usize {
    let mut cdf = 0.0;
    for k in 0..=n {
        let lchoose: f64 = (1..=k).map(|i| ((n - k + i) as f64 / i as f64).ln()).sum();
        let pk = (lchoose + k as f64 * p.ln() + (n - k) as f64 * (1.0 - p).ln()).exp();
        if cdf + pk > alpha {
            return k;
        }
        cdf += pk;
    }
    n
}

/// Returns (covered, total) over the batch.
fn coverage(n_sims: usize, base: SimOptions, seed0: u64, method: FitMethod) -> (usize, usize) {
    let mut covered = 0;
    let mut total = 0;
    for s in 0..n_sims {
        let opts = SimOptions { seed: seed0 + s as u64, ..base.clone() };
        let sim = simulate(&opts).expect("simulates");
        let mut spec = sim.spec.clone();
        spec.fit.method = method;
        (spec.fit.chains, spec.fit.tune, spec.fit.draws) = match method {
            FitMethod::Nuts => (2, 300, 300),
            FitMethod::Laplace => (1, 0, 1000),
        };
        spec.fit.seed = 1000 + s as u64;
        let res = mmloop_mmm::fit::fit(&spec, &sim.data).expect("fits");
        let an = mmloop_mmm::fit::analyse_fit(&res, &sim.data);
        for (c, ch) in an.channels.iter().enumerate() {
            let t = sim.true_roi[c];
            let hit = ch.roi.q05 <= t && t <= ch.roi.q95;
            eprintln!(
                "sim {s} {}: true ROI {t:.4}, posterior {:.4} [{:.4}, {:.4}] {}",
                ch.name,
                ch.roi.mean,
                ch.roi.q05,
                ch.roi.q95,
                if hit { "" } else { "MISS" }
            );
            covered += hit as usize;
            total += 1;
        }
    }
    (covered, total)
}

#[test]
fn binomial_bound_is_right() {
    // P(Bin(40, 0.9) ≤ 30) = 0.0051 > 0.005 ≥ P(≤ 29) = 0.0015: reject below 30
    assert_eq!(binomial_lower_bound(40, 0.9, 0.005), 30);
    assert_eq!(binomial_lower_bound(10, 0.5, 0.0), 0);
}

#[test]
fn national_roi_intervals_cover_the_truth_at_the_nominal_rate() {
    let base = SimOptions { n_geos: 1, n_times: 104, sigma: 0.05, ..Default::default() };
    let (covered, total) = coverage(20, base, 100, FitMethod::Laplace);
    let min = binomial_lower_bound(total, 0.9, 0.005);
    eprintln!("national coverage {covered}/{total} (reject below {min})");
    assert!(covered >= min, "90% intervals covered {covered}/{total}, below {min}");
}

#[test]
fn geo_roi_intervals_cover_the_truth_at_the_nominal_rate() {
    let base = SimOptions { n_geos: 10, n_times: 78, sigma: 0.08, tau: 0.3, ..Default::default() };
    let (covered, total) = coverage(10, base, 500, FitMethod::Laplace);
    let min = binomial_lower_bound(total, 0.9, 0.005);
    eprintln!("geo coverage {covered}/{total} (reject below {min})");
    assert!(covered >= min, "90% intervals covered {covered}/{total}, below {min}");
}

/// The larger batch: 100 national and 30 geo simulations by Laplace, 20 geo simulations by NUTS.
/// Last run (210 s): national Laplace 171/200 (85.5 %, mildly below nominal), geo Laplace 60/60
/// (conservative), geo NUTS 36/40 (90 %).
#[test]
#[ignore = "heavy (~4 min): cargo test -p mmloop-mmm --test recovery -- --ignored --nocapture"]
fn roi_coverage_large_batch() {
    let (c1, t1) =
        coverage(100, SimOptions { n_geos: 1, n_times: 104, ..Default::default() }, 10_000, FitMethod::Laplace);
    let geo = SimOptions { n_geos: 12, n_times: 104, tau: 0.3, ..Default::default() };
    let (c2, t2) = coverage(30, geo.clone(), 20_000, FitMethod::Laplace);
    let (c3, t3) = coverage(20, geo, 30_000, FitMethod::Nuts);
    eprintln!("NUTS geo {c3}/{t3}");
    assert!(c3 >= binomial_lower_bound(t3, 0.9, 0.005));
    eprintln!("national {c1}/{t1}, geo {c2}/{t2}");
    assert!(c1 >= binomial_lower_bound(t1, 0.9, 0.005));
    assert!(c2 >= binomial_lower_bound(t2, 0.9, 0.005));
}
