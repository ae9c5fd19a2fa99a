//! The validated description of a model: what `config.rs` produces from a TOML file and what the
//! model, the fit and the analysis consume. Every invariant is checked once, when the config is
//! parsed (column names exist, priors are valid, lags fit the data, ...); code that receives a
//! `ModelSpec` may rely on it.

use crate::priors::Prior;
use crate::transforms::{AdstockSpec, SaturationSpec, TransformOrder};
use mmloop_data::LiftTestRecord;
use std::path::PathBuf;

/// A whole model: data columns, media, baseline, likelihood, calibration and fitting settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub data: DataSpec,
    pub channels: Vec<ChannelSpec>,
    pub controls: Vec<ControlSpec>,
    pub baseline: BaselineSpec,
    pub likelihood: Likelihood,
    /// Prior on the noise scale σ, in units of the scaled KPI (see the model's scaling).
    pub noise_prior: Prior,
    /// Geo models: how media coefficients are shared across geos.
    pub pooling: Pooling,
    /// The last `holdout` periods are left out of the fit and used for out-of-sample metrics.
    pub holdout: usize,
    pub calibration: Calibration,
    pub fit: FitSettings,
}

/// Where the data is and which columns mean what.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSpec {
    pub path: PathBuf,
    pub time_column: String,
    /// `None` for a national model (one row per date).
    pub geo_column: Option<String>,
    pub kpi_column: String,
    /// Optional column of population per geo (constant over time), used to scale geo KPIs.
    pub population_column: Option<String>,
    /// Optional column of revenue per KPI unit (e.g. Meridian's `revenue_per_conversion`): ROI is
    /// then computed in money (revenue / spend) rather than KPI units per money.
    pub revenue_per_kpi_column: Option<String>,
}

/// One paid media channel.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSpec {
    pub name: String,
    /// Money spent per period (drives ROI).
    pub spend_column: String,
    /// Optional exposure (impressions, clicks) that drives the media effect instead of spend.
    pub exposure_column: Option<String>,
    pub adstock: AdstockSpec,
    pub saturation: SaturationSpec,
    pub order: TransformOrder,
    pub effect: EffectPrior,
}

/// How the channel's effect size is given a prior.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EffectPrior {
    /// A prior on the coefficient β (scaled units) directly.
    Coefficient(Prior),
    /// A prior on ROI (incremental KPI — or revenue with a revenue-per-KPI column — per unit of
    /// spend over the fitted period); β is derived from the ROI draw and the spend, as Meridian does.
    Roi(Prior),
}

/// A control variable (prices, promotions, events, ...), entering linearly.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlSpec {
    pub column: String,
    /// Prior on its coefficient (scaled units).
    pub prior: Prior,
}

/// Everything that is not media: intercept, trend and seasonality.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineSpec {
    /// Prior on the intercept (scaled KPI units). In geo models this is the population mean of the
    /// per-geo intercepts, which are partially pooled with scale `intercept_geo_sd`.
    pub intercept: Prior,
    pub intercept_geo_sd: GeoInterceptSd,
    pub trend: Trend,
    pub seasonality: Vec<Fourier>,
}

/// The sd σ_a of the geo intercepts a_g = μ_a + δ_g, δ_g ~ Normal(0, σ_a²) (scaled KPI units).
///
/// Sampled under a prior, the geos are partially pooled: the data estimate how far they differ
/// (mmloop's default, HalfNormal(1)). Fixed, each geo's intercept has its own Normal(μ_a, σ_a²)
/// prior and nothing is learnt about the spread: with a wide σ_a, independent intercepts, as
/// Meridian's `tau_g_excl_baseline ~ Normal(0, 5)` (on its standardised KPI) gives. Fixing it
/// removes a region of the posterior where a small σ_a lets a nearly saturated channel's per-geo
/// effects stand in for the intercepts (see `crate::config`, "Geo intercepts"). Written in a
/// config as the prior's table or as the bare number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GeoInterceptSd {
    /// Sampled: σ_a ~ the prior (partial pooling).
    Prior(Prior),
    /// Held at σ_a (> 0): independent geo intercepts around μ_a.
    Fixed(f64),
}

/// Trend component.
#[derive(Debug, Clone, PartialEq)]
pub enum Trend {
    None,
    /// Linear in time scaled to [0, 1] over the fitted period.
    Linear {
        slope: Prior,
    },
    /// Piecewise linear with `changepoints` equally spaced knots (Prophet-style), Laplace/normal
    /// prior on the slope changes.
    Piecewise {
        changepoints: usize,
        slope: Prior,
        delta: Prior,
    },
}

/// Fourier seasonality: Σ_{k=1}^{order} a_k sin(2πkt/period) + b_k cos(2πkt/period), t in periods
/// of the data (weeks for weekly data; 52.18 for yearly seasonality in weeks).
#[derive(Debug, Clone, PartialEq)]
pub struct Fourier {
    pub period: f64,
    pub order: usize,
    pub prior: Prior,
}

/// Observation model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Likelihood {
    Normal,
    /// Student-t with fixed degrees of freedom.
    StudentT {
        nu: f64,
    },
}

/// How geo models share media effects across geos.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pooling {
    /// One β per channel for all geos (also what a national model uses).
    Complete,
    /// β(g,c) = β_c · exp(τ_c · z(g,c)), z ~ N(0,1) (log-normal hierarchy, non-centred), τ_c ~ prior.
    Partial { tau: Prior },
}

/// Experiment evidence the model is calibrated with.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// ROI priors from experiment readouts, replacing the channel's effect prior.
    pub roi_priors: Vec<RoiPriorRecord>,
    /// Lift tests entering as likelihood terms.
    pub lift_tests: Vec<LiftTestRecord>,
    /// Evidence half-lives in weeks by channel name (`[calibration] half_lives`), validated positive
    /// and naming model channels; used by `mmloop fit --ledger` to age ledger readouts.
    pub half_lives: std::collections::BTreeMap<String, f64>,
    /// Whether the data already hold the tests' spend changes (`[calibration] tests_in_data`,
    /// default true): the data are the spend that happened, test included, so a lift term compares
    /// the data with the data less the test's change. `false` when the data are the spend without
    /// the test (a what-if on simulated or planned data): the term compares the data plus the
    /// change with the data. See [`crate::calibration`].
    pub tests_in_data: bool,
    /// Whether a lift term counts the carry-over after the test window (`[calibration]
    /// lift_counts_carryover`, default false). A geo-lift readout sums treated minus synthetic
    /// control over the record's window [start, end], so by default the term counts the model's
    /// lift over those periods only; the adstock tail after `end` is not in the readout. Set true
    /// for readouts whose number includes the full carry-over (for instance one measured through a
    /// cool-down, recorded with the spend window as start/end). In simulated worlds the tail after
    /// the window is 7–22 % of a test's lift (α 0.2–0.6), so counting it against a window-only
    /// readout under-credits the tested channel by as much.
    pub lift_counts_carryover: bool,
    /// s: the prior sd of each channel's observational bias b_c = ln(β_obs,c / β_c)
    /// (`[calibration] observational_bias_sd`, default 0 = none). With s > 0 the data's likelihood
    /// sees the channel through β(g,c)·exp(b_c), b_c ~ Normal(0, s), while the lift-test terms, the
    /// reported ROI and contributions, and every decision use the causal β(g,c): spend that follows
    /// demand the model cannot see makes the observational association differ from the causal
    /// effect, and only experiments tell them apart. See [`crate::model`].
    pub observational_bias_sd: f64,
}

/// No evidence; tests in the data; lift counted over the record's window; no observational bias
/// (the config's defaults).
impl Default for Calibration {
    fn default() -> Self {
        Self {
            roi_priors: Vec::new(),
            lift_tests: Vec::new(),
            half_lives: std::collections::BTreeMap::new(),
            tests_in_data: true,
            lift_counts_carryover: false,
            observational_bias_sd: 0.0,
        }
    }
}

/// An experiment's ROI readout for one channel: becomes a moment-matched LogNormal ROI prior.
#[derive(Debug, Clone, PartialEq)]
pub struct RoiPriorRecord {
    pub channel: String,
    pub mean: f64,
    pub standard_error: f64,
}

/// Fitting method and its settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FitSettings {
    pub method: FitMethod,
    pub seed: u64,
    pub chains: usize,
    pub tune: usize,
    pub draws: usize,
    pub target_accept: f64,
    /// NUTS trajectories run at least 2^min_tree_depth leapfrog steps ([`DEFAULT_MIN_TREE_DEPTH`]).
    pub min_tree_depth: u64,
    /// The NUTS metric adapted in warm-up: diagonal (default), dense or low-rank.
    pub metric: mmloop_inference::MassMatrix,
    /// Number of L-BFGS starts for the Laplace fit (and MAP initialisation).
    pub laplace_starts: usize,
}

/// Default minimum NUTS tree depth of an MMM fit: at least 2⁴ = 16 leapfrog steps per draw.
///
/// Even in the sampling coordinates of [`crate::model::MmmModel::to_model_coords`], MMM posteriors
/// keep curved ridges (a channel's saturation and adstock trade off), and on them the no-U-turn
/// test often stops after 8–16 steps while the chain still moves like a random walk along the
/// ridge. Measured on the PyMC-Marketing example (4 × (1000 + 1000)): min bulk ESS 1023 in 0.24 s
/// with plain NUTS, 4165 in 0.65 s with at least 16 steps (ESS per second 4300 → 6400); on the
/// bundled national demo 979 → 1152. Models whose trajectories are longer anyway (geo models, ~64
/// steps) are unaffected. Set 0 for plain NUTS (Stan, PyMC).
pub const DEFAULT_MIN_TREE_DEPTH: u64 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FitMethod {
    Nuts,
    Laplace,
}
