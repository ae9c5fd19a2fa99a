//! Planning on a fitted posterior: load a fit directory written by `mmloop fit`, turn its draws
//! into per-channel response curves over a planning horizon, optimise the budget, and evaluate
//! user-given spend plans (scenarios).
//!
//! Units: spend in money; outcomes in KPI units, or in revenue when the model has a revenue-per-KPI
//! column. A national plan is spread over geos in proportion to each geo's recent spend on the
//! channel, and converted to the media driver (impressions, clicks) by the geo's recent
//! media-per-money ratio — the way the same money bought media in the data.

use super::curves::{ResponseCurves, SaturatingCurves, Saturation, horizon_pieces};
use super::objective::Risk;
use super::solver::{Allocation, Bounds, Goal, OptimizeError, SolverSettings, min_budget_for_target, optimize};
use crate::analysis::Stat;
use crate::dataset::Dataset;
use crate::fitdir::{self, FitDir, FitDirError};
use crate::model::{MmmModel, ParamValues};
use crate::spec::ModelSpec;
use crate::transforms::saturation::SaturationKind;
use mmloop_data::Table;
use std::path::{Path, PathBuf};

/// Why a fit cannot be loaded or a plan evaluated.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{dir}: not a fit directory ({missing} is missing); run `mmloop fit --out {dir}` first")]
    NotAFit { dir: PathBuf, missing: &'static str },
    #[error("{dir}/config.toml: {message}")]
    Config { dir: PathBuf, message: String },
    #[error("{path}: {message}")]
    Draws { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Plan { path: PathBuf, message: String },
    #[error(transparent)]
    InputChanged(Box<InputChanged>),
    #[error("{path}: cannot read the fit's provenance record: {message}; refit to write a new one")]
    Provenance { path: PathBuf, message: String },
    #[error("{0}")]
    Option(String),
    /// A table (plan, bounds) that cannot be read; the message names the file.
    #[error(transparent)]
    Table(mmloop_data::DataError),
    /// A result that is not a finite number (an overflow somewhere upstream).
    #[error("{0}")]
    NonFinite(String),
    #[error(transparent)]
    Optimize(#[from] OptimizeError),
}

impl From<FitDirError> for PlanError {
    fn from(e: FitDirError) -> Self {
        match e {
            FitDirError::NotAFit { dir, missing } => PlanError::NotAFit { dir, missing },
            FitDirError::Provenance { path, message } => PlanError::Provenance { path, message },
            FitDirError::Summary { path, message } => PlanError::Draws { path, message },
        }
    }
}

/// A file a saved fit depends on no longer holds what it held when the fit was made.
#[derive(Debug, thiserror::Error)]
#[error(
    "{path}: {what} has changed since the fit in {dir} was made (SHA-256 at fit time {recorded}, now {actual}). \
     {remedy}"
)]
pub struct InputChanged {
    pub dir: PathBuf,
    pub path: PathBuf,
    pub what: &'static str,
    pub recorded: String,
    pub actual: String,
    pub remedy: &'static str,
}

/// A fitted model reloaded from its output directory: spec, data, model and unconstrained draws.
#[derive(Debug, Clone)]
pub struct FittedModel {
    pub spec: ModelSpec,
    pub data: Dataset,
    pub model: MmmModel,
    /// Constrained parameter values, one per posterior draw.
    pub draws: Vec<ParamValues>,
}

impl FittedModel {
    /// Loads `DIR/config.toml` and `DIR/posterior_unconstrained.parquet`, as
    /// [`FittedModel::load_checked`] does, printing its warnings to stderr.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, PlanError> {
        let (fit, warnings) = Self::load_checked(dir)?;
        for w in warnings {
            eprintln!("warning: {w}");
        }
        Ok(fit)
    }

    /// Loads `DIR/config.toml` and `DIR/posterior_unconstrained.parquet`. The data path stored in
    /// the config is tried as written (relative to the working directory of the fit), then
    /// relative to the fit directory.
    ///
    /// Nothing is combined with the posterior unless it is what the fit was computed from: the
    /// SHA-256 of the data file, of the saved config and of the draws file must equal those recorded
    /// in `provenance.json`, and the draws file must have exactly the columns `chain`, `draw` and
    /// the model's parameters in the model's order, non-negative whole chain and draw numbers with
    /// no (chain, draw) pair repeated, finite values, and the recorded number of rows. A fit written
    /// before provenance records existed loads with a warning (returned) instead of the hash checks.
    pub fn load_checked(dir: impl AsRef<Path>) -> Result<(Self, Vec<String>), PlanError> {
        let fit_dir = FitDir::open(dir)?;
        let dir = fit_dir.path().to_path_buf();
        let cfg = fit_dir.file(fitdir::CONFIG);
        let post = fit_dir.file(fitdir::POSTERIOR_UNCONSTRAINED);
        let mut warnings = Vec::new();
        let text = std::fs::read_to_string(&cfg)
            .map_err(|e| PlanError::Config { dir: dir.clone(), message: e.to_string() })?;
        let prov = fit_dir.provenance()?;
        let changed = |path: &Path, what: &'static str, recorded: &str, actual: String, remedy: &'static str| {
            PlanError::InputChanged(Box::new(InputChanged {
                dir: dir.clone(),
                path: path.to_path_buf(),
                what,
                recorded: recorded.to_string(),
                actual,
                remedy,
            }))
        };
        match &prov {
            Some(p) => {
                let now = mmloop_data::hash_bytes(text.as_bytes());
                if now != p.saved_config_sha256 {
                    return Err(changed(
                        &cfg,
                        "the saved model config",
                        &p.saved_config_sha256,
                        now,
                        "The saved posterior belongs to the config as it was: restore it, or refit with the new config (`mmloop fit --config ... --out ...`)",
                    ));
                }
            }
            None => warnings.push(format!(
                "{}: the fit has no {} (it was written by an older mmloop), so mmloop cannot check that its data \
                 file and draws are unchanged since the fit; refit to record their hashes",
                dir.display(),
                fitdir::PROVENANCE
            )),
        }
        let cerr = |e: crate::config::ConfigError| PlanError::Config { dir: dir.clone(), message: e.to_string() };
        let mut spec = crate::config::parse_config(&text, Path::new(".")).map_err(cerr)?;
        if !spec.data.path.exists() {
            spec = crate::config::parse_config(&text, &dir).map_err(cerr)?;
        }
        if let Some(p) = &prov {
            let now = mmloop_data::hash_file(&spec.data.path)
                .map_err(|e| PlanError::Config { dir: dir.clone(), message: e.to_string() })?;
            if now != p.data.sha256 {
                return Err(changed(
                    &spec.data.path,
                    "the data file",
                    &p.data.sha256,
                    now,
                    "The saved posterior belongs to the data as it was: refit on the new data (`mmloop fit --config ... --out ...`), or restore the file as it was",
                ));
            }
        }
        let data = Dataset::load(&spec).map_err(|e| PlanError::Config { dir: dir.clone(), message: e.to_string() })?;
        let model =
            MmmModel::new(&spec, &data).map_err(|e| PlanError::Config { dir: dir.clone(), message: e.to_string() })?;
        let names = model.names();
        let derr = |message: String| PlanError::Draws { path: post.clone(), message };
        if let Some(p) = &prov {
            if p.parameters != names {
                return Err(derr(format!(
                    "the fit recorded {} parameters but the model built from config.toml has {} ({}); refit",
                    p.parameters.len(),
                    names.len(),
                    first_difference(&p.parameters, &names)
                )));
            }
            let file = "posterior_unconstrained.parquet";
            let now = mmloop_data::hash_file(&post).map_err(|e| derr(e.to_string()))?;
            match p.files.get(file) {
                Some(rec) if *rec == now => {}
                Some(rec) => {
                    return Err(changed(
                        &post,
                        "the posterior draws file",
                        rec,
                        now,
                        "It is not the file this fit wrote (was another file copied over it?): restore it, or refit",
                    ));
                }
                None => return Err(derr(format!("{} records no hash for {file}; refit", fitdir::PROVENANCE))),
            }
        }
        let table = Table::read(&post).map_err(|e| derr(e.to_string()))?;
        let columns = table.columns();
        let mut expected = vec!["chain".to_string(), "draw".to_string()];
        expected.extend(names.iter().cloned());
        if columns != expected {
            return Err(derr(format!(
                "the columns are not `chain`, `draw` and this model's {} parameters in order ({}), so these are \
                 not this fit's unconstrained draws (was another file copied over it?); restore the file or refit",
                names.len(),
                first_difference(&columns, &expected)
            )));
        }
        let whole = |name: &str| -> Result<Vec<u64>, PlanError> {
            let v = table.f64_column(name).map_err(|e| derr(e.to_string()))?;
            v.iter()
                .enumerate()
                .map(|(i, &x)| {
                    if x >= 0.0 && x.fract() == 0.0 && x < 1e15 {
                        Ok(x as u64)
                    } else {
                        Err(derr(format!("column {name:?}, row {}: {x} is not a draw index; refit", i + 1)))
                    }
                })
                .collect()
        };
        let (chain, draw) = (whole("chain")?, whole("draw")?);
        let mut seen = std::collections::HashSet::new();
        for (i, cd) in chain.iter().zip(&draw).enumerate() {
            if !seen.insert(cd) {
                return Err(derr(format!(
                    "row {}: chain {} draw {} appears twice; these are not one fit's draws; refit",
                    i + 1,
                    cd.0,
                    cd.1
                )));
            }
        }
        let expected_rows = match &prov {
            Some(p) => Some(p.n_draws),
            // a fit without provenance: check against its summary when that reads
            None => fit_dir.summary().ok().map(|s| s.n_draws),
        };
        if let Some(n) = expected_rows
            && n != table.n_rows()
        {
            return Err(derr(format!("{} draws, but the fit recorded {n}; restore the file or refit", table.n_rows())));
        }
        let cols: Vec<Vec<f64>> = names
            .iter()
            .map(|n| table.f64_column(n).map_err(|e| derr(format!("{e} (the posterior draws must be finite; refit)"))))
            .collect::<Result<_, _>>()?;
        check_constrained_twin(&fit_dir.file(fitdir::POSTERIOR), &post, &model, &expected, &cols)?;
        let draws = (0..table.n_rows())
            .map(|d| {
                let q: Vec<f64> = cols.iter().map(|c| c[d]).collect();
                model.unpack(&q)
            })
            .collect();
        Ok((Self { spec, data, model, draws }, warnings))
    }

    pub fn channel_names(&self) -> Vec<String> {
        self.model.channels.iter().map(|c| c.name.clone()).collect()
    }
}

/// The constrained draws a fit writes next to the unconstrained ones must be those draws through the
/// model's transforms. Checked at the first, middle and last draw: this catches one file copied over
/// the other, or draws of a model with another parametrisation (an older mmloop), also in fits that
/// have no provenance record. Skipped when `posterior.parquet` is absent.
fn check_constrained_twin(
    twin: &Path,
    post: &Path,
    model: &MmmModel,
    expected_columns: &[String],
    unconstrained: &[Vec<f64>],
) -> Result<(), PlanError> {
    if !twin.exists() {
        return Ok(());
    }
    let derr = |message: String| PlanError::Draws { path: twin.to_path_buf(), message };
    let t = Table::read(twin).map_err(|e| derr(e.to_string()))?;
    let n = unconstrained.first().map_or(0, Vec::len);
    if t.columns() != expected_columns || t.n_rows() != n {
        return Err(derr(format!(
            "it does not have the columns and {n} rows of {}; one of the two draw files was replaced: refit",
            post.display()
        )));
    }
    let names = model.names();
    let cols: Vec<Vec<f64>> =
        names.iter().map(|p| t.f64_column(p).map_err(|e| derr(e.to_string()))).collect::<Result<_, _>>()?;
    let mut rows = vec![0, n / 2, n.saturating_sub(1)];
    rows.dedup();
    for r in rows.into_iter().filter(|&r| r < n) {
        let q: Vec<f64> = unconstrained.iter().map(|c| c[r]).collect();
        let c = model.constrain(&q);
        for (i, (&want, col)) in c.iter().zip(&cols).enumerate() {
            let got = col[r];
            // both were computed from the same f64 draw by the same code and stored exactly: they
            // agree to rounding; 1e-9 relative leaves room for a reordering of the arithmetic inside
            // a transform, while another parametrisation or the other file's scale is off by far more
            if (got - want).abs() > 1e-9 * want.abs().max(1.0) {
                return Err(derr(format!(
                    "draw {}, parameter {:?}: {got} here, but {want} from the unconstrained draws in {}; one of the \
                     two files was replaced, or the fit was made by an mmloop with another parametrisation: refit",
                    r + 1,
                    names[i],
                    post.display()
                )));
            }
        }
    }
    Ok(())
}

/// Where two name lists first differ, for a message: `position 3: "beta_tv" instead of "beta_search"`.
fn first_difference(got: &[String], want: &[String]) -> String {
    for i in 0..got.len().max(want.len()) {
        match (got.get(i), want.get(i)) {
            (Some(g), Some(w)) if g == w => continue,
            (Some(g), Some(w)) => return format!("column {}: {g:?} where {w:?} was expected", i + 1),
            (Some(g), None) => return format!("column {}: {g:?} is one too many", i + 1),
            (None, Some(w)) => return format!("column {} ({w:?}) is missing", i + 1),
            (None, None) => break,
        }
    }
    "no difference".into()
}

/// Whether outcomes are counted in KPI units or in revenue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeUnit {
    Kpi,
    Revenue,
}

/// How one channel's national money reaches the model in one geo.
#[derive(Debug, Clone)]
struct GeoRoute {
    /// Scaled media per unit of money in this geo: share_g · ρ_g / (r_g · m_c).
    media_per_money: f64,
    /// KPI scale κ_g times revenue per KPI (or 1).
    value_scale: f64,
}

/// The planning basis: recent spend per channel and how money maps to each geo.
#[derive(Debug, Clone)]
pub struct PlanningBasis {
    pub horizon: usize,
    pub unit: OutcomeUnit,
    pub channels: Vec<String>,
    /// Spend in the last `horizon` fitted periods, per channel (the "current" allocation).
    pub current: Vec<f64>,
    routes: Vec<Vec<GeoRoute>>,
}

impl PlanningBasis {
    /// Builds the basis from the last `horizon` periods of the fitted data.
    pub fn new(fit: &FittedModel, horizon: usize, unit: OutcomeUnit) -> Result<Self, PlanError> {
        let m = &fit.model;
        let (g_n, t_n, tf) = (m.n_geos(), m.n_times, m.n_fit);
        if horizon == 0 || horizon > tf {
            return Err(PlanError::Option(format!(
                "--horizon must be between 1 and the {tf} fitted periods, got {horizon}"
            )));
        }
        if unit == OutcomeUnit::Revenue && !m.has_revenue {
            return Err(PlanError::Option(
                "revenue outcomes need a revenue-per-KPI column in the model; use KPI outcomes".into(),
            ));
        }
        let recent = tf - horizon..tf;
        let mut current = Vec::new();
        let mut routes = Vec::new();
        for (c, ch) in m.channels.iter().enumerate() {
            let spend_g = |g: usize, r: std::ops::Range<usize>| -> f64 { r.map(|t| m.spend[c][g * t_n + t]).sum() };
            let media_g = |g: usize, r: std::ops::Range<usize>| -> f64 { r.map(|t| fit.data.media[[g, t, c]]).sum() };
            let total_recent: f64 = (0..g_n).map(|g| spend_g(g, recent.clone())).sum();
            // shares and media-per-money from the recent window, or the whole fit when the channel was dark
            let window = if total_recent > 0.0 { recent.clone() } else { 0..tf };
            let total: f64 = (0..g_n).map(|g| spend_g(g, window.clone())).sum();
            let all_media: f64 = (0..g_n).map(|g| media_g(g, 0..tf)).sum();
            let all_spend: f64 = (0..g_n).map(|g| spend_g(g, 0..tf)).sum();
            let rho_all = if all_spend > 0.0 { all_media / all_spend } else { 1.0 };
            let mut r = Vec::with_capacity(g_n);
            for g in 0..g_n {
                let sg = spend_g(g, window.clone());
                let share = if total > 0.0 { sg / total } else { 1.0 / g_n as f64 };
                let rho = if sg > 0.0 { media_g(g, window.clone()) / sg } else { rho_all };
                let rpk = match unit {
                    OutcomeUnit::Kpi => 1.0,
                    OutcomeUnit::Revenue => recent.clone().map(|t| m.rpk[g * t_n + t]).sum::<f64>() / horizon as f64,
                };
                r.push(GeoRoute {
                    media_per_money: share * rho / (m.geo_size[g] * ch.media_scale),
                    value_scale: m.kpi_scale[g] * rpk,
                });
            }
            current.push(total_recent);
            routes.push(r);
        }
        Ok(Self { horizon, unit, channels: m.channels.iter().map(|c| c.name.clone()).collect(), current, routes })
    }

    /// Per-draw response curves R_{c,d}(S): the incremental outcome of spending S on channel c,
    /// spread evenly over the horizon, through the draw's adstock (carry-over after the horizon
    /// counted) and saturation. With `steady_state`, the adstock is taken at its long-run level
    /// instead (one piece per geo: faster, and exact for a horizon long against the adstock).
    pub fn curves(&self, fit: &FittedModel, steady_state: bool) -> Result<SaturatingCurves, PlanError> {
        let m = &fit.model;
        for ch in &m.channels {
            if ch.order == crate::transforms::TransformOrder::SaturationFirst {
                return Err(PlanError::Option(format!(
                    "channel {:?} saturates before adstock; budget curves support adstock-first channels only",
                    ch.name
                )));
            }
        }
        let nd = fit.draws.len();
        Ok(SaturatingCurves::new(m.channels.len(), nd, |c, d| {
            let p = &fit.draws[d];
            let ch = &m.channels[c];
            let mut w = vec![0.0; ch.kernel.len()];
            let mut dw = vec![0.0; ch.kernel.len() * ch.kernel.n_params()];
            ch.kernel.weights(&p.theta[c], &mut w, &mut dw);
            let sat = match ch.sat.kind {
                SaturationKind::Hill => Saturation::Hill { ec: p.phi[c][0], slope: p.phi[c][1] },
                SaturationKind::Logistic => Saturation::Logistic { lam: p.phi[c][0] },
                SaturationKind::MichaelisMenten => Saturation::MichaelisMenten { k: p.phi[c][0] },
            };
            let mut pieces = Vec::new();
            for (g, route) in self.routes[c].iter().enumerate() {
                let mult = route.value_scale * p.beta_geo[c][g];
                if steady_state {
                    let k = w.iter().sum::<f64>() * route.media_per_money / self.horizon as f64;
                    pieces.push((k, mult * self.horizon as f64));
                } else {
                    pieces.extend(
                        horizon_pieces(&w, self.horizon, route.media_per_money).into_iter().map(|(k, n)| (k, n * mult)),
                    );
                }
            }
            (1.0, sat, pieces)
        }))
    }
}

/// Bounds for an optimisation: `relative` of current spend either way (Meridian's default ±30 %),
/// with optional per-channel absolute overrides `(channel, lower, upper)` and fixed channels.
pub fn relative_bounds(
    basis: &PlanningBasis,
    relative: f64,
    overrides: &[(String, f64, f64)],
) -> Result<Bounds, PlanError> {
    if !(relative.is_finite() && relative >= 0.0) {
        return Err(PlanError::Option(format!("--relative must be a non-negative fraction, got {relative}")));
    }
    let mut b = Bounds {
        names: basis.channels.clone(),
        lower: basis.current.iter().map(|s| s * (1.0 - relative).max(0.0)).collect(),
        upper: basis.current.iter().map(|s| s * (1.0 + relative)).collect(),
    };
    for (name, lo, hi) in overrides {
        let c = basis.channels.iter().position(|n| n == name).ok_or_else(|| {
            PlanError::Option(format!(
                "bounds name channel {name:?}, which the model does not have; channels: {}",
                basis.channels.join(", ")
            ))
        })?;
        b.lower[c] = *lo;
        b.upper[c] = *hi;
    }
    Ok(b)
}

/// Per-draw total outcome of an allocation.
pub fn outcome_draws(curves: &impl ResponseCurves, spend: &[f64]) -> Vec<f64> {
    let nd = curves.n_draws();
    let mut o = vec![0.0; nd];
    let mut v = vec![0.0; nd];
    for (c, &s) in spend.iter().enumerate() {
        curves.value(c, s, &mut v);
        o.iter_mut().zip(&v).for_each(|(a, b)| *a += b);
    }
    o
}

/// One channel's line in an optimisation report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChannelPlan {
    pub channel: String,
    pub current_spend: f64,
    pub optimal_spend: f64,
    pub lower: f64,
    pub upper: f64,
    /// Incremental outcome of the channel at the optimum.
    pub outcome: Stat,
    /// Marginal return ∂(objective)/∂spend at the optimum.
    pub marginal_return: f64,
}

/// The answer to `mmloop optimize`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OptimizationReport {
    pub horizon: usize,
    pub outcome_unit: &'static str,
    pub objective: String,
    pub budget: f64,
    pub channels: Vec<ChannelPlan>,
    pub current_outcome: Stat,
    pub optimal_outcome: Stat,
    /// Per-draw gain of the optimal over the current allocation.
    pub gain: Stat,
    /// Posterior probability that the optimum beats the current allocation.
    pub prob_gain_positive: f64,
    pub objective_value: f64,
    pub kkt_residual: f64,
    pub lambda: f64,
    pub iterations: usize,
    /// Per-draw total outcome (current, optimal), for the distribution of the gain.
    #[serde(skip)]
    pub draws: Vec<(f64, f64)>,
}

/// What the optimisation must achieve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PlanGoal {
    Budget(f64),
    TargetOutcome(f64),
    TargetMarginalReturn(f64),
}

/// Response curves measured from a reference allocation r: G_{c,d}(s) = R_{c,d}(s) − R_{c,d}(r_c).
/// Summed over channels, a draw's value is the gain of an allocation over r in that draw, so a
/// risk measure of it scores the *change* from r, not the outcome; the derivatives are R's. See
/// [`optimize_plan_against`].
pub struct GainOver<'a> {
    inner: &'a SaturatingCurves,
    /// R_{c,d}(r_c), [c][d].
    at_reference: Vec<Vec<f64>>,
}

impl<'a> GainOver<'a> {
    /// `inner` measured from `reference` (one amount per channel of `inner`).
    pub fn new(inner: &'a SaturatingCurves, reference: &[f64]) -> Self {
        let at_reference = reference
            .iter()
            .enumerate()
            .map(|(c, &r)| {
                let mut v = vec![0.0; inner.n_draws()];
                inner.value(c, r, &mut v);
                v
            })
            .collect();
        Self { inner, at_reference }
    }
}

impl ResponseCurves for GainOver<'_> {
    fn n_channels(&self) -> usize {
        self.inner.n_channels()
    }
    fn n_draws(&self) -> usize {
        self.inner.n_draws()
    }
    fn eval(&self, c: usize, s: f64, v: &mut [f64], d1: &mut [f64], d2: &mut [f64]) {
        self.inner.eval(c, s, v, d1, d2);
        v.iter_mut().zip(&self.at_reference[c]).for_each(|(x, r)| *x -= r);
    }
    fn value(&self, c: usize, s: f64, v: &mut [f64]) {
        self.inner.value(c, s, v);
        v.iter_mut().zip(&self.at_reference[c]).for_each(|(x, r)| *x -= r);
    }
}

/// Runs the optimisation and summarises it against the current allocation.
pub fn optimize_plan(
    basis: &PlanningBasis,
    curves: &SaturatingCurves,
    risk: Risk,
    bounds: &Bounds,
    goal: PlanGoal,
) -> Result<OptimizationReport, PlanError> {
    optimize_plan_against(basis, curves, risk, bounds, goal, None)
}

/// [`optimize_plan`], with the objective scoring the gain over a `reference` allocation (one
/// amount per channel) instead of the outcome: maximise Φ(Y(s) − Y(r)) over the draws.
///
/// For the mean the two are the same problem (Y(r) is a constant per draw, and the mean is
/// linear). For a risk-averse Φ they are not: Y(s) − Y(r) is 0 in every draw at s = r, and its
/// spread grows with how far s moves from r along directions the posterior is unsure of, so
/// CVaR_α of the gain (the mean gain in the worst α of the draws; Rockafellar & Uryasev 2000)
/// moves money away from r only as far as the move pays in the posterior's bad tail as well —
/// a baseline-relative ("safe") policy improvement, which departs from the policy in force only
/// where the evidence supports the departure with high confidence (Thomas, Theocharous &
/// Ghavamzadeh 2015, "High confidence policy improvement", ICML; Laroche, Trichelair & Tachet des
/// Combes 2019, "Safe policy improvement with baseline bootstrapping", ICML). Φ of the outcome
/// instead penalises spend on uncertain channels whichever way the plan moves. The report's
/// objective value is Φ of the gain. A target outcome is an outcome, not a gain: with
/// [`PlanGoal::TargetOutcome`] the reference is not used.
pub fn optimize_plan_against(
    basis: &PlanningBasis,
    curves: &SaturatingCurves,
    risk: Risk,
    bounds: &Bounds,
    goal: PlanGoal,
    reference: Option<&[f64]>,
) -> Result<OptimizationReport, PlanError> {
    let settings = SolverSettings::default();
    if let Some(r) = reference
        && (r.len() != curves.n_channels() || r.iter().any(|x| !(x.is_finite() && *x >= 0.0)))
    {
        return Err(PlanError::Option(format!(
            "the reference allocation has {} amounts for {} channels, or one that is not a finite non-negative \
             amount: give one per channel ({})",
            r.len(),
            curves.n_channels(),
            basis.channels.join(", ")
        )));
    }
    let relative = reference.map(|r| GainOver::new(curves, r));
    // what the risk measure scores: the gain over the reference, or the outcome
    let scored: &dyn ResponseCurves = match &relative {
        Some(g) => g,
        None => curves,
    };
    let a: Allocation = match goal {
        PlanGoal::Budget(b) => optimize(scored, None, risk, bounds, Goal::Budget(b), None, settings)?,
        PlanGoal::TargetOutcome(t) => min_budget_for_target(curves, None, risk, bounds, t, settings)?,
        PlanGoal::TargetMarginalReturn(r) => {
            optimize(scored, None, risk, bounds, Goal::MarginalReturn(r), None, settings)?
        }
    };
    let cur = outcome_draws(curves, &basis.current);
    let opt = outcome_draws(curves, &a.spend);
    let gain: Vec<f64> = opt.iter().zip(&cur).map(|(o, c)| o - c).collect();
    let nd = curves.n_draws();
    let mut v = vec![0.0; nd];
    let channels = (0..basis.channels.len())
        .map(|c| {
            curves.value(c, a.spend[c], &mut v);
            ChannelPlan {
                channel: basis.channels[c].clone(),
                current_spend: basis.current[c],
                optimal_spend: a.spend[c],
                lower: bounds.lower[c],
                upper: bounds.upper[c],
                outcome: Stat::of(&v),
                marginal_return: a.marginal[c],
            }
        })
        .collect();
    let report = OptimizationReport {
        horizon: basis.horizon,
        outcome_unit: match basis.unit {
            OutcomeUnit::Kpi => "kpi",
            OutcomeUnit::Revenue => "revenue",
        },
        objective: risk.to_string(),
        budget: a.spend.iter().sum(),
        channels,
        current_outcome: Stat::of(&cur),
        optimal_outcome: Stat::of(&opt),
        prob_gain_positive: gain.iter().filter(|g| **g > 0.0).count() as f64 / nd as f64,
        gain: Stat::of(&gain),
        objective_value: a.objective,
        kkt_residual: a.kkt_residual,
        lambda: a.lambda,
        iterations: a.iterations,
        draws: cur.iter().copied().zip(opt.iter().copied()).collect(),
    };
    all_finite(
        "optimisation",
        report.channels.iter().map(|c| (format!("{} outcome", c.channel), &c.outcome)).chain([
            ("current outcome".to_string(), &report.current_outcome),
            ("optimal outcome".to_string(), &report.optimal_outcome),
            ("gain".to_string(), &report.gain),
        ]),
    )?;
    let scalars = report.channels.iter().flat_map(|c| {
        [
            (format!("{} optimal spend", c.channel), c.optimal_spend),
            (format!("{} marginal return", c.channel), c.marginal_return),
        ]
    });
    for (name, v) in scalars.chain([("budget".to_string(), report.budget)]) {
        if !v.is_finite() {
            return Err(PlanError::NonFinite(format!(
                "the optimisation's {name} is {v}, not a finite number. Check the budget, target or bounds for a typo"
            )));
        }
    }
    Ok(report)
}

/// A spend plan: per period, per channel, national money.
#[derive(Debug, Clone, PartialEq)]
pub struct SpendPlan {
    pub periods: Vec<String>,
    pub channels: Vec<String>,
    /// [period][channel]
    pub spend: Vec<Vec<f64>>,
}

impl SpendPlan {
    /// Reads a plan CSV/Parquet: a `period` column (any labels, each once) and one column per
    /// channel; a channel missing from the file spends nothing, but a plan must name at least one
    /// channel; a column that is not a channel is an error. Spend must be a finite number from 0 to
    /// 2^53 ([`crate::data::MAX_MAGNITUDE`]).
    pub fn read(path: &Path, channels: &[String]) -> Result<Self, PlanError> {
        let perr = |m: String| PlanError::Plan { path: path.to_path_buf(), message: m };
        // the table's errors name the file themselves
        let t = Table::read(path).map_err(PlanError::Table)?;
        let periods = if t.has_column("period") {
            let p = t.str_column("period").map_err(PlanError::Table)?;
            let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
            for (row, label) in p.iter().enumerate() {
                if let Some(first) = seen.insert(label.as_str(), row) {
                    return Err(perr(format!(
                        "period {label:?} appears twice (rows {} and {}). Give each period one row, with one \
                         column per channel",
                        first + 1,
                        row + 1
                    )));
                }
            }
            p
        } else {
            (1..=t.n_rows()).map(|i| i.to_string()).collect()
        };
        if !channels.iter().any(|c| t.has_column(c)) {
            return Err(perr(format!(
                "no column names a channel of the model, so the plan spends nothing; the columns are: {}. Add \
                 one spend column per channel, named as the model's channels: {}",
                t.columns().join(", "),
                channels.join(", ")
            )));
        }
        for col in t.columns() {
            if col != "period" && !channels.contains(&col) {
                let hint =
                    mmloop_data::closest(&col, channels).map(|c| format!(" (did you mean {c:?}?)")).unwrap_or_default();
                return Err(perr(format!(
                    "column {col:?} is not a channel of the model{hint}; the channels are: {}",
                    channels.join(", ")
                )));
            }
        }
        let mut spend = vec![vec![0.0; channels.len()]; t.n_rows()];
        for (c, name) in channels.iter().enumerate() {
            if !t.has_column(name) {
                continue;
            }
            let v = t.f64_column(name).map_err(PlanError::Table)?;
            for (row, x) in v.iter().enumerate() {
                if *x < 0.0 {
                    return Err(perr(format!("column {name:?}, row {}: spend {x} is negative", row + 1)));
                }
                if *x > crate::data::MAX_MAGNITUDE {
                    return Err(perr(format!(
                        "column {name:?}, row {}: spend {x:e} is beyond 2^53 ≈ 9.0e15, more than any budget; \
                         check the cell for a typo",
                        row + 1
                    )));
                }
                spend[row][c] = *x;
            }
        }
        Ok(Self { periods, channels: channels.to_vec(), spend })
    }
}

/// The posterior of a plan's incremental outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScenarioReport {
    pub periods: usize,
    pub outcome_unit: &'static str,
    pub channels: Vec<ScenarioChannel>,
    pub total_spend: f64,
    pub total_outcome: Stat,
    pub roi: Stat,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ScenarioChannel {
    pub channel: String,
    pub spend: f64,
    pub outcome: Stat,
    pub roi: Stat,
}

/// Fails naming the first figure that is not a finite number: a report is never written with a
/// NaN or an infinity (JSON would show `null`). `figures` are (name, value) pairs.
fn all_finite<'a>(what: &str, figures: impl IntoIterator<Item = (String, &'a Stat)>) -> Result<(), PlanError> {
    for (name, s) in figures {
        for (part, v) in [("mean", s.mean), ("sd", s.sd), ("q05", s.q05), ("q95", s.q95)] {
            if !v.is_finite() {
                return Err(PlanError::NonFinite(format!(
                    "the {what}'s {name} ({part}) is {v}, not a finite number: the inputs are too large for the \
                     model's arithmetic. Check the budget, bounds or plan for a typo"
                )));
            }
        }
    }
    Ok(())
}

/// Evaluates a plan through every draw's adstock and saturation, counting carry-over for the
/// adstock's max lag after the plan ends. Fails rather than report a figure that is not finite.
pub fn evaluate_plan(fit: &FittedModel, basis: &PlanningBasis, plan: &SpendPlan) -> Result<ScenarioReport, PlanError> {
    let m = &fit.model;
    let n_p = plan.periods.len();
    let c_n = m.channels.len();
    let per_draw: Vec<Vec<f64>> = fit
        .draws
        .iter()
        .map(|p| {
            (0..c_n)
                .map(|c| {
                    let tail = m.channels[c].kernel.len();
                    let mut x = vec![0.0; n_p + tail];
                    let mut f = vec![0.0; n_p + tail];
                    let mut total = 0.0;
                    for (g, route) in basis.routes[c].iter().enumerate() {
                        for (t, row) in plan.spend.iter().enumerate() {
                            x[t] = row[c] * route.media_per_money;
                        }
                        m.channel_feature(c, &p.theta[c], &p.phi[c], &x, &mut f);
                        total += route.value_scale * p.beta_geo[c][g] * f.iter().sum::<f64>();
                    }
                    total
                })
                .collect()
        })
        .collect();
    let spend: Vec<f64> = (0..c_n).map(|c| plan.spend.iter().map(|r| r[c]).sum()).collect();
    let total_spend: f64 = spend.iter().sum();
    let channels = (0..c_n)
        .map(|c| {
            let o: Vec<f64> = per_draw.iter().map(|d| d[c]).collect();
            let roi: Vec<f64> = o.iter().map(|x| if spend[c] > 0.0 { x / spend[c] } else { 0.0 }).collect();
            ScenarioChannel {
                channel: m.channels[c].name.clone(),
                spend: spend[c],
                outcome: Stat::of(&o),
                roi: Stat::of(&roi),
            }
        })
        .collect();
    let tot: Vec<f64> = per_draw.iter().map(|d| d.iter().sum()).collect();
    let roi: Vec<f64> = tot.iter().map(|x| if total_spend > 0.0 { x / total_spend } else { 0.0 }).collect();
    let report = ScenarioReport {
        periods: n_p,
        outcome_unit: match basis.unit {
            OutcomeUnit::Kpi => "kpi",
            OutcomeUnit::Revenue => "revenue",
        },
        channels,
        total_spend,
        total_outcome: Stat::of(&tot),
        roi: Stat::of(&roi),
    };
    all_finite(
        "scenario",
        report
            .channels
            .iter()
            .flat_map(|c| [(format!("{} outcome", c.channel), &c.outcome), (format!("{} ROI", c.channel), &c.roi)])
            .chain([("total outcome".to_string(), &report.total_outcome), ("ROI".to_string(), &report.roi)]),
    )?;
    Ok(report)
}
