//! Brute-force proof of EVOI by reweighting (issue 12): on the national demo MMM (3 channels,
//! simulated data, Laplace fit), the EVOI of candidate tests computed by reweighting the posterior
//! draws agrees within 15 % with a brute-force preposterior that refits the model on each readout,
//! and ranks the candidates the same way.
//!
//! Measured (Laplace, 1000 draws, ±90 % bounds, go-dark 4 weeks per channel, σ = the lift's sd):
//! reweighting 120.6 / 1912.6 / 3070.5 KPI against brute force 56.7 / 1109.3 / 2691.2 for tv /
//! search / social — the ranking agrees, the 15 % bound does not hold for tv and search. Per
//! readout, the reweighted and refitted posteriors agree on the test's lift to 1–2 %, and the gains
//! agree for readouts below the lift's mean, but above it the reweighted posterior moves the
//! allocation about twice as far as the refit does: the reweighted Laplace draws and the Laplace
//! fit of the updated posterior differ in the parameters correlated with the lift.
//!
//! Brute force: for each readout y of a test (the same quadrature grid over y the reweighting
//! integrates on, [`readout_quadrature`]), the model is refitted by Laplace with the readout added
//! as a lift-test term (the test's own [`build_term`], observed = y, standard error = σ — exactly how
//! a calibration record enters a fit); the budget is re-optimised on the refit's response curves,
//! and the readout's gain is E_refit[v(a*(y)) − v(a₀)]. EVOI = Σ_y weight(y)·gain(y).

use mmloop_loop::value::{
    BudgetDecision, DEFAULT_NODES, EvoiSettings, PriorOptimum, TestSignal, ValueUnit, evoi, readout_quadrature,
};
use mmloop_mmm::Dataset;
use mmloop_mmm::config::load_config;
use mmloop_mmm::fit::{FitResult, from_posterior};
use mmloop_mmm::optimize::{
    FittedModel, Goal, OutcomeUnit, PlanningBasis, Risk, SolverSettings, optimize, outcome_draws, relative_bounds,
};
use mmloop_mmm::pricing::{HypotheticalTest, SpendChange, build_term, price_test};
use mmloop_mmm::spec::{FitMethod, ModelSpec};
use std::path::Path;

const HORIZON: usize = 13;
/// Readout grid spacing in σ for both computations (≈ 20 readouts, so ≈ 20 refits per test).
const SPACING: f64 = 1.0;

fn laplace_settings(spec: &ModelSpec, model: &mmloop_mmm::model::MmmModel) -> mmloop_inference::LaplaceSettings {
    // the fit's own Laplace settings (crates/mmm/src/fit.rs)
    mmloop_inference::LaplaceSettings {
        starts: spec.fit.laplace_starts.max(1),
        init: mmloop_inference::Init::Around { center: model.initial_point(), radius: 1.0 },
        seed: spec.fit.seed,
        draws: spec.fit.chains.saturating_mul(spec.fit.draws).max(1),
        grad_tol: 1e-5,
        ..Default::default()
    }
}

#[test]
#[ignore = "48 Laplace refits, ~6 min; FAILS today on the 15 % bound: reweighting/brute force = 2.13 (tv), 1.72 \
            (search), 1.14 (social), ranking agrees; run with: \
            cargo test -p mmloop-loop --test value_bruteforce -- --ignored --nocapture"]
fn evoi_by_reweighting_agrees_with_a_brute_force_preposterior_that_refits() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut spec = load_config(root.join("data/demo_national.toml")).unwrap();
    spec.fit.method = FitMethod::Laplace;
    spec.fit.laplace_starts = 1;
    spec.fit.chains = 1;
    spec.fit.draws = 1000;
    spec.data.path = std::fs::canonicalize(&spec.data.path).unwrap();
    let data = Dataset::load(&spec).unwrap();
    let result = mmloop_mmm::fit::fit(&spec, &data).unwrap();
    let fit = FittedModel::from_fit(&spec, &data, &result).unwrap();

    let basis = PlanningBasis::new(&fit, HORIZON, OutcomeUnit::Kpi).unwrap();
    let curves = basis.curves(&fit, false).unwrap();
    // ±90 % of current spend: wide enough that readouts in the bulk of the predictive move the
    // allocation (at ±30 % the decision sits at its bounds and EVOI is a tail effect of a few draws)
    let bounds = relative_bounds(&basis, 0.9, &[]).unwrap();
    let budget: f64 = basis.current.iter().sum();
    let settings = SolverSettings::default();
    let problem = BudgetDecision { curves: &curves, bounds: bounds.clone(), budget, unit: ValueUnit::Kpi, settings };
    let fast = problem.separable(DEFAULT_NODES).unwrap();
    let prior = PriorOptimum::new(&problem).unwrap();
    let a0 = prior.action.clone();

    // go dark for 4 weeks on each channel, starting 2 weeks after the data, read out with σ equal to
    // the implied lift's posterior sd (EIG ½·ln 2 each: the ranking is by decision relevance)
    let n = fit.model.n_times;
    let channels: Vec<String> = fit.model.channels.iter().map(|c| c.name.clone()).collect();
    let mut rows = Vec::new();
    for (i, ch) in channels.iter().enumerate() {
        let test = HypotheticalTest::new(&[ch.as_str()], &[], n + 2, n + 6, SpendChange::Multiplier(0.0));
        let lift = price_test(&fit, &test).unwrap();
        let sigma = lift.sd;
        let signal = TestSignal::new(i as u64, format!("go-dark {ch}"), lift.per_draw.clone(), sigma);
        let ev_settings = EvoiSettings { quadrature_spacing: SPACING, ..Default::default() };
        let rw = evoi(&fast, &prior, &[&signal], &ev_settings).unwrap();

        let (term, _) = build_term(&fit, &test).unwrap();
        let nodes = readout_quadrature(&signal, SPACING, ev_settings.seed);
        let mut brute = 0.0;
        let mut skipped = 0.0;
        for (y, w) in &nodes {
            if *w < 1e-5 {
                // far-tail readouts (the Laplace refit can fail there); their mass is reported
                skipped += w;
                continue;
            }
            let mut model = result.model.clone();
            let mut t = term.clone();
            t.index = model.lift.len() + 1;
            t.observed = *y;
            t.standard_error = sigma;
            model.lift.push(t);
            let post = mmloop_inference::laplace(&model, &laplace_settings(&spec, &model)).unwrap();
            let (draws, diagnostics) = from_posterior(&model, &post);
            let refit = FitResult { model, draws, method: FitMethod::Laplace, diagnostics, sample_stats: Vec::new() };
            let fit_y = FittedModel::from_fit(&spec, &data, &refit).unwrap();
            let curves_y =
                PlanningBasis::new(&fit_y, HORIZON, OutcomeUnit::Kpi).unwrap().curves(&fit_y, false).unwrap();
            let a = optimize(&curves_y, None, Risk::Mean, &bounds, Goal::Budget(budget), Some(&a0), settings)
                .unwrap()
                .spend;
            let (va, v0) = (outcome_draws(&curves_y, &a), outcome_draws(&curves_y, &a0));
            let gain = va.iter().zip(&v0).map(|(x, z)| x - z).sum::<f64>() / va.len() as f64;
            brute += w * gain.max(0.0);
        }
        eprintln!(
            "{}: lift {:.1} ± {:.1} (σ {sigma:.1}); EVOI by reweighting {:.3} ({:?}, k̂ max {:.2}, ESS min {:.0}), \
             brute force {brute:.3} over {} refits (readout mass skipped {skipped:.1e}): ratio {:.3}",
            signal.name,
            lift.mean,
            lift.sd,
            rw.evoi,
            rw.estimator,
            rw.k_hat_max,
            rw.ess_min,
            nodes.iter().filter(|(_, w)| *w >= 1e-5).count(),
            rw.evoi / brute
        );
        rows.push((signal.name.clone(), rw.evoi, brute));
    }
    let order = |k: usize| {
        let mut idx: Vec<usize> = (0..rows.len()).collect();
        idx.sort_by(|&a, &b| if k == 1 { rows[b].1.total_cmp(&rows[a].1) } else { rows[b].2.total_cmp(&rows[a].2) });
        idx
    };
    assert_eq!(order(1), order(2), "the rankings differ: {rows:?}");
    for (name, rw, brute) in &rows {
        assert!((rw - brute).abs() <= 0.15 * brute, "{name}: reweighting {rw} vs brute force {brute}");
    }
}
