//! A ranking as text: `ranking.csv`, the terminal table, the 2×2 and the portfolio.

use super::{RankedCandidate, Ranking};
use crate::validate::fmt_num;
use crate::value::{Portfolio, Quadrant};
use mmloop_data::human::money;
use std::fmt::Write as _;

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn quadrant_name(q: Quadrant) -> &'static str {
    match q {
        Quadrant::TestNow => "test now",
        Quadrant::TestToLearn => "test to learn",
        Quadrant::Watch => "watch",
        Quadrant::Leave => "leave",
    }
}

fn estimator_name(c: &RankedCandidate) -> &'static str {
    match c.evoi.estimator {
        crate::value::Estimator::Importance => "importance",
        crate::value::Estimator::GaussianLinear => "gaussian_linear",
    }
}

/// One row per candidate, best net value first; numbers in full precision, money in the
/// ranking's unit (`value_per_kpi` money per KPI).
pub fn ranking_csv(r: &Ranking) -> String {
    let mut s = String::from(
        "rank,name,channels,geos,test_type,start,end,duration,sigma,lift_mean,lift_sd,lift_q05,lift_q95,expected_z,\
         eig,eig_method,eig_gaussian,eig_monte_carlo,eig_monte_carlo_mcse,evoi,evoi_mcse,evoi_estimator,\
         evoi_importance,evoi_gaussian_linear,k_hat_median,k_hat_max,unhealthy_share,ess_median,ess_min,evpi,\
         spend_change,expected_return,cost,net_value,quadrant,is_retest,retest_experiment,retest_stale\n",
    );
    for c in &r.candidates {
        let e = &c.evoi;
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            c.rank,
            quote(&c.name),
            quote(&c.channels.join(";")),
            quote(&c.geos.join(";")),
            c.test_type,
            quote(&c.start),
            quote(&c.end),
            c.duration,
            c.sigma,
            c.lift.mean,
            c.lift.sd,
            c.lift.q05,
            c.lift.q95,
            c.expected_z,
            c.eig,
            match c.eig_method {
                super::EigMethod::Gaussian => "gaussian",
                super::EigMethod::MonteCarlo => "monte_carlo",
            },
            c.eig_gaussian,
            c.eig_monte_carlo.eig,
            c.eig_monte_carlo.mcse,
            e.evoi,
            e.mcse,
            estimator_name(c),
            e.importance,
            e.gaussian_linear,
            e.k_hat_median,
            e.k_hat_max,
            e.unhealthy_share,
            e.ess_median,
            e.ess_min,
            c.evpi,
            c.cost.spend_change,
            c.cost.expected_return,
            c.cost.cost,
            c.net_value,
            quadrant_name(c.quadrant.quadrant),
            c.is_retest,
            c.retest.as_ref().map(|x| x.experiment_id.to_string()).unwrap_or_default(),
            c.retest.as_ref().map(|x| x.stale.to_string()).unwrap_or_default(),
        );
    }
    s
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() > n { s.chars().take(n - 1).collect::<String>() + "…" } else { s.to_string() }
}

/// The `top` best candidates as a fixed-width table with thousands separators.
pub fn ranking_table(r: &Ranking, top: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>4}  {:<44} {:>10} {:>6} {:>12} {:>12} {:>12} {:>12}  {:<13} weights",
        "rank", "test", "σ (KPI)", "EIG", "EVOI", "±mcse", "cost", "net value", "2×2"
    );
    for c in r.candidates.iter().take(top) {
        let weights = format!(
            "{} k̂≤{:.2} ESS≥{:.0}",
            match c.evoi.estimator {
                crate::value::Estimator::Importance => "IS",
                crate::value::Estimator::GaussianLinear => "lin",
            },
            c.evoi.k_hat_max,
            c.evoi.ess_min
        );
        let _ = writeln!(
            s,
            "{:>4}  {:<44} {:>10} {:>6.3} {:>12} {:>12} {:>12} {:>12}  {:<13} {}{}",
            c.rank,
            cut(&c.name, 44),
            fmt_num(c.sigma),
            c.eig,
            money(c.evoi.evoi),
            money(c.evoi.mcse),
            money(c.cost.cost),
            money(c.net_value),
            quadrant_name(c.quadrant.quadrant),
            weights,
            if c.is_retest { "  (re-test)" } else { "" }
        );
    }
    if r.candidates.len() > top {
        let _ = writeln!(s, "      … {} more in ranking.csv", r.candidates.len() - top);
    }
    let _ = writeln!(
        s,
        "EVPI (perfect information, the bound on every EVOI): {} ± {}; one KPI unit is worth {} ({}); horizon {} \
         periods, budget {}",
        money(r.evpi.evpi),
        money(r.evpi.mcse),
        r.value_per_kpi,
        r.value_per_kpi_source,
        r.horizon,
        money(r.budget)
    );
    s
}

/// The 2×2 with its thresholds: how many candidates fall in each quadrant and the best of each.
pub fn quadrant_table(r: &Ranking) -> String {
    let cell = |q: Quadrant| -> (usize, String) {
        let xs: Vec<&RankedCandidate> = r.candidates.iter().filter(|c| c.quadrant.quadrant == q).collect();
        (xs.len(), xs.first().map(|c| cut(&c.name, 26)).unwrap_or_else(|| "-".into()))
    };
    let (nn, bn) = cell(Quadrant::TestNow);
    let (nl, bl) = cell(Quadrant::TestToLearn);
    let (nw, bw) = cell(Quadrant::Watch);
    let (nv, bv) = cell(Quadrant::Leave);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "2×2: informative ⇔ EIG ≥ {:.3} nats (the readout at least halves the implied lift's variance); worth it ⇔ \
         EVOI > cost",
        r.thresholds.eig_target_nats
    );
    let _ = writeln!(s, "{:<16}| {:<52}| {:<52}", "", "EVOI > cost", "EVOI ≤ cost");
    let _ = writeln!(s, "{:-<16}+{:-<53}+{:-<53}", "", "", "");
    let _ = writeln!(
        s,
        "{:<16}| {:<52}| {:<52}",
        "EIG ≥ target",
        format!("test now: {nn}  best: {bn}"),
        format!("test to learn: {nl}  best: {bl}")
    );
    let _ = writeln!(
        s,
        "{:<16}| {:<52}| {:<52}",
        "EIG < target",
        format!("watch: {nw}  best: {bw}"),
        format!("leave: {nv}  best: {bv}")
    );
    s
}

fn portfolio_lines(s: &mut String, title: &str, p: &Portfolio, r: &Ranking, marginal: bool) {
    let _ = writeln!(
        s,
        "{title}: {} test(s), joint EVOI {}, cost {}, net value {}",
        p.picks.len(),
        money(p.joint_evoi),
        money(p.total_cost),
        money(p.net_value)
    );
    for (i, pick) in p.picks.iter().enumerate() {
        let c = &r.candidates[pick.candidate];
        if marginal {
            let _ = writeln!(
                s,
                "  {}. {}  (marginal EVOI {} ± {}, cost {}, marginal net {} > threshold {})",
                i + 1,
                c.name,
                money(pick.marginal_evoi),
                money(pick.mcse),
                money(c.cost.cost),
                money(pick.marginal_net),
                money(pick.threshold)
            );
            if !pick.tied_with.is_empty() {
                let _ = writeln!(
                    s,
                    "     equal within Monte-Carlo error to {}: chosen as the cheapest, then the smallest",
                    pick.tied_with.join(", ")
                );
            }
        } else {
            let _ = writeln!(s, "  {}. {}", i + 1, c.name);
        }
    }
}

/// The greedy portfolio with each pick's marginal value, and the exhaustive optimum beside it.
pub fn portfolio_table(r: &Ranking) -> String {
    let mut s = String::new();
    let p = &r.portfolio;
    let _ = writeln!(
        s,
        "portfolio (at most {} tests, no geo in two simultaneous tests{}; chosen among the {} best by net value):",
        p.constraints.max_tests,
        p.constraints.test_budget.map(|b| format!(", test budget {}", money(b))).unwrap_or_default(),
        p.pool.len()
    );
    let _ = writeln!(
        s,
        "a test is picked when its marginal net value exceeds the materiality floor {} ({} % of the EVPI) by more \
         than {} × its Monte-Carlo error (± below)",
        money(p.constraints.net_floor),
        100.0 * p.materiality,
        p.constraints.error_z
    );
    if p.greedy.picks.is_empty() {
        let _ = writeln!(s, "  no test adds value net of its cost beyond the floor and the error: run none this cycle");
    } else {
        portfolio_lines(&mut s, "greedy", &p.greedy, r, true);
    }
    let _ = writeln!(s, "  the greedy stopped: {}", p.greedy.stop_reason);
    if let Some(e) = &p.exhaustive {
        portfolio_lines(&mut s, "exhaustive optimum", e, r, false);
        if let Some(q) = p.greedy_to_exhaustive {
            let _ = writeln!(s, "  greedy / exhaustive net value: {q:.3}");
        }
    }
    s
}
