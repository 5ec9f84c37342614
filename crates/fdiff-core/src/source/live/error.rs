//! Why a process could not be read, as the reader sees it, and its typed error in the core.

use crate::error::Error;
use rustix::io::Errno;

/// Why a process could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcError {
    /// The pid names no process.
    NoSuchProcess {
        /// The pid asked for.
        pid: i32,
    },
    /// The process's fds cannot be read by this user.
    PermissionDenied {
        /// The process.
        pid: i32,
        /// Its command name, when /proc told it.
        comm: Option<String>,
    },
    /// The process has exited but is not reaped: it holds no fds.
    Zombie {
        /// The process.
        pid: i32,
        /// Its command name.
        comm: String,
    },
    /// Exited (or its pid now names another process) while being watched.
    Gone,
    /// A file of /proc for the process could not be read.
    Io {
        /// The process.
        pid: i32,
        /// What was being read ("/proc/PID/fd", say).
        what: &'static str,
        /// The failure.
        err: Errno,
    },
}

impl ProcError {
    /// The typed error of the core (whose line is what the user sees).
    pub(crate) fn into_error(self) -> Error {
        match self {
            ProcError::NoSuchProcess { pid } => Error::NoSuchProcess { pid },
            ProcError::PermissionDenied { pid, comm } => Error::PermissionDenied {
                pid,
                comm,
                hint: ptrace_hint(),
            },
            ProcError::Zombie { pid, comm } => Error::Zombie { pid, comm },
            ProcError::Gone => Error::Exited { pid: None },
            ProcError::Io { pid, what, err } => Error::ProcessIo {
                pid,
                what,
                source: err.into(),
            },
        }
    }
}

/// Same-user access can still be refused for a non-dumpable process (setuid, or
/// prctl(PR_SET_DUMPABLE, 0)); Yama only restricts ptrace attach, which reading
/// /proc/PID/fd does not need, so it is named only when it is at its strictest.
fn ptrace_hint() -> String {
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    match scope {
        Some(s) if s >= 2 => format!(
            " (kernel.yama.ptrace_scope is {s}; a non-dumpable process needs root or CAP_SYS_PTRACE even for its own user)"
        ),
        _ => " (a non-dumpable process, e.g. setuid, needs root or CAP_SYS_PTRACE even for its own user)".to_owned(),
    }
}

pub(super) fn io_err(pid: i32, what: &'static str, e: Errno) -> ProcError {
    ProcError::Io { pid, what, err: e }
}

/// A reader's error as the core's typed error, whose line is what the CLI prints (for callers
/// that read processes with [`super::LiveProc`] directly, such as the Python bindings).
impl From<ProcError> for Error {
    fn from(e: ProcError) -> Error {
        e.into_error()
    }
}
