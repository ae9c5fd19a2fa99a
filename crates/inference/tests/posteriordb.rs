//! posteriordb reference posteriors: eight_schools_noncentered and blr on sblrc / sblri. Our
//! posterior means must be within 4 combined Monte Carlo standard errors (ours and the
//! reference's) of the reference means; sds likewise against the reference draws. The centred
//! eight-schools model must show divergences and the divergence warning.

#![allow(clippy::neg_cmp_op_on_partial_ord)] // written so that NaN fails the check

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{Blr, EightSchools};
use mmloop_inference::diagnostics::mcse_sd;
use mmloop_inference::summary::{summarize, summary};
use mmloop_inference::{NutsSettings, Posterior, sample_nuts};
use serde_json::Value;

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// The reference: name -> (mean, mcse of the mean, sd of the reference draws, its mcse).
fn reference(dir: &Path, posterior: &str) -> HashMap<String, (f64, f64, f64, f64)> {
    let means = read_json(&dir.join(format!("posteriordb_mean_value_{posterior}.json")));
    let draws = read_json(&dir.join(format!("posteriordb_refdraws_{posterior}.json")));
    let chains = draws.as_array().unwrap();
    assert_eq!(chains.len(), 10);
    let names: Vec<String> =
        means["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect();
    let mean = numbers(&means["mean_value"]);
    let mcse = numbers(&means["mcse_mean"]);
    names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let per_chain: Vec<Vec<f64>> = chains.iter().map(|c| numbers(&c[name])).collect();
            let pooled: Vec<f64> = per_chain.iter().flatten().copied().collect();
            let m = pooled.iter().sum::<f64>() / pooled.len() as f64;
            let sd = (pooled.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (pooled.len() - 1) as f64).sqrt();
            (name.clone(), (mean[j], mcse[j], sd, mcse_sd(&per_chain)))
        })
        .collect()
}

/// Compare the constrained posterior with the reference, parameter by parameter.
fn compare(ours: &Posterior, reference: &HashMap<String, (f64, f64, f64, f64)>) {
    let params = summarize(ours);
    let mut problems = Vec::new();
    for p in &params {
        let (ref_mean, ref_mcse, ref_sd, ref_mcse_sd) = reference[&p.name];
        let tol_mean = 4.0 * (p.mcse_mean.powi(2) + ref_mcse.powi(2)).sqrt();
        let tol_sd = 4.0 * (p.mcse_sd.powi(2) + ref_mcse_sd.powi(2)).sqrt();
        eprintln!(
            "{:>9}: mean {:.6} vs {:.6} ({:.1} combined MCSE); sd {:.6} vs {:.6} ({:.1}); rhat {:.4}, ess {:.0}/{:.0}",
            p.name,
            p.mean,
            ref_mean,
            4.0 * (p.mean - ref_mean).abs() / tol_mean,
            p.sd,
            ref_sd,
            4.0 * (p.sd - ref_sd).abs() / tol_sd,
            p.rhat,
            p.ess_bulk,
            p.ess_tail
        );
        if !((p.mean - ref_mean).abs() <= tol_mean) {
            problems.push(format!("{} mean {} vs reference {}", p.name, p.mean, ref_mean));
        }
        if !((p.sd - ref_sd).abs() <= tol_sd) {
            problems.push(format!("{} sd {} vs reference {}", p.name, p.sd, ref_sd));
        }
        if !(p.rhat < 1.01 && p.ess_bulk > 400.0 && p.ess_tail > 400.0) {
            problems.push(format!("{} rhat {} ess {} / {}", p.name, p.rhat, p.ess_bulk, p.ess_tail));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn settings(seed: u64) -> NutsSettings {
    NutsSettings { seed, quiet: true, ..NutsSettings::default() }
}

#[test]
fn eight_schools_noncentered_matches_posteriordb() {
    let Some(dir) = common::datasets_dir("eight_schools_noncentered_matches_posteriordb") else { return };
    let data = read_json(&dir.join("posteriordb_data_eight_schools.json"));
    let model = EightSchools::new(false);
    assert_eq!(numbers(&data["y"]), model.y);
    assert_eq!(numbers(&data["sigma"]), model.sigma);
    // posteriordb's reference used adapt_delta 0.95 for this posterior; so do we.
    let posterior = sample_nuts(&model, &NutsSettings { target_accept: 0.95, ..settings(11) }).unwrap();
    assert_eq!(posterior.divergences(), 0, "non-centred eight schools should not diverge at target_accept 0.95");
    let constrained = posterior.map_draws(EightSchools::constrained_names(), |x| model.constrain(x));
    compare(&constrained, &reference(&dir, "eight_schools-eight_schools_noncentered"));
}

fn blr_case(name: &str, seed: u64) {
    let Some(dir) = common::datasets_dir(name) else { return };
    let data = read_json(&dir.join(format!("posteriordb_data_{name}.json")));
    let (n, d) = (data["N"].as_u64().unwrap() as usize, data["D"].as_u64().unwrap() as usize);
    let x: Vec<Vec<f64>> = data["X"].as_array().unwrap().iter().map(numbers).collect();
    assert_eq!((x.len(), x[0].len()), (n, d));
    let model = Blr { x, y: numbers(&data["y"]) };
    let posterior = sample_nuts(&model, &settings(seed)).unwrap();
    assert_eq!(posterior.divergences(), 0);
    let mut names: Vec<String> = (1..=d).map(|j| format!("beta[{j}]")).collect();
    names.push("sigma".into());
    let constrained = posterior.map_draws(names, Blr::constrain);
    compare(&constrained, &reference(&dir, &format!("{name}-blr")));
}

#[test]
fn blr_sblrc_matches_posteriordb() {
    blr_case("sblrc", 12);
}

#[test]
fn blr_sblri_matches_posteriordb() {
    blr_case("sblri", 13);
}

#[test]
fn centered_eight_schools_diverges_and_says_so() {
    let posterior = sample_nuts(&EightSchools::new(true), &settings(14)).unwrap();
    assert!(posterior.divergences() > 0, "the centred eight-schools funnel should produce divergences");
    let s = summary(&posterior);
    assert_eq!(s.diagnostics.divergences, posterior.divergences());
    let warning = s.diagnostics.warnings.iter().find(|w| w.contains("divergent")).expect("a divergence warning");
    assert!(warning.contains("target_accept") && warning.contains("reparameterise"), "{warning}");
    eprintln!("{} divergences; warnings:\n{}", posterior.divergences(), s.diagnostics.warnings.join("\n"));
}
