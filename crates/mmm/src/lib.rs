//! Bayesian marketing-mix models: data → model → posterior → analysis.
//!
//! - [`spec`]: the validated model description; `config` parses it from TOML.
//! - [`dataset`]: the data as geo × time (× channel) arrays; `data` loads and validates it.
//! - [`priors`], [`transforms`]: priors, adstock and saturation as small first-class types.
//! - [`pricing`]: the lift a fit implies for a hypothetical test, per posterior draw.

pub mod analysis;
pub mod calibration;
pub mod config;
pub mod data;
pub mod dataset;
pub mod fit;
pub mod model;
pub mod optimize;
pub mod output;
pub mod priors;
pub mod pricing;
pub mod simulate;
pub mod spec;
pub mod transforms;

pub use dataset::Dataset;
pub use priors::Prior;
pub use spec::ModelSpec;
