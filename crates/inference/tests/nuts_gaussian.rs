//! NUTS correctness on densities with known answers, judged by Monte Carlo error: every mean, sd,
//! 5% and 95% quantile within 4 MCSE of the truth, R-hat < 1.01, bulk/tail ESS > 400, no
//! divergences.
//!
//! Seeds are fixed, so the suite is deterministic. Each check is a ~4σ test and the suite makes
//! ~560 of them; over 100 seeds the standardised errors `(estimate - truth) / MCSE` had sd 1.05–1.12
//! (the MCSE estimates are approximate, the quantile ones most), so with another seed an
//! occasional single check near 4 MCSE is expected and is not by itself evidence of a bug.

#![allow(clippy::neg_cmp_op_on_partial_ord)] // written so that NaN fails the check

mod common;

use common::{Gaussian, IidNormal, LinearRegression, check_convergence, check_normal_marginal, summaries};
use mmloop_inference::{LogDensity, MassMatrix, NutsSettings, Posterior, sample_nuts};

fn settings(seed: u64) -> NutsSettings {
    NutsSettings { seed, quiet: true, ..NutsSettings::default() }
}

/// Sample and check every coordinate against its exact normal marginal.
fn assert_correct(density: &dyn LogDensity, settings: &NutsSettings, means: &[f64], sds: &[f64]) -> Posterior {
    let posterior = sample_nuts(density, settings).expect("sampling failed");
    let params = summaries(&posterior);
    let mut problems = check_convergence(&posterior, &params);
    for (j, p) in params.iter().enumerate() {
        problems.extend(check_normal_marginal(p, means[j], sds[j], 4.0));
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    posterior
}

#[test]
fn iid_normal_1d() {
    let d = IidNormal { mu: vec![3.0], sigma: vec![2.0] };
    assert_correct(&d, &settings(1), &[3.0], &[2.0]);
}

#[test]
fn iid_normal_10d() {
    let mu: Vec<f64> = (0..10).map(|j| j as f64 - 4.5).collect();
    let sigma: Vec<f64> = (0..10).map(|j| 0.1 * 1.5f64.powi(j)).collect();
    let d = IidNormal { mu: mu.clone(), sigma: sigma.clone() };
    assert_correct(&d, &settings(2), &mu, &sigma);
}

#[test]
fn iid_normal_100d() {
    let d = IidNormal { mu: vec![1.0; 100], sigma: vec![1.0; 100] };
    assert_correct(&d, &NutsSettings { tune: 500, draws: 500, ..settings(3) }, &d.mu, &d.sigma);
}

/// The 100-d case at the full default length (the fast variant above uses 500 + 500).
#[test]
#[ignore = "full length (the suite runs 500 + 500): cargo test -p mmloop-inference --test nuts_gaussian -- --ignored iid_normal_100d_full_length"]
fn iid_normal_100d_full_length() {
    let d = IidNormal { mu: vec![-2.0; 100], sigma: vec![3.0; 100] };
    assert_correct(&d, &settings(31), &d.mu, &d.sigma);
}

#[test]
fn correlated_gaussian_2d() {
    let g = Gaussian::ar1(&[1.0, 10.0], 0.95);
    let sds: Vec<f64> = (0..2).map(|j| g.cov[j][j].sqrt()).collect();
    assert_correct(&g, &settings(4), &g.mean.clone(), &sds);
}

#[test]
fn correlated_gaussian_10d() {
    let sds: Vec<f64> = (0..10).map(|j| 0.5 + 0.25 * j as f64).collect();
    let g = Gaussian::ar1(&sds, 0.9);
    assert_correct(&g, &settings(5), &g.mean.clone(), &sds);
}

/// The dense metric (two-stage warm-up, whitened sampling) on a 10-d AR(1) Gaussian with ρ = 0.99:
/// marginals within 4 MCSE, and under half the leapfrog steps per draw the diagonal metric needs
/// there (5.6 vs 15.8 with this seed: the diagonal metric cannot follow the correlation).
#[test]
fn dense_metric_samples_a_strongly_correlated_gaussian() {
    let sds: Vec<f64> = (0..10).map(|j| 0.5 + 0.25 * j as f64).collect();
    let g = Gaussian::ar1(&sds, 0.99);
    let mean = g.mean.clone();
    let dense = NutsSettings { mass_matrix: MassMatrix::Dense, ..settings(11) };
    let posterior = assert_correct(&g, &dense, &mean, &sds);
    let steps = |p: &Posterior| {
        p.sample_stats.iter().flatten().map(|s| s.n_steps as f64).sum::<f64>()
            / p.n_draws() as f64
            / p.n_chains() as f64
    };
    let diag = sample_nuts(&g, &settings(11)).unwrap();
    assert!(
        steps(&posterior) * 2.0 < steps(&diag),
        "dense {:.1} vs diagonal {:.1} leapfrog steps per draw",
        steps(&posterior),
        steps(&diag)
    );
    // the reported metric is in the model's coordinates: ≈ the marginal variances
    for w in &posterior.warmup {
        let m = w.inv_mass_diag.as_ref().expect("metric diagonal");
        for (j, v) in m.iter().enumerate() {
            let ratio = v / (sds[j] * sds[j]);
            assert!(
                (0.5..2.0).contains(&ratio),
                "chain {} coordinate {j}: metric {v} vs variance {}",
                w.chain,
                sds[j] * sds[j]
            );
        }
        assert_eq!(w.tune, 1000);
    }
}

/// `min_tree_depth` keeps the target (marginals within 4 MCSE) and every trajectory has at least
/// 2^min_tree_depth steps.
#[test]
fn min_tree_depth_keeps_the_target_and_lengthens_trajectories() {
    let g = Gaussian::ar1(&[1.0, 2.0, 0.5], 0.5);
    let mean = g.mean.clone();
    let sds: Vec<f64> = (0..3).map(|j| g.cov[j][j].sqrt()).collect();
    let s = NutsSettings { min_tree_depth: 5, ..settings(12) };
    let posterior = assert_correct(&g, &s, &mean, &sds);
    assert!(posterior.sample_stats.iter().flatten().all(|d| d.tree_depth >= 5 && d.n_steps >= 31));
}

#[test]
fn conjugate_linear_regression() {
    let model = LinearRegression::synthetic(50, 4);
    let (mean, cov) = model.posterior();
    let sds: Vec<f64> = (0..4).map(|j| cov[j][j].sqrt()).collect();
    assert_correct(&model, &settings(16), &mean, &sds);
}

#[test]
fn draws_do_not_depend_on_the_thread_count() {
    let g = Gaussian::ar1(&[1.0, 2.0, 3.0], 0.8);
    let s = NutsSettings { tune: 200, draws: 200, ..settings(7) };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| sample_nuts(&g, &s).unwrap())
    };
    let one = run(1);
    let four = run(4);
    assert_eq!(one.draws, four.draws);
    assert_eq!(one.sample_stats, four.sample_stats);
    // the dense metric pools its warm-up over chains: still independent of the thread count
    let dense = NutsSettings { mass_matrix: MassMatrix::Dense, ..s.clone() };
    let run_dense = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| sample_nuts(&g, &dense).unwrap())
    };
    let (d1, d4) = (run_dense(1), run_dense(4));
    assert_eq!(d1.draws, d4.draws);
    assert_eq!(d1.sample_stats, d4.sample_stats);
    // A different seed gives different draws.
    let other = sample_nuts(&g, &NutsSettings { seed: 8, ..s.clone() }).unwrap();
    assert_ne!(one.draws, other.draws);
}

/// Calibration of the Monte Carlo standard errors themselves: over many seeds, the standardised
/// errors `(estimate - truth) / MCSE` of the mean, sd, q05 and q95 should have mean ≈ 0 and sd ≈ 1.
/// Heavy (100 runs); `cargo test -p mmloop-inference -- --ignored mcse_calibration --nocapture`.
#[test]
#[ignore = "heavy, 100 runs: cargo test -p mmloop-inference --test nuts_gaussian -- --ignored mcse_calibration --nocapture"]
fn mcse_calibration_over_seeds() {
    let model = LinearRegression::synthetic(50, 4);
    let (mean, cov) = model.posterior();
    let z05 = mmloop_inference::diagnostics::special::qnorm(0.05);
    let mut z = vec![Vec::new(); 4];
    for seed in 0..100 {
        let posterior = sample_nuts(&model, &settings(seed)).unwrap();
        for (j, p) in summaries(&posterior).iter().enumerate() {
            let sd = cov[j][j].sqrt();
            z[0].push((p.mean - mean[j]) / p.mcse_mean);
            z[1].push((p.sd - sd) / p.mcse_sd);
            z[2].push((p.q05 - (mean[j] + sd * z05)) / p.mcse_q05);
            z[3].push((p.q95 - (mean[j] - sd * z05)) / p.mcse_q95);
        }
    }
    for (name, zs) in ["mean", "sd", "q05", "q95"].iter().zip(&z) {
        let n = zs.len() as f64;
        let m = zs.iter().sum::<f64>() / n;
        let s = (zs.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0)).sqrt();
        eprintln!("{name}: standardised error mean {m:+.3}, sd {s:.3}");
        assert!(m.abs() < 0.35 && s > 0.8 && s < 1.3, "{name}: mean {m}, sd {s}");
    }
}
