//! The design's predicted standard error (σ_exp, what experiment ranking prices) against the spread
//! of real readouts of tests run with that design, on simulated factor-model panels
//! ([`mmloop_geolift::simulate`]).
//!
//! One replication: draw a panel (history + test window) from a fixed world; run the design on the
//! history alone for the given treated set and duration → predicted SE of the incremental KPI; inject
//! a known +5 % effect into the treated geos' test window and read the test out (synthetic control,
//! the readout's default) → estimate − truth, and the readout's own reported SE. Over replications:
//! predicted SE / sd(estimate − truth) should be in 0.8–1.25.

use mmloop_geolift::design::{DesignInference, PowerConfig, PowerEngine};
use mmloop_geolift::readout::{ReadoutParams, read_out};
use mmloop_geolift::simulate::{PanelSpec, World, inject};
use mmloop_geolift::{LiftData, LiftEstimator, NoProgress, Panel, SyntheticControl, fit_sc};
use ndarray::s;
use rayon::prelude::*;

/// `k` geos spread evenly over the 30–70 % quantiles of size (mid-sized markets, as a market
/// selection would pick them).
fn treated_set(world: &World, k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..world.spec.n_geos).collect();
    order.sort_by(|&a, &b| world.sizes[a].total_cmp(&world.sizes[b]));
    let n = order.len() as f64;
    let mut t: Vec<usize> =
        (0..k).map(|i| order[((0.3 + 0.4 * i as f64 / (k.max(2) - 1) as f64) * n) as usize]).collect();
    t.sort_unstable();
    t.dedup();
    assert_eq!(t.len(), k, "distinct treated geos");
    t
}

#[derive(Debug)]
struct Figures {
    reps: usize,
    /// sd and mean of (estimate − truth), incremental KPI.
    actual_sd: f64,
    bias: f64,
    /// Monte Carlo standard error of ln(actual_sd): √((κ − 1)/(4R)) with κ the errors' sample
    /// kurtosis (the delta method on the sample variance, whose variance is σ⁴(κ − 1)/R).
    mcse_log_sd: f64,
    /// Mean, root mean square and coefficient of variation over replications of the predicted SE.
    predicted_mean: f64,
    predicted_rms: f64,
    predicted_cv: f64,
    /// The former predictor: sd over the 10 power windows.
    old_mean: f64,
    /// Mean reported SE (full readout only).
    reported_mean: Option<f64>,
}

impl Figures {
    fn ratio(&self) -> f64 {
        self.predicted_mean / self.actual_sd
    }
    fn line(&self, label: &str) -> String {
        format!(
            "{label}: R={} actual sd {:.0} (MC ±{:.0} %), bias {:.0} | predicted/actual: mean {:.3}, rms {:.3} (per-design cv {:.2}); former predictor {:.3}; readout's reported SE {}",
            self.reps,
            self.actual_sd,
            100.0 * self.mcse_log_sd,
            self.bias,
            self.ratio(),
            self.predicted_rms / self.actual_sd,
            self.predicted_cv,
            self.old_mean / self.actual_sd,
            self.reported_mean.map(|r| format!("{:.3}", r / self.actual_sd)).unwrap_or_else(|| "not run".into()),
        )
    }
}

/// `reps` replications of a `d`-period test of `treated` after `hist` periods of history. With
/// `full_readout` every test goes through [`read_out`] (SC with conformal inference, the default
/// settings, placebo replications cut to 20: they only feed a note); otherwise the point estimate
/// alone ([`SyntheticControl::estimate`], the number the readout reports, checked equal on the
/// first replication).
fn measure(world: &World, treated: &[usize], hist: usize, d: usize, reps: usize, full_readout: bool) -> Figures {
    assert!(world.spec.n_periods >= hist + d);
    let cfg = PowerConfig { inference: DesignInference::Normal, ..Default::default() };
    let names = world.geo_names();
    let params = ReadoutParams {
        treated: treated.iter().map(|&g| names[g].clone()).collect(),
        start: Some(hist.to_string()),
        placebo_reps: 20,
        ..Default::default()
    }
    .check()
    .expect("readout settings");
    let rows: Vec<[f64; 4]> = (0..reps as u64)
        .into_par_iter()
        .map(|r| {
            let mut y = world.draw(r).slice(s![.., ..hist + d]).to_owned();
            let donors: Vec<usize> = (0..y.nrows()).filter(|g| !treated.contains(g)).collect();
            let curve = {
                let history = y.slice(s![.., ..hist]);
                let engine = PowerEngine::new(history, &cfg).expect("design config");
                engine.power_curve(treated, &donors, d).expect("design runs")
            };
            let at_zero = curve.points.iter().find(|p| p.effect == 0.0).expect("0 on the effect grid");
            let truth = inject(&mut y, treated, hist, 0.05);
            let point = || {
                let data = LiftData::from_matrix(y.clone(), treated.to_vec(), hist).expect("design");
                SyntheticControl::default().estimate(&data).expect("sc").incremental
            };
            let (est, reported) = if full_readout || r == 0 {
                let panel = Panel::from_matrix(names.clone(), y.clone()).expect("panel");
                let ro = read_out(&panel, &params, &NoProgress).expect("readout");
                let rec = &ro.records()[0];
                if r == 0 {
                    let p = point();
                    assert!(
                        (p - rec.incremental_kpi).abs() <= 1e-9 * p.abs().max(1.0),
                        "{p} vs {}",
                        rec.incremental_kpi
                    );
                }
                (rec.incremental_kpi, rec.standard_error)
            } else {
                (point(), f64::NAN)
            };
            [curve.se_incremental(), at_zero.sd * curve.baseline_kpi, est - truth, reported]
        })
        .collect();
    let n = reps as f64;
    let mean = |i: usize| rows.iter().map(|r| r[i]).sum::<f64>() / n;
    let bias = mean(2);
    let m2 = rows.iter().map(|r| (r[2] - bias).powi(2)).sum::<f64>() / n;
    let m4 = rows.iter().map(|r| (r[2] - bias).powi(4)).sum::<f64>() / n;
    let pm = mean(0);
    let psd = (rows.iter().map(|r| (r[0] - pm).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    Figures {
        reps,
        actual_sd: (m2 * n / (n - 1.0)).sqrt(),
        bias,
        mcse_log_sd: ((m4 / (m2 * m2) - 1.0) / (4.0 * n)).sqrt(),
        predicted_mean: pm,
        predicted_rms: (rows.iter().map(|r| r[0] * r[0]).sum::<f64>() / n).sqrt(),
        predicted_cv: psd / pm,
        old_mean: mean(1),
        reported_mean: full_readout.then(|| mean(3)),
    }
}

/// Fast check in the default suite: 20 geos, 60 days of history, 2 treated geos, a 14-day test,
/// 400 replications (about a second).
///
/// Tolerance: the target band 0.8–1.25 as it stands. It is meaningful at this size because the
/// Monte Carlo error of the ratio is small against it: ln(actual sd) has MC standard error
/// √((κ − 1)/(4R)) (≈ 0.04 at R = 400 for the errors' kurtosis here; asserted < 0.06, so the band's
/// half-width ln 1.25 = 0.22 is ≥ 3.7 MC standard errors), and the mean predicted SE's is
/// cv/√R ≈ 0.03. The former predictor (sd over the 10 power windows, ≈ 0.35 here) fails it by
/// many standard errors.
#[test]
fn predicted_se_matches_the_spread_of_simulated_readouts() {
    let spec = PanelSpec { n_geos: 20, n_periods: 74, ..Default::default() };
    let world = World::new(spec, 3);
    let treated = treated_set(&world, 2);
    let f = measure(&world, &treated, 60, 14, 400, false);
    eprintln!("{}", f.line("20 geos, 60 days, 2 treated, 14-day test"));
    assert!(f.mcse_log_sd < 0.06, "too few replications for the tolerance: {f:?}");
    assert!((0.8..=1.25).contains(&f.ratio()), "predicted SE / actual sd = {:.3}: {f:?}", f.ratio());
    assert!(f.old_mean / f.actual_sd < 0.8, "the former predictor would pass too: the test cannot tell: {f:?}");
}

/// The figures for the default estimator (synthetic control, read out with the real readout and its
/// conformal SE) at 2 and 5 treated geos × 14 and 28 days, on a 40-geo world with 90 days of history.
#[test]
#[ignore = "heavy (≈ 4 × 400 full readouts, a few minutes on 2 cores); run with: cargo test -p mmloop-geolift --test design_se -- --ignored --nocapture"]
fn predicted_se_figures_with_the_full_readout() {
    let reps: usize = std::env::var("DESIGN_SE_REPS").ok().and_then(|s| s.parse().ok()).unwrap_or(400);
    let hist = 90;
    let world = World::new(PanelSpec { n_periods: hist + 28, ..Default::default() }, 11);
    let mut failures = vec![];
    for k in [2, 5] {
        let treated = treated_set(&world, k);
        for d in [14, 28] {
            let f = measure(&world, &treated, hist, d, reps, true);
            let line = f.line(&format!("40 geos, {hist} days, {k} treated, {d}-day test"));
            eprintln!("{line}");
            if !(0.8..=1.25).contains(&f.ratio()) {
                failures.push(line);
            }
        }
    }
    assert!(failures.is_empty(), "predicted SE / actual sd outside 0.8–1.25:\n{}", failures.join("\n"));
}

/// `se_lift` is what its documentation says: the root mean square about zero of the relative
/// placebo-in-time errors of windows ⌈d/8⌉ apart back to a pre-period of half the longest, each a
/// synthetic-control fit on the periods before it — recomputed here from scratch with [`fit_sc`].
/// Tolerance 1e-6 relative: the engine warm-starts the extra fits, the solver converges to ~1e-9.
#[test]
fn se_lift_is_the_rms_of_placebo_in_time_errors() {
    let world = World::new(PanelSpec { n_geos: 12, n_periods: 70, ..Default::default() }, 5);
    let y = world.draw(0);
    let (treated, donors): (Vec<usize>, Vec<usize>) = (0..12).partition(|g| [2, 7].contains(g));
    let cfg = PowerConfig { inference: DesignInference::Normal, ..Default::default() };
    let engine = PowerEngine::new(y.view(), &cfg).unwrap();
    for d in [7, 14, 21] {
        let curve = engine.power_curve(&treated, &donors, d).unwrap();
        let (t, stride) = (y.ncols(), d.div_ceil(8));
        let n = engine.se_windows(d);
        // pre-periods down to ⌈(T − d)/2⌉ (min_pre = 20 binds only when that is shorter)
        assert_eq!(n, (t - d - (t - d).div_ceil(2).max(20)) / stride + 1, "d = {d}");
        let errs: Vec<f64> = (0..n)
            .map(|j| {
                let s0 = t - d - j * stride;
                let x1: Vec<f64> = (0..s0 + d).map(|c| (y[[2, c]] + y[[7, c]]) / 2.0).collect();
                let x0 = y.select(ndarray::Axis(0), &donors).slice(s![.., ..s0 + d]).to_owned();
                let cf = fit_sc(&x1, x0.view(), s0, true, None).counterfactual;
                let (o, c): (f64, f64) = (x1[s0..].iter().sum(), cf[s0..].iter().sum());
                (o - c) / c.abs()
            })
            .collect();
        let rms = (errs.iter().map(|e| e * e).sum::<f64>() / n as f64).sqrt();
        assert!((curve.se_lift - rms).abs() <= 1e-6 * rms, "d = {d}: {} vs {rms}", curve.se_lift);
        assert!((curve.se_incremental() - curve.se_lift * curve.baseline_kpi).abs() <= 1e-9 * curve.se_incremental());
    }
}

/// Two other worlds (point estimates, the number the readout reports): strongly autocorrelated
/// noise (AR 0.8) with weak trends and 120 days of history; white noise, very unequal geo sizes
/// (log-sd 1.2, Poisson-like noise) and only 60 days of history. 2 and 4 treated geos × 14 and 28
/// days, 300 replications each. Measured: 0.94–1.00 and 0.86–1.10.
#[test]
#[ignore = "≈ 20 s on 2 cores; run with: cargo test -p mmloop-geolift --test design_se -- --ignored --nocapture other_worlds"]
fn predicted_se_holds_on_other_worlds() {
    let mut failures = vec![];
    for (label, spec, hist) in [
        (
            "25 geos, AR(0.8) noise, weak trends, 120 days",
            PanelSpec { n_geos: 25, n_periods: 148, ar: 0.8, factor_sd: 0.004, ..Default::default() },
            120,
        ),
        (
            "30 geos, white noise, unequal sizes, 60 days",
            PanelSpec {
                n_geos: 30,
                n_periods: 88,
                ar: 0.0,
                size_sigma: 1.2,
                noise_size_exponent: 0.5,
                ..Default::default()
            },
            60,
        ),
    ] {
        let world = World::new(spec, 21);
        for k in [2, 4] {
            let treated = treated_set(&world, k);
            for d in [14, 28] {
                let f = measure(&world, &treated, hist, d, 300, false);
                let line = f.line(&format!("{label}, {k} treated, {d}-day test"));
                eprintln!("{line}");
                if !(0.8..=1.25).contains(&f.ratio()) {
                    failures.push(line);
                }
            }
        }
    }
    assert!(failures.is_empty(), "predicted SE / actual sd outside 0.8–1.25:\n{}", failures.join("\n"));
}
