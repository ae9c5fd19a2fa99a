//! The simulated world's premise, checked with the real MMM: where spend follows the demand the
//! model cannot see, the observational fit is biased in the stated direction (search, whose spend
//! loads positively on demand, over-credited; social, loading negatively, under-credited); without
//! confounding the truth lies inside the fit's 90 % intervals.
//!
//! Measured (2026-11-30, quick Laplace fits, 2 starts, 200 draws; demo world, truth tv 1.5,
//! search 2.0, social 1.0, display 0.7):
//!
//! | seed | κ | tv | search | social | display |
//! |---|---|---|---|---|---|
//! | 20261130 | 0 | 1.70 ± 0.09 | 2.47 ± 1.92 | 1.48 ± 1.03 | 1.56 ± 1.21 |
//! | 20261130 | 1 | 1.53 ± 0.07 | 3.74 ± 0.54 | 0.64 ± 0.49 | 1.53 ± 1.00 |
//! | 1 | 0 | 1.79 ± 0.06 | 1.10 ± 0.41 | 1.40 ± 0.96 | 1.33 ± 1.29 |
//! | 1 | 1 | 1.56 ± 0.05 | 2.76 ± 0.26 | 0.65 ± 0.69 | 1.49 ± 1.51 |
//! | 2 | 1 | 1.61 ± 0.07 | 5.35 ± 1.23 | 0.64 ± 0.32 | 1.19 ± 1.37 |
//! | 3 | 0 | 1.59 ± 0.07 | 2.30 ± 1.61 | 1.70 ± 1.03 | 1.00 ± 1.00 |
//! | 3 | 1 | 1.55 ± 0.05 | 3.51 ± 0.39 | 0.73 ± 0.71 | 1.25 ± 0.99 |
//!
//! (seed 2, κ = 0: the Laplace fit fails, "negative Hessian not positive definite" along
//! adstock_alpha[display].) Confounded, search is over-credited 1.4–2.7× on every seed and social
//! under-credited on every seed; unconfounded, TV's Laplace interval (sd 0.06–0.09) misses its truth
//! by 1–5 sd on every seed — an overconfident Laplace posterior, not confounding (TV's flights are
//! independent of demand).

use mmloop_loop::world::{World, WorldSpec};
use mmloop_mmm::spec::FitMethod;
use std::path::Path;

/// Posterior mean and sd of each channel's ROI from a quick Laplace fit of the world's history.
fn fit_roi(world: &World) -> Vec<(f64, f64)> {
    try_fit_roi(world).expect("fits")
}

fn try_fit_roi(world: &World) -> Result<Vec<(f64, f64)>, mmloop_mmm::fit::FitError> {
    let path = Path::new("/nonexistent/world.csv");
    let mut spec = world.model_spec(path).unwrap();
    spec.fit.method = FitMethod::Laplace;
    spec.fit.laplace_starts = 2;
    spec.fit.chains = 1;
    spec.fit.draws = 200;
    let data = world.dataset(path);
    let result = mmloop_mmm::fit::fit(&spec, &data)?;
    let a = mmloop_mmm::fit::analyse_fit(&result, &data);
    Ok(a.channels.iter().map(|c| (c.roi.mean, c.roi.sd)).collect())
}

fn world(seed: u64, confounding: f64) -> World {
    World::new(WorldSpec { confounding, ..WorldSpec::demo(seed) }).unwrap()
}

const SEARCH: usize = 1;
const SOCIAL: usize = 2;

#[test]
fn observational_mmm_is_biased_where_spend_follows_hidden_demand_and_not_without() {
    let seed = WorldSpec::default().seed;
    let (confounded, clean) = (world(seed, 1.0), world(seed, 0.0));
    let truth = confounded.true_roi();
    // β is solved per world from the same target ROIs: equal to rounding
    assert!(truth.iter().zip(clean.true_roi()).all(|(a, b)| (a - b).abs() < 1e-12 * a));
    let (c, u) = (fit_roi(&confounded), fit_roi(&clean));
    let report = format!("truth {truth:?}\nconfounded {c:?}\nunconfounded {u:?}");
    // the stated direction: search over-credited beyond 2 posterior sd, social under-credited
    assert!(c[SEARCH].0 > truth[SEARCH] + 2.0 * c[SEARCH].1, "{report}");
    assert!(c[SOCIAL].0 < truth[SOCIAL], "{report}");
    // and it is the confounding that moves them: the same world without it credits search less and
    // social more
    assert!(c[SEARCH].0 > u[SEARCH].0 && c[SOCIAL].0 < u[SOCIAL].0, "{report}");
    // without confounding, both truths lie inside the 90 % intervals (mean ± 1.645 sd)
    for k in [SEARCH, SOCIAL] {
        assert!((u[k].0 - truth[k]).abs() < 1.645 * u[k].1, "channel {k}: {report}");
    }
}

/// The table in the module docs: every seed, both settings. A few seconds per fit.
#[test]
#[ignore = "8 Laplace fits, ~30 s: cargo test -p mmloop-loop --test world -- --ignored --nocapture"]
fn bias_table_over_seeds() {
    for seed in [WorldSpec::default().seed, 1, 2, 3] {
        for k in [0.0, 1.0] {
            let w = world(seed, k);
            match try_fit_roi(&w) {
                Ok(r) => {
                    eprintln!(
                        "seed {seed} κ {k}: {}",
                        r.iter().map(|(m, s)| format!("{m:.2} ± {s:.2}")).collect::<Vec<_>>().join(" | ")
                    );
                    // the stated direction on every confounded fit
                    let truth = w.true_roi();
                    if k > 0.0 {
                        assert!(r[SEARCH].0 > truth[SEARCH] && r[SOCIAL].0 < truth[SOCIAL], "seed {seed}: {r:?}");
                    }
                }
                Err(e) => eprintln!("seed {seed} κ {k}: the Laplace fit failed: {e}"),
            }
        }
    }
}

/// One cycle by hand, measured: the confounded demo world runs a search go-dark in every third geo
/// for 8 weeks (read out by ASCM), and the MMM is refitted by NUTS (2 × 300 + 300) on the longer
/// history without the readout, with its record, and with its reversed record as a lift-test term. (Laplace fails on both: "negative
/// Hessian not positive definite" along intercept_geo_sd.)
///
/// Measured (2026-11-30, under load from other helpers): readout −4.83M ± 1.18M, true lift −4.48M in
/// the window (−4.57M with carry-over), spend change −1.72M. NUTS 70 s / 84 s per fit, max R-hat
/// 1.145 / 1.070, min bulk ESS 11 / 54. ROI (truth tv 1.49, search 2.04, social 1.02, display 0.70):
/// observational 1.53 ± 0.07, 2.41 ± 0.11, 0.14 ± 0.16, 5.87 ± 10.05; calibrated 1.53 ± 0.07,
/// 2.42 ± 0.11, 0.17 ± 0.21, 7.96 ± 13.68 — the readout changes nothing because the fit implies a lift
/// of **0 ± 0** for it: `mmloop_mmm::calibration` counts a record's lift as f(x_data + Δ) − f(x_data),
/// i.e. it takes the data as the no-test state, while the world's data (like any real data after the
/// test) already contains the go-dark, so x_data + Δ clips at zero. With
/// [`mmloop_loop::world::TestRun::reversed_record`] instead (the same readout as the reverse test) the
/// fit implies 5.38M ± 0.25M against the observed +4.83M ± 1.18M (NUTS 75 s, R-hat 1.130, ESS 13):
/// the term now informs the fit, but one readout this noisy moves search only to 2.40 ± 0.10.
/// Printed, not asserted: it measures the calibration code, which lives in the mmm crate.
#[test]
#[ignore = "3 NUTS fits, ~4 min: cargo test -p mmloop-loop --test world -- --ignored --nocapture one_readout"]
fn one_readout_calibrates_search_measured() {
    use mmloop_loop::world::{PlannedTest, ReadoutOptions};
    use mmloop_mmm::pricing::SpendChange;
    let mut w = world(WorldSpec::default().seed, 1.0);
    let geos: Vec<String> = w.geo_names().into_iter().step_by(3).collect();
    let geo_refs: Vec<&str> = geos.iter().map(String::as_str).collect();
    let t = w.weeks();
    let test = PlannedTest::new(&["search"], &geo_refs, t + 1, 8, SpendChange::Multiplier(0.0));
    let runs = w.advance(13, &[test], &ReadoutOptions::with_estimator("ascm")).unwrap();
    let r = &runs[0];
    eprintln!(
        "readout {:.0} ± {:.0} (interval {:.0}..{:.0}); true lift {:.0} in window, {:.0} with carry-over; spend change {:.0}",
        r.record.incremental_kpi,
        r.record.standard_error,
        r.interval.0,
        r.interval.1,
        r.true_lift_in_window,
        r.true_lift_with_carryover,
        r.spend_change
    );
    let path = Path::new("/nonexistent/world.csv");
    let data = w.dataset(path);
    let truth = w.true_roi();
    for mode in ["observational", "record", "reversed record"] {
        let mut spec = w.model_spec(path).unwrap();
        spec.fit.method = FitMethod::Nuts;
        (spec.fit.chains, spec.fit.tune, spec.fit.draws) = (2, 300, 300);
        match mode {
            "record" => spec.calibration.lift_tests.push(r.record.clone()),
            "reversed record" => spec.calibration.lift_tests.push(r.reversed_record()),
            _ => {}
        }
        let t0 = std::time::Instant::now();
        let result = match mmloop_mmm::fit::fit_with(
            &spec,
            &data,
            mmloop_mmm::fit::FitOptions { quiet: true, memory_limit: None },
        ) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{mode}: the fit failed: {e}");
                continue;
            }
        };
        let a = mmloop_mmm::fit::analyse_fit(&result, &data);
        if let Some(d) = result.diagnostics.nuts() {
            eprintln!(
                "   NUTS in {:.0} s: max R-hat {:.3}, min bulk ESS {:.0}, {} divergences",
                t0.elapsed().as_secs_f64(),
                d.max_rhat,
                d.min_ess_bulk,
                d.divergences
            );
        }
        eprintln!(
            "{mode}: {}",
            a.channels
                .iter()
                .zip(&truth)
                .map(|(c, t)| format!("{} {:.2} ± {:.2} (truth {t:.2})", c.name, c.roi.mean, c.roi.sd))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        for l in &a.lift_tests {
            eprintln!("   implied lift of the test {:.0} ± {:.0}", l.implied.mean, l.implied.sd);
            // mmm's convention today (see above): the record of a go-dark inside the data implies
            // nothing, the reversed record implies minus the test's lift. If mmm's lift term learns
            // that the data contains the test, the first assertion fails: use `record` again.
            if mode == "record" {
                assert!(l.implied.mean.abs() < 0.01 * r.record.incremental_kpi.abs(), "{}", l.implied.mean);
            } else {
                let z = (l.implied.mean + r.record.incremental_kpi) / r.record.standard_error;
                assert!(l.implied.mean > 0.0 && z.abs() < 3.0, "{} vs {}", l.implied.mean, -r.record.incremental_kpi);
            }
        }
    }
}

/// The cost of one NUTS fit (2 × (300 + 300)) of the demo and the compact world's history, and its
/// convergence figures. Measured (2026-11-30, under load from other helpers):
///
/// | world | size | time | max R-hat | min bulk ESS | ROI (truth) |
/// |---|---|---|---|---|---|
/// | demo | 12 × 104 × 4 | 72 s | 1.089 | 37 | tv 1.54 ± 0.07 (1.5), search 3.83 ± 0.67 (2.0), social 0.44 ± 0.35 (1.0), display 4.07 ± 8.64 (0.7) |
/// | compact | 8 × 104 × 3 | 42 s | 1.083 | 38 | tv 1.49 ± 0.05 (1.5), search 3.60 ± 0.58 (2.0), social 0.61 ± 0.24 (1.0) |
///
/// Both keep the bias (search over-, social under-credited), asserted here.
#[test]
#[ignore = "2 NUTS fits, ~2 min: cargo test -p mmloop-loop --test world -- --ignored --nocapture nuts_fit_cost"]
fn nuts_fit_cost_demo_vs_compact() {
    for (name, spec) in [("demo", WorldSpec::default()), ("compact", WorldSpec::compact(WorldSpec::default().seed))] {
        let w = World::new(spec).unwrap();
        let path = Path::new("/nonexistent/world.csv");
        let mut spec = w.model_spec(path).unwrap();
        spec.fit.method = FitMethod::Nuts;
        (spec.fit.chains, spec.fit.tune, spec.fit.draws) = (2, 300, 300);
        let data = w.dataset(path);
        let t0 = std::time::Instant::now();
        let result =
            mmloop_mmm::fit::fit_with(&spec, &data, mmloop_mmm::fit::FitOptions { quiet: true, memory_limit: None })
                .expect("fits");
        let a = mmloop_mmm::fit::analyse_fit(&result, &data);
        let d = result.diagnostics.nuts().expect("NUTS");
        eprintln!(
            "{name}: {} geos x {} weeks x {} channels: {:.0} s, max R-hat {:.3}, min bulk ESS {:.0}, {} divergences; ROI {} (truth {:?})",
            data.n_geos(),
            data.n_times(),
            data.n_channels(),
            t0.elapsed().as_secs_f64(),
            d.max_rhat,
            d.min_ess_bulk,
            d.divergences,
            a.channels
                .iter()
                .map(|c| format!("{} {:.2} ± {:.2}", c.name, c.roi.mean, c.roi.sd))
                .collect::<Vec<_>>()
                .join(", "),
            w.true_roi().iter().map(|r| (r * 100.0).round() / 100.0).collect::<Vec<_>>()
        );
        let truth = w.true_roi();
        assert!(a.channels[SEARCH].roi.mean > truth[SEARCH] && a.channels[SOCIAL].roi.mean < truth[SOCIAL]);
    }
}
