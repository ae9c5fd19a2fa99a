//! Wall time of ranking 10 national candidates on the geo demo (Laplace fit, Hill saturation: S-shaped
//! response curves), the case the separable solver's grid programme is for.
//!
//! Measured 2026-11-30 on the shared 2-core machine under load from other builds (so only the ratio
//! means much): 10 candidates, 1000 draws, default settings: 256.2 s with rank's FitDecision on the
//! general optimiser (capped at 40 Newton steps) vs 13.2 s through SeparableBudget's grid programme
//! (≈ 19×); the same ranking order, EVOIs equal to ≤ 4·10⁻⁵ relative (the programme's a little higher).

use mmloop_geolift::NoProgress;
use mmloop_loop::rank::{self, CandidateSpec, RankSettings, StatedPrecision};
use mmloop_mmm::Dataset;
use mmloop_mmm::config::load_config;
use mmloop_mmm::optimize::FittedModel;
use mmloop_mmm::spec::FitMethod;
use std::path::Path;
use std::time::Instant;

#[test]
#[ignore = "a Laplace fit of the geo demo and a full ranking, a minute or more; run with: \
            RANK_READOUTS=400 cargo test -p mmloop-loop --test rank_timing -- --ignored --nocapture"]
fn time_ranking_ten_candidates_on_the_geo_demo() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut spec = load_config(root.join("data/demo_geo.toml")).unwrap();
    spec.fit.method = FitMethod::Laplace;
    spec.fit.draws = 1000;
    spec.data.path = std::fs::canonicalize(&spec.data.path).unwrap();
    let data = Dataset::load(&spec).unwrap();
    let result = mmloop_mmm::fit::fit(&spec, &data).unwrap();
    let fit = FittedModel::from_fit(&spec, &data, &result).unwrap();
    let cand_spec = CandidateSpec { durations: vec![4, 8], ..Default::default() };
    let mut cands = rank::stated_candidates(&fit, &StatedPrecision::default(), &cand_spec).unwrap();
    cands.truncate(10);
    let mut settings = RankSettings::default();
    if let Ok(r) = std::env::var("RANK_READOUTS") {
        settings.evoi.n_readouts = r.parse().expect("RANK_READOUTS: a count of readouts");
    }
    let start = Instant::now();
    let ranking = rank::rank(&fit, &cands, &settings, &NoProgress).unwrap();
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "ranked {} candidates ({} draws, {} readouts) in {secs:.1} s; top: {} (EVOI {:.1}, net {:.1})",
        ranking.candidates.len(),
        ranking.n_draws,
        settings.evoi.n_readouts,
        ranking.candidates[0].name,
        ranking.candidates[0].evoi.evoi,
        ranking.candidates[0].net_value
    );
    for c in &ranking.candidates {
        eprintln!("  {:>2} {:<40} EVOI {:>12.1} net {:>12.1}", c.rank, c.name, c.evoi.evoi, c.net_value);
    }
    assert_eq!(ranking.candidates.len(), cands.len());
}

/// Issue 12: a ranking a user can act on does not hinge on the seed. On a real fit (the national
/// demo, NUTS 4 × 1000 draws), ranking the stated-precision candidates at the default settings with
/// 10 seeds: the greedy portfolio is the same set every time, and each candidate's EVOI varies
/// across seeds by at most a few per cent (coefficient of variation ≤ 5 % for every candidate whose
/// EVOI is at least 1 % of the largest; smaller ones are reported, since a relative spread of a
/// value near 0 means nothing).
///
/// Before the stop rule against Monte-Carlo error this failed (measured 2026-11-30, load 11): the
/// portfolio was one tv heavy-up (4 periods on 6 seeds, 8 on 4) whose EVOI is ≈ 0 (< 0.05) and whose
/// cost is 0 (a heavy-up expected to pay for itself): "marginal net value > 0" picked noise. Now a
/// pick must beat the materiality floor (1 % of the EVPI) by 2 Monte-Carlo errors
/// ([`mmloop_loop::value::portfolio`]).
///
/// Measured 2026-11-30 (load ≈ 7 on the shared 2-core machine, 194 s in all, 11–19 s a ranking):
/// the portfolio is empty on all 10 seeds, and says why: the best test, a tv heavy-up (cost 0,
/// EVOI < 0.05), is below the floor of 13.6–17.0 (EVPI 1361–1698 by seed); every candidate with a
/// non-negligible EVOI costs 86–480× what it is worth (search heavy-ups 6.6 / 10.1 against 566 /
/// 1242, social go-dark 57 / 74 against 8194 / 24 976, search go-dark 192 / 144 against 28 420 /
/// 69 115), so "no test this cycle" is the answer, and it does not hinge on the seed. EVOIs over
/// the seeds: search go-dark 116.8 and 144.4 (both Gaussian-linear, cv 0.00 %), social go-dark 57.4
/// (0.12 %) and 74.5 (0.01 %), search heavy-ups 6.6 (1.49 %) and 10.1 (2.29 %; 6.6–7.7 % with one
/// shifted readout grid, now the mean of 8). A first run with the 8 grids still failed at 21.6 % on
/// search go-dark 4p: its unhealthy-weight share (4.7–5.1 % on the random grids) straddled the 5 %
/// tolerance, so its estimator switched by seed (importance 193, Gaussian-linear 117); the share is
/// now taken on a fixed grid four times finer, where it is above 5 % (the second run, 23 s on a
/// quieter machine, gave the figures above). With the defaults cut to 4 grids and a health grid
/// twice finer (for `rank`'s 2 s benchmark; measured 2026-11-30, load ≈ 2, 0.3–0.4 s a ranking): the
/// same empty portfolio on all 10 seeds, search go-dark 116.8 / 144.3 (cv 0.00 / 0.01 %), social
/// go-dark 57.4 / 74.4 (0.12 / 0.06 %), search heavy-ups 6.6 / 10.3 (3.39 / 3.28 %).
#[test]
#[ignore = "a NUTS fit and 10 rankings, ~3 min; run with: \
            cargo test -p mmloop-loop --test rank_timing -- --ignored --nocapture seed"]
fn the_portfolio_and_each_evoi_are_stable_over_ten_seeds_on_a_real_fit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut spec = load_config(root.join("data/demo_national.toml")).unwrap();
    spec.fit.chains = 4;
    spec.fit.tune = 500;
    spec.fit.draws = 1000;
    spec.data.path = std::fs::canonicalize(&spec.data.path).unwrap();
    let data = Dataset::load(&spec).unwrap();
    let result = mmloop_mmm::fit::fit(&spec, &data).unwrap();
    let fit = FittedModel::from_fit(&spec, &data, &result).unwrap();
    let cands = rank::stated_candidates(&fit, &StatedPrecision::default(), &CandidateSpec::default()).unwrap();
    let mut portfolios = Vec::new();
    let mut evois: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for seed in 0..10u64 {
        let settings = RankSettings {
            evoi: mmloop_loop::value::EvoiSettings { seed, ..Default::default() },
            ..Default::default()
        };
        let start = Instant::now();
        let r = rank::rank(&fit, &cands, &settings, &NoProgress).unwrap();
        let mut picks: Vec<String> =
            r.portfolio.greedy.picks.iter().map(|p| r.candidates[p.candidate].name.clone()).collect();
        picks.sort();
        eprintln!("seed {seed}: {:.1} s, portfolio {picks:?}", start.elapsed().as_secs_f64());
        for p in &r.portfolio.greedy.picks {
            eprintln!(
                "    {}: marginal net {:.2} ± {:.2} > threshold {:.2}{}",
                p.name,
                p.marginal_net,
                p.mcse,
                p.threshold,
                if p.tied_with.is_empty() { String::new() } else { format!(" (tied with {:?})", p.tied_with) }
            );
        }
        eprintln!(
            "    EVPI {:.1}, floor {:.2}; stopped: {}",
            r.evpi.evpi, r.portfolio.constraints.net_floor, r.portfolio.greedy.stop_reason
        );
        if seed == 0 {
            for c in &r.candidates {
                eprintln!(
                    "    {:<40} EVOI {:>9.2} ± {:>6.2}, cost {:>9.2}, net {:>9.2}",
                    c.name, c.evoi.evoi, c.evoi.mcse, c.cost.cost, c.net_value
                );
            }
        }
        portfolios.push(picks);
        for c in &r.candidates {
            evois.entry(c.name.clone()).or_default().push(c.evoi.evoi);
        }
    }
    let largest = evois.values().flatten().cloned().fold(0.0, f64::max);
    let mut worst: f64 = 0.0;
    for (name, v) in &evois {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt();
        let cv = if m > 0.0 { sd / m } else { 0.0 };
        let judged = m >= 0.01 * largest;
        eprintln!(
            "  {name:<40} EVOI {m:>12.1} ± {sd:>9.1} (cv {:>5.2} %){}",
            100.0 * cv,
            if judged { "" } else { " (≈ 0)" }
        );
        if judged {
            worst = worst.max(cv);
        }
    }
    eprintln!("worst coefficient of variation of a non-negligible EVOI: {:.2} %", 100.0 * worst);
    assert!(portfolios.iter().all(|p| p == &portfolios[0]), "the portfolio changes with the seed: {portfolios:?}");
    assert!(worst <= 0.05, "an EVOI varies {:.1} % across seeds", 100.0 * worst);
}
