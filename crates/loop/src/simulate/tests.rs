//! Fast checks of the simulator's machinery on tiny settings (2 worlds × 2 cycles, small fits).

use super::*;
use crate::world::World;

/// Tiny settings: 3-channel, 8-geo worlds, few draws and readouts. The figures mean nothing; the
/// machinery is what is checked.
pub(super) fn tiny(arms: &[Arm]) -> SimSettings {
    let mut s = SimSettings {
        worlds: 2,
        cycles: 2,
        arms: arms.to_vec(),
        seed: 7,
        draws: 40,
        evoi_readouts: 20,
        evpi_draws: 20,
        design_windows: 2,
        design_max_candidates: 4,
        designs: 2,
        durations: vec![4],
        max_tests: 2,
        ..Default::default()
    };
    s.distribution.channels = (3, 3);
    s.distribution.geos = (8, 8);
    s
}

/// The part of the KPI no decision touches (baseline, demand, noise): KPI minus every channel's
/// true media contribution, per geo and week.
fn exogenous(w: &World) -> Vec<Vec<f64>> {
    (0..w.geos().len())
        .map(|g| {
            let mut k = w.kpi(g).to_vec();
            for c in 0..w.channels().len() {
                let contrib = w.contribution_path(c, g, w.spend(c, g), 0);
                for (x, m) in k.iter_mut().zip(contrib) {
                    *x -= m;
                }
            }
            k
        })
        .collect()
}

#[test]
fn arms_share_worlds_and_noise_the_oracle_costs_nothing_and_none_never_tests() {
    let s = SimSettings { worlds: 1, ..tiny(&[Arm::Random, Arm::None, Arm::Oracle]) };
    let mut seen: BTreeMapWorlds = Default::default();
    let mut rows = Vec::new();
    for arm in [Arm::Random, Arm::None, Arm::Oracle] {
        rows.extend(
            run_arm_with(&s, 0, arm, &mut |c, w| {
                seen.entry((arm, c)).or_insert_with(|| w.clone());
            })
            .unwrap(),
        );
    }
    // the same world at the start of cycle 1
    assert_eq!(seen[&(Arm::None, 1)], seen[&(Arm::Oracle, 1)]);
    assert_eq!(seen[&(Arm::None, 1)], seen[&(Arm::Random, 1)]);
    // after a cycle under different budgets (and tests), the part no decision touches is the same:
    // the arms saw the same baseline, demand and noise. KPI is rounded to cents per week, and the
    // contributions are recomputed in floating point: 0.02 per cell covers both roundings.
    let (a, b, r) =
        (exogenous(&seen[&(Arm::None, 2)]), exogenous(&seen[&(Arm::Oracle, 2)]), exogenous(&seen[&(Arm::Random, 2)]));
    assert_ne!(seen[&(Arm::None, 2)].spend(0, 0), seen[&(Arm::Oracle, 2)].spend(0, 0), "the budgets differ");
    for ((x, y), z) in a.iter().flatten().zip(b.iter().flatten()).zip(r.iter().flatten()) {
        assert!((x - y).abs() < 0.02 && (x - z).abs() < 0.02, "{x} vs {y} vs {z}");
    }
    for r in &rows {
        match r.arm {
            Arm::Oracle => {
                // the true optimum against itself: zero up to the solver's tolerance
                assert!(r.misallocation_cost.abs() <= 1e-9 * r.oracle_outcome, "{r:?}");
                assert_eq!(r.tests, 0);
            }
            Arm::None => {
                assert_eq!(r.tests, 0);
                assert_eq!(r.readouts, 0);
                assert!(r.misallocation_cost >= -1e-9 * r.oracle_outcome, "{r:?}");
            }
            _ => assert!(r.misallocation_cost >= -1e-9 * r.oracle_outcome, "{r:?}"),
        }
    }
    // cycle 1: no readout yet, same world, same fit seed: the fitted arms decide alike
    let c1 = |arm| rows.iter().find(|r| r.arm == arm && r.cycle == 1).unwrap();
    assert_eq!(c1(Arm::None).misallocation_cost, c1(Arm::Random).misallocation_cost);
    assert_eq!(c1(Arm::None).roi_rmse, c1(Arm::Random).roi_rmse);
    // the random arm ran tests and its second fit was calibrated on them
    assert!(c1(Arm::Random).tests > 0);
    let r2 = rows.iter().find(|r| r.arm == Arm::Random && r.cycle == 2).unwrap();
    assert_eq!(r2.readouts, c1(Arm::Random).tests);
    assert_eq!(r2.new_readouts, c1(Arm::Random).tests);
}

type BTreeMapWorlds = std::collections::BTreeMap<(Arm, usize), World>;

#[test]
fn results_are_identical_whatever_the_thread_count() {
    let s = tiny(&[Arm::Evoi, Arm::None, Arm::Oracle]);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| simulate(&s, &|| {}).unwrap())
    };
    let (a, b) = (run(1), run(2));
    assert_eq!(results_csv(&a), results_csv(&b));
    let (sa, sb) = (summarise(&a), summarise(&b));
    let strip = |mut s: Summary| {
        s.seconds = 0.0;
        serde_json::to_string(&s).unwrap()
    };
    assert_eq!(strip(sa), strip(sb));
    // every world × arm × cycle, in order
    assert_eq!(a.rows.len(), 2 * 3 * 2);
    let keys: Vec<(usize, Arm, usize)> = a.rows.iter().map(|r| (r.world, r.arm, r.cycle)).collect();
    let mut sorted = keys.clone();
    sorted.sort_by_key(|&(w, arm, c)| (w, s.arms.iter().position(|x| *x == arm), c));
    assert_eq!(keys, sorted);
    assert!(a.rows.iter().all(|r| r.tests <= 2), "at most max_tests a cycle");
}

#[test]
fn eig_and_uncertainty_choose_disjoint_tests_up_to_the_limit() {
    let s = SimSettings { cycles: 1, ..tiny(&[Arm::Eig, Arm::Uncertainty]) };
    for arm in [Arm::Eig, Arm::Uncertainty] {
        let rows = run_arm(&s, 1, arm).unwrap();
        // EIG always gains from another test, but the tiny design search may find no two
        // disjoint designs: one or two tests
        assert!((1..=2).contains(&rows[0].tests), "{arm}: {rows:?}");
        if arm == Arm::Uncertainty && rows[0].tests == 2 {
            // one test per channel
            let ch: Vec<&str> = rows[0].tested_channels.split(';').collect();
            assert_ne!(ch[0], ch[1], "{rows:?}");
        }
    }
}

#[test]
fn a_worlds_arms_share_the_first_fit_the_plan_and_random_matches_evois_count() {
    let s = SimSettings { worlds: 1, ..tiny(&[Arm::Random, Arm::Evoi, Arm::None]) };
    let rows = run_world(&s, 0).unwrap();
    // rows in the settings' arm order although evoi ran first
    let arms: Vec<Arm> = rows.iter().map(|r| r.arm).collect();
    assert_eq!(arms, [Arm::Random, Arm::Random, Arm::Evoi, Arm::Evoi, Arm::None, Arm::None]);
    let get = |arm, cycle| rows.iter().find(|r| r.arm == arm && r.cycle == cycle).unwrap();
    for c in 1..=2 {
        assert_eq!(get(Arm::Random, c).tests, get(Arm::Evoi, c).tests, "cycle {c}: {rows:?}");
    }
    // the shared first fit is the fit each arm would have made alone
    let alone = run_arm(&s, 0, Arm::None).unwrap();
    assert_eq!(alone[0].roi_rmse, get(Arm::None, 1).roi_rmse);
    assert_eq!(alone[0].misallocation_cost, get(Arm::None, 1).misallocation_cost);
    assert_eq!(get(Arm::Evoi, 1).roi_rmse, get(Arm::None, 1).roi_rmse);
    // one budget and one set of guardrails for every arm and cycle
    assert!(rows.iter().all(|r| r.budget == rows[0].budget), "{rows:?}");
    assert!(rows.iter().all(|r| r.misallocation_cost >= -1e-9 * r.oracle_outcome), "{rows:?}");
}

#[test]
fn scenarios_are_named_and_keep_the_channel_range() {
    let s = SimSettings::default();
    let d = s.clone().scenario("drift").unwrap();
    assert_eq!(d.scenario, "drift");
    assert_eq!(d.distribution.p_drift, 1.0);
    assert_eq!(d.distribution.channels, s.distribution.channels);
    let e = s.scenario("sunny").unwrap_err().to_string();
    assert!(e.starts_with("--scenario:") && e.contains("biased_experiments"), "{e}");
}

#[test]
fn quantiles_bootstrap_and_reductions_are_what_they_say() {
    let q = Quantiles::of([4.0, 1.0, 3.0, 2.0, f64::NAN, 5.0]);
    assert_eq!((q.n, q.median, q.mean), (5, 3.0, 3.0));
    // type-7 quantiles: p10 of 1..5 = 1 + 0.4, p90 = 5 - 0.4
    assert!((q.p10 - 1.4).abs() < 1e-12 && (q.p90 - 4.6).abs() < 1e-12);
    let row = |world, arm, cycle, cost: f64| Row {
        world,
        arm,
        cycle,
        channels: 3,
        geos: 8,
        confounding: 1.0,
        weeks: 104,
        budget: 1.0,
        oracle_outcome: 100.0,
        misallocation_cost: cost,
        misallocation_share: cost / 100.0,
        start_cost: 10.0,
        decision_efficiency: f64::NAN,
        roi_rmse: f64::NAN,
        coverage90: f64::NAN,
        width90: f64::NAN,
        tests: 0,
        test_cost: 0.0,
        readouts: 0,
        new_readouts: 0,
        discrepancy_flags: 0,
        readouts_covering_truth: 0,
        tested_channels: String::new(),
        fit_seconds: 0.0,
        choose_seconds: 0.0,
    };
    let mut rows = Vec::new();
    for w in 0..10 {
        // evoi halves its cost from cycle 1 to 2; none stays; evoi is 1 lower per world in total
        rows.push(row(w, Arm::Evoi, 1, 2.0));
        rows.push(row(w, Arm::Evoi, 2, 1.0));
        rows.push(row(w, Arm::None, 1, 2.0));
        rows.push(row(w, Arm::None, 2, 2.0));
    }
    let s = SimSettings { cycles: 2, arms: vec![Arm::Evoi, Arm::None], ..Default::default() };
    let sum = summarise(&SimResult { rows, settings: s, seconds: 0.0 });
    let red = &sum.reductions[0];
    assert_eq!(red.arm, Arm::Evoi);
    assert!((red.from_first_cycle.median - 0.5).abs() < 1e-12 && (red.pooled_from_first_cycle - 0.5).abs() < 1e-12);
    assert!((red.from_start.median - 0.9).abs() < 1e-12);
    let cum = sum.paired.iter().find(|p| p.over == "cumulative").unwrap();
    // a constant difference: the bootstrap interval is that constant
    assert_eq!((cum.mean, cum.mean_ci90, cum.share_arm_better), (-1.0, (-1.0, -1.0), 1.0));
    assert!(terminal_summary(&sum).contains("evoi costs less"));
}

#[test]
fn bad_settings_name_the_option() {
    let e = |s: SimSettings| s.validate().unwrap_err().to_string();
    assert!(e(SimSettings { worlds: 0, ..Default::default() }).starts_with("--worlds:"));
    assert!(e(SimSettings { cycles: 0, ..Default::default() }).starts_with("--cycles:"));
    assert!(e(SimSettings { durations: vec![20], ..Default::default() }).starts_with("--durations:"));
    assert!(Arm::parse_list("evoi,magic").unwrap_err().to_string().contains("unknown arm \"magic\""));
    assert!(Arm::parse_list("evoi,evoi").unwrap_err().to_string().contains("listed twice"));
    assert_eq!(Arm::parse_list(" none , oracle").unwrap(), vec![Arm::None, Arm::Oracle]);
}
