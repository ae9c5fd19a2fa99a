//! The loop's memory: an embedded SQLite ledger of every experiment (planned, running, read out or
//! discarded), every fit, and what each fit predicted for each test before it saw the readout.
//!
//! ```no_run
//! use mmloop_loop::ledger::Ledger;
//! let mut ledger = Ledger::open_or_create("loop.ledger")?;
//! let ids = ledger.add_calibration_file("out/calibration.json".as_ref())?;
//! for e in ledger.experiments()? {
//!     println!("{} {} {:?}", e.id, e.status, e.channels);
//! }
//! ledger.discard(ids[0], "spend was not delivered in two geos")?;
//! # Ok::<(), mmloop_loop::ledger::LedgerError>(())
//! ```
//!
//! # Guarantees
//! - Every write is one SQLite transaction (`BEGIN IMMEDIATE`): a readout is recorded with all its
//!   channels, cells and geos, or not at all — also when the process is killed (SIGKILL) mid-write.
//! - WAL journal mode with `synchronous = NORMAL`: readers never block the writer; a commit survives
//!   any crash of the process (a power loss may lose the last commits, never consistency).
//! - A second writer waits up to the busy timeout (5 s by default) for the first, then fails with
//!   [`LedgerError::Busy`] having written nothing.
//! - A file that is not a ledger (not SQLite, or SQLite without our `application_id`) is refused
//!   before SQLite opens it, and a ledger from a newer schema is refused through a read-only
//!   connection: neither is modified.

mod error;
mod report;
mod schema;

pub use error::LedgerError;
pub use report::{format_evidence, format_experiment, format_list, to_csv};
pub use schema::{APPLICATION_ID, SCHEMA_VERSION};

use mmloop_data::hash_bytes as sha256_hex;
use mmloop_data::{LiftTestRecord, SpendDelta};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params};
use schema::Preflight;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Φ⁻¹(0.95): the half-width of the 90 % normal interval in standard errors.
const Z90: f64 = 1.644_853_626_951_472_2;

/// Default time a writer waits for another one.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Where an experiment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Planned,
    Running,
    Read,
    Discarded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Planned => "planned",
            Status::Running => "running",
            Status::Read => "read",
            Status::Discarded => "discarded",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Status::Planned, Status::Running, Status::Read, Status::Discarded].into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A test cell: its name and treated geos (none for a national test).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub name: String,
    pub geos: Vec<String>,
}

/// A recorded readout: the calibration record as it was added, and figures derived from it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Readout {
    /// The record exactly as added (exported as it is).
    pub record: LiftTestRecord,
    /// Normal-approximation 90 % interval of the incremental KPI: `kpi ± Φ⁻¹(0.95)·SE`. The record
    /// carries the SE, not the estimator's own interval, so this is the interval the MMM's Gaussian
    /// lift likelihood implies.
    pub kpi_interval: (f64, f64),
    /// Incremental return on ad spend `incremental_kpi / spend_change`; none when the spend change
    /// is zero (unknown).
    pub iroas: Option<f64>,
    /// The 90 % interval of the iROAS: the KPI interval divided by the spend change (ordered).
    pub iroas_interval: Option<(f64, f64)>,
    /// The calibration file it was read from and the SHA-256 of its bytes (none when recorded
    /// directly by a library caller).
    pub source_file: Option<String>,
    pub source_hash: Option<String>,
    /// SHA-256 of the record's canonical JSON: how the same readout is recognised.
    pub record_hash: String,
    /// When it was recorded (UTC).
    pub read_out_at: String,
}

/// One experiment as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Experiment {
    pub id: i64,
    pub status: Status,
    pub discard_reason: Option<String>,
    /// The status it had when discarded.
    pub discarded_from: Option<Status>,
    pub channels: Vec<String>,
    pub cells: Vec<Cell>,
    /// Test window, first and last period inclusive, in the data's time notation.
    pub start: String,
    pub end: String,
    /// Design figures (power, MDE, budget, …) as the design step wrote them.
    pub design: Option<serde_json::Value>,
    pub readout: Option<Readout>,
    pub created_at: String,
    pub updated_at: String,
}

/// A planned experiment, before it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedExperiment {
    pub channels: Vec<String>,
    pub cells: Vec<Cell>,
    pub start: String,
    pub end: String,
    pub design: Option<serde_json::Value>,
}

/// A fit to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewFit {
    /// SHA-256 of the config and of the data it was fitted on.
    pub config_hash: String,
    pub data_hash: String,
    /// `nuts`, `laplace`, …
    pub method: String,
    pub diagnostics: serde_json::Value,
    /// Per-channel ROI summary (mean, sd, interval per channel).
    pub roi_summary: serde_json::Value,
    pub fit_dir: Option<String>,
}

/// A recorded fit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitEntry {
    pub id: i64,
    #[serde(flatten)]
    pub fit: NewFit,
    pub created_at: String,
}

/// What a fit predicted for an experiment's lift (in the KPI's units), before calibrating on it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub fit_id: i64,
    pub experiment_id: i64,
    pub mean: f64,
    pub sd: f64,
    pub q05: f64,
    pub q95: f64,
}

/// A stored prediction with its label: `in_sample` when the fit had already been calibrated on
/// the readout (not an out-of-sample check), and when it was recorded (UTC).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictionRow {
    #[serde(flatten)]
    pub prediction: Prediction,
    pub in_sample: bool,
    pub created_at: String,
}

/// An open ledger. Methods that write take `&mut self` and run in one transaction each.
#[derive(Debug)]
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
    busy: Duration,
}

/// Reads a calibration JSON file (one record or a list of them) with errors that name the file and
/// the 1-based record index: bad JSON (with line and column), unknown fields, missing fields,
/// impossible numbers, a window that ends before it starts. Returns the records and the SHA-256
/// of the file's bytes.
pub fn read_calibration_file(path: &Path) -> Result<(Vec<LiftTestRecord>, String), LedgerError> {
    let bytes = std::fs::read(path).map_err(|e| LedgerError::Io { path: path.to_path_buf(), source: e })?;
    let hash = sha256_hex(&bytes);
    let bad = |m: String| LedgerError::BadJson { path: path.to_path_buf(), message: m };
    let text = std::str::from_utf8(&bytes).map_err(|e| bad(format!("the file is not UTF-8 text ({e})")))?;
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let items = match value {
        serde_json::Value::Array(v) => v,
        o @ serde_json::Value::Object(_) => vec![o],
        other => {
            return Err(bad(format!(
                "expected a record object or a list of records, found {}",
                match other {
                    serde_json::Value::Null => "null",
                    serde_json::Value::Bool(_) => "a boolean",
                    serde_json::Value::Number(_) => "a number",
                    _ => "a string",
                }
            )));
        }
    };
    if items.is_empty() {
        return Err(bad("the file holds an empty list: no records to add".into()));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, v) in items.into_iter().enumerate() {
        let rec = |m: String| LedgerError::BadRecord { path: path.to_path_buf(), index: i + 1, message: m };
        let r: LiftTestRecord = serde_json::from_value(v).map_err(|e| rec(e.to_string()))?;
        check_record(&r).map_err(rec)?;
        out.push(r);
    }
    Ok((out, hash))
}

/// The record's own checks plus a window that is set and in order.
fn check_record(r: &LiftTestRecord) -> Result<(), String> {
    r.validate()?;
    if r.start.trim().is_empty() || r.end.trim().is_empty() {
        return Err("start and end of the test window must be set".into());
    }
    let num = |s: &str| mmloop_data::parse_date(s).or_else(|| s.trim().parse::<f64>().ok());
    if let (Some(a), Some(b)) = (num(&r.start), num(&r.end))
        && b < a
    {
        return Err(format!("the window ends ({}) before it starts ({})", r.end, r.start));
    }
    Ok(())
}

/// SHA-256 of a record's canonical JSON (field order of the struct, shortest round-trip floats).
pub fn record_hash(r: &LiftTestRecord) -> String {
    // serialising a struct of strings, floats and vectors cannot fail
    sha256_hex(&serde_json::to_vec(r).unwrap_or_default())
}

fn now_sql() -> &'static str {
    "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
}

impl Ledger {
    /// Opens an existing ledger; a missing file is [`LedgerError::Missing`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LedgerError> {
        Self::open_with(path.as_ref(), false, DEFAULT_BUSY_TIMEOUT)
    }

    /// Opens a ledger, creating it (and the schema) when the file does not exist or is empty.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Self, LedgerError> {
        Self::open_with(path.as_ref(), true, DEFAULT_BUSY_TIMEOUT)
    }

    /// [`Ledger::open`] / [`Ledger::open_or_create`] with a given busy timeout.
    pub fn open_with(path: &Path, create: bool, busy: Duration) -> Result<Self, LedgerError> {
        let waited = busy.as_millis() as u64;
        match schema::preflight(path)? {
            Preflight::Missing if !create => return Err(LedgerError::Missing { path: path.to_path_buf() }),
            Preflight::Ours => schema::probe_read_only(path)?,
            Preflight::Missing | Preflight::Empty => {}
        }
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let sql = |e| LedgerError::sqlite(path, waited, e);
        let mut conn = Connection::open_with_flags(path, flags).map_err(sql)?;
        conn.busy_timeout(busy).map_err(sql)?;
        // created in rollback-journal mode, so the application id is in the main file's header
        // from the first commit on; WAL is switched on after that
        schema::init_or_migrate(&mut conn, path, waited)?;
        schema::check_tables(&conn, path)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(sql)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(LedgerError::Invalid {
                what: path.display().to_string(),
                message: format!("cannot switch the ledger to WAL mode (got {mode}); is it on a network file system?"),
            });
        }
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;").map_err(sql)?;
        Ok(Self { conn, path: path.to_path_buf(), busy })
    }

    /// The ledger's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long a write waits for another writer before failing with [`LedgerError::Busy`].
    pub fn set_busy_timeout(&mut self, busy: Duration) -> Result<(), LedgerError> {
        self.conn.busy_timeout(busy).map_err(|e| LedgerError::sqlite(&self.path, 0, e))?;
        self.busy = busy;
        Ok(())
    }

    fn err(&self, e: rusqlite::Error) -> LedgerError {
        LedgerError::sqlite(&self.path, self.busy.as_millis() as u64, e)
    }

    fn write_tx(&mut self) -> Result<Transaction<'_>, LedgerError> {
        let busy = self.busy.as_millis() as u64;
        let path = self.path.clone();
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| LedgerError::sqlite(&path, busy, e))
    }

    /// `PRAGMA integrity_check`: `Ok` when SQLite finds the whole file consistent.
    pub fn integrity_check(&self) -> Result<(), LedgerError> {
        let rows: Vec<String> = {
            let mut st = self.conn.prepare("PRAGMA integrity_check").map_err(|e| self.err(e))?;
            st.query_map([], |r| r.get(0))
                .map_err(|e| self.err(e))?
                .collect::<Result<_, _>>()
                .map_err(|e| self.err(e))?
        };
        let fk: Vec<i64> = {
            let mut st = self.conn.prepare("PRAGMA foreign_key_check").map_err(|e| self.err(e))?;
            st.query_map([], |r| r.get(1)).map(|it| it.filter_map(Result::ok).collect()).map_err(|e| self.err(e))?
        };
        if rows != ["ok"] || !fk.is_empty() {
            return Err(LedgerError::Corrupt {
                path: self.path.clone(),
                message: format!("integrity check: {}; {} foreign-key violations", rows.join("; "), fk.len()),
            });
        }
        Ok(())
    }

    /// Reads a calibration JSON file and records each of its records as a read-out experiment, all
    /// in one transaction. A file already added (same SHA-256) or a record already in the ledger
    /// (same canonical record, from whatever file) is refused, naming the existing experiment, and
    /// nothing is added. Returns the new experiment ids in record order.
    pub fn add_calibration_file(&mut self, path: &Path) -> Result<Vec<i64>, LedgerError> {
        let (records, hash) = read_calibration_file(path)?;
        let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.add_readouts(&records, Some((shown.as_path(), hash.as_str())))
    }

    /// Records readouts (each validated) as read-out experiments in one transaction; `source` is
    /// the file they came from and its SHA-256, when there is one. Duplicates are refused as in
    /// [`Ledger::add_calibration_file`].
    pub fn add_readouts(
        &mut self,
        records: &[LiftTestRecord],
        source: Option<(&Path, &str)>,
    ) -> Result<Vec<i64>, LedgerError> {
        let shown = source.map(|(p, _)| p.to_path_buf()).unwrap_or_else(|| self.path.clone());
        for (i, r) in records.iter().enumerate() {
            check_record(r).map_err(|m| LedgerError::BadRecord { path: shown.clone(), index: i + 1, message: m })?;
        }
        let ledger_path = self.path.clone();
        let tx = self.write_tx()?;
        let sql = |e| LedgerError::sqlite(&ledger_path, 0, e);
        if let Some((_, hash)) = source {
            let existing: Vec<i64> = {
                let mut st =
                    tx.prepare_cached("SELECT id FROM experiments WHERE source_hash = ?1 ORDER BY id").map_err(sql)?;
                st.query_map([hash], |r| r.get(0)).map_err(sql)?.collect::<Result<_, _>>().map_err(sql)?
            };
            if !existing.is_empty() {
                return Err(LedgerError::DuplicateSource {
                    path: shown,
                    hash: hash.to_string(),
                    existing: existing.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "),
                });
            }
        }
        let mut ids = Vec::with_capacity(records.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            let rh = record_hash(r);
            if let Some(&j) = seen.get(&rh) {
                return Err(LedgerError::BadRecord {
                    path: shown,
                    index: i + 1,
                    message: format!("the same readout as record {} of this file", j + 1),
                });
            }
            let dup: Option<i64> = tx
                .prepare_cached("SELECT id FROM experiments WHERE record_hash = ?1")
                .and_then(|mut st| st.query_row([&rh], |row| row.get(0)).optional())
                .map_err(sql)?;
            if let Some(existing) = dup {
                return Err(LedgerError::DuplicateRecord { path: shown, index: i + 1, existing });
            }
            seen.insert(rh.clone(), i);
            let id = insert_readout(&tx, r, &rh, source).map_err(sql)?;
            ids.push(id);
        }
        tx.commit().map_err(sql)?;
        Ok(ids)
    }

    /// Records a planned experiment; returns its id.
    pub fn plan(&mut self, p: &PlannedExperiment) -> Result<i64, LedgerError> {
        if p.start.trim().is_empty() || p.end.trim().is_empty() {
            return Err(LedgerError::Invalid {
                what: "planned experiment".into(),
                message: "start and end must be set".into(),
            });
        }
        let ledger_path = self.path.clone();
        let tx = self.write_tx()?;
        let sql = |e| LedgerError::sqlite(&ledger_path, 0, e);
        let design = p.design.as_ref().map(|d| d.to_string());
        tx.execute(
            "INSERT INTO experiments (status, window_start, window_end, design_json) VALUES ('planned', ?1, ?2, ?3)",
            params![p.start, p.end, design],
        )
        .map_err(sql)?;
        let id = tx.last_insert_rowid();
        insert_children(&tx, id, &p.channels, &p.cells).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(id)
    }

    /// Records planned experiments, each under a key that names it uniquely (for `mmloop loop`: the
    /// loop, the cycle and a hash of the test's content), all in one transaction. A key already in
    /// the ledger is not planned again: its existing experiment id is returned, flagged `false`
    /// (whatever that experiment's status now is). So a cycle interrupted after planning and run
    /// again adds no duplicate rows.
    pub fn plan_keyed(&mut self, items: &[(String, PlannedExperiment)]) -> Result<Vec<(i64, bool)>, LedgerError> {
        for (key, p) in items {
            if key.trim().is_empty() || p.start.trim().is_empty() || p.end.trim().is_empty() {
                return Err(LedgerError::Invalid {
                    what: format!("planned experiment {key:?}"),
                    message: "the plan key, start and end must be set".into(),
                });
            }
        }
        let ledger_path = self.path.clone();
        let tx = self.write_tx()?;
        let sql = |e| LedgerError::sqlite(&ledger_path, 0, e);
        let mut out = Vec::with_capacity(items.len());
        for (key, p) in items {
            let existing: Option<i64> = tx
                .query_row("SELECT id FROM experiments WHERE plan_key = ?1", [key], |r| r.get(0))
                .optional()
                .map_err(sql)?;
            if let Some(id) = existing {
                out.push((id, false));
                continue;
            }
            tx.execute(
                "INSERT INTO experiments (status, window_start, window_end, design_json, plan_key) \
                 VALUES ('planned', ?1, ?2, ?3, ?4)",
                params![p.start, p.end, p.design.as_ref().map(|d| d.to_string()), key],
            )
            .map_err(sql)?;
            let id = tx.last_insert_rowid();
            insert_children(&tx, id, &p.channels, &p.cells).map_err(sql)?;
            out.push((id, true));
        }
        tx.commit().map_err(sql)?;
        Ok(out)
    }

    /// The experiment planned under `key` ([`Ledger::plan_keyed`]), if any.
    pub fn planned_by_key(&self, key: &str) -> Result<Option<i64>, LedgerError> {
        self.conn
            .query_row("SELECT id FROM experiments WHERE plan_key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Records the readout of a planned or running experiment, which becomes `read`. The plan must
    /// have one cell whose geos are the record's and the same channels (both in any order; plan a
    /// multi-cell test as one experiment per cell); the window is taken from the record (a test may
    /// have been extended). Duplicates are refused as in [`Ledger::add_readouts`].
    pub fn attach_readout(
        &mut self,
        id: i64,
        r: &LiftTestRecord,
        source: Option<(&Path, &str)>,
    ) -> Result<(), LedgerError> {
        let shown = source.map(|(p, _)| p.to_path_buf()).unwrap_or_else(|| self.path.clone());
        check_record(r).map_err(|m| LedgerError::BadRecord { path: shown.clone(), index: 1, message: m })?;
        let e = self.experiment(id)?;
        let bad = |message: String| LedgerError::BadTransition {
            path: self.path.clone(),
            id,
            status: e.status.as_str(),
            message,
        };
        if !matches!(e.status, Status::Planned | Status::Running) {
            return Err(bad("only a planned or running experiment can be read out; `add` records new readouts".into()));
        }
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v
        };
        if e.cells.len() != 1 {
            return Err(bad(format!("it has {} cells; a readout attaches to a one-cell experiment", e.cells.len())));
        }
        if sorted(&e.cells[0].geos) != sorted(&r.geos) || sorted(&e.channels) != sorted(&r.channels) {
            return Err(bad(format!(
                "the readout is on channels {:?}, geos {:?}; the plan is on channels {:?}, geos {:?}",
                r.channels, r.geos, e.channels, e.cells[0].geos
            )));
        }
        let rh = record_hash(r);
        let ledger_path = self.path.clone();
        let tx = self.write_tx()?;
        let sql = |e| LedgerError::sqlite(&ledger_path, 0, e);
        // re-check under the write lock: another process may have changed it since
        let status: Option<String> =
            tx.query_row("SELECT status FROM experiments WHERE id = ?1", [id], |x| x.get(0)).optional().map_err(sql)?;
        if !matches!(status.as_deref(), Some("planned" | "running")) {
            return Err(LedgerError::BadTransition {
                path: ledger_path.clone(),
                id,
                status: "changed",
                message: "another process changed it meanwhile; look again with `show`".into(),
            });
        }
        let dup: Option<i64> = tx
            .query_row("SELECT id FROM experiments WHERE record_hash = ?1", [&rh], |x| x.get(0))
            .optional()
            .map_err(sql)?;
        if let Some(existing) = dup {
            return Err(LedgerError::DuplicateRecord { path: shown, index: 1, existing });
        }
        let sets: Vec<String> = READOUT_COLUMNS.iter().enumerate().map(|(i, c)| format!("{c} = ?{}", i + 2)).collect();
        let mut values = vec![rusqlite::types::Value::Integer(id)];
        values.extend(readout_values(r, &rh, source));
        tx.execute(
            &format!(
                "UPDATE experiments SET status = 'read', {}, interval_level = 0.9, read_out_at = {now}, \
                 updated_at = {now} WHERE id = ?1",
                sets.join(", "),
                now = now_sql()
            ),
            rusqlite::params_from_iter(values),
        )
        .map_err(sql)?;
        // channels and geos in the record's order, so the record reads back as it was given
        tx.execute("DELETE FROM experiment_channels WHERE experiment_id = ?1", [id]).map_err(sql)?;
        tx.execute("DELETE FROM experiment_geos WHERE experiment_id = ?1", [id]).map_err(sql)?;
        for (i, c) in r.channels.iter().enumerate() {
            tx.execute(
                "INSERT INTO experiment_channels (experiment_id, position, channel) VALUES (?1, ?2, ?3)",
                params![id, i as i64, c],
            )
            .map_err(sql)?;
        }
        let cell: i64 = tx
            .query_row("SELECT cell FROM experiment_cells WHERE experiment_id = ?1", [id], |x| x.get(0))
            .map_err(sql)?;
        for (i, g) in r.geos.iter().enumerate() {
            tx.execute(
                "INSERT INTO experiment_geos (experiment_id, cell, position, geo) VALUES (?1, ?2, ?3, ?4)",
                params![id, cell, i as i64, g],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// Marks a planned experiment as running.
    pub fn mark_running(&mut self, id: i64) -> Result<(), LedgerError> {
        self.transition(id, |s| match s {
            Status::Planned => Ok(()),
            _ => Err("only a planned experiment can start running".into()),
        }, "UPDATE experiments SET status = 'running', updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1", &[])
    }

    /// Discards an experiment (it stays in the ledger, marked, and no longer calibrates fits).
    /// The reason is required.
    pub fn discard(&mut self, id: i64, why: &str) -> Result<(), LedgerError> {
        if why.trim().is_empty() {
            return Err(LedgerError::Invalid {
                what: "--why".into(),
                message: "say why the experiment is discarded (a non-empty reason is required)".into(),
            });
        }
        self.transition(
            id,
            |s| match s {
                Status::Discarded => Err("it is already discarded".into()),
                _ => Ok(()),
            },
            "UPDATE experiments SET discarded_from = status, status = 'discarded', discard_reason = ?2, \
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1",
            &[why.trim()],
        )
    }

    fn transition(
        &mut self,
        id: i64,
        allowed: impl Fn(Status) -> Result<(), String>,
        update: &str,
        extra: &[&str],
    ) -> Result<(), LedgerError> {
        let ledger_path = self.path.clone();
        let tx = self.write_tx()?;
        let sql = |e| LedgerError::sqlite(&ledger_path, 0, e);
        let status: Option<String> =
            tx.query_row("SELECT status FROM experiments WHERE id = ?1", [id], |r| r.get(0)).optional().map_err(sql)?;
        let Some(status) = status else {
            return Err(LedgerError::NoSuchExperiment { path: ledger_path.clone(), id });
        };
        let st = Status::parse(&status).ok_or_else(|| LedgerError::BadRow {
            path: ledger_path.clone(),
            id,
            message: format!("status {status:?}"),
        })?;
        allowed(st).map_err(|message| LedgerError::BadTransition {
            path: ledger_path.clone(),
            id,
            status: st.as_str(),
            message,
        })?;
        match extra {
            [] => tx.execute(update, params![id]),
            [a, ..] => tx.execute(update, params![id, a]),
        }
        .map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Every experiment, by id.
    pub fn experiments(&self) -> Result<Vec<Experiment>, LedgerError> {
        self.load(None)
    }

    /// One experiment.
    pub fn experiment(&self, id: i64) -> Result<Experiment, LedgerError> {
        self.load(Some(id))?.pop().ok_or_else(|| LedgerError::NoSuchExperiment { path: self.path.clone(), id })
    }

    /// The calibration records of the read-out experiments (discarded ones left out), in id order:
    /// what a fit calibrates on, and what `export --format json` writes.
    pub fn readout_records(&self) -> Result<Vec<LiftTestRecord>, LedgerError> {
        Ok(self
            .experiments()?
            .into_iter()
            .filter(|e| e.status == Status::Read)
            .filter_map(|e| e.readout.map(|r| r.record))
            .collect())
    }

    /// The read-out experiments (discarded ones left out) aged for a fit whose last period (or
    /// `--as-of` date) is `as_of`: each record's SE inflated to `SE · exp(λ t / 2)` by the shortest
    /// half-life of its channels ([`crate::decay::decay_readout`]). Returned with their experiment
    /// ids; errors name the experiment. Readouts whose SE overflowed (over ~1000 half-lives old)
    /// are included, marked by [`crate::decay::DecayedReadout::informative`].
    pub fn decayed_readouts(
        &self,
        as_of: &str,
        unit: crate::decay::TimeUnit,
        half_lives: &crate::decay::HalfLives,
    ) -> Result<Vec<(i64, crate::decay::DecayedReadout)>, LedgerError> {
        let mut out = Vec::new();
        for e in self.experiments()? {
            if e.status != Status::Read {
                continue;
            }
            let Some(r) = e.readout else { continue };
            let d = crate::decay::decay_readout(&r.record, as_of, unit, half_lives)
                .map_err(|source| LedgerError::Decay { path: self.path.clone(), id: e.id, source })?;
            out.push((e.id, d));
        }
        Ok(out)
    }

    fn load(&self, only: Option<i64>) -> Result<Vec<Experiment>, LedgerError> {
        let path = &self.path;
        let sql = |e| self.err(e);
        let filter = if only.is_some() { "WHERE experiment_id = ?1" } else { "WHERE ?1 IS NULL" };
        let mut channels: HashMap<i64, Vec<String>> = HashMap::new();
        {
            let mut st = self
                .conn
                .prepare(&format!(
                    "SELECT experiment_id, channel FROM experiment_channels {filter} ORDER BY experiment_id, position"
                ))
                .map_err(sql)?;
            let mut rows = st.query([only]).map_err(sql)?;
            while let Some(r) = rows.next().map_err(sql)? {
                channels.entry(r.get(0).map_err(sql)?).or_default().push(r.get(1).map_err(sql)?);
            }
        }
        let mut cells: HashMap<i64, Vec<(i64, Cell)>> = HashMap::new();
        {
            let mut st = self
                .conn
                .prepare(&format!(
                    "SELECT experiment_id, cell, name FROM experiment_cells {filter} ORDER BY experiment_id, cell"
                ))
                .map_err(sql)?;
            let mut rows = st.query([only]).map_err(sql)?;
            while let Some(r) = rows.next().map_err(sql)? {
                let name: String = r.get(2).map_err(sql)?;
                cells
                    .entry(r.get(0).map_err(sql)?)
                    .or_default()
                    .push((r.get(1).map_err(sql)?, Cell { name, geos: vec![] }));
            }
        }
        {
            let mut st = self
                .conn
                .prepare(&format!(
                    "SELECT experiment_id, cell, geo FROM experiment_geos {filter} ORDER BY experiment_id, cell, position"
                ))
                .map_err(sql)?;
            let mut rows = st.query([only]).map_err(sql)?;
            while let Some(r) = rows.next().map_err(sql)? {
                let (id, cell, geo): (i64, i64, String) =
                    (r.get(0).map_err(sql)?, r.get(1).map_err(sql)?, r.get(2).map_err(sql)?);
                let c = cells.get_mut(&id).and_then(|v| v.iter_mut().find(|(k, _)| *k == cell)).ok_or_else(|| {
                    LedgerError::BadRow {
                        path: path.clone(),
                        id,
                        message: format!("geo {geo:?} of a missing cell {cell}"),
                    }
                })?;
                c.1.geos.push(geo);
            }
        }
        let where_ = if only.is_some() { "WHERE id = ?1" } else { "WHERE ?1 IS NULL" };
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT id, status, discard_reason, discarded_from, window_start, window_end, design_json, spend_change, \
                 spend_path_json, incremental_kpi, standard_error, kpi_lower, kpi_upper, iroas, iroas_lower, iroas_upper, \
                 estimator, source, source_file, source_hash, record_hash, read_out_at, created_at, updated_at \
                 FROM experiments {where_} ORDER BY id"
            ))
            .map_err(sql)?;
        let mut rows = st.query([only]).map_err(sql)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(sql)? {
            let id: i64 = r.get(0).map_err(sql)?;
            let bad = |m: String| LedgerError::BadRow { path: path.clone(), id, message: m };
            let status: String = r.get(1).map_err(sql)?;
            let status = Status::parse(&status).ok_or_else(|| bad(format!("status {status:?}")))?;
            let discarded_from: Option<String> = r.get(3).map_err(sql)?;
            let discarded_from = match discarded_from {
                Some(s) => Some(Status::parse(&s).ok_or_else(|| bad(format!("discarded_from {s:?}")))?),
                None => None,
            };
            let design: Option<String> = r.get(6).map_err(sql)?;
            let design = match design {
                Some(d) => Some(serde_json::from_str(&d).map_err(|e| bad(format!("design JSON: {e}")))?),
                None => None,
            };
            let chans = channels.remove(&id).unwrap_or_default();
            let cs: Vec<Cell> = cells.remove(&id).unwrap_or_default().into_iter().map(|(_, c)| c).collect();
            let start: String = r.get(4).map_err(sql)?;
            let end: String = r.get(5).map_err(sql)?;
            let kpi: Option<f64> = r.get(9).map_err(sql)?;
            let readout = match kpi {
                None => None,
                Some(incremental_kpi) => {
                    let spend_path: Option<String> = r.get(8).map_err(sql)?;
                    let spend_path: Option<Vec<SpendDelta>> = match spend_path {
                        Some(s) => Some(serde_json::from_str(&s).map_err(|e| bad(format!("spend path JSON: {e}")))?),
                        None => None,
                    };
                    let pair = |a: Option<f64>, b: Option<f64>| a.zip(b);
                    let record = LiftTestRecord {
                        channels: chans.clone(),
                        geos: cs.first().map(|c| c.geos.clone()).unwrap_or_default(),
                        start: start.clone(),
                        end: end.clone(),
                        spend_change: r.get::<_, Option<f64>>(7).map_err(sql)?.unwrap_or(0.0),
                        spend_path,
                        incremental_kpi,
                        standard_error: r.get::<_, Option<f64>>(10).map_err(sql)?.unwrap_or(f64::NAN),
                        estimator: r.get::<_, Option<String>>(16).map_err(sql)?.unwrap_or_default(),
                        source: r.get::<_, Option<String>>(17).map_err(sql)?.unwrap_or_default(),
                    };
                    Some(Readout {
                        record,
                        kpi_interval: pair(r.get(11).map_err(sql)?, r.get(12).map_err(sql)?)
                            .ok_or_else(|| bad("readout without its interval".into()))?,
                        iroas: r.get(13).map_err(sql)?,
                        iroas_interval: pair(r.get(14).map_err(sql)?, r.get(15).map_err(sql)?),
                        source_file: r.get(18).map_err(sql)?,
                        source_hash: r.get(19).map_err(sql)?,
                        record_hash: r.get::<_, Option<String>>(20).map_err(sql)?.unwrap_or_default(),
                        read_out_at: r.get::<_, Option<String>>(21).map_err(sql)?.unwrap_or_default(),
                    })
                }
            };
            out.push(Experiment {
                id,
                status,
                discard_reason: r.get(2).map_err(sql)?,
                discarded_from,
                channels: chans,
                cells: cs,
                start,
                end,
                design,
                readout,
                created_at: r.get(22).map_err(sql)?,
                updated_at: r.get(23).map_err(sql)?,
            });
        }
        Ok(out)
    }

    /// Records a fit; returns its id.
    pub fn record_fit(&mut self, f: &NewFit) -> Result<i64, LedgerError> {
        let ledger_path = self.path.clone();
        let tx = self.write_tx()?;
        let sql = |e| LedgerError::sqlite(&ledger_path, 0, e);
        tx.execute(
            "INSERT INTO fits (config_hash, data_hash, method, diagnostics_json, roi_summary_json, fit_dir) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                f.config_hash,
                f.data_hash,
                f.method,
                f.diagnostics.to_string(),
                f.roi_summary.to_string(),
                f.fit_dir
            ],
        )
        .map_err(sql)?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(sql)?;
        Ok(id)
    }

    /// Every recorded fit, by id.
    pub fn fits(&self) -> Result<Vec<FitEntry>, LedgerError> {
        let sql = |e| self.err(e);
        let mut st = self
            .conn
            .prepare(
                "SELECT id, config_hash, data_hash, method, diagnostics_json, roi_summary_json, fit_dir, created_at \
                 FROM fits ORDER BY id",
            )
            .map_err(sql)?;
        let mut rows = st.query([]).map_err(sql)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(sql)? {
            let id: i64 = r.get(0).map_err(sql)?;
            let json = |i: usize| -> Result<serde_json::Value, LedgerError> {
                let s: String = r.get(i).map_err(sql)?;
                serde_json::from_str(&s).map_err(|e| LedgerError::BadRow {
                    path: self.path.clone(),
                    id,
                    message: format!("fit {id} JSON: {e}"),
                })
            };
            out.push(FitEntry {
                id,
                fit: NewFit {
                    config_hash: r.get(1).map_err(sql)?,
                    data_hash: r.get(2).map_err(sql)?,
                    method: r.get(3).map_err(sql)?,
                    diagnostics: json(4)?,
                    roi_summary: json(5)?,
                    fit_dir: r.get(6).map_err(sql)?,
                },
                created_at: r.get(7).map_err(sql)?,
            });
        }
        Ok(out)
    }

    /// Records what a fit predicted for an experiment's lift, as an out-of-sample prediction (the
    /// fit had not been calibrated on the readout). The fit and the experiment must exist;
    /// a fit predicts each experiment once. Numbers must be finite, `sd ≥ 0` and `q05 ≤ mean ≤ q95`
    /// is not required (a skewed posterior), but `q05 ≤ q95` is.
    pub fn record_prediction(&mut self, p: &Prediction) -> Result<i64, LedgerError> {
        let ids = self.record_predictions(&[(*p, false)])?;
        Ok(ids[0])
    }

    /// Records several predictions in one transaction (all or none), each with its `in_sample`
    /// label: true when the fit had already been calibrated on that readout, so the prediction is
    /// not an out-of-sample check. Checks as [`Ledger::record_prediction`]; a pair (fit,
    /// experiment) repeated within `items` is refused like one already stored.
    pub fn record_predictions(&mut self, items: &[(Prediction, bool)]) -> Result<Vec<i64>, LedgerError> {
        for (p, _) in items {
            if ![p.mean, p.sd, p.q05, p.q95].iter().all(|v| v.is_finite()) || p.sd < 0.0 || p.q05 > p.q95 {
                return Err(LedgerError::Invalid {
                    what: format!("prediction of fit {} for experiment {}", p.fit_id, p.experiment_id),
                    message: format!(
                        "mean {}, sd {}, q05 {}, q95 {}: all must be finite with sd ≥ 0 and q05 ≤ q95",
                        p.mean, p.sd, p.q05, p.q95
                    ),
                });
            }
        }
        let ledger_path = self.path.clone();
        let tx = self.write_tx()?;
        let sql = |e| LedgerError::sqlite(&ledger_path, 0, e);
        let mut ids = Vec::with_capacity(items.len());
        for (p, in_sample) in items {
            let fit: Option<i64> =
                tx.query_row("SELECT id FROM fits WHERE id = ?1", [p.fit_id], |r| r.get(0)).optional().map_err(sql)?;
            if fit.is_none() {
                return Err(LedgerError::NoSuchFit { path: ledger_path.clone(), id: p.fit_id });
            }
            let exp: Option<i64> = tx
                .query_row("SELECT id FROM experiments WHERE id = ?1", [p.experiment_id], |r| r.get(0))
                .optional()
                .map_err(sql)?;
            if exp.is_none() {
                return Err(LedgerError::NoSuchExperiment { path: ledger_path.clone(), id: p.experiment_id });
            }
            let dup: Option<i64> = tx
                .query_row(
                    "SELECT id FROM predictions WHERE fit_id = ?1 AND experiment_id = ?2",
                    [p.fit_id, p.experiment_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql)?;
            if dup.is_some() {
                return Err(LedgerError::DuplicatePrediction {
                    path: ledger_path.clone(),
                    fit: p.fit_id,
                    experiment: p.experiment_id,
                });
            }
            tx.execute(
                "INSERT INTO predictions (fit_id, experiment_id, mean, sd, q05, q95, in_sample) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![p.fit_id, p.experiment_id, p.mean, p.sd, p.q05, p.q95, *in_sample as i64],
            )
            .map_err(sql)?;
            ids.push(tx.last_insert_rowid());
        }
        tx.commit().map_err(sql)?;
        Ok(ids)
    }

    /// Every prediction in the ledger with its label and time, by experiment then fit.
    pub fn all_predictions(&self) -> Result<Vec<PredictionRow>, LedgerError> {
        let sql = |e| self.err(e);
        let mut st = self
            .conn
            .prepare(
                "SELECT fit_id, experiment_id, mean, sd, q05, q95, in_sample, created_at FROM predictions \
                 ORDER BY experiment_id, fit_id",
            )
            .map_err(sql)?;
        st.query_map([], |r| {
            Ok(PredictionRow {
                prediction: Prediction {
                    fit_id: r.get(0)?,
                    experiment_id: r.get(1)?,
                    mean: r.get(2)?,
                    sd: r.get(3)?,
                    q05: r.get(4)?,
                    q95: r.get(5)?,
                },
                in_sample: r.get::<_, i64>(6)? != 0,
                created_at: r.get(7)?,
            })
        })
        .map_err(sql)?
        .collect::<Result<_, _>>()
        .map_err(sql)
    }

    /// Every prediction made for an experiment, oldest fit first.
    pub fn predictions_for(&self, experiment_id: i64) -> Result<Vec<Prediction>, LedgerError> {
        let sql = |e| self.err(e);
        let mut st = self
            .conn
            .prepare("SELECT fit_id, experiment_id, mean, sd, q05, q95 FROM predictions WHERE experiment_id = ?1 ORDER BY fit_id")
            .map_err(sql)?;
        st.query_map([experiment_id], |r| {
            Ok(Prediction {
                fit_id: r.get(0)?,
                experiment_id: r.get(1)?,
                mean: r.get(2)?,
                sd: r.get(3)?,
                q05: r.get(4)?,
                q95: r.get(5)?,
            })
        })
        .map_err(sql)?
        .collect::<Result<_, _>>()
        .map_err(sql)
    }
}

/// Figures derived from a record when it is stored.
struct Derived {
    /// 90 % normal interval of the incremental KPI.
    kpi: (f64, f64),
    iroas: Option<f64>,
    iroas_interval: Option<(f64, f64)>,
    spend_path: Option<String>,
}

impl Derived {
    fn of(r: &LiftTestRecord) -> Self {
        let half = Z90 * r.standard_error;
        let (lo, hi) = (r.incremental_kpi - half, r.incremental_kpi + half);
        let (iroas, iroas_interval) = if r.spend_change != 0.0 {
            let (a, b) = (lo / r.spend_change, hi / r.spend_change);
            (Some(r.incremental_kpi / r.spend_change), Some((a.min(b), a.max(b))))
        } else {
            (None, None)
        };
        // a list of plain structs serialises without error
        let spend_path = r.spend_path.as_ref().map(|p| serde_json::to_string(p).unwrap_or_default());
        Self { kpi: (lo, hi), iroas, iroas_interval, spend_path }
    }
}

/// The experiments-table columns a readout fills, in the order of [`readout_values`]: the one
/// mapping of a record to its row, used when a readout is inserted and when it is attached to a
/// planned experiment.
const READOUT_COLUMNS: [&str; 16] = [
    "window_start",
    "window_end",
    "spend_change",
    "spend_path_json",
    "incremental_kpi",
    "standard_error",
    "kpi_lower",
    "kpi_upper",
    "iroas",
    "iroas_lower",
    "iroas_upper",
    "estimator",
    "source",
    "source_file",
    "source_hash",
    "record_hash",
];

/// The values of [`READOUT_COLUMNS`] for a record (with its derived interval and iROAS), its
/// record hash and the file it came from.
fn readout_values(r: &LiftTestRecord, rh: &str, source: Option<(&Path, &str)>) -> Vec<rusqlite::types::Value> {
    use rusqlite::types::Value;
    let d = Derived::of(r);
    let opt = |v: Option<f64>| v.map_or(Value::Null, Value::Real);
    let text = |v: Option<String>| v.map_or(Value::Null, Value::Text);
    vec![
        Value::Text(r.start.clone()),
        Value::Text(r.end.clone()),
        Value::Real(r.spend_change),
        text(d.spend_path),
        Value::Real(r.incremental_kpi),
        Value::Real(r.standard_error),
        Value::Real(d.kpi.0),
        Value::Real(d.kpi.1),
        opt(d.iroas),
        opt(d.iroas_interval.map(|i| i.0)),
        opt(d.iroas_interval.map(|i| i.1)),
        Value::Text(r.estimator.clone()),
        Value::Text(r.source.clone()),
        text(source.map(|(p, _)| p.display().to_string())),
        text(source.map(|(_, h)| h.to_string())),
        Value::Text(rh.to_string()),
    ]
}

/// Inserts one readout experiment with its channels, its cell and geos.
fn insert_readout(
    tx: &Transaction<'_>,
    r: &LiftTestRecord,
    rh: &str,
    source: Option<(&Path, &str)>,
) -> rusqlite::Result<i64> {
    let holes: Vec<String> = (1..=READOUT_COLUMNS.len()).map(|i| format!("?{i}")).collect();
    let mut st = tx.prepare_cached(&format!(
        "INSERT INTO experiments (status, {}, interval_level, read_out_at) VALUES ('read', {}, 0.9, {})",
        READOUT_COLUMNS.join(", "),
        holes.join(", "),
        now_sql()
    ))?;
    st.execute(rusqlite::params_from_iter(readout_values(r, rh, source)))?;
    let id = tx.last_insert_rowid();
    insert_children(tx, id, &r.channels, &[Cell { name: "test".into(), geos: r.geos.clone() }])?;
    Ok(id)
}

fn insert_children(tx: &Transaction<'_>, id: i64, channels: &[String], cells: &[Cell]) -> rusqlite::Result<()> {
    let mut ch =
        tx.prepare_cached("INSERT INTO experiment_channels (experiment_id, position, channel) VALUES (?1, ?2, ?3)")?;
    for (i, c) in channels.iter().enumerate() {
        ch.execute(params![id, i as i64, c])?;
    }
    let mut ce = tx.prepare_cached("INSERT INTO experiment_cells (experiment_id, cell, name) VALUES (?1, ?2, ?3)")?;
    let mut ge =
        tx.prepare_cached("INSERT INTO experiment_geos (experiment_id, cell, position, geo) VALUES (?1, ?2, ?3, ?4)")?;
    for (k, c) in cells.iter().enumerate() {
        ce.execute(params![id, k as i64, c.name])?;
        for (i, g) in c.geos.iter().enumerate() {
            ge.execute(params![id, k as i64, i as i64, g])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
