//! The page: sections of charts, tables and cards, rendered to one HTML file by a `minijinja`
//! template with HTML auto-escaping (every name and figure from an output file is escaped; only the
//! SVG that plotters drew — which escapes its own text — is inserted as markup).

use crate::chart::{ChartError, PALETTE, Plot};
use serde::Serialize;

/// The `<meta name="generator">` of every report: how a later run recognises a file it may replace.
pub const GENERATOR: &str = "mmloop report";

/// A report page.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// `fit`, `lift`, … (the command whose output this is).
    pub kind: String,
    pub title: String,
    /// The output directory, as given.
    pub source: String,
    /// Key facts shown at the top (label, value).
    pub facts: Vec<(String, String)>,
    pub sections: Vec<Section>,
}

/// A titled part of the page.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub heading: String,
    /// Paragraphs of plain text.
    pub text: Vec<String>,
    pub blocks: Vec<Block>,
}

/// One item of a section.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Block {
    Chart(Box<Chart>),
    Table(Table),
    Card(Card),
    Pre(Pre),
}

/// A plain-text file the command wrote (a brief, a summary), shown verbatim a click away.
#[derive(Debug, Clone, Serialize)]
pub struct Pre {
    pub title: String,
    pub text: String,
}

/// A chart with its legend and its numbers a click away.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    /// Element id, unique in the page (`fit-actual`, …); the tests count charts by it.
    pub id: String,
    pub title: String,
    /// What is drawn, with units.
    pub caption: String,
    pub svg: String,
    pub legend: Vec<LegendItem>,
    pub table: Table,
}

/// A legend entry: a swatch of `color` and a name.
#[derive(Debug, Clone, Serialize)]
pub struct LegendItem {
    pub name: String,
    pub color: String,
    /// `line`, `area` or `dot`.
    pub shape: String,
}

impl LegendItem {
    pub fn new(name: impl Into<String>, color: usize, shape: &str) -> Self {
        LegendItem { name: name.into(), color: PALETTE[color % PALETTE.len()].to_string(), shape: shape.into() }
    }
}

/// A table of figures: every numeric cell shows a rounded figure and carries the exact value in
/// `data-value`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Table {
    pub caption: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// One table cell.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Cell {
    pub text: String,
    /// The exact number behind `text` (`None` for text cells).
    pub value: Option<f64>,
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Self {
        Cell { text: s.into(), value: None }
    }
    pub fn num(v: f64) -> Self {
        Cell { text: fmt_num(v), value: v.is_finite().then_some(v) }
    }
    /// A count, without decimals.
    pub fn int(v: usize) -> Self {
        Cell { text: v.to_string(), value: Some(v as f64) }
    }
    pub fn pct(v: f64) -> Self {
        Cell { text: fmt_pct(v), value: v.is_finite().then_some(v) }
    }
    /// A whole number read from a file as a float (a cycle), without decimals when it is whole.
    pub fn count(v: f64) -> Self {
        Cell { text: fmt_count(v), value: v.is_finite().then_some(v) }
    }
    /// An identifier (an experiment's id), without decimals; "–" when absent.
    pub fn id(v: Option<i64>) -> Self {
        v.map(|i| Cell { text: i.to_string(), value: Some(i as f64) }).unwrap_or_else(|| Cell::text("–"))
    }
    pub fn opt(v: Option<f64>) -> Self {
        v.map(Cell::num).unwrap_or_else(|| Cell::text("–"))
    }
}

impl Table {
    pub fn new(caption: impl Into<String>, columns: &[&str]) -> Self {
        Table { caption: caption.into(), columns: columns.iter().map(|c| c.to_string()).collect(), rows: Vec::new() }
    }
    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }
}

/// A card of plain-language statements with an overall status.
#[derive(Debug, Clone, Serialize)]
pub struct Card {
    pub title: String,
    /// `ok`, `warn` or `bad`.
    pub status: String,
    pub lines: Vec<String>,
}

/// A chart built from a [`Plot`].
pub fn chart(
    id: &str,
    title: &str,
    caption: &str,
    plot: &Plot,
    legend: Vec<LegendItem>,
    table: Table,
) -> Result<Block, ChartError> {
    let svg = plot.to_svg().map_err(|e| ChartError(format!("chart {id}: {}", e.0)))?;
    // named and described by the figure's title and caption (ids are the code's own ASCII names)
    debug_assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "chart id {id}");
    let svg = svg.replacen(
        "role=\"img\"",
        &format!("role=\"img\" aria-labelledby=\"{id}-title\" aria-describedby=\"{id}-caption\""),
        1,
    );
    Ok(Block::Chart(Box::new(Chart {
        id: id.into(),
        title: title.into(),
        caption: caption.into(),
        svg,
        legend,
        table,
    })))
}

/// A figure for reading, as every command prints it ([`mmloop_data::human::number`]: thousands
/// separated, a precision that suits its size); "–" when not finite.
pub fn fmt_num(v: f64) -> String {
    if v.is_finite() { mmloop_data::human::number(v) } else { "–".into() }
}

/// A whole number without decimals (a cycle, a count read as a float); other figures as [`fmt_num`].
pub fn fmt_count(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { fmt_num(v) }
}

/// A share as a percentage with one decimal ([`mmloop_data::human::percent`]); "–" when not finite.
pub fn fmt_pct(v: f64) -> String {
    if v.is_finite() { mmloop_data::human::percent(v) } else { "–".into() }
}

const TEMPLATE: &str = include_str!("../templates/report.html");
const STYLE: &str = include_str!("../templates/report.css");

/// The page's one script, inline: on printing it opens every closed `<details>` (the tables behind
/// the charts) and closes them again afterwards, so the printout holds the numbers too. The print
/// stylesheet does the same in browsers that style `::details-content`; this covers the rest. The
/// content security policy allows exactly this script, by its SHA-256 ([`script_hash`]).
pub const PRINT_SCRIPT: &str = "addEventListener('beforeprint',function(){document.querySelectorAll('details:not([open])').forEach(function(d){d.open=true;d.dataset.printOpened='1';});});addEventListener('afterprint',function(){document.querySelectorAll('details[data-print-opened]').forEach(function(d){d.open=false;delete d.dataset.printOpened;});});";

/// The CSP source of [`PRINT_SCRIPT`]: `'sha256-…'` with the base64 of the SHA-256 of its text.
pub fn script_hash() -> String {
    let hex = mmloop_data::hash_bytes(PRINT_SCRIPT.as_bytes());
    let bytes: Vec<u8> =
        (0..hex.len()).step_by(2).filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect();
    format!("'sha256-{}'", base64(&bytes))
}

/// Standard base64 (RFC 4648 §4, with padding).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= c.len() {
                out.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The page as one self-contained HTML document.
pub fn render_html(page: &Page) -> Result<String, minijinja::Error> {
    let mut env = minijinja::Environment::new();
    // auto-escaping is chosen by the template name's extension: `.html` escapes every value
    env.add_template("report.html", TEMPLATE)?;
    let tmpl = env.get_template("report.html")?;
    tmpl.render(minijinja::context! {
        page => page,
        style => STYLE,
        script => PRINT_SCRIPT,
        script_hash => script_hash(),
        generator => GENERATOR,
        version => env!("CARGO_PKG_VERSION"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_the_commands_print_them_and_missing_ones_as_a_dash() {
        assert_eq!(fmt_num(1_234_567.4), "1,234,567");
        assert_eq!(fmt_num(-0.0), "0");
        assert_eq!(fmt_num(f64::NAN), "–");
        assert_eq!(fmt_pct(0.1234), "12.3%");
        assert_eq!(fmt_pct(f64::INFINITY), "–");
    }

    fn page_with(name: &str) -> Page {
        let mut t = Table::new(format!("table of {name}"), &["channel", "ROI"]);
        t.row(vec![Cell::text(name), Cell::num(1.5)]);
        let plot = Plot {
            x_desc: "x".into(),
            y_desc: "y".into(),
            y_labels: Some(vec![name.to_string()]),
            elements: vec![crate::chart::Element::Points { color: 0, points: vec![(1.0, 0.0)], size: 3 }],
            ..Default::default()
        };
        let c = chart("c1", name, name, &plot, vec![LegendItem::new(name, 0, "dot")], t).unwrap();
        Page {
            kind: "fit".into(),
            title: name.into(),
            source: name.into(),
            facts: vec![(name.into(), name.into())],
            sections: vec![Section { heading: name.into(), text: vec![name.into()], blocks: vec![c] }],
        }
    }

    #[test]
    fn a_channel_named_like_markup_is_escaped_everywhere() {
        let evil = "<script>alert(1)</script>\"'&";
        let html = render_html(&page_with(evil)).unwrap();
        assert_eq!(html.matches("<script").count(), 1, "a name injected a script element");
        assert!(!html.contains("alert(1)</"), "a name injected markup");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;") || html.contains("&lt;script&gt;"));
        // the generator marker is there, and the page carries no URL
        assert!(html.contains(&format!("<meta name=\"generator\" content=\"{GENERATOR}")));
        assert!(!html.contains("http:") && !html.contains("https:"));
    }

    #[test]
    fn base64_and_the_script_hash_match_references() {
        // RFC 4648 §10 test vectors
        for (i, o) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64(i.as_bytes()), o);
        }
        // SHA-256("abc") = ba7816bf…15ad, base64 as `openssl dgst -sha256 -binary | base64` prints it
        let hex = mmloop_data::hash_bytes(b"abc");
        let bytes: Vec<u8> = (0..64).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        assert_eq!(base64(&bytes), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
        let html = render_html(&page_with("tv")).unwrap();
        assert!(html.contains(&format!("script-src {}", script_hash())), "the policy does not allow the script");
        assert_eq!(html.matches("<script").count(), 1, "exactly one script, the print helper");
        assert!(html.contains(&format!("<script>{PRINT_SCRIPT}</script>")));
    }

    #[test]
    fn numeric_cells_carry_their_exact_value() {
        let html = render_html(&page_with("tv")).unwrap();
        assert!(html.contains("data-value=\"1.5\""), "{html}");
        // the chart is named by its title for screen readers
        assert!(
            html.contains("aria-labelledby=\"c1-title\"") && html.contains("<h3 id=\"c1-title\">tv</h3>"),
            "{html}"
        );
    }
}
