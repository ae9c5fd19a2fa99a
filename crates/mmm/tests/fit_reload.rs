//! A saved fit loads back in the form its draws were written in. Two-geo intercepts were sampled
//! non-centred (`intercept_geo_z`) until they became partially centred (`intercept_geo_pc`,
//! `MmmModel::sampling_centring`); a fit directory written before that change must still load, with
//! the same posterior.

use mmloop_mmm::Dataset;
use mmloop_mmm::config::{load_config, to_toml};
use mmloop_mmm::model::centring::Centring;
use mmloop_mmm::output::Draws;
use mmloop_mmm::spec::{FitMethod, GeoInterceptSd};
use std::path::Path;

#[test]
fn a_two_geo_fit_written_in_the_old_non_centred_form_loads_with_the_same_posterior() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = root.join("examples/pymc_mmm_multidimensional_example.toml");
    let mut spec = load_config(&config).unwrap();
    // the pooled intercepts the old files hold (the example now holds their sd: no pooling scale)
    spec.baseline.intercept_geo_sd = GeoInterceptSd::Prior(mmloop_mmm::Prior::HalfNormal { sigma: 1.0 });
    spec.fit.method = FitMethod::Laplace;
    (spec.fit.laplace_starts, spec.fit.chains, spec.fit.draws) = (2, 1, 50);
    spec.data.path = std::fs::canonicalize(&spec.data.path).unwrap();
    let data = Dataset::load(&spec).unwrap();
    let options = mmloop_mmm::fit::FitOptions { quiet: true, memory_limit: None };
    let result = mmloop_mmm::fit::fit_with(&spec, &data, options).unwrap();
    let new = &result.model;
    assert!(new.names().iter().any(|n| n.starts_with("intercept_geo_pc")), "{:?}", new.names());

    // the same posterior as the previous version wrote it: non-centred intercepts
    let mut old = new.clone();
    old.set_centring(&Centring { intercept_power: None, ..new.centring() });
    assert!(old.names().iter().any(|n| n.starts_with("intercept_geo_z")), "{:?}", old.names());
    let old_draws = Draws::new(
        &old,
        result.draws.values.iter().map(|q| old.convert_point(new, q)).collect(),
        result.draws.chain.clone(),
        result.draws.draw.clone(),
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fit");
    let analysis = mmloop_mmm::analysis::analyse(
        &old,
        &old_draws,
        &data.times.labels,
        &data.kpi.iter().copied().collect::<Vec<f64>>(),
    );
    let info = mmloop_mmm::fit::model_info(&spec, &data, &result);
    mmloop_mmm::fitdir::write_outputs(
        &out,
        &old,
        &analysis,
        &old_draws,
        &result.diagnostics,
        &result.sample_stats,
        &info,
        &to_toml(&spec),
        &mmloop_mmm::fitdir::FitInputs {
            config: mmloop_data::FileHash::of(&config).unwrap(),
            data: mmloop_data::FileHash::of(&spec.data.path).unwrap(),
            others: Vec::new(),
        },
    )
    .unwrap();

    let (_, _, loaded) = mmloop_mmm::fit::load_fit(&out).unwrap();
    assert_eq!(loaded.model.names(), old.names(), "loaded in the form its columns name");
    assert_eq!(loaded.draws.values.len(), result.draws.values.len());
    // the same posterior: every figure of the analysis (fitted values and baseline use the geo
    // intercepts, whose coordinates differ between the forms) to rounding
    let a = mmloop_mmm::fit::analyse_fit(&loaded, &data);
    let b = mmloop_mmm::fit::analyse_fit(&result, &data);
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * (1.0 + y.abs());
    for (x, y) in a.periods.iter().zip(&b.periods) {
        assert!(close(x.fitted, y.fitted) && close(x.baseline, y.baseline), "{}: {x:?} vs {y:?}", x.time);
    }
    for (x, y) in a.channels.iter().zip(&b.channels) {
        assert!(close(x.roi.mean, y.roi.mean) && close(x.roi.q95, y.roi.q95), "{}: {x:?} vs {y:?}", x.name);
    }
}
