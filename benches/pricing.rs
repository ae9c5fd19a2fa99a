//! Hypothetical-test pricing on 4000 posterior draws (issue 11's benchmark): the lift a fit implies
//! for a test, per draw, through adstock, saturation and carry-over.
//!
//! - Meridian's 40-geo file (5 channels driven by impressions, Hill saturation, geometric adstock with
//!   8 lags): a 4-week go-dark of one channel in 10 geos starting 2 weeks after the data, and a
//!   past 6-week national heavy-up of 20 %.
//! - The PyMC-Marketing example (national, logistic): a past 6-week heavy-up of 10 000 in money.
//!
//! The draws are 4000 points scattered around the prior centre (a 40-geo NUTS fit takes minutes;
//! the pricing cost does not depend on where the draws come from).
//!
//! Run: `cargo bench --bench pricing -- --warm-up-time 1 --measurement-time 3`.

use criterion::{Criterion, criterion_group, criterion_main};
use mmloop_mmm::Dataset;
use mmloop_mmm::config::parse_config;
use mmloop_mmm::model::MmmModel;
use mmloop_mmm::optimize::FittedModel;
use mmloop_mmm::pricing::{HypotheticalTest, SpendChange, price_test};
use std::hint::black_box;
use std::path::Path;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/datasets/mmm");
const DRAWS: usize = 4000;

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
"#;

fn meridian_config() -> String {
    let mut s = String::from(
        r#"
[data]
path = "meridian_geo_all_channels.csv"
time = "time"
geo = "geo"
kpi = "conversions"
population = "population"
[media]
adstock = { kind = "geometric", max_lag = 8, normalize = true }
saturation = { kind = "hill" }
[[control]]
column = "competitor_sales_control"
[[control]]
column = "sentiment_score_control"
"#,
    );
    for c in 0..5 {
        s += &format!("[[channel]]\nname = \"Channel{c}\"\nspend = \"Channel{c}_spend\"\nexposure = \"Channel{c}_impression\"\n");
    }
    s
}

fn fit(text: &str) -> Option<FittedModel> {
    if !Path::new(DATA).exists() {
        eprintln!("SKIPPED: {DATA} is absent");
        return None;
    }
    let spec = parse_config(text, Path::new(DATA)).expect("config parses");
    let data = Dataset::load(&spec).expect("data loads");
    let model = MmmModel::new(&spec, &data).expect("model builds");
    let q0 = model.initial_point();
    let draws = (0..DRAWS)
        .map(|d| {
            let q: Vec<f64> = q0
                .iter()
                .enumerate()
                .map(|(i, x)| x + 0.4 * (((d * 2_654_435_761 + i * 40_503) % 10_007) as f64 / 10_007.0 - 0.5))
                .collect();
            model.unpack(&q)
        })
        .collect();
    Some(FittedModel { spec, data, model, draws })
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("price_test_4000_draws");
    g.sample_size(10);
    if let Some(f) = fit(&meridian_config()) {
        let n = f.model.n_times;
        let geos: Vec<&str> = f.model.geos.iter().take(10).map(|s| s.as_str()).collect();
        let dark = HypotheticalTest::new(&["Channel2"], &geos, n + 2, n + 6, SpendChange::Multiplier(0.0));
        g.bench_function("meridian_40geo/go_dark_10_geos_4w_future", |b| {
            b.iter(|| price_test(&f, black_box(&dark)).expect("prices"))
        });
        let up = HypotheticalTest::new(&["Channel0"], &[], n - 20, n - 14, SpendChange::Multiplier(1.2));
        g.bench_function("meridian_40geo/heavy_up_all_40_geos_6w_past", |b| {
            b.iter(|| price_test(&f, black_box(&up)).expect("prices"))
        });
    }
    if let Some(f) = fit(PYMC) {
        let n = f.model.n_times;
        let up = HypotheticalTest::new(&["x1"], &[], n - 30, n - 24, SpendChange::Total(10_000.0));
        g.bench_function("pymc_national/heavy_up_6w_past", |b| b.iter(|| price_test(&f, black_box(&up)).expect("prices")));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
