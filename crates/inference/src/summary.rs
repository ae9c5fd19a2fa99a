//! Posterior summaries and run-level convergence checks with plain-language advice.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::diagnostics::{diagnose, e_bfmi, quantile_sorted};
use crate::posterior::{Method, Posterior};

/// R-hat above this means the chains have not mixed (Vehtari et al. 2021).
pub const RHAT_THRESHOLD: f64 = 1.01;
/// Bulk- and tail-ESS below this make means and 90% intervals imprecise (Vehtari et al. 2021: 100
/// per chain for 4 chains).
pub const ESS_THRESHOLD: f64 = 400.0;
/// E-BFMI below this indicates poor exploration of the energy distribution (Betancourt 2016).
pub const E_BFMI_THRESHOLD: f64 = 0.3;

/// Summary of one parameter over all chains and draws.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSummary {
    pub name: String,
    pub mean: f64,
    /// Sample standard deviation (n - 1 denominator).
    pub sd: f64,
    /// 5%, 50% and 95% quantiles (R's type 7).
    pub q05: f64,
    pub q50: f64,
    pub q95: f64,
    /// Improved R-hat (rank-normalised, folded, split).
    pub rhat: f64,
    pub ess_bulk: f64,
    pub ess_tail: f64,
    /// Monte Carlo standard errors of the mean, the sd and the 5%/95% quantiles.
    pub mcse_mean: f64,
    pub mcse_sd: f64,
    pub mcse_q05: f64,
    pub mcse_q95: f64,
}

/// Run-level convergence checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunDiagnostics {
    pub method: Method,
    pub chains: usize,
    pub draws_per_chain: usize,
    /// Largest R-hat and the parameter it belongs to (NaN R-hats, e.g. of constant parameters, are
    /// skipped here and reported in `warnings`).
    pub max_rhat: f64,
    pub max_rhat_param: Option<String>,
    pub min_ess_bulk: f64,
    pub min_ess_bulk_param: Option<String>,
    pub min_ess_tail: f64,
    pub min_ess_tail_param: Option<String>,
    /// Divergent transitions after warm-up (0 for Laplace).
    pub divergences: usize,
    /// Transitions that stopped at the maximum tree depth (0 for Laplace).
    pub max_tree_depth_hits: usize,
    /// E-BFMI of each chain (empty for Laplace).
    pub e_bfmi: Vec<f64>,
    /// Plain-language descriptions of every problem found, each saying what to try.
    pub warnings: Vec<String>,
}

impl RunDiagnostics {
    /// No warnings.
    pub fn ok(&self) -> bool {
        self.warnings.is_empty()
    }
}

/// Parameter summaries plus run-level diagnostics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub params: Vec<ParamSummary>,
    pub diagnostics: RunDiagnostics,
}

fn summarize_param(name: &str, chains: &[Vec<f64>]) -> ParamSummary {
    let pooled: Vec<f64> = chains.iter().flatten().copied().collect();
    let n = pooled.len() as f64;
    let mean = pooled.iter().sum::<f64>() / n;
    let sd = (pooled.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0)).sqrt();
    let mut sorted = pooled;
    sorted.sort_by(f64::total_cmp);
    let has_nan = sorted.last().is_some_and(|v| v.is_nan());
    let q = |p| if has_nan { f64::NAN } else { quantile_sorted(&sorted, p) };
    let d = diagnose(chains);
    ParamSummary {
        name: name.to_string(),
        mean,
        sd,
        q05: q(0.05),
        q50: q(0.5),
        q95: q(0.95),
        rhat: d.rhat,
        ess_bulk: d.ess_bulk,
        ess_tail: d.ess_tail,
        mcse_mean: d.mcse_mean,
        mcse_sd: d.mcse_sd,
        mcse_q05: d.mcse_q05,
        mcse_q95: d.mcse_q95,
    }
}

/// Summaries of every parameter (in parallel over parameters).
pub fn summarize(posterior: &Posterior) -> Vec<ParamSummary> {
    (0..posterior.dim())
        .into_par_iter()
        .map(|j| summarize_param(&posterior.param_names[j], &posterior.param_chains(j)))
        .collect()
}

/// Run-level checks from the parameter summaries and the sampler statistics.
pub fn run_diagnostics(posterior: &Posterior, params: &[ParamSummary]) -> RunDiagnostics {
    let mut warnings = Vec::new();
    let finite_extreme = |value: fn(&ParamSummary) -> f64, largest: bool| {
        params.iter().filter(|p| !value(p).is_nan()).fold(None::<(f64, &str)>, |best, p| {
            let v = value(p);
            match best {
                Some((b, _)) if (largest && b >= v) || (!largest && b <= v) => best,
                _ => Some((v, &p.name)),
            }
        })
    };
    let (max_rhat, max_rhat_param) = finite_extreme(|p| p.rhat, true).map_or((f64::NAN, None), |(v, n)| (v, Some(n)));
    let (min_bulk, min_bulk_param) =
        finite_extreme(|p| p.ess_bulk, false).map_or((f64::NAN, None), |(v, n)| (v, Some(n)));
    let (min_tail, min_tail_param) =
        finite_extreme(|p| p.ess_tail, false).map_or((f64::NAN, None), |(v, n)| (v, Some(n)));

    let undefined: Vec<&str> = params.iter().filter(|p| p.rhat.is_nan()).map(|p| p.name.as_str()).collect();
    if !undefined.is_empty() {
        warnings.push(format!(
            "R-hat is undefined for {} parameter(s) ({}): their draws are constant or contain NaN. A constant \
             parameter usually means the sampler never moved (a stuck chain, or a parameter the log density does \
             not use); NaN draws mean the model produced invalid values.",
            undefined.len(),
            list(&undefined)
        ));
    }
    let high_rhat: Vec<&str> = params.iter().filter(|p| p.rhat > RHAT_THRESHOLD).map(|p| p.name.as_str()).collect();
    if let Some(param) = max_rhat_param.filter(|_| !high_rhat.is_empty()) {
        warnings.push(format!(
            "R-hat is {max_rhat:.3} for `{param}` and above {RHAT_THRESHOLD} for {} parameter(s) ({}): the chains \
             disagree, so the posterior has not been explored reliably and the estimates should not be used. Run a \
             longer warm-up and more draws; if that does not help, reparameterise (e.g. non-centred hierarchical \
             effects), rescale parameters to similar magnitudes, or use more informative priors for weakly \
             identified parameters.",
            high_rhat.len(),
            list(&high_rhat)
        ));
    }
    for (label, min, param, value) in [
        ("Bulk", min_bulk, min_bulk_param, (|p: &ParamSummary| p.ess_bulk) as fn(&ParamSummary) -> f64),
        ("Tail", min_tail, min_tail_param, |p: &ParamSummary| p.ess_tail),
    ] {
        let low: Vec<&str> = params.iter().filter(|p| value(p) < ESS_THRESHOLD).map(|p| p.name.as_str()).collect();
        if let Some(param) = param.filter(|_| !low.is_empty()) {
            let what = if label == "Bulk" {
                "posterior means and medians"
            } else {
                "the 5% and 95% quantiles (interval ends)"
            };
            warnings.push(format!(
                "{label}-ESS is {min:.0} for `{param}` and below {ESS_THRESHOLD:.0} for {} parameter(s) ({}): {what} \
                 are imprecise. Draw more samples (more chains or draws); if the ESS per draw is very low, reduce \
                 posterior correlations by reparameterising or try the low-rank mass matrix.",
                low.len(),
                list(&low)
            ));
        }
    }

    let total_draws: usize = posterior.sample_stats.iter().map(Vec::len).sum();
    let divergences = posterior.divergences();
    if divergences > 0 {
        warnings.push(format!(
            "{divergences} of {total_draws} transitions after warm-up were divergent: the sampler met curvature it \
             cannot integrate accurately, so the draws may be biased (typically by missing a funnel or a boundary). \
             Raise target_accept (e.g. to 0.95 or 0.99); if divergences remain, reparameterise (non-centred \
             hierarchical effects), tighten priors on scale parameters, or check the model for hard boundaries."
        ));
    }
    let max_tree_depth_hits = posterior.sample_stats.iter().flatten().filter(|s| s.max_depth_reached).count();
    if max_tree_depth_hits > 0 {
        warnings.push(format!(
            "{max_tree_depth_hits} of {total_draws} transitions stopped at the maximum tree depth: this costs \
             efficiency, not validity. Increase max_tree_depth, or reparameterise / use the low-rank mass matrix \
             if the posterior is strongly correlated or badly scaled."
        ));
    }
    let e_bfmi: Vec<f64> = posterior.energies().iter().map(|e| e_bfmi(e)).collect();
    let low_bfmi: Vec<String> = e_bfmi
        .iter()
        .enumerate()
        .filter(|(_, b)| **b < E_BFMI_THRESHOLD)
        .map(|(c, b)| format!("chain {c}: {b:.2}"))
        .collect();
    if !low_bfmi.is_empty() {
        warnings.push(format!(
            "E-BFMI is below {E_BFMI_THRESHOLD} ({}): momentum resampling explores the energy distribution poorly, \
             usually because of heavy tails or funnel-shaped geometry, and the chains may miss parts of the \
             posterior. Reparameterise (non-centred hierarchical effects, log scales) or run a longer warm-up.",
            low_bfmi.join(", ")
        ));
    }

    RunDiagnostics {
        method: posterior.method,
        chains: posterior.n_chains(),
        draws_per_chain: posterior.n_draws(),
        max_rhat,
        max_rhat_param: max_rhat_param.map(str::to_string),
        min_ess_bulk: min_bulk,
        min_ess_bulk_param: min_bulk_param.map(str::to_string),
        min_ess_tail: min_tail,
        min_ess_tail_param: min_tail_param.map(str::to_string),
        divergences,
        max_tree_depth_hits,
        e_bfmi,
        warnings,
    }
}

/// Up to five names, then "and N more".
fn list(names: &[&str]) -> String {
    let shown: Vec<String> = names.iter().take(5).map(|n| format!("`{n}`")).collect();
    if names.len() > 5 { format!("{} and {} more", shown.join(", "), names.len() - 5) } else { shown.join(", ") }
}

/// Parameter summaries and run-level diagnostics of a posterior.
pub fn summary(posterior: &Posterior) -> Summary {
    let params = summarize(posterior);
    let diagnostics = run_diagnostics(posterior, &params);
    Summary { params, diagnostics }
}
