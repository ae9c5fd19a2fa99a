//! Each posterior draw is converted to constrained values once, where the draws are made
//! (`Draws::constrained`), and the analysis and the optimiser's model read those: the same values,
//! to rounding, as constraining every unconstrained draw again (`MmmModel::constrain`), which each
//! of them did before at the cost of a forward pass of the model per draw.

use mmloop_mmm::analysis::{ChannelSummary, Stat, analyse_channels};
use mmloop_mmm::fit::{FitResult, laplace_model};
use mmloop_mmm::model::MmmModel;
use mmloop_mmm::model::centring::Centring;
use mmloop_mmm::model::simulate::{SimOptions, simulate};
use mmloop_mmm::optimize::FittedModel;
use mmloop_mmm::output::Draws;
use mmloop_mmm::spec::FitMethod;

/// |a − b| ≤ 1e-12 · max(|a|, |b|, 1): relative, with values of order one and below (scaled KPI
/// units, centred deviations around zero) held to 1e-12 absolute.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

fn assert_all_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(close(*a, *b), "{what}, coordinate {i}: {a} vs {b}");
    }
}

fn random_point(model: &MmmModel, seed: u64, spread: f64) -> Vec<f64> {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    model.initial_point().iter().map(|v| v + spread * (2.0 * rng.random::<f64>() - 1.0)).collect()
}

/// A national model (the level coordinate) and a 4-geo one whose intercepts are sampled by their
/// fitted levels (geo levels), each with its non-centred and centred-block forms.
fn forms() -> Vec<(&'static str, MmmModel, MmmModel)> {
    let national = simulate(&SimOptions { n_geos: 1, n_times: 40, ..Default::default() }).unwrap();
    let nat = MmmModel::new(&national.spec, &national.data).unwrap();
    assert!(nat.level_coord, "the national model samples its level");
    let geo = simulate(&SimOptions { n_geos: 4, n_times: 40, tau: 0.3, ..Default::default() }).unwrap();
    let mut levels = MmmModel::new(&geo.spec, &geo.data).unwrap();
    let c_n = levels.channels.len();
    levels.set_centring(&Centring {
        intercept: true,
        intercept_levels: true,
        intercept_power: None,
        beta: vec![true; c_n],
    });
    assert!(levels.baseline.geo_levels, "the geo model samples its intercepts by levels");
    let plain = levels.non_centred();
    assert!(plain.level_coord && !plain.baseline.geo_levels);
    vec![
        ("national", nat.clone(), nat.non_centred()),
        ("geo levels from non-centred", levels.clone(), plain.clone()),
        ("non-centred from geo levels", plain, levels),
    ]
}

/// `convert_point_constrained` gives `convert_point`'s point and its `constrain` to 1e-12: the
/// constrained values of the model coordinates the conversion passes through instead of those of
/// their round trip through the sampling coordinates, and the point with the level shifts of the
/// source model's conversion instead of its own (the same function of the parameter values,
/// computed at the point in the other centring).
#[test]
fn converting_a_draw_with_its_constrained_values_equals_converting_then_constraining() {
    for (what, to, from) in forms() {
        for seed in 0..20 {
            let q = random_point(&from, seed, 0.8);
            let (point, constrained) = to.convert_point_constrained(&from, &q);
            let old = to.convert_point(&from, &q);
            assert_all_close(&point, &old, &format!("{what}, seed {seed}: the same point"));
            assert_all_close(&constrained, &to.constrain(&old), &format!("{what}, seed {seed}"));
            // and from a model to itself: its own constrain
            let (same, x) = from.convert_point_constrained(&from, &q);
            assert_all_close(&same, &q, &format!("{what}, seed {seed}: identity"));
            assert_all_close(&x, &from.constrain(&q), &format!("{what}, seed {seed}: identity constrain"));
        }
    }
}

fn laplace_fit(n_geos: usize) -> (mmloop_mmm::ModelSpec, mmloop_mmm::Dataset, FitResult) {
    let sim = simulate(&SimOptions { n_geos, n_times: 52, tau: 0.3, ..Default::default() }).unwrap();
    let mut spec = sim.spec.clone();
    spec.fit.method = FitMethod::Laplace;
    spec.fit.chains = 1;
    spec.fit.draws = 100;
    spec.fit.laplace_starts = 1;
    let fit = mmloop_mmm::fit::fit(&spec, &sim.data).unwrap();
    (spec, sim.data, fit)
}

fn stats(s: &Stat) -> [f64; 4] {
    [s.mean, s.sd, s.q05, s.q95]
}

fn channel_figures(ch: &[ChannelSummary]) -> Vec<f64> {
    ch.iter().flat_map(|c| [stats(&c.roi), stats(&c.mroi), stats(&c.contribution)].concat()).collect()
}

/// A Laplace fit's draws carry constrained values equal to `MmmModel::constrain` of each draw, and
/// the channels' analysis and the optimiser's model built from them equal those built by
/// constraining every draw again: on a national fit (level coordinate) and on a geo fit whose
/// Gaussian is taken in a centred form (the draws converted into the model's own form, their
/// constrained values from that conversion).
#[test]
fn a_fits_constrained_draws_and_what_reads_them_equal_constraining_each_draw_again() {
    for n_geos in [1, 6] {
        let (spec, data, fit) = laplace_fit(n_geos);
        let model = &fit.model;
        if n_geos > 1 {
            assert_ne!(laplace_model(model).centring(), model.centring(), "the Gaussian is taken in a centred form");
        }
        let d = &fit.draws;
        assert_eq!(d.constrained.len(), d.values.len());
        for (i, (x, q)) in d.constrained.iter().zip(&d.values).enumerate() {
            assert_all_close(x, &model.constrain(q), &format!("{n_geos} geos, draw {i}"));
        }
        // the old path: every unconstrained draw constrained again
        let again = Draws::new(model, d.values.clone(), d.chain.clone(), d.draw.clone());
        let actual: Vec<f64> = data.kpi.iter().copied().collect();
        assert_all_close(
            &channel_figures(&analyse_channels(model, d, &actual)),
            &channel_figures(&analyse_channels(model, &again, &actual)),
            &format!("{n_geos} geos: ROI, marginal ROI and contribution"),
        );
        let fitted = FittedModel::from_fit(&spec, &data, &fit).unwrap();
        for (i, (p, q)) in fitted.draws.iter().zip(&d.values).enumerate() {
            assert_all_close(&p.values, &model.unpack(q).values, &format!("{n_geos} geos: optimiser's draw {i}"));
        }
    }
}
