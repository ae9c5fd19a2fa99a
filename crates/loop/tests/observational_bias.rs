//! The demo world's confounded search channel, tested once: does its calibrated 90 % ROI interval
//! cover the truth? Without observational bias in the model (`[calibration]
//! observational_bias_sd = 0`) the data's confounded association outweighs the experiment 30–90
//! to 1 and the interval stays on the observational estimate; with it (s = 0.5) the experiment
//! decides the tested channel's causal ROI. See `docs/notes/demo-learning.md`.

use mmloop_loop::cycle::demo::{DemoSettings, demo_world};
use mmloop_loop::cycle::fit::{LedgerFitSettings, calibrate_on_ledger, fit_calibrated};
use mmloop_loop::ledger::Ledger;
use mmloop_loop::world::{PlannedTest, ReadoutOptions, World};
use mmloop_mmm::analysis::Analysis;
use mmloop_mmm::fit::FitOptions;
use mmloop_mmm::pricing::SpendChange;
use mmloop_mmm::spec::FitMethod;
use std::path::Path;

/// The demo world after one 13-week cycle in which search went dark in every third geo for 8
/// weeks, read out by the demo's estimator (augmented SC): the world and the readout.
fn searched(seed: u64) -> (World, mmloop_data::LiftTestRecord) {
    let mut w = World::new(demo_world(seed)).unwrap();
    let geos: Vec<String> = w.geo_names().into_iter().step_by(3).collect();
    let geo_refs: Vec<&str> = geos.iter().map(String::as_str).collect();
    let t = w.weeks();
    let test = PlannedTest::new(&["search"], &geo_refs, t + 1, 8, SpendChange::Multiplier(0.0));
    let estimator = DemoSettings::default().estimator;
    let mut runs = w.advance(13, &[test], &ReadoutOptions::with_estimator(&estimator)).unwrap();
    (w, runs.remove(0).record)
}

/// Laplace fit of the world's history calibrated on `record` through a ledger, with the model's
/// observational bias sd `bias_sd`.
fn fit(world: &World, record: &mmloop_data::LiftTestRecord, bias_sd: f64) -> Analysis {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open_or_create(dir.path().join("ledger.sqlite")).unwrap();
    ledger.add_readouts(std::slice::from_ref(record), None).unwrap();
    let path = Path::new("world.csv");
    let data = world.dataset(path);
    let mut spec = world.model_spec(path).unwrap();
    spec.fit.method = FitMethod::Laplace;
    (spec.fit.seed, spec.fit.chains, spec.fit.draws) = (1, 1, 400);
    spec.calibration.observational_bias_sd = bias_sd;
    let settings = LedgerFitSettings { retest_fits: false, ..Default::default() };
    let cal = calibrate_on_ledger(&settings, ledger, &mut spec, &data).unwrap();
    let result =
        fit_calibrated(&spec, &data, FitOptions { quiet: true, ..Default::default() }, Some(&cal), path).unwrap();
    mmloop_mmm::fit::analyse_checked(&result, &data).unwrap()
}

/// (mean, q05, q95) of a channel's ROI.
fn roi(a: &Analysis, name: &str) -> (f64, f64, f64) {
    let c = a.channels.iter().find(|c| c.name == name).unwrap();
    (c.roi.mean, c.roi.q05, c.roi.q95)
}

/// Measured (2026-11-30, Laplace, ASCM readouts; 152 s under load): with s = 0 search's 90 %
/// interval missed the true ROI (0.99–1.02) on all four seeds, 1.29–1.35 [1.15–1.20, 1.43–1.52];
/// with s = 0.5 it covered on all four: 1.15 [0.82, 1.61], 0.98 [0.65, 1.44], 0.74 [0.48, 1.08],
/// 1.30 [0.65, 2.21] (seeds 7, 11, 23, 42).
#[test]
#[ignore = "8 Laplace fits, ~2 min: cargo test -p mmloop-loop --test observational_bias -- --ignored --nocapture"]
fn a_tested_confounded_channel_covers_its_true_roi_only_with_observational_bias() {
    let seeds = [7u64, 11, 23, 42];
    let (mut covered_without, mut covered_with) = (0, 0);
    for seed in seeds {
        let (w, record) = searched(seed);
        let truth = w.true_roi()[w.channel_names().iter().position(|n| n == "search").unwrap()];
        let without = roi(&fit(&w, &record, 0.0), "search");
        let with = roi(&fit(&w, &record, 0.5), "search");
        let covers = |r: (f64, f64, f64)| r.1 <= truth && truth <= r.2;
        eprintln!(
            "seed {seed}: true search ROI {truth:.2}; readout {:.0} ± {:.0} on {:.0} spend; \
             s = 0: {:.2} [{:.2}, {:.2}]; s = 0.5: {:.2} [{:.2}, {:.2}]",
            record.incremental_kpi,
            record.standard_error,
            record.spend_change,
            without.0,
            without.1,
            without.2,
            with.0,
            with.1,
            with.2
        );
        covered_without += usize::from(covers(without));
        covered_with += usize::from(covers(with));
    }
    eprintln!("covered: {covered_without}/{} without, {covered_with}/{} with", seeds.len(), seeds.len());
    assert!(covered_with > covered_without, "with {covered_with}, without {covered_without}");
    assert!(covered_with >= 3, "with observational bias the tested channel covers on {covered_with} of 4 seeds");
}
