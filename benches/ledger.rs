//! The experiment ledger (SQLite, WAL, synchronous = NORMAL): recording 10 000 readouts in one
//! transaction and one transaction per readout (each commit a WAL append; no fsync per commit at
//! this durability level), and listing 10 000 experiments with their channels, cells and geos.
//!
//! Run: `cargo bench --profile dev --bench ledger -- --warm-up-time 1 --measurement-time 3`.
//!
//! Measured with `--profile dev` (deps opt-level 3) on 2 cores shared with other builds (load ~9):
//! one transaction 415 ms (42 µs a readout: 1 lookup + 7 row inserts + hashing), one transaction
//! each 2.28 s (228 µs a commit), list 106 ms, list and format the table 166 ms.
//!
//! `validate` group (`-- validate`): predicting one readout (Channel0, 10 of the 40 Meridian geos,
//! 4 weeks inside the data) on 4000 draws 116 ms [111, 120]; the same with discrepancy and
//! posterior predictive p-value 55 ms [47, 67] (the two overlap: load average ~10 from other
//! builds during the run, so take ~50–120 ms for either); the history of 10 000 predicted
//! readouts, read and formatted, 410–495 ms.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mmloop_data::LiftTestRecord;
use mmloop_loop::ledger::{Ledger, Prediction};
use mmloop_loop::validate;
use mmloop_mmm::optimize::FittedModel;
use std::hint::black_box;
use std::path::Path;

const N: usize = 10_000;

fn records() -> Vec<LiftTestRecord> {
    (0..N)
        .map(|i| LiftTestRecord {
            channels: vec![["tv", "search", "social"][i % 3].to_string()],
            geos: (0..4).map(|g| format!("geo{}", (i + g) % 40)).collect(),
            start: "2024-03-04".into(),
            end: "2024-03-31".into(),
            spend_change: 40_000.0 + i as f64,
            spend_path: None,
            incremental_kpi: 3_000.0 + (i as f64).sqrt(),
            standard_error: 700.0,
            estimator: "sc".into(),
            source: format!("bench-{i}"),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let recs = records();
    let mut g = c.benchmark_group("ledger_10000_readouts");
    g.sample_size(10);
    g.bench_function("add_in_one_transaction", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("temp dir");
                let l = Ledger::open_or_create(dir.path().join("l.db")).expect("ledger opens");
                (dir, l)
            },
            |(dir, mut l)| {
                black_box(l.add_readouts(&recs, None).expect("adds"));
                (dir, l)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("add_one_transaction_each", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("temp dir");
                let l = Ledger::open_or_create(dir.path().join("l.db")).expect("ledger opens");
                (dir, l)
            },
            |(dir, mut l)| {
                for r in &recs {
                    black_box(l.add_readouts(std::slice::from_ref(r), None).expect("adds"));
                }
                (dir, l)
            },
            BatchSize::PerIteration,
        )
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let mut l = Ledger::open_or_create(dir.path().join("l.db")).expect("ledger opens");
    l.add_readouts(&recs, None).expect("adds");
    g.bench_function("list", |b| b.iter(|| black_box(l.experiments().expect("lists").len())));
    g.bench_function("list_and_format_table", |b| {
        b.iter(|| {
            let ex = l.experiments().expect("lists");
            black_box(mmloop_loop::ledger::format_list(&ex, &[]).len())
        })
    });
    g.finish();
}

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/datasets/mmm");

/// Meridian's 40-geo file (5 channels by impressions, Hill, geometric adstock with 8 lags) with
/// 4000 draws scattered around the prior centre (a 40-geo NUTS fit takes minutes; the cost of a
/// prediction does not depend on where the draws come from).
fn meridian_fit() -> Option<FittedModel> {
    if !Path::new(DATA).exists() {
        eprintln!("SKIPPED: {DATA} is absent");
        return None;
    }
    let mut text = String::from(
        "[data]\npath = \"meridian_geo_all_channels.csv\"\ntime = \"time\"\ngeo = \"geo\"\nkpi = \"conversions\"\n\
         population = \"population\"\n[media]\nadstock = { kind = \"geometric\", max_lag = 8, normalize = true }\n\
         saturation = { kind = \"hill\" }\n[[control]]\ncolumn = \"competitor_sales_control\"\n",
    );
    for c in 0..5 {
        text += &format!(
            "[[channel]]\nname = \"Channel{c}\"\nspend = \"Channel{c}_spend\"\nexposure = \"Channel{c}_impression\"\n"
        );
    }
    let spec = mmloop_mmm::config::parse_config(&text, Path::new(DATA)).expect("config parses");
    let data = mmloop_mmm::Dataset::load(&spec).expect("data loads");
    let model = mmloop_mmm::model::MmmModel::new(&spec, &data).expect("model builds");
    let q0 = model.initial_point();
    let draws = (0..4000)
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

/// Predicting a readout (a 4-week test on 10 of the 40 geos, inside the data) on 4000 draws, with
/// its discrepancy and posterior predictive p-value; and the history of 10 000 predicted readouts.
fn bench_validate(c: &mut Criterion) {
    let mut g = c.benchmark_group("validate");
    g.sample_size(10);
    if let Some(f) = meridian_fit() {
        let n = f.data.times.labels.len();
        let rec = LiftTestRecord {
            channels: vec!["Channel0".into()],
            geos: f.data.geos.iter().take(10).cloned().collect(),
            start: f.data.times.labels[n - 20].clone(),
            end: f.data.times.labels[n - 17].clone(),
            spend_change: 50_000.0,
            spend_path: None,
            incremental_kpi: 2_000.0,
            standard_error: 500.0,
            estimator: "bench".into(),
            source: "bench".into(),
        };
        g.bench_function("predict_readout_meridian_40geo_4000_draws", |b| {
            b.iter(|| black_box(validate::predict_readout(&f, black_box(&rec)).expect("prices").mean))
        });
        g.bench_function("check_readout_meridian_40geo_4000_draws", |b| {
            b.iter(|| {
                black_box(
                    validate::check_readout_against(&f, Some(1), black_box(&rec), validate::Threshold::default())
                        .expect("checks")
                        .p_value,
                )
            })
        });
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut l = Ledger::open_or_create(dir.path().join("l.db")).expect("ledger opens");
    let ids = l.add_readouts(&records(), None).expect("adds");
    let fit = l
        .record_fit(&mmloop_loop::ledger::NewFit {
            config_hash: "c".into(),
            data_hash: "d".into(),
            method: "laplace".into(),
            diagnostics: serde_json::json!({}),
            roi_summary: serde_json::json!([]),
            fit_dir: None,
        })
        .expect("fit");
    let preds: Vec<(Prediction, bool)> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| {
            let m = 3_000.0 + 50.0 * (i % 7) as f64;
            (Prediction { fit_id: fit, experiment_id: id, mean: m, sd: 400.0, q05: m - 658.0, q95: m + 658.0 }, false)
        })
        .collect();
    l.record_predictions(&preds).expect("records");
    g.bench_function("history_10000_readouts", |b| {
        b.iter(|| black_box(validate::format_history(&validate::history(&l).expect("history")).len()))
    });
    g.finish();
}

criterion_group!(benches, bench, bench_validate);
criterion_main!(benches);
