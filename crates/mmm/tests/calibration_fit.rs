//! Calibration in a fit: a lift test (likelihood term) and an experiment's ROI readout (ROI prior)
//! pull the posterior towards the experiment, on data simulated from the model.

use mmloop_data::LiftTestRecord;
use mmloop_mmm::analysis::Stat;
use mmloop_mmm::model::simulate::{SimOptions, Simulation, simulate};
use mmloop_mmm::spec::{FitMethod, ModelSpec, RoiPriorRecord};

/// A short, noisy series, so the data alone pin ROIs down loosely and calibration has work to do.
fn sim() -> Simulation {
    simulate(&SimOptions { n_times: 60, sigma: 0.15, seed: 21, ..Default::default() }).unwrap()
}

fn roi_ch0(spec: &ModelSpec, sim: &Simulation) -> (Stat, mmloop_mmm::analysis::Analysis) {
    let mut spec = spec.clone();
    spec.fit.method = FitMethod::Laplace;
    spec.fit.chains = 1;
    spec.fit.draws = 2000;
    let res = mmloop_mmm::fit::fit(&spec, &sim.data).unwrap();
    let an = mmloop_mmm::fit::analyse_fit(&res, &sim.data);
    (an.channels[0].roi, an)
}

fn lift_record(sim: &Simulation, se_frac: f64) -> LiftTestRecord {
    let mut r = LiftTestRecord {
        channels: vec!["ch0".into()],
        geos: vec![],
        start: "30".into(),
        end: "37".into(),
        spend_change: -(30..=37).map(|t| sim.data.spend[[0, t, 0]]).sum::<f64>(), // go dark
        spend_path: None,
        incremental_kpi: 0.0,
        standard_error: 1.0,
        estimator: "truth".into(),
        source: "simulation".into(),
    };
    let truth = sim.true_lift(&r).unwrap();
    r.incremental_kpi = truth;
    r.standard_error = se_frac * truth.abs();
    r
}

#[test]
fn a_precise_lift_test_narrows_the_roi_posterior_around_the_truth() {
    let sim = sim();
    let truth = sim.true_roi[0];
    let (free, _) = roi_ch0(&sim.spec, &sim);
    let mut spec = sim.spec.clone();
    let rec = lift_record(&sim, 0.05);
    assert!(rec.incremental_kpi < 0.0, "going dark loses KPI: {}", rec.incremental_kpi);
    spec.calibration.lift_tests.push(rec.clone());
    let (cal, an) = roi_ch0(&spec, &sim);
    eprintln!("truth {truth:.4}; uncalibrated {free:?}; calibrated {cal:?}; lift {:?}", an.lift_tests);
    assert!(cal.sd < 0.8 * free.sd, "calibration should narrow the ROI posterior: {cal:?} vs {free:?}");
    assert!(cal.q05 <= truth && truth <= cal.q95, "calibrated interval misses the truth {truth}: {cal:?}");
    // the fitted model reproduces the experiment within its standard error (×3)
    let l = &an.lift_tests[0];
    assert!((l.implied.mean - rec.incremental_kpi).abs() < 3.0 * rec.standard_error, "{l:?}");
}

#[test]
fn an_roi_readout_becomes_a_prior_that_pulls_the_posterior() {
    let sim = sim();
    let truth = sim.true_roi[0];
    let (free, _) = roi_ch0(&sim.spec, &sim);
    // an experiment that says ROI = 1.3 × truth with a 5 % standard error: the posterior must move
    // most of the way there (the data alone are much less precise)
    let mut spec = sim.spec.clone();
    let readout = 1.3 * truth;
    spec.calibration.roi_priors.push(RoiPriorRecord {
        channel: "ch0".into(),
        mean: readout,
        standard_error: 0.05 * readout,
    });
    let (cal, _) = roi_ch0(&spec, &sim);
    eprintln!("truth {truth:.4}; uncalibrated {free:?}; with ROI prior at {readout:.4}: {cal:?}");
    assert!((cal.mean - readout).abs() < (free.mean - readout).abs(), "{cal:?} vs {free:?}");
    assert!(cal.sd < free.sd);
}
