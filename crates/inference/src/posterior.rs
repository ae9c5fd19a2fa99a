//! The method-agnostic output of every inference method: draws in the unconstrained space.

use serde::{Deserialize, Serialize};

/// How a [`Posterior`] was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// No-U-turn sampler (nuts-rs): several Markov chains.
    Nuts,
    /// Gaussian (Laplace) approximation at the mode: one "chain" of independent draws.
    Laplace,
}

/// Sampler statistics of one NUTS draw.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DrawStats {
    /// The trajectory hit a divergence (energy error above the threshold, or a point where the
    /// density returned [`crate::LogDensityError::Recoverable`] or a non-finite value).
    pub divergent: bool,
    /// Depth of the trajectory tree (number of doublings).
    pub tree_depth: u64,
    /// The trajectory stopped at the maximum tree depth rather than at a U-turn.
    pub max_depth_reached: bool,
    /// Leapfrog step size used for this draw.
    pub step_size: f64,
    /// Number of leapfrog steps (gradient evaluations) of this draw's trajectory.
    pub n_steps: u64,
    /// Hamiltonian (potential + kinetic energy) at the draw, for E-BFMI.
    pub energy: f64,
    /// Log density at the draw.
    pub logp: f64,
    /// Mean Metropolis acceptance probability over the trajectory (Stan's `accept_stat__`).
    pub accept_stat: f64,
}

/// What happened during one chain's warm-up (tuning) phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainWarmup {
    pub chain: usize,
    /// Number of warm-up iterations (discarded).
    pub tune: u64,
    /// Step size adapted by the end of warm-up.
    pub step_size: f64,
    /// Divergent transitions during warm-up (expected early on; not counted as sampling problems).
    pub divergences: usize,
    /// The point the chain started from.
    pub init: Vec<f64>,
    /// Inverse of the adapted diagonal mass matrix (≈ posterior variances), when the diagonal
    /// metric was used.
    pub inv_mass_diag: Option<Vec<f64>>,
    /// Wall-clock seconds spent in warm-up and in sampling.
    pub warmup_seconds: f64,
    pub sampling_seconds: f64,
}

/// Extra output of a Laplace approximation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaplaceInfo {
    /// The mode (MAP in the unconstrained space).
    pub mode: Vec<f64>,
    /// Log density at the mode.
    pub logp_at_mode: f64,
    /// Covariance of the Gaussian approximation, row-major `dim × dim` (inverse negative Hessian).
    pub covariance: Vec<Vec<f64>>,
    /// One entry per optimiser start.
    pub starts: Vec<LaplaceStart>,
    /// Starts that converged to a different mode than the best one (plain-language notes).
    pub warnings: Vec<String>,
}

/// The outcome of one optimiser start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaplaceStart {
    pub start: Vec<f64>,
    /// Where it ended (None if the optimiser failed).
    pub end: Option<Vec<f64>>,
    pub logp: Option<f64>,
    pub iterations: u64,
    /// Why the optimiser stopped, or the error.
    pub status: String,
}

/// Posterior draws in the **unconstrained** space with their provenance.
///
/// `draws[chain][draw][param]`. NUTS gives one entry of `draws` per chain; a Laplace approximation
/// gives a single "chain" of independent draws, so code that summarises or transforms draws does not
/// need to know which method produced them. Per-parameter views for the diagnostics come from
/// [`Posterior::param_chains`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Posterior {
    pub method: Method,
    pub param_names: Vec<String>,
    pub draws: Vec<Vec<Vec<f64>>>,
    /// Per-draw sampler statistics, `[chain][draw]` (empty for Laplace).
    pub sample_stats: Vec<Vec<DrawStats>>,
    /// Per-chain warm-up information (empty for Laplace).
    pub warmup: Vec<ChainWarmup>,
    /// The mode and covariance (Laplace only).
    pub laplace: Option<LaplaceInfo>,
}

impl Posterior {
    pub fn n_chains(&self) -> usize {
        self.draws.len()
    }

    /// Draws per chain (0 if there are no chains).
    pub fn n_draws(&self) -> usize {
        self.draws.first().map_or(0, Vec::len)
    }

    /// Number of unconstrained parameters.
    pub fn dim(&self) -> usize {
        self.param_names.len()
    }

    /// Index of a parameter by name.
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.param_names.iter().position(|n| n == name)
    }

    /// The draws of parameter `j` as `[chain][draw]`, the layout the diagnostics take.
    pub fn param_chains(&self, j: usize) -> Vec<Vec<f64>> {
        self.draws.iter().map(|chain| chain.iter().map(|draw| draw[j]).collect()).collect()
    }

    /// All draws of all chains, chain after chain, as `[draw][param]`.
    pub fn pooled_draws(&self) -> impl Iterator<Item = &[f64]> {
        self.draws.iter().flatten().map(Vec::as_slice)
    }

    /// Number of divergent transitions after warm-up, over all chains.
    pub fn divergences(&self) -> usize {
        self.sample_stats.iter().flatten().filter(|s| s.divergent).count()
    }

    /// Energies of each chain's draws (empty for Laplace).
    pub fn energies(&self) -> Vec<Vec<f64>> {
        self.sample_stats.iter().map(|c| c.iter().map(|s| s.energy).collect()).collect()
    }

    /// Apply `f` to every draw (e.g. the model's transform to the constrained space), keeping the
    /// chain structure and the sampler statistics; `names` are the names of the outputs. The
    /// Laplace mode and covariance stay those of the unconstrained space.
    pub fn map_draws(&self, names: Vec<String>, mut f: impl FnMut(&[f64]) -> Vec<f64>) -> Posterior {
        Posterior {
            method: self.method,
            param_names: names,
            draws: self.draws.iter().map(|chain| chain.iter().map(|d| f(d)).collect()).collect(),
            sample_stats: self.sample_stats.clone(),
            warmup: self.warmup.clone(),
            laplace: self.laplace.clone(),
        }
    }
}
