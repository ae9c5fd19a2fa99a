//! Invariants of the analysis: fitted = baseline + Σ contributions in every period, inside its own
//! 90 % band; the response
//! curve at today's spend is ROI × spend; with a concave response (logistic saturation) the marginal
//! ROI is below the average ROI and the curve is increasing and concave; a holdout gets its own
//! metrics.

use mmloop_mmm::model::simulate::{SimOptions, simulate};
use mmloop_mmm::spec::FitMethod;

#[test]
fn analysis_is_internally_consistent() {
    let sim = simulate(&SimOptions { n_times: 90, seed: 4, ..Default::default() }).unwrap();
    let mut spec = sim.spec.clone();
    spec.fit.method = FitMethod::Laplace;
    spec.fit.chains = 1;
    spec.fit.draws = 150; // ≤ CURVE_MAX_DRAWS: curves use exactly the same draws as the ROI
    spec.holdout = 10;
    let res = mmloop_mmm::fit::fit(&spec, &sim.data).unwrap();
    let an = mmloop_mmm::fit::analyse_fit(&res, &sim.data);
    // 1e-9 relative: the same sums in a different order
    for r in &an.periods {
        let s = r.baseline + r.contributions.iter().sum::<f64>();
        assert!((s - r.fitted).abs() < 1e-9 * r.fitted.abs(), "{}: {s} vs {}", r.time, r.fitted);
        // the fitted band is the 5 %/95 % quantiles of the same per-draw totals whose mean is `fitted`
        // (150 draws of a unimodal posterior: the mean lies inside its own 90 % interval)
        assert!(
            r.fitted_q05 < r.fitted && r.fitted < r.fitted_q95,
            "{}: {} {} {}",
            r.time,
            r.fitted_q05,
            r.fitted,
            r.fitted_q95
        );
    }
    assert_eq!(an.periods.iter().filter(|r| r.holdout).count(), 10);
    let h = an.fit.holdout.expect("holdout metrics");
    assert_eq!(h.n, 10);
    assert!(h.r2.is_finite() && an.fit.in_sample.r2 > 0.5, "{:?}", an.fit);
    for (c, ch) in an.channels.iter().enumerate() {
        let curve = &an.response_curves[c];
        let at1 = curve.points.iter().find(|p| p.multiplier == 1.0).unwrap();
        assert!((at1.response.mean - ch.roi.mean * ch.spend).abs() < 1e-9 * at1.response.mean.abs());
        assert!(ch.mroi.mean < ch.roi.mean, "{}: mROI {:?} ROI {:?}", ch.name, ch.mroi, ch.roi);
        let v: Vec<f64> = curve.points.iter().map(|p| p.response.mean).collect();
        assert_eq!(v[0], 0.0);
        for w in v.windows(3) {
            assert!(w[1] > w[0] && w[2] - w[1] < w[1] - w[0], "not increasing and concave: {v:?}");
        }
        // cost per KPI is spend / contribution draw by draw, so its mean is at least spend / mean
        assert!(ch.cost_per_kpi.mean >= ch.spend / ch.contribution.mean * (1.0 - 1e-12));
    }
}

/// The analysis sums per-draw figures across threads in fixed blocks: one thread or three give the
/// same analysis, bit for bit.
#[test]
fn analysis_does_not_depend_on_the_thread_count() {
    let sim = simulate(&SimOptions { n_geos: 3, n_times: 40, tau: 0.1, seed: 7, ..Default::default() }).unwrap();
    let mut spec = sim.spec.clone();
    spec.fit.method = FitMethod::Laplace;
    spec.fit.chains = 1;
    spec.fit.draws = 150; // more than two blocks of 64 draws
    let res = mmloop_mmm::fit::fit(&spec, &sim.data).unwrap();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| mmloop_mmm::fit::analyse_fit(&res, &sim.data))
    };
    assert_eq!(run(1), run(3));
}

/// The channels-only analysis (what the loop's simulator reads) is the full analysis' channel
/// block, bit for bit: one per-draw pass, one summary, two callers.
#[test]
fn the_channels_only_analysis_equals_the_full_analysis_channels() {
    let sim = simulate(&SimOptions { n_geos: 3, n_times: 40, tau: 0.1, seed: 7, ..Default::default() }).unwrap();
    let mut spec = sim.spec.clone();
    spec.fit.method = FitMethod::Laplace;
    spec.fit.chains = 1;
    spec.fit.draws = 100;
    let res = mmloop_mmm::fit::fit(&spec, &sim.data).unwrap();
    let full = mmloop_mmm::fit::analyse_checked(&res, &sim.data).unwrap();
    let only = mmloop_mmm::fit::analyse_channels_checked(&res, &sim.data).unwrap();
    assert_eq!(only, full.channels);
}
