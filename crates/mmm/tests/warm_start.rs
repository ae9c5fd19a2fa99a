//! A Laplace fit started at an earlier fit's mode ([`WarmStart`]) finds the same mode as a cold fit:
//! the warm start is one more start, placed correctly in the new model's coordinates whatever its
//! centring, and ignored by a model with other parameters.

use mmloop_mmm::Dataset;
use mmloop_mmm::config::load_config;
use mmloop_mmm::fit::{FitOptions, FitResult, WarmStart, fit_from, fit_with};
use mmloop_mmm::fitdir::{Diagnostics, LaplaceReport};
use mmloop_mmm::spec::{FitMethod, ModelSpec};
use std::path::Path;

fn spec(name: &str, holdout: usize) -> (ModelSpec, Dataset) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut spec = load_config(root.join("data").join(name)).unwrap();
    spec.fit.method = FitMethod::Laplace;
    spec.fit.chains = 1;
    spec.fit.draws = 100;
    spec.fit.seed = 3;
    spec.holdout = holdout;
    spec.data.path = std::fs::canonicalize(&spec.data.path).unwrap();
    let data = Dataset::load(&spec).unwrap();
    (spec, data)
}

fn report(fit: &FitResult) -> &LaplaceReport {
    match &fit.diagnostics {
        Diagnostics::Laplace(l) => l,
        other => panic!("not a Laplace fit: {other:?}"),
    }
}

const QUIET: FitOptions = FitOptions { quiet: true, memory_limit: None };

/// The warm start of a fit, placed back into the same model, is that fit's mode (to rounding): the
/// round trip through the non-centred model coordinates is exact, also for the geo demo, whose
/// intercept block is centred for the mode search.
#[test]
fn warm_start_round_trips_to_the_fits_own_mode() {
    let (spec, data) = spec("demo_geo.toml", 0);
    let fit = fit_with(&spec, &data, QUIET).unwrap();
    let mode = fit.mode.as_ref().expect("a Laplace fit keeps its mode");
    let warm = WarmStart::from_fit(&fit).expect("a warm start");
    let back = warm.point_for(&fit.model).expect("the same model takes it");
    for (i, (a, b)) in mode.iter().zip(&back).enumerate() {
        assert!((a - b).abs() <= 1e-9 * (1.0 + a.abs()), "{}: {a} vs {b}", fit.model.names()[i]);
    }
}

/// The loop's use: the mode of the model fitted without the last quarter starts the fit on all
/// weeks, which reaches the cold fit's mode (log densities within the optimiser's tolerance, every
/// coordinate within 1e-3 of its scale) with one start more than the spec's.
#[test]
fn warm_start_from_less_data_reaches_the_cold_mode() {
    let (short, short_data) = spec("demo_geo.toml", 13);
    let earlier = fit_with(&short, &short_data, QUIET).unwrap();
    let warm = WarmStart::from_fit(&earlier).unwrap();
    let (full, data) = spec("demo_geo.toml", 0);
    let cold = fit_with(&full, &data, QUIET).unwrap();
    let hot = fit_from(&full, &data, QUIET, Some(&warm)).unwrap();
    let (rc, rh) = (report(&cold), report(&hot));
    assert_eq!(rh.start_logps.len(), rc.start_logps.len() + 1, "the warm start is one more start");
    let first = rh.start_logps[0].expect("the warm start converged");
    eprintln!("logp: cold {}, warm {} (warm start ended at {first})", rc.logp_at_mode, rh.logp_at_mode);
    assert!((rh.logp_at_mode - rc.logp_at_mode).abs() < 1e-6 * rc.logp_at_mode.abs(), "{rh:?} vs {rc:?}");
    assert!((first - rh.logp_at_mode).abs() < 1e-3, "the warm start ends at the mode: {first}");
    let (a, b) = (cold.mode.unwrap(), hot.mode.unwrap());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!((x - y).abs() < 1e-3 * (1.0 + x.abs()), "{}: {x} vs {y}", cold.model.names()[i]);
    }
}

/// A model with other parameters (the national demo) takes no warm start from a geo fit.
#[test]
fn warm_start_of_another_model_is_ignored() {
    let (geo, geo_data) = spec("demo_geo.toml", 0);
    let warm = WarmStart::from_fit(&fit_with(&geo, &geo_data, QUIET).unwrap()).unwrap();
    let (national, data) = spec("demo_national.toml", 0);
    let model = mmloop_mmm::model::MmmModel::new(&national, &data).unwrap();
    assert!(warm.point_for(&model).is_none());
    let cold = fit_with(&national, &data, QUIET).unwrap();
    let hot = fit_from(&national, &data, QUIET, Some(&warm)).unwrap();
    assert_eq!(report(&hot).start_logps.len(), report(&cold).start_logps.len());
    assert_eq!(hot.draws.values, cold.draws.values, "ignored means the very same fit");
}
