//! The experiment ledger (SQLite, WAL, synchronous = NORMAL): recording 10 000 readouts in one
//! transaction and one transaction per readout (each commit a WAL append; no fsync per commit at
//! this durability level), and listing 10 000 experiments with their channels, cells and geos.
//!
//! Run: `cargo bench --bench ledger -- --warm-up-time 1 --measurement-time 3`.
//!
//! Measured with `--profile dev` (deps opt-level 3) on 2 cores shared with other builds (load ~9):
//! one transaction 415 ms (42 µs a readout: 1 lookup + 7 row inserts + hashing), one transaction
//! each 2.28 s (228 µs a commit), list 106 ms, list and format the table 166 ms.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mmloop_data::LiftTestRecord;
use mmloop_loop::ledger::Ledger;
use std::hint::black_box;

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

criterion_group!(benches, bench);
criterion_main!(benches);
