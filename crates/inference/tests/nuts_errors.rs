//! How NUTS handles failing densities, bad settings and starting points.

#![allow(clippy::neg_cmp_op_on_partial_ord)] // written so that NaN fails the check

mod common;

use common::IidNormal;
use mmloop_inference::{
    InferenceError, Init, LogDensity, LogDensityError, MassMatrix, NutsSettings, Posterior, sample_nuts,
};

fn quiet() -> NutsSettings {
    NutsSettings { quiet: true, tune: 300, draws: 300, ..NutsSettings::default() }
}

/// Half-normal on (0, ∞) written directly on the real line: outside the support the density says
/// "recoverable", which NUTS must treat as a rejected (divergent) trajectory and carry on.
struct HalfNormalWithWall;

impl LogDensity for HalfNormalWithWall {
    fn dim(&self) -> usize {
        1
    }
    fn logp_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, LogDensityError> {
        if x[0] <= 0.0 {
            return Err(LogDensityError::Recoverable(format!("x = {} is outside (0, inf)", x[0])));
        }
        grad[0] = -x[0];
        Ok(-0.5 * x[0] * x[0])
    }
}

#[test]
fn recoverable_errors_are_divergences_and_sampling_continues() {
    let posterior = sample_nuts(&HalfNormalWithWall, &quiet()).unwrap();
    assert!(posterior.pooled_draws().all(|d| d[0] > 0.0));
    assert!(posterior.divergences() > 0, "crossing the wall must show up as divergences");
    // Every chain started inside the support even though half the uniform starts are outside.
    assert!(posterior.warmup.iter().all(|w| w.init[0] > 0.0));
    // Half-normal mean is sqrt(2/pi) ≈ 0.80 (loose: the wall biases NUTS a little).
    let n = (posterior.n_chains() * posterior.n_draws()) as f64;
    let mean = posterior.pooled_draws().map(|d| d[0]).sum::<f64>() / n;
    assert!((mean - (2.0 / std::f64::consts::PI).sqrt()).abs() < 0.1, "{mean}");
}

/// Fatal beyond x = 3: the run must stop and pass the model's message on.
struct FatalBeyondThree;

impl LogDensity for FatalBeyondThree {
    fn dim(&self) -> usize {
        2
    }
    fn logp_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64, LogDensityError> {
        if x[0] > 3.0 {
            return Err(LogDensityError::Fatal("design matrix lost its rows".into()));
        }
        // A wide normal so the chains wander past 3 quickly.
        grad[0] = -x[0] / 100.0;
        grad[1] = -x[1];
        Ok(-0.5 * (x[0] * x[0] / 100.0 + x[1] * x[1]))
    }
}

#[test]
fn fatal_errors_abort_with_the_models_message() {
    let err = sample_nuts(&FatalBeyondThree, &quiet()).unwrap_err();
    match &err {
        InferenceError::FatalDensity { message, .. } => assert_eq!(message, "design matrix lost its rows"),
        other => panic!("expected FatalDensity, got {other:?}"),
    }
    assert!(err.to_string().contains("design matrix lost its rows"));
}

struct Nowhere;

impl LogDensity for Nowhere {
    fn dim(&self) -> usize {
        3
    }
    fn logp_grad(&self, _: &[f64], _: &mut [f64]) -> Result<f64, LogDensityError> {
        Ok(f64::NEG_INFINITY)
    }
}

#[test]
fn no_valid_start_is_reported() {
    let err = sample_nuts(&Nowhere, &NutsSettings { init_attempts: 7, ..quiet() }).unwrap_err();
    assert!(matches!(err, InferenceError::Initialization { attempts: 7, .. }), "{err:?}");
    assert!(err.to_string().contains("not finite"), "{err}");
}

#[test]
fn bad_settings_are_rejected() {
    let d = IidNormal { mu: vec![0.0; 2], sigma: vec![1.0; 2] };
    for s in [
        NutsSettings { target_accept: 1.0, ..quiet() },
        NutsSettings { chains: 0, ..quiet() },
        NutsSettings { draws: 0, ..quiet() },
        NutsSettings { max_tree_depth: 0, ..quiet() },
    ] {
        assert!(matches!(sample_nuts(&d, &s), Err(InferenceError::InvalidSettings(_))), "{s:?}");
    }
    let wrong_len = NutsSettings { init: Init::Around { center: vec![0.0; 3], radius: 0.0 }, ..quiet() };
    assert!(matches!(sample_nuts(&d, &wrong_len), Err(InferenceError::InvalidModel(_))));
}

#[test]
fn start_at_a_given_point_and_serialise() {
    let d = IidNormal { mu: vec![5.0, -5.0], sigma: vec![1.0, 1.0] };
    let s = NutsSettings { init: Init::Around { center: vec![5.0, -5.0], radius: 0.0 }, chains: 2, ..quiet() };
    let posterior = sample_nuts(&d, &s).unwrap();
    // Exactly at the mode the gradient is zero, which nuts-rs rejects: the start is nudged by 1e-6.
    for w in &posterior.warmup {
        assert!((w.init[0] - 5.0).abs() < 1e-5 && (w.init[1] + 5.0).abs() < 1e-5, "{:?}", w.init);
    }
    assert_eq!((posterior.n_chains(), posterior.n_draws(), posterior.dim()), (2, 300, 2));
    assert_eq!(posterior.param_names, vec!["x[0]", "x[1]"]);
    let w = &posterior.warmup[0];
    assert!(w.step_size > 0.0 && w.inv_mass_diag.as_ref().is_some_and(|m| m.len() == 2));
    let stats = &posterior.sample_stats[0][0];
    assert!(stats.n_steps >= 1 && stats.tree_depth >= 1 && stats.energy.is_finite());
    let json = serde_json::to_string(&posterior).unwrap();
    let back: Posterior = serde_json::from_str(&json).unwrap();
    assert_eq!(back.draws, posterior.draws);
    let settings_json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<NutsSettings>(&settings_json).unwrap(), s);
}

#[test]
fn low_rank_metric_samples_a_correlated_gaussian() {
    let g = common::Gaussian::ar1(&[1.0, 3.0, 0.3, 2.0, 1.0], 0.95);
    let s = NutsSettings {
        mass_matrix: mmloop_inference::MassMatrix::low_rank(),
        seed: 3,
        ..NutsSettings { quiet: true, ..Default::default() }
    };
    let posterior = sample_nuts(&g, &s).unwrap();
    let params = common::summaries(&posterior);
    let mut problems = common::check_convergence(&posterior, &params);
    for (j, p) in params.iter().enumerate() {
        problems.extend(common::check_normal_marginal(p, g.mean[j], g.cov[j][j].sqrt(), 4.0));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(posterior.warmup[0].inv_mass_diag.is_none());
}

#[test]
fn dense_metric_and_min_tree_depth_settings_are_checked() {
    let d = IidNormal { mu: vec![0.0; 2], sigma: vec![1.0; 2] };
    let e = sample_nuts(&d, &NutsSettings { mass_matrix: MassMatrix::Dense, tune: 20, ..quiet() }).unwrap_err();
    assert!(e.to_string().contains("tune >= 50"), "{e}");
    let e = sample_nuts(&d, &NutsSettings { min_tree_depth: 11, ..quiet() }).unwrap_err();
    assert!(e.to_string().contains("min_tree_depth (11) must not exceed max_tree_depth (10)"), "{e}");
}

#[test]
fn no_warm_up_still_samples() {
    let d = IidNormal { mu: vec![0.0; 3], sigma: vec![1.0; 3] };
    let posterior = sample_nuts(&d, &NutsSettings { tune: 0, draws: 50, chains: 2, ..quiet() }).unwrap();
    assert_eq!(posterior.n_draws(), 50);
    assert!(posterior.warmup.iter().all(|w| w.tune == 0 && w.divergences == 0 && w.step_size > 0.0));
}
