//! Issue 11 §4's hard case, measured: search spend follows a demand signal the model cannot see,
//! so the observational fit over-credits search; one precise, unbiased go-dark test on search is
//! then used (a) as the window-aware lift likelihood term (`mmloop fit --ledger`, the default) and
//! (b) as a moment-matched ROI prior (`--ledger-as roi-prior`, the experiment-anchored mode).
//!
//! Run: `cargo test -p mmloop-mmm --test hard_case -- --nocapture` (prints the figures; four
//! Laplace fits of 12 geos × 104 weeks, ~15 s). A fourth fit shows the other remedy: the demand
//! signal added as a named control, with no experiment.
//!
//! Measured (2026-11-30; true search ROI 2.0, readout ROI 1.91 ± 0.21):
//!
//! | fit | Laplace: search ROI | implied lift − readout | NUTS 2×300: search ROI | implied lift − readout |
//! |---|---|---|---|---|
//! | observational | 20.2 ± 8.9 | −88 SE | 27.6 ± 11.0 | −113 SE |
//! | (a) lift term | 4.39 ± 1.14 | −6.2 SE | 4.02 ± 0.23 | −5.4 SE |
//! | (b) ROI prior | 5.33 ± 0.40 | −18.9 SE | 5.37 ± 0.42 | −18.3 SE |
//! | demand as a control, no test | 1.93 ± 1.42 | −1.5 SE | 1.60 ± 1.21 | +1.3 SE |
//!
//! The NUTS runs are short (max R-hat ≤ 1.026, min bulk ESS 50–179, ≤ 2 divergences per fit) but
//! agree with Laplace. Both calibrations leave search 2–2.7× too high and the fit many SE from the readout; the ROI
//! prior anchors *less* than the lift term here (the prior, sd 0.21 on ROI, is overridden by the
//! confounded likelihood: roi[search] ends at 5.3 ± 0.4). The remedy that works is the control.
//!
//! The test checks the world's premises and the invariants (the uncalibrated fit over-credits
//! search; the pricing of the test equals the calibration term's implied lift) and prints the
//! comparison; it does not assert which mode wins, because that is what is being measured.

use mmloop_data::{LiftTestRecord, SpendDelta};
use mmloop_mmm::config::load_config;
use mmloop_mmm::optimize::FittedModel;
use mmloop_mmm::pricing::{HypotheticalTest, SpendChange, Tail, price_test};
use mmloop_mmm::simulate::{SplitMix64, geometric_adstock, hill};
use mmloop_mmm::spec::RoiPriorRecord;
use mmloop_mmm::{Dataset, ModelSpec};
use std::fmt::Write as _;

const G: usize = 12;
const T: usize = 104;
const MAX_LAG: usize = 8;
/// The go-dark window: weeks 80..=87 (carry-over through week 95, inside the data).
const WINDOW: (usize, usize) = (80, 88);
/// 2021-01-04 as days since 1970-01-01.
const FIRST_WEEK: f64 = 18_631.0;

/// A channel's truth: geometric adstock (normalised, 8 lags), Hill saturation, one β for all geos.
struct Channel {
    alpha: f64,
    ec: f64,
    slope: f64,
    beta: f64,
}

impl Channel {
    /// Per-capita contribution path of a per-capita spend path.
    fn response(&self, x: &[f64]) -> Vec<f64> {
        geometric_adstock(x, self.alpha, MAX_LAG).iter().map(|&a| self.beta * hill(a, self.ec, self.slope)).collect()
    }
}

/// The simulated world: CSV text, the truth needed to score the fits.
struct World {
    csv: String,
    pop: Vec<f64>,
    /// Per-capita search spend [g][t] as written to the file (cents, divided back).
    search: Vec<Vec<f64>>,
    search_truth: Channel,
    search_roi: f64,
}

fn date(t: usize) -> String {
    mmloop_data::format_date(FIRST_WEEK + 7.0 * t as f64)
}

/// Per-capita sales = 2 + trend + yearly season + price effect + 0.06·d(g,t) + TV + search + noise,
/// where d(g,t) = 0.7·n(t) + 0.7·e(g,t) is latent demand (n national, e per geo, both AR(1) with
/// ρ = 0.85 and unit stationary variance); the file has it as column `demand`, which the model's
/// config leaves out (the remedy "add the control" puts it in); search spend per capita is
/// 0.012·w_g·exp(0.6·d(g,t) + 0.3·ε(g,t)), ε iid N(0, 1): it tracks demand, with some variation
/// of its own (without it, search would be a function of demand and unidentifiable next to it). TV runs national flights independent of demand.
/// True ROIs over the two years: TV 1.5, search 2.0 (β solved from them).
fn world() -> World {
    let mut rng = SplitMix64::new(20_261_130);
    let pop: Vec<f64> = (0..G).map(|g| 400_000.0 + 250_000.0 * g as f64).collect();
    let ar1 = |rng: &mut SplitMix64| {
        let rho: f64 = 0.85;
        let mut v = vec![rng.normal()];
        for t in 1..T {
            v.push(rho * v[t - 1] + (1.0 - rho * rho).sqrt() * rng.normal());
        }
        v
    };
    let national = ar1(&mut rng);
    let demand: Vec<Vec<f64>> =
        (0..G).map(|_| ar1(&mut rng).iter().zip(&national).map(|(e, n)| 0.7 * n + 0.7 * e).collect()).collect();
    let cents = |x: f64, p: f64| (x * p * 100.0).round() / 100.0 / p;
    // TV: flights of 4–7 weeks on, 3–5 off, national level with a fixed weight per geo
    let mut tv_nat = vec![0.0; T];
    let mut t = 0;
    while t < T {
        let on = 4 + (rng.uniform() * 4.0) as usize;
        let level = 0.02 * (0.8 + 0.4 * rng.uniform());
        for v in tv_nat.iter_mut().take((t + on).min(T)).skip(t) {
            *v = level;
        }
        t += on + 3 + (rng.uniform() * 3.0) as usize;
    }
    let tv: Vec<Vec<f64>> = (0..G)
        .map(|g| {
            let w = (0.2 * rng.normal()).exp();
            tv_nat.iter().map(|&x| cents(x * w, pop[g])).collect()
        })
        .collect();
    let search: Vec<Vec<f64>> = (0..G)
        .map(|g| {
            let w = (0.2 * rng.normal()).exp();
            demand[g].iter().map(|&d| cents(0.012 * w * (0.6 * d + 0.3 * rng.normal()).exp(), pop[g])).collect()
        })
        .collect();
    let price: Vec<Vec<f64>> =
        (0..G).map(|_| (0..T).map(|_| ((1.0 + 0.02 * rng.normal()) * 1e4).round() / 1e4).collect()).collect();

    // β from the target ROI: ROI = Σ pop·β·hill(adstock) / Σ pop·spend
    let mean_nonzero = |x: &[Vec<f64>]| {
        let v: Vec<f64> = x.iter().flatten().copied().filter(|&v| v > 0.0).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let calibrate = |x: &[Vec<f64>], alpha: f64, ec_factor: f64, slope: f64, roi: f64| {
        let mut ch = Channel { alpha, ec: ec_factor * mean_nonzero(x), slope, beta: 1.0 };
        let sat: f64 = (0..G).map(|g| pop[g] * ch.response(&x[g]).iter().sum::<f64>()).sum();
        let spend: f64 = (0..G).map(|g| pop[g] * x[g].iter().sum::<f64>()).sum();
        ch.beta = roi * spend / sat;
        ch
    };
    let tv_truth = calibrate(&tv, 0.6, 1.0, 1.5, 1.5);
    let search_truth = calibrate(&search, 0.2, 0.8, 1.0, 2.0);

    let mut csv = String::from("date,geo,population,sales,tv_spend,search_spend,price_index,demand\n");
    let mut rows = Vec::new();
    for g in 0..G {
        let (rt, rs) = (tv_truth.response(&tv[g]), search_truth.response(&search[g]));
        for t in 0..T {
            let season = 0.12 * (2.0 * std::f64::consts::PI * t as f64 / 52.18).sin();
            let pc = 2.0 + 0.1 * t as f64 / (T - 1) as f64 + season - 1.2 * (price[g][t] - 1.0)
                + 0.06 * demand[g][t]
                + rt[t]
                + rs[t]
                + 0.05 * rng.normal();
            rows.push((t, g, pop[g] * pc));
        }
    }
    rows.sort_by_key(|&(t, g, _)| (t, g));
    for (t, g, y) in rows {
        let _ = writeln!(
            csv,
            "{},geo{g:02},{},{y:.2},{:.2},{:.2},{:.4},{:.6}",
            date(t),
            pop[g],
            tv[g][t] * pop[g],
            search[g][t] * pop[g],
            price[g][t],
            demand[g][t]
        );
    }
    World { csv, pop, search, search_truth, search_roi: 2.0 }
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

[[control]]
column = "price_index"

[pooling]
kind = "partial"

# the world's data are the spend without the go-dark (the test is a what-if on them)
[calibration]
tests_in_data = false

[fit]
method = "laplace"
seed = 42
"#;

/// One fit's figures: search ROI (mean, sd) and the implied lift of the test (mean, sd).
struct Scored {
    roi: (f64, f64),
    lift: (f64, f64),
    fit: FittedModel,
    analysis: mmloop_mmm::analysis::Analysis,
    diagnostics: mmloop_mmm::fitdir::Diagnostics,
}

fn fit(spec: &ModelSpec, data: &Dataset, test: &HypotheticalTest) -> Scored {
    let result = mmloop_mmm::fit::fit(spec, data).expect("fits");
    let analysis = mmloop_mmm::fit::analyse_fit(&result, data);
    let s = analysis.channels.iter().find(|c| c.name == "search").expect("search");
    let fit = FittedModel::from_fit(spec, data, &result).expect("plannable");
    let lift = price_test(&fit, test).expect("prices");
    Scored { roi: (s.roi.mean, s.roi.sd), lift: (lift.mean, lift.sd), fit, analysis, diagnostics: result.diagnostics }
}

#[test]
fn hidden_demand_search_world_lift_term_vs_roi_prior_measured() {
    run(CONFIG);
}

/// The same comparison by NUTS (2 chains × 300 warm-up + 300 draws), to see whether the Laplace
/// approximation's wide, skewed implied-lift draws drive the figures. Minutes on 2 cores:
/// `cargo test -p mmloop-mmm --test hard_case -- --ignored --nocapture`.
#[test]
#[ignore = "NUTS, minutes: cargo test -p mmloop-mmm --test hard_case -- --ignored --nocapture"]
fn hidden_demand_search_world_lift_term_vs_roi_prior_measured_by_nuts() {
    run(&CONFIG.replace(r#"method = "laplace""#, "method = \"nuts\"\nchains = 2\ntune = 300\ndraws = 300"));
}

fn run(config: &str) {
    let w = world();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("world.csv"), &w.csv).unwrap();
    std::fs::write(tmp.path().join("world.toml"), config).unwrap();
    let spec = load_config(tmp.path().join("world.toml")).unwrap();
    let data = Dataset::load(&spec).unwrap();

    // the test: search goes dark in every other geo for weeks 80..=87
    let treated: Vec<usize> = (0..G).step_by(2).collect();
    let names: Vec<String> = treated.iter().map(|g| format!("geo{g:02}")).collect();
    let mut true_lift = 0.0;
    let mut path = Vec::new();
    for &g in &treated {
        let mut cf = w.search[g].clone();
        for (t, v) in cf.iter_mut().enumerate().take(WINDOW.1).skip(WINDOW.0) {
            path.push(SpendDelta { time: date(t), geo: format!("geo{g:02}"), delta: -*v * w.pop[g] });
            *v = 0.0;
        }
        let (f, c) = (w.search_truth.response(&w.search[g]), w.search_truth.response(&cf));
        true_lift += w.pop[g] * (WINDOW.0..WINDOW.1 + MAX_LAG).map(|t| c[t] - f[t]).sum::<f64>();
    }
    let spend_change: f64 = path.iter().map(|d| d.delta).sum();
    // precise and unbiased: SE 10 % of the true lift, the readout one seeded normal draw from it
    let se = 0.1 * true_lift.abs();
    let readout = true_lift + se * SplitMix64::new(7).normal();
    let record = LiftTestRecord {
        channels: vec!["search".into()],
        geos: names.clone(),
        start: date(WINDOW.0),
        end: date(WINDOW.1 - 1),
        spend_change,
        spend_path: Some(path),
        incremental_kpi: readout,
        standard_error: se,
        estimator: "simulated".into(),
        source: "hard_case world".into(),
    };
    let geo_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut test = HypotheticalTest::new(&["search"], &geo_refs, WINDOW.0, WINDOW.1, SpendChange::Multiplier(0.0));
    // over the window, as the readout measures it and the calibration term counts it
    test.tail = Tail::WindowOnly;

    let t0 = std::time::Instant::now();
    let observational = fit(&spec, &data, &test);
    let mut lift_spec = spec.clone();
    lift_spec.calibration.lift_tests.push(record.clone());
    let lift_term = fit(&lift_spec, &data, &test);
    // `--ledger-as roi-prior`: the readout's ROI = incremental KPI / spend change, SE / |spend change|
    // (what `mmloop_loop::calibrate::combine` makes of one single-channel readout)
    let mut prior_spec = spec.clone();
    prior_spec.calibration.roi_priors.push(RoiPriorRecord {
        channel: "search".into(),
        mean: readout / spend_change,
        standard_error: se / spend_change.abs(),
    });
    let roi_prior = fit(&prior_spec, &data, &test);
    // the other remedy: the demand signal as a named control (no experiment)
    let with_control_toml = config.replace("[pooling]", "[[control]]\ncolumn = \"demand\"\n\n[pooling]");
    std::fs::write(tmp.path().join("world_control.toml"), with_control_toml).unwrap();
    let control_spec = load_config(tmp.path().join("world_control.toml")).unwrap();
    let control_data = Dataset::load(&control_spec).unwrap();
    let with_control = fit(&control_spec, &control_data, &test);
    let seconds = t0.elapsed().as_secs_f64();

    let truth = w.search_roi;
    let mut report = format!(
        "hard case: 12 geos × 104 weeks, search tracks hidden demand; go-dark test on search in 6 geos, weeks 80-87\n\
         true search ROI {truth:.3}; true lift {true_lift:.0}; readout {readout:.0} ± {se:.0} (ROI {:.3} ± {:.3})\n",
        readout / spend_change,
        se / spend_change.abs()
    );
    let runs = [
        ("observational", &observational),
        ("(a) lift term", &lift_term),
        ("(b) roi prior", &roi_prior),
        ("demand control", &with_control),
    ];
    for (name, s) in runs {
        let _ = writeln!(
            report,
            "{name:<14} search ROI {:.3} ± {:.3} ({:+.0} % vs truth); implied lift {:.0} ± {:.0}: \
             {:+.2} readout SE from the readout, z = {:+.2} with the prediction sd",
            s.roi.0,
            s.roi.1,
            100.0 * (s.roi.0 / truth - 1.0),
            s.lift.0,
            s.lift.1,
            (s.lift.0 - readout) / se,
            (readout - s.lift.0) / (s.lift.1.powi(2) + se * se).sqrt()
        );
        if let Some(d) = s.diagnostics.nuts() {
            let _ = writeln!(
                report,
                "{:<14} NUTS: max R-hat {:.3} ({:?}), min bulk ESS {:.0}, {} divergences",
                "", d.max_rhat, d.max_rhat_param, d.min_ess_bulk, d.divergences
            );
        }
    }
    let param = |s: &Scored, p: &str| s.analysis.params.iter().find(|x| x.name == p).map(|x| (x.stat.mean, x.stat.sd));
    let _ = writeln!(
        report,
        "(b): posterior of the parameter roi[search] {:?} (its prior: LogNormal moment-matched to {:.3} ± {:.3})",
        param(&roi_prior, "roi[search]"),
        readout / spend_change,
        se / spend_change.abs()
    );
    let _ = writeln!(report, "four fits in {seconds:.1} s");
    eprintln!("{report}");

    // premise: the observational fit over-credits search (else this world is not the hard case)
    assert!(observational.roi.0 > 1.2 * truth, "{report}");
    // the test's pricing is the calibration term's implied lift: the same window, geos and spend
    // path through the same adstock and saturation, so equal to rounding (1e-9 relative)
    let check = &lift_term.analysis.lift_tests[0];
    assert!((check.implied.mean - lift_term.lift.0).abs() <= 1e-9 * check.implied.mean.abs(), "{report}");
    // the other premise: with the demand signal as a control the observational fit is not biased
    // upwards (its error is smaller than without the control)
    assert!((with_control.roi.0 - truth).abs() < (observational.roi.0 - truth).abs(), "{report}");
    // the prior fit carries the readout as a prior, not as a lift check
    assert!(roi_prior.analysis.lift_tests.is_empty());
    assert_eq!(roi_prior.fit.draws.len(), lift_term.fit.draws.len());
    for s in [&observational, &lift_term, &roi_prior] {
        assert!(s.roi.0.is_finite() && s.lift.0.is_finite() && s.lift.1 > 0.0, "{report}");
    }
}
