//! Fast checks of the world: determinism, the truth's definitions by brute force, the optimum,
//! the observed data's round trip, tests run in the world and read out.

use super::*;
use mmloop_mmm::pricing::SpendChange;

fn demo() -> World {
    World::new(WorldSpec::default()).unwrap()
}

fn heavy_up(start: usize) -> PlannedTest {
    PlannedTest::new(&["search"], &["geo02", "geo05", "geo09"], start, 6, SpendChange::Total(900_000.0))
}

#[test]
fn same_seed_same_world_and_readouts_whatever_the_thread_count() {
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut w = demo();
            let t = w.weeks();
            let tests = [
                heavy_up(t + 1),
                PlannedTest::new(&["tv"], &["geo01", "geo07"], t + 2, 8, SpendChange::Multiplier(0.0)),
            ];
            let runs = w.advance(13, &tests, &ReadoutOptions::fast()).unwrap();
            (
                w,
                runs.into_iter()
                    .map(|r| (r.record, r.true_lift_in_window, r.true_lift_with_carryover))
                    .collect::<Vec<_>>(),
            )
        })
    };
    let (a, ra) = run(1);
    let (b, rb) = run(2);
    assert_eq!(a, b);
    assert_eq!(ra, rb);
    assert_eq!(a.weeks(), 104 + 13);
    // another seed is another world
    let c = World::new(WorldSpec::demo(1)).unwrap();
    assert_ne!(c.kpi(0), demo().kpi(0));
}

#[test]
fn spec_roi_is_the_initial_history_roi_and_matches_zeroing_the_channel() {
    let w = demo();
    let roi = w.true_roi();
    for (r, c) in roi.iter().zip(&w.spec().channels) {
        // β is solved from the target ROI: equal to rounding (1e-12 relative)
        assert!((r - c.roi).abs() < 1e-12 * c.roi, "{r} vs {}", c.roi);
    }
    // brute force: the KPI the world would have shown had channel c never spent, same noise
    let t_n = w.weeks();
    let demand = w.demand(t_n);
    for (c, &roi_c) in roi.iter().enumerate() {
        let (mut lost, mut money) = (0.0, 0.0);
        for g in 0..w.geos().len() {
            let zero = vec![0.0; t_n];
            let paths: Vec<Vec<f64>> =
                (0..w.channels().len()).map(|k| if k == c { zero.clone() } else { w.spend(k, g).to_vec() }).collect();
            for t in 0..t_n {
                lost += w.kpi(g)[t] - w.kpi_at(g, t, &demand, |k| &paths[k]);
            }
            money += w.spend(c, g).iter().sum::<f64>();
        }
        // both KPIs are rounded to cents: the difference carries ≤ 1 cent per geo-week of rounding
        let tol = 0.01 * (t_n * w.geos().len()) as f64 / money;
        assert!((lost / money - roi_c).abs() <= tol, "channel {c}: brute force {} vs {roi_c}", lost / money);
    }
}

#[test]
fn planner_outcome_is_a_direct_simulation_of_flat_spend() {
    let w = demo();
    let h = 13;
    let plan = w.planner(h);
    let alloc = [2.0e6, 1.5e6, 0.5e6, 3.0e6];
    let direct: f64 = (0..alloc.len())
        .map(|c| {
            w.geos()
                .iter()
                .enumerate()
                .map(|(g, geo)| {
                    let weekly = alloc[c] * geo.share[c] / h as f64;
                    let path: Vec<f64> = (0..h + w.spec().max_lag).map(|t| if t < h { weekly } else { 0.0 }).collect();
                    w.contribution_path(c, g, &path).iter().sum::<f64>()
                })
                .sum::<f64>()
        })
        .sum();
    let o = plan.outcome(&alloc).unwrap();
    assert!((o - direct).abs() < 1e-9 * direct, "{o} vs {direct}");
}

#[test]
fn misallocation_is_zero_at_the_true_optimum_and_positive_elsewhere() {
    let w = demo();
    let plan = w.planner(13);
    let current = w.recent_spend(13);
    let bounds = plan.bounds_around(&current, 0.5);
    let budget: f64 = current.iter().sum();
    let best = plan.optimum(budget, &bounds).unwrap();
    let at_best = plan.misallocation_within(&best.spend, &bounds).unwrap();
    // the solver stops at a KKT residual ~1e-12; the outcome is flat at the optimum, so the
    // cost is zero to ~1e-9 relative
    assert!(at_best.cost.abs() <= 1e-9 * at_best.oracle_outcome, "{at_best:?}");
    for i in 0..20u64 {
        // random feasible allocations of the same budget: a mix of the bounds
        let u: Vec<f64> = (0..current.len()).map(|c| crate::value::rng::uniform(5, i, c as u64)).collect();
        let raw: Vec<f64> =
            (0..current.len()).map(|c| bounds.lower[c] + u[c] * (bounds.upper[c] - bounds.lower[c])).collect();
        // rescale towards the budget inside the box by moving along (upper − lower) with one λ
        let f = |lam: f64| -> Vec<f64> {
            raw.iter()
                .enumerate()
                .map(|(c, r)| (r + lam * (bounds.upper[c] - bounds.lower[c])).clamp(bounds.lower[c], bounds.upper[c]))
                .collect()
        };
        let (mut lo, mut hi) = (-1.0, 1.0);
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if f(mid).iter().sum::<f64>() < budget { lo = mid } else { hi = mid }
        }
        let alloc = f(0.5 * (lo + hi));
        let m = plan.misallocation_within(&alloc, &bounds).unwrap();
        assert!(m.cost >= -1e-9 * m.oracle_outcome, "{m:?}");
        assert!((m.share - m.cost / m.oracle_outcome).abs() < 1e-15);
    }
    let eff = plan.decision_efficiency(&current, &best.spend, &bounds).unwrap().unwrap();
    assert!((eff - 1.0).abs() < 1e-6, "{eff}");
    assert_eq!(plan.decision_efficiency(&current, &current, &bounds).unwrap(), Some(0.0));
}

#[test]
fn written_files_load_to_the_in_memory_dataset() {
    let w = demo();
    let dir = tempfile::tempdir().unwrap();
    let (data, config) = w.write_files(dir.path()).unwrap();
    let spec = mmloop_mmm::config::load_config(&config).unwrap();
    let loaded = mmloop_mmm::Dataset::load(&spec).unwrap();
    let memory = w.dataset(&data);
    assert_eq!(loaded.source.canonicalize().unwrap(), memory.source.canonicalize().unwrap());
    assert_eq!(mmloop_mmm::Dataset { source: memory.source.clone(), ..loaded }, memory);
    assert_eq!(w.model_spec(&data).unwrap(), spec);
    assert!(dir.path().join("truth.json").exists());
}

#[test]
fn a_heavy_up_is_injected_through_adstock_and_read_out() {
    let w = demo();
    let t = w.weeks();
    let run = w.run_test(&heavy_up(t + 2), &ReadoutOptions::fast()).unwrap();
    let r = &run.record;
    assert_eq!(r.channels, ["search"]);
    assert_eq!(r.geos, ["geo02", "geo05", "geo09"]);
    assert_eq!((r.start.as_str(), r.end.as_str()), (w.week_label(t + 2).as_str(), w.week_label(t + 7).as_str()));
    // the change is spread evenly (to the cent) so the record needs no spend path
    assert!((run.spend_change - 900_000.0).abs() < 0.01 * 18.0, "{}", run.spend_change);
    assert_eq!(r.spend_change, run.spend_change);
    assert!(r.spend_path.is_none());
    // more spend, more sales, and carry-over after the window
    assert!(run.true_lift_in_window > 0.0 && run.true_lift_with_carryover > run.true_lift_in_window);
    assert!(r.standard_error > 0.0 && run.interval.0 < r.incremental_kpi && r.incremental_kpi < run.interval.1);
    assert_eq!(run.panel.time_labels.last().unwrap(), &r.end);
    // the world itself did not move
    assert_eq!(w.weeks(), t);

    // a planted bias scales the readout and nothing else
    let biased = w.run_test(&heavy_up(t + 2).biased(2.5), &ReadoutOptions::fast()).unwrap();
    assert!((biased.record.incremental_kpi - 2.5 * r.incremental_kpi).abs() < 1e-9 * r.incremental_kpi.abs());
    assert_eq!(biased.record.standard_error, r.standard_error);
    assert_eq!(biased.true_lift_in_window, run.true_lift_in_window);

    // go-dark: the exact (uneven) cut travels as a spend path
    let dark = PlannedTest::new(&["tv"], &["geo01", "geo07"], t, 6, SpendChange::Multiplier(0.0));
    let d = w.run_test(&dark, &ReadoutOptions::fast()).unwrap();
    assert!(d.spend_change < 0.0 && d.true_lift_in_window < 0.0);
    let path = d.record.spend_path.as_ref().unwrap();
    assert!((path.iter().map(|p| p.delta).sum::<f64>() - d.spend_change).abs() < 1e-6);
}

#[test]
fn advancing_follows_the_recommendation_and_keeps_the_past() {
    let mut w = demo();
    let before = w.clone();
    let alloc = [6.0e6, 1.0e6, 4.0e6, 2.0e6];
    w.follow(&alloc, 13).unwrap();
    w.advance(13, &[], &ReadoutOptions::fast()).unwrap();
    assert_eq!(w.weeks(), 117);
    for g in 0..w.geos().len() {
        assert_eq!(&w.kpi(g)[..104], before.kpi(g));
    }
    let spent = w.recent_spend(13);
    for (c, (s, a)) in spent.iter().zip(alloc).enumerate() {
        // the confounded factor has mean one; its log-sd is ≤ √(κ²λ² + s²) ≈ 1.03 per cell, averaged
        // over 12 geos × 13 weeks with AR(1) demand (ρ = 0.85, effective n ≈ 12·13·0.08 ≈ 13): ±45 %
        assert!((s / a - 1.0).abs() < 0.45, "channel {c}: spent {s} of {a}");
    }
    // a world advanced in two steps equals one advanced in one step (the future does not depend on
    // how it is asked for)
    let mut one = before.clone();
    one.follow(&alloc, 13).unwrap();
    one.advance(13, &[], &ReadoutOptions::fast()).unwrap();
    let mut two = before.clone();
    two.follow(&alloc, 13).unwrap();
    two.advance(5, &[], &ReadoutOptions::fast()).unwrap();
    two.advance(8, &[], &ReadoutOptions::fast()).unwrap();
    assert_eq!(one, two);
}

#[test]
fn bad_tests_and_allocations_are_refused_with_reasons() {
    let mut w = demo();
    let t = w.weeks();
    let err = |test: PlannedTest| w.run_test(&test, &ReadoutOptions::fast()).unwrap_err().to_string();
    assert!(
        err(PlannedTest::new(&["radio"], &["geo01"], t, 4, SpendChange::Total(1e5)))
            .contains("\"radio\" is not in the world")
    );
    assert!(err(PlannedTest::new(&["tv"], &["geo99"], t, 4, SpendChange::Total(1e5))).contains("\"geo99\""));
    assert!(
        err(PlannedTest::new(&["tv"], &["geo01"], t - 5, 4, SpendChange::Total(1e5)))
            .contains("plan it after the data")
    );
    assert!(err(PlannedTest::new(&["tv"], &["geo01"], t, 4, SpendChange::Total(0.0))).contains("non-zero"));
    assert!(
        err(PlannedTest::new(&["tv"], &["geo01"], t, 4, SpendChange::Total(1e5)).biased(0.0)).contains("readout_bias")
    );
    assert!(w.follow(&[1.0, 2.0], 13).unwrap_err().to_string().contains("2 amounts for 4 channels"));
    assert!(w.planner(13).outcome(&[1.0, -2.0, 0.0, 0.0]).unwrap_err().to_string().contains("\"search\""));
    let mut spec = WorldSpec::default();
    spec.channels[1].adstock_alpha = 1.5;
    assert!(World::new(spec).unwrap_err().to_string().contains("channels[1] (search).adstock_alpha"));
}

#[test]
fn the_distribution_draws_valid_varied_worlds_from_the_seed() {
    let d = WorldDistribution::default();
    let specs: Vec<WorldSpec> = (0..40).map(|i| d.sample(9, i)).collect();
    assert_eq!(specs, (0..40).map(|i| d.sample(9, i)).collect::<Vec<_>>());
    for s in &specs {
        s.validate().unwrap();
        assert!((3..=8).contains(&s.channels.len()) && (8..=20).contains(&s.n_geos));
    }
    // every channel count occurs, and unconfounded worlds occur (p = 0.25 each world of 40)
    for n in 3..=8 {
        assert!(specs.iter().any(|s| s.channels.len() == n), "no world with {n} channels");
    }
    assert!(specs.iter().any(|s| s.confounding == 0.0) && specs.iter().any(|s| s.confounding > 0.0));
    World::new(specs[0].clone()).unwrap();
}
