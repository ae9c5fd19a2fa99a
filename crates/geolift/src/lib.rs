//! Geo-lift: regional panels → lift estimates with inference, and experiment design.
//!
//! Load a long panel ([`Panel::read`]), apply a test design ([`Panel::design`]) and run any
//! [`LiftEstimator`]: [`SyntheticControl`] (GeoLift conventions), [`Sdid`], [`DiD`], [`Twfe`], [`EventStudy`], [`Tbr`], [`Ascm`]. Inference lives in [`inference`]: conformal (Chernozhukov–Wüthrich–Zhu, as
//! GeoLift), placebo in space, synthdid placebo and jackknife standard errors.
//!
//! A whole readout (estimators with their inference, SEs, spend change and calibration records) is
//! one call: [`readout::read_out`] with checked [`ReadoutSettings`] (`mmloop lift` is a thin caller).
//!
//! Input safety (issue 10):
//! * values beyond ±[`error::MAX_ABS_VALUE`] (1e150, whose squares overflow once summed) are refused
//!   at load with the cell named; a non-finite result is an error ([`LiftData::check_estimate`]);
//! * [`screen_outliers`] flags cells whose robust score (modified z-score of the level-scaled
//!   series minus the cross-geo median) exceeds [`OUTLIER_THRESHOLD`] = 10; warned, never dropped;
//! * option-sized buffers (permutations, replications) are checked against
//!   [`error::MEMORY_LIMIT_BYTES`] (1 GiB) before they are allocated;
//! * [`LiftData::screen_donors`] keeps the K controls most correlated with the treated average over
//!   the pre-period (the CLI applies it to sc, ascm and sdid with `--max-donors`, default 50), so the
//!   weighting estimators scale to thousands of geos;
//! * panels with gaps ([`Panel::read_allow_gaps`]) are accepted by [`Tbr`] (ratio-scaled group
//!   totals) and refused by the balanced-panel estimators with [`GeoLiftError::Gaps`].

pub mod ascm;
pub mod design;
pub mod did;
pub mod error;
pub mod inference;
pub mod panel;
pub mod progress;
pub mod readout;
pub mod result;
pub mod sc;
pub mod screen;
pub mod sdid;
pub mod simplex;
pub mod simulate;
pub mod stats;
pub mod tbr;

pub use ascm::Ascm;
pub use did::{DiD, EventStudy, Twfe};
pub use error::GeoLiftError;
pub use inference::{Conformal, ConformalStat, PeriodConformal, PeriodInterval, PeriodModel};
/// The ndarray version this crate's API takes (`Array2` panels), for callers without their own.
pub use ndarray;
pub use panel::{Columns, Design, LiftData, Panel};
pub use progress::{NoProgress, Progress};
pub use readout::{PredictedReadout, Readout, ReadoutError, ReadoutParams, ReadoutSettings, predict_readout, read_out};
pub use result::{Iroas, LiftEstimate, LiftEstimator, PeriodPoint, PreFit};
pub use sc::{ScFit, SyntheticControl, fit_sc};
pub use screen::{DonorScreen, OUTLIER_THRESHOLD, OutlierWarning, screen_outliers};
pub use sdid::{Sdid, SdidKind};
pub use tbr::Tbr;
