//! Market selection: candidate treated sets from a correlation shortlist, evaluated by simulated power
//! over rolling historical windows, ranked; multi-cell designs from disjoint top candidates.

use super::error::{DesignError, bad};
use super::power::{DesignEstimator, Mde, PowerConfig, PowerCurve, PowerEngine};
use crate::panel::Panel;
use crate::progress::{NoProgress, Progress};
use mmloop_data::closest;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Direction of the test: heavy-up (positive effects) or go-dark (negative effects).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Donor pre-screen for synthetic control: each design's donor pool is the `max_donors` geos
    /// most correlated with its treated average over the history before the earliest simulated
    /// test (0 = every other geo). Bounds each weight fit at O(K²·T) on large panels.
    pub max_donors: usize,
    /// Most treated sets evaluated: when the shortlist is longer, the sets most correlated with the
    /// rest of the panel on average (the `correlation` criterion) are kept (0 = no limit).
    pub max_candidates: usize,
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
            max_donors: 50,
            max_candidates: 200,
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
    /// Treated sets dropped by `max_candidates` (0 when the shortlist fit).
    pub n_capped: usize,
    /// The donor pre-screen in force: `Some(K)` when some design's donor pool was cut to K geos.
    pub donor_screen: Option<usize>,
}

impl Selection {
    /// Every number of every evaluated candidate and cell is finite; the error names the first that
    /// is not (its treated set, duration and quantity). Written outputs never hold NaN or ∞.
    pub fn check_finite(&self) -> Result<(), DesignError> {
        for c in self.candidates.iter().chain(&self.cells) {
            let cv = &c.curve;
            let mut items: Vec<(String, f64)> = vec![
                ("lift at zero".into(), cv.lift_at_zero),
                ("standard error of the lift".into(), cv.se_lift),
                ("model standard error of the lift".into(), cv.se_lift_model),
                ("baseline KPI".into(), cv.baseline_kpi),
                ("scaled L2 imbalance".into(), cv.scaled_l2),
                ("treated share".into(), c.treated_share),
                ("correlation".into(), c.correlation),
            ];
            for p in &cv.points {
                items.push((format!("power at effect {}", p.effect), p.power));
                items.push((format!("mean estimate at effect {}", p.effect), p.mean_estimate));
                items.push((format!("spread at effect {}", p.effect), p.sd));
            }
            if let Some((what, v)) = items.into_iter().find(|(_, v)| !v.is_finite()) {
                return Err(DesignError::NonFinite {
                    treated: c.treated.join(", "),
                    duration: c.duration,
                    what: format!("{what} ({v})"),
                });
            }
        }
        Ok(())
    }
}

/// Resolves a geo name (exact, else case-insensitive) for `option`.
fn resolve(panel: &Panel, option: &str, name: &str) -> Result<usize, DesignError> {
    panel.geo_index(name).map_err(|_| DesignError::UnknownGeo {
        option: option.into(),
        geo: name.into(),
        hint: closest(name, &panel.geos).map(|c| format!(" (did you mean {c:?}?)")).unwrap_or_default(),
    })
}

/// A series centred and scaled to unit norm, so that the Pearson correlation of two series is the
/// dot product of their standardised forms (a constant series becomes 0: correlation 0).
fn standardise(x: &[f64]) -> Vec<f64> {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let ss: f64 = x.iter().map(|v| (v - m).powi(2)).sum();
    if ss == 0.0 { vec![0.0; x.len()] } else { x.iter().map(|v| (v - m) / ss.sqrt()).collect() }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
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
///
/// **Scale.** Correlations are dot products of standardised series, computed per anchor without
/// storing the G × G matrix (O(G²·T) time, O(G·T) memory); at most `max_candidates` sets are
/// evaluated; each synthetic-control design draws its donors from the `max_donors` geos most
/// correlated with its treated average (both stated in the [`Selection`]).
pub fn search(panel: &Panel, spec: &SearchSpec, cfg: &PowerConfig) -> Result<Selection, DesignError> {
    search_with_progress(panel, spec, cfg, &NoProgress)
}

/// [`search`] reporting its progress (one step per evaluated design) to `progress`.
pub fn search_with_progress(
    panel: &Panel,
    spec: &SearchSpec,
    cfg: &PowerConfig,
    progress: &dyn Progress,
) -> Result<Selection, DesignError> {
    let ng = panel.geos.len();
    if let Some(o) = &panel.observed {
        let n = o.iter().filter(|&&v| !v).count();
        if n > 0 {
            let i = o.iter().position(|&v| !v).unwrap_or(0);
            return Err(crate::error::GeoLiftError::Gaps {
                estimator: "design".into(),
                source_name: panel.source.clone(),
                missing: n,
                geo: panel.geos[i / o.ncols()].clone(),
                time: panel.time_labels[i % o.ncols()].clone(),
            }
            .into());
        }
    }
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
    if spec.cells > ng {
        return Err(bad("--cells", format!("{} cells cannot be formed from {ng} geos", spec.cells)));
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
            requested: spec.n_max.saturating_mul(spec.cells),
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
    engine.check_memory(&spec.durations)?;

    // Correlations on the history before the earliest window's test start (check_duration has made
    // sure it is at least min_pre periods long).
    let dmax = spec.durations.iter().copied().max().unwrap_or(1);
    let hist = panel.kpi.ncols() - dmax - (cfg.windows - 1) * cfg.step;
    let z: Vec<Vec<f64>> = (0..ng)
        .into_par_iter()
        .map(|g| standardise(&panel.kpi.row(g).iter().take(hist).copied().collect::<Vec<_>>()))
        .collect();
    let zsum: Vec<f64> = (0..hist).map(|t| z.iter().map(|s| s[t]).sum()).collect();
    let total: f64 = panel.kpi.sum();
    let geo_total: Vec<f64> = (0..ng).map(|g| panel.kpi.row(g).sum()).collect();
    let share = |set: &[usize]| set.iter().map(|&g| geo_total[g]).sum::<f64>() / total;

    // For every anchor, the eligible geos most correlated with it (descending, ties by index): the
    // largest set needs n_max − |include| − 1 of them.
    let need = spec.n_max.saturating_sub(include.len() + 1);
    let anchors: Vec<usize> = eligible.iter().copied().filter(|g| !include.contains(g)).collect();
    // Correlations in blocks of anchors: C = Z_block · Zᵀ (faer's sequential matrix product, so every
    // entry is summed the same way whatever the thread count; blocks run in parallel).
    let zm = faer::Mat::<f64>::from_fn(ng, hist, |g, t| z[g][t]);
    let neighbours: Vec<Vec<usize>> = anchors
        .par_chunks(256)
        .flat_map_iter(|chunk| {
            let za = faer::Mat::<f64>::from_fn(chunk.len(), hist, |i, t| z[chunk[i]][t]);
            let mut c = faer::Mat::<f64>::zeros(chunk.len(), ng);
            faer::linalg::matmul::matmul(&mut c, faer::Accum::Replace, &za, zm.transpose(), 1.0, faer::Par::Seq);
            let include = &include;
            let eligible = &eligible;
            (0..chunk.len()).map(move |i| {
                let a = chunk[i];
                let mut others: Vec<(usize, f64)> = eligible
                    .iter()
                    .copied()
                    .filter(|&g| g != a && !include.contains(&g))
                    .map(|g| (g, c[(i, g)]))
                    .collect();
                let cmp = |x: &(usize, f64), y: &(usize, f64)| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0));
                if need < others.len() {
                    others.select_nth_unstable_by(need, cmp);
                    others.truncate(need);
                }
                others.sort_by(cmp);
                // a fresh vector: collecting `into_iter()` would reuse (and keep) the G-long allocation
                others.iter().map(|&(g, _)| g).collect::<Vec<usize>>()
            })
        })
        .collect();
    let mut sets: BTreeSet<Vec<usize>> = BTreeSet::new();
    for n in spec.n_min.max(include.len()).max(1)..=spec.n_max {
        if include.len() == n {
            let mut set = include.clone();
            set.sort_unstable();
            if share(&set) <= spec.max_treated_share {
                sets.insert(set);
            }
            continue;
        }
        for (ai, &a) in anchors.iter().enumerate() {
            let mut set = include.clone();
            set.push(a);
            let k = n - set.len();
            set.extend(neighbours[ai].iter().copied().take(k));
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
    // mean correlation of a set's geos with the rest: Σ_{a∈set} z_a·(Σ_all z − Σ_{b∈set} z_b) / (|set|·|rest|)
    let mean_corr = |set: &[usize]| -> f64 {
        let inside: Vec<f64> = (0..hist).map(|t| set.iter().map(|&b| z[b][t]).sum()).collect();
        let rest: Vec<f64> = (0..hist).map(|t| zsum[t] - inside[t]).collect();
        set.iter().map(|&a| dot(&z[a], &rest)).sum::<f64>() / (set.len() * (ng - set.len())).max(1) as f64
    };
    let mut sets: Vec<Vec<usize>> = sets.into_iter().collect();
    let n_shortlisted = sets.len();
    let mut n_capped = 0;
    if spec.max_candidates > 0 && sets.len() > spec.max_candidates {
        let mut scored: Vec<(f64, Vec<usize>)> = sets.into_par_iter().map(|s| (mean_corr(&s), s)).collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        n_capped = scored.len() - spec.max_candidates;
        scored.truncate(spec.max_candidates);
        sets = scored.into_iter().map(|(_, s)| s).collect();
        sets.sort();
    }
    // Donor pool of a design: every geo outside the treated set and the other cells, cut to the
    // `max_donors` most correlated with the treated average over `hist` for synthetic control.
    let screen = matches!(cfg.estimator, DesignEstimator::Sc { .. }) && spec.max_donors > 0;
    let donor_pool = |set: &[usize], other_cells: &[usize]| -> Vec<usize> {
        let all: Vec<usize> = (0..ng).filter(|g| !set.contains(g) && !other_cells.contains(g)).collect();
        if !screen || all.len() <= spec.max_donors {
            return all;
        }
        let k = set.len() as f64;
        let avg: Vec<f64> = (0..hist).map(|t| set.iter().map(|&g| panel.kpi[[g, t]]).sum::<f64>() / k).collect();
        let za = standardise(&avg);
        let mut scored: Vec<(usize, f64)> = all.iter().map(|&g| (g, dot(&za, &z[g]))).collect();
        let cmp = |x: &(usize, f64), y: &(usize, f64)| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0));
        scored.select_nth_unstable_by(spec.max_donors, cmp);
        scored.truncate(spec.max_donors);
        let mut keep: Vec<usize> = scored.iter().map(|&(g, _)| g).collect();
        keep.sort_unstable();
        keep
    };
    let donor_screen = (screen && ng.saturating_sub(spec.n_min) > spec.max_donors).then_some(spec.max_donors);

    let perms: Vec<_> = spec.durations.iter().map(|&d| engine.permutations(d)).collect();
    let tasks: Vec<(usize, usize)> =
        (0..sets.len()).flat_map(|i| (0..spec.durations.len()).map(move |j| (i, j))).collect();
    let eval = |set: &[usize], di: usize, other_cells: &[usize]| -> Result<Candidate, DesignError> {
        let donors = donor_pool(set, other_cells);
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
        let correlation = mean_corr(set);
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
    progress.start("design: simulating power", tasks.len() as u64);
    let mut candidates: Vec<Candidate> = tasks
        .par_iter()
        .map(|&(i, j)| {
            let c = eval(&sets[i], j, &[]);
            progress.inc(1);
            c
        })
        .collect::<Result<_, _>>()?;
    progress.finish();
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
    Ok(Selection { test_type, candidates, cells, n_shortlisted, n_capped, donor_screen })
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
