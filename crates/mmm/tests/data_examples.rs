//! Every config under `examples/` parses and its dataset loads with the expected shape. The public
//! datasets live in `../shared/datasets`; without them those configs are SKIPPED (the reference config
//! reads the bundled demo and always runs).

use mmloop_mmm::Dataset;
use mmloop_mmm::config::load_config;
use std::path::{Path, PathBuf};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/datasets");

fn examples() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"))
}

/// (config, geos, periods, channels, controls)
const EXPECTED: &[(&str, usize, usize, usize, usize)] = &[
    ("pymc_mmm_example.toml", 1, 179, 2, 3),
    ("pymc_mmm_multidimensional_example.toml", 2, 159, 2, 2),
    ("meridian_national_media.toml", 1, 156, 4, 2),
    ("meridian_geo_media.toml", 20, 156, 4, 2),
    ("meridian_geo_all_channels.toml", 40, 156, 5, 4),
    ("robyn_dt_simulated_weekly.toml", 1, 208, 5, 4),
];

fn load(name: &str) -> Dataset {
    let spec = load_config(examples().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    Dataset::load(&spec).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_example_config_is_covered_here() {
    let mut listed: Vec<&str> = EXPECTED.iter().map(|e| e.0).collect();
    listed.push("full_reference.toml");
    for entry in std::fs::read_dir(examples()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".toml") {
            assert!(listed.contains(&name.as_str()), "examples/{name} is not checked by this test");
        }
    }
}

#[test]
fn full_reference_config_runs_on_the_demo_data() {
    let d = load("full_reference.toml");
    assert_eq!((d.n_geos(), d.n_times(), d.n_channels()), (1, 156, 3));
}

#[test]
fn public_dataset_configs_load_unchanged_files() {
    if !Path::new(SHARED).is_dir() {
        eprintln!("SKIPPED: {SHARED} not found; the example configs read the public datasets there");
        return;
    }
    for &(name, geos, times, channels, controls) in EXPECTED {
        let d = load(name);
        assert_eq!(
            (d.n_geos(), d.n_times(), d.n_channels(), d.controls.len()),
            (geos, times, channels, controls),
            "{name}"
        );
        assert!(d.kpi.iter().all(|v| v.is_finite()), "{name}");
        assert!(d.times.values.windows(2).all(|w| w[1] - w[0] == 7.0), "{name}: weekly, gap-free");
    }
}

#[test]
fn public_datasets_are_read_as_their_sources_describe() {
    if !Path::new(SHARED).is_dir() {
        eprintln!("SKIPPED: {SHARED} not found");
        return;
    }
    // PyMC-Marketing example: first row 2018-04-02, y = 3984.66..., x1 = 0.318...
    let d = load("pymc_mmm_example.toml");
    assert_eq!(d.times.labels[0], "2018-04-02");
    assert!((d.kpi[[0, 0]] - 3984.662237343649).abs() < 1e-9);
    assert!((d.spend[[0, 0, 0]] - 0.3185800179359486).abs() < 1e-12);
    // Meridian geo: impressions drive media, spend is money; population constant per geo
    let d = load("meridian_geo_all_channels.toml");
    assert_eq!(d.geos[0], "Geo0");
    assert_eq!(d.media[[0, 0, 0]], 280668.0);
    assert!((d.spend[[0, 0, 0]] - 2058.0608).abs() < 1e-9);
    assert!((d.population.as_ref().unwrap()[0] - 136670.94).abs() < 1e-6);
    assert!(d.revenue_per_kpi.is_some());
    // Robyn: the text `events` column becomes indicators with one week each
    let d = load("robyn_dt_simulated_weekly.toml");
    assert_eq!(d.controls, ["competitor_sales_B", "newsletter", "events=event1", "events=event2"]);
    for k in [2, 3] {
        assert_eq!(d.control_values.slice(ndarray::s![0, .., k]).sum(), 1.0);
    }
    assert_eq!(d.times.labels[0], "2015-11-23");
}
