//! Charts as inline SVG, drawn by `plotters`' SVG backend.
//!
//! A [`Plot`] is a list of [`Element`]s on numeric axes (categorical axes are numeric positions with a
//! label per integer). [`Plot::to_svg`] draws it with plotters and returns the `<svg>` element ready to
//! be inlined in HTML: scalable (`viewBox`, CSS sets the width), without the XML namespace URL (inline
//! SVG in HTML needs none, and the report holds no URL at all). Legends are drawn by the page in
//! HTML, under the chart, where they wrap on a narrow screen instead of covering the data.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Colour-blind-safe palette (Okabe & Ito 2008), then greys.
pub const PALETTE: [&str; 10] =
    ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#8C7A00", "#000000", "#777777", "#BBBBBB"];
/// Index of black in [`PALETTE`].
pub const BLACK: usize = 7;
/// Index of mid grey in [`PALETTE`].
pub const GREY: usize = 8;
/// Index of light grey in [`PALETTE`].
pub const LIGHT: usize = 9;

/// The colour of series `i` (cycling through the first seven palette entries).
pub fn series_color(i: usize) -> usize {
    i % 7
}

fn rgb(idx: usize) -> RGBColor {
    let hex = PALETTE[idx % PALETTE.len()];
    let v = u32::from_str_radix(&hex[1..], 16).unwrap_or(0);
    RGBColor((v >> 16) as u8, (v >> 8) as u8, v as u8)
}

/// One thing drawn on a plot. Colours are indices into [`PALETTE`].
#[derive(Debug, Clone, PartialEq)]
pub enum Element {
    /// A polyline through `points`.
    Line { color: usize, points: Vec<(f64, f64)>, width: u32 },
    /// A marker at each point.
    Points { color: usize, points: Vec<(f64, f64)>, size: u32 },
    /// The area between two curves over the same x values (a credible band, a stacked layer).
    Band { color: usize, lower: Vec<(f64, f64)>, upper: Vec<(f64, f64)>, opacity: f64 },
    /// A filled rectangle between corners (x0, y0) and (x1, y1) (a bar, a shaded window).
    Rect { color: usize, x0: f64, y0: f64, x1: f64, y1: f64, opacity: f64 },
    /// A straight segment (an interval's whisker, a reference line).
    Segment { color: usize, from: (f64, f64), to: (f64, f64), width: u32 },
    /// A short text at a data position (left-aligned, vertically centred).
    Text { color: usize, at: (f64, f64), text: String },
}

/// What one chart shows. Axis descriptions carry the units.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plot {
    pub x_desc: String,
    pub y_desc: String,
    /// Category labels of the x axis: label i at x = i (e.g. period labels).
    pub x_labels: Option<Vec<String>>,
    /// Category labels of the y axis: label i at y = i (e.g. channel names of a bar chart).
    pub y_labels: Option<Vec<String>>,
    /// Axis ranges; `None`: the data's extent widened by 4 % on each side.
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    pub elements: Vec<Element>,
    /// Height in SVG units (the width is [`WIDTH`]).
    pub height: u32,
}

/// Width of every chart in SVG units; the page scales it to the screen.
pub const WIDTH: u32 = 640;

/// Why a chart could not be drawn.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ChartError(pub String);

impl Plot {
    /// The data extent of every element: ((xmin, xmax), (ymin, ymax)), `None` without finite data.
    fn extent(&self) -> Option<((f64, f64), (f64, f64))> {
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        let mut push = |p: &(f64, f64)| {
            xs.push(p.0);
            ys.push(p.1);
        };
        for e in &self.elements {
            match e {
                Element::Line { points, .. } | Element::Points { points, .. } => points.iter().for_each(&mut push),
                Element::Band { lower, upper, .. } => lower.iter().chain(upper).for_each(&mut push),
                Element::Rect { x0, y0, x1, y1, .. } => {
                    push(&(*x0, *y0));
                    push(&(*x1, *y1));
                }
                Element::Segment { from, to, .. } => {
                    push(from);
                    push(to);
                }
                Element::Text { .. } => {}
            }
        }
        let range = |v: &[f64]| {
            let f: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
            if f.is_empty() {
                return None;
            }
            let lo = f.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = f.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            Some(padded(lo, hi))
        };
        Some((range(&xs)?, range(&ys)?))
    }

    /// The chart as an inline `<svg>` element.
    pub fn to_svg(&self) -> Result<String, ChartError> {
        let (dx, dy) = self.extent().ok_or_else(|| ChartError("nothing to draw: no finite value".into()))?;
        let (x0, x1) = self.x_range.unwrap_or(dx);
        let (y0, y1) = self.y_range.unwrap_or(dy);
        let mut buf = String::new();
        self.draw(&mut buf, (x0, x1), (y0, y1)).map_err(|e| ChartError(e.to_string()))?;
        Ok(inline(&buf))
    }

    fn draw(
        &self,
        buf: &mut String,
        (x0, x1): (f64, f64),
        (y0, y1): (f64, f64),
    ) -> Result<(), Box<dyn std::error::Error>> {
        let height = if self.height == 0 { 360 } else { self.height };
        let root = SVGBackend::with_string(buf, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let y_label_width = match &self.y_labels {
            // plotters' text estimate: ~0.46 em per character at 15 px
            Some(l) => (l.iter().map(|s| s.chars().count()).max().unwrap_or(4) as u32 * 9 + 28).clamp(64, 240),
            None => 78,
        };
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .margin_right(44)
            .x_label_area_size(52)
            .y_label_area_size(y_label_width)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        let x_fmt = |v: &f64| category(self.x_labels.as_deref(), *v).unwrap_or_else(|| tick(*v));
        let y_fmt = |v: &f64| category(self.y_labels.as_deref(), *v).unwrap_or_else(|| tick(*v));
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(self.x_desc.as_str())
            .y_desc(self.y_desc.as_str())
            .label_style(("sans-serif", 17))
            .axis_desc_style(("sans-serif", 17))
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(0xE4, 0xE4, 0xE4))
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .x_labels(match &self.x_labels {
                Some(l) => l.len().clamp(2, 6),
                None => 8,
            })
            .y_labels(match &self.y_labels {
                Some(l) => l.len().max(2),
                None => 7,
            });
        if self.y_labels.is_some() {
            mesh.disable_y_mesh();
        }
        if self.x_labels.is_some() {
            mesh.disable_x_mesh();
        }
        mesh.draw()?;
        for e in &self.elements {
            match e {
                Element::Line { color, points, width } => {
                    let pts: Vec<(f64, f64)> = points.iter().copied().filter(|p| finite(*p)).collect();
                    chart.draw_series(LineSeries::new(pts, rgb(*color).stroke_width((*width).max(1))))?;
                }
                Element::Points { color, points, size } => {
                    let c = rgb(*color);
                    chart.draw_series(
                        points.iter().copied().filter(|p| finite(*p)).map(|p| Circle::new(p, *size, c.filled())),
                    )?;
                }
                Element::Band { color, lower, upper, opacity } => {
                    let mut poly: Vec<(f64, f64)> = lower.iter().copied().filter(|p| finite(*p)).collect();
                    poly.extend(upper.iter().rev().copied().filter(|p| finite(*p)));
                    if poly.len() >= 3 {
                        chart.draw_series(std::iter::once(Polygon::new(poly, rgb(*color).mix(*opacity).filled())))?;
                    }
                }
                Element::Rect { color, x0, y0, x1, y1, opacity } => {
                    if finite((*x0, *y0)) && finite((*x1, *y1)) {
                        chart.draw_series(std::iter::once(Rectangle::new(
                            [(*x0, *y0), (*x1, *y1)],
                            rgb(*color).mix(*opacity).filled(),
                        )))?;
                    }
                }
                Element::Segment { color, from, to, width } => {
                    if finite(*from) && finite(*to) {
                        chart.draw_series(std::iter::once(PathElement::new(
                            vec![*from, *to],
                            rgb(*color).stroke_width((*width).max(1)),
                        )))?;
                    }
                }
                Element::Text { color, at, text } => {
                    if finite(*at) {
                        let style =
                            ("sans-serif", 16).into_font().color(&rgb(*color)).pos(Pos::new(HPos::Left, VPos::Center));
                        chart.draw_series(std::iter::once(plotters::element::Text::new(text.clone(), *at, style)))?;
                    }
                }
            }
        }
        root.present()?;
        Ok(())
    }
}

fn finite(p: (f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite()
}

/// [lo, hi] widened by 4 % on each side (a unit either side when lo = hi).
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        let m = 0.04 * (hi - lo);
        (lo - m, hi + m)
    } else {
        (lo - 1.0, hi + 1.0)
    }
}

/// The category label at position `v` when `v` is (numerically) an integer index of `labels`.
fn category(labels: Option<&[String]>, v: f64) -> Option<String> {
    let labels = labels?;
    let i = v.round();
    if (v - i).abs() > 1e-6 || i < 0.0 {
        return Some(String::new());
    }
    Some(labels.get(i as usize).cloned().unwrap_or_default())
}

/// A tick label: compact, with k/M/B for large magnitudes.
pub fn tick(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{}B", trim(v / 1e9, 2))
    } else if a >= 1e6 {
        format!("{}M", trim(v / 1e6, 2))
    } else if a >= 1e4 {
        format!("{}k", trim(v / 1e3, 1))
    } else if a >= 10.0 || a == 0.0 {
        trim(v, 1)
    } else if a >= 1e-3 {
        trim(v, 3)
    } else {
        // small magnitudes (densities of large quantities): two significant digits
        format!("{v:.1e}")
    }
}

fn trim(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    if s == "-0" { "0".into() } else { s }
}

/// plotters' SVG made fit for inlining: no fixed size (CSS scales it, the `viewBox` keeps the aspect),
/// no namespace URL, marked as an image for assistive technology.
fn inline(svg: &str) -> String {
    let svg = svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1);
    match svg.find("<svg ") {
        Some(i) => {
            let rest = &svg[i + 5..];
            // drop width="…" height="…" of the root element only
            let end = rest.find('>').unwrap_or(0);
            let head: Vec<&str> =
                rest[..end].split(' ').filter(|a| !a.starts_with("width=") && !a.starts_with("height=")).collect();
            format!("{}<svg class=\"plot\" role=\"img\" {}{}", &svg[..i], head.join(" "), &rest[end..])
        }
        None => svg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_compact_and_never_negative_zero() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(-0.0004), "-4.0e-4");
        assert_eq!(tick(0.0012), "0.001");
        assert_eq!(tick(12_500.0), "12.5k");
        assert_eq!(tick(3_000_000.0), "3M");
        assert_eq!(tick(0.125), "0.125");
        assert_eq!(tick(42.0), "42");
    }

    #[test]
    fn svg_is_scalable_and_holds_no_url() {
        let p = Plot {
            x_desc: "period".into(),
            y_desc: "KPI (units)".into(),
            elements: vec![Element::Line { color: 0, points: vec![(0.0, 1.0), (1.0, 2.0)], width: 2 }],
            ..Default::default()
        };
        let svg = p.to_svg().unwrap();
        assert!(svg.starts_with("<svg class=\"plot\" role=\"img\" viewBox=\"0 0 640 360\""), "{}", &svg[..80]);
        assert!(!svg.contains("http"), "the SVG names a URL");
        assert!(svg.contains("<polyline"), "the line was not drawn");
    }

    #[test]
    fn category_labels_sit_on_integers_only() {
        let l = vec!["a".to_string(), "b".to_string()];
        assert_eq!(category(Some(&l), 1.0).unwrap(), "b");
        assert_eq!(category(Some(&l), 0.5).unwrap(), "");
        assert_eq!(category(Some(&l), 7.0).unwrap(), "");
        assert_eq!(category(None, 1.0), None);
    }

    #[test]
    fn a_plot_without_finite_data_is_an_error_not_an_empty_chart() {
        let p = Plot {
            elements: vec![Element::Points { color: 0, points: vec![(f64::NAN, 1.0)], size: 3 }],
            ..Default::default()
        };
        assert!(p.to_svg().is_err());
    }
}
