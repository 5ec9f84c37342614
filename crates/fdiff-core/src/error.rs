//! The library's typed errors and warnings. Each prints as the one line the user sees; which
//! exit code an error means is the binary's choice, and a binding maps the variants to its own
//! exceptions (a process error to `ProcessLookupError` or `PermissionError`, say).

use crate::util::escape_control;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// An error of the pipeline: a process that cannot be read, a file that cannot be opened,
/// input that is malformed, a selection with nothing to watch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No process has this pid.
    #[error("no process with pid '{pid}': check the pid with 'ps -p {pid}'")]
    NoSuchProcess {
        /// The pid asked for.
        pid: i32,
    },
    /// The process exists but its fds cannot be read by this user.
    #[error(
        "permission denied reading the fds of pid '{pid}'{}: run fdiff as the same user, \
         as root, or with CAP_SYS_PTRACE{hint}",
        comm.as_ref().map(|c| format!(" ({c})")).unwrap_or_default()
    )]
    PermissionDenied {
        /// The process.
        pid: i32,
        /// Its command name, when /proc told it.
        comm: Option<String>,
        /// Why the same user can be refused too (a strict Yama ptrace scope), or empty.
        hint: String,
    },
    /// The process has exited but is not reaped: it holds no fds.
    #[error(
        "pid '{pid}' ({comm}) is a zombie: it has exited and holds no fds; its parent has not reaped it yet"
    )]
    Zombie {
        /// The process.
        pid: i32,
        /// Its command name.
        comm: String,
    },
    /// The process exited (or its pid names another process now) while it was being read.
    #[error("the process exited")]
    Exited {
        /// The process, when known.
        pid: Option<i32>,
    },
    /// A file of /proc for one process could not be read.
    #[error("cannot read {what} of pid '{pid}': {source}")]
    ProcessIo {
        /// The process.
        pid: i32,
        /// What was being read ("/proc/PID/fd", say).
        what: &'static str,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// A file (a recording, a snapshot file, an output) could not be opened, read or written.
    #[error("cannot {action} '{}': {source}", escape_control(&path.to_string_lossy()))]
    Io {
        /// What was being done: "open", "read", "create", "write the recording".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// A file holds something other than what it should (a damaged recording, the wrong
    /// schema); `message` names the file and the line.
    #[error("{message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The user's line.
        message: String,
    },
    /// The selection has nothing fdiff can watch, or fdiff cannot take on one more process.
    #[error("{message}")]
    Selection {
        /// The user's line.
        message: String,
    },
    /// Anything else, as its line.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// An error that is only its line.
    pub fn failed(message: impl Into<String>) -> Self {
        Error::Other(message.into())
    }

    /// `action` ("open", "read", …) on `path` failed.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// `path` is not what it should be; `message` is the whole line.
    pub fn malformed(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Malformed {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The selection has nothing to watch; `message` is the whole line.
    pub fn selection(message: impl Into<String>) -> Self {
        Error::Selection {
            message: message.into(),
        }
    }

    /// The line the user sees (what [`Display`](fmt::Display) prints).
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The process the error is about, for the process errors.
    pub fn pid(&self) -> Option<i32> {
        match self {
            Error::NoSuchProcess { pid }
            | Error::PermissionDenied { pid, .. }
            | Error::Zombie { pid, .. }
            | Error::ProcessIo { pid, .. } => Some(*pid),
            Error::Exited { pid } => *pid,
            _ => None,
        }
    }

    /// The I/O error underneath, if there is one.
    pub fn io_source(&self) -> Option<&io::Error> {
        match self {
            Error::ProcessIo { source, .. } | Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A result of the pipeline.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Something the user should know that does not stop the pipeline: delivered to the
/// observers of a run as it happens (see [`crate::pipeline::Observer::warning`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Warning {
    /// A watched process became unreadable (or another process error) and is left out.
    Process {
        /// The process, when known.
        pid: Option<i32>,
        /// The error's line.
        message: String,
    },
    /// Matching processes are not watched (permission, fdiff's own fd limit): the line says
    /// how many and why.
    Unwatched {
        /// The user's line.
        message: String,
    },
    /// A recording or snapshot file had something to skip (a cut last line, say).
    Input {
        /// The user's line.
        message: String,
    },
    /// Ticks are taken slower than asked.
    Behind {
        /// Asked-for interval, in seconds.
        asked_secs: f64,
        /// Achieved interval, in seconds.
        achieved_secs: f64,
        /// The fds read by the last tick.
        fds: u64,
    },
    /// Anything else, as its line.
    Other(String),
}

impl Warning {
    /// A warning from a line the source produced, kept as it was written.
    pub fn line(message: impl Into<String>) -> Self {
        Warning::Other(message.into())
    }
}

impl From<String> for Warning {
    fn from(s: String) -> Self {
        Warning::Other(s)
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Process { message, .. }
            | Warning::Unwatched { message }
            | Warning::Input { message }
            | Warning::Other(message) => f.write_str(message),
            Warning::Behind {
                asked_secs,
                achieved_secs,
                fds,
            } => write!(
                f,
                "ticks fall behind: asked for every {}, achieved every {} over {} fds; \
                 try a longer --interval",
                interval_text(*asked_secs),
                interval_text(*achieved_secs),
                count_text(*fds)
            ),
        }
    }
}

/// 10ms, 250ms, 1.5s: as a user writes an interval.
fn interval_text(secs: f64) -> String {
    let ms = secs * 1000.0;
    if ms < 1000.0 {
        format!("{}ms", ms.round() as u64)
    } else {
        let s = format!("{:.2}", ms / 1000.0);
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// 1,234,567: thousands separated, as the tables print counts.
fn count_text(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue10_process_errors_are_variants_with_their_line() {
        let e = Error::NoSuchProcess { pid: 42 };
        assert_eq!(e.pid(), Some(42));
        assert_eq!(
            e.to_string(),
            "no process with pid '42': check the pid with 'ps -p 42'"
        );
        let e = Error::PermissionDenied {
            pid: 7,
            comm: Some("sshd".into()),
            hint: String::new(),
        };
        assert!(e.to_string().starts_with(
            "permission denied reading the fds of pid '7' (sshd): run fdiff as the same user"
        ));
        let e = Error::io(
            "open",
            PathBuf::from("a\nb"),
            io::Error::from_raw_os_error(2),
        );
        assert!(matches!(
            e.io_source().map(io::Error::kind),
            Some(io::ErrorKind::NotFound)
        ));
        assert!(e.to_string().starts_with("cannot open 'a\\nb': "), "{e}");
    }

    #[test]
    fn issue10_warning_behind_reads_as_before() {
        let w = Warning::Behind {
            asked_secs: 0.01,
            achieved_secs: 1.5,
            fds: 12_345,
        };
        assert_eq!(
            w.to_string(),
            "ticks fall behind: asked for every 10ms, achieved every 1.5s over 12,345 fds; \
             try a longer --interval"
        );
    }
}
