//! The reports of `mmloop loop`: one cycle (`DIR/cycle-N/`) or the whole loop directory (`DIR/`).
//!
//! A cycle: each new experiment's readout against the prediction the model made before the readout
//! calibrated it (`validation.json`, discrepancies in orange), the EIG × EVOI 2×2 with every
//! candidate and the portfolio with marginal values (`ranking.json`, drawn by the rank report's own
//! charts), the tests planned (`plan.json`), the budget recommendation (`budget.json`, drawn by the
//! optimize report's charts) and how each channel moved since the last cycle (`changes.json`).
//!
//! The loop: the posterior ROI interval of every channel over the cycles with the experiments'
//! readouts overlaid, the age of each channel's newest evidence and its decay
//! (σ²_eff(t) = σ²·exp(λt), λ = ln 2 / half-life, from [`mmloop_loop::decay`]), every readout
//! against its prediction, the recommended spend over cycles, for the demo the trajectory against
//! the truth (`trajectory.csv`: misallocation cost, ROI error, coverage), with `DIR/ledger.sqlite`
//! (the demo's) the ledger's experiments and calibration over time, and the latest cycle.
//!
//! `cycle.json` and `evidence.json` are read with the loop's own types ([`CycleState`],
//! [`EvidenceSummary`]); the other files, serialise-only in the loop crate, with local types that
//! read only the fields drawn.

use crate::ReportError;
use crate::chart::{BLACK, Element, GREY, LIGHT, Plot, series_color};
use crate::ledger::{Mark, RoiReadout, RoiSlot, RoiTrack, Z90, readout_legend, readout_plot, roi_track};
use crate::page::{Block, Card, Cell, LegendItem, Page, Pre, Section, Table, chart, fmt_num};
use crate::read::{json, table};
use mmloop_loop::cycle::{CycleState, EvidenceSummary};
use mmloop_loop::decay::{Age, HalfLife, variance_inflation};
use mmloop_mmm::analysis::Stat;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `validation.json`.
#[derive(Debug, Deserialize)]
struct ValidationJson {
    #[serde(default)]
    predicted_before_calibrating: Vec<Discrepancy>,
    #[serde(default)]
    calibrated_fit_checks: Vec<FitCheck>,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    check_notes: Vec<String>,
    #[serde(default)]
    note: Option<String>,
}

/// A readout against a prediction (`mmloop_loop::validate::Discrepancy`).
#[derive(Debug, Clone, Deserialize)]
struct Discrepancy {
    experiment_id: Option<i64>,
    #[serde(default)]
    channels: Vec<String>,
    measured: f64,
    standard_error: f64,
    predicted: f64,
    predicted_q05: f64,
    predicted_q95: f64,
    z: f64,
    flagged: bool,
    #[serde(default)]
    spend_change: f64,
    #[serde(default)]
    measured_iroas: Option<f64>,
    #[serde(default)]
    implied_iroas: Option<f64>,
    #[serde(default)]
    ratio: Option<f64>,
}

/// The calibrated fit against a readout it was calibrated on (`mmloop_loop::validate::FitCheck`).
#[derive(Debug, Deserialize)]
struct FitCheck {
    discrepancy: Discrepancy,
    p_value: f64,
    strained: bool,
}

/// A row of `changes.json` (`mmloop_loop::cycle::ChannelChange`).
#[derive(Debug, Deserialize)]
struct Change {
    channel: String,
    roi_before: Stat,
    spend_before: f64,
    spend_now: f64,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    sentence: String,
}

/// `plan.json`: read as JSON values (the planned test is the ranking's candidate, nested).
#[derive(Debug, Deserialize)]
struct PlanJson {
    #[serde(default)]
    tests: Vec<serde_json::Value>,
    #[serde(default)]
    notes: Vec<String>,
}

/// `portfolio.json`.
#[derive(Debug, Deserialize)]
struct PortfolioJson {
    greedy: crate::rank::Portfolio,
}

fn chart_err(dir: &Path) -> impl Fn(crate::chart::ChartError) -> ReportError + '_ {
    move |e| ReportError::Chart { dir: dir.to_path_buf(), message: e.0 }
}

/// The report of one cycle directory.
pub fn cycle_page(dir: &Path) -> Result<Page, ReportError> {
    let state: CycleState = json(dir, "cycle.json", "loop")?;
    let sections = cycle_sections(dir, &state, "cycle-")?;
    let flagged = state.flagged.len();
    Ok(Page {
        kind: "loop".into(),
        title: format!("Measurement loop, cycle {}", state.cycle),
        source: dir.display().to_string(),
        facts: cycle_facts(&state),
        sections: {
            let mut s = sections;
            if flagged > 0 {
                s[0].text.insert(0, format!("{flagged} readout(s) disagreed with the model's prediction this cycle."));
            }
            s
        },
    })
}

fn cycle_facts(s: &CycleState) -> Vec<(String, String)> {
    vec![
        ("cycle".into(), s.cycle.to_string()),
        ("fit".into(), format!("{}{}", s.method, if s.fit_reused { " (reused)" } else { "" })),
        ("readouts calibrating".into(), s.readouts.len().to_string()),
        ("new readouts".into(), s.new_readouts.len().to_string()),
        ("flagged".into(), s.flagged.len().to_string()),
        ("tests planned".into(), s.planned.len().to_string()),
        ("budget".into(), fmt_num(s.budget)),
    ]
}

/// The sections of cycle directory `dir`; chart ids start with `prefix`.
fn cycle_sections(dir: &Path, state: &CycleState, prefix: &str) -> Result<Vec<Section>, ReportError> {
    let err = chart_err(dir);
    let mut sections = Vec::new();

    // 1. the new readouts against the predictions made before they calibrated the model
    let v: ValidationJson = json(dir, "validation.json", "loop")?;
    let threshold = v.threshold.unwrap_or(f64::NAN);
    let mut text = vec![format!(
        "Each experiment read out since the last cycle against the model's prediction of it, made before the readout calibrated the model (out of sample). A discrepancy (orange) is a readout whose z = (measured − predicted) / √(sd² + SE²) exceeds {} in absolute value.",
        fmt_num(threshold)
    )];
    let mut blocks = Vec::new();
    if v.predicted_before_calibrating.is_empty() {
        text.push("No new readout this cycle: nothing to check.".into());
    } else {
        blocks.push(readouts_chart(&format!("{prefix}readouts"), &v.predicted_before_calibrating, None).map_err(&err)?);
    }
    if !v.calibrated_fit_checks.is_empty() {
        let mut t = Table::new(
            "The calibrated fit against the readouts it was calibrated on (in sample): can it reconcile them?",
            &["experiment", "channels", "measured", "fitted", "z", "p-value", "strained"],
        );
        for c in &v.calibrated_fit_checks {
            let d = &c.discrepancy;
            t.row(vec![
                Cell::id(d.experiment_id),
                Cell::text(d.channels.join(", ")),
                Cell::num(d.measured),
                Cell::num(d.predicted),
                Cell::num(d.z),
                Cell::num(c.p_value),
                Cell::text(if c.strained { "yes: the fit cannot reconcile it" } else { "no" }),
            ]);
        }
        blocks.push(Block::Table(t));
    }
    text.extend(v.note.iter().cloned());
    text.extend(v.check_notes.iter().cloned());
    sections.push(Section { heading: "Readouts against predictions".into(), text, blocks });

    // 2. what to test next: the ranking's 2×2 and portfolio, and the plan
    let mut text = vec![
        "EIG is the expected information gain of a test's readout about its implied lift (nats); EVOI the expected value of acting on that readout, in money; net value = EVOI − cost.".to_string(),
    ];
    let mut blocks = Vec::new();
    if dir.join("ranking.json").is_file() {
        let r: crate::rank::RankingJson = json(dir, "ranking.json", "loop")?;
        blocks.push(crate::rank::two_by_two(&format!("{prefix}2x2"), &r).map_err(&err)?);
        let portfolio = if dir.join("portfolio.json").is_file() {
            Some(json::<PortfolioJson>(dir, "portfolio.json", "loop")?.greedy)
        } else {
            r.portfolio.map(|p| p.greedy)
        };
        match portfolio {
            Some(p) if !p.picks.is_empty() => {
                blocks.push(crate::rank::portfolio_chart(&format!("{prefix}portfolio"), &p).map_err(&err)?)
            }
            _ => text.push("The greedy portfolio is empty: no candidate adds net value (EVOI above its cost).".into()),
        }
    } else {
        text.push("No ranking.json: this cycle ranked no candidate tests (run without a test chooser).".into());
    }
    let plan: PlanJson = json(dir, "plan.json", "loop")?;
    blocks.push(Block::Table(plan_table(&plan)));
    text.extend(plan.notes.iter().cloned());
    sections.push(Section { heading: "What to test next".into(), text, blocks });

    // 3. the budget recommendation
    let b: crate::optimize::OptimizeJson = json(dir, "budget.json", "loop")?;
    sections.push(Section {
        heading: "Budget recommendation".into(),
        text: vec![],
        blocks: vec![
            Block::Card(crate::optimize::recommendation_card(&b)),
            crate::optimize::spend_chart(&format!("{prefix}spend"), &b).map_err(&err)?,
            crate::optimize::mroi_chart(&format!("{prefix}mroi"), &b).map_err(&err)?,
        ],
    });

    // 4. how the channels moved since the last cycle
    let changes: Vec<Change> = json(dir, "changes.json", "loop")?;
    let mut blocks = vec![roi_change_chart(&format!("{prefix}roi"), state, &changes).map_err(&err)?];
    if dir.join("brief.txt").is_file() {
        let text = std::fs::read_to_string(dir.join("brief.txt"))
            .map_err(|e| ReportError::Data { path: dir.join("brief.txt"), message: e.to_string() })?;
        blocks.push(Block::Pre(Pre { title: "The cycle's brief (brief.txt)".into(), text }));
    }
    sections.push(Section {
        heading: "What the model believes now".into(),
        text: if changes.is_empty() { vec!["The first cycle: nothing to compare with.".into()] } else { vec![] },
        blocks,
    });
    Ok(sections)
}

/// The planned tests of `plan.json`, with the ranking's figures for each.
fn plan_table(plan: &PlanJson) -> Table {
    let mut t = Table::new(
        "The tests planned this cycle (written to the ledger as planned; money figures in the ranking's value unit)",
        &["experiment", "test", "EIG (nats)", "EVOI", "cost", "net value", "why"],
    );
    for p in &plan.tests {
        let test = &p["test"];
        let design = &test["experiment"]["design"];
        let num = |v: &serde_json::Value| v.as_f64();
        let evoi = num(&design["evoi"]).or_else(|| num(&design["evoi"]["evoi"]));
        t.row(vec![
            Cell::id(p["experiment_id"].as_i64()),
            Cell::text(design["name"].as_str().unwrap_or("–")),
            Cell::opt(num(&design["eig"])),
            Cell::opt(evoi),
            Cell::opt(num(&test["cost"])),
            Cell::opt(num(&design["net_value"])),
            Cell::text(test["why"].as_str().unwrap_or("")),
        ]);
    }
    t
}

/// Readouts against predictions: the chart `id` and its table. With `cycles`, each row's label and
/// table say in which cycle the readout arrived.
fn readouts_chart(id: &str, rows: &[Discrepancy], cycles: Option<&[u32]>) -> Result<Block, crate::chart::ChartError> {
    let name = |i: usize, d: &Discrepancy| {
        let id = d.experiment_id.map(|e| format!("#{e} ")).unwrap_or_default();
        match cycles {
            Some(c) => format!("{id}{} (cycle {})", d.channels.join("+"), c[i]),
            None => format!("{id}{}", d.channels.join("+")),
        }
    };
    let marks: Vec<Mark> = rows
        .iter()
        .enumerate()
        .map(|(i, d)| Mark {
            label: name(i, d),
            measured: d.measured,
            standard_error: d.standard_error,
            predicted: d.predicted,
            predicted_q05: d.predicted_q05,
            predicted_q95: d.predicted_q95,
            discrepancy: d.flagged,
        })
        .collect();
    let mut t = Table::new(
        "Every readout against its prediction (incremental KPI over the test window; iROAS = incremental KPI / spend change)",
        &[
            "experiment",
            "cycle",
            "channels",
            "measured",
            "SE",
            "predicted",
            "5 %",
            "95 %",
            "z",
            "measured iROAS",
            "predicted iROAS",
            "predicted / measured",
            "discrepancy",
        ],
    );
    for (i, d) in rows.iter().enumerate() {
        t.row(vec![
            Cell::id(d.experiment_id),
            cycles.map(|c| Cell::int(c[i] as usize)).unwrap_or_else(|| Cell::text("this")),
            Cell::text(d.channels.join(", ")),
            Cell::num(d.measured),
            Cell::num(d.standard_error),
            Cell::num(d.predicted),
            Cell::num(d.predicted_q05),
            Cell::num(d.predicted_q95),
            Cell::num(d.z),
            Cell::opt(d.measured_iroas),
            Cell::opt(d.implied_iroas),
            Cell::opt(d.ratio),
            Cell::text(if d.flagged { "yes" } else { "no" }),
        ]);
    }
    chart(
        id,
        "Readout vs prediction",
        "Per experiment, the first on top: the model's prediction made before the readout calibrated it (blue: mean and 90 % interval) and the measurement (mean ± 1.645 SE; orange when flagged as a discrepancy), in incremental KPI over the test window.",
        &readout_plot(&marks),
        readout_legend(),
        t,
    )
}

/// Each channel's ROI interval before and after this cycle (the first cycle: after only).
fn roi_change_chart(id: &str, state: &CycleState, changes: &[Change]) -> Result<Block, crate::chart::ChartError> {
    let n = state.channels.len();
    let labels: Vec<String> = state.channels.iter().rev().map(|c| c.channel.clone()).collect();
    let y = |i: usize| (n - 1 - i) as f64;
    let mut el = Vec::new();
    let mut t = Table::new(
        "Posterior ROI per channel (incremental KPI per unit of spend) and recommended spend",
        &[
            "channel",
            "ROI before",
            "5 %",
            "95 %",
            "ROI now",
            "5 %",
            "95 %",
            "spend before",
            "spend now",
            "experiments",
            "why it moved",
        ],
    );
    for (i, c) in state.channels.iter().enumerate() {
        let before = changes.iter().find(|x| x.channel == c.channel);
        if let Some(b) = before {
            let r = &b.roi_before;
            el.push(Element::Segment { color: GREY, from: (r.q05, y(i) + 0.15), to: (r.q95, y(i) + 0.15), width: 3 });
            el.push(Element::Points { color: GREY, points: vec![(r.mean, y(i) + 0.15)], size: 5 });
        }
        let r = &c.roi;
        el.push(Element::Segment { color: 0, from: (r.q05, y(i) - 0.15), to: (r.q95, y(i) - 0.15), width: 3 });
        el.push(Element::Points { color: 0, points: vec![(r.mean, y(i) - 0.15)], size: 5 });
        t.row(vec![
            Cell::text(&c.channel),
            Cell::opt(before.map(|b| b.roi_before.mean)),
            Cell::opt(before.map(|b| b.roi_before.q05)),
            Cell::opt(before.map(|b| b.roi_before.q95)),
            Cell::num(r.mean),
            Cell::num(r.q05),
            Cell::num(r.q95),
            Cell::opt(before.map(|b| b.spend_before)),
            Cell::num(before.map(|b| b.spend_now).unwrap_or(c.recommended_spend)),
            Cell::text(c.experiments.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ")),
            Cell::text(
                before
                    .map(|b| if b.sentence.is_empty() { b.reason.clone() } else { b.sentence.clone() })
                    .unwrap_or_default(),
            ),
        ]);
    }
    let xs = state
        .channels
        .iter()
        .flat_map(|c| [c.roi.q05, c.roi.q95])
        .chain(changes.iter().flat_map(|c| [c.roi_before.q05, c.roi_before.q95]));
    let (lo, hi) = xs.filter(|v| v.is_finite()).fold((0.0f64, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let pad = 0.05 * (hi - lo).abs().max(1e-9);
    el.insert(0, Element::Segment { color: LIGHT, from: (1.0, -0.6), to: (1.0, n as f64 - 0.4), width: 1 });
    let mut legend = vec![LegendItem::new("now (mean, 90 % interval)", 0, "dot")];
    if !changes.is_empty() {
        legend.insert(0, LegendItem::new("last cycle", GREY, "dot"));
    }
    chart(
        id,
        "ROI per channel, last cycle and now",
        "Each channel's posterior ROI (incremental KPI per unit of spend): mean and 90 % credible interval after this cycle's fit (blue) and after the last cycle's (grey); the light line marks break-even, ROI = 1.",
        &Plot {
            x_desc: "ROI (incremental KPI per unit of spend)".into(),
            y_labels: Some(labels),
            x_range: Some((lo - pad, hi + pad)),
            y_range: Some((-0.6, n as f64 - 0.4)),
            elements: el,
            height: (120 + 70 * n as u32).clamp(240, 700),
            ..Default::default()
        },
        legend,
        t,
    )
}

// ---- the whole loop -------------------------------------------------------------------------------

/// One finished cycle of a loop directory.
struct CycleRead {
    dir: PathBuf,
    state: CycleState,
    evidence: Vec<EvidenceSummary>,
    validation: ValidationJson,
}

/// The finished cycles of loop directory `root`, in order: every `cycle-N/` that its command
/// committed (it carries mmloop's marker); a committed cycle whose files cannot be read is an error
/// naming the file.
fn read_cycles(root: &Path) -> Result<Vec<CycleRead>, ReportError> {
    let rd =
        std::fs::read_dir(root).map_err(|e| ReportError::Data { path: root.to_path_buf(), message: e.to_string() })?;
    let mut found: Vec<(u32, PathBuf)> = rd
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().strip_prefix("cycle-")?.parse::<u32>().ok()?;
            let p = e.path();
            (p.is_dir() && mmloop_data::read_marker(&p).is_some()).then_some((n, p))
        })
        .collect();
    found.sort_by_key(|(n, _)| *n);
    found
        .into_iter()
        .map(|(n, dir)| {
            let state: CycleState = json(&dir, "cycle.json", "loop")?;
            if state.cycle != n {
                return Err(ReportError::Data {
                    path: dir.join("cycle.json"),
                    message: format!("says cycle {} in the directory of cycle {n}", state.cycle),
                });
            }
            let evidence = json(&dir, "evidence.json", "loop")?;
            let validation = json(&dir, "validation.json", "loop")?;
            Ok(CycleRead { dir, state, evidence, validation })
        })
        .collect()
}

/// The report of a loop directory: the history over its cycles, then the latest cycle.
pub fn loop_page(root: &Path) -> Result<Page, ReportError> {
    let cycles = read_cycles(root)?;
    let Some(last) = cycles.last() else {
        return Err(ReportError::Data {
            path: root.to_path_buf(),
            message: "a loop directory without a finished cycle: nothing to report yet; run `mmloop loop` on it".into(),
        });
    };
    let err = chart_err(root);
    let channels: Vec<String> = last.state.channels.iter().map(|c| c.channel.clone()).collect();
    let trajectory =
        if root.join("trajectory.csv").is_file() { Some(Trajectory::read(root, &channels)?) } else { None };
    let mut sections = Vec::new();

    // the cycles in one table
    let mut t = Table::new(
        "Every cycle (outcomes: incremental KPI over the budget horizon)",
        &[
            "cycle",
            "fit",
            "readouts",
            "new",
            "flagged",
            "planned",
            "budget",
            "expected outcome",
            "5 %",
            "95 %",
            "current split's",
        ],
    );
    for c in &cycles {
        let s = &c.state;
        let ids = |v: &[i64]| v.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
        t.row(vec![
            Cell::int(s.cycle as usize),
            Cell::text(&s.method),
            Cell::int(s.readouts.len()),
            Cell::text(ids(&s.new_readouts)),
            Cell::text(ids(&s.flagged)),
            Cell::text(ids(&s.planned)),
            Cell::num(s.budget),
            Cell::num(s.optimal_outcome.mean),
            Cell::num(s.optimal_outcome.q05),
            Cell::num(s.optimal_outcome.q95),
            Cell::num(s.current_outcome.mean),
        ]);
    }
    sections.push(Section {
        heading: "The cycles".into(),
        text: vec![format!("`mmloop report {}` shows one cycle in full.", last.dir.display())],
        blocks: vec![Block::Table(t)],
    });

    // ROI over cycles with the readouts
    let mut blocks = Vec::new();
    for (k, ch) in channels.iter().enumerate() {
        blocks.push(roi_over_cycles(k, ch, &cycles, trajectory.as_ref()).map_err(&err)?);
    }
    sections.push(Section {
        heading: "ROI over cycles, with the experiments".into(),
        text: vec![
            "A test's readout measures the incremental return of its spend change (iROAS, marginal over the change), the model's ROI the average return of the whole spend: under saturation a heavy-up's iROAS sits below the average ROI even when both are right. The prediction of the same readout is in the readout chart below.".into(),
        ],
        blocks,
    });

    // evidence age and decay
    sections.push(Section {
        heading: "Evidence age and decay".into(),
        text: vec![
            "A readout t weeks old enters the fit with variance σ²_eff(t) = σ²·exp(λt), λ = ln 2 / half-life: its weight halves every half-life, so a stale channel climbs back up the list of tests.".into(),
        ],
        blocks: vec![age_chart(&cycles).map_err(&err)?, decay_chart(&cycles).map_err(&err)?],
    });

    // every readout against its prediction
    let mut rows = Vec::new();
    let mut at = Vec::new();
    for c in &cycles {
        for d in &c.validation.predicted_before_calibrating {
            rows.push(d.clone());
            at.push(c.state.cycle);
        }
    }
    let mut text = vec![
        "Each readout against the prediction the model made before the readout calibrated it, in the cycle it arrived."
            .to_string(),
    ];
    let mut blocks = Vec::new();
    if rows.is_empty() {
        text.push("No readout has arrived yet.".into());
    } else {
        blocks.push(readouts_chart("loop-readouts", &rows, Some(&at)).map_err(&err)?);
        let flagged = rows.iter().filter(|d| d.flagged).count();
        blocks.push(Block::Card(Card {
            title: "How well the model predicted the experiments".into(),
            status: if flagged == 0 { "ok" } else { "warn" }.into(),
            lines: vec![format!(
                "{} of {} readout(s) disagreed with the prediction made before them (|z| above the threshold); mean |z| {}.",
                flagged,
                rows.len(),
                fmt_num(rows.iter().map(|d| d.z.abs()).sum::<f64>() / rows.len() as f64)
            )],
        }));
    }
    sections.push(Section { heading: "Readouts against predictions".into(), text, blocks });

    sections.push(Section {
        heading: "The recommendation over cycles".into(),
        text: vec![],
        blocks: vec![spend_over_cycles(&channels, &cycles).map_err(&err)?],
    });

    if let Some(tr) = &trajectory {
        sections.push(Section {
            heading: "Against the truth (the demo's simulated world)".into(),
            text: vec![
                "The demo knows the world's true response: the misallocation cost is the true outcome at the true optimum (same budget and bounds) minus the true outcome of the recommendation, over the horizon.".into(),
            ],
            blocks: vec![
                tr.misallocation_chart()?,
                tr.roi_error_chart()?,
                tr.coverage_chart()?,
            ],
        });
    }

    // the ledger, when the loop keeps it in its directory (the demo does): every experiment with its
    // status, and the readouts' calibration over time
    let ledger = root.join(crate::ledger::LEDGER_IN_DIR);
    if ledger.is_file() {
        sections.extend(crate::ledger::loop_sections(&ledger)?);
    }

    // the latest cycle in full
    for mut s in cycle_sections(&last.dir, &last.state, "last-")? {
        s.heading = format!("Cycle {}: {}", last.state.cycle, s.heading.to_lowercase());
        sections.push(s);
    }

    let n_readouts = rows.len();
    Ok(Page {
        kind: "loop".into(),
        title: "The measurement loop".into(),
        source: root.display().to_string(),
        facts: vec![
            ("cycles".into(), cycles.len().to_string()),
            ("channels".into(), channels.len().to_string()),
            ("readouts".into(), n_readouts.to_string()),
            ("flagged".into(), rows.iter().filter(|d| d.flagged).count().to_string()),
            ("tests planned".into(), cycles.iter().map(|c| c.state.planned.len()).sum::<usize>().to_string()),
            ("latest budget".into(), fmt_num(last.state.budget)),
        ],
        sections,
    })
}

/// Cycle labels of the x axis: `1`, `2`, … at positions 0, 1, ….
fn cycle_labels(cycles: &[u32]) -> Vec<String> {
    cycles.iter().map(|c| c.to_string()).collect()
}

fn roi_over_cycles(
    k: usize,
    ch: &str,
    cycles: &[CycleRead],
    truth: Option<&Trajectory>,
) -> Result<Block, crate::chart::ChartError> {
    let slots: Vec<RoiSlot> = cycles
        .iter()
        .map(|c| {
            let readouts = c
                .validation
                .predicted_before_calibrating
                .iter()
                .filter(|d| d.channels.len() == 1 && d.channels[0] == ch)
                .filter_map(|d| {
                    let m = d.measured_iroas?;
                    let half = Z90 * d.standard_error / d.spend_change.abs();
                    Some(RoiReadout {
                        experiment: Cell::id(d.experiment_id),
                        iroas: m,
                        lower: m - half,
                        upper: m + half,
                        predicted: d.implied_iroas,
                        discrepancy: if d.flagged { "yes" } else { "no" },
                        flagged: d.flagged,
                    })
                })
                .collect();
            RoiSlot {
                label: c.state.cycle.to_string(),
                lead: vec![Cell::int(c.state.cycle as usize)],
                roi: c.state.channels.iter().find(|s| s.channel == ch).map(|s| (s.roi.mean, s.roi.q05, s.roi.q95)),
                truth: truth.and_then(|t| t.value(c.state.cycle, &format!("roi_true_{ch}"))),
                readouts,
            }
        })
        .collect();
    roi_track(
        &RoiTrack {
            id: format!("loop-roi-{k}"),
            title: format!("{ch}: ROI over cycles"),
            caption: format!(
                "The posterior ROI of {ch} after each cycle's fit (blue: mean and 90 % credible interval, incremental KPI per unit of spend), with each experiment on {ch} read out in that cycle beside it (iROAS ± 1.645 SE; orange when its prediction was flagged); the light line is break-even, ROI = 1."
            ),
            table_title: format!(
                "{ch}: posterior ROI per cycle, and the readouts on it (iROAS ± 1.645 SE / spend change)"
            ),
            lead_columns: &["cycle"],
            truth_column: true,
            x_desc: "cycle",
            y_desc: "return per unit of spend",
            height: 320,
        },
        &slots,
    )
}

fn age_chart(cycles: &[CycleRead]) -> Result<Block, crate::chart::ChartError> {
    let channels: Vec<String> =
        cycles.last().map(|c| c.evidence.iter().map(|e| e.channel.clone()).collect()).unwrap_or_default();
    let ids: Vec<u32> = cycles.iter().map(|c| c.state.cycle).collect();
    let mut el = Vec::new();
    let mut legend = Vec::new();
    let mut cols = vec!["cycle".to_string()];
    for ch in &channels {
        cols.push(format!("{ch}: newest readout"));
        cols.push(format!("{ch}: age (weeks)"));
        cols.push(format!("{ch}: due for re-test"));
    }
    let col_refs: Vec<&str> = cols.iter().map(String::as_str).collect();
    let mut t = Table::new(
        "Each channel's newest readout per cycle, its age at the fit (weeks) and whether the channel is due for a re-test",
        &col_refs,
    );
    for c in cycles {
        let mut row = vec![Cell::int(c.state.cycle as usize)];
        for ch in &channels {
            let e = c.evidence.iter().find(|e| &e.channel == ch);
            row.push(Cell::id(e.and_then(|e| e.newest_experiment)));
            row.push(Cell::opt(e.and_then(|e| e.newest_age_weeks)));
            row.push(Cell::text(match e.and_then(|e| e.due_for_retest) {
                Some(true) => "yes",
                Some(false) => "no",
                None => "–",
            }));
        }
        t.row(row);
    }
    let mut max_h: f64 = 0.0;
    for (i, ch) in channels.iter().enumerate() {
        let pts: Vec<(f64, f64)> = cycles
            .iter()
            .enumerate()
            .filter_map(|(x, c)| c.evidence.iter().find(|e| &e.channel == ch)?.newest_age_weeks.map(|a| (x as f64, a)))
            .collect();
        if let Some(e) = cycles.last().and_then(|c| c.evidence.iter().find(|e| &e.channel == ch)) {
            max_h = max_h.max(e.half_life_weeks);
        }
        if !pts.is_empty() {
            let color = series_color(i);
            el.push(Element::Line { color, points: pts.clone(), width: 2 });
            el.push(Element::Points { color, points: pts, size: 5 });
            legend.push(LegendItem::new(ch.clone(), color, "line"));
        }
    }
    let untested: Vec<&String> = channels
        .iter()
        .filter(|ch| {
            !cycles.iter().any(|c| c.evidence.iter().any(|e| &e.channel == *ch && e.newest_age_weeks.is_some()))
        })
        .collect();
    let n = cycles.len() as f64;
    // the zero line keeps the chart drawable when no channel has a readout yet
    el.push(Element::Segment { color: LIGHT, from: (-0.5, 0.0), to: (n - 0.5, 0.0), width: 1 });
    let ymax = cycles.iter().flat_map(|c| c.evidence.iter().filter_map(|e| e.newest_age_weeks)).fold(1.0f64, f64::max);
    chart(
        "loop-age",
        "Age of each channel's newest readout",
        &format!(
            "Weeks from the end of each channel's newest experiment to the fit's last period, per cycle.{}",
            if untested.is_empty() {
                String::new()
            } else {
                format!(" Never tested so far: {}.", untested.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))
            }
        ),
        &Plot {
            x_desc: "cycle".into(),
            y_desc: "age of the newest readout (weeks)".into(),
            x_labels: Some(cycle_labels(&ids)),
            x_range: Some((-0.5, n - 0.5)),
            y_range: Some((0.0, ymax.max(max_h.min(ymax * 2.0)) * 1.1)),
            elements: el,
            height: 300,
            ..Default::default()
        },
        legend,
        t,
    )
}

fn decay_chart(cycles: &[CycleRead]) -> Result<Block, crate::chart::ChartError> {
    let Some(last) = cycles.last() else { return Err(crate::chart::ChartError("no cycle".into())) };
    let max_age =
        cycles.iter().flat_map(|c| c.evidence.iter().filter_map(|e| e.newest_age_weeks)).fold(0.0f64, f64::max);
    let max_h = last.evidence.iter().map(|e| e.half_life_weeks).fold(0.0f64, f64::max);
    let t_max = (2.0 * max_h).max(1.2 * max_age).max(1.0);
    let mut el = vec![Element::Segment { color: LIGHT, from: (0.0, 2.0), to: (t_max, 2.0), width: 1 }];
    let mut legend = Vec::new();
    let mut t = Table::new(
        "Half-life per channel (weeks), decay rate λ = ln 2 / half-life (per week), and the newest readout's variance inflation exp(λt) per cycle",
        &["channel", "half-life", "λ", "cycle", "age (weeks)", "variance inflation exp(λt)", "ROI sd"],
    );
    for (i, e) in last.evidence.iter().enumerate() {
        let Ok(h) = HalfLife::weeks(e.half_life_weeks) else { continue };
        let color = series_color(i);
        el.push(Element::Line { color, points: decay_curve(h, t_max), width: 2 });
        legend.push(LegendItem::new(
            format!("{} (half-life {} weeks)", e.channel, fmt_num(e.half_life_weeks)),
            color,
            "line",
        ));
        let mut dots = Vec::new();
        for c in cycles {
            let Some(ce) = c.evidence.iter().find(|x| x.channel == e.channel) else { continue };
            let inflation = ce.newest_age_weeks.and_then(|a| Age::weeks(a).ok()).map(|a| variance_inflation(a, h));
            if let (Some(a), Some(v)) = (ce.newest_age_weeks, inflation) {
                dots.push((a, v));
            }
            t.row(vec![
                Cell::text(&e.channel),
                Cell::num(e.half_life_weeks),
                Cell::num(h.rate()),
                Cell::int(c.state.cycle as usize),
                Cell::opt(ce.newest_age_weeks),
                Cell::opt(inflation),
                Cell::num(ce.roi_sd),
            ]);
        }
        if !dots.is_empty() {
            el.push(Element::Points { color, points: dots, size: 6 });
        }
    }
    legend.push(LegendItem::new("the newest readout, per cycle", BLACK, "dot"));
    let min_h = last.evidence.iter().map(|e| e.half_life_weeks).fold(f64::INFINITY, f64::min);
    decay_plot("loop-decay", "each channel's newest readout at each cycle", el, legend, t, t_max, min_h)
}

/// A channel's variance inflation exp(λt) = 2^(t / half-life) over ages 0..`t_max` weeks (61
/// points), as the decay charts draw it ([`variance_inflation`] is the formula).
pub(crate) fn decay_curve(h: HalfLife, t_max: f64) -> Vec<(f64, f64)> {
    (0..=60)
        .map(|j| {
            let a = t_max * j as f64 / 60.0;
            (a, Age::weeks(a).map(|a| variance_inflation(a, h)).unwrap_or(f64::NAN))
        })
        .collect()
}

/// The decay chart of a loop directory or a ledger: the curves and dots in `el`, ages up to
/// `t_max` weeks, the y axis up to the shortest half-life's inflation at `t_max` (at most 16×);
/// `dots` says what the dots are.
pub(crate) fn decay_plot(
    id: &str,
    dots: &str,
    el: Vec<Element>,
    legend: Vec<LegendItem>,
    t: Table,
    t_max: f64,
    min_half_life: f64,
) -> Result<Block, crate::chart::ChartError> {
    let ymax = 2f64.powf(t_max / min_half_life).min(16.0);
    chart(
        id,
        "How evidence decays: variance inflation by age",
        &format!(
            "The factor exp(λt) = 2^(t / half-life) by which a readout's variance grows with its age t (weeks), per channel's half-life; dots: {dots}. At the light line (2×) a readout is one half-life old and carries half its original weight."
        ),
        &Plot {
            x_desc: "age of the readout (weeks)".into(),
            y_desc: "variance inflation σ²_eff / σ²".into(),
            x_range: Some((0.0, t_max)),
            y_range: Some((1.0 - 0.04 * ymax, ymax * 1.04)),
            elements: el,
            height: 320,
            ..Default::default()
        },
        legend,
        t,
    )
}

fn spend_over_cycles(channels: &[String], cycles: &[CycleRead]) -> Result<Block, crate::chart::ChartError> {
    let ids: Vec<u32> = cycles.iter().map(|c| c.state.cycle).collect();
    let mut el = Vec::new();
    let mut legend = Vec::new();
    let mut cols = vec!["cycle".to_string(), "budget".to_string()];
    cols.extend(channels.iter().cloned());
    let col_refs: Vec<&str> = cols.iter().map(String::as_str).collect();
    let mut t = Table::new("Recommended spend per channel over the horizon (money)", &col_refs);
    for c in cycles {
        let mut row = vec![Cell::int(c.state.cycle as usize), Cell::num(c.state.budget)];
        for ch in channels {
            row.push(Cell::opt(c.state.channels.iter().find(|s| &s.channel == ch).map(|s| s.recommended_spend)));
        }
        t.row(row);
    }
    for (i, ch) in channels.iter().enumerate() {
        let pts: Vec<(f64, f64)> = cycles
            .iter()
            .enumerate()
            .filter_map(|(x, c)| {
                c.state.channels.iter().find(|s| &s.channel == ch).map(|s| (x as f64, s.recommended_spend))
            })
            .collect();
        let color = series_color(i);
        el.push(Element::Line { color, points: pts.clone(), width: 2 });
        el.push(Element::Points { color, points: pts, size: 5 });
        legend.push(LegendItem::new(ch.clone(), color, "line"));
    }
    let n = cycles.len() as f64;
    let ymax = cycles.iter().flat_map(|c| c.state.channels.iter().map(|s| s.recommended_spend)).fold(0.0f64, f64::max);
    chart(
        "loop-spend",
        "Recommended spend over cycles",
        "Each cycle's recommended spend per channel over the budget horizon (money).",
        &Plot {
            x_desc: "cycle".into(),
            y_desc: "recommended spend (money)".into(),
            x_labels: Some(cycle_labels(&ids)),
            x_range: Some((-0.5, n - 0.5)),
            y_range: Some((0.0, ymax * 1.08 + 1e-9)),
            elements: el,
            height: 320,
            ..Default::default()
        },
        legend,
        t,
    )
}

/// The demo's `trajectory.csv`, read by column name.
struct Trajectory {
    csv: crate::read::Csv,
    cycles: Vec<f64>,
    channels: Vec<String>,
}

impl Trajectory {
    fn read(root: &Path, channels: &[String]) -> Result<Self, ReportError> {
        let csv = table(root, "trajectory.csv", "loop")?;
        let cycles = csv.f64("cycle")?;
        // the channels of the file: those of the cycles that have a roi_true_ column
        let channels = channels.iter().filter(|c| csv.has(&format!("roi_true_{c}"))).cloned().collect();
        Ok(Self { csv, cycles, channels })
    }

    fn value(&self, cycle: u32, col: &str) -> Option<f64> {
        let i = self.cycles.iter().position(|c| *c == cycle as f64)?;
        self.csv.f64_or_nan(col).ok()?.get(i).copied().filter(|v| v.is_finite())
    }

    fn labels(&self) -> Vec<String> {
        self.cycles.iter().map(|c| crate::page::fmt_count(*c)).collect()
    }

    fn misallocation_chart(&self) -> Result<Block, ReportError> {
        let cost = self.csv.f64("misallocation_cost")?;
        let share = self.csv.f64_or_nan("misallocation_share")?;
        let mut el = Vec::new();
        let mut t = Table::new(
            "Misallocation cost per cycle (money) and as a share of the true optimum's outcome",
            &["cycle", "misallocation cost", "share"],
        );
        for (x, (c, s)) in cost.iter().zip(&share).enumerate() {
            el.push(Element::Rect { color: 5, x0: x as f64 - 0.3, y0: 0.0, x1: x as f64 + 0.3, y1: *c, opacity: 0.85 });
            t.row(vec![Cell::count(self.cycles[x]), Cell::num(*c), Cell::pct(*s)]);
        }
        let n = cost.len() as f64;
        let ymax = cost.iter().copied().fold(0.0f64, f64::max);
        chart(
            "loop-misalloc",
            "Misallocation cost per cycle",
            "What following each cycle's recommendation costs against the true optimum of the simulated world, in money over the budget horizon (0 = the best allocation within the bounds).",
            &Plot {
                x_desc: "cycle".into(),
                y_desc: "misallocation cost (money)".into(),
                x_labels: Some(self.labels()),
                x_range: Some((-0.5, n - 0.5)),
                y_range: Some((0.0, ymax * 1.08 + 1.0)),
                elements: el,
                height: 300,
                ..Default::default()
            },
            vec![LegendItem::new("misallocation cost", 5, "area")],
            t,
        )
        .map_err(|e| ReportError::Chart { dir: self.csv.0.path().to_path_buf(), message: e.0 })
    }

    fn roi_error_chart(&self) -> Result<Block, ReportError> {
        let mut el = Vec::new();
        let mut legend = Vec::new();
        let mut cols = vec!["cycle".to_string()];
        cols.extend(self.channels.iter().map(|c| format!("{c}: ROI error")));
        let col_refs: Vec<&str> = cols.iter().map(String::as_str).collect();
        let mut t = Table::new("Posterior mean ROI minus the true ROI, per channel and cycle", &col_refs);
        let mut errs = Vec::new();
        for ch in &self.channels {
            errs.push(self.csv.f64_or_nan(&format!("roi_error_{ch}"))?);
        }
        for (x, c) in self.cycles.iter().enumerate() {
            let mut row = vec![Cell::count(*c)];
            row.extend(errs.iter().map(|e| Cell::num(e[x])));
            t.row(row);
        }
        for (i, (ch, e)) in self.channels.iter().zip(&errs).enumerate() {
            let pts: Vec<(f64, f64)> = e.iter().enumerate().map(|(x, v)| (x as f64, *v)).collect();
            let color = series_color(i);
            el.push(Element::Line { color, points: pts.clone(), width: 2 });
            el.push(Element::Points { color, points: pts, size: 5 });
            legend.push(LegendItem::new(ch.clone(), color, "line"));
        }
        let n = self.cycles.len() as f64;
        el.insert(0, Element::Segment { color: GREY, from: (-0.5, 0.0), to: (n - 0.5, 0.0), width: 1 });
        chart(
            "loop-roi-error",
            "ROI error per channel",
            "The posterior mean ROI minus the simulated world's true ROI, per channel and cycle (0 = right).",
            &Plot {
                x_desc: "cycle".into(),
                y_desc: "ROI error (posterior mean − truth)".into(),
                x_labels: Some(self.labels()),
                x_range: Some((-0.5, n - 0.5)),
                elements: el,
                height: 300,
                ..Default::default()
            },
            legend,
            t,
        )
        .map_err(|e| ReportError::Chart { dir: self.csv.0.path().to_path_buf(), message: e.0 })
    }

    fn coverage_chart(&self) -> Result<Block, ReportError> {
        let mut cov = Vec::new();
        for ch in &self.channels {
            cov.push(self.csv.f64_or_nan(&format!("covered90_{ch}"))?);
        }
        let mut cols = vec!["cycle".to_string(), "share covered".to_string()];
        cols.extend(self.channels.iter().map(|c| format!("{c}: covered")));
        let col_refs: Vec<&str> = cols.iter().map(String::as_str).collect();
        let mut t = Table::new("Whether each channel's 90 % ROI interval covers the true ROI", &col_refs);
        let mut el = Vec::new();
        for (x, c) in self.cycles.iter().enumerate() {
            let known: Vec<f64> = cov.iter().map(|v| v[x]).filter(|v| v.is_finite()).collect();
            let share = if known.is_empty() { f64::NAN } else { known.iter().sum::<f64>() / known.len() as f64 };
            el.push(Element::Rect {
                color: 0,
                x0: x as f64 - 0.3,
                y0: 0.0,
                x1: x as f64 + 0.3,
                y1: share,
                opacity: 0.85,
            });
            let mut row = vec![Cell::count(*c), Cell::pct(share)];
            row.extend(cov.iter().map(|v| {
                Cell::text(if !v[x].is_finite() {
                    "–"
                } else if v[x] != 0.0 {
                    "yes"
                } else {
                    "no"
                })
            }));
            t.row(row);
        }
        let n = self.cycles.len() as f64;
        el.push(Element::Segment { color: BLACK, from: (-0.5, 0.9), to: (n - 0.5, 0.9), width: 1 });
        chart(
            "loop-coverage",
            "Coverage of the true ROI",
            "Per cycle, the share of channels whose 90 % credible ROI interval covers the simulated world's true ROI; the line is the nominal 90 %.",
            &Plot {
                x_desc: "cycle".into(),
                y_desc: "share of channels covered".into(),
                x_labels: Some(self.labels()),
                x_range: Some((-0.5, n - 0.5)),
                y_range: Some((0.0, 1.05)),
                elements: el,
                height: 280,
                ..Default::default()
            },
            vec![LegendItem::new("share covered", 0, "area"), LegendItem::new("nominal 90 %", BLACK, "line")],
            t,
        )
        .map_err(|e| ReportError::Chart { dir: self.csv.0.path().to_path_buf(), message: e.0 })
    }
}
