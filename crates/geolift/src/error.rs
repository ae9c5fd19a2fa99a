//! Errors of the geo-lift crate. Every variant says what is wrong, where, and what to do.

use mmloop_data::DataError;

/// Everything that can go wrong while loading a panel, setting up a design or fitting an estimator.
#[derive(Debug, thiserror::Error)]
pub enum GeoLiftError {
    #[error(transparent)]
    Data(#[from] DataError),

    #[error(
        "{source_name}: geo {geo:?} appears twice at time {time} (rows {first_row} and {second_row}). Each (time, geo) pair must appear once: aggregate or drop the duplicate"
    )]
    DuplicateRow { source_name: String, geo: String, time: String, first_row: usize, second_row: usize },

    #[error(
        "{source_name}: the panel is unbalanced: {missing} (time, geo) rows are missing, e.g. geo {geo:?} at time {time}. Every geo needs a row for every time: fill the gaps or drop the geo"
    )]
    MissingRows { source_name: String, missing: usize, geo: String, time: String },

    #[error("{source_name}: column {column:?} is not finite for geo {geo:?} at time {time}. Fix or drop that row")]
    NonFinite { source_name: String, column: String, geo: String, time: String },

    #[error("treated geo {geo:?} is not in the data{hint}. Check the spelling in --treated / --cell")]
    UnknownGeo { geo: String, hint: String },

    #[error("{what}: {message}")]
    BadDesign { what: String, message: String },

    #[error(
        "{estimator}: the pre-period has {have} periods but at least {need} are needed. Use an earlier data start or a later test start"
    )]
    PreTooShort { estimator: String, have: usize, need: usize },

    #[error("{estimator}: {message}")]
    Estimation { estimator: String, message: String },

    #[error(
        "{source_name}: column {column:?} holds {value:e} for geo {geo:?} at time {time}; values beyond ±{limit:e} overflow when squared (sums of squares, variances) and cannot be estimated with. This is almost certainly a typo or a unit error: fix that cell"
    )]
    ValueTooLarge { source_name: String, column: String, geo: String, time: String, value: f64, limit: f64 },
    /// `detail` says which geos are treated when, e.g. `geo "a" is treated from 2 to 3, geo "b" from 3 to 3`.

    #[error(
        "--treatment-col: staggered or interrupted treatment: {detail}. SC, ASCM, SDID, DiD and TBR need one common test window: run `--estimator twfe` (two-way fixed effects with an event study, which handles staggered adoption), or split the test into cells with --cell"
    )]
    StaggeredAdoption { detail: String },

    #[error(
        "{estimator}: the {what} came out {value} (not a finite number). Likely culprit: {culprit}. Nothing was written; check that cell or the inputs' scale"
    )]
    NonFiniteResult { estimator: String, what: String, value: f64, culprit: String },

    #[error(
        "{estimator}: {source_name} has {missing} missing (time, geo) cells (e.g. geo {geo:?} at time {time}) and this estimator needs every geo at every time. Options: use --estimator tbr (aggregates the groups and copes with gaps), drop the geos with gaps from the file, or fill the gaps explicitly (e.g. with 0 where no sale means zero) and rerun"
    )]
    Gaps { estimator: String, source_name: String, missing: usize, geo: String, time: String },

    /// `detail` says what would be allocated, how much it would take, the limit and what to do.
    #[error("{option}: {detail}")]
    ResourceLimit { option: String, detail: String },
}

/// Largest absolute value accepted in a panel. Squares of larger values overflow f64 (≈1.8e308)
/// once a few are summed, which turns standard errors and fit criteria into `inf`; no real KPI or
/// spend comes near it.
pub const MAX_ABS_VALUE: f64 = 1e150;

/// Memory any single buffer sized by a user option (permutations, replications) may take: 1 GiB.
pub const MEMORY_LIMIT_BYTES: u64 = 1 << 30;

/// Human-readable byte count (binary units).
pub fn fmt_bytes(b: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{v:.0} {}", UNITS[i]) } else { format!("{v:.1} {}", UNITS[i]) }
}

/// Checks that `count` items of `item_bytes` each fit in [`MEMORY_LIMIT_BYTES`] (with overflow-safe
/// arithmetic: the product is formed in f64, which cannot overflow for usize inputs). `per` names one
/// item for the message (e.g. "permutation of 105 periods"), `max_hint` says what to lower.
pub fn check_memory(option: &str, value: usize, count: f64, item_bytes: f64, what: &str) -> Result<(), GeoLiftError> {
    let need = count * item_bytes;
    if need > MEMORY_LIMIT_BYTES as f64 {
        let max = (MEMORY_LIMIT_BYTES as f64 / item_bytes * (value as f64 / count.max(1.0))).floor();
        return Err(GeoLiftError::ResourceLimit {
            option: option.into(),
            detail: format!(
                "{value} means {what}, which would need {} of memory, more than the limit of {}. Use {option} {max:.0} or less",
                fmt_bytes(need),
                fmt_bytes(MEMORY_LIMIT_BYTES as f64)
            ),
        });
    }
    Ok(())
}

pub(crate) fn design_err(what: impl Into<String>, message: impl Into<String>) -> GeoLiftError {
    GeoLiftError::BadDesign { what: what.into(), message: message.into() }
}

pub(crate) fn est_err(estimator: &str, message: impl Into<String>) -> GeoLiftError {
    GeoLiftError::Estimation { estimator: estimator.to_string(), message: message.into() }
}
