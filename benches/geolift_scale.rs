//! Geo-lift at scale (issue 10 §4): synthetic-control lift and design on simulated panels of 1 000
//! and 10 000 geos, with the donor pre-screen (`--max-donors`, default 50) that makes them scale.
//!
//! * `sc_lift/{1000,10000}`: pre-screen + SC point estimate + conformal inference (1000
//!   permutations) + 200 placebo replications — what `mmloop lift --estimator sc` runs per cell,
//!   except placebo in space (50 further SC fits on the screened pool).
//! * `design/{1000,10000}`: market search, 2 treated geos, one 14-period duration, 3 windows,
//!   normal inference, 200 candidate sets, 50 donors each.
//!
//! Without the pre-screen (`--max-donors 0`) `mmloop lift` on a 1 000-geo panel did not finish in
//! 300 s (measured), so no unscreened case is benchmarked.
//!
//! Run: `cargo bench --bench geolift_scale -- --warm-up-time 1 --measurement-time 3`
//! (`--profile dev` reuses the test build: opt-level 2 for our crates, 3 for dependencies).

use criterion::{Criterion, criterion_group, criterion_main};
use mmloop_geolift::design::{DesignInference, PowerConfig, SearchSpec, search};
use mmloop_geolift::inference::{Conformal, placebo_se};
use mmloop_geolift::ndarray::Array2;
use mmloop_geolift::*;
use std::hint::black_box;

/// `n` geos × `nt` periods: each geo a random walk around its own level plus one of 7 common
/// seasonal factors; geo 0 (treated) mixes geos 1–3.
fn panel(n: usize, nt: usize) -> Array2<f64> {
    let mut state = 7u64;
    let mut r = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
    };
    let mut y = Array2::zeros((n, nt));
    for g in 1..n {
        let mut level = 100.0 + (g % 101) as f64;
        let f = 0.1 + (g % 7) as f64 * 0.07;
        for t in 0..nt {
            level += r();
            y[[g, t]] = level + 5.0 * (t as f64 * f).sin();
        }
    }
    for t in 0..nt {
        y[[0, t]] = 0.5 * y[[1, t]] + 0.3 * y[[2, t]] + 0.2 * y[[3, t]] + 0.3 * r();
    }
    y
}

fn sc_lift(d: &LiftData) -> f64 {
    let (s, _) = d.screen_donors(50);
    let sc = SyntheticControl::default();
    let mut e = sc.estimate(&s).unwrap();
    Conformal::default().apply(&s, &mut e).unwrap();
    let se = placebo_se(&sc, &s, 200, 1).unwrap();
    e.att + se
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("geolift_scale");
    g.sample_size(10);
    for n in [1000, 10_000] {
        let d = LiftData::from_matrix(panel(n, 120), vec![0], 100).unwrap();
        g.bench_function(format!("sc_lift/{n}"), |b| b.iter(|| black_box(sc_lift(&d))));
        let p = Panel::from_matrix((0..n).map(|i| format!("g{i}")).collect(), panel(n, 120)).unwrap();
        let cfg = PowerConfig {
            inference: DesignInference::Normal,
            windows: 3,
            effects: vec![0.0, 0.05, 0.1, 0.2],
            ..Default::default()
        };
        let spec = SearchSpec { n_min: 2, n_max: 2, durations: vec![14], ..Default::default() };
        g.bench_function(format!("design/{n}"), |b| {
            b.iter(|| black_box(search(&p, &spec, &cfg).unwrap().candidates.len()))
        });
    }
    g.finish();
}

criterion_group!(scale, benches);
criterion_main!(scale);
