//! [`predict_readout`]: the standard error a readout will report, predicted on history before the
//! test runs, against the standard error the real readout of the test then reports, on simulated
//! factor-model panels shaped like the demo's (12 geos, weekly, a yearly season, an 8-week test
//! after a 52-week pre-period).
//!
//! One replication: draw a panel (history + test window); predict the readout's SE on the history
//! alone; inject a +5 % effect into the treated geos' test window and read the test out with the
//! same settings (another placebo seed); record both SEs, the readout's error and synthetic
//! control's design SE (the former σ_exp, [`PowerCurve::se_incremental`]) for comparison.

use mmloop_geolift::design::{DesignInference, PowerConfig, PowerEngine};
use mmloop_geolift::readout::{ReadoutParams, predict_readout, read_out};
use mmloop_geolift::simulate::{PanelSpec, World, inject};
use mmloop_geolift::{NoProgress, Panel};
use rayon::prelude::*;

const HIST: usize = 60;
const D: usize = 8;
const PRE: usize = 52;

fn weekly_world(seed: u64) -> World {
    let spec = PanelSpec {
        n_geos: 12,
        n_periods: HIST + D,
        season_period: 52.0,
        season_amp: 0.15,
        season_phase_sd: 2.0,
        ..Default::default()
    };
    World::new(spec, seed)
}

fn params(estimator: &str, seed: u64) -> ReadoutParams {
    ReadoutParams { estimators: vec![estimator.into()], placebo_reps: 200, seed, ..Default::default() }
}

struct Figures {
    reps: usize,
    /// Means over replications of the predicted and the reported SE, and of their ratio's log.
    predicted: f64,
    reported: f64,
    /// Monte Carlo standard error of ln(mean predicted / mean reported) (delta method on the
    /// paired replications).
    mcse_log_ratio: f64,
    /// sd of the readout's error (estimate − truth) and the mean of SC's design SE.
    actual_sd: f64,
    sc_design: f64,
}

impl Figures {
    fn ratio(&self) -> f64 {
        self.predicted / self.reported
    }
}

fn measure(estimator: &str, world: &World, treated: &[usize], reps: usize) -> Figures {
    let names = world.geo_names();
    let treated_names: Vec<String> = treated.iter().map(|&g| names[g].clone()).collect();
    let cfg = PowerConfig { inference: DesignInference::Normal, ..Default::default() };
    let rows: Vec<[f64; 4]> = (0..reps as u64)
        .into_par_iter()
        .map(|r| {
            let mut y = world.draw(r);
            let history = Panel::from_matrix(names.clone(), y.slice(ndarray::s![.., ..HIST]).to_owned()).unwrap();
            let predicted =
                predict_readout(&history, &params(estimator, 2 * r), &treated_names, D, PRE).expect("prediction");
            let donors: Vec<usize> = (0..names.len()).filter(|g| !treated.contains(g)).collect();
            let sc = PowerEngine::new(history.kpi.view(), &cfg)
                .and_then(|e| e.power_curve(treated, &donors, D))
                .expect("sc design")
                .se_incremental();
            let truth = inject(&mut y, treated, HIST, 0.05);
            let panel = Panel::from_matrix(names.clone(), y).unwrap().periods(HIST - PRE, HIST + D).unwrap();
            let s = ReadoutParams {
                treated: treated_names.clone(),
                start: Some(panel.time_labels[PRE].clone()),
                ..params(estimator, 2 * r + 1)
            }
            .check()
            .unwrap();
            let rec = read_out(&panel, &s, &NoProgress).expect("readout").records()[0].clone();
            [predicted.standard_error, rec.standard_error, rec.incremental_kpi - truth, sc]
        })
        .collect();
    let n = reps as f64;
    let mean = |i: usize| rows.iter().map(|r| r[i]).sum::<f64>() / n;
    let (p, q) = (mean(0), mean(1));
    // ln(p̄/q̄): influence of replication i is pᵢ/p̄ − qᵢ/q̄
    let infl: Vec<f64> = rows.iter().map(|r| r[0] / p - r[1] / q).collect();
    let im = infl.iter().sum::<f64>() / n;
    let ivar = infl.iter().map(|x| (x - im).powi(2)).sum::<f64>() / (n - 1.0);
    let em = mean(2);
    Figures {
        reps,
        predicted: p,
        reported: q,
        mcse_log_ratio: (ivar / n).sqrt(),
        actual_sd: (rows.iter().map(|r| (r[2] - em).powi(2)).sum::<f64>() / (n - 1.0)).sqrt(),
        sc_design: mean(3),
    }
}

/// ASCM (the demo's reader) on 4 of 12 geos: the mean predicted SE is within 10 % of the mean SE
/// the readouts report, over 200 replications (about 10 s).
///
/// Tolerance: the two differ by design only through the window (the prediction's ends 8 periods
/// earlier) and the placebo draws, so their means agree up to Monte Carlo error; the band ±10 %
/// (|ln ratio| ≤ 0.095) is asserted to be at least 3 Monte Carlo standard errors of ln(ratio)
/// wide, so a predictor off by more than 10 % fails it and one that is right passes with
/// probability > 99 %. Synthetic control's design SE (the σ_exp the ranking used before) is printed
/// beside it: on these panels it is a different number (the test fails if it would pass too,
/// so the check can tell the two apart).
#[test]
fn predicted_readout_se_matches_the_se_the_ascm_readout_reports() {
    let world = weekly_world(5);
    let treated = [1, 4, 7, 10];
    let f = measure("ascm", &world, &treated, 200);
    eprintln!(
        "ascm, 12 geos, 4 treated, 8-week test: R={} predicted {:.0}, reported {:.0} (ratio {:.3}, MC se of ln {:.3}); \
         actual sd of the readout's error {:.0}; SC's design SE {:.0}",
        f.reps,
        f.predicted,
        f.reported,
        f.ratio(),
        f.mcse_log_ratio,
        f.actual_sd,
        f.sc_design
    );
    assert!(3.0 * f.mcse_log_ratio <= 0.095, "too few replications for the ±10 % band: MC se {:.3}", f.mcse_log_ratio);
    assert!((0.9..=1.1).contains(&f.ratio()), "predicted / reported = {:.3}", f.ratio());
    assert!(
        !(0.9..=1.1).contains(&(f.sc_design / f.reported)),
        "SC's design SE ({:.0}) would pass too ({:.0} reported): the test cannot tell them apart",
        f.sc_design,
        f.reported
    );
}

/// A design the reader cannot read fails at the prediction, as the readout would: ASCM's placebo
/// SE needs more control geos than treated ones, so 6 treated geos of 12 are refused, naming why.
#[test]
fn a_design_the_reader_cannot_read_is_refused_at_the_prediction() {
    let world = weekly_world(5);
    let names = world.geo_names();
    let history = Panel::from_matrix(names.clone(), world.draw(0).slice(ndarray::s![.., ..HIST]).to_owned()).unwrap();
    let six: Vec<String> = names[..6].to_vec();
    let err = predict_readout(&history, &params("ascm", 1), &six, D, PRE).expect_err("6 of 12 is unreadable");
    let chain = format!("{err}: {}", std::error::Error::source(&err).map(|s| s.to_string()).unwrap_or_default());
    assert!(chain.contains("more controls"), "{chain}");
    let five: Vec<String> = names[..5].to_vec();
    predict_readout(&history, &params("ascm", 1), &five, D, PRE).expect("5 of 12 is readable");
}
