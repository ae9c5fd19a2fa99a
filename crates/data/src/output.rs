//! Outputs are either complete or absent: files are written to a temporary sibling and renamed into
//! place, and a whole output directory is staged and renamed only once every file is in it.

use crate::DataError;
use std::fs;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, then a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let err = |e: std::io::Error| DataError::Write { path: path.to_path_buf(), message: e.to_string() };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(err)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    fs::write(&tmp, bytes).map_err(err)?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        err(e)
    })
}

/// An output directory that becomes visible only when [`OutputDir::commit`] is called. Files are
/// written into a hidden staging directory next to the target; on commit the previous target (if any)
/// is replaced. Dropping without committing removes the staging directory, so a failed run leaves no
/// partial output behind.
#[derive(Debug)]
pub struct OutputDir {
    target: PathBuf,
    staging: PathBuf,
    committed: bool,
}

impl OutputDir {
    /// Starts staging an output directory for `target`.
    pub fn create(target: impl AsRef<Path>) -> Result<Self, DataError> {
        let target = target.as_ref().to_path_buf();
        let err = |e: std::io::Error| DataError::Write { path: target.clone(), message: e.to_string() };
        let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(err)?;
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
        let staging = parent.join(format!(".{name}.staging-{}", std::process::id()));
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(err)?;
        }
        fs::create_dir_all(&staging).map_err(err)?;
        Ok(Self { target, staging, committed: false })
    }

    /// The path where a file named `name` is staged; write to it directly.
    pub fn path(&self, name: &str) -> PathBuf {
        self.staging.join(name)
    }

    /// The final location of the directory.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Writes `bytes` as `name` inside the staged directory.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<(), DataError> {
        let p = self.path(name);
        fs::write(&p, bytes).map_err(|e| DataError::Write { path: self.target.join(name), message: e.to_string() })
    }

    /// Moves the staged directory into place, replacing what was there.
    pub fn commit(mut self) -> Result<PathBuf, DataError> {
        let err = |e: std::io::Error| DataError::Write { path: self.target.clone(), message: e.to_string() };
        if self.target.exists() {
            fs::remove_dir_all(&self.target).map_err(err)?;
        }
        fs::rename(&self.staging, &self.target).map_err(err)?;
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn committed_output_replaces_previous_directory() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        fs::create_dir_all(&target).unwrap();
        fs::write(target.join("old.txt"), b"old").unwrap();
        let out = OutputDir::create(&target).unwrap();
        out.write("new.txt", b"new").unwrap();
        out.commit().unwrap();
        assert!(!target.join("old.txt").exists());
        assert_eq!(fs::read(target.join("new.txt")).unwrap(), b"new");
    }

    #[test]
    fn write_atomic_writes_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/x.txt");
        write_atomic(&p, b"hello").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"hello");
        assert_eq!(fs::read_dir(dir.path().join("sub")).unwrap().count(), 1);
    }
}
