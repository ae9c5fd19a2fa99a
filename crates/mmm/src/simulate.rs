//! The bundled demo datasets (`data/demo_national.csv`, `data/demo_geo.csv`): weekly marketing data
//! simulated from known parameters, with spend that looks like real spend (flighted TV, always-on
//! search that follows demand, drifting social with impressions), written beside their truth.
//!
//! Regenerate with `cargo run -p mmloop-mmm --example make_demo_data` (writes into `data/`); a test
//! checks the committed files are byte-for-byte what this module produces. The random numbers come
//! from a self-contained SplitMix64 generator so the files do not depend on a crate's RNG version.
//!
//! # The formula, in data units
//! For geo g (population p_g; the national demo has one geo with p = 1), week t = 0..T−1:
//! ```text
//! y(g,t) = p_g · [ a_g + δ·t/(T−1) + Σ_k (s_k sin(2πkt/P) + c_k cos(2πkt/P))
//!                  + Σ_j γ_j z_j(g,t) + Σ_c β(g,c)·hill_c(adstock_c(x(g,·,c)/p_g))(t) + ε(g,t) ],
//! ε ~ Normal(0, σ)
//! adstock(x)(t) = Σ_{l=0}^{L} α^l x(t−l) / Σ_{l=0}^{L} α^l     (x before week 0 is 0)
//! hill(a)       = a^n / (a^n + ec^n)
//! ```
//! with P = 52.18 and x the channel's media driver (its exposure column if it has one, else spend).
//! These are the model's `geometric` adstock with `normalize = true` and its `hill` saturation
//! (`transforms::adstock`, `transforms::saturation`); `ec` is in per-capita media units.
//!
//! The true ROI of channel c is Σ_{g,t} p_g·β(g,c)·hill_c(…)(t) / Σ_{g,t} spend(g,t,c) over all
//! weeks, in KPI units (the KPI is sales in money, so it is revenue per unit of spend). β(g,c) is set
//! so that this ROI equals a chosen round number.

pub mod panel;

use serde::Serialize;
use std::fmt::Write as _;

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, fast, and fixed forever, so the demo files are
/// reproducible bit for bit.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform on [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal by Box–Muller (one of the pair; simple and exact).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Normalised geometric adstock with window L = `max_lag` (x before the first period is 0).
pub fn geometric_adstock(x: &[f64], alpha: f64, max_lag: usize) -> Vec<f64> {
    let w: Vec<f64> = (0..=max_lag).map(|l| alpha.powi(l as i32)).collect();
    let total: f64 = w.iter().sum();
    (0..x.len()).map(|t| (0..=max_lag.min(t)).map(|l| w[l] * x[t - l]).sum::<f64>() / total).collect()
}

/// Hill saturation a^n / (a^n + ec^n) (0 at a = 0).
pub fn hill(a: f64, ec: f64, slope: f64) -> f64 {
    if a <= 0.0 { 0.0 } else { 1.0 / (1.0 + (ec / a).powf(slope)) }
}

/// Yearly period in weeks used by the demos.
const PERIOD: f64 = 52.18;

/// The true parameters of one channel.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelTruth {
    pub name: String,
    pub spend_column: String,
    /// The media driver's column if it is not the spend.
    pub exposure_column: Option<String>,
    pub adstock: &'static str,
    pub adstock_alpha: f64,
    pub max_lag: usize,
    pub normalize: bool,
    pub saturation: &'static str,
    /// Hill half-saturation in per-capita media units (media units for the national demo).
    pub hill_ec: f64,
    /// `hill_ec` divided by the mean of the non-zero per-capita adstock inputs x/p_g — the scale-free
    /// half-saturation ("1" = saturates half-way at the channel's typical level).
    pub hill_ec_relative_to_mean_nonzero_media: f64,
    pub hill_slope: f64,
    /// β_c: per-capita KPI at full saturation (geo demo: the geo-average; β(g,c) = β_c·exp(τ_c·z)).
    pub beta: f64,
    /// τ_c, the geo spread of log β (0 for the national demo).
    pub beta_geo_sd: f64,
    /// True ROI over all weeks (KPI units per unit of spend).
    pub roi: f64,
    pub total_spend: f64,
    pub total_contribution: f64,
    /// Share of the total KPI due to the channel.
    pub contribution_share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ControlTruth {
    pub column: String,
    /// γ_j, per-capita KPI per unit of the control.
    pub coefficient: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GeoTruth {
    pub geo: String,
    pub population: f64,
    /// a_g, per-capita intercept.
    pub intercept: f64,
    /// β(g,c) per channel, in channel order.
    pub beta: Vec<f64>,
    /// ROI of each channel in this geo.
    pub roi: Vec<f64>,
}

/// Everything that generated a demo dataset.
#[derive(Debug, Clone, Serialize)]
pub struct Truth {
    pub description: String,
    pub formula: String,
    pub seed: u64,
    pub weeks: usize,
    pub first_week: String,
    pub kpi_column: String,
    /// Per-capita mean intercept (a_g for the national demo).
    pub intercept: f64,
    /// δ: per-capita trend over the whole period.
    pub trend_total: f64,
    pub seasonality_period: f64,
    /// (s_k, c_k) for k = 1..order.
    pub seasonality_sin_cos: Vec<(f64, f64)>,
    pub controls: Vec<ControlTruth>,
    /// σ, per-capita noise sd.
    pub noise_sd: f64,
    pub channels: Vec<ChannelTruth>,
    /// Per-geo parameters (geo demo only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub geos: Vec<GeoTruth>,
}

/// A simulated dataset: the CSV text and its truth.
#[derive(Debug, Clone)]
pub struct Demo {
    pub csv: String,
    pub truth: Truth,
}

impl Demo {
    /// The truth as pretty JSON (what `data/*_truth.json` holds).
    pub fn truth_json(&self) -> String {
        serde_json::to_string_pretty(&self.truth).unwrap_or_default() + "\n"
    }
}

/// Seed of the national demo.
pub const NATIONAL_SEED: u64 = 20_240_601;
/// Seed of the geo demo.
pub const GEO_SEED: u64 = 20_240_602;
/// 2021-01-04, a Monday, as days since 1970-01-01.
const FIRST_WEEK: f64 = 18_631.0;

/// A price index per geo and week: 1 + 3 % half-yearly swing + 2 % noise, 4 decimals (the demo's
/// control; the scale panels' too).
fn price_index(rng: &mut SplitMix64, g_n: usize, t_n: usize) -> Vec<Vec<f64>> {
    (0..g_n)
        .map(|_| {
            (0..t_n)
                .map(|t| {
                    let s = (2.0 * std::f64::consts::PI * t as f64 / 26.0).sin();
                    round_to(1.0 + 0.03 * s + 0.02 * rng.normal(), 4)
                })
                .collect()
        })
        .collect()
}

fn round_to(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

struct ChannelPlan {
    name: &'static str,
    alpha: f64,
    ec_factor: f64,
    slope: f64,
    roi: f64,
    tau: f64,
}

const PLANS: [ChannelPlan; 3] = [
    ChannelPlan { name: "tv", alpha: 0.6, ec_factor: 1.0, slope: 1.5, roi: 1.4, tau: 0.25 },
    ChannelPlan { name: "search", alpha: 0.2, ec_factor: 0.8, slope: 1.0, roi: 2.6, tau: 0.15 },
    ChannelPlan { name: "social", alpha: 0.4, ec_factor: 1.2, slope: 1.2, roi: 0.9, tau: 0.3 },
];

/// Per-capita weekly spend patterns for T weeks: (tv, search, social spend, social impressions).
fn spend_patterns(rng: &mut SplitMix64, t_n: usize, level: f64) -> [Vec<f64>; 4] {
    let season = |t: usize| (2.0 * std::f64::consts::PI * t as f64 / PERIOD).sin();
    // TV: flights of 4–8 weeks on, 2–6 weeks off, heavier before the yearly peak
    let mut tv = vec![0.0; t_n];
    let mut t = (rng.uniform() * 3.0) as usize;
    while t < t_n {
        let on = 4 + (rng.uniform() * 5.0) as usize;
        let weekly = level * (12.0 + 10.0 * rng.uniform()) * (1.0 + 0.3 * season(t + 4));
        for v in tv.iter_mut().take((t + on).min(t_n)).skip(t) {
            *v = weekly * (0.85 + 0.3 * rng.uniform());
        }
        t += on + 2 + (rng.uniform() * 5.0) as usize;
    }
    // Search: always on, follows demand (seasonality) and lifts during TV flights
    let search: Vec<f64> = (0..t_n)
        .map(|t| {
            let lift = if tv[t] > 0.0 { 1.15 } else { 1.0 };
            level * 5.0 * (1.0 + 0.25 * season(t)) * lift * (1.0 + 0.1 * rng.normal()).max(0.5)
        })
        .collect();
    // Social: a slow random walk in budget; impressions at a drifting CPM
    let mut budget = 4.0;
    let mut cpm = 7.5;
    let mut social = vec![0.0; t_n];
    let mut impressions = vec![0.0; t_n];
    for t in 0..t_n {
        budget = (budget + 0.4 * rng.normal()).clamp(1.5, 8.0);
        cpm = (cpm + 0.15 * rng.normal()).clamp(5.0, 10.0);
        social[t] = level * budget;
        impressions[t] = social[t] / cpm * 1000.0;
    }
    [tv, search, social, impressions]
}

/// The national demo: 156 weeks from 2021-01-04; channels tv, search and social (social's
/// impressions drive its effect); controls `price_index` and `promo`.
pub fn national() -> Demo {
    let seed = NATIONAL_SEED;
    let mut rng = SplitMix64::new(seed);
    let t_n = 156;
    let [tv, search, social, social_imp] = spend_patterns(&mut rng, t_n, 1000.0);
    let tv: Vec<f64> = tv.iter().map(|&x| round_to(x, 2)).collect();
    let search: Vec<f64> = search.iter().map(|&x| round_to(x, 2)).collect();
    let social: Vec<f64> = social.iter().map(|&x| round_to(x, 2)).collect();
    let social_imp: Vec<f64> = social_imp.iter().map(|&x| x.round()).collect();
    let price: Vec<f64> = (0..t_n)
        .map(|t| round_to(1.0 + 0.03 * (2.0 * std::f64::consts::PI * t as f64 / 26.0).sin() + 0.015 * rng.normal(), 4))
        .collect();
    let promo: Vec<f64> = (0..t_n).map(|_| if rng.uniform() < 0.08 { 1.0 } else { 0.0 }).collect();

    let media = [&tv, &search, &social_imp];
    let spends = [&tv, &search, &social];
    let (intercept, trend_total, noise_sd) = (60_000.0, 8_000.0, 2_500.0);
    let sc = vec![(5_000.0, 2_500.0), (-1_500.0, 800.0)];
    let controls = vec![
        ControlTruth { column: "price_index".into(), coefficient: -40_000.0 },
        ControlTruth { column: "promo".into(), coefficient: 7_000.0 },
    ];
    let ctrl_values = [&price, &promo];

    let mut y = vec![0.0; t_n];
    for (t, yt) in y.iter_mut().enumerate() {
        *yt = intercept + trend_total * t as f64 / (t_n - 1) as f64 + seasonal(&sc, t);
        for (c, v) in controls.iter().zip(ctrl_values) {
            // centre the price index at 1 so the intercept stays the baseline level
            let z = if c.column == "price_index" { v[t] - 1.0 } else { v[t] };
            *yt += c.coefficient * z;
        }
    }
    let mut channels = Vec::new();
    let mut contributions = Vec::new();
    for (c, plan) in PLANS.iter().enumerate() {
        let a = geometric_adstock(media[c], plan.alpha, 8);
        let mean_nz = mean_nonzero(media[c]);
        let ec = plan.ec_factor * mean_nz;
        let sat: Vec<f64> = a.iter().map(|&v| hill(v, ec, plan.slope)).collect();
        let total_spend: f64 = spends[c].iter().sum();
        let beta = plan.roi * total_spend / sat.iter().sum::<f64>();
        let contrib: Vec<f64> = sat.iter().map(|s| beta * s).collect();
        channels.push(ChannelTruth {
            name: plan.name.into(),
            spend_column: format!("{}_spend", plan.name),
            exposure_column: (plan.name == "social").then(|| "social_impressions".to_string()),
            adstock: "geometric",
            adstock_alpha: plan.alpha,
            max_lag: 8,
            normalize: true,
            saturation: "hill",
            hill_ec: ec,
            hill_ec_relative_to_mean_nonzero_media: plan.ec_factor,
            hill_slope: plan.slope,
            beta,
            beta_geo_sd: 0.0,
            roi: plan.roi,
            total_spend,
            total_contribution: contrib.iter().sum(),
            contribution_share: 0.0,
        });
        contributions.push(contrib);
    }
    for (t, yt) in y.iter_mut().enumerate() {
        *yt += contributions.iter().map(|c| c[t]).sum::<f64>() + noise_sd * rng.normal();
    }
    let y: Vec<f64> = y.iter().map(|&v| round_to(v, 2)).collect();
    let total_y: f64 = y.iter().sum();
    for ch in &mut channels {
        ch.contribution_share = ch.total_contribution / total_y;
    }

    let mut csv = String::from("date,sales,tv_spend,search_spend,social_spend,social_impressions,price_index,promo\n");
    for t in 0..t_n {
        let _ = writeln!(
            csv,
            "{},{:.2},{:.2},{:.2},{:.2},{},{:.4},{}",
            mmloop_data::format_date(FIRST_WEEK + 7.0 * t as f64),
            y[t],
            tv[t],
            search[t],
            social[t],
            social_imp[t],
            price[t],
            promo[t]
        );
    }
    let truth = Truth {
        description: "mmloop national demo: 156 weeks of simulated sales with TV, search and social media. \
                      Generated by mmloop_mmm::simulate::national(); see that module for the formula."
            .into(),
        formula: "sales(t) = intercept + trend_total*t/(T-1) + sum_k s_k sin(2 pi k t/P) + c_k cos(2 pi k t/P) \
                  + price_coef*(price_index-1) + promo_coef*promo + sum_c beta_c*hill(adstock_c(media_c)) + N(0, noise_sd); \
                  adstock = geometric normalised over lags 0..max_lag; hill(a) = a^n/(a^n+ec^n); media = \
                  exposure column if given else spend"
            .into(),
        seed,
        weeks: t_n,
        first_week: mmloop_data::format_date(FIRST_WEEK),
        kpi_column: "sales".into(),
        intercept,
        trend_total,
        seasonality_period: PERIOD,
        seasonality_sin_cos: sc,
        controls,
        noise_sd,
        channels,
        geos: Vec::new(),
    };
    Demo { csv, truth }
}

fn seasonal(sc: &[(f64, f64)], t: usize) -> f64 {
    sc.iter()
        .enumerate()
        .map(|(k, (s, c))| {
            let a = 2.0 * std::f64::consts::PI * (k + 1) as f64 * t as f64 / PERIOD;
            s * a.sin() + c * a.cos()
        })
        .sum()
}

fn mean_nonzero(x: &[f64]) -> f64 {
    let nz: Vec<f64> = x.iter().copied().filter(|&v| v != 0.0).collect();
    if nz.is_empty() { 1.0 } else { nz.iter().sum::<f64>() / nz.len() as f64 }
}

/// Geos of the geo demo with their populations.
const GEOS: [(&str, f64); 10] = [
    ("atlanta", 1_200_000.0),
    ("boston", 1_900_000.0),
    ("chicago", 3_400_000.0),
    ("dallas", 2_600_000.0),
    ("denver", 900_000.0),
    ("houston", 2_800_000.0),
    ("miami", 1_500_000.0),
    ("phoenix", 1_700_000.0),
    ("seattle", 1_300_000.0),
    ("tampa", 600_000.0),
];

/// The geo demo: 10 geos × 104 weeks from 2021-01-04 with a population column; channels tv,
/// search and social (spend only), control `price_index`. Media effects vary by geo as
/// β(g,c) = β_c·exp(τ_c·z(g,c)), z ~ N(0, 1) — the model's partial-pooling hierarchy.
pub fn geo() -> Demo {
    geo_world(None).0
}

/// A heavy-up geo test run inside the geo demo's world: `channel` gets `extra_per_capita` more spend
/// per person per week in `geos` over weeks `start_week..start_week + weeks` (0-based week indices).
#[derive(Debug, Clone, Copy)]
pub struct HeavyUp {
    pub channel: usize,
    pub geos: &'static [&'static str],
    pub start_week: usize,
    pub weeks: usize,
    pub extra_per_capita: f64,
}

/// The test of `data/demo_geo_test.csv`: search spend raised about sevenfold in boston, denver and seattle (the design `mmloop design` ranks first on
/// `demo_geo.csv` for 3 geos and 8 weeks) for 8 weeks from
/// 2022-07-18 (weeks 80..87 of 104, so the 8-week carry-over also lies in the data).
pub const DEMO_GEO_TEST: HeavyUp =
    HeavyUp { channel: 1, geos: &["boston", "denver", "seattle"], start_week: 80, weeks: 8, extra_per_capita: 0.3 };

/// The truth of a simulated geo test: what was done and what it truly caused.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GeoTestTruth {
    pub description: String,
    pub channel: String,
    pub spend_column: String,
    pub geos: Vec<String>,
    /// First and last test week (inclusive), in the data's date notation.
    pub start: String,
    pub end: String,
    /// Extra spend over the window, summed over the treated geos.
    pub spend_change: f64,
    /// Σ over treated geos and test weeks of p_g·β(g,c)·[hill(adstock(x+Δ)) − hill(adstock(x))]:
    /// the KPI the heavy-up caused inside the window (what `mmloop lift --end <end>` measures).
    pub incremental_kpi_in_window: f64,
    /// The same sum through the end of the carry-over (max_lag weeks after the window): what the
    /// MMM's lift-test likelihood term implies.
    pub incremental_kpi_with_carryover: f64,
    /// incremental_kpi_in_window / spend_change.
    pub iroas_in_window: f64,
}

/// The geo demo's world with [`DEMO_GEO_TEST`] run in it: the same seed, parameters, spend and noise as
/// [`geo`] (β and ec are the world's, set from the spend without the test), plus the heavy-up. Rows
/// outside the treated geos, and treated rows before the window, are identical to `demo_geo.csv`.
pub fn geo_test() -> (Demo, GeoTestTruth) {
    let (mut demo, truth) = geo_world(Some(&DEMO_GEO_TEST));
    demo.truth.description = "mmloop geo demo world with a search heavy-up test (see demo_geo_test_truth.json). \
                              Generated by mmloop_mmm::simulate::geo_test()."
        .into();
    (demo, truth.unwrap_or_default())
}

fn geo_world(test: Option<&HeavyUp>) -> (Demo, Option<GeoTestTruth>) {
    let seed = GEO_SEED;
    let mut rng = SplitMix64::new(seed);
    let t_n = 104;
    let g_n = GEOS.len();
    let (intercept, trend_total, noise_sd) = (2.0, 0.15, 0.06);
    let sc = vec![(0.18, 0.08), (-0.05, 0.03)];
    let price_coef = -1.2;

    // national TV schedule (flights are bought nationally), per-geo weights; search and social per geo
    let [tv_nat, ..] = spend_patterns(&mut rng, t_n, 0.008);
    let mut spend = vec![[vec![0.0; t_n], vec![0.0; t_n], vec![0.0; t_n]]; g_n]; // per capita, rounded later
    let mut geo_intercept = Vec::with_capacity(g_n);
    for (g, (_, pop)) in GEOS.iter().enumerate() {
        let [_, search, social, _] = spend_patterns(&mut rng, t_n, 0.008);
        let tv_weight = (0.25 * rng.normal()).exp();
        for t in 0..t_n {
            // round total spend to cents, then go back to per capita so the file is exact
            spend[g][0][t] = round_to(tv_nat[t] * tv_weight * pop, 2) / pop;
            spend[g][1][t] = round_to(search[t] * pop, 2) / pop;
            spend[g][2][t] = round_to(social[t] * pop, 2) / pop;
        }
        geo_intercept.push(intercept * (0.1 * rng.normal()).exp());
    }
    let price = price_index(&mut rng, g_n, t_n);
    let z: Vec<[f64; 3]> = (0..g_n).map(|_| [rng.normal(), rng.normal(), rng.normal()]).collect();

    let mut channels = Vec::new();
    let mut contrib = vec![vec![vec![0.0; t_n]; 3]; g_n]; // per capita, before β
    let mut geo_beta = vec![vec![0.0; 3]; g_n];
    let mut test_truth = None;
    for (c, plan) in PLANS.iter().enumerate() {
        let all: Vec<f64> = (0..g_n).flat_map(|g| spend[g][c].clone()).collect();
        let ec = plan.ec_factor * mean_nonzero(&all);
        let mut weighted_sat = 0.0;
        for g in 0..g_n {
            let a = geometric_adstock(&spend[g][c], plan.alpha, 8);
            let m = (plan.tau * z[g][c]).exp();
            for t in 0..t_n {
                contrib[g][c][t] = hill(a[t], ec, plan.slope);
                weighted_sat += GEOS[g].1 * m * contrib[g][c][t];
            }
        }
        let total_spend: f64 = (0..g_n).map(|g| GEOS[g].1 * spend[g][c].iter().sum::<f64>()).sum();
        let beta = plan.roi * total_spend / weighted_sat;
        for g in 0..g_n {
            geo_beta[g][c] = beta * (plan.tau * z[g][c]).exp();
        }
        // the heavy-up: spend and contributions of the treated cells change, β and ec do not
        if let Some(h) = test.filter(|h| h.channel == c) {
            let (mut inc_window, mut inc_all, mut spend_change) = (0.0, 0.0, 0.0);
            for (g, (name, pop)) in GEOS.iter().enumerate() {
                if !h.geos.contains(name) {
                    continue;
                }
                for x in spend[g][c].iter_mut().take((h.start_week + h.weeks).min(t_n)).skip(h.start_week) {
                    *x += h.extra_per_capita;
                    spend_change += h.extra_per_capita * pop;
                }
                let a = geometric_adstock(&spend[g][c], plan.alpha, 8);
                for t in 0..t_n {
                    let new = hill(a[t], ec, plan.slope);
                    let d = pop * geo_beta[g][c] * (new - contrib[g][c][t]);
                    inc_all += d;
                    if t >= h.start_week && t < h.start_week + h.weeks {
                        inc_window += d;
                    }
                    contrib[g][c][t] = new;
                }
            }
            let last = h.start_week + h.weeks - 1;
            test_truth = Some(GeoTestTruth {
                description: format!(
                    "A heavy-up of {} in {} geos of the geo demo world: {} more per person per week over {} weeks. \
                     The noise is the world's (the same draws as demo_geo.csv), so the incremental KPI is exact.",
                    plan.name,
                    h.geos.len(),
                    h.extra_per_capita,
                    h.weeks
                ),
                channel: plan.name.into(),
                spend_column: format!("{}_spend", plan.name),
                geos: h.geos.iter().map(|g| g.to_string()).collect(),
                start: mmloop_data::format_date(FIRST_WEEK + 7.0 * h.start_week as f64),
                end: mmloop_data::format_date(FIRST_WEEK + 7.0 * last as f64),
                spend_change: round_to(spend_change, 2),
                incremental_kpi_in_window: round_to(inc_window, 2),
                incremental_kpi_with_carryover: round_to(inc_all, 2),
                iroas_in_window: inc_window / spend_change,
            });
        }
        channels.push(ChannelTruth {
            name: plan.name.into(),
            spend_column: format!("{}_spend", plan.name),
            exposure_column: None,
            adstock: "geometric",
            adstock_alpha: plan.alpha,
            max_lag: 8,
            normalize: true,
            saturation: "hill",
            hill_ec: ec,
            hill_ec_relative_to_mean_nonzero_media: plan.ec_factor,
            hill_slope: plan.slope,
            beta,
            beta_geo_sd: plan.tau,
            roi: plan.roi,
            total_spend,
            total_contribution: plan.roi * total_spend,
            contribution_share: 0.0,
        });
    }

    let mut csv = String::from("date,geo,population,sales,tv_spend,search_spend,social_spend,price_index\n");
    let mut total_y = 0.0;
    let mut geos = Vec::with_capacity(g_n);
    let mut rows: Vec<(usize, usize, f64)> = Vec::with_capacity(g_n * t_n);
    for (g, (name, pop)) in GEOS.iter().enumerate() {
        for t in 0..t_n {
            let mut pc = geo_intercept[g] + trend_total * t as f64 / (t_n - 1) as f64 + seasonal(&sc, t);
            pc += price_coef * (price[g][t] - 1.0);
            pc += (0..3).map(|c| geo_beta[g][c] * contrib[g][c][t]).sum::<f64>();
            pc += noise_sd * rng.normal();
            let y = round_to(pop * pc, 2);
            total_y += y;
            rows.push((g, t, y));
        }
        let roi = (0..3)
            .map(|c| {
                let s: f64 = spend[g][c].iter().sum::<f64>() * pop;
                geo_beta[g][c] * pop * contrib[g][c].iter().sum::<f64>() / s
            })
            .collect();
        geos.push(GeoTruth {
            geo: name.to_string(),
            population: *pop,
            intercept: geo_intercept[g],
            beta: geo_beta[g].clone(),
            roi,
        });
    }
    // long format, sorted by date then geo, as most exports are
    rows.sort_by_key(|&(g, t, _)| (t, g));
    for (g, t, y) in rows {
        let pop = GEOS[g].1;
        let _ = writeln!(
            csv,
            "{},{},{},{:.2},{:.2},{:.2},{:.2},{:.4}",
            mmloop_data::format_date(FIRST_WEEK + 7.0 * t as f64),
            GEOS[g].0,
            pop,
            y,
            spend[g][0][t] * pop,
            spend[g][1][t] * pop,
            spend[g][2][t] * pop,
            price[g][t]
        );
    }
    for ch in &mut channels {
        ch.contribution_share = ch.total_contribution / total_y;
    }
    let truth = Truth {
        description: "mmloop geo demo: 10 geos x 104 weeks of simulated sales with TV (national flights), search \
                      and social. Generated by mmloop_mmm::simulate::geo(); see that module for the formula."
            .into(),
        formula: "sales(g,t) = population_g * [intercept_g + trend_total*t/(T-1) + sum_k s_k sin(2 pi k t/P) + \
                  c_k cos(2 pi k t/P) + price_coef*(price_index-1) + sum_c beta(g,c)*hill(adstock_c(spend_c/population_g)) \
                  + N(0, noise_sd)]; beta(g,c) = beta_c*exp(tau_c*z(g,c)); adstock = geometric normalised over lags \
                  0..max_lag; hill(a) = a^n/(a^n+ec^n)"
            .into(),
        seed,
        weeks: t_n,
        first_week: mmloop_data::format_date(FIRST_WEEK),
        kpi_column: "sales".into(),
        intercept,
        trend_total,
        seasonality_period: PERIOD,
        seasonality_sin_cos: sc,
        controls: vec![ControlTruth { column: "price_index".into(), coefficient: price_coef }],
        noise_sd,
        channels,
        geos,
    };
    (Demo { csv, truth }, test_truth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_normals_have_unit_moments() {
        let mut r = SplitMix64::new(1);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        // standard errors: 1/sqrt(n) = 0.0022 for the mean, sqrt(2/n) = 0.0032 for the variance; 5 se
        assert!(mean.abs() < 0.011 && (var - 1.0).abs() < 0.016, "{mean} {var}");
    }

    #[test]
    fn adstock_is_a_weighted_average_and_hill_halves_at_ec() {
        let a = geometric_adstock(&[1.0, 0.0, 0.0, 0.0], 0.5, 2);
        let total = 1.0 + 0.5 + 0.25;
        assert_eq!(a, vec![1.0 / total, 0.5 / total, 0.25 / total, 0.0]);
        let steady = geometric_adstock(&[3.0; 10], 0.7, 4);
        assert!((steady[9] - 3.0).abs() < 1e-12, "a constant input is unchanged once the window is full");
        assert_eq!(hill(2.0, 2.0, 1.7), 0.5);
        assert_eq!(hill(0.0, 2.0, 0.5), 0.0);
    }
}
