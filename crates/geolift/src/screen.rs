//! Input screens: outlying cells in a panel (warned about, never dropped) and the donor pre-screen
//! that keeps synthetic-control problems small on panels with thousands of geos.

use crate::panel::LiftData;
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

/// Default threshold of the robust outlier score. A modified z-score of 10 is ~6.7 robust standard
/// deviations beyond what the geo's own history, its neighbours in time and the common shocks explain.
pub const OUTLIER_THRESHOLD: f64 = 10.0;

/// A cell is only reported when it is also off by at least this share of the geo's typical level
/// (median |KPI|): very smooth series (quarterly GDP) have tiny noise, so a few-percent wiggle can
/// score high without being a plausible typo. With both conditions the public panels in
/// `shared/datasets/geo` give no warning except the GeoLift panels' own outages (three cities at
/// ~3 % of their usual KPI on 2021-04-11/12, one on 2021-03-18), while a ×10 typo or a dropped digit
/// is caught (tested).
pub const OUTLIER_MIN_RELATIVE: f64 = 0.5;

/// One suspicious cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutlierWarning {
    pub geo: String,
    pub time: String,
    pub value: f64,
    /// What the geo's series and the common shocks predict for that cell (the median level with the
    /// period's common shock applied).
    pub expected: f64,
    /// The robust score |r − median r| / spread (see [`screen_outliers`]).
    pub score: f64,
}

impl std::fmt::Display for OutlierWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "geo {:?} at {}: value {} is far from what its history and the other geos suggest (≈{:.4}; robust score {:.0}, threshold {})",
            self.geo, self.time, self.value, self.expected, self.score, OUTLIER_THRESHOLD
        )
    }
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    let (_, m, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    let hi = *m;
    if n % 2 == 1 {
        hi
    } else {
        let lo = v[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lo + hi)
    }
}

/// Robust outlier screen of a geos × periods panel. The rule, per cell (g, t):
///
/// 1. scale each geo by its level, s_gt = y_gt / m_g with m_g = median_t |y_gt| (m_g = 0: s = y);
/// 2. remove the common shock: r_gt = s_gt − c_t, c_t = median over the geos with m_g > 0 of s_gt
///    (holidays and seasons that move every geo are not outliers);
/// 3. compare each residual with its neighbours (a Hampel-type filter): d_gt = r_gt − median of
///    r_g at the observed periods within ±2 of t, so slow trends and drifts (an oil boom, a
///    growing market) are not outliers but isolated spikes and short outages are;
/// 4. score d_gt against the geo's own d with the modified z-score of Iglewicz & Hoaglin (1993):
///    z = |d_gt − med_g d| / (1.4826·MAD_g d), or 1.2533·mean absolute deviation when the MAD is 0;
/// 5. warn when z > `threshold` ([`OUTLIER_THRESHOLD`] = 10 by default) and the cell is off its
///    expected value by more than [`OUTLIER_MIN_RELATIVE`] (half) of the geo's typical level m_g.
///
/// `rows` are the geos to screen; `skip(g, t)` exempts cells (the treated geos' test window, where a
/// real effect is expected); `observed(g, t)` says whether a cell exists (gaps are ignored). Warnings
/// are sorted by score, largest first. Cost O(G·T log G).
pub fn screen_outliers(
    y: ArrayView2<f64>,
    geos: &[String],
    labels: &[String],
    rows: &[usize],
    observed: &dyn Fn(usize, usize) -> bool,
    skip: &dyn Fn(usize, usize) -> bool,
    threshold: f64,
) -> Vec<OutlierWarning> {
    let nt = y.ncols();
    let level: Vec<f64> = rows
        .iter()
        .map(|&g| {
            let mut v: Vec<f64> = (0..nt).filter(|&t| observed(g, t)).map(|t| y[[g, t]].abs()).collect();
            median(&mut v)
        })
        .collect();
    let scaled = |i: usize, t: usize| {
        let g = rows[i];
        if level[i] > 0.0 { y[[g, t]] / level[i] } else { y[[g, t]] }
    };
    let common: Vec<f64> = (0..nt)
        .map(|t| {
            let mut v: Vec<f64> =
                (0..rows.len()).filter(|&i| level[i] > 0.0 && observed(rows[i], t)).map(|i| scaled(i, t)).collect();
            let m = median(&mut v);
            if m.is_finite() { m } else { 0.0 }
        })
        .collect();
    let mut out = Vec::new();
    for (i, &g) in rows.iter().enumerate() {
        let shift = |t: usize| if level[i] > 0.0 { common[t] } else { 0.0 };
        let ts: Vec<usize> = (0..nt).filter(|&t| observed(g, t)).collect();
        if ts.len() < 3 {
            continue;
        }
        let r: Vec<f64> = ts.iter().map(|&t| scaled(i, t) - shift(t)).collect();
        // neighbours' median within ±2 periods (positions in the observed series)
        let local: Vec<f64> = (0..ts.len())
            .map(|k| {
                let mut nb: Vec<f64> = (k.saturating_sub(2)..(k + 3).min(ts.len()))
                    .filter(|&j| j != k && ts[j].abs_diff(ts[k]) <= 2)
                    .map(|j| r[j])
                    .collect();
                if nb.is_empty() { r[k] } else { median(&mut nb) }
            })
            .collect();
        let d: Vec<f64> = (0..ts.len()).map(|k| r[k] - local[k]).collect();
        let med = median(&mut d.clone());
        let dev: Vec<f64> = d.iter().map(|v| (v - med).abs()).collect();
        let mad = median(&mut dev.clone());
        let spread = if mad > 0.0 { 1.4826 * mad } else { 1.2533 * dev.iter().sum::<f64>() / dev.len() as f64 };
        if spread.is_nan() || spread <= 0.0 {
            continue;
        }
        for (k, &t) in ts.iter().enumerate() {
            let z = dev[k] / spread;
            // d is in units of the level: |d − med| > 0.5 means off by half the typical level
            let big = level[i] == 0.0 || dev[k] > OUTLIER_MIN_RELATIVE;
            if z > threshold && big && !skip(g, t) {
                let unscale = if level[i] > 0.0 { level[i] } else { 1.0 };
                out.push(OutlierWarning {
                    geo: geos[g].clone(),
                    time: labels[t].clone(),
                    value: y[[g, t]],
                    expected: (local[k] + med + shift(t)) * unscale,
                    score: z,
                });
            }
        }
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.geo.cmp(&b.geo)).then(a.time.cmp(&b.time)));
    out
}

impl LiftData {
    /// [`screen_outliers`] over the treated and control geos, exempting the treated geos' test window.
    pub fn screen_outliers(&self, threshold: f64) -> Vec<OutlierWarning> {
        let rows: Vec<usize> = self.treated.iter().chain(&self.controls).copied().collect();
        screen_outliers(
            self.y.view(),
            &self.geos,
            &self.time_labels,
            &rows,
            &|g, t| self.is_observed(g, t),
            &|g, t| t >= self.t0 && self.treated.contains(&g),
            threshold,
        )
    }

    /// The donor pre-screen: keeps the `k` controls whose pre-period series are most correlated
    /// (Pearson) with the treated average, in their original order; all of them when there are at
    /// most `k` (`k = 0` also keeps all). Uses pre-period data only, so the screen cannot react to
    /// the effect. This is the idea of GeoLift's market selection (markets that move with the treated
    /// ones make the synthetic control) applied to the donor pool, and it bounds the weight problem
    /// (O(K²·T) per fit instead of O(N₀²·T)). Returns the screened design and a description.
    pub fn screen_donors(&self, k: usize) -> (LiftData, Option<DonorScreen>) {
        let n0 = self.controls.len();
        if k == 0 || n0 <= k {
            return (self.clone(), None);
        }
        let x1 = self.treated_mean();
        let pre = &x1[..self.t0];
        let mut scored: Vec<(usize, f64)> = self
            .controls
            .iter()
            .map(|&g| {
                let s: Vec<f64> = (0..self.t0).map(|t| self.y[[g, t]]).collect();
                let c = pearson(pre, &s);
                (g, if c.is_finite() { c } else { f64::NEG_INFINITY })
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let min_corr = scored[k - 1].1;
        let mut keep: Vec<usize> = scored[..k].iter().map(|&(g, _)| g).collect();
        keep.sort_unstable();
        let d = self.with_groups(self.treated.clone(), keep);
        (d, Some(DonorScreen { kept: k, of: n0, min_correlation: min_corr }))
    }
}

impl crate::panel::Panel {
    /// [`screen_outliers`] over every geo and period of the panel's KPI (for design, where no test
    /// window exists yet).
    pub fn screen_outliers(&self, threshold: f64) -> Vec<OutlierWarning> {
        let rows: Vec<usize> = (0..self.geos.len()).collect();
        let obs = |g: usize, t: usize| self.observed.as_ref().is_none_or(|o| o[[g, t]]);
        screen_outliers(self.kpi.view(), &self.geos, &self.time_labels, &rows, &obs, &|_, _| false, threshold)
    }
}

/// What the donor pre-screen kept.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DonorScreen {
    pub kept: usize,
    pub of: usize,
    /// Smallest pre-period correlation with the treated average among the kept donors.
    pub min_correlation: f64,
}

impl std::fmt::Display for DonorScreen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "donor pre-screen: the {} of {} controls most correlated with the treated average over the pre-period (correlation ≥ {:.3}) form the donor pool",
            self.kept, self.of, self.min_correlation
        )
    }
}

/// Pearson correlation of two equally long series (0 when either is constant).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    if saa == 0.0 || sbb == 0.0 { 0.0 } else { sab / (saa * sbb).sqrt() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn panel(g: usize, t: usize) -> Array2<f64> {
        // levels 100·(1 + i), a common weekly pattern, small idiosyncratic wiggles
        Array2::from_shape_fn((g, t), |(i, k)| {
            let common = 1.0 + 0.2 * ((k % 7) as f64 / 7.0);
            let wiggle = 0.01 * (((i * 31 + k * 17) % 13) as f64 - 6.0);
            100.0 * (1.0 + i as f64) * (common + wiggle)
        })
    }

    fn run(y: &Array2<f64>) -> Vec<OutlierWarning> {
        let geos: Vec<String> = (0..y.nrows()).map(|i| format!("g{i}")).collect();
        let labels: Vec<String> = (0..y.ncols()).map(|t| t.to_string()).collect();
        let rows: Vec<usize> = (0..y.nrows()).collect();
        screen_outliers(y.view(), &geos, &labels, &rows, &|_, _| true, &|_, _| false, OUTLIER_THRESHOLD)
    }

    #[test]
    fn common_shocks_are_not_outliers_but_a_typo_is() {
        let mut y = panel(20, 60);
        // a holiday doubling every geo is not an outlier
        for g in 0..20 {
            y[[g, 30]] *= 2.0;
        }
        assert!(run(&y).is_empty(), "{:?}", run(&y));
        y[[7, 12]] *= 10.0;
        let w = run(&y);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!((w[0].geo.as_str(), w[0].time.as_str()), ("g7", "12"));
        assert!((w[0].expected - y[[7, 12]] / 10.0).abs() / w[0].expected < 0.05, "{:?}", w[0]);
    }

    #[test]
    fn skipped_cells_are_not_reported() {
        let mut y = panel(10, 40);
        y[[0, 35]] *= 5.0;
        let geos: Vec<String> = (0..10).map(|i| format!("g{i}")).collect();
        let labels: Vec<String> = (0..40).map(|t| t.to_string()).collect();
        let rows: Vec<usize> = (0..10).collect();
        let w = screen_outliers(y.view(), &geos, &labels, &rows, &|_, _| true, &|g, t| g == 0 && t >= 30, 10.0);
        assert!(w.is_empty());
    }

    #[test]
    fn donor_screen_keeps_the_most_correlated_controls_and_all_when_few() {
        let t0 = 30;
        let y = Array2::from_shape_fn((6, 40), |(i, k)| {
            let base = (k as f64 * 0.7).sin() * 10.0 + 100.0;
            match i {
                0 => base,
                1 | 2 => base * 1.1 + (k % 3) as f64 * 0.1,
                _ => 100.0 + ((k * (i + 3)) % 11) as f64,
            }
        });
        let d = LiftData::from_matrix(y, vec![0], t0).unwrap();
        let (s, info) = d.screen_donors(2);
        assert_eq!(s.controls, vec![1, 2]);
        let info = info.unwrap();
        assert_eq!((info.kept, info.of), (2, 5));
        let (all, none) = d.screen_donors(5);
        assert_eq!(all.controls, d.controls);
        assert!(none.is_none());
    }
}
