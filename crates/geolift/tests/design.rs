//! Experiment design: simulated power against the analytic power of the same test, MDE scaling,
//! agreement with the lift estimators, the GeoLift_PreTest market search, thread-count determinism,
//! and a clear error for every bad request.

use mmloop_geolift::design::{
    DesignError, DesignEstimator, DesignInference, Mde, PowerConfig, PowerCurve, PowerEngine, PowerPoint, SearchSpec,
    search, t_critical,
};
use mmloop_geolift::inference::derive_seed;
use mmloop_geolift::stats::normal_cdf;
use mmloop_geolift::{Columns, Conformal, LiftData, LiftEstimator, Panel, SyntheticControl};
use ndarray::Array2;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/datasets");

fn pretest() -> Option<Panel> {
    let path = format!("{DATA}/geo/GeoLift_PreTest.csv");
    if !std::path::Path::new(&path).exists() {
        eprintln!("SKIPPED: {path} not found");
        return None;
    }
    Some(Panel::read(&path, &Columns::default()).expect("GeoLift_PreTest loads"))
}

/// A panel with constant geo levels `mu` and iid N(0, σ²) noise (no time effects), seeded.
fn iid_panel(n: usize, t: usize, mu: f64, sigma: f64, seed: u64) -> Array2<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let nd = Normal::new(0.0, sigma).unwrap();
    Array2::from_shape_fn((n, t), |_| mu + nd.sample(&mut rng))
}

/// Analytic power of the DiD t test used by `DesignInference::Normal` on the iid panel.
///
/// With k treated and n₀ control geos at level μ, noise sd σ, T₀ pre and d test periods, and the
/// effect injected multiplicatively (treated test-window values × (1 + e)), the DiD estimate
/// τ̂ = (1+e)·x̄₁,post − x̄₀,post − (x̄₁,pre − x̄₀,pre) is normal with mean e·μ and variance
/// V_e = σ²[(1+e)²/(k d) + 1/(n₀ d) + 1/(k T₀) + 1/(n₀ T₀)]. The test rejects when
/// |τ̂| > c·ŝ_g·r, r = √(1/d + 1/T₀), c = t_{1−α/2, T₀−1}, where ŝ²_g, the pre-period sample variance
/// of the gap, is σ²_g·χ²_ν/ν with σ²_g = σ²(1/k + 1/n₀), ν = T₀ − 1, independent of τ̂ (normal
/// sample variance vs the sample means and the test window). So
/// power(e) = E_V[Φ((eμ − c r σ_g √(V/ν))/√V_e) + Φ((−eμ − c r σ_g √(V/ν))/√V_e)], V ~ χ²_ν,
/// integrated here by Simpson's rule on the χ² density (normalised by the same rule); at e = 0 it is α.
/// For ν → ∞ this is the textbook Φ(δ/se − z) + Φ(−δ/se − z) with se = √V_e.
#[allow(clippy::too_many_arguments)]
fn analytic_power(e: f64, k: f64, n0: f64, mu: f64, sigma: f64, t0: usize, d: usize, alpha: f64) -> f64 {
    let (t0f, df) = (t0 as f64, d as f64);
    let nu = t0f - 1.0;
    let c = t_critical(alpha, nu);
    let r = (1.0 / df + 1.0 / t0f).sqrt();
    let sg = sigma * (1.0 / k + 1.0 / n0).sqrt();
    let ve = sigma * sigma * ((1.0 + e).powi(2) / (k * df) + 1.0 / (n0 * df) + 1.0 / (k * t0f) + 1.0 / (n0 * t0f));
    let sv = ve.sqrt();
    let m = 4000;
    let hi = nu + 14.0 * (2.0 * nu).sqrt();
    let h = hi / m as f64;
    let (mut num, mut den) = (0.0, 0.0);
    for i in 0..=m {
        let v = i as f64 * h;
        let wgt = if i == 0 || i == m {
            1.0
        } else if i % 2 == 1 {
            4.0
        } else {
            2.0
        };
        let dens = if v == 0.0 { 0.0 } else { ((nu / 2.0 - 1.0) * v.ln() - v / 2.0).exp() };
        let thr = c * r * sg * (v / nu).sqrt();
        let p = normal_cdf((e * mu - thr) / sv) + normal_cdf((-e * mu - thr) / sv);
        num += wgt * dens * p;
        den += wgt * dens;
    }
    num / den
}

/// Runs `reps` independent iid panels with one window each and pools the detections per effect.
#[allow(clippy::too_many_arguments)]
fn simulated_power(
    reps: usize,
    n: usize,
    k: usize,
    t0: usize,
    d: usize,
    mu: f64,
    sigma: f64,
    effects: &[f64],
) -> Vec<f64> {
    let cfg = PowerConfig {
        estimator: DesignEstimator::DiD,
        inference: DesignInference::Normal,
        windows: 1,
        min_pre: t0,
        effects: effects.to_vec(),
        ..Default::default()
    };
    let treated: Vec<usize> = (0..k).collect();
    let donors: Vec<usize> = (k..n).collect();
    let hits: Vec<Vec<f64>> = (0..reps)
        .into_par_iter()
        .map(|r| {
            let y = iid_panel(n, t0 + d, mu, sigma, derive_seed(7, 99, r as u64));
            let eng = PowerEngine::new(y.view(), &cfg).unwrap();
            eng.power_curve(&treated, &donors, d).unwrap().points.iter().map(|p| p.power).collect()
        })
        .collect();
    (0..effects.len()).map(|i| hits.iter().map(|h| h[i]).sum::<f64>() / reps as f64).collect()
}

#[test]
fn did_power_curve_matches_analytic_power_within_monte_carlo_error() {
    let (reps, n, k, t0, d, mu, sigma) = (2000, 10, 2, 40, 10, 100.0, 10.0);
    let effects: Vec<f64> = (0..=12).map(|i| i as f64 * 0.01).collect();
    let sim = simulated_power(reps, n, k, t0, d, mu, sigma, &effects);
    for (i, &e) in effects.iter().enumerate() {
        let a = analytic_power(e, k as f64, (n - k) as f64, mu, sigma, t0, d, 0.1);
        // Each panel is an independent Bernoulli(power) trial: binomial Monte Carlo sd √(p(1−p)/R);
        // 4 sd over 13 effects gives a family-wise false-failure rate below 1e-3.
        let tol = 4.0 * (a * (1.0 - a) / reps as f64).sqrt();
        eprintln!("effect {e:.2}: simulated {:.4} analytic {a:.4} (tol {tol:.4})", sim[i]);
        assert!((sim[i] - a).abs() <= tol, "effect {e}: simulated power {} vs analytic {a} (tol {tol})", sim[i]);
    }
    // at zero the test has its nominal size
    assert!((analytic_power(0.0, 2.0, 8.0, mu, sigma, t0, d, 0.1) - 0.1).abs() < 1e-6);
}

fn curve_of(effects: &[f64], power: &[f64]) -> PowerCurve {
    PowerCurve {
        treated: vec![],
        duration: 0,
        windows: 0,
        points: effects
            .iter()
            .zip(power)
            .map(|(&effect, &power)| PowerPoint {
                effect,
                power,
                mean_estimate: 0.0,
                bias: 0.0,
                sd: 0.0,
                mean_p_value: 0.0,
            })
            .collect(),
        lift_at_zero: 0.0,
        se_lift: 0.0,
        se_lift_model: 0.0,
        baseline_kpi: 0.0,
        scaled_l2: 0.0,
    }
}

#[test]
fn mde_scales_with_noise_and_inverse_root_duration_as_theory_says() {
    let (reps, n, k, t0, mu) = (1000, 10, 2, 200, 100.0);
    let effects: Vec<f64> = (0..=80).map(|i| i as f64 * 0.0025).collect();
    // (σ, d) → (simulated MDE, analytic MDE on the same grid, Monte Carlo sd of the simulated MDE)
    let run = |sigma: f64, d: usize| {
        let sim = simulated_power(reps, n, k, t0, d, mu, sigma, &effects);
        let ana: Vec<f64> =
            effects.iter().map(|&e| analytic_power(e, k as f64, (n - k) as f64, mu, sigma, t0, d, 0.1)).collect();
        let ms = curve_of(&effects, &sim).mde(0.8).positive.expect("simulated MDE on the grid");
        let ma = curve_of(&effects, &ana).mde(0.8).positive.expect("analytic MDE on the grid");
        // delta method: an error δP in the interpolated power moves the crossing by δP / slope,
        // δP ≤ binomial sd √(0.8·0.2/R) at the two bracketing grid points
        let h = 1e-4;
        let slope = (analytic_power(ma + h, k as f64, (n - k) as f64, mu, sigma, t0, d, 0.1)
            - analytic_power(ma - h, k as f64, (n - k) as f64, mu, sigma, t0, d, 0.1))
            / (2.0 * h);
        let sd = (0.8 * 0.2 / reps as f64).sqrt() / slope;
        eprintln!("σ {sigma} d {d}: MDE simulated {ms:.4} analytic {ma:.4} (MC sd {sd:.4})");
        assert!((ms - ma).abs() <= 4.0 * sd, "σ {sigma}, d {d}: simulated MDE {ms} vs analytic {ma} (sd {sd})");
        (ms, ma, sd)
    };
    let a = run(10.0, 10);
    let b = run(20.0, 10);
    let c = run(10.0, 40);
    let ratio_sd =
        |x: (f64, f64, f64), y: (f64, f64, f64)| (x.0 / y.0) * ((x.2 / x.0).powi(2) + (y.2 / y.0).powi(2)).sqrt();
    // Noise: the MDE is proportional to σ: se ∝ σ at fixed design, up to the (1+e)² factor on the
    // treated test-window variance term (< 2 % here).
    let (rs, ra) = (b.0 / a.0, b.1 / a.1);
    eprintln!("MDE(2σ)/MDE(σ): simulated {rs:.3}, analytic {ra:.3}, theory 2");
    assert!((ra / 2.0 - 1.0).abs() < 0.03);
    assert!((rs - ra).abs() <= 4.0 * ratio_sd(b, a));
    // Duration: se ∝ √(1/d + 1/T₀) → MDE(d=10)/MDE(d=40) = √((1/10 + 1/200)/(1/40 + 1/200)) = 1.871
    // (→ 2 = √(40/10) as T₀ → ∞), again up to the (1+e)² factor.
    let theory = ((0.1f64 + 1.0 / 200.0) / (1.0 / 40.0 + 1.0 / 200.0)).sqrt();
    let (rs, ra) = (a.0 / c.0, a.1 / c.1);
    eprintln!("MDE(d=10)/MDE(d=40): simulated {rs:.3}, analytic {ra:.3}, theory {theory:.3}");
    assert!((ra / theory - 1.0).abs() < 0.03);
    assert!((rs - ra).abs() <= 4.0 * ratio_sd(a, c));
}

#[test]
fn sc_power_engine_estimate_equals_refitting_the_injected_panel() {
    // The fit-once shortcut: the engine's estimated lift for effect e equals GeoLift's lift from a full
    // SC fit on the panel with the effect injected (the weights do not depend on the test window).
    let y = iid_panel(8, 60, 50.0, 5.0, 3);
    let effects = vec![-0.2, 0.0, 0.15];
    let cfg =
        PowerConfig { inference: DesignInference::Normal, windows: 1, effects: effects.clone(), ..Default::default() };
    let eng = PowerEngine::new(y.view(), &cfg).unwrap();
    let curve = eng.power_curve(&[0, 3], &[1, 2, 4, 5, 6, 7], 12).unwrap();
    for (i, &e) in effects.iter().enumerate() {
        let mut yi = y.clone();
        for g in [0, 3] {
            for t in 48..60 {
                yi[[g, t]] *= 1.0 + e;
            }
        }
        let data = LiftData::from_matrix(yi, vec![0, 3], 48).unwrap();
        let est = SyntheticControl::default().estimate(&data).unwrap();
        let got = curve.points[i].mean_estimate;
        assert!((got - est.lift_pct / 100.0).abs() < 1e-10, "e {e}: engine {got} vs SC refit {}", est.lift_pct / 100.0);
    }
}

#[test]
fn conformal_p_value_agrees_with_geolift_conformal_within_permutation_error() {
    let Some(panel) = pretest() else { return };
    let ns = 4000;
    let (d, e) = (15, 0.05);
    let treated = vec![panel.geo_index("chicago").unwrap(), panel.geo_index("portland").unwrap()];
    let donors: Vec<usize> = (0..panel.geos.len()).filter(|g| !treated.contains(g)).collect();
    let cfg = PowerConfig {
        inference: DesignInference::Conformal { permutations: ns },
        windows: 1,
        effects: vec![e],
        ..Default::default()
    };
    let eng = PowerEngine::new(panel.kpi.view(), &cfg).unwrap();
    let p_engine = eng.power_curve(&treated, &donors, d).unwrap().points[0].mean_p_value;
    let mut y = panel.kpi.clone();
    let t0 = y.ncols() - d;
    for &g in &treated {
        for t in t0..y.ncols() {
            y[[g, t]] *= 1.0 + e;
        }
    }
    let data = LiftData::from_matrix(y, treated.clone(), t0).unwrap();
    let est = SyntheticControl::default().estimate(&data).unwrap();
    let conf = Conformal { ns, grid_size: 3, ..Default::default() };
    let p_ref = conf.run(&data, &est).unwrap().p_value;
    // two independent permutation estimates of the same p: difference sd √(2p(1−p)/ns)
    let tol = 4.0 * (2.0 * p_ref * (1.0 - p_ref) / ns as f64).sqrt().max(1.0 / ns as f64);
    eprintln!("conformal p: engine {p_engine:.4}, inference::Conformal {p_ref:.4} (tol {tol:.4})");
    assert!((p_engine - p_ref).abs() <= tol);
}

fn quick_cfg() -> PowerConfig {
    PowerConfig {
        inference: DesignInference::Conformal { permutations: 200 },
        windows: 5,
        effects: vec![0.0, 0.05, 0.1, 0.15, 0.2, 0.25],
        ..Default::default()
    }
}

#[test]
fn geolift_pretest_search_reports_mde_and_power_and_picks_well_fitting_markets() {
    let Some(panel) = pretest() else { return };
    let cfg = quick_cfg();
    let spec = SearchSpec { n_min: 2, n_max: 5, durations: vec![15], ..Default::default() };
    let sel = search(&panel, &spec, &cfg).unwrap();
    assert!(sel.candidates.len() >= 40, "{} candidates", sel.candidates.len());
    for c in &sel.candidates {
        assert_eq!(c.duration, 15);
        assert!((2..=5).contains(&c.treated.len()));
        assert_eq!(c.curve.points.len(), cfg.effects.len());
        assert!(c.curve.points.iter().all(|p| (0.0..=1.0).contains(&p.power)));
    }
    let best = &sel.cells[0];
    eprintln!(
        "best {:?}: MDE {:?}, power {:?}, scaled L2 {:.3}",
        best.treated,
        best.mde,
        best.curve.points.iter().map(|p| p.power).collect::<Vec<_>>(),
        best.curve.scaled_l2
    );
    for c in sel.candidates.iter().take(5) {
        eprintln!(
            "#{} {:?} MDE {:?} L2 {:.3} share {:.3}",
            c.rank, c.treated, c.mde, c.curve.scaled_l2, c.treated_share
        );
    }
    let mde = best.mde.expect("the best design reaches 80 % power on the grid");
    assert!(mde > 0.0 && mde <= 0.25);
    // good pre-period fit: the chosen synthetic control beats the uniform-weight (DiD) control by more
    // than half on the scaled L2 imbalance, and fits at least as well as the median candidate
    let mut l2: Vec<f64> = sel.candidates.iter().map(|c| c.curve.scaled_l2).collect();
    l2.sort_by(f64::total_cmp);
    let median = l2[l2.len() / 2];
    eprintln!("scaled L2: best {:.3}, median candidate {median:.3}", best.curve.scaled_l2);
    assert!(best.curve.scaled_l2 < 0.5);
    assert!(best.curve.scaled_l2 <= median);
    // ranked by score; every criterion of the best design is in the better half of the candidates
    let sc: Vec<f64> = sel.candidates.iter().map(|c| c.score.unwrap()).collect();
    assert!(sc.windows(2).all(|w| w[0] <= w[1]));
    let mut m: Vec<f64> = sel.candidates.iter().map(|c| c.mde.unwrap_or(f64::INFINITY)).collect();
    m.sort_by(f64::total_cmp);
    assert!(mde <= m[m.len() / 2]);
}

#[test]
fn go_dark_design_reports_negative_mde() {
    let Some(panel) = pretest() else { return };
    let cfg = PowerConfig { effects: vec![0.0, -0.05, -0.1, -0.15, -0.2, -0.25], ..quick_cfg() };
    let spec =
        SearchSpec { n_min: 3, n_max: 3, durations: vec![15], include: vec!["chicago".into()], ..Default::default() };
    let sel = search(&panel, &spec, &cfg).unwrap();
    assert!(sel.candidates.iter().all(|c| c.treated.iter().any(|g| g == "chicago")));
    let mde = sel.cells[0].mde.expect("go-dark MDE on the grid");
    assert!(mde < 0.0);
}

#[test]
fn multi_cell_designs_have_disjoint_cells_without_each_others_geos_as_donors() {
    let Some(panel) = pretest() else { return };
    let spec = SearchSpec { n_min: 2, n_max: 2, durations: vec![15], cells: 2, ..Default::default() };
    let sel = search(&panel, &spec, &quick_cfg()).unwrap();
    assert_eq!(sel.cells.len(), 2);
    assert!(sel.cells[0].treated.iter().all(|g| !sel.cells[1].treated.contains(g)));
}

#[test]
fn search_is_identical_for_one_and_four_threads() {
    let Some(panel) = pretest() else { return };
    let spec = SearchSpec { n_min: 2, n_max: 3, durations: vec![10, 15], ..Default::default() };
    let cfg = quick_cfg();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| serde_json::to_string(&search(&panel, &spec, &cfg).unwrap()).unwrap())
    };
    assert_eq!(run(1), run(4));
}

#[test]
fn mde_interpolates_between_grid_points_and_is_none_when_unreached() {
    let c = curve_of(&[-0.2, -0.1, 0.0, 0.1, 0.2], &[0.9, 0.5, 0.1, 0.6, 1.0]);
    let m = c.mde(0.8);
    assert!((m.positive.unwrap() - 0.15).abs() < 1e-12);
    assert!((m.negative.unwrap() + (0.1 + 0.3 / 0.4 * 0.1)).abs() < 1e-12);
    assert_eq!(curve_of(&[0.0, 0.1], &[0.1, 0.5]).mde(0.8), Mde { positive: None, negative: None });
}

// ---- bad requests: a clear error each, never an empty result or a panic ----

fn small_panel() -> Panel {
    Panel::from_matrix((0..6).map(|i| format!("geo{i}")).collect(), iid_panel(6, 60, 100.0, 5.0, 1)).unwrap()
}

fn cfg_normal() -> PowerConfig {
    PowerConfig { inference: DesignInference::Normal, windows: 3, effects: vec![0.0, 0.1, 0.2], ..Default::default() }
}

#[test]
fn more_treated_geos_than_exist_is_a_clear_error() {
    let spec = SearchSpec { n_min: 2, n_max: 7, durations: vec![10], ..Default::default() };
    let e = search(&small_panel(), &spec, &cfg_normal()).unwrap_err();
    assert!(matches!(e, DesignError::TooManyTreated { requested: 7, .. }), "{e}");
    assert!(e.to_string().contains("--n-treated"), "{e}");
}

#[test]
fn duration_longer_than_history_is_a_clear_error() {
    let spec = SearchSpec { n_min: 2, n_max: 2, durations: vec![10, 45], ..Default::default() };
    let e = search(&small_panel(), &spec, &cfg_normal()).unwrap_err();
    assert!(matches!(e, DesignError::DurationTooLong { duration: 45, periods: 60, .. }), "{e}");
    assert!(e.to_string().contains("--duration"), "{e}");
}

#[test]
fn unknown_geo_in_include_or_exclude_is_a_clear_error() {
    let spec =
        SearchSpec { n_min: 2, n_max: 2, durations: vec![10], include: vec!["geo9x".into()], ..Default::default() };
    let e = search(&small_panel(), &spec, &cfg_normal()).unwrap_err();
    assert!(
        matches!(&e, DesignError::UnknownGeo { option, geo, .. } if option == "--include" && geo == "geo9x"),
        "{e}"
    );
    let spec = SearchSpec {
        n_min: 2,
        n_max: 2,
        durations: vec![10],
        exclude: vec!["Geo1".into(), "gep2".into()],
        ..Default::default()
    };
    let e = search(&small_panel(), &spec, &cfg_normal()).unwrap_err();
    assert!(matches!(&e, DesignError::UnknownGeo { option, geo, .. } if option == "--exclude" && geo == "gep2"), "{e}");
    assert!(e.to_string().contains("did you mean"), "{e}");
}

#[test]
fn no_candidate_meeting_the_constraints_is_a_clear_error() {
    // every pair of geos holds 1/3 of the KPI: a 10 % cap on the treated share leaves nothing
    let spec = SearchSpec { n_min: 2, n_max: 2, durations: vec![10], max_treated_share: 0.1, ..Default::default() };
    let e = search(&small_panel(), &spec, &cfg_normal()).unwrap_err();
    assert!(matches!(e, DesignError::NoCandidate { .. }), "{e}");
    // more disjoint cells than the geos allow
    let spec = SearchSpec { n_min: 2, n_max: 2, durations: vec![10], cells: 3, ..Default::default() };
    let e = search(&small_panel(), &spec, &cfg_normal()).unwrap_err();
    assert!(matches!(e, DesignError::TooManyTreated { .. } | DesignError::NoCandidate { .. }), "{e}");
}

#[test]
fn bad_effect_grids_and_options_are_clear_errors() {
    let spec = SearchSpec { n_min: 2, n_max: 2, durations: vec![10], ..Default::default() };
    for (effects, what) in [(vec![0.1, -0.1], "mixes"), (vec![0.0], "no non-zero"), (vec![-1.5], "above −1")] {
        let cfg = PowerConfig { effects, ..cfg_normal() };
        let e = search(&small_panel(), &spec, &cfg).unwrap_err();
        assert!(e.to_string().contains("--effects") && e.to_string().contains(what), "{e}");
    }
    let cfg = PowerConfig { inference: DesignInference::Conformal { permutations: 5 }, ..cfg_normal() };
    assert!(search(&small_panel(), &spec, &cfg).unwrap_err().to_string().contains("--permutations"));
}

#[test]
fn t_critical_matches_tabulated_student_quantiles() {
    // t_{0.975, 10} = 2.228139, t_{0.95, 30} = 1.697261 (standard tables), z_{0.95} = 1.644854
    assert!((t_critical(0.05, 10.0) - 2.228_139).abs() < 1e-5);
    assert!((t_critical(0.1, 30.0) - 1.697_261).abs() < 1e-5);
    assert!((t_critical(0.1, 1e9) - 1.644_854).abs() < 1e-5);
}

#[test]
fn sc_conformal_design_has_nominal_size_on_exchangeable_noise() {
    // With nothing injected and iid noise the residuals of the all-period SC fit are (nearly)
    // exchangeable, so the conformal test's false-positive rate is α (Chernozhukov, Wüthrich & Zhu 2021,
    // Thm 1: exact under exchangeability of the oracle residuals, approximate with estimated weights).
    let (reps, ns) = (3000, 200);
    let cfg = PowerConfig {
        inference: DesignInference::Conformal { permutations: ns },
        windows: 1,
        effects: vec![0.0],
        ..Default::default()
    };
    let rejections: f64 = (0..reps)
        .into_par_iter()
        .map(|r| {
            let y = iid_panel(10, 50, 100.0, 10.0, derive_seed(11, 5, r as u64));
            let eng = PowerEngine::new(y.view(), &cfg).unwrap();
            eng.power_curve(&[0, 1], &(2..10).collect::<Vec<_>>(), 10).unwrap().points[0].power
        })
        .sum();
    let size = rejections / reps as f64;
    // binomial Monte Carlo sd at α = 0.1 over independent panels: √(0.1·0.9/3000) = 0.0055
    let tol = 4.0 * (0.1f64 * 0.9 / reps as f64).sqrt();
    eprintln!("conformal size on iid noise: {size:.4} (nominal 0.1, tol {tol:.4})");
    assert!((size - 0.1).abs() <= tol, "size {size}");
}

// ---- design.json for the loop: channel, planned window, spend change and cost; reads back ----

#[test]
fn design_record_round_trips_and_carries_channel_window_spend_change_and_cost() {
    use mmloop_geolift::design::{DesignRecord, TestCost};
    let Some(panel) = pretest() else { return };
    let spec = SearchSpec { n_min: 2, n_max: 2, durations: vec![15], ..Default::default() };
    let cfg = quick_cfg();
    let sel = search(&panel, &spec, &cfg).unwrap();
    let mut rec = DesignRecord::new(&sel, &cfg, spec.target_power, Some(3.0), Some(50_000.0));
    rec.set_plan(vec!["tv".into()], Some("2021-06-01".into()), &panel).unwrap();
    assert_eq!(rec.channels, ["tv"]);
    assert_eq!(rec.start.as_deref(), Some("2021-06-01"));
    // daily panel, 15-period test: the last day is 14 days after the first
    assert_eq!(rec.cells[0].end.as_deref(), Some("2021-06-15"));
    assert_eq!(rec.spend_change, Some(50_000.0));
    // heavy-up: the cost is the extra spend, nothing at risk
    let cost = rec.cells[0].cost.unwrap();
    assert_eq!(cost, TestCost { extra_spend: 50_000.0, spend_cut: 0.0, kpi_at_risk: None });
    assert_eq!(rec.total_cost.unwrap().extra_spend, 50_000.0);

    let json = serde_json::to_vec_pretty(&rec).unwrap();
    let back: DesignRecord = serde_json::from_slice(&json).unwrap();
    assert_eq!(back, rec);
    assert_eq!(serde_json::to_vec_pretty(&back).unwrap(), json);

    // a design.json written before the plan fields existed still reads back, with them empty
    let mut old: serde_json::Value = serde_json::from_slice(&json).unwrap();
    for k in ["channels", "start", "spend_change", "total_cost"] {
        old.as_object_mut().unwrap().remove(k);
    }
    for c in old["cells"].as_array_mut().unwrap() {
        c.as_object_mut().unwrap().remove("end");
        c.as_object_mut().unwrap().remove("cost");
    }
    let back: DesignRecord = serde_json::from_value(old).unwrap();
    assert!(back.channels.is_empty() && back.start.is_none() && back.cells[0].cost.is_none());

    // from a file, and a broken file is an error naming it
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("design.json");
    std::fs::write(&p, &json).unwrap();
    assert_eq!(DesignRecord::read(&p).unwrap(), rec);
    std::fs::write(&p, &json[..json.len() / 2]).unwrap();
    let e = DesignRecord::read(&p).unwrap_err().to_string();
    assert!(e.contains("design.json") && e.contains("EOF"), "{e}");
}

#[test]
fn go_dark_design_cost_is_the_kpi_at_risk_not_cash() {
    use mmloop_geolift::design::DesignRecord;
    let Some(panel) = pretest() else { return };
    let cfg = PowerConfig { effects: vec![0.0, -0.05, -0.1, -0.15, -0.2, -0.25, -0.3], ..quick_cfg() };
    let spec = SearchSpec { n_min: 3, n_max: 3, durations: vec![15], ..Default::default() };
    let sel = search(&panel, &spec, &cfg).unwrap();
    let rec = DesignRecord::new(&sel, &cfg, spec.target_power, None, Some(-20_000.0));
    let c = &rec.cells[0];
    let cost = c.cost.unwrap();
    assert_eq!((cost.extra_spend, cost.spend_cut), (0.0, 20_000.0));
    // KPI lost at the MDE = |MDE| × baseline KPI over the test
    assert_eq!(cost.kpi_at_risk, c.mde_incremental);
    let m = c.mde.expect("go-dark MDE on the grid");
    assert!((cost.kpi_at_risk.unwrap() - m.abs() * c.baseline_kpi).abs() <= 1e-9 * c.baseline_kpi);
}

#[test]
fn planned_start_not_in_the_panel_notation_is_a_clear_error() {
    use mmloop_geolift::design::planned_start;
    let Some(panel) = pretest() else { return };
    let e = planned_start(&panel, "June 1st").unwrap_err().to_string();
    assert!(e.contains("--start") && e.contains("YYYY-MM-DD"), "{e}");
    assert_eq!(planned_start(&panel, "1970-01-11").unwrap(), 10.0);
    // a numeric panel takes numbers
    let e = planned_start(&small_panel(), "2021-06-01").unwrap_err().to_string();
    assert!(e.contains("numbers"), "{e}");
    assert_eq!(planned_start(&small_panel(), "61").unwrap(), 61.0);
}
