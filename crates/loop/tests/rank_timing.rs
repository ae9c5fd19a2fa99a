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
