//! Calibration terms: lift tests as likelihood terms (ROI priors are handled by the parameter
//! layout in [`crate::model`]: a readout becomes a moment-matched LogNormal on ROI_c).
//!
//! ## Lift-test likelihood
//! For a record with channels C, treated geos G, window [t₀, t₁] and spend change Δ:
//! ```text
//! implied = Σ_{c∈C} Σ_{g∈G} Σ_{t=t₀}^{t_end} κ_g·β(g,c)·[f_c(x_test)(g,t) − f_c(x_none)(g,t)]
//! observed ~ Normal(implied, standard_error)
//! ```
//! with the media path with the test, x_test, and without it, x_none, read off the data x̃ by
//! `[calibration] tests_in_data` ([`crate::spec::Calibration::tests_in_data`]):
//! - `true` (the default): the data are the spend that happened, the test included, so
//!   x_test = x̃ and x_none = x̃ − Δ̃. A go-dark test's cells are already dark in the data and the
//!   term restores their spend to price what the dark weeks cost; a heavy-up's extra spend is
//!   already there and is not added twice.
//! - `false`: the data are the spend without the test (a what-if on planned or simulated data),
//!   so x_none = x̃ and x_test = x̃ + Δ̃.
//!
//! f_c runs adstock and saturation over both media paths (the adstock sees the history before t₀),
//! so the implied lift is window-, adstock- and saturation-aware (PyMC-Marketing's
//! `add_lift_test_measurements` uses the saturation curve only). The sum covers what the readout
//! measured, by `[calibration] lift_counts_carryover`
//! ([`crate::spec::Calibration::lift_counts_carryover`]):
//! - `false` (the default): t_end = t₁, the record's window — a geo-lift readout sums treated minus
//!   control over the window only, so the carry-over inside the window counts and the tail after it
//!   does not ([`crate::pricing`] prices the same as `Tail::WindowOnly`);
//! - `true`: t_end = t₁ + L_c, through the end of the carry-over (L_c the channel's max lag),
//!   stopping at the data's last period (`Tail::DataEnd`).
//!
//! Δ is the record's `spend_path` or `spend_change` spread evenly over the
//! treated geos and periods; a channel set shares it in proportion to the channels' spend in the
//! window (equally if none). Spend is turned into the media driver's units with the cell's own
//! exposure/spend ratio (the channel's overall ratio where the cell has no spend), then scaled as the
//! media is. A path below zero (a go-dark test larger than the spend) is clipped at zero.
//! In a national model, geo lists are ignored: the test acts on the national series.

use crate::dataset::Dataset;
use crate::model::density::{ChannelBufs, channel_backward, channel_forward};
use crate::model::{MmmModel, ModelError, ParamValues};
use crate::spec::ModelSpec;
use crate::transforms::TransformOrder;
use crate::transforms::adstock::convolve;
use mmloop_inference::LogDensityError;

/// One lift test, resolved against the model's data.
#[derive(Debug, Clone, PartialEq)]
pub struct LiftTerm {
    /// Position of the record in the spec (1-based, for messages).
    pub index: usize,
    pub observed: f64,
    pub standard_error: f64,
    pub parts: Vec<LiftPart>,
}

/// The piece of a lift test in one (channel, geo): a segment of the factual and counterfactual
/// scaled media, starting `max_lag` periods before the window so the adstock sees its history.
#[derive(Debug, Clone, PartialEq)]
pub struct LiftPart {
    pub channel: usize,
    pub geo: usize,
    /// Absolute period of the segment's first entry.
    pub seg_start: usize,
    /// Offset in the segment of t₀ (lift is counted from here).
    pub count_from: usize,
    pub x_fact: Vec<f64>,
    pub x_cf: Vec<f64>,
}

fn find_time(data: &Dataset, s: &str) -> Result<usize, String> {
    let v = data.times.parse_point(s)?;
    data.times
        .values
        .iter()
        .position(|t| (t - v).abs() < 1e-9)
        .ok_or_else(|| format!("{s:?} is not one of the data's periods"))
}

/// Resolves the spec's lift-test records against the data.
pub fn build_lift_terms(model: &MmmModel, spec: &ModelSpec, data: &Dataset) -> Result<Vec<LiftTerm>, ModelError> {
    let g_n = data.n_geos();
    let t_n = data.n_times();
    let mut terms = Vec::new();
    for (i, rec) in spec.calibration.lift_tests.iter().enumerate() {
        let err = |m: String| ModelError::LiftTest {
            index: i + 1,
            start: rec.start.clone(),
            end: rec.end.clone(),
            message: m,
        };
        rec.validate().map_err(&err)?;
        if rec.channels.is_empty() {
            return Err(err("the record names no channel; set `channels` to the channel(s) the test moved".into()));
        }
        let mut chans = Vec::new();
        for name in &rec.channels {
            let c = model.channels.iter().position(|c| &c.name == name).ok_or_else(|| {
                let names: Vec<String> = model.channels.iter().map(|c| c.name.clone()).collect();
                err(format!("channel {name:?} is not in the model (channels: {})", names.join(", ")))
            })?;
            chans.push(c);
        }
        let t0 = find_time(data, &rec.start).map_err(&err)?;
        let t1 = find_time(data, &rec.end).map_err(&err)?;
        if t1 < t0 {
            return Err(err("end is before start".into()));
        }
        let geos: Vec<usize> = if g_n == 1 || rec.geos.is_empty() {
            (0..g_n).collect()
        } else {
            rec.geos
                .iter()
                .map(|name| {
                    data.geos
                        .iter()
                        .position(|g| g == name)
                        .ok_or_else(|| err(format!("geo {name:?} is not in the data")))
                })
                .collect::<Result<_, _>>()?
        };
        // Δspend per (g, t) summed over the record's channels
        let mut delta = vec![0.0; g_n * t_n];
        match &rec.spend_path {
            Some(path) => {
                for d in path {
                    let t = find_time(data, &d.time).map_err(|m| err(format!("spend_path: {m}")))?;
                    let g = if g_n == 1 {
                        0
                    } else {
                        data.geos
                            .iter()
                            .position(|g| g == &d.geo)
                            .ok_or_else(|| err(format!("spend_path: geo {:?} is not in the data", d.geo)))?
                    };
                    delta[g * t_n + t] += d.delta;
                }
            }
            None => {
                let per = rec.spend_change / (geos.len() * (t1 - t0 + 1)) as f64;
                for &g in &geos {
                    for t in t0..=t1 {
                        delta[g * t_n + t] += per;
                    }
                }
            }
        }
        // shares of the channels
        let tot: Vec<f64> = chans
            .iter()
            .map(|&c| geos.iter().map(|&g| (t0..=t1).map(|t| data.spend[[g, t, c]]).sum::<f64>()).sum())
            .collect();
        let all: f64 = tot.iter().sum();
        let in_data = spec.calibration.tests_in_data;
        let mut parts = Vec::new();
        for (k, &c) in chans.iter().enumerate() {
            let share = if all > 0.0 { tot[k] / all } else { 1.0 / chans.len() as f64 };
            let ch = &model.channels[c];
            let overall = overall_media_per_money(data, c)
                .ok_or_else(|| err(format!("channel {}: no spend in the data to convert a spend change", ch.name)))?;
            let lag = ch.kernel.max_lag;
            let touched: Vec<usize> = (0..g_n).filter(|&g| (0..t_n).any(|t| delta[g * t_n + t] != 0.0)).collect();
            for &g in touched.iter() {
                let first = (0..t_n).find(|&t| delta[g * t_n + t] != 0.0).unwrap_or(t0).min(t0);
                let last = (0..t_n).rev().find(|&t| delta[g * t_n + t] != 0.0).unwrap_or(t1).max(t1);
                // the readout's periods: the window (through the last changed period), or with the
                // adstock tail after it when the record's number includes the carry-over
                let seg_end = if spec.calibration.lift_counts_carryover { last + lag + 1 } else { last + 1 }.min(t_n);
                let scale = model.geo_size[g] * ch.media_scale;
                // the test's change in scaled media units at (g, t)
                let change = |t: usize| {
                    let s = data.spend[[g, t, c]];
                    let ratio = if s > 0.0 { data.media[[g, t, c]] / s } else { overall };
                    share * delta[g * t_n + t] * ratio / scale
                };
                let part = if in_data {
                    // x_none = x̃ − Δ̃ (clipped at zero), x_test = x̃
                    lift_part(
                        model,
                        c,
                        g,
                        first,
                        seg_end,
                        |t| (ch.x[g * t_n + t] - change(t)).max(0.0),
                        |t, _| ch.x[g * t_n + t],
                    )
                } else {
                    // x_none = x̃, x_test = x̃ + Δ̃
                    lift_part(model, c, g, first, seg_end, |t| ch.x[g * t_n + t], |t, x| x + change(t))
                };
                parts.push(part);
            }
        }
        terms.push(LiftTerm { index: i + 1, observed: rec.incremental_kpi, standard_error: rec.standard_error, parts });
    }
    Ok(terms)
}

/// The channel's media per unit of money over the whole data, Σ media / Σ spend: how a spend change
/// is turned into media where a cell has no spend of its own. `None` when the channel never spent.
pub(crate) fn overall_media_per_money(data: &Dataset, c: usize) -> Option<f64> {
    let total_spend: f64 = data.spend.slice(ndarray::s![.., .., c]).sum();
    let total_media: f64 = data.media.slice(ndarray::s![.., .., c]).sum();
    (total_spend > 0.0).then(|| total_media / total_spend)
}

/// One (channel, geo) piece of a lift term: the factual scaled media `x_at(t)` and the
/// counterfactual `cf_at(t, x_at(t))`, clipped at zero, over the periods
/// [first − L, seg_end) (L the channel's max lag, so the adstock sees the history that feeds
/// period `first`), with the lift counted from `first`. Periods are absolute indices on the
/// model's time axis; `x_at` may extend it beyond the data (hypothetical tests, [`crate::pricing`]).
pub(crate) fn lift_part(
    model: &MmmModel,
    c: usize,
    g: usize,
    first: usize,
    seg_end: usize,
    x_at: impl Fn(usize) -> f64,
    cf_at: impl Fn(usize, f64) -> f64,
) -> LiftPart {
    let seg_start = first.saturating_sub(model.channels[c].kernel.max_lag);
    let x_fact: Vec<f64> = (seg_start..seg_end).map(&x_at).collect();
    let x_cf: Vec<f64> = (seg_start..seg_end).zip(&x_fact).map(|(t, &x)| cf_at(t, x).max(0.0)).collect();
    LiftPart { channel: c, geo: g, seg_start, count_from: first - seg_start, x_fact, x_cf }
}

/// The model-implied lift of a term (KPI units) at given parameter values:
/// Σ_parts κ_g·β(g,c)·Σ_{t ≥ count_from} [f_c(x_cf)(t) − f_c(x_fact)(t)], f_c = the channel's
/// adstock and saturation in its order. The adstock weights are computed once per channel, and with
/// adstock first the curve is evaluated only at the counted periods (the history before them only
/// feeds the adstock), so pricing thousands of draws stays cheap; the counted values are exactly
/// those of [`MmmModel::channel_feature`] on the segment.
pub fn implied_lift(model: &MmmModel, p: &ParamValues, term: &LiftTerm) -> f64 {
    let mut weights: Vec<Option<Vec<f64>>> = vec![None; model.channels.len()];
    let (mut u, mut v) = (Vec::new(), Vec::new());
    let mut total = 0.0;
    for part in &term.parts {
        let c = part.channel;
        let ch = &model.channels[c];
        let w = weights[c].get_or_insert_with(|| {
            let mut w = vec![0.0; ch.kernel.len()];
            let mut dw = vec![0.0; ch.kernel.len() * ch.kernel.n_params()];
            ch.kernel.weights(&p.theta[c], &mut w, &mut dw);
            w
        });
        let sat = ch.sat.curve(&p.phi[c]);
        let n = part.x_fact.len();
        u.resize(n, 0.0);
        v.resize(n, 0.0);
        let diff: f64 = match ch.order {
            TransformOrder::AdstockFirst => {
                convolve(w, &part.x_fact, &mut u);
                convolve(w, &part.x_cf, &mut v);
                (part.count_from..n).map(|t| sat.value(v[t]) - sat.value(u[t])).sum()
            }
            TransformOrder::SaturationFirst => {
                let sf: Vec<f64> = part.x_fact.iter().map(|&x| sat.value(x)).collect();
                let sc: Vec<f64> = part.x_cf.iter().map(|&x| sat.value(x)).collect();
                convolve(w, &sf, &mut u);
                convolve(w, &sc, &mut v);
                (part.count_from..n).map(|t| v[t] - u[t]).sum()
            }
        };
        total += p.beta_geo[c][part.geo] * model.kpi_scale[part.geo] * diff;
    }
    total
}

struct PartCache {
    w: Vec<f64>,
    dw: Vec<f64>,
    fact: Vec<f64>,
    cf: Vec<f64>,
    diff: f64,
}

fn bufs(v: &mut [f64], n: usize) -> ChannelBufs<'_> {
    let (f, r) = v.split_at_mut(n);
    let (d1, r) = r.split_at_mut(n);
    let (u, r) = r.split_at_mut(n);
    let (dp0, dp1) = r.split_at_mut(n);
    ChannelBufs { f, d1, u, dp0, dp1 }
}

/// Σ over lift terms of log Normal(observed | implied, se); adds ∂/∂β(g,c) into `gb` ([c·G + g])
/// and ∂/∂θ, ∂/∂φ (constrained) into `gx`.
pub(crate) fn lift_logp_grad(
    model: &MmmModel,
    vals: &[f64],
    bgc: &[f64],
    gb: &mut [f64],
    gx: &mut [f64],
) -> Result<f64, LogDensityError> {
    let g_n = model.n_geos();
    let mut lp = 0.0;
    for term in &model.lift {
        let mut implied = 0.0;
        let mut cache = Vec::with_capacity(term.parts.len());
        for part in &term.parts {
            let ch = &model.channels[part.channel];
            let nw = ch.kernel.len();
            let th: [f64; 2] = [vals[ch.theta_idx[0]], ch.theta_idx.get(1).map_or(0.0, |&i| vals[i])];
            let ph = ch.phi_at(vals);
            let mut w = vec![0.0; nw];
            let mut dw = vec![0.0; 2 * nw];
            ch.kernel.weights(&th, &mut w, &mut dw);
            let n = part.x_fact.len();
            let mut fact = vec![0.0; 5 * n];
            let mut cf = vec![0.0; 5 * n];
            channel_forward(ch, &w, &ph, &part.x_fact, &mut bufs(&mut fact, n));
            channel_forward(ch, &w, &ph, &part.x_cf, &mut bufs(&mut cf, n));
            let diff: f64 = (part.count_from..n).map(|t| cf[t] - fact[t]).sum();
            implied += bgc[part.channel * g_n + part.geo] * model.kpi_scale[part.geo] * diff;
            cache.push(PartCache { w, dw, fact, cf, diff });
        }
        let se = term.standard_error;
        let z = (term.observed - implied) / se;
        lp += -0.5 * z * z - se.ln() - 0.918_938_533_204_672_8;
        let dl = z / se; // ∂lp/∂implied
        for (part, pc) in term.parts.iter().zip(cache.iter_mut()) {
            let ch = &model.channels[part.channel];
            let nw = ch.kernel.len();
            let kg = model.kpi_scale[part.geo];
            gb[part.channel * g_n + part.geo] += dl * kg * pc.diff;
            let n = part.x_fact.len();
            let coef = dl * bgc[part.channel * g_n + part.geo] * kg;
            let mut a = vec![0.0; n];
            let mut tmp = vec![0.0; n];
            let mut gw = vec![0.0; nw];
            let mut gphi = [0.0; 2];
            for v in a.iter_mut().skip(part.count_from) {
                *v = coef;
            }
            channel_backward(ch, &pc.w, &part.x_cf, &a, &bufs(&mut pc.cf, n), &mut gw, &mut gphi, &mut tmp);
            for v in a.iter_mut() {
                *v = -*v;
            }
            channel_backward(ch, &pc.w, &part.x_fact, &a, &bufs(&mut pc.fact, n), &mut gw, &mut gphi, &mut tmp);
            for (p, &ti) in ch.theta_idx.iter().enumerate() {
                gx[ti] += (0..nw).map(|l| gw[l] * pc.dw[p * nw + l]).sum::<f64>();
            }
            for (p, &pi) in ch.phi_idx.iter().enumerate() {
                gx[pi] += gphi[p];
            }
        }
    }
    Ok(lp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::simulate::{SimOptions, simulate};

    /// The lift as the module documentation writes it, through the model's whole-series feature.
    fn reference_lift(model: &MmmModel, p: &ParamValues, term: &LiftTerm) -> f64 {
        let mut total = 0.0;
        for part in &term.parts {
            let n = part.x_fact.len();
            let (mut ff, mut fc) = (vec![0.0; n], vec![0.0; n]);
            let (th, ph) = (&p.theta[part.channel], &p.phi[part.channel]);
            model.channel_feature(part.channel, th, ph, &part.x_fact, &mut ff);
            model.channel_feature(part.channel, th, ph, &part.x_cf, &mut fc);
            let diff: f64 = (part.count_from..n).map(|t| fc[t] - ff[t]).sum();
            total += p.beta_geo[part.channel][part.geo] * model.kpi_scale[part.geo] * diff;
        }
        total
    }

    #[test]
    fn implied_lift_is_the_whole_series_formula_in_both_transform_orders() {
        let sim = simulate(&SimOptions { n_geos: 3, n_times: 40, tau: 0.3, seed: 9, ..Default::default() }).unwrap();
        let mut spec = sim.spec.clone();
        spec.channels[1].order = TransformOrder::SaturationFirst;
        let rec = |ch: &[&str], start: &str, end: &str, change: f64| mmloop_data::LiftTestRecord {
            channels: ch.iter().map(|s| s.to_string()).collect(),
            geos: vec!["geo1".into(), "geo2".into()],
            start: start.into(),
            end: end.into(),
            spend_change: change,
            spend_path: None,
            incremental_kpi: 0.0,
            standard_error: 1.0,
            estimator: String::new(),
            source: String::new(),
        };
        spec.calibration.lift_tests = vec![
            rec(&["ch0", "ch1"], "10", "15", -900.0),
            rec(&["ch1"], "35", "39", 400.0),
            rec(&["ch0"], "2", "4", 50.0),
        ];
        let model = MmmModel::new(&spec, &sim.data).unwrap();
        let q0 = model.initial_point();
        for k in 0..5 {
            let q: Vec<f64> = q0.iter().enumerate().map(|(i, x)| x + 0.2 * (((i + k) * 7 % 5) as f64 - 2.0)).collect();
            let p = model.unpack(&q);
            for term in &model.lift {
                let (a, b) = (implied_lift(&model, &p, term), reference_lift(&model, &p, term));
                // the counted values are the same numbers summed in the same order
                assert_eq!(a.to_bits(), b.to_bits(), "term {}: {a} vs {b}", term.index);
                assert!(a != 0.0);
            }
        }
    }
}
