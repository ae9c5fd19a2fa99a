//! The report of an experiment ledger (a file, not an output directory): the whole history of the
//! measurement loop as the ledger holds it, read through `mmloop_loop`'s API (no SQL here):
//! * every experiment, planned, running, read or discarded, on the data's time axis
//!   ([`Ledger::experiments`]);
//! * every read experiment's readout against the model's prediction of it, oldest first, and how
//!   the predictions have been calibrated over time (`mmloop_loop::validate::history`, the rows
//!   `mmloop ledger FILE history` prints);
//! * each channel's ROI interval over the recorded fits ([`Ledger::fits`]) with the readouts
//!   overlaid at the first fit that could calibrate on them;
//! * the age of each channel's newest readout and its decay, σ²_eff(t) = σ²·exp(λt),
//!   λ = ln 2 / half-life ([`mmloop_loop::decay`], the half-lives' class defaults).
//!
//! `mmloop report FILE` renders it; so does `mmloop report DIR` for a directory holding
//! `ledger.sqlite` (the demo loop's layout), where the loop's page adds the ledger's experiments
//! and calibration over time to the cycles' history.

use crate::ReportError;
use crate::chart::{BLACK, Element, GREY, LIGHT, Plot, series_color};
use crate::page::{Block, Card, Cell, LegendItem, Page, Section, Table, chart, fmt_num, fmt_pct};
use mmloop_loop::decay::{Age, HalfLifeSource, HalfLives, TimeUnit, variance_inflation};
use mmloop_loop::ledger::{Experiment, FitEntry, Ledger, Status};
use mmloop_loop::validate::{History, HistoryRow, history};
use mmloop_mmm::analysis::Stat;
use std::path::{Path, PathBuf};

/// z of the 90 % interval, Φ⁻¹(0.95) (the ledger's coverage uses the same interval).
pub(crate) const Z90: f64 = 1.644_853_626_951_472_2;

/// The file name of a ledger inside a directory (`mmloop loop --demo` writes `DIR/ledger.sqlite`).
pub const LEDGER_IN_DIR: &str = "ledger.sqlite";

/// What the report reads from a ledger.
pub(crate) struct LedgerView {
    pub path: PathBuf,
    pub experiments: Vec<Experiment>,
    pub fits: Vec<FitEntry>,
    pub history: History,
}

/// Opens the ledger at `path` and reads everything the report draws; a file that is not an
/// mmloop ledger (or a damaged one) is an error naming it.
pub(crate) fn read(path: &Path) -> Result<LedgerView, ReportError> {
    let bad = |message: String| ReportError::Ledger { path: path.to_path_buf(), message };
    let ledger = Ledger::open(path).map_err(|e| bad(e.to_string()))?;
    let experiments = ledger.experiments().map_err(|e| bad(e.to_string()))?;
    let fits = ledger.fits().map_err(|e| bad(e.to_string()))?;
    let history = history(&ledger).map_err(|e| bad(e.to_string()))?;
    Ok(LedgerView { path: path.to_path_buf(), experiments, fits, history })
}

fn chart_err(path: &Path) -> impl Fn(crate::chart::ChartError) -> ReportError + '_ {
    move |e| ReportError::Chart { dir: path.to_path_buf(), message: e.0 }
}

/// The report of the ledger at `path`: the loop's whole history from it.
pub fn page(path: &Path) -> Result<Page, ReportError> {
    let v = read(path)?;
    let err = chart_err(path);
    let mut sections = vec![experiments_section(&v)?, readouts_section(&v, true)?];

    // ROI over the fits, with the readouts
    let channels = fit_channels(&v.fits);
    let mut blocks = Vec::new();
    let mut text = vec![
        "Each recorded fit's posterior ROI per channel (mean and 90 % credible interval, incremental KPI per unit of spend), oldest fit first, with each one-channel readout's iROAS (± 1.645 SE / spend change) at the first fit recorded after it was read out, the first that could calibrate on it. A readout measures the return of its spend change (marginal), the ROI the average return of the whole spend: under saturation the two differ even when both are right.".to_string(),
    ];
    if v.fits.is_empty() {
        text.push("No fit is recorded in this ledger yet (`mmloop ledger FILE predict --fit DIR` records one).".into());
    }
    for (k, ch) in channels.iter().enumerate() {
        blocks.push(roi_over_fits(k, ch, &v).map_err(&err)?);
    }
    sections.push(Section { heading: "ROI over fits, with the readouts".into(), text, blocks });

    // evidence age and decay
    let ev = evidence(&v);
    let mut text = vec![
        "A readout t weeks old enters a fit with variance σ²_eff(t) = σ²·exp(λt), λ = ln 2 / half-life: its weight halves every half-life. Ages here are seen from the end of each readout in turn (the ledger does not hold the fits' last periods); half-lives are the class defaults of `mmloop_loop::decay` (a loop config may set others); numeric periods are read as weeks.".to_string(),
    ];
    let mut blocks = Vec::new();
    match &ev {
        Some(ev) => {
            blocks.push(age_chart(ev).map_err(&err)?);
            blocks.push(decay_chart(ev).map_err(&err)?);
        }
        None => text.push("No read experiment with a window in a known time notation: no evidence to age yet.".into()),
    }
    sections.push(Section { heading: "Evidence age and decay".into(), text, blocks });

    let count = |s: Status| v.experiments.iter().filter(|e| e.status == s).count().to_string();
    let h = &v.history;
    Ok(Page {
        kind: "ledger".into(),
        title: format!("Experiment ledger: {}", path.display()),
        source: path.display().to_string(),
        facts: vec![
            ("experiments".into(), v.experiments.len().to_string()),
            ("planned".into(), count(Status::Planned)),
            ("running".into(), count(Status::Running)),
            ("read".into(), count(Status::Read)),
            ("discarded".into(), count(Status::Discarded)),
            ("fits".into(), v.fits.len().to_string()),
            ("predicted readouts".into(), h.rows.len().to_string()),
            ("coverage (90 % nominal)".into(), h.overall.map(|s| fmt_pct(s.coverage)).unwrap_or_else(|| "–".into())),
            ("mean |z|".into(), h.overall.map(|s| fmt_num(s.mean_abs_z)).unwrap_or_else(|| "–".into())),
        ],
        sections,
    })
}

/// The ledger's sections a loop directory's page adds to the cycles' history: every experiment
/// with its status, and the readouts' calibration over time.
pub(crate) fn loop_sections(path: &Path) -> Result<Vec<Section>, ReportError> {
    let v = read(path)?;
    let mut s = vec![experiments_section(&v)?, readouts_section(&v, false)?];
    for x in &mut s {
        x.heading = format!("From the ledger: {}", x.heading.to_lowercase());
        x.text.insert(0, format!("Read from the experiment ledger {}.", path.display()));
    }
    Ok(s)
}

/// Every experiment on the data's time axis, coloured by status, with its table.
fn experiments_section(v: &LedgerView) -> Result<Section, ReportError> {
    let mut text = vec![
        "Every experiment the ledger holds, by id: planned (chosen, not started), running, read (with a readout) or discarded (with the reason), drawn over its test window.".to_string(),
    ];
    let mut blocks = Vec::new();
    if v.experiments.is_empty() {
        text.push("The ledger holds no experiment yet.".into());
    } else {
        blocks.push(experiments_chart(&v.experiments).map_err(chart_err(&v.path))?);
    }
    Ok(Section { heading: "Experiments: planned, running, read, discarded".into(), text, blocks })
}

/// The readouts against the predictions: with `with_history`, the readout-vs-prediction chart too
/// (a loop's page has its own), then the calibration over time and the score.
fn readouts_section(v: &LedgerView, with_history: bool) -> Result<Section, ReportError> {
    let h = &v.history;
    let err = chart_err(&v.path);
    let mut text = vec![
        "Each read experiment's measured incremental KPI (with its 90 % interval, ±1.645 SE) against the model's prediction of it made before the readout calibrated the model (90 % prediction interval). A discrepancy is a measurement outside the 90 % interval of its prediction, which combines the prediction's and the measurement's uncertainty.".to_string(),
    ];
    if !h.unpredicted.is_empty() {
        text.push(format!(
            "Read experiments without a prediction: {}; `mmloop ledger {} predict --fit DIR` predicts them.",
            h.unpredicted.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "),
            v.path.display()
        ));
    }
    let mut blocks = Vec::new();
    if h.rows.is_empty() {
        text.push("No read experiment has a prediction yet: nothing to draw.".into());
    } else {
        if with_history {
            blocks.push(readout_vs_prediction(h).map_err(&err)?);
        }
        blocks.push(calibration_chart(h).map_err(&err)?);
    }
    blocks.push(Block::Card(score_card(h)));
    Ok(Section { heading: "Readouts against predictions".into(), text, blocks })
}

/// Positions of data-time labels on a numeric axis: ISO dates in weeks since the earliest, numbers
/// as they are (periods); with the axis description. `None` for a label that parses as neither,
/// or when dates and numbers are mixed.
fn time_axis(labels: &[&str]) -> Option<(Vec<f64>, String)> {
    let dates: Option<Vec<f64>> = labels.iter().map(|l| mmloop_data::parse_date(l)).collect::<Option<_>>();
    if let Some(d) = dates {
        let first = d.iter().copied().fold(f64::INFINITY, f64::min);
        let i = d.iter().position(|x| *x == first)?;
        return Some((d.iter().map(|x| (x - first) / 7.0).collect(), format!("weeks since {}", labels[i])));
    }
    let nums: Option<Vec<f64>> =
        labels.iter().map(|l| l.trim().parse::<f64>().ok().filter(|v| v.is_finite())).collect();
    nums.map(|n| (n, "period".to_string()))
}

fn status_color(s: Status) -> usize {
    match s {
        Status::Planned => 4,
        Status::Running => 0,
        Status::Read => BLACK,
        Status::Discarded => 5,
    }
}

fn experiments_chart(exps: &[Experiment]) -> Result<Block, crate::chart::ChartError> {
    let n = exps.len();
    let y = |i: usize| (n - 1 - i) as f64;
    let labels: Vec<String> = exps.iter().rev().map(|e| format!("#{} {}", e.id, e.channels.join("+"))).collect();
    let ends: Vec<&str> = exps.iter().flat_map(|e| [e.start.as_str(), e.end.as_str()]).collect();
    let axis = time_axis(&ends);
    let mut el = Vec::new();
    if let Some((x, _)) = &axis {
        for (i, e) in exps.iter().enumerate() {
            let (a, b) = (x[2 * i], x[2 * i + 1]);
            el.push(Element::Segment { color: status_color(e.status), from: (a, y(i)), to: (b, y(i)), width: 6 });
            el.push(Element::Points { color: status_color(e.status), points: vec![(a, y(i)), (b, y(i))], size: 3 });
        }
    }
    let mut t = Table::new(
        "Every experiment in the ledger (incremental KPI over the test window; iROAS = incremental KPI / spend change)",
        &[
            "experiment",
            "status",
            "channels",
            "geos",
            "window",
            "read out",
            "measured",
            "SE",
            "iROAS",
            "iROAS 5 %",
            "iROAS 95 %",
            "note",
        ],
    );
    for e in exps {
        let r = e.readout.as_ref();
        let geos: Vec<String> = e.cells.iter().flat_map(|c| c.geos.iter().cloned()).collect();
        let design = e.design.as_ref().and_then(|d| d.get("name")).and_then(|n| n.as_str()).unwrap_or("");
        t.row(vec![
            Cell::int(e.id as usize),
            Cell::text(e.status.as_str()),
            Cell::text(e.channels.join(", ")),
            Cell::text(if geos.is_empty() { "national".to_string() } else { geos.join(", ") }),
            Cell::text(format!("{} to {}", e.start, e.end)),
            Cell::text(r.map(|r| r.read_out_at.clone()).unwrap_or_default()),
            Cell::opt(r.map(|r| r.record.incremental_kpi)),
            Cell::opt(r.map(|r| r.record.standard_error)),
            Cell::opt(r.and_then(|r| r.iroas)),
            Cell::opt(r.and_then(|r| r.iroas_interval).map(|i| i.0)),
            Cell::opt(r.and_then(|r| r.iroas_interval).map(|i| i.1)),
            Cell::text(match (&e.discard_reason, design) {
                (Some(why), _) => format!("discarded: {why}"),
                (None, d) => d.to_string(),
            }),
        ]);
    }
    let legend: Vec<LegendItem> = [Status::Planned, Status::Running, Status::Read, Status::Discarded]
        .into_iter()
        .filter(|s| exps.iter().any(|e| e.status == *s))
        .map(|s| LegendItem::new(s.as_str(), status_color(s), "line"))
        .collect();
    let x_desc = axis
        .as_ref()
        .map(|a| a.1.clone())
        .unwrap_or_else(|| "test window (not drawn: mixed or unknown time notation)".into());
    el.insert(0, Element::Segment { color: LIGHT, from: (0.0, -0.6), to: (0.0, n as f64 - 0.4), width: 1 });
    chart(
        "ledger-experiments",
        "Experiments over time",
        "Each experiment's test window on the data's time axis, by id (the first on top), coloured by its status.",
        &Plot {
            x_desc,
            y_labels: Some(labels),
            y_range: Some((-0.6, n as f64 - 0.4)),
            elements: el,
            height: (120 + 40 * n as u32).clamp(240, 800),
            ..Default::default()
        },
        legend,
        t,
    )
}

/// The readouts' z over time (oldest first) with the running coverage in the table.
fn calibration_chart(h: &History) -> Result<Block, crate::chart::ChartError> {
    let n = h.rows.len();
    let mut el = vec![
        Element::Segment { color: GREY, from: (-0.5, 0.0), to: (n as f64 - 0.5, 0.0), width: 1 },
        Element::Segment { color: LIGHT, from: (-0.5, Z90), to: (n as f64 - 0.5, Z90), width: 1 },
        Element::Segment { color: LIGHT, from: (-0.5, -Z90), to: (n as f64 - 0.5, -Z90), width: 1 },
    ];
    let mut t = Table::new(
        "Every predicted readout in the order it was read out: z = (measured − predicted) / √(sd² + SE²), and the running scores over the out-of-sample ones",
        &[
            "experiment",
            "read out",
            "fit",
            "z",
            "in the 90 % interval",
            "in sample",
            "running coverage",
            "running mean |z|",
        ],
    );
    let color = |r: &HistoryRow| {
        if r.in_sample {
            GREY
        } else if r.covered {
            BLACK
        } else {
            5
        }
    };
    for (i, r) in h.rows.iter().enumerate() {
        el.push(Element::Points { color: color(r), points: vec![(i as f64, r.z)], size: 5 });
        t.row(vec![
            Cell::int(r.experiment_id as usize),
            Cell::text(&r.read_out_at),
            Cell::int(r.fit_id as usize),
            Cell::num(r.z),
            Cell::text(if r.covered { "yes" } else { "no: discrepancy" }),
            Cell::text(if r.in_sample { "yes (not scored)" } else { "no" }),
            Cell::opt(r.running_coverage),
            Cell::opt(r.running_mean_abs_z),
        ]);
    }
    let ymax = h.rows.iter().map(|r| r.z.abs()).filter(|v| v.is_finite()).fold(2.0f64, f64::max) * 1.1;
    let mut legend =
        vec![LegendItem::new("z of a readout", BLACK, "dot"), LegendItem::new("a discrepancy (|z| > 1.645)", 5, "dot")];
    if h.rows.iter().any(|r| r.in_sample) {
        legend.push(LegendItem::new("in sample (not scored)", GREY, "dot"));
    }
    chart(
        "ledger-calibration",
        "Readouts against predictions over time",
        "Each readout's z, the gap between measurement and prediction in units of their combined standard deviation, in the order the readouts arrived; the light lines are ±1.645, between which 90 % of the readouts fall when the model is calibrated.",
        &Plot {
            x_desc: "readout, in the order read out".into(),
            y_desc: "z (standard deviations)".into(),
            x_labels: Some(h.rows.iter().map(|r| format!("#{}", r.experiment_id)).collect()),
            x_range: Some((-0.5, n as f64 - 0.5)),
            y_range: Some((-ymax, ymax)),
            elements: el,
            height: 300,
            ..Default::default()
        },
        legend,
        t,
    )
}

/// A fit's ROI per channel from its recorded summary: `[{name, roi: {mean, sd, q05, q95}, …}]` (a
/// fit directory's `summary.json` channels) or `{channel: {mean, sd, q05, q95}}` (a loop cycle's).
fn fit_rois(v: &serde_json::Value) -> Vec<(String, Stat)> {
    let stat = |x: &serde_json::Value| serde_json::from_value::<Stat>(x.clone()).ok();
    match v {
        serde_json::Value::Array(a) => {
            a.iter().filter_map(|c| Some((c.get("name")?.as_str()?.to_string(), stat(c.get("roi")?)?))).collect()
        }
        serde_json::Value::Object(o) => o.iter().filter_map(|(k, x)| Some((k.clone(), stat(x)?))).collect(),
        _ => vec![],
    }
}

/// The channels of the fits, in the order the fits first name them (oldest fit first).
fn fit_channels(fits: &[FitEntry]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in fits {
        for (c, _) in fit_rois(&f.fit.roi_summary) {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

fn roi_over_fits(k: usize, ch: &str, v: &LedgerView) -> Result<Block, crate::chart::ChartError> {
    let fits = &v.fits;
    let n = fits.len();
    // the one-channel readouts on ch, each at the first fit recorded after its readout (n: later)
    let readouts: Vec<(usize, &Experiment)> = v
        .experiments
        .iter()
        .filter(|e| e.status == Status::Read && e.channels.len() == 1 && e.channels[0] == ch)
        .filter(|e| e.readout.as_ref().is_some_and(|r| r.iroas.is_some()))
        .map(|e| {
            let at = e.readout.as_ref().map(|r| r.read_out_at.as_str()).unwrap_or("");
            (fits.iter().position(|f| f.created_at.as_str() >= at).unwrap_or(n), e)
        })
        .collect();
    let later = readouts.iter().any(|(x, _)| *x == n);
    let slots: Vec<RoiSlot> = (0..n + usize::from(later))
        .map(|x| {
            let fit = fits.get(x);
            let marks = readouts
                .iter()
                .filter(|(at, _)| *at == x)
                .filter_map(|(_, e)| {
                    let r = e.readout.as_ref()?;
                    let (lower, upper) = r.iroas_interval.unwrap_or((f64::NAN, f64::NAN));
                    let hist = v.history.rows.iter().find(|h| h.experiment_id == e.id);
                    let flagged = hist.is_some_and(|h| !h.covered && !h.in_sample);
                    let spend = r.record.spend_change;
                    Some(RoiReadout {
                        experiment: Cell::int(e.id as usize),
                        iroas: r.iroas.unwrap_or(f64::NAN),
                        lower,
                        upper,
                        predicted: hist.filter(|_| spend != 0.0).map(|h| h.predicted / spend),
                        discrepancy: match hist {
                            Some(h) if h.in_sample => "in sample",
                            Some(_) if flagged => "yes",
                            Some(_) => "no",
                            None => "not predicted",
                        },
                        flagged,
                    })
                })
                .collect();
            RoiSlot {
                label: fit.map(|f| format!("fit {}", f.id)).unwrap_or_else(|| "no fit yet".into()),
                lead: vec![
                    fit.map(|f| Cell::int(f.id as usize)).unwrap_or_else(|| Cell::text("none yet")),
                    Cell::text(fit.map(|f| f.created_at.clone()).unwrap_or_default()),
                ],
                roi: fit.and_then(|f| {
                    fit_rois(&f.fit.roi_summary).into_iter().find(|(c, _)| c == ch).map(|(_, s)| (s.mean, s.q05, s.q95))
                }),
                truth: None,
                readouts: marks,
            }
        })
        .collect();
    roi_track(
        &RoiTrack {
            id: format!("ledger-roi-{k}"),
            title: format!("{ch}: ROI over fits"),
            caption: format!(
                "The posterior ROI of {ch} in each recorded fit (blue: mean and 90 % credible interval, incremental KPI per unit of spend), oldest first, with each experiment on {ch} at the first fit recorded after its readout (iROAS ± 1.645 SE; orange when it disagreed with its prediction); the light line is break-even, ROI = 1."
            ),
            table_title: format!(
                "{ch}: posterior ROI per fit, and the readouts on {ch} (iROAS ± 1.645 SE / spend change)"
            ),
            lead_columns: &["fit", "recorded"],
            truth_column: false,
            x_desc: "fit, in the order recorded",
            y_desc: "ROI / iROAS (KPI per unit of spend)",
            height: 300,
        },
        &slots,
    )
}

/// One column of a chart of a channel's ROI over time: a recorded fit, or a loop cycle.
pub(crate) struct RoiSlot {
    /// The x-axis label.
    pub label: String,
    /// The table's leading cells (the fit and when it was recorded, or the cycle).
    pub lead: Vec<Cell>,
    /// The posterior ROI (mean, 5 %, 95 %), when this slot has one for the channel.
    pub roi: Option<(f64, f64, f64)>,
    /// The true ROI (a simulated world's), when known.
    pub truth: Option<f64>,
    /// The readouts on the channel shown at this slot.
    pub readouts: Vec<RoiReadout>,
}

/// A readout's iROAS beside the model's ROI, with its 90 % interval (± 1.645 SE / spend change).
pub(crate) struct RoiReadout {
    pub experiment: Cell,
    pub iroas: f64,
    pub lower: f64,
    pub upper: f64,
    /// The model's prediction of the readout, as an iROAS.
    pub predicted: Option<f64>,
    /// The discrepancy column's word ("yes", "no", "in sample", ...).
    pub discrepancy: &'static str,
    /// Drawn in orange: the readout disagreed with its prediction.
    pub flagged: bool,
}

/// What frames an ROI-over-time chart.
pub(crate) struct RoiTrack<'a> {
    pub id: String,
    pub title: String,
    pub caption: String,
    pub table_title: String,
    /// The columns of [`RoiSlot::lead`].
    pub lead_columns: &'a [&'a str],
    /// Whether the table has a "true ROI" column.
    pub truth_column: bool,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub height: u32,
}

/// A channel's ROI over fits or cycles, with the readouts on it overlaid: per slot the posterior
/// ROI (blue: mean and 90 % interval) and beside it each readout's iROAS (± 1.645 SE; black, or
/// orange when flagged), the true ROI as a line when known, break-even (ROI = 1) as a light line;
/// and the table of the same numbers, one row per readout (or per slot without one).
pub(crate) fn roi_track(track: &RoiTrack, slots: &[RoiSlot]) -> Result<Block, crate::chart::ChartError> {
    let mut columns: Vec<&str> = track.lead_columns.to_vec();
    columns.extend(["ROI mean", "5 %", "95 %"]);
    if track.truth_column {
        columns.push("true ROI");
    }
    columns.extend(["experiment", "measured iROAS", "5 %", "95 %", "predicted iROAS", "discrepancy"]);
    let mut t = Table::new(track.table_title.clone(), &columns);
    let n = slots.len() as f64;
    let mut el = vec![Element::Segment { color: LIGHT, from: (-0.5, 1.0), to: (n - 0.5, 1.0), width: 1 }];
    let mut truth_line = Vec::new();
    for (x, slot) in slots.iter().enumerate() {
        let x = x as f64;
        if let Some((mean, q05, q95)) = slot.roi {
            el.push(Element::Segment { color: 0, from: (x - 0.1, q05), to: (x - 0.1, q95), width: 4 });
            el.push(Element::Points { color: 0, points: vec![(x - 0.1, mean)], size: 5 });
        }
        if let Some(v) = slot.truth {
            truth_line.push((x, v));
        }
        let mut row = slot.lead.clone();
        row.extend([
            Cell::opt(slot.roi.map(|r| r.0)),
            Cell::opt(slot.roi.map(|r| r.1)),
            Cell::opt(slot.roi.map(|r| r.2)),
        ]);
        if track.truth_column {
            row.push(Cell::opt(slot.truth));
        }
        if slot.readouts.is_empty() {
            let mut r = row.clone();
            r.extend((0..6).map(|_| Cell::text("")));
            t.row(r);
        }
        for m in &slot.readouts {
            let color = if m.flagged { 5 } else { BLACK };
            el.push(Element::Segment { color, from: (x + 0.1, m.lower), to: (x + 0.1, m.upper), width: 2 });
            el.push(Element::Points { color, points: vec![(x + 0.1, m.iroas)], size: 5 });
            let mut r = row.clone();
            r.extend([
                m.experiment.clone(),
                Cell::num(m.iroas),
                Cell::num(m.lower),
                Cell::num(m.upper),
                Cell::opt(m.predicted),
                Cell::text(m.discrepancy),
            ]);
            t.row(r);
        }
    }
    let mut legend = vec![LegendItem::new("model ROI (mean, 90 % interval)", 0, "dot")];
    if !truth_line.is_empty() {
        el.push(Element::Line { color: 2, points: truth_line.clone(), width: 2 });
        el.push(Element::Points { color: 2, points: truth_line, size: 3 });
        legend.push(LegendItem::new("true ROI (demo world)", 2, "line"));
    }
    if slots.iter().any(|s| !s.readouts.is_empty()) {
        legend.push(LegendItem::new("readout iROAS", BLACK, "dot"));
        legend.push(LegendItem::new("readout iROAS, a discrepancy", 5, "dot"));
    }
    chart(
        &track.id,
        &track.title,
        &track.caption,
        &Plot {
            x_desc: track.x_desc.into(),
            y_desc: track.y_desc.into(),
            x_labels: Some(slots.iter().map(|s| s.label.clone()).collect()),
            x_range: Some((-0.5, n - 0.5)),
            elements: el,
            height: track.height,
            ..Default::default()
        },
        legend,
        t,
    )
}

/// The ages of each channel's newest readout, seen from each readout's end in turn.
struct Evidence {
    /// The readouts' ends in time order (labels), and the channels with a readout.
    times: Vec<String>,
    channels: Vec<String>,
    /// ages[c][k]: weeks from channel c's newest readout ending at or before times[k] to times[k].
    ages: Vec<Vec<Option<f64>>>,
    /// The newest experiment of each channel as of the last time.
    newest: Vec<Option<i64>>,
    half_lives: HalfLives,
}

fn evidence(v: &LedgerView) -> Option<Evidence> {
    let read: Vec<&Experiment> = v.experiments.iter().filter(|e| e.status == Status::Read).collect();
    let ends: Vec<&str> = read.iter().map(|e| e.end.as_str()).collect();
    let (x, _) = time_axis(&ends)?;
    let mut order: Vec<usize> = (0..read.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]).then(read[a].id.cmp(&read[b].id)));
    let mut times: Vec<String> = Vec::new();
    let mut tx: Vec<f64> = Vec::new();
    for &i in &order {
        if tx.last() != Some(&x[i]) {
            tx.push(x[i]);
            times.push(read[i].end.clone());
        }
    }
    let mut channels: Vec<String> = Vec::new();
    for &i in &order {
        for c in &read[i].channels {
            if !channels.contains(c) {
                channels.push(c.clone());
            }
        }
    }
    let mut ages = Vec::new();
    let mut newest = Vec::new();
    for c in &channels {
        let mut row = Vec::new();
        let mut last = None;
        for (k, at) in times.iter().enumerate() {
            let best = order.iter().copied().rfind(|&i| x[i] <= tx[k] && read[i].channels.contains(c));
            row.push(best.and_then(|i| Age::between(&read[i].end, at, TimeUnit::Weeks).ok()).map(|a| a.in_weeks()));
            last = best.map(|i| read[i].id);
        }
        ages.push(row);
        newest.push(last);
    }
    Some(Evidence { times, channels, ages, newest, half_lives: HalfLives::default() })
}

fn age_chart(ev: &Evidence) -> Result<Block, crate::chart::ChartError> {
    let n = ev.times.len();
    let mut el = vec![Element::Segment { color: LIGHT, from: (-0.5, 0.0), to: (n as f64 - 0.5, 0.0), width: 1 }];
    let mut legend = Vec::new();
    let mut cols = vec!["as of (a readout's end)".to_string()];
    cols.extend(ev.channels.iter().map(|c| format!("{c}: age (weeks)")));
    let col_refs: Vec<&str> = cols.iter().map(String::as_str).collect();
    let mut t = Table::new("Age of each channel's newest readout, in weeks, seen from each readout's end", &col_refs);
    for (k, at) in ev.times.iter().enumerate() {
        let mut row = vec![Cell::text(at)];
        row.extend(ev.ages.iter().map(|a| Cell::opt(a[k])));
        t.row(row);
    }
    for (i, (c, a)) in ev.channels.iter().zip(&ev.ages).enumerate() {
        let pts: Vec<(f64, f64)> = a.iter().enumerate().filter_map(|(k, v)| Some((k as f64, (*v)?))).collect();
        let color = series_color(i);
        el.push(Element::Line { color, points: pts.clone(), width: 2 });
        el.push(Element::Points { color, points: pts, size: 5 });
        legend.push(LegendItem::new(c.clone(), color, "line"));
    }
    let ymax = ev.ages.iter().flatten().flatten().copied().fold(1.0f64, f64::max);
    chart(
        "ledger-age",
        "Age of each channel's newest readout",
        "Weeks from the end of each channel's newest readout to the end of each readout in turn (the time the loop learns something new): a channel's line climbs while it goes untested and drops to 0 when it is read again.",
        &Plot {
            x_desc: "as of the end of a readout".into(),
            y_desc: "age of the newest readout (weeks)".into(),
            x_labels: Some(ev.times.clone()),
            x_range: Some((-0.5, n as f64 - 0.5)),
            y_range: Some((0.0, ymax * 1.1)),
            elements: el,
            height: 300,
            ..Default::default()
        },
        legend,
        t,
    )
}

fn decay_chart(ev: &Evidence) -> Result<Block, crate::chart::ChartError> {
    let now: Vec<Option<f64>> = ev.ages.iter().map(|a| a.last().copied().flatten()).collect();
    let hl: Vec<(f64, HalfLifeSource)> = ev
        .channels
        .iter()
        .map(|c| {
            let (h, src) = ev.half_lives.for_channel(c);
            (h.in_weeks(), src)
        })
        .collect();
    let max_age = now.iter().flatten().copied().fold(0.0f64, f64::max);
    let max_h = hl.iter().map(|h| h.0).fold(0.0f64, f64::max);
    let min_h = hl.iter().map(|h| h.0).fold(f64::INFINITY, f64::min);
    let t_max = (2.0 * max_h).max(1.2 * max_age).max(1.0);
    let mut el = vec![Element::Segment { color: LIGHT, from: (0.0, 2.0), to: (t_max, 2.0), width: 1 }];
    let mut legend = Vec::new();
    let mut t = Table::new(
        format!(
            "Half-life per channel (weeks), decay rate λ = ln 2 / half-life (per week), and its newest readout's variance inflation exp(λt) as of {}",
            ev.times.last().map(String::as_str).unwrap_or("–")
        ),
        &["channel", "half-life", "from", "λ", "newest experiment", "age (weeks)", "variance inflation exp(λt)"],
    );
    for (i, c) in ev.channels.iter().enumerate() {
        let (h, src) = ev.half_lives.for_channel(c);
        let color = series_color(i);
        el.push(Element::Line { color, points: crate::loops::decay_curve(h, t_max), width: 2 });
        legend.push(LegendItem::new(format!("{c} (half-life {} weeks)", fmt_num(h.in_weeks())), color, "line"));
        let inflation = now[i].and_then(|a| Age::weeks(a).ok()).map(|a| variance_inflation(a, h));
        if let (Some(a), Some(f)) = (now[i], inflation) {
            el.push(Element::Points { color, points: vec![(a, f)], size: 6 });
        }
        t.row(vec![
            Cell::text(c),
            Cell::num(h.in_weeks()),
            Cell::text(match src {
                HalfLifeSource::Channel => "set for the channel".to_string(),
                HalfLifeSource::Class(k) => format!("class default ({})", k.name()),
            }),
            Cell::num(h.rate()),
            Cell::id(ev.newest[i]),
            Cell::opt(now[i]),
            Cell::opt(inflation),
        ]);
    }
    legend.push(LegendItem::new("the newest readout, now", BLACK, "dot"));
    crate::loops::decay_plot(
        "ledger-decay",
        "each channel's newest readout as of the newest readout's end",
        el,
        legend,
        t,
        t_max,
        min_h,
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use mmloop_data::LiftTestRecord;
    use mmloop_loop::ledger::{Cell as LedgerCell, NewFit, PlannedExperiment, Prediction};
    use serde_json::json;

    fn rec(ch: &str, start: &str, end: &str, kpi: f64, se: f64, spend: f64) -> LiftTestRecord {
        LiftTestRecord {
            channels: vec![ch.into()],
            geos: vec!["a".into()],
            start: start.into(),
            end: end.into(),
            spend_change: spend,
            spend_path: None,
            incremental_kpi: kpi,
            standard_error: se,
            estimator: "sc".into(),
            source: "test".into(),
        }
    }

    fn stat(mean: f64) -> serde_json::Value {
        json!({"mean": mean, "sd": 0.1, "q05": mean - 0.2, "q95": mean + 0.2})
    }

    fn new_fit(roi_summary: serde_json::Value) -> NewFit {
        NewFit {
            config_hash: "c".into(),
            data_hash: "d".into(),
            method: "laplace".into(),
            diagnostics: json!({}),
            roi_summary,
            fit_dir: None,
        }
    }

    fn planned(ch: &str, start: &str, end: &str) -> PlannedExperiment {
        PlannedExperiment {
            channels: vec![ch.into()],
            cells: vec![LedgerCell { name: "test".into(), geos: vec!["b".into()] }],
            start: start.into(),
            end: end.into(),
            design: Some(json!({"name": format!("{ch} go-dark")})),
        }
    }

    fn table<'a>(page: &'a Page, id: &str) -> &'a Table {
        page.sections
            .iter()
            .flat_map(|s| &s.blocks)
            .find_map(|b| match b {
                Block::Chart(c) if c.id == id => Some(&c.table),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no chart {id}"))
    }

    fn column(t: &Table, name: &str) -> Vec<Option<f64>> {
        let k = t.columns.iter().position(|c| c == name).unwrap_or_else(|| panic!("no {name} in {:?}", t.columns));
        t.rows.iter().map(|r| r[k].value).collect()
    }

    /// A ledger as a loop leaves it: a fit (array summary), two readouts predicted by it (search's
    /// far off), a second fit (a cycle's map summary), and a planned, a running and a discarded test.
    fn ledger(path: &Path) {
        let pause = || std::thread::sleep(std::time::Duration::from_millis(5));
        let mut l = Ledger::open_or_create(path).unwrap();
        let f1 = l
            .record_fit(&new_fit(json!([{"name": "tv", "roi": stat(1.5)}, {"name": "search", "roi": stat(2.5)}])))
            .unwrap();
        pause();
        let ids = l
            .add_readouts(
                &[
                    rec("tv", "2023-01-02", "2023-02-20", 500.0, 100.0, 1000.0),
                    rec("search", "2023-03-06", "2023-04-24", 300.0, 50.0, 400.0),
                ],
                None,
            )
            .unwrap();
        let p = |e: i64, mean: f64| Prediction {
            fit_id: f1,
            experiment_id: e,
            mean,
            sd: 100.0,
            q05: mean - 164.5,
            q95: mean + 164.5,
        };
        l.record_predictions(&[(p(ids[0], 450.0), false), (p(ids[1], 900.0), false)]).unwrap();
        pause();
        l.record_fit(&new_fit(json!({"tv": stat(1.4), "search": stat(1.2)}))).unwrap();
        l.plan(&planned("social", "2023-06-05", "2023-07-24")).unwrap();
        let running = l.plan(&planned("display", "2023-05-01", "2023-06-19")).unwrap();
        l.mark_running(running).unwrap();
        let gone = l.plan(&planned("tv", "2023-05-01", "2023-05-29")).unwrap();
        l.discard(gone, "spend was not delivered").unwrap();
    }

    #[test]
    fn a_ledger_renders_the_loops_history_with_the_ledgers_own_numbers() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("loop.sqlite");
        ledger(&path);
        let page = page(&path).unwrap();
        let ids: Vec<&str> = page
            .sections
            .iter()
            .flat_map(|s| &s.blocks)
            .filter_map(|b| if let Block::Chart(c) = b { Some(c.id.as_str()) } else { None })
            .collect();
        assert_eq!(
            ids,
            [
                "ledger-experiments",
                "ledger-history",
                "ledger-calibration",
                "ledger-roi-0",
                "ledger-roi-1",
                "ledger-age",
                "ledger-decay"
            ]
        );
        // every experiment, with its status
        let t = table(&page, "ledger-experiments");
        assert_eq!(column(t, "experiment"), [1.0, 2.0, 3.0, 4.0, 5.0].map(Some));
        let k = t.columns.iter().position(|c| c == "status").unwrap();
        let status: Vec<&str> = t.rows.iter().map(|r| r[k].text.as_str()).collect();
        assert_eq!(status, ["read", "read", "planned", "running", "discarded"]);
        assert_eq!(column(t, "iROAS"), [Some(0.5), Some(0.75), None, None, None]);
        // readouts against predictions: the measurements, and search's z = (300 − 900) / √(100² + 50²)
        assert_eq!(column(table(&page, "ledger-history"), "measured"), [Some(500.0), Some(300.0)]);
        let z = column(table(&page, "ledger-calibration"), "z");
        assert!((z[1].unwrap() + 600.0 / 12_500f64.sqrt()).abs() < 1e-12, "{z:?}");
        // ROI over fits: tv's ROI in both fits (the first fit names it first), its readout at the second
        let t = table(&page, "ledger-roi-0");
        assert!(t.caption.starts_with("tv:"), "{}", t.caption);
        assert_eq!(column(t, "ROI mean"), [Some(1.5), Some(1.4)]);
        assert_eq!(column(t, "measured iROAS"), [None, Some(0.5)]);
        assert_eq!(column(t, "predicted iROAS"), [None, Some(0.45)]);
        // evidence age: seen from each readout's end; tv's readout is 9 weeks old at search's end
        let t = table(&page, "ledger-age");
        assert_eq!(column(t, "tv: age (weeks)"), [Some(0.0), Some(9.0)]);
        assert_eq!(column(t, "search: age (weeks)"), [None, Some(0.0)]);
        // and its variance inflation is the loop's 2^(age / half-life)
        let (h, _) = HalfLives::default().for_channel("tv");
        let t = table(&page, "ledger-decay");
        let inflation = column(t, "variance inflation exp(λt)");
        assert!((inflation[0].unwrap() - 2f64.powf(9.0 / h.in_weeks())).abs() < 1e-12, "{inflation:?}");
        assert_eq!(page.facts.iter().find(|f| f.0 == "discarded").map(|f| f.1.as_str()), Some("1"));
    }

    #[test]
    fn a_directory_keeping_a_ledger_renders_it_and_a_foreign_file_is_named() {
        let d = tempfile::tempdir().unwrap();
        ledger(&d.path().join(LEDGER_IN_DIR));
        let r = crate::render(d.path()).unwrap();
        assert_eq!(r.kind, "ledger");
        assert!(r.charts.contains(&"ledger-experiments".to_string()) && r.charts.contains(&"ledger-decay".to_string()));
        // a ledger.sqlite that is not a ledger: the error names the file
        let e = tempfile::tempdir().unwrap();
        std::fs::write(e.path().join(LEDGER_IN_DIR), "SQLite format 3\0 but not really").unwrap();
        let msg = crate::render(e.path()).unwrap_err().to_string();
        assert!(msg.contains("ledger.sqlite") && msg.contains("not a readable experiment ledger"), "{msg}");
    }

    #[test]
    fn an_empty_ledger_says_there_is_nothing_yet() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("l.sqlite");
        drop(Ledger::open_or_create(&path).unwrap());
        let page = page(&path).unwrap();
        let text: Vec<&String> = page.sections.iter().flat_map(|s| &s.text).collect();
        assert!(text.iter().any(|t| t.contains("holds no experiment yet")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("No fit is recorded")), "{text:?}");
    }
}
