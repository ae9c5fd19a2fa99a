//! Model-agnostic inference for mmloop.
//!
//! A model exposes its log density over an unconstrained parameter vector through [`LogDensity`]:
//! it fills a gradient buffer and returns the log density, or a [`LogDensityError`] that says whether
//! the sampler may recover (reject the point) or must stop. The samplers (NUTS), the Laplace
//! approximation and the diagnostics in this crate work on any such model.
//!
//! # One call per method
//!
//! ```no_run
//! # use mmloop_inference::*;
//! # fn demo(model: &dyn LogDensity) -> Result<(), InferenceError> {
//! let nuts: Posterior = sample_nuts(model, &NutsSettings { seed: 7, ..NutsSettings::default() })?;
//! let approx: Posterior = laplace(model, &LaplaceSettings { seed: 7, ..LaplaceSettings::default() })?;
//! for posterior in [&nuts, &approx] {
//!     let s: Summary = summary(posterior); // mean, sd, q05/q50/q95, R-hat, ESS, MCSE + warnings
//!     for w in &s.diagnostics.warnings {
//!         eprintln!("{w}");
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! * The model is passed **by shared reference** (`&D` with `D: LogDensity + ?Sized`, so
//!   `&dyn LogDensity` works): [`LogDensity`] is `Send + Sync` and every chain or optimiser start
//!   evaluates the same object from its own rayon task. No `Clone` is needed.
//! * Both methods return the same [`Posterior`]: `draws[chain][draw][param]` in the unconstrained
//!   space (Laplace gives one "chain" of independent draws), parameter names, NUTS sampler
//!   statistics and warm-up information, or the Laplace mode and covariance. Map draws to the
//!   constrained space with [`Posterior::map_draws`]; per-parameter `[chain][draw]` views for the
//!   [`diagnostics`] come from [`Posterior::param_chains`].
//! * Runs are reproducible: chain (or start) `k` draws its randomness from ChaCha8 seeded with the
//!   settings' seed on its own stream, so results are bit-identical whatever the number of threads
//!   (`rayon::ThreadPool::install` chooses the pool).
//! * [`diagnostics`] reproduces R `posterior` (Vehtari et al. 2021) to 1e-8 on the ArviZ oracle;
//!   [`summary()`] turns it into per-parameter summaries and run-level checks (R-hat > 1.01,
//!   ESS < 400, divergences, tree-depth saturation, E-BFMI < 0.3) with advice in plain language.

pub mod dense;
mod density;
pub mod diagnostics;
mod error;
pub mod laplace;
pub mod nuts;
mod posterior;
pub mod sparsity;
pub mod summary;

pub use density::{LogDensity, LogDensityError};
pub use error::InferenceError;
pub use laplace::{LaplaceSettings, ModeSearch, find_mode, laplace, laplace_at, search_modes};
pub use nuts::{DENSE_MIN_TUNE, Init, MassMatrix, NutsSettings, sample_nuts};
pub use posterior::{ChainWarmup, DrawStats, LaplaceInfo, LaplaceStart, Method, Posterior};
pub use sparsity::{CountedHessian, HessianSparsity, sparsity_violation};
pub use summary::{ParamSummary, RunDiagnostics, Summary, summary};
