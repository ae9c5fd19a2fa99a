//! Geo-lift speed targets (issue 4):
//! - SC + conformal inference with 1000 permutations on GeoLift_Test: < 0.5 s;
//! - placebo in space for all 38 controls (SC): < 0.5 s;
//! - SDID with jackknife: < 0.2 s. Prop 99 has a single treated state, where the jackknife is
//!   undefined (synthdid returns NA), so it is timed as SDID fit alone on Prop 99, SDID fit +
//!   jackknife on GeoLift_Test (2 treated geos), and SDID fit + 200 placebo replications on Prop 99.
//!
//! Run: `cargo bench --bench geolift -- --warm-up-time 1 --measurement-time 3`.

use criterion::{Criterion, criterion_group, criterion_main};
use mmloop_geolift::inference::{placebo_in_space, sdid_jackknife_se, sdid_placebo_se};
use mmloop_geolift::*;
use std::hint::black_box;

fn data(name: &str, cols: Columns, design: Option<Design>) -> Option<LiftData> {
    let p = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/datasets/geo")).join(name);
    if !p.exists() {
        eprintln!("SKIPPED: {} not found", p.display());
        return None;
    }
    let panel = Panel::read(p, &cols).ok()?;
    let design = design.or_else(|| panel.design_from_treatment().ok())?;
    panel.design(&design).ok()
}

fn benches(c: &mut Criterion) {
    let geolift = data(
        "GeoLift_Test.csv",
        Columns::default(),
        Some(Design::new(&["chicago", "portland"], "2021-04-01", Some("2021-04-15"))),
    );
    let prop99 = data(
        "synthdid_california_prop99.csv",
        Columns {
            time: "Year".into(),
            geo: "State".into(),
            kpi: "PacksPerCapita".into(),
            spend: None,
            treatment: Some("treated".into()),
        },
        None,
    );
    if let Some(d) = &geolift {
        let sc = SyntheticControl::default();
        c.bench_function("sc_conformal_1000_geolift_test", |b| {
            b.iter(|| {
                let mut e = sc.estimate(d).unwrap();
                black_box(Conformal::default().apply(d, &mut e).unwrap().p_value)
            })
        });
        c.bench_function("sc_placebo_in_space_38_geolift_test", |b| {
            b.iter(|| {
                let e = sc.estimate(d).unwrap();
                black_box(placebo_in_space(&sc, d, e.att).unwrap().p_value)
            })
        });
        c.bench_function("sdid_jackknife_geolift_test", |b| {
            b.iter(|| {
                let s = Sdid::default();
                black_box((s.estimate(d).unwrap().att, sdid_jackknife_se(&s, d).unwrap()))
            })
        });
    }
    if let Some(d) = &prop99 {
        c.bench_function("sdid_fit_prop99", |b| b.iter(|| black_box(Sdid::default().estimate(d).unwrap().att)));
        c.bench_function("sdid_placebo_200_prop99", |b| {
            b.iter(|| {
                let s = Sdid::default();
                black_box((s.estimate(d).unwrap().att, sdid_placebo_se(&s, d, 200, 1).unwrap()))
            })
        });
    }
}

criterion_group! {
    name = geolift;
    config = Criterion::default().sample_size(10);
    targets = benches
}
criterion_main!(geolift);
