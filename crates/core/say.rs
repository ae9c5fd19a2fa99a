//! What every command says when it has written its outputs: the files, and the natural next step.

use std::path::Path;

/// Prints (to stderr, beside the progress lines) `wrote DIR: a.json, b.csv` with the files the
/// output's `.mmloop-output` marker lists, then each next command on a `next:` line.
pub fn wrote(dir: &Path, next: &[String]) {
    let files = mmloop_data::read_marker(dir).map(|m| m.files).unwrap_or_default();
    if files.is_empty() {
        eprintln!("wrote {}", dir.display());
    } else {
        eprintln!("wrote {}: {}", dir.display(), files.join(", "));
    }
    for n in next {
        eprintln!("next: {n}");
    }
}

/// A path as the user would type it in the next command (quoted when it holds a space).
pub fn arg(p: &Path) -> String {
    let s = p.display().to_string();
    if s.contains(char::is_whitespace) { format!("{s:?}") } else { s }
}
