//! From posterior draws to the numbers a team reads, all in the data's own units.
//!
//! Per draw d (constrained parameters through [`MmmModel::unpack`]), over the fitted period:
//! - contribution_c(g,t) = κ_g·β(g,c)·f_c(g,t) (KPI units); baseline = κ_g·(intercept + trend +
//!   seasonality + controls);
//! - ROI_c = Σ contribution_c·rpk / Σ spend_c (rpk = revenue per KPI, 1 without it);
//! - marginal ROI: the extra return of one more unit of spend at the current spend, by a +1 %
//!   perturbation of the channel's media in every cell: mROI_c = [R_c(1.01·x) − R_c(x)] / (0.01·Σ spend_c),
//!   run through adstock and saturation (a one-sided difference; its error relative to the
//!   derivative is O(1 %·curvature), the usual reporting convention of Meridian's mROI);
//! - cost per incremental KPI = Σ spend_c / Σ contribution_c;
//! - contribution share = Σ contribution_c / Σ actual KPI;
//! - response curves: R_c(m·x) for spend multipliers m ∈ {0, 0.25, …, 2}, with 5–95 % bands.
//!
//! Fit metrics use the posterior-mean prediction ŷ: R² = 1 − Σ(y − ŷ)²/Σ(y − ȳ)²,
//! MAPE = mean |y − ŷ|/|y| over cells with y ≠ 0, NRMSE = RMSE/(max y − min y) (Robyn's definition),
//! in-sample (fitted period) and on the holdout.

// Index loops mirror the sums of the math (over g, t, l) and address several arrays at once.
#![allow(clippy::needless_range_loop)]

use crate::model::MmmModel;
use crate::output::Draws;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Mean, standard deviation and 5 % / 95 % quantiles of a set of draws.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    #[serde(deserialize_with = "crate::fitdir::null_as_nan")]
    pub mean: f64,
    #[serde(deserialize_with = "crate::fitdir::null_as_nan")]
    pub sd: f64,
    #[serde(deserialize_with = "crate::fitdir::null_as_nan")]
    pub q05: f64,
    #[serde(deserialize_with = "crate::fitdir::null_as_nan")]
    pub q95: f64,
}

impl Stat {
    /// Summarises draws (quantiles by linear interpolation between order statistics, type 7).
    pub fn of(x: &[f64]) -> Stat {
        let n = x.len();
        if n == 0 {
            return Stat { mean: f64::NAN, sd: f64::NAN, q05: f64::NAN, q95: f64::NAN };
        }
        let mean = x.iter().sum::<f64>() / n as f64;
        let var = if n > 1 { x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64 } else { 0.0 };
        let mut s = x.to_vec();
        s.sort_by(|a, b| a.total_cmp(b));
        Stat { mean, sd: var.sqrt(), q05: quantile_sorted(&s, 0.05), q95: quantile_sorted(&s, 0.95) }
    }
}

/// Type-7 quantile of sorted data.
pub fn quantile_sorted(s: &[f64], p: f64) -> f64 {
    let h = (s.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    s[lo] + (h - lo as f64) * (s[hi] - s[lo])
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelSummary {
    pub name: String,
    /// Spend over the fitted period.
    #[serde(deserialize_with = "crate::fitdir::null_as_nan")]
    pub spend: f64,
    pub roi: Stat,
    pub mroi: Stat,
    pub cost_per_kpi: Stat,
    /// Incremental KPI over the fitted period.
    pub contribution: Stat,
    pub contribution_share: Stat,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    #[serde(deserialize_with = "crate::fitdir::null_as_nan")]
    pub r2: f64,
    #[serde(deserialize_with = "crate::fitdir::null_as_nan")]
    pub mape: f64,
    #[serde(deserialize_with = "crate::fitdir::null_as_nan")]
    pub nrmse: f64,
    pub n: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitMetrics {
    pub in_sample: Metrics,
    pub holdout: Option<Metrics>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamSummary {
    pub name: String,
    #[serde(flatten)]
    pub stat: Stat,
}

/// One period, summed over geos: actual KPI, fitted mean, baseline and channel contributions
/// (posterior means) with the channels' 5 %/95 % bands, and the 5 %/95 % band of the fitted mean
/// (each draw's baseline plus its contributions: the credible band of the expected KPI, without
/// the observation noise).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodRow {
    pub time: String,
    pub holdout: bool,
    pub actual: f64,
    pub fitted: f64,
    pub baseline: f64,
    pub contributions: Vec<f64>,
    pub contributions_q05: Vec<f64>,
    pub contributions_q95: Vec<f64>,
    pub fitted_q05: f64,
    pub fitted_q95: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurvePoint {
    pub multiplier: f64,
    pub spend: f64,
    pub response: Stat,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseCurve {
    pub channel: String,
    pub points: Vec<CurvePoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiftCheck {
    pub index: usize,
    #[serde(deserialize_with = "crate::fitdir::null_as_nan")]
    pub observed: f64,
    #[serde(deserialize_with = "crate::fitdir::null_as_nan")]
    pub standard_error: f64,
    pub implied: Stat,
}

/// Everything the analysis produces.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    pub channels: Vec<ChannelSummary>,
    pub fit: FitMetrics,
    pub params: Vec<ParamSummary>,
    pub periods: Vec<PeriodRow>,
    pub response_curves: Vec<ResponseCurve>,
    pub lift_tests: Vec<LiftCheck>,
    /// Whether ROI figures are revenue per unit of spend (a revenue-per-KPI column was given).
    pub roi_in_revenue: bool,
    pub n_draws: usize,
}

/// Spend multipliers of the response curves.
pub const CURVE_MULTIPLIERS: [f64; 9] = [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0];
/// The spend multiplier of the marginal ROI's one-sided difference (+1 %).
pub const MROI_MULTIPLIER: f64 = 1.01;
/// At most this many draws (evenly thinned) go into response curves.
pub const CURVE_MAX_DRAWS: usize = 200;

struct DrawOut {
    roi: Vec<f64>,
    mroi: Vec<f64>,
    contrib_total: Vec<f64>,
    /// [c][t] summed over geos, all periods
    contrib_t: Vec<Vec<f64>>,
    baseline_t: Vec<f64>,
}

/// Draws per block of the posterior-mean prediction: each block sums its draws' fitted means
/// (G·T values) in draw order, and the block sums are added in block order, so the result does not
/// depend on the thread count, and only ⌈D/64⌉ arrays of G·T are held instead of D of them (at
/// 10 000 geos × 100 periods × 4 000 draws: 0.5 GB instead of 32 GB).
pub const PREDICTION_BLOCK: usize = 64;

/// The per-draw pass every analysis starts from: each draw's channel returns and contributions
/// ([`DrawOut`]), in draw order, and the posterior-mean prediction ([g·T + t]).
fn draw_pass(model: &MmmModel, constrained: &[Vec<f64>]) -> (Vec<DrawOut>, Vec<f64>) {
    let g_n = model.n_geos();
    let t_n = model.n_times;
    let tf = model.n_fit;
    let c_n = model.channels.len();
    let per_draw = |x: &Vec<f64>, pred_sum: &mut [f64]| -> DrawOut {
        let p = model.unpack_values(x.clone());
        let base = model.baseline_scaled(&p);
        let mut mean = vec![0.0; g_n * t_n];
        let mut baseline_t = vec![0.0; t_n];
        for g in 0..g_n {
            for t in 0..t_n {
                let v = model.kpi_scale[g] * base[g * t_n + t];
                mean[g * t_n + t] = v;
                baseline_t[t] += v;
            }
        }
        // the feature at the data's media and at +1 % (marginal ROI), [k·T + t]
        let mut f2 = vec![0.0; 2 * t_n];
        let mut roi = vec![0.0; c_n];
        let mut mroi = vec![0.0; c_n];
        let mut contrib_total = vec![0.0; c_n];
        let mut contrib_t = vec![vec![0.0; t_n]; c_n];
        for c in 0..c_n {
            let ch = &model.channels[c];
            let (mut ret, mut ret_up) = (0.0, 0.0);
            for g in 0..g_n {
                let x = &ch.x[g * t_n..(g + 1) * t_n];
                let scale = model.kpi_scale[g] * p.beta_geo[c][g];
                model.channel_features_scaled(c, &p.theta[c], &p.phi[c], x, &[1.0, MROI_MULTIPLIER], &mut f2);
                let (f, f_up) = f2.split_at(t_n);
                for t in 0..t_n {
                    let v = scale * f[t];
                    // the fit sees β_obs = β·exp(b) (observational bias, see `crate::model`); the
                    // channel is credited its causal part, the rest of the association is baseline
                    mean[g * t_n + t] += v * p.obs_factor[c];
                    baseline_t[t] += v * (p.obs_factor[c] - 1.0);
                    contrib_t[c][t] += v;
                    if t < tf {
                        contrib_total[c] += v;
                        ret += v * model.rpk[g * t_n + t];
                    }
                }
                for t in 0..tf {
                    ret_up += scale * f_up[t] * model.rpk[g * t_n + t];
                }
            }
            roi[c] = ret / ch.spend_fit;
            mroi[c] = (ret_up - ret) / (0.01 * ch.spend_fit);
        }
        for (a, b) in pred_sum.iter_mut().zip(&mean) {
            *a += b;
        }
        DrawOut { roi, mroi, contrib_total, contrib_t, baseline_t }
    };
    let blocks: Vec<(Vec<DrawOut>, Vec<f64>)> = constrained
        .par_chunks(PREDICTION_BLOCK)
        .map(|block| {
            let mut sum = vec![0.0; g_n * t_n];
            let outs = block.iter().map(|x| per_draw(x, &mut sum)).collect();
            (outs, sum)
        })
        .collect();
    // posterior-mean prediction: block sums in block order
    let mut pred = vec![0.0; g_n * t_n];
    for (_, sum) in &blocks {
        for (a, b) in pred.iter_mut().zip(sum) {
            *a += b;
        }
    }
    pred.iter_mut().for_each(|a| *a /= constrained.len() as f64);
    (blocks.into_iter().flat_map(|(o, _)| o).collect(), pred)
}

/// Each channel's ROI, marginal ROI, cost per KPI, contribution and contribution share over the
/// fitted periods, from the per-draw pass.
fn channel_summaries(model: &MmmModel, outs: &[DrawOut], actual_kpi: &[f64]) -> Vec<ChannelSummary> {
    let t_n = model.n_times;
    let tf = model.n_fit;
    let col = |f: &dyn Fn(&DrawOut) -> f64| -> Vec<f64> { outs.iter().map(f).collect() };
    let kpi_total_fit: f64 = (0..model.n_geos()).map(|g| (0..tf).map(|t| actual_kpi[g * t_n + t]).sum::<f64>()).sum();
    (0..model.channels.len())
        .map(|c| {
            let ch = &model.channels[c];
            ChannelSummary {
                name: ch.name.clone(),
                spend: ch.spend_fit,
                roi: Stat::of(&col(&|o| o.roi[c])),
                mroi: Stat::of(&col(&|o| o.mroi[c])),
                cost_per_kpi: Stat::of(&col(&|o| ch.spend_fit / o.contrib_total[c])),
                contribution: Stat::of(&col(&|o| o.contrib_total[c])),
                contribution_share: Stat::of(&col(&|o| o.contrib_total[c] / kpi_total_fit)),
            }
        })
        .collect()
}

/// The channels' part of [`analyse`] alone (ROI, marginal ROI, contributions), the same figures
/// without the per-period rows, response curves, parameter summaries and lift checks: for callers
/// that fit many models and read only the channels (the loop's simulator; about a third of the
/// full analysis' work, the response curves being most of the rest).
pub fn analyse_channels(model: &MmmModel, draws: &Draws, actual_kpi: &[f64]) -> Vec<ChannelSummary> {
    let (outs, _) = draw_pass(model, &draws.constrained);
    channel_summaries(model, &outs, actual_kpi)
}

/// Analyses posterior draws of `model` (it reads their constrained values, [`Draws::constrained`]).
/// `time_labels` are the data's period labels.
pub fn analyse(model: &MmmModel, draws: &Draws, time_labels: &[String], actual_kpi: &[f64]) -> Analysis {
    let g_n = model.n_geos();
    let t_n = model.n_times;
    let tf = model.n_fit;
    let c_n = model.channels.len();
    let constrained = &draws.constrained;
    let (outs, pred) = draw_pass(model, constrained);
    let nd = constrained.len();
    let col = |f: &dyn Fn(&DrawOut) -> f64| -> Vec<f64> { outs.iter().map(f).collect() };
    let channels = channel_summaries(model, &outs, actual_kpi);
    // fit metrics of the posterior-mean prediction
    let cells = |range: std::ops::Range<usize>| -> Vec<(f64, f64)> {
        (0..g_n).flat_map(|g| range.clone().map(move |t| g * t_n + t)).map(|i| (actual_kpi[i], pred[i])).collect()
    };
    let fit = FitMetrics { in_sample: metrics(&cells(0..tf)), holdout: (tf < t_n).then(|| metrics(&cells(tf..t_n))) };
    let params = model
        .params
        .iter()
        .enumerate()
        .map(|(i, info)| {
            let v: Vec<f64> = constrained.iter().map(|x| x[i]).collect();
            ParamSummary { name: info.name.clone(), stat: Stat::of(&v) }
        })
        .chain((0..c_n).filter(|&c| model.channels[c].effect_is_roi).map(|c| {
            let v: Vec<f64> = constrained.iter().map(|x| model.unpack_values(x.clone()).beta[c]).collect();
            ParamSummary { name: format!("beta[{}] (derived)", model.channels[c].name), stat: Stat::of(&v) }
        }))
        .collect();
    let periods = (0..t_n)
        .map(|t| {
            let mut contributions = vec![0.0; c_n];
            let mut lo = vec![0.0; c_n];
            let mut hi = vec![0.0; c_n];
            for c in 0..c_n {
                let s = Stat::of(&col(&|o| o.contrib_t[c][t]));
                contributions[c] = s.mean;
                lo[c] = s.q05;
                hi[c] = s.q95;
            }
            let fitted = Stat::of(&col(&|o| o.baseline_t[t] + (0..c_n).map(|c| o.contrib_t[c][t]).sum::<f64>()));
            PeriodRow {
                time: time_labels.get(t).cloned().unwrap_or_else(|| t.to_string()),
                holdout: t >= tf,
                actual: (0..g_n).map(|g| actual_kpi[g * t_n + t]).sum(),
                fitted: (0..g_n).map(|g| pred[g * t_n + t]).sum(),
                baseline: col(&|o| o.baseline_t[t]).iter().sum::<f64>() / nd as f64,
                contributions,
                contributions_q05: lo,
                contributions_q95: hi,
                fitted_q05: fitted.q05,
                fitted_q95: fitted.q95,
            }
        })
        .collect();
    // response curves on a thinned set of draws
    let step = nd.div_ceil(CURVE_MAX_DRAWS).max(1);
    let curve_draws: Vec<&Vec<f64>> = constrained.iter().step_by(step).collect();
    let response_curves = (0..c_n)
        .map(|c| {
            let ch = &model.channels[c];
            let per_draw: Vec<Vec<f64>> = curve_draws
                .par_iter()
                .map(|x| {
                    let p = model.unpack_values(x.to_vec());
                    let k_n = CURVE_MULTIPLIERS.len();
                    let mut f = vec![0.0; k_n * t_n];
                    let mut r = vec![0.0; k_n];
                    for g in 0..g_n {
                        let x = &ch.x[g * t_n..(g + 1) * t_n];
                        model.channel_features_scaled(c, &p.theta[c], &p.phi[c], x, &CURVE_MULTIPLIERS, &mut f);
                        let scale = model.kpi_scale[g] * p.beta_geo[c][g];
                        for (k, rk) in r.iter_mut().enumerate() {
                            for t in 0..tf {
                                *rk += scale * f[k * t_n + t] * model.rpk[g * t_n + t];
                            }
                        }
                    }
                    r
                })
                .collect();
            let points = CURVE_MULTIPLIERS
                .iter()
                .enumerate()
                .map(|(k, &m)| CurvePoint {
                    multiplier: m,
                    spend: m * ch.spend_fit,
                    response: Stat::of(&per_draw.iter().map(|v| v[k]).collect::<Vec<_>>()),
                })
                .collect();
            ResponseCurve { channel: ch.name.clone(), points }
        })
        .collect();
    let lift_tests = model
        .lift
        .iter()
        .map(|term| {
            let v: Vec<f64> = constrained
                .iter()
                .map(|x| crate::calibration::implied_lift(model, &model.unpack_values(x.clone()), term))
                .collect();
            LiftCheck {
                index: term.index,
                observed: term.observed,
                standard_error: term.standard_error,
                implied: Stat::of(&v),
            }
        })
        .collect();
    Analysis {
        channels,
        fit,
        params,
        periods,
        response_curves,
        lift_tests,
        roi_in_revenue: model.has_revenue,
        n_draws: nd,
    }
}

/// R², MAPE and NRMSE of (actual, predicted) pairs.
pub fn metrics(pairs: &[(f64, f64)]) -> Metrics {
    let n = pairs.len();
    let ybar = pairs.iter().map(|p| p.0).sum::<f64>() / n as f64;
    let ss_res: f64 = pairs.iter().map(|(y, p)| (y - p).powi(2)).sum();
    let ss_tot: f64 = pairs.iter().map(|(y, _)| (y - ybar).powi(2)).sum();
    let nz: Vec<f64> = pairs.iter().filter(|(y, _)| *y != 0.0).map(|(y, p)| ((y - p) / y).abs()).collect();
    let (mn, mx) = pairs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (y, _)| (a.min(*y), b.max(*y)));
    Metrics {
        r2: 1.0 - ss_res / ss_tot,
        mape: if nz.is_empty() { f64::NAN } else { nz.iter().sum::<f64>() / nz.len() as f64 },
        nrmse: (ss_res / n as f64).sqrt() / (mx - mn),
        n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_matches_hand_computed_quantiles() {
        let x: Vec<f64> = (1..=21).map(|v| v as f64).collect();
        let s = Stat::of(&x);
        assert_eq!(s.mean, 11.0);
        assert_eq!(s.q05, 2.0); // h = 20·0.05 = 1 → x[1]
        assert_eq!(s.q95, 20.0);
        assert!((s.sd - (770.0f64 / 20.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn metrics_of_a_perfect_and_a_constant_prediction() {
        let pairs: Vec<(f64, f64)> = [1.0, 2.0, 3.0, 4.0].iter().map(|&y| (y, y)).collect();
        let m = metrics(&pairs);
        assert_eq!((m.r2, m.mape, m.nrmse), (1.0, 0.0, 0.0));
        let pairs: Vec<(f64, f64)> = [1.0, 2.0, 3.0, 4.0].iter().map(|&y| (y, 2.5)).collect();
        let m = metrics(&pairs);
        assert!(m.r2.abs() < 1e-15);
        // RMSE = sqrt((2.25+0.25+0.25+2.25)/4) = sqrt(1.25), range 3
        assert!((m.nrmse - 1.25f64.sqrt() / 3.0).abs() < 1e-15);
    }
}
