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
}

pub(crate) fn design_err(what: impl Into<String>, message: impl Into<String>) -> GeoLiftError {
    GeoLiftError::BadDesign { what: what.into(), message: message.into() }
}

pub(crate) fn est_err(estimator: &str, message: impl Into<String>) -> GeoLiftError {
    GeoLiftError::Estimation { estimator: estimator.to_string(), message: message.into() }
}
