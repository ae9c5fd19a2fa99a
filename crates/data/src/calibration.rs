//! The calibration record: what a geo experiment hands to the MMM. `mmloop lift` writes it,
//! the MMM's lift-test likelihood reads it as it is. It lives here because `mmloop-geolift` and
//! `mmloop-mmm` never depend on each other.
//!
//! JSON form (one object, or a list of them, in a `.json` file):
//! ```json
//! {"channels": ["tv"], "geos": ["chicago", "portland"], "start": "2021-04-01", "end": "2021-04-15",
//!  "spend_change": 50000.0, "incremental_kpi": 4667.0, "standard_error": 1200.0,
//!  "estimator": "sc", "source": "GeoLift_Test.csv"}
//! ```

use crate::DataError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One lift-test readout in the KPI's own units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiftTestRecord {
    /// Channel (or set of channels whose spend changed together) that the test moved.
    /// Empty when the readout has not yet been attached to a channel (`mmloop lift` without `--channel`).
    #[serde(default)]
    pub channels: Vec<String>,
    /// Treated geos. Empty means a national test.
    #[serde(default)]
    pub geos: Vec<String>,
    /// First and last period of the test window, inclusive, in the data's own time notation.
    pub start: String,
    pub end: String,
    /// Total change in spend over the window across the treated geos (negative for a go-dark test),
    /// in money. Used when `spend_path` is absent: spread evenly over geos and periods of the window.
    pub spend_change: f64,
    /// Optional actual per-period, per-geo spend change, for tests whose spend was not flat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend_path: Option<Vec<SpendDelta>>,
    /// Measured incremental KPI over the window (summed over treated geos and periods).
    pub incremental_kpi: f64,
    /// Its standard error.
    pub standard_error: f64,
    /// The estimator that produced it (`sc`, `sdid`, ...), for provenance.
    #[serde(default)]
    pub estimator: String,
    /// Where it came from (file name, experiment id), for provenance.
    #[serde(default)]
    pub source: String,
}

/// Spend change in one geo and period of a lift test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendDelta {
    pub time: String,
    #[serde(default)]
    pub geo: String,
    pub delta: f64,
}

impl LiftTestRecord {
    /// Checks the numbers make sense: finite values, a positive standard error.
    pub fn validate(&self) -> Result<(), String> {
        if !self.incremental_kpi.is_finite() {
            return Err("incremental_kpi must be a finite number".into());
        }
        if !(self.standard_error.is_finite() && self.standard_error > 0.0) {
            return Err(format!("standard_error must be a positive number, got {}", self.standard_error));
        }
        if !self.spend_change.is_finite() {
            return Err("spend_change must be a finite number".into());
        }
        if let Some(p) = &self.spend_path
            && let Some(d) = p.iter().find(|d| !d.delta.is_finite())
        {
            return Err(format!("spend_path entry at {} {} is not finite", d.time, d.geo));
        }
        Ok(())
    }

    /// Reads one record or a list of records from a JSON file, validating each.
    pub fn read_all(path: impl AsRef<Path>) -> Result<Vec<Self>, DataError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| DataError::Io { path: path.to_path_buf(), source: e })?;
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            Many(Vec<LiftTestRecord>),
            One(LiftTestRecord),
        }
        let parse = |m: String| DataError::Parse { path: path.to_path_buf(), format: "calibration JSON", message: m };
        let recs = match serde_json::from_str::<OneOrMany>(&text) {
            Ok(OneOrMany::Many(v)) => v,
            Ok(OneOrMany::One(r)) => vec![r],
            // untagged enums hide the real error: re-parse as a single record to report it
            Err(_) => vec![serde_json::from_str::<LiftTestRecord>(&text).map_err(|e| parse(e.to_string()))?],
        };
        for (i, r) in recs.iter().enumerate() {
            r.validate().map_err(|m| parse(format!("record {}: {m}", i + 1)))?;
        }
        Ok(recs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_through_json() {
        let r = LiftTestRecord {
            channels: vec!["tv".into()],
            geos: vec!["a".into()],
            start: "2021-04-01".into(),
            end: "2021-04-15".into(),
            spend_change: 1000.0,
            spend_path: None,
            incremental_kpi: 500.0,
            standard_error: 100.0,
            estimator: "sc".into(),
            source: "x.csv".into(),
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.json");
        std::fs::write(&p, serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(LiftTestRecord::read_all(&p).unwrap(), vec![r.clone()]);
        std::fs::write(&p, serde_json::to_string(&vec![r.clone(), r.clone()]).unwrap()).unwrap();
        assert_eq!(LiftTestRecord::read_all(&p).unwrap().len(), 2);
    }

    #[test]
    fn bad_records_are_rejected_with_reason() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.json");
        std::fs::write(&p, r#"{"start":"1","end":"2","spend_change":1,"incremental_kpi":1,"standard_error":0}"#)
            .unwrap();
        let e = LiftTestRecord::read_all(&p).unwrap_err().to_string();
        assert!(e.contains("standard_error must be a positive"), "{e}");
        std::fs::write(
            &p,
            r#"{"start":"1","end":"2","spend_change":1,"incremental_kpi":1,"standard_error":1,"oops":2}"#,
        )
        .unwrap();
        let e = LiftTestRecord::read_all(&p).unwrap_err().to_string();
        assert!(e.contains("oops"), "{e}");
    }
}
