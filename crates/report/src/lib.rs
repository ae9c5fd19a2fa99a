//! `mmloop report`: one self-contained HTML file of an output directory — charts as inline SVG (drawn
//! by `plotters`), their numbers a click away in a table, CSS inline, and a content security policy
//! that forbids every fetch, so the page opens offline, prints, and reads on a phone.
//!
//! Every output directory carries mmloop's marker naming the command that wrote it
//! ([`mmloop_data::read_marker`]); [`render`] dispatches on it to the module of that command, which reads
//! the files through their typed readers where they exist (`FitDir`, `DesignRecord`, `LiftTestRecord`)
//! and builds a [`page::Page`]. Adding a command is one module with a `page(dir)` function and one
//! line in [`KINDS`]. A file (or a directory holding `ledger.sqlite`) is read as an experiment
//! ledger: the loop's whole history — experiments, readouts against predictions, ROI over fits,
//! evidence age and decay.
//!
//! ```no_run
//! let report = mmloop_report::render(std::path::Path::new("out/fit"))?;
//! mmloop_report::write(&report, std::path::Path::new("out/fit.html"), &[std::path::Path::new("out/fit")])?;
//! # Ok::<(), mmloop_report::ReportError>(())
//! ```

pub mod chart;
mod design;
mod fit;
mod ledger;
mod lift;
mod loops;
mod optimize;
pub mod page;
mod rank;
mod read;
mod simulate;

use std::path::{Path, PathBuf};

pub use page::GENERATOR;

/// Why a report cannot be made or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "{dir}: no such directory or file; give the output directory of an mmloop command (e.g. the --out of `mmloop fit`) or an experiment ledger"
    )]
    NoDir { dir: PathBuf },
    #[error(
        "{dir}: not an mmloop output directory (no readable {marker} marker); give a directory an mmloop command wrote with --out"
    )]
    NotAnOutput { dir: PathBuf, marker: &'static str },
    #[error("{dir}: written by `mmloop {command}`, which has no report yet; reports exist for: {known}")]
    Unsupported { dir: PathBuf, command: String, known: String },
    #[error("{path}: missing; the {command} output is incomplete — rerun `mmloop {command}` to write it again")]
    Missing { path: PathBuf, command: &'static str },
    #[error("{path}: cannot be read as {what}: {message}; rerun the command that wrote it")]
    Parse { path: PathBuf, what: &'static str, message: String },
    #[error("{path}: {message}")]
    Data { path: PathBuf, message: String },
    #[error("{dir}: {source}")]
    Fit {
        dir: PathBuf,
        #[source]
        source: mmloop_mmm::fitdir::FitDirError,
    },
    #[error("{path}: not a readable experiment ledger: {message}")]
    Ledger { path: PathBuf, message: String },
    #[error("{dir}: {message}")]
    Chart { dir: PathBuf, message: String },
    #[error("rendering the page: {0}")]
    Template(String),
    #[error(
        "{path}: the file exists and is not a report mmloop wrote; name a new file (mmloop replaces only what it wrote)"
    )]
    Foreign { path: PathBuf },
    #[error(transparent)]
    Write(#[from] mmloop_data::DataError),
}

/// A rendered report.
#[derive(Debug, Clone)]
pub struct Report {
    /// The command whose output it shows.
    pub kind: String,
    /// The element ids of its charts, in page order.
    pub charts: Vec<String>,
    pub html: String,
}

/// One kind of output: the command named in the marker, and the function that builds its page.
struct Kind {
    command: &'static str,
    page: fn(&Path) -> Result<page::Page, ReportError>,
}

/// Every reportable command.
const KINDS: &[Kind] = &[
    Kind { command: "fit", page: fit::page },
    Kind { command: "lift", page: lift::page },
    Kind { command: "design", page: design::page },
    Kind { command: "optimize", page: optimize::optimize_page },
    Kind { command: "scenario", page: optimize::scenario_page },
    Kind { command: "rank", page: rank::page },
    Kind { command: "loop", page: loops::cycle_page },
    Kind { command: "simulate", page: simulate::page },
];

/// The commands whose outputs [`render`] can report.
pub fn supported_commands() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.command).collect()
}

/// The report of output directory `dir` (a loop directory: the history of its cycles, with its
/// ledger's experiments when it keeps `ledger.sqlite`), or of an experiment ledger — `dir` a ledger
/// file, or a directory holding `ledger.sqlite` — as the loop's whole history from the ledger.
pub fn render(dir: &Path) -> Result<Report, ReportError> {
    let (command, page) = if dir.is_file() {
        ("ledger", ledger::page(dir)?)
    } else if dir.join(mmloop_loop::cycle::LOOP_MARKER).is_file() {
        // a loop directory (`mmloop loop --out DIR`): its cycles' history
        ("loop", loops::loop_page(dir)?)
    } else if dir.is_dir() && mmloop_data::read_marker(dir).is_none() && dir.join(ledger::LEDGER_IN_DIR).is_file() {
        // a directory that keeps a ledger (and is no command's output): the loop's history from it
        ("ledger", ledger::page(&dir.join(ledger::LEDGER_IN_DIR))?)
    } else if dir.is_dir() {
        let marker = mmloop_data::read_marker(dir)
            .ok_or_else(|| ReportError::NotAnOutput { dir: dir.to_path_buf(), marker: mmloop_data::MARKER })?;
        let kind = KINDS.iter().find(|k| k.command == marker.command).ok_or_else(|| ReportError::Unsupported {
            dir: dir.to_path_buf(),
            command: marker.command.clone(),
            known: supported_commands().join(", "),
        })?;
        (kind.command, (kind.page)(dir)?)
    } else {
        return Err(ReportError::NoDir { dir: dir.to_path_buf() });
    };
    let charts = page
        .sections
        .iter()
        .flat_map(|s| &s.blocks)
        .filter_map(|b| match b {
            page::Block::Chart(c) => Some(c.id.clone()),
            _ => None,
        })
        .collect();
    let html = page::render_html(&page).map_err(|e| ReportError::Template(e.to_string()))?;
    Ok(Report { kind: command.to_string(), charts, html })
}

/// Where the report of `dir` goes by default: `DIR.html` beside the directory (never inside it: the
/// output directory holds only what its command wrote, so the command can replace it later).
pub fn default_path(dir: &Path) -> PathBuf {
    let trimmed: PathBuf = dir.components().collect();
    let mut s = trimmed.into_os_string();
    s.push(".html");
    PathBuf::from(s)
}

/// Whether the file at `path` is a report mmloop wrote (its head names [`GENERATOR`]).
pub fn is_report(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = vec![0u8; 4096];
    let Ok(mut f) = std::fs::File::open(path) else { return false };
    let n = f.read(&mut head).unwrap_or(0);
    let head = String::from_utf8_lossy(&head[..n]);
    head.contains(&format!("<meta name=\"generator\" content=\"{GENERATOR}"))
}

/// Writes `report` to `out` atomically. Refuses to replace a file that is not an earlier report, and to
/// write onto or inside any of `inputs` (the output directory it shows, above all).
pub fn write(report: &Report, out: &Path, inputs: &[&Path]) -> Result<(), ReportError> {
    if out.is_file() && !is_report(out) {
        return Err(ReportError::Foreign { path: out.to_path_buf() });
    }
    mmloop_data::write_atomic_for(out, report.html.as_bytes(), inputs)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_is_beside_the_directory() {
        assert_eq!(default_path(Path::new("out/fit/")), PathBuf::from("out/fit.html"));
        assert_eq!(default_path(Path::new("fit")), PathBuf::from("fit.html"));
    }

    #[test]
    fn not_an_output_and_unknown_commands_are_named() {
        let d = tempfile::tempdir().unwrap();
        let e = render(d.path()).unwrap_err().to_string();
        assert!(e.contains("not an mmloop output directory") && e.contains(".mmloop-output"), "{e}");
        std::fs::write(d.path().join(mmloop_data::MARKER), br#"{"written_by":"mmloop","command":"frobnicate"}"#)
            .unwrap();
        let e = render(d.path()).unwrap_err().to_string();
        assert!(e.contains("mmloop frobnicate") && e.contains("fit, lift"), "{e}");
        let e = render(&d.path().join("nope")).unwrap_err().to_string();
        assert!(e.contains("no such directory or file"), "{e}");
        let f = d.path().join("notes.txt");
        std::fs::write(&f, "not a ledger").unwrap();
        let e = render(&f).unwrap_err().to_string();
        assert!(e.contains("not a readable experiment ledger"), "{e}");
    }

    #[test]
    fn write_never_replaces_a_foreign_file_and_replaces_its_own() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("r.html");
        std::fs::write(&out, "<html>mine</html>").unwrap();
        let r = Report {
            kind: "fit".into(),
            charts: vec![],
            html: format!("<!DOCTYPE html><meta name=\"generator\" content=\"{GENERATOR} 0\">"),
        };
        let e = write(&r, &out, &[]).unwrap_err().to_string();
        assert!(e.contains("not a report mmloop wrote"), "{e}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "<html>mine</html>");
        std::fs::remove_file(&out).unwrap();
        write(&r, &out, &[]).unwrap();
        write(&r, &out, &[]).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), r.html);
        // never inside the directory it reports
        let e = write(&r, &d.path().join("sub/r.html"), &[&d.path().join("sub")]).unwrap_err().to_string();
        assert!(e.contains("input"), "{e}");
    }
}
