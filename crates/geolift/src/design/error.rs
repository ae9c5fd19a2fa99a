//! Errors of experiment design. Every variant names the option or geo, says what is wrong and what to do.

use crate::error::GeoLiftError;

/// Everything that can go wrong while designing a geo experiment.
#[derive(Debug, thiserror::Error)]
pub enum DesignError {
    #[error(transparent)]
    GeoLift(#[from] GeoLiftError),

    #[error(
        "--n-treated: asked for {requested} treated geos but only {available} can be treated ({geos} geos in the data, {excluded} excluded from treatment, at least {min_controls} must stay as controls). Lower --n-treated or shorten --exclude"
    )]
    TooManyTreated { requested: usize, available: usize, geos: usize, excluded: usize, min_controls: usize },

    #[error(
        "--duration: a {duration}-period test over {windows} rolling windows {step} periods apart needs at least {needed} periods ({duration} test + ({windows} − 1) × {step} window shifts + {min_pre} pre-period), but the history has {periods}. Shorten the test, use fewer --windows or a smaller --step, or supply more history"
    )]
    DurationTooLong { duration: usize, windows: usize, step: usize, min_pre: usize, needed: usize, periods: usize },

    #[error("{option}: geo {geo:?} is not in the data{hint}. Check the spelling (geos are matched case-insensitively)")]
    UnknownGeo { option: String, geo: String, hint: String },

    #[error("no candidate design meets the constraints: {reason}. Relax the constraints")]
    NoCandidate { reason: String },

    #[error("{option}: {message}")]
    BadOption { option: String, message: String },

    #[error("{path}: cannot read as a design record (design.json written by `mmloop design`): {message}")]
    BadRecordFile { path: std::path::PathBuf, message: String },

    #[error(
        "the simulation of treating {treated} for {duration} periods gave a non-finite {what}. Likely culprit: a treated set whose counterfactual KPI sums to 0 over the test (all-zero or cancelling series) or extreme values; check those geos or exclude them with --exclude"
    )]
    NonFinite { treated: String, duration: usize, what: String },
}

pub(crate) fn bad(option: &str, message: impl Into<String>) -> DesignError {
    DesignError::BadOption { option: option.into(), message: message.into() }
}
