//! Geo-lift: regional panels → lift estimates with inference, and experiment design.
//!
//! Load a long panel ([`Panel::read`]), apply a test design ([`Panel::design`]) and run any
//! [`LiftEstimator`]: [`SyntheticControl`] (GeoLift conventions), [`Sdid`], [`DiD`], [`Twfe`], [`EventStudy`], [`Tbr`], [`Ascm`]. Inference lives in [`inference`]: conformal (Chernozhukov–Wüthrich–Zhu, as
//! GeoLift), placebo in space, synthdid placebo and jackknife standard errors.

pub mod ascm;
pub mod design;
pub mod did;
pub mod error;
pub mod inference;
pub mod panel;
pub mod result;
pub mod sc;
pub mod sdid;
pub mod simplex;
pub mod stats;
pub mod tbr;

pub use ascm::Ascm;
pub use did::{DiD, EventStudy, Twfe};
pub use error::GeoLiftError;
pub use inference::{Conformal, ConformalStat};
pub use panel::{Columns, Design, LiftData, Panel};
pub use result::{Iroas, LiftEstimate, LiftEstimator, PeriodPoint, PreFit};
pub use sc::{ScFit, SyntheticControl, fit_sc};
pub use sdid::{Sdid, SdidKind};
pub use tbr::Tbr;
