//! Market selection: candidate treated sets from a correlation shortlist, evaluated by simulated power
//! over rolling historical windows, ranked; multi-cell designs from disjoint top candidates.

use super::error::{DesignError, bad};
use super::power::{Mde, PowerConfig, PowerCurve, PowerEngine};
use crate::panel::Panel;
use mmloop_data::closest;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeSet;

/// Direction of the test: heavy-up (positive effects) or go-dark (negative effects).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TestType {
    HeavyUp,
    GoDark,
}

/// What to search over.
#[derive(Debug, Clone)]
pub struct SearchSpec {
    /// Number of treated geos per cell, inclusive range.
    pub n_min: usize,
    pub n_max: usize,
    /// Test lengths (periods).
    pub durations: Vec<usize>,
    /// Geos every candidate must treat.
    pub include: Vec<String>,
    /// Geos never treated (they stay in the control pool, as GeoLift's `exclude_markets`).
    pub exclude: Vec<String>,
    /// Number of disjoint test cells (1 = a single treated group).
    pub cells: usize,
    /// Largest share of total KPI the treated geos may hold (GeoLift's holdout constraint, 1 − holdout).
    pub max_treated_share: f64,
    /// Power at which the MDE is read off.
    pub target_power: f64,
    /// Smallest number of control geos every design keeps.
    pub min_controls: usize,
}

impl Default for SearchSpec {
    fn default() -> Self {
        Self {
            n_min: 2,
            n_max: 5,
            durations: vec![14, 21, 28],
            include: vec![],
            exclude: vec![],
            cells: 1,
            max_treated_share: 1.0,
            target_power: 0.8,
            min_controls: 2,
        }
    }
}

/// One evaluated candidate: a treated set at a duration.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// 1-based rank (after [`rank`]).
    pub rank: usize,
    pub treated: Vec<String>,
    pub duration: usize,
    /// Signed MDE in the test's direction (relative), `None` if not reached on the grid.
    pub mde: Option<f64>,
    pub mde_both: Mde,
    /// Mean power over the grid's effects in the test's direction.
    pub mean_power: f64,
    /// Share of total KPI (over the whole history) in the treated geos.
    pub treated_share: f64,
    /// Mean Pearson correlation of the treated geos' series with the rest (the shortlist criterion).
    pub correlation: f64,
    /// Ranking score (mean rank over the criteria; lower is better), set by [`rank`].
    pub score: Option<f64>,
    pub curve: PowerCurve,
}

/// The outcome of a search: ranked candidates, and the chosen cells.
#[derive(Debug, Clone, Serialize)]
pub struct Selection {
    pub test_type: TestType,
    pub candidates: Vec<Candidate>,
    /// The chosen design: the top candidate, or for multi-cell designs one disjoint candidate per cell
    /// re-evaluated with the other cells' geos removed from its donors.
    pub cells: Vec<Candidate>,
    pub n_shortlisted: usize,
}

/// Resolves a geo name (exact, else case-insensitive) for `option`.
fn resolve(panel: &Panel, option: &str, name: &str) -> Result<usize, DesignError> {
    panel.geo_index(name).map_err(|_| DesignError::UnknownGeo {
        option: option.into(),
        geo: name.into(),
        hint: closest(name, &panel.geos).map(|c| format!(" (did you mean {c:?}?)")).unwrap_or_default(),
    })
}

/// Pearson correlation of two series.
fn corr(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    if saa == 0.0 || sbb == 0.0 { 0.0 } else { sab / (saa * sbb).sqrt() }
}

/// Searches treated sets and durations and ranks them.
///
/// **Shortlist.** On the history before the earliest simulated test window (no look-ahead), the
/// Pearson correlation of every pair of geos is computed. For each size n and each eligible anchor geo,
/// the candidate is the fixed `include` geos plus the anchor plus the eligible geos most correlated
/// with the anchor, up to n geos (GeoLift's market-selection idea: treat markets that move together,
/// so the rest of the panel can reproduce their common path); candidates above `max_treated_share`
/// are dropped, duplicates removed.
///
/// **Evaluation.** Every (candidate, duration) gets a simulated power curve ([`PowerEngine`]) with all
/// other geos (excluded ones included) as donors. Parallel over candidates and windows; every random
/// draw is seeded from the master seed by (duration, window), so the result does not depend on the
/// thread count.
///
/// **Ranking** ([`rank`]): GeoLift-style average of ranks on |MDE|, |lift at zero| (the estimator's bias
/// on history with nothing injected — a design that "detects" lifts that are not there gets a small MDE
/// for the wrong reason) and scaled L2 pre-period imbalance.
pub fn search(panel: &Panel, spec: &SearchSpec, cfg: &PowerConfig) -> Result<Selection, DesignError> {
    let ng = panel.geos.len();
    let engine = PowerEngine::new(panel.kpi.view(), cfg)?;
    if spec.durations.is_empty() {
        return Err(bad("--duration", "give at least one test length"));
    }
    if spec.n_min == 0 || spec.n_min > spec.n_max {
        return Err(bad("--n-treated", format!("{}..{} is not a range of at least one geo", spec.n_min, spec.n_max)));
    }
    if spec.cells == 0 {
        return Err(bad("--cells", "need at least one cell"));
    }
    if !(spec.max_treated_share > 0.0 && spec.max_treated_share <= 1.0) {
        return Err(bad("--max-treated-share", format!("{} is not in (0, 1]", spec.max_treated_share)));
    }
    if !(spec.target_power > 0.0 && spec.target_power < 1.0) {
        return Err(bad("--power", format!("{} is not in (0, 1)", spec.target_power)));
    }
    let test_type = test_type(&cfg.effects)?;
    let include: Vec<usize> = spec.include.iter().map(|g| resolve(panel, "--include", g)).collect::<Result<_, _>>()?;
    let exclude: Vec<usize> = spec.exclude.iter().map(|g| resolve(panel, "--exclude", g)).collect::<Result<_, _>>()?;
    if let Some(&g) = include.iter().find(|g| exclude.contains(g)) {
        return Err(bad("--include/--exclude", format!("geo {:?} is both included and excluded", panel.geos[g])));
    }
    let include: Vec<usize> = include.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
    let exclude: Vec<usize> = exclude.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
    let eligible: Vec<usize> = (0..ng).filter(|g| !exclude.contains(g)).collect();
    let available = eligible.len().min(ng.saturating_sub(spec.min_controls)) / spec.cells;
    if spec.n_max > available {
        return Err(DesignError::TooManyTreated {
            requested: spec.n_max * spec.cells,
            available: available * spec.cells,
            geos: ng,
            excluded: exclude.len(),
            min_controls: spec.min_controls,
        });
    }
    if include.len() > spec.n_max {
        return Err(DesignError::NoCandidate {
            reason: format!(
                "--include lists {} geos but at most {} may be treated per cell",
                include.len(),
                spec.n_max
            ),
        });
    }
    for &d in &spec.durations {
        engine.check_duration(d)?;
    }

    // Correlations on the history before the earliest window's test start.
    let dmax = spec.durations.iter().copied().max().unwrap_or(1);
    let hist = panel.kpi.ncols() - dmax - (cfg.windows - 1) * cfg.step;
    let series: Vec<Vec<f64>> = (0..ng).map(|g| panel.kpi.row(g).iter().take(hist).copied().collect()).collect();
    let cm: Vec<Vec<f64>> = (0..ng).map(|a| (0..ng).map(|b| corr(&series[a], &series[b])).collect()).collect();
    let total: f64 = panel.kpi.sum();
    let geo_total: Vec<f64> = (0..ng).map(|g| panel.kpi.row(g).sum()).collect();
    let share = |set: &[usize]| set.iter().map(|&g| geo_total[g]).sum::<f64>() / total;

    let mut sets: BTreeSet<Vec<usize>> = BTreeSet::new();
    for n in spec.n_min.max(include.len()).max(1)..=spec.n_max {
        let anchors: Vec<Option<usize>> = if include.len() == n {
            vec![None]
        } else {
            eligible.iter().filter(|g| !include.contains(g)).map(|&g| Some(g)).collect()
        };
        for a in anchors {
            let mut set = include.clone();
            if let Some(a) = a {
                set.push(a);
                let mut others: Vec<usize> = eligible.iter().copied().filter(|g| !set.contains(g)).collect();
                others.sort_by(|&x, &y| cm[a][y].total_cmp(&cm[a][x]).then(x.cmp(&y)));
                set.extend(others.into_iter().take(n - set.len()));
            }
            set.sort_unstable();
            if set.len() == n && share(&set) <= spec.max_treated_share {
                sets.insert(set);
            }
        }
    }
    if sets.is_empty() {
        return Err(DesignError::NoCandidate {
            reason: format!(
                "every treated set of {}..{} geos holds more than --max-treated-share {} of the total KPI",
                spec.n_min, spec.n_max, spec.max_treated_share
            ),
        });
    }
    let sets: Vec<Vec<usize>> = sets.into_iter().collect();
    let n_shortlisted = sets.len();

    let perms: Vec<_> = spec.durations.iter().map(|&d| engine.permutations(d)).collect();
    let tasks: Vec<(usize, usize)> =
        (0..sets.len()).flat_map(|i| (0..spec.durations.len()).map(move |j| (i, j))).collect();
    let eval = |set: &[usize], di: usize, other_cells: &[usize]| -> Result<Candidate, DesignError> {
        let donors: Vec<usize> = (0..ng).filter(|g| !set.contains(g) && !other_cells.contains(g)).collect();
        let curve = engine.power_curve_with(set, &donors, spec.durations[di], &perms[di])?;
        let mde_both = curve.mde(spec.target_power);
        let (mde, on_side): (Option<f64>, Vec<f64>) = match test_type {
            TestType::HeavyUp => {
                (mde_both.positive, curve.points.iter().filter(|p| p.effect > 0.0).map(|p| p.power).collect())
            }
            TestType::GoDark => {
                (mde_both.negative, curve.points.iter().filter(|p| p.effect < 0.0).map(|p| p.power).collect())
            }
        };
        let rest: Vec<usize> = (0..ng).filter(|g| !set.contains(g)).collect();
        let correlation =
            set.iter().flat_map(|&a| rest.iter().map(move |&b| (a, b))).map(|(a, b)| cm[a][b]).sum::<f64>()
                / (set.len() * rest.len()).max(1) as f64;
        Ok(Candidate {
            rank: 0,
            treated: set.iter().map(|&g| panel.geos[g].clone()).collect(),
            duration: spec.durations[di],
            mde,
            mde_both,
            mean_power: on_side.iter().sum::<f64>() / on_side.len().max(1) as f64,
            treated_share: share(set),
            correlation,
            score: None,
            curve,
        })
    };
    let mut candidates: Vec<Candidate> =
        tasks.par_iter().map(|&(i, j)| eval(&sets[i], j, &[])).collect::<Result<_, _>>()?;
    rank(&mut candidates);

    // Cells: greedy disjoint top candidates at the best candidate's duration, re-evaluated without the
    // other cells' geos among the donors.
    let mut cells: Vec<Candidate> = vec![candidates[0].clone()];
    if spec.cells > 1 {
        let di = spec.durations.iter().position(|&d| d == candidates[0].duration).unwrap_or(0);
        let mut chosen: Vec<Vec<usize>> = vec![candidates[0].curve.treated.clone()];
        for c in &candidates[1..] {
            if chosen.len() == spec.cells {
                break;
            }
            if c.duration != candidates[0].duration {
                continue;
            }
            let set = c.curve.treated.clone();
            if chosen.iter().all(|s| s.iter().all(|g| !set.contains(g))) {
                chosen.push(set);
            }
        }
        if chosen.len() < spec.cells {
            return Err(DesignError::NoCandidate {
                reason: format!(
                    "only {} disjoint treated sets of {}..{} geos were found for {} cells",
                    chosen.len(),
                    spec.n_min,
                    spec.n_max,
                    spec.cells
                ),
            });
        }
        cells = (0..chosen.len())
            .into_par_iter()
            .map(|i| {
                let others: Vec<usize> =
                    chosen.iter().enumerate().filter(|&(j, _)| j != i).flat_map(|(_, s)| s.iter().copied()).collect();
                let mut c = eval(&chosen[i], di, &others)?;
                c.rank = i + 1;
                Ok(c)
            })
            .collect::<Result<_, DesignError>>()?;
    }
    Ok(Selection { test_type, candidates, cells, n_shortlisted })
}

/// The test's direction from the effect grid: heavy-up if it has a positive effect, go-dark if all
/// non-zero effects are negative.
pub fn test_type(effects: &[f64]) -> Result<TestType, DesignError> {
    if effects.iter().any(|&e| e > 0.0) {
        if effects.iter().any(|&e| e < 0.0) {
            return Err(bad(
                "--effects",
                "mixes positive and negative effects: a design is either heavy-up (> 0) or go-dark (< 0); run one of each",
            ));
        }
        Ok(TestType::HeavyUp)
    } else if effects.iter().any(|&e| e < 0.0) {
        Ok(TestType::GoDark)
    } else {
        Err(bad("--effects", "has no non-zero effect: nothing to detect"))
    }
}

type CandidateKey = Box<dyn Fn(&Candidate) -> f64>;

/// Sorts candidates and numbers them. Score = mean of the candidate's ranks (1 = best, ties get the
/// same rank) on |MDE| (not reached on the grid = worst), |lift at zero| and scaled L2 imbalance, as
/// GeoLift's market selection averages its criteria' ranks; ties broken by |MDE|, higher mean power,
/// smaller treated share, duration, then the treated names (a total order).
pub fn rank(c: &mut [Candidate]) {
    let n = c.len();
    let mde = |x: &Candidate| x.mde.map(f64::abs).unwrap_or(f64::INFINITY);
    let keys: [CandidateKey; 3] = [
        Box::new(mde),
        Box::new(|x: &Candidate| x.curve.lift_at_zero.abs()),
        Box::new(|x: &Candidate| x.curve.scaled_l2),
    ];
    let mut score = vec![0.0; n];
    for key in &keys {
        let v: Vec<f64> = c.iter().map(key).collect();
        for i in 0..n {
            score[i] += (1 + v.iter().filter(|&&w| w < v[i]).count()) as f64 / keys.len() as f64;
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| {
        let (a, b) = (&c[i], &c[j]);
        score[i]
            .total_cmp(&score[j])
            .then(mde(a).total_cmp(&mde(b)))
            .then(b.mean_power.total_cmp(&a.mean_power))
            .then(a.treated_share.total_cmp(&b.treated_share))
            .then(a.duration.cmp(&b.duration))
            .then(a.treated.cmp(&b.treated))
    });
    let sorted: Vec<Candidate> = order.iter().map(|&i| c[i].clone()).collect();
    for (i, (slot, mut x)) in c.iter_mut().zip(sorted).enumerate() {
        x.rank = i + 1;
        x.score = Some(score[order[i]]);
        *slot = x;
    }
}
