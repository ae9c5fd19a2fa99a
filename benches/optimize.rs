//! Budget optimisation over a posterior: 4000 draws × 10 channels (the target: ≤ 5 ms,
//! since experiment ranking calls it many times).
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

criterion_group!(benches, bench);
criterion_main!(benches);
