//! One measurement cycle as a library: `mmloop loop` and the demo run it.
//!
//! A cycle, in order (each step idempotent, keyed by the cycle number and content hashes, so a
//! cycle interrupted anywhere and run again finishes without duplicating ledger rows):
//! 1. **Phase 1** ([`fit`]): the MMM calibrated by every read readout of the ledger with its
//!    age-inflated variance. The readouts no fit has predicted are first predicted by the newest
//!    earlier fit of the same config (out of sample). An existing fit is reused when the MMM
//!    config, the data and the calibration are unchanged: the fit directory's provenance records
//!    the SHA-256 of its saved config, which holds the (aged) readouts it calibrated on.
//! 2. **Validate**: the readouts that arrived since the last cycle, their prediction against the
//!    readout ([`crate::validate::discrepancy`], flags in words) and whether the calibrated fit
//!    can reconcile them (posterior predictive p-value).
//! 3. **Phase 2**: the next tests, chosen by a [`TestChooser`], written to the ledger as
//!    `planned` under a plan key `loop:<loop id>:cycle-<N>:<content hash>`.
//! 4. **Phase 4** ([`budget`]): the budget recommendation on the calibrated posterior with its
//!    credible interval, and what changed since the last cycle and why (new evidence, decay).
//! 5. `DIR/cycle-N/` holds every artefact (committed atomically through
//!    [`mmloop_data::OutputDir`], last), the fit is `DIR/fit-N/`, and [`CycleReport::brief`] is
//!    the plain-language brief.
//!
//! A cycle whose inputs (loop settings, MMM config, data, read readouts) equal those of the last
//! finished cycle is not run again: "up to date" (re-running a finished cycle changes nothing).

// The error enum carries file, key and experiment details for its messages; it is built once per
// failed run, so its size does not matter (as in the MMM's config).
#![allow(clippy::result_large_err)]

pub mod budget;
pub mod choose;
pub mod config;
pub mod demo;
pub mod fit;
mod run;

pub use budget::{BudgetOutcome, ChannelChange};
pub use choose::RankChooser;
pub use config::{BudgetSettings, LoopConfig, PanelSource, TestConstraints};
pub use run::{
    ChooseInput, Chosen, CycleOptions, CycleReport, CycleState, EvidenceSummary, LOOP_MARKER, LoopDir, NoTests,
    PlannedTest, TestChooser, run_cycle,
};

use std::path::PathBuf;

/// What can stop a cycle. Messages name the file, key or experiment, what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error("{path}: cannot read {what}: {source}")]
    Io { path: PathBuf, what: String, source: std::io::Error },
    #[error("{file}: {key}: {message}")]
    Config { file: String, key: String, message: String },
    #[error("{option}: {message}")]
    Option { option: String, message: String },
    #[error(transparent)]
    Calibrate(#[from] crate::calibrate::CalibrateError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error(transparent)]
    Validate(#[from] crate::validate::ValidateError),
    #[error("{context}: {source}")]
    Fit { context: String, source: mmloop_mmm::fit::FitError },
    #[error("{dir}: {message}")]
    FitDir { dir: PathBuf, message: String },
    #[error(transparent)]
    Data(#[from] mmloop_data::DataError),
    #[error(transparent)]
    DataLoad(#[from] mmloop_mmm::data::MmmDataError),
    #[error(transparent)]
    Output(#[from] mmloop_mmm::fitdir::OutputError),
    #[error(transparent)]
    Plan(#[from] mmloop_mmm::optimize::PlanError),
    #[error("{dir}: {message}")]
    LoopDir { dir: PathBuf, message: String },
    #[error("choosing the next tests: {0}")]
    Choose(String),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}
