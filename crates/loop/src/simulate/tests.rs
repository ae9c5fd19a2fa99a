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
fn a_worlds_arms_share_the_first_fit_its_recommendation_the_plan_and_random_matches_evois_count() {
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
    let mut own = Shared::default();
    let alone = run_arm_shared(&s, 0, Arm::None, &mut own, &mut |_, _| {}).unwrap();
    assert_eq!(alone[0].roi_rmse, get(Arm::None, 1).roi_rmse);
    assert_eq!(alone[0].misallocation_cost, get(Arm::None, 1).misallocation_cost);
    assert_eq!(get(Arm::Evoi, 1).roi_rmse, get(Arm::None, 1).roi_rmse);
    // the start's misallocation, solved by the first arm and reused by the others, and the decision
    // efficiency taken from the recommendation's misallocation: the same bits as the arm alone
    // efficiency taken from the recommendation's misallocation, and cycle 1's recommendation, made
    // once by evoi (which runs first) and reused by none: the same bits as the arm alone, which
    // made its own, in cycle 1 and after the world followed it
    let bits = |r: &Row| {
        [r.start_cost, r.oracle_outcome, r.decision_efficiency, r.misallocation_cost, r.misallocation_share, r.roi_rmse]
            .map(f64::to_bits)
    };
    let shared: Vec<&Row> = rows.iter().filter(|r| r.arm == Arm::None).collect();
    assert_eq!(alone.len(), shared.len());
    for (a, r) in alone.iter().zip(shared) {
        assert_eq!(bits(a), bits(r), "cycle {}: {a:?} vs {r:?}", a.cycle);
    }
    // the arm alone's own recommendation is what cycle 1 was scored on: its misallocation is the row's
    let own_first = own.first_recommendation.expect("the arm alone recommended in cycle 1");
    let w0 = world_of(&s, 0).unwrap();
    let plan0 = w0.recent_spend(s.horizon);
    let guard = w0.planner(s.horizon).bounds_around(&plan0, s.relative);
    let m = w0.planner(s.horizon).misallocation_within(&own_first, &guard).unwrap();
    assert_eq!(m.cost.to_bits(), get(Arm::None, 1).misallocation_cost.to_bits());
    // every fitted arm was scored on the one recommendation in cycle 1
    for arm in [Arm::Random, Arm::Evoi] {
        assert_eq!(get(arm, 1).misallocation_cost.to_bits(), m.cost.to_bits(), "{arm}");
    }
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
    let b = e(SimSettings { observational_bias_sd: -0.5, ..Default::default() });
    assert!(b.starts_with("--observational-bias-sd:") && b.contains("-0.5"), "{b}");
    assert!(Arm::parse_list("evoi,magic").unwrap_err().to_string().contains("unknown arm \"magic\""));
    assert!(Arm::parse_list("evoi,evoi").unwrap_err().to_string().contains("listed twice"));
    assert_eq!(Arm::parse_list(" none , oracle").unwrap(), vec![Arm::None, Arm::Oracle]);
}

/// `evoi_discard` is `evoi` until a readout is flagged; the flagged readout then no longer
/// calibrates its fits. Every readout here is 40× its true lift, so the check flags it (the one test
/// is a small one: at 6× its readout still covered the true lift and was not flagged); the two arms
/// agree on cycle 1 and on the flags of cycle 2, and their cycle-2 fits differ (evoi calibrates on
/// the biased readout, evoi_discard does not). The settings' `worlds` is 1, but `run_world` takes any
/// world index of the distribution.
#[test]
fn evoi_discard_drops_flagged_readouts_from_calibration() {
    let mut s = SimSettings { worlds: 1, cycles: 2, ..tiny(&[Arm::Evoi, Arm::EvoiDiscard]) };
    s.distribution.experiment_bias = crate::world::ExperimentBias { probability: 1.0, factor: (40.0, 40.0) };
    // world 5 of these settings is the first where evoi's portfolio is not empty in cycle 1
    let rows = run_world(&s, 5).unwrap();
    let get = |arm: Arm, cycle: usize| rows.iter().find(|r| r.arm == arm && r.cycle == cycle).unwrap();
    let (e1, d1, e2, d2) = (get(Arm::Evoi, 1), get(Arm::EvoiDiscard, 1), get(Arm::Evoi, 2), get(Arm::EvoiDiscard, 2));
    assert!(e1.tests > 0, "evoi must test in cycle 1 for this check to mean anything: {e1:?}");
    assert_eq!((e1.roi_rmse, e1.tests, &e1.tested_channels), (d1.roi_rmse, d1.tests, &d1.tested_channels));
    assert!(e2.discrepancy_flags > 0, "a 40x readout must be flagged: {e2:?}");
    assert_eq!(e2.discrepancy_flags, d2.discrepancy_flags);
    assert_ne!(e2.roi_rmse, d2.roi_rmse, "the discarded readout still calibrated the fit");
}

/// `observational_bias_sd` reaches the fitted MMM: with no readout the data identify only the
/// observational effect β·exp(b_c), so the causal ROI's interval must widen by the prior on b_c
/// (s = 0.5: a factor e^(±1.645·0.5) ≈ 0.44–2.3 at 90 %), on the same world, data and fit seed.
#[test]
fn an_observational_bias_prior_widens_the_uncalibrated_roi_intervals() {
    let s0 = SimSettings { worlds: 1, cycles: 1, ..tiny(&[Arm::None]) };
    let s5 = SimSettings { observational_bias_sd: 0.5, ..s0.clone() };
    let (r0, r5) = (run_world(&s0, 0).unwrap(), run_world(&s5, 0).unwrap());
    let (w0, w5) = (r0[0].width90, r5[0].width90);
    assert!(w5 > 1.5 * w0, "90 % ROI interval width: {w5} with the bias prior against {w0} without");
}

/// Rows compared by their `Debug` form: NaN fields (the oracle's ROI RMSE) are equal to themselves.
fn debug_rows(rows: &[Row]) -> Vec<String> {
    rows.iter().map(|r| format!("{r:?}")).collect()
}

/// A run killed after world 0 and run again gives exactly an uninterrupted run's results: world 0
/// is read back from the checkpoint (floats exact, NaN included), the line the kill cut short is
/// ignored, world 1 runs and is appended.
#[test]
fn a_resumed_run_gives_the_uninterrupted_results() {
    let s = tiny(&[Arm::None, Arm::Oracle]);
    let full = simulate(&s, &|| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sim");
    {
        let c = checkpoint::Checkpoint::open(&out, &s).unwrap();
        assert!(c.done.is_empty() && c.replaced.is_none());
        let world0: Vec<Row> = full.rows.iter().filter(|r| r.world == 0).cloned().collect();
        c.record(0, &world0).unwrap();
    }
    let path = checkpoint::path_for(&out);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"world\":1,\"rows\":[{\"wor"); // the kill
    std::fs::write(&path, text).unwrap();
    let c = checkpoint::Checkpoint::open(&out, &s).unwrap();
    assert_eq!(c.done.keys().copied().collect::<Vec<_>>(), vec![0]);
    let ran = std::sync::Mutex::new(Vec::new());
    let resumed = simulate_resuming(
        &s,
        &[0, 1],
        &c.done,
        &|w, rows| {
            ran.lock().unwrap().push(w);
            c.record(w, rows)
        },
        &|| {},
    )
    .unwrap();
    assert_eq!(ran.into_inner().unwrap(), vec![1], "only the unfinished world runs");
    assert_eq!(results_csv(&resumed), results_csv(&full), "the results (world 1's timings differ: it ran again)");
    let world0 = |r: &SimResult| r.rows.iter().filter(|r| r.world == 0).cloned().collect::<Vec<_>>();
    assert_eq!(debug_rows(&world0(&resumed)), debug_rows(&world0(&full)), "read back exactly, timings too");
    assert!(full.rows.iter().any(|r| r.roi_rmse.is_nan()), "the oracle's NaN made the round trip");
    let again = checkpoint::Checkpoint::open(&out, &s).unwrap();
    assert_eq!(again.done.keys().copied().collect::<Vec<_>>(), vec![0, 1], "world 1 was appended");
    again.remove().unwrap();
    assert!(!path.exists());
}

/// The checkpoint knows its settings: more worlds reuse it (worlds are independent), other settings
/// replace it (and say so), and a file mmloop did not write is refused and left as it was.
#[test]
fn checkpoints_are_kept_replaced_or_refused_by_their_settings() {
    let s = tiny(&[Arm::None]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sim");
    let c = checkpoint::Checkpoint::open(&out, &s).unwrap();
    let row = Row {
        world: 0,
        ..simulate(&SimSettings { worlds: 1, cycles: 1, ..s.clone() }, &|| {}).unwrap().rows[0].clone()
    };
    c.record(0, std::slice::from_ref(&row)).unwrap();
    drop(c);
    let more = checkpoint::Checkpoint::open(&out, &SimSettings { worlds: 5, ..s.clone() }).unwrap();
    assert!(more.done.contains_key(&0) && more.replaced.is_none());
    drop(more);
    let other = checkpoint::Checkpoint::open(&out, &SimSettings { seed: 8, ..s.clone() }).unwrap();
    assert!(other.done.is_empty());
    assert!(other.replaced.as_deref().is_some_and(|m| m.contains("other settings")), "{:?}", other.replaced);
    drop(other);
    let path = checkpoint::path_for(&out);
    std::fs::write(&path, "my notes\n").unwrap();
    let e = checkpoint::Checkpoint::open(&out, &s).unwrap_err().to_string();
    assert!(e.contains("not a checkpoint mmloop wrote") && e.contains(&path.display().to_string()), "{e}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "my notes\n");
}
