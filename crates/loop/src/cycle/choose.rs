//! Phase 2 through [`crate::rank`]: candidate tests from the design on the regional panel (or a
//! stated precision for a national model) and the ledger's stale readouts, ranked by EIG, EVOI and
//! cost, and the greedy portfolio under the loop's test constraints. Candidates touching a frozen
//! market are left out before ranking (a national test touches every market).

use super::CycleError;
use super::config::LoopConfig;
use super::run::{ChooseInput, Chosen, PlannedTest, TestChooser};
use crate::ledger::{Cell, PlannedExperiment};
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
    /// the model's own eyes) is smaller, the most informative remaining candidates (highest EIG)
    /// are added, each saying so. 0 for real data; the demo runs one, so the loop can learn where
    /// the model is confidently wrong (its own EVOI cannot see its bias).
    pub min_tests: usize,
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
        let mut tests = Vec::new();
        for pick in &ranking.portfolio.greedy.picks {
            let Some(c) = ranking.candidates.get(pick.candidate) else { continue };
            tests.push(PlannedTest {
                experiment: PlannedExperiment {
                    channels: c.channels.clone(),
                    cells: vec![Cell { name: "test".into(), geos: c.geos.clone() }],
                    start: c.start.clone(),
                    end: c.end.clone(),
                    design: Some(serde_json::to_value(c)?),
                },
                why: format!(
                    "{} ({}, {} {} to {}, {} geos): {:?}; EVOI {} against a cost of {}, adds {} net to the set; EIG {:.2} nats",
                    c.name,
                    c.channels.join("+"),
                    c.test_type,
                    c.start,
                    c.end,
                    if c.geos.is_empty() { "all".to_string() } else { c.geos.len().to_string() },
                    c.quadrant.quadrant,
                    crate::validate::fmt_num(c.evoi.evoi),
                    crate::validate::fmt_num(c.cost.cost),
                    crate::validate::fmt_num(pick.marginal_net),
                    c.eig
                ),
                cost: c.cost.cost,
            });
        }
        if tests.is_empty() {
            notes.push("no test is worth its cost this cycle (every marginal net value ≤ 0)".into());
        }
        let picked: Vec<usize> = ranking.portfolio.greedy.picks.iter().map(|p| p.candidate).collect();
        let mut by_eig: Vec<usize> = (0..ranking.candidates.len()).filter(|i| !picked.contains(i)).collect();
        by_eig.sort_by(|&a, &b| ranking.candidates[b].eig.total_cmp(&ranking.candidates[a].eig));
        for i in by_eig {
            if tests.len() >= self.min_tests.min(settings.constraints.max_tests) {
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
                experiment: PlannedExperiment {
                    channels: c.channels.clone(),
                    cells: vec![Cell { name: "test".into(), geos: c.geos.clone() }],
                    start: c.start.clone(),
                    end: c.end.clone(),
                    design: Some(serde_json::to_value(c)?),
                },
                why: format!(
                    "{} ({}, {} {} to {}): the most informative remaining test (EIG {:.3} nats, cost {}), run to learn \
                     although the model itself expects no net value from it (EVOI {}): at least {} test(s) a cycle",
                    c.name,
                    c.channels.join("+"),
                    c.test_type,
                    c.start,
                    c.end,
                    c.eig,
                    crate::validate::fmt_num(c.cost.cost),
                    crate::validate::fmt_num(c.evoi.evoi),
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
