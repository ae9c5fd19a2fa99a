//! Regional panels: a balanced geo × time matrix of the KPI (and optionally spend and a 0/1
//! treatment indicator), checked on the way in, and the test design applied to it.
//!
//! ```no_run
//! use mmloop_geolift::{Columns, Design, Panel};
//! let panel = Panel::read("GeoLift_Test.csv", &Columns::default())?;
//! let data = panel.design(&Design::new(&["chicago", "portland"], "2021-04-01", Some("2021-04-15")))?;
//! assert_eq!(data.t0, 90);
//! # Ok::<(), mmloop_geolift::GeoLiftError>(())
//! ```

use crate::error::{GeoLiftError, MAX_ABS_VALUE, design_err};
use mmloop_data::{Table, TimeColumn, TimeKind, closest};
use ndarray::Array2;
use std::collections::HashMap;
use std::path::Path;

/// Column names of a long panel. Defaults are GeoLift's: `date`, `location`, `Y`.
#[derive(Debug, Clone)]
pub struct Columns {
    pub time: String,
    pub geo: String,
    pub kpi: String,
    pub spend: Option<String>,
    /// A 0/1 "treated now" column (e.g. synthdid's `treated`).
    pub treatment: Option<String>,
}

impl Default for Columns {
    fn default() -> Self {
        Self { time: "date".into(), geo: "location".into(), kpi: "Y".into(), spend: None, treatment: None }
    }
}

/// A panel: every geo observed at every time at most once, all values finite and at most
/// [`MAX_ABS_VALUE`] in magnitude. [`Panel::read`] requires it balanced (every geo at every time);
/// [`Panel::read_allow_gaps`] accepts missing (time, geo) rows and records them in `observed`
/// (missing cells hold NaN, so any estimator that does not handle gaps cannot use them unnoticed).
/// Geos keep their order of first appearance; times are sorted ascending.
#[derive(Debug, Clone)]
pub struct Panel {
    pub geos: Vec<String>,
    pub time_kind: TimeKind,
    /// Numeric time values (days since 1970-01-01 for dates), ascending.
    pub times: Vec<f64>,
    /// The times as written in the data.
    pub time_labels: Vec<String>,
    /// KPI, geos × times.
    pub kpi: Array2<f64>,
    pub spend: Option<Array2<f64>>,
    pub treatment: Option<Array2<f64>>,
    /// File name (or other provenance) for error messages and the calibration record.
    pub source: String,
    /// Which (geo, time) cells were in the data; `None` when the panel is balanced.
    pub observed: Option<Array2<bool>>,
}

impl Panel {
    /// Reads a long CSV/Parquet panel and checks it is balanced and finite.
    pub fn read(path: impl AsRef<Path>, cols: &Columns) -> Result<Self, GeoLiftError> {
        Self::read_impl(path.as_ref(), cols, false)
    }

    /// Like [`Panel::read`], but missing (time, geo) rows are allowed: they are recorded in
    /// `observed` and hold NaN. Only estimators that can honestly aggregate over gaps (TBR) accept
    /// such a panel; the others return [`GeoLiftError::Gaps`].
    pub fn read_allow_gaps(path: impl AsRef<Path>, cols: &Columns) -> Result<Self, GeoLiftError> {
        Self::read_impl(path.as_ref(), cols, true)
    }

    /// Number of missing (time, geo) cells.
    pub fn n_missing(&self) -> usize {
        self.observed.as_ref().map(|o| o.iter().filter(|&&v| !v).count()).unwrap_or(0)
    }

    fn read_impl(path: &Path, cols: &Columns, allow_gaps: bool) -> Result<Self, GeoLiftError> {
        let t = Table::read(path)?;
        let time = t.time_column(&cols.time)?;
        let geo = t.str_column(&cols.geo)?;
        let kpi = t.f64_column(&cols.kpi)?;
        let spend = cols.spend.as_deref().map(|c| t.f64_column(c)).transpose()?;
        let treat = cols.treatment.as_deref().map(|c| t.f64_column(c)).transpose()?;
        let source = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut extra = Vec::new();
        if let (Some(name), Some(v)) = (&cols.spend, spend) {
            extra.push((name.clone(), v));
        }
        let treat_name = cols.treatment.clone();
        if let (Some(name), Some(v)) = (&cols.treatment, treat) {
            extra.push((name.clone(), v));
        }
        let (mut p, mut mats) = Self::build(&source, time, &geo, &cols.kpi, &kpi, &extra, allow_gaps)?;
        if let Some(name) = &treat_name {
            let m = mats.pop();
            if let Some(m) = &m
                && let Some(((g, tt), v)) = indexed(m).find(|(_, v)| !(*v == 0.0 || *v == 1.0 || v.is_nan()))
            {
                return Err(design_err(
                    format!("{source}: column {name:?}"),
                    format!(
                        "geo {:?} at time {} has value {v}; a treatment column must hold 0 or 1",
                        p.geos[g], p.time_labels[tt]
                    ),
                ));
            }
            p.treatment = m;
        }
        if cols.spend.is_some() {
            p.spend = mats.pop();
        }
        Ok(p)
    }

    /// Builds a panel from long columns (one entry per row), checking balance and finiteness.
    pub fn from_long(
        source: &str,
        time: TimeColumn,
        geo: &[String],
        kpi_name: &str,
        kpi: &[f64],
    ) -> Result<Self, GeoLiftError> {
        Ok(Self::build(source, time, geo, kpi_name, kpi, &[], false)?.0)
    }

    /// `from_long` plus further numeric columns (name, values) reshaped the same way.
    fn build(
        source: &str,
        time: TimeColumn,
        geo: &[String],
        kpi_name: &str,
        kpi: &[f64],
        extra: &[(String, Vec<f64>)],
        allow_gaps: bool,
    ) -> Result<(Self, Vec<Array2<f64>>), GeoLiftError> {
        let n = geo.len();
        if time.values.len() != n || kpi.len() != n || extra.iter().any(|(_, v)| v.len() != n) {
            return Err(design_err(source, "columns have different lengths"));
        }
        let mut geos: Vec<String> = Vec::new();
        let mut geo_ix: HashMap<&str, usize> = HashMap::new();
        for g in geo {
            if !geo_ix.contains_key(g.as_str()) {
                geo_ix.insert(g.as_str(), geos.len());
                geos.push(g.clone());
            }
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| time.values[a].total_cmp(&time.values[b]));
        let mut times: Vec<f64> = Vec::new();
        let mut time_labels: Vec<String> = Vec::new();
        for &r in &order {
            if times.last() != Some(&time.values[r]) {
                times.push(time.values[r]);
                time_labels.push(time.labels[r].clone());
            }
        }
        let (ng, nt) = (geos.len(), times.len());
        let mut seen = vec![usize::MAX; ng * nt];
        let mut k = Array2::<f64>::zeros((ng, nt));
        let mut ex: Vec<Array2<f64>> = extra.iter().map(|_| Array2::zeros((ng, nt))).collect();
        for r in 0..n {
            let g = geo_ix[geo[r].as_str()];
            let t = times.partition_point(|&x| x < time.values[r]);
            let cell = g * nt + t;
            if seen[cell] != usize::MAX {
                return Err(GeoLiftError::DuplicateRow {
                    source_name: source.into(),
                    geo: geo[r].clone(),
                    time: time.labels[r].clone(),
                    first_row: seen[cell] + 1,
                    second_row: r + 1,
                });
            }
            seen[cell] = r;
            let check = |name: &str, v: f64| {
                if v.is_finite() && v.abs() > MAX_ABS_VALUE {
                    Err(GeoLiftError::ValueTooLarge {
                        source_name: source.into(),
                        column: name.into(),
                        geo: geo[r].clone(),
                        time: time.labels[r].clone(),
                        value: v,
                        limit: MAX_ABS_VALUE,
                    })
                } else if v.is_finite() {
                    Ok(v)
                } else {
                    Err(GeoLiftError::NonFinite {
                        source_name: source.into(),
                        column: name.into(),
                        geo: geo[r].clone(),
                        time: time.labels[r].clone(),
                    })
                }
            };
            k[[g, t]] = check(kpi_name, kpi[r])?;
            for (j, (name, v)) in extra.iter().enumerate() {
                ex[j][[g, t]] = check(name, v[r])?;
            }
        }
        let missing = seen.iter().filter(|&&s| s == usize::MAX).count();
        let mut observed = None;
        if missing > 0 && allow_gaps {
            let o = Array2::from_shape_fn((ng, nt), |(g, t)| seen[g * nt + t] != usize::MAX);
            for m in std::iter::once(&mut k).chain(ex.iter_mut()) {
                m.zip_mut_with(&o, |v, &ok| {
                    if !ok {
                        *v = f64::NAN;
                    }
                });
            }
            observed = Some(o);
        } else if missing > 0 {
            let cell = seen.iter().position(|&s| s == usize::MAX).unwrap_or(0);
            return Err(GeoLiftError::MissingRows {
                source_name: source.into(),
                missing,
                geo: geos[cell / nt].clone(),
                time: time_labels[cell % nt].clone(),
            });
        }
        let p = Self {
            geos,
            time_kind: time.kind,
            times,
            time_labels,
            kpi: k,
            spend: None,
            treatment: None,
            source: source.into(),
            observed,
        };
        Ok((p, ex))
    }

    /// Builds a panel directly from a geos × times matrix (numeric times `0..T`).
    pub fn from_matrix(geos: Vec<String>, kpi: Array2<f64>) -> Result<Self, GeoLiftError> {
        if kpi.nrows() != geos.len() {
            return Err(design_err("panel", "matrix rows must match the number of geos"));
        }
        if let Some(((g, t), _)) = indexed(&kpi).find(|(_, v)| !v.is_finite()) {
            return Err(GeoLiftError::NonFinite {
                source_name: "matrix".into(),
                column: "kpi".into(),
                geo: geos[g].clone(),
                time: t.to_string(),
            });
        }
        if let Some(((g, t), v)) = indexed(&kpi).find(|(_, v)| v.abs() > MAX_ABS_VALUE) {
            return Err(GeoLiftError::ValueTooLarge {
                source_name: "matrix".into(),
                column: "kpi".into(),
                geo: geos[g].clone(),
                time: t.to_string(),
                value: v,
                limit: MAX_ABS_VALUE,
            });
        }
        let nt = kpi.ncols();
        Ok(Self {
            geos,
            time_kind: TimeKind::Numeric,
            times: (0..nt).map(|t| t as f64).collect(),
            time_labels: (0..nt).map(|t| t.to_string()).collect(),
            kpi,
            spend: None,
            treatment: None,
            source: "matrix".into(),
            observed: None,
        })
    }

    /// The panel restricted to periods `lo..hi` (every geo; KPI, spend, treatment and the
    /// observed mask cut alike). Errors when the range is empty or reaches past the last period.
    pub fn periods(&self, lo: usize, hi: usize) -> Result<Self, GeoLiftError> {
        if lo >= hi || hi > self.times.len() {
            return Err(design_err(
                "periods",
                format!("periods {lo}..{hi} are not a non-empty range of the panel's {} periods", self.times.len()),
            ));
        }
        let cut = |a: &Array2<f64>| a.slice(ndarray::s![.., lo..hi]).to_owned();
        Ok(Self {
            geos: self.geos.clone(),
            time_kind: self.time_kind,
            times: self.times[lo..hi].to_vec(),
            time_labels: self.time_labels[lo..hi].to_vec(),
            kpi: cut(&self.kpi),
            spend: self.spend.as_ref().map(cut),
            treatment: self.treatment.as_ref().map(cut),
            source: self.source.clone(),
            observed: self.observed.as_ref().map(|o| o.slice(ndarray::s![.., lo..hi]).to_owned()),
        })
    }

    /// Index of a geo by name: exact, else case-insensitive (GeoLift lower-cases locations).
    pub fn geo_index(&self, name: &str) -> Result<usize, GeoLiftError> {
        if let Some(i) = self.geos.iter().position(|g| g == name) {
            return Ok(i);
        }
        let lower = name.to_lowercase();
        let hits: Vec<usize> = (0..self.geos.len()).filter(|&i| self.geos[i].to_lowercase() == lower).collect();
        if hits.len() == 1 {
            return Ok(hits[0]);
        }
        let hint = closest(name, &self.geos).map(|c| format!(" (did you mean {c:?}?)")).unwrap_or_default();
        Err(GeoLiftError::UnknownGeo { geo: name.into(), hint })
    }

    /// Parses a time given on the command line in the data's own notation and returns the index of
    /// the first period at or after it.
    pub fn time_index_at_or_after(&self, label: &str, what: &str) -> Result<usize, GeoLiftError> {
        let tc = TimeColumn { kind: self.time_kind, values: vec![], labels: vec![] };
        let v = tc.parse_point(label).map_err(|m| design_err(what, m))?;
        let i = self.times.partition_point(|&x| x < v);
        if i == self.times.len() {
            return Err(design_err(
                what,
                format!("{label} is after the last period in the data ({})", self.time_labels[self.times.len() - 1]),
            ));
        }
        Ok(i)
    }

    /// Treated geos and test window read from the 0/1 treatment column: the geos that are ever
    /// treated, the first and the last treated period. Every treated geo must be treated over
    /// exactly that window (common adoption); staggered adoption is [`GeoLiftError::StaggeredAdoption`]
    /// (the CLI then runs `--estimator twfe` through [`crate::Twfe::fit_matrix`] and
    /// [`crate::EventStudy::fit_matrix`] on the treatment matrix).
    pub fn design_from_treatment(&self) -> Result<Design, GeoLiftError> {
        let d = self
            .treatment
            .as_ref()
            .ok_or_else(|| design_err("--treatment-col", "the panel has no treatment column"))?;
        let treated: Vec<usize> = (0..self.geos.len()).filter(|&g| d.row(g).iter().any(|&v| v == 1.0)).collect();
        if treated.is_empty() {
            return Err(design_err("--treatment-col", "no geo is ever treated (all values are 0)"));
        }
        let nt = self.times.len();
        let first = |g: usize| (0..nt).find(|&t| d[[g, t]] == 1.0).unwrap_or(0);
        let last = |g: usize| (0..nt).rev().find(|&t| d[[g, t]] == 1.0).unwrap_or(0);
        let (start, end) = (first(treated[0]), last(treated[0]));
        for &g in &treated {
            if first(g) != start || last(g) != end || (start..=end).any(|t| d[[g, t]] != 1.0) {
                return Err(GeoLiftError::StaggeredAdoption {
                    detail: format!(
                        "geo {:?} is treated from {} to {}, geo {:?} from {} to {}",
                        self.geos[treated[0]],
                        self.time_labels[start],
                        self.time_labels[end],
                        self.geos[g],
                        self.time_labels[first(g)],
                        self.time_labels[last(g)]
                    ),
                });
            }
        }
        Ok(Design {
            treated: treated.iter().map(|&g| self.geos[g].clone()).collect(),
            start: self.time_labels[start].clone(),
            end: Some(self.time_labels[end].clone()),
        })
    }

    /// Applies a design: resolves the treated geos, finds the test window, drops periods after its end.
    pub fn design(&self, d: &Design) -> Result<LiftData, GeoLiftError> {
        self.design_cell(d, &[])
    }

    /// Like [`Panel::design`], but also removes `exclude` geos (other cells' treated geos) from the controls.
    pub fn design_cell(&self, d: &Design, exclude: &[String]) -> Result<LiftData, GeoLiftError> {
        if d.treated.is_empty() {
            return Err(design_err("--treated", "no treated geos given"));
        }
        let mut treated = Vec::new();
        for g in &d.treated {
            let i = self.geo_index(g)?;
            if treated.contains(&i) {
                return Err(design_err("--treated", format!("geo {g:?} is listed twice")));
            }
            treated.push(i);
        }
        let mut excluded = Vec::new();
        for g in exclude {
            excluded.push(self.geo_index(g)?);
        }
        let start = self.time_index_at_or_after(&d.start, "--start")?;
        let end = match &d.end {
            None => self.times.len() - 1,
            Some(e) => {
                let tc = TimeColumn { kind: self.time_kind, values: vec![], labels: vec![] };
                let v = tc.parse_point(e).map_err(|m| design_err("--end", m))?;
                let i = self.times.partition_point(|&x| x <= v);
                let last = self.times.len() - 1;
                if v > self.times[last] {
                    // refused rather than cut silently: a test window that the data does not cover
                    // would be estimated over fewer periods than the user believes
                    return Err(design_err(
                        "--end",
                        format!(
                            "{e} is after the last period in the data ({}): the test window would be cut short. Give an --end inside the data, or leave --end out to run the test to the last period",
                            self.time_labels[last]
                        ),
                    ));
                }
                if i == 0 || i - 1 < start {
                    return Err(design_err("--end", format!("end {e} is before the test start {}", d.start)));
                }
                i - 1
            }
        };
        if start == 0 {
            return Err(GeoLiftError::PreTooShort { estimator: "design".into(), have: 0, need: 1 });
        }
        let controls: Vec<usize> =
            (0..self.geos.len()).filter(|g| !treated.contains(g) && !excluded.contains(g)).collect();
        if controls.is_empty() {
            return Err(design_err("--treated", "every geo is treated: there are no control geos left"));
        }
        let cols = end + 1;
        let slice = |m: &Array2<f64>| m.slice(ndarray::s![.., ..cols]).to_owned();
        Ok(LiftData {
            geos: self.geos.clone(),
            time_kind: self.time_kind,
            time_labels: self.time_labels[..cols].to_vec(),
            y: slice(&self.kpi),
            spend: self.spend.as_ref().map(slice),
            treated,
            controls,
            t0: start,
            source: self.source.clone(),
            observed: self.observed.as_ref().map(|o| o.slice(ndarray::s![.., ..cols]).to_owned()),
        })
    }
}

/// A geo test design: treated geos and the test window (start inclusive, optional end inclusive,
/// in the data's own time notation; later periods are dropped, as GeoLift does).
#[derive(Debug, Clone)]
pub struct Design {
    pub treated: Vec<String>,
    pub start: String,
    pub end: Option<String>,
}

impl Design {
    pub fn new(treated: &[&str], start: &str, end: Option<&str>) -> Self {
        Self {
            treated: treated.iter().map(|s| s.to_string()).collect(),
            start: start.into(),
            end: end.map(String::from),
        }
    }
}

/// A panel with a design applied: `y` is geos × periods up to the test end, the first `t0` periods
/// are the pre-period.
#[derive(Debug, Clone)]
pub struct LiftData {
    pub geos: Vec<String>,
    pub time_kind: TimeKind,
    pub time_labels: Vec<String>,
    pub y: Array2<f64>,
    pub spend: Option<Array2<f64>>,
    pub treated: Vec<usize>,
    pub controls: Vec<usize>,
    /// Number of pre-test periods; periods `t0..` are the test window.
    pub t0: usize,
    pub source: String,
    /// Which cells were in the data (`None`: all of them). Missing cells of `y` hold NaN.
    pub observed: Option<Array2<bool>>,
}

impl LiftData {
    /// Builds a design directly from a matrix: rows are geos, `treated` their indices, `t0` pre periods.
    pub fn from_matrix(y: Array2<f64>, treated: Vec<usize>, t0: usize) -> Result<Self, GeoLiftError> {
        let n = y.nrows();
        if treated.is_empty() || treated.iter().any(|&i| i >= n) {
            return Err(design_err("treated", "treated indices must be non-empty and inside the matrix"));
        }
        if t0 == 0 || t0 >= y.ncols() {
            return Err(design_err("t0", "need at least one pre and one post period"));
        }
        let controls = (0..n).filter(|i| !treated.contains(i)).collect::<Vec<_>>();
        if controls.is_empty() {
            return Err(design_err("treated", "no controls"));
        }
        let nt = y.ncols();
        Ok(Self {
            geos: (0..n).map(|i| format!("g{i}")).collect(),
            time_kind: TimeKind::Numeric,
            time_labels: (0..nt).map(|t| t.to_string()).collect(),
            y,
            spend: None,
            treated,
            controls,
            t0,
            source: "matrix".into(),
            observed: None,
        })
    }

    /// Missing cells among the treated and control geos: (count, first missing (geo, period)).
    pub fn missing_cells(&self) -> (usize, Option<(usize, usize)>) {
        let Some(o) = &self.observed else { return (0, None) };
        let mut n = 0;
        let mut first = None;
        for &g in self.treated.iter().chain(&self.controls) {
            for t in 0..o.ncols() {
                if !o[[g, t]] {
                    n += 1;
                    first.get_or_insert((g, t));
                }
            }
        }
        (n, first)
    }

    /// Whether cell (g, t) was in the data.
    pub fn is_observed(&self, g: usize, t: usize) -> bool {
        self.observed.as_ref().is_none_or(|o| o[[g, t]])
    }

    /// [`GeoLiftError::Gaps`] when a treated or control geo misses a period: for the estimators
    /// that need a balanced panel.
    pub fn require_complete(&self, estimator: &str) -> Result<(), GeoLiftError> {
        match self.missing_cells() {
            (0, _) | (_, None) => Ok(()),
            (n, Some((g, t))) => Err(GeoLiftError::Gaps {
                estimator: estimator.into(),
                source_name: self.source.clone(),
                missing: n,
                geo: self.geos[g].clone(),
                time: self.time_labels[t].clone(),
            }),
        }
    }

    /// The cell of largest magnitude among the treated and control geos: (geo, period, value); the
    /// first suspect when a result comes out non-finite.
    pub fn largest_cell(&self) -> Option<(String, String, f64)> {
        let mut best: Option<(usize, usize, f64)> = None;
        for &g in self.treated.iter().chain(&self.controls) {
            for t in 0..self.n_periods() {
                let v = self.y[[g, t]];
                if v.is_finite() && best.is_none_or(|b| v.abs() > b.2.abs()) {
                    best = Some((g, t, v));
                }
            }
        }
        best.map(|(g, t, v)| (self.geos[g].clone(), self.time_labels[t].clone(), v))
    }

    /// A description of the likely culprit when an estimate of `estimator` is not finite.
    pub fn nonfinite_culprit(&self) -> String {
        match self.largest_cell() {
            Some((g, t, v)) => format!(
                "extreme input values (the largest |KPI| is {v:e}, geo {g:?} at {t}; compare the outlier warnings) or a degenerate fit (constant series, a single control)"
            ),
            None => "the inputs have no finite value".into(),
        }
    }

    /// Checks every number of an estimate is finite; the error names the first that is not.
    pub fn check_estimate(&self, e: &crate::result::LiftEstimate) -> Result<(), GeoLiftError> {
        let mut items: Vec<(String, f64)> =
            vec![("ATT".into(), e.att), ("lift %".into(), e.lift_pct), ("incremental KPI".into(), e.incremental)];
        for (name, v) in [
            ("standard error", e.se),
            ("CI lower bound", e.ci_lower),
            ("CI upper bound", e.ci_upper),
            ("p-value", e.p_value),
            ("bias estimate", e.bias),
        ] {
            if let Some(v) = v {
                items.push((name.into(), v));
            }
        }
        if let Some(pf) = e.pre_fit {
            items.push(("pre-period L2 imbalance".into(), pf.l2));
            items.push(("pre-period RMSE".into(), pf.rmse));
        }
        items.extend(e.weights.iter().map(|(g, w)| (format!("donor weight of {g:?}"), *w)));
        items.extend(e.path.iter().map(|p| (format!("counterfactual at {}", p.time), p.counterfactual)));
        match items.into_iter().find(|(_, v)| !v.is_finite()) {
            None => Ok(()),
            Some((what, value)) => Err(GeoLiftError::NonFiniteResult {
                estimator: e.estimator.clone(),
                what,
                value,
                culprit: self.nonfinite_culprit(),
            }),
        }
    }

    pub fn n_periods(&self) -> usize {
        self.y.ncols()
    }
    pub fn n_post(&self) -> usize {
        self.y.ncols() - self.t0
    }
    /// Average of the treated geos per period.
    pub fn treated_mean(&self) -> Vec<f64> {
        let k = self.treated.len() as f64;
        (0..self.n_periods()).map(|t| self.treated.iter().map(|&g| self.y[[g, t]]).sum::<f64>() / k).collect()
    }
    /// Controls × periods matrix.
    pub fn control_matrix(&self) -> Array2<f64> {
        self.y.select(ndarray::Axis(0), &self.controls)
    }
    pub fn control_names(&self) -> Vec<String> {
        self.controls.iter().map(|&g| self.geos[g].clone()).collect()
    }
    pub fn treated_names(&self) -> Vec<String> {
        self.treated.iter().map(|&g| self.geos[g].clone()).collect()
    }
    /// Total spend of the treated geos over the test window, if a spend column was given.
    pub fn treated_post_spend(&self) -> Option<f64> {
        let s = self.spend.as_ref()?;
        Some(self.treated.iter().map(|&g| (self.t0..self.n_periods()).map(|t| s[[g, t]]).sum::<f64>()).sum())
    }
    /// A new design on the same periods with other rows as treated and donors (for placebos).
    pub fn with_groups(&self, treated: Vec<usize>, controls: Vec<usize>) -> Self {
        let mut d = self.clone();
        d.treated = treated;
        d.controls = controls;
        d
    }
    /// Returns an error when the pre-period is shorter than `need`.
    pub fn require_pre(&self, estimator: &str, need: usize) -> Result<(), GeoLiftError> {
        if self.t0 < need {
            return Err(GeoLiftError::PreTooShort { estimator: estimator.into(), have: self.t0, need });
        }
        Ok(())
    }
}

fn indexed(m: &Array2<f64>) -> impl Iterator<Item = ((usize, usize), f64)> + '_ {
    m.indexed_iter().map(|(ix, &v)| (ix, v))
}
