//! How the MMM's log density + gradient grows with the panel: simulated geo panels
//! ([`mmloop_mmm::simulate::panel`]: geometric adstock with 8 lags, Hill saturation, partial pooling,
//! the default config) from the base of 10 geos × 104 weeks × 5 channels along each axis — geos
//! 10 / 50 / 100, channels 5 / 15 / 30, weeks 104 / 208 — and the 50 × 208 × 30 corner. Before
//! criterion times each, a plain loop prints the parameter count, µs per gradient and the cost per
//! cell (ns per geo·week·channel), so the growth is readable in one column.
//!
//! Run: `cargo bench --profile dev --bench mmm_scale -- --warm-up-time 1 --measurement-time 5`.
//! Full fits along the axes (wall, CPU, ESS/s, peak memory, ROI recovery) are
//! `crates/mmm/examples/scale_fit.rs`, one process per configuration.
//!
//! Measured (dev profile: dependencies opt-level 3, our crates opt-level 2; 2 cores shared with a
//! nice-0 simulation and other builds, load average 5–8, so the figures are the benchmark thread's
//! CPU time; criterion's wall times were 3–18× these). Two runs (00:29 and 01:06 UTC, 2026-12-01):
//!
//! | geos × weeks × channels | dim | µs CPU per gradient | ns CPU per cell |
//! |---|---|---|---|
//! | 10 × 104 × 5 (base)      |   94 |  105 / 111   | 20.3 / 21.3 |
//! | 50 × 104 × 5             |  334 |  527 / 533   | 20.3 / 20.5 |
//! | 100 × 104 × 5            |  634 | 1144 / 1079  | 22.0 / 20.8 |
//! | 10 × 104 × 15            |  244 |  312 / 304   | 20.0 / 19.5 |
//! | 10 × 104 × 30            |  469 |  624 / 632   | 20.0 / 20.3 |
//! | 10 × 208 × 5             |   94 |  216 / 216   | 20.8 / 20.8 |
//! | 50 × 208 × 30 (corner)   | 1709 | 7266 / 7188  | 23.3 / 23.0 |
//!
//! Growth: linear in each axis (exponents of µs per gradient over the two runs: geos 10 → 100
//! 0.99–1.04, channels 5 → 30 0.97–0.99, weeks 104 → 208 0.96–1.04); the corner costs 8–15 % more
//! per cell than the base, plausibly because its per-channel scratch (5 arrays × C × G × T, 12.5 MB)
//! no longer fits the 1 MB of L2 per core. Of the time (perf, all
//! configurations): ln and exp of the Hill saturation 33 %, the rest of the
//! saturation 15 %, the adstock's adjoint in its weight 12 %, the other passes 25 %.
//!
//! Full fits (`crates/mmm/examples/scale_fit.rs`, one process each, same machine and load, which gave
//! them 5–60 % of a core, so CPU seconds are the comparable figure; ROI
//! quality = true ROI inside the 90 % interval, and the mean / median over channels of
//! |posterior mean / truth − 1|):
//!
//! | geos × weeks × channels | method | dim | wall | CPU | peak RSS | convergence | ROI: 90 % coverage, mean / median rel. error |
//! |---|---|---|---|---|---|---|---|
//! | 10 × 104 × 5 | NUTS 4 × (1000 + 1000) | 94 | 656 s | 208 s | 49 MB | R-hat 1.011, 121 divergences, min bulk / tail ESS 893 / 758, 209 leapfrog steps a draw; 1.4 ESS/s wall, 4.3 per CPU s | 5/5, 0.60 / 0.51 |
//! | 10 × 104 × 5 | Laplace (4 starts) | 94 | 21 s | 7.0 s | 49 MB | | 5/5, 0.61 / 0.74 |
//! | 50 × 104 × 5 | Laplace | 334 | 240 s | 120 s | 75 MB | | 5/5, 0.33 / 0.29 |
//! | 100 × 104 × 5 | Laplace | 634 | 937 s | 363 s | 194 MB | | 4/5, 0.30 / 0.32 |
//! | 10 × 208 × 5 | Laplace | 94 | 191 s | 17.9 s | 72 MB | | 5/5, 0.25 / 0.06 |
//! | 10 × 104 × 15 | Laplace | 244 | 561 s | 52.7 s | 96 MB | 1 warning | 14/15, 39.8 / 1.16 (\*) |
//! | 10 × 104 × 30 | Laplace | 469 | stopped at 16 min | ≈ 200 s | | not finished (estimate at 700 gradients a parameter: ≈ 200–230 s CPU) | |
//! | 50 × 208 × 30 | NUTS 4 × (500 + 500) | 1709 | stopped after 49 min | 362 s | 200 MB | 51 of 4000 iterations done: start-point search ≈ 150 s CPU, then 5.1 s CPU (≈ 700 gradients) an early warm-up iteration | |
//!
//! (\*) one always-on channel's posterior-mean ROI is 767 (true 1.35, 90 % interval 1.3–28): the
//! Gaussian's upper tail through the exp transform. Throughout, the flighted channels (every third)
//! are recovered within 12 %; the always-on and drifting ones, whose spend barely moves, come out
//! high with wide intervals that still cover the truth.
//!
//! How the fits grow: Laplace CPU goes as geos^1.7 (10 → 100), weeks^1.4, channels^1.8 (5 → 15),
//! because it spends 500–710 gradients per parameter (7.0 s / 105 µs / 94 = 710, 120 s / 527 µs /
//! 334 = 680, 363 s / 1144 µs / 634 = 500): finite-difference Hessians (dim + 1 or 2·dim gradients)
//! for the L-BFGS preconditioner every 100 iterations of each of 4 starts and for each Newton step,
//! so its cost is ∝ dim × cells. Peak memory grows slowly (49 → 75 → 194 MB for 10 → 50 → 100
//! geos). NUTS costs 1.19 × (iterations × leapfrog steps × gradient) CPU on the 10-geo panel (208 s
//! against 175 s of gradients). The 50 × 208 × 30 corner did not finish a fit here: from 00:35 UTC
//! a nice-0 simulation held ~1.6 of the 2 cores (before it, other helpers' runs and builds kept the
//! load at 4–7), and the nice-12 fits got 5–60 % of one. Extrapolated CPU for the corner: NUTS 4 ×
//! (500 + 500) 2.0 h (at the 10-geo panel's 209 steps a draw) to 5.6 h (at the early warm-up's
//! 700), i.e. 1–2.8 h wall on 2 free cores, and twice that for 4 × (1000 + 1000); Laplace 500–710 ×
//! 1709 gradients × 7.2 ms = 1.7–2.4 h CPU. Peak memory 200 MB. What would make it practical:
//! Hessian-vector products (one gradient each) instead of full finite-difference Hessians in the
//! Laplace's preconditioner and Newton steps (one full Hessian, 2·dim gradients = 25 s CPU at the
//! corner, is enough for the covariance), and a vectorised ln/exp for the Hill saturation (a third
//! of the gradient's time).

use criterion::{Criterion, criterion_group, criterion_main};
use mmloop_inference::LogDensity;
use mmloop_mmm::model::MmmModel;
use mmloop_mmm::simulate::panel::{PanelOptions, simulate_panel};
use std::time::Instant;

/// (geos, weeks, channels): the base, each axis from it, and the corner.
const CONFIGS: [(usize, usize, usize); 7] =
    [(10, 104, 5), (50, 104, 5), (100, 104, 5), (10, 104, 15), (10, 104, 30), (10, 208, 5), (50, 208, 30)];

fn model(geos: usize, weeks: usize, channels: usize) -> MmmModel {
    let panel = simulate_panel(PanelOptions { geos, weeks, channels, seed: 1 }).expect("panel");
    let dir = std::env::temp_dir().join(format!("mmloop_bench_scale_{geos}x{weeks}x{channels}_{}", std::process::id()));
    let (spec, data) = panel.write(&dir).expect("panel loads");
    let _ = std::fs::remove_dir_all(&dir);
    MmmModel::new(&spec, &data).expect("model builds")
}

/// CPU time of this thread in seconds (user + system ticks of `/proc/thread-self/stat`, 10 ms each):
/// the gradient's cost without the time other processes on a shared machine take from it.
fn thread_cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // the fields after the command name (which ends with ')'): utime and stime are fields 14 and 15
    let f: Vec<f64> =
        s.rsplit_once(')').map_or("", |(_, r)| r).split_whitespace().map(|v| v.parse().unwrap_or(f64::NAN)).collect();
    f.get(11).zip(f.get(12)).map_or(f64::NAN, |(u, s)| (u + s) / 100.0)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("mmm_scale");
    g.sample_size(10);
    for (geos, weeks, channels) in CONFIGS {
        let m = model(geos, weeks, channels);
        let q = m.initial_point();
        let mut grad = vec![0.0; m.dim()];
        // about 2 s of gradients (at ~50 ns per cell)
        let cells = geos * weeks * channels;
        let n = (40_000_000 / cells).clamp(20, 20_000);
        let (t, cpu0) = (Instant::now(), thread_cpu());
        for _ in 0..n {
            m.logp_grad(std::hint::black_box(&q), &mut grad).expect("finite");
        }
        let (wall, cpu) = (t.elapsed().as_secs_f64() / n as f64, (thread_cpu() - cpu0) / n as f64);
        eprintln!(
            "mmm_scale {geos:>3} geos x {weeks} weeks x {channels:>2} channels: dim {:>4}, per gradient {:>7.0} µs CPU \
             ({:>7.0} µs wall), {:.1} ns CPU per geo·week·channel",
            m.dim(),
            cpu * 1e6,
            wall * 1e6,
            cpu * 1e9 / cells as f64
        );
        g.bench_function(format!("logp_grad {geos}x{weeks}x{channels} (dim {})", m.dim()), |b| {
            b.iter(|| m.logp_grad(std::hint::black_box(&q), &mut grad).expect("finite"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
