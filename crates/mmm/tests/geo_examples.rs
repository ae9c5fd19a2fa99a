//! Laplace fits of the shipped geo examples: each finds a mode (Newton-polished, positive-definite
//! Hessian, no "stopped short" warning) with an in-sample R² reported next to its warnings.
//! Minutes on 2 cores: `cargo test -p mmloop-mmm --test geo_examples -- --ignored --nocapture`.

use mmloop_mmm::Dataset;
use mmloop_mmm::config::load_config;
use std::path::{Path, PathBuf};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/datasets");

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
#[ignore = "Laplace fits of 4 geo examples, minutes: cargo test -p mmloop-mmm --test geo_examples -- --ignored --nocapture"]
fn laplace_fits_every_shipped_geo_example_at_a_polished_mode() {
    let mut configs = vec![root().join("data/demo_geo.toml")];
    if Path::new(SHARED).is_dir() {
        for n in ["pymc_mmm_multidimensional_example", "meridian_geo_media", "meridian_geo_all_channels"] {
            configs.push(root().join(format!("examples/{n}.toml")));
        }
    }
    for config in configs {
        let mut spec = load_config(&config).unwrap();
        spec.fit.method = mmloop_mmm::spec::FitMethod::Laplace;
        let data = Dataset::load(&spec).unwrap();
        let t0 = std::time::Instant::now();
        let fit = mmloop_mmm::fit::fit(&spec, &data).unwrap_or_else(|e| panic!("{}: {e}", config.display()));
        let secs = t0.elapsed().as_secs_f64();
        let r2 = mmloop_mmm::fit::analyse_fit(&fit, &data).fit.in_sample.r2;
        let w = fit.diagnostics.warnings().to_vec();
        eprintln!("{}: R² {r2:.4} in {secs:.1} s (loaded machine); {} warnings: {w:#?}", config.display(), w.len());
        assert!(!w.iter().any(|w| w.contains("stopped short")), "{}: {w:?}", config.display());
    }
}
