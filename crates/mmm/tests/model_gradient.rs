//! The model's analytic gradient against central finite differences, at random points, for every
//! transform kind and order, ROI parametrisation, partial pooling, Student-t, piecewise trend,
//! lift-test terms and observational bias; and the density's value against the model written out
//! directly.

mod common;

use mmloop_inference::LogDensity;
use mmloop_mmm::Prior;
use mmloop_mmm::model::MmmModel;
use mmloop_mmm::model::centring::Centring;
use mmloop_mmm::model::simulate::{SimOptions, simulate};
use mmloop_mmm::spec::{EffectPrior, GeoInterceptSd, Likelihood, ModelSpec, Trend};
use mmloop_mmm::transforms::{AdstockSpec, HillSlope, SaturationSpec, TransformOrder};
use proptest::prelude::*;

fn variant(which: usize, geo: bool) -> (ModelSpec, mmloop_mmm::Dataset) {
    let n_geos = if geo { 3 } else { 1 };
    let opts = SimOptions { n_geos, n_times: 40, tau: 0.3, max_lag: 4, ..Default::default() };
    let sim = simulate(&opts).unwrap();
    let mut spec = sim.spec.clone();
    let beta = Prior::Beta { alpha: 2.0, beta: 2.0 };
    let gam = Prior::Gamma { shape: 3.0, rate: 1.5 };
    let ads = [
        AdstockSpec::Geometric { max_lag: 4, alpha: beta, normalize: false },
        AdstockSpec::Binomial { max_lag: 4, alpha: beta },
        AdstockSpec::WeibullCdf { max_lag: 4, shape: gam, scale: gam },
        AdstockSpec::WeibullPdf { max_lag: 4, shape: gam, scale: gam },
    ];
    let ec = Prior::LogNormal { mu: 0.0, sigma: 0.5 };
    let sats = [
        SaturationSpec::Hill { ec, slope: HillSlope::Prior(gam), ec_floor_quantile: None },
        SaturationSpec::Logistic { lam: gam },
        SaturationSpec::MichaelisMenten { k: gam },
    ];
    spec.channels[0].adstock = ads[which % 4].clone();
    spec.channels[1].adstock = ads[(which + 2) % 4].clone();
    spec.channels[0].saturation = sats[which % 3].clone();
    // channel 1's Hill curve has its slope fixed (Meridian's default n = 1; 0.8 for a general n)
    // and its ec floored at the 20 % quantile of its non-zero media: which ∈ {2, 5, 8, 11}, so with
    // a coefficient (response coordinate) and ROI on channel 0, saturation first, lift tests and
    // observational bias
    spec.channels[1].saturation = match (which + 1) % 3 {
        0 => SaturationSpec::Hill {
            ec: Prior::TruncatedNormal { mu: 0.8, sigma: 0.8, lower: 0.1, upper: 10.0 },
            slope: HillSlope::Fixed(if which < 6 { 1.0 } else { 0.8 }),
            ec_floor_quantile: Some(0.2),
        },
        k => sats[k].clone(),
    };
    if which % 2 == 1 {
        spec.channels[1].order = TransformOrder::SaturationFirst;
        spec.channels[0].effect = EffectPrior::Roi(Prior::LogNormal { mu: 0.0, sigma: 1.0 });
    }
    if which % 3 == 2 {
        spec.likelihood = Likelihood::StudentT { nu: 5.0 };
        spec.baseline.trend = Trend::Piecewise {
            changepoints: 3,
            slope: Prior::Normal { mu: 0.0, sigma: 1.0 },
            delta: Prior::Normal { mu: 0.0, sigma: 0.5 },
        };
    }
    if which >= 2 {
        let first_geo = geo.then(|| sim.data.geos[1].as_str());
        spec.calibration.lift_tests.extend(common::two_lift_tests(&sim.data.geos, first_geo));
    }
    if which >= 6 {
        // observational bias b_c on every channel: the data see β·exp(b_c), the lift terms β
        spec.calibration.observational_bias_sd = 0.4;
    }
    if which == 9 || which == 10 {
        // the geo intercepts' sd held (independent intercepts, Meridian's form): no σ_a coordinate
        spec.baseline.intercept_geo_sd = GeoInterceptSd::Fixed(0.6);
    }
    (spec, sim.data)
}

/// Central differences with h = 1e-5: truncation error ~h²·|f‴| ≈ 1e-10·curvature; rounding error
/// ≈ N·ε·|log p|/h, N the number of terms summed into log p (cells + parameters, ×4 for the
/// per-term operations). At edge points |log p| reaches 1e7, where that bound (~0.1) dominates; in
/// the bulk it is ~1e-7. A real mistake shows up at O(1) relative error.
fn check_gradient(model: &MmmModel, q: &[f64]) -> Result<(), String> {
    let n = model.dim();
    let mut g = vec![0.0; n];
    let f0 = match model.logp_grad(q, &mut g) {
        Ok(v) => v,
        Err(_) => return Ok(()), // outside the support: nothing to compare
    };
    let mut scratch = vec![0.0; n];
    for i in 0..n {
        let h = 1e-5;
        let mut qp = q.to_vec();
        qp[i] += h;
        let mut qm = q.to_vec();
        qm[i] -= h;
        let (Ok(fp), Ok(fm)) = (model.logp_grad(&qp, &mut scratch), model.logp_grad(&qm, &mut scratch)) else {
            continue;
        };
        let fd = (fp - fm) / (2.0 * h);
        let n_terms = 4.0 * (model.y.len() + n) as f64;
        let tol = 2e-5 * (1.0 + fd.abs().max(g[i].abs())) + n_terms * f64::EPSILON * f0.abs() / h;
        if (fd - g[i]).abs() > tol {
            return Err(format!("{}: analytic {} vs FD {}", model.params[i].name, g[i], fd));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]
    #[test]
    fn national_gradient_matches_finite_differences(which in 0usize..12, seed in 0u64..1000, spread in 0.1f64..1.5) {
        let (spec, data) = variant(which, false);
        let model = MmmModel::new(&spec, &data).unwrap();
        let q = random_point(&model, seed, spread);
        prop_assert!(check_gradient(&model, &q).is_ok(), "{:?}", check_gradient(&model, &q));
    }

    #[test]
    fn geo_gradient_matches_finite_differences(which in 0usize..12, seed in 0u64..1000, spread in 0.1f64..1.5) {
        let (spec, data) = variant(which, true);
        let model = MmmModel::new(&spec, &data).unwrap();
        let q = random_point(&model, seed, spread);
        prop_assert!(check_gradient(&model, &q).is_ok(), "{:?}", check_gradient(&model, &q));
    }

    /// Every combination of centred / non-centred hierarchy blocks (intercepts, each channel), the
    /// geo intercepts by their fitted levels (bit 8) and partially centred (bit 16).
    #[test]
    fn geo_gradient_matches_finite_differences_in_every_centring(
        which in 0usize..12, blocks in 0u8..32, seed in 0u64..1000, spread in 0.1f64..1.5
    ) {
        let (spec, data) = variant(which, true);
        let mut model = MmmModel::new(&spec, &data).unwrap();
        model.set_centring(&centring(blocks));
        let q = random_point(&model, seed, spread);
        prop_assert!(check_gradient(&model, &q).is_ok(), "{:?}", check_gradient(&model, &q));
    }
}

/// Bits of `blocks`: 1 intercepts centred, 2 and 4 channels 0 and 1 centred, 8 intercepts by their
/// fitted levels, 16 intercepts partially centred with w = 0.4 (levels win over 16, 16 over 1).
fn centring(blocks: u8) -> Centring {
    Centring {
        intercept: blocks & 1 == 1,
        intercept_levels: blocks & 8 == 8,
        intercept_power: (blocks & 16 == 16).then_some(PARTIAL_POWER),
        beta: vec![blocks & 2 == 2, blocks & 4 == 4],
    }
}

const PARTIAL_POWER: f64 = 0.4;

fn random_point(model: &MmmModel, seed: u64, spread: f64) -> Vec<f64> {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    model.initial_point().iter().map(|v| v + spread * (2.0 * rng.random::<f64>() - 1.0)).collect()
}

/// Edge values: adstock parameters near their bounds, tiny and large saturation parameters.
#[test]
fn gradient_matches_finite_differences_at_edge_values() {
    for which in 0..12 {
        for geo in [false, true] {
            let (spec, data) = variant(which, geo);
            let model = MmmModel::new(&spec, &data).unwrap();
            for edge in [-6.0, 4.0] {
                let mut q = model.initial_point();
                for (i, p) in model.params.iter().enumerate() {
                    if p.name.starts_with("adstock_") || p.name.starts_with("sat_") {
                        q[i] = edge;
                    }
                }
                check_gradient(&model, &q).unwrap_or_else(|e| panic!("variant {which} geo {geo} edge {edge}: {e}"));
            }
        }
    }
}

/// The density's value equals priors + Jacobians + Normal log-likelihood + lift terms computed
/// directly from the unpacked parameters, the feature function and the baseline.
/// Geo models in their default form and with the geo intercepts non-centred (0), by levels (8) and
/// partially centred (16).
#[test]
fn density_value_equals_the_model_written_out() {
    for which in [0usize, 1, 2, 3, 6, 7, 9] {
        for (geo, form) in [(false, None), (true, None), (true, Some(0u8)), (true, Some(8)), (true, Some(16))] {
            let (mut spec, data) = variant(which, geo);
            spec.likelihood = Likelihood::Normal;
            let mut model = MmmModel::new(&spec, &data).unwrap();
            if let Some(blocks) = form {
                model.set_centring(&centring(blocks));
            }
            let q = random_point(&model, 7, 0.5);
            let mut g = vec![0.0; model.dim()];
            let lp = model.logp_grad(&q, &mut g).unwrap();
            let p = model.unpack(&q);
            // the sampler's coordinates map with unit Jacobian onto each parameter's own unconstrained
            // value (responses at the reference level, the mean fitted level): the density is the
            // model's there
            let mut qm = vec![0.0; q.len()];
            model.to_model_coords(&q, &mut qm);
            // the scale and power w of each (partially) centred deviation u = d/s^w ~ N(0, s^(1−w)),
            // without its ½ln 2π (the non-centred auxiliaries' N(0, 1) leaves it out too)
            let mut centred_scale = vec![None; q.len()];
            let g_n = model.n_geos();
            if let Some((si, us)) = model.baseline.pooled_intercepts().filter(|_| model.intercept_power() < 1.0) {
                (us..us + g_n).for_each(|i| centred_scale[i] = Some((si, model.intercept_power())));
            }
            for ch in model.channels.iter().filter(|ch| ch.geo_centred) {
                let (ti, zs) = (ch.tau_idx.unwrap(), ch.z_start.unwrap());
                (zs..zs + g_n).for_each(|i| centred_scale[i] = Some((ti, 0.0)));
            }
            let mut expect = 0.0;
            for (i, info) in model.params.iter().enumerate() {
                let c = info.transform.constrain(qm[i]);
                expect += match (info.prior, centred_scale[i]) {
                    (Some(pr), _) => pr.ln_pdf(c.x) + c.log_jac,
                    (None, Some((si, w))) => {
                        let sd = p.values[si].powf(1.0 - w);
                        -0.5 * (qm[i] / sd).powi(2) - sd.ln()
                    }
                    (None, None) => -0.5 * qm[i] * qm[i],
                };
            }
            if model.baseline.geo_levels {
                // the Jacobian of (ℓ, v) ↦ (δ, μ_a): σ_a/√G
                let s_a = p.values[model.baseline.pooled_intercepts().unwrap().0];
                expect += s_a.ln() - 0.5 * (g_n as f64).ln();
            }
            let t_n = model.n_times;
            let mut mean = model.baseline_scaled(&p);
            let mut f = vec![0.0; t_n];
            for c in 0..model.channels.len() {
                for gi in 0..model.n_geos() {
                    model.channel_feature(
                        c,
                        &p.theta[c],
                        &p.phi[c],
                        &model.channels[c].x[gi * t_n..(gi + 1) * t_n],
                        &mut f,
                    );
                    // the data see β_obs = β·exp(b_c); the lift terms below use β
                    for t in 0..t_n {
                        mean[gi * t_n + t] += p.beta_geo[c][gi] * p.obs_factor[c] * f[t];
                    }
                }
            }
            for gi in 0..model.n_geos() {
                for t in 0..model.n_fit {
                    let r = (model.y[gi * t_n + t] - mean[gi * t_n + t]) / p.sigma;
                    expect += -0.5 * r * r - p.sigma.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln();
                }
            }
            for term in &model.lift {
                let z = (term.observed - mmloop_mmm::calibration::implied_lift(&model, &p, term)) / term.standard_error;
                expect += -0.5 * z * z - term.standard_error.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln();
            }
            assert!((lp - expect).abs() < 1e-8 * (1.0 + lp.abs()), "variant {which} geo {geo}: {lp} vs {expect}");
        }
    }
}

/// The sampling coordinates (channels with coefficient priors by their response at the reference
/// level, the intercept by the mean fitted level) map round-trip onto each parameter's own
/// unconstrained value, the β coordinate is ln(β·s(1; φ)), and the density and its gradient equal
/// those of the same model in per-parameter coordinates (both maps switched off) mapped through
/// the change of variables: unit Jacobian determinant, gradient by the transposed Jacobian (here by
/// central differences of the map, independent of the analytic chain rule the model uses).
#[test]
fn sampling_coordinates_preserve_the_density() {
    let mut checked = 0;
    for which in [0usize, 1, 2, 3] {
        for geo in [false, true] {
            let (spec, data) = variant(which, geo);
            let mut model = MmmModel::new(&spec, &data).unwrap();
            // the geo-levels form's map is not a unit shear (see centred_and_non_centred_forms_...)
            model.set_centring(&Centring { intercept_levels: false, ..model.centring() });
            if model.response_coords.is_empty() && !model.level_coord {
                continue;
            }
            let mut plain = model.clone();
            plain.response_coords.clear();
            plain.level_coord = false;
            let q = random_point(&model, 11, 0.7);
            let n = q.len();
            let mut qm = vec![0.0; n];
            model.to_model_coords(&q, &mut qm);
            let back = model.to_sampling_coords(&qm);
            assert!(q.iter().zip(&back).all(|(a, b)| (a - b).abs() < 1e-12), "round trip");
            let x = model.constrain(&q);
            for rc in &model.response_coords {
                let phi = model.channels[rc.channel].phi_at(&x);
                let s1 = model.channels[rc.channel].sat.value(&phi, 1.0);
                assert!((q[rc.beta] - (x[rc.beta] * s1).ln()).abs() < 1e-12, "β coordinate is ln(β·s(1))");
            }
            let (mut g, mut gm) = (vec![0.0; n], vec![0.0; n]);
            let lp = model.logp_grad(&q, &mut g).unwrap();
            let lpm = plain.logp_grad(&qm, &mut gm).unwrap();
            // same arithmetic up to the rounding of the coordinate map: 1e-10 relative
            assert!((lp - lpm).abs() < 1e-10 * (1.0 + lp.abs()), "variant {which}: {lp} vs {lpm}");
            // J[i][j] = ∂ model_i / ∂ sampling_j; ∇_sampling = Jᵀ ∇_model
            let h = 1e-6;
            let mut expect = vec![0.0; n];
            for jc in 0..n {
                let (mut a, mut b) = (q.clone(), q.clone());
                a[jc] += h;
                b[jc] -= h;
                let (mut ma, mut mb) = (vec![0.0; n], vec![0.0; n]);
                model.to_model_coords(&a, &mut ma);
                model.to_model_coords(&b, &mut mb);
                expect[jc] = (0..n).map(|i| (ma[i] - mb[i]) / (2.0 * h) * gm[i]).sum();
            }
            for i in 0..n {
                assert!(
                    (g[i] - expect[i]).abs() < 1e-5 * (1.0 + expect[i].abs()),
                    "variant {which} geo {geo} ∂{}: {} vs {}",
                    model.params[i].name,
                    g[i],
                    expect[i]
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "no variant uses sampling coordinates");
}

/// With an ROI prior, the model's ROI over the fitted period equals the sampled ROI parameter.
#[test]
fn roi_parametrisation_reproduces_the_sampled_roi() {
    let (spec, data) = variant(1, true);
    let model = MmmModel::new(&spec, &data).unwrap();
    let q = random_point(&model, 3, 0.5);
    let p = model.unpack(&q);
    let c = 0;
    assert!(model.channels[c].effect_is_roi);
    let t_n = model.n_times;
    let mut f = vec![0.0; t_n];
    let mut contrib = 0.0;
    for g in 0..model.n_geos() {
        model.channel_feature(c, &p.theta[c], &p.phi[c], &model.channels[c].x[g * t_n..(g + 1) * t_n], &mut f);
        contrib += (0..model.n_fit).map(|t| model.kpi_scale[g] * p.beta_geo[c][g] * f[t]).sum::<f64>();
    }
    let roi = contrib / model.channels[c].spend_fit;
    assert!((roi - p.values[model.channels[c].effect_idx]).abs() < 1e-10 * roi.abs());
}

/// The centred and non-centred forms are one model: at the same constrained values (points mapped
/// by `convert_point`), log p_centred(d) = log p_non-centred(z) − Σ_blocks G·ln s, the log Jacobian
/// of z = d/s (G deviations per centred block, s the block's scale); the map round-trips. The geo
/// levels form (bit 8) adds ln σ_a − ½ln G to the centred intercepts' density (the Jacobian of
/// (ℓ, v) ↦ (δ, μ_a), see `MmmModel::to_model_coords`); the partially centred form (bit 16,
/// u = δ/σ_a^w) differs from the non-centred by −G·(1 − w)·ln σ_a.
#[test]
fn centred_and_non_centred_forms_differ_by_the_jacobian() {
    for which in 0..6 {
        let (spec, data) = variant(which, true);
        let base = MmmModel::new(&spec, &data).unwrap().non_centred();
        for blocks in 1u8..32 {
            let mut model = base.clone();
            model.set_centring(&centring(blocks));
            assert_eq!(model.baseline.geo_levels, blocks & 8 == 8);
            let q0 = random_point(&base, 7 + which as u64, 0.6);
            let q1 = model.convert_point(&base, &q0);
            let back = base.convert_point(&model, &q1);
            assert!(q0.iter().zip(&back).all(|(a, b)| (a - b).abs() < 1e-9 * (1.0 + a.abs())), "round trip");
            let (x0, x1) = (base.unpack(&q0), model.unpack(&q1));
            for (a, b) in x0
                .intercept
                .iter()
                .zip(&x1.intercept)
                .chain(x0.beta_geo.iter().flatten().zip(x1.beta_geo.iter().flatten()))
            {
                assert!((a - b).abs() < 1e-9 * (1.0 + a.abs()), "same constrained values: {a} vs {b}");
            }
            let n = q0.len();
            let (lp0, lp1) =
                (base.logp_grad(&q0, &mut vec![0.0; n]).unwrap(), model.logp_grad(&q1, &mut vec![0.0; n]).unwrap());
            let g_n = model.n_geos() as f64;
            let mut jac = 0.0;
            let s_a = x1.values[model.baseline.pooled_intercepts().unwrap().0];
            if blocks & 8 == 8 {
                jac += g_n * s_a.ln() - (s_a.ln() - 0.5 * g_n.ln());
            } else if blocks & 16 == 16 {
                assert_eq!(model.intercept_power(), PARTIAL_POWER);
                jac += g_n * (1.0 - PARTIAL_POWER) * s_a.ln();
            } else if blocks & 1 == 1 {
                jac += g_n * s_a.ln();
            }
            for (c, on) in [(0, blocks & 2 == 2), (1, blocks & 4 == 4)] {
                if on {
                    jac += g_n * x1.values[model.channels[c].tau_idx.unwrap()].ln();
                }
            }
            // rounding of two sums of ~10³ terms of size |log p|: 1e-9 relative
            assert!(
                (lp1 - (lp0 - jac)).abs() < 1e-9 * (1.0 + lp0.abs()),
                "variant {which} blocks {blocks}: {lp1} vs {}",
                lp0 - jac
            );
        }
    }
}

/// `ec_floor_quantile = p` truncates the ec prior below at the p-quantile of the channel's non-zero
/// scaled media: a share p of those cells lies at or below the floor, the prior keeps its form
/// with the raised lower bound (and the sampler's transform follows it), and a floor at or above
/// the prior's upper bound is refused, naming the channel and the option.
#[test]
fn ec_floor_truncates_the_ec_prior_at_the_quantile_of_the_nonzero_media() {
    let (spec, data) = variant(2, true);
    let model = MmmModel::new(&spec, &data).unwrap();
    let ch = &model.channels[1];
    let ec = &model.params[ch.phi_idx[0]];
    assert!(ec.name.starts_with("sat_ec["), "{}", ec.name);
    assert_eq!(ch.phi_idx.len(), 1, "the slope is fixed");
    assert_eq!(ch.phi_fixed, [1.0]);
    let Some(Prior::TruncatedNormal { mu, sigma, lower, upper }) = ec.prior else { panic!("{:?}", ec.prior) };
    assert_eq!((mu, sigma, upper), (0.8, 0.8, 10.0));
    let nonzero: Vec<f64> = ch.x.iter().copied().filter(|v| *v != 0.0).collect();
    let n = nonzero.len() as f64;
    let below = nonzero.iter().filter(|v| **v < lower).count() as f64 / n;
    let at_or_below = nonzero.iter().filter(|v| **v <= lower).count() as f64 / n;
    assert!(lower > 0.1, "the quantile ({lower}) is above the prior's own bound 0.1 on this data");
    assert!(below <= 0.2 && at_or_below >= 0.2 - 1.0 / n, "{below} .. {at_or_below} of the cells below {lower}");
    assert_eq!(ec.transform, Prior::TruncatedNormal { mu, sigma, lower, upper }.transform());
    // the initial point and the Laplace/NUTS starts lie inside the raised support
    assert!(model.constrain(&model.initial_point())[ch.phi_idx[0]] > lower);

    let mut spec = spec;
    if let SaturationSpec::Hill { ec, .. } = &mut spec.channels[1].saturation {
        *ec = Prior::TruncatedNormal { mu: 0.8, sigma: 0.8, lower: 0.01, upper: lower * 0.9 };
    }
    let e = MmmModel::new(&spec, &data).unwrap_err().to_string();
    assert!(e.contains("ec_floor_quantile = 0.2") && e.contains("not below the prior's upper bound"), "{e}");
}

#[test]
fn ec_floor_interpolates_between_order_statistics() {
    use mmloop_mmm::transforms::ec_floor;
    assert_eq!(ec_floor(vec![5.0, 1.0, 3.0, 2.0, 4.0], 0.25), Some(2.0));
    assert_eq!(ec_floor(vec![10.0, 0.5], 0.5), Some(5.25));
    assert_eq!(ec_floor(vec![3.0], 0.9), Some(3.0));
    assert_eq!(ec_floor(Vec::new(), 0.1), None);
}

/// A held geo-intercept sd (`intercept_geo_sd = s`) is no coordinate: the model has one parameter
/// fewer than the pooled one, every centring request leaves the block non-centred (centring a
/// block of known scale would only rescale it), and the geo intercepts are μ_a + s·u_g.
#[test]
fn a_held_intercept_sd_is_no_coordinate_and_its_block_stays_non_centred() {
    let (spec, data) = variant(9, true);
    let held = MmmModel::new(&spec, &data).unwrap();
    let mut pooled_spec = spec.clone();
    pooled_spec.baseline.intercept_geo_sd = GeoInterceptSd::Prior(Prior::HalfNormal { sigma: 1.0 });
    let pooled = MmmModel::new(&pooled_spec, &data).unwrap();
    assert_eq!(held.dim() + 1, pooled.dim());
    assert!(held.names().iter().all(|n| n != "intercept_geo_sd"));
    assert!(held.baseline.pooled_intercepts().is_none());
    for blocks in 0u8..32 {
        let mut m = held.clone();
        m.set_centring(&centring(blocks));
        assert!(!m.baseline.geo_centred && !m.baseline.geo_levels, "blocks {blocks}");
        assert_eq!(m.intercept_power(), 1.0, "blocks {blocks}");
    }
    let q = random_point(&held, 3, 0.5);
    let p = held.unpack(&q);
    let (_, us) = held.baseline.geo_intercept.unwrap();
    let mut qm = vec![0.0; q.len()];
    held.to_model_coords(&q, &mut qm);
    let mu = p.values[held.baseline.intercept_idx];
    for g in 0..held.n_geos() {
        let want = mu + 0.6 * qm[us + g];
        assert!((p.intercept[g] - want).abs() < 1e-12, "geo {g}: {} vs {want}", p.intercept[g]);
    }
}
