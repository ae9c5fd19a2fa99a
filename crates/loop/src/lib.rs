//! The measurement loop: calibration records flow from geo-lift readouts into MMM priors, evidence
//! ages, and the next experiments are ranked by information gain and value of information.
//!
//! - [`ledger`]: the loop's memory, an embedded SQLite file of experiments, fits and predictions.
//! - [`calibrate`]: ledger readouts → aged lift-test terms of the next fit, and who is due for re-test.
//! - [`decay`]: evidence that ages — a readout's variance grows as SE²·exp(λt), λ = ln 2 / half-life.
//! - [`validate`]: the MMM checked against every test — predictions, discrepancy z, posterior
//!   predictive p-value of a calibrated fit, and the history of predicted vs measured.
//! - [`value`]: which tests to run next — EIG, EVOI/EVPI in money, the 2×2 and the portfolio.
//! - [`rank`]: candidate tests (geo design, stated precision, stale readouts), their cost, and the
//!   ranking and portfolio `mmloop rank` prints.
//!
//! Dependency graph: `loop` → {`mmm`, `geolift`}; `mmm` and `geolift` never depend on each other.

pub mod calibrate;
pub mod decay;
pub mod ledger;
pub mod rank;
pub mod validate;
pub mod value;
