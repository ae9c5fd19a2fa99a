//! The MMM's geo blocks (`MmmModel::geo_blocks`): without the level coordinate the Hessian of a geo
//! model is block-arrow (a geo's intercept and effects interact only with shared coordinates), so
//! the coloured finite-difference Hessian equals the dense one; with it (or with an ROI prior on a
//! pooled channel, or a lift test over several geos, undeclared) the geos couple. The level form's
//! preconditioner Hessian mapped from the sparse form's is the dense one at the mode, and the
//! Laplace fit finds the same mode and covariance with it.

#![allow(clippy::needless_range_loop)] // matrix indices

mod common;

use mmloop_inference::laplace::{hessian, hessian_with};
use mmloop_inference::{HessianSparsity, LogDensity, sparsity_violation};
use mmloop_mmm::Prior;
use mmloop_mmm::model::MmmModel;
use mmloop_mmm::model::centring::Centring;
use mmloop_mmm::model::simulate::{SimOptions, simulate};
use mmloop_mmm::spec::{EffectPrior, Likelihood};
use proptest::prelude::*;

const STEP: f64 = 6.055454452393343e-6; // ε^(1/3), the Laplace default

/// A 4-geo model with partial pooling: `which` bit 1 an ROI prior on channel 0, bit 2 lift tests
/// (channel 0 over every geo, both channels in geo 0 alone), bit 4 observational bias, bit 8 a
/// Student-t likelihood; `centring` bit 1 intercepts centred, 2 and 4 channels 0 and 1 centred,
/// 8 intercepts partially centred (w = ½).
fn model(which: usize, centring: usize) -> MmmModel {
    let opts = SimOptions { n_geos: 4, n_times: 40, tau: 0.3, max_lag: 4, sigma: 0.08, ..Default::default() };
    let sim = simulate(&opts).unwrap();
    let mut spec = sim.spec.clone();
    if which & 1 == 1 {
        spec.channels[0].effect = EffectPrior::Roi(Prior::LogNormal { mu: 0.0, sigma: 1.0 });
    }
    if which & 2 == 2 {
        spec.calibration.lift_tests.extend(common::two_lift_tests(&sim.data.geos, None));
    }
    if which & 4 == 4 {
        spec.calibration.observational_bias_sd = 0.4;
    }
    if which & 8 == 8 {
        spec.likelihood = Likelihood::StudentT { nu: 5.0 };
    }
    let mut m = MmmModel::new(&spec, &sim.data).unwrap();
    m.set_centring(&Centring {
        intercept: centring & 1 == 1,
        intercept_levels: false,
        intercept_power: (centring & 8 == 8).then_some(0.5),
        beta: vec![centring & 2 == 2, centring & 4 == 4],
    });
    m
}

fn random_point(m: &MmmModel, seed: u64, spread: f64) -> Vec<f64> {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    m.data_initial_point().iter().map(|v| v + spread * (2.0 * rng.random::<f64>() - 1.0)).collect()
}

fn max_abs(h: &[Vec<f64>]) -> f64 {
    h.iter().flatten().fold(0.0, |a, v| a.max(v.abs()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// In every variant and centring, at random points, the sparse form declares geo blocks, its
    /// coloured central-difference Hessian equals the dense one within 1e-6 of the largest entry
    /// (the two read the same gradient differences; central differences at this step carry
    /// ~1e-10 relative error, more where |∇log p| is large far from the mode), and the dense
    /// Hessian's entries between geos are finite-difference noise (below 1e-6 of their
    /// diagonals).
    #[test]
    fn coloured_hessian_equals_dense_on_geo_models(
        which in 0usize..16, centring in 0usize..16, seed in 0u64..1000, spread in 0.05f64..0.5,
    ) {
        let m = model(which, centring).sparse_form().expect("a geo model with the level coordinate");
        let s = m.hessian_sparsity().expect("geo blocks");
        let q = random_point(&m, seed, spread);
        let Ok(dense) = hessian_with(&m, &q, STEP, None) else { return Ok(()) };
        let coloured = hessian(&m, &q, STEP).unwrap();
        let scale = max_abs(&dense);
        let worst = dense.iter().flatten().zip(coloured.iter().flatten()).fold(0.0f64, |a, (x, y)| a.max((x - y).abs()));
        prop_assert!(worst <= 1e-6 * scale, "coloured vs dense: {worst:e} of {scale:e}");
        if let Some((i, j, r)) = sparsity_violation(&m, &q, STEP, &s).unwrap() {
            prop_assert!(r < 1e-6, "{} × {}: {r:e}", m.params[i].name, m.params[j].name);
        }
    }
}

/// Blocks: geo g's intercept deviation and pooled effects are block g; an ROI-prior channel's
/// effects, and the effects of the channel a lift test spans several geos with, are shared (those
/// couple the geos); a lift test in one geo keeps that geo's effects in its block.
#[test]
fn geo_blocks_follow_what_couples_the_geos() {
    let names = |m: &MmmModel, s: &HessianSparsity| -> Vec<String> {
        (0..m.dim()).filter(|&i| s.block(i).is_some()).map(|i| m.params[i].name.clone()).collect()
    };
    let plain = model(0, 0).sparse_form().unwrap();
    let s = plain.hessian_sparsity().unwrap();
    assert_eq!(names(&plain, &s).len(), 4 * 3, "intercept + 2 effects per geo: {:?}", names(&plain, &s));
    assert_eq!(s.colours().len(), plain.dim() - 4 * 3 + 3);
    let roi = model(1, 0).sparse_form().unwrap();
    let n = names(&roi, &roi.hessian_sparsity().unwrap());
    assert!(n.iter().all(|p| !p.contains("[ch0,")), "{n:?}");
    assert_eq!(n.len(), 4 * 2);
    let lift = model(2, 0).sparse_form().unwrap();
    let n = names(&lift, &lift.hessian_sparsity().unwrap());
    // channel 0 over every geo: shared; channel 1 tested in geo 0 alone: still geo 0's
    assert!(n.iter().all(|p| !p.contains("[ch0,")), "{n:?}");
    assert!(n.iter().any(|p| p.contains("[ch1,geo0]")), "{n:?}");
}

/// The level coordinate (the model's default with a Normal intercept prior) and the geo-levels
/// form couple every geo with every other: the model declares no blocks there, and the dense
/// Hessian shows why — in the level form the geo-intercept entries between geos are of order
/// 1/G of their diagonals (T/(σ²G) against T/σ²), far above noise. National models have no
/// blocks.
#[test]
fn no_blocks_where_the_geos_couple() {
    let level = model(0, 1);
    assert!(level.level_coord);
    assert_eq!(level.hessian_sparsity(), None);
    let sparse = level.sparse_form().unwrap();
    let s = sparse.hessian_sparsity().unwrap();
    let q = level.data_initial_point();
    let (i, j, r) = sparsity_violation(&level, &q, STEP, &s).unwrap().unwrap();
    assert!(r > 1e-2, "{} × {}: {r:e}", level.params[i].name, level.params[j].name);
    let mut levels = model(0, 1);
    levels.set_centring(&Centring { intercept_levels: true, ..levels.centring() });
    assert_eq!(levels.hessian_sparsity(), None);
    assert!(levels.sparse_form().is_none());
    let opts = SimOptions { n_geos: 1, n_times: 40, ..Default::default() };
    let sim = simulate(&opts).unwrap();
    let national = MmmModel::new(&sim.spec, &sim.data).unwrap();
    assert_eq!(national.hessian_sparsity(), None);
    assert!(national.sparse_form().is_none());
}

/// The sparse form's data-driven start is the level form's, mapped: the same parameter values
/// (so the mode search starts where it did).
#[test]
fn sparse_form_starts_where_the_level_form_does() {
    for centring in [0, 1, 8] {
        let level = model(2, centring);
        let sparse = level.sparse_form().unwrap();
        let mapped = level.convert_point(&sparse, &sparse.data_initial_point());
        let start = level.data_initial_point();
        for (a, b) in mapped.iter().zip(&start) {
            assert!((a - b).abs() < 1e-9 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
}

/// The model's own density without its Hessian routes (`hessian_sparsity`,
/// `preconditioner_hessian`): what the Laplace fit did before them.
struct Dense<'a>(&'a MmmModel);

impl LogDensity for Dense<'_> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn logp_grad(&self, q: &[f64], grad: &mut [f64]) -> Result<f64, mmloop_inference::LogDensityError> {
        self.0.logp_grad(q, grad)
    }
    fn param_names(&self) -> Vec<String> {
        self.0.param_names()
    }
}

fn panel_model(geos: usize, seed: u64) -> (MmmModel, mmloop_mmm::spec::ModelSpec) {
    use mmloop_mmm::simulate::panel::{PanelOptions, simulate_panel};
    let panel = simulate_panel(PanelOptions { geos, weeks: 60, channels: 3, seed }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (spec, data) = panel.write(dir.path()).unwrap();
    (MmmModel::new(&spec, &data).unwrap(), spec)
}

/// The preconditioner's Hessian of the level form, mapped from the sparse form's coloured one
/// (Jᵀ∇²g J, see `MmmModel::preconditioner_hessian`), equals the level form's dense
/// forward-difference Hessian at the mode (where the dropped term (∂g/∂m_ℓ)·∇²h vanishes) within
/// 1e-4 of the geometric mean of the diagonals, entry by entry (forward differences: ~1e-8
/// relative each, more where curvatures differ by orders of magnitude); and away from the mode the
/// dropped term shows (the check can fail).
#[test]
fn preconditioner_hessian_is_the_level_forms_at_the_mode() {
    let (target, spec) = panel_model(6, 1);
    let settings = mmloop_inference::LaplaceSettings { draws: 10, ..mmloop_mmm::fit::laplace_settings(&target, &spec) };
    let post = mmloop_inference::laplace(&target, &settings).unwrap();
    let mode = &post.laplace.as_ref().unwrap().mode;
    let worst = |q: &[f64]| {
        let (mapped, n) = target.preconditioner_hessian(q).expect("a sparse form").unwrap();
        assert_eq!(n as usize, target.sparse_form().unwrap().hessian_sparsity().unwrap().colours().len() + 3);
        let dense = mmloop_inference::laplace::hessian_forward_with(&target, q, None).unwrap();
        let mut worst = 0.0f64;
        for i in 0..q.len() {
            for j in 0..q.len() {
                let scale = (dense[i][i].abs() * dense[j][j].abs()).sqrt();
                worst = worst.max((mapped[i][j] - dense[i][j]).abs() / scale);
            }
        }
        worst
    };
    let at_mode = worst(mode);
    assert!(at_mode < 1e-4, "at the mode: {at_mode:e}");
    let away = worst(&target.data_initial_point());
    assert!(away > 10.0 * at_mode, "away from the mode: {away:e} (at the mode {at_mode:e})");
}

/// The Laplace approximation (mode search, Newton polish, Hessian) with the model's Hessian
/// routes against the same on the bare density (dense preconditioner Hessians), in the model's
/// own form (non-centred, level coordinate) on simulated panels (`simulate::panel`: partial
/// pooling, Hill curves, a price control; 6 and 12 geos): the same mode (log density within 1e-8
/// relative, every coordinate within 0.01 posterior sd) and covariance (within 1e-3 of the largest
/// entry), and bit-identical on a re-run.
#[test]
fn laplace_is_unchanged_by_the_sparse_preconditioner() {
    for (geos, seed) in [(6, 1), (12, 2)] {
        let (m, spec) = panel_model(geos, seed);
        assert!(m.sparse_form().is_some(), "{geos} geos: a level coordinate to take off");
        let settings =
            mmloop_inference::LaplaceSettings { starts: 2, draws: 100, ..mmloop_mmm::fit::laplace_settings(&m, &spec) };
        let fit = |routes: bool| {
            let search = if routes {
                mmloop_inference::search_modes(&m, &settings).unwrap()
            } else {
                mmloop_inference::search_modes(&Dense(&m), &settings).unwrap()
            };
            mmloop_inference::laplace_at(&m, &settings, search).unwrap()
        };
        let (b, a) = (fit(false), fit(true));
        let (ia, ib) = (a.laplace.as_ref().unwrap(), b.laplace.as_ref().unwrap());
        let rel = (ia.logp_at_mode - ib.logp_at_mode).abs() / ib.logp_at_mode.abs();
        assert!(rel < 1e-8, "{geos} geos: logp {} vs {}", ia.logp_at_mode, ib.logp_at_mode);
        for j in 0..m.dim() {
            let sd = ib.covariance[j][j].sqrt();
            let (x, y) = (ia.mode[j], ib.mode[j]);
            assert!((x - y).abs() < 0.01 * sd, "{geos} geos, {}: {x} vs {y}", b.param_names[j]);
        }
        let scale = max_abs(&ib.covariance);
        let worst = ia
            .covariance
            .iter()
            .flatten()
            .zip(ib.covariance.iter().flatten())
            .fold(0.0f64, |x, (p, q)| x.max((p - q).abs()));
        assert!(worst < 1e-3 * scale, "{geos} geos: covariance {worst:e} of {scale:e}");
        let again = fit(true);
        assert_eq!(again.draws, a.draws);
    }
}
