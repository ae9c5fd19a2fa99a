//! Tests of the ranking interface on a simulated geo world fitted by Laplace (once per test run).

use super::*;
use crate::calibrate::AgeInfo;
use mmloop_data::LiftTestRecord;
use mmloop_geolift::{NoProgress, Panel};
use mmloop_mmm::fit::{FitOptions, fit_with};
use mmloop_mmm::model::simulate::{SimOptions, Simulation, simulate};
use std::sync::OnceLock;

/// 6 geos × 80 weeks, two channels with geo-varying effects; Laplace fit cut to 200 draws (enough
/// for the orderings and identities tested here; the value module tests the Monte-Carlo accuracy).
fn world() -> &'static (Simulation, FittedModel) {
    static W: OnceLock<(Simulation, FittedModel)> = OnceLock::new();
    W.get_or_init(|| {
        let sim = simulate(&SimOptions { n_geos: 6, n_times: 80, tau: 0.3, seed: 7, ..Default::default() })
            .expect("simulates");
        let res = fit_with(&sim.spec, &sim.data, FitOptions { quiet: true, ..Default::default() }).expect("Laplace");
        let mut fit = FittedModel::from_fit(&sim.spec, &sim.data, &res).expect("plannable");
        fit.draws.truncate(200);
        (sim, fit)
    })
}

/// The model's own data as a regional panel.
fn panel(fit: &FittedModel) -> Panel {
    let d = &fit.data;
    Panel {
        geos: d.geos.clone(),
        time_kind: d.times.kind,
        times: d.times.values.clone(),
        time_labels: d.times.labels.clone(),
        kpi: d.kpi.clone(),
        spend: None,
        treatment: None,
        source: "simulated panel".into(),
        observed: None,
    }
}

fn small_design() -> DesignOptions {
    DesignOptions { n_min: 2, n_max: 2, durations: vec![4], windows: 6, max_candidates: 10, seed: 1, reader: None }
}

fn quick_settings() -> RankSettings {
    let mut s = RankSettings::default();
    s.evoi.n_readouts = 60;
    s.evpi_draws = 40;
    s.eig_readouts = 60;
    s
}

#[test]
fn cost_nets_expected_return_against_the_spend_change() {
    // heavy-up: 1000 extra spend returning 300 KPI × 2 money/KPI = 600 → costs 400
    let c = TestCost::new(1000.0, 300.0, 2.0);
    assert_eq!((c.expected_return, c.cost, c.expected_profit), (600.0, 400.0, -400.0));
    // go-dark: saves 500, loses 400 KPI × 2 = 800 of outcome → costs 300
    let c = TestCost::new(-500.0, -400.0, 2.0);
    assert_eq!((c.expected_return, c.cost), (-800.0, 300.0));
    // a heavy-up expected to pay for itself costs nothing; its profit is reported
    let c = TestCost::new(100.0, 100.0, 2.0);
    assert_eq!((c.cost, c.expected_profit), (0.0, 100.0));
}

#[test]
fn design_sigma_and_window_lift_are_totals_over_the_same_geos_and_periods() {
    let (_, fit) = world();
    let p = panel(fit);
    let sel = search_designs(fit, &p, &small_design(), &NoProgress).expect("design");
    let d = &sel.candidates[0];
    let dur = d.duration;
    // the design's baseline is the treated geos' KPI summed over geos and the window's periods:
    // compare with the actual KPI summed the same way, averaged over the same rolling windows
    // (window w ends w periods before the data's end)
    let t_n = p.times.len();
    let idx: Vec<usize> = d.treated.iter().map(|g| p.geos.iter().position(|x| x == g).unwrap()).collect();
    let w = d.curve.windows;
    let actual: f64 = (0..w)
        .map(|k| idx.iter().map(|&g| (t_n - k - dur..t_n - k).map(|t| p.kpi[[g, t]]).sum::<f64>()).sum::<f64>())
        .sum::<f64>()
        / w as f64;
    let ratio = d.curve.baseline_kpi / actual;
    // per window, counterfactual = actual / (1 + relative lift at zero); averaged over windows the
    // identity holds up to second-order terms (mean of ratios vs ratio of means, ~ the windows'
    // spread × se_lift ≈ 1e-4 here). 1e-3 separates it from any other convention: a baseline per
    // treated geo or per period would be off by a factor of 2 or 4.
    assert!(
        (ratio * (1.0 + d.curve.lift_at_zero) - 1.0).abs() < 1e-3,
        "baseline {} vs actual {actual}, lift at zero {}",
        d.curve.baseline_kpi,
        d.curve.lift_at_zero
    );
    let spec = CandidateSpec { channels: vec![vec!["ch0".into()]], designs: 1, ..Default::default() };
    let cands = design_candidates(fit, &sel, &spec).expect("candidates");
    let c = &cands[0];
    assert_eq!(c.geos, d.treated);
    assert_eq!(c.duration, dur);
    assert!((c.sigma - d.curve.se_lift * d.curve.baseline_kpi).abs() <= 1e-12 * c.sigma);
    // the window lift is summed over the treated geos (not averaged), like the baseline
    let joint = price_test(fit, &c.hypothetical(Tail::WindowOnly)).unwrap();
    let mut by_geo = vec![0.0; fit.draws.len()];
    for g in &c.geos {
        let mut one = c.clone();
        one.geos = vec![g.clone()];
        let l = price_test(fit, &one.hypothetical(Tail::WindowOnly)).unwrap();
        by_geo.iter_mut().zip(&l.per_draw).for_each(|(a, b)| *a += b);
    }
    for (a, b) in joint.per_draw.iter().zip(&by_geo) {
        assert!((a - b).abs() <= 1e-9 * a.abs().max(1.0), "{a} vs {b}");
    }
    // and it covers the window's periods only: the full tail adds the carry-over after it
    let full = price_test(fit, &c.hypothetical(Tail::Full)).unwrap();
    assert!(joint.mean < 0.0 && full.mean < joint.mean, "go-dark: window {} full {}", joint.mean, full.mean);
}

#[test]
fn a_panel_in_other_units_or_a_national_model_is_refused() {
    let (_, fit) = world();
    let mut p = panel(fit);
    p.kpi.mapv_inplace(|x| x / 1000.0);
    let e = check_panel(fit, &p).unwrap_err().to_string();
    assert!(e.contains("KPI") && e.contains("--kpi"), "{e}");
    let sim = simulate(&SimOptions { n_times: 60, ..Default::default() }).unwrap();
    let res = fit_with(&sim.spec, &sim.data, FitOptions { quiet: true, ..Default::default() }).unwrap();
    let national = FittedModel::from_fit(&sim.spec, &sim.data, &res).unwrap();
    let e = check_panel(&national, &panel(&national)).unwrap_err().to_string();
    assert!(e.contains("national"), "{e}");
}

fn readout(channel: &str, id: i64, inflation: f64) -> (LiftTestRecord, AgeInfo) {
    let rec = LiftTestRecord {
        channels: vec![channel.into()],
        geos: vec!["geo0".into(), "geo1".into()],
        start: "60".into(),
        end: "65".into(),
        spend_change: 500.0,
        spend_path: None,
        incremental_kpi: 100.0,
        standard_error: 40.0 * inflation.sqrt(),
        estimator: "sc".into(),
        source: "test".into(),
    };
    let info = AgeInfo {
        experiment_id: id,
        record_hash: format!("h{id}"),
        channels: vec![channel.into()],
        end: "65".into(),
        as_of: "79".into(),
        age_weeks: 14.0,
        half_life_weeks: 14.0 / inflation.log2(),
        variance_inflation: inflation,
        standard_error: 40.0,
        effective_se: 40.0 * inflation.sqrt(),
    };
    (rec, info)
}

#[test]
fn stale_readouts_become_retest_candidates_and_flag_their_channel() {
    let (_, fit) = world();
    assert_eq!(fit.data.geos[..2], ["geo0".to_string(), "geo1".to_string()], "fixture geo names");
    let spec = CandidateSpec { durations: vec![4], ..Default::default() };
    let mut cands = stated_candidates(fit, &StatedPrecision::default(), &spec).unwrap();
    let before = cands.len();
    // ch0: a readout 3× inflated (stale); ch1: 1.2× (fresh)
    let readouts = vec![readout("ch0", 1, 3.0), readout("ch1", 2, 1.2)];
    let notes = retest_candidates(fit, &readouts, &spec, &mut cands).unwrap();
    assert!(notes.is_empty(), "{notes:?}");
    let re: Vec<&CandidateTest> = cands.iter().filter(|c| c.is_retest).collect();
    assert_eq!(cands.len(), before + 1, "one re-test per start for the one stale channel");
    assert_eq!(re.len(), 1);
    let r = re[0];
    assert_eq!(
        (r.channels.clone(), r.geos.clone(), r.duration),
        (vec!["ch0".to_string()], vec!["geo0".into(), "geo1".into()], 6)
    );
    assert_eq!(r.change, Change::Total(500.0));
    assert_eq!(r.sigma, 40.0, "the readout's own (undecayed) standard error");
    assert!(r.start >= fit.model.n_times, "planned in the future");
    for c in &cands {
        let info = c.retest.as_ref().expect("every channel here has a readout");
        assert_eq!(info.stale, c.channels == ["ch0"], "{}", c.name);
    }
    // and they are ranked like any other
    let s = quick_settings();
    let ranking = rank(fit, &cands, &s, &NoProgress).unwrap();
    assert!(ranking.candidates.iter().any(|c| c.is_retest && c.evoi.evoi >= 0.0));
}

#[test]
fn portfolio_respects_test_count_geo_overlap_and_test_budget() {
    let (_, fit) = world();
    let p = panel(fit);
    let opts =
        DesignOptions { n_min: 2, n_max: 2, durations: vec![4], windows: 6, max_candidates: 10, seed: 1, reader: None };
    let sel = search_designs(fit, &p, &opts, &NoProgress).unwrap();
    let spec = CandidateSpec { designs: 3, changes: vec![Change::Multiplier(0.0)], ..Default::default() };
    let cands = design_candidates(fit, &sel, &spec).unwrap();
    let mut s = quick_settings();
    s.constraints.max_tests = 2;
    s.portfolio_pool = 6;
    let r = rank(fit, &cands, &s, &NoProgress).unwrap();
    assert_eq!(r.candidates.len(), cands.len());
    for (i, c) in r.candidates.iter().enumerate() {
        assert_eq!(c.rank, i + 1);
        assert!((c.net_value - (c.evoi.evoi - c.cost.cost)).abs() < 1e-9 * c.evoi.evoi.abs().max(1.0));
        if i > 0 {
            assert!(r.candidates[i - 1].net_value >= c.net_value, "sorted by net value");
        }
        assert!(c.evoi.evoi <= r.evpi.evpi + 4.0 * (c.evoi.mcse + r.evpi.mcse), "EVOI ≤ EVPI within MC error");
    }
    let check = |port: &crate::value::Portfolio, budget: Option<f64>| {
        assert!(port.picks.len() <= 2);
        for (a, x) in port.picks.iter().enumerate() {
            for y in &port.picks[a + 1..] {
                let (cx, cy) = (&r.candidates[x.candidate], &r.candidates[y.candidate]);
                assert!(cx.geos.iter().all(|g| !cy.geos.contains(g)), "{} and {} share a geo", cx.name, cy.name);
            }
        }
        if let Some(b) = budget {
            assert!(port.total_cost <= b + 1e-9);
        }
    };
    check(&r.portfolio.greedy, None);
    for p in &r.portfolio.greedy.picks {
        assert!(p.marginal_net > 0.0, "a pick adds value net of its cost");
        assert_eq!(p.name, r.candidates[p.candidate].name);
    }
    let ex = r.portfolio.exhaustive.as_ref().expect("pool of 6 ≤ exhaustive_max");
    check(ex, None);
    assert!(ex.net_value >= r.portfolio.greedy.net_value - 1e-9, "the exhaustive optimum is at least greedy's");
    // a test budget of 0 admits only tests expected to pay for themselves
    s.constraints.test_budget = Some(0.0);
    let r2 = rank(fit, &cands, &s, &NoProgress).unwrap();
    check(&r2.portfolio.greedy, Some(0.0));
    assert!(r2.portfolio.greedy.picks.iter().all(|p| r2.candidates[p.candidate].cost.cost == 0.0));
}

#[test]
fn same_seed_same_ranking_whatever_the_thread_count_and_bad_settings_name_their_option() {
    let (_, fit) = world();
    let spec = CandidateSpec { durations: vec![4], changes: vec![Change::Multiplier(0.0)], ..Default::default() };
    let cands = stated_candidates(fit, &StatedPrecision::default(), &spec).unwrap();
    let s = quick_settings();
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| rank(fit, &cands, &s, &NoProgress).unwrap())
    };
    let a = on(1);
    let b = on(3);
    assert_eq!(a, b, "the same ranking on 1 and 3 threads");
    // the CSV has a row per candidate and as many fields as its header (names hold no commas)
    let csv = ranking_csv(&a);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), a.candidates.len() + 1);
    let width = lines[0].split(',').count();
    assert!(lines.iter().all(|l| l.split(',').count() == width), "{csv}");
    let table = ranking_table(&a, 3) + &quadrant_table(&a) + &portfolio_table(&a);
    assert!(table.contains(&a.candidates[0].name) && table.contains("2×2"), "{table}");
    for (mutate, option) in [
        (Box::new(|s: &mut RankSettings| s.horizon = 0) as Box<dyn Fn(&mut RankSettings)>, "--horizon"),
        (Box::new(|s: &mut RankSettings| s.budget = Some(-1.0)), "--budget"),
        (Box::new(|s: &mut RankSettings| s.constraints.max_tests = 0), "--max-tests"),
        (Box::new(|s: &mut RankSettings| s.value_per_kpi = Some(f64::NAN)), "--value-per-kpi"),
    ] {
        let mut s = quick_settings();
        mutate(&mut s);
        let e = rank(fit, &cands, &s, &NoProgress).unwrap_err().to_string();
        assert!(e.contains(option), "{e}");
    }
    let bad = StatedPrecision { go_dark: 0.0, ..Default::default() };
    assert!(stated_candidates(fit, &bad, &spec).unwrap_err().to_string().contains("--relative-se-go-dark"));
    let bad = CandidateSpec { channels: vec![vec!["radio".into()]], ..Default::default() };
    assert!(stated_candidates(fit, &StatedPrecision::default(), &bad).unwrap_err().to_string().contains("radio"));
}

#[test]
fn a_design_read_by_its_reader_is_priced_with_the_se_that_readout_reports_and_unreadable_ones_are_dropped() {
    let (_, fit) = world();
    let p = panel(fit);
    let opts =
        DesignOptions { n_min: 2, n_max: 3, durations: vec![4], windows: 6, max_candidates: 10, seed: 1, reader: None };
    let sel = search_designs(fit, &p, &opts, &NoProgress).unwrap();
    assert!(sel.candidates.iter().any(|d| d.treated.len() == 3), "the search has 3-geo designs to drop");
    let reader = DesignReader {
        params: mmloop_geolift::ReadoutParams {
            estimators: vec!["ascm".into()],
            placebo_reps: 50,
            ..Default::default()
        },
        pre_periods: 52,
    };
    let spec = CandidateSpec { designs: 3, changes: vec![Change::Multiplier(0.0)], ..Default::default() };
    let (cands, notes) = reader_candidates(fit, &p, &sel, &spec, &reader, &NoProgress).unwrap();
    // ASCM's placebo SE needs more controls than treated geos: 3 of 6 cannot be read
    assert!(cands.iter().all(|c| c.geos.len() == 2), "{:?}", cands.iter().map(|c| &c.geos).collect::<Vec<_>>());
    assert!(notes.iter().any(|n| n.contains("cannot be read by ascm")), "{notes:?}");
    let mut last = 0;
    for c in &cands {
        // σ is the reader's own predicted SE for that design (one formula: predict_readout)
        let want = mmloop_geolift::readout::predict_readout(&p, &reader.params, &c.geos, c.duration, 52).unwrap();
        assert_eq!(c.sigma, want.standard_error, "{}", c.name);
        let Precision::Reader { reader_rank, relative_se, baseline_kpi, estimator, .. } = &c.precision else {
            panic!("{}: {:?}", c.name, c.precision)
        };
        assert_eq!(estimator, "ascm");
        assert!((relative_se * baseline_kpi / c.sigma - 1.0).abs() < 1e-12);
        assert!(*reader_rank >= last, "in the reader's order (smallest relative SE first)");
        last = *reader_rank;
    }
    // and without a reader the same designs are priced by the search's synthetic control
    let sc = design_candidates(fit, &sel, &spec).unwrap();
    assert!(sc.iter().all(|c| matches!(c.precision, Precision::Design { .. })));
}
