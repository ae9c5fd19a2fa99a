//! Hierarchies the data cannot inform are reported: the 2-geo PyMC-Marketing example's pooling
//! scales are prior-dominated (one difference between geos cannot estimate a spread), the geo demo's
//! (10 geos) are not; and the per-block information ratio κ orders blocks as the data do.

use mmloop_mmm::Dataset;
use mmloop_mmm::config::load_config;
use mmloop_mmm::model::MmmModel;
use mmloop_mmm::model::centring::{PRIOR_DOMINATED_KAPPA, choose, prior_dominated_warnings};
use std::path::{Path, PathBuf};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/datasets");

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn model(config: PathBuf) -> (MmmModel, mmloop_mmm::ModelSpec) {
    let spec = load_config(&config).unwrap_or_else(|e| panic!("{}: {e}", config.display()));
    let data = Dataset::load(&spec).unwrap();
    (MmmModel::new(&spec, &data).unwrap(), spec)
}

#[test]
fn two_geos_warn_that_the_pooling_scales_follow_their_priors() {
    if !Path::new(SHARED).is_dir() {
        eprintln!("SKIPPED: no ../shared/datasets");
        return;
    }
    let (m, spec) = model(root().join("examples/pymc_mmm_multidimensional_example.toml"));
    assert_eq!(m.n_geos(), 2);
    let w = prior_dominated_warnings(&m, &spec, &[]);
    assert!(w.iter().any(|w| w.contains("2 geos cannot inform a pooling scale")), "{w:?}");
}

#[test]
fn the_geo_demo_has_no_prior_dominated_pooling_scale_and_a_national_model_no_warning() {
    let (m, spec) = model(root().join("data/demo_geo.toml"));
    let w = prior_dominated_warnings(&m, &spec, &[]);
    assert!(!w.iter().any(|w| w.contains("cannot inform a pooling scale")), "{w:?}");
    let (n, nspec) = model(root().join("data/demo_national.toml"));
    assert!(prior_dominated_warnings(&n, &nspec, &[]).is_empty());
    let c = choose(&n, &nspec);
    assert!(c.intercept_kappa.is_none() && c.beta_kappa.iter().all(Option::is_none));
}

/// κ of the intercept block grows with how far apart the geos' levels are relative to the noise:
/// the geo demo's KPI with the geo levels pulled halfway towards their mean has a quarter of the
/// between-geo variance, so κ falls by 4 (exactly: the two-way residuals do not change).
#[test]
fn intercept_kappa_scales_with_the_between_geo_variance() {
    let (m, spec) = model(root().join("data/demo_geo.toml"));
    let k = choose(&m, &spec).intercept_kappa.unwrap();
    let mut shrunk = m.clone();
    let (g_n, t_n, tf) = (m.n_geos(), m.n_times, m.n_fit);
    let means: Vec<f64> = (0..g_n).map(|g| m.y[g * t_n..g * t_n + tf].iter().sum::<f64>() / tf as f64).collect();
    let overall = means.iter().sum::<f64>() / g_n as f64;
    for (g, mean) in means.iter().enumerate() {
        for t in 0..t_n {
            shrunk.y[g * t_n + t] -= 0.5 * (mean - overall);
        }
    }
    let k2 = choose(&shrunk, &spec).intercept_kappa.unwrap();
    // both sums of ~10³ squares: 1e-9 relative
    assert!((k2 - k / 4.0).abs() < 1e-9 * k, "{k} -> {k2}");
}

/// After a fit the warning judges each channel at its fitted pooling scale τ̂: κ(τ̂) = κ(τ₀)·(τ̂/τ₀)²
/// (κ is τ² times the data's information per geo), so a scale the data pushed far above the
/// prior's centre clears the warning and one pulled towards 0 keeps it, with the scale named.
#[test]
fn prior_domination_is_judged_at_the_fitted_pooling_scale() {
    if !Path::new(SHARED).is_dir() {
        eprintln!("SKIPPED: no ../shared/datasets");
        return;
    }
    let (m, spec) = model(root().join("examples/meridian_geo_media.toml"));
    let k0: Vec<f64> = choose(&m, &spec).beta_kappa.iter().map(|k| k.unwrap()).collect();
    let tau0 = match spec.pooling {
        mmloop_mmm::spec::Pooling::Partial { tau } => tau.central_value(),
        _ => unreachable!("the example pools its media effects"),
    };
    let channel_warnings = |w: &[String]| w.iter().filter(|w| w.starts_with("channel ")).count();
    // at the prior's centre every channel of this example is prior-dominated (κ 0.01–0.07)
    assert!(k0.iter().all(|&k| k < PRIOR_DOMINATED_KAPPA), "{k0:?}");
    assert_eq!(channel_warnings(&prior_dominated_warnings(&m, &spec, &[])), k0.len());
    // the scale at which channel 0 sits exactly 4× above the threshold clears its warning only
    let t = tau0 * (4.0 * PRIOR_DOMINATED_KAPPA / k0[0]).sqrt();
    let mut tau_hat = vec![None; k0.len()];
    tau_hat[0] = Some(t);
    let w = prior_dominated_warnings(&m, &spec, &tau_hat);
    assert_eq!(channel_warnings(&w), k0.len() - 1, "{w:?}");
    assert!(!w.iter().any(|w| w.starts_with("channel Channel0:")), "{w:?}");
    // half the threshold's scale keeps it, at κ = κ₀·(τ̂/τ₀)², and names the fitted scale
    let t = tau0 * (0.5 * PRIOR_DOMINATED_KAPPA / k0[0]).sqrt();
    tau_hat[0] = Some(t);
    let w = prior_dominated_warnings(&m, &spec, &tau_hat);
    let c0 = w.iter().find(|w| w.starts_with("channel Channel0:")).expect("channel 0 still warned");
    assert!(c0.contains(&format!("κ = {:.2}", 0.5 * PRIOR_DOMINATED_KAPPA)), "{c0}");
    assert!(c0.contains(&format!("at the fitted pooling scale {t:.2}")), "{c0}");
}
