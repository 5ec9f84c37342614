//! The binary's error: a single line for the user and the exit code it maps to. The exit code
//! is chosen here, never in `fdiff-core`: a core error is an [`exit_codes::ERROR`].

use crate::exit_codes;
use std::fmt;

/// An error that ends fdiff: printed as `fdiff: MESSAGE`, exiting with `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub message: String,
    pub code: i32,
}

impl Error {
    pub fn failed(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            code: exit_codes::ERROR,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            code: exit_codes::USAGE,
        }
    }

    pub fn with_code(message: impl Into<String>, code: i32) -> Self {
        Error {
            message: message.into(),
            code,
        }
    }

    /// Stdout was closed by its reader: not an error, nothing more to print.
    pub fn broken_pipe() -> Self {
        Error {
            message: String::new(),
            code: exit_codes::OK,
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

impl From<fdiff_core::Error> for Error {
    fn from(e: fdiff_core::Error) -> Self {
        Error::failed(e.message)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
