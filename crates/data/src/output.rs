//! Outputs are either complete or absent, and mmloop only ever replaces what it wrote itself.
//!
//! **Directories** ([`OutputDir`]). Every file goes into a hidden staging directory next to the target,
//! `.NAME.staging-PID-N`, together with a marker file [`MARKER`] that names the command which wrote it.
//! On [`OutputDir::commit`] the staging directory takes the target's place:
//! - the target may be absent, an empty directory, or a directory carrying mmloop's marker (written by
//!   the same command, holding nothing but the files the marker lists); anything else — a folder with
//!   the user's files, an output the user added files to, a file — is refused with a message saying
//!   why and what to do, and nothing is touched;
//! - the target may not equal, contain, or lie inside any input (data file, config, fit directory,
//!   plan…), nor contain the working directory. Paths are compared after resolving symbolic links and
//!   `..` (a target that does not exist yet is resolved through its longest existing ancestor);
//! - on Linux the staged and the old directory are swapped by one `renameat2(RENAME_EXCHANGE)` call,
//!   so at every instant the target path holds either the complete old or the complete new output;
//!   the old one, now under the staging name, is then deleted (its marker last). Where the exchange is
//!   not available (other systems, some file systems) the old directory is renamed aside to
//!   `.NAME.old-PID-N` first; a kill between the two renames leaves the old output complete under that
//!   name, and the next run puts it back.
//! - leftovers of killed runs (`.NAME.staging-PID-N`, `.NAME.old-PID-N` whose process is gone, empty
//!   or carrying the marker) are removed by the next run writing the same target. Nothing without
//!   mmloop's naming and marker is ever deleted.
//!
//! **Single files** ([`write_atomic`], [`write_atomic_for`]): a temporary sibling, flushed to disk,
//! then renamed over the target; never onto an input or a directory.

use crate::DataError;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// The marker file in every directory mmloop writes: JSON naming the program, the command and the
/// arguments that wrote it. Its presence is what allows a later run to replace the directory.
pub const MARKER: &str = ".mmloop-output";

/// What the marker file holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutputMarker {
    /// Always `"mmloop"`.
    pub written_by: String,
    /// The subcommand (`fit`, `lift`, `design`, `optimize`, `scenario`…); empty when not given.
    pub command: String,
    /// The program's arguments, for the record.
    #[serde(default)]
    pub argv: Vec<String>,
    /// The version of the crate that wrote it.
    #[serde(default)]
    pub version: String,
    /// The entries the output holds besides the marker, listed at commit: anything else found in
    /// the directory later was put there by someone else, and the directory is no longer replaced.
    #[serde(default)]
    pub files: Vec<String>,
}

/// Reads and checks the marker of directory `dir`; `None` when there is none or it is not mmloop's.
pub fn read_marker(dir: &Path) -> Option<OutputMarker> {
    let p = dir.join(MARKER);
    let meta = fs::symlink_metadata(&p).ok()?;
    if !meta.is_file() || meta.len() > 1 << 20 {
        return None;
    }
    let m: OutputMarker = serde_json::from_slice(&fs::read(&p).ok()?).ok()?;
    (m.written_by == "mmloop").then_some(m)
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Staging directories of live [`OutputDir`]s in this process (the pid alone cannot tell them apart
/// from a dead process's leftovers when pids are reused).
fn live() -> &'static Mutex<HashSet<PathBuf>> {
    static LIVE: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    LIVE.get_or_init(|| Mutex::new(HashSet::new()))
}

fn is_live_here(p: &Path) -> bool {
    live().lock().map(|s| s.contains(p)).unwrap_or(true)
}

/// Whether process `pid` still runs. Unknown counts as alive: a leftover is never removed on a guess.
fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    #[cfg(unix)]
    {
        let Ok(p) = libc::pid_t::try_from(pid) else { return true };
        if p <= 0 {
            return true;
        }
        // SAFETY: kill with signal 0 only checks whether the process exists and may be signalled;
        // p > 0 names exactly one process (never a process group).
        let r = unsafe { libc::kill(p, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// Absolute form of `p` with every symbolic link and `..` resolved. Components that do not exist
/// (yet) are appended as written, `..` among them removing the previous one.
pub(crate) fn resolve(p: &Path) -> std::io::Result<PathBuf> {
    let abs = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir()?.join(p) };
    let mut cur = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => cur.push(c.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                cur.pop();
            }
            Component::Normal(n) => {
                cur.push(n);
                if fs::symlink_metadata(&cur).is_ok() {
                    // exists (as a file, directory or link): take its real location
                    cur = fs::canonicalize(&cur)?;
                }
            }
        }
    }
    Ok(cur)
}

fn write_err(path: &Path) -> impl Fn(std::io::Error) -> DataError + '_ {
    move |e| DataError::Write { path: path.to_path_buf(), message: e.to_string() }
}

/// What is at the target now.
#[derive(Debug, PartialEq)]
enum Existing {
    Absent,
    Empty,
    Ours(OutputMarker),
}

fn suggestion(shown: &Path) -> String {
    let name = shown.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    let name = if name == "." || name == ".." || name.is_empty() { "mmloop-out".to_string() } else { name };
    format!("--out {}", Path::new(&name).join("run1").display())
}

fn inspect(resolved: &Path, shown: &Path, command: &str) -> Result<Existing, DataError> {
    let refuse =
        |reason: String| DataError::NotAnOutputDir { path: shown.to_path_buf(), reason, suggestion: suggestion(shown) };
    let meta = match fs::symlink_metadata(resolved) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Absent),
        Err(e) => return Err(write_err(shown)(e)),
    };
    if !meta.is_dir() {
        return Err(refuse("it is a file, not a directory".into()));
    }
    let mut names = Vec::new();
    for e in fs::read_dir(resolved).map_err(write_err(shown))? {
        names.push(e.map_err(write_err(shown))?.file_name().to_string_lossy().into_owned());
    }
    if names.is_empty() {
        return Ok(Existing::Empty);
    }
    match read_marker(resolved) {
        Some(m) => {
            if !m.command.is_empty() && !command.is_empty() && m.command != command {
                return Err(DataError::OutputOfAnotherCommand {
                    path: shown.to_path_buf(),
                    existing: m.command,
                    command: command.to_string(),
                });
            }
            let mut foreign: Vec<&String> = names.iter().filter(|n| *n != MARKER && !m.files.contains(n)).collect();
            if !m.files.is_empty() && !foreign.is_empty() {
                foreign.sort();
                let listed: Vec<String> = foreign.iter().take(3).map(|s| format!("{s:?}")).collect();
                let more = if foreign.len() > 3 { format!(" and {} more", foreign.len() - 3) } else { String::new() };
                return Err(refuse(format!(
                    "it is an earlier output of mmloop, but it also holds what mmloop did not write there ({}{more}); \
                     move that out first",
                    listed.join(", ")
                )));
            }
            Ok(Existing::Ours(m))
        }
        None => {
            names.sort();
            let n = names.len();
            let listed: Vec<String> = names.iter().take(3).map(|s| format!("{s:?}")).collect();
            let more = if n > 3 { format!(" and {} more", n - 3) } else { String::new() };
            // outputs of mmloop versions from before the marker: say so, but still leave them alone
            let older = ["summary.json", "lift.json", "design.json", "optimize.json", "scenario.json"]
                .iter()
                .any(|f| names.iter().any(|n| n == f));
            let hint = if older {
                "; it looks like the output of an older mmloop, written before outputs were marked: if so, check \
                 and delete it yourself"
            } else {
                ""
            };
            Err(refuse(format!(
                "it is a directory holding {n} entr{} mmloop did not write ({}{more}){hint}",
                if n == 1 { "y" } else { "ies" },
                listed.join(", ")
            )))
        }
    }
}

/// Refuses a target that is, contains or lies inside an input, or contains the working directory.
fn check_overlap(resolved: &Path, shown: &Path, inputs: &[&Path]) -> Result<(), DataError> {
    if resolved.parent().is_none() {
        return Err(DataError::NotAnOutputDir {
            path: shown.to_path_buf(),
            reason: "it is the root of the file system".into(),
            suggestion: suggestion(shown),
        });
    }
    for input in inputs {
        let r = resolve(input).map_err(write_err(shown))?;
        let relation = if r == resolved {
            "is"
        } else if r.starts_with(resolved) {
            "contains"
        } else if resolved.starts_with(&r) {
            "lies inside"
        } else {
            continue;
        };
        return Err(DataError::OutputOverlapsInput { path: shown.to_path_buf(), input: input.to_path_buf(), relation });
    }
    if let Ok(cwd) = std::env::current_dir().and_then(|c| resolve(&c))
        && cwd.starts_with(resolved)
    {
        return Err(DataError::NotAnOutputDir {
            path: shown.to_path_buf(),
            reason: format!(
                "it {} the working directory, which cannot be replaced",
                if cwd == resolved { "is" } else { "contains" }
            ),
            suggestion: suggestion(Path::new("mmloop-out")),
        });
    }
    Ok(())
}

/// A leftover name `.NAME.KIND-PID[-N]`: its kind and pid.
fn parse_leftover<'a>(file: &'a str, name: &str) -> Option<(&'a str, u32)> {
    let rest = file.strip_prefix('.')?.strip_prefix(name)?.strip_prefix('.')?;
    let (kind, tail) = rest.split_once('-')?;
    if !matches!(kind, "staging" | "old" | "tmp") {
        return None;
    }
    let pid = tail.split('-').next()?;
    let extra = tail.split('-').skip(1).collect::<Vec<_>>();
    if extra.len() > 1 || extra.iter().any(|s| s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((kind, pid.parse().ok()?))
}

/// The marker's temporary name while it is rewritten inside a staging directory.
const MARKER_TMP: &str = ".mmloop-output.tmp";

/// Whether `p` holds nothing but (possibly half-written) marker files: a staging directory killed
/// before its first file.
fn only_markers(p: &Path) -> bool {
    fs::read_dir(p)
        .is_ok_and(|d| d.into_iter().all(|e| e.is_ok_and(|e| e.file_name() == MARKER || e.file_name() == MARKER_TMP)))
}

/// Writes the marker into `dir` through a temporary file, so a kill leaves the old marker or the new.
fn write_marker(dir: &Path, marker: &OutputMarker) -> std::io::Result<()> {
    let tmp = dir.join(MARKER_TMP);
    fs::write(&tmp, serde_json::to_vec_pretty(marker).map_err(std::io::Error::other)?)?;
    fs::rename(&tmp, dir.join(MARKER))
}

/// Deletes a directory mmloop wrote (marked, or empty), its marker last, so that a kill at any point
/// leaves either a marked directory or an empty one, both recognisable as mmloop's leftovers.
/// Returns false, touching nothing, for a directory that is neither.
fn remove_marked_dir(p: &Path) -> std::io::Result<bool> {
    let meta = fs::symlink_metadata(p)?;
    if !meta.is_dir() {
        return Ok(false);
    }
    if !only_markers(p) && read_marker(p).is_none() {
        return Ok(false);
    }
    for e in fs::read_dir(p)? {
        let e = e?;
        if e.file_name() == MARKER {
            continue;
        }
        if e.file_type()?.is_dir() {
            fs::remove_dir_all(e.path())?;
        } else {
            fs::remove_file(e.path())?;
        }
    }
    match fs::remove_file(p.join(MARKER)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::remove_dir(p)?;
    Ok(true)
}

/// Removes (or, for a set-aside old output whose target is missing, restores) what killed runs left
/// next to `target`. Only entries named `.NAME.staging-PID…`, `.NAME.old-PID…` (directories, empty or
/// marked) and `.NAME.tmp-PID…` (files) of processes that no longer run are touched.
fn clean_leftovers(parent: &Path, name: &str, target: &Path) {
    let Ok(rd) = fs::read_dir(parent) else { return };
    let mut entries: Vec<(String, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(f, _)| f.starts_with('.'))
        .collect();
    // restore set-aside outputs before deleting staging dirs, in a fixed order
    entries.sort_by_key(|(f, _)| (!f.contains(".old-"), f.clone()));
    for (file, path) in entries {
        let Some((kind, pid)) = parse_leftover(&file, name) else { continue };
        if (pid_alive(pid) && pid != std::process::id()) || is_live_here(&path) {
            continue;
        }
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        match kind {
            "tmp" if meta.is_file() => {
                let _ = fs::remove_file(&path);
            }
            "old" if meta.is_dir() && fs::symlink_metadata(target).is_err() && read_marker(&path).is_some() => {
                // a kill between "old aside" and "new in place": the old output is complete; put it back
                let _ = fs::rename(&path, target);
            }
            "old" | "staging" if meta.is_dir() => {
                let _ = remove_marked_dir(&path);
            }
            _ => {}
        }
    }
}

/// Flushes every file of `dir` and the directory itself to disk.
fn sync_tree(dir: &Path) -> std::io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_file() {
            fs::File::open(e.path())?.sync_all()?;
        }
    }
    sync_dir(dir);
    Ok(())
}

fn sync_dir(dir: &Path) {
    // directories can be fsynced on unix; elsewhere opening one fails, and there is nothing to do
    if let Ok(f) = fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Swaps two directory entries in one atomic step. `Ok(false)` when the system or file system cannot.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn exchange(a: &Path, b: &Path) -> std::io::Result<bool> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let cb = CString::new(b.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: both are valid NUL-terminated paths that outlive the call; renameat2 reads them only.
    // The raw syscall is used because glibc gained the wrapper only in 2.28 and musl later still.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE as libc::c_uint,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOSYS) | Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => Ok(false),
        _ => Err(e),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<bool> {
    Ok(false)
}

/// An output directory that becomes visible only when [`OutputDir::commit`] is called.
///
/// Files are written into a hidden staging directory next to the target (with the [`MARKER`]); on
/// commit it atomically replaces the target, which must be absent, empty, or an earlier output of
/// the same command. Dropping without committing removes the staging directory, so a failed run
/// leaves nothing behind.
///
/// ```no_run
/// use mmloop_data::OutputDir;
/// use std::path::Path;
/// let out = OutputDir::create_for("runs/fit1", "fit", &[Path::new("model.toml"), Path::new("sales.csv")])?;
/// out.write("summary.json", b"{}")?;
/// out.commit()?;
/// # Ok::<(), mmloop_data::DataError>(())
/// ```
#[derive(Debug)]
pub struct OutputDir {
    /// The target as the user gave it (for messages).
    target: PathBuf,
    /// The target resolved to an absolute path without links or `..`.
    resolved: PathBuf,
    staging: PathBuf,
    command: String,
    committed: bool,
}

impl OutputDir {
    /// Starts staging an output directory for `target` with no inputs to protect and no command
    /// name. Prefer [`OutputDir::create_for`].
    pub fn create(target: impl AsRef<Path>) -> Result<Self, DataError> {
        Self::create_for(target, "", &[])
    }

    /// Checks, without touching anything, that `command` may write its output to `target`: absent,
    /// empty, or an earlier output of the same command; not overlapping any of `inputs`. Call it
    /// before long work so a refusal comes at once; [`OutputDir::create_for`] checks again.
    pub fn check(target: impl AsRef<Path>, command: &str, inputs: &[&Path]) -> Result<(), DataError> {
        let shown = target.as_ref();
        let resolved = resolve(shown).map_err(write_err(shown))?;
        check_overlap(&resolved, shown, inputs)?;
        inspect(&resolved, shown, command)?;
        Ok(())
    }

    /// Starts staging the output of `command` (`fit`, `lift`…, recorded in the marker) for `target`,
    /// after checking it as [`OutputDir::check`] does, and cleans up what killed runs left next to it.
    pub fn create_for(target: impl AsRef<Path>, command: &str, inputs: &[&Path]) -> Result<Self, DataError> {
        let shown = target.as_ref().to_path_buf();
        let err = write_err(&shown);
        let resolved = resolve(&shown).map_err(&err)?;
        check_overlap(&resolved, &shown, inputs)?;
        inspect(&resolved, &shown, command)?;
        let parent = resolved.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        let name = resolved.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
        fs::create_dir_all(&parent).map_err(&err)?;
        clean_leftovers(&parent, &name, &resolved);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let staging = parent.join(format!(".{name}.staging-{}-{n}", std::process::id()));
        if let Ok(mut s) = live().lock() {
            s.insert(staging.clone());
        }
        let out = Self { target: shown.clone(), resolved, staging, command: command.to_string(), committed: false };
        fs::create_dir(&out.staging).map_err(&err)?;
        let marker = OutputMarker {
            written_by: "mmloop".into(),
            command: command.to_string(),
            argv: std::env::args().collect(),
            version: env!("CARGO_PKG_VERSION").into(),
            files: Vec::new(),
        };
        write_marker(&out.staging, &marker).map_err(&err)?;
        Ok(out)
    }

    /// The path where a file named `name` is staged; write to it directly.
    pub fn path(&self, name: &str) -> PathBuf {
        self.staging.join(name)
    }

    /// The final location of the directory, as given.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Writes `bytes` as `name` inside the staged directory.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<(), DataError> {
        if name == MARKER {
            return Err(DataError::RefusedFile {
                path: self.target.join(name),
                reason: "this name is reserved for mmloop's output marker".into(),
            });
        }
        let p = self.path(name);
        fs::write(&p, bytes).map_err(|e| DataError::Write { path: self.target.join(name), message: e.to_string() })
    }

    /// Records the staged entries in the marker (still inside the invisible staging directory).
    fn list_files_in_marker(&self) -> std::io::Result<()> {
        let mut files = Vec::new();
        for e in fs::read_dir(&self.staging)? {
            let name = e?.file_name().to_string_lossy().into_owned();
            if name != MARKER && name != MARKER_TMP {
                files.push(name);
            }
        }
        files.sort();
        let mut marker =
            read_marker(&self.staging).ok_or_else(|| std::io::Error::other("the staging directory lost its marker"))?;
        marker.files = files;
        write_marker(&self.staging, &marker)
    }

    /// Moves the staged directory into place, atomically replacing what was there (see the module
    /// documentation), and returns the target as given.
    pub fn commit(mut self) -> Result<PathBuf, DataError> {
        let err = write_err(&self.target);
        // the target may have changed since `create_for`: check again
        let existing = inspect(&self.resolved, &self.target, &self.command)?;
        self.list_files_in_marker().map_err(&err)?;
        sync_tree(&self.staging).map_err(&err)?;
        let parent = self.resolved.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        match existing {
            Existing::Absent => fs::rename(&self.staging, &self.resolved).map_err(&err)?,
            Existing::Empty | Existing::Ours(_) => {
                if exchange(&self.staging, &self.resolved).map_err(&err)? {
                    // the old output now sits under the staging name
                    self.committed = true;
                    sync_dir(&parent);
                    let _ = remove_marked_dir(&self.staging);
                } else {
                    let name = self.resolved.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
                    let old = parent.join(format!(".{name}.old-{}-{n}", std::process::id()));
                    fs::rename(&self.resolved, &old).map_err(&err)?;
                    if let Err(e) = fs::rename(&self.staging, &self.resolved) {
                        let _ = fs::rename(&old, &self.resolved);
                        return Err(err(e));
                    }
                    self.committed = true;
                    sync_dir(&parent);
                    let _ = remove_marked_dir(&old);
                }
            }
        }
        self.committed = true;
        sync_dir(&parent);
        Ok(self.target.clone())
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.staging);
        }
        if let Ok(mut s) = live().lock() {
            s.remove(&self.staging);
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary sibling, flushed, then renamed over `path`.
/// Refuses when `path` is a directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    write_atomic_for(path, bytes, &[])
}

/// [`write_atomic`], refusing also when `path` is one of `inputs` or lies inside one of them.
/// Temporary files left by killed runs (`.NAME.tmp-PID…` of processes that are gone) are removed.
pub fn write_atomic_for(path: &Path, bytes: &[u8], inputs: &[&Path]) -> Result<(), DataError> {
    let err = write_err(path);
    let resolved = resolve(path).map_err(&err)?;
    for input in inputs {
        let r = resolve(input).map_err(&err)?;
        if r == resolved || resolved.starts_with(&r) {
            return Err(DataError::RefusedFile {
                path: path.to_path_buf(),
                reason: format!("it is (or is inside) the input {}", input.display()),
            });
        }
    }
    if fs::symlink_metadata(&resolved).is_ok_and(|m| m.is_dir()) {
        return Err(DataError::RefusedFile { path: path.to_path_buf(), reason: "it is a directory".into() });
    }
    let dir = resolved.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    fs::create_dir_all(&dir).map_err(&err)?;
    let name = resolved.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    clean_leftovers(&dir, &name, &resolved);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
    let written = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(err(e));
    }
    fs::rename(&tmp, &resolved).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        err(e)
    })?;
    sync_dir(&dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn uncommitted_output_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        {
            let out = OutputDir::create(&target).unwrap();
            out.write("a.json", b"{}").unwrap();
        }
        assert!(!target.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "staging directory was not removed");
    }

    #[test]
    fn committed_output_is_marked_and_replaces_previous_output_of_the_same_command() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let out = OutputDir::create_for(&target, "fit", &[]).unwrap();
        out.write("old.txt", b"old").unwrap();
        out.commit().unwrap();
        assert_eq!(read_marker(&target).unwrap().command, "fit");
        let out = OutputDir::create_for(&target, "fit", &[]).unwrap();
        out.write("new.txt", b"new").unwrap();
        out.commit().unwrap();
        assert!(!target.join("old.txt").exists());
        assert_eq!(fs::read(target.join("new.txt")).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["out"], "the old output or the staging directory was left behind");
    }

    #[test]
    fn refuses_a_non_empty_directory_mmloop_did_not_write_and_leaves_it_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("mine");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("notes.txt"), b"precious").unwrap();
        let e = OutputDir::create_for(&target, "fit", &[]).unwrap_err();
        assert!(matches!(e, DataError::NotAnOutputDir { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("notes.txt") && msg.contains("did not write") && msg.contains("new directory"), "{msg}");
        assert_eq!(fs::read(target.join("notes.txt")).unwrap(), b"precious");
        assert_eq!(names(dir.path()), ["mine"]);
        assert!(OutputDir::check(&target, "fit", &[]).is_err());
        // an unmarked directory that looks like an older mmloop's output is refused too, with a hint
        fs::write(target.join("summary.json"), b"{}").unwrap();
        let e = OutputDir::check(&target, "fit", &[]).unwrap_err().to_string();
        assert!(e.contains("older mmloop"), "{e}");
        assert_eq!(fs::read(target.join("notes.txt")).unwrap(), b"precious");
    }

    #[test]
    fn refuses_an_earlier_output_to_which_the_user_added_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let out = OutputDir::create_for(&target, "fit", &[]).unwrap();
        out.write("summary.json", b"{}").unwrap();
        out.commit().unwrap();
        assert_eq!(read_marker(&target).unwrap().files, ["summary.json"]);
        fs::write(target.join("my_notes.md"), b"mine").unwrap();
        let e = OutputDir::create_for(&target, "fit", &[]).unwrap_err().to_string();
        assert!(e.contains("my_notes.md") && e.contains("earlier output"), "{e}");
        assert_eq!(fs::read(target.join("my_notes.md")).unwrap(), b"mine");
        // once the user's file is moved out, the output is replaced again
        fs::remove_file(target.join("my_notes.md")).unwrap();
        OutputDir::create_for(&target, "fit", &[]).unwrap().commit().unwrap();
    }

    #[test]
    fn refuses_a_file_as_output_directory() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f.csv");
        fs::write(&target, b"a,b\n").unwrap();
        let e = OutputDir::create_for(&target, "fit", &[]).unwrap_err().to_string();
        assert!(e.contains("is a file"), "{e}");
        assert_eq!(fs::read(&target).unwrap(), b"a,b\n");
    }

    #[test]
    fn accepts_a_new_and_an_empty_existing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("a/b/new");
        let out = OutputDir::create_for(&new, "lift", &[]).unwrap();
        out.write("x", b"1").unwrap();
        out.commit().unwrap();
        assert_eq!(fs::read(new.join("x")).unwrap(), b"1");
        let empty = dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        let out = OutputDir::create_for(&empty, "lift", &[]).unwrap();
        out.write("y", b"2").unwrap();
        out.commit().unwrap();
        assert_eq!(fs::read(empty.join("y")).unwrap(), b"2");
        assert!(read_marker(&empty).is_some());
        assert_eq!(names(dir.path()), ["a", "empty"]);
    }

    #[test]
    fn refuses_to_replace_the_output_of_another_command() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let out = OutputDir::create_for(&target, "lift", &[]).unwrap();
        out.write("calibration.json", b"[]").unwrap();
        out.commit().unwrap();
        let e = OutputDir::create_for(&target, "fit", &[]).unwrap_err().to_string();
        assert!(e.contains("mmloop lift") && e.contains("mmloop fit"), "{e}");
        assert!(target.join("calibration.json").exists());
    }

    #[test]
    fn refuses_output_overlapping_an_input() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        fs::create_dir(&data_dir).unwrap();
        let csv = data_dir.join("sales.csv");
        fs::write(&csv, b"x\n1\n").unwrap();
        let fit = dir.path().join("fit");
        let o = OutputDir::create_for(&fit, "fit", &[]).unwrap();
        o.write("config.toml", b"").unwrap();
        o.commit().unwrap();
        let relation = |target: &Path, input: &Path| match OutputDir::create_for(target, "fit", &[input]) {
            Err(DataError::OutputOverlapsInput { relation, .. }) => relation,
            other => panic!("{} over input {}: expected a refusal, got {other:?}", target.display(), input.display()),
        };
        // equal: the fit directory an `optimize --fit F --out F` reads
        assert_eq!(relation(&fit, &fit), "is");
        // the output would contain the input (its parent, also spelt via `..`)
        assert_eq!(relation(&data_dir, &csv), "contains");
        assert_eq!(relation(&data_dir.join("sub/.."), &csv), "contains");
        assert_eq!(relation(&dir.path().join("data/../data"), &csv), "contains");
        // the output would lie inside an input directory
        assert_eq!(relation(&fit.join("opt"), &fit), "lies inside");
        // through a symbolic link to the data folder
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&data_dir, &link).unwrap();
            assert_eq!(relation(&link, &csv), "contains");
            assert_eq!(relation(&data_dir, &link.join("sales.csv")), "contains");
            assert_eq!(relation(&link.join("sub"), &csv.parent().unwrap().join("sub/deeper")), "contains");
        }
        assert_eq!(fs::read(&csv).unwrap(), b"x\n1\n");
        assert!(fit.join("config.toml").exists());
    }

    #[test]
    fn refuses_the_working_directory_and_its_ancestors() {
        let cwd = std::env::current_dir().unwrap();
        let e = OutputDir::check(".", "", &[]).unwrap_err().to_string();
        assert!(e.contains("working directory"), "{e}");
        let e = OutputDir::check(cwd.join(".."), "", &[]).unwrap_err().to_string();
        assert!(e.contains("working directory"), "{e}");
    }

    /// A dead process's pid: a child that has exited and been reaped.
    #[cfg(unix)]
    fn dead_pid() -> u32 {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    }

    #[cfg(unix)]
    #[test]
    fn stale_staging_of_dead_runs_is_cleaned_and_foreign_entries_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let dead = dead_pid();
        let mk = |name: &str, marked: bool, file: bool| {
            let p = dir.path().join(name);
            fs::create_dir(&p).unwrap();
            if marked {
                fs::write(p.join(MARKER), br#"{"written_by":"mmloop","command":"fit"}"#).unwrap();
            }
            if file {
                fs::write(p.join("summary.json"), b"{}").unwrap();
            }
        };
        mk(&format!(".out.staging-{dead}-0"), true, true); // killed while staging
        mk(&format!(".out.staging-{dead}-1"), false, false); // killed before the marker was written
        mk(&format!(".out.old-{dead}-2"), true, true); // killed after the swap, while deleting the old
        mk(&format!(".out.staging-{dead}-3"), false, true); // unmarked, not empty: not ours
        mk(&format!(".out.staging-{dead}-4"), false, false); // killed while writing its first marker
        fs::write(dir.path().join(format!(".out.staging-{dead}-4/{MARKER_TMP}")), b"{\"writ").unwrap();
        mk(&format!(".other.staging-{dead}-0"), true, true); // another target's: not touched
        mk(".out.staging-1", true, true); // pid 1 is alive
        fs::write(dir.path().join(format!(".out.tmp-{dead}-0")), b"half").unwrap();
        let out = OutputDir::create_for(&target, "fit", &[]).unwrap();
        let staged = out.staging.clone();
        out.commit().unwrap();
        let left = names(dir.path());
        assert!(!left.iter().any(|n| n.starts_with(&format!(".out.staging-{dead}-0"))), "{left:?}");
        assert!(!left.contains(&format!(".out.staging-{dead}-1")), "{left:?}");
        assert!(!left.contains(&format!(".out.staging-{dead}-4")), "{left:?}");
        assert!(!left.contains(&format!(".out.tmp-{dead}-0")), "{left:?}");
        assert!(left.contains(&format!(".out.staging-{dead}-3")), "an unmarked directory was deleted: {left:?}");
        assert!(left.contains(&format!(".other.staging-{dead}-0")), "{left:?}");
        assert!(left.contains(&".out.staging-1".to_string()), "a live process's staging was deleted: {left:?}");
        assert!(!staged.exists());
        assert!(!left.contains(&format!(".out.old-{dead}-2")), "{left:?}");
    }

    #[cfg(unix)]
    #[test]
    fn an_old_output_set_aside_by_a_killed_run_is_restored() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let dead = dead_pid();
        let old = dir.path().join(format!(".out.old-{dead}-0"));
        fs::create_dir(&old).unwrap();
        fs::write(old.join(MARKER), br#"{"written_by":"mmloop","command":"fit"}"#).unwrap();
        fs::write(old.join("summary.json"), b"old").unwrap();
        // the next run writing the same target puts the old output back before anything else
        let o = OutputDir::create_for(dir.path().join("out"), "fit", &[]).unwrap();
        drop(o);
        assert_eq!(fs::read(target.join("summary.json")).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["out"]);
    }

    /// The swap itself: a reader polling the target during 200 replacements always finds it, with
    /// every file of a version present and whole; nothing is left next to it afterwards.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn atomic_swap_always_shows_a_complete_old_or_new_output() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let files = ["a.json", "b.csv", "c.parquet"];
        let write = |v: usize| {
            let out = OutputDir::create_for(&target, "fit", &[]).unwrap();
            for f in files {
                out.write(f, format!("{v}").as_bytes()).unwrap();
            }
            out.commit().unwrap();
        };
        write(0);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (target, stop) = (target.clone(), stop.clone());
            std::thread::spawn(move || {
                use std::os::unix::fs::MetadataExt;
                let ino = |p: &Path| fs::metadata(p).map(|m| m.ino()).expect("target missing during a swap");
                let mut seen = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    // a directory is complete before it is swapped in and untouched while it is the
                    // target; once swapped out it is deleted, so a listing that began on it may see
                    // it shrink. Hence: judge a listing only when the same directory was the target
                    // before and after it; the target path itself must resolve at every look.
                    let before = ino(&target);
                    let n = fs::read_dir(&target).expect("target missing during a swap").count();
                    let contents: Vec<Option<String>> =
                        files.iter().map(|f| fs::read_to_string(target.join(f)).ok()).collect();
                    if ino(&target) != before {
                        continue;
                    }
                    assert_eq!(n, files.len() + 1, "target seen with {n} entries");
                    for (f, t) in files.iter().zip(&contents) {
                        let t = t.as_deref().unwrap_or_else(|| panic!("{f} missing from the target"));
                        assert!(t.parse::<usize>().is_ok(), "{f} read as {t:?}");
                    }
                    seen += 1;
                }
                seen
            })
        };
        for v in 1..=200 {
            write(v);
        }
        stop.store(true, Ordering::Relaxed);
        let seen = reader.join().unwrap();
        assert!(seen > 0);
        for f in files {
            assert_eq!(fs::read(target.join(f)).unwrap(), b"200");
        }
        assert_eq!(names(dir.path()), ["out"]);
    }

    #[test]
    fn write_atomic_writes_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/x.txt");
        write_atomic(&p, b"hello").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"hello");
        assert_eq!(fs::read_dir(dir.path().join("sub")).unwrap().count(), 1);
    }

    #[test]
    fn write_atomic_refuses_an_input_and_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("data.csv");
        fs::write(&p, b"x\n").unwrap();
        let e = write_atomic_for(&dir.path().join("./data.csv"), b"y", &[&p]).unwrap_err().to_string();
        assert!(e.contains("input"), "{e}");
        assert_eq!(fs::read(&p).unwrap(), b"x\n");
        let e = write_atomic(dir.path(), b"y").unwrap_err().to_string();
        assert!(e.contains("directory"), "{e}");
    }

    #[test]
    fn resolve_handles_missing_components_and_parent_references() {
        let dir = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(dir.path()).unwrap();
        assert_eq!(resolve(&dir.path().join("new/../x")).unwrap(), base.join("x"));
        assert_eq!(resolve(&dir.path().join("./a/./b")).unwrap(), base.join("a/b"));
    }

    #[test]
    fn leftover_names_parse_only_mmloop_patterns() {
        assert_eq!(parse_leftover(".out.staging-123-4", "out"), Some(("staging", 123)));
        assert_eq!(parse_leftover(".out.old-9", "out"), Some(("old", 9)));
        assert_eq!(parse_leftover(".out.tmp-9-1", "out"), Some(("tmp", 9)));
        assert_eq!(parse_leftover(".out.staging-x", "out"), None);
        assert_eq!(parse_leftover(".out.backup-1", "out"), None);
        assert_eq!(parse_leftover(".out2.staging-1", "out"), None);
        assert_eq!(parse_leftover(".out.staging-1-2-3", "out"), None);
    }
}
