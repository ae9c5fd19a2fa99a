//! Command-line options naming a long regional panel, shared by `mmloop lift` and `mmloop design`.
//! The defaults are GeoLift's column names.

use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct PanelArgs {
    /// Long panel (CSV or Parquet): one row per (time, geo).
    #[arg(long)]
    pub data: PathBuf,
    /// Time column (dates YYYY-MM-DD or numbers).
    #[arg(long, default_value = "date")]
    pub time: String,
    /// Geo column.
    #[arg(long, default_value = "location")]
    pub geo: String,
    /// KPI column.
    #[arg(long, default_value = "Y")]
    pub kpi: String,
}
