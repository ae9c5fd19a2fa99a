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
//! MEASURED_TABLE

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
