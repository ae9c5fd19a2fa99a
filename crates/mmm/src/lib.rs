//! Bayesian marketing-mix models: data → model → posterior → analysis.
//!
//! - [`spec`]: the validated model description; `config` parses it from TOML.
//! - [`dataset`]: the data as geo × time (× channel) arrays; `data` loads and validates it.
//! - [`priors`], [`transforms`]: priors, adstock and saturation as small first-class types.
//! - [`fitdir`]: the fit directory `mmloop fit` writes and `optimize`, `scenario` and the ledger read.
//! - [`pricing`]: the lift a fit implies for a hypothetical test, per posterior draw.

pub mod analysis;
pub mod calibration;
pub mod config;
pub mod data;
pub mod dataset;
pub mod fit;
pub mod fitdir;
pub mod model;
pub mod optimize;
pub mod pricing;
pub mod priors;
pub mod simulate;
pub mod spec;
pub mod transforms;

pub use dataset::Dataset;
/// The fit-directory format under its former name (`mmloop_mmm::output::write_outputs`, …).
pub use fitdir as output;
pub use priors::Prior;
pub use spec::ModelSpec;
