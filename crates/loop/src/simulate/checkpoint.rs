//! Resuming an interrupted simulation. A 100-world run takes the better part of an hour; when it
//! is killed, the worlds already finished should not be run again.
//!
//! Each finished world's rows are appended to a checkpoint file next to the output directory
//! (`.NAME.simulate-checkpoint.jsonl` beside `NAME`), one JSON line per world, flushed to disk
//! before the next is written. The first line identifies the file as mmloop's and fingerprints
//! every setting but the number of worlds ([`fingerprint`]); worlds are independent, so a run with
//! the same settings and more worlds (`--worlds 100` after `--worlds 40`) reuses the finished ones
//! too. A re-run reads the file, skips the worlds in it and produces exactly the results an
//! uninterrupted run would (rows are stored with their floats exact, NaN and infinities included).
//! A line cut short by the kill is ignored (its world runs again). The CLI removes the file once
//! the output directory is committed.
//!
//! A file at the checkpoint's path that mmloop did not write is never touched: the run stops with
//! an error naming it. One that mmloop wrote for other settings is replaced, and the caller is told.

use super::{Row, SimError, SimSettings};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What the first line of a checkpoint says.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Header {
    written_by: String,
    kind: String,
    fingerprint: String,
}

const KIND: &str = "simulate-checkpoint";

/// One finished world.
#[derive(Debug, Serialize, Deserialize)]
struct WorldLine {
    world: usize,
    rows: Vec<Row>,
}

/// Every setting that changes a world's rows (all but `worlds`), as one string: the settings'
/// `Debug` form, whose floats print exactly.
pub fn fingerprint(settings: &SimSettings) -> String {
    format!("{:?}", SimSettings { worlds: 0, ..settings.clone() })
}

/// An open checkpoint: the worlds found in it and the file to append to.
#[derive(Debug)]
pub struct Checkpoint {
    path: PathBuf,
    file: Mutex<std::fs::File>,
    /// Rows of the worlds finished earlier, by world index (only those below `settings.worlds`
    /// are used).
    pub done: BTreeMap<usize, Vec<Row>>,
    /// Why an existing checkpoint was not used, when it was not (other settings).
    pub replaced: Option<String>,
}

/// `.NAME.simulate-checkpoint.jsonl` next to the output directory `out`.
pub fn path_for(out: &Path) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    parent.join(format!(".{name}.{KIND}.jsonl"))
}

fn io_err(path: &Path, what: &str, e: impl std::fmt::Display) -> SimError {
    SimError::Output(format!("{what} the checkpoint {}: {e}", path.display()))
}

impl Checkpoint {
    /// Opens (or starts) the checkpoint of output directory `out` for `settings`.
    pub fn open(out: &Path, settings: &SimSettings) -> Result<Checkpoint, SimError> {
        let path = path_for(out);
        let header = Header { written_by: "mmloop".into(), kind: KIND.into(), fingerprint: fingerprint(settings) };
        let mut done = BTreeMap::new();
        let mut replaced = None;
        let mut keep = false;
        if path.exists() {
            let f = std::fs::File::open(&path).map_err(|e| io_err(&path, "reading", e))?;
            let mut lines = std::io::BufReader::new(f).lines();
            let first = lines.next().transpose().map_err(|e| io_err(&path, "reading", e))?;
            let found: Option<Header> = first.as_deref().and_then(|l| serde_json::from_str(l).ok());
            match found {
                Some(h) if h.written_by == "mmloop" && h.kind == KIND => {
                    if h.fingerprint == header.fingerprint {
                        keep = true;
                        for line in lines {
                            // a line cut short by a kill does not parse: its world runs again
                            let Ok(line) = line else { break };
                            if let Ok(w) = serde_json::from_str::<WorldLine>(&line) {
                                done.insert(w.world, w.rows);
                            }
                        }
                    } else {
                        replaced = Some(format!(
                            "{} holds an interrupted run with other settings; starting afresh",
                            path.display()
                        ));
                    }
                }
                _ => {
                    return Err(SimError::Output(format!(
                        "{} exists and is not a checkpoint mmloop wrote; move it away or choose another --out",
                        path.display()
                    )));
                }
            }
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_err(&path, "creating the folder of", e))?;
        }
        let file = if keep {
            let mut f =
                std::fs::OpenOptions::new().append(true).open(&path).map_err(|e| io_err(&path, "opening", e))?;
            // a torn last line gets its own line ending so that the next world's line parses
            f.write_all(b"\n").map_err(|e| io_err(&path, "writing", e))?;
            f
        } else {
            let mut f = std::fs::File::create(&path).map_err(|e| io_err(&path, "creating", e))?;
            let line = serde_json::to_string(&header).map_err(|e| io_err(&path, "writing", e))?;
            writeln!(f, "{line}").map_err(|e| io_err(&path, "writing", e))?;
            f.sync_data().map_err(|e| io_err(&path, "writing", e))?;
            f
        };
        Ok(Checkpoint { path, file: Mutex::new(file), done, replaced })
    }

    /// Appends a finished world's rows and syncs them to disk (any thread).
    pub fn record(&self, world: usize, rows: &[Row]) -> Result<(), SimError> {
        let line = serde_json::to_string(&WorldLine { world, rows: rows.to_vec() })
            .map_err(|e| io_err(&self.path, "writing", e))?;
        let mut f = self.file.lock().map_err(|_| io_err(&self.path, "writing", "a worker panicked"))?;
        writeln!(f, "{line}").map_err(|e| io_err(&self.path, "writing", e))?;
        f.sync_data().map_err(|e| io_err(&self.path, "writing", e))
    }

    /// The checkpoint's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file (once the results are safely written elsewhere).
    pub fn remove(self) -> Result<(), SimError> {
        let Checkpoint { path, file, .. } = self;
        drop(file);
        std::fs::remove_file(&path).map_err(|e| io_err(&path, "removing", e))
    }
}

/// Floats stored exactly: finite values as JSON numbers (serde_json prints the shortest string
/// that reads back to the same double), NaN and the infinities as the strings `"NaN"`, `"inf"`,
/// `"-inf"` (JSON has no numbers for them).
pub(super) mod exact_f64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        match *v {
            v if v.is_finite() => s.serialize_f64(v),
            v if v.is_nan() => s.serialize_str("NaN"),
            v if v > 0.0 => s.serialize_str("inf"),
            _ => s.serialize_str("-inf"),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Number(v) => Ok(v),
            Repr::Text(t) => match t.as_str() {
                "NaN" => Ok(f64::NAN),
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                other => Err(serde::de::Error::custom(format!("not a number: {other:?}"))),
            },
        }
    }
}
