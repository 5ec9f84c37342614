//! The library's error: one line for the user. Which exit code it means is the binary's choice.

use std::fmt;

/// An error of the pipeline (no such process, unreadable or malformed input), as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub message: String,
}

impl Error {
    pub fn failed(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
        }
    }

    /// An I/O failure on `what` (a file name, "stdout", …).
    pub fn io(what: &str, err: &std::io::Error) -> Self {
        Error::failed(format!("cannot {what}: {err}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
