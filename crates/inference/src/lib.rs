//! Model-agnostic inference for mmloop.
//!
//! A model exposes its log density over an unconstrained parameter vector through [`LogDensity`]:
//! it fills a gradient buffer and returns the log density, or a [`LogDensityError`] that says whether
//! the sampler may recover (reject the point) or must stop. The samplers (NUTS), the Laplace
//! approximation and the diagnostics in this crate work on any such model.

mod density;
pub mod diagnostics;
mod error;
pub mod laplace;
pub mod nuts;
mod posterior;
pub mod summary;

pub use density::{LogDensity, LogDensityError};
pub use error::InferenceError;
pub use laplace::{LaplaceSettings, laplace};
pub use nuts::{Init, MassMatrix, NutsSettings, sample_nuts};
pub use posterior::{ChainWarmup, DrawStats, LaplaceInfo, LaplaceStart, Method, Posterior};
pub use summary::{ParamSummary, RunDiagnostics, Summary, summary};
