//! A simulated geo marketing world with known truth, for the closed loop's demo (`mmloop loop
//! --demo`, issue 13) and the simulator over many worlds (`mmloop simulate`, issue 14).
//!
//! - [`WorldSpec`] states one world (geos, channels with true ROI, adstock and saturation, baseline,
//!   noise, and how strongly spend follows a demand signal the MMM cannot see);
//!   [`WorldDistribution::sample`] draws worlds from a stated distribution.
//! - [`World::new`] generates the observed history; [`World::dataset`] / [`World::model_spec`] hand it
//!   to the MMM in memory, [`World::write_files`] as CSV + TOML for the CLI.
//! - Truth: [`World::true_roi`], and through [`World::planner`] the true outcome of a budget over a
//!   planning horizon, the true optimum (the real optimiser on the true curves, a one-draw
//!   "posterior") and the misallocation cost of a recommendation.
//! - [`World::follow`] sets the spend plan (a recommendation over a horizon); [`World::advance`] moves
//!   time on: new weeks with spend following it plus the confounded component, planned tests run in
//!   them and read out by the real geo-lift estimators into [`mmloop_data::LiftTestRecord`]s, with
//!   each test's true lift (in the window and with carry-over) and an optional planted bias.
//!   [`World::run_test`] does the same on a copy (the world itself does not move).
//!   [`TestRun::reversed_record`] expresses a readout so that the MMM's lift term, which takes the
//!   data as the no-test state, reads it correctly on data that contains the test.
//! - Misspecification for the simulator: a true adstock family the MMM does not fit, drifting
//!   effects, occasionally biased experiments ([`WorldDistribution::scenario`]).
//! - A [`World`] serialises completely, to save it between cycles and resume.
//!
//! Every random number is a pure function of (seed, stream, index) ([`crate::value::rng`]), so a
//! world, its future and its readouts are identical whatever the thread count and whatever was
//! asked of it before.
//!
//! ```
//! use mmloop_loop::world::{World, WorldSpec, PlannedTest, ReadoutOptions};
//! use mmloop_mmm::pricing::SpendChange;
//! let world = World::new(WorldSpec::demo(7))?;
//! let truth = world.true_roi();                       // per channel, over the observed history
//! let plan = world.planner(13);                       // a quarter's planning horizon
//! let current = world.recent_spend(13);
//! let bounds = plan.bounds_around(&current, 0.5);
//! let best = plan.optimum(current.iter().sum(), &bounds)?;
//! assert!(plan.misallocation_within(&best.spend, &bounds)?.cost.abs() < 1e-6 * best.objective);
//! // a heavy-up of search in three geos for 6 weeks, starting right after the data
//! let t = world.weeks();
//! let test = PlannedTest::new(&["search"], &["geo02", "geo05", "geo09"], t, 6, SpendChange::Total(600_000.0));
//! let run = world.run_test(&test, &ReadoutOptions::fast())?;
//! println!("readout {:.0} ± {:.0}, truth {:.0}", run.record.incremental_kpi, run.record.standard_error, run.true_lift_in_window);
//! # Ok::<(), mmloop_loop::world::WorldError>(())
//! ```

mod experiment;
mod generate;
mod observed;
mod spec;
mod truth;

#[cfg(test)]
mod tests;

pub use experiment::{Fallback, PlannedTest, ReadoutOptions, SC_SE_INFLATION, TestRun};
pub use generate::{ChannelTruth, GeoTruth, World, WorldTruth};
pub use observed::{CONFIG_FILE, DATA_FILE};
pub use spec::{
    AdstockFamily, CHANNEL_NAMES, ChannelSpec, ExperimentBias, SCENARIOS, SpendPattern, WorldDistribution, WorldSpec,
};
pub use truth::{Misallocation, TruePlanner};

/// What can go wrong building, querying or advancing a world. Messages name the field, test or
/// option and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    #[error("world spec: {field} {message}")]
    Spec { field: String, message: String },
    #[error("test {test}: {message}")]
    Test { test: String, message: String },
    #[error("allocation: {0}")]
    Allocation(String),
    #[error("test {test}: the geo-lift readout failed: {source}")]
    Readout {
        test: String,
        #[source]
        source: Box<mmloop_geolift::ReadoutError>,
    },
    #[error("the true optimum: {0}")]
    Optimize(#[from] mmloop_mmm::optimize::OptimizeError),
    #[error("the world's MMM config does not parse: {0}")]
    Config(Box<mmloop_mmm::config::ConfigError>),
    #[error("writing {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the world's panel: {0}")]
    Panel(#[from] mmloop_geolift::GeoLiftError),
}
