//! Guards around a fit: the memory estimate made before its large allocations (and the refusal it
//! drives), and the check that no analysis figure is written unless it is a finite number.

use mmloop_mmm::fit::{FitError, FitOptions, fit_with, memory_estimate};
use mmloop_mmm::model::MmmModel;
use mmloop_mmm::model::simulate::{SimOptions, simulate};
use mmloop_mmm::spec::FitMethod;

#[test]
fn a_fit_over_the_memory_limit_is_refused_before_sampling_with_what_to_do() {
    let sim = simulate(&SimOptions { n_geos: 3, n_times: 40, tau: 0.1, ..Default::default() }).unwrap();
    let mut spec = sim.spec.clone();
    spec.fit.method = FitMethod::Laplace;
    spec.fit.chains = 2;
    spec.fit.draws = 100;
    let model = MmmModel::new(&spec, &sim.data).unwrap();
    let need = memory_estimate(&model, &spec).peak;
    // a limit just below the estimate refuses, one at it passes the check (and the fit runs)
    let t = std::time::Instant::now();
    let e = fit_with(&spec, &sim.data, FitOptions { quiet: true, memory_limit: Some(need - 1) }).unwrap_err();
    assert!(t.elapsed().as_secs_f64() < 1.0, "refused before the optimiser ran");
    let FitError::Memory { needed, limit, .. } = &e else { panic!("{e}") };
    assert_eq!((*needed, *limit), (need, need - 1));
    let msg = e.to_string();
    assert!(msg.contains("the fit needs about") && msg.contains("the memory limit given"), "{msg}");
    assert!(fit_with(&spec, &sim.data, FitOptions { quiet: true, memory_limit: Some(need) }).is_ok());
}

#[test]
fn the_estimate_follows_the_buffers_it_counts() {
    let sim = simulate(&SimOptions { n_geos: 4, n_times: 30, tau: 0.1, ..Default::default() }).unwrap();
    let mut spec = sim.spec.clone();
    spec.fit.chains = 2;
    spec.fit.draws = 500;
    let model = MmmModel::new(&spec, &sim.data).unwrap();
    let p = model.params.len() as u64;
    let (g, t, c) = (4u64, 30u64, 2u64);
    let d = 1000u64;
    spec.fit.method = FitMethod::Laplace;
    let lap = memory_estimate(&model, &spec);
    // held: draws three times (as sampled, as handed on, constrained); during the analysis:
    // per-draw (C + 1)·T series and one G·T sum per block of 64 draws
    let draws = 3 * d * p * 8;
    let analysis = d * (c + 1) * t * 8 + d.div_ceil(64) * g * t * 8;
    let hessian = 3 * p * p * 8;
    assert!(lap.peak >= draws + analysis.max(hessian), "{lap:?}");
    // doubling the draws doubles the draw-proportional parts
    spec.fit.draws = 1000;
    let more = memory_estimate(&model, &spec);
    assert!(more.peak - lap.peak >= draws + analysis - hessian.min(analysis), "{lap:?} {more:?}");
    // absurd settings saturate instead of overflowing
    spec.fit.draws = usize::MAX;
    spec.fit.chains = usize::MAX;
    assert_eq!(memory_estimate(&model, &spec).peak, u64::MAX);
}

/// 10 000 geos with partial pooling: ~30 000 parameters, so a Laplace fit's P×P matrices alone
/// are ~21 GB. The estimate says so and the fit is refused at once against an 8 GB limit, where
/// before it ran for a minute and aborted on allocation.
#[test]
fn ten_thousand_geos_by_laplace_are_refused_naming_the_hessian() {
    let sim =
        simulate(&SimOptions { n_geos: 10_000, n_times: 20, max_lag: 2, tau: 0.1, ..Default::default() }).unwrap();
    let mut spec = sim.spec.clone();
    spec.fit.method = FitMethod::Laplace;
    spec.baseline.seasonality.clear();
    let t = std::time::Instant::now();
    let e = fit_with(&spec, &sim.data, FitOptions { quiet: true, memory_limit: Some(8 << 30) }).unwrap_err();
    assert!(t.elapsed().as_secs_f64() < 30.0);
    let msg = e.to_string();
    eprintln!("{msg}");
    let FitError::Memory { needed, parts, .. } = &e else { panic!("{msg}") };
    assert!(*needed > 20_000_000_000, "{msg}");
    assert!(parts[0].0.starts_with("Laplace"), "{msg}");
    assert!(msg.contains("metric = \"diag\"") && msg.contains("fewer geos"), "{msg}");
    // the advice holds: NUTS with a diagonal metric keeps the default 4 000 draws within ~3 GB (the
    // draws, ~1 GB each time they are held, and the analysis, whose fitted means are summed in
    // blocks of 64 draws instead of held per draw: 0.1 GB here instead of 6.4 GB)
    spec.fit.method = FitMethod::Nuts;
    let model = MmmModel::new(&spec, &sim.data).unwrap();
    let nuts = memory_estimate(&model, &spec);
    assert!(nuts.peak < 4_000_000_000, "{nuts:?}");
}

/// A draw whose effect overflows (β = e^800 = ∞) makes the ROI infinite: `analyse_checked`
/// refuses it naming the figure, where `summary.json` would have shown `null`.
#[test]
fn a_non_finite_analysis_figure_is_an_error_naming_it() {
    let sim = simulate(&SimOptions { n_times: 40, ..Default::default() }).unwrap();
    let mut spec = sim.spec.clone();
    spec.fit.method = FitMethod::Laplace;
    spec.fit.chains = 1;
    spec.fit.draws = 20;
    let mut res = mmloop_mmm::fit::fit(&spec, &sim.data).unwrap();
    assert!(mmloop_mmm::fit::analyse_checked(&res, &sim.data).is_ok(), "a sound fit passes");
    let beta = res.model.channels[0].effect_idx;
    res.draws.values[3][beta] = 800.0;
    res.draws.constrained[3] = res.model.constrain(&res.draws.values[3]);
    let e = mmloop_mmm::fit::analyse_checked(&res, &sim.data).unwrap_err();
    assert!(matches!(e, FitError::NonFinite { .. }), "{e}");
    let msg = e.to_string();
    let ch = &res.model.channels[0].name;
    assert!(msg.contains(&format!("of {ch:?}")) && msg.contains("not a finite number"), "{msg}");
}
