use std::path::PathBuf;

/// Everything that can go wrong with a ledger. Every variant names the ledger or input file and,
/// where it applies, the experiment id or the 1-based record index, and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("{path}: cannot read or write: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{path}: no ledger at this path; `mmloop ledger {path} add calibration.json` creates one")]
    Missing { path: PathBuf },

    #[error(
        "{path}: not an mmloop ledger: {why}. The file was not modified; give the path of a ledger (or a new path to create one)"
    )]
    NotALedger { path: PathBuf, why: String },

    #[error(
        "{path}: the ledger has schema version {found}, newer than this mmloop understands (version {supported}); \
         use the newer mmloop that wrote it. The file was not modified"
    )]
    NewerSchema { path: PathBuf, found: i64, supported: i64 },

    #[error("{path}: the ledger is corrupted ({message}); restore it from a backup or export what still reads")]
    Corrupt { path: PathBuf, message: String },

    #[error(
        "{path}: another process is writing to the ledger and did not finish within {waited_ms} ms; nothing was \
         written, try again when it has finished"
    )]
    Busy { path: PathBuf, waited_ms: u64 },

    #[error("{path}: cannot parse as calibration JSON: {message}")]
    BadJson { path: PathBuf, message: String },

    #[error("{path}: record {index}: {message}")]
    BadRecord { path: PathBuf, index: usize, message: String },

    #[error(
        "{path}: this file (sha256 {hash}) was already added to the ledger as experiment(s) {existing}; \
         nothing was added (`mmloop ledger LEDGER show ID` shows them)"
    )]
    DuplicateSource { path: PathBuf, hash: String, existing: String },

    #[error(
        "{path}: record {index} is the same readout as experiment {existing} already in the ledger; nothing from \
         this file was added"
    )]
    DuplicateRecord { path: PathBuf, index: usize, existing: i64 },

    #[error("{path}: no experiment {id}; `mmloop ledger {path} list` shows the ids")]
    NoSuchExperiment { path: PathBuf, id: i64 },

    #[error("{path}: no fit {id}")]
    NoSuchFit { path: PathBuf, id: i64 },

    #[error("{path}: experiment {id} is {status}: {message}")]
    BadTransition { path: PathBuf, id: i64, status: &'static str, message: String },

    #[error(
        "{path}: fit {fit} already has a prediction for experiment {experiment}; predictions are made once, before calibrating"
    )]
    DuplicatePrediction { path: PathBuf, fit: i64, experiment: i64 },

    #[error("{what}: {message}")]
    Invalid { what: String, message: String },

    #[error(
        "{path}: stored row of experiment {id} cannot be read back: {message}; the ledger may have been edited by hand"
    )]
    BadRow { path: PathBuf, id: i64, message: String },

    #[error("{path}: experiment {id}: {source}")]
    Decay { path: PathBuf, id: i64, source: crate::decay::DecayError },

    #[error("{path}: SQLite error: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
}

impl LedgerError {
    /// Maps an SQLite error on `path` to a variant the user can act on: busy → [`LedgerError::Busy`],
    /// corrupt or not-a-database → [`LedgerError::Corrupt`].
    pub(crate) fn sqlite(path: &std::path::Path, waited_ms: u64, e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        match e.sqlite_error_code() {
            Some(C::DatabaseBusy | C::DatabaseLocked) => Self::Busy { path: path.to_path_buf(), waited_ms },
            Some(C::DatabaseCorrupt | C::NotADatabase) => {
                Self::Corrupt { path: path.to_path_buf(), message: e.to_string() }
            }
            _ => Self::Sqlite { path: path.to_path_buf(), source: e },
        }
    }
}
