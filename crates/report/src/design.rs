//! The report of a `mmloop design` directory: power curves by effect and duration, MDE per
//! candidate, precision by duration and the chosen markets. `design.json` is read typed
//! (`DesignRecord`); `candidates.csv` through the table reader.

use crate::ReportError;
use crate::chart::{BLACK, Element, GREY, Plot, series_color};
use crate::page::{Block, Cell, LegendItem, Page, Section, Table, chart, fmt_pct};
use crate::read::{Csv, json, table};
use mmloop_geolift::design::DesignRecord;
use std::path::Path;

/// Candidates drawn in the MDE chart (all are in its table).
const MAX_CANDIDATES_DRAWN: usize = 20;

/// One row of `candidates.csv`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Candidate {
    pub rank: usize,
    pub treated: String,
    pub duration: usize,
    pub mde: f64,
    /// Power at each effect of the grid.
    pub power: Vec<f64>,
}

pub(crate) fn read_candidates(csv: &Csv, effects: &[f64]) -> Result<Vec<Candidate>, ReportError> {
    let rank = csv.f64("rank")?;
    let treated = csv.str("treated")?;
    let duration = csv.f64("duration")?;
    let mde = csv.f64_or_nan("mde")?;
    let power: Vec<Vec<f64>> = effects.iter().map(|e| csv.f64(&format!("power_{e}"))).collect::<Result<_, _>>()?;
    Ok((0..csv.n_rows())
        .map(|i| Candidate {
            rank: rank[i] as usize,
            treated: treated[i].clone(),
            duration: duration[i] as usize,
            mde: mde[i],
            power: power.iter().map(|p| p[i]).collect(),
        })
        .collect())
}

pub fn page(dir: &Path) -> Result<Page, ReportError> {
    let rec: DesignRecord = json(dir, "design.json", "design")?;
    let cands = read_candidates(&table(dir, "candidates.csv", "design")?, &rec.effect_grid)?;
    let chart_err = |e: crate::chart::ChartError| ReportError::Chart { dir: dir.to_path_buf(), message: e.0 };
    let mut blocks = vec![Block::Table(chosen_table(&rec))];
    blocks.push(power_chart(&rec, &cands).map_err(chart_err)?);
    if rec.precision_by_duration.len() > 1 {
        blocks.push(duration_chart(&rec).map_err(chart_err)?);
    }
    blocks.push(mde_chart(&rec, &cands).map_err(chart_err)?);
    let first = rec.cells.first();
    Ok(Page {
        kind: "design".into(),
        title: format!("Geo test design: {}", first.map(|c| c.treated.join(", ")).unwrap_or_default()),
        source: dir.display().to_string(),
        facts: vec![
            ("estimator".into(), format!("{:?}", rec.estimator).to_lowercase()),
            ("α".into(), rec.alpha.to_string()),
            ("target power".into(), fmt_pct(rec.target_power)),
            ("designs evaluated".into(), rec.n_evaluated.to_string()),
            ("windows".into(), rec.windows.to_string()),
            ("seed".into(), rec.seed.to_string()),
        ],
        sections: vec![Section {
            heading: "The chosen test and its alternatives".into(),
            text: vec![format!(
                "Power is the share of {} simulated historical test windows in which an injected effect was detected at α = {}. The MDE is the smallest effect on the grid reaching {} power.",
                rec.windows,
                rec.alpha,
                fmt_pct(rec.target_power)
            )],
            blocks,
        }],
    })
}

fn chosen_table(rec: &DesignRecord) -> Table {
    let mut t = Table::new(
        "Chosen markets (one row per cell)",
        &[
            "cell",
            "treated geos",
            "periods",
            "MDE",
            "incremental KPI needed",
            "se(lift)",
            "budget needed",
            "treated share",
        ],
    );
    for c in &rec.cells {
        t.row(vec![
            Cell::int(c.rank),
            Cell::text(c.treated.join(", ")),
            Cell::int(c.duration),
            c.mde.map(Cell::pct).unwrap_or_else(|| Cell::text("not reached")),
            Cell::opt(c.mde_incremental),
            Cell::pct(c.se_lift),
            Cell::opt(c.implied_budget),
            Cell::pct(c.treated_share),
        ]);
    }
    t
}

fn power_chart(rec: &DesignRecord, cands: &[Candidate]) -> Result<Block, crate::chart::ChartError> {
    let chosen = rec.cells.first().map(|c| c.treated.join(";")).unwrap_or_default();
    // the chosen treated set at every evaluated duration (the first candidate of each duration)
    let mut lines: Vec<&Candidate> = Vec::new();
    for c in cands.iter().filter(|c| c.treated == chosen) {
        if !lines.iter().any(|l| l.duration == c.duration) {
            lines.push(c);
        }
    }
    lines.sort_by_key(|c| c.duration);
    let mut el = vec![Element::Segment {
        color: GREY,
        from: (rec.effect_grid.iter().copied().fold(f64::INFINITY, f64::min), rec.target_power),
        to: (rec.effect_grid.iter().copied().fold(f64::NEG_INFINITY, f64::max), rec.target_power),
        width: 1,
    }];
    let mut legend = Vec::new();
    let mut cols = vec!["effect (relative lift)".to_string()];
    for (i, c) in lines.iter().enumerate() {
        let color = series_color(i);
        let pts: Vec<(f64, f64)> = rec.effect_grid.iter().zip(&c.power).map(|(e, p)| (*e, *p)).collect();
        el.push(Element::Line { color, points: pts.clone(), width: 2 });
        el.push(Element::Points { color, points: pts, size: 3 });
        legend.push(LegendItem::new(format!("{} periods", c.duration), color, "line"));
        cols.push(format!("power, {} periods", c.duration));
    }
    legend.push(LegendItem::new(format!("target power {}", fmt_pct(rec.target_power)), GREY, "line"));
    let mut t = Table {
        caption: format!("Power of {} by effect and duration", chosen.replace(';', ", ")),
        columns: cols,
        rows: vec![],
    };
    for (k, e) in rec.effect_grid.iter().enumerate() {
        let mut row = vec![Cell::pct(*e)];
        row.extend(lines.iter().map(|c| Cell::num(c.power[k])));
        t.row(row);
    }
    let plot = Plot {
        x_desc: "true effect (relative lift, fraction)".into(),
        y_desc: "power (share of windows detected)".into(),
        y_range: Some((0.0, 1.02)),
        elements: el,
        ..Default::default()
    };
    chart(
        "design-power",
        "Power curves",
        "Probability of detecting a true lift of each size (x, as a fraction of the treated geos' KPI) with the chosen markets, one line per test length.",
        &plot,
        legend,
        t,
    )
}

fn duration_chart(rec: &DesignRecord) -> Result<Block, crate::chart::ChartError> {
    let pts: Vec<(f64, f64)> =
        rec.precision_by_duration.iter().filter_map(|r| r.mde.map(|m| (r.duration as f64, m.abs()))).collect();
    let se: Vec<(f64, f64)> = rec.precision_by_duration.iter().map(|r| (r.duration as f64, r.se_lift)).collect();
    let mut t =
        Table::new("Precision of the chosen markets by test length", &["periods", "MDE", "se(lift)", "budget needed"]);
    for r in &rec.precision_by_duration {
        t.row(vec![
            Cell::int(r.duration),
            r.mde.map(Cell::pct).unwrap_or_else(|| Cell::text("not reached")),
            Cell::pct(r.se_lift),
            Cell::opt(r.implied_budget),
        ]);
    }
    let plot = Plot {
        x_desc: "test length (periods)".into(),
        y_desc: "relative lift (fraction)".into(),
        elements: vec![
            Element::Line { color: 0, points: pts.clone(), width: 2 },
            Element::Points { color: 0, points: pts, size: 4 },
            Element::Line { color: 1, points: se.clone(), width: 2 },
            Element::Points { color: 1, points: se, size: 4 },
        ],
        ..Default::default()
    };
    chart(
        "design-duration",
        "MDE by test length",
        "The chosen markets' minimum detectable effect (|MDE|) and the spread of the estimated lift, se(lift), by test length, as fractions of the treated KPI.",
        &plot,
        vec![LegendItem::new("|MDE|", 0, "line"), LegendItem::new("se(lift)", 1, "line")],
        t,
    )
}

fn mde_chart(rec: &DesignRecord, cands: &[Candidate]) -> Result<Block, crate::chart::ChartError> {
    let mut sorted: Vec<&Candidate> = cands.iter().collect();
    sorted.sort_by_key(|c| c.rank);
    let drawn: Vec<&Candidate> = sorted.iter().take(MAX_CANDIDATES_DRAWN).copied().collect();
    let chosen: Vec<String> = rec.cells.iter().map(|c| c.treated.join(";")).collect();
    let label = |c: &Candidate| {
        let mut s = c.treated.replace(';', ", ");
        if s.chars().count() > 28 {
            s = s.chars().take(26).collect::<String>() + "…";
        }
        format!("#{} {} ({}p)", c.rank, s, c.duration)
    };
    // best rank on top
    let labels: Vec<String> = drawn.iter().rev().map(|c| label(c)).collect();
    let mut el = Vec::new();
    for (i, c) in drawn.iter().rev().enumerate() {
        let color = if chosen.contains(&c.treated) { 5 } else { 0 };
        if c.mde.is_finite() {
            el.push(Element::Rect {
                color,
                x0: 0.0,
                y0: i as f64 - 0.35,
                x1: c.mde.abs(),
                y1: i as f64 + 0.35,
                opacity: 1.0,
            });
        } else {
            el.push(Element::Text { color: BLACK, at: (0.0, i as f64), text: "not reached".into() });
        }
    }
    let mut t = Table::new("Every evaluated design", &["rank", "treated geos", "periods", "MDE"]);
    for c in &sorted {
        t.row(vec![
            Cell::int(c.rank),
            Cell::text(c.treated.replace(';', ", ")),
            Cell::int(c.duration),
            if c.mde.is_finite() { Cell::pct(c.mde) } else { Cell::text("not reached") },
        ]);
    }
    let n = drawn.len() as f64;
    let xmax = drawn.iter().map(|c| c.mde.abs()).filter(|v| v.is_finite()).fold(0.0, f64::max).max(1e-6);
    let plot = Plot {
        x_desc: "|MDE| (relative lift, fraction)".into(),
        y_labels: Some(labels),
        x_range: Some((0.0, xmax * 1.08)),
        y_range: Some((-0.6, n - 0.4)),
        elements: el,
        height: (80 + 30 * drawn.len() as u32).min(700),
        ..Default::default()
    };
    chart(
        "design-mde",
        "MDE per candidate",
        &format!(
            "Minimum detectable effect of the {} best-ranked designs (treated geos and test length in periods), as a fraction of the treated KPI; the chosen markets in orange.",
            drawn.len()
        ),
        &plot,
        vec![LegendItem::new("chosen", 5, "area"), LegendItem::new("alternative", 0, "area")],
        t,
    )
}
