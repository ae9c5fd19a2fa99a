//! The full GeoLift_PreTest market search (40 cities × 90 days): 2–5 treated markets × 3 durations
//! (14, 21, 28 days) × 10 effect sizes, synthetic control with GeoLift's conformal test (1000
//! permutations) over 10 rolling historical windows — the target: under 10 s (GeoLift's R
//! market selection is known to take much longer). A second case runs the same search with the fast
//! normal (t) test.
//!
//! Run: `cargo bench --bench design -- --warm-up-time 1 --measurement-time 3`.

use criterion::{Criterion, criterion_group, criterion_main};
use mmloop_geolift::design::{DesignInference, PowerConfig, SearchSpec, search};
use mmloop_geolift::{Columns, Panel};
use std::hint::black_box;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/datasets/geo/GeoLift_PreTest.csv");

fn bench(c: &mut Criterion) {
    if !std::path::Path::new(DATA).exists() {
        eprintln!("SKIPPED: {DATA} not found");
        return;
    }
    let panel = Panel::read(DATA, &Columns::default()).expect("GeoLift_PreTest loads");
    let spec = SearchSpec { n_min: 2, n_max: 5, durations: vec![14, 21, 28], ..Default::default() };
    let conformal = PowerConfig::default();
    assert_eq!(conformal.effects.len(), 10);
    let normal = PowerConfig { inference: DesignInference::Normal, ..PowerConfig::default() };
    let mut g = c.benchmark_group("design_geolift_pretest");
    g.sample_size(10);
    g.bench_function("search_2to5_x3durations_x10effects_conformal1000", |b| {
        b.iter(|| black_box(search(&panel, &spec, &conformal).expect("search runs")))
    });
    g.bench_function("search_2to5_x3durations_x10effects_normal", |b| {
        b.iter(|| black_box(search(&panel, &spec, &normal).expect("search runs")))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
