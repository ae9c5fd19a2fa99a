//! The no-U-turn sampler: nuts-rs 0.19 chains run in parallel with rayon.
//!
//! [`sample_nuts`] takes the model by shared reference (`&D`, `D: LogDensity + ?Sized`, so
//! `&dyn LogDensity` works too): [`LogDensity`] is `Send + Sync`, and every chain evaluates the same
//! model object from its own rayon task, so the model needs no `Clone` and must not rely on
//! interior mutability that is not thread-safe.
//!
//! Reproducibility: chain `c` draws all its randomness from ChaCha8 seeded with
//! [`NutsSettings::seed`] on stream `c + 1` (the scheme nuts-rs's own driver uses). Chains share no
//! state, so the draws are bit-identical whatever the number of threads or the scheduling.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use nuts_rs::{
    Chain, CpuLogpFunc, CpuMath, CpuMathError, DiagNutsSettings, EuclideanAdaptOptions, HasDims, LogpError,
    LowRankNutsSettings, NutsSettings as RsNutsSettings, SamplerStats, Settings,
};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::posterior::{ChainWarmup, DrawStats, Method, Posterior};
use crate::{InferenceError, LogDensity, LogDensityError};

/// The metric (mass matrix) NUTS adapts during warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MassMatrix {
    /// Diagonal, adapted from draw and gradient variances (nuts-rs default). Right for most models
    /// once the parameters are on comparable scales.
    Diag,
    /// Diagonal plus a low-rank correction from the leading eigenvectors of the draw/gradient
    /// covariance: for strongly correlated posteriors. `gamma` regularises the estimate; eigenvalues
    /// within `[1/eigval_cutoff, eigval_cutoff]` of 1 are dropped (nuts-rs defaults: 1e-5, 2).
    ///
    /// nuts-rs 0.19 has no dense metric; with a cutoff close to 1 the low-rank metric keeps every
    /// informative direction, which is a dense metric in effect.
    LowRank { gamma: f64, eigval_cutoff: f64 },
    /// Dense metric (Stan's `dense_e`), learned in a two-stage warm-up, because nuts-rs 0.19 has
    /// none: a dense metric M⁻¹ = Σ is the same dynamics as a diagonal one in the whitened
    /// coordinates z = L⁻¹(x − μ), Σ = LLᵀ (Neal 2011, §4.1), so the second stage samples z.
    ///
    /// 1. Stage 1, the first 60 % of `tune`: diagonal NUTS, of which the last third (20 % of
    ///    `tune`) is kept to estimate μ and Σ, pooled over all chains (a synchronisation point;
    ///    the result is still independent of the thread count).
    /// 2. Σ is shrunk towards its diagonal, Σ̂ = (1 − γ)S + γ·diag(S) with γ = d/(n + d) for n pooled
    ///    draws in d dimensions, so it is positive definite and well conditioned even when n is not
    ///    much larger than d.
    /// 3. Stage 2, the remaining 40 % of `tune` and then the kept draws: NUTS on z with its own
    ///    diagonal adaptation on top (≈ identity when Σ̂ is right), each chain starting from its
    ///    last stage-1 point. Draws are mapped back to x.
    ///
    /// Sampler statistics (step size, metric) of stage 2 refer to z. Needs `tune` ≥ 50.
    Dense,
}

impl Init {
    /// Fill `x` with a candidate starting point: uniform draws, or `center` plus jitter of the given
    /// radius (at least 1e-6 · (1 + |center|)); `exact` returns `center` itself.
    pub(crate) fn candidate(&self, rng: &mut ChaCha8Rng, exact: bool, x: &mut [f64]) {
        match self {
            Init::Uniform { radius } => {
                for v in x.iter_mut() {
                    *v = if *radius > 0.0 { rng.random_range(-radius..*radius) } else { 0.0 };
                }
            }
            Init::Around { center, radius } => {
                for (v, c) in x.iter_mut().zip(center) {
                    let r = if exact { 0.0 } else { radius.max(1e-6 * (1.0 + c.abs())) };
                    *v = c + if r > 0.0 { rng.random_range(-r..r) } else { 0.0 };
                }
            }
        }
    }
}

/// Whether `x` can start a chain or an optimiser: `Ok(None)` if the log density and its gradient
/// are finite there, `Ok(Some(reason))` if not (try another point), and the error if the density
/// failed fatally (`chain` labels it).
pub(crate) fn check_start<D: LogDensity + ?Sized>(
    density: &D,
    x: &[f64],
    grad: &mut [f64],
    chain: usize,
) -> Result<Option<String>, InferenceError> {
    match density.logp_grad(x, grad) {
        Ok(lp) if lp.is_finite() && grad.iter().all(|g| g.is_finite()) => Ok(None),
        Ok(lp) => Ok(Some(format!("log density {lp} or its gradient is not finite"))),
        Err(LogDensityError::Fatal(message)) => Err(InferenceError::FatalDensity { chain, iteration: 0, message }),
        Err(e) => Ok(Some(e.to_string())),
    }
}

impl MassMatrix {
    /// The low-rank metric with nuts-rs's default regularisation.
    pub fn low_rank() -> MassMatrix {
        MassMatrix::LowRank { gamma: 1e-5, eigval_cutoff: 2.0 }
    }
}

/// Where chains start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// Uniform on `(-radius, radius)` in every unconstrained coordinate (Stan's default, radius 2).
    Uniform { radius: f64 },
    /// `center` plus uniform jitter on `(-radius, radius)`, e.g. around a Laplace mode. With radius 0
    /// the first attempt is exactly `center`; nuts-rs cannot start where a gradient component is
    /// exactly zero (it scales the initial mass matrix by the gradient), which happens exactly at a
    /// mode, so further attempts jitter each coordinate by up to 1e-6 · (1 + |center|).
    Around { center: Vec<f64>, radius: f64 },
}

/// Settings of a NUTS run. The defaults are Stan's: 4 chains × (1000 warm-up + 1000 draws), target
/// acceptance 0.8, maximum tree depth 10, diagonal metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NutsSettings {
    pub chains: usize,
    /// Warm-up (tuning) iterations per chain, discarded.
    pub tune: u64,
    /// Kept draws per chain.
    pub draws: u64,
    /// Target mean acceptance probability for step-size adaptation; raise towards 0.95–0.99 to
    /// remove divergences caused by a too-large step.
    pub target_accept: f64,
    /// Trajectories stop after at most 2^max_tree_depth leapfrog steps.
    pub max_tree_depth: u64,
    /// Trajectories run at least 2^min_tree_depth leapfrog steps even when they U-turn earlier
    /// (nuts-rs `mindepth`; 0 = plain NUTS). Each trajectory still ends at a tree boundary, so the
    /// chain keeps the target distribution; longer trajectories cost more gradients per draw and
    /// give more effective draws per draw on curved posteriors where the U-turn test stops early.
    pub min_tree_depth: u64,
    pub mass_matrix: MassMatrix,
    /// Master seed; chain `c` uses stream `c + 1` of it.
    pub seed: u64,
    pub init: Init,
    /// Attempts per chain to find a starting point with finite log density and gradient.
    pub init_attempts: usize,
    /// Energy error above which a transition counts as divergent (Stan: 1000).
    pub max_energy_error: f64,
    /// Never draw a progress bar (one is drawn on stderr only when it is a terminal).
    pub quiet: bool,
}

impl Default for NutsSettings {
    fn default() -> Self {
        NutsSettings {
            chains: 4,
            tune: 1000,
            draws: 1000,
            target_accept: 0.8,
            max_tree_depth: 10,
            min_tree_depth: 0,
            mass_matrix: MassMatrix::Diag,
            seed: 0,
            init: Init::Uniform { radius: 2.0 },
            init_attempts: 100,
            max_energy_error: 1000.0,
            quiet: false,
        }
    }
}

impl NutsSettings {
    fn validate(&self, dim: usize) -> Result<(), InferenceError> {
        let bad = |m: String| Err(InferenceError::InvalidSettings(m));
        if self.chains == 0 {
            return bad("chains must be at least 1".into());
        }
        if self.draws == 0 {
            return bad("draws must be at least 1".into());
        }
        if !(self.target_accept > 0.0 && self.target_accept < 1.0) {
            return bad(format!("target_accept must be in (0, 1), got {}", self.target_accept));
        }
        if self.max_tree_depth == 0 || self.max_tree_depth > 30 {
            return bad(format!("max_tree_depth must be in 1..=30, got {}", self.max_tree_depth));
        }
        if self.min_tree_depth > self.max_tree_depth {
            return bad(format!(
                "min_tree_depth ({}) must not exceed max_tree_depth ({})",
                self.min_tree_depth, self.max_tree_depth
            ));
        }
        if self.mass_matrix == MassMatrix::Dense && self.tune < DENSE_MIN_TUNE {
            return bad(format!(
                "the dense metric learns the posterior covariance during warm-up and needs tune >= {DENSE_MIN_TUNE}, got {}",
                self.tune
            ));
        }
        if self.init_attempts == 0 {
            return bad("init_attempts must be at least 1".into());
        }
        if self.max_energy_error.is_nan() || self.max_energy_error <= 0.0 {
            return bad(format!("max_energy_error must be positive, got {}", self.max_energy_error));
        }
        match &self.init {
            Init::Uniform { radius } if !(radius.is_finite() && *radius >= 0.0) => {
                return bad(format!("init radius must be finite and non-negative, got {radius}"));
            }
            Init::Around { center, radius } => {
                if center.len() != dim {
                    return Err(InferenceError::InvalidModel(format!(
                        "init center has {} coordinates, the model has {dim}",
                        center.len()
                    )));
                }
                if !(radius.is_finite() && *radius >= 0.0) {
                    return bad(format!("init radius must be finite and non-negative, got {radius}"));
                }
            }
            _ => {}
        }
        if let MassMatrix::LowRank { gamma, eigval_cutoff } = self.mass_matrix
            && !(gamma > 0.0 && eigval_cutoff >= 1.0)
        {
            return bad(format!(
                "low-rank metric needs gamma > 0 and eigval_cutoff >= 1, got {gamma}, {eigval_cutoff}"
            ));
        }
        Ok(())
    }

    /// Copy our settings into a nuts-rs settings value of either metric.
    fn apply<A: std::fmt::Debug + Default + Copy + Serialize>(
        &self,
        mut rs: RsNutsSettings<EuclideanAdaptOptions<A>>,
    ) -> RsNutsSettings<EuclideanAdaptOptions<A>> {
        rs.num_tune = self.tune;
        rs.num_draws = self.draws;
        rs.num_chains = self.chains;
        rs.maxdepth = self.max_tree_depth;
        rs.seed = self.seed;
        rs.max_energy_error = self.max_energy_error;
        rs.adapt_options.step_size_settings.target_accept = self.target_accept;
        rs.mindepth = self.min_tree_depth;
        rs
    }
}

/// The error type nuts-rs sees: a [`LogDensityError`] whose recoverability it respects (a
/// recoverable failure ends the trajectory as a divergence; a fatal one stops the chain).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct DensityFailure(LogDensityError);

impl LogpError for DensityFailure {
    fn is_recoverable(&self) -> bool {
        self.0.is_recoverable()
    }
}

/// A [`LogDensity`] seen through nuts-rs's `CpuLogpFunc`. Non-finite values become recoverable
/// errors; the message of a fatal error is kept so the run can report it verbatim.
struct Adapter<'a, D: ?Sized> {
    density: &'a D,
    dim: usize,
    fatal: &'a RefCell<Option<String>>,
}

impl<D: LogDensity + ?Sized> HasDims for Adapter<'_, D> {
    fn dim_sizes(&self) -> HashMap<String, u64> {
        HashMap::from([("unconstrained_parameter".to_string(), self.dim as u64), ("dim".to_string(), self.dim as u64)])
    }
}

impl<D: LogDensity + ?Sized> CpuLogpFunc for Adapter<'_, D> {
    type LogpError = DensityFailure;
    type FlowParameters = ();
    type ExpandedVector = Vec<f64>;

    fn dim(&self) -> usize {
        self.dim
    }

    fn logp(&mut self, position: &[f64], gradient: &mut [f64]) -> Result<f64, DensityFailure> {
        match self.density.logp_grad(position, gradient) {
            Ok(lp) if lp.is_finite() && gradient.iter().all(|g| g.is_finite()) => Ok(lp),
            Ok(lp) => Err(DensityFailure(LogDensityError::Recoverable(format!(
                "log density {lp} or its gradient is not finite"
            )))),
            Err(e) => {
                if let LogDensityError::Fatal(message) = &e {
                    *self.fatal.borrow_mut() = Some(message.clone());
                }
                Err(DensityFailure(e))
            }
        }
    }

    fn expand_vector<R: rand::Rng + ?Sized>(&mut self, _rng: &mut R, array: &[f64]) -> Result<Vec<f64>, CpuMathError> {
        Ok(array.to_vec())
    }
}

/// What the chain loop needs from nuts-rs's per-draw statistics (whose types nuts-rs does not
/// export by name; the fields are read in the closures below, where the types are concrete).
struct RawStats {
    divergent: bool,
    tree_depth: u64,
    max_depth_reached: bool,
    step_size_after: f64,
    n_steps: u64,
    energy: f64,
    logp: f64,
    accept_stat: f64,
    inv_mass_diag: Option<Vec<f64>>,
}

/// nuts-rs's error text without the backtrace its nested errors carry in their Debug output.
fn clean_message(e: &impl std::fmt::Display) -> String {
    let text = format!("{e:#}");
    text.split("\n\nStack backtrace").next().unwrap_or_default().trim().to_string()
}

type StatsOf<S, M> = <<S as Settings>::Chain<M> as SamplerStats<M>>::Stats;

struct ChainOutput {
    draws: Vec<Vec<f64>>,
    stats: Vec<DrawStats>,
    warmup: ChainWarmup,
}

/// One chain from start to finish.
#[allow(clippy::too_many_arguments)]
fn run_chain<'a, D, S, F>(
    rs_settings: S,
    chain: usize,
    stream: u64,
    init_rule: &Init,
    density: &'a D,
    settings: &NutsSettings,
    progress: Option<&ProgressBar>,
    fatal: &'a RefCell<Option<String>>,
    extract: F,
) -> Result<ChainOutput, InferenceError>
where
    D: LogDensity + ?Sized,
    S: Settings,
    F: Fn(StatsOf<S, CpuMath<Adapter<'a, D>>>) -> RawStats,
{
    let dim = density.dim();
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    rng.set_stream(stream);
    let math = CpuMath::new(Adapter { density, dim, fatal });
    let mut sampler = rs_settings
        .new_chain(chain as u64, math, &mut rng)
        .map_err(|e| InferenceError::Sampler { chain, message: clean_message(&e) })?;

    // Starting point: evaluate the density ourselves so a fatal error is reported as such and a
    // recoverable one (or a non-finite value) just means "try another point".
    let mut init = vec![0.0; dim];
    let mut grad = vec![0.0; dim];
    let mut last = String::from("no attempt made");
    let mut found = false;
    for attempt in 0..settings.init_attempts {
        // With radius 0 the first candidate is the centre itself; nuts-rs rejects a start where a
        // gradient component is exactly zero, so later candidates are jittered slightly.
        let exact = matches!(init_rule, Init::Around { radius, .. } if *radius == 0.0) && attempt == 0;
        init_rule.candidate(&mut rng, exact, &mut init);
        if let Some(reason) = check_start(density, &init, &mut grad, chain)? {
            last = reason;
            continue;
        }
        match sampler.set_position(&init) {
            Ok(()) => {
                found = true;
                break;
            }
            Err(e) => last = clean_message(&e),
        }
    }
    if !found {
        return Err(InferenceError::Initialization { chain, attempts: settings.init_attempts, last });
    }

    let total = settings.tune + settings.draws;
    let mut draws = Vec::with_capacity(settings.draws as usize);
    let mut stats = Vec::with_capacity(settings.draws as usize);
    let mut warmup_divergences = 0;
    let mut inv_mass_diag = None;
    // nuts-rs reports the step size after the adaptation that follows a draw, i.e. the one the next
    // draw uses; `step_size` carries it over so each draw is labelled with its own.
    let mut step_size = f64::NAN;
    let start = Instant::now();
    let mut warmup_seconds = 0.0;
    let mut warmup_step_size = f64::NAN;
    for iteration in 0..total {
        if iteration == settings.tune {
            warmup_seconds = start.elapsed().as_secs_f64();
            warmup_step_size = step_size;
        }
        let (position, _expanded, raw, _progress) =
            sampler.expanded_draw().map_err(|e| match fatal.borrow_mut().take() {
                Some(message) => InferenceError::FatalDensity { chain, iteration, message },
                None => InferenceError::Sampler { chain, message: clean_message(&e) },
            })?;
        let raw = extract(raw);
        if raw.inv_mass_diag.is_some() {
            inv_mass_diag = raw.inv_mass_diag;
        }
        let used_step = if step_size.is_nan() { raw.step_size_after } else { step_size };
        step_size = raw.step_size_after;
        if iteration < settings.tune {
            warmup_divergences += usize::from(raw.divergent);
        } else {
            draws.push(position.into_vec());
            stats.push(DrawStats {
                divergent: raw.divergent,
                tree_depth: raw.tree_depth,
                max_depth_reached: raw.max_depth_reached,
                step_size: used_step,
                n_steps: raw.n_steps,
                energy: raw.energy,
                logp: raw.logp,
                accept_stat: raw.accept_stat,
            });
        }
        if let Some(bar) = progress {
            bar.inc(1);
            if raw.divergent && iteration >= settings.tune {
                bar.set_message("divergences!");
            }
        }
    }
    if settings.tune == 0 {
        warmup_step_size = stats.first().map_or(f64::NAN, |s| s.step_size);
    }
    let sampling_seconds = start.elapsed().as_secs_f64() - warmup_seconds;
    Ok(ChainOutput {
        draws,
        stats,
        warmup: ChainWarmup {
            chain,
            tune: settings.tune,
            step_size: warmup_step_size,
            divergences: warmup_divergences,
            init,
            inv_mass_diag,
            warmup_seconds,
            sampling_seconds,
        },
    })
}

/// Read the per-draw statistics out of a nuts-rs stats value (same field layout for both metrics;
/// only the mass-matrix part differs).
macro_rules! raw_stats {
    ($s:ident, $inv_mass:expr) => {
        RawStats {
            divergent: $s.divergence.diverging,
            tree_depth: $s.depth,
            max_depth_reached: $s.maxdepth_reached,
            step_size_after: $s.hamiltonian.step_size,
            n_steps: $s.adapt.step_size.n_steps,
            energy: $s.point.energy,
            logp: $s.point.logp,
            accept_stat: $s.adapt.step_size.mean_tree_accept,
            inv_mass_diag: $inv_mass,
        }
    };
}

/// Iterations of warm-up the dense metric needs at least (see [`MassMatrix::Dense`]).
pub const DENSE_MIN_TUNE: u64 = 50;

/// Chain `c` of the second dense-metric stage draws from stream `DENSE_STAGE2_STREAM + c + 1`, so
/// it never repeats the random numbers of stage 1 (streams `c + 1`).
const DENSE_STAGE2_STREAM: u64 = 1 << 32;

/// Every chain of one run, in parallel: chain `c` starts by `inits[c]` and draws from stream
/// `stream_base + c + 1`; `metric` is diagonal or low-rank (nuts-rs's own adaptation).
fn run_chains<D: LogDensity + ?Sized>(
    density: &D,
    settings: &NutsSettings,
    metric: MassMatrix,
    inits: &[Init],
    stream_base: u64,
    progress: Option<&ProgressBar>,
) -> Result<Vec<ChainOutput>, InferenceError> {
    (0..settings.chains)
        .into_par_iter()
        .map(|chain| {
            // Where the adapter leaves the message of a fatal density error for the report.
            let fatal = RefCell::new(None);
            let stream = stream_base + chain as u64 + 1;
            let init = &inits[chain];
            match metric {
                MassMatrix::Diag | MassMatrix::Dense => {
                    let mut rs = settings.apply(DiagNutsSettings::default());
                    rs.adapt_options.mass_matrix_options.store_mass_matrix = true;
                    run_chain(rs, chain, stream, init, density, settings, progress, &fatal, |s| {
                        raw_stats!(s, s.hamiltonian.transformation.mass_matrix_inv)
                    })
                }
                MassMatrix::LowRank { gamma, eigval_cutoff } => {
                    let mut rs = settings.apply(LowRankNutsSettings::default());
                    rs.adapt_options.mass_matrix_options.gamma = gamma;
                    rs.adapt_options.mass_matrix_options.eigval_cutoff = eigval_cutoff;
                    run_chain(rs, chain, stream, init, density, settings, progress, &fatal, |s| raw_stats!(s, None))
                }
            }
        })
        .collect()
}

/// [`MassMatrix::Dense`]: diagonal warm-up, covariance of its last draws pooled over chains,
/// then NUTS in the whitened coordinates; the draws come back in the model's coordinates.
fn dense_two_stage<D: LogDensity + ?Sized>(
    density: &D,
    settings: &NutsSettings,
    progress: Option<&ProgressBar>,
) -> Result<Vec<ChainOutput>, InferenceError> {
    let tune1 = settings.tune * 2 / 5;
    let kept1 = settings.tune / 5;
    let tune2 = settings.tune - tune1 - kept1;
    let stage1_settings = NutsSettings { tune: tune1, draws: kept1, mass_matrix: MassMatrix::Diag, ..settings.clone() };
    let inits = vec![settings.init.clone(); settings.chains];
    let stage1 = run_chains(density, &stage1_settings, MassMatrix::Diag, &inits, 0, progress)?;

    let pooled: Vec<Vec<f64>> = stage1.iter().flat_map(|c| c.draws.iter().cloned()).collect();
    let (mean, l) = crate::dense::covariance_factor(&pooled, &density.param_names())?;
    let whitened = crate::dense::Whitened::new(density, mean, l);
    let inits: Vec<Init> = stage1
        .iter()
        .map(|c| Init::Around { center: whitened.to_z(c.draws.last().expect("kept1 >= 10 draws")), radius: 0.0 })
        .collect();
    let stage2_settings = NutsSettings { tune: tune2, mass_matrix: MassMatrix::Diag, ..settings.clone() };
    let stage2 = run_chains(&whitened, &stage2_settings, MassMatrix::Diag, &inits, DENSE_STAGE2_STREAM, progress)?;

    Ok(stage1
        .into_iter()
        .zip(stage2)
        .map(|(one, two)| {
            let stage1_divergences = one.stats.iter().filter(|s| s.divergent).count();
            ChainOutput {
                draws: two.draws.iter().map(|z| whitened.to_x(z)).collect(),
                stats: two.stats,
                warmup: ChainWarmup {
                    chain: one.warmup.chain,
                    tune: settings.tune,
                    step_size: two.warmup.step_size,
                    divergences: one.warmup.divergences + stage1_divergences + two.warmup.divergences,
                    init: one.warmup.init,
                    inv_mass_diag: two.warmup.inv_mass_diag.map(|d| whitened.metric_diag_in_x(&d)),
                    warmup_seconds: one.warmup.warmup_seconds + one.warmup.sampling_seconds + two.warmup.warmup_seconds,
                    sampling_seconds: two.warmup.sampling_seconds,
                },
            }
        })
        .collect())
}

/// Run NUTS on `density` and return the kept draws of every chain with sampler statistics.
///
/// Chains run in parallel on the current rayon pool (use `ThreadPool::install` to choose one); the
/// output does not depend on it. A progress bar is drawn on stderr when it is a terminal and
/// `settings.quiet` is false.
///
/// Errors: invalid settings; no valid starting point; the density returning
/// [`LogDensityError::Fatal`] (the message is passed on, with the chain and iteration). A
/// [`LogDensityError::Recoverable`] error or a non-finite log density or gradient is a divergence.
pub fn sample_nuts<D: LogDensity + ?Sized>(density: &D, settings: &NutsSettings) -> Result<Posterior, InferenceError> {
    let dim = density.dim();
    if dim == 0 {
        return Err(InferenceError::InvalidModel("the model has no parameters".into()));
    }
    settings.validate(dim)?;
    let param_names = density.param_names();
    if param_names.len() != dim {
        return Err(InferenceError::InvalidModel(format!(
            "param_names() gives {} names for {dim} parameters",
            param_names.len()
        )));
    }

    let progress = (!settings.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(settings.chains as u64 * (settings.tune + settings.draws));
        bar.set_style(
            ProgressStyle::with_template("NUTS {bar:40} {pos}/{len} iterations ({per_sec}, eta {eta}) {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });

    let outputs = match settings.mass_matrix {
        MassMatrix::Dense => dense_two_stage(density, settings, progress.as_ref()),
        metric => {
            let inits = vec![settings.init.clone(); settings.chains];
            run_chains(density, settings, metric, &inits, 0, progress.as_ref())
        }
    };
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let outputs = outputs?;

    let mut draws = Vec::with_capacity(outputs.len());
    let mut sample_stats = Vec::with_capacity(outputs.len());
    let mut warmup = Vec::with_capacity(outputs.len());
    for out in outputs {
        draws.push(out.draws);
        sample_stats.push(out.stats);
        warmup.push(out.warmup);
    }
    Ok(Posterior { method: Method::Nuts, param_names, draws, sample_stats, warmup, laplace: None })
}
