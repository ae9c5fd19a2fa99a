//! Hypothetical-test pricing (`mmloop_mmm::pricing`): it is the calibration term's formula, it
//! reproduces a brute-force simulation of the demo's true data-generating process, it behaves
//! (zero, linear, recent-level) where it must, and it refuses what it cannot price.

use mmloop_data::LiftTestRecord;
use mmloop_mmm::Dataset;
use mmloop_mmm::calibration::implied_lift;
use mmloop_mmm::model::MmmModel;
use mmloop_mmm::model::simulate::{SimOptions, simulate};
use mmloop_mmm::optimize::FittedModel;
use mmloop_mmm::pricing::*;
use mmloop_mmm::simulate::{geometric_adstock, hill};
use mmloop_mmm::transforms::AdstockSpec;
use std::path::Path;

/// Draws scattered deterministically around the prior centre: pricing does not care how the draws
/// were obtained, only that they differ.
fn scattered_draws(model: &MmmModel, n: usize) -> Vec<mmloop_mmm::model::ParamValues> {
    let q0 = model.initial_point();
    (0..n)
        .map(|d| {
            let q: Vec<f64> =
                q0.iter().enumerate().map(|(i, x)| x + 0.4 * (((d * 31 + i * 17) % 23) as f64 / 23.0 - 0.5)).collect();
            model.unpack(&q)
        })
        .collect()
}

/// A 4-geo simulated world (2 channels, geometric adstock L = 6, logistic saturation) with a
/// two-channel lift-test record on two geos.
fn geo_world(records: Vec<LiftTestRecord>) -> FittedModel {
    let sim = simulate(&SimOptions { n_geos: 4, n_times: 60, tau: 0.3, seed: 5, ..Default::default() }).unwrap();
    let mut spec = sim.spec.clone();
    spec.calibration.lift_tests = records;
    let model = MmmModel::new(&spec, &sim.data).unwrap();
    let draws = scattered_draws(&model, 25);
    FittedModel { spec, data: sim.data, model, draws }
}

fn record(channels: &[&str], geos: &[&str], start: usize, end: usize, change: f64) -> LiftTestRecord {
    LiftTestRecord {
        channels: channels.iter().map(|s| s.to_string()).collect(),
        geos: geos.iter().map(|s| s.to_string()).collect(),
        start: start.to_string(),
        end: end.to_string(),
        spend_change: change,
        spend_path: None,
        incremental_kpi: 0.0,
        standard_error: 1.0,
        estimator: "test".into(),
        source: "test".into(),
    }
}

/// A record in the data prices exactly as its calibration term, under both of
/// `[calibration] lift_counts_carryover`'s rules: the window only (`Tail::WindowOnly`, the default)
/// and through the carry-over, stopping at the data's end (`Tail::DataEnd`).
#[test]
fn a_past_test_is_priced_exactly_as_its_calibration_term() {
    // one record well inside the data, one whose carry-over tail runs into the data's end
    // (the calibration rule stops the tail there; from_record prices with the same rule)
    let recs = vec![record(&["ch0", "ch1"], &["geo2", "geo0"], 20, 27, -3000.0), record(&["ch1"], &[], 55, 58, 1500.0)];
    for (carryover, tail) in [(false, Tail::WindowOnly), (true, Tail::DataEnd)] {
        let mut fit = geo_world(recs.clone());
        fit.spec.calibration.lift_counts_carryover = carryover;
        fit.model = MmmModel::new(&fit.spec, &fit.data).unwrap();
        for (i, rec) in recs.iter().enumerate() {
            let mut test = HypotheticalTest::from_record(rec, &fit.data).unwrap();
            test.tail = tail;
            let (term, money) = build_term(&fit, &test).unwrap();
            // same segments, bit for bit: one construction, shared
            assert_eq!(term.parts, fit.model.lift[i].parts, "record {i}, carry-over {carryover}");
            assert!((money - rec.spend_change).abs() <= 1e-9 * rec.spend_change.abs());
            let priced = price_test(&fit, &test).unwrap();
            for (d, p) in fit.draws.iter().enumerate() {
                let cal = implied_lift(&fit.model, p, &fit.model.lift[i]);
                // the same arithmetic in the same order: equality to rounding (1e-10 relative is loose)
                assert!((priced.per_draw[d] - cal).abs() <= 1e-10 * cal.abs().max(1e-300), "record {i} draw {d}");
                assert!(cal != 0.0);
            }
        }
    }
}

/// The carry-over after a window is lift the window-only rule leaves out: for a heavy-up
/// (positive change on a positive effect) the rule with the tail implies more, draw by draw, and
/// the two agree on a record whose window ends at the data's last period (no tail to count).
#[test]
fn counting_the_carryover_adds_the_tail_after_the_window() {
    let n = 60;
    let inner = record(&["ch0"], &["geo1"], 20, 23, 2500.0);
    let at_end = record(&["ch0"], &["geo1"], n - 4, n - 1, 2500.0);
    let price = |carryover: bool, rec: &LiftTestRecord| {
        let mut fit = geo_world(Vec::new());
        fit.spec.calibration.lift_counts_carryover = carryover;
        mmloop_mmm::pricing::price_record(&fit, rec).unwrap().per_draw
    };
    let (window, full) = (price(false, &inner), price(true, &inner));
    for (w, f) in window.iter().zip(&full) {
        assert!(*w > 0.0 && f > w, "window {w}, with carry-over {f}");
    }
    assert_eq!(price(false, &at_end), price(true, &at_end));
}

/// The geo demo with its true parameters, in the model's scaled units: θ = α, φ = (ec·p̄/m_c, n),
/// β(g,c) = p_g·β_true(g,c)/κ_g (the model's media is spend/(r_g·m_c), r_g = p_g/p̄; its KPI unit
/// in geo g is κ_g).
struct DemoTruth {
    fit: FittedModel,
    alpha: Vec<f64>,
    ec: Vec<f64>,
    slope: Vec<f64>,
    /// [g][c], per capita
    beta: Vec<Vec<f64>>,
    pop: Vec<f64>,
}

fn demo_truth() -> DemoTruth {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let spec = mmloop_mmm::config::load_config(root.join("data/demo_geo.toml")).unwrap();
    for ch in &spec.channels {
        assert!(matches!(ch.adstock, AdstockSpec::Geometric { max_lag: 8, normalize: true, .. }));
    }
    let data = Dataset::load(&spec).unwrap();
    let model = MmmModel::new(&spec, &data).unwrap();
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("data/demo_geo_truth.json")).unwrap()).unwrap();
    let tc = truth["channels"].as_array().unwrap();
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    let alpha: Vec<f64> = tc.iter().map(|c| f(&c["adstock_alpha"])).collect();
    let ec: Vec<f64> = tc.iter().map(|c| f(&c["hill_ec"])).collect();
    let slope: Vec<f64> = tc.iter().map(|c| f(&c["hill_slope"])).collect();
    let geos = truth["geos"].as_array().unwrap();
    let by_name = |g: &str| geos.iter().find(|x| x["geo"] == g).unwrap();
    let pop: Vec<f64> = data.geos.iter().map(|g| f(&by_name(g)["population"])).collect();
    let beta: Vec<Vec<f64>> =
        data.geos.iter().map(|g| by_name(g)["beta"].as_array().unwrap().iter().map(f).collect()).collect();
    let p_bar = pop.iter().sum::<f64>() / pop.len() as f64;
    let mut p = model.unpack(&model.initial_point());
    for c in 0..3 {
        assert_eq!(data.channels[c], tc[c]["name"].as_str().unwrap());
        p.theta[c] = vec![alpha[c]];
        p.phi[c] = vec![ec[c] * p_bar / model.channels[c].media_scale, slope[c]];
        for g in 0..data.n_geos() {
            p.beta_geo[c][g] = pop[g] * beta[g][c] / model.kpi_scale[g];
        }
    }
    let fit = FittedModel { spec, data, model, draws: vec![p] };
    DemoTruth { fit, alpha, ec, slope, beta, pop }
}

/// Brute force in the demo's own units and code (`simulate::geometric_adstock`, `simulate::hill`):
/// Σ_g Σ_t p_g·β(g,c)·[hill(adstock(x_cf/p_g)) − hill(adstock(x/p_g))] over the data's periods
/// followed by `extra` periods at the mean spend of the last `h` periods.
fn brute_force(
    t: &DemoTruth,
    c: usize,
    geos: &[usize],
    extra: usize,
    h: usize,
    cf: impl Fn(usize, usize, f64) -> f64,
) -> f64 {
    let data = &t.fit.data;
    let t_n = data.n_times();
    let mut lift = 0.0;
    for &g in geos {
        let mut x: Vec<f64> = (0..t_n).map(|s| data.spend[[g, s, c]]).collect();
        let recent = x[t_n - h..].iter().sum::<f64>() / h as f64;
        x.extend(std::iter::repeat_n(recent, extra));
        let x_cf: Vec<f64> = x.iter().enumerate().map(|(s, &v)| cf(g, s, v)).collect();
        let out = |x: &[f64]| -> Vec<f64> {
            let pc: Vec<f64> = x.iter().map(|v| v / t.pop[g]).collect();
            geometric_adstock(&pc, t.alpha[c], 8).iter().map(|&a| hill(a, t.ec[c], t.slope[c])).collect()
        };
        let (y0, y1) = (out(&x), out(&x_cf));
        lift += t.pop[g] * t.beta[g][c] * (0..x.len()).map(|s| y1[s] - y0[s]).sum::<f64>();
    }
    lift
}

#[test]
fn pricing_with_the_true_parameters_matches_a_brute_force_simulation_of_the_demo() {
    let t = demo_truth();
    let t_n = t.fit.data.n_times();
    let geo = |n: &str| t.fit.data.geos.iter().position(|g| g == n).unwrap();
    let names = [t.fit.data.geos[1].clone(), t.fit.data.geos[4].clone()];
    let treated = [geo(&names[0]), geo(&names[1])];
    let gs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    // the carry-over of a change in period s lasts 8 periods: extending by 8 + a margin covers it
    let cases: Vec<(usize, usize, usize, SpendChange)> = vec![
        (0, 40, 46, SpendChange::Multiplier(0.0)),           // TV go-dark, past
        (1, 30, 38, SpendChange::Total(250_000.0)),          // search heavy-up, past
        (2, 100, 104, SpendChange::Multiplier(1.5)),         // social heavy-up whose tail passes the data end
        (1, t_n + 3, t_n + 9, SpendChange::Multiplier(0.0)), // future go-dark at the recent level
        (0, t_n + 1, t_n + 5, SpendChange::PerPeriod(40_000.0)),
    ];
    for (c, start, end, change) in cases {
        for h in [4usize, 13] {
            let mut test = HypotheticalTest::new(&[t.fit.data.channels[c].as_str()], &gs, start, end, change);
            test.recent_periods = h;
            let priced = price_test(&t.fit, &test).unwrap().per_draw[0];
            let extra = end.max(t_n) - t_n + 12;
            let in_window = |g: usize, s: usize| treated.contains(&g) && (start..end).contains(&s);
            let brute = brute_force(&t, c, &treated, extra, h, |g, s, v| {
                if !in_window(g, s) {
                    return v;
                }
                match change {
                    SpendChange::Multiplier(m) => m * v,
                    // media is spend in the demo: money adds to the cell one for one
                    SpendChange::Total(x) => v + x / (2 * (end - start)) as f64,
                    SpendChange::PerPeriod(x) => v + x / 2.0,
                }
            });
            eprintln!("channel {c} [{start}, {end}) {change:?} H={h}: priced {priced:.6} brute force {brute:.6}");
            // two exact computations of one sum (σ-form Hill against x^n/(x^n+ec^n), scaled units
            // against per-capita): rounding only, ~1e-14 relative; 1e-9 as the brief asks
            assert!((priced - brute).abs() <= 1e-9 * brute.abs(), "{priced} vs {brute}");
            assert!(brute.abs() > 1.0, "a test that moves nothing proves nothing: {brute}");
        }
    }
}

#[test]
fn go_dark_on_a_channel_that_does_not_spend_prices_at_zero() {
    let t = demo_truth();
    let data = &t.fit.data;
    // TV is bought in national flights: find a 3-week stretch where no geo has TV spend
    let t_n = data.n_times();
    let dark = (0..t_n - 3)
        .find(|&s| (s..s + 3).all(|u| (0..data.n_geos()).all(|g| data.spend[[g, u, 0]] == 0.0)))
        .expect("the demo's TV flights leave dark weeks");
    let lift =
        price_test(&t.fit, &HypotheticalTest::new(&["tv"], &[], dark, dark + 3, SpendChange::Multiplier(0.0))).unwrap();
    assert!(lift.per_draw.iter().all(|&v| v == 0.0) && lift.spend_change == 0.0, "{lift:?}");
    // and a zero change is zero lift, whatever the window
    let zero = price_test(&t.fit, &HypotheticalTest::new(&["search"], &[], 10, 20, SpendChange::Total(0.0))).unwrap();
    assert_eq!(zero.per_draw, vec![0.0]);
}

#[test]
fn a_tiny_spend_change_prices_linearly_and_tails_nest() {
    let fit = geo_world(vec![]);
    let price = |change: f64, tail: Tail| {
        let mut test = HypotheticalTest::new(&["ch0"], &["geo1", "geo3"], 30, 36, SpendChange::Total(change));
        test.tail = tail;
        price_test(&fit, &test).unwrap()
    };
    // a cell spends ~100 a period; 0.01 spread over 12 cells moves the scaled media by Δx ~ 1e-5,
    // so the relative second-order term λ·s·Δx is ~1e-4 at most for these draws (λ ≲ 10)
    let (one, two) = (price(0.01, Tail::Full), price(0.02, Tail::Full));
    for d in 0..fit.draws.len() {
        let (a, b) = (one.per_draw[d], two.per_draw[d]);
        assert!(a > 0.0, "more spend, more KPI for a positive β: draw {d} {a}");
        // lift(Δ) = a·Δ + b·Δ² + …: the ratio is 2 + O(Δ·curvature/slope) ~ 1e-4 here
        assert!((b / a - 2.0).abs() < 1e-3, "draw {d}: {a} then {b}");
    }
    // spending less loses about as much as spending more gains, for a tiny change
    let minus = price(-0.01, Tail::Full);
    assert!((minus.mean + one.mean).abs() < 1e-3 * one.mean);
    // counting fewer periods of a positive effect gives less: window ≤ data-end ≤ full
    let (w, e) = (price(1000.0, Tail::WindowOnly), price(1000.0, Tail::DataEnd));
    let f = price(1000.0, Tail::Full);
    assert!(w.mean < f.mean && (e.mean - f.mean).abs() <= 1e-12 * f.mean, "{} {} {}", w.mean, e.mean, f.mean);
    assert_eq!(f.spend_change, 1000.0);
}

#[test]
fn a_future_window_is_priced_at_the_recent_spend_level() {
    let t = demo_truth();
    let t_n = t.fit.data.n_times();
    // far enough ahead (start ≥ t_n + L) that only the recent level feeds the adstock: a go-dark
    // then loses exactly what the brute force loses on a flat series at the mean of the last H
    // periods, and a different H (a different recent level) gives a different answer
    let g = 3;
    let name = t.fit.data.geos[g].clone();
    let price = |h: usize| {
        let mut test =
            HypotheticalTest::new(&["search"], &[name.as_str()], t_n + 10, t_n + 14, SpendChange::Multiplier(0.0));
        test.recent_periods = h;
        price_test(&t.fit, &test).unwrap()
    };
    for h in [1usize, 8, 26] {
        let priced = price(h);
        let brute = brute_force(&t, 1, &[g], 30, h, |_, s, v| if (t_n + 10..t_n + 14).contains(&s) { 0.0 } else { v });
        assert!((priced.per_draw[0] - brute).abs() <= 1e-9 * brute.abs(), "H={h}: {} vs {brute}", priced.per_draw[0]);
        let recent: f64 = (t_n - h..t_n).map(|s| t.fit.data.spend[[g, s, 1]]).sum::<f64>() / h as f64;
        assert!((priced.spend_change + 4.0 * recent).abs() <= 1e-9 * recent, "{} vs {}", priced.spend_change, recent);
    }
    let levels: Vec<f64> = [1usize, 8, 26]
        .iter()
        .map(|&h| (t_n - h..t_n).map(|s| t.fit.data.spend[[g, s, 1]]).sum::<f64>() / h as f64)
        .collect();
    assert!(levels[0] != levels[1] && price(1).mean != price(8).mean);
}

#[test]
fn time_labels_resolve_inside_and_beyond_the_data() {
    let t = demo_truth();
    let data = &t.fit.data;
    let n = data.n_times();
    assert_eq!(period_index(data, &data.times.labels[5]).unwrap(), 5);
    let last = data.times.values[n - 1];
    let two_weeks_on = mmloop_data::format_date(last + 14.0);
    assert_eq!(period_index(data, &two_weeks_on).unwrap(), n + 1);
    let off_grid = mmloop_data::format_date(last + 3.0);
    assert!(matches!(period_index(data, &off_grid), Err(PricingError::Time { .. })));
    assert!(matches!(period_index(data, "2001-01-01"), Err(PricingError::Time { .. })));
    assert!(matches!(period_index(data, "next week"), Err(PricingError::Time { .. })));
}

#[test]
fn what_cannot_be_priced_is_refused_with_the_option_named() {
    let t = demo_truth();
    let fit = &t.fit;
    let n = fit.data.n_times();
    let base = HypotheticalTest::new(&["tv"], &[], 10, 14, SpendChange::Multiplier(0.0));
    let err = |f: &dyn Fn(&mut HypotheticalTest)| {
        let mut test = base.clone();
        f(&mut test);
        price_test(fit, &test).unwrap_err()
    };
    let e = err(&|t| t.channels = vec!["radio".into()]);
    assert!(matches!(&e, PricingError::UnknownChannel { channel, .. } if channel == "radio"), "{e}");
    assert!(e.to_string().contains("tv, search, social"), "{e}");
    assert!(matches!(err(&|t| t.channels.clear()), PricingError::NoChannel));
    let e = err(&|t| t.geos = vec!["atlantis".into()]);
    assert!(matches!(&e, PricingError::UnknownGeo { geo, .. } if geo == "atlantis"), "{e}");
    let g0 = fit.data.geos[0].clone();
    assert!(matches!(err(&|t| t.geos = vec![g0.clone(), g0.clone()]), PricingError::DuplicateGeo { .. }));
    assert!(matches!(err(&|t| t.end = t.start), PricingError::EmptyWindow { start: 10, end: 10 }));
    assert!(matches!(err(&|t| t.end = 9), PricingError::EmptyWindow { .. }));
    let far = n + MAX_PERIODS_AHEAD + 1;
    assert!(matches!(
        err(&|t| {
            t.start = far - 2;
            t.end = far
        }),
        PricingError::WindowTooFar { .. }
    ));
    assert!(matches!(err(&|t| t.recent_periods = 0), PricingError::RecentPeriods { got: 0, .. }));
    assert!(matches!(err(&|t| t.recent_periods = n + 1), PricingError::RecentPeriods { .. }));
    let e = err(&|t| t.change = SpendChange::Multiplier(-0.5));
    assert!(matches!(e, PricingError::BadChange { option: "multiplier", .. }), "{e}");
    let e = err(&|t| t.change = SpendChange::Total(f64::NAN));
    assert!(matches!(e, PricingError::BadChange { option: "amount", .. }), "{e}");
    let mut no_draws = fit.clone();
    no_draws.draws.clear();
    assert!(matches!(price_test(&no_draws, &base), Err(PricingError::NoDraws)));
    let mut rec = record(&["tv"], &[], 0, 0, -10.0);
    rec.start = fit.data.times.labels[10].clone();
    rec.end = fit.data.times.labels[12].clone();
    rec.spend_path = Some(vec![]);
    assert!(matches!(HypotheticalTest::from_record(&rec, &fit.data), Err(PricingError::Unsupported { .. })));
}

#[test]
fn money_becomes_impressions_at_each_cells_own_rate_national_demo() {
    // the national demo's social channel is driven by impressions: a change in money enters the
    // model as money × the cell's impressions per money (the recent window's rate beyond the data)
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let spec = mmloop_mmm::config::load_config(root.join("data/demo_national.toml")).unwrap();
    let data = Dataset::load(&spec).unwrap();
    let model = MmmModel::new(&spec, &data).unwrap();
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("data/demo_national_truth.json")).unwrap()).unwrap();
    let tc = &truth["channels"][2];
    assert_eq!(tc["name"], "social");
    let f = |k: &str| tc[k].as_f64().unwrap();
    let (alpha, ec, slope, beta) = (f("adstock_alpha"), f("hill_ec"), f("hill_slope"), f("beta"));
    let mut p = model.unpack(&model.initial_point());
    p.theta[2] = vec![alpha];
    p.phi[2] = vec![ec / model.channels[2].media_scale, slope];
    p.beta_geo[2][0] = beta / model.kpi_scale[0];
    let t_n = data.n_times();
    let fit = FittedModel { spec, data, model, draws: vec![p] };
    let (spend, media): (Vec<f64>, Vec<f64>) =
        (0..t_n).map(|t| (fit.data.spend[[0, t, 2]], fit.data.media[[0, t, 2]])).unzip();
    for (start, end, money) in [(50usize, 56usize, 20_000.0), (t_n + 1, t_n + 4, -9_000.0)] {
        let h = 8;
        let test = HypotheticalTest {
            recent_periods: h,
            ..HypotheticalTest::new(&["social"], &[], start, end, SpendChange::Total(money))
        };
        let priced = price_test(&fit, &test).unwrap().per_draw[0];
        // brute force in impressions, with the demo's own adstock and Hill
        let extra = end.max(t_n) - t_n + 12;
        let (rs, rm): (f64, f64) = (spend[t_n - h..].iter().sum(), media[t_n - h..].iter().sum());
        let mut x = media.clone();
        x.extend(std::iter::repeat_n(rm / h as f64, extra));
        let per = money / (end - start) as f64;
        let x_cf: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(t, &v)| {
                if !(start..end).contains(&t) {
                    v
                } else if t < t_n {
                    (v + per * media[t] / spend[t]).max(0.0)
                } else {
                    (v + per * rm / rs).max(0.0)
                }
            })
            .collect();
        let y = |x: &[f64]| -> f64 { geometric_adstock(x, alpha, 8).iter().map(|&a| beta * hill(a, ec, slope)).sum() };
        let brute = y(&x_cf) - y(&x);
        assert!(spend[start.min(t_n - 1)] > 0.0);
        // same sum by two routes (model's scaled units vs the demo's): rounding only
        assert!((priced - brute).abs() <= 1e-9 * brute.abs(), "[{start}, {end}): {priced} vs {brute}");
        assert!(brute.abs() > 1.0);
    }
}

#[test]
fn prices_do_not_depend_on_the_thread_count() {
    let fit = geo_world(vec![]);
    let test = HypotheticalTest::new(&["ch0", "ch1"], &["geo1"], 58, 64, SpendChange::Multiplier(1.3));
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| price_test(&fit, &test).unwrap())
    };
    let one = run(1);
    assert_eq!(one, run(3));
    assert!(one.mean > 0.0 && one.q05 <= one.mean && one.mean <= one.q95 && one.sd > 0.0, "{one:?}");
}

/// The loop's out-of-sample check: a readout whose window lies after the fit's data cannot be in
/// the data, so `price_record` prices it as the hypothetical test it describes (the recent spend
/// level plus the change), not as a calibration term (which needs the window in the data).
#[test]
fn a_readout_after_the_fits_data_is_priced_as_its_hypothetical_test() {
    let fit = geo_world(Vec::new());
    let n = fit.data.n_times();
    let rec = record(&["ch0"], &["geo1"], n + 2, n + 5, 2500.0);
    let priced = mmloop_mmm::pricing::price_record(&fit, &rec).unwrap();
    // over the window, as the readout measures and the calibration term will count it
    let mut test = HypotheticalTest::from_record(&rec, &fit.data).unwrap();
    test.tail = Tail::WindowOnly;
    let as_test = price_test(&fit, &test).unwrap();
    assert_eq!(priced.per_draw, as_test.per_draw);
    assert!(priced.mean > 0.0, "a heavy-up's implied lift is positive: {}", priced.mean);
    // a go-dark's readout carries its per-cell spend_path: after the data it prices by its total,
    // exactly as the flat record (the fit has no spend of the window to follow the path with)
    let mut dark = record(&["ch0"], &["geo1"], n + 2, n + 5, -2500.0);
    let mut flat_test = HypotheticalTest::from_record(&dark, &fit.data).unwrap();
    flat_test.tail = Tail::WindowOnly;
    let flat = price_test(&fit, &flat_test).unwrap();
    dark.spend_path =
        Some(vec![mmloop_data::SpendDelta { time: dark.start.clone(), geo: "geo1".into(), delta: -2500.0 }]);
    let priced = mmloop_mmm::pricing::price_record(&fit, &dark).unwrap();
    assert_eq!(priced.per_draw, flat.per_draw);
    assert!(priced.mean < 0.0, "a go-dark's implied lift is negative: {}", priced.mean);
    // inside the data, the same record prices as the calibration term under the spec's convention
    let inside = record(&["ch0"], &["geo1"], 20, 23, 2500.0);
    let fit = geo_world(vec![inside.clone()]);
    let priced = mmloop_mmm::pricing::price_record(&fit, &inside).unwrap();
    for (d, p) in fit.draws.iter().enumerate() {
        assert_eq!(priced.per_draw[d], implied_lift(&fit.model, p, &fit.model.lift[0]));
    }
}

/// `tests_in_data`: when the data hold the test, a readout of change Δ prices as f(x) − f(x − Δ);
/// the what-if convention prices f(x + Δ) − f(x). So the in-data price of Δ is exactly minus the
/// what-if price of −Δ (both clip a path below zero at zero), draw by draw.
#[test]
fn the_in_data_convention_removes_the_change_instead_of_adding_it() {
    let rec = record(&["ch0", "ch1"], &["geo1", "geo3"], 20, 27, 4000.0);
    let mut minus = rec.clone();
    minus.spend_change = -rec.spend_change;
    let mut fit = geo_world(Vec::new());
    fit.spec.calibration.tests_in_data = false;
    let what_if_minus = mmloop_mmm::pricing::price_record(&fit, &minus).unwrap();
    let what_if = mmloop_mmm::pricing::price_record(&fit, &rec).unwrap();
    fit.spec.calibration.tests_in_data = true;
    let in_data = mmloop_mmm::pricing::price_record(&fit, &rec).unwrap();
    for d in 0..in_data.per_draw.len() {
        let (a, b) = (in_data.per_draw[d], -what_if_minus.per_draw[d]);
        // the same segments and arithmetic with the two paths swapped: equal to rounding
        assert!((a - b).abs() <= 1e-10 * a.abs().max(1e-300), "draw {d}: {a} vs {b}");
    }
    assert!(in_data.per_draw != what_if.per_draw, "the two conventions differ");
}
