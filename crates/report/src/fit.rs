//! The report of a `mmloop fit` directory: fit, health, contributions, channels, curves, priors.
//!
//! Read through `FitDir` (`summary.json` typed as `FitSummary`), `contributions.csv`,
//! `response_curves.csv`, `config.toml` (the resolved spec: adstock kernels and priors) and
//! `posterior.parquet` (constrained draws, for the adstock bands and prior-vs-posterior).

use crate::ReportError;
use crate::chart::{BLACK, Element, GREY, LIGHT, Plot, series_color};
use crate::page::{Block, Card, Cell, LegendItem, Page, Section, Table, chart, fmt_num};
use crate::read::{Csv, table};
use mmloop_mmm::fitdir::{Diagnostics, FitDir, FitSummary};
use mmloop_mmm::priors::Prior;
use mmloop_mmm::spec::{EffectPrior, ModelSpec};
use mmloop_mmm::transforms::adstock::AdstockKernel;
use std::path::Path;

/// At most this many posterior draws (evenly thinned) go into the adstock bands.
const ADSTOCK_DRAWS: usize = 400;

/// The per-period series of `contributions.csv`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Periods {
    pub time: Vec<String>,
    pub holdout: Vec<bool>,
    pub actual: Vec<f64>,
    pub fitted: Vec<f64>,
    pub baseline: Vec<f64>,
    /// The fitted mean's 5 %/95 % band (absent in fits written before it was added).
    pub band: Option<(Vec<f64>, Vec<f64>)>,
    /// Each channel's mean contribution per period, in the summary's channel order.
    pub channels: Vec<(String, Vec<f64>)>,
}

impl Periods {
    pub fn read(csv: &Csv, channels: &[String]) -> Result<Self, ReportError> {
        let band = if csv.has("fitted_q05") && csv.has("fitted_q95") {
            Some((csv.f64("fitted_q05")?, csv.f64("fitted_q95")?))
        } else {
            None
        };
        Ok(Periods {
            time: csv.str("time")?,
            holdout: csv.f64("holdout")?.into_iter().map(|h| h != 0.0).collect(),
            actual: csv.f64("actual")?,
            fitted: csv.f64("fitted")?,
            baseline: csv.f64("baseline")?,
            band,
            channels: channels.iter().map(|c| Ok((c.clone(), csv.f64(c)?))).collect::<Result<_, ReportError>>()?,
        })
    }

    /// Baseline plus every channel's contribution, per period: what the fitted line must equal.
    pub fn stacked_total(&self) -> Vec<f64> {
        (0..self.time.len()).map(|t| self.baseline[t] + self.channels.iter().map(|(_, v)| v[t]).sum::<f64>()).collect()
    }

    fn first_holdout(&self) -> Option<usize> {
        self.holdout.iter().position(|h| *h)
    }
}

pub fn page(dir: &Path) -> Result<Page, ReportError> {
    let fd = FitDir::open(dir).map_err(|source| ReportError::Fit { dir: dir.to_path_buf(), source })?;
    let s = fd.summary().map_err(|source| ReportError::Fit { dir: dir.to_path_buf(), source })?;
    let names: Vec<String> = s.channels.iter().map(|c| c.name.clone()).collect();
    let periods = Periods::read(&table(dir, "contributions.csv", "fit")?, &names)?;
    // the resolved spec names the KPI and holds the kernels and priors; a fit is still reportable
    // without it (the charts that need it say why they are missing)
    let spec = mmloop_mmm::config::load_config(fd.file(mmloop_mmm::fitdir::CONFIG));
    let kpi = spec.as_ref().map(|s| s.data.kpi_column.clone()).unwrap_or_else(|_| "KPI".into());
    let chart_err = |e: crate::chart::ChartError| ReportError::Chart { dir: dir.to_path_buf(), message: e.0 };

    let mut sections = Vec::new();
    // --- fit ----------------------------------------------------------------------------------
    let mut blocks = vec![actual_vs_fitted(&periods, &kpi).map_err(chart_err)?, Block::Table(metrics_table(&s))];
    blocks.push(Block::Card(health_card(&s.diagnostics)));
    let mut text = vec![format!(
        "{} periods{}, {} geo(s), {} channels; {} posterior draws by {}.",
        s.model.periods,
        if s.model.holdout > 0 { format!(" (the last {} held out)", s.model.holdout) } else { String::new() },
        s.model.geos,
        s.channels.len(),
        s.n_draws,
        s.model.method
    )];
    if periods.band.is_none() {
        text.push("This fit predates the fitted band in contributions.csv: refit to see the credible band.".into());
    }
    sections.push(Section { heading: "How well the model fits".into(), text, blocks });
    // --- contributions ------------------------------------------------------------------------
    sections.push(Section {
        heading: "Where the KPI comes from".into(),
        text: vec![],
        blocks: vec![contribution_stack(&periods, &kpi).map_err(chart_err)?],
    });
    // --- channels -----------------------------------------------------------------------------
    sections.push(Section {
        heading: "Channels".into(),
        text: vec![format!("ROI is {}; intervals are 90 % credible intervals (5 % to 95 %).", s.roi_units)],
        blocks: vec![shares(&s).map_err(chart_err)?, roi_chart(&s).map_err(chart_err)?],
    });
    // --- curves -------------------------------------------------------------------------------
    let mut blocks = vec![response_curves(dir, &s, None)?];
    let mut text = Vec::new();
    match &spec {
        Ok(spec) => {
            let post = table(dir, mmloop_mmm::fitdir::POSTERIOR, "fit")?;
            blocks.push(adstock_decay(spec, &post).map_err(chart_err)?);
            let (priors, skipped) = prior_vs_posterior(spec, &post)?;
            blocks.extend(priors);
            text.extend(skipped);
        }
        Err(e) => text.push(format!("Adstock and prior charts need the saved config, which cannot be read: {e}")),
    }
    sections.push(Section { heading: "Response, carry-over and priors".into(), text, blocks });

    Ok(Page {
        kind: "fit".into(),
        title: format!("Marketing-mix model: {}", s.model.data),
        source: dir.display().to_string(),
        facts: vec![
            ("method".into(), s.model.method.clone()),
            ("periods".into(), s.model.periods.to_string()),
            ("holdout".into(), s.model.holdout.to_string()),
            ("geos".into(), s.model.geos.to_string()),
            ("channels".into(), s.channels.len().to_string()),
            ("draws".into(), s.n_draws.to_string()),
            ("R² in sample".into(), fmt_num(s.fit.in_sample.r2)),
            ("seed".into(), s.model.seed.to_string()),
        ],
        sections,
    })
}

fn index_points(v: &[f64]) -> Vec<(f64, f64)> {
    v.iter().enumerate().map(|(i, y)| (i as f64, *y)).collect()
}

fn minmax(vs: &[&[f64]]) -> (f64, f64) {
    let f = vs.iter().flat_map(|v| v.iter().copied()).filter(|x| x.is_finite());
    f.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)))
}

fn actual_vs_fitted(p: &Periods, kpi: &str) -> Result<Block, crate::chart::ChartError> {
    let mut all: Vec<&[f64]> = vec![&p.actual, &p.fitted, &p.baseline];
    if let Some((lo, hi)) = &p.band {
        all.push(lo);
        all.push(hi);
    }
    let (lo, hi) = minmax(&all);
    let (y0, y1) = (lo.min(0.0), hi + 0.05 * (hi - lo.min(0.0)));
    let n = p.time.len();
    let mut el = Vec::new();
    let mut legend =
        vec![LegendItem::new("actual", BLACK, "dot"), LegendItem::new("fitted (posterior mean)", 0, "line")];
    if let Some(h) = p.first_holdout() {
        el.push(Element::Rect { color: LIGHT, x0: h as f64 - 0.5, y0, x1: n as f64 - 0.5, y1, opacity: 0.35 });
        legend.push(LegendItem::new("holdout (not fitted)", LIGHT, "area"));
    }
    if let Some((lo, hi)) = &p.band {
        el.push(Element::Band { color: 0, lower: index_points(lo), upper: index_points(hi), opacity: 0.25 });
        legend.push(LegendItem::new("fitted 90 % credible band", 0, "area"));
    }
    el.push(Element::Line { color: GREY, points: index_points(&p.baseline), width: 2 });
    legend.push(LegendItem::new("baseline (no media)", GREY, "line"));
    el.push(Element::Line { color: 0, points: index_points(&p.fitted), width: 2 });
    el.push(Element::Points { color: BLACK, points: index_points(&p.actual), size: 2 });
    let plot = Plot {
        x_desc: "period".into(),
        y_desc: format!("{kpi} (KPI units, all geos)"),
        x_labels: Some(p.time.clone()),
        x_range: Some((-0.5, n as f64 - 0.5)),
        y_range: Some((y0, y1)),
        elements: el,
        ..Default::default()
    };
    let mut t = Table::new(
        format!("{kpi} per period, summed over geos"),
        &["period", "holdout", "actual", "fitted", "fitted 5 %", "fitted 95 %", "baseline"],
    );
    for i in 0..n {
        let (l, h) = p.band.as_ref().map(|(l, h)| (l[i], h[i])).unwrap_or((f64::NAN, f64::NAN));
        t.row(vec![
            Cell::text(&p.time[i]),
            Cell::text(if p.holdout[i] { "yes" } else { "no" }),
            Cell::num(p.actual[i]),
            Cell::num(p.fitted[i]),
            Cell::num(l),
            Cell::num(h),
            Cell::num(p.baseline[i]),
        ]);
    }
    chart(
        "fit-actual",
        "Actual vs fitted",
        &format!(
            "{kpi} per period (KPI units): observed, the model's posterior mean with its 90 % band, and the baseline without media; the shaded periods were held out of the fit."
        ),
        &plot,
        legend,
        t,
    )
}

fn metrics_table(s: &FitSummary) -> Table {
    let mut t = Table::new("Fit of the posterior-mean prediction", &["sample", "cells", "R²", "MAPE", "NRMSE"]);
    let mut row = |name: &str, m: &mmloop_mmm::analysis::Metrics| {
        t.row(vec![Cell::text(name), Cell::int(m.n), Cell::num(m.r2), Cell::pct(m.mape), Cell::num(m.nrmse)])
    };
    row("in sample", &s.fit.in_sample);
    if let Some(h) = &s.fit.holdout {
        row("holdout", h);
    }
    t
}

/// The convergence figures in words: what was checked, what it means, what to do.
pub(crate) fn health_card(d: &Diagnostics) -> Card {
    let mut lines = Vec::new();
    let mut status = "ok";
    match d {
        Diagnostics::Nuts(n) => {
            let rhat_ok = n.max_rhat.is_finite() && n.max_rhat <= 1.01;
            lines.push(format!(
                "R-hat: largest {} ({}): {}",
                fmt_num(n.max_rhat),
                n.max_rhat_param.as_deref().unwrap_or("–"),
                if rhat_ok {
                    "the chains agree (≤ 1.01)."
                } else {
                    "above 1.01: the chains disagree; run more draws or reparametrise."
                }
            ));
            let ess_ok = n.min_ess_bulk >= 100.0 * n.chains as f64 && n.min_ess_tail >= 100.0 * n.chains as f64;
            lines.push(format!(
                "Effective sample size: bulk {} ({}), tail {} ({}): {}",
                fmt_num(n.min_ess_bulk),
                n.min_ess_bulk_param.as_deref().unwrap_or("–"),
                fmt_num(n.min_ess_tail),
                n.min_ess_tail_param.as_deref().unwrap_or("–"),
                if ess_ok {
                    "enough for stable 90 % intervals (≥ 100 per chain)."
                } else {
                    "low: intervals are noisy; run more draws."
                }
            ));
            lines.push(format!(
                "Divergent transitions: {}{}",
                n.divergences,
                if n.divergences == 0 {
                    " — none."
                } else {
                    ": the sampler missed part of the posterior; raise target acceptance or reparametrise."
                }
            ));
            lines.push(format!("Maximum tree depth reached {} times.", n.max_tree_depth_hits));
            lines.push(format!("{} chains × {} draws.", n.chains, n.draws_per_chain));
            if !rhat_ok || n.divergences > 0 {
                status = "bad";
            } else if !ess_ok || n.max_tree_depth_hits > 0 {
                status = "warn";
            }
        }
        Diagnostics::Laplace(l) => {
            lines.push(format!(
                "Laplace approximation: Gaussian at the mode ({} draws); optimiser starts converged: {}. R-hat and ESS do not apply.",
                l.draws, l.starts_converged
            ));
            lines.push("For full posterior uncertainty refit with --method nuts.".into());
        }
    }
    for w in d.warnings() {
        lines.push(w.clone());
        if status == "ok" {
            status = "warn";
        }
    }
    Card { title: "Sampler health".into(), status: status.into(), lines }
}

fn contribution_stack(p: &Periods, kpi: &str) -> Result<Block, crate::chart::ChartError> {
    let n = p.time.len();
    let mut lower = vec![0.0; n];
    let mut el = Vec::new();
    let mut legend = Vec::new();
    let mut layers: Vec<(&str, &[f64], usize)> = vec![("baseline", &p.baseline, GREY)];
    for (i, (name, v)) in p.channels.iter().enumerate() {
        layers.push((name, v, series_color(i)));
    }
    for (name, v, color) in &layers {
        let upper: Vec<f64> = lower.iter().zip(v.iter()).map(|(a, b)| a + b).collect();
        el.push(Element::Band {
            color: *color,
            lower: index_points(&lower),
            upper: index_points(&upper),
            opacity: 0.7,
        });
        legend.push(LegendItem::new(*name, *color, "area"));
        lower = upper;
    }
    el.push(Element::Points { color: BLACK, points: index_points(&p.actual), size: 2 });
    legend.push(LegendItem::new("actual", BLACK, "dot"));
    let plot = Plot {
        x_desc: "period".into(),
        y_desc: format!("{kpi} (KPI units, all geos)"),
        x_labels: Some(p.time.clone()),
        x_range: Some((-0.5, n as f64 - 0.5)),
        elements: el,
        ..Default::default()
    };
    let mut cols = vec!["period".to_string(), "baseline".to_string()];
    cols.extend(p.channels.iter().map(|(c, _)| c.clone()));
    cols.push("sum (= fitted)".into());
    let mut t = Table {
        caption: format!("{kpi} per period by source (posterior means, KPI units)"),
        columns: cols,
        rows: vec![],
    };
    let total = p.stacked_total();
    for i in 0..n {
        let mut row = vec![Cell::text(&p.time[i]), Cell::num(p.baseline[i])];
        row.extend(p.channels.iter().map(|(_, v)| Cell::num(v[i])));
        row.push(Cell::num(total[i]));
        t.row(row);
    }
    chart(
        "fit-contrib",
        "Contributions over time",
        &format!(
            "{kpi} per period split into the baseline and each channel's contribution (posterior means, stacked, KPI units); dots: actual."
        ),
        &plot,
        legend,
        t,
    )
}

fn channel_labels(s: &FitSummary) -> Vec<String> {
    s.channels.iter().map(|c| c.name.clone()).collect()
}

fn shares(s: &FitSummary) -> Result<Block, crate::chart::ChartError> {
    let total_spend: f64 = s.channels.iter().map(|c| c.spend).sum();
    let total_contrib: f64 = s.channels.iter().map(|c| c.contribution.mean).sum();
    let mut el = Vec::new();
    let mut t = Table::new(
        "Spend and contribution by channel (fitted period)",
        &["channel", "spend", "spend share", "contribution (KPI)", "contribution share of media", "ROI"],
    );
    let mut xmax: f64 = 0.0;
    for (i, c) in s.channels.iter().enumerate() {
        let y = i as f64;
        let ss = c.spend / total_spend;
        let cs = c.contribution.mean / total_contrib;
        xmax = xmax.max(ss).max(cs);
        el.push(Element::Rect { color: 0, x0: 0.0, y0: y + 0.02, x1: ss, y1: y + 0.36, opacity: 1.0 });
        el.push(Element::Rect { color: 1, x0: 0.0, y0: y - 0.36, x1: cs, y1: y - 0.02, opacity: 1.0 });
        t.row(vec![
            Cell::text(&c.name),
            Cell::num(c.spend),
            Cell::pct(ss),
            Cell::num(c.contribution.mean),
            Cell::pct(cs),
            Cell::num(c.roi.mean),
        ]);
    }
    for (i, c) in s.channels.iter().enumerate() {
        el.push(Element::Text {
            color: BLACK,
            at: (xmax * 1.04, i as f64),
            text: format!("ROI {}", fmt_num(c.roi.mean)),
        });
    }
    let n = s.channels.len() as f64;
    let plot = Plot {
        x_desc: "share of media total (fraction)".into(),
        y_desc: String::new(),
        y_labels: Some(channel_labels(s)),
        x_range: Some((0.0, xmax * 1.35)),
        y_range: Some((-0.6, n - 0.4)),
        elements: el,
        height: (90 + 70 * s.channels.len() as u32).min(700),
        ..Default::default()
    };
    chart(
        "fit-shares",
        "Spend share vs contribution share",
        "Each channel's share of media spend (blue) and of the media contribution (orange) over the fitted period, as fractions; ROI (posterior mean) at the right.",
        &plot,
        vec![LegendItem::new("spend share", 0, "area"), LegendItem::new("contribution share", 1, "area")],
        t,
    )
}

fn roi_chart(s: &FitSummary) -> Result<Block, crate::chart::ChartError> {
    let mut el = Vec::new();
    let mut t = Table::new(
        format!("ROI and marginal ROI by channel ({})", s.roi_units),
        &["channel", "ROI mean", "ROI 5 %", "ROI 95 %", "mROI mean", "mROI 5 %", "mROI 95 %"],
    );
    for (i, c) in s.channels.iter().enumerate() {
        let y = i as f64;
        for (stat, dy, color) in [(&c.roi, 0.15, 0usize), (&c.mroi, -0.15, 5usize)] {
            el.push(Element::Segment { color, from: (stat.q05, y + dy), to: (stat.q95, y + dy), width: 3 });
            el.push(Element::Points { color, points: vec![(stat.mean, y + dy)], size: 5 });
        }
        t.row(vec![
            Cell::text(&c.name),
            Cell::num(c.roi.mean),
            Cell::num(c.roi.q05),
            Cell::num(c.roi.q95),
            Cell::num(c.mroi.mean),
            Cell::num(c.mroi.q05),
            Cell::num(c.mroi.q95),
        ]);
    }
    let n = s.channels.len() as f64;
    let (lo, hi) =
        minmax(&[&s.channels.iter().flat_map(|c| [c.roi.q05, c.roi.q95, c.mroi.q05, c.mroi.q95]).collect::<Vec<_>>()]);
    let (lo, hi) = (lo.min(0.0), hi.max(if s.roi_units.starts_with("revenue") { 1.0 } else { hi }));
    if s.roi_units.starts_with("revenue") {
        // break-even: one unit of revenue per unit of spend
        el.insert(0, Element::Segment { color: GREY, from: (1.0, -0.6), to: (1.0, n - 0.4), width: 1 });
    }
    let plot = Plot {
        x_desc: format!("ROI ({})", s.roi_units),
        y_desc: String::new(),
        y_labels: Some(channel_labels(s)),
        x_range: Some((lo - 0.04 * (hi - lo), hi + 0.04 * (hi - lo))),
        y_range: Some((-0.6, n - 0.4)),
        elements: el,
        height: (90 + 70 * s.channels.len() as u32).min(700),
        ..Default::default()
    };
    chart(
        "fit-roi",
        "ROI and marginal ROI",
        &format!(
            "Average ROI over the fitted period and marginal ROI of the next unit of spend, {}: posterior mean (dot) and 90 % credible interval (bar).",
            s.roi_units
        ),
        &plot,
        vec![LegendItem::new("ROI", 0, "dot"), LegendItem::new("marginal ROI", 5, "dot")],
        t,
    )
}

/// Linear interpolation of the points (x ascending) at `x`; `None` outside their range.
pub(crate) fn interpolate(points: &[(f64, f64)], x: f64) -> Option<f64> {
    points.windows(2).find(|w| w[0].0 <= x && x <= w[1].0).map(|w| {
        let (a, b) = (w[0], w[1]);
        if b.0 > a.0 { a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0) } else { a.1 }
    })
}

/// The response curves of the fit in `dir`; with `recommended` (channel, spend multiple), each
/// channel's recommended spend is marked on its curve (the optimize report).
pub(crate) fn response_curves(
    dir: &Path,
    s: &FitSummary,
    recommended: Option<&[(String, f64)]>,
) -> Result<Block, ReportError> {
    let csv = table(dir, "response_curves.csv", "fit")?;
    let ch = csv.str("channel")?;
    let mult = csv.f64("multiplier")?;
    let spend = csv.f64("spend")?;
    let mean = csv.f64("response_mean")?;
    let q05 = csv.f64("response_q05")?;
    let q95 = csv.f64("response_q95")?;
    let outcome = if s.roi_units.starts_with("revenue") { "revenue" } else { "KPI" };
    let mut el = Vec::new();
    let mut legend = Vec::new();
    let mut t = Table::new(
        format!("Response over the fitted period ({outcome}) at multiples of each channel's spend"),
        &["channel", "spend multiple", "spend", "response mean", "5 %", "95 %"],
    );
    for (i, c) in s.channels.iter().enumerate() {
        let rows: Vec<usize> = (0..ch.len()).filter(|&r| ch[r] == c.name).collect();
        let pts = |v: &[f64]| rows.iter().map(|&r| (mult[r], v[r])).collect::<Vec<_>>();
        let color = series_color(i);
        el.push(Element::Band { color, lower: pts(&q05), upper: pts(&q95), opacity: 0.18 });
        el.push(Element::Line { color, points: pts(&mean), width: 2 });
        legend.push(LegendItem::new(&c.name, color, "line"));
        if let Some((_, m)) = recommended.and_then(|rec| rec.iter().find(|(n, _)| *n == c.name))
            && let Some(y) = interpolate(&pts(&mean), *m)
        {
            el.push(Element::Points { color, points: vec![(*m, y)], size: 6 });
            t.row(vec![
                Cell::text(format!("{} (recommended)", c.name)),
                Cell::num(*m),
                Cell::num(m * c.spend),
                Cell::num(y),
                Cell::text("–"),
                Cell::text("–"),
            ]);
        }
        for &r in &rows {
            t.row(vec![
                Cell::text(&c.name),
                Cell::num(mult[r]),
                Cell::num(spend[r]),
                Cell::num(mean[r]),
                Cell::num(q05[r]),
                Cell::num(q95[r]),
            ]);
        }
    }
    let (_, hi) = minmax(&[&q95]);
    el.push(Element::Segment { color: BLACK, from: (1.0, 0.0), to: (1.0, hi), width: 1 });
    el.push(Element::Text { color: BLACK, at: (1.02, hi * 0.97), text: "current spend".into() });
    legend.push(LegendItem::new("current spend (1×)", BLACK, "line"));
    if recommended.is_some() {
        legend.push(LegendItem::new("recommended spend (dot on each curve)", GREY, "dot"));
    }
    let (id, caption) = match recommended {
        None => (
            "fit-response",
            format!(
                "Incremental {outcome} over the fitted period if each channel's spend were scaled by the factor on the x axis (posterior mean and 90 % band); the vertical line marks the spend actually made. Run `mmloop optimize` for the recommended spend."
            ),
        ),
        Some(_) => (
            "opt-response",
            format!(
                "The fit's response curves (incremental {outcome} over its fitted period, posterior mean and 90 % band, against spend as a multiple of the current): the vertical line is the current spend, the dot on each curve the recommended spend as a multiple of the current one (the optimisation's horizon may differ from the fitted period; the curve shows the shape)."
            ),
        ),
    };
    let plot = Plot {
        x_desc: "spend as a multiple of the fitted period's spend (×)".into(),
        y_desc: format!("incremental {outcome} over the fitted period"),
        y_range: Some((0.0f64.min(minmax(&[&q05]).0), hi * 1.05)),
        elements: el,
        ..Default::default()
    };
    chart(id, "Response curves", &caption, &plot, legend, t)
        .map_err(|e| ReportError::Chart { dir: dir.to_path_buf(), message: e.0 })
}

/// Per channel, per lag: the share of a period's media effect that lands `lag` periods later
/// (the kernel's weights normalised to sum to one), 5 %, mean and 95 % over thinned draws.
pub(crate) fn adstock_shares(kernel: &AdstockKernel, thetas: &[Vec<f64>]) -> Vec<(f64, f64, f64)> {
    let n = kernel.len();
    let mut per_lag: Vec<Vec<f64>> = vec![Vec::with_capacity(thetas.len()); n];
    let mut w = vec![0.0; n];
    let mut dw = vec![0.0; n * kernel.n_params()];
    for th in thetas {
        kernel.weights(th, &mut w, &mut dw);
        let sum: f64 = w.iter().sum();
        if sum > 0.0 && sum.is_finite() {
            for l in 0..n {
                per_lag[l].push(w[l] / sum);
            }
        }
    }
    per_lag
        .into_iter()
        .map(|v| {
            let s = mmloop_mmm::analysis::Stat::of(&v);
            (s.q05, s.mean, s.q95)
        })
        .collect()
}

fn thinned(n: usize, max: usize) -> Vec<usize> {
    let step = n.div_ceil(max).max(1);
    (0..n).step_by(step).collect()
}

fn adstock_decay(spec: &ModelSpec, post: &Csv) -> Result<Block, crate::chart::ChartError> {
    let mut el = Vec::new();
    let mut legend = Vec::new();
    let mut t = Table::new(
        "Share of a period's media effect felt each lag later (fraction; posterior mean and 90 % band)",
        &["channel", "lag (periods)", "share mean", "5 %", "95 %"],
    );
    for (i, cs) in spec.channels.iter().enumerate() {
        let kernel = AdstockKernel::from_spec(&cs.adstock);
        let cols: Vec<Vec<f64>> = cs
            .adstock
            .params()
            .into_iter()
            .map(|(n, _)| post.f64(&format!("adstock_{n}[{}]", cs.name)))
            .collect::<Result<_, _>>()
            .map_err(|e| crate::chart::ChartError(e.to_string()))?;
        let n_draws = cols.first().map_or(0, Vec::len);
        let thetas: Vec<Vec<f64>> =
            thinned(n_draws, ADSTOCK_DRAWS).into_iter().map(|d| cols.iter().map(|c| c[d]).collect()).collect();
        let shares = adstock_shares(&kernel, &thetas);
        let color = series_color(i);
        let pts = |f: fn(&(f64, f64, f64)) -> f64| -> Vec<(f64, f64)> {
            shares.iter().enumerate().map(|(l, s)| (l as f64, f(s))).collect()
        };
        el.push(Element::Band { color, lower: pts(|s| s.0), upper: pts(|s| s.2), opacity: 0.18 });
        el.push(Element::Line { color, points: pts(|s| s.1), width: 2 });
        el.push(Element::Points { color, points: pts(|s| s.1), size: 3 });
        legend.push(LegendItem::new(&cs.name, color, "line"));
        for (l, s) in shares.iter().enumerate() {
            t.row(vec![Cell::text(&cs.name), Cell::int(l), Cell::num(s.1), Cell::num(s.0), Cell::num(s.2)]);
        }
    }
    let plot = Plot {
        x_desc: "lag (periods after the spend)".into(),
        y_desc: "share of the effect (fraction)".into(),
        y_range: Some((0.0, 1.0)),
        elements: el,
        ..Default::default()
    };
    chart(
        "fit-adstock",
        "Adstock decay",
        "How a period's media effect spreads over the following periods: the adstock kernel's weights normalised to sum to one (posterior mean and 90 % band).",
        &plot,
        legend,
        t,
    )
}

/// The channel's effect parameter and its prior as the spec states it; `None` when the fit replaced
/// the prior by a calibrated ROI prior (`[calibration] roi_priors`).
fn effect_prior(spec: &ModelSpec, c: usize) -> Option<(String, Prior)> {
    let cs = &spec.channels[c];
    if spec.calibration.roi_priors.iter().any(|r| r.channel == cs.name) {
        return None;
    }
    Some(match cs.effect {
        EffectPrior::Coefficient(p) => (format!("beta[{}]", cs.name), p),
        EffectPrior::Roi(p) => (format!("roi[{}]", cs.name), p),
    })
}

/// A density histogram of `x` on `bins` equal bins over [lo, hi]: (left edge, right edge, density).
pub(crate) fn density_histogram(x: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<(f64, f64, f64)> {
    let w = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    let mut n = 0usize;
    for &v in x.iter().filter(|v| v.is_finite()) {
        n += 1;
        if v >= lo && v <= hi && w > 0.0 {
            counts[(((v - lo) / w) as usize).min(bins - 1)] += 1;
        }
    }
    counts
        .iter()
        .enumerate()
        .map(|(i, &k)| (lo + i as f64 * w, lo + (i + 1) as f64 * w, k as f64 / (n.max(1) as f64 * w)))
        .collect()
}

fn prior_vs_posterior(spec: &ModelSpec, post: &Csv) -> Result<(Vec<Block>, Vec<String>), ReportError> {
    let mut blocks = Vec::new();
    let mut notes = Vec::new();
    for c in 0..spec.channels.len() {
        let name = &spec.channels[c].name;
        let Some((param, prior)) = effect_prior(spec, c) else {
            notes.push(format!(
                "{name}: its effect prior was replaced by a calibrated ROI prior from lift tests; prior vs posterior is not drawn."
            ));
            continue;
        };
        let x = post.f64(&param)?;
        let s = mmloop_mmm::analysis::Stat::of(&x);
        let (plo, phi) = minmax(&[&x]);
        let (lo, hi) = match prior.support() {
            mmloop_mmm::priors::Support::Real => (plo - 3.0 * s.sd, phi + 3.0 * s.sd),
            mmloop_mmm::priors::Support::LowerBounded(b) => ((plo - 3.0 * s.sd).max(b), phi + 3.0 * s.sd),
            mmloop_mmm::priors::Support::Interval(a, b) => ((plo - 3.0 * s.sd).max(a), (phi + 3.0 * s.sd).min(b)),
        };
        let hist = density_histogram(&x, plo, phi, 30);
        let grid: Vec<(f64, f64)> = (0..=120)
            .map(|k| lo + (hi - lo) * k as f64 / 120.0)
            .map(|v| (v, prior.ln_pdf(v).exp()))
            .filter(|(_, d)| d.is_finite())
            .collect();
        let mut el: Vec<Element> = hist
            .iter()
            .map(|&(a, b, d)| Element::Rect { color: 0, x0: a, y0: 0.0, x1: b, y1: d, opacity: 0.55 })
            .collect();
        el.push(Element::Line { color: 5, points: grid.clone(), width: 2 });
        let ymax = hist.iter().map(|h| h.2).chain(grid.iter().map(|g| g.1)).fold(0.0, f64::max);
        let mut t = Table::new(format!("{param}: posterior summary and prior"), &["what", "value"]);
        t.row(vec![Cell::text("prior"), Cell::text(format!("{prior:?}"))]);
        t.row(vec![Cell::text("posterior mean"), Cell::num(s.mean)]);
        t.row(vec![Cell::text("posterior sd"), Cell::num(s.sd)]);
        t.row(vec![Cell::text("posterior 5 %"), Cell::num(s.q05)]);
        t.row(vec![Cell::text("posterior 95 %"), Cell::num(s.q95)]);
        let unit = if param.starts_with("roi") { "ROI (per unit of spend)" } else { "coefficient β (scaled units)" };
        let plot = Plot {
            x_desc: format!("{param}: {unit}"),
            y_desc: "density".into(),
            x_range: Some((lo, hi)),
            y_range: Some((0.0, ymax * 1.08)),
            elements: el,
            height: 260,
            ..Default::default()
        };
        blocks.push(
            chart(
                &format!("fit-prior-{c}"),
                &format!("Prior vs posterior: {name}"),
                &format!("The channel's effect parameter {param} ({unit}): posterior draws as a density histogram, the prior's density as a line. A posterior that looks like the prior means the data said little."),
                &plot,
                vec![LegendItem::new("posterior", 0, "area"), LegendItem::new("prior", 5, "line")],
                t,
            )
            .map_err(|e| ReportError::Chart { dir: post.0.path().to_path_buf(), message: e.0 })?,
        );
    }
    Ok((blocks, notes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmloop_mmm::transforms::AdstockSpec;

    #[test]
    fn geometric_adstock_shares_match_the_closed_form() {
        // normalised geometric kernel: w_l = α^l / Σ α^k, here α = 0.5 over lags 0..3
        let spec = AdstockSpec::Geometric { alpha: Prior::Beta { alpha: 1.0, beta: 1.0 }, max_lag: 3, normalize: true };
        let k = AdstockKernel::from_spec(&spec);
        let s = adstock_shares(&k, &[vec![0.5]]);
        let total = 1.0 + 0.5 + 0.25 + 0.125;
        for (l, want) in [1.0, 0.5, 0.25, 0.125].iter().enumerate() {
            assert!((s[l].1 - want / total).abs() < 1e-12, "lag {l}: {:?}", s[l]);
        }
    }

    #[test]
    fn density_histogram_integrates_to_the_share_inside() {
        let x: Vec<f64> = (0..1000).map(|i| i as f64 / 999.0).collect();
        let h = density_histogram(&x, 0.0, 1.0, 10);
        let mass: f64 = h.iter().map(|(a, b, d)| (b - a) * d).sum();
        assert!((mass - 1.0).abs() < 1e-12, "{mass}");
        let h = density_histogram(&x, 0.0, 0.5, 5);
        let mass: f64 = h.iter().map(|(a, b, d)| (b - a) * d).sum();
        assert!((mass - 0.5).abs() < 0.002, "{mass}"); // 500 of 1000 points lie in [0, 0.5]
    }

    fn nuts(divergences: usize, max_rhat: f64) -> Diagnostics {
        let j = format!(
            r#"{{"method":"nuts","chains":4,"draws_per_chain":1000,"max_rhat":{max_rhat},"max_rhat_param":"beta[tv]",
            "min_ess_bulk":900.0,"min_ess_bulk_param":"roi[tv]","min_ess_tail":700.0,"min_ess_tail_param":"sigma",
            "divergences":{divergences},"max_tree_depth_hits":0,"e_bfmi":[1.0,1.0,1.0,1.0],"warnings":[]}}"#
        );
        serde_json::from_str(&j).unwrap()
    }

    #[test]
    fn health_card_says_in_words_what_is_wrong() {
        let ok = health_card(&nuts(0, 1.002));
        assert_eq!(ok.status, "ok");
        assert!(ok.lines[0].contains("the chains agree") && ok.lines[2].contains("none"), "{:?}", ok.lines);
        let bad = health_card(&nuts(3, 1.002));
        assert_eq!(bad.status, "bad");
        assert!(
            bad.lines[2].contains("Divergent transitions: 3") && bad.lines[2].contains("missed part"),
            "{:?}",
            bad.lines
        );
        let bad = health_card(&nuts(0, 1.08));
        assert_eq!(bad.status, "bad");
        assert!(bad.lines[0].contains("1.08") && bad.lines[0].contains("disagree"), "{:?}", bad.lines);
    }

    #[test]
    fn interpolation_is_linear_between_points_and_absent_outside() {
        let p = [(0.0, 0.0), (1.0, 10.0), (2.0, 14.0)];
        assert_eq!(interpolate(&p, 0.5), Some(5.0));
        assert_eq!(interpolate(&p, 1.5), Some(12.0));
        assert_eq!(interpolate(&p, 2.0), Some(14.0));
        assert_eq!(interpolate(&p, 2.5), None);
    }

    #[test]
    fn stacked_total_adds_baseline_and_channels() {
        let p = Periods {
            time: vec!["a".into(), "b".into()],
            holdout: vec![false, true],
            actual: vec![0.0; 2],
            fitted: vec![0.0; 2],
            baseline: vec![10.0, 20.0],
            band: None,
            channels: vec![("tv".into(), vec![1.0, 2.0]), ("search".into(), vec![0.5, 0.25])],
        };
        assert_eq!(p.stacked_total(), vec![11.5, 22.25]);
        assert_eq!(p.first_holdout(), Some(1));
    }
}
