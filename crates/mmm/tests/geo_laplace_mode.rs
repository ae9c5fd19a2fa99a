//! The Laplace fit of a 12-geo × 4-channel geo model finds the main mode.
//!
//! The world (simulated here, like `hard_case.rs`): 12 geos × 104 weeks, four channels with
//! geometric adstock and Hill saturation (two flighted, one always-on with AR(1) variation, one
//! drifting), per-geo effects log-normal around a channel mean, β set from round ROIs, a price
//! control, noise 2 % of the mean KPI; fitted with the default Hill / geometric / partial-pooling
//! config a new user would write.
//!
//! Measured (2026-11-30, seed-1..3 worlds; NUTS 2 × 300 warm-up + 200 draws for reference):
//! - before (search from the priors' centre, one Hessian at the L-BFGS point): every L-BFGS start
//!   stopped at max_iters = 2000 with |∇log p| ≈ 40–70, starts 13–25 nats apart; the fit's
//!   in-sample R² was −11 (seed 1) or the Laplace fit failed with a non-positive-definite Hessian
//!   (seeds 2, 3), where NUTS sits at R² 0.998;
//! - after (starts around the data-driven point `MmmModel::data_initial_point`, the best point
//!   Newton-polished): R² 0.998 / 0.998 on seeds 1 / 2, equal to NUTS's to 1e-3, the mode's log
//!   density above every NUTS draw's.
use mmloop_mmm::Dataset;
use mmloop_mmm::config::load_config;
use mmloop_mmm::simulate::{SplitMix64, geometric_adstock, hill};
use std::fmt::Write as _;

const G: usize = 12;
const T: usize = 104;

fn world(seed: u64) -> String {
    let mut rng = SplitMix64::new(seed);
    let pop: Vec<f64> = (0..G).map(|g| 400_000.0 + 250_000.0 * g as f64).collect();
    let cents = |x: f64, p: f64| (x * p * 100.0).round() / 100.0 / p;
    // four channels: flights (tv, radio), always-on noisy (search), drifting (social)
    let mut media: Vec<Vec<Vec<f64>>> = Vec::new();
    for c in 0..4 {
        let mut nat = vec![0.0; T];
        match c {
            0 | 3 => {
                let mut t = 0;
                while t < T {
                    let on = 3 + (rng.uniform() * 4.0) as usize;
                    let level = 0.02 * (0.6 + 0.8 * rng.uniform());
                    for v in nat.iter_mut().take((t + on).min(T)).skip(t) {
                        *v = level;
                    }
                    t += on + 2 + (rng.uniform() * 4.0) as usize;
                }
            }
            1 => {
                let mut l = 0.0f64;
                for v in nat.iter_mut() {
                    l = 0.8 * l + 0.3 * rng.normal();
                    *v = 0.012 * l.exp();
                }
            }
            _ => {
                let mut l = 0.0f64;
                for v in nat.iter_mut() {
                    l = 0.9 * l + 0.3 * rng.normal();
                    *v = 0.008 * l.exp();
                }
            }
        }
        media.push(
            (0..G)
                .map(|g| {
                    let w = (0.3 * rng.normal()).exp();
                    nat.iter().map(|&x| cents(x * w * (0.25 * rng.normal()).exp(), pop[g])).collect()
                })
                .collect(),
        );
    }
    let truths = [(0.6, 1.0, 1.5, 1.5), (0.2, 0.8, 1.0, 2.0), (0.4, 1.2, 2.0, 1.0), (0.5, 0.7, 1.2, 0.8)];
    let mut resp = vec![vec![vec![0.0; T]; G]; 4];
    for c in 0..4 {
        let (alpha, ecf, slope, roi) = truths[c];
        let nz: Vec<f64> = media[c].iter().flatten().copied().filter(|&v| v > 0.0).collect();
        let ec = ecf * nz.iter().sum::<f64>() / nz.len() as f64;
        let mut sat = 0.0;
        let mut spend = 0.0;
        for g in 0..G {
            let geo_eff = (0.2 * rng.normal()).exp();
            let r: Vec<f64> =
                geometric_adstock(&media[c][g], alpha, 8).iter().map(|&a| geo_eff * hill(a, ec, slope)).collect();
            sat += pop[g] * r.iter().sum::<f64>();
            spend += pop[g] * media[c][g].iter().sum::<f64>();
            resp[c][g] = r;
        }
        let beta = roi * spend / sat;
        resp[c].iter_mut().flatten().for_each(|v| *v *= beta);
    }
    let price: Vec<Vec<f64>> =
        (0..G).map(|_| (0..T).map(|_| ((1.0 + 0.02 * rng.normal()) * 1e4).round() / 1e4).collect()).collect();
    let base: Vec<f64> = (0..G).map(|_| 2.0 * (0.15 * rng.normal()).exp()).collect();
    let mut csv =
        String::from("date,geo,population,sales,tv_spend,search_spend,social_spend,radio_spend,price_index\n");
    for t in 0..T {
        for g in 0..G {
            let season = 0.12 * (2.0 * std::f64::consts::PI * t as f64 / 52.18).sin();
            let pc = base[g] + 0.1 * t as f64 / (T - 1) as f64 + season - 1.2 * (price[g][t] - 1.0)
                + (0..4).map(|c| resp[c][g][t]).sum::<f64>()
                + 0.04 * rng.normal();
            let _ = writeln!(
                csv,
                "{},geo{g:02},{},{:.2},{:.2},{:.2},{:.2},{:.2},{:.4}",
                mmloop_data::format_date(18_631.0 + 7.0 * t as f64),
                pop[g],
                pop[g] * pc,
                media[0][g][t] * pop[g],
                media[1][g][t] * pop[g],
                media[2][g][t] * pop[g],
                media[3][g][t] * pop[g],
                price[g][t]
            );
        }
    }
    csv
}

const CONFIG: &str = r#"
[data]
path = "world.csv"
time = "date"
geo = "geo"
kpi = "sales"
population = "population"

[media]
adstock = { kind = "geometric", max_lag = 8 }
saturation = { kind = "hill" }

[[channel]]
name = "tv"
spend = "tv_spend"

[[channel]]
name = "search"
spend = "search_spend"

[[channel]]
name = "social"
spend = "social_spend"

[[channel]]
name = "radio"
spend = "radio_spend"

[[control]]
column = "price_index"

[pooling]
kind = "partial"

[fit]
method = "laplace"
seed = 42
"#;

fn r2(fit: &mmloop_mmm::fit::FitResult, data: &Dataset) -> f64 {
    mmloop_mmm::fit::analyse_fit(fit, data).fit.in_sample.r2
}

fn load(seed: u64, dir: &std::path::Path) -> (mmloop_mmm::ModelSpec, Dataset) {
    std::fs::write(dir.join("world.csv"), world(seed)).unwrap();
    std::fs::write(dir.join("world.toml"), CONFIG).unwrap();
    let spec = load_config(dir.join("world.toml")).unwrap();
    let data = Dataset::load(&spec).unwrap();
    (spec, data)
}

fn laplace_report(fit: &mmloop_mmm::fit::FitResult) -> mmloop_mmm::fitdir::LaplaceReport {
    match &fit.diagnostics {
        mmloop_mmm::fitdir::Diagnostics::Laplace(r) => r.clone(),
        other => panic!("not a Laplace fit: {other}"),
    }
}

/// The Laplace fit of the seed-1 world (the one whose fit had R² −11) reaches the main mode: its
/// in-sample R² is at least 0.995 (NUTS: 0.998; the worse basins and stalled points had ≤ 0.95;
/// the non-centred Gaussian at the right mode 0.991), the mode's log density is at least every
/// start's end point's (it is the polished best), and the fit is deterministic (the same draws twice).
#[test]
fn laplace_reaches_the_main_mode_of_a_12_geo_4_channel_model() {
    let tmp = tempfile::tempdir().unwrap();
    let (spec, data) = load(1, tmp.path());
    let a = mmloop_mmm::fit::fit(&spec, &data).unwrap();
    let report = laplace_report(&a);
    let r2 = r2(&a, &data);
    assert!(r2 >= 0.995, "in-sample R² {r2}: {report:?}");
    // the polished mode is at least as high as every start's end (all scored in the same density)
    for lp in report.start_logps.iter().flatten() {
        assert!(*lp <= report.logp_at_mode + 1e-9 * report.logp_at_mode.abs(), "{report:?}");
    }
    let b = mmloop_mmm::fit::fit(&spec, &data).unwrap();
    assert_eq!(a.draws.values, b.draws.values);
}

/// NUTS on the same worlds: the Laplace fit's R² is within 0.002 of NUTS's, and the model's own log
/// density at the Laplace mode (mapped from the centred form it was found in) is above the highest
/// NUTS visited after warm-up (a draw above it would mean a better basin exists; draws sit ~P/2
/// nats below a mode, so the centred mode's offset from the non-centred one, a few nats, does not
/// hide a basin). Minutes: `cargo test -p mmloop-mmm --test geo_laplace_mode -- --ignored --nocapture`.
#[test]
#[ignore = "NUTS on 3 worlds, minutes: cargo test -p mmloop-mmm --test geo_laplace_mode -- --ignored --nocapture"]
fn laplace_mode_is_above_every_nuts_draw() {
    for seed in 1..=3u64 {
        let tmp = tempfile::tempdir().unwrap();
        let (mut spec, data) = load(seed, tmp.path());
        let lap = mmloop_mmm::fit::fit(&spec, &data).unwrap();
        let model = mmloop_mmm::model::MmmModel::new(&spec, &data).unwrap();
        let target = mmloop_mmm::fit::laplace_model(&model);
        let settings = mmloop_mmm::fit::laplace_settings(&model, &spec);
        let search = mmloop_mmm::fit::mode_search(&model, &target, &settings).unwrap();
        let mode = model.convert_point(&target, &search.mode);
        let mut g = vec![0.0; mode.len()];
        let own_logp = mmloop_inference::LogDensity::logp_grad(&model, &mode, &mut g).unwrap();
        spec.fit.method = mmloop_mmm::spec::FitMethod::Nuts;
        (spec.fit.chains, spec.fit.tune, spec.fit.draws) = (2, 300, 200);
        let options = mmloop_mmm::fit::FitOptions { quiet: true, memory_limit: None };
        let nuts = mmloop_mmm::fit::fit_with(&spec, &data, options).unwrap();
        let best = nuts.sample_stats.iter().flatten().map(|s| s.logp).fold(f64::NEG_INFINITY, f64::max);
        let (lr2, nr2) = (r2(&lap, &data), r2(&nuts, &data));
        eprintln!(
            "seed {seed}: Laplace R² {lr2:.4}, log p at mode {own_logp:.2}; NUTS R² {nr2:.4}, best log p {best:.2}; {}",
            nuts.diagnostics
        );
        assert!((lr2 - nr2).abs() < 0.002, "seed {seed}: R² {lr2} vs NUTS {nr2}");
        assert!(own_logp >= best, "seed {seed}: mode {own_logp} below a NUTS draw {best}");
    }
}
