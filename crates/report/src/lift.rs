//! The report of a `mmloop lift` directory: per cell, treated vs counterfactual over time with the
//! test window, the per-period effect, the donor weights, and every estimator's estimate.
//!
//! `calibration.json` is read typed (`LiftTestRecord`); `lift.json` has no typed reader in the
//! geolift crate (it is built as JSON there), so the fields drawn here are read defensively: every one
//! optional, an absent figure shown as "–".

use crate::ReportError;
use crate::chart::{BLACK, Element, GREY, LIGHT, Plot, series_color};
use crate::page::{Block, Cell, LegendItem, Page, Section, Table, chart, fmt_num};
use crate::read::{json, table};
use mmloop_data::LiftTestRecord;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Donors shown in the weights chart (the rest are in its table).
const MAX_DONORS_DRAWN: usize = 15;

#[derive(Debug, Deserialize)]
struct LiftJson {
    #[serde(default)]
    kpi: String,
    #[serde(default)]
    source: String,
    cells: Vec<CellJson>,
}

#[derive(Debug, Deserialize)]
struct CellJson {
    cell: String,
    #[serde(default)]
    treated: Vec<String>,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
    /// Estimates by estimator name; a `BTreeMap` keeps them in name order (the file's maps are sorted).
    estimates: BTreeMap<String, EstimateJson>,
}

#[derive(Debug, Deserialize)]
struct EstimateJson {
    att: Option<f64>,
    lift_pct: Option<f64>,
    incremental: Option<f64>,
    ci_lower: Option<f64>,
    ci_upper: Option<f64>,
    p_value: Option<f64>,
    alpha: Option<f64>,
    inference: Option<String>,
    #[serde(default)]
    weights: BTreeMap<String, f64>,
    iroas: Option<IroasJson>,
    /// Placebo in space: the ATT with each control geo as the fake treated unit (SC).
    #[serde(default)]
    placebo_atts: BTreeMap<String, f64>,
}

#[derive(Debug, Deserialize)]
struct IroasJson {
    estimate: Option<f64>,
}

/// One row of `lift_periods.csv`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PathRow {
    pub cell: String,
    pub estimator: String,
    pub time: String,
    pub post: bool,
    pub observed: f64,
    pub counterfactual: f64,
    /// The effect's interval in a test period (`effect_lower`, `effect_upper`: estimators with a
    /// per-period band, sc and ascm); `None` elsewhere and in outputs written before the columns.
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

pub fn page(dir: &Path) -> Result<Page, ReportError> {
    let lift: LiftJson = json(dir, "lift.json", "lift")?;
    let records: Vec<LiftTestRecord> = json(dir, "calibration.json", "lift")?;
    let staggered = lift.cells.iter().any(|c| c.cell == "staggered");
    let rows = if staggered { Vec::new() } else { read_paths(dir)? };
    let kpi = if lift.kpi.is_empty() { "KPI".to_string() } else { lift.kpi.clone() };
    let chart_err = |e: crate::chart::ChartError| ReportError::Chart { dir: dir.to_path_buf(), message: e.0 };
    let mut sections = Vec::new();
    for (k, cell) in lift.cells.iter().enumerate() {
        let mut blocks = vec![estimates_chart(k, cell, &kpi).map_err(chart_err)?];
        let cell_rows: Vec<&PathRow> = rows.iter().filter(|r| r.cell == cell.cell).collect();
        if !cell_rows.is_empty() {
            blocks.push(path_chart(k, cell, &cell_rows, &kpi).map_err(chart_err)?);
            blocks.push(effect_chart(k, cell, &cell_rows, &kpi).map_err(chart_err)?);
        }
        if let Some(b) = weights_chart(k, cell).map_err(chart_err)? {
            blocks.push(b);
        }
        let placebo = placebo_chart(k, cell, &kpi).map_err(chart_err)?;
        let has_placebo = placebo.is_some();
        blocks.extend(placebo);
        let mut text = vec![format!(
            "Treated: {}. Test window {} to {}.",
            cell.treated.join(", "),
            cell.start.as_deref().unwrap_or("–"),
            cell.end.as_deref().unwrap_or("–")
        )];
        if staggered {
            text.push("Staggered adoption: TWFE on the whole panel; no per-period path is written.".into());
        }
        if let Some(r) = records.get(k) {
            text.push(format!(
                "Calibration record: incremental {kpi} {} (SE {}) by {}, spend change {}{}.",
                fmt_num(r.incremental_kpi),
                fmt_num(r.standard_error),
                r.estimator,
                fmt_num(r.spend_change),
                if r.channels.is_empty() { String::new() } else { format!(" on {}", r.channels.join(", ")) }
            ));
        }
        if !has_placebo {
            text.push("No placebo distribution: only the sc estimator writes its placebo-in-space ATTs.".into());
        }
        sections.push(Section { heading: format!("Cell {}", cell.cell), text, blocks });
    }
    let first = lift.cells.first();
    Ok(Page {
        kind: "lift".into(),
        title: format!(
            "Geo-lift readout: {}",
            if lift.source.is_empty() { dir.display().to_string() } else { lift.source.clone() }
        ),
        source: dir.display().to_string(),
        facts: vec![
            ("KPI".into(), kpi.clone()),
            ("cells".into(), lift.cells.len().to_string()),
            ("estimators".into(), first.map(|c| c.estimates.len()).unwrap_or(0).to_string()),
            ("window".into(), first.and_then(|c| c.start.clone()).unwrap_or_else(|| "–".into())),
        ],
        sections,
    })
}

fn read_paths(dir: &Path) -> Result<Vec<PathRow>, ReportError> {
    let csv = table(dir, "lift_periods.csv", "lift")?;
    let cell = csv.str("cell")?;
    let est = csv.str("estimator")?;
    let time = csv.str("time")?;
    let post = csv.f64("post")?;
    let obs = csv.f64("observed")?;
    let cf = csv.f64("counterfactual")?;
    // the band columns are absent from outputs written before mmloop wrote them: no band then
    let band = |name: &str| -> Result<Vec<Option<f64>>, ReportError> {
        Ok(if csv.has(name) {
            csv.f64_or_nan(name)?.into_iter().map(|v| v.is_finite().then_some(v)).collect()
        } else {
            vec![None; csv.n_rows()]
        })
    };
    let (lower, upper) = (band("effect_lower")?, band("effect_upper")?);
    Ok((0..csv.n_rows())
        .map(|i| PathRow {
            cell: cell[i].clone(),
            estimator: est[i].clone(),
            time: time[i].clone(),
            post: post[i] != 0.0,
            observed: obs[i],
            counterfactual: cf[i],
            lower: lower[i],
            upper: upper[i],
        })
        .collect())
}

/// The periods of a cell in file order, and each estimator's rows by period index.
pub(crate) fn by_estimator<'a>(rows: &[&'a PathRow]) -> (Vec<String>, Vec<(String, Vec<&'a PathRow>)>) {
    let mut times: Vec<String> = Vec::new();
    let mut ests: Vec<(String, Vec<&PathRow>)> = Vec::new();
    for r in rows {
        if !times.contains(&r.time) {
            times.push(r.time.clone());
        }
        match ests.iter_mut().find(|(e, _)| *e == r.estimator) {
            Some((_, v)) => v.push(r),
            None => ests.push((r.estimator.clone(), vec![r])),
        }
    }
    (times, ests)
}

fn window(times: &[String], rows: &[&PathRow]) -> Option<(f64, f64)> {
    let post: Vec<usize> = times
        .iter()
        .enumerate()
        .filter(|(_, t)| rows.iter().any(|r| &r.time == *t && r.post))
        .map(|(i, _)| i)
        .collect();
    Some((*post.first()? as f64 - 0.5, *post.last()? as f64 + 0.5))
}

fn path_chart(k: usize, cell: &CellJson, rows: &[&PathRow], kpi: &str) -> Result<Block, crate::chart::ChartError> {
    let (times, ests) = by_estimator(rows);
    let idx = |t: &str| times.iter().position(|x| x == t).unwrap_or(0) as f64;
    let mut el = Vec::new();
    let mut legend = vec![LegendItem::new("treated (observed)", BLACK, "line")];
    let all: Vec<f64> = rows.iter().flat_map(|r| [r.observed, r.counterfactual]).collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if let Some((a, b)) = window(&times, rows) {
        el.push(Element::Rect { color: LIGHT, x0: a, y0: lo, x1: b, y1: hi, opacity: 0.35 });
        legend.push(LegendItem::new("test window", LIGHT, "area"));
    }
    for (i, (e, v)) in ests.iter().enumerate() {
        let c = series_color(i);
        el.push(Element::Line {
            color: c,
            points: v.iter().map(|r| (idx(&r.time), r.counterfactual)).collect(),
            width: 2,
        });
        legend.push(LegendItem::new(format!("synthetic control ({e})"), c, "line"));
    }
    if let Some((_, v)) = ests.first() {
        el.push(Element::Line {
            color: BLACK,
            points: v.iter().map(|r| (idx(&r.time), r.observed)).collect(),
            width: 2,
        });
    }
    let mut cols = vec!["period".to_string(), "test window".to_string(), "treated (observed)".to_string()];
    cols.extend(ests.iter().map(|(e, _)| format!("counterfactual {e}")));
    let mut t =
        Table { caption: format!("{kpi}, average over the treated geos, per period"), columns: cols, rows: vec![] };
    for (i, time) in times.iter().enumerate() {
        let obs = ests.first().and_then(|(_, v)| v.iter().find(|r| &r.time == time)).map(|r| r.observed);
        let post = rows.iter().any(|r| &r.time == time && r.post);
        let mut row = vec![Cell::text(time), Cell::text(if post { "yes" } else { "no" }), Cell::opt(obs)];
        row.extend(ests.iter().map(|(_, v)| Cell::opt(v.iter().find(|r| &r.time == time).map(|r| r.counterfactual))));
        t.row(row);
        let _ = i;
    }
    let plot = Plot {
        x_desc: "period".into(),
        y_desc: format!("{kpi} per treated geo (KPI units)"),
        x_labels: Some(times.clone()),
        x_range: Some((-0.5, times.len() as f64 - 0.5)),
        elements: el,
        ..Default::default()
    };
    chart(
        &format!("lift-path-{k}"),
        &format!("Treated vs synthetic control ({})", cell.cell),
        &format!(
            "Average {kpi} of the treated geos (black) and each estimator's counterfactual, per period (KPI units); the shaded periods are the test window."
        ),
        &plot,
        legend,
        t,
    )
}

/// The level of an estimator's intervals, "90 %", from its α in `lift.json`.
fn level(cell: &CellJson, estimator: &str) -> String {
    cell.estimates
        .get(estimator)
        .and_then(|e| e.alpha)
        .map(|a| format!("{:.0} %", 100.0 * (1.0 - a)))
        .unwrap_or_else(|| "the estimate's".into())
}

fn effect_chart(k: usize, cell: &CellJson, rows: &[&PathRow], kpi: &str) -> Result<Block, crate::chart::ChartError> {
    let (times, ests) = by_estimator(rows);
    let idx = |t: &str| times.iter().position(|x| x == t).unwrap_or(0) as f64;
    let mut el = Vec::new();
    let mut legend = Vec::new();
    let window = window(&times, rows);
    // the estimators whose rows carry a per-period interval (sc and ascm), each drawn as its band
    let banded: Vec<usize> = (0..ests.len()).filter(|&i| ests[i].1.iter().any(|r| r.lower.is_some())).collect();
    for &i in &banded {
        let (name, v) = &ests[i];
        let pts: Vec<(f64, f64, f64)> = v.iter().filter_map(|r| Some((idx(&r.time), r.lower?, r.upper?))).collect();
        // one test period: a short bar instead of a ribbon through one point
        let xs: Vec<(f64, f64, f64)> = if pts.len() == 1 {
            let (x, lo, hi) = pts[0];
            vec![(x - 0.3, lo, hi), (x + 0.3, lo, hi)]
        } else {
            pts
        };
        el.push(Element::Band {
            color: series_color(i),
            lower: xs.iter().map(|p| (p.0, p.1)).collect(),
            upper: xs.iter().map(|p| (p.0, p.2)).collect(),
            opacity: 0.2,
        });
        legend.push(LegendItem::new(
            format!("{name}: {} interval per period", level(cell, name)),
            series_color(i),
            "area",
        ));
    }
    // without any per-period band (outputs of older versions, or only estimators without one): the
    // first estimator's test-window average effect and its interval, as a band over the window
    let mut average_band = false;
    if banded.is_empty()
        && let (Some((a, b)), Some((name, _))) = (window, ests.first())
        && let Some(e) = cell.estimates.get(name)
        && let (Some(lo), Some(hi)) = (e.ci_lower, e.ci_upper)
    {
        average_band = true;
        el.push(Element::Band { color: 0, lower: vec![(a, lo), (b, lo)], upper: vec![(a, hi), (b, hi)], opacity: 0.2 });
        if let Some(att) = e.att {
            el.push(Element::Segment { color: 0, from: (a, att), to: (b, att), width: 1 });
        }
        legend.push(LegendItem::new(
            format!("{name}: average effect in the window, {} interval", level(cell, name)),
            0,
            "area",
        ));
    }
    el.push(Element::Segment { color: GREY, from: (-0.5, 0.0), to: (times.len() as f64 - 0.5, 0.0), width: 1 });
    for (i, (e, v)) in ests.iter().enumerate() {
        let c = series_color(i);
        el.push(Element::Line {
            color: c,
            points: v.iter().map(|r| (idx(&r.time), r.observed - r.counterfactual)).collect(),
            width: 2,
        });
        legend.push(LegendItem::new(format!("effect ({e})"), c, "line"));
    }
    let mut cols = vec!["period".to_string(), "test window".to_string()];
    for (i, (e, _)) in ests.iter().enumerate() {
        cols.push(format!("effect {e}"));
        if banded.contains(&i) {
            cols.push(format!("{e} lower"));
            cols.push(format!("{e} upper"));
        }
    }
    let mut t = Table {
        caption: format!(
            "Observed minus counterfactual {kpi} per treated geo, per period, with the per-period interval where the estimator has one"
        ),
        columns: cols,
        rows: vec![],
    };
    for time in &times {
        let post = rows.iter().any(|r| &r.time == time && r.post);
        let mut row = vec![Cell::text(time), Cell::text(if post { "yes" } else { "no" })];
        for (i, (_, v)) in ests.iter().enumerate() {
            let r = v.iter().find(|r| &r.time == time);
            row.push(Cell::opt(r.map(|r| r.observed - r.counterfactual)));
            if banded.contains(&i) {
                row.push(Cell::opt(r.and_then(|r| r.lower)));
                row.push(Cell::opt(r.and_then(|r| r.upper)));
            }
        }
        t.row(row);
    }
    let plot = Plot {
        x_desc: "period".into(),
        y_desc: format!("effect on {kpi} per treated geo (KPI units)"),
        x_labels: Some(times.clone()),
        x_range: Some((-0.5, times.len() as f64 - 0.5)),
        elements: el,
        ..Default::default()
    };
    let names = |band: bool| -> Vec<&str> {
        (0..ests.len()).filter(|i| banded.contains(i) == band).map(|i| ests[i].0.as_str()).collect()
    };
    let band_text = if average_band {
        "The band is the first estimator's average effect over the window with its interval: this output holds no per-period interval.".to_string()
    } else if banded.is_empty() {
        "No estimator here has a per-period interval.".to_string()
    } else {
        format!(
            "The bands are per-period intervals (conformal inference per test period, Chernozhukov, Wüthrich & Zhu 2021, as augsynth's summary) of {}{}.",
            names(true).join(", "),
            if names(false).is_empty() {
                String::new()
            } else {
                format!(
                    "; {} ha{} no per-period interval",
                    names(false).join(", "),
                    if names(false).len() == 1 { "s" } else { "ve" }
                )
            }
        )
    };
    chart(
        &format!("lift-effect-{k}"),
        &format!("Per-period effect ({})", cell.cell),
        &format!(
            "Observed minus counterfactual {kpi} per treated geo, per period (KPI units); before the window it shows the pre-period fit. {band_text}"
        ),
        &plot,
        legend,
        t,
    )
}

fn estimates_chart(k: usize, cell: &CellJson, kpi: &str) -> Result<Block, crate::chart::ChartError> {
    let names: Vec<String> = cell.estimates.keys().cloned().collect();
    let mut el = Vec::new();
    let mut t = Table::new(
        format!("Estimates of the average effect on {kpi} per treated geo and period"),
        &["estimator", "ATT", "CI lower", "CI upper", "lift", "incremental (total)", "p-value", "iROAS", "inference"],
    );
    for (i, (name, e)) in cell.estimates.iter().enumerate() {
        let y = i as f64;
        if let (Some(lo), Some(hi)) = (e.ci_lower, e.ci_upper) {
            el.push(Element::Segment { color: 0, from: (lo, y), to: (hi, y), width: 3 });
        }
        if let Some(a) = e.att {
            el.push(Element::Points { color: 0, points: vec![(a, y)], size: 5 });
        }
        t.row(vec![
            Cell::text(name),
            Cell::opt(e.att),
            Cell::opt(e.ci_lower),
            Cell::opt(e.ci_upper),
            e.lift_pct.map(|l| Cell { text: format!("{:.2} %", l), value: Some(l) }).unwrap_or_else(|| Cell::text("–")),
            Cell::opt(e.incremental),
            Cell::opt(e.p_value),
            Cell::opt(e.iroas.as_ref().and_then(|r| r.estimate)),
            Cell::text(e.inference.clone().unwrap_or_default()),
        ]);
    }
    let n = names.len() as f64;
    el.push(Element::Segment { color: GREY, from: (0.0, -0.6), to: (0.0, n - 0.4), width: 1 });
    let plot = Plot {
        x_desc: format!("average effect on {kpi} per treated geo and period (KPI units)"),
        y_labels: Some(names),
        y_range: Some((-0.6, n - 0.4)),
        elements: el,
        height: (120 + 50 * cell.estimates.len() as u32).clamp(240, 600),
        ..Default::default()
    };
    chart(
        &format!("lift-estimates-{k}"),
        &format!("Estimates by estimator ({})", cell.cell),
        &format!(
            "Each estimator's average treatment effect on the treated (dot) with its confidence interval (bar), in {kpi} per treated geo and period."
        ),
        &plot,
        vec![LegendItem::new("ATT and interval", 0, "dot")],
        t,
    )
}

fn weights_chart(k: usize, cell: &CellJson) -> Result<Option<Block>, crate::chart::ChartError> {
    // the synthetic-control family first (DiD's weights are uniform by construction)
    let with_weights = |n: &str| cell.estimates.get(n).filter(|e| !e.weights.is_empty()).map(|e| (n.to_string(), e));
    let found = ["sc", "ascm", "sdid"]
        .into_iter()
        .find_map(with_weights)
        .or_else(|| cell.estimates.iter().find(|(_, e)| !e.weights.is_empty()).map(|(n, e)| (n.clone(), e)));
    let Some((name, e)) = found else { return Ok(None) };
    let name = &name;
    let mut w: Vec<(&String, f64)> = e.weights.iter().map(|(g, v)| (g, *v)).collect();
    w.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let drawn: Vec<&(&String, f64)> = w.iter().take(MAX_DONORS_DRAWN).collect();
    // largest weight on top
    let labels: Vec<String> = drawn.iter().rev().map(|(g, _)| (*g).clone()).collect();
    let el: Vec<Element> = drawn
        .iter()
        .rev()
        .enumerate()
        .map(|(i, (_, v))| Element::Rect {
            color: 2,
            x0: 0.0,
            y0: i as f64 - 0.35,
            x1: *v,
            y1: i as f64 + 0.35,
            opacity: 1.0,
        })
        .collect();
    let mut t = Table::new(format!("Donor weights of {name} (all donors)"), &["donor geo", "weight"]);
    for (g, v) in &w {
        t.row(vec![Cell::text(*g), Cell::num(*v)]);
    }
    let n = drawn.len() as f64;
    let xmax = drawn.iter().map(|d| d.1).fold(0.0, f64::max).max(1e-9);
    let plot = Plot {
        x_desc: "weight (fraction of the synthetic control)".into(),
        y_labels: Some(labels),
        x_range: Some((0.0f64.min(w.iter().map(|d| d.1).fold(0.0, f64::min)), xmax * 1.05)),
        y_range: Some((-0.6, n - 0.4)),
        elements: el,
        height: (80 + 34 * drawn.len() as u32).min(640),
        ..Default::default()
    };
    Ok(Some(chart(
        &format!("lift-weights-{k}"),
        &format!("Donor weights: {name} ({})", cell.cell),
        &format!(
            "How much each control geo contributes to {name}'s synthetic control (the {MAX_DONORS_DRAWN} largest; all in the table)."
        ),
        &plot,
        vec![LegendItem::new("weight", 2, "area")],
        t,
    )?))
}

fn placebo_chart(k: usize, cell: &CellJson, kpi: &str) -> Result<Option<Block>, crate::chart::ChartError> {
    let Some((name, e)) = cell.estimates.iter().find(|(_, e)| !e.placebo_atts.is_empty()) else { return Ok(None) };
    let Some(att) = e.att else { return Ok(None) };
    let mut p: Vec<(&String, f64)> = e.placebo_atts.iter().map(|(g, a)| (g, *a)).collect();
    p.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(b.0)));
    let n = p.len() as f64;
    let labels: Vec<String> = p.iter().map(|(g, _)| (*g).clone()).collect();
    let mut el = vec![
        Element::Segment { color: GREY, from: (0.0, -0.6), to: (0.0, n - 0.4), width: 1 },
        Element::Segment { color: 5, from: (att, -0.6), to: (att, n - 0.4), width: 3 },
    ];
    el.push(Element::Points {
        color: 0,
        points: p.iter().enumerate().map(|(i, (_, a))| (*a, i as f64)).collect(),
        size: 5,
    });
    let mut t = Table::new(
        format!(
            "Placebo ATTs of {name}: each control geo treated as if it were the test geo ({kpi} per geo and period)"
        ),
        &["control geo", "placebo ATT", "as large as the observed"],
    );
    for (g, a) in &p {
        t.row(vec![Cell::text(*g), Cell::num(*a), Cell::text(if a.abs() >= att.abs() { "yes" } else { "no" })]);
    }
    t.row(vec![Cell::text("observed (treated geos)"), Cell::num(att), Cell::text("")]);
    let (lo, hi) = p
        .iter()
        .map(|x| x.1)
        .chain([att, 0.0])
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let pad = 0.06 * (hi - lo).max(1e-9);
    let plot = Plot {
        x_desc: format!("ATT on {kpi} per geo and period (KPI units)"),
        y_labels: Some(labels),
        x_range: Some((lo - pad, hi + pad)),
        y_range: Some((-0.6, n - 0.4)),
        elements: el,
        height: (80 + 30 * p.len() as u32).clamp(240, 640),
        ..Default::default()
    };
    Ok(Some(chart(
        &format!("lift-placebo-{k}"),
        &format!("Placebo distribution: {name} ({})", cell.cell),
        &format!(
            "The effect {name} finds when each control geo in turn is treated as the test geo (dots), against the effect observed on the treated geos (orange line). An observed effect among the placebos is not distinguishable from noise."
        ),
        &plot,
        vec![LegendItem::new("placebo ATT", 0, "dot"), LegendItem::new("observed ATT", 5, "line")],
        t,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(e: &str, t: &str, post: bool) -> PathRow {
        PathRow {
            cell: "c".into(),
            estimator: e.into(),
            time: t.into(),
            post,
            observed: 1.0,
            counterfactual: 0.5,
            lower: None,
            upper: None,
        }
    }

    #[test]
    fn paths_group_by_estimator_in_file_order_and_the_window_spans_post_periods() {
        let rows = [row("sc", "1", false), row("sc", "2", true), row("did", "1", false), row("did", "2", true)];
        let refs: Vec<&PathRow> = rows.iter().collect();
        let (times, ests) = by_estimator(&refs);
        assert_eq!(times, ["1", "2"]);
        assert_eq!(ests.iter().map(|(e, _)| e.as_str()).collect::<Vec<_>>(), ["sc", "did"]);
        assert_eq!(window(&times, &refs), Some((0.5, 1.5)));
    }

    /// A lift directory with two estimators, sc with a per-period band and did without.
    fn lift_dir(csv: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let est =
            |att: f64| format!(r#"{{"att":{att},"alpha":0.1,"ci_lower":{},"ci_upper":{}}}"#, att - 1.0, att + 1.0);
        std::fs::write(
            d.path().join("lift.json"),
            format!(
                r#"{{"kpi":"sales","cells":[{{"cell":"test","treated":["a"],"start":"3","end":"4","estimates":{{"did":{},"sc":{}}}}}]}}"#,
                est(2.0),
                est(1.0)
            ),
        )
        .unwrap();
        std::fs::write(d.path().join("calibration.json"), "[]").unwrap();
        std::fs::write(d.path().join("lift_periods.csv"), csv).unwrap();
        d
    }

    fn effect_table(page: &Page) -> &Table {
        page.sections[0]
            .blocks
            .iter()
            .find_map(|b| match b {
                Block::Chart(c) if c.id == "lift-effect-0" => Some(&c.table),
                _ => None,
            })
            .expect("no effect chart")
    }

    fn column(t: &Table, name: &str) -> Vec<Option<f64>> {
        let k = t.columns.iter().position(|c| c == name).unwrap_or_else(|| panic!("no {name} in {:?}", t.columns));
        t.rows.iter().map(|r| r[k].value).collect()
    }

    #[test]
    fn the_effect_chart_draws_the_csv_per_period_band_and_its_table_holds_it_exactly() {
        let csv = "cell,estimator,time,post,observed,counterfactual,effect,effect_lower,effect_upper,effect_p_value\n\
            test,sc,1,0,10,9.5,0.5,,,\n\
            test,sc,2,0,10,10.25,-0.25,,,\n\
            test,sc,3,1,12,10,2,0.123456789012,3.5,0.04\n\
            test,sc,4,1,11,10,1,-0.75,2.25,0.3\n\
            test,did,1,0,10,9,1,,,\n\
            test,did,2,0,10,10,0,,,\n\
            test,did,3,1,12,9,3,,,\n\
            test,did,4,1,11,9,2,,,\n";
        let d = lift_dir(csv);
        let page = page(d.path()).unwrap();
        let t = effect_table(&page);
        assert_eq!(column(t, "sc lower"), [None, None, Some(0.123456789012), Some(-0.75)]);
        assert_eq!(column(t, "sc upper"), [None, None, Some(3.5), Some(2.25)]);
        assert!(!t.columns.iter().any(|c| c.starts_with("did lower")), "{:?}", t.columns);
        let Some(Block::Chart(c)) =
            page.sections[0].blocks.iter().find(|b| matches!(b, Block::Chart(c) if c.id == "lift-effect-0"))
        else {
            unreachable!()
        };
        assert!(
            c.caption.contains("per-period intervals") && c.caption.contains("did has no per-period interval"),
            "{}",
            c.caption
        );
        assert!(c.legend.iter().any(|l| l.name == "sc: 90 % interval per period"));
    }

    #[test]
    fn an_output_without_band_columns_falls_back_to_the_window_average() {
        let csv = "cell,estimator,time,post,observed,counterfactual,effect\n\
            test,sc,1,0,10,9.5,0.5\ntest,sc,2,1,12,10,2\n";
        let d = lift_dir(csv);
        let page = page(d.path()).unwrap();
        assert!(!effect_table(&page).columns.iter().any(|c| c.ends_with("lower")));
        let Some(Block::Chart(c)) =
            page.sections[0].blocks.iter().find(|b| matches!(b, Block::Chart(c) if c.id == "lift-effect-0"))
        else {
            unreachable!()
        };
        assert!(c.caption.contains("holds no per-period interval"), "{}", c.caption);
    }

    #[test]
    fn lift_json_reads_with_absent_figures() {
        let j = r#"{"kpi":"sales","cells":[{"cell":"a","estimates":{"did":{"att":1.0,"ci_lower":null}}}]}"#;
        let l: LiftJson = serde_json::from_str(j).unwrap();
        assert_eq!(l.cells[0].estimates["did"].att, Some(1.0));
        assert_eq!(l.cells[0].estimates["did"].ci_lower, None);
    }
}
