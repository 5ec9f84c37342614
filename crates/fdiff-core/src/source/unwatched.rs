//! Processes a selection matched but fdiff does not watch — refused by the kernel, or beyond
//! fdiff's own fd limit — counted by reason, so the user hears each reason once, not once per
//! process, and the report says how many were left out and why.

use crate::error::Warning;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One reason processes went unwatched, as the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unwatched {
    /// `permission_denied` or `fd_limit`.
    pub reason: String,
    /// Distinct processes left out for this reason over the whole run.
    pub processes: u64,
    /// The one-line explanation, with what to do about it.
    pub message: String,
}

/// [`Unwatched::reason`] for processes the kernel refused to let fdiff read.
pub(crate) const PERMISSION_DENIED: &str = "permission_denied";
/// [`Unwatched::reason`] for processes past what fdiff's own fd limit has room for.
pub(crate) const FD_LIMIT: &str = "fd_limit";

/// Fds one watched process holds: /proc/PID, its fd and fdinfo directories, its pidfd.
const FDS_PER_PROC: u64 = 4;
/// Fds kept free for everything else: stdio, the recording, netlink sockets, a /proc file
/// being read on each decoding thread.
const FD_RESERVE: u64 = 64;

/// Raise fdiff's soft RLIMIT_NOFILE to its hard limit: every watched process costs a few fds,
/// and the common soft 1,024 would cap a watch near 250 processes. Children started later
/// (`fdiff run`) must be spawned before this, so that they keep the limit they were given.
pub fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current != lim.maximum {
        lim.current = lim.maximum;
        // An unlimited hard limit is refused for NOFILE; the soft one then stays as it is.
        let _ = setrlimit(Resource::Nofile, lim);
    }
}

/// The soft fd limit now, `None` when unlimited.
fn soft_fd_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// How many processes fit in fdiff's fd limit beside the fds it has open now.
pub(crate) fn process_budget() -> usize {
    let Some(soft) = soft_fd_limit() else {
        return usize::MAX;
    };
    let open = std::fs::read_dir("/proc/self/fd").map_or(16, |d| d.count() as u64);
    let room = soft.saturating_sub(open + FD_RESERVE) / FDS_PER_PROC;
    usize::try_from(room).unwrap_or(usize::MAX).max(1)
}

/// The tally of unwatched processes and the warnings not yet said.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    refused: BTreeSet<i32>,
    over_limit: BTreeSet<i32>,
    /// Refused since the last [`Tally::take_warnings`], with their names.
    new_refused: Vec<(i32, Option<String>)>,
    new_over_limit: usize,
    /// Each reason is said once a run: later processes only add to the report's count, so a
    /// busy machine cannot fill the terminal with the same line tick after tick.
    warned_refused: bool,
    warned_limit: bool,
}

impl Tally {
    /// A matching process the kernel would not let fdiff read.
    pub fn refused(&mut self, pid: i32, comm: Option<String>) {
        if self.refused.insert(pid) {
            self.new_refused.push((pid, comm));
        }
    }

    /// A matching process left out because fdiff's fd limit has no room for it.
    pub fn over_limit(&mut self, pid: i32) {
        if self.over_limit.insert(pid) {
            self.new_over_limit += 1;
        }
    }

    /// A process left out earlier and watched now after all (others exited).
    pub fn watched(&mut self, pid: i32) {
        self.over_limit.remove(&pid);
    }

    /// Distinct processes refused so far.
    pub(crate) fn refused_count(&self) -> usize {
        self.refused.len()
    }

    /// Distinct processes left out for fdiff's fd limit and not watched since.
    pub(crate) fn over_limit_count(&self) -> usize {
        self.over_limit.len()
    }

    /// Forget what is pending (it has been said another way, e.g. as the error).
    pub(crate) fn clear_pending(&mut self) {
        self.new_refused.clear();
        self.new_over_limit = 0;
    }

    /// What the user has not been told yet, one line per reason however many processes.
    /// `with_limit`: also the fd-limit shortfall, which `fdiff snapshot` says as its error
    /// instead.
    pub(crate) fn take_warnings(&mut self, out: &mut Vec<Warning>, with_limit: bool) {
        let mut say = |message: String| out.push(Warning::Unwatched { message });
        match self.new_refused.len() {
            _ if self.warned_refused => {}
            0 => {}
            1 => {
                let (pid, comm) = &self.new_refused[0];
                let who = comm
                    .as_deref()
                    .map(|c| format!(" ({})", crate::util::escape_control(c)))
                    .unwrap_or_default();
                say(format!(
                    "pid {pid}{who} matches but its fds cannot be read: permission denied ({PERMISSION_HINT})"
                ));
            }
            n => say(format!(
                "{n} matching processes could not be read: permission denied ({PERMISSION_HINT})"
            )),
        }
        self.warned_refused |= !self.new_refused.is_empty();
        self.new_refused.clear();
        if !with_limit {
            return;
        }
        if self.new_over_limit > 0 && !self.warned_limit {
            self.warned_limit = true;
            say(limit_message(self.new_over_limit));
        }
        self.new_over_limit = 0;
    }

    /// The report's list: one entry per reason that left a process out.
    pub fn report(&self) -> Vec<Unwatched> {
        let mut out = Vec::new();
        if !self.refused.is_empty() {
            out.push(Unwatched {
                reason: PERMISSION_DENIED.to_owned(),
                processes: self.refused.len() as u64,
                message: format!(
                    "{} matching processes could not be read: permission denied ({PERMISSION_HINT})",
                    self.refused.len()
                ),
            });
        }
        if !self.over_limit.is_empty() {
            out.push(Unwatched {
                reason: FD_LIMIT.to_owned(),
                processes: self.over_limit.len() as u64,
                message: limit_message(self.over_limit.len()),
            });
        }
        out
    }
}

/// What reading another user's process takes, for the lines that say it was refused.
pub(crate) const PERMISSION_HINT: &str = "needs the same user, root or CAP_SYS_PTRACE";

/// The line for processes left out at fdiff's own fd limit.
pub fn limit_message(n: usize) -> String {
    let soft = soft_fd_limit().map_or_else(|| "unlimited".to_owned(), |s| s.to_string());
    format!(
        "{n} matching processes are not watched: fdiff's own fd limit ({soft}, already raised to \
         the hard limit) has no room for them; raise the hard limit (ulimit -Hn, prlimit or \
         LimitNOFILE=) to watch them all"
    )
}
