//! Phase 2 through [`crate::rank`]: candidate tests from the design on the regional panel (or a
//! stated precision for a national model) and the ledger's stale readouts, ranked by EIG, EVOI and
//! cost, and the greedy portfolio under the loop's test constraints. Candidates touching a frozen
//! market are left out before ranking (a national test touches every market).

use super::CycleError;
use super::config::LoopConfig;
use super::run::{ChooseInput, Chosen, PlannedTest, TestChooser};
use crate::ledger::{Cell, PlannedExperiment, Status};
use crate::rank::{self, CandidateOptions, RankSettings};
use mmloop_geolift::{NoProgress, Panel};
use mmloop_mmm::optimize::FittedModel;

/// Ranks with [`crate::rank`] and plans the portfolio's picks.
#[derive(Debug, Clone)]
pub struct RankChooser {
    pub panel: Option<Panel>,
    pub candidates: CandidateOptions,
    pub settings: RankSettings,
    pub frozen_markets: Vec<String>,
    /// Rank on at most this many posterior draws, evenly thinned (EVOI re-optimises the budget per
    /// simulated readout over every draw, so its cost grows with the draws); `None`: all.
    pub max_draws: Option<usize>,
    /// Plan at least this many tests a cycle: when the portfolio (tests that pay for themselves in
    /// the model's own eyes) is smaller, the remaining candidates are added, each saying so:
    /// first those on a channel that no readout has checked and no planned or running test will,
    /// the channel the fit credits with the most KPI first (the largest claim resting on
    /// observational data alone, which the model's own EVOI cannot doubt), then by EIG. 0 for real data; the demo runs one, so the loop can learn where
    /// the model is confidently wrong (its own EVOI cannot see its bias).
    pub min_tests: usize,
    /// Learn first: while some candidate is on a channel no readout has checked (and no pending
    /// test will), the cycle plans such tests to learn (as for `min_tests`, at least one) instead
    /// of the portfolio's picks. The model's EVOI assumes the model is right, so it cannot value
    /// checking a claim the model is confidently wrong about; the demo validates every channel
    /// before it trusts the model's own valuation. Off for real data.
    pub learn_first: bool,
}

/// `fit` with its draws evenly thinned to at most `max` (every k-th, k = ⌈D / max⌉), or `None`
/// when it has no more than `max`.
pub fn thinned(fit: &FittedModel, max: usize) -> Option<FittedModel> {
    let d = fit.draws.len();
    if max == 0 || d <= max {
        return None;
    }
    let k = d.div_ceil(max);
    let mut t = fit.clone();
    t.draws = fit.draws.iter().step_by(k).cloned().collect();
    Some(t)
}

/// The ledger's planned experiment of a ranked candidate: one cell of its treated geos, its window,
/// and the candidate itself as the design record.
fn planned(c: &rank::RankedCandidate) -> Result<PlannedExperiment, CycleError> {
    Ok(PlannedExperiment {
        channels: c.channels.clone(),
        cells: vec![Cell { name: "test".into(), geos: c.geos.clone() }],
        start: c.start.clone(),
        end: c.end.clone(),
        design: Some(serde_json::to_value(c)?),
    })
}

impl RankChooser {
    /// The chooser a loop config describes: its panel (read now, errors name the file), horizon,
    /// budget, bounds and test constraints; the ranking's other settings at their defaults.
    pub fn from_config(cfg: &LoopConfig) -> Result<Self, CycleError> {
        let panel = match &cfg.panel {
            None => None,
            Some(p) => {
                let cols = mmloop_geolift::Columns {
                    time: p.time.clone(),
                    geo: p.geo.clone(),
                    kpi: p.kpi.clone(),
                    ..Default::default()
                };
                Some(Panel::read(&p.path, &cols).map_err(|e| CycleError::Config {
                    file: cfg.file.as_ref().map_or_else(|| "loop config".into(), |f| f.display().to_string()),
                    key: "panel".into(),
                    message: e.to_string(),
                })?)
            }
        };
        let mut settings = RankSettings {
            horizon: cfg.budget.horizon,
            budget: cfg.budget.total,
            relative: cfg.budget.relative,
            bounds: cfg.budget.bounds.clone(),
            ..Default::default()
        };
        settings.constraints.max_tests = cfg.tests.max_per_cycle;
        settings.constraints.test_budget = cfg.tests.budget;
        Ok(Self {
            panel,
            candidates: CandidateOptions::default(),
            settings,
            frozen_markets: cfg.tests.frozen_markets.clone(),
            max_draws: None,
            min_tests: 0,
            learn_first: false,
        })
    }
}

impl TestChooser for RankChooser {
    fn choose(&mut self, input: &ChooseInput<'_>) -> Result<Chosen, CycleError> {
        let err = |e: rank::RankError| CycleError::Choose(e.to_string());
        let mut settings = self.settings.clone();
        settings.evoi.seed = input.seed;
        let mut options = self.candidates.clone();
        options.design.seed = input.seed;
        let thin = self.max_draws.and_then(|m| thinned(input.fit, m));
        let fit = thin.as_ref().unwrap_or(input.fit);
        let set =
            rank::build_candidates(fit, self.panel.as_ref(), Some(input.ledger), &options, &NoProgress).map_err(err)?;
        let mut notes = set.notes;
        let n_all = set.candidates.len();
        let frozen = &self.frozen_markets;
        let candidates: Vec<_> = set
            .candidates
            .into_iter()
            .filter(|c| frozen.is_empty() || (!c.geos.is_empty() && !c.geos.iter().any(|g| frozen.contains(g))))
            .collect();
        if candidates.len() < n_all {
            notes.push(format!(
                "{} of {n_all} candidate tests left out: they touch a frozen market ({})",
                n_all - candidates.len(),
                frozen.join(", ")
            ));
        }
        if candidates.is_empty() {
            notes.push("no candidate test is allowed: nothing to rank".into());
            return Ok(Chosen { notes, ..Default::default() });
        }
        let ranking = rank::rank(fit, &candidates, &settings, &NoProgress).map_err(err)?;
        if let Some(t) = &thin {
            notes.push(format!(
                "ranked on {} of the posterior's {} draws (evenly thinned)",
                t.draws.len(),
                input.fit.draws.len()
            ));
        }
        // tests to learn: a channel no readout has checked and no pending test will check before
        // one already tested, the channel the fit credits with the most KPI first (the largest claim
        // resting on observational data alone), then by EIG
        let pending: Vec<String> = input
            .ledger
            .experiments()?
            .into_iter()
            .filter(|e| matches!(e.status, Status::Planned | Status::Running))
            .flat_map(|e| e.channels)
            .collect();
        let untested = |i: usize| {
            ranking.candidates[i].channels.iter().any(|ch| {
                input.evidence.iter().find(|e| &e.channel == ch).is_none_or(|e| e.n_readouts == 0)
                    && !pending.contains(ch)
            })
        };
        let learn_now = self.learn_first && (0..ranking.candidates.len()).any(untested);
        let picks: &[_] = if learn_now { &[] } else { &ranking.portfolio.greedy.picks };
        if learn_now && !ranking.portfolio.greedy.picks.is_empty() {
            notes.push(format!(
                "the portfolio's {} pick(s) wait: a channel the model credits with KPI has not been checked by any \
                 experiment yet, and the model's own EVOI cannot doubt what it has not seen contradicted",
                ranking.portfolio.greedy.picks.len()
            ));
        }
        let mut tests = Vec::new();
        for pick in picks {
            let Some(c) = ranking.candidates.get(pick.candidate) else { continue };
            tests.push(PlannedTest {
                experiment: planned(c)?,
                why: format!(
                    "{} ({}, {} {} to {}, {} geos): {:?}; EVOI {} against a cost of {}, adds {} net to the set; EIG {:.2} nats",
                    c.name,
                    c.channels.join("+"),
                    c.test_type,
                    c.start,
                    c.end,
                    if c.geos.is_empty() { "all".to_string() } else { c.geos.len().to_string() },
                    c.quadrant.quadrant,
                    mmloop_data::human::money(c.evoi.evoi),
                    mmloop_data::human::money(c.cost.cost),
                    crate::validate::fmt_num(pick.marginal_net),
                    c.eig
                ),
                cost: c.cost.cost,
            });
        }
        if tests.is_empty() && !learn_now {
            notes.push(format!("no test is worth its cost this cycle: {}", ranking.portfolio.greedy.stop_reason));
        }
        let picked: Vec<usize> = picks.iter().map(|p| p.candidate).collect();
        let mut by_eig: Vec<usize> = (0..ranking.candidates.len()).filter(|i| !picked.contains(i)).collect();
        let credited = |i: usize| -> f64 {
            ranking.candidates[i]
                .channels
                .iter()
                .filter_map(|ch| input.credited.iter().find(|(n, _)| n == ch).map(|(_, v)| *v))
                .sum()
        };
        by_eig.sort_by(|&a, &b| {
            untested(b)
                .cmp(&untested(a))
                .then(if untested(a) { credited(b).total_cmp(&credited(a)) } else { std::cmp::Ordering::Equal })
                .then(ranking.candidates[b].eig.total_cmp(&ranking.candidates[a].eig))
        });
        for i in by_eig {
            let want = if learn_now { self.min_tests.max(1) } else { self.min_tests };
            if tests.len() >= want.min(settings.constraints.max_tests) {
                break;
            }
            let c = &ranking.candidates[i];
            let clash = tests.iter().any(|t: &PlannedTest| {
                t.experiment.cells.iter().any(|cell| cell.geos.iter().any(|g| c.geos.contains(g)))
            });
            if clash {
                continue;
            }
            tests.push(PlannedTest {
                experiment: planned(c)?,
                why: format!(
                    "{} ({}, {} {} to {}): the most informative remaining test{} (EIG {:.3} nats, cost {}), run to \
                     learn although the model itself expects no net value from it (EVOI {}): at least {} test(s) a cycle",
                    c.name,
                    c.channels.join("+"),
                    c.test_type,
                    c.start,
                    c.end,
                    if untested(i) { " on the channel credited with the most KPI that no experiment has checked" } else { "" },
                    c.eig,
                    mmloop_data::human::money(c.cost.cost),
                    mmloop_data::human::money(c.evoi.evoi),
                    self.min_tests
                ),
                cost: c.cost.cost,
            });
        }
        notes.extend(ranking.notes.iter().cloned());
        let artefacts = vec![
            ("ranking.json".to_string(), serde_json::to_vec_pretty(&ranking)?),
            ("ranking.csv".to_string(), rank::ranking_csv(&ranking).into_bytes()),
            ("portfolio.json".to_string(), serde_json::to_vec_pretty(&ranking.portfolio)?),
        ];
        Ok(Chosen { tests, artefacts, notes })
    }
}
