//! The report of a `mmloop simulate` directory: misallocation cost and decision efficiency over
//! cycles per arm (median with the p10–p90 band over worlds), the paired differences between arms
//! with their bootstrap intervals, the reductions, and the verdicts.
//!
//! The bands are computed here from `results.csv` (one row per world × arm × cycle, read by column
//! name so added columns do no harm; a `scenario` column, when present, splits the charts) with the
//! simulator's own [`Quantiles`]; the paired differences and reductions are the simulator's, read
//! from `summary.json` with local types that read only the fields shown; the verdict lines are the
//! simulator's own words from `summary.txt`.

use crate::ReportError;
use crate::chart::{Element, GREY, Plot, series_color};
use crate::page::{Block, Card, Cell, LegendItem, Page, Pre, Section, Table, chart, fmt_num};
use crate::read::{json, table};
use mmloop_loop::simulate::Quantiles;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// `summary.json`, the fields shown.
#[derive(Debug, Deserialize)]
struct SummaryJson {
    #[serde(default)]
    worlds: Option<usize>,
    #[serde(default)]
    cycles: Option<usize>,
    #[serde(default)]
    arms: Vec<String>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    seconds: Option<f64>,
    #[serde(default)]
    definitions: BTreeMap<String, String>,
    #[serde(default)]
    reductions: Vec<ReductionJson>,
    paired: Vec<PairedJson>,
}

/// A figure the simulator could not compute is written as `null` (NaN in JSON).
type Num = Option<f64>;

#[derive(Debug, Deserialize)]
struct QuantilesJson {
    #[serde(default)]
    median: Num,
    #[serde(default)]
    p10: Num,
    #[serde(default)]
    p90: Num,
}

#[derive(Debug, Deserialize)]
struct ReductionJson {
    arm: String,
    #[serde(default)]
    scenario: Option<String>,
    from_first_cycle: QuantilesJson,
    #[serde(default)]
    pooled_from_first_cycle: Num,
    from_start: QuantilesJson,
    #[serde(default)]
    pooled_from_start: Num,
}

#[derive(Debug, Deserialize)]
struct PairedJson {
    arm: String,
    versus: String,
    over: String,
    #[serde(default)]
    scenario: Option<String>,
    #[serde(default)]
    metric: Option<String>,
    #[serde(default)]
    n: Option<usize>,
    mean: Num,
    mean_ci90: (Num, Num),
    #[serde(default)]
    median: Num,
    #[serde(default)]
    median_ci90: Option<(Num, Num)>,
    #[serde(default)]
    share_arm_better: Num,
}

fn f(v: Num) -> f64 {
    v.unwrap_or(f64::NAN)
}

/// One (scenario, arm, cycle) group of `results.csv`.
struct Group {
    scenario: String,
    arm: String,
    cycle: f64,
    misallocation: Vec<f64>,
    efficiency: Vec<f64>,
}

pub fn page(dir: &Path) -> Result<Page, ReportError> {
    let csv = table(dir, "results.csv", "simulate")?;
    let arm = csv.str("arm")?;
    let cycle = csv.f64("cycle")?;
    let cost = csv.f64_or_nan("misallocation_cost")?;
    let eff = csv.f64_or_nan("decision_efficiency")?;
    let scenario = if csv.has("scenario") { csv.str("scenario")? } else { vec![String::new(); csv.n_rows()] };
    let summary: SummaryJson = json(dir, "summary.json", "simulate")?;
    let txt_path = dir.join("summary.txt");
    let txt = match std::fs::read_to_string(&txt_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReportError::Missing { path: txt_path, command: "simulate" });
        }
        Err(e) => return Err(ReportError::Data { path: txt_path, message: e.to_string() }),
    };
    let chart_err = |e: crate::chart::ChartError| ReportError::Chart { dir: dir.to_path_buf(), message: e.0 };

    // group the rows, in the file's order of scenarios and arms
    let mut groups: Vec<Group> = Vec::new();
    for i in 0..csv.n_rows() {
        match groups.iter_mut().find(|g| g.scenario == scenario[i] && g.arm == arm[i] && g.cycle == cycle[i]) {
            Some(g) => {
                g.misallocation.push(cost[i]);
                g.efficiency.push(eff[i]);
            }
            None => groups.push(Group {
                scenario: scenario[i].clone(),
                arm: arm[i].clone(),
                cycle: cycle[i],
                misallocation: vec![cost[i]],
                efficiency: vec![eff[i]],
            }),
        }
    }
    let mut scenarios: Vec<String> = Vec::new();
    for s in &scenario {
        if !scenarios.contains(s) {
            scenarios.push(s.clone());
        }
    }
    let many = scenarios.len() > 1;
    let mut sections = Vec::new();
    for (k, sc) in scenarios.iter().enumerate() {
        let suffix = if many { format!("-{k}") } else { String::new() };
        let gs: Vec<&Group> = groups.iter().filter(|g| &g.scenario == sc).collect();
        let defs = |key: &str| summary.definitions.get(key).map(|d| format!("{key}: {d}."));
        let blocks = vec![
            band_chart(
                &format!("sim-misalloc{suffix}"),
                "Misallocation cost over cycles",
                "misallocation cost (money)",
                &gs,
                |g| &g.misallocation,
            )
            .map_err(chart_err)?,
            band_chart(
                &format!("sim-efficiency{suffix}"),
                "Decision efficiency over cycles",
                "decision efficiency (1 = the true optimum)",
                &gs,
                |g| &g.efficiency,
            )
            .map_err(chart_err)?,
        ];
        sections.push(Section {
            heading: if many { format!("Scenario {sc}: over cycles") } else { "Over cycles".into() },
            text: ["misallocation_cost", "decision_efficiency"].iter().filter_map(|k| defs(k)).collect(),
            blocks,
        });
    }

    // paired differences, reductions and verdicts
    let mut blocks = Vec::new();
    let mut text =
        vec![
            summary.definitions.get("paired").map(|d| format!("Paired differences: {d}.")).unwrap_or_else(|| {
                "Paired differences: arm minus versus per world; negative: the arm costs less.".into()
            }),
        ];
    let cumulative: Vec<&PairedJson> = summary.paired.iter().filter(|p| p.over == "cumulative").collect();
    if cumulative.is_empty() {
        text.push("No paired difference: the simulation compared fewer than two arms.".into());
    } else {
        blocks.push(paired_chart(&summary.paired, &cumulative).map_err(chart_err)?);
    }
    if !summary.reductions.is_empty() {
        let mut t = Table::new(
            "Reduction of the misallocation cost by the last cycle, per world: against the arm's own first cycle and against not moving at the start",
            &["scenario", "arm", "vs cycle 1: median", "p10", "p90", "pooled", "vs not moving: median", "pooled"],
        );
        for r in &summary.reductions {
            t.row(vec![
                Cell::text(r.scenario.clone().unwrap_or_default()),
                Cell::text(&r.arm),
                Cell::pct(f(r.from_first_cycle.median)),
                Cell::pct(f(r.from_first_cycle.p10)),
                Cell::pct(f(r.from_first_cycle.p90)),
                Cell::pct(f(r.pooled_from_first_cycle)),
                Cell::pct(f(r.from_start.median)),
                Cell::pct(f(r.pooled_from_start)),
            ]);
        }
        blocks.push(Block::Table(t));
    }
    let verdicts = verdict_lines(&txt);
    if !verdicts.is_empty() {
        let bad = verdicts.iter().any(|l| l.contains("does not hold") || l.contains("do NOT agree"));
        blocks.insert(
            0,
            Block::Card(Card {
                title: "Verdicts".into(),
                status: if bad { "warn" } else { "ok" }.into(),
                lines: verdicts,
            }),
        );
    }
    blocks.push(Block::Pre(Pre { title: "The simulator's summary (summary.txt)".into(), text: txt.clone() }));
    sections.push(Section { heading: "Does the loop pay?".into(), text, blocks });

    let n_worlds = summary.worlds.map(|w| w.to_string());
    Ok(Page {
        kind: "simulate".into(),
        title: "Does the loop pay? Simulated worlds against the truth".into(),
        source: dir.display().to_string(),
        facts: vec![
            ("worlds".into(), n_worlds.unwrap_or_else(|| "–".into())),
            ("cycles".into(), summary.cycles.map(|c| c.to_string()).unwrap_or_else(|| "–".into())),
            ("arms".into(), if summary.arms.is_empty() { "–".into() } else { summary.arms.join(", ") }),
            ("fits".into(), summary.method.clone().unwrap_or_else(|| "–".into())),
            ("seed".into(), summary.seed.map(|s| s.to_string()).unwrap_or_else(|| "–".into())),
            ("run time".into(), summary.seconds.map(|s| format!("{} s", fmt_num(s))).unwrap_or_else(|| "–".into())),
        ],
        sections,
    })
}

/// The simulator's verdict lines in `summary.txt`: the claim check, each paired comparison's
/// conclusion, the NUTS check's agreement.
fn verdict_lines(txt: &str) -> Vec<String> {
    txt.lines()
        .map(str::trim)
        .filter(|l| {
            l.contains(" holds ")
                || l.contains("does not hold")
                || l.contains("costs less")
                || l.contains("no clear difference")
                || l.starts_with("conclusions")
        })
        .map(String::from)
        .collect()
}

/// Median over worlds per arm and cycle with its p10–p90 band, of the figure `value` picks.
fn band_chart(
    id: &str,
    title: &str,
    y_desc: &str,
    groups: &[&Group],
    value: impl Fn(&Group) -> &Vec<f64>,
) -> Result<Block, crate::chart::ChartError> {
    let mut arms: Vec<&str> = Vec::new();
    let mut cycles: Vec<f64> = Vec::new();
    for g in groups {
        if !arms.contains(&g.arm.as_str()) {
            arms.push(&g.arm);
        }
        if !cycles.contains(&g.cycle) {
            cycles.push(g.cycle);
        }
    }
    cycles.sort_by(f64::total_cmp);
    let x_of = |c: f64| cycles.iter().position(|x| *x == c).unwrap_or(0) as f64;
    let mut el = Vec::new();
    let mut legend = Vec::new();
    let mut t = Table::new(
        format!("{title}: over worlds, per arm and cycle"),
        &["arm", "cycle", "worlds", "median", "p10", "p90", "mean"],
    );
    for (i, arm) in arms.iter().enumerate() {
        let mut q: Vec<(f64, Quantiles)> = groups
            .iter()
            .filter(|g| g.arm == *arm)
            .map(|g| (g.cycle, Quantiles::of(value(g).iter().copied())))
            .collect();
        q.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (c, s) in &q {
            t.row(vec![
                Cell::text(*arm),
                Cell::count(*c),
                Cell::int(s.n),
                Cell::num(s.median),
                Cell::num(s.p10),
                Cell::num(s.p90),
                Cell::num(s.mean),
            ]);
        }
        let ok: Vec<&(f64, Quantiles)> = q.iter().filter(|(_, s)| s.n > 0).collect();
        let color = series_color(i);
        el.push(Element::Band {
            color,
            lower: ok.iter().map(|(c, s)| (x_of(*c), s.p10)).collect(),
            upper: ok.iter().map(|(c, s)| (x_of(*c), s.p90)).collect(),
            opacity: 0.15,
        });
        let line: Vec<(f64, f64)> = ok.iter().map(|(c, s)| (x_of(*c), s.median)).collect();
        el.push(Element::Line { color, points: line.clone(), width: 2 });
        el.push(Element::Points { color, points: line, size: 4 });
        legend.push(LegendItem::new(format!("{arm}: median, p10–p90 band"), color, "line"));
    }
    let n = cycles.len() as f64;
    chart(
        id,
        title,
        &format!(
            "Per arm, the median over the simulated worlds (line) and the band from the 10th to the 90th percentile, per cycle; {y_desc}."
        ),
        &Plot {
            x_desc: "cycle".into(),
            y_desc: y_desc.into(),
            x_labels: Some(cycles.iter().map(|c| crate::page::fmt_count(*c)).collect()),
            x_range: Some((-0.3, n - 0.7)),
            elements: el,
            height: 340,
            ..Default::default()
        },
        legend,
        t,
    )
}

/// The cumulative paired differences (mean with its 90 % bootstrap interval) as a chart; its table
/// holds every paired difference of the file.
fn paired_chart(all: &[PairedJson], cumulative: &[&PairedJson]) -> Result<Block, crate::chart::ChartError> {
    let label = |p: &PairedJson| match &p.scenario {
        Some(s) => format!("{} − {} ({s})", p.arm, p.versus),
        None => format!("{} − {}", p.arm, p.versus),
    };
    let n = cumulative.len();
    let y = |i: usize| (n - 1 - i) as f64;
    let mut el = Vec::new();
    for (i, p) in cumulative.iter().enumerate() {
        let (lo, hi) = (f(p.mean_ci90.0), f(p.mean_ci90.1));
        let color = if hi < 0.0 {
            2
        } else if lo > 0.0 {
            5
        } else {
            0
        };
        el.push(Element::Segment { color, from: (lo, y(i)), to: (hi, y(i)), width: 3 });
        el.push(Element::Points { color, points: vec![(f(p.mean), y(i))], size: 5 });
    }
    let xs = cumulative.iter().flat_map(|p| [f(p.mean), f(p.mean_ci90.0), f(p.mean_ci90.1)]);
    let (lo, hi) = xs.filter(|v| v.is_finite()).fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let pad = 0.05 * (hi - lo).max(1e-9);
    el.insert(0, Element::Segment { color: GREY, from: (0.0, -0.6), to: (0.0, n as f64 - 0.4), width: 1 });
    let mut t = Table::new(
        "Every paired difference in the summary (arm − versus per world; 90 % percentile bootstrap over worlds)",
        &[
            "arm",
            "versus",
            "scenario",
            "over",
            "metric",
            "worlds",
            "mean",
            "5 %",
            "95 %",
            "median",
            "5 %",
            "95 %",
            "worlds where arm is lower",
        ],
    );
    for p in all {
        let m = p.median_ci90.unwrap_or((None, None));
        t.row(vec![
            Cell::text(&p.arm),
            Cell::text(&p.versus),
            Cell::text(p.scenario.clone().unwrap_or_default()),
            Cell::text(p.over.replace('_', " ")),
            Cell::text(p.metric.clone().unwrap_or_default().replace('_', " ")),
            Cell::opt(p.n.map(|v| v as f64)),
            Cell::num(f(p.mean)),
            Cell::num(f(p.mean_ci90.0)),
            Cell::num(f(p.mean_ci90.1)),
            Cell::num(f(p.median)),
            Cell::num(f(m.0)),
            Cell::num(f(m.1)),
            Cell::pct(f(p.share_arm_better)),
        ]);
    }
    chart(
        "sim-paired",
        "Paired differences in cumulative misallocation cost",
        "Per pair of arms, the mean over worlds of the difference in misallocation cost summed over cycles (arm − versus, money) with its 90 % bootstrap interval: green when the arm costs less (the interval lies below 0), orange when it costs more, blue when the interval includes 0.",
        &Plot {
            x_desc: "arm − versus, cumulative misallocation cost (money)".into(),
            y_labels: Some(cumulative.iter().rev().map(|p| label(p)).collect()),
            x_range: Some((lo - pad, hi + pad)),
            y_range: Some((-0.6, n as f64 - 0.4)),
            elements: el,
            height: (120 + 60 * n as u32).clamp(220, 600),
            ..Default::default()
        },
        vec![
            LegendItem::new("arm costs less", 2, "dot"),
            LegendItem::new("no clear difference", 0, "dot"),
            LegendItem::new("arm costs more", 5, "dot"),
        ],
        t,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_the_summary_lines_that_conclude() {
        let txt = "2 worlds\n\nreduction of the misallocation cost by cycle 2:\n  evoi vs its cycle 1: median 82 %\n  the claimed -92 % within five cycles does not hold for evoi here (median reduction 82 % over 2 cycles)\n\npaired differences:\n  evoi vs none mean -10,223 [-20,446, 1.49e-8], 50 % of worlds favour evoi: no clear difference (the interval includes 0)\n  conclusions agree\n";
        let v = verdict_lines(txt);
        assert_eq!(v.len(), 3, "{v:?}");
        assert!(v[0].starts_with("the claimed"));
    }

    #[test]
    fn paired_differences_read_with_null_figures_and_extra_fields() {
        let j = r#"{"paired":[{"arm":"evoi","versus":"none","over":"cumulative","metric":"misallocation_cost","n":1,
            "mean":-3.0,"mean_ci90":[null,null],"median":-3.0,"median_ci90":[null,null],"share_arm_better":1.0,"new_field":7}],
            "reductions":[],"per_arm_cycle":[]}"#;
        let s: SummaryJson = serde_json::from_str(j).unwrap();
        assert_eq!(s.paired[0].mean, Some(-3.0));
        assert!(f(s.paired[0].mean_ci90.0).is_nan());
    }
}
