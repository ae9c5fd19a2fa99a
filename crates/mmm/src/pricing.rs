//! Hypothetical-test pricing: the lift a fitted model implies, per posterior draw, for a test that
//! has not been run (or has, for its out-of-sample check): channel(s), treated geos, a window on
//! the model's time axis — past, or future beyond the data — and a spend change.
//!
//! ## The formula
//! It is the lift-test likelihood's own (see [`crate::calibration`]; the same code builds the
//! media segments and sums the lift):
//! ```text
//! lift_d = Σ_{c∈C} Σ_{g∈G} Σ_{t=t₀}^{t_end} κ_g·β_d(g,c)·[f_c,d(x̃ᶜᶠ)(g,t) − f_c,d(x̃)(g,t)]
//! ```
//! f_c,d runs draw d's adstock and saturation over the factual media x̃ and the counterfactual x̃ᶜᶠ.
//!
//! - **Factual media.** Inside the data, the data's own (scaled) media. Beyond the last period,
//!   the *recent level*: the mean of the last H periods of the data (H = [`HypotheticalTest::recent_periods`],
//!   default [`DEFAULT_RECENT_PERIODS`]), per geo and channel — for the window itself, for the periods
//!   between the data's end and the window (so the adstock carries the recent level into it) and for
//!   the carry-over tail. Money is turned into media beyond the data by the recent window's
//!   media-per-money ratio of the cell (the channel's overall ratio where the cell did not spend).
//! - **Spend change.** [`SpendChange::Total`] / [`SpendChange::PerPeriod`]: money spread evenly over
//!   the treated geos and the window's periods (the calibration record's rule), shared among a
//!   channel set in proportion to the channels' spend in the window (equally if none), turned into
//!   media by each cell's media-per-money ratio. [`SpendChange::Multiplier`] m: the counterfactual
//!   media is m times the factual one in every treated cell of the window (m = 0 is go-dark, m = 1.5 a
//!   50 % heavy-up). A counterfactual below zero is clipped at zero.
//! - **Carry-over tail.** [`Tail::Full`] (default): the sum runs to t_end = t₁ + L_c, the channel's
//!   max lag after the window's last period, so the whole effect of the change is counted (adstock
//!   weights vanish beyond L_c, so the sum is complete); where that tail passes the data's end, the
//!   factual media there is the recent level. [`Tail::DataEnd`]: the tail stops at the data's last
//!   period (the calibration term's rule under `[calibration] lift_counts_carryover = true`). [`Tail::WindowOnly`]: only the window's periods (what a readout that stops with the
//!   test measures). Adstock is causal, so cutting the sum never changes the periods counted.
//! - **Geos.** An empty list, or a national model, means every geo (in a national model the test
//!   acts on the national series, as for calibration records).
//!
//! ```no_run
//! use mmloop_mmm::pricing::{HypotheticalTest, SpendChange, price_test};
//! # fn f(fit: &mmloop_mmm::optimize::FittedModel) -> Result<(), mmloop_mmm::pricing::PricingError> {
//! // go dark on search in two geos for four weeks, starting two weeks after the data end
//! let n = fit.model.n_times;
//! let test = HypotheticalTest::new(&["search"], &["atlanta", "boston"], n + 2, n + 6, SpendChange::Multiplier(0.0));
//! let lift = price_test(fit, &test)?;
//! println!("{:.0} ± {:.0} KPI", lift.mean, lift.sd);
//! # Ok(()) }
//! ```

use crate::analysis::Stat;
use crate::calibration::{LiftPart, LiftTerm, implied_lift, lift_part, overall_media_per_money};
use crate::dataset::Dataset;
use crate::fit::FitResult;
use crate::optimize::FittedModel;
use crate::spec::ModelSpec;
use rayon::prelude::*;

/// Default H: the recent level beyond the data is the mean of the last 13 periods (a quarter of
/// weekly data).
pub const DEFAULT_RECENT_PERIODS: usize = 13;

/// How the spend changes during the test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SpendChange {
    /// Money over the whole window, summed over the treated geos (negative: spend less).
    Total(f64),
    /// Money per period of the window, summed over the treated geos.
    PerPeriod(f64),
    /// Counterfactual media = factor × factual media in every treated cell (0: go-dark).
    Multiplier(f64),
}

/// How far after the window the lift is counted (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tail {
    /// Through the channel's max lag after the window, past the data's end if need be.
    #[default]
    Full,
    /// Through the max lag, but not past the data's last period (the calibration term's rule when
    /// it counts the carry-over).
    DataEnd,
    /// The window's periods only.
    WindowOnly,
}

/// A test to price.
#[derive(Debug, Clone, PartialEq)]
pub struct HypotheticalTest {
    /// The channel, or the set of channels whose spend changes together.
    pub channels: Vec<String>,
    /// Treated geos; empty: every geo (national).
    pub geos: Vec<String>,
    /// The window [start, end) as period indices on the model's time axis (0 = the data's first
    /// period; indices ≥ the number of periods lie beyond the data). See [`period_index`].
    pub start: usize,
    pub end: usize,
    pub change: SpendChange,
    /// H: periods at the end of the data whose mean is the spend level beyond it.
    pub recent_periods: usize,
    pub tail: Tail,
}

impl HypotheticalTest {
    /// A test with the default recent window ([`DEFAULT_RECENT_PERIODS`]) and the full tail.
    pub fn new(channels: &[&str], geos: &[&str], start: usize, end: usize, change: SpendChange) -> Self {
        Self {
            channels: channels.iter().map(|s| s.to_string()).collect(),
            geos: geos.iter().map(|s| s.to_string()).collect(),
            start,
            end,
            change,
            recent_periods: DEFAULT_RECENT_PERIODS,
            tail: Tail::Full,
        }
    }

    /// The test a calibration record describes (window and spend change as the record states
    /// them, the calibration term's tail rule), so a readout's prediction and its term agree.
    pub fn from_record(record: &mmloop_data::LiftTestRecord, data: &Dataset) -> Result<Self, PricingError> {
        if record.spend_path.is_some() {
            return Err(PricingError::Unsupported {
                what: "a record with a spend_path (price it with a flat SpendChange, or calibrate on it)".into(),
            });
        }
        let start = period_index(data, &record.start)?;
        let end = period_index(data, &record.end)? + 1;
        Ok(Self {
            channels: record.channels.clone(),
            geos: record.geos.clone(),
            start,
            end,
            change: SpendChange::Total(record.spend_change),
            recent_periods: DEFAULT_RECENT_PERIODS,
            tail: Tail::DataEnd,
        })
    }
}

/// The posterior of a test's implied lift, in KPI units.
#[derive(Debug, Clone, PartialEq)]
pub struct ImpliedLift {
    /// One value per posterior draw, in the fit's draw order.
    pub per_draw: Vec<f64>,
    pub mean: f64,
    pub sd: f64,
    pub q05: f64,
    pub q95: f64,
    /// The change in money the test makes (summed over channels, geos and periods; for a
    /// multiplier, (m − 1) × the factual spend of the treated cells), for iROAS = lift / this.
    pub spend_change: f64,
}

/// Why a test cannot be priced.
#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    #[error("channel {channel:?} is not in the model (channels: {available}); name one of them")]
    UnknownChannel { channel: String, available: String },
    #[error("the test names no channel; set `channels` to the channel(s) whose spend changes")]
    NoChannel,
    #[error("geo {geo:?} is not in the model (geos: {available}); name one of them or leave `geos` empty for all")]
    UnknownGeo { geo: String, available: String },
    #[error("geo {geo:?} is listed twice among the treated geos; list each once")]
    DuplicateGeo { geo: String },
    #[error("the window [{start}, {end}) is empty; `end` must be after `start` (periods are 0-based, end exclusive)")]
    EmptyWindow { start: usize, end: usize },
    #[error(
        "the window [{start}, {end}) lies too far beyond the data's {n_times} periods (at most {max} ahead); \
         price a nearer window"
    )]
    WindowTooFar { start: usize, end: usize, n_times: usize, max: usize },
    #[error("recent_periods = {got}: the recent spend level needs between 1 and the data's {n_times} periods")]
    RecentPeriods { got: usize, n_times: usize },
    #[error("spend change {option} = {value} is not valid: {what}")]
    BadChange { option: &'static str, value: f64, what: &'static str },
    #[error(
        "channel {channel:?} has no spend in the data, so a change in money cannot be turned into media; use a Multiplier"
    )]
    NoSpend { channel: String },
    #[error("time {label:?}: {message}")]
    Time { label: String, message: String },
    #[error("the fit has no posterior draws to price with")]
    NoDraws,
    #[error("cannot price {what}")]
    Unsupported { what: String },
    #[error("the readout cannot be priced on this model: {0}")]
    Record(String),
    #[error(
        "the fit's draw {draw} has {got} coordinates, the model {expected}; the FitResult does not belong to this model"
    )]
    FitMismatch { draw: usize, got: usize, expected: usize },
}

/// How far beyond the data a window may start or end: pricing at the recent level says nothing
/// reliable about the far future, and the cap keeps a typo from allocating huge series.
pub const MAX_PERIODS_AHEAD: usize = 520;

/// The period index of a time label: its position in the data, or, beyond the last period, the
/// count of steps of the data's regular spacing (e.g. 7 days) past it.
pub fn period_index(data: &Dataset, label: &str) -> Result<usize, PricingError> {
    let terr = |m: String| PricingError::Time { label: label.to_string(), message: m };
    let v = data.times.parse_point(label).map_err(terr)?;
    let vals = &data.times.values;
    if let Some(i) = vals.iter().position(|t| (t - v).abs() < 1e-9) {
        return Ok(i);
    }
    let n = vals.len();
    let last = match vals.last() {
        Some(&l) => l,
        None => return Err(terr("the data has no periods".into())),
    };
    if n < 2 || v < last {
        return Err(terr(format!(
            "not one of the data's periods ({} to {})",
            data.times.format(vals[0]),
            data.times.format(last)
        )));
    }
    let step = vals[n - 1] - vals[n - 2];
    let k = (v - last) / step;
    if step <= 0.0 || (k - k.round()).abs() > 1e-9 || !k.is_finite() {
        return Err(terr(format!(
            "beyond the data's last period {} but not a whole number of its {} steps after it",
            data.times.format(last),
            step
        )));
    }
    Ok(n - 1 + k.round() as usize)
}

/// Resolves a test against the model and data: the lift term whose [`implied_lift`] is the test's
/// lift at one draw's parameters, and the test's change in money.
pub fn build_term(fit: &FittedModel, test: &HypotheticalTest) -> Result<(LiftTerm, f64), PricingError> {
    let (m, data) = (&fit.model, &fit.data);
    let (g_n, t_n) = (m.n_geos(), m.n_times);
    if test.channels.is_empty() {
        return Err(PricingError::NoChannel);
    }
    let names: Vec<String> = m.channels.iter().map(|c| c.name.clone()).collect();
    let chans: Vec<usize> = test
        .channels
        .iter()
        .map(|n| {
            names
                .iter()
                .position(|c| c == n)
                .ok_or_else(|| PricingError::UnknownChannel { channel: n.clone(), available: names.join(", ") })
        })
        .collect::<Result<_, _>>()?;
    let geos: Vec<usize> = if g_n == 1 || test.geos.is_empty() {
        (0..g_n).collect()
    } else {
        let mut v: Vec<usize> = test
            .geos
            .iter()
            .map(|n| {
                m.geos
                    .iter()
                    .position(|g| g == n)
                    .ok_or_else(|| PricingError::UnknownGeo { geo: n.clone(), available: m.geos.join(", ") })
            })
            .collect::<Result<_, _>>()?;
        // the model's geo order, as the calibration term sums them
        v.sort_unstable();
        if let Some(w) = v.windows(2).find(|w| w[0] == w[1]) {
            return Err(PricingError::DuplicateGeo { geo: m.geos[w[0]].clone() });
        }
        v
    };
    let (t0, t_end) = (test.start, test.end);
    if t_end <= t0 {
        return Err(PricingError::EmptyWindow { start: t0, end: t_end });
    }
    if t_end > t_n + MAX_PERIODS_AHEAD {
        return Err(PricingError::WindowTooFar { start: t0, end: t_end, n_times: t_n, max: MAX_PERIODS_AHEAD });
    }
    let h = test.recent_periods;
    if h == 0 || h > t_n {
        return Err(PricingError::RecentPeriods { got: h, n_times: t_n });
    }
    match test.change {
        SpendChange::Total(v) | SpendChange::PerPeriod(v) if !v.is_finite() => {
            return Err(PricingError::BadChange {
                option: "amount",
                value: v,
                what: "it must be a finite amount of money",
            });
        }
        SpendChange::Multiplier(v) if !(v.is_finite() && v >= 0.0) => {
            return Err(PricingError::BadChange {
                option: "multiplier",
                value: v,
                what: "it must be a finite factor ≥ 0 (0 = go dark)",
            });
        }
        _ => {}
    }
    let t1 = t_end - 1; // last period of the window
    let recent = t_n - h..t_n;
    // per (channel, geo): factual scaled media, spend and media-per-money at any period
    let x_at = |c: usize, g: usize, t: usize| -> f64 {
        let x = &m.channels[c].x[g * t_n..(g + 1) * t_n];
        if t < t_n { x[t] } else { x[recent.clone()].iter().sum::<f64>() / h as f64 }
    };
    let spend_at = |c: usize, g: usize, t: usize| -> f64 {
        if t < t_n {
            data.spend[[g, t, c]]
        } else {
            recent.clone().map(|r| data.spend[[g, r, c]]).sum::<f64>() / h as f64
        }
    };
    let (n_w, n_g) = (t_end - t0, geos.len());
    let per_cell = match test.change {
        SpendChange::Total(v) => v / (n_g * n_w) as f64,
        SpendChange::PerPeriod(v) => v / n_g as f64,
        SpendChange::Multiplier(_) => 0.0,
    };
    // shares of a channel set: spend in the window (recent level beyond the data)
    let tot: Vec<f64> = chans
        .iter()
        .map(|&c| geos.iter().map(|&g| (t0..t_end).map(|t| spend_at(c, g, t)).sum::<f64>()).sum())
        .collect();
    let all: f64 = tot.iter().sum();
    let end_of_sum = |c: usize| -> usize {
        let lag = m.channels[c].kernel.max_lag;
        match test.tail {
            Tail::Full => t1 + lag + 1,
            Tail::DataEnd => (t1 + lag + 1).min(t_n.max(t1 + 1)),
            Tail::WindowOnly => t1 + 1,
        }
    };
    let mut parts: Vec<LiftPart> = Vec::new();
    let mut money = 0.0;
    for (k, &c) in chans.iter().enumerate() {
        let ch = &m.channels[c];
        let seg_end = end_of_sum(c);
        match test.change {
            SpendChange::Multiplier(f) => {
                for &g in &geos {
                    money += (f - 1.0) * (t0..t_end).map(|t| spend_at(c, g, t)).sum::<f64>();
                    parts.push(lift_part(
                        m,
                        c,
                        g,
                        t0,
                        seg_end,
                        |t| x_at(c, g, t),
                        |t, x| {
                            if (t0..t_end).contains(&t) { f * x } else { x }
                        },
                    ));
                }
            }
            SpendChange::Total(_) | SpendChange::PerPeriod(_) => {
                if per_cell == 0.0 {
                    continue;
                }
                let share = if all > 0.0 { tot[k] / all } else { 1.0 / chans.len() as f64 };
                let overall = overall_media_per_money(data, c)
                    .ok_or_else(|| PricingError::NoSpend { channel: ch.name.clone() })?;
                for &g in &geos {
                    let scale = m.geo_size[g] * ch.media_scale;
                    // the recent window's media per money of the cell, beyond the data
                    let rs: f64 = recent.clone().map(|r| data.spend[[g, r, c]]).sum();
                    let rm: f64 = recent.clone().map(|r| data.media[[g, r, c]]).sum();
                    let recent_ratio = if rs > 0.0 { rm / rs } else { overall };
                    money += share * per_cell * n_w as f64;
                    parts.push(lift_part(
                        m,
                        c,
                        g,
                        t0,
                        seg_end,
                        |t| x_at(c, g, t),
                        |t, x| {
                            if !(t0..t_end).contains(&t) {
                                return x;
                            }
                            let ratio = if t >= t_n {
                                recent_ratio
                            } else {
                                let s = data.spend[[g, t, c]];
                                if s > 0.0 { data.media[[g, t, c]] / s } else { overall }
                            };
                            x + share * per_cell * ratio / scale
                        },
                    ));
                }
            }
        }
    }
    Ok((LiftTerm { index: 0, observed: f64::NAN, standard_error: f64::NAN, parts }, money))
}

/// Prices a hypothetical test on every posterior draw of a fit (in parallel; each draw's value
/// does not depend on the thread count).
pub fn price_test(fit: &FittedModel, test: &HypotheticalTest) -> Result<ImpliedLift, PricingError> {
    if fit.draws.is_empty() {
        return Err(PricingError::NoDraws);
    }
    let (term, spend_change) = build_term(fit, test)?;
    Ok(price_term(fit, &term, spend_change))
}

/// Prices a readout that was run — a calibration record whose window lies in the fit's data — on
/// every posterior draw, exactly as its lift-test term would enter a fit of this model: the term is
/// built by [`crate::calibration::build_lift_terms`] itself, under the fit's
/// `[calibration] tests_in_data` convention (by default the data hold the test, so the price is
/// the data against the data less the test's change), and a `spend_path` is honoured. This is the
/// model's out-of-sample prediction of the readout when the fit has not seen it.
///
/// A readout whose window ends after the fit's data (the fit is older than the test: the loop's
/// out-of-sample check) cannot be in the data, so it is priced as the hypothetical test it
/// describes ([`HypotheticalTest::from_record`]: the recent spend level plus the change), over
/// the periods its term would count: the window (`Tail::WindowOnly`), or with
/// `[calibration] lift_counts_carryover` the tail within the data (`Tail::DataEnd`). A
/// `spend_path` there is priced by its total, spread evenly over the window's treated cells.
pub fn price_record(fit: &FittedModel, record: &mmloop_data::LiftTestRecord) -> Result<ImpliedLift, PricingError> {
    if fit.draws.is_empty() {
        return Err(PricingError::NoDraws);
    }
    if period_index(&fit.data, &record.end)? >= fit.data.n_times() {
        // after the data the fit has no spend of the window to follow a `spend_path` with (a
        // go-dark's per-cell path): its total `spend_change` is priced spread evenly, as every
        // hypothetical test is
        let flat = mmloop_data::LiftTestRecord { spend_path: None, ..record.clone() };
        let mut test = HypotheticalTest::from_record(&flat, &fit.data)?;
        if !fit.spec.calibration.lift_counts_carryover {
            test.tail = Tail::WindowOnly;
        }
        return price_test(fit, &test);
    }
    let mut spec = fit.spec.clone();
    spec.calibration.lift_tests = vec![record.clone()];
    let term = crate::calibration::build_lift_terms(&fit.model, &spec, &fit.data)
        .map_err(|e| PricingError::Record(e.to_string()))?
        .pop()
        .ok_or_else(|| PricingError::Record("the record resolved to no lift term".into()))?;
    Ok(price_term(fit, &term, record.spend_change))
}

fn price_term(fit: &FittedModel, term: &LiftTerm, spend_change: f64) -> ImpliedLift {
    let per_draw: Vec<f64> = fit.draws.par_iter().map(|p| implied_lift(&fit.model, p, term)).collect();
    let s = Stat::of(&per_draw);
    ImpliedLift { per_draw, mean: s.mean, sd: s.sd, q05: s.q05, q95: s.q95, spend_change }
}

impl FittedModel {
    /// The plannable fit of an in-memory [`FitResult`]: the same model and constrained draws
    /// ([`crate::output::Draws::constrained`]) [`FittedModel::load`] rebuilds from the fit
    /// directory, without touching disk. `spec` and
    /// `data` must be those the fit was run on.
    pub fn from_fit(spec: &ModelSpec, data: &Dataset, result: &FitResult) -> Result<Self, PricingError> {
        let model = result.model.clone();
        let expected = model.params.len();
        if let Some((draw, x)) = result.draws.constrained.iter().enumerate().find(|(_, x)| x.len() != expected) {
            return Err(PricingError::FitMismatch { draw, got: x.len(), expected });
        }
        let draws = result.draws.constrained.iter().map(|x| model.unpack_values(x.clone())).collect();
        Ok(Self { spec: spec.clone(), data: data.clone(), model, draws })
    }
}
