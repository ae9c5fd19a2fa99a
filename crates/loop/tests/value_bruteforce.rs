//! Brute-force proof of EVOI by reweighting (issue 12): on the national demo MMM (3 channels,
//! simulated data), the EVOI of candidate tests computed by reweighting the posterior draws agrees
//! with a brute-force preposterior that refits the model on each readout, within the Monte-Carlo
//! error of both sides, and ranks the candidates the same way.
//!
//! **Brute force.** For each readout y of a test (the same quadrature grid over y the reweighting
//! integrates on, [`readout_quadrature`]), the model is refitted with the readout added as a
//! lift-test term (the test's own [`build_term`], observed = y, standard error = σ — exactly how a
//! calibration record enters a fit); the budget is re-optimised on the refit's response curves,
//! and the readout's gain is E_refit[v(a*(y)) − v(a₀)]. EVOI = Σ_y weight(y)·gain(y).
//!
//! **Why the refit is NUTS, not Laplace.** The first version refitted by Laplace on a Laplace
//! base fit and disagreed by 2.13 / 1.72 / 1.14 (tv / search / social). The cause is the Laplace
//! refit, not the estimator (measured on tv, the readout 2σ above the lift's mean, σ = the lift's
//! sd): the reweighted Laplace draws give the lift −33 927 ± 1 658 — the conjugate update of
//! −36 271 ± 2 504 by a readout of that precision has sd 1 770, so the information went in —
//! while the Laplace refit gives −34 345 ± 2 096: the Gaussian at the refit's mode keeps most of
//! the prior's spread of the lift, because the lift is strongly non-linear in the Hill parameters
//! (the draws' lift is a curved function of a Gaussian, and the tangent Gaussian of the updated
//! posterior does not follow the curve), so it moves the parameters correlated with the lift (and
//! the allocation) only about half as far. The optimisers are not at fault (the separable solver
//! and the general one agree on every readout to < 2 KPI of value), nor are the weights (k̂ < 0.7
//! and ESS > 180 of 1000 within ±3σ). With NUTS on both sides, at the same readout, the
//! reweighted NUTS draws give −33 674 ± 1 659 and the NUTS refit −33 519 ± 1 656, and the
//! parameter means agree to a few per cent. So both sides here are NUTS: the base posterior's draws
//! are reweighted, and each readout's refit is sampled with the same settings.
//!
//! **Tolerance.** Both sides are Monte-Carlo estimates. The brute force's error is that of each
//! refit's mean gain (MCSE over its chains, [`mcse_mean`]), independent across readouts:
//! se_bf² = Σ_y weight(y)²·mcse_y². The reweighting's error comes from the finite base draws: a
//! delete-one-batch jackknife over the base posterior's 8 half-chains (each re-run of the whole
//! estimator: prior optimum, pricing, readout grid, weights). The quadrature's own error is common
//! to both sides (same readouts). The test asserts |rw − bf| ≤ 3·√(se_rw² + se_bf²) for every
//! candidate, and the ranking must agree.
//!
//! **Measured** (2026-11-30, load ≈ 9, 12.8 min; NUTS 4 × (500 + 1000), σ = the lift's sd, ±90 %
//! bounds, 13-week horizon, KPI units):
//!
//! | go-dark | reweighting (jackknife se) | brute force (se), refits | ratio | difference |
//! |---|---|---|---|---|
//! | tv | 2.90 (1.48) | 12.78 (9.98), 11 | 0.23 | −0.98 se |
//! | search | 847.4 (111.5) | 985.0 (68.6), 19 | 0.86 | −1.05 se |
//! | social | 1677.2 (159.1) | 1741.3 (57.1), 20 | 0.96 | −0.38 se |
//!
//! The ranking agrees. tv sits at its upper bound under the NUTS posterior, so its EVOI is ~0 on both
//! sides (the brute force's 12.8 is mostly the optimiser's curse on 4000 noisy draws). The issue's
//! 15 % is met by the point estimates of search and social, but the combined Monte-Carlo error of a
//! ratio is ±8–13 % here: this test can resolve a disagreement of about 30 % (3 se), not 15 %; more
//! base draws shrink the reweighting's error as 1/√N.
//!
//! **What resolving 15 % would take** (worked out from the figures above, not run). The ratio
//! r = rw/bf has standard error r·√((se_rw/rw)² + (se_bf/bf)²): search 0.86·√(0.132² + 0.070²) =
//! 0.128, social 0.96·√(0.095² + 0.033²) = 0.096. Resolving a 15 % disagreement at 3 se needs a
//! ratio se ≤ 0.05, i.e. a combined relative error ≤ 5.8 % (search) and 5.2 % (social). Both
//! errors fall as 1/√(draws) — the reweighting's with the base posterior's draws, the brute
//! force's with each refit's — and the brute force's alone is 7.0 % for search, so more base draws
//! cannot do it on their own: both sides need (14.9/5.8)² ≈ 6.6× the draws (social (10.0/5.2)² ≈
//! 3.7×), 4 × 7000 for the base fit and for each of the ~50 refits. NUTS time goes as
//! tune + draws, (500 + 7000)/(500 + 1000) = 5× per fit, and the jackknife's 24 re-rankings as the
//! draws, 7×: about 65–90 min on this shared 2-core machine against 12.8 min today — not practical
//! for a test run by hand, so the test keeps its 3-se criterion and records the point ratios
//! (0.86, 0.96) without asserting them. A 2-se criterion (one test in twenty flags a true
//! agreement) would need ≈ 2.9× the draws (search; social 1.6×), ≈ 30–40 min.

use mmloop_inference::diagnostics::mcse_mean;
use mmloop_loop::value::{
    BudgetDecision, DEFAULT_NODES, DecisionProblem, EvoiSettings, PriorOptimum, TestSignal, ValueUnit, evoi,
    readout_quadrature,
};
use mmloop_mmm::Dataset;
use mmloop_mmm::config::load_config;
use mmloop_mmm::fit::{FitResult, from_posterior, nuts_settings};
use mmloop_mmm::optimize::{FittedModel, OutcomeUnit, PlanningBasis, SolverSettings, relative_bounds};
use mmloop_mmm::pricing::{HypotheticalTest, SpendChange, build_term, price_test};
use mmloop_mmm::spec::{FitMethod, ModelSpec};
use std::path::Path;

const HORIZON: usize = 13;
/// Readout grid spacing in σ for both computations.
const SPACING: f64 = 1.0;
/// Shifted readout grids, the same for both computations (one: every node is a refit).
const REPLICATES: usize = 1;
/// Readouts whose quadrature weight is below this are not refitted (their mass is reported).
const MIN_WEIGHT: f64 = 1e-4;
const CHAINS: usize = 4;
const DRAWS: usize = 1000;

fn spec() -> ModelSpec {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut spec = load_config(root.join("data/demo_national.toml")).unwrap();
    spec.fit.method = FitMethod::Nuts;
    spec.fit.chains = CHAINS;
    spec.fit.tune = 500;
    spec.fit.draws = DRAWS;
    spec.data.path = std::fs::canonicalize(&spec.data.path).unwrap();
    spec
}

/// The reweighting EVOI of one go-dark test on a fit (or on a subset of its draws): the
/// estimator under test, end to end. Returns (EVOI, the signal, k̂ max, ESS min).
fn reweighting(fit: &FittedModel, test: &HypotheticalTest, id: u64) -> (f64, TestSignal, f64, f64) {
    let basis = PlanningBasis::new(fit, HORIZON, OutcomeUnit::Kpi).unwrap();
    let curves = basis.curves(fit, false).unwrap();
    let bounds = relative_bounds(&basis, 0.9, &[]).unwrap();
    let budget: f64 = basis.current.iter().sum();
    let problem =
        BudgetDecision { curves: &curves, bounds, budget, unit: ValueUnit::Kpi, settings: SolverSettings::default() };
    let fast = problem.separable(DEFAULT_NODES).unwrap();
    let prior = PriorOptimum::new(&fast).unwrap();
    let lift = price_test(fit, test).unwrap();
    let signal = TestSignal::new(id, format!("go-dark {}", test.channels[0]), lift.per_draw.clone(), lift.sd);
    let settings =
        EvoiSettings { quadrature_spacing: SPACING, quadrature_replicates: REPLICATES, ..Default::default() };
    let rw = evoi(&fast, &prior, &[&signal], &settings).unwrap();
    (rw.evoi, signal, rw.k_hat_max, rw.ess_min)
}

#[test]
#[ignore = "NUTS: 1 base fit + 50 refits + 24 jackknife rankings, ~13 min under load; run with: \
            cargo test -p mmloop-loop --test value_bruteforce -- --ignored --nocapture evoi_by"]
fn evoi_by_reweighting_agrees_with_a_brute_force_preposterior_that_refits() {
    let spec = spec();
    let data = Dataset::load(&spec).unwrap();
    let result = mmloop_mmm::fit::fit(&spec, &data).unwrap();
    let fit = FittedModel::from_fit(&spec, &data, &result).unwrap();
    let n_draws = fit.draws.len();
    assert_eq!(n_draws, CHAINS * DRAWS);

    let basis = PlanningBasis::new(&fit, HORIZON, OutcomeUnit::Kpi).unwrap();
    // ±90 % of current spend: wide enough that readouts in the bulk of the predictive move the
    // allocation (at ±30 % the decision sits at its bounds and EVOI is a tail effect of a few draws)
    let bounds = relative_bounds(&basis, 0.9, &[]).unwrap();
    let budget: f64 = basis.current.iter().sum();
    let curves = basis.curves(&fit, false).unwrap();
    let base = BudgetDecision {
        curves: &curves,
        bounds: bounds.clone(),
        budget,
        unit: ValueUnit::Kpi,
        settings: SolverSettings::default(),
    };
    let a0 = PriorOptimum::new(&base.separable(DEFAULT_NODES).unwrap()).unwrap().action;

    // the reweighting's batches: the 8 half-chains of the base posterior
    let n_batches = 2 * CHAINS;
    let batch_of = |d: usize| d / (n_draws / n_batches);

    let n = fit.model.n_times;
    let channels: Vec<String> = fit.model.channels.iter().map(|c| c.name.clone()).collect();
    let mut rows = Vec::new();
    for (i, ch) in channels.iter().enumerate() {
        // go dark for 4 weeks, starting 2 weeks after the data, read out with σ equal to the
        // implied lift's posterior sd (EIG ½·ln 2 each: the ranking is by decision relevance)
        let test = HypotheticalTest::new(&[ch.as_str()], &[], n + 2, n + 6, SpendChange::Multiplier(0.0));
        let (rw, signal, k_max, ess_min) = reweighting(&fit, &test, i as u64);
        let sigma = signal.sigma;
        // delete-one-batch jackknife of the whole estimator
        let jack: Vec<f64> = (0..n_batches)
            .map(|b| {
                let sub = FittedModel {
                    draws: fit
                        .draws
                        .iter()
                        .enumerate()
                        .filter(|(d, _)| batch_of(*d) != b)
                        .map(|(_, p)| p.clone())
                        .collect(),
                    ..fit.clone()
                };
                reweighting(&sub, &test, i as u64).0
            })
            .collect();
        let jm = jack.iter().sum::<f64>() / n_batches as f64;
        let se_rw =
            ((n_batches - 1) as f64 / n_batches as f64 * jack.iter().map(|j| (j - jm).powi(2)).sum::<f64>()).sqrt();

        let (term, _) = build_term(&fit, &test).unwrap();
        let nodes = readout_quadrature(&signal, SPACING, EvoiSettings::default().seed, REPLICATES);
        let (mut brute, mut var_bf, mut skipped, mut refits) = (0.0, 0.0, 0.0, 0);
        for (y, w) in &nodes {
            if *w < MIN_WEIGHT {
                skipped += w;
                continue;
            }
            let mut model = result.model.clone();
            let mut t = term.clone();
            t.index = model.lift.len() + 1;
            t.observed = *y;
            t.standard_error = sigma;
            model.lift.push(t);
            let mut settings = nuts_settings(&model, &spec);
            settings.quiet = true;
            let post = mmloop_inference::sample_nuts(&model, &settings).unwrap();
            let (draws, diagnostics) = from_posterior(&model, &post);
            let refit =
                FitResult { model, draws, method: FitMethod::Nuts, diagnostics, sample_stats: Vec::new(), mode: None };
            let fit_y = FittedModel::from_fit(&spec, &data, &refit).unwrap();
            let curves_y =
                PlanningBasis::new(&fit_y, HORIZON, OutcomeUnit::Kpi).unwrap().curves(&fit_y, false).unwrap();
            let problem_y = BudgetDecision {
                curves: &curves_y,
                bounds: bounds.clone(),
                budget,
                unit: ValueUnit::Kpi,
                settings: SolverSettings::default(),
            };
            // the separable solver is global on S-shaped curves (the general optimiser can stop at a
            // local optimum); the two agree on every readout here where both find the optimum
            let a = problem_y.separable(DEFAULT_NODES).unwrap().best_action(None, Some(&a0)).unwrap();
            let (mut va, mut v0) = (vec![0.0; fit_y.draws.len()], vec![0.0; fit_y.draws.len()]);
            problem_y.draw_values(&a, &mut va);
            problem_y.draw_values(&a0, &mut v0);
            let diff: Vec<f64> = va.iter().zip(&v0).map(|(x, z)| x - z).collect();
            let chains: Vec<&[f64]> = diff.chunks(DRAWS).collect();
            let gain = diff.iter().sum::<f64>() / diff.len() as f64;
            brute += w * gain;
            var_bf += (w * mcse_mean(&chains)).powi(2);
            refits += 1;
        }
        let se_bf = var_bf.sqrt();
        let se = (se_rw.powi(2) + se_bf.powi(2)).sqrt();
        eprintln!(
            "{}: σ {sigma:.1}; EVOI by reweighting {rw:.2} ± {se_rw:.2} (jackknife; k̂ max {k_max:.2}, ESS min \
             {ess_min:.0}), brute force {brute:.2} ± {se_bf:.2} over {refits} NUTS refits (readout mass skipped \
             {skipped:.1e}): ratio {:.3}, difference {:.2} = {:.2} se",
            signal.name,
            rw / brute,
            rw - brute,
            (rw - brute) / se
        );
        rows.push((signal.name.clone(), rw, brute, se));
    }
    let order = |k: usize| {
        let mut idx: Vec<usize> = (0..rows.len()).collect();
        idx.sort_by(|&a, &b| if k == 1 { rows[b].1.total_cmp(&rows[a].1) } else { rows[b].2.total_cmp(&rows[a].2) });
        idx
    };
    assert_eq!(order(1), order(2), "the rankings differ: {rows:?}");
    for (name, rw, brute, se) in &rows {
        assert!((rw - brute).abs() <= 3.0 * se, "{name}: reweighting {rw} vs brute force {brute}, se {se}");
    }
}

/// The lift's mean and sd under normalised weights (uniform when `None`).
fn moments(x: &[f64], w: Option<&[f64]>) -> (f64, f64) {
    let n = x.len() as f64;
    let wt = |i: usize| w.map_or(1.0 / n, |w| w[i]);
    let m: f64 = x.iter().enumerate().map(|(i, v)| wt(i) * v).sum();
    let v: f64 = x.iter().enumerate().map(|(i, v)| wt(i) * (v - m).powi(2)).sum();
    (m, v.sqrt())
}

/// Why the first (Laplace) brute force disagreed: at one readout (tv, 2σ above the lift's mean),
/// the NUTS refit's posterior of the lift agrees with the reweighted NUTS draws, while the Laplace
/// refit keeps far more of the lift's spread than the information allows (its tangent Gaussian does
/// not follow the lift's curvature in the Hill parameters). Measured (NUTS 4 × 1000, Laplace 1000
/// draws): NUTS reweighted −33 575 ± 1 700 (k̂ −1.45, ESS 1766), NUTS refit −33 533 ± 1 685; Laplace
/// draws reweighted −33 927 ± 1 658 (ESS 460), Laplace refit −34 345 ± 2 096 (the conjugate update of
/// the Laplace fit's −36 271 ± 2 504 by this readout: ± 1 770). 2 min under load 10.
#[test]
#[ignore = "a NUTS and a Laplace fit and refit, ~2 min; run with: \
            cargo test -p mmloop-loop --test value_bruteforce -- --ignored --nocapture laplace_refit"]
fn laplace_refit_under_responds_where_the_nuts_refit_matches_reweighting() {
    let spec = spec();
    let data = Dataset::load(&spec).unwrap();
    let mut lspec = spec.clone();
    lspec.fit.method = FitMethod::Laplace;
    lspec.fit.laplace_starts = 1;
    lspec.fit.chains = 1;
    let n = data.n_times();
    let test = HypotheticalTest::new(&["tv"], &[], n + 2, n + 6, SpendChange::Multiplier(0.0));
    let mut sds = Vec::new();
    for s in [&spec, &lspec] {
        let result = mmloop_mmm::fit::fit(s, &data).unwrap();
        let fit = FittedModel::from_fit(s, &data, &result).unwrap();
        let lift = price_test(&fit, &test).unwrap();
        let (sigma, y) = (lift.sd, lift.mean + 2.0 * lift.sd);
        let lr: Vec<f64> = lift.per_draw.iter().map(|l| -0.5 * ((y - l) / sigma).powi(2)).collect();
        let ps = mmloop_loop::value::psis_smooth(&lr);
        let rw = moments(&lift.per_draw, Some(&ps.weights));
        let (term, _) = build_term(&fit, &test).unwrap();
        let mut model = result.model.clone();
        let mut t = term;
        t.index = model.lift.len() + 1;
        t.observed = y;
        t.standard_error = sigma;
        model.lift.push(t);
        let post = match s.fit.method {
            FitMethod::Nuts => {
                let mut st = nuts_settings(&model, s);
                st.quiet = true;
                mmloop_inference::sample_nuts(&model, &st).unwrap()
            }
            FitMethod::Laplace => {
                mmloop_inference::laplace(&model, &mmloop_mmm::fit::laplace_settings(&model, s)).unwrap()
            }
        };
        let (draws, diagnostics) = from_posterior(&model, &post);
        let refit = FitResult { model, draws, method: s.fit.method, diagnostics, sample_stats: Vec::new(), mode: None };
        let fit_y = FittedModel::from_fit(s, &data, &refit).unwrap();
        let rf = moments(&price_test(&fit_y, &test).unwrap().per_draw, None);
        // the conjugate (Gaussian) update of the lift by this readout
        let conj_sd = 1.0 / (1.0 / lift.sd.powi(2) + 1.0 / sigma.powi(2)).sqrt();
        eprintln!(
            "{:?}: lift {:.0} ± {:.0}; readout {y:.0} ± {sigma:.0}: reweighted {:.0} ± {:.0} (k̂ {:.2}, ESS {:.0}), \
             refit {:.0} ± {:.0}, conjugate sd {conj_sd:.0}",
            s.fit.method, lift.mean, lift.sd, rw.0, rw.1, ps.k_hat, ps.ess, rf.0, rf.1
        );
        sds.push((rw, rf, conj_sd));
    }
    let ((nuts_rw, nuts_rf, _), (lap_rw, lap_rf, lap_conj)) = (sds[0], sds[1]);
    // NUTS: the refit and the reweighting agree on the updated lift (MC error of a few per cent)
    assert!((nuts_rw.0 - nuts_rf.0).abs() < 0.1 * nuts_rw.1, "NUTS means {nuts_rw:?} vs {nuts_rf:?}");
    assert!((nuts_rw.1 / nuts_rf.1 - 1.0).abs() < 0.05, "NUTS sds {nuts_rw:?} vs {nuts_rf:?}");
    // Laplace: the reweighted draws take the information in (near the conjugate sd), the refit does not
    assert!((lap_rw.1 / lap_conj - 1.0).abs() < 0.15, "Laplace reweighted sd {lap_rw:?} vs conjugate {lap_conj}");
    assert!(lap_rf.1 > 1.2 * lap_rw.1, "Laplace refit sd {lap_rf:?} vs reweighted {lap_rw:?}");
}
