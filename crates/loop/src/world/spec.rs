//! What a world is made of: [`WorldSpec`] (one world, fully stated) and [`WorldDistribution`]
//! (the stated distribution `mmloop simulate` draws worlds from).

use super::WorldError;
use crate::value::rng;
use serde::{Deserialize, Serialize};

/// How a channel's spend moves over the observed history (before any recommendation is followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpendPattern {
    /// Always on: a flat national level with the yearly season (±20 %).
    AlwaysOn,
    /// Flights of 4–8 weeks on, 2–6 weeks off (bought nationally, as TV is).
    Flighted,
}

/// The truth of one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelSpec {
    pub name: String,
    /// True ROI over the initial observed history (KPI per unit of spend); β is solved from it.
    pub roi: f64,
    /// Geometric adstock decay α (normalised weights α^l / Σα^l, l = 0..max_lag).
    pub adstock_alpha: f64,
    /// Hill half-saturation as a multiple of the channel's mean non-zero per-capita weekly spend in
    /// the initial history (1 = half-saturated at its typical level).
    pub hill_ec_factor: f64,
    pub hill_slope: f64,
    /// Mean national spend per week in the initial history (money).
    pub weekly_spend: f64,
    pub pattern: SpendPattern,
    /// λ_c: how the channel's log-spend loads on the unobserved demand (> 0: spend follows demand,
    /// so the observational MMM over-credits it; < 0: spend leans against demand, under-credited).
    pub demand_loading: f64,
    /// τ_c: geo spread of log β (β(g,c) = β_c·exp(τ_c·z), z ~ N(0, 1)), the model's partial pooling.
    pub beta_geo_sd: f64,
    /// Own week-to-week log-spend noise (independent of demand): what identifies the channel.
    pub spend_noise_sd: f64,
}

/// One world, fully stated. Every random draw of the world is a function of `seed`.
///
/// The formula, per geo g (population p_g) and week t, in per-capita units:
/// ```text
/// y(g,t)/p_g = a_g + δ·t/(T₀−1) + Σ_k s_k sin(2πkt/P) + c_k cos(2πkt/P)
///            + η·d(g,t) + Σ_c β(g,c)·hill(adstock(x_c(g,·))(t); ec_c, n_c) + σ·ε(g,t)
/// d(g,t)   = √φ·n(t) + √(1−φ)·e(g,t)        n, e: AR(1), ρ = demand_rho, unit stationary variance
/// x_c(g,t) = S_c(t)·share(g,c)/p_g · exp(κ·λ_c·d(g,t) + s_c·u(g,c,t) − ½(κ²λ_c² + s_c²))
/// ```
/// d is the demand the model cannot see; κ = `confounding` scales how much spend follows it (0: not
/// at all, so the observational MMM is unbiased up to the demand's autocorrelated noise). S_c(t)
/// is the national weekly spend (the history's pattern, later the recommendation), share(g,c) the
/// channel's geo split ∝ p_g·w(g,c), w(g,c) = exp(0.2·z). The adstock and saturation are
/// `mmloop_mmm::simulate::{geometric_adstock, hill}` (the model's normalised geometric adstock and
/// Hill curve).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorldSpec {
    pub seed: u64,
    pub n_geos: usize,
    /// Geo populations are drawn log-uniformly in this range.
    pub population_range: (f64, f64),
    /// Weeks of observed history before the first cycle (T₀).
    pub history_weeks: usize,
    /// Adstock window L (weeks); the MMM config uses the same.
    pub max_lag: usize,
    pub channels: Vec<ChannelSpec>,
    /// a: mean per-capita weekly KPI intercept (geo intercepts a_g = a·exp(0.1·z)).
    pub intercept: f64,
    /// δ: per-capita trend over the initial history.
    pub trend_total: f64,
    /// Yearly seasonality (s_k, c_k), per capita.
    pub seasonality: Vec<(f64, f64)>,
    /// σ: per-capita KPI noise sd.
    pub noise_sd: f64,
    /// η: per-capita KPI per unit of latent demand.
    pub demand_effect: f64,
    /// φ: the national share of the demand's variance.
    pub demand_national_share: f64,
    pub demand_rho: f64,
    /// κ: confounding strength (0 = none).
    pub confounding: f64,
}

/// Channel names of generated worlds, in order.
pub const CHANNEL_NAMES: [&str; 8] = ["tv", "search", "social", "display", "video", "radio", "print", "ooh"];

impl Default for WorldSpec {
    /// The demo world: 12 geos × 104 weeks, four channels; search follows demand (over-credited),
    /// social leans against it (under-credited), TV flights and display are independent of it.
    fn default() -> Self {
        let ch = |name: &str, roi, alpha, ec, slope, spend, pattern, loading| ChannelSpec {
            name: name.into(),
            roi,
            adstock_alpha: alpha,
            hill_ec_factor: ec,
            hill_slope: slope,
            weekly_spend: spend,
            pattern,
            demand_loading: loading,
            beta_geo_sd: 0.0,
            spend_noise_sd: 0.25,
        };
        Self {
            seed: 20_261_130,
            n_geos: 12,
            population_range: (400_000.0, 3_500_000.0),
            history_weeks: 104,
            max_lag: 8,
            channels: vec![
                ch("tv", 1.5, 0.6, 1.0, 1.5, 1_200_000.0, SpendPattern::Flighted, 0.0),
                ch("search", 2.0, 0.2, 0.8, 1.0, 800_000.0, SpendPattern::AlwaysOn, 1.0),
                ch("social", 1.0, 0.4, 1.2, 1.2, 600_000.0, SpendPattern::AlwaysOn, -0.8),
                ch("display", 0.7, 0.3, 1.0, 1.0, 500_000.0, SpendPattern::AlwaysOn, 0.0),
            ],
            intercept: 2.0,
            trend_total: 0.1,
            seasonality: vec![(0.12, 0.05), (-0.03, 0.02)],
            noise_sd: 0.03,
            demand_effect: 0.03,
            demand_national_share: 0.5,
            demand_rho: 0.85,
            confounding: 1.0,
        }
    }
}

impl WorldSpec {
    /// The demo world with another seed.
    pub fn demo(seed: u64) -> Self {
        Self { seed, ..Self::default() }
    }

    /// Checks every number makes sense; errors name the field.
    pub fn validate(&self) -> Result<(), WorldError> {
        let bad = |field: String, why: &str| Err(WorldError::Spec { field, message: why.to_string() });
        if self.n_geos < 4 {
            return bad("n_geos".into(), "a geo world needs at least 4 geos (treated and control geos for tests)");
        }
        let (lo, hi) = self.population_range;
        if !(lo.is_finite() && lo >= 1.0 && hi >= lo && hi.is_finite()) {
            return bad("population_range".into(), "must be finite with 1 <= low <= high");
        }
        if self.history_weeks < 2 * (self.max_lag + 1) + 10 {
            return bad(
                "history_weeks".into(),
                "too short for the adstock window and the baseline; use >= 2·(max_lag+1)+10",
            );
        }
        if self.channels.is_empty() {
            return bad("channels".into(), "a world needs at least one channel");
        }
        for (i, c) in self.channels.iter().enumerate() {
            let f = |k: &str| format!("channels[{i}] ({}).{k}", c.name);
            if c.name.trim().is_empty() || self.channels[..i].iter().any(|o| o.name == c.name) {
                return bad(f("name"), "channel names must be non-empty and distinct");
            }
            if !(c.roi.is_finite() && c.roi > 0.0) {
                return bad(f("roi"), "must be a positive number");
            }
            if !(0.0..1.0).contains(&c.adstock_alpha) {
                return bad(f("adstock_alpha"), "must be in [0, 1)");
            }
            if !(c.hill_ec_factor.is_finite() && c.hill_ec_factor > 0.0) {
                return bad(f("hill_ec_factor"), "must be positive");
            }
            if !(c.hill_slope.is_finite() && c.hill_slope > 0.0) {
                return bad(f("hill_slope"), "must be positive");
            }
            if !(c.weekly_spend.is_finite() && c.weekly_spend > 0.0) {
                return bad(f("weekly_spend"), "must be positive");
            }
            for (k, v) in [("demand_loading", c.demand_loading), ("beta_geo_sd", c.beta_geo_sd)] {
                if !v.is_finite() || (k == "beta_geo_sd" && v < 0.0) {
                    return bad(f(k), "must be finite (and >= 0 for a spread)");
                }
            }
            if !(c.spend_noise_sd.is_finite() && c.spend_noise_sd >= 0.0) {
                return bad(f("spend_noise_sd"), "must be >= 0");
            }
        }
        for (k, v) in
            [("intercept", self.intercept), ("noise_sd", self.noise_sd), ("demand_effect", self.demand_effect)]
        {
            if !(v.is_finite() && v >= 0.0) {
                return bad(k.into(), "must be a finite non-negative number");
            }
        }
        if self.noise_sd <= 0.0 {
            return bad("noise_sd".into(), "must be positive");
        }
        if !(0.0..=1.0).contains(&self.demand_national_share) {
            return bad("demand_national_share".into(), "must be in [0, 1]");
        }
        if !(0.0..1.0).contains(&self.demand_rho) {
            return bad("demand_rho".into(), "must be in [0, 1)");
        }
        if !(self.confounding.is_finite() && self.confounding >= 0.0) {
            return bad("confounding".into(), "must be >= 0 (0 = none)");
        }
        if !self.trend_total.is_finite() || self.seasonality.iter().any(|(s, c)| !s.is_finite() || !c.is_finite()) {
            return bad("trend_total/seasonality".into(), "must be finite");
        }
        Ok(())
    }

    pub fn channel_names(&self) -> Vec<String> {
        self.channels.iter().map(|c| c.name.clone()).collect()
    }
}

/// The stated distribution of worlds for `mmloop simulate`: each range is sampled uniformly
/// (log-uniformly for ROI and populations), independently per world and channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorldDistribution {
    /// Number of channels, inclusive range (at most 8).
    pub channels: (usize, usize),
    /// Number of geos, inclusive range.
    pub geos: (usize, usize),
    pub history_weeks: usize,
    /// True ROI, log-uniform.
    pub roi: (f64, f64),
    pub adstock_alpha: (f64, f64),
    pub hill_ec_factor: (f64, f64),
    pub hill_slope: (f64, f64),
    /// National weekly spend per channel, log-uniform.
    pub weekly_spend: (f64, f64),
    /// Probability that a channel runs in flights.
    pub p_flighted: f64,
    /// Per-capita noise sd σ.
    pub noise_sd: (f64, f64),
    /// Probability that a world has no confounding (κ = 0); otherwise κ ~ U(confounding).
    pub p_unconfounded: f64,
    pub confounding: (f64, f64),
    /// Channel demand loadings λ_c ~ U(demand_loading).
    pub demand_loading: (f64, f64),
    /// The rest of the world (baseline, demand process, populations) is this template's.
    pub template: WorldSpec,
}

impl Default for WorldDistribution {
    fn default() -> Self {
        Self {
            channels: (3, 8),
            geos: (8, 20),
            history_weeks: 104,
            roi: (0.4, 4.0),
            adstock_alpha: (0.1, 0.7),
            hill_ec_factor: (0.5, 1.5),
            hill_slope: (0.8, 2.0),
            weekly_spend: (80_000.0, 500_000.0),
            p_flighted: 0.25,
            noise_sd: (0.02, 0.06),
            p_unconfounded: 0.25,
            confounding: (0.2, 1.0),
            demand_loading: (-1.0, 1.0),
            template: WorldSpec::default(),
        }
    }
}

impl WorldDistribution {
    /// World `i` of the batch drawn with master seed `seed`: a pure function of (seed, i), so any
    /// subset of worlds can be drawn in any order on any thread.
    pub fn sample(&self, seed: u64, i: u64) -> WorldSpec {
        let mut k = 0u64;
        let mut u = || {
            k += 1;
            rng::uniform(seed, 0x5749_524c_4400 + i, k)
        };
        let mut lin = |(a, b): (f64, f64)| a + (b - a) * u();
        let int = |(a, b): (usize, usize), v: f64| a + ((b + 1 - a) as f64 * v) as usize;
        let n_ch = int(self.channels, lin((0.0, 1.0))).clamp(1, CHANNEL_NAMES.len());
        let n_geos = int(self.geos, lin((0.0, 1.0))).max(4);
        let noise_sd = lin(self.noise_sd);
        let confounding = if lin((0.0, 1.0)) < self.p_unconfounded { 0.0 } else { lin(self.confounding) };
        let log_uniform = |(a, b): (f64, f64), v: f64| (a.ln() + (b.ln() - a.ln()) * v).exp();
        let channels = (0..n_ch)
            .map(|c| {
                let roi = log_uniform(self.roi, lin((0.0, 1.0)));
                let weekly_spend = log_uniform(self.weekly_spend, lin((0.0, 1.0)));
                let pattern =
                    if lin((0.0, 1.0)) < self.p_flighted { SpendPattern::Flighted } else { SpendPattern::AlwaysOn };
                ChannelSpec {
                    name: CHANNEL_NAMES[c].into(),
                    roi,
                    adstock_alpha: lin(self.adstock_alpha),
                    hill_ec_factor: lin(self.hill_ec_factor),
                    hill_slope: lin(self.hill_slope),
                    weekly_spend,
                    pattern,
                    demand_loading: lin(self.demand_loading),
                    beta_geo_sd: self.template.channels.first().map_or(0.0, |t| t.beta_geo_sd),
                    spend_noise_sd: self.template.channels.first().map_or(0.25, |t| t.spend_noise_sd),
                }
            })
            .collect();
        WorldSpec {
            seed: rng::bits(seed, 0x5745_4544, i),
            n_geos,
            history_weeks: self.history_weeks,
            channels,
            noise_sd,
            confounding,
            ..self.template.clone()
        }
    }
}
