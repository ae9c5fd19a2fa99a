//! The simulated panels of `mmloop_mmm::simulate::panel` are what a user's default config fits, and
//! their truth is what such a fit recovers: a Laplace fit of a small panel covers the true ROIs and
//! gets the total media contribution right.

use mmloop_mmm::fit::FitOptions;
use mmloop_mmm::simulate::panel::{PanelOptions, simulate_panel};
use mmloop_mmm::spec::{FitMethod, Pooling};

#[test]
fn laplace_fit_of_a_small_panel_recovers_its_roi_and_media_total() {
    let panel = simulate_panel(PanelOptions { geos: 8, weeks: 104, channels: 3, seed: 3 }).expect("panel");
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut spec, data) = panel.write(dir.path()).expect("the panel loads with its config");
    assert_eq!((data.n_geos(), data.n_times(), data.n_channels()), (8, 104, 3));
    assert!(matches!(spec.pooling, Pooling::Partial { .. }), "the config pools partially, as for any geo data");
    spec.fit.method = FitMethod::Laplace;
    let fit = mmloop_mmm::fit::fit_with(&spec, &data, FitOptions { quiet: true, ..Default::default() }).expect("fits");
    let roi = mmloop_mmm::fit::analyse_channels_checked(&fit, &data).expect("finite figures");
    let mut covered = 0;
    let (mut total_true, mut total_fit) = (0.0, 0.0);
    for (r, t) in roi.iter().zip(&panel.channels) {
        eprintln!("{}: true ROI {:.3}, fitted {:.3} [{:.3}, {:.3}]", r.name, t.roi, r.roi.mean, r.roi.q05, r.roi.q95);
        covered += usize::from(r.roi.q05 <= t.roi && t.roi <= r.roi.q95);
        total_true += t.roi * t.total_spend;
        total_fit += r.contribution.mean;
    }
    // every true ROI inside its 90 % interval (the chance of one miss among 3 calibrated intervals
    // is 27 %, so this seed is a check, not a coverage estimate; the coverage is measured along the
    // scaling axes by examples/scale_fit.rs)
    assert_eq!(covered, 3, "true ROIs inside their 90 % intervals");
    // the media's total contribution is what the data pin down best: within 30 % (measured +21 % on
    // this seed, inside the fit's own uncertainty; a generator that mis-scaled β by population or by
    // the ROI's denominator would be off by a factor)
    let rel = total_fit / total_true - 1.0;
    eprintln!("media total: true {total_true:.0}, fitted {total_fit:.0} ({:+.1} %)", 100.0 * rel);
    assert!(rel.abs() < 0.30, "media total off by {:+.1} %", 100.0 * rel);
}
