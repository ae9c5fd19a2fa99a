//! Budget optimisation over a posterior: 4000 draws × 10 channels (the target: ≤ 5 ms,
//! since experiment ranking calls it many times); and the tabulation of a geo model's Hill curves
//! that the simulator's recommendation and EVOI make each cycle (`tabulate_geo_hill`).
//!
//! Run: `cargo bench --bench optimize`.

use criterion::{Criterion, criterion_group, criterion_main};
use mmloop_mmm::optimize::{
    Bounds, Goal, Risk, SaturatingCurves, Saturation, SolverSettings, horizon_pieces, optimize,
};
use std::hint::black_box;

const CHANNELS: usize = 10;
const DRAWS: usize = 4000;

/// A posterior-like set of logistic response curves with per-draw spread in β, λ and the geometric
/// adstock α, either at steady state (one piece) or over a 13-week horizon with ramp-up and
/// carry-over (2L + 1 pieces, L = 8).
fn curves(horizon: bool) -> SaturatingCurves {
    SaturatingCurves::new(CHANNELS, DRAWS, |c, d| {
        let u = |a: usize| ((d * 2654435761 + c * 40503 + a * 97) % 10007) as f64 / 10007.0 - 0.5;
        let beta = (1.0 + c as f64 * 0.3) * (1.0 + 0.4 * u(1));
        let lam = (0.5 + 0.1 * c as f64) * (1.0 + 0.3 * u(2));
        let alpha = (0.2 + 0.05 * c as f64) * (1.0 + 0.3 * u(3));
        let w: Vec<f64> = (0..=8).map(|l| alpha.powi(l)).collect();
        let pieces =
            if horizon { horizon_pieces(&w, 13, 1.0 / 10.0) } else { vec![(w.iter().sum::<f64>() / 10.0, 13.0)] };
        (beta, Saturation::Logistic { lam }, pieces)
    })
}

fn bench(c: &mut Criterion) {
    let bounds = Bounds {
        names: (0..CHANNELS).map(|i| format!("ch{i}")).collect(),
        lower: vec![70.0; CHANNELS],
        upper: vec![130.0; CHANNELS],
    };
    let budget = 100.0 * CHANNELS as f64;
    let mut g = c.benchmark_group("optimize_4000x10");
    for (label, horizon) in [("steady_state", false), ("horizon_13w_carryover", true)] {
        let cv = curves(horizon);
        for (name, risk) in [("mean", Risk::Mean), ("cvar0.1", Risk::Cvar { alpha: 0.1 })] {
            g.bench_function(format!("{label}/{name}"), |b| {
                b.iter(|| {
                    optimize(&cv, None, risk, &bounds, Goal::Budget(black_box(budget)), None, SolverSettings::default())
                        .expect("feasible")
                })
            });
        }
    }
    g.finish();
}

/// Hill curves as a simulated world's 12-geo model gives them: per draw (ec, slope) and a geometric
/// adstock, a piece per geo and adstock step over a 13-week horizon (each geo its own media scale).
fn geo_hill_curves(channels: usize, draws: usize, geos: usize) -> SaturatingCurves {
    SaturatingCurves::new(channels, draws, |c, d| {
        let u = |a: usize| ((d * 2654435761 + c * 40503 + a * 97) % 10007) as f64 / 10007.0 - 0.5;
        let ec = (0.8 + 0.1 * c as f64) * (1.0 + 0.4 * u(1));
        let slope = 1.0 + 0.8 * u(2);
        let alpha = (0.3 + 0.05 * c as f64) * (1.0 + 0.3 * u(3));
        let w: Vec<f64> = (0..=8).map(|l| alpha.powi(l)).collect();
        let pieces = (0..geos).flat_map(|g| horizon_pieces(&w, 13, (0.5 + 0.1 * g as f64) / 100.0)).collect::<Vec<_>>();
        (1.0 + 0.2 * u(4), Saturation::Hill { ec, slope }, pieces)
    })
}

/// The separable solver's table: every channel's curves (value, slope, curvature per draw) at 32
/// spend nodes, 400 draws × 5 channels × 12 geos — the simulator's recommendation each cycle.
fn tabulate(c: &mut Criterion) {
    use mmloop_mmm::optimize::ResponseCurves;
    let (channels, draws) = (5, 400);
    let cv = geo_hill_curves(channels, draws, 12);
    c.bench_function("tabulate_geo_hill/400_draws_5_channels_12_geos_32_nodes", |b| {
        let (mut v, mut d1, mut d2) = (vec![0.0; draws], vec![0.0; draws], vec![0.0; draws]);
        b.iter(|| {
            for ch in 0..channels {
                for i in 0..32 {
                    cv.eval(ch, black_box(50.0 + 5.0 * i as f64), &mut v, &mut d1, &mut d2);
                }
            }
            v[0] + d1[0] + d2[0]
        })
    });
}

criterion_group!(benches, bench, tabulate);
criterion_main!(benches);
