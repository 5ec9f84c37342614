//! The binary's error: a single line for the user and the [`Exit`] it maps to. The exit code
//! is chosen here, never in `fdiff-core`: a core error is an [`Exit::Error`].

use crate::exit_codes::Exit;
use std::fmt;

/// An error that ends fdiff: printed as `fdiff: MESSAGE`, exiting with `code`.
#[derive(Debug)]
pub struct Error {
    pub message: String,
    pub code: Exit,
    /// The core's typed error this one came from, if any (for callers that tell variants
    /// apart; the message is its line).
    pub core: Option<fdiff_core::Error>,
}

impl Error {
    pub fn failed(message: impl Into<String>) -> Self {
        Error::with_code(message, Exit::Error)
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error::with_code(message, Exit::Usage)
    }

    pub fn with_code(message: impl Into<String>, code: Exit) -> Self {
        Error {
            message: message.into(),
            code,
            core: None,
        }
    }

    /// Stdout was closed by its reader: not an error, nothing more to print.
    pub fn broken_pipe() -> Self {
        Error::with_code(String::new(), Exit::Ok)
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

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.core
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Every error of the pipeline exits 1: which variant it is changes the line, not the code.
impl From<fdiff_core::Error> for Error {
    fn from(e: fdiff_core::Error) -> Self {
        Error {
            message: e.to_string(),
            code: Exit::Error,
            core: Some(e),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue10_core_errors_exit_1_and_keep_their_variant() {
        let e = Error::from(fdiff_core::Error::NoSuchProcess { pid: 99 });
        assert_eq!(e.code, Exit::Error);
        assert_eq!(
            e.message,
            "no process with pid '99': check the pid with 'ps -p 99'"
        );
        assert!(matches!(
            e.core,
            Some(fdiff_core::Error::NoSuchProcess { pid: 99 })
        ));
        assert!(std::error::Error::source(&e).is_some());
    }
}
