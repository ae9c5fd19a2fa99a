//! The report of an experiment ledger (a file, not an output directory): every read experiment's
//! readout against the model's prediction of it, and how well the predictions have been calibrated
//! over time. Built from `mmloop_loop::validate::history`, the same rows `mmloop ledger FILE history`
//! prints.

use crate::ReportError;
use crate::chart::{BLACK, Element, GREY, Plot};
use crate::page::{Block, Card, Cell, LegendItem, Page, Section, Table, chart, fmt_num, fmt_pct};
use mmloop_loop::ledger::Ledger;
use mmloop_loop::validate::{History, history};
use std::path::Path;

/// z of the 90 % interval, Φ⁻¹(0.95) (the ledger's coverage uses the same interval).
const Z90: f64 = 1.644_853_626_951_472_2;

pub fn page(path: &Path) -> Result<Page, ReportError> {
    let ledger =
        Ledger::open(path).map_err(|e| ReportError::Ledger { path: path.to_path_buf(), message: e.to_string() })?;
    let h = history(&ledger).map_err(|e| ReportError::Ledger { path: path.to_path_buf(), message: e.to_string() })?;
    let mut text = vec![
        "Each read experiment's measured incremental KPI (with its 90 % interval, ±1.645 SE) against the model's prediction of it made before the readout calibrated the model (90 % prediction interval). A discrepancy is a measurement outside the 90 % interval of its prediction, which combines the prediction's and the measurement's uncertainty.".to_string(),
    ];
    if !h.unpredicted.is_empty() {
        text.push(format!(
            "Read experiments without a prediction: {}; `mmloop ledger {} predict --fit DIR` predicts them.",
            h.unpredicted.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "),
            path.display()
        ));
    }
    let mut blocks = Vec::new();
    if h.rows.is_empty() {
        text.push("No read experiment has a prediction yet: nothing to draw.".into());
    } else {
        blocks
            .push(readout_vs_prediction(&h).map_err(|e| ReportError::Chart { dir: path.to_path_buf(), message: e.0 })?);
    }
    blocks.push(Block::Card(score_card(&h)));
    Ok(Page {
        kind: "ledger".into(),
        title: format!("Experiment ledger: {}", path.display()),
        source: path.display().to_string(),
        facts: vec![
            ("predicted readouts".into(), h.rows.len().to_string()),
            ("unpredicted".into(), h.unpredicted.len().to_string()),
            ("coverage (90 % nominal)".into(), h.overall.map(|s| fmt_pct(s.coverage)).unwrap_or_else(|| "–".into())),
            ("mean |z|".into(), h.overall.map(|s| fmt_num(s.mean_abs_z)).unwrap_or_else(|| "–".into())),
        ],
        sections: vec![Section { heading: "Readouts against predictions".into(), text, blocks }],
    })
}

/// One readout against its prediction, as the readout charts draw it.
#[derive(Debug, Clone)]
pub(crate) struct Mark {
    /// The row's label (experiment, channels, when).
    pub label: String,
    pub measured: f64,
    pub standard_error: f64,
    pub predicted: f64,
    pub predicted_q05: f64,
    pub predicted_q95: f64,
    /// Drawn in orange: the measurement disagrees with its prediction.
    pub discrepancy: bool,
}

/// Readouts against predictions, the first on top: per row the prediction (blue: mean and 90 %
/// interval) and the measurement (mean ± 1.645 SE; black, or orange when a discrepancy).
pub(crate) fn readout_plot(marks: &[Mark]) -> Plot {
    let n = marks.len();
    let y = |i: usize| (n - 1 - i) as f64;
    let labels: Vec<String> = marks.iter().rev().map(|m| m.label.clone()).collect();
    let mut el = vec![];
    for (i, r) in marks.iter().enumerate() {
        let (lo, hi) = (r.measured - Z90 * r.standard_error, r.measured + Z90 * r.standard_error);
        el.push(Element::Segment {
            color: 0,
            from: (r.predicted_q05, y(i) - 0.15),
            to: (r.predicted_q95, y(i) - 0.15),
            width: 3,
        });
        el.push(Element::Points { color: 0, points: vec![(r.predicted, y(i) - 0.15)], size: 5 });
        let color = if r.discrepancy { 5 } else { BLACK };
        el.push(Element::Segment { color, from: (lo, y(i) + 0.15), to: (hi, y(i) + 0.15), width: 3 });
        el.push(Element::Points { color, points: vec![(r.measured, y(i) + 0.15)], size: 5 });
    }
    let xs = marks.iter().flat_map(|r| {
        [r.predicted_q05, r.predicted_q95, r.measured - Z90 * r.standard_error, r.measured + Z90 * r.standard_error]
    });
    let (lo, hi) = xs.filter(|v| v.is_finite()).fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    el.insert(0, Element::Segment { color: GREY, from: (0.0, -0.6), to: (0.0, n as f64 - 0.4), width: 1 });
    let pad = 0.05 * (hi - lo).max(1e-9);
    Plot {
        x_desc: "incremental KPI over the test window (KPI units)".into(),
        y_labels: Some(labels),
        x_range: Some((lo - pad, hi + pad)),
        y_range: Some((-0.6, n as f64 - 0.4)),
        elements: el,
        height: (120 + 70 * n as u32).clamp(240, 800),
        ..Default::default()
    }
}

/// The legend of [`readout_plot`].
pub(crate) fn readout_legend() -> Vec<LegendItem> {
    vec![
        LegendItem::new("predicted", 0, "dot"),
        LegendItem::new("measured", BLACK, "dot"),
        LegendItem::new("measured, a discrepancy", 5, "dot"),
    ]
}

fn readout_vs_prediction(h: &History) -> Result<Block, crate::chart::ChartError> {
    let marks: Vec<Mark> = h
        .rows
        .iter()
        .map(|r| Mark {
            label: format!("#{} {} {}", r.experiment_id, r.channels.join("+"), r.start),
            measured: r.measured,
            standard_error: r.standard_error,
            predicted: r.predicted,
            predicted_q05: r.predicted_q05,
            predicted_q95: r.predicted_q95,
            discrepancy: !r.covered,
        })
        .collect();
    let mut t = Table::new(
        "Every predicted readout, oldest first (incremental KPI over the test window)",
        &[
            "experiment",
            "channels",
            "window",
            "read out",
            "fit",
            "measured",
            "SE",
            "predicted",
            "5 %",
            "95 %",
            "z",
            "in the 90 % interval",
            "in sample",
        ],
    );
    for r in &h.rows {
        t.row(vec![
            Cell::int(r.experiment_id as usize),
            Cell::text(r.channels.join(", ")),
            Cell::text(format!("{} to {}", r.start, r.end)),
            Cell::text(&r.read_out_at),
            Cell::int(r.fit_id as usize),
            Cell::num(r.measured),
            Cell::num(r.standard_error),
            Cell::num(r.predicted),
            Cell::num(r.predicted_q05),
            Cell::num(r.predicted_q95),
            Cell::num(r.z),
            Cell::text(if r.covered { "yes" } else { "no: discrepancy" }),
            Cell::text(if r.in_sample { "yes (not scored)" } else { "no" }),
        ]);
    }
    let plot = readout_plot(&marks);
    chart(
        "ledger-history",
        "Readout vs prediction",
        "Per experiment, oldest on top: the model's prediction (blue: mean and 90 % interval) and the measurement (mean ± 1.645 SE; orange when it lies outside the 90 % interval of its prediction, predicted ± 1.645·√(sd² + SE²), i.e. |z| > 1.645), in incremental KPI over the test window.",
        &plot,
        readout_legend(),
        t,
    )
}

fn score_card(h: &History) -> Card {
    let mut lines = Vec::new();
    let mut status = "ok";
    match h.overall {
        Some(s) => {
            lines.push(format!(
                "{} out-of-sample prediction(s): {} of the readouts fell in their 90 % prediction interval (nominal 90 %); mean |z| {} (about 0.80 when calibrated).",
                s.n,
                fmt_pct(s.coverage),
                fmt_num(s.mean_abs_z)
            ));
            if s.coverage < 0.75 {
                status = "warn";
            }
        }
        None => {
            lines.push(
                "No out-of-sample prediction yet: the model's calibration against experiments is unscored.".into(),
            );
            status = "warn";
        }
    }
    for (name, s) in [("older half", h.older_half), ("newer half", h.newer_half)] {
        if let Some(s) = s {
            lines.push(format!(
                "{name}: coverage {}, mean |z| {} over {} test(s).",
                fmt_pct(s.coverage),
                fmt_num(s.mean_abs_z),
                s.n
            ));
        }
    }
    Card { title: "How well the model predicts experiments".into(), status: status.into(), lines }
}
