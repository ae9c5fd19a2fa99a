//! The fit-directory format has one owner (`mmloop_mmm::fitdir`) and stays byte-compatible: a
//! `summary.json` written before its diagnostics were typed reads back and re-serialises to the same
//! bytes, and a fixed fit written today gives the same `summary.json` as before.
//!
//! The fixtures in `tests/fixtures/fitdir_v1` were written by the previous writer (diagnostics as a
//! `serde_json::Value`) from the national demo with the settings of [`fixed_fit`]; the repository
//! root in their input paths is replaced by `@ROOT@`. When a deliberate change to the fit moves
//! its numbers (not the format), rewrite the two summaries with
//! `MMLOOP_BLESS_FIXTURES=1 cargo test -p mmloop-mmm --test fitdir_format` and review the diff:
//! the keys and layout must not change.

use mmloop_mmm::Dataset;
use mmloop_mmm::config::{load_config, to_toml};
use mmloop_mmm::fitdir::{Diagnostics, FitDir, FitDirError, FitProvenance, FitSummary, NutsDiagnostics};
use mmloop_mmm::spec::FitMethod;
use std::path::{Path, PathBuf};

const FIXTURES: &str = "tests/fixtures/fitdir_v1";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURES).join(name)).unwrap()
}

/// With `MMLOOP_BLESS_FIXTURES` set, writes `text` as the fixture `name` (see the module docs).
fn bless(name: &str, text: &str) -> bool {
    if std::env::var_os("MMLOOP_BLESS_FIXTURES").is_none() {
        return false;
    }
    std::fs::write(Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURES).join(name), text).unwrap();
    true
}

#[test]
fn summary_json_of_the_previous_writer_reads_typed_and_reserialises_byte_for_byte() {
    for method in ["laplace", "nuts"] {
        let text = fixture(&format!("summary_{method}.json"));
        let summary: FitSummary = serde_json::from_str(&text).unwrap();
        assert_eq!(summary.to_json_text().unwrap(), text, "{method}");
        let prov = fixture(&format!("provenance_{method}.json"));
        let p: FitProvenance = serde_json::from_str(&prov).unwrap();
        assert_eq!(serde_json::to_string_pretty(&p).unwrap(), prov, "{method}");
        assert_eq!(p.n_draws, summary.n_draws);
        assert_eq!(p.parameters, summary.model.parameters);
        match (&summary.diagnostics, method) {
            (Diagnostics::Laplace(l), "laplace") => {
                assert_eq!(l.starts_converged, "2/2");
                assert_eq!(l.draws, 200);
            }
            (Diagnostics::Nuts(n), "nuts") => {
                assert_eq!((n.chains, n.draws_per_chain), (2, 100));
                assert_eq!(n.step_size.len(), 2);
                assert!(n.max_rhat > 1.0 && n.max_rhat_param.is_some());
                assert!(!n.warnings.is_empty(), "this short run is flagged");
            }
            (d, m) => panic!("{m} fixture read as {:?}", d.method()),
        }
    }
}

/// The national demo fitted as the fixtures were: Laplace with 2 starts and 200 draws, or NUTS with
/// 2 chains × 150 warm-up + 100 draws; written with relative input paths from the crate directory.
fn fixed_fit(method: FitMethod, dir: &Path) -> FitSummary {
    let root = Path::new("../..");
    let mut spec = load_config(root.join("data/demo_national.toml")).unwrap();
    spec.fit.method = method;
    // the fixtures were written when the demo config sampled at the default target_accept
    spec.fit.target_accept = 0.8;
    match method {
        FitMethod::Laplace => (spec.fit.laplace_starts, spec.fit.chains, spec.fit.draws) = (2, 1, 200),
        FitMethod::Nuts => (spec.fit.chains, spec.fit.tune, spec.fit.draws) = (2, 150, 100),
    }
    let data = Dataset::load(&spec).unwrap();
    let options = mmloop_mmm::fit::FitOptions { quiet: true, memory_limit: None };
    let result = mmloop_mmm::fit::fit_with(&spec, &data, options).unwrap();
    let analysis = mmloop_mmm::fit::analyse_fit(&result, &data);
    let info = mmloop_mmm::fit::model_info(&spec, &data, &result);
    mmloop_mmm::fitdir::write_outputs(
        dir,
        &result.model,
        &analysis,
        &result.draws,
        &result.diagnostics,
        &result.sample_stats,
        &info,
        &to_toml(&spec),
        &mmloop_mmm::fitdir::FitInputs {
            config: mmloop_data::FileHash::of(root.join("data/demo_national.toml")).unwrap(),
            data: mmloop_data::FileHash::of(&spec.data.path).unwrap(),
            others: Vec::new(),
        },
    )
    .unwrap();
    FitDir::open(dir).unwrap().summary().unwrap()
}

/// The written text with this checkout's root replaced by `@ROOT@`, as in the fixtures.
fn portable(text: &str) -> String {
    let root: PathBuf = std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")).unwrap();
    text.replace(&root.display().to_string(), "@ROOT@")
}

#[test]
fn a_fixed_laplace_fit_writes_the_same_summary_json_as_the_previous_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fit");
    let summary = fixed_fit(FitMethod::Laplace, &dir);
    let written = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    let prov = std::fs::read_to_string(dir.join("provenance.json")).unwrap();
    if bless("summary_laplace.json", &portable(&written)) && bless("provenance_laplace.json", &portable(&prov)) {
        return;
    }
    assert_eq!(portable(&written), fixture("summary_laplace.json"));
    assert_eq!(portable(&prov), fixture("provenance_laplace.json"));
    // the reader gives back what was written
    assert_eq!(summary.to_json_text().unwrap(), written);
    let fd = FitDir::open(&dir).unwrap();
    assert_eq!(fd.diagnostics().unwrap().method(), FitMethod::Laplace);
    assert_eq!(fd.provenance().unwrap().unwrap().n_draws, summary.n_draws);
}

/// NUTS is deterministic under the seed except for the wall-clock timings: everything else of
/// `summary.json` equals the previous writer's, the timings are per-chain lists of positive seconds.
#[test]
fn a_fixed_nuts_fit_writes_the_same_summary_json_as_the_previous_writer_but_for_timings() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fit");
    let summary = fixed_fit(FitMethod::Nuts, &dir);
    let written = portable(&std::fs::read_to_string(dir.join("summary.json")).unwrap());
    if bless("summary_nuts.json", &written) {
        return;
    }
    let mut now: serde_json::Value = serde_json::from_str(&written).unwrap();
    let mut before: serde_json::Value = serde_json::from_str(&fixture("summary_nuts.json")).unwrap();
    for v in [&mut now, &mut before] {
        for k in ["warmup_seconds", "sampling_seconds"] {
            let t = v["diagnostics"][k].take();
            let t = t.as_array().unwrap();
            assert_eq!(t.len(), 2);
            assert!(t.iter().all(|s| s.as_f64().unwrap() > 0.0), "{k}: {t:?}");
        }
    }
    assert_eq!(now, before);
    let Some(NutsDiagnostics { chains, warnings, .. }) = summary.diagnostics.nuts() else {
        panic!("a NUTS fit reads back as {:?}", summary.diagnostics.method())
    };
    assert_eq!(*chains, 2);
    assert!(mmloop_mmm::fitdir::diagnostics_report(&summary.diagnostics).contains(&warnings[0]));
}

#[test]
fn non_finite_figures_are_written_as_null_and_read_back_as_nan() {
    let text = fixture("summary_nuts.json");
    let mut summary: FitSummary = serde_json::from_str(&text).unwrap();
    let Diagnostics::Nuts(n) = &mut summary.diagnostics else { panic!("nuts fixture") };
    n.max_rhat = f64::NAN;
    n.max_rhat_param = None;
    n.e_bfmi[1] = f64::NAN;
    summary.channels[0].cost_per_kpi.mean = f64::INFINITY;
    let out = summary.to_json_text().unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["diagnostics"]["max_rhat"].is_null() && v["diagnostics"]["e_bfmi"][1].is_null());
    assert!(v["channels"][0]["cost_per_kpi"]["mean"].is_null());
    let back: FitSummary = serde_json::from_str(&out).unwrap();
    let Diagnostics::Nuts(b) = &back.diagnostics else { panic!("nuts") };
    assert!(b.max_rhat.is_nan() && b.e_bfmi[1].is_nan() && b.e_bfmi[0] > 0.0);
    assert!(back.channels[0].cost_per_kpi.mean.is_nan(), "JSON has no infinity: null reads as NaN");
    assert!(mmloop_mmm::fitdir::diagnostics_report(&back.diagnostics).contains("max R-hat NaN"));
}

#[test]
fn fit_dir_errors_name_the_missing_or_unreadable_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let e = FitDir::open(dir).unwrap_err();
    assert!(matches!(e, FitDirError::NotAFit { missing: "config.toml", .. }), "{e}");
    std::fs::write(dir.join("config.toml"), "").unwrap();
    let e = FitDir::open(dir).unwrap_err();
    assert!(matches!(e, FitDirError::NotAFit { missing: "posterior_unconstrained.parquet", .. }), "{e}");
    std::fs::write(dir.join("posterior_unconstrained.parquet"), "").unwrap();
    let fd = FitDir::open(dir).unwrap();
    assert_eq!(fd.provenance().unwrap(), None, "a fit from before provenance records");
    let e = fd.summary().unwrap_err();
    assert!(matches!(e, FitDirError::Summary { .. }) && e.to_string().contains("summary.json"), "{e}");
    std::fs::write(dir.join("summary.json"), r#"{"diagnostics": {"method": "gibbs"}}"#).unwrap();
    let e = fd.summary().unwrap_err();
    assert!(e.to_string().contains("summary.json") && e.to_string().contains("refit"), "{e}");
    std::fs::write(dir.join("provenance.json"), "{").unwrap();
    let e = fd.provenance().unwrap_err();
    assert!(matches!(e, FitDirError::Provenance { .. }) && e.to_string().contains("provenance.json"), "{e}");
}
