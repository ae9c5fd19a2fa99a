//! The cycle driver: see the module documentation of [`crate::cycle`].

use super::CycleError;
use super::budget::{self, BudgetOutcome, ChannelChange, ChannelState};
use super::config::LoopConfig;
use super::fit::{self as cfit, PredictedBefore};
use crate::ledger::{Ledger, PlannedExperiment, Status};
use crate::validate::{self, FitCheck};
use mmloop_data::human::amount;
use mmloop_data::{FileHash, OutputDir, hash_bytes};
use mmloop_mmm::Dataset;
use mmloop_mmm::analysis::Stat;
use mmloop_mmm::fit::FitOptions;
use mmloop_mmm::optimize::FittedModel;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The file in a loop directory that marks it as one (JSON with the loop's id).
pub const LOOP_MARKER: &str = ".mmloop-loop";

/// A loop's output directory `DIR`: `DIR/cycle-N/` per finished cycle, `DIR/fit-N/` its fit.
#[derive(Debug, Clone)]
pub struct LoopDir {
    root: PathBuf,
    id: String,
    /// What [`LoopDir::open`] found: `Some(true)` when it created `root`, `Some(false)` when `root`
    /// was an empty directory it made a loop directory, `None` when it was one already.
    made: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    program: String,
    kind: String,
    id: String,
}

impl LoopDir {
    /// Opens `root` as a loop directory: created when missing; an empty directory becomes one; an
    /// existing one must carry the loop marker (a folder of the user's files is refused). `root`
    /// may not be, or lie inside, any of `inputs`.
    pub fn open(root: &Path, inputs: &[&Path]) -> Result<Self, CycleError> {
        let err = |message: String| CycleError::LoopDir { dir: root.to_path_buf(), message };
        // the same overlap rules as every output: not an input, not inside one, not the working directory
        OutputDir::check(root.join("cycle-1"), "loop", inputs)?;
        for i in inputs {
            if let (Ok(a), Ok(b)) = (std::fs::canonicalize(i), std::fs::canonicalize(root))
                && a == b
            {
                return Err(err(format!("it is an input ({}); give a new directory for the loop", i.display())));
            }
        }
        let marker = root.join(LOOP_MARKER);
        if root.exists() {
            if !root.is_dir() {
                return Err(err("it is a file, not a directory; give a new directory for the loop".into()));
            }
            if let Ok(text) = std::fs::read_to_string(&marker) {
                let m: Marker = serde_json::from_str(&text)
                    .map_err(|e| err(format!("its {LOOP_MARKER} is not a loop marker ({e})")))?;
                return Ok(Self { root: root.to_path_buf(), id: m.id, made: None });
            }
            let mut entries = std::fs::read_dir(root).map_err(|e| err(e.to_string()))?;
            if entries.next().is_some() {
                return Err(err(
                    "it holds files but is not an mmloop loop directory; give a new or empty directory".into()
                ));
            }
        }
        let created = !root.exists();
        if created {
            std::fs::create_dir_all(root).map_err(|e| err(format!("cannot create it: {e}")))?;
        }
        let abs = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let id = hash_bytes(abs.display().to_string().as_bytes())[..12].to_string();
        let m = Marker { program: "mmloop".into(), kind: "loop".into(), id: id.clone() };
        mmloop_data::write_atomic(&marker, serde_json::to_string_pretty(&m)?.as_bytes())?;
        Ok(Self { root: root.to_path_buf(), id, made: Some(created) })
    }

    /// Undoes [`LoopDir::open`] after a run that failed before any cycle finished: when this open
    /// made the loop directory (created it, or marked an empty one) and it holds no finished
    /// cycle, everything in it is removed (every file in it was written by this run), and the
    /// directory itself when this open created it. So a first cycle that fails (bad data, a fit
    /// that cannot run) leaves nothing behind. Otherwise (an existing loop, or a finished cycle)
    /// nothing is touched: what is there is a resumable state. Returns whether it removed anything.
    /// Best effort: a file that cannot be removed is left (the run's own error is the one to report).
    pub fn abandon(&self) -> bool {
        let Some(created) = self.made else { return false };
        if !matches!(self.cycles(), Ok(c) if c.is_empty()) {
            return false;
        }
        if created {
            return std::fs::remove_dir_all(&self.root).is_ok();
        }
        let Ok(rd) = std::fs::read_dir(&self.root) else { return false };
        let mut all = true;
        for e in rd.flatten() {
            let p = e.path();
            let dir = e.file_type().is_ok_and(|t| t.is_dir());
            let r = if dir { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
            all &= r.is_ok();
        }
        all
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The loop's id (in its plan keys).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn cycle_dir(&self, n: u32) -> PathBuf {
        self.root.join(format!("cycle-{n}"))
    }

    pub fn fit_dir(&self, n: u32) -> PathBuf {
        self.root.join(format!("fit-{n}"))
    }

    /// The finished cycles (committed `cycle-N` directories with a readable `cycle.json`), in order.
    pub fn cycles(&self) -> Result<Vec<CycleState>, CycleError> {
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&self.root)
            .map_err(|e| CycleError::LoopDir { dir: self.root.clone(), message: e.to_string() })?;
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(n) = name.strip_prefix("cycle-").and_then(|s| s.parse::<u32>().ok()) else { continue };
            let p = e.path().join("cycle.json");
            if mmloop_data::read_marker(&e.path()).is_none() || !p.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&p).map_err(|source| CycleError::Io {
                path: p.clone(),
                what: "a cycle's state".into(),
                source,
            })?;
            let s: CycleState = serde_json::from_str(&text).map_err(|e| CycleError::LoopDir {
                dir: p.clone(),
                message: format!("not a cycle state ({e}); remove cycle-{n} to run it again"),
            })?;
            if s.cycle == n {
                out.push(s);
            }
        }
        out.sort_by_key(|s| s.cycle);
        Ok(out)
    }
}

/// `cycle.json`: what a finished cycle was run on and what it concluded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CycleState {
    pub cycle: u32,
    /// SHA-256 over the loop settings, the MMM spec, the data and the read readouts.
    pub inputs_key: String,
    pub fit_dir: String,
    pub fit_id: i64,
    pub fit_reused: bool,
    pub method: String,
    /// The read experiments the fit calibrated on.
    pub readouts: Vec<i64>,
    /// The readouts new since the last cycle, and those whose prediction disagreed (|z| > threshold).
    pub new_readouts: Vec<i64>,
    pub flagged: Vec<i64>,
    /// The experiments planned by this cycle.
    pub planned: Vec<i64>,
    pub channels: Vec<ChannelState>,
    /// The recommendation's expected outcome and its 90 % interval, and the current allocation's.
    pub optimal_outcome: Stat,
    pub current_outcome: Stat,
    pub budget: f64,
}

/// A test the chooser picked, with why, in words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedTest {
    pub experiment: PlannedExperiment,
    /// One line: why this test (its value, information, cost).
    pub why: String,
    /// Its cost in money (opportunity cost of the design).
    pub cost: f64,
}

/// What the chooser returns: the tests to plan, and its artefacts for `cycle-N/`.
#[derive(Debug, Clone, Default)]
pub struct Chosen {
    pub tests: Vec<PlannedTest>,
    /// Files (name, bytes) written into the cycle directory, e.g. `ranking.json`.
    pub artefacts: Vec<(String, Vec<u8>)>,
    /// Lines for the brief besides the tests (e.g. why nothing is worth testing).
    pub notes: Vec<String>,
}

/// What a chooser sees.
pub struct ChooseInput<'a> {
    pub cycle: u32,
    pub config: &'a LoopConfig,
    /// The calibrated fit.
    pub fit: &'a FittedModel,
    pub ledger: &'a Ledger,
    pub evidence: &'a [EvidenceSummary],
    /// The KPI the calibrated fit credits to each channel over the data (posterior mean contribution).
    pub credited: &'a [(String, f64)],
    pub seed: u64,
}

/// Phase 2's seam: ranks candidate tests and picks the cycle's portfolio.
pub trait TestChooser {
    fn choose(&mut self, input: &ChooseInput<'_>) -> Result<Chosen, CycleError>;
}

/// A chooser that plans nothing and says so (`--no-tests`: a cycle that only fits and recommends).
#[derive(Debug, Clone)]
pub struct NoTests(pub String);

impl TestChooser for NoTests {
    fn choose(&mut self, _: &ChooseInput<'_>) -> Result<Chosen, CycleError> {
        Ok(Chosen { notes: vec![self.0.clone()], ..Default::default() })
    }
}

/// Run-time options of a cycle.
#[derive(Debug, Clone, Copy, Default)]
pub struct CycleOptions {
    /// No progress bar in the fit.
    pub quiet: bool,
}

/// What a cycle did.
#[derive(Debug, Clone)]
pub struct CycleReport {
    pub state: CycleState,
    /// The cycle's inputs equal the last finished cycle's: nothing was run.
    pub up_to_date: bool,
    pub dir: PathBuf,
    /// Files written into the cycle directory.
    pub files: Vec<String>,
    pub brief: String,
    pub changes: Vec<ChannelChange>,
    pub checks: Vec<FitCheck>,
    pub discrepancies: Vec<validate::Discrepancy>,
}

/// The fit directory of an earlier run whose saved config equals `saved_toml` and whose data and
/// MMM config hashes are the ones given: reusable as it is.
fn reusable_fit(dir: &Path, saved_toml: &str, config_sha: &str, data_sha: &str) -> bool {
    let Ok(fd) = mmloop_mmm::fitdir::FitDir::open(dir) else { return false };
    let Ok(Some(p)) = fd.provenance() else { return false };
    p.saved_config_sha256 == hash_bytes(saved_toml.as_bytes())
        && p.config.sha256 == config_sha
        && p.data.sha256 == data_sha
}

/// Runs (or finishes) the next cycle of the loop in `dir`. `progress` hears of each step.
pub fn run_cycle(
    cfg: &LoopConfig,
    dir: &LoopDir,
    chooser: &mut dyn TestChooser,
    options: CycleOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<CycleReport, CycleError> {
    let mut spec = cfg.spec.clone();
    let data = Dataset::load(&spec)?;
    let config_hash = FileHash::of(&cfg.model)?;
    let data_hash = FileHash::of(&spec.data.path)?;
    let mut ledger = Ledger::open_or_create(&cfg.ledger)?;
    let finished = dir.cycles()?;
    let last = finished.last().cloned();

    // the cycle's inputs: settings, spec, data and the read readouts (planned tests do not count)
    let read: Vec<(i64, String)> = ledger
        .experiments()?
        .into_iter()
        .filter(|e| e.status == Status::Read)
        .filter_map(|e| e.readout.map(|r| (e.id, r.record_hash)))
        .collect();
    let settings = format!(
        "{:?}|{:?}|{:?}|{:?}|{}",
        cfg.budget,
        cfg.tests,
        cfg.fit,
        cfg.threshold,
        mmloop_mmm::config::to_toml(&spec)
    );
    let inputs_key = hash_bytes(
        serde_json::to_string(&serde_json::json!({
            "settings": hash_bytes(settings.as_bytes()),
            "model": config_hash.sha256,
            "data": data_hash.sha256,
            "readouts": read,
        }))?
        .as_bytes(),
    );
    if let Some(l) = &last
        && l.inputs_key == inputs_key
    {
        let cdir = dir.cycle_dir(l.cycle);
        let brief = std::fs::read_to_string(cdir.join("brief.txt")).unwrap_or_default();
        return Ok(CycleReport {
            state: l.clone(),
            up_to_date: true,
            dir: cdir,
            files: Vec::new(),
            brief,
            changes: Vec::new(),
            checks: Vec::new(),
            discrepancies: Vec::new(),
        });
    }
    let n = last.as_ref().map_or(1, |l| l.cycle + 1);
    progress(&format!(
        "cycle {n}: {} × {}, {}",
        mmloop_data::human::count(data.n_geos(), "geo"),
        mmloop_data::human::count(data.n_times(), "period"),
        mmloop_data::human::count(data.n_channels(), "channel")
    ));

    // validate, before calibrating: the previous cycle's fit predicts the readouts none has predicted
    let predicted: PredictedBefore = match last.as_ref().map(|l| PathBuf::from(&l.fit_dir)).filter(|d| d.is_dir()) {
        Some(d) => match FittedModel::load_checked(&d) {
            Ok((m, _)) => {
                let (id, _) = validate::register_fit(&mut ledger, &d, &m)?;
                cfit::predict_with(&mut ledger, &m, id).unwrap_or_else(|e| PredictedBefore {
                    note: Some(format!("the new readouts were not predicted by the last cycle's fit {id}: {e}")),
                    ..Default::default()
                })
            }
            Err(_) => cfit::predict_before_calibrating(&mut ledger, &config_hash.sha256),
        },
        None => cfit::predict_before_calibrating(&mut ledger, &config_hash.sha256),
    };

    // phase 1: the calibrated fit, reused when an earlier run made the same one
    let cal = cfit::calibrate_on_ledger(&cfg.fit, ledger, &mut spec, &data)?;
    let mut saved = spec.clone();
    if let Ok(p) = std::fs::canonicalize(&saved.data.path) {
        saved.data.path = p;
    }
    let saved_toml = mmloop_mmm::config::to_toml(&saved);
    let fit_dir = dir.fit_dir(n);
    let reused = reusable_fit(&fit_dir, &saved_toml, &config_hash.sha256, &data_hash.sha256);
    if reused {
        progress(&format!("cycle {n}: reusing the fit in {} (same config, data and readouts)", fit_dir.display()));
    } else {
        progress(&format!("cycle {n}: fitting by {} on {} readouts …", spec.fit.method, cal.combined.used.len()));
        let options = FitOptions { quiet: options.quiet, ..Default::default() };
        let result = cfit::fit_calibrated(&spec, &data, options, Some(&cal), &cfg.model)?;
        let analysis = mmloop_mmm::fit::analyse_checked(&result, &data)
            .map_err(|source| CycleError::Fit { context: format!("analysing cycle {n}'s fit"), source })?;
        let info = mmloop_mmm::fit::model_info(&spec, &data, &result);
        let (_, json) = cfit::evidence(&cfg.fit, &cal, &spec, &data, &result, &analysis, progress)?;
        let inputs = mmloop_mmm::output::FitInputs {
            config: config_hash.clone(),
            data: data_hash.clone(),
            others: vec![cfg.ledger.clone()],
        };
        mmloop_mmm::output::write_outputs_with(
            &fit_dir,
            &result.model,
            &analysis,
            &result.draws,
            &result.diagnostics,
            &result.sample_stats,
            &info,
            &saved_toml,
            &inputs,
            &[("evidence.json", serde_json::to_string_pretty(&json)?.into_bytes())],
        )?;
    }
    let evidence_rows = read_evidence(&fit_dir)?;
    let mut ledger = cal.ledger;
    let fitted = FittedModel::load_checked(&fit_dir)?.0;
    // recorded once: register_fit finds the fit already recorded with this directory and hashes
    let (fit_id, _) = validate::register_fit(&mut ledger, &fit_dir, &fitted)?;
    let summary = mmloop_mmm::fitdir::FitDir::open(&fit_dir)
        .and_then(|d| d.summary())
        .map_err(|e| CycleError::FitDir { dir: fit_dir.clone(), message: e.to_string() })?;
    let roi: Vec<(String, Stat)> = summary.channels.iter().map(|c| (c.name.clone(), c.roi)).collect();
    let credited: Vec<(String, f64)> = summary.channels.iter().map(|c| (c.name.clone(), c.contribution.mean)).collect();

    // validate the new readouts: prediction vs readout, and whether the calibrated fit reconciles them
    let seen: Vec<i64> = last.as_ref().map(|l| l.readouts.clone()).unwrap_or_default();
    let new_readouts: Vec<i64> = read.iter().map(|(id, _)| *id).filter(|id| !seen.contains(id)).collect();
    let mut discrepancies = Vec::new();
    for id in &new_readouts {
        let e = ledger.experiment(*id)?;
        let Some(r) = &e.readout else { continue };
        if let Some(d) = predicted.discrepancies.iter().find(|d| d.experiment_id == Some(*id)) {
            discrepancies.push(d.clone());
            continue;
        }
        // predicted earlier (an interrupted run, or by hand): the first out-of-sample prediction
        let preds = ledger.predictions_for(*id)?;
        if let Some(p) = preds.iter().find(|p| p.fit_id != fit_id) {
            discrepancies.push(validate::discrepancy(Some(*id), &r.record, p, false, cfg.threshold)?);
        }
    }
    let mut checks: Vec<FitCheck> = Vec::new();
    let mut check_notes: Vec<String> = Vec::new();
    for id in &new_readouts {
        let e = ledger.experiment(*id)?;
        let Some(r) = &e.readout else { continue };
        match validate::check_readout_against(&fitted, Some(*id), &r.record, cfg.threshold) {
            Ok(c) => checks.push(c),
            Err(e) => check_notes.push(format!("the calibrated fit could not be checked against experiment {id}: {e}")),
        }
    }
    let flagged: Vec<i64> = discrepancies.iter().filter(|d| d.flagged).filter_map(|d| d.experiment_id).collect();

    // phase 2: the next tests, planned once per (loop, cycle, content)
    progress(&format!("cycle {n}: ranking the next tests …"));
    let seed = spec.fit.seed.wrapping_add(u64::from(n));
    let chosen = chooser.choose(&ChooseInput {
        cycle: n,
        config: cfg,
        fit: &fitted,
        ledger: &ledger,
        evidence: &evidence_rows,
        credited: &credited,
        seed,
    })?;
    let mut items = Vec::new();
    for t in &chosen.tests {
        let content = hash_bytes(serde_json::to_string(&t.experiment)?.as_bytes());
        items.push((format!("loop:{}:cycle-{n}:{}", dir.id(), &content[..16]), t.experiment.clone()));
    }
    let planned: Vec<i64> = ledger.plan_keyed(&items)?.into_iter().map(|(id, _)| id).collect();

    // phase 4: the budget on the calibrated posterior, and what moved since the last cycle; the
    // plan in force is the last cycle's recommendation (for `against_plan`)
    progress(&format!("cycle {n}: optimising the budget …"));
    let in_force: Option<Vec<(String, f64)>> =
        last.as_ref().map(|l| l.channels.iter().map(|c| (c.channel.clone(), c.recommended_spend)).collect());
    let rec = budget::recommend(&fitted, &cfg.budget, in_force.as_deref())?;
    let mut experiments_of: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (id, _) in &read {
        for ch in ledger.experiment(*id)?.channels {
            experiments_of.entry(ch).or_default().push(*id);
        }
    }
    let channels = budget::channel_states(&roi, &rec, &evidence_rows, &experiments_of);
    let changes = last.as_ref().map(|l| budget::changes(&l.channels, &channels)).unwrap_or_default();
    let state = CycleState {
        cycle: n,
        inputs_key,
        fit_dir: std::fs::canonicalize(&fit_dir).unwrap_or(fit_dir.clone()).display().to_string(),
        fit_id,
        fit_reused: reused,
        method: summary.diagnostics.method().to_string(),
        readouts: read.iter().map(|(i, _)| *i).collect(),
        new_readouts: new_readouts.clone(),
        flagged,
        planned: planned.clone(),
        channels,
        optimal_outcome: rec.report.optimal_outcome,
        current_outcome: rec.report.current_outcome,
        budget: rec.report.budget,
    };
    let brief = brief(
        &state,
        &rec,
        &chosen,
        &discrepancies,
        &checks,
        &changes,
        &predicted,
        &spec.data.kpi_column,
        &evidence_rows,
    );

    // the cycle's directory, last: its presence means the cycle finished
    let cdir = dir.cycle_dir(n);
    let protected: Vec<&Path> = vec![&cfg.model, &cfg.ledger, &spec.data.path];
    let out = OutputDir::create_for(&cdir, "loop", &protected)?;
    let mut files = Vec::new();
    let mut put = |name: &str, bytes: Vec<u8>| -> Result<(), CycleError> {
        out.write(name, &bytes)?;
        files.push(name.to_string());
        Ok(())
    };
    put("cycle.json", serde_json::to_string_pretty(&state)?.into_bytes())?;
    put("brief.txt", brief.clone().into_bytes())?;
    put("evidence.json", serde_json::to_string_pretty(&evidence_rows)?.into_bytes())?;
    put(
        "validation.json",
        serde_json::to_string_pretty(&serde_json::json!({
            "threshold": cfg.threshold.value(),
            "new_readouts": new_readouts,
            "predicted_before_calibrating": discrepancies,
            "calibrated_fit_checks": checks,
            "note": predicted.note,
            "check_notes": check_notes,
        }))?
        .into_bytes(),
    )?;
    let plan_json: Vec<serde_json::Value> =
        chosen.tests.iter().zip(&planned).map(|(t, id)| serde_json::json!({"experiment_id": id, "test": t})).collect();
    put(
        "plan.json",
        serde_json::to_string_pretty(&serde_json::json!({"tests": plan_json, "notes": chosen.notes}))?.into_bytes(),
    )?;
    for (name, bytes) in &chosen.artefacts {
        put(name, bytes.clone())?;
    }
    put("budget.json", serde_json::to_string_pretty(&rec.report)?.into_bytes())?;
    let mut csv =
        String::from("channel,roi_mean,roi_q05,roi_q95,current_spend,recommended_spend,lower,upper,marginal_return\n");
    for c in &rec.report.channels {
        let r = roi.iter().find(|(n, _)| n == &c.channel).map(|(_, s)| *s);
        let (m, lo, hi) = r.map_or((f64::NAN, f64::NAN, f64::NAN), |s| (s.mean, s.q05, s.q95));
        let _ = writeln!(
            csv,
            "{},{m},{lo},{hi},{},{},{},{},{}",
            c.channel, c.current_spend, c.optimal_spend, c.lower, c.upper, c.marginal_return
        );
    }
    put("budget.csv", csv.into_bytes())?;
    put("changes.json", serde_json::to_string_pretty(&changes)?.into_bytes())?;
    let cdir = out.commit()?;
    Ok(CycleReport { state, up_to_date: false, dir: cdir, files, brief, changes, checks, discrepancies })
}

/// A channel's evidence as a fit's `evidence.json` states it ([`crate::calibrate::ChannelEvidence`]),
/// the part a cycle uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceSummary {
    pub channel: String,
    pub n_readouts: usize,
    pub half_life_weeks: f64,
    pub newest_experiment: Option<i64>,
    pub newest_age_weeks: Option<f64>,
    pub variance_inflation: Option<f64>,
    pub roi_sd: f64,
    pub due_for_retest: Option<bool>,
}

/// The channels of `DIR/evidence.json`.
fn read_evidence(fit_dir: &Path) -> Result<Vec<EvidenceSummary>, CycleError> {
    let p = fit_dir.join("evidence.json");
    let text = std::fs::read_to_string(&p).map_err(|source| CycleError::Io {
        path: p.clone(),
        what: "the fit's evidence".into(),
        source,
    })?;
    #[derive(Deserialize)]
    struct File {
        channels: Vec<EvidenceSummary>,
    }
    let f: File = serde_json::from_str(&text)
        .map_err(|e| CycleError::FitDir { dir: fit_dir.to_path_buf(), message: format!("evidence.json: {e}") })?;
    Ok(f.channels)
}

/// The plain-language brief of a cycle.
/// The recommendation against the current split in words. When the budget differs from what the
/// current split spends over the horizon, the gain compares two different totals: say so, with the
/// difference, so a loss is not read as a worse split of the same money.
fn against_current(r: &mmloop_mmm::optimize::OptimizationReport) -> String {
    let current: f64 = r.channels.iter().map(|c| c.current_spend).sum();
    let gain = format!(
        "{}{} vs the current split (positive in {} of draws)",
        if r.gain.mean > 0.0 { "+" } else { "" },
        amount(r.gain.mean),
        mmloop_data::human::percent(r.prob_gain_positive)
    );
    let diff = r.budget - current;
    let mut out = if diff.abs() <= 1e-6 * current.abs().max(1.0) {
        gain
    } else {
        format!(
            "{gain}, which spends {} ({} {} than the budget)",
            amount(current),
            amount(diff.abs()),
            if diff > 0.0 { "less" } else { "more" }
        )
    };
    // a current split outside the guardrails is not one of the recommendation's options
    let outside: Vec<String> = r
        .channels
        .iter()
        .filter_map(|c| {
            if c.current_spend < c.lower {
                Some(format!("{} {} < {}", c.channel, amount(c.current_spend), amount(c.lower)))
            } else if c.current_spend > c.upper {
                Some(format!("{} {} > {}", c.channel, amount(c.current_spend), amount(c.upper)))
            } else {
                None
            }
        })
        .collect();
    if !outside.is_empty() {
        let _ = write!(
            out,
            "; the current split lies outside the bounds ({}), so the bounded recommendation can trail it",
            outside.join(", ")
        );
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn brief(
    s: &CycleState,
    rec: &BudgetOutcome,
    chosen: &Chosen,
    discrepancies: &[validate::Discrepancy],
    checks: &[FitCheck],
    changes: &[ChannelChange],
    predicted: &PredictedBefore,
    kpi: &str,
    evidence: &[EvidenceSummary],
) -> String {
    let mut b = String::new();
    let _ = writeln!(
        b,
        "cycle {}: {} fit{} calibrated by {} readout(s)",
        s.cycle,
        s.method,
        if s.fit_reused { " (reused)" } else { "" },
        s.readouts.len()
    );
    let _ = writeln!(b, "\nwhat the model believes (ROI, 90 % interval):");
    for c in &s.channels {
        let tested = match c.experiments.as_slice() {
            [] => "untested".to_string(),
            [e] => format!("tested by experiment {e}"),
            es => format!("tested by experiments {}", es.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ")),
        };
        let due = evidence.iter().find(|e| e.channel == c.channel).and_then(|e| e.due_for_retest);
        let _ = writeln!(
            b,
            "  {:<14} {:>8.3} [{:.3}, {:.3}]  {tested}{}",
            c.channel,
            c.roi.mean,
            c.roi.q05,
            c.roi.q95,
            if due == Some(true) { ", due for re-test" } else { "" }
        );
    }
    if let Some(w) = s.channels.iter().max_by(|a, b| {
        let r = |c: &ChannelState| (c.roi.q95 - c.roi.q05) / c.roi.mean.abs().max(1e-12);
        r(a).total_cmp(&r(b))
    }) {
        let _ = writeln!(b, "  least sure: {} (its interval is the widest relative to its ROI)", w.channel);
    }
    if !discrepancies.is_empty() || predicted.note.is_some() {
        let _ = writeln!(b, "\nnew readouts against what the model predicted:");
        for d in discrepancies {
            let _ = writeln!(b, "  {}", d.describe(kpi));
        }
        for c in checks.iter().filter(|c| c.strained) {
            let _ = writeln!(
                b,
                "  the calibrated fit strains against experiment {} (p = {:.3}): {}",
                c.discrepancy.experiment_id.unwrap_or(0),
                c.p_value,
                validate::remedies(c).first().cloned().unwrap_or_default()
            );
        }
        if let Some(n) = &predicted.note {
            let _ = writeln!(b, "  note: {n}");
        }
    }
    let _ = writeln!(b, "\ntest next:");
    if chosen.tests.is_empty() {
        let _ = writeln!(b, "  nothing planned");
    }
    for (t, id) in chosen.tests.iter().zip(&s.planned) {
        let _ = writeln!(b, "  experiment {id}: {}", t.why);
    }
    for n in &chosen.notes {
        let _ = writeln!(b, "  {n}");
    }
    let r = &rec.report;
    let _ = writeln!(
        b,
        "\nwhat to spend over the next {} periods (budget {}): expected outcome {} (90 % interval {} to {})",
        r.horizon,
        amount(r.budget),
        amount(r.optimal_outcome.mean),
        amount(r.optimal_outcome.q05),
        amount(r.optimal_outcome.q95),
    );
    let _ = writeln!(b, "  {}", against_current(r));
    let width = r.channels.iter().map(|c| amount(c.optimal_spend).len()).max().unwrap_or(0);
    for c in &r.channels {
        let _ =
            writeln!(b, "  {:<14} {:>width$} (now {})", c.channel, amount(c.optimal_spend), amount(c.current_spend));
    }
    if !changes.is_empty() {
        let _ = writeln!(b, "\nsince the last cycle:");
        for c in changes {
            let _ = writeln!(b, "  {}", c.sentence);
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(current: [f64; 2], lower: f64) -> mmloop_mmm::optimize::OptimizationReport {
        use mmloop_mmm::optimize::ChannelPlan;
        let st = |x: f64| Stat::of(&[x, x]);
        let ch = |name: &str, cur: f64, opt: f64| ChannelPlan {
            channel: name.into(),
            current_spend: cur,
            optimal_spend: opt,
            lower,
            upper: 1e9,
            outcome: st(0.0),
            marginal_return: 1.0,
        };
        mmloop_mmm::optimize::OptimizationReport {
            horizon: 13,
            outcome_unit: "kpi",
            objective: "mean".into(),
            budget: 2_000_000.0,
            channels: vec![ch("tv", current[0], 1_500_000.0), ch("search", current[1], 500_000.0)],
            current_outcome: st(1.0),
            optimal_outcome: st(0.0),
            gain: st(-1_010_502.4),
            prob_gain_positive: 0.0,
            objective_value: 0.0,
            kkt_residual: 0.0,
            lambda: 0.0,
            iterations: 1,
            draws: vec![],
        }
    }

    #[test]
    fn the_brief_says_when_the_current_split_spends_another_total_or_lies_outside_the_bounds() {
        // same total, inside the bounds: the gain alone
        let same = against_current(&report([1_000_000.0, 1_000_000.0], 0.0));
        assert_eq!(same, "-1,010,502 vs the current split (positive in 0.0% of draws)");
        // 431,213 less than the budget, and search below its lower bound
        let other = against_current(&report([1_300_000.0, 268_787.0], 300_000.0));
        assert!(other.contains("which spends 1,568,787 (431,213 less than the budget)"), "{other}");
        assert!(other.contains("outside the bounds (search 268,787 < 300,000)"), "{other}");
        assert!(!other.contains("tv "), "tv is inside its bounds: {other}");
    }

    #[test]
    fn abandon_removes_what_open_made_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        // created by this open: removed whole
        let new = tmp.path().join("new");
        let d = LoopDir::open(&new, &[]).unwrap();
        std::fs::create_dir(d.fit_dir(1)).unwrap();
        std::fs::write(d.fit_dir(1).join("partial"), "x").unwrap();
        assert!(d.abandon());
        assert!(!new.exists());
        // an empty directory of the user's: emptied again, kept
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let d = LoopDir::open(&empty, &[]).unwrap();
        assert!(empty.join(LOOP_MARKER).is_file());
        assert!(d.abandon());
        assert!(empty.is_dir() && std::fs::read_dir(&empty).unwrap().next().is_none());
        // an existing loop directory (opened again): untouched
        let d0 = LoopDir::open(&new, &[]).unwrap();
        let again = LoopDir::open(&new, &[]).unwrap();
        assert_eq!(again.id(), d0.id());
        assert!(!again.abandon());
        assert!(new.join(LOOP_MARKER).is_file());
    }
}
