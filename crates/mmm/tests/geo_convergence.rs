//! The convergence bar of issue 16 on the shipped geo examples: fitted by NUTS at the example's
//! own settings (4 chains × (1000 warm-up + 1000 draws) unless the config says otherwise), every
//! seed must give max R-hat ≤ 1.01, at most 0.1 % divergent post-warm-up transitions, and min bulk
//! and tail ESS ≥ 400 (on the constrained parameters, as `summary.json` reports them).
//!
//! Run (dev profile; one 20-geo fit is minutes on a loaded 2-core machine):
//! `MMLOOP_GEO_CONFIG=examples/meridian_geo_media.toml MMLOOP_GEO_SEEDS=1,2,3,4,5 nice cargo test -p mmloop-mmm --test geo_convergence -- --ignored --nocapture`
//! (`MMLOOP_GEO_CONFIG` relative to the repository root, default the Meridian 20-geo example;
//! `MMLOOP_GEO_SEEDS` default 1..=5). Each fit's figures are printed before the assertion.
//!
//! Measured with `examples/nuts_profile.rs` (the same fit: the model's default form, the
//! example's settings, chains started around the mode found for the seed), dev profile, nice 12
//! on the 2-core machine at load 7–10 from other work (wall times are upper bounds):
//!
//! | example | seeds | divergences | max R-hat | min bulk / tail ESS | bar |
//! |---|---|---|---|---|---|
//! | PyMC 2-geo (intercepts partially centred, target_accept 0.95) | 1–5 | 2, 0, 3, 1, 0 | ≤ 1.0082 | ≥ 567 / ≥ 505 | met |
//! | PyMC 2-geo, the same at target_accept 0.9 | 1–5, 42 | 5–10 | ≤ 1.006 | ≥ 584 | not met |
//! | PyMC 2-geo, intercepts non-centred (before), target_accept 0.8 | 42, 2 | 149, 132 | 1.007 | 843 / 758 | not met |
//! | Meridian 20-geo, intercepts non-centred (the default, unchanged), target_accept 0.9 | 42, 2 | 28, 62 | 1.008, 1.006 | 305 / 350 (intercept_geo_sd) | not met |
//! | Meridian 20-geo, intercepts by levels (not the default), target_accept 0.9 | 42 (seed 2: unfinished after 1042 s CPU) | 12 | 1.0113 (intercept) | 500 / 237 (intercept_geo_sd) | not met |
//! | Meridian 20-geo, intercepts partially centred w = ½ (not the default) | 42 | 10 | 1.0161 (intercept_geo_sd) | 456 / 326 | not met |
//! | Meridian 20-geo, intercepts partially centred w = ¼ (not the default) | 42 | 45 | 1.0108 | 355 / 210 | not met |
//! | Meridian 20-geo, intercepts integrated out (`model::collapsed`), target_accept 0.9 | 42 | 11 (10 in one chain) | 1.0067 | 358 / 175 (intercept_geo_sd) | not met |
//! | Meridian 20-geo, integrated out, target_accept 0.95 | 42 | 5 | 1.0106 (intercept) | 467 / 308 (intercept_geo_sd) | not met |
//! | Meridian 20-geo, integrated out, dense metric, target_accept 0.9 | 42 | 13 | 1.0084 | 696 / 314 (intercept_geo_sd) | not met |
//! | Meridian 20-geo, integrated out, dense metric, target_accept 0.95 (the default now) | 42 | 0 | 1.0123 (beta_geo_sd[Channel0]) | 475 / 334 (beta_geo_sd[Channel0]) | not met |
//! | the same, through this test | 1, 2 | 3, 3 | 1.0062, 1.0041 | 731 / 502, 479 / 388 (beta_geo_sd[Channel0]) | seed 1 met, seed 2 not (tail ESS) |
//! | the same (the default), `nuts_profile` form_collapse@N | 3, 4, 5 | 0, 1, 911 (909 in the third of 4 chains, stuck at 7 leapfrog steps a draw) | 1.0051, 1.0059, 1.5525 (intercept_geo_sd) | 527 / 672, 883 / 812 (beta_geo_sd[Channel0]), 7 / 12 | met on 3, 4; seed 5 far from it |
//! | Meridian 20-geo, the default with min_tree_depth 6 (not the default) | 2 | 9 | 1.0027 | 1072 / 722 (intercept_geo_sd); beta_geo_sd[Channel0] 1133 / 1452 | not met (divergences); 95–99 steps a draw, 227 s CPU |
//! | Meridian 20-geo, the default with target_accept 0.99 (not the default) | 2 | 10 | 1.0054 | 546 / 272 (intercept_geo_sd) | not met; 60–62 steps a draw, 169 s CPU |
//! | Meridian 20-geo, the default with the Hill slope prior LogNormal(0, 0.2) instead of (0, 0.5) (Meridian fixes it at 1; not the default) | 1–5 | 26 (24 in one chain), 4, 1, 0, 1 | 1.0102 (beta_geo_sd[Channel1]), 1.0048, 1.0066, 1.0038, 1.0046 | 458 / 172 (intercept_geo_sd), 837 / 662, 687 / 545, 999 / 870, 924 / 941 | met on 2–5; seed 1's divergences at small sat_ec[Channel1] (−2.5 sd), large roi[Channel1] |
//! | Meridian 40-geo, intercepts integrated out, dense metric, target_accept 0.95 (its config now) | 1–5 | 0, 0, 0, 0, 0 | 1.0087 (beta_geo_sd[Channel0]), 1.0037, 1.0040, 1.0058, 1.0048 | 742 / 723 (beta_geo_sd[Channel0], beta_geo_z[Channel4,Geo16]), 803 / 632 (beta_geo_sd[Channel0]), 978 / 780, 976 / 965, 838 / 824 | met on all five; 59–61 steps a draw, 338–362 s CPU |
//! | PyMC 2-geo, intercepts integrated out (not the default: fewer than 3 geos), 0.95 | 1–5 | 0, 0, 0, 2, 1 | 1.0035–1.0128 (seed 5, a drawn intercept) | seed 4 tail 368 (intercept) | not met |
//! | `data/demo_geo` (10 geos), intercepts sampled jointly, non-centred, 0.8, diag (before) | 1 | 273 | 1.0240 | 297 / 158 (intercept_geo_z) | not met |
//! | `data/demo_geo`, integrated out, 0.8, diag | 1 | 39 | 1.0096 | 427 / 171 (intercept_geo_sd) | not met |
//! | `data/demo_geo`, integrated out, dense metric, 0.95 (its config now) | 1 | 0 | 1.0046 | 826 / 686 (beta_geo_sd[search]) | met (56 s wall) |
//! | the same, through this test | 2, 3, 4, 5 | 25, 1, 1, 1 | 1.0108 (seed 2, sat_ec[search]), ≤ 1.0068 | 388 / 193 (seed 2, intercept_geo_sd), ≥ 626 / 505 | met on 3, 4, 5; not on 2 (26–68 s wall) |
//! | `data/demo_geo`, the same at target_accept 0.99 (not the default) | 2 | 2 | 1.0078 (beta_geo_sd[search]) | 837 / 301 (intercept_geo_sd) | not met (tail ESS); 60–64 steps a draw, 54 s CPU |
//! | `data/demo_geo`, the same with the social channel's geo effects centred (κ = 1.43 > 1; nuts_profile form_collapseauto, not the default) | 2 | 24 (at small beta_geo_sd[social]) | 1.0308 (beta_geo_sd[social]) | 202 / 304 | not met, worse |
//! | Meridian 20-geo, the Hill slope ≈ 1 (LogNormal(0, 0.01), standing in for a fixed slope before `slope = 1` existed), through this test | 1–5 | 17, 2, 0, 2, 4 | 1.0054, 1.0038, 1.0036, 1.0093, 1.0036 | 790 / 315 (intercept_geo_sd), 1022 / 871, 814 / 588, 959 / 910, 1127 / 1034 | met on 2–5, not on 1 (tail ESS, 17 divergences); 31 steps a draw, 88–96 s CPU |
//! | Meridian 20-geo, `slope = 1, ec_floor_quantile = 0.1` (its config now: Meridian's fixed slope, ec ≥ the 10th percentile of the non-zero scaled media, 0.40–0.53), through this test | 1–5 | 0, 0, 0, 0, 0 | 1.0067, 1.0035, 1.0049, 1.0048, 1.0052 | 783 / 733, 961 / 875, 762 / 447 (beta_geo_sd[Channel0]), 1131 / 876, 873 / 893 | met on all five; 31 steps a draw, 84–100 s CPU |
//! | Meridian 20-geo, `slope = 1` without the floor, through this test | 1 | 2 | 1.0061 | 632 / 240 (beta_geo_sd[Channel2]) | not met (tail ESS); 87 s CPU |
//! | Meridian 40-geo, `slope = 1, ec_floor_quantile = 0.1` (its config now: ec ≥ 0.14–0.38), through this test | 1–5 | 0, 0, 0, 0, 0 | 1.0063, 1.0046, 1.0044, 1.0069, 1.0053 | 741 / 643 (beta_geo_sd[Channel0]), 725 / 795, 894 / 606, 1200 / 718, 993 / 726 | met on all five; 57–59 steps a draw, 342–344 s CPU (seeds 1, 2) |
//! | Meridian national (not a geo model; target_accept 0.8, diag), sampled slope (its config) / `slope = 1` / `slope = 1, ec_floor_quantile = 0.1`, through this test | 1–5 | 1, 3, 2, 0, 8 / 10, 8, 9, 4, 4 / 6, 1, 8, 6, 6 | ≤ 1.0052 | ≥ 2543 / 1380 | the sampled slope kept there; ~4 s CPU |
//! | `data/demo_geo`, the Hill slope ≈ 1 (LogNormal(0, 0.01); not adopted: the demo was simulated with slopes 1–1.5) | 2 | 0 | 1.0046 | 1147 / 842 | met |
//! | `data/demo_geo`, ec's lower bound 0.3 instead of 0.1 (a fixed bound, not adopted) | 2 | 0 | 1.0044 | 1283 / 744 | met |
//! | `data/demo_geo`, `ec_floor_quantile = 0.1` (its config now: ec ≥ 0.58, 0.73, 0.49 for tv, search, social), through this test | 1–5 | 0, 0, 0, 4, 0 | 1.0043, 1.0027, 1.0044, 1.0041, 1.0055 | 1040 / 1059, 1330 / 914, 1214 / 909, 1150 / 1179, 1061 / 895 | met on all five (seed 4 at the edge: 4 of 4000); 31 steps a draw, 24–26 s CPU |
//! | Meridian 20-geo, its config, release build with the held slope's arithmetic form (a29bde3 / 24d672e: the same density to 2.5e-16, other bits), `mmloop fit --method nuts` | 1–5 | 2, 15, 8, 5, 2 | 1.0041, 1.0114 (beta_geo_sd[Channel2]), 1.0057, 1.0056, 1.0043 | 834 / 663, 425 / 146 (intercept_geo_sd), 774 / 489, 877 / 550, 766 / 679 | met on 1 and 5 only; 22.8–31.6 s wall, 41–53 s CPU a fit |
//! | the same, build 094d91b (before), release | 2, 3, 4, 6, 7 | 0, 0, 0, 9, 1 | ≤ 1.0074 | ≥ 762 / 447 | not met on seed 6 (56–75 s wall, 99–131 s CPU a fit) |
//! | Meridian 20-geo with `ec_floor_quantile = 0.2` (not the config), release, 24d672e | 1–6 | 0, 1, 15, 0, 0, 2 | ≤ 1.0072 | ≥ 548 / 430 | not met on seed 3 (17 of the 18 divergent draws again in intercept_geo_sd's lowest 2 %); 26–29 s wall |
//! | Meridian 40-geo, its config, release, 24d672e, `mmloop fit --method nuts` | 1–5 | 0, 0, 0, 0, 0 | 1.0039, 1.0059, 1.0056, 1.0043, 1.0061 | 1107 / 767, 1073 / 633, 913 / 555, 959 / 556, 932 / 525 (beta_geo_sd[Channel0], beta_geo_z[Channel4,·]) | met; 90–106 s wall, 167–194 s CPU a fit |
//! | Meridian 40-geo at target_accept 0.85 (not the config), release, a29bde3 | 1–5 | 0, 0, 0, 0, 0 | ≤ 1.0088 | 640 / 499, 768 / 479, 682 / 288, 837 / 474, 604 / 390 | not met on 3 and 5 (tail ESS, beta_geo_z[Channel4,·]); 31 steps a draw, 55.5–65.8 s wall |
//! | Meridian 40-geo at target_accept 0.9 (not the config), release, a29bde3 | 1 | 0 | 1.0069 | 853 / 435 | met, 60.2 s wall, 31–33 steps a draw |
//! | Meridian 20-geo with σ_a ≈ 1 (intercept_geo_sd ~ LogNormal(0, 0.01), standing in for a held sd; release, 325bafc) | 1–5 | 0, 0, 0, 0, 0 | ≤ 1.0044 | ≥ 1343 / 781 | met on all five; 25.0–28.7 s wall |
//! | Meridian 20-geo, its config now (`intercept_geo_sd = 1`: independent geo intercepts, Meridian's form), release, `mmloop fit --method nuts` | 1–7 | 0, 0, 0, 0, 0, 0, 0 | 1.0041, 1.0035, 1.0072, 1.0035, 1.0041, 1.0048, 1.0043 | 1621 / 926, 1357 / 1206, 1928 / 1193, 1947 / 1739, 1681 / 670, 1435 / 1106, 1758 / 596 (adstock_alpha[Channel1] the slowest in the tail) | met on all seven; 31 steps a draw, 24.5–29.9 s wall, 44–50 s CPU a fit |
//! | Meridian 40-geo with σ_a ≈ 1 as above, release | 1 | 0 | 1.0049 | 955 / 839 | met; 58–61 steps a draw (as pooled): no faster |
//! | Meridian 40-geo, σ_a held at 1 and target_accept 0.85 (not the config), release | 3 | 0 | 1.0103 (beta_geo_sd[Channel0]) | 645 / 489 | not met (R-hat); 31 steps a draw, 71.8 s wall |
//! | PyMC 2-geo, pooled and partially centred (its config before), release, `mmloop fit` | 1–5 | 2, 0, 1, 6, 6 | ≤ 1.0076 | ≥ 592 / 638 | not met on 4 and 5 (the dev-profile row above: 2, 0, 3, 1, 0) |
//! | PyMC 2-geo, its config now (`intercept_geo_sd = 2`, PyMC-Marketing's independent Normal(0, 2) intercepts; dense metric), release | 1–5 | 0, 1, 0, 0, 2 | ≤ 1.0066 | ≥ 1321 / 906 | met on all five; 2.6–3.4 s wall (diagonal metric: 0 divergences, R-hat up to 1.041, bulk ESS 221 on the intercept) |
//! | `data/demo_geo`, its config, release, `mmloop fit` | 1–5 | 0, 0, 0, 4, 0 | ≤ 1.0055 | ≥ 1040 / 895 | met (seed 4 at the edge); 20–21 s wall, 32–34 s CPU |
//! | Meridian 40-geo, σ_a held at 1 and target_accept 0.9 (not the config), release | 3, 5, 1 | 0, 0, 0 | 1.0140, 1.0067, 1.0097 | 440 / 166, 788 / 479, 430 / 155 (beta_geo_z[Channel4,Geo39]) | not met on 3 and 1 (tail ESS); 32–36 steps a draw, 74–76 s wall with a Laplace fit beside it |
//! | Meridian 40-geo, its config now (`intercept_geo_sd = 1`), release, `mmloop fit --method nuts` | 1–5 | 0, 0, 0, 0, 0 | 1.0045, 1.0063, 1.0064, 1.0043, 1.0039 | 831 / 647, 1044 / 891, 1219 / 846, 1223 / 857, 1202 / 759 (beta_geo_sd[Channel0], beta_geo_z[Channel4,·]) | met on all five; 56–61 steps a draw, 89.6–100.4 s wall, 164–183 s CPU a fit |
//!
//! Where the 20-geo divergences were: of the 49 divergent draws in the pooled 20-geo rows above,
//! 48 lie in intercept_geo_sd's lowest 2.5 % (its posterior's left tail), with beta_geo_sd high and
//! sat_ec low beside them — the region where a channel stands in for the geo intercepts (below),
//! narrowed by the ec floor but not removed. Which seeds met the bar moved with the last bits of the
//! arithmetic (the two builds' densities agree to 2.5e-16), so "met on seeds 1–5" was not a robust
//! statement. Meridian's geo intercepts are not pooled (`tau_g_excl_baseline ~ Normal(0, 5)` each);
//! holding σ_a (`[baseline] intercept_geo_sd = 1`) takes the region out of the model, and the
//! divergences went on every seed measured, with the same ROIs.
//!
//! With the intercepts integrated out the divergences at small intercept_geo_sd go (0–3 with the
//! dense metric at 0.95, against 28–62) and a draw costs 31 leapfrog steps instead of 65–79. What
//! is left on the 20-geo example: (1) the media pooling scale beta_geo_sd[Channel0] mixes slowly
//! (κ = 0.065: non-centred is the right form; its posterior is skewed, q05 0.05, q95 0.59): its ESS
//! grows with the trajectory length (1133 / 1452 at min_tree_depth 6 against 479 / 388), so the
//! U-turn stops before log τ has crossed its posterior; (2) the longer trajectories then reach a
//! region where the Hill curve of Channel0 or Channel1 is nearly flat over the spend the data hold
//! (small sat_slope or sat_ec, large roi, large beta_geo_sd, small intercept_geo_sd): the channel
//! adds a near-constant per geo and stands in for the geo intercepts. A smaller step does not help
//! there (target_accept 0.99: step 0.08–0.10, still 10 divergences); on seed 5 one chain sticks in
//! it at the default settings. A tighter slope prior removes the slope end of that region (seeds
//! 2–5 met) but seed 1 then finds it through a small sat_ec. The fix is in the model: the slope
//! fixed at 1 (Meridian's default) and ec's prior truncated below at the 10th percentile of the
//! channel's non-zero scaled media (`ec_floor_quantile`, `mmloop_mmm::transforms::ec_floor`) take
//! both ends of the region away, and every seed meets the bar (the rows above, measured through
//! this test; CPU seconds by `/usr/bin/time`, one fit at a time). Figures measured with `nuts_profile`
//! (the same fit: the model's default form, the example's settings, chains around the mode for the
//! seed) and this test, dev profile, nice 12 at load 7–11 (0.3–0.5 of one core: wall times are
//! upper bounds; CPU seconds are the comparable figure).
//!
//! This test itself, run on the PyMC 2-geo example
//! (`MMLOOP_GEO_CONFIG=examples/pymc_mmm_multidimensional_example.toml`), passes and prints the
//! figures of the first row (the fits are deterministic under the seed), 3–4 s wall per fit. With
//! the examples' Hill settings now (fixed slope and ec floor on the Meridian examples, ec floor on
//! the demo) it passes on the Meridian 20-geo example (the default) and on `data/demo_geo`, seeds
//! 1–5 each; before them it failed on the 20-geo seeds 2 and 5 and the demo's seed 2. With the
//! Meridian examples' geo intercepts held (`intercept_geo_sd = 1`) the 20-geo example meets the bar
//! on seeds 1–7 and the 40-geo on 1–5 (`mmloop fit` in release, the rows above).

use mmloop_mmm::Dataset;
use mmloop_mmm::config::load_config;
use mmloop_mmm::fitdir::Diagnostics;
use std::path::PathBuf;

/// The bar.
const MAX_RHAT: f64 = 1.01;
const MAX_DIVERGENT_SHARE: f64 = 0.001;
const MIN_ESS: f64 = 400.0;

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
#[ignore = "minutes per fit (~90 s CPU a 20-geo fit); passes on the Meridian 20-geo example (the default) and data/demo_geo on seeds 1-5 and on the PyMC 2-geo example: MMLOOP_GEO_CONFIG=examples/meridian_geo_media.toml cargo test -p mmloop-mmm --test geo_convergence -- --ignored --nocapture"]
fn geo_example_meets_the_convergence_bar_on_every_seed() {
    let config =
        root().join(std::env::var("MMLOOP_GEO_CONFIG").unwrap_or_else(|_| "examples/meridian_geo_media.toml".into()));
    let seeds: Vec<u64> = std::env::var("MMLOOP_GEO_SEEDS")
        .map(|s| s.split(',').map(|v| v.trim().parse().expect("MMLOOP_GEO_SEEDS: comma-separated integers")).collect())
        .unwrap_or_else(|_| (1..=5).collect());
    let mut failures = Vec::new();
    for seed in seeds {
        let mut spec = load_config(&config).unwrap_or_else(|e| panic!("{}: {e}", config.display()));
        spec.fit.method = mmloop_mmm::spec::FitMethod::Nuts;
        spec.fit.seed = seed;
        let data = Dataset::load(&spec).unwrap();
        let t0 = std::time::Instant::now();
        let options = mmloop_mmm::fit::FitOptions { quiet: true, ..Default::default() };
        let fit =
            mmloop_mmm::fit::fit_with(&spec, &data, options).unwrap_or_else(|e| panic!("{}: {e}", config.display()));
        let secs = t0.elapsed().as_secs_f64();
        let Diagnostics::Nuts(d) = &fit.diagnostics else { panic!("a NUTS fit reports NUTS diagnostics") };
        let transitions = (d.chains * d.draws_per_chain) as f64;
        let steps = d.mean_n_steps.iter().sum::<f64>() / d.mean_n_steps.len().max(1) as f64;
        let line = format!(
            "{} seed {seed}: {secs:.0} s wall; max R-hat {:.4} ({:?}), min bulk ESS {:.0} ({:?}), min tail ESS {:.0} ({:?}), \
             {} divergences of {transitions}, {steps:.1} leapfrog steps a draw",
            config.display(),
            d.max_rhat,
            d.max_rhat_param,
            d.min_ess_bulk,
            d.min_ess_bulk_param,
            d.min_ess_tail,
            d.min_ess_tail_param,
            d.divergences
        );
        eprintln!("{line}");
        let ok = d.max_rhat <= MAX_RHAT
            && (d.divergences as f64) <= MAX_DIVERGENT_SHARE * transitions
            && d.min_ess_bulk >= MIN_ESS
            && d.min_ess_tail >= MIN_ESS;
        if !ok {
            failures.push(line);
        }
    }
    assert!(failures.is_empty(), "below the bar:\n{}", failures.join("\n"));
}
