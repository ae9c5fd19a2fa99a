//! Shared plumbing for the mmloop crates: reading tables (CSV or Parquet, through polars) into plain
//! typed columns with errors that name the file, column, row and a remedy; time columns that may be
//! dates or numbers; output directories that are written completely or not at all and never replace
//! what mmloop did not write; and SHA-256 content hashes that tie a saved result to its inputs.
//!
//! Both `mmloop-mmm` and `mmloop-geolift` depend on this crate, never on each other.
//!
//! ```no_run
//! use mmloop_data::Table;
//! let t = Table::read("data/demo_national.csv")?;
//! let sales = t.f64_column("sales")?;      // error names file, column, row on a bad cell
//! let time = t.time_column("date")?;       // dates become day numbers, numbers stay numbers
//! # Ok::<(), mmloop_data::DataError>(())
//! ```

mod calibration;
mod error;
mod hash;
pub mod human;
mod output;
mod table;

pub use calibration::{LiftTestRecord, SpendDelta};
pub use error::DataError;
pub use hash::{FileHash, hash_bytes, hash_file};
pub use output::{MARKER, OutputDir, OutputMarker, read_marker, write_atomic, write_atomic_for};
pub use table::{Table, TimeColumn, TimeKind, closest, format_date, parse_date};
