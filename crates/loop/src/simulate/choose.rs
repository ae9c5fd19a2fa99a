//! Phase 2 of a simulated cycle: the arms' rules for choosing tests among the same candidates
//! (geo designs on the world's panel, [`crate::rank::build_candidates`]). Every rule keeps the
//! portfolio's constraints: at most `max_tests` tests and no geo in two tests of a cycle.

use super::{Arm, SimSettings};
use crate::ledger::{Ledger, Prediction};
use crate::rank::{self, CandidateTest};
use crate::value::{self, PortfolioConstraints, TestSignal, rng};
use crate::world::{PlannedTest, World};
use mmloop_geolift::NoProgress;
use mmloop_mmm::analysis::ChannelSummary;
use mmloop_mmm::optimize::FittedModel;
use mmloop_mmm::pricing::{ImpliedLift, Tail, price_test};

/// A test an arm chose: what runs in the world, and the prediction of its readout (the window
/// lift the fit implies) that validates it next cycle.
#[derive(Debug, Clone)]
pub struct ChosenTest {
    pub name: String,
    pub test: PlannedTest,
    pub prediction: Prediction,
}

/// The tests of a cycle.
#[derive(Debug, Clone, Default)]
pub struct Choice {
    pub tests: Vec<ChosenTest>,
}

const STREAM_RANDOM: u64 = 0x5349_4d52_0000_0000;

fn window_lift(fit: &FittedModel, c: &CandidateTest) -> Result<ImpliedLift, String> {
    price_test(fit, &c.hypothetical(Tail::WindowOnly)).map_err(|e| format!("pricing candidate {:?}: {e}", c.name))
}

/// Candidate `c` as a test to run, with its readout's prediction.
fn chosen(fit: &FittedModel, c: &CandidateTest) -> Result<ChosenTest, String> {
    let lift = window_lift(fit, c)?;
    let mut test = PlannedTest::from_hypothetical(&c.hypothetical(Tail::WindowOnly));
    test.label = c.name.clone();
    Ok(ChosenTest {
        name: c.name.clone(),
        test,
        prediction: Prediction {
            fit_id: 0,
            experiment_id: 0,
            mean: lift.mean,
            sd: lift.sd,
            q05: lift.q05,
            q95: lift.q95,
        },
    })
}

/// The geos a candidate occupies (all of them for a national test). Every candidate of a cycle
/// starts right after the data, so sharing a geo means sharing (geo, week) cells.
fn geos_of(c: &CandidateTest, all: &[String]) -> Vec<String> {
    if c.geos.is_empty() { all.to_vec() } else { c.geos.clone() }
}

/// Picks candidates in `order`, skipping any that shares a geo with one already picked, up to `k`.
fn pick_disjoint(
    cands: &[CandidateTest],
    order: impl IntoIterator<Item = usize>,
    k: usize,
    all: &[String],
) -> Vec<usize> {
    let mut used: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for i in order {
        if out.len() == k {
            break;
        }
        let g = geos_of(&cands[i], all);
        if g.iter().any(|x| used.contains(x)) {
            continue;
        }
        used.extend(g);
        out.push(i);
    }
    out
}

/// The cycle's decision context: `seed` is the cycle's (shared by every arm); `k` the most tests
/// (`random` picks exactly `k` when they fit side by side); the budget and its per-channel
/// (channel, lower, upper) guardrails the tests' value is judged by.
pub struct Decision<'a> {
    pub seed: u64,
    pub k: usize,
    pub budget: f64,
    pub bounds: &'a [(String, f64, f64)],
}

/// The tests `arm` chooses on `fit` this cycle.
pub fn choose(
    arm: Arm,
    settings: &SimSettings,
    world: &World,
    fit: &FittedModel,
    channels: &[ChannelSummary],
    ledger: &Ledger,
    decision: &Decision,
) -> Result<Choice, String> {
    let (seed, k) = (decision.seed, decision.k);
    if matches!(arm, Arm::None | Arm::Oracle) || k == 0 {
        return Ok(Choice::default());
    }
    let panel = world.panel(None).map_err(|e| e.to_string())?;
    let set = rank::build_candidates(fit, Some(&panel), Some(ledger), &settings.candidate_options(seed), &NoProgress)
        .map_err(|e| format!("candidate tests: {e}"))?;
    // a test must end within the cycle's weeks (the world moves on by one horizon)
    let end = fit.model.n_times + settings.horizon;
    let cands: Vec<CandidateTest> = set.candidates.into_iter().filter(|c| c.start + c.duration <= end).collect();
    if cands.is_empty() {
        return Ok(Choice::default());
    }
    let all = &fit.model.geos;
    let picked: Vec<usize> = match arm {
        Arm::Evoi | Arm::EvoiNoDecay | Arm::EvoiDiscard => {
            let ranking =
                rank::rank(fit, &cands, &settings.rank_settings(seed, decision.budget, decision.bounds), &NoProgress)
                    .map_err(|e| format!("ranking: {e}"))?;
            ranking
                .portfolio
                .greedy
                .picks
                .iter()
                .filter_map(|p| {
                    let name = &ranking.candidates[p.candidate].name;
                    cands.iter().position(|c| &c.name == name)
                })
                .collect()
        }
        Arm::Eig => {
            let mut signals = Vec::with_capacity(cands.len());
            for (i, c) in cands.iter().enumerate() {
                signals.push(TestSignal::new(i as u64, c.name.clone(), window_lift(fit, c)?.per_draw, c.sigma));
            }
            let pool: Vec<value::Candidate> = cands
                .iter()
                .map(|c| value::Candidate { name: c.name.clone(), geos: geos_of(c, all), cost: 0.0 })
                .collect();
            let constraints = PortfolioConstraints { max_tests: k, test_budget: None, ..Default::default() };
            let p = value::greedy_portfolio(&pool, &constraints, |set: &[usize]| {
                let s: Vec<&TestSignal> = set.iter().map(|&i| &signals[i]).collect();
                value::eig_joint(&s)
            })
            .map_err(|e| format!("the EIG portfolio: {e}"))?;
            p.picks.iter().map(|p| p.candidate).collect()
        }
        Arm::Uncertainty => {
            // channels by posterior ROI sd, widest first (ties by name); each by its most precise
            // single-channel design
            let mut chans: Vec<(&str, f64)> = channels.iter().map(|c| (c.name.as_str(), c.roi.sd)).collect();
            chans.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
            let mut order = Vec::new();
            for (ch, _) in chans {
                let mut on: Vec<usize> =
                    (0..cands.len()).filter(|&i| cands[i].channels.len() == 1 && cands[i].channels[0] == ch).collect();
                on.sort_by(|&a, &b| cands[a].sigma.total_cmp(&cands[b].sigma).then(a.cmp(&b)));
                order.push(on);
            }
            // one test per channel: the first design of the channel that fits beside the others
            let mut used: Vec<String> = Vec::new();
            let mut out = Vec::new();
            for on in order {
                if out.len() == k {
                    break;
                }
                if let Some(&i) = on.iter().find(|&&i| !geos_of(&cands[i], all).iter().any(|g| used.contains(g))) {
                    used.extend(geos_of(&cands[i], all));
                    out.push(i);
                }
            }
            out
        }
        Arm::Random => {
            let mut keys: Vec<(f64, usize)> =
                (0..cands.len()).map(|i| (rng::uniform(seed, STREAM_RANDOM, i as u64), i)).collect();
            keys.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            pick_disjoint(&cands, keys.into_iter().map(|(_, i)| i), k, all)
        }
        Arm::None | Arm::Oracle => Vec::new(),
    };
    let tests = picked.iter().map(|&i| chosen(fit, &cands[i])).collect::<Result<Vec<_>, _>>()?;
    Ok(Choice { tests })
}
