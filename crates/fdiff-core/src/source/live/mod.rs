//! The live source: every selected process, read from /proc tick after tick. It picks up
//! processes as they match, and notices and reports exits and unreadable processes.

mod error;
mod first_pass;
mod reader;

pub use error::ProcError;
pub use reader::LiveProc;

use super::unwatched::Tally;
use super::{Event, Tick};
use crate::error::{Error, Warning};
use crate::snapshot::socket::SocketDecoder;
use crate::snapshot::{FdEntry, Snapshot};
use rustix::io::Errno;
use std::sync::Arc;

/// Unix time in seconds, with fraction.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The live source: every selected process, snapshotted each tick.
pub struct LiveSource {
    selector: super::select::Selector,
    procs: Vec<Watched>,
    sockets: SocketDecoder,
    started: bool,
    /// When the watch began: the origin of each tick's monotonic time.
    epoch: std::time::Instant,
    /// Matching processes not watched, and why; each reason is warned about once a run.
    unwatched: Tally,
    /// Most processes fdiff's own fd limit has room for.
    budget: usize,
    /// Things the user should know (a process that could not be read), printed by the caller.
    pub warnings: Vec<Warning>,
    /// An error that ends the watch (a process named with --pid turned out unreadable).
    fatal: Option<Error>,
}

struct Watched {
    proc: LiveProc,
    last: Option<Vec<Arc<FdEntry>>>,
}

impl LiveSource {
    /// A source for the processes `selector` names; [`LiveSource::start`] opens them.
    pub fn new(selector: super::select::Selector) -> LiveSource {
        LiveSource {
            selector,
            procs: Vec::new(),
            sockets: SocketDecoder::new(),
            started: false,
            epoch: std::time::Instant::now(),
            unwatched: Tally::default(),
            budget: super::unwatched::process_budget(),
            warnings: Vec::new(),
            fatal: None,
        }
    }

    /// Open the selected processes. A pid named with --pid that cannot be read is an error;
    /// so is a selection that matches nothing.
    pub fn start(&mut self) -> Result<(), Error> {
        let me = std::process::id() as i32;
        if self.selector.pids.contains(&me) {
            return Err(Error::selection(format!(
                "pid '{me}' is this fdiff itself: fdiff never watches itself"
            )));
        }
        for pid in self.selector.candidates(true, &[]) {
            let explicit = self.selector.pids.contains(&pid);
            self.admit(pid, explicit)?;
        }
        self.started = true;
        if self.procs.is_empty() {
            self.unwatched.clear_pending();
            return Err(Error::selection(self.nothing_readable()));
        }
        self.unwatched.take_warnings(&mut self.warnings, false);
        Ok(())
    }

    /// Start watching `pid`, or count why not. Only a pid named with --pid that cannot be read
    /// is an error.
    fn admit(&mut self, pid: i32, explicit: bool) -> Result<(), Error> {
        // Past the budget an open would take fds the watched processes need for their reads.
        if self.procs.len() >= self.budget {
            if explicit {
                return Err(Error::selection(format!(
                    "pid '{pid}' cannot be watched: fdiff's own fd limit has no room left for it; \
                     raise the hard limit (ulimit -Hn, prlimit or LimitNOFILE=)"
                )));
            }
            self.unwatched.over_limit(pid);
            return Ok(());
        }
        match LiveProc::open(pid) {
            Ok(p) => {
                self.unwatched.watched(pid);
                self.procs.push(Watched {
                    proc: p,
                    last: None,
                });
            }
            Err(e) if explicit => return Err(e.into_error()),
            Err(ProcError::PermissionDenied { pid, comm }) => self.unwatched.refused(pid, comm),
            Err(ProcError::Io { err, .. }) if err == Errno::MFILE => self.unwatched.over_limit(pid),
            Err(_) => {}
        }
        Ok(())
    }

    /// The line for a selection with nothing to watch: no match, or matches all refused.
    fn nothing_readable(&self) -> String {
        let n = self.unwatched.refused_count();
        if n == 0 {
            return self.nothing_matches();
        }
        format!(
            "{n} matching process{} {} could not be read: permission denied ({})",
            if n == 1 { "" } else { "es" },
            self.selection(),
            super::unwatched::PERMISSION_HINT
        )
    }

    /// The selection in the user's words.
    fn selection(&self) -> String {
        match &self.selector.name {
            Some(re) => format!(
                "of {} '{}'",
                if self.selector.full {
                    "--name --full"
                } else {
                    "--name"
                },
                crate::util::escape_control(re.as_str())
            ),
            None => "of --children".to_owned(),
        }
    }

    /// Watch `pid` too, from the next tick on (a serve that counted it cheaply and now reads
    /// it in depth). `false` when it cannot be opened (gone, refused, no fd left).
    pub fn add_pid(&mut self, pid: i32) -> bool {
        if self.procs.iter().any(|w| w.proc.id().pid == pid) {
            return true;
        }
        let before = self.procs.len();
        let _ = self.admit(pid, false);
        self.started = true;
        self.procs.len() > before
    }

    /// Stop reading `pid` in depth (it went back to being counted only). Its last snapshot
    /// is dropped; the caller tells its tracker, which sees no more ticks of it.
    pub fn remove_pid(&mut self, pid: i32) -> bool {
        let before = self.procs.len();
        self.procs.retain(|w| w.proc.id().pid != pid);
        self.procs.len() < before
    }

    /// What the live output and the report say about processes left out.
    pub fn unwatched(&self) -> Vec<super::unwatched::Unwatched> {
        self.unwatched.report()
    }

    /// Processes left out because fdiff's own fd limit had no room for them.
    pub fn over_limit(&self) -> usize {
        self.unwatched.over_limit_count()
    }

    /// The line for a selection that matches nothing.
    pub(crate) fn nothing_matches(&self) -> String {
        match &self.selector.name {
            Some(re) => format!(
                "no process matches {} '{}' (use --wait to wait for one)",
                if self.selector.full {
                    "--name --full"
                } else {
                    "--name"
                },
                re.as_str()
            ),
            None => "no process to watch: give --pid PID or --name REGEX (or try 'fdiff demo')"
                .to_owned(),
        }
    }

    /// Processes being watched that have not exited.
    pub fn live(&self) -> usize {
        self.procs.len()
    }

    /// Whether processes may join while the watch runs (a selection by name, or children).
    pub(crate) fn is_dynamic(&self) -> bool {
        self.selector.is_dynamic()
    }

    /// Take one tick: snapshot every watched process, pick up new ones, notice exits.
    /// Fails when a process named with --pid turns out unreadable at its first read.
    pub fn next_tick(&mut self) -> Result<Tick, Error> {
        let t = now_secs();
        let mono = Some(self.epoch.elapsed().as_secs_f64());
        if self.selector.is_dynamic() && self.started {
            let watched: Vec<i32> = self.procs.iter().map(|w| w.proc.id().pid).collect();
            for pid in self.selector.candidates(false, &watched) {
                if watched.contains(&pid) {
                    continue;
                }
                // Exited processes have left `procs`, so a pid not watched now is a process
                // fdiff has not seen (a reused pid has another start time).
                let _ = self.admit(pid, false);
            }
        }
        let mut events = Vec::new();
        let (sockets, warnings, fatal, named, unwatched) = (
            &mut self.sockets,
            &mut self.warnings,
            &mut self.fatal,
            &self.selector.pids,
            &mut self.unwatched,
        );
        // A process that is gone leaves the watch here; only its Exited event remains.
        self.procs.retain_mut(|w| {
            let prev: &[Arc<FdEntry>] = w.last.as_deref().unwrap_or(&[]);
            match w.proc.snapshot(prev, sockets) {
                Ok(snap) => {
                    let fds = snap.fds.clone();
                    events.push(match w.last.take() {
                        None => Event::First(snap),
                        Some(last) => Event::Update {
                            delta: crate::diff::diff(&last, &snap.fds),
                            snapshot: snap,
                        },
                    });
                    w.last = Some(fds);
                    true
                }
                Err(e) => {
                    if let ProcError::PermissionDenied { pid, comm } = e {
                        if w.last.is_none() && named.contains(&pid) {
                            // Named by the user and unreadable from the start: nothing to watch.
                            fatal.get_or_insert(
                                ProcError::PermissionDenied { pid, comm }.into_error(),
                            );
                        } else if w.last.is_none() {
                            // Never read at all: as unwatched as one refused at open.
                            unwatched.refused(pid, comm);
                        } else {
                            let e = ProcError::PermissionDenied { pid, comm };
                            warnings.push(Warning::Process {
                                pid: Some(pid),
                                message: format!("{}; treating it as gone", e.into_error()),
                            });
                        }
                    }
                    events.push(Event::Exited {
                        id: w.proc.id(),
                        at: t,
                    });
                    false
                }
            }
        });
        self.unwatched.take_warnings(&mut self.warnings, true);
        match self.fatal.take() {
            Some(e) => Err(e),
            None => Ok(Tick { t, events, mono }),
        }
    }

    /// Take one snapshot of every selected process (for `fdiff snapshot`). A process named
    /// with --pid that cannot be read is an error; others are warned about and left out.
    pub fn snapshot_all(&mut self) -> Result<Vec<Snapshot>, Error> {
        let mut out = Vec::new();
        for w in &mut self.procs {
            match w.proc.snapshot(&[], &mut self.sockets) {
                Ok(s) => out.push(s),
                Err(ProcError::Gone) => {}
                Err(e) if self.selector.pids.contains(&w.proc.id().pid) => {
                    return Err(e.into_error());
                }
                Err(ProcError::PermissionDenied { pid, comm }) => self.unwatched.refused(pid, comm),
                Err(e) => {
                    let e = e.into_error();
                    self.warnings.push(Warning::Process {
                        pid: e.pid(),
                        message: e.to_string(),
                    });
                }
            }
        }
        if out.is_empty() && self.unwatched.refused_count() > 0 {
            self.unwatched.clear_pending();
            return Err(Error::selection(self.nothing_readable()));
        }
        self.unwatched.take_warnings(&mut self.warnings, false);
        Ok(out)
    }
}
