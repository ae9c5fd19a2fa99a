//! SHA-256 content hashes for provenance: the ledger stores the hash of every calibration file it
//! read and of every record, so the same readout is recognised when it comes back.
//!
//! One implementation serves the whole workspace: this module names the ledger's uses of
//! [`mmloop_data::hash_bytes`] (SHA-256, FIPS 180-4, 64 lowercase hex digits, the form `sha256sum`
//! prints), the same hash a fit's `provenance.json` records.

use std::path::Path;

/// SHA-256 of `bytes` as 64 lowercase hex digits.
///
/// ```
/// assert_eq!(
///     mmloop_loop::hash::sha256_hex(b"abc"),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// );
/// ```
pub fn sha256_hex(bytes: &[u8]) -> String {
    mmloop_data::hash_bytes(bytes)
}

/// SHA-256 of a file's bytes, as [`sha256_hex`].
pub fn sha256_file(path: &Path) -> Result<String, mmloop_data::DataError> {
    mmloop_data::hash_file(path)
}
