//! The reports of `mmloop optimize` (current vs recommended spend, the outcome distributions of both,
//! the marginal return at the optimum) and `mmloop scenario` (a plan's outcome and ROI by channel).
//!
//! `optimize.json` and `scenario.json` are written from `OptimizationReport` / `ScenarioReport`,
//! which are serialise-only (their unit is a `&'static str`), so the fields drawn here are read with
//! local types; the per-draw outcomes come from `gain_draws.csv`.

use crate::ReportError;
use crate::chart::{BLACK, Element, GREY, Plot};
use crate::page::{Block, Card, Cell, LegendItem, Page, Section, Table, chart, fmt_num, fmt_pct};
use crate::read::{json, table};
use mmloop_mmm::analysis::Stat;
use serde::Deserialize;
use std::path::Path;

/// `optimize.json`, and a loop cycle's `budget.json` (the same report).
#[derive(Debug, Deserialize)]
pub(crate) struct OptimizeJson {
    horizon: usize,
    outcome_unit: String,
    objective: String,
    budget: f64,
    channels: Vec<ChannelPlan>,
    current_outcome: Stat,
    optimal_outcome: Stat,
    gain: Stat,
    prob_gain_positive: f64,
}

#[derive(Debug, Deserialize)]
struct ChannelPlan {
    channel: String,
    current_spend: f64,
    optimal_spend: f64,
    lower: f64,
    upper: f64,
    outcome: Stat,
    marginal_return: f64,
}

#[derive(Debug, Deserialize)]
struct ScenarioJson {
    periods: usize,
    outcome_unit: String,
    channels: Vec<ScenarioChannel>,
    total_spend: f64,
    total_outcome: Stat,
    roi: Stat,
}

#[derive(Debug, Deserialize)]
struct ScenarioChannel {
    channel: String,
    spend: f64,
    outcome: Stat,
    roi: Stat,
}

fn bar_height(n: usize) -> u32 {
    (90 + 70 * n as u32).min(700)
}

pub fn optimize_page(dir: &Path) -> Result<Page, ReportError> {
    let r: OptimizeJson = json(dir, "optimize.json", "optimize")?;
    let draws = table(dir, "gain_draws.csv", "optimize")?;
    let current = draws.f64("current_outcome")?;
    let optimal = draws.f64("optimal_outcome")?;
    let chart_err = |e: crate::chart::ChartError| ReportError::Chart { dir: dir.to_path_buf(), message: e.0 };
    let unit = &r.outcome_unit;
    let spend = spend_chart("opt-spend", &r).map_err(chart_err)?;

    // outcome distributions of both allocations over the posterior draws
    let (lo, hi) =
        current.iter().chain(&optimal).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(*x), b.max(*x)));
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 1.0, hi + 1.0) };
    let hc = crate::fit::density_histogram(&current, lo, hi, 30);
    let ho = crate::fit::density_histogram(&optimal, lo, hi, 30);
    let mut el: Vec<Element> = hc
        .iter()
        .map(|&(a, b, d)| Element::Rect { color: GREY, x0: a, y0: 0.0, x1: b, y1: d, opacity: 0.55 })
        .collect();
    el.extend(ho.iter().map(|&(a, b, d)| Element::Rect { color: 0, x0: a, y0: 0.0, x1: b, y1: d, opacity: 0.45 }));
    let mut t =
        Table::new(format!("Total incremental {unit} over the horizon"), &["allocation", "mean", "sd", "5 %", "95 %"]);
    for (name, s) in [("current", &r.current_outcome), ("recommended", &r.optimal_outcome), ("gain", &r.gain)] {
        t.row(vec![Cell::text(name), Cell::num(s.mean), Cell::num(s.sd), Cell::num(s.q05), Cell::num(s.q95)]);
    }
    let outcomes = chart(
        "opt-outcomes",
        "Outcome distributions",
        &format!("Total incremental {unit} over the horizon across the posterior draws (density histograms): current allocation (grey) and recommended (blue)."),
        &Plot { x_desc: format!("incremental {unit} over the horizon"), y_desc: "density".into(), elements: el, ..Default::default() },
        vec![LegendItem::new("current", GREY, "area"), LegendItem::new("recommended", 0, "area")],
        t,
    )
    .map_err(chart_err)?;

    let mroi = mroi_chart("opt-mroi", &r).map_err(chart_err)?;

    // the fit's response curves with the recommendation marked, when the fit named in the marker's
    // arguments is still there
    let mut notes = Vec::new();
    let mut curves = None;
    match fit_of(dir) {
        Some(fit) => {
            let rec: Vec<(String, f64)> = r
                .channels
                .iter()
                .filter(|c| c.current_spend > 0.0)
                .map(|c| (c.channel.clone(), c.optimal_spend / c.current_spend))
                .collect();
            curves = Some(crate::fit::response_curves(&fit.0, &fit.1, Some(&rec))?);
        }
        None => notes.push(
            "The fit this plan was made on is not where the command line named it: no response curves.".to_string(),
        ),
    }
    let card = recommendation_card(&r);
    Ok(Page {
        kind: "optimize".into(),
        title: "Budget allocation".into(),
        source: dir.display().to_string(),
        facts: vec![
            ("horizon".into(), format!("{} periods", r.horizon)),
            ("budget".into(), fmt_num(r.budget)),
            ("objective".into(), r.objective.clone()),
            ("outcome".into(), unit.clone()),
            ("expected gain".into(), fmt_num(r.gain.mean)),
            ("P(gain > 0)".into(), fmt_pct(r.prob_gain_positive)),
        ],
        sections: vec![Section {
            heading: "Current vs recommended".into(),
            text: notes,
            blocks: [Block::Card(card), spend, outcomes, mroi].into_iter().chain(curves).collect(),
        }],
    })
}

/// Current vs recommended spend per channel with the allowed range.
pub(crate) fn spend_chart(id: &str, r: &OptimizeJson) -> Result<Block, crate::chart::ChartError> {
    let names: Vec<String> = r.channels.iter().map(|c| c.channel.clone()).collect();
    let n = names.len() as f64;
    // current vs recommended spend, with the allowed range
    let mut el = Vec::new();
    let mut t = Table::new(
        format!("Spend per channel over {} periods (money)", r.horizon),
        &["channel", "current", "recommended", "change", "lower bound", "upper bound", "outcome mean", "5 %", "95 %"],
    );
    for (i, c) in r.channels.iter().enumerate() {
        let y = i as f64;
        el.push(Element::Rect { color: GREY, x0: 0.0, y0: y + 0.02, x1: c.current_spend, y1: y + 0.36, opacity: 1.0 });
        el.push(Element::Rect { color: 0, x0: 0.0, y0: y - 0.36, x1: c.optimal_spend, y1: y - 0.02, opacity: 1.0 });
        el.push(Element::Segment { color: BLACK, from: (c.lower, y - 0.19), to: (c.upper, y - 0.19), width: 1 });
        let change = if c.current_spend > 0.0 { c.optimal_spend / c.current_spend - 1.0 } else { f64::NAN };
        t.row(vec![
            Cell::text(&c.channel),
            Cell::num(c.current_spend),
            Cell::num(c.optimal_spend),
            Cell::pct(change),
            Cell::num(c.lower),
            Cell::num(c.upper),
            Cell::num(c.outcome.mean),
            Cell::num(c.outcome.q05),
            Cell::num(c.outcome.q95),
        ]);
    }
    let xmax = r.channels.iter().flat_map(|c| [c.current_spend, c.optimal_spend, c.upper]).fold(0.0, f64::max);
    chart(
        id,
        "Current vs recommended spend",
        &format!(
            "Spend per channel over the {}-period horizon (money): current (grey) and recommended (blue), with the allowed range (black line).",
            r.horizon
        ),
        &Plot {
            x_desc: "spend over the horizon (money)".into(),
            y_labels: Some(names.clone()),
            x_range: Some((0.0, xmax * 1.05)),
            y_range: Some((-0.6, n - 0.4)),
            elements: el,
            height: bar_height(names.len()),
            ..Default::default()
        },
        vec![
            LegendItem::new("current", GREY, "area"),
            LegendItem::new("recommended", 0, "area"),
            LegendItem::new("allowed range", BLACK, "line"),
        ],
        t,
    )
}

/// The marginal return of each channel at the recommended allocation.
pub(crate) fn mroi_chart(id: &str, r: &OptimizeJson) -> Result<Block, crate::chart::ChartError> {
    let unit = &r.outcome_unit;
    let names: Vec<String> = r.channels.iter().map(|c| c.channel.clone()).collect();
    let n = names.len() as f64;
    // marginal return at the optimum
    let mut el = Vec::new();
    let mut t = Table::new(
        format!("Marginal return at the optimum ({unit} per unit of spend)"),
        &["channel", "marginal return"],
    );
    for (i, c) in r.channels.iter().enumerate() {
        el.push(Element::Rect {
            color: 2,
            x0: 0.0,
            y0: i as f64 - 0.3,
            x1: c.marginal_return,
            y1: i as f64 + 0.3,
            opacity: 1.0,
        });
        t.row(vec![Cell::text(&c.channel), Cell::num(c.marginal_return)]);
    }
    let (mlo, mhi) =
        r.channels.iter().map(|c| c.marginal_return).fold((0.0f64, 0.0f64), |(a, b), x| (a.min(x), b.max(x)));
    chart(
        id,
        "Marginal return at the optimum",
        &format!(
            "The {unit} the next unit of spend would bring in each channel at the recommended allocation. Channels inside their bounds share one value at an optimum; a channel at a bound may differ."
        ),
        &Plot {
            x_desc: format!("marginal return ({unit} per unit of spend)"),
            y_labels: Some(names.clone()),
            x_range: Some((mlo - 0.05 * (mhi - mlo).abs().max(1e-9), mhi + 0.05 * (mhi - mlo).abs().max(1e-9))),
            y_range: Some((-0.6, n - 0.4)),
            elements: el,
            height: bar_height(names.len()),
            ..Default::default()
        },
        vec![LegendItem::new("marginal return", 2, "area")],
        t,
    )
}

/// The recommendation in words: expected gain, its interval, P(gain > 0), objective and budget.
pub(crate) fn recommendation_card(r: &OptimizeJson) -> Card {
    let unit = &r.outcome_unit;
    Card {
        title: "The recommendation in words".into(),
        status: if r.prob_gain_positive >= 0.9 { "ok" } else { "warn" }.into(),
        lines: vec![
            format!(
                "Expected gain {} {unit} (90 % interval {} to {}); the recommended allocation beats the current one in {} of posterior draws.",
                fmt_num(r.gain.mean),
                fmt_num(r.gain.q05),
                fmt_num(r.gain.q95),
                fmt_pct(r.prob_gain_positive)
            ),
            format!("Objective: {}; budget {} over {} periods.", r.objective, fmt_num(r.budget), r.horizon),
        ],
    }
}

/// The fit directory named by `--fit` in the output's marker (as given on the command line, so
/// relative to where the command ran), with its summary; `None` when it is not there any more.
fn fit_of(dir: &Path) -> Option<(std::path::PathBuf, mmloop_mmm::fitdir::FitSummary)> {
    let argv = mmloop_data::read_marker(dir)?.argv;
    let i = argv.iter().position(|a| a == "--fit")?;
    let fit = std::path::PathBuf::from(argv.get(i + 1)?);
    let summary = mmloop_mmm::fitdir::FitDir::open(&fit).and_then(|d| d.summary()).ok()?;
    Some((fit, summary))
}

pub fn scenario_page(dir: &Path) -> Result<Page, ReportError> {
    let r: ScenarioJson = json(dir, "scenario.json", "scenario")?;
    let chart_err = |e: crate::chart::ChartError| ReportError::Chart { dir: dir.to_path_buf(), message: e.0 };
    let unit = &r.outcome_unit;
    let names: Vec<String> = r.channels.iter().map(|c| c.channel.clone()).collect();
    let n = names.len() as f64;
    let whiskers = |f: &dyn Fn(&ScenarioChannel) -> &Stat| -> Vec<Element> {
        let mut el = Vec::new();
        for (i, c) in r.channels.iter().enumerate() {
            let s = f(c);
            el.push(Element::Segment { color: 0, from: (s.q05, i as f64), to: (s.q95, i as f64), width: 3 });
            el.push(Element::Points { color: 0, points: vec![(s.mean, i as f64)], size: 5 });
        }
        el
    };
    let mut t = Table::new(
        format!("The plan by channel over {} periods", r.periods),
        &["channel", "spend", "outcome mean", "outcome 5 %", "outcome 95 %", "ROI mean", "ROI 5 %", "ROI 95 %"],
    );
    for c in &r.channels {
        t.row(vec![
            Cell::text(&c.channel),
            Cell::num(c.spend),
            Cell::num(c.outcome.mean),
            Cell::num(c.outcome.q05),
            Cell::num(c.outcome.q95),
            Cell::num(c.roi.mean),
            Cell::num(c.roi.q05),
            Cell::num(c.roi.q95),
        ]);
    }
    let span = |v: Vec<f64>| {
        let (a, b) = v.iter().fold((0.0f64, f64::NEG_INFINITY), |(a, b), x| (a.min(*x), b.max(*x)));
        (a, b + 0.05 * (b - a).abs().max(1e-9))
    };
    let outcome = chart(
        "scn-outcome",
        "Outcome by channel",
        &format!(
            "Incremental {unit} of each channel under the plan: posterior mean (dot) and 90 % credible interval (bar)."
        ),
        &Plot {
            x_desc: format!("incremental {unit}"),
            y_labels: Some(names.clone()),
            x_range: Some(span(r.channels.iter().flat_map(|c| [c.outcome.q05, c.outcome.q95]).collect())),
            y_range: Some((-0.6, n - 0.4)),
            elements: whiskers(&|c| &c.outcome),
            height: bar_height(names.len()),
            ..Default::default()
        },
        vec![LegendItem::new("mean and 90 % interval", 0, "dot")],
        t.clone(),
    )
    .map_err(chart_err)?;
    let roi = chart(
        "scn-roi",
        "ROI by channel",
        &format!("{unit} per unit of spend of each channel under the plan: posterior mean and 90 % credible interval."),
        &Plot {
            x_desc: format!("ROI ({unit} per unit of spend)"),
            y_labels: Some(names.clone()),
            x_range: Some(span(r.channels.iter().flat_map(|c| [c.roi.q05, c.roi.q95]).collect())),
            y_range: Some((-0.6, n - 0.4)),
            elements: whiskers(&|c| &c.roi),
            height: bar_height(names.len()),
            ..Default::default()
        },
        vec![LegendItem::new("mean and 90 % interval", 0, "dot")],
        t,
    )
    .map_err(chart_err)?;
    Ok(Page {
        kind: "scenario".into(),
        title: "Spend scenario".into(),
        source: dir.display().to_string(),
        facts: vec![
            ("periods".into(), r.periods.to_string()),
            ("total spend".into(), fmt_num(r.total_spend)),
            (format!("total {unit}"), fmt_num(r.total_outcome.mean)),
            ("90 % interval".into(), format!("{} to {}", fmt_num(r.total_outcome.q05), fmt_num(r.total_outcome.q95))),
            ("ROI".into(), fmt_num(r.roi.mean)),
        ],
        sections: vec![Section { heading: "The plan's outcome".into(), text: vec![], blocks: vec![outcome, roi] }],
    })
}
