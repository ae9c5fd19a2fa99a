//! Build-time only: this crate has no code. It depends on every dependency of the workspace with
//! the workspace's features so that building one package (`cargo test -p mmloop-mmm`) resolves the
//! same features as building them all, and the compiled dependencies are shared (the technique
//! cargo-hakari automates).
