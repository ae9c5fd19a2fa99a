//! MMM benchmarks: log density + gradient on the PyMC-Marketing example (179 weeks, 2 channels,
//! geometric adstock with 8 lags, logistic saturation, Fourier order 2, 3 controls) and on Meridian's
//! 40-geo file (5 channels driven by impressions, 2 controls, partial pooling); a Laplace fit of
//! the PyMC example when the inference crate provides one.
//!
//! `mmm_logp_grad_nuts/*` times the density NUTS samples for the shipped Meridian geo examples at
//! their own configs (`examples/*.toml`: Hill slope fixed at 1, ec floored, geo intercepts
//! integrated out, `model::collapsed`), at the model's initial point.
//!
//! Run: `cargo bench --bench mmm -- --warm-up-time 1 --measurement-time 3`.

use criterion::{Criterion, criterion_group, criterion_main};
use mmloop_inference::LogDensity;
use mmloop_mmm::Dataset;
use mmloop_mmm::config::{load_config, parse_config};
use mmloop_mmm::model::MmmModel;
use mmloop_mmm::model::collapsed::CollapsedIntercepts;
use std::path::Path;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/datasets/mmm");

const PYMC: &str = r#"
[data]
path = "pymc_mmm_example.csv"
time = "date_week"
kpi = "y"
[media]
adstock = { kind = "geometric", max_lag = 8, normalize = true }
saturation = { kind = "logistic" }
[[channel]]
name = "x1"
[[channel]]
name = "x2"
[[control]]
column = "event_1"
[[control]]
column = "event_2"
[[control]]
column = "t"
[baseline]
trend = "none"
seasonality = [{ period = 52.18, order = 2 }]
[fit]
method = "laplace"
"#;

const MERIDIAN_GEO: &str = r#"
[data]
path = "meridian_geo_all_channels.csv"
time = "time"
geo = "geo"
kpi = "conversions"
population = "population"
[media]
adstock = { kind = "geometric", max_lag = 8, normalize = true }
saturation = { kind = "hill" }
[[channel]]
name = "Channel0"
spend = "Channel0_spend"
exposure = "Channel0_impression"
[[channel]]
name = "Channel1"
spend = "Channel1_spend"
exposure = "Channel1_impression"
[[channel]]
name = "Channel2"
spend = "Channel2_spend"
exposure = "Channel2_impression"
[[channel]]
name = "Channel3"
spend = "Channel3_spend"
exposure = "Channel3_impression"
[[channel]]
name = "Channel4"
spend = "Channel4_spend"
exposure = "Channel4_impression"
[[control]]
column = "competitor_sales_control"
[[control]]
column = "sentiment_score_control"
"#;

fn model(text: &str) -> Option<MmmModel> {
    if !Path::new(DATA).exists() {
        eprintln!("SKIPPED: {DATA} is absent");
        return None;
    }
    let spec = parse_config(text, Path::new(DATA)).expect("config parses");
    let data = Dataset::load(&spec).expect("data loads");
    Some(MmmModel::new(&spec, &data).expect("model builds"))
}

/// The density NUTS samples for a shipped example config: its geo intercepts integrated out.
fn nuts_density(example: &str) -> Option<(CollapsedIntercepts, Vec<f64>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(example);
    let spec = load_config(&path).ok()?;
    if !spec.data.path.exists() {
        eprintln!("SKIPPED: {} is absent", spec.data.path.display());
        return None;
    }
    let data = Dataset::load(&spec).expect("data loads");
    let m = MmmModel::new(&spec, &data).expect("model builds");
    let d = CollapsedIntercepts::new(&m).expect("a geo model with a Normal likelihood");
    let q = d.reduce(&m.initial_point());
    Some((d, q))
}

fn bench(c: &mut Criterion) {
    for example in ["meridian_geo_media.toml", "meridian_geo_all_channels.toml"] {
        let Some((d, q)) = nuts_density(example) else { continue };
        let mut g = vec![0.0; d.dim()];
        c.bench_function(&format!("mmm_logp_grad_nuts/{example} (dim {})", d.dim()), |b| {
            b.iter(|| d.logp_grad(std::hint::black_box(&q), &mut g).expect("finite"))
        });
    }
    for (name, text) in [("pymc_example", PYMC), ("meridian_geo_40", MERIDIAN_GEO)] {
        let Some(m) = model(text) else { return };
        let q = m.initial_point();
        let mut g = vec![0.0; m.dim()];
        c.bench_function(&format!("mmm_logp_grad/{name} (dim {})", m.dim()), |b| {
            b.iter(|| m.logp_grad(std::hint::black_box(&q), &mut g).expect("finite"))
        });
    }
    if let Some(spec) = Path::new(DATA).exists().then(|| parse_config(PYMC, Path::new(DATA)).expect("config parses")) {
        let data = Dataset::load(&spec).expect("data loads");
        if mmloop_mmm::fit::fit(&spec, &data).is_ok() {
            let mut g = c.benchmark_group("mmm_fit");
            g.sample_size(10);
            g.bench_function("laplace/pymc_example", |b| b.iter(|| mmloop_mmm::fit::fit(&spec, &data).expect("fits")));
            g.finish();
        } else {
            eprintln!("SKIPPED: Laplace fit benchmark (the fit is not available in this build)");
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
