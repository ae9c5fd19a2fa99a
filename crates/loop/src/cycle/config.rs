//! The loop config (TOML) → a validated [`LoopConfig`], once, at the edge. Paths are relative to
//! the config file's folder; every error names the file and the key.
//!
//! ```toml
//! model = "model.toml"            # the MMM config (required)
//! ledger = "loop.ledger"          # the experiment ledger (required; created when missing)
//!
//! [panel]                         # optional: the regional panel tests are designed on
//! path = "panel.csv"
//! time = "date"                   # default "date"
//! geo = "geo"                     # default "geo"
//! kpi = "sales"                   # default "kpi"
//!
//! [budget]
//! total = 1_000_000               # optional; default: the spend of the last `horizon` periods
//! horizon = 13                    # periods planned (default 13)
//! objective = "mean"              # mean, mean-sd:K, quantile:Q, cvar:A
//! relative = 0.3                  # each channel may move this share of its current spend
//! against_plan = false            # score the objective on the gain over the plan in force (the
//!                                 # last cycle's recommendation): with a risk-averse objective
//!                                 # (cvar:A) money moves only as far as the posterior supports
//! bounds = [{ channel = "tv", lower = 0, upper = 5e5 }]   # absolute overrides
//!
//! [tests]
//! max_per_cycle = 3               # default 3
//! budget = 50_000                 # optional: the most all tests of a cycle may cost
//! frozen_markets = ["new york"]   # markets no test may touch
//!
//! [calibration]
//! half_lives = { tv = 52 }        # weeks; over the model config's and the class defaults
//! time_unit = "weeks"             # the step of a numeric time column
//! ledger_as = "likelihood"        # or "roi-prior"
//! threshold = 2.0                 # |z| beyond which a readout disagrees with its prediction
//! retest_fits = true              # Laplace refits for the re-test verdict
//! ```

use super::CycleError;
use super::fit::{LedgerFitSettings, parse_ledger_as, parse_time_unit};
use crate::calibrate::LedgerAs;
use crate::decay::TimeUnit;
use crate::validate::Threshold;
use mmloop_mmm::ModelSpec;
use mmloop_mmm::optimize::Risk;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    model: PathBuf,
    ledger: PathBuf,
    panel: Option<RawPanel>,
    #[serde(default)]
    budget: RawBudget,
    #[serde(default)]
    tests: RawTests,
    #[serde(default)]
    calibration: RawCalibration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPanel {
    path: PathBuf,
    time: Option<String>,
    geo: Option<String>,
    kpi: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    total: Option<f64>,
    horizon: Option<i64>,
    objective: Option<String>,
    relative: Option<f64>,
    against_plan: Option<bool>,
    #[serde(default)]
    bounds: Vec<RawBound>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBound {
    channel: String,
    lower: f64,
    upper: f64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTests {
    max_per_cycle: Option<i64>,
    budget: Option<f64>,
    #[serde(default)]
    frozen_markets: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalibration {
    #[serde(default)]
    half_lives: BTreeMap<String, f64>,
    time_unit: Option<String>,
    ledger_as: Option<String>,
    threshold: Option<f64>,
    retest_fits: Option<bool>,
}

/// The regional panel tests are designed on.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelSource {
    pub path: PathBuf,
    pub time: String,
    pub geo: String,
    pub kpi: String,
}

/// What the budget recommendation optimises.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetSettings {
    /// Money over the horizon; `None`: the current spend of the last `horizon` periods.
    pub total: Option<f64>,
    pub horizon: usize,
    pub objective: Risk,
    /// The objective as written (for the artefacts).
    pub objective_text: String,
    pub relative: f64,
    /// Absolute (channel, lower, upper) overrides of the relative bounds.
    pub bounds: Vec<(String, f64, f64)>,
    /// Score the objective on the gain over the plan in force (the last cycle's recommendation;
    /// before any, the current spend) instead of the outcome
    /// ([`mmloop_mmm::optimize::optimize_plan_against`]): the same recommendation for the mean; with
    /// a risk-averse objective the recommendation departs from the plan only as far as the
    /// posterior supports the departure.
    pub against_plan: bool,
}

/// What tests a cycle may plan.
#[derive(Debug, Clone, PartialEq)]
pub struct TestConstraints {
    pub max_per_cycle: usize,
    /// The most the tests of one cycle may cost together (money).
    pub budget: Option<f64>,
    /// Markets no test may touch.
    pub frozen_markets: Vec<String>,
}

impl Default for TestConstraints {
    fn default() -> Self {
        Self { max_per_cycle: 3, budget: None, frozen_markets: Vec::new() }
    }
}

/// A validated loop config.
#[derive(Debug, Clone)]
pub struct LoopConfig {
    /// The loop config file (none for a config built in code, as the demo does).
    pub file: Option<PathBuf>,
    /// The MMM config and the spec it parses to.
    pub model: PathBuf,
    pub spec: ModelSpec,
    pub ledger: PathBuf,
    pub panel: Option<PanelSource>,
    pub budget: BudgetSettings,
    pub tests: TestConstraints,
    pub fit: LedgerFitSettings,
    pub threshold: Threshold,
}

impl LoopConfig {
    /// Reads and validates a loop config file, and the MMM config it names.
    pub fn load(path: &Path) -> Result<Self, CycleError> {
        let text = std::fs::read_to_string(path).map_err(|e| CycleError::Io {
            path: path.to_path_buf(),
            what: "the loop config".into(),
            source: e,
        })?;
        let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let mut c = Self::parse(&text, &base, &path.display().to_string())?;
        c.file = Some(path.to_path_buf());
        Ok(c)
    }

    /// Parses a loop config from text; relative paths are resolved against `base`, errors name `file`.
    pub fn parse(text: &str, base: &Path, file: &str) -> Result<Self, CycleError> {
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1)).unwrap_or(0);
            CycleError::Config {
                file: file.to_string(),
                key: format!("line {line}"),
                message: e.message().trim().to_string(),
            }
        })?;
        let bad = |key: &str, message: String| CycleError::Config { file: file.into(), key: key.into(), message };
        let resolve = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
        let must_exist = |key: &str, p: PathBuf, what: &str| -> Result<PathBuf, CycleError> {
            match std::fs::metadata(&p) {
                Ok(m) if m.is_file() => Ok(p),
                Ok(_) => Err(bad(key, format!("{} is not a file (it should be {what})", p.display()))),
                Err(e) => Err(bad(key, format!("{}: {e} (it should be {what})", p.display()))),
            }
        };
        let model = must_exist("model", resolve(&raw.model), "the MMM config")?;
        let spec = mmloop_mmm::config::load_config(&model)
            .map_err(|e| bad("model", format!("the MMM config {}: {e}", model.display())))?;
        let channels: Vec<String> = spec.channels.iter().map(|c| c.name.clone()).collect();
        let known = channels.join(", ");
        let ledger = resolve(&raw.ledger);
        if ledger.is_dir() {
            return Err(bad("ledger", format!("{} is a directory; name the ledger file", ledger.display())));
        }
        let panel = match raw.panel {
            None => None,
            Some(p) => Some(PanelSource {
                path: must_exist("panel.path", resolve(&p.path), "the regional panel, CSV or Parquet")?,
                time: p.time.unwrap_or_else(|| "date".into()),
                geo: p.geo.unwrap_or_else(|| "geo".into()),
                kpi: p.kpi.unwrap_or_else(|| "kpi".into()),
            }),
        };
        let b = raw.budget;
        if let Some(t) = b.total
            && !(t.is_finite() && t > 0.0)
        {
            return Err(bad("budget.total", format!("must be the money to spend over the horizon, above 0, got {t}")));
        }
        let horizon = match b.horizon {
            None => 13,
            Some(h) if h >= 1 => h as usize,
            Some(h) => {
                return Err(bad("budget.horizon", format!("must be a whole number of periods, at least 1, got {h}")));
            }
        };
        let objective_text = b.objective.unwrap_or_else(|| "mean".into());
        let objective = Risk::parse(&objective_text).map_err(|m| bad("budget.objective", m))?;
        let relative = b.relative.unwrap_or(0.3);
        if !(relative.is_finite() && (0.0..=1.0).contains(&relative)) {
            return Err(bad(
                "budget.relative",
                format!("must be a fraction from 0 to 1 (0.3 = each channel may move ±30 %), got {relative}"),
            ));
        }
        let mut bounds = Vec::new();
        for (i, r) in b.bounds.into_iter().enumerate() {
            let key = format!("budget.bounds[{}]", i + 1);
            if !channels.contains(&r.channel) {
                return Err(bad(&key, format!("no channel {:?} in the model; channels: {known}", r.channel)));
            }
            if !(r.lower.is_finite() && r.upper.is_finite() && 0.0 <= r.lower && r.lower <= r.upper) {
                return Err(bad(&key, format!("need 0 ≤ lower ≤ upper, got lower {} upper {}", r.lower, r.upper)));
            }
            if bounds.iter().any(|(c, _, _): &(String, f64, f64)| c == &r.channel) {
                return Err(bad(&key, format!("channel {:?} has bounds twice", r.channel)));
            }
            bounds.push((r.channel, r.lower, r.upper));
        }
        let t = raw.tests;
        let max_per_cycle = match t.max_per_cycle {
            None => 3,
            Some(k) if k >= 1 => k as usize,
            Some(k) => return Err(bad("tests.max_per_cycle", format!("must be at least 1, got {k}"))),
        };
        if let Some(tb) = t.budget
            && !(tb.is_finite() && tb > 0.0)
        {
            return Err(bad("tests.budget", format!("must be the money the tests may cost, above 0, got {tb}")));
        }
        let c = raw.calibration;
        let mut half_lives = spec.calibration.half_lives.clone();
        for (ch, w) in &c.half_lives {
            if !channels.contains(ch) {
                return Err(bad(
                    &format!("calibration.half_lives.{ch}"),
                    format!("no channel {ch:?} in the model; channels: {known}"),
                ));
            }
            if !(w.is_finite() && *w > 0.0) {
                return Err(bad(
                    &format!("calibration.half_lives.{ch}"),
                    format!("must be a positive number of weeks, got {w}"),
                ));
            }
            half_lives.insert(ch.clone(), *w);
        }
        let time_unit = match &c.time_unit {
            Some(u) => {
                parse_time_unit(u, "calibration.time_unit").map_err(|e| bad("calibration.time_unit", e.to_string()))?
            }
            None => TimeUnit::Weeks,
        };
        let ledger_as = match &c.ledger_as {
            Some(m) => {
                parse_ledger_as(m, "calibration.ledger_as").map_err(|e| bad("calibration.ledger_as", e.to_string()))?
            }
            None => LedgerAs::Likelihood,
        };
        let threshold = Threshold::new(c.threshold.unwrap_or(crate::validate::DEFAULT_THRESHOLD))
            .map_err(|e| bad("calibration.threshold", e.to_string()))?;
        let mut spec = spec;
        spec.calibration.half_lives = half_lives;
        Ok(Self {
            file: None,
            model,
            spec,
            ledger,
            panel,
            budget: BudgetSettings {
                total: b.total,
                horizon,
                objective,
                objective_text,
                relative,
                bounds,
                against_plan: b.against_plan.unwrap_or(false),
            },
            tests: TestConstraints { max_per_cycle, budget: t.budget, frozen_markets: t.frozen_markets },
            fit: LedgerFitSettings {
                time_unit,
                ledger_as,
                retest_fits: c.retest_fits.unwrap_or(true),
                ..Default::default()
            },
            threshold,
        })
    }
}
