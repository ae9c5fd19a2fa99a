//! The geo intercepts integrated out of a Normal likelihood (`model::collapsed`): the analytic
//! gradient against finite differences, the collapsed density against the joint density
//! integrated over the deviations numerically, and NUTS on the collapsed density (intercepts drawn
//! from their conditionals) against NUTS on the joint one.

use mmloop_inference::{Init, LogDensity, NutsSettings};
use mmloop_mmm::Prior;
use mmloop_mmm::model::MmmModel;
use mmloop_mmm::model::centring::Centring;
use mmloop_mmm::model::collapsed::CollapsedIntercepts;
use mmloop_mmm::model::simulate::{SimOptions, simulate};
use mmloop_mmm::spec::{EffectPrior, GeoInterceptSd, Likelihood};
use proptest::prelude::*;

/// A 3-geo simulated model: `which` bit 1 an ROI prior on channel 0, bit 2 a 6-period holdout (the
/// marginal's T is the fitted periods), bit 4 the intercept on a positive prior (no level
/// coordinate), bit 8 the geo intercepts' sd held at 0.5 (`intercept_geo_sd = 0.5`).
fn model(which: usize) -> MmmModel {
    let opts = SimOptions { n_geos: 3, n_times: 40, tau: 0.3, max_lag: 4, sigma: 0.08, ..Default::default() };
    let sim = simulate(&opts).unwrap();
    let mut spec = sim.spec.clone();
    spec.likelihood = Likelihood::Normal;
    if which & 1 == 1 {
        spec.channels[0].effect = EffectPrior::Roi(Prior::LogNormal { mu: 0.0, sigma: 1.0 });
    }
    if which & 2 == 2 {
        spec.holdout = 6;
    }
    if which & 4 == 4 {
        spec.baseline.intercept = Prior::LogNormal { mu: 0.0, sigma: 1.0 };
    }
    if which & 8 == 8 {
        spec.baseline.intercept_geo_sd = GeoInterceptSd::Fixed(0.5);
    }
    MmmModel::new(&spec, &sim.data).unwrap()
}

fn random_point(d: &impl LogDensity, center: &[f64], seed: u64, spread: f64) -> Vec<f64> {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    assert_eq!(center.len(), d.dim());
    center.iter().map(|v| v + spread * (2.0 * rng.random::<f64>() - 1.0)).collect()
}

/// Central differences, h = 1e-5, with the rounding allowance of tests/model_gradient.rs.
fn check_gradient(d: &impl LogDensity, q: &[f64], n_cells: usize) -> Result<(), String> {
    let n = d.dim();
    let mut g = vec![0.0; n];
    let Ok(f0) = d.logp_grad(q, &mut g) else { return Ok(()) };
    let mut scratch = vec![0.0; n];
    for i in 0..n {
        let h = 1e-5;
        let (mut qp, mut qm) = (q.to_vec(), q.to_vec());
        qp[i] += h;
        qm[i] -= h;
        let (Ok(fp), Ok(fm)) = (d.logp_grad(&qp, &mut scratch), d.logp_grad(&qm, &mut scratch)) else { continue };
        let fd = (fp - fm) / (2.0 * h);
        let tol = 2e-5 * (1.0 + fd.abs().max(g[i].abs())) + 4.0 * (n_cells + n) as f64 * f64::EPSILON * f0.abs() / h;
        if (fd - g[i]).abs() > tol {
            return Err(format!("{}: analytic {} vs FD {}", d.param_names()[i], g[i], fd));
        }
    }
    Ok(())
}

/// Intercept form 0–3: non-centred, centred, by levels, partially centred (w = ½).
fn set_intercept_form(m: &mut MmmModel, form: usize) {
    m.set_centring(&Centring {
        intercept: form == 1,
        intercept_levels: form == 2,
        intercept_power: (form == 3).then_some(0.5),
        ..m.centring()
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]
    /// Whatever form the model samples its intercepts in (non-centred, centred, by levels,
    /// partially centred), the collapsed density's gradient is its finite differences'.
    #[test]
    fn collapsed_gradient_matches_finite_differences(
        which in 0usize..16, form in 0usize..4, seed in 0u64..1000, spread in 0.1f64..1.5
    ) {
        let mut m = model(which);
        set_intercept_form(&mut m, form);
        let c = CollapsedIntercepts::new(&m).unwrap();
        let q = random_point(&c, &c.reduce(&m.initial_point()), seed, spread);
        let r = check_gradient(&c, &q, m.y.len());
        prop_assert!(r.is_ok(), "{:?}", r);
    }
}

/// ln ∫ exp(joint) dδ, computed by quadrature over each geo's deviation, equals the collapsed
/// density. In plain coordinates (no level coordinate: with it the intercept coordinate moves with
/// the deviations) and non-centred, the joint log density is J(u) = J(0) + Σ_g [J(u_g e_g) − J(0)]
/// (the geos' terms separate given the rest), and its N(0, 1) auxiliaries leave out ½ln 2π each.
/// Trapezoid rule over ±12 conditional sd with 4001 nodes: error far below 1e-8 for a smooth
/// integrand this close to Gaussian.
#[test]
fn collapsed_density_is_the_joint_integrated_over_the_intercepts() {
    for which in [0usize, 1, 2, 3, 8, 9] {
        let mut joint = model(which);
        joint.set_centring(&Centring {
            intercept: false,
            intercept_levels: false,
            intercept_power: None,
            ..joint.centring()
        });
        joint.level_coord = false;
        let c = CollapsedIntercepts::new(&joint).unwrap();
        for seed in [1u64, 2, 3] {
            let q = random_point(&c, &c.reduce(&joint.initial_point()), seed, 0.3);
            let mut g = vec![0.0; c.dim()];
            let Ok(collapsed) = c.logp_grad(&q, &mut g) else { continue };
            let (cond, _) = c.conditional(&q);
            let (scale, us) = joint.baseline.geo_intercept.unwrap();
            let q0 = c.expand(&q, Some(&[0.0; 3]));
            // u_g = δ_g/σ_a: the conditional mean and sd in u
            let scale = scale.value(&joint.constrain(&q0));
            let mut gj = vec![0.0; joint.dim()];
            let mut at = q0.clone();
            for v in &mut at[us..us + 3] {
                *v = 0.0;
            }
            let j0 = joint.logp_grad(&at, &mut gj).unwrap();
            let mut total = j0;
            for (gi, (m, sd)) in cond.iter().enumerate() {
                let (mu, s) = (m / scale, sd / scale);
                let n = 4001;
                let h = 24.0 * s / (n - 1) as f64;
                let mut vals = Vec::with_capacity(n);
                for k in 0..n {
                    let mut p = at.clone();
                    p[us + gi] = mu - 12.0 * s + k as f64 * h;
                    vals.push(joint.logp_grad(&p, &mut gj).unwrap() - j0);
                }
                let top = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = vals
                    .iter()
                    .enumerate()
                    .map(|(k, v)| {
                        let w = if k == 0 || k == n - 1 { 0.5 } else { 1.0 };
                        w * (v - top).exp()
                    })
                    .sum();
                total += top + (sum * h).ln();
            }
            let expect = total - 3.0 * 0.5 * (2.0 * std::f64::consts::PI).ln();
            assert!(
                (collapsed - expect).abs() < 1e-7 * (1.0 + expect.abs()),
                "variant {which} seed {seed}: collapsed {collapsed} vs integrated joint {expect}"
            );
        }
    }
}

/// Mapping a collapsed point to the full model and back is the identity (every form of the
/// intercepts), and the intercepts a point expands to at z = 0 are their conditional means.
#[test]
fn reduce_inverts_expand() {
    for form in 0..4 {
        let mut m = model(0);
        set_intercept_form(&mut m, form);
        let c = CollapsedIntercepts::new(&m).unwrap();
        let q = random_point(&c, &c.reduce(&m.initial_point()), 5, 0.5);
        let full = c.expand(&q, Some(&[0.3, -1.0, 2.0]));
        let back = c.reduce(&full);
        for (a, b) in q.iter().zip(&back) {
            assert!((a - b).abs() < 1e-9 * (1.0 + a.abs()), "form {form}: {a} vs {b}");
        }
        let (cond, _) = c.conditional(&q);
        let p = m.unpack(&c.expand(&q, None));
        let mu = p.values[m.baseline.intercept_idx];
        for (g, (mean, _)) in cond.iter().enumerate() {
            assert!((p.intercept[g] - mu - mean).abs() < 1e-9, "form {form} geo {g}");
        }
    }
}

/// The posterior of every geo intercept a_g (and of ln σ_a, σ; σ_a itself is heavy-tailed with
/// three geos, its sd a poor Monte Carlo target) by NUTS on the collapsed density with
/// the intercepts drawn from their conditionals matches NUTS on the joint density: 4 × (500 + 1000)
/// each, means within 4 Monte Carlo standard errors of their difference (se from each fit's bulk
/// ESS) and sds within 15 %.
#[test]
fn collapsed_nuts_recovers_the_joint_posterior_of_the_intercepts() {
    let m = model(0);
    let settings = |model: &MmmModel, seed: u64| NutsSettings {
        chains: 4,
        tune: 500,
        draws: 1000,
        target_accept: 0.9,
        seed,
        quiet: true,
        init: Init::Around { center: mmloop_mmm::fit::nuts_init_center(model, seed), radius: 0.1 },
        ..Default::default()
    };
    let mut joint = m.clone();
    joint.collapse_intercepts = false;
    let mut coll = m.clone();
    coll.collapse_intercepts = true;
    let stats = |model: &MmmModel| {
        let post = mmloop_mmm::fit::sample_nuts_model(model, &settings(model, 3)).unwrap();
        let (si, _) = model.baseline.pooled_intercepts().unwrap();
        let names: Vec<String> =
            (0..3).map(|g| format!("a[{g}]")).chain(["ln intercept_geo_sd".into(), "sigma".into()]).collect();
        let c = post.map_draws(names, |q| {
            let p = model.unpack(q);
            let mut v = p.intercept.clone();
            v.push(p.values[si].ln());
            v.push(p.sigma);
            v
        });
        mmloop_inference::summary(&c).params
    };
    let (a, b) = (stats(&joint), stats(&coll));
    for (x, y) in a.iter().zip(&b) {
        eprintln!(
            "{}: joint {:.4} ± {:.4} (ess {:.0}), collapsed {:.4} ± {:.4} (ess {:.0})",
            x.name, x.mean, x.sd, x.ess_bulk, y.mean, y.sd, y.ess_bulk
        );
    }
    for (x, y) in a.iter().zip(&b) {
        let se = (x.sd * x.sd / x.ess_bulk + y.sd * y.sd / y.ess_bulk).sqrt();
        assert!((x.mean - y.mean).abs() < 4.0 * se, "{}: joint {} vs collapsed {} (se {se})", x.name, x.mean, y.mean);
        assert!((x.sd / y.sd - 1.0).abs() < 0.15, "{}: sd joint {} vs collapsed {}", x.name, x.sd, y.sd);
    }
}

/// The default: NUTS integrates the intercepts out of Normal geo models with at least 3 geos; not
/// with two geos (where the partially centred joint form measured better), a Student-t likelihood
/// (no closed form) or a national model (no geo intercepts).
#[test]
fn the_intercepts_are_integrated_out_by_default_only_where_they_can_and_it_measured_better() {
    let build = |n_geos: usize, likelihood: Likelihood| {
        let opts = SimOptions { n_geos, n_times: 30, ..Default::default() };
        let sim = simulate(&opts).unwrap();
        let mut spec = sim.spec.clone();
        spec.likelihood = likelihood;
        let m = MmmModel::new(&spec, &sim.data).unwrap();
        (m.collapse_intercepts, mmloop_mmm::fit::collapsed(&m).is_some())
    };
    assert_eq!(build(3, Likelihood::Normal), (true, true));
    assert_eq!(build(2, Likelihood::Normal), (false, false));
    assert_eq!(build(3, Likelihood::StudentT { nu: 5.0 }), (false, false));
    assert_eq!(build(1, Likelihood::Normal), (false, false));
}
