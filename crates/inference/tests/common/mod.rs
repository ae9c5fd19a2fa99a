//! Shared helpers for the integration tests: locating the reference datasets.
#![allow(dead_code)]

use std::path::PathBuf;

/// The shared reference datasets folder (`$MMLOOP_DATASETS`, else `../shared/datasets` beside the
/// repository root), or `None` with a message on stderr so the calling test can skip visibly.
pub fn datasets_dir(test: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("MMLOOP_DATASETS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets"),
    };
    if dir.join("inference").is_dir() {
        Some(dir.join("inference"))
    } else {
        eprintln!(
            "SKIPPED {test}: reference datasets not found at {} (set MMLOOP_DATASETS to the shared/datasets folder)",
            dir.display()
        );
        None
    }
}
