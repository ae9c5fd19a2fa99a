//! Full NUTS fits of MMMs (4 chains × (1000 warm-up + 1000 draws), the defaults): the
//! PyMC-Marketing example as a criterion benchmark, and the 20-geo and 40-geo Meridian examples.
//! Before timing, each model is fitted once and its wall time, max R-hat, min bulk/tail ESS, ESS per
//! second and divergences are printed, so a speed figure always comes with its convergence.
//!
//! Run: `cargo bench --bench nuts_mmm -- --warm-up-time 1 --measurement-time 20`.
//! The Meridian fits take over a minute each on 2 cores, so they are timing runs (one fit each,
//! printed, not repeated by criterion) and run only with `MMLOOP_BENCH_MERIDIAN=1`.
//!
//! Measured (release, quiet 2-core machine, `mmloop fit --method nuts --quiet`, seed 1, 24d672e):
//! - Meridian 20-geo media at its config (intercepts integrated out, dense metric, 0.95, Hill slope
//!   held at 1, ec floor): 30.2 s wall, 48.7 s CPU, max R-hat 1.0041, min bulk / tail ESS 834 / 663,
//!   2 divergences, 31 leapfrog steps a draw (56–65 s wall before the held slope's arithmetic form).
//! - Meridian 40-geo all channels at its config: 93.9 s wall, 167 s CPU, max R-hat 1.0039, min bulk
//!   / tail ESS 1107 / 767, 0 divergences, 57–60 steps a draw; the chains take ~157 s of the CPU
//!   (~0.33 ms a gradient with the sampler's own work), the rest is the start search and the
//!   per-draw conversions and analysis.
//!
//! Earlier (sampled jointly, sampled slope, under load): PyMC example 1.16 s wall, max R-hat 1.006,
//! min bulk ESS 709, 628 ESS/s; 20-geo 6 min 33 s wall at 67 % of a core (262 s CPU), 42
//! divergences; 40-geo 9 min 16 s wall (665 s CPU), 9 divergences.

use criterion::{Criterion, criterion_group, criterion_main};
use mmloop_mmm::Dataset;
use mmloop_mmm::config::load_config;
use mmloop_mmm::spec::{FitMethod, ModelSpec};
use std::path::Path;
use std::time::Instant;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");

fn load(name: &str) -> Option<(ModelSpec, Dataset)> {
    let path = Path::new(EXAMPLES).join(name);
    let mut spec = match load_config(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("SKIPPED: {name}: {e}");
            return None;
        }
    };
    if !spec.data.path.exists() {
        eprintln!("SKIPPED: {} is absent", spec.data.path.display());
        return None;
    }
    spec.fit.method = FitMethod::Nuts;
    (spec.fit.chains, spec.fit.tune, spec.fit.draws) = (4, 1000, 1000);
    let data = Dataset::load(&spec).expect("data loads");
    Some((spec, data))
}

/// One fit, timed, with its convergence figures.
fn timing_run(name: &str, spec: &ModelSpec, data: &Dataset) {
    let t = Instant::now();
    let res = mmloop_mmm::fit::fit_with(spec, data, mmloop_mmm::fit::FitOptions { quiet: true, ..Default::default() })
        .expect("fits");
    let wall = t.elapsed().as_secs_f64();
    let d = &res.diagnostics.to_json();
    let num = |k: &str| d[k].as_f64().unwrap_or(f64::NAN);
    eprintln!(
        "{name} (dim {}): wall {wall:.2} s, max R-hat {:.4} ({}), min bulk ESS {:.0} ({}), min tail ESS {:.0}, \
         min bulk ESS/s {:.0}, divergences {}, mean leapfrog steps per draw {}",
        res.model.params.len(),
        num("max_rhat"),
        d["max_rhat_param"],
        num("min_ess_bulk"),
        d["min_ess_bulk_param"],
        num("min_ess_tail"),
        num("min_ess_bulk") / wall,
        d["divergences"],
        d["mean_n_steps"]
    );
}

fn bench(c: &mut Criterion) {
    if let Some((spec, data)) = load("pymc_mmm_example.toml") {
        timing_run("nuts/pymc_example", &spec, &data);
        let mut g = c.benchmark_group("nuts_mmm");
        g.sample_size(10);
        g.bench_function("nuts/pymc_example 4x(1000+1000)", |b| {
            b.iter(|| {
                mmloop_mmm::fit::fit_with(
                    &spec,
                    &data,
                    mmloop_mmm::fit::FitOptions { quiet: true, ..Default::default() },
                )
                .expect("fits")
            })
        });
        g.finish();
    }
    if std::env::var("MMLOOP_BENCH_MERIDIAN").is_ok_and(|v| v == "1") {
        for name in ["meridian_geo_media.toml", "meridian_geo_all_channels.toml"] {
            if let Some((spec, data)) = load(name) {
                timing_run(&format!("nuts/{name}"), &spec, &data);
            }
        }
    } else {
        eprintln!("SKIPPED: the Meridian timing runs (set MMLOOP_BENCH_MERIDIAN=1)");
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
