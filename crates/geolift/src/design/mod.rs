//! Geo experiment design: power by simulation on history, minimum detectable effect, expected
//! precision, and market selection (GeoLift's `GeoLiftPower` / `GeoLiftMarketSelection`, made fast).
//!
//! ```no_run
//! use mmloop_geolift::{Columns, Panel};
//! use mmloop_geolift::design::{PowerConfig, SearchSpec, search, DesignRecord};
//! let panel = Panel::read("GeoLift_PreTest.csv", &Columns::default())?;
//! let cfg = PowerConfig::default(); // SC + conformal, α = 0.1, 10 rolling windows
//! let spec = SearchSpec { n_min: 2, n_max: 5, durations: vec![15], ..Default::default() };
//! let sel = search(&panel, &spec, &cfg)?;
//! let record = DesignRecord::new(&sel, &cfg, spec.target_power, Some(3.0), None);
//! println!("{:?} MDE {:?}", record.cells[0].treated, record.cells[0].mde);
//! # Ok::<(), mmloop_geolift::design::DesignError>(())
//! ```
//!
//! * [`power`]: the simulation engine ([`PowerEngine`]), its settings ([`PowerConfig`]) and the
//!   power curve with MDE and standard errors ([`PowerCurve`]).
//! * [`select`]: candidate treated sets, ranking, multi-cell designs ([`search`]).
//! * [`record`]: `design.json` ([`DesignRecord`]) and `candidates.csv` ([`candidates_csv`]).

pub mod error;
pub mod power;
pub mod record;
pub mod select;

pub use error::DesignError;
pub use power::{DesignEstimator, DesignInference, Mde, PowerConfig, PowerCurve, PowerEngine, PowerPoint, t_critical};
pub use record::{CellRecord, DesignRecord, PrecisionRow, TestCost, candidates_csv, planned_start};
pub use select::{Candidate, SearchSpec, Selection, TestType, search, search_with_progress};
