//! The data a model is fitted to, as dense arrays with one layout everywhere:
//! geo × time (× channel / control). A national dataset has one geo named `"national"`.
//! Built by `Dataset::load(&ModelSpec)`, which validates everything (see `data.rs`).

use mmloop_data::TimeColumn;
use ndarray::{Array1, Array2, Array3};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The file it was read from.
    pub source: PathBuf,
    /// Geo names, in first-appearance order (`["national"]` for national data).
    pub geos: Vec<String>,
    /// Sorted, gap-free periods (the time column, one entry per period).
    pub times: TimeColumn,
    /// Channel names, in `ModelSpec::channels` order.
    pub channels: Vec<String>,
    /// Control names, in `ModelSpec::controls` order.
    pub controls: Vec<String>,
    /// KPI, [geo, time].
    pub kpi: Array2<f64>,
    /// Spend, [geo, time, channel] (money).
    pub spend: Array3<f64>,
    /// The media driver, [geo, time, channel]: the exposure column where given, else the spend.
    pub media: Array3<f64>,
    /// Controls, [geo, time, control].
    pub control_values: Array3<f64>,
    /// Population per geo, if a population column was given.
    pub population: Option<Array1<f64>>,
    /// Revenue per KPI unit, [geo, time], if given.
    pub revenue_per_kpi: Option<Array2<f64>>,
}

impl Dataset {
    pub fn n_geos(&self) -> usize {
        self.geos.len()
    }
    pub fn n_times(&self) -> usize {
        self.times.values.len()
    }
    pub fn n_channels(&self) -> usize {
        self.channels.len()
    }
}
