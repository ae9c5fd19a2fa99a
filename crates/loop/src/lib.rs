//! The measurement loop: calibration records flow from geo-lift readouts into MMM priors, evidence
//! ages, and the next experiments are ranked by information gain and value of information.
//!
//! - [`ledger`]: the loop's memory, an embedded SQLite file of experiments, fits and predictions.
//! - [`decay`]: evidence that ages — a readout's variance grows as SE²·exp(λt), λ = ln 2 / half-life.
//! - [`value`]: which tests to run next — EIG, EVOI/EVPI in money, the 2×2 and the portfolio.
//! - [`hash`]: SHA-256 content hashes for provenance.
//!
//! Dependency graph: `loop` → {`mmm`, `geolift`}; `mmm` and `geolift` never depend on each other.

pub mod decay;
pub mod hash;
pub mod ledger;
pub mod value;
