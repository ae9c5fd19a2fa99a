//! Progress reporting for long work, without tying the library to a terminal: the CLI passes an
//! implementation that draws a bar (only when stderr is a terminal); libraries and tests pass
//! [`NoProgress`].

/// Receives progress of a long computation. Called from several threads.
pub trait Progress: Sync {
    /// A new stage with `total` steps.
    fn start(&self, _stage: &str, _total: u64) {}
    /// `n` more steps done.
    fn inc(&self, _n: u64) {}
    /// The stage is over.
    fn finish(&self) {}
    /// A stage of unknown length (a spinner with `msg`), replaced by the next stage or ended by
    /// [`Progress::finish`].
    fn stage(&self, _msg: &str) {}
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
