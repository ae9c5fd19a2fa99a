//! Reading an output's files with errors that name the file and say what to do.

use crate::ReportError;
use mmloop_data::Table;
use serde::de::DeserializeOwned;
use std::path::Path;

/// `dir/name` as JSON of type `T`; missing and unreadable files are errors naming the file.
pub fn json<T: DeserializeOwned>(dir: &Path, name: &str, command: &'static str) -> Result<T, ReportError> {
    let path = dir.join(name);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReportError::Missing { path, command }),
        Err(e) => return Err(ReportError::Data { path, message: format!("cannot read the file: {e}") }),
    };
    serde_json::from_slice(&bytes).map_err(|e| ReportError::Parse { path, what: "JSON", message: e.to_string() })
}

/// `dir/name` as a table (CSV or Parquet).
pub fn table(dir: &Path, name: &str, command: &'static str) -> Result<Csv, ReportError> {
    let path = dir.join(name);
    if !path.exists() {
        return Err(ReportError::Missing { path, command });
    }
    Table::read(&path).map(Csv).map_err(|e| ReportError::Data { path, message: e.to_string() })
}

/// A table whose column errors become [`ReportError`]s.
pub struct Csv(pub Table);

impl Csv {
    fn err(&self, e: mmloop_data::DataError) -> ReportError {
        ReportError::Data { path: self.0.path().to_path_buf(), message: e.to_string() }
    }
    pub fn f64(&self, name: &str) -> Result<Vec<f64>, ReportError> {
        self.0.f64_column(name).map_err(|e| self.err(e))
    }
    /// A numeric column whose empty cells are NaN (a figure the command could not compute).
    pub fn f64_or_nan(&self, name: &str) -> Result<Vec<f64>, ReportError> {
        Ok(self.0.f64_column_opt(name).map_err(|e| self.err(e))?.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    }
    pub fn str(&self, name: &str) -> Result<Vec<String>, ReportError> {
        self.0.str_column(name).map_err(|e| self.err(e))
    }
    pub fn has(&self, name: &str) -> bool {
        self.0.has_column(name)
    }
    pub fn n_rows(&self) -> usize {
        self.0.n_rows()
    }
}
