//! The ledger's SQLite schema, its versions and the checks made before a file is touched.
//!
//! A ledger is an SQLite database whose header carries our `application_id` ([`APPLICATION_ID`])
//! and whose `user_version` is the schema version. Migration `i` (0-based) of [`MIGRATIONS`] takes a
//! ledger from version `i` to `i + 1`; they run in order, all in one transaction.

use super::LedgerError;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::io::Read;
use std::path::Path;

/// `PRAGMA application_id` of an mmloop ledger: the bytes "MMLG".
pub const APPLICATION_ID: i64 = 0x4D4D_4C47;

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Ordered migrations: entry `i` takes the schema from version `i` to `i + 1`.
pub(super) const MIGRATIONS: [&str; 3] = [
    r#"
CREATE TABLE experiments (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    status          TEXT NOT NULL CHECK (status IN ('planned', 'running', 'read', 'discarded')),
    discard_reason  TEXT CHECK (discard_reason IS NULL OR length(trim(discard_reason)) > 0),
    discarded_from  TEXT CHECK (discarded_from IS NULL OR discarded_from IN ('planned', 'running', 'read')),
    window_start    TEXT NOT NULL,
    window_end      TEXT NOT NULL,
    design_json     TEXT CHECK (design_json IS NULL OR json_valid(design_json)),
    spend_change    REAL,
    spend_path_json TEXT CHECK (spend_path_json IS NULL OR json_valid(spend_path_json)),
    incremental_kpi REAL,
    standard_error  REAL CHECK (standard_error IS NULL OR standard_error > 0),
    kpi_lower       REAL,
    kpi_upper       REAL,
    iroas           REAL,
    iroas_lower     REAL,
    iroas_upper     REAL,
    interval_level  REAL,
    estimator       TEXT,
    source          TEXT,
    source_file     TEXT,
    source_hash     TEXT,
    record_hash     TEXT UNIQUE,
    read_out_at     TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CHECK ((status = 'discarded') = (discard_reason IS NOT NULL)),
    CHECK ((status = 'discarded') = (discarded_from IS NOT NULL)),
    -- a readout is all there or not at all
    CHECK ((incremental_kpi IS NULL) = (standard_error IS NULL)
       AND (incremental_kpi IS NULL) = (record_hash IS NULL)
       AND (incremental_kpi IS NULL) = (spend_change IS NULL)
       AND (incremental_kpi IS NULL) = (read_out_at IS NULL)),
    CHECK (status NOT IN ('read') OR incremental_kpi IS NOT NULL)
);
CREATE INDEX experiments_source_hash ON experiments (source_hash);

CREATE TABLE experiment_channels (
    experiment_id INTEGER NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    channel       TEXT NOT NULL,
    PRIMARY KEY (experiment_id, position)
) WITHOUT ROWID;
CREATE INDEX experiment_channels_channel ON experiment_channels (channel);

CREATE TABLE experiment_cells (
    experiment_id INTEGER NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    cell          INTEGER NOT NULL,
    name          TEXT NOT NULL,
    PRIMARY KEY (experiment_id, cell)
) WITHOUT ROWID;

CREATE TABLE experiment_geos (
    experiment_id INTEGER NOT NULL,
    cell          INTEGER NOT NULL,
    position      INTEGER NOT NULL,
    geo           TEXT NOT NULL,
    PRIMARY KEY (experiment_id, cell, position),
    FOREIGN KEY (experiment_id, cell) REFERENCES experiment_cells (experiment_id, cell) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE fits (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    config_hash      TEXT NOT NULL,
    data_hash        TEXT NOT NULL,
    method           TEXT NOT NULL,
    diagnostics_json TEXT NOT NULL CHECK (json_valid(diagnostics_json)),
    roi_summary_json TEXT NOT NULL CHECK (json_valid(roi_summary_json)),
    fit_dir          TEXT,
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE predictions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    fit_id        INTEGER NOT NULL REFERENCES fits (id),
    experiment_id INTEGER NOT NULL REFERENCES experiments (id),
    mean          REAL NOT NULL,
    sd            REAL NOT NULL CHECK (sd >= 0),
    q05           REAL NOT NULL,
    q95           REAL NOT NULL CHECK (q05 <= q95),
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (fit_id, experiment_id)
);
"#,
    // 2: a prediction says whether the fit had already been calibrated on that readout (then it
    // is not an out-of-sample check and is labelled in-sample, never counted as one)
    r#"
ALTER TABLE predictions ADD COLUMN in_sample INTEGER NOT NULL DEFAULT 0 CHECK (in_sample IN (0, 1));
"#,
    // 3: a test planned by `mmloop loop` carries its plan key (loop, cycle and content hash), so a
    // cycle re-run after an interruption finds the tests it already planned instead of adding them again
    r#"
ALTER TABLE experiments ADD COLUMN plan_key TEXT CHECK (plan_key IS NULL OR length(plan_key) > 0);
CREATE UNIQUE INDEX experiments_plan_key ON experiments (plan_key) WHERE plan_key IS NOT NULL;
"#,
];

/// What the first 100 bytes of an existing file say.
pub(super) enum Preflight {
    /// No file: a ledger may be created.
    Missing,
    /// A file of zero bytes: what SQLite leaves when a process dies before the first commit.
    Empty,
    /// An SQLite database with our application id.
    Ours,
}

/// Reads the file header without SQLite, so that a file that is not ours is never opened by SQLite
/// (which could roll back a hot journal or checkpoint a WAL into it).
pub(super) fn preflight(path: &Path) -> Result<Preflight, LedgerError> {
    let io = |e| LedgerError::Io { path: path.to_path_buf(), source: e };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Preflight::Missing),
        Err(e) => return Err(io(e)),
    };
    let not = |why: String| LedgerError::NotALedger { path: path.to_path_buf(), why };
    if meta.is_dir() {
        return Err(not("it is a directory".into()));
    }
    if meta.len() == 0 {
        return Ok(Preflight::Empty);
    }
    let mut head = Vec::with_capacity(100);
    std::fs::File::open(path).map_err(io)?.take(100).read_to_end(&mut head).map_err(io)?;
    if head.len() < 100 || &head[..16] != b"SQLite format 3\0" {
        return Err(not("it is not an SQLite database".into()));
    }
    let app = i64::from(u32::from_be_bytes([head[68], head[69], head[70], head[71]]));
    if app != APPLICATION_ID {
        return Err(not(format!(
            "it is an SQLite database of another application (application_id {app:#010x}, a ledger has {APPLICATION_ID:#010x})"
        )));
    }
    // the header's copy of user_version; a newer schema still in the WAL is caught after opening
    let version = i64::from(u32::from_be_bytes([head[60], head[61], head[62], head[63]]));
    if version > SCHEMA_VERSION {
        return Err(LedgerError::NewerSchema { path: path.to_path_buf(), found: version, supported: SCHEMA_VERSION });
    }
    Ok(Preflight::Ours)
}

/// Checks an existing ledger through a read-only connection (nothing can be written through it):
/// integrity, application id and schema version as SQLite sees them, WAL included.
pub(super) fn probe_read_only(path: &Path) -> Result<(), LedgerError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match Connection::open_with_flags(path, flags) {
        Ok(c) => c,
        // a read-only connection cannot recover a hot journal left by a killed writer: the
        // read-write open below does that (the file is ours, the preflight checked its header)
        Err(_) => return Ok(()),
    };
    let version: i64 = match conn.query_row("PRAGMA user_version", [], |r| r.get(0)) {
        Ok(v) => v,
        Err(e) => {
            return match LedgerError::sqlite(path, 0, e) {
                c @ LedgerError::Corrupt { .. } => Err(c),
                // busy, or a hot journal only a writer can recover: the read-write open re-checks
                _ => Ok(()),
            };
        }
    };
    if version > SCHEMA_VERSION {
        return Err(LedgerError::NewerSchema { path: path.to_path_buf(), found: version, supported: SCHEMA_VERSION });
    }
    quick_check(&conn, path)?;
    if version == SCHEMA_VERSION {
        check_tables(&conn, path)?;
    }
    Ok(())
}

/// The tables of the current schema.
const TABLES: [&str; 6] =
    ["experiments", "experiment_channels", "experiment_cells", "experiment_geos", "fits", "predictions"];

/// A file with our application id and version must have our tables: otherwise it is someone
/// else's database that happens to carry the same id.
pub(super) fn check_tables(conn: &Connection, path: &Path) -> Result<(), LedgerError> {
    let mut missing = Vec::new();
    for t in TABLES {
        let n: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1", [t], |r| r.get(0))
            .map_err(|e| LedgerError::sqlite(path, 0, e))?;
        if n == 0 {
            missing.push(t);
        }
    }
    if !missing.is_empty() {
        return Err(LedgerError::NotALedger {
            path: path.to_path_buf(),
            why: format!("it carries the ledger's application id but lacks the tables {}", missing.join(", ")),
        });
    }
    Ok(())
}

/// `PRAGMA quick_check`: the b-trees and records are well formed.
pub(super) fn quick_check(conn: &Connection, path: &Path) -> Result<(), LedgerError> {
    let res: String =
        conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0)).map_err(|e| LedgerError::sqlite(path, 0, e))?;
    if res != "ok" {
        return Err(LedgerError::Corrupt { path: path.to_path_buf(), message: res });
    }
    Ok(())
}

/// Brings an open connection to the current schema: creates the tables in an empty database,
/// migrates an older ledger, refuses a foreign or newer one. One write transaction, taken only
/// when something must change.
pub(super) fn init_or_migrate(conn: &mut Connection, path: &Path, waited_ms: u64) -> Result<(), LedgerError> {
    let sql = |e| LedgerError::sqlite(path, waited_ms, e);
    let read = |c: &Connection| -> rusqlite::Result<(i64, i64, i64)> {
        // a blank database (no schema objects) is one this code created or a zero-byte file: the
        // preflight refused every other file before SQLite opened it
        let objects: i64 = c.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        let app: i64 = c.query_row("PRAGMA application_id", [], |r| r.get(0))?;
        let ver: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        Ok((objects, app, ver))
    };
    let check = |(objects, app, ver): (i64, i64, i64)| -> Result<bool, LedgerError> {
        if objects == 0 {
            return Ok(true);
        }
        if app != APPLICATION_ID {
            return Err(LedgerError::NotALedger {
                path: path.to_path_buf(),
                why: format!("it is an SQLite database of another application (application_id {app:#010x})"),
            });
        }
        if ver > SCHEMA_VERSION {
            return Err(LedgerError::NewerSchema { path: path.to_path_buf(), found: ver, supported: SCHEMA_VERSION });
        }
        Ok(ver < SCHEMA_VERSION)
    };
    if !check(read(conn).map_err(sql)?)? {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
    // re-read under the write lock: another process may have created or migrated it meanwhile
    let state = read(&tx).map_err(sql)?;
    if check(state)? {
        let from = if state.0 == 0 { 0 } else { state.2 };
        if from == 0 {
            tx.pragma_update(None, "application_id", APPLICATION_ID).map_err(sql)?;
        }
        for m in &MIGRATIONS[from as usize..] {
            tx.execute_batch(m).map_err(sql)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(sql)?;
    }
    tx.commit().map_err(sql)
}
