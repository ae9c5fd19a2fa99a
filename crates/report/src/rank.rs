//! The report of a `mmloop rank` directory: the EIG × EVOI 2×2 with every candidate test and the
//! greedy portfolio with each pick's marginal value.
//!
//! `ranking.json` is written from `mmloop_loop::rank::Ranking`, which is serialise-only and still
//! moving; it is read here defensively: only the fields drawn, each figure either a number or the
//! object the value module writes (`{"evoi": …, "mcse": …}`, `{"cost": …}`), the quadrant either its
//! name or its classification object.

use crate::ReportError;
use crate::chart::{BLACK, Element, GREY, Plot};
use crate::page::{Block, Cell, LegendItem, Page, Section, Table, chart, fmt_num};
use crate::read::json;
use serde::Deserialize;
use std::path::Path;

/// Candidates labelled with their rank in the 2×2 (all are in its table).
const LABELLED: usize = 8;

#[derive(Debug, Deserialize)]
pub(crate) struct RankingJson {
    pub candidates: Vec<Candidate>,
    #[serde(default)]
    pub portfolio: Option<PortfolioReport>,
    #[serde(default)]
    pub thresholds: Option<Thresholds>,
    #[serde(default)]
    pub evpi: Option<Figure>,
    #[serde(default)]
    pub budget: Option<f64>,
    #[serde(default)]
    pub horizon: Option<usize>,
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Candidate {
    #[serde(default)]
    pub rank: Option<usize>,
    pub name: String,
    #[serde(default)]
    pub channels: Vec<String>,
    pub eig: Option<f64>,
    pub evoi: Figure,
    #[serde(default)]
    pub evpi: Option<Figure>,
    pub cost: Figure,
    #[serde(default)]
    pub net_value: Option<f64>,
    #[serde(default)]
    pub quadrant: Option<QuadrantFig>,
}

/// A money figure: a plain number or the value module's object around it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Figure {
    Num(f64),
    Evoi {
        evoi: f64,
        #[serde(default)]
        mcse: Option<f64>,
    },
    Evpi {
        evpi: f64,
    },
    Cost {
        cost: f64,
    },
}

impl Figure {
    pub fn value(&self) -> f64 {
        match self {
            Figure::Num(v) | Figure::Evoi { evoi: v, .. } | Figure::Evpi { evpi: v } | Figure::Cost { cost: v } => *v,
        }
    }
    fn mcse(&self) -> Option<f64> {
        match self {
            Figure::Evoi { mcse, .. } => *mcse,
            _ => None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum QuadrantFig {
    Name(String),
    Full {
        quadrant: String,
        #[serde(default)]
        eig_target: Option<f64>,
    },
}

impl QuadrantFig {
    fn name(&self) -> &str {
        match self {
            QuadrantFig::Name(n) | QuadrantFig::Full { quadrant: n, .. } => n,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Thresholds {
    pub eig_target_nats: f64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PortfolioReport {
    pub greedy: Portfolio,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Portfolio {
    pub picks: Vec<Pick>,
    #[serde(default)]
    pub joint_evoi: Option<f64>,
    #[serde(default)]
    pub total_cost: Option<f64>,
    #[serde(default)]
    pub net_value: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Pick {
    pub name: String,
    pub marginal_evoi: f64,
    pub marginal_net: f64,
    #[serde(default)]
    pub joint_evoi: Option<f64>,
}

/// `TestNow` → `test now`.
pub(crate) fn words(name: &str) -> String {
    let mut s = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_uppercase() && i > 0 {
            s.push(' ');
        }
        s.extend(ch.to_lowercase());
    }
    s.replace('_', " ")
}

/// The quadrant's colour: test now, test to learn, watch, leave.
fn quadrant_color(q: &str) -> usize {
    match words(q).as_str() {
        "test now" => 2,
        "test to learn" => 0,
        "watch" => 1,
        _ => GREY,
    }
}

/// The EIG threshold: stated in the file, else in the candidates' classifications.
pub(crate) fn eig_target(r: &RankingJson) -> Option<f64> {
    r.thresholds.as_ref().map(|t| t.eig_target_nats).or_else(|| {
        r.candidates.iter().find_map(|c| match &c.quadrant {
            Some(QuadrantFig::Full { eig_target, .. }) => *eig_target,
            _ => None,
        })
    })
}

pub fn page(dir: &Path) -> Result<Page, ReportError> {
    let r: RankingJson = json(dir, "ranking.json", "rank")?;
    let chart_err = |e: crate::chart::ChartError| ReportError::Chart { dir: dir.to_path_buf(), message: e.0 };
    let mut blocks = vec![two_by_two("rank-2x2", &r).map_err(chart_err)?];
    if let Some(p) = r.portfolio.as_ref().filter(|p| !p.greedy.picks.is_empty()) {
        blocks.push(portfolio_chart("rank-portfolio", &p.greedy).map_err(chart_err)?);
    }
    let mut text = vec![
        "EIG is the expected information gain of a test's readout about its implied lift (nats); EVOI the expected value of acting on that readout, in money; net value = EVOI − cost.".to_string(),
    ];
    text.extend(r.notes.iter().cloned());
    let best = r.candidates.iter().min_by_key(|c| c.rank.unwrap_or(usize::MAX));
    Ok(Page {
        kind: "rank".into(),
        title: "What to test next".into(),
        source: dir.display().to_string(),
        facts: vec![
            ("candidates".into(), r.candidates.len().to_string()),
            ("best".into(), best.map(|c| c.name.clone()).unwrap_or_else(|| "–".into())),
            ("EVPI".into(), r.evpi.as_ref().map(|e| fmt_num(e.value())).unwrap_or_else(|| "–".into())),
            ("budget".into(), r.budget.map(fmt_num).unwrap_or_else(|| "–".into())),
            ("horizon".into(), r.horizon.map(|h| format!("{h} periods")).unwrap_or_else(|| "–".into())),
        ],
        sections: vec![Section { heading: "Candidate tests".into(), text, blocks }],
    })
}

/// The EIG × net-value 2×2 with every candidate, the best labelled by rank, as chart `id`.
pub(crate) fn two_by_two(id: &str, r: &RankingJson) -> Result<Block, crate::chart::ChartError> {
    let pts: Vec<(f64, f64)> = r
        .candidates
        .iter()
        .map(|c| (c.eig.unwrap_or(f64::NAN), c.net_value.unwrap_or(c.evoi.value() - c.cost.value())))
        .collect();
    let finite: Vec<&(f64, f64)> = pts.iter().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
    let target = eig_target(r);
    let xs = finite.iter().map(|p| p.0).chain(target);
    let (x0, x1) = xs.fold((0.0f64, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    let (y0, y1) = finite.iter().map(|p| p.1).fold((0.0f64, 0.0f64), |(a, b), y| (a.min(y), b.max(y)));
    let (x1, ypad) = (if x1 > x0 { x1 } else { x0 + 1.0 }, 0.08 * (y1 - y0).abs().max(1e-9));
    let (y0, y1) = (y0 - ypad, y1 + ypad);
    let xpad = 0.05 * (x1 - x0);
    let mut el = vec![Element::Segment { color: GREY, from: (x0 - xpad, 0.0), to: (x1 + xpad, 0.0), width: 1 }];
    if let Some(t) = target {
        el.push(Element::Segment { color: GREY, from: (t, y0), to: (t, y1), width: 1 });
    }
    // the quadrants' names in their corners
    let right = target.map_or(x1, |t| t.max(x0 + 0.55 * (x1 - x0)));
    for (name, at) in [
        ("test now", (right, y1 - ypad * 0.5)),
        ("watch", (x0, y1 - ypad * 0.5)),
        ("test to learn", (right, y0 + ypad * 0.5)),
        ("leave", (x0, y0 + ypad * 0.5)),
    ] {
        el.push(Element::Text { color: GREY, at, text: name.into() });
    }
    let mut legend = Vec::new();
    for q in ["TestNow", "TestToLearn", "Watch", "Leave"] {
        let color = quadrant_color(q);
        let p: Vec<(f64, f64)> = r
            .candidates
            .iter()
            .zip(&pts)
            .filter(|(c, _)| c.quadrant.as_ref().map_or("Leave", |q| q.name()) == q)
            .map(|(_, p)| *p)
            .collect();
        if !p.is_empty() {
            el.push(Element::Points { color, points: p, size: 5 });
            legend.push(LegendItem::new(words(q), color, "dot"));
        }
    }
    let mut ranked: Vec<(usize, &Candidate, (f64, f64))> =
        r.candidates.iter().zip(&pts).enumerate().map(|(i, (c, p))| (c.rank.unwrap_or(i + 1), c, *p)).collect();
    ranked.sort_by_key(|(k, _, _)| *k);
    for (k, _, p) in ranked.iter().take(LABELLED) {
        el.push(Element::Text { color: BLACK, at: (p.0 + 0.012 * (x1 - x0), p.1), text: format!("#{k}") });
    }
    let mut t = Table::new(
        "Every candidate, by rank (money figures in the ranking's value unit)",
        &["rank", "test", "channels", "EIG (nats)", "EVOI", "EVOI MC error", "EVPI", "cost", "net value", "quadrant"],
    );
    for (k, c, p) in &ranked {
        t.row(vec![
            Cell::int(*k),
            Cell::text(&c.name),
            Cell::text(c.channels.join(", ")),
            Cell::num(p.0),
            Cell::num(c.evoi.value()),
            Cell::opt(c.evoi.mcse()),
            Cell::opt(c.evpi.as_ref().map(Figure::value)),
            Cell::num(c.cost.value()),
            Cell::num(p.1),
            Cell::text(c.quadrant.as_ref().map(|q| words(q.name())).unwrap_or_default()),
        ]);
    }
    let plot = Plot {
        x_desc: "expected information gain, EIG (nats)".into(),
        y_desc: "net value = EVOI − cost (money)".into(),
        x_range: Some((x0 - xpad, x1 + xpad)),
        y_range: Some((y0, y1)),
        elements: el,
        height: 420,
        ..Default::default()
    };
    let rule = match target {
        Some(t) => format!("informative when EIG ≥ {} nats (vertical line)", fmt_num(t)),
        None => "the EIG threshold is not stated in the file".into(),
    };
    chart(
        id,
        "EIG × EVOI: what each test teaches and what it is worth",
        &format!(
            "Every candidate test: information gain (x, nats) against net value (y, EVOI minus cost, money). A test is {rule} and worth its cost above the horizontal line; the best {LABELLED} are labelled with their rank."
        ),
        &plot,
        legend,
        t,
    )
}

/// The greedy portfolio's picks with their marginal EVOI and net value, as chart `id`.
pub(crate) fn portfolio_chart(id: &str, p: &Portfolio) -> Result<Block, crate::chart::ChartError> {
    let labels: Vec<String> = p.picks.iter().rev().map(|k| k.name.clone()).collect();
    let n = p.picks.len();
    let mut el = Vec::new();
    let mut t = Table::new(
        format!(
            "The portfolio in the order picked; joint EVOI {}, total cost {}, net value {}",
            p.joint_evoi.map(fmt_num).unwrap_or_else(|| "–".into()),
            p.total_cost.map(fmt_num).unwrap_or_else(|| "–".into()),
            p.net_value.map(fmt_num).unwrap_or_else(|| "–".into())
        ),
        &["pick", "test", "marginal EVOI", "marginal net value", "joint EVOI after"],
    );
    for (i, k) in p.picks.iter().enumerate() {
        // first pick on top
        let y = (n - 1 - i) as f64;
        el.push(Element::Rect { color: 0, x0: 0.0, y0: y + 0.02, x1: k.marginal_evoi, y1: y + 0.36, opacity: 1.0 });
        el.push(Element::Rect { color: 2, x0: 0.0, y0: y - 0.36, x1: k.marginal_net, y1: y - 0.02, opacity: 1.0 });
        t.row(vec![
            Cell::int(i + 1),
            Cell::text(&k.name),
            Cell::num(k.marginal_evoi),
            Cell::num(k.marginal_net),
            Cell::opt(k.joint_evoi),
        ]);
    }
    let (lo, hi) = p
        .picks
        .iter()
        .flat_map(|k| [k.marginal_evoi, k.marginal_net])
        .fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let pad = 0.05 * (hi - lo).max(1e-9);
    let plot = Plot {
        x_desc: "value added by the pick (money)".into(),
        y_labels: Some(labels),
        x_range: Some((lo - pad, hi + pad)),
        y_range: Some((-0.6, n as f64 - 0.4)),
        elements: el,
        height: (120 + 70 * n as u32).clamp(240, 600),
        ..Default::default()
    };
    chart(
        id,
        "The portfolio and its marginal values",
        "The tests picked greedily, first on top: what each adds to the joint EVOI given the ones before it (blue), and that minus its cost (green), in money.",
        &plot,
        vec![LegendItem::new("marginal EVOI", 0, "area"), LegendItem::new("marginal net value", 2, "area")],
        t,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_numbers_or_objects() {
        let j = r#"{"candidates":[
            {"rank":1,"name":"a","eig":0.5,"evoi":{"evoi":10.0,"mcse":1.0,"estimator":"plain"},"cost":{"cost":4.0,"spend_change":1},"net_value":6.0,
             "quadrant":{"quadrant":"TestNow","eig":0.5,"eig_target":0.3466,"evoi":10.0,"cost":4.0,"rule":"r"}},
            {"name":"b","eig":0.1,"evoi":2.0,"cost":3.0,"quadrant":"Leave"}],
            "thresholds":{"eig_target_nats":0.3466}}"#;
        let r: RankingJson = serde_json::from_str(j).unwrap();
        assert_eq!(r.candidates[0].evoi.value(), 10.0);
        assert_eq!(r.candidates[0].evoi.mcse(), Some(1.0));
        assert_eq!(r.candidates[0].cost.value(), 4.0);
        assert_eq!(r.candidates[1].evoi.value(), 2.0);
        assert_eq!(r.candidates[1].quadrant.as_ref().unwrap().name(), "Leave");
        assert_eq!(eig_target(&r), Some(0.3466));
        assert_eq!(words("TestToLearn"), "test to learn");
    }
}
