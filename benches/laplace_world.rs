//! One Laplace fit of a simulated world's calibrated geo model, as `mmloop simulate` runs ~5000 of
//! them: world 0 of `WorldDistribution::default()` (master seed 1: 19 geos × 117 weeks × 4
//! channels, complete pooling, Hill / geometric) after one cycle with a readout of a test of its
//! highest-spend channel; `laplace_starts` = 4 (the default), 400 draws. Three pieces, as the
//! simulator's cycle runs them: the fit (`fit_with`: mode search, Newton polish, Hessian, draws),
//! the analysis (`analyse_checked`) and the optimiser's model (`FittedModel::from_fit`).
//!
//! Run: `cargo bench --bench laplace_world -- --warm-up-time 1 --measurement-time 10`.

use criterion::{Criterion, criterion_group, criterion_main};
use mmloop_loop::world::{PlannedTest, ReadoutOptions, World, WorldDistribution};
use mmloop_mmm::fit::FitOptions;
use mmloop_mmm::pricing::SpendChange;
use mmloop_mmm::spec::FitMethod;
use std::path::Path;

/// The world's spec (readout as a lift-test term, as the ledger adds it unaged at the data's end)
/// and dataset.
fn world_fit_inputs() -> (mmloop_mmm::ModelSpec, mmloop_mmm::Dataset) {
    let mut w = World::new(WorldDistribution::default().sample(1, 0)).expect("world");
    let spend = w.recent_spend(13);
    let top = (0..spend.len()).max_by(|&a, &b| spend[a].total_cmp(&spend[b])).unwrap_or(0);
    let name = w.channel_names()[top].clone();
    let geos: Vec<String> = w.geo_names().into_iter().step_by(3).collect();
    let geo_refs: Vec<&str> = geos.iter().map(String::as_str).collect();
    let t = w.weeks();
    let test = PlannedTest::new(&[name.as_str()], &geo_refs, t + 1, 8, SpendChange::Multiplier(3.0));
    let runs = w.advance(13, &[test], &ReadoutOptions::fast()).expect("readout");
    let path = Path::new("world.csv");
    let data = w.dataset(path);
    let mut spec = w.model_spec(path).expect("spec");
    spec.fit.method = FitMethod::Laplace;
    (spec.fit.chains, spec.fit.draws, spec.fit.seed) = (1, 400, 1);
    spec.calibration.lift_tests.extend(runs.iter().map(|r| r.record.clone()));
    (spec, data)
}

fn bench(c: &mut Criterion) {
    let (spec, data) = world_fit_inputs();
    let options = FitOptions { quiet: true, ..Default::default() };
    let fit = mmloop_mmm::fit::fit_with(&spec, &data, options).expect("fits");
    let mut g = c.benchmark_group("laplace_world");
    g.sample_size(10);
    g.bench_function("fit_with (19 geos x 4 channels, 4 starts, 400 draws)", |b| {
        b.iter(|| mmloop_mmm::fit::fit_with(&spec, &data, options).expect("fits"))
    });
    g.bench_function("analyse_checked (400 draws)", |b| {
        b.iter(|| mmloop_mmm::fit::analyse_checked(&fit, &data).expect("analyses"))
    });
    g.bench_function("FittedModel::from_fit", |b| {
        b.iter(|| mmloop_mmm::optimize::FittedModel::from_fit(&spec, &data, &fit).expect("model"))
    });
    g.bench_function("whole cycle fit: fit + analysis + FittedModel", |b| {
        b.iter(|| {
            let f = mmloop_mmm::fit::fit_with(&spec, &data, options).expect("fits");
            let a = mmloop_mmm::fit::analyse_checked(&f, &data).expect("analyses");
            let m = mmloop_mmm::optimize::FittedModel::from_fit(&spec, &data, &f).expect("model");
            (a.n_draws, m)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
