//! Rendering the HTML report of a 40-geo fit (Meridian's geo file: 40 geos × 156 weeks, 5 channels,
//! Laplace, 4000 draws). Target: < 2 s. The fit is made once (about a minute) and kept under the
//! target directory; the benchmark times `mmloop_report::render` (read every file, draw 11 charts,
//! fill the template).
//!
//! Run: `cargo bench --bench report -- --warm-up-time 1 --measurement-time 3`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::path::{Path, PathBuf};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/datasets/mmm/meridian_geo_all_channels.csv");

fn config() -> String {
    let mut s = format!(
        "[data]\npath = {DATA:?}\ntime = \"time\"\ngeo = \"geo\"\nkpi = \"conversions\"\npopulation = \"population\"\n\
         [media]\nadstock = {{ kind = \"geometric\", max_lag = 8, normalize = true }}\nsaturation = {{ kind = \"hill\" }}\n"
    );
    for c in 0..5 {
        s.push_str(&format!(
            "[[channel]]\nname = \"Channel{c}\"\nspend = \"Channel{c}_spend\"\nexposure = \"Channel{c}_impression\"\n"
        ));
    }
    s.push_str(
        "[[control]]\ncolumn = \"competitor_sales_control\"\n[[control]]\ncolumn = \"sentiment_score_control\"\n",
    );
    s.push_str("[fit]\nmethod = \"laplace\"\nseed = 1\n");
    s
}

/// The 40-geo fit directory, fitted on first use.
fn fit_dir() -> Option<PathBuf> {
    if !Path::new(DATA).exists() {
        eprintln!("SKIPPED: {DATA} is absent");
        return None;
    }
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-bench");
    let dir = root.join("fit40");
    if mmloop_mmm::fitdir::FitDir::open(&dir).and_then(|d| d.summary()).is_ok() {
        return Some(dir);
    }
    std::fs::create_dir_all(&root).unwrap();
    let cfg = root.join("geo40.toml");
    std::fs::write(&cfg, config()).unwrap();
    let spec = mmloop_mmm::config::load_config(&cfg).expect("config parses");
    let data = mmloop_mmm::Dataset::load(&spec).expect("data loads");
    eprintln!("fitting the 40-geo model once (Laplace) …");
    let options = mmloop_mmm::fit::FitOptions { quiet: true, ..Default::default() };
    let result = mmloop_mmm::fit::fit_with(&spec, &data, options).expect("fits");
    let analysis = mmloop_mmm::fit::analyse_checked(&result, &data).expect("analyses");
    let info = mmloop_mmm::fit::model_info(&spec, &data, &result);
    let inputs = mmloop_mmm::output::FitInputs {
        config: mmloop_data::FileHash::of(&cfg).unwrap(),
        data: mmloop_data::FileHash::of(Path::new(DATA)).unwrap(),
        others: vec![],
    };
    mmloop_mmm::output::write_outputs(
        &dir,
        &result.model,
        &analysis,
        &result.draws,
        &result.diagnostics,
        &result.sample_stats,
        &info,
        &mmloop_mmm::config::to_toml(&spec),
        &inputs,
    )
    .expect("writes the fit");
    Some(dir)
}

fn bench(c: &mut Criterion) {
    let Some(dir) = fit_dir() else { return };
    let mut g = c.benchmark_group("report");
    g.sample_size(10);
    g.bench_function("render/fit_40_geos", |b| {
        b.iter(|| mmloop_report::render(std::hint::black_box(&dir)).expect("renders"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
