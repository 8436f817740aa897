//! Errors that stop a run. Per-record problems are not errors here: they are `ErrorRecord`s.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum ExecError {
    /// The input could not be read or decoded (missing file, truncated gzip, empty file, ...).
    Input { source: String, line: Option<u64>, message: String },
    /// An output could not be written.
    Output { target: String, message: String },
    /// The Python (or other) stage failed as a whole.
    Stage(String),
    /// The run was stopped on request.
    Cancelled,
    /// A broken invariant inside the executor: a bug, reported rather than hidden.
    Internal(String),
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecError::Input { source, line: Some(line), message } => {
                write!(f, "cannot read {source} (near line {line}): {message}")
            }
            ExecError::Input { source, line: None, message } => {
                write!(f, "cannot read {source}: {message}")
            }
            ExecError::Output { target, message } => write!(f, "cannot write {target}: {message}"),
            ExecError::Stage(message) => write!(f, "{message}"),
            ExecError::Cancelled => write!(f, "the run was stopped before it finished"),
            ExecError::Internal(message) => write!(f, "internal error in the zoopipe executor: {message}"),
        }
    }
}

impl std::error::Error for ExecError {}
