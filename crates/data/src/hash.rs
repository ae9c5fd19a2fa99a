//! Content hashes of inputs, so a saved result can tell when the file it was computed from has changed.
//!
//! SHA-256 (FIPS 180-4) through the `sha2` crate, written as 64 lowercase hex digits: the same string
//! `sha256sum FILE` prints, so a user can check a recorded hash by hand.
//!
//! ```no_run
//! let h = mmloop_data::hash_file("data/demo_national.csv")?;
//! assert_eq!(h.len(), 64);
//! # Ok::<(), mmloop_data::DataError>(())
//! ```

use crate::DataError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    s
}

/// SHA-256 of `bytes`, as 64 lowercase hex digits.
pub fn hash_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// SHA-256 of the file's contents, as 64 lowercase hex digits (what `sha256sum` prints). The file is
/// read in 64 KiB blocks, so its size does not matter.
pub fn hash_file(path: impl AsRef<Path>) -> Result<String, DataError> {
    let path = path.as_ref();
    let io = |e: std::io::Error| DataError::Io { path: path.to_path_buf(), source: e };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// A file and the SHA-256 of its contents when it was read: recorded with a result so that a later
/// reader can tell whether the file still holds what the result was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHash {
    /// Absolute (canonical) path when it could be resolved, else as given.
    pub path: PathBuf,
    /// 64 lowercase hex digits.
    pub sha256: String,
}

impl FileHash {
    /// Hashes `path` now.
    pub fn of(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref();
        let sha256 = hash_file(path)?;
        Ok(Self { path: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()), sha256 })
    }

    /// The file's hash now when it differs from the recorded one, `None` when unchanged.
    pub fn changed(&self) -> Result<Option<String>, DataError> {
        let now = hash_file(&self.path)?;
        Ok((now != self.sha256).then_some(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The FIPS 180-2 appendix B test vectors (also `printf abc | sha256sum`).
    #[test]
    fn sha256_matches_the_fips_test_vectors() {
        assert_eq!(hash_bytes(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(hash_bytes(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(
            hash_bytes(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    fn file_hash_equals_bytes_hash_across_block_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        // 200 000 bytes: more than three 64 KiB blocks, last one partial
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(hash_file(&p).unwrap(), hash_bytes(&bytes));
    }

    #[test]
    fn file_hash_notices_a_one_byte_change() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.csv");
        std::fs::write(&p, "a,b\n1,2\n").unwrap();
        let h = FileHash::of(&p).unwrap();
        assert!(h.path.is_absolute());
        assert_eq!(h.changed().unwrap(), None);
        std::fs::write(&p, "a,b\n1,3\n").unwrap();
        assert_eq!(h.changed().unwrap(), Some(hash_bytes(b"a,b\n1,3\n")));
    }

    #[test]
    fn missing_file_error_names_the_file() {
        let e = hash_file("/nonexistent/mmloop/x.csv").unwrap_err().to_string();
        assert!(e.contains("/nonexistent/mmloop/x.csv"), "{e}");
    }
}
