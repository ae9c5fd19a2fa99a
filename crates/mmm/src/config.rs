//! TOML config → validated [`ModelSpec`].
//!
//! Parsing happens in two layers. A *raw* layer mirrors the TOML exactly (every table
//! `deny_unknown_fields`, every prior optional); the *validation* layer fills the defaults below,
//! checks every value and produces the [`ModelSpec`] the model consumes. An unknown key is an error
//! that names the key, the table it is in and the closest valid key.
//!
//! A minimal config (everything else takes the defaults listed below):
//! ```toml
//! [data]
//! path = "demo_national.csv"   # relative to the config file's folder
//! time = "date"
//! kpi = "sales"
//!
//! [[channel]]
//! name = "tv"                  # spend column defaults to the name
//! [[channel]]
//! name = "search"
//! spend = "search_spend"
//! ```
//!
//! # Defaults
//! Priors on media parameters follow PyMC-Marketing (`GeometricAdstock`, `LogisticSaturation`,
//! `MMM.default_model_config`) or, for the Meridian-style options, Meridian's `PriorDistribution`.
//! Scales are in the model's internal scaled units (see the model's scaling).
//!
//! | option | default | source |
//! |---|---|---|
//! | `adstock` | `{ kind = "geometric", max_lag = 8, normalize = true }` | Meridian `max_lag = 8`; PyMC normalises |
//! | geometric `alpha` | Beta(1, 3) | PyMC-Marketing `adstock_alpha` |
//! | binomial `alpha` | Uniform(0, 1) | Meridian `alpha_m` |
//! | Weibull `shape` / `scale` | Gamma(2, 1) / Gamma(2, 4 / max_lag) (mean max_lag / 2 periods) | ours, weakly informative |
//! | `saturation` | `{ kind = "logistic" }` | PyMC-Marketing |
//! | logistic `lam` | Gamma(3, 1) | PyMC-Marketing `saturation_lam` |
//! | Hill `ec` | TruncatedNormal(0.8, 0.8, 0.1, 10) | Meridian `ec_m` |
//! | Hill `slope` | LogNormal(0, 0.5) (median 1), sampled; a number fixes it: `slope = 1` | Meridian fixes 1 (`slope_m = Deterministic(1.0)`); see below |
//! | Hill `ec_floor_quantile` | none (ec's prior as given); `p` truncates it below at the p-quantile of the channel's non-zero scaled media | ours; see below |
//! | Michaelis–Menten `k` | HalfNormal(1) | PyMC-Marketing `MichaelisMentenSaturation` `lam` |
//! | `order` | `"adstock_first"` | both |
//! | `effect` | `"coefficient"` | PyMC-Marketing |
//! | `coefficient` | HalfNormal(2) | PyMC-Marketing `saturation_beta` |
//! | `roi` | LogNormal(0.2, 0.9) | Meridian `roi_m` (revenue KPI; set your own for other KPIs) |
//! | control `prior` | Normal(0, 2) | PyMC-Marketing `gamma_control` |
//! | `intercept` | Normal(0, 2) | PyMC-Marketing `intercept` |
//! | `intercept_geo_sd` | HalfNormal(1), sampled (partial pooling); a number holds it: `intercept_geo_sd = 1` | ours (geo models); Meridian: independent geo intercepts, see below |
//! | `trend` | `"linear"`, slope Normal(0, 1) | |
//! | piecewise trend | 10 changepoints, slope Normal(0, 1), changes Normal(0, 0.05) | Prophet's scale 0.05 |
//! | `seasonality` | `[{ period = 52.18, order = 2 }]` (yearly, weekly data), prior Normal(0, 1) | PyMC-Marketing `yearly_seasonality = 2`; its Laplace(0, 1) as a Normal |
//! | `likelihood` | `"normal"`; `student_t` has `nu = 5` | |
//! | `noise` | HalfNormal(2) | PyMC-Marketing `likelihood.sigma` |
//! | `pooling` | `"partial"` with a geo column (else `"complete"`), `tau` HalfNormal(1) | Meridian `eta_m` |
//! | `[fit]` | `method = "nuts"`, `chains = 4`, `tune = 1000`, `draws = 1000`, `target_accept = 0.8`, `seed = 42`, `laplace_starts = 4`, `holdout = 0` | PyMC defaults |
//! | `[fit]` | `min_tree_depth = 4`, `metric = "diag"` | ours: see [`crate::spec::DEFAULT_MIN_TREE_DEPTH`]; `"dense"`, `"low_rank"` optional |
//!
//! ### Pooling scales with few geos
//! `intercept_geo_sd` and `[pooling] tau` set how far geos may differ (the sd of the geo intercepts
//! and of the geos' log media effects around the channel mean). The data estimate such a scale
//! from the G − 1 differences between geos: with 2 geos one difference cannot tell a spread from
//! noise (the scale's relative uncertainty is about 1/√(2(G − 1)), 70 % at G = 2), so the defaults
//! — HalfNormal(1) for both, median 0.67: geos' intercepts a few tenths of the mean KPI apart, media
//! effects within a factor of about two — decide it. They are chosen wide so that geos the data do
//! separate are not forced together; with 2 geos that width is what the posterior repeats. Set them
//! to what you believe, or use `kind = "complete"` to fit one effect for all geos. A fit warns when
//! a hierarchy is prior-dominated: fewer than 3 geos, or a channel whose per-geo data carry less
//! than 1/9 of the pooling prior's precision at the fitted pooling scale (its posterior median;
//! `model::centring::prior_dominated_warnings`).
//! A scale the data cannot bound also makes the posterior harder to sample (its geometry changes
//! along the scale's wide posterior): the geo intercepts of a model with fewer than 3 geos are
//! sampled partially centred (`model::centring`, `MmmModel::sampling_centring`), and a two-geo
//! model needs `target_accept = 0.95` to leave no divergences
//! (`examples/pymc_mmm_multidimensional_example.toml` has the measurements).
//!
//! ### The Hill curve in geo models: a fixed slope, a floor on ec
//! `saturation = { kind = "hill", slope = 1 }` fixes the slope n (any positive number; it is then
//! not a parameter of the fit, and φ = (ec, n)); a prior table samples it, and without either the
//! default LogNormal(0, 0.5) samples it (mmloop's default, unchanged). Meridian fixes n = 1 for
//! media and warns that another prior "may lead to convex Hill curves ... poor MCMC convergence".
//! `ec_floor_quantile = p` (off by default) truncates the ec prior below at the p-quantile of the
//! channel's non-zero scaled media ([`crate::transforms::ec_floor`]; the ec prior must be a
//! truncated_normal, as the default, or a uniform): the channel is then at most half saturated at
//! that level. Why both: with a small n or a small ec the curve is nearly flat over the media the
//! data hold, the channel adds a near-constant per geo and stands in for the geo intercepts (a
//! large ROI with low intercepts fits as well as a small one), a ridge the data do not bound, on
//! which NUTS diverges or a chain sticks. The Meridian geo examples fix n = 1 (Meridian's default)
//! and floor ec at the 10 % quantile, the geo demo floors ec only (its simulated slopes are 1–1.5):
//! the measurements are in `examples/meridian_geo_media.toml` and the README.
//!
//! ### Geo intercepts: pooled, or independent
//! `[baseline] intercept_geo_sd` is the sd σ_a of the geo intercepts around the global one. A prior
//! table (the default, HalfNormal(1)) samples it: the geos' intercepts are partially pooled, and
//! the data estimate how far geos differ. A bare number holds it: `intercept_geo_sd = 1` gives each
//! geo its own Normal(μ_a, 1) intercept, nothing pooled — Meridian's form, whose geo intercepts
//! `tau_g_excl_baseline ~ Normal(0, 5)` are independent on its standardised KPI (sd 1; the scaled
//! KPI here has mean 1, so 1 is as wide). With a year or more of weekly data each geo pins its own
//! intercept (to about σ/√T), so the prior's width barely matters, and a held σ_a cannot shrink
//! towards 0: the region where a small σ_a lets a nearly saturated channel's per-geo effects stand
//! in for the intercepts (above) is not in the model. On the Meridian 20-geo example it took NUTS
//! from 2–15 divergences a seed to none, with the same ROIs (the README). Pool when geos are few
//! or their series short and you want them to borrow strength; hold it when every geo has enough
//! data of its own.
//!
//! The yearly default assumes weekly data; `Dataset::load` rejects it for dates spaced otherwise (set
//! `seasonality = [{ period = 365.25, order = 2 }]` for daily data, `12` for monthly, or `[]` for none).
//!
//! `examples/full_reference.toml` is a fully commented config with every option.

// The error enums carry file, option and row details for their messages; they are built once per
// failed run, so their size does not matter.
#![allow(clippy::result_large_err)]

use crate::priors::{Prior, Support};
use crate::spec::{
    BaselineSpec, Calibration, ChannelSpec, ControlSpec, DataSpec, EffectPrior, FitMethod, FitSettings, Fourier,
    GeoInterceptSd, Likelihood, ModelSpec, Pooling, RoiPriorRecord, Trend,
};
use crate::transforms::{AdstockSpec, HillSlope, SaturationSpec, TransformOrder};
use mmloop_data::{DataError, LiftTestRecord, closest};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Everything that can be wrong with a config. Each message names the file, the line or option,
/// what is wrong and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the config: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    /// A TOML syntax error, a value of the wrong type, a missing required key or an unknown option value.
    #[error("{file}, line {line}: {message}")]
    Syntax { file: String, line: usize, message: String },

    /// A key that no table of the config has.
    #[error(
        "{file}, line {line}: unknown key `{key}` in {table}{hint}. The keys allowed there are: {valid}. \
         Remove the key or fix its spelling"
    )]
    UnknownKey { file: String, line: usize, key: String, table: String, hint: String, valid: String },

    /// A value that parses but is not allowed.
    #[error("{file}: {option}: {problem}. {remedy}")]
    Invalid { file: String, option: String, problem: String, remedy: String },

    /// A lift-test file named in `[calibration] lift_tests` could not be read.
    #[error("{file}: [calibration] lift_tests: {source}")]
    Calibration { file: String, source: DataError },
}

// ------------------------------------------------------------------------------------------------
// Public entry points
// ------------------------------------------------------------------------------------------------

/// Parses a config from text. Relative paths in it (the data file, lift-test files) are resolved
/// against `base_dir`. Errors name the source as `config`; use [`load_config`] to have them name the file.
pub fn parse_config(text: &str, base_dir: &Path) -> Result<ModelSpec, ConfigError> {
    parse_named(text, base_dir, "config")
}

/// Warnings for lift tests whose geos a national model ignores: one line per record that names geos
/// when the spec has no geo column (the test is then modelled on the national series, see
/// [`crate::calibration`]). Empty for a geo model.
pub fn national_geo_warnings(spec: &ModelSpec) -> Vec<String> {
    if spec.data.geo_column.is_some() {
        return Vec::new();
    }
    spec.calibration
        .lift_tests
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.geos.is_empty())
        .map(|(i, r)| {
            let src = if r.source.is_empty() { String::new() } else { format!(" ({})", r.source) };
            format!(
                "lift test #{}{src} names geos {} but the model is national: the geos are ignored and the test \
                 is modelled on the national series (give [data] geo to model it per geo)",
                i + 1,
                r.geos.join(", ")
            )
        })
        .collect()
}

/// Reads and parses a config file; the data path and `[calibration] lift_tests` paths are relative
/// to the file's folder.
pub fn load_config(path: impl AsRef<Path>) -> Result<ModelSpec, ConfigError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io { path: path.to_path_buf(), source: e })?;
    let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    parse_named(&text, base, &path.display().to_string())
}

/// Settings the command line may override after the config is read (`--method`, `--seed`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FitOverrides {
    pub method: Option<FitMethod>,
    pub seed: Option<u64>,
}

/// Applies command-line overrides on top of a parsed config: they win over `[fit]`.
pub fn apply_overrides(spec: &mut ModelSpec, overrides: &FitOverrides) {
    if let Some(m) = overrides.method {
        spec.fit.method = m;
    }
    if let Some(s) = overrides.seed {
        spec.fit.seed = s;
    }
}

impl FromStr for FitMethod {
    type Err = String;
    /// `"nuts"` or `"laplace"` (case-insensitive), as in `--method` and `[fit] method`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "nuts" => Ok(FitMethod::Nuts),
            "laplace" => Ok(FitMethod::Laplace),
            other => Err(format!("unknown fit method {other:?}; use \"nuts\" or \"laplace\"")),
        }
    }
}

impl fmt::Display for FitMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FitMethod::Nuts => "nuts",
            FitMethod::Laplace => "laplace",
        })
    }
}

/// Writes a spec back as a fully explicit config (every default spelt out, the data path as stored
/// in the spec). Parsing the result gives the same spec; `mmloop fit` can save it beside its outputs
/// so a fit can be reproduced exactly.
pub fn to_toml(spec: &ModelSpec) -> String {
    let raw = RawConfig::from_spec(spec);
    toml::to_string(&raw).unwrap_or_else(|e| format!("# cannot write the config: {e}\n"))
}

// ------------------------------------------------------------------------------------------------
// Defaults (each documented in the module table above)
// ------------------------------------------------------------------------------------------------

/// Default maximum adstock lag (Meridian's `max_lag = 8`).
pub const DEFAULT_MAX_LAG: usize = 8;
/// Default period of the yearly seasonality, in weeks (365.25 / 7 ≈ 52.18).
pub const YEARLY_PERIOD_WEEKS: f64 = 52.18;
/// Default Fourier order of the yearly seasonality (PyMC-Marketing example `yearly_seasonality = 2`).
pub const DEFAULT_FOURIER_ORDER: usize = 2;
/// Default degrees of freedom of a Student-t likelihood.
pub const DEFAULT_STUDENT_T_NU: f64 = 5.0;
/// The most chains or Laplace starts a config may ask for (each is a full run of its own).
pub const MAX_RUNS: usize = 1000;
/// Default number of changepoints of a piecewise-linear trend.
pub const DEFAULT_CHANGEPOINTS: usize = 10;

/// Default priors, in one place.
pub mod defaults {
    use crate::priors::Prior;
    /// Geometric adstock decay (PyMC-Marketing `GeometricAdstock`).
    pub const GEOMETRIC_ALPHA: Prior = Prior::Beta { alpha: 1.0, beta: 3.0 };
    /// Binomial adstock (Meridian `alpha_m`).
    pub const BINOMIAL_ALPHA: Prior = Prior::Uniform { lower: 0.0, upper: 1.0 };
    /// Weibull shape (both Weibull adstocks).
    pub const WEIBULL_SHAPE: Prior = Prior::Gamma { shape: 2.0, rate: 1.0 };
    /// Weibull scale: Gamma(2, 4/L), mean L/2 periods for a window of L lags.
    pub fn weibull_scale(max_lag: usize) -> Prior {
        Prior::Gamma { shape: 2.0, rate: 4.0 / (max_lag.max(1) as f64) }
    }
    /// Logistic saturation λ (PyMC-Marketing `LogisticSaturation`).
    pub const LOGISTIC_LAM: Prior = Prior::Gamma { shape: 3.0, rate: 1.0 };
    /// Hill half-saturation (Meridian `ec_m`).
    pub const HILL_EC: Prior = Prior::TruncatedNormal { mu: 0.8, sigma: 0.8, lower: 0.1, upper: 10.0 };
    /// Hill slope: median 1 (Meridian fixes it at 1 for impression media).
    pub const HILL_SLOPE: Prior = Prior::LogNormal { mu: 0.0, sigma: 0.5 };
    /// Michaelis–Menten half-saturation (PyMC-Marketing `MichaelisMentenSaturation` `lam`).
    pub const MM_K: Prior = Prior::HalfNormal { sigma: 1.0 };
    /// Media coefficient (PyMC-Marketing `saturation_beta`).
    pub const COEFFICIENT: Prior = Prior::HalfNormal { sigma: 2.0 };
    /// Media ROI (Meridian `roi_m`).
    pub const ROI: Prior = Prior::LogNormal { mu: 0.2, sigma: 0.9 };
    /// Control coefficient (PyMC-Marketing `gamma_control`).
    pub const CONTROL: Prior = Prior::Normal { mu: 0.0, sigma: 2.0 };
    /// Intercept (PyMC-Marketing `intercept`).
    pub const INTERCEPT: Prior = Prior::Normal { mu: 0.0, sigma: 2.0 };
    /// Spread of per-geo intercepts around the mean intercept.
    pub const INTERCEPT_GEO_SD: Prior = Prior::HalfNormal { sigma: 1.0 };
    /// Trend slope over the whole fitted period.
    pub const TREND_SLOPE: Prior = Prior::Normal { mu: 0.0, sigma: 1.0 };
    /// Slope change at each changepoint (Prophet's `changepoint_prior_scale` 0.05).
    pub const TREND_DELTA: Prior = Prior::Normal { mu: 0.0, sigma: 0.05 };
    /// Fourier coefficients (PyMC-Marketing's Laplace(0, 1) `gamma_fourier`, as a Normal).
    pub const FOURIER: Prior = Prior::Normal { mu: 0.0, sigma: 1.0 };
    /// Noise scale (PyMC-Marketing `likelihood` σ).
    pub const NOISE: Prior = Prior::HalfNormal { sigma: 2.0 };
    /// Geo spread of log media effects (Meridian `eta_m`).
    pub const POOLING_TAU: Prior = Prior::HalfNormal { sigma: 1.0 };
}

// ------------------------------------------------------------------------------------------------
// Raw layer: the TOML as written
// ------------------------------------------------------------------------------------------------

/// A prior as written in the config: like [`Prior`], but an unknown parameter name is an error
/// (`{ dist = "normal", mu = 0, sigam = 1 }` must not pass silently).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(transparent)]
struct SP(Prior);

impl From<SP> for Prior {
    fn from(p: SP) -> Prior {
        p.0
    }
}

/// Mirror of [`Prior`] with `deny_unknown_fields`, used only to read configs strictly.
#[derive(Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
enum StrictPrior {
    Normal {
        mu: f64,
        sigma: f64,
    },
    HalfNormal {
        sigma: f64,
    },
    #[serde(rename = "lognormal")]
    LogNormal {
        mu: f64,
        sigma: f64,
    },
    Beta {
        alpha: f64,
        beta: f64,
    },
    Gamma {
        shape: f64,
        rate: f64,
    },
    TruncatedNormal {
        mu: f64,
        sigma: f64,
        lower: f64,
        upper: f64,
    },
    Uniform {
        lower: f64,
        upper: f64,
    },
}

impl<'de> Deserialize<'de> for SP {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(SP(match StrictPrior::deserialize(d)? {
            StrictPrior::Normal { mu, sigma } => Prior::Normal { mu, sigma },
            StrictPrior::HalfNormal { sigma } => Prior::HalfNormal { sigma },
            StrictPrior::LogNormal { mu, sigma } => Prior::LogNormal { mu, sigma },
            StrictPrior::Beta { alpha, beta } => Prior::Beta { alpha, beta },
            StrictPrior::Gamma { shape, rate } => Prior::Gamma { shape, rate },
            StrictPrior::TruncatedNormal { mu, sigma, lower, upper } => {
                Prior::TruncatedNormal { mu, sigma, lower, upper }
            }
            StrictPrior::Uniform { lower, upper } => Prior::Uniform { lower, upper },
        }))
    }
}

/// A parameter that may be held: a prior table (sampled) or a bare number (fixed). The Hill slope
/// (Meridian's default `slope_m = Deterministic(1.0)`) and the geo intercepts' sd.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
enum RawPriorOrNumber {
    Fixed(f64),
    Prior(SP),
}

impl<'de> Deserialize<'de> for RawPriorOrNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawPriorOrNumber;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number (a fixed value) or a prior table")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<RawPriorOrNumber, E> {
                Ok(RawPriorOrNumber::Fixed(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawPriorOrNumber, E> {
                Ok(RawPriorOrNumber::Fixed(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawPriorOrNumber, E> {
                Ok(RawPriorOrNumber::Fixed(v as f64))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawPriorOrNumber, A::Error> {
                SP::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(RawPriorOrNumber::Prior)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data: RawData,
    #[serde(default, skip_serializing_if = "RawMedia::is_empty")]
    media: RawMedia,
    #[serde(default, rename = "channel")]
    channels: Vec<RawChannel>,
    #[serde(default, rename = "control", skip_serializing_if = "Vec::is_empty")]
    controls: Vec<RawControl>,
    #[serde(default)]
    baseline: RawBaseline,
    #[serde(default)]
    likelihood: RawLikelihood,
    #[serde(default)]
    pooling: RawPooling,
    #[serde(default, skip_serializing_if = "RawCalibration::is_empty")]
    calibration: RawCalibration,
    #[serde(default)]
    fit: RawFit,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    path: PathBuf,
    time: String,
    kpi: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    geo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    population: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revenue_per_kpi: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
enum EffectKind {
    Coefficient,
    Roi,
}

/// Defaults for every channel; a channel's own keys win.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawMedia {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    adstock: Option<RawAdstock>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    saturation: Option<RawSaturation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    order: Option<TransformOrder>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    effect: Option<EffectKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    coefficient: Option<SP>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    roi: Option<SP>,
}

impl RawMedia {
    fn is_empty(&self) -> bool {
        self.adstock.is_none()
            && self.saturation.is_none()
            && self.order.is_none()
            && self.effect.is_none()
            && self.coefficient.is_none()
            && self.roi.is_none()
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spend: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exposure: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    adstock: Option<RawAdstock>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    saturation: Option<RawSaturation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    order: Option<TransformOrder>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    coefficient: Option<SP>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    roi: Option<SP>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum RawAdstock {
    Geometric {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_lag: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alpha: Option<SP>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        normalize: Option<bool>,
    },
    Binomial {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_lag: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alpha: Option<SP>,
    },
    WeibullCdf {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_lag: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shape: Option<SP>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scale: Option<SP>,
    },
    WeibullPdf {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_lag: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shape: Option<SP>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scale: Option<SP>,
    },
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum RawSaturation {
    Hill {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ec: Option<SP>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slope: Option<RawPriorOrNumber>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ec_floor_quantile: Option<f64>,
    },
    Logistic {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lam: Option<SP>,
    },
    MichaelisMenten {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        k: Option<SP>,
    },
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawControl {
    column: String,
    /// For a text column: the control is 1 where the cell equals this value, else 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    equals: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prior: Option<SP>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawBaseline {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    intercept: Option<SP>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    intercept_geo_sd: Option<RawPriorOrNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trend: Option<RawTrend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seasonality: Option<Vec<RawFourier>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
enum TrendKind {
    None,
    Linear,
    Piecewise,
}

/// `trend = "linear"` or `trend = { kind = "piecewise", changepoints = 10, ... }`.
#[derive(Debug, Serialize)]
struct RawTrend {
    kind: TrendKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    slope: Option<SP>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changepoints: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<SP>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrendTable {
    kind: TrendKind,
    #[serde(default)]
    slope: Option<SP>,
    #[serde(default)]
    changepoints: Option<usize>,
    #[serde(default)]
    delta: Option<SP>,
}

impl<'de> Deserialize<'de> for RawTrend {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawTrend;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"none\", \"linear\", \"piecewise\" or a table { kind = ..., ... }")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RawTrend, E> {
                let kind = TrendKind::deserialize(serde::de::value::StrDeserializer::<E>::new(s))?;
                Ok(RawTrend { kind, slope: None, changepoints: None, delta: None })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawTrend, A::Error> {
                let t = RawTrendTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(RawTrend { kind: t.kind, slope: t.slope, changepoints: t.changepoints, delta: t.delta })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawFourier {
    period: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    order: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prior: Option<SP>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
enum LikelihoodKind {
    Normal,
    StudentT,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawLikelihood {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<LikelihoodKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nu: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    noise: Option<SP>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
enum PoolingKind {
    Partial,
    Complete,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawPooling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<PoolingKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tau: Option<SP>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawCalibration {
    /// One JSON file of lift-test records, or a list of them.
    #[serde(default, deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    lift_tests: Vec<PathBuf>,
    #[serde(default, rename = "roi_prior", skip_serializing_if = "Vec::is_empty")]
    roi_priors: Vec<RawRoiPrior>,
    #[serde(default, rename = "lift_test", skip_serializing_if = "Vec::is_empty")]
    lift_test: Vec<LiftTestRecord>,
    /// Evidence half-lives in weeks by channel name (`half_lives = { tv = 52 }`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    half_lives: std::collections::BTreeMap<String, f64>,
    /// Whether the data already hold the tests' spend changes (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tests_in_data: Option<bool>,
    /// Whether a lift term counts the carry-over after the window (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lift_counts_carryover: Option<bool>,
    /// Prior sd of each channel's observational bias ln(β_obs/β) (default 0: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    observational_bias_sd: Option<f64>,
}

impl RawCalibration {
    fn is_empty(&self) -> bool {
        self.lift_tests.is_empty()
            && self.roi_priors.is_empty()
            && self.lift_test.is_empty()
            && self.half_lives.is_empty()
            && self.tests_in_data.is_none()
            && self.lift_counts_carryover.is_none()
            && self.observational_bias_sd.is_none()
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<PathBuf>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a path or a list of paths")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(vec![PathBuf::from(s)])
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut v = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                v.push(PathBuf::from(s));
            }
            Ok(v)
        }
    }
    d.deserialize_any(V)
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawRoiPrior {
    channel: String,
    mean: f64,
    standard_error: f64,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawFit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chains: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tune: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    draws: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target_accept: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_tree_depth: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metric: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    laplace_starts: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    holdout: Option<usize>,
}

// ------------------------------------------------------------------------------------------------
// Validation: raw → ModelSpec
// ------------------------------------------------------------------------------------------------

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn invalid(&self, option: impl Into<String>, problem: impl Into<String>, remedy: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_string(),
            option: option.into(),
            problem: problem.into(),
            remedy: remedy.into(),
        }
    }

    /// Validates a prior's parameters and that its support is what the parameter needs.
    fn prior(&self, option: &str, p: impl Into<Prior>, need: Need) -> Result<Prior, ConfigError> {
        let p = p.into();
        p.validate().map_err(|m| self.invalid(option, format!("invalid prior: {m}"), "Fix the prior's parameters"))?;
        let s = p.support();
        let ok = match need {
            Need::Real => true,
            Need::Positive => match s {
                Support::LowerBounded(l) => l >= 0.0,
                Support::Interval(l, _) => l >= 0.0,
                Support::Real => false,
            },
            Need::UnitInterval => matches!(s, Support::Interval(l, u) if l >= 0.0 && u <= 1.0),
        };
        if !ok {
            return Err(self.invalid(
                option,
                format!("the prior {} puts mass outside {}", describe(&p), need.range()),
                format!("Use a prior on {}, e.g. {}", need.range(), need.example()),
            ));
        }
        Ok(p)
    }

    /// A positive parameter a config may hold or sample: a bare number holds it (it must be a
    /// positive number: `fixed`), a prior table samples it (`sampled`), and without either the
    /// `default` prior samples it. `what` names the parameter in the error ("slope"), `remedy`
    /// says what to write instead.
    #[allow(clippy::too_many_arguments)]
    fn positive_held_or_prior<T>(
        &self,
        option: &str,
        raw: Option<RawPriorOrNumber>,
        default: Prior,
        sampled: fn(Prior) -> T,
        fixed: fn(f64) -> T,
        what: &str,
        remedy: &str,
    ) -> Result<T, ConfigError> {
        match raw {
            None => Ok(sampled(self.prior(option, default, Need::Positive)?)),
            Some(RawPriorOrNumber::Prior(p)) => Ok(sampled(self.prior(option, p, Need::Positive)?)),
            Some(RawPriorOrNumber::Fixed(v)) if v.is_finite() && v > 0.0 => Ok(fixed(v)),
            Some(RawPriorOrNumber::Fixed(v)) => {
                Err(self.invalid(option, format!("a fixed {what} must be a positive number, got {v}"), remedy))
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Need {
    Real,
    Positive,
    UnitInterval,
}

impl Need {
    fn range(self) -> &'static str {
        match self {
            Need::Real => "the real line",
            Need::Positive => "[0, ∞)",
            Need::UnitInterval => "[0, 1]",
        }
    }
    fn example(self) -> &'static str {
        match self {
            Need::Real => "{ dist = \"normal\", mu = 0, sigma = 1 }",
            Need::Positive => "{ dist = \"half_normal\", sigma = 1 } or { dist = \"lognormal\", mu = 0, sigma = 1 }",
            Need::UnitInterval => "{ dist = \"beta\", alpha = 1, beta = 3 }",
        }
    }
}

fn describe(p: &Prior) -> String {
    toml::to_string(&PriorWrap { p: *p })
        .map(|s| s.trim().trim_start_matches("p = ").to_string())
        .unwrap_or_else(|_| format!("{p:?}"))
}

#[derive(Serialize)]
struct PriorWrap {
    p: Prior,
}

fn parse_named(text: &str, base_dir: &Path, file: &str) -> Result<ModelSpec, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(e, text, file))?;
    validate(raw, base_dir, &Ctx { file })
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() { p.to_path_buf() } else { base.join(p) }
}

fn validate(raw: RawConfig, base_dir: &Path, cx: &Ctx) -> Result<ModelSpec, ConfigError> {
    // [data]
    let d = raw.data;
    if d.path.as_os_str().is_empty() {
        return Err(cx.invalid("[data] path", "is empty", "Set it to the CSV or Parquet file, relative to the config"));
    }
    for (key, v) in [("time", Some(&d.time)), ("kpi", Some(&d.kpi)), ("geo", d.geo.as_ref())]
        .into_iter()
        .chain([("population", d.population.as_ref()), ("revenue_per_kpi", d.revenue_per_kpi.as_ref())])
    {
        if let Some(v) = v
            && v.trim().is_empty()
        {
            return Err(cx.invalid(
                format!("[data] {key}"),
                "is empty",
                "Name a column of the data file, or remove the key",
            ));
        }
    }
    let data = DataSpec {
        path: resolve(base_dir, &d.path),
        time_column: d.time,
        geo_column: d.geo,
        kpi_column: d.kpi,
        population_column: d.population,
        revenue_per_kpi_column: d.revenue_per_kpi,
    };

    // [media] and [[channel]]
    if raw.channels.is_empty() {
        return Err(cx.invalid(
            "[[channel]]",
            "the config has no media channel",
            "Add at least one [[channel]] table with a name (and spend column if it differs from the name)",
        ));
    }
    let media = raw.media;
    if media.effect.is_none() && media.coefficient.is_some() && media.roi.is_some() {
        return Err(cx.invalid(
            "[media]",
            "both `coefficient` and `roi` priors are given but `effect` is not",
            "Set effect = \"coefficient\" or effect = \"roi\" to say which one applies",
        ));
    }
    let media_effect = media.effect.unwrap_or(match (media.coefficient, media.roi) {
        (None, Some(_)) => EffectKind::Roi,
        _ => EffectKind::Coefficient,
    });
    let mut channels = Vec::with_capacity(raw.channels.len());
    let mut seen = HashSet::new();
    for (i, ch) in raw.channels.into_iter().enumerate() {
        let name = ch.name.trim().to_string();
        let at = format!("[[channel]] #{} ({name:?})", i + 1);
        if name.is_empty() {
            return Err(cx.invalid(format!("[[channel]] #{}", i + 1), "name is empty", "Give every channel a name"));
        }
        if !seen.insert(name.clone()) {
            return Err(cx.invalid(
                at,
                format!("channel name {name:?} is used twice"),
                "Give every channel a unique name",
            ));
        }
        let spend = ch.spend.unwrap_or_else(|| name.clone());
        if spend.trim().is_empty() || ch.exposure.as_ref().is_some_and(|e| e.trim().is_empty()) {
            return Err(cx.invalid(at, "a column name is empty", "Name a column of the data file"));
        }
        let adstock = merge_adstock(ch.adstock, media.adstock.as_ref());
        let adstock = build_adstock(adstock, &at, cx)?;
        let saturation = merge_saturation(ch.saturation, media.saturation.as_ref());
        let saturation = build_saturation(saturation, &at, cx)?;
        let order = ch.order.or(media.order).unwrap_or_default();
        let effect = match (ch.coefficient, ch.roi) {
            (Some(_), Some(_)) => {
                return Err(cx.invalid(
                    at,
                    "both `coefficient` and `roi` priors are given",
                    "Give the channel's effect either as a coefficient prior or as an ROI prior, not both",
                ));
            }
            (Some(p), None) => EffectPrior::Coefficient(cx.prior(&format!("{at} coefficient"), p, Need::Positive)?),
            (None, Some(p)) => EffectPrior::Roi(cx.prior(&format!("{at} roi"), p, Need::Positive)?),
            (None, None) => match media_effect {
                EffectKind::Coefficient => EffectPrior::Coefficient(cx.prior(
                    "[media] coefficient",
                    media.coefficient.map_or(defaults::COEFFICIENT, Prior::from),
                    Need::Positive,
                )?),
                EffectKind::Roi => EffectPrior::Roi(cx.prior(
                    "[media] roi",
                    media.roi.map_or(defaults::ROI, Prior::from),
                    Need::Positive,
                )?),
            },
        };
        channels.push(ChannelSpec {
            name,
            spend_column: spend,
            exposure_column: ch.exposure,
            adstock,
            saturation,
            order,
            effect,
        });
    }

    // [[control]]
    let mut controls = Vec::with_capacity(raw.controls.len());
    let mut seen = HashSet::new();
    for (i, c) in raw.controls.into_iter().enumerate() {
        let at = format!("[[control]] #{} ({:?})", i + 1, c.column);
        if c.column.trim().is_empty() {
            return Err(cx.invalid(at, "column is empty", "Name a column of the data file"));
        }
        let column = match c.equals {
            Some(v) if v.trim().is_empty() => {
                return Err(cx.invalid(at, "`equals` is empty", "Give the text value the indicator is 1 for"));
            }
            Some(v) => format!("{}={}", c.column, v),
            None => c.column,
        };
        if !seen.insert(column.clone()) {
            return Err(cx.invalid(at, format!("control {column:?} is listed twice"), "List each control once"));
        }
        let prior = cx.prior(&format!("{at} prior"), c.prior.map_or(defaults::CONTROL, Prior::from), Need::Real)?;
        controls.push(ControlSpec { column, prior });
    }

    // [baseline]
    let b = raw.baseline;
    let trend = match b.trend {
        None => Trend::Linear { slope: defaults::TREND_SLOPE },
        Some(t) => {
            let slope =
                cx.prior("[baseline] trend.slope", t.slope.map_or(defaults::TREND_SLOPE, Prior::from), Need::Real)?;
            match t.kind {
                TrendKind::None | TrendKind::Linear if t.changepoints.is_some() || t.delta.is_some() => {
                    return Err(cx.invalid(
                        "[baseline] trend",
                        "`changepoints` and `delta` apply only to kind = \"piecewise\"",
                        "Remove them or set kind = \"piecewise\"",
                    ));
                }
                TrendKind::None if t.slope.is_some() => {
                    return Err(cx.invalid(
                        "[baseline] trend",
                        "a slope prior is given but the trend is \"none\"",
                        "Remove the slope or choose kind = \"linear\"",
                    ));
                }
                TrendKind::None => Trend::None,
                TrendKind::Linear => Trend::Linear { slope },
                TrendKind::Piecewise => {
                    let changepoints = t.changepoints.unwrap_or(DEFAULT_CHANGEPOINTS);
                    if changepoints == 0 {
                        return Err(cx.invalid(
                            "[baseline] trend.changepoints",
                            "must be at least 1",
                            "Use kind = \"linear\" for a trend without changepoints",
                        ));
                    }
                    let delta = cx.prior(
                        "[baseline] trend.delta",
                        t.delta.map_or(defaults::TREND_DELTA, Prior::from),
                        Need::Real,
                    )?;
                    Trend::Piecewise { changepoints, slope, delta }
                }
            }
        }
    };
    let seasonality = match b.seasonality {
        None => vec![Fourier { period: YEARLY_PERIOD_WEEKS, order: DEFAULT_FOURIER_ORDER, prior: defaults::FOURIER }],
        Some(list) => {
            let mut out = Vec::with_capacity(list.len());
            for (i, f) in list.into_iter().enumerate() {
                let at = format!("[baseline] seasonality #{}", i + 1);
                let order = f.order.unwrap_or(DEFAULT_FOURIER_ORDER);
                if !(f.period.is_finite() && f.period >= 2.0) {
                    return Err(cx.invalid(
                        &at,
                        format!("period {} is not a number of at least 2 periods", f.period),
                        "Give the cycle length in periods of the data, e.g. 52.18 for yearly seasonality in weekly data",
                    ));
                }
                if order == 0 || 2.0 * order as f64 > f.period {
                    return Err(cx.invalid(
                        &at,
                        format!("order {order} is not between 1 and period/2 = {}", f.period / 2.0),
                        "Higher harmonics than period/2 cannot be told apart in the data; lower the order",
                    ));
                }
                let prior =
                    cx.prior(&format!("{at} prior"), f.prior.map_or(defaults::FOURIER, Prior::from), Need::Real)?;
                out.push(Fourier { period: f.period, order, prior });
            }
            out
        }
    };
    let baseline = BaselineSpec {
        intercept: cx.prior(
            "[baseline] intercept",
            b.intercept.map_or(defaults::INTERCEPT, Prior::from),
            Need::Real,
        )?,
        intercept_geo_sd: cx.positive_held_or_prior(
            "[baseline] intercept_geo_sd",
            b.intercept_geo_sd,
            defaults::INTERCEPT_GEO_SD,
            GeoInterceptSd::Prior,
            GeoInterceptSd::Fixed,
            "sd",
            "Write a positive number (a wide one, e.g. 1, for independent geo intercepts) or a prior table",
        )?,
        trend,
        seasonality,
    };

    // [likelihood]
    let l = raw.likelihood;
    let likelihood = match l.kind.unwrap_or(LikelihoodKind::Normal) {
        LikelihoodKind::Normal => {
            if l.nu.is_some() {
                return Err(cx.invalid(
                    "[likelihood] nu",
                    "degrees of freedom are given but the likelihood is normal",
                    "Remove nu, or set kind = \"student_t\"",
                ));
            }
            Likelihood::Normal
        }
        LikelihoodKind::StudentT => {
            let nu = l.nu.unwrap_or(DEFAULT_STUDENT_T_NU);
            if !(nu.is_finite() && nu > 0.0) {
                return Err(cx.invalid(
                    "[likelihood] nu",
                    format!("{nu} is not a positive number"),
                    "Use degrees of freedom > 0 (3 to 10 is usual for robust regression)",
                ));
            }
            Likelihood::StudentT { nu }
        }
    };
    let noise_prior = cx.prior("[likelihood] noise", l.noise.map_or(defaults::NOISE, Prior::from), Need::Positive)?;

    // [pooling]
    let p = raw.pooling;
    let pooling = match (p.kind, data.geo_column.is_some()) {
        (Some(PoolingKind::Partial), false) => {
            return Err(cx.invalid(
                "[pooling] kind",
                "partial pooling needs geo data but [data] has no `geo` column",
                "Set [data] geo to the geo column, or remove [pooling]",
            ));
        }
        (Some(PoolingKind::Complete), _) | (None, false) => {
            if p.tau.is_some() {
                return Err(cx.invalid(
                    "[pooling] tau",
                    "tau applies only to partial pooling of geo data",
                    "Remove tau, or use kind = \"partial\" with a geo column",
                ));
            }
            Pooling::Complete
        }
        (Some(PoolingKind::Partial), true) | (None, true) => Pooling::Partial {
            tau: cx.prior("[pooling] tau", p.tau.map_or(defaults::POOLING_TAU, Prior::from), Need::Positive)?,
        },
    };

    // [fit]
    let f = raw.fit;
    let method = match f.method {
        None => FitMethod::Nuts,
        Some(m) => FitMethod::from_str(&m).map_err(|e| {
            let hint = closest(&m, &["nuts".to_string(), "laplace".to_string()])
                .map(|c| format!(" (did you mean {c:?}?)"))
                .unwrap_or_default();
            cx.invalid("[fit] method", format!("{e}{hint}"), "Set method = \"nuts\" or method = \"laplace\"")
        })?,
    };
    let fit = FitSettings {
        method,
        seed: f.seed.unwrap_or(42),
        chains: f.chains.unwrap_or(4),
        tune: f.tune.unwrap_or(1000),
        draws: f.draws.unwrap_or(1000),
        target_accept: f.target_accept.unwrap_or(0.8),
        min_tree_depth: f.min_tree_depth.unwrap_or(crate::spec::DEFAULT_MIN_TREE_DEPTH),
        metric: match f.metric.as_deref() {
            None | Some("diag") => mmloop_inference::MassMatrix::Diag,
            Some("dense") => mmloop_inference::MassMatrix::Dense,
            Some("low_rank") => mmloop_inference::MassMatrix::low_rank(),
            Some(other) => {
                let hint = closest(other, &["diag".to_string(), "dense".to_string(), "low_rank".to_string()])
                    .map(|c| format!(" (did you mean {c:?}?)"))
                    .unwrap_or_default();
                return Err(cx.invalid(
                    "[fit] metric",
                    format!("unknown metric {other:?}{hint}"),
                    "Use \"diag\" (default), \"dense\" (correlated, near-Gaussian posteriors) or \"low_rank\"",
                ));
            }
        },
        laplace_starts: f.laplace_starts.unwrap_or(4),
    };
    if fit.min_tree_depth > 10 {
        return Err(cx.invalid(
            "[fit] min_tree_depth",
            format!("{} exceeds the maximum tree depth 10", fit.min_tree_depth),
            "Use 0 (plain NUTS) to 10; the default is 4",
        ));
    }
    if fit.metric == mmloop_inference::MassMatrix::Dense && fit.tune < mmloop_inference::DENSE_MIN_TUNE as usize {
        return Err(cx.invalid(
            "[fit] metric",
            format!("\"dense\" learns the posterior covariance during warm-up, but tune = {}", fit.tune),
            format!("Set tune to at least {}, or use metric = \"diag\"", mmloop_inference::DENSE_MIN_TUNE),
        ));
    }
    for (key, v) in [("chains", fit.chains), ("draws", fit.draws), ("laplace_starts", fit.laplace_starts)] {
        if v == 0 {
            return Err(cx.invalid(format!("[fit] {key}"), "must be at least 1", "Use a positive whole number"));
        }
    }
    // Each chain and each Laplace start is a whole run of its own (warm-up and sampling, or an
    // L-BFGS optimisation), so counts in the thousands are slips that would run for days, not
    // settings: R-hat needs 4 chains, and a handful of starts finds the mode.
    for (key, v, remedy) in [
        ("chains", fit.chains, "Use 4 chains (the default) and raise draws for more precision"),
        ("laplace_starts", fit.laplace_starts, "Use 4 starts (the default); 10-20 for multi-modal models"),
    ] {
        if v > MAX_RUNS {
            return Err(cx.invalid(format!("[fit] {key}"), format!("{v} is more than {MAX_RUNS}"), remedy));
        }
    }
    if !(fit.target_accept > 0.0 && fit.target_accept < 1.0) {
        return Err(cx.invalid(
            "[fit] target_accept",
            format!("{} is not strictly between 0 and 1", fit.target_accept),
            "Use a value such as 0.8 (raise towards 0.95 if the sampler reports divergences)",
        ));
    }
    let holdout = f.holdout.unwrap_or(0);

    // [calibration]
    let c = raw.calibration;
    let names: Vec<String> = channels.iter().map(|c| c.name.clone()).collect();
    let unknown_channel = |option: String, ch: &str| {
        let hint = closest(ch, &names).map(|c| format!(" (did you mean {c:?}?)")).unwrap_or_default();
        cx.invalid(
            option,
            format!("no channel named {ch:?}{hint}"),
            format!("Use one of the [[channel]] names: {}", names.join(", ")),
        )
    };
    let mut roi_priors = Vec::with_capacity(c.roi_priors.len());
    for (i, r) in c.roi_priors.into_iter().enumerate() {
        let at = format!("[[calibration.roi_prior]] #{} ({:?})", i + 1, r.channel);
        if !names.contains(&r.channel) {
            return Err(unknown_channel(at, &r.channel));
        }
        Prior::lognormal_from_moments(r.mean, r.standard_error)
            .map_err(|m| cx.invalid(&at, m, "An ROI readout needs a positive mean and a positive standard error"))?;
        roi_priors.push(RoiPriorRecord { channel: r.channel, mean: r.mean, standard_error: r.standard_error });
    }
    let mut lift_tests = Vec::new();
    for p in &c.lift_tests {
        let path = resolve(base_dir, p);
        let recs = LiftTestRecord::read_all(&path)
            .map_err(|e| ConfigError::Calibration { file: cx.file.to_string(), source: e })?;
        for (i, r) in recs.into_iter().enumerate() {
            lift_tests.push((format!("lift test {} of {}", i + 1, path.display()), r));
        }
    }
    for (i, r) in c.lift_test.into_iter().enumerate() {
        lift_tests.push((format!("[[calibration.lift_test]] #{}", i + 1), r));
    }
    let mut records = Vec::with_capacity(lift_tests.len());
    for (at, r) in lift_tests {
        r.validate().map_err(|m| cx.invalid(&at, m, "Fix the record"))?;
        if r.channels.is_empty() {
            return Err(cx.invalid(
                &at,
                "the record names no channel",
                format!("Set channels = [...] to the channel(s) the test moved, from: {}", names.join(", ")),
            ));
        }
        for ch in &r.channels {
            if !names.contains(ch) {
                return Err(unknown_channel(format!("{at} channels"), ch));
            }
        }
        records.push(r);
    }
    if let Some(s) = c.observational_bias_sd
        && !(s.is_finite() && s >= 0.0)
    {
        return Err(cx.invalid(
            "[calibration] observational_bias_sd",
            format!("{s} is not a standard deviation >= 0"),
            "Give the prior sd of ln(observational / causal ROI), e.g. 0.5 (0: the data are unconfounded)",
        ));
    }
    for (ch, &w) in &c.half_lives {
        let at = format!("[calibration] half_lives.{ch}");
        if !names.contains(ch) {
            return Err(unknown_channel(at, ch));
        }
        if !(w.is_finite() && w > 0.0) {
            return Err(cx.invalid(
                &at,
                format!("{w} is not a positive number of weeks"),
                "Give the half-life in weeks, e.g. 26",
            ));
        }
    }

    Ok(ModelSpec {
        data,
        channels,
        controls,
        baseline,
        likelihood,
        noise_prior,
        pooling,
        holdout,
        calibration: Calibration {
            roi_priors,
            lift_tests: records,
            half_lives: c.half_lives,
            tests_in_data: c.tests_in_data.unwrap_or(true),
            lift_counts_carryover: c.lift_counts_carryover.unwrap_or(false),
            observational_bias_sd: c.observational_bias_sd.unwrap_or(0.0),
        },
        fit,
    })
}

/// A channel's adstock: its own keys, then `[media]`'s keys for the same kind, then the defaults.
fn merge_adstock(own: Option<RawAdstock>, media: Option<&RawAdstock>) -> RawAdstock {
    use RawAdstock::*;
    let Some(own) = own else {
        return media.cloned().unwrap_or(Geometric { max_lag: None, alpha: None, normalize: None });
    };
    match (own, media) {
        (Geometric { max_lag, alpha, normalize }, Some(Geometric { max_lag: m, alpha: a, normalize: n })) => {
            Geometric { max_lag: max_lag.or(*m), alpha: alpha.or(*a), normalize: normalize.or(*n) }
        }
        (Binomial { max_lag, alpha }, Some(Binomial { max_lag: m, alpha: a })) => {
            Binomial { max_lag: max_lag.or(*m), alpha: alpha.or(*a) }
        }
        (WeibullCdf { max_lag, shape, scale }, Some(WeibullCdf { max_lag: m, shape: s, scale: c })) => {
            WeibullCdf { max_lag: max_lag.or(*m), shape: shape.or(*s), scale: scale.or(*c) }
        }
        (WeibullPdf { max_lag, shape, scale }, Some(WeibullPdf { max_lag: m, shape: s, scale: c })) => {
            WeibullPdf { max_lag: max_lag.or(*m), shape: shape.or(*s), scale: scale.or(*c) }
        }
        (own, _) => own,
    }
}

fn merge_saturation(own: Option<RawSaturation>, media: Option<&RawSaturation>) -> RawSaturation {
    use RawSaturation::*;
    let Some(own) = own else {
        return media.cloned().unwrap_or(Logistic { lam: None });
    };
    match (own, media) {
        (Hill { ec, slope, ec_floor_quantile }, Some(Hill { ec: e, slope: s, ec_floor_quantile: q })) => {
            Hill { ec: ec.or(*e), slope: slope.or(*s), ec_floor_quantile: ec_floor_quantile.or(*q) }
        }
        (Logistic { lam }, Some(Logistic { lam: l })) => Logistic { lam: lam.or(*l) },
        (MichaelisMenten { k }, Some(MichaelisMenten { k: m })) => MichaelisMenten { k: k.or(*m) },
        (own, _) => own,
    }
}

fn build_adstock(raw: RawAdstock, at: &str, cx: &Ctx) -> Result<AdstockSpec, ConfigError> {
    let lag = |m: Option<usize>| -> Result<usize, ConfigError> {
        let l = m.unwrap_or(DEFAULT_MAX_LAG);
        if l == 0 {
            return Err(cx.invalid(
                format!("{at} adstock.max_lag"),
                "must be at least 1",
                "Use max_lag = 1 or more (the window has max_lag + 1 weights: lags 0..=max_lag)",
            ));
        }
        Ok(l)
    };
    let opt = |name: &str| format!("{at} adstock.{name}");
    // the two Weibull kernels share their parameters, defaults and checks
    let weibull = |max_lag, shape: Option<_>, scale: Option<_>| -> Result<(usize, Prior, Prior), ConfigError> {
        let l = lag(max_lag)?;
        let shape = cx.prior(&opt("shape"), shape.map_or(defaults::WEIBULL_SHAPE, Prior::from), Need::Positive)?;
        let scale = cx.prior(&opt("scale"), scale.map_or(defaults::weibull_scale(l), Prior::from), Need::Positive)?;
        Ok((l, shape, scale))
    };
    Ok(match raw {
        RawAdstock::Geometric { max_lag, alpha, normalize } => AdstockSpec::Geometric {
            max_lag: lag(max_lag)?,
            alpha: cx.prior(&opt("alpha"), alpha.map_or(defaults::GEOMETRIC_ALPHA, Prior::from), Need::UnitInterval)?,
            normalize: normalize.unwrap_or(true),
        },
        RawAdstock::Binomial { max_lag, alpha } => AdstockSpec::Binomial {
            max_lag: lag(max_lag)?,
            alpha: cx.prior(&opt("alpha"), alpha.map_or(defaults::BINOMIAL_ALPHA, Prior::from), Need::UnitInterval)?,
        },
        RawAdstock::WeibullCdf { max_lag, shape, scale } => {
            let (max_lag, shape, scale) = weibull(max_lag, shape, scale)?;
            AdstockSpec::WeibullCdf { max_lag, shape, scale }
        }
        RawAdstock::WeibullPdf { max_lag, shape, scale } => {
            let (max_lag, shape, scale) = weibull(max_lag, shape, scale)?;
            AdstockSpec::WeibullPdf { max_lag, shape, scale }
        }
    })
}

fn build_saturation(raw: RawSaturation, at: &str, cx: &Ctx) -> Result<SaturationSpec, ConfigError> {
    let opt = |name: &str| format!("{at} saturation.{name}");
    Ok(match raw {
        RawSaturation::Hill { ec, slope, ec_floor_quantile } => SaturationSpec::Hill {
            ec: {
                let ec = cx.prior(&opt("ec"), ec.map_or(defaults::HILL_EC, Prior::from), Need::Positive)?;
                if let Some(q) = ec_floor_quantile {
                    if !(q > 0.0 && q < 1.0) {
                        return Err(cx.invalid(
                            opt("ec_floor_quantile"),
                            format!("must be a probability strictly between 0 and 1, got {q}"),
                            "Write e.g. 0.1 (ec at least the 10th percentile of the channel's non-zero media)",
                        ));
                    }
                    ec.raise_lower(f64::NEG_INFINITY).map_err(|m| {
                        cx.invalid(
                            opt("ec_floor_quantile"),
                            format!("the ec prior {} cannot take a floor: {m}", describe(&ec)),
                            "Give ec a truncated_normal or uniform prior (the default is truncated_normal)",
                        )
                    })?;
                }
                ec
            },
            ec_floor_quantile,
            slope: cx.positive_held_or_prior(
                &opt("slope"),
                slope,
                defaults::HILL_SLOPE,
                HillSlope::Prior,
                HillSlope::Fixed,
                "slope",
                "Write a positive number (Meridian's default is 1) or a prior table",
            )?,
        },
        RawSaturation::Logistic { lam } => SaturationSpec::Logistic {
            lam: cx.prior(&opt("lam"), lam.map_or(defaults::LOGISTIC_LAM, Prior::from), Need::Positive)?,
        },
        RawSaturation::MichaelisMenten { k } => SaturationSpec::MichaelisMenten {
            k: cx.prior(&opt("k"), k.map_or(defaults::MM_K, Prior::from), Need::Positive)?,
        },
    })
}

// ------------------------------------------------------------------------------------------------
// spec → raw (for `to_toml`)
// ------------------------------------------------------------------------------------------------

impl RawConfig {
    fn from_spec(s: &ModelSpec) -> Self {
        let d = &s.data;
        let channels = s
            .channels
            .iter()
            .map(|c| {
                let (coefficient, roi) = match c.effect {
                    EffectPrior::Coefficient(p) => (Some(SP(p)), None),
                    EffectPrior::Roi(p) => (None, Some(SP(p))),
                };
                RawChannel {
                    name: c.name.clone(),
                    spend: Some(c.spend_column.clone()),
                    exposure: c.exposure_column.clone(),
                    adstock: Some(match &c.adstock {
                        AdstockSpec::Geometric { max_lag, alpha, normalize } => RawAdstock::Geometric {
                            max_lag: Some(*max_lag),
                            alpha: Some(SP(*alpha)),
                            normalize: Some(*normalize),
                        },
                        AdstockSpec::Binomial { max_lag, alpha } => {
                            RawAdstock::Binomial { max_lag: Some(*max_lag), alpha: Some(SP(*alpha)) }
                        }
                        AdstockSpec::WeibullCdf { max_lag, shape, scale } => RawAdstock::WeibullCdf {
                            max_lag: Some(*max_lag),
                            shape: Some(SP(*shape)),
                            scale: Some(SP(*scale)),
                        },
                        AdstockSpec::WeibullPdf { max_lag, shape, scale } => RawAdstock::WeibullPdf {
                            max_lag: Some(*max_lag),
                            shape: Some(SP(*shape)),
                            scale: Some(SP(*scale)),
                        },
                    }),
                    saturation: Some(match &c.saturation {
                        SaturationSpec::Hill { ec, slope, ec_floor_quantile } => RawSaturation::Hill {
                            ec: Some(SP(*ec)),
                            ec_floor_quantile: *ec_floor_quantile,
                            slope: Some(match *slope {
                                HillSlope::Prior(p) => RawPriorOrNumber::Prior(SP(p)),
                                HillSlope::Fixed(n) => RawPriorOrNumber::Fixed(n),
                            }),
                        },
                        SaturationSpec::Logistic { lam } => RawSaturation::Logistic { lam: Some(SP(*lam)) },
                        SaturationSpec::MichaelisMenten { k } => RawSaturation::MichaelisMenten { k: Some(SP(*k)) },
                    }),
                    order: Some(c.order),
                    coefficient,
                    roi,
                }
            })
            .collect();
        let controls = s
            .controls
            .iter()
            .map(|c| {
                let (column, equals) = split_indicator(&c.column);
                RawControl { column: column.to_string(), equals: equals.map(str::to_string), prior: Some(SP(c.prior)) }
            })
            .collect();
        let trend = match &s.baseline.trend {
            Trend::None => RawTrend { kind: TrendKind::None, slope: None, changepoints: None, delta: None },
            Trend::Linear { slope } => {
                RawTrend { kind: TrendKind::Linear, slope: Some(SP(*slope)), changepoints: None, delta: None }
            }
            Trend::Piecewise { changepoints, slope, delta } => RawTrend {
                kind: TrendKind::Piecewise,
                slope: Some(SP(*slope)),
                changepoints: Some(*changepoints),
                delta: Some(SP(*delta)),
            },
        };
        let (kind, nu) = match s.likelihood {
            Likelihood::Normal => (LikelihoodKind::Normal, None),
            Likelihood::StudentT { nu } => (LikelihoodKind::StudentT, Some(nu)),
        };
        let pooling = match s.pooling {
            Pooling::Complete => RawPooling { kind: Some(PoolingKind::Complete), tau: None },
            Pooling::Partial { tau } => RawPooling { kind: Some(PoolingKind::Partial), tau: Some(SP(tau)) },
        };
        RawConfig {
            data: RawData {
                path: d.path.clone(),
                time: d.time_column.clone(),
                kpi: d.kpi_column.clone(),
                geo: d.geo_column.clone(),
                population: d.population_column.clone(),
                revenue_per_kpi: d.revenue_per_kpi_column.clone(),
            },
            media: RawMedia::default(),
            channels,
            controls,
            baseline: RawBaseline {
                intercept: Some(SP(s.baseline.intercept)),
                intercept_geo_sd: Some(match s.baseline.intercept_geo_sd {
                    GeoInterceptSd::Prior(p) => RawPriorOrNumber::Prior(SP(p)),
                    GeoInterceptSd::Fixed(v) => RawPriorOrNumber::Fixed(v),
                }),
                trend: Some(trend),
                seasonality: Some(
                    s.baseline
                        .seasonality
                        .iter()
                        .map(|f| RawFourier { period: f.period, order: Some(f.order), prior: Some(SP(f.prior)) })
                        .collect(),
                ),
            },
            likelihood: RawLikelihood { kind: Some(kind), nu, noise: Some(SP(s.noise_prior)) },
            pooling,
            calibration: RawCalibration {
                lift_tests: Vec::new(),
                roi_priors: s
                    .calibration
                    .roi_priors
                    .iter()
                    .map(|r| RawRoiPrior { channel: r.channel.clone(), mean: r.mean, standard_error: r.standard_error })
                    .collect(),
                lift_test: s.calibration.lift_tests.clone(),
                half_lives: s.calibration.half_lives.clone(),
                tests_in_data: (!s.calibration.tests_in_data).then_some(false),
                lift_counts_carryover: s.calibration.lift_counts_carryover.then_some(true),
                observational_bias_sd: (s.calibration.observational_bias_sd > 0.0)
                    .then_some(s.calibration.observational_bias_sd),
            },
            fit: RawFit {
                method: Some(s.fit.method.to_string()),
                seed: Some(s.fit.seed),
                chains: Some(s.fit.chains),
                tune: Some(s.fit.tune),
                draws: Some(s.fit.draws),
                target_accept: Some(s.fit.target_accept),
                min_tree_depth: Some(s.fit.min_tree_depth),
                metric: Some(
                    match s.fit.metric {
                        mmloop_inference::MassMatrix::Diag => "diag",
                        mmloop_inference::MassMatrix::Dense => "dense",
                        mmloop_inference::MassMatrix::LowRank { .. } => "low_rank",
                    }
                    .to_string(),
                ),
                laplace_starts: Some(s.fit.laplace_starts),
                holdout: Some(s.holdout),
            },
        }
    }
}

/// Splits a control column written `column=value` (an indicator of a text column, from
/// `[[control]] column = "...", equals = "..."`) into its parts; a plain column has no value.
pub fn split_indicator(control_column: &str) -> (&str, Option<&str>) {
    match control_column.split_once('=') {
        Some((c, v)) => (c, Some(v)),
        None => (control_column, None),
    }
}

// ------------------------------------------------------------------------------------------------
// TOML errors → messages with table, line and did-you-mean
// ------------------------------------------------------------------------------------------------

fn toml_error(e: toml::de::Error, text: &str, file: &str) -> ConfigError {
    let span = e.span().unwrap_or(0..0);
    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
    let msg = e.message().trim().to_string();
    let table = enclosing_table(text, span.start);
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let key = rest.split('`').next().unwrap_or_default().to_string();
        let valid = backticked(rest.get(key.len() + 1..).unwrap_or_default());
        let hint = suggest(&key, &valid).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
        let valid = if valid.is_empty() { "(none)".to_string() } else { valid.join(", ") };
        // an unknown table (`[modle]`, `[calibration.roi_prior_]`) is a key of its parent
        let start = span.start.min(text.len());
        let line_text = text[text[..start].rfind('\n').map_or(0, |i| i + 1)..].lines().next().unwrap_or("");
        let line_text = line_text.split('#').next().unwrap_or("").trim();
        let header = line_text.trim_start_matches('[').trim_end_matches(']');
        let table = match header.rsplit_once('.') {
            _ if !line_text.starts_with('[') => table,
            Some((parent, last)) if last.trim() == key => format!("[{}]", parent.trim()),
            None if header.trim() == key => "the top level".to_string(),
            _ => table,
        };
        return ConfigError::UnknownKey { file: file.to_string(), line, key, table, hint, valid };
    }
    if (msg.starts_with("invalid type") || msg.starts_with("invalid value"))
        && let Some(expected) = msg.rsplit_once("expected ").map(|(_, e)| e.trim().trim_end_matches('.'))
    {
        let value = text.get(span.clone()).map(str::trim).unwrap_or("");
        // a tagged value (`adstock = { kind = ..., max_lag = "3" }`) is reported with the span of the
        // whole inline table: find the offending key inside it by the value the message quotes
        let found = if value.starts_with('{') {
            offending_literal(&msg).and_then(|lit| key_with_value(value, &lit).map(|k| (k, lit)))
        } else {
            key_before(text, span.start).map(|k| (k, value.to_string()))
        };
        if let Some((key, got)) = found
            && let Some((want, how)) = wanted(&key, expected)
        {
            let got = if !got.is_empty() && got.len() <= 60 { format!(", got {got}") } else { String::new() };
            return ConfigError::Syntax {
                file: file.to_string(),
                line,
                message: format!("{table} {key} must be {want}{got}. {how}"),
            };
        }
    }
    let mut message = format!("in {table}: {msg}");
    if let Some(rest) = msg.strip_prefix("unknown variant `") {
        let value = rest.split('`').next().unwrap_or_default();
        let valid = backticked(rest.get(value.len() + 1..).unwrap_or_default());
        if let Some(c) = suggest(value, &valid) {
            message.push_str(&format!("; did you mean `{c}`?"));
        }
        message.push_str(". Use one of the values listed");
    } else if msg.starts_with("missing field") {
        message.push_str(". Add the key (see examples/full_reference.toml)");
    } else if msg.starts_with("invalid type") {
        message.push_str(". Write the value with the type named (strings and dates in quotes, numbers bare)");
    } else {
        message.push_str(". Fix the TOML at that line");
    }
    ConfigError::Syntax { file: file.to_string(), line, message }
}

/// The key whose value starts at byte `at` (`key = value`, also inside an inline table).
fn key_before(text: &str, at: usize) -> Option<String> {
    let before = text.get(..at.min(text.len()))?;
    let before = before.trim_end().strip_suffix('=')?.trim_end();
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '"' | '\'' | '.')))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let key = before[start..].trim_matches(['"', '\'']);
    (!key.is_empty()).then(|| key.to_string())
}

/// The value a serde "invalid type: string \"3\", expected ..." message quotes, written as in
/// TOML: `"3"` for a string, the bare literal for numbers and booleans.
fn offending_literal(msg: &str) -> Option<String> {
    let what = msg.split_once(": ")?.1.rsplit_once(", expected")?.0.trim();
    if let Some(s) = what.strip_prefix("string ") {
        return Some(s.trim().to_string());
    }
    let lit = what.split('`').nth(1)?;
    Some(lit.to_string())
}

/// The key of an inline table whose value is written `literal`: `max_lag` in
/// `{ kind = "geometric", max_lag = "3" }` for `"3"`.
fn key_with_value(inline: &str, literal: &str) -> Option<String> {
    let mut from = 0;
    while let Some(i) = inline[from..].find(literal).map(|i| i + from) {
        let after = inline[i + literal.len()..].trim_start();
        if (after.starts_with(',') || after.starts_with('}') || after.is_empty())
            && let Some(k) = key_before(inline, i)
        {
            return Some(k.rsplit(['{', ',', ' ']).next().unwrap_or(&k).to_string());
        }
        from = i + literal.len().max(1);
    }
    None
}

/// What a key's value must be, in words, from serde's "expected ..." and the key's own range,
/// with how to write it: `("a whole number ≥ 1", "Write it without a decimal point or quotes")`.
fn wanted(key: &str, expected: &str) -> Option<(String, &'static str)> {
    let whole = "Write it as a whole number, without a decimal point, sign or quotes";
    Some(match expected {
        "usize" | "u64" | "u32" | "u16" | "u8" => {
            let at_least_one = matches!(key, "chains" | "draws" | "laplace_starts" | "order");
            let what = match (key, at_least_one) {
                ("seed", _) => "a whole number from 0 to 18446744073709551615".to_string(),
                (_, true) => "a whole number ≥ 1".to_string(),
                _ => "a whole number ≥ 0".to_string(),
            };
            (what, whole)
        }
        "i64" | "i32" => ("a whole number".to_string(), "Write it without a decimal point or quotes"),
        "f64" | "f32" => ("a number".to_string(), "Write it bare, without quotes (e.g. 0.8)"),
        "a string" | "string" => ("text in quotes".to_string(), "Put the value in double quotes"),
        "a boolean" | "bool" => ("true or false".to_string(), "Write true or false, without quotes"),
        "a sequence" => ("a list".to_string(), "Write it in brackets, e.g. [1, 2]"),
        _ => return None,
    })
}

/// The valid name closest to a misspelt key or value: [`closest`]'s rule, plus a swap of two
/// neighbouring letters (`sigam` → `sigma`), the commonest typo in short keys.
fn suggest<'a>(name: &str, valid: &'a [String]) -> Option<&'a str> {
    closest(name, valid).or_else(|| {
        let n: Vec<char> = name.to_lowercase().chars().collect();
        valid.iter().map(String::as_str).find(|v| {
            let v: Vec<char> = v.to_lowercase().chars().collect();
            let diff: Vec<usize> = (0..n.len()).filter(|&i| v.len() == n.len() && n[i] != v[i]).collect();
            v.len() == n.len()
                && diff.len() == 2
                && diff[1] == diff[0] + 1
                && n[diff[0]] == v[diff[1]]
                && n[diff[1]] == v[diff[0]]
        })
    })
}

/// Every `name` in a serde "expected one of `a`, `b`" list.
fn backticked(s: &str) -> Vec<String> {
    s.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// A readable name of the table that encloses byte offset `at`: the last `[header]` above it, with
/// the entry number for arrays of tables, and the inline table's key if `at` is inside `key = { ... }`.
fn enclosing_table(text: &str, at: usize) -> String {
    let at = at.min(text.len());
    let before = &text[..at];
    // a header on the error's own line counts (a missing key is reported at its table's header)
    let upto = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let header_of = |l: &str| {
        let t = l.split('#').next().unwrap_or("").trim();
        t.starts_with('[').then(|| t.to_string())
    };
    let header = text[..upto].lines().filter_map(header_of).next_back();
    let mut name = match &header {
        None => "the top level".to_string(),
        Some(h) if h.starts_with("[[") => {
            let count = text[..upto].lines().filter(|l| header_of(l).as_deref() == Some(h.as_str())).count();
            format!("{h} #{count}")
        }
        Some(h) => h.clone(),
    };
    // inline table on the error's line: `key = { ...` with the brace still open before `at`
    let line_begin = before.rfind('\n').map_or(0, |i| i + 1);
    let prefix = &text[line_begin..at];
    let mut depth = 0i32;
    let mut open = None;
    for (i, ch) in prefix.char_indices().rev() {
        match ch {
            '}' => depth += 1,
            '{' if depth == 0 => {
                open = Some(i);
                break;
            }
            '{' => depth -= 1,
            _ => {}
        }
    }
    let key_end = match open {
        Some(i) => Some(i),
        None if text[at..].trim_start().starts_with('{') => Some(prefix.len()),
        None => None,
    };
    if let Some(end) = key_end {
        let lhs = prefix[..end].trim_end().trim_end_matches('=').trim_end();
        let key = lhs.rsplit([',', '{', ' ']).next().unwrap_or("").trim();
        if !key.is_empty() {
            name.push_str(&format!(" `{key}`"));
        }
    }
    name
}
