//! Loading and validating the data a model is fitted to: [`Dataset::load`].
//!
//! The file is long format — one row per period (national) or per (period, geo) — read with
//! [`Table::read`] (CSV or Parquet). Columns the config does not name are ignored (e.g. the unnamed
//! index column of Meridian's `geo_all_channels.csv`). Rows may come in any order; they are sorted
//! by time, and geos are kept in first-appearance order.
//!
//! Every check names the file, the column, the 1-based data row (the header is not counted) where
//! one applies, and says what to do:
//! - a missing or misspelt column (with the closest column name and the config option to fix);
//! - an empty, non-numeric, NaN or infinite cell, or one beyond ±2^53 ([`MAX_MAGNITUDE`]);
//! - a KPI whose mean over the fitted periods is not positive (per geo without a population column),
//!   or that is constant over the fitted periods (in every geo);
//! - negative spend or exposure; a non-positive, or within-geo varying, population; negative revenue per KPI;
//! - a duplicate (time, geo) row; a geo that lacks some periods; gaps in the time grid (the step is
//!   inferred as the commonest difference between consecutive periods — or calendar months / quarters
//!   when most dates are 28–31 / 89–92 days apart — and every difference must equal it);
//! - a channel whose media (or, with an ROI prior, spend) is zero in every fitted period;
//! - a control with one value in every fitted cell (it cannot be told from the intercept);
//! - too few fitted periods (see [`min_periods`] for the rule);
//! - the default yearly seasonality (52.18 periods) on dates that are not weekly;
//! - lift-test records whose dates or geos are not in the data.
//!
//! A control written `column=value` in the spec (from `[[control]] column = "events", equals = "event1"`)
//! is the 0/1 indicator of a text column equal to `value`.

// The error enums carry file, option and row details for their messages; they are built once per
// failed run, so their size does not matter.
#![allow(clippy::result_large_err)]

use crate::config::{YEARLY_PERIOD_WEEKS, split_indicator};
use crate::dataset::Dataset;
use crate::spec::{EffectPrior, ModelSpec, Trend};
use mmloop_data::{DataError, Table, TimeColumn, TimeKind, closest};
use ndarray::{Array1, Array2, Array3};
use std::collections::HashMap;
use std::path::PathBuf;

/// Everything that can be wrong with a model's data. Each message names the file, the column and
/// row (where one applies), what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum MmmDataError {
    /// The file could not be read or parsed.
    #[error(transparent)]
    Table(#[from] DataError),

    /// A column named in the config is missing from the file or has the wrong type.
    #[error("{source}. Fix {option} in the config, or rename the column in the file")]
    Column { option: String, source: DataError },

    /// One bad cell.
    #[error("{path}: column {column:?}, row {row}: {problem}. {remedy}")]
    Cell { path: PathBuf, column: String, row: usize, problem: String, remedy: String },

    /// Two rows for the same period (and geo).
    #[error("{path}: rows {first} and {second} are both for {what} ({columns}). {remedy}")]
    DuplicateRow { path: PathBuf, first: usize, second: usize, what: String, columns: String, remedy: String },

    /// The periods are not evenly spaced.
    #[error(
        "{path}: column {column:?}: gap in the time grid between {before} (row {before_row}) and {after} (row {after_row}): \
         the step there is {step} but the data's step is {expected}. Add the missing periods (with 0 spend \
         where nothing was spent) so every step is the same"
    )]
    Gap {
        path: PathBuf,
        column: String,
        before: String,
        before_row: usize,
        after: String,
        after_row: usize,
        step: String,
        expected: String,
    },

    /// A geo without a row for some periods that other geos have.
    #[error(
        "{path}: column {column:?}: geo {geo:?} has no row for {count} of the {total} periods, the first being {first}. \
         Every geo needs one row per period: add the missing rows (with 0 spend where nothing was spent) or drop the geo"
    )]
    MissingPeriods { path: PathBuf, column: String, geo: String, count: usize, total: usize, first: String },

    /// A channel that cannot be estimated from this data.
    #[error("{path}: channel {channel:?}: column {column:?} {problem}. {remedy}")]
    Channel { path: PathBuf, channel: String, column: String, problem: String, remedy: String },

    /// Not enough periods for the model's lags, Fourier terms or coefficients.
    #[error("{path}: {option}: {problem}. {remedy}")]
    TooFewPeriods { path: PathBuf, option: String, problem: String, remedy: String },

    /// A KPI the model cannot scale or has nothing to explain in.
    #[error("{path}: column {column:?} ([data] kpi): {problem}. {remedy}")]
    Kpi { path: PathBuf, column: String, problem: String, remedy: String },

    /// A config option that does not fit the data (seasonality period, calibration record, ...).
    #[error("{path}: {option}: {problem}. {remedy}")]
    Mismatch { path: PathBuf, option: String, problem: String, remedy: String },
}

type Result<T> = std::result::Result<T, MmmDataError>;

/// The largest magnitude accepted in a numeric column: 2^53, past which consecutive whole numbers
/// are no longer representable in `f64` (so sums of such values lose units), and far beyond any
/// per-period KPI, spend or exposure in any currency. Larger values are typos or unit slips, and
/// near `f64::MAX` they overflow the model's sums to infinity.
pub const MAX_MAGNITUDE: f64 = 9_007_199_254_740_992.0;

impl Dataset {
    /// Reads `spec.data.path` and validates it against the spec (see the module docs for every check).
    ///
    /// ```no_run
    /// let spec = mmloop_mmm::config::load_config("data/demo_national.toml")?;
    /// let data = mmloop_mmm::Dataset::load(&spec)?;
    /// assert_eq!(data.geos, ["national"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load(spec: &ModelSpec) -> Result<Dataset> {
        let table = Table::read(&spec.data.path)?;
        Loader { spec, t: &table, path: table.path().to_path_buf() }.load()
    }
}

/// The fewest fitted periods (after the holdout) a spec needs, and why. Two rules, both per geo:
/// 1. **Lags**: `2·(L + 1)` for the longest adstock window `L = max_lag` — at least as many periods
///    that see a full carry-over window as periods that warm it up.
/// 2. **Coefficients**: one more than the number of coefficients that vary over time — the intercept,
///    the trend (1, or 1 + changepoints), `2·order` per Fourier seasonality, one per control and one per
///    channel — so the regression is not saturated by its own terms.
pub fn min_periods(spec: &ModelSpec) -> Vec<(String, usize, String)> {
    let mut rules = Vec::new();
    if let Some((name, lag)) =
        spec.channels.iter().map(|c| (&c.name, c.adstock.max_lag())).rev().max_by_key(|(_, l)| *l)
    {
        rules.push((
            format!("[[channel]] {name:?} adstock.max_lag = {lag}"),
            lag.saturating_add(1).saturating_mul(2),
            format!(
                "an adstock window of {} periods needs at least twice that many fitted periods",
                lag.saturating_add(1)
            ),
        ));
    }
    let trend = match spec.baseline.trend {
        Trend::None => 0,
        Trend::Linear { .. } => 1,
        Trend::Piecewise { changepoints, .. } => changepoints.saturating_add(1),
    };
    // saturating: a config may give counts up to usize::MAX, and the rule must still say "too many"
    let fourier: usize = spec.baseline.seasonality.iter().fold(0, |a, f| a.saturating_add(f.order.saturating_mul(2)));
    let coefs =
        [trend, fourier, spec.controls.len(), spec.channels.len()].iter().fold(1usize, |a, b| a.saturating_add(*b));
    rules.push((
        "[baseline] seasonality / trend, [[control]], [[channel]]".to_string(),
        coefs.saturating_add(1),
        format!(
            "the model has {coefs} coefficients that vary over time (intercept 1, trend {trend}, Fourier terms {fourier}, \
             controls {}, channels {}) and needs more periods than that",
            spec.controls.len(),
            spec.channels.len()
        ),
    ));
    rules
}

struct Loader<'a> {
    spec: &'a ModelSpec,
    t: &'a Table,
    path: PathBuf,
}

/// Where a numeric column is used, for messages and remedies.
enum Role<'a> {
    Kpi,
    Spend(&'a str),
    Exposure(&'a str),
    Control,
    Population,
    RevenuePerKpi,
}

impl Loader<'_> {
    fn column_err(&self, option: String, e: DataError) -> MmmDataError {
        match e {
            DataError::MissingColumn { .. } | DataError::BadType { .. } => MmmDataError::Column { option, source: e },
            other => MmmDataError::Table(other),
        }
    }

    fn cell(&self, column: &str, row: usize, problem: String, remedy: &str) -> MmmDataError {
        MmmDataError::Cell {
            path: self.path.clone(),
            column: column.to_string(),
            row: row + 1,
            problem,
            remedy: remedy.to_string(),
        }
    }

    /// A numeric column: every cell a finite number, with sign rules by role.
    fn numeric(&self, column: &str, option: String, role: Role) -> Result<Vec<f64>> {
        let raw = self.t.f64_column_opt(column).map_err(|e| self.column_err(option, e))?;
        let fill = match role {
            Role::Kpi => "Fill in the KPI for that period (the model cannot fit a period without it)",
            Role::Spend(_) => "Fill in the amount spent (0 if nothing was spent)",
            Role::Exposure(_) => "Fill in the exposure (0 if the channel did not run)",
            Role::Control => "Fill in the control's value (e.g. 0 for an event that did not happen)",
            Role::Population => "Fill in the geo's population (the same in every row of the geo)",
            Role::RevenuePerKpi => "Fill in the revenue per KPI unit for that period",
        };
        let mut out = Vec::with_capacity(raw.len());
        for (i, v) in raw.into_iter().enumerate() {
            let x = match v {
                None => return Err(self.cell(column, i, "the cell is empty".into(), fill)),
                Some(x) if x.is_nan() => return Err(self.cell(column, i, "the cell is NaN".into(), fill)),
                Some(x) if !x.is_finite() => {
                    return Err(self.cell(column, i, format!("the value {x} is not finite"), fill));
                }
                Some(x) if x.abs() > MAX_MAGNITUDE => {
                    return Err(self.cell(
                        column,
                        i,
                        format!(
                            "the value {x:e} is beyond ±2^53 ≈ 9.0e15, larger than any real KPI, spend, exposure \
                             or control of one period, and past the range where whole numbers are exact in sums"
                        ),
                        "Check the cell for a typo, or rescale the whole column (e.g. to thousands)",
                    ));
                }
                Some(x) => x,
            };
            match role {
                Role::Spend(ch) if x < 0.0 => {
                    return Err(self.cell(
                        column,
                        i,
                        format!("spend of channel {ch:?} is negative ({x})"),
                        "Spend must be 0 or more: fix the cell (net refunds into the periods they belong to)",
                    ));
                }
                Role::Exposure(ch) if x < 0.0 => {
                    return Err(self.cell(
                        column,
                        i,
                        format!("exposure of channel {ch:?} is negative ({x})"),
                        "Impressions, clicks and other exposures must be 0 or more: fix the cell",
                    ));
                }
                Role::Population if x <= 0.0 => {
                    return Err(self.cell(
                        column,
                        i,
                        format!("population is {x}"),
                        "Population must be positive: fix the cell or drop the geo",
                    ));
                }
                Role::RevenuePerKpi if x < 0.0 => {
                    return Err(self.cell(
                        column,
                        i,
                        format!("revenue per KPI unit is negative ({x})"),
                        "Revenue per KPI unit must be 0 or more: fix the cell",
                    ));
                }
                _ => {}
            }
            out.push(x);
        }
        Ok(out)
    }

    /// A control column: numeric, or the 0/1 indicator `column=value` of a text column.
    fn control(&self, spec_column: &str, i: usize) -> Result<Vec<f64>> {
        let option = format!("[[control]] #{} column", i + 1);
        if self.t.has_column(spec_column) {
            return self.numeric(spec_column, option, Role::Control);
        }
        let (column, value) = split_indicator(spec_column);
        let Some(value) = value else { return self.numeric(spec_column, option, Role::Control) };
        let text = self.t.str_column(column).map_err(|e| self.column_err(option.clone(), e))?;
        if !text.iter().any(|s| s == value) {
            let mut levels: Vec<String> = Vec::new();
            for s in &text {
                if !levels.contains(s) {
                    levels.push(s.clone());
                }
            }
            let hint = closest(value, &levels).map(|c| format!(" (did you mean {c:?}?)")).unwrap_or_default();
            levels.truncate(20);
            return Err(MmmDataError::Mismatch {
                path: self.path.clone(),
                option: format!("[[control]] #{} equals", i + 1),
                problem: format!(
                    "column {column:?} never holds the value {value:?}{hint}; its values include {levels:?}"
                ),
                remedy: "Set `equals` to one of the column's values".into(),
            });
        }
        Ok(text.iter().map(|s| if s == value { 1.0 } else { 0.0 }).collect())
    }

    fn load(self) -> Result<Dataset> {
        let spec = self.spec;
        let d = &spec.data;
        let n = self.t.n_rows();

        // Columns used twice in incompatible roles are almost always config slips. Several channels
        // may share a spend column, and several indicators may read one text column.
        #[derive(PartialEq)]
        enum Use {
            Other,
            Spend,
            Indicator,
        }
        let mut roles: Vec<(&str, String, Use)> = vec![(d.time_column.as_str(), "[data] time".into(), Use::Other)];
        roles.push((d.kpi_column.as_str(), "[data] kpi".into(), Use::Other));
        if let Some(g) = &d.geo_column {
            roles.push((g.as_str(), "[data] geo".into(), Use::Other));
        }
        for c in &spec.channels {
            roles.push((c.spend_column.as_str(), format!("[[channel]] {:?} spend", c.name), Use::Spend));
            if let Some(e) = &c.exposure_column {
                roles.push((e.as_str(), format!("[[channel]] {:?} exposure", c.name), Use::Other));
            }
        }
        for c in &spec.controls {
            let (col, value) =
                if self.t.has_column(&c.column) { (c.column.as_str(), None) } else { split_indicator(&c.column) };
            let kind = if value.is_some() { Use::Indicator } else { Use::Other };
            roles.push((col, format!("[[control]] {:?}", c.column), kind));
        }
        for (i, (col, a, ua)) in roles.iter().enumerate() {
            if let Some((_, b, _)) = roles[..i].iter().find(|(c, _, ub)| c == col && (ub != ua || *ua == Use::Other)) {
                return Err(MmmDataError::Mismatch {
                    path: self.path.clone(),
                    option: a.clone(),
                    problem: format!("column {col:?} is also used as {b}"),
                    remedy: "Give each role its own column".into(),
                });
            }
        }

        // Time and geo of every row.
        let time = self.t.time_column(&d.time_column).map_err(|e| self.column_err("[data] time".into(), e))?;
        let geo_labels: Vec<String> = match &d.geo_column {
            Some(g) => self.t.str_column(g).map_err(|e| self.column_err("[data] geo".into(), e))?,
            None => vec!["national".to_string(); n],
        };

        // Geos in first-appearance order; the sorted union of periods.
        let mut geos: Vec<String> = Vec::new();
        let mut geo_index: HashMap<&str, usize> = HashMap::new();
        let row_geo: Vec<usize> = geo_labels
            .iter()
            .map(|g| {
                *geo_index.entry(g.as_str()).or_insert_with(|| {
                    geos.push(g.clone());
                    geos.len() - 1
                })
            })
            .collect();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| time.values[a].total_cmp(&time.values[b]).then(a.cmp(&b)));
        let mut times: Vec<f64> = Vec::new();
        let mut time_labels: Vec<String> = Vec::new();
        let mut time_first_row: Vec<usize> = Vec::new();
        let mut row_time = vec![0usize; n];
        for &r in &order {
            if times.last() != Some(&time.values[r]) {
                times.push(time.values[r]);
                time_labels.push(time.labels[r].clone());
                time_first_row.push(r);
            }
            row_time[r] = times.len() - 1;
        }
        let (n_geo, n_time) = (geos.len(), times.len());

        // More (geo, period) cells than rows: some geo lacks periods. Said before the cell grid is
        // allocated, which for a geo column that is really a row id would be rows² cells.
        if n_geo.checked_mul(n_time).is_none_or(|cells| cells > n) {
            let mut per_geo: Vec<Vec<usize>> = vec![Vec::new(); n_geo];
            for r in 0..n {
                per_geo[row_geo[r]].push(row_time[r]);
            }
            let (g, have) = per_geo
                .iter_mut()
                .enumerate()
                .map(|(g, ts)| {
                    ts.sort_unstable();
                    ts.dedup();
                    (g, ts)
                })
                .min_by_key(|(_, ts)| ts.len())
                .expect("at least one geo");
            let first = (0..n_time).find(|t| have.binary_search(t).is_err()).unwrap_or(0);
            return Err(MmmDataError::MissingPeriods {
                path: self.path.clone(),
                column: d.geo_column.clone().unwrap_or_default(),
                geo: geos[g].clone(),
                count: n_time - have.len(),
                total: n_time,
                first: time_labels[first].clone(),
            });
        }

        // Duplicates: one row per (period, geo).
        let mut cell_row = vec![usize::MAX; n_geo * n_time];
        for r in 0..n {
            let slot = row_geo[r] * n_time + row_time[r];
            if cell_row[slot] != usize::MAX {
                let first = cell_row[slot];
                let (what, columns, remedy) = match &d.geo_column {
                    Some(g) => (
                        format!("{} {:?} and geo {:?}", d.time_column, time.labels[r], geo_labels[r]),
                        format!("columns {:?}, {g:?}", d.time_column),
                        "Each (period, geo) may appear once: remove or merge the duplicate row".to_string(),
                    ),
                    None => (
                        format!("{} {:?}", d.time_column, time.labels[r]),
                        format!("column {:?}", d.time_column),
                        "National data has one row per period: remove or merge the duplicate row, or, if the \
                         file holds several geos, set [data] geo to the geo column"
                            .to_string(),
                    ),
                };
                return Err(MmmDataError::DuplicateRow {
                    path: self.path.clone(),
                    first: first + 1,
                    second: r + 1,
                    what,
                    columns,
                    remedy,
                });
            }
            cell_row[slot] = r;
        }

        // A regular time grid.
        let step = self.check_spacing(&time, &times, &time_labels, &time_first_row)?;

        // Every geo has every period.
        for (g, geo) in geos.iter().enumerate() {
            let missing: Vec<usize> = (0..n_time).filter(|&t| cell_row[g * n_time + t] == usize::MAX).collect();
            if let Some(&first) = missing.first() {
                return Err(MmmDataError::MissingPeriods {
                    path: self.path.clone(),
                    column: d.geo_column.clone().unwrap_or_default(),
                    geo: geo.clone(),
                    count: missing.len(),
                    total: n_time,
                    first: time_labels[first].clone(),
                });
            }
        }
        let rows = |g: usize, t: usize| cell_row[g * n_time + t];

        // Values.
        let to2 = |v: &[f64]| Array2::from_shape_fn((n_geo, n_time), |(g, t)| v[rows(g, t)]);
        let kpi = to2(&self.numeric(&d.kpi_column, "[data] kpi".into(), Role::Kpi)?);
        let n_ch = spec.channels.len();
        let mut spend = Array3::zeros((n_geo, n_time, n_ch));
        let mut media = Array3::zeros((n_geo, n_time, n_ch));
        for (c, ch) in spec.channels.iter().enumerate() {
            let s =
                self.numeric(&ch.spend_column, format!("[[channel]] {:?} spend", ch.name), Role::Spend(&ch.name))?;
            let m = match &ch.exposure_column {
                Some(e) => self.numeric(e, format!("[[channel]] {:?} exposure", ch.name), Role::Exposure(&ch.name))?,
                None => s.clone(),
            };
            for g in 0..n_geo {
                for t in 0..n_time {
                    spend[[g, t, c]] = s[rows(g, t)];
                    media[[g, t, c]] = m[rows(g, t)];
                }
            }
        }
        let mut control_values = Array3::zeros((n_geo, n_time, spec.controls.len()));
        for (k, c) in spec.controls.iter().enumerate() {
            let v = self.control(&c.column, k)?;
            for g in 0..n_geo {
                for t in 0..n_time {
                    control_values[[g, t, k]] = v[rows(g, t)];
                }
            }
        }
        let population = match &d.population_column {
            None => None,
            Some(col) => {
                let v = self.numeric(col, "[data] population".into(), Role::Population)?;
                let mut pop = Array1::zeros(n_geo);
                for g in 0..n_geo {
                    let r0 = rows(g, 0);
                    pop[g] = v[r0];
                    if let Some(t) = (1..n_time).find(|&t| v[rows(g, t)] != v[r0]) {
                        let r = rows(g, t);
                        return Err(self.cell(
                            col,
                            r,
                            format!("population of geo {:?} is {} here but {} at row {}", geos[g], v[r], v[r0], r0 + 1),
                            "Population must be the same in every row of a geo: use one value per geo",
                        ));
                    }
                }
                Some(pop)
            }
        };
        let revenue_per_kpi = match &d.revenue_per_kpi_column {
            None => None,
            Some(col) => Some(to2(&self.numeric(col, "[data] revenue_per_kpi".into(), Role::RevenuePerKpi)?)),
        };

        // Enough periods to fit, and a KPI the model can scale and explain.
        let n_fit = self.check_periods(n_time)?;
        self.check_kpi(&kpi, n_fit, &geos, population.is_some(), &rows)?;
        self.check_channels(&spend, &media, n_fit)?;
        self.check_controls(&control_values, n_fit)?;
        self.check_seasonality(&time, step)?;
        let times = TimeColumn { kind: time.kind, values: times, labels: time_labels };
        self.check_calibration(&times, &geos)?;

        Ok(Dataset {
            source: self.path.clone(),
            geos,
            times,
            channels: spec.channels.iter().map(|c| c.name.clone()).collect(),
            controls: spec.controls.iter().map(|c| c.column.clone()).collect(),
            kpi,
            spend,
            media,
            control_values,
            population,
            revenue_per_kpi,
        })
    }

    /// Checks the sorted distinct periods are evenly spaced; returns the step (days for dates,
    /// 30.44 for months, 91.31 for quarters; units of the column for numbers).
    fn check_spacing(&self, time: &TimeColumn, times: &[f64], labels: &[String], first_row: &[usize]) -> Result<f64> {
        if times.len() < 2 {
            return Ok(1.0);
        }
        let diffs: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        let unit = |v: f64| match time.kind {
            TimeKind::Date if v == 1.0 => "1 day".to_string(),
            TimeKind::Date => format!("{v} days"),
            TimeKind::Numeric => format!("{v}"),
        };
        let gap = |i: usize, expected: String| MmmDataError::Gap {
            path: self.path.clone(),
            column: self.spec.data.time_column.clone(),
            before: labels[i].clone(),
            before_row: first_row[i] + 1,
            after: labels[i + 1].clone(),
            after_row: first_row[i + 1] + 1,
            step: unit(diffs[i]),
            expected,
        };
        if time.kind == TimeKind::Date {
            // calendar months and quarters have uneven day counts: a grid of them if most steps are
            for (lo, hi, name, step) in
                [(28.0, 31.0, "1 month", 365.25 / 12.0), (89.0, 92.0, "1 quarter", 365.25 / 4.0)]
            {
                let inside = |d: f64| (lo..=hi).contains(&d);
                if 2 * diffs.iter().filter(|&&d| inside(d)).count() > diffs.len() {
                    return match diffs.iter().position(|&d| !inside(d)) {
                        Some(i) => Err(gap(i, format!("{name} ({lo}-{hi} days)"))),
                        None => Ok(step),
                    };
                }
            }
        }
        // the commonest step (ties: the smaller); every step must equal it
        let mut sorted = diffs.clone();
        sorted.sort_by(f64::total_cmp);
        let (mut step, mut best, mut run) = (sorted[0], 0, 0);
        for (i, &d) in sorted.iter().enumerate() {
            run = if i > 0 && d == sorted[i - 1] { run + 1 } else { 1 };
            if run > best {
                (step, best) = (d, run);
            }
        }
        let tol = 1e-9 * step.abs().max(1.0);
        if let Some(i) = diffs.iter().position(|&d| (d - step).abs() > tol) {
            return Err(gap(i, unit(step)));
        }
        Ok(step)
    }

    /// The KPI over the fitted periods must vary, and its mean must be positive: the model divides
    /// the KPI by its mean (per geo, unless a population column sets the geos' sizes), so a zero or
    /// negative mean has no scale, and a KPI that never changes leaves nothing for media or baseline
    /// to explain (the noise scale's posterior collapses to 0).
    fn check_kpi(
        &self,
        kpi: &Array2<f64>,
        n_fit: usize,
        geos: &[String],
        has_population: bool,
        rows: &dyn Fn(usize, usize) -> usize,
    ) -> Result<()> {
        let column = &self.spec.data.kpi_column;
        let err = |problem: String, remedy: &str| MmmDataError::Kpi {
            path: self.path.clone(),
            column: column.clone(),
            problem,
            remedy: remedy.to_string(),
        };
        let national = self.spec.data.geo_column.is_none();
        let mean = |g: usize| (0..n_fit).map(|t| kpi[[g, t]]).sum::<f64>() / n_fit as f64;
        if has_population {
            let all = (0..geos.len()).map(mean).sum::<f64>() / geos.len() as f64;
            if all <= 0.0 {
                return Err(err(
                    format!("the KPI's mean over the fitted periods is {all}, not positive"),
                    "The model scales the KPI by its mean: check that [data] kpi names the KPI column \
                     (sales, conversions, revenue: amounts of 0 or more)",
                ));
            }
        } else if let Some(g) = (0..geos.len()).find(|&g| mean(g) <= 0.0) {
            let whose = if national { String::new() } else { format!(" of geo {:?}", geos[g]) };
            return Err(err(
                format!("the KPI's mean over the fitted periods{whose} is {}, not positive", mean(g)),
                if national {
                    "The model scales the KPI by its mean: check that [data] kpi names the KPI column \
                     (sales, conversions, revenue: amounts of 0 or more)"
                } else {
                    "The model scales each geo's KPI by its mean: fix the geo's rows, drop the geo, or give \
                     [data] population so geos are scaled by population"
                },
            ));
        }
        let constant = (0..geos.len()).all(|g| (1..n_fit).all(|t| kpi[[g, t]] == kpi[[g, 0]]));
        if constant {
            let (r0, r1) = (rows(0, 0), rows(0, n_fit - 1));
            let problem = if geos.len() == 1 {
                format!(
                    "the KPI is {} in every fitted period (rows {} to {})",
                    kpi[[0, 0]],
                    r0.min(r1) + 1,
                    r0.max(r1) + 1
                )
            } else {
                "the KPI is constant over the fitted periods within every geo".to_string()
            };
            return Err(err(
                format!("{problem}: there is no variation for media or baseline to explain"),
                "Check that [data] kpi names the KPI column and that the file holds the periods you meant",
            ));
        }
        Ok(())
    }

    /// A control with one value in every fitted cell cannot be told from the intercept: its
    /// coefficient would be fitted from the prior alone (and a zero column scales to 0/0).
    fn check_controls(&self, values: &Array3<f64>, n_fit: usize) -> Result<()> {
        for (k, c) in self.spec.controls.iter().enumerate() {
            let cells = values.slice(ndarray::s![.., ..n_fit, k]);
            let first = cells[[0, 0]];
            if cells.iter().all(|&v| v == first) {
                let (column, value) = split_indicator(&c.column);
                let problem = match value {
                    Some(v) if first == 0.0 => format!("column {column:?} never equals {v:?} in the fitted periods"),
                    Some(v) => format!("column {column:?} equals {v:?} in every fitted period"),
                    None => format!("column {column:?} is {first} in every fitted period"),
                };
                return Err(MmmDataError::Mismatch {
                    path: self.path.clone(),
                    option: format!("[[control]] #{} column = {:?}", k + 1, c.column),
                    problem: format!("{problem}, so its effect cannot be told from the intercept"),
                    remedy: "Remove the [[control]] table, or check that it names the right column".into(),
                });
            }
        }
        Ok(())
    }

    /// Applies the holdout and [`min_periods`]; returns the number of fitted periods.
    fn check_periods(&self, n_time: usize) -> Result<usize> {
        let spec = self.spec;
        let h = spec.holdout;
        if h >= n_time {
            return Err(MmmDataError::TooFewPeriods {
                path: self.path.clone(),
                option: "[fit] holdout".into(),
                problem: format!("holdout {h} leaves none of the {n_time} periods to fit"),
                remedy: "Lower the holdout (a common choice is 10-20% of the periods)".into(),
            });
        }
        let n_fit = n_time - h;
        for (option, need, why) in min_periods(spec) {
            if n_fit < need {
                let held = if h > 0 { format!(" ({n_time} periods minus a holdout of {h})") } else { String::new() };
                return Err(MmmDataError::TooFewPeriods {
                    path: self.path.clone(),
                    option,
                    problem: format!("the data have {n_fit} fitted periods{held} but {why}: at least {need}"),
                    remedy: "Use more data, lower the holdout, shorten max_lag, or lower the seasonality order \
                             (or set seasonality = [])"
                        .into(),
                });
            }
        }
        Ok(n_fit)
    }

    /// A channel needs non-zero media in the fitted periods, and spend too if its effect is given by ROI.
    fn check_channels(&self, spend: &Array3<f64>, media: &Array3<f64>, n_fit: usize) -> Result<()> {
        let spec = self.spec;
        let fit_window = |a: &Array3<f64>, c: usize| a.slice(ndarray::s![.., ..n_fit, c]).iter().all(|&x| x == 0.0);
        let everywhere = |a: &Array3<f64>, c: usize| a.slice(ndarray::s![.., .., c]).iter().all(|&x| x == 0.0);
        for (c, ch) in spec.channels.iter().enumerate() {
            let media_col = ch.exposure_column.as_deref().unwrap_or(&ch.spend_column);
            let err = |column: &str, problem: String, remedy: &str| MmmDataError::Channel {
                path: self.path.clone(),
                channel: ch.name.clone(),
                column: column.to_string(),
                problem,
                remedy: remedy.to_string(),
            };
            if everywhere(media, c) {
                return Err(err(
                    media_col,
                    "is zero in every row".into(),
                    "A channel that never ran has no effect to estimate: remove its [[channel]] table",
                ));
            }
            if fit_window(media, c) {
                return Err(err(
                    media_col,
                    format!("is zero in every fitted period (it is non-zero only in the holdout of {})", spec.holdout),
                    "Lower [fit] holdout so the channel's activity is fitted, or remove the channel",
                ));
            }
            let roi = matches!(ch.effect, EffectPrior::Roi(_))
                || spec.calibration.roi_priors.iter().any(|r| r.channel == ch.name);
            if roi && fit_window(spend, c) {
                return Err(err(
                    &ch.spend_column,
                    "(spend) is zero in every fitted period, so an ROI prior cannot set its effect".into(),
                    "Give the channel a coefficient prior instead (coefficient = {...}), or remove the ROI calibration",
                ));
            }
        }
        Ok(())
    }

    /// The default yearly seasonality (52.18 periods) assumes weekly data.
    fn check_seasonality(&self, time: &TimeColumn, step: f64) -> Result<()> {
        if time.kind != TimeKind::Date || (step - 7.0).abs() < 1e-9 {
            return Ok(());
        }
        if let Some(i) = self.spec.baseline.seasonality.iter().position(|f| f.period == YEARLY_PERIOD_WEEKS) {
            let yearly = 365.25 / step;
            return Err(MmmDataError::Mismatch {
                path: self.path.clone(),
                option: format!("[baseline] seasonality #{} period = {YEARLY_PERIOD_WEEKS}", i + 1),
                problem: format!(
                    "{YEARLY_PERIOD_WEEKS} is a year in weeks, but the dates in column {:?} are {step:.2} days apart",
                    self.spec.data.time_column
                ),
                remedy: format!(
                    "For yearly seasonality set [baseline] seasonality = [{{ period = {yearly:.2}, order = 2 }}], or \
                     seasonality = [] for none"
                ),
            });
        }
        Ok(())
    }

    /// Lift-test windows and geos must be in the data. (For a national model the records' geos are
    /// informational: the test is modelled on the national series.)
    fn check_calibration(&self, times: &TimeColumn, geos: &[String]) -> Result<()> {
        let (first, last) = (times.values[0], times.values[times.values.len() - 1]);
        let range = format!("{} to {}", times.labels[0], times.labels[times.labels.len() - 1]);
        for (i, r) in self.spec.calibration.lift_tests.iter().enumerate() {
            let option = format!(
                "[calibration] lift test #{} (channels {:?}{})",
                i + 1,
                r.channels,
                if r.source.is_empty() { String::new() } else { format!(", source {:?}", r.source) }
            );
            let mismatch = |problem: String, remedy: &str| MmmDataError::Mismatch {
                path: self.path.clone(),
                option: option.clone(),
                problem,
                remedy: remedy.to_string(),
            };
            let point = |what: &str, s: &str| -> Result<f64> {
                let v = times.parse_point(s).map_err(|m| {
                    mismatch(format!("{what}: {m}"), "Write times in the same notation as the data's time column")
                })?;
                if v < first || v > last {
                    return Err(mismatch(
                        format!("{what} {s} is outside the data ({range})"),
                        "Use a test window within the data's periods",
                    ));
                }
                Ok(v)
            };
            let (start, end) = (point("start", &r.start)?, point("end", &r.end)?);
            if start > end {
                return Err(mismatch(format!("start {} is after end {}", r.start, r.end), "Swap start and end"));
            }
            let geo_data = self.spec.data.geo_column.is_some();
            let check_geo = |g: &str| -> Result<()> {
                if geo_data && !geos.iter().any(|x| x == g) {
                    let hint = closest(g, geos).map(|c| format!(" (did you mean {c:?}?)")).unwrap_or_default();
                    return Err(mismatch(
                        format!("geo {g:?} is not in the data{hint}"),
                        "Use the geo names of the data's geo column",
                    ));
                }
                Ok(())
            };
            for g in &r.geos {
                check_geo(g)?;
            }
            for p in r.spend_path.iter().flatten() {
                let t = point("spend_path time", &p.time)?;
                if t < start || t > end {
                    return Err(mismatch(
                        format!("spend_path time {} is outside the test window {}..{}", p.time, r.start, r.end),
                        "Every spend_path entry must fall in the test window",
                    ));
                }
                if !p.geo.is_empty() {
                    check_geo(&p.geo)?;
                }
            }
        }
        Ok(())
    }
}
