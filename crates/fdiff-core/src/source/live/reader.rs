//! The per-process reader: held handles on /proc/PID, and one snapshot per tick that reads
//! every link but decodes only the fds that are new since the last tick.

use super::error::{ProcError, io_err};
use super::first_pass::{self, PARALLEL_MIN};
use super::now_secs;
use crate::snapshot::decode::{self, Pending};
use crate::snapshot::fdio::{FdName, read_file_at};
use crate::snapshot::socket::SocketDecoder;
use crate::snapshot::{FdEntry, FdError, FdLimit, ProcId, SNAPSHOT_SCHEMA, Snapshot};
use crate::source::procinfo::{self, Stat};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{Dir, Mode, OFlags};
use rustix::io::Errno;
use std::sync::Arc;

/// Ticks between reads of /proc/PID/limits and stat (for a new limit or name).
const REFRESH_EVERY: u64 = 10;

/// Room for the longest link the kernel returns (PATH_MAX) plus one byte to detect truncation.
pub(super) const LINK_BUF: usize = 4097;

/// One watched process: open directory handles on /proc/PID and the last tick's entries.
pub struct LiveProc {
    id: ProcId,
    comm: String,
    cmdline: Vec<String>,
    /// Held open for the whole watch: once the process is gone, reads through it fail instead
    /// of reaching a new process that reused the pid.
    pid_dir: OwnedFd,
    fd_dir: Dir,
    fdinfo_dir: Option<OwnedFd>,
    /// Readable once the process has exited (zombie or reaped).
    pidfd: Option<OwnedFd>,
    fd_limit: FdLimit,
    /// Snapshots taken, for refreshing the limit now and then.
    snapshots: u64,
    link_buf: Vec<u8>,
    file_buf: Vec<u8>,
    /// Threads a large pass may use: `None` as many as there are cores (up to
    /// [`MAX_WORKERS`]); set in tests to force the sequential or the parallel path.
    workers: Option<usize>,
    /// Threads the last readlink and decode passes used, so a test can tell which path ran.
    #[cfg_attr(not(test), allow(dead_code))]
    used_workers: (usize, usize),
}

impl LiveProc {
    /// Open /proc/PID for watching. Fails with the reason the process cannot be read.
    pub fn open(pid: i32) -> Result<LiveProc, ProcError> {
        if pid <= 0 {
            return Err(ProcError::NoSuchProcess { pid });
        }
        let pid_dir = rustix::fs::open(
            format!("/proc/{pid}").as_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::NOENT | Errno::SRCH => ProcError::NoSuchProcess { pid },
            e => io_err(pid, "/proc/PID", e),
        })?;
        let mut file_buf = Vec::with_capacity(4096);
        let stat = read_stat(pid_dir.as_fd(), pid, &mut file_buf)?
            .ok_or(ProcError::NoSuchProcess { pid })?;
        if matches!(stat.state, 'Z' | 'X') {
            return Err(ProcError::Zombie {
                pid,
                comm: stat.comm,
            });
        }
        let fd_dir = open_dir(pid_dir.as_fd(), "fd").map_err(|e| match e {
            Errno::ACCESS | Errno::PERM => ProcError::PermissionDenied {
                pid,
                comm: Some(stat.comm.clone()),
            },
            Errno::NOENT | Errno::SRCH => ProcError::NoSuchProcess { pid },
            e => io_err(pid, "/proc/PID/fd", e),
        })?;
        let cmdline = read_file(pid_dir.as_fd(), "cmdline", &mut file_buf)
            .map(procinfo::parse_cmdline)
            .unwrap_or_default();
        let fd_dir = Dir::new(fd_dir).map_err(|e| io_err(pid, "/proc/PID/fd", e))?;
        // A pidfd turns "has it exited?" into one poll per tick instead of formatting
        // /proc/PID/stat. It is checked against the start time read above, so it cannot name
        // a process that reused the pid meanwhile.
        let pidfd = rustix::process::Pid::from_raw(pid)
            .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok())
            .filter(|_| {
                matches!(read_stat(pid_dir.as_fd(), pid, &mut file_buf),
                    Ok(Some(s)) if s.start_time == stat.start_time)
            });
        Ok(LiveProc {
            id: ProcId {
                pid,
                start_time: stat.start_time,
            },
            comm: stat.comm,
            cmdline,
            pid_dir,
            fd_dir,
            fdinfo_dir: None,
            pidfd,
            fd_limit: FdLimit::default(),
            snapshots: 0,
            link_buf: vec![0; LINK_BUF],
            file_buf,
            workers: None,
            used_workers: (1, 1),
        })
    }

    /// The process this reader reads.
    pub fn id(&self) -> ProcId {
        self.id
    }

    /// Whether the process has exited: a poll of its pidfd, or its stat where there is none.
    fn check_alive(&mut self) -> Result<(), ProcError> {
        let Some(pidfd) = &self.pidfd else {
            return self.current_stat().map(|_| ());
        };
        let mut fds = [rustix::event::PollFd::new(
            pidfd,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(
            &mut fds,
            Some(&rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            }),
        ) {
            Ok(0) => Ok(()),
            Ok(_) => Err(ProcError::Gone),
            Err(_) => self.current_stat().map(|_| ()),
        }
    }

    fn current_stat(&mut self) -> Result<Stat, ProcError> {
        match read_stat(self.pid_dir.as_fd(), self.id.pid, &mut self.file_buf) {
            Ok(Some(s)) if s.start_time == self.id.start_time && !matches!(s.state, 'Z' | 'X') => {
                Ok(s)
            }
            Ok(_) => Err(ProcError::Gone),
            Err(ProcError::Io { .. }) | Err(ProcError::NoSuchProcess { .. }) => {
                Err(ProcError::Gone)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the process is tearing down (or gone): one read of its stat.
    fn exiting(&mut self) -> bool {
        match read_stat(self.pid_dir.as_fd(), self.id.pid, &mut self.file_buf) {
            Ok(Some(s)) => s.start_time != self.id.start_time || s.exiting(),
            _ => true,
        }
    }

    /// Take a snapshot. Fds whose link text is unchanged since `prev` (the last snapshot's fds,
    /// in fd order) reuse its decoded entry; only new ones are classified and decoded.
    pub fn snapshot(
        &mut self,
        prev: &[Arc<FdEntry>],
        sockets: &mut SocketDecoder,
    ) -> Result<Snapshot, ProcError> {
        // The limit and the name rarely change (prlimit, exec), and /proc/PID/limits and stat
        // are formatted in full on every read: refresh them every few ticks, not every tick.
        let refresh = self.snapshots % REFRESH_EVERY == 0;
        if refresh {
            self.fd_limit = read_file(self.pid_dir.as_fd(), "limits", &mut self.file_buf)
                .map(procinfo::parse_fd_limit)
                .unwrap_or_default();
        }
        self.snapshots += 1;
        let taken_at = now_secs();

        // Unchanged fds go straight into the result; new ones are decoded after the pass and
        // merged in, so an unchanged table costs the readlinks and nothing per fd beyond.
        let mut fds: Vec<Arc<FdEntry>> = Vec::with_capacity(prev.len() + 16);
        let mut in_order = true;
        let mut pending: Vec<Pending> = Vec::new();
        let mut j = 0usize;
        let mut last_fd = -1;
        let mut unreadable = Unreadable::default();
        // A first snapshot has nothing to compare with: list the fds, then read their links
        // (in parallel when there are many).
        let first = prev.is_empty();
        let mut listed: Vec<i32> = Vec::new();
        let dense = if first { self.read_dense() } else { None };
        let listing = dense.is_none();
        if let Some((p, u)) = dense {
            (pending, unreadable) = (p, u);
        }
        self.fd_dir.rewind();
        while let Some(entry) = listing.then(|| self.fd_dir.read()).flatten() {
            let entry = match entry {
                Ok(e) => e,
                Err(Errno::NOENT | Errno::SRCH) => return Err(ProcError::Gone),
                Err(Errno::ACCESS | Errno::PERM) => {
                    return Err(ProcError::PermissionDenied {
                        pid: self.id.pid,
                        comm: Some(self.comm.clone()),
                    });
                }
                Err(e) => return Err(io_err(self.id.pid, "/proc/PID/fd", e)),
            };
            let Some(fd) = parse_fd(entry.file_name().to_bytes()) else {
                continue;
            };
            if first {
                in_order &= fd > last_fd;
                last_fd = fd;
                listed.push(fd);
                continue;
            }
            let dirfd = self
                .fd_dir
                .fd()
                .map_err(|e| io_err(self.id.pid, "/proc/PID/fd", e))?;
            let n = match rustix::fs::readlinkat_raw(
                dirfd,
                entry.file_name(),
                &mut self.link_buf[..],
            ) {
                Ok(n) => n,
                // Closed between readdir and readlink: it simply was not there.
                Err(Errno::NOENT) => continue,
                Err(e) => {
                    unreadable.add(fd, e);
                    continue;
                }
            };
            let raw = &self.link_buf[..n.min(LINK_BUF)];
            // The kernel lists fds in ascending order; walk the previous tick alongside,
            // falling back to a search if that ever stops being true.
            let before = if fd > last_fd {
                while j < prev.len() && prev[j].fd < fd {
                    j += 1;
                }
                prev.get(j).filter(|p| p.fd == fd)
            } else {
                prev.binary_search_by_key(&fd, |p| p.fd)
                    .ok()
                    .and_then(|i| prev.get(i))
            };
            in_order &= fd > last_fd;
            last_fd = fd;
            match before {
                Some(p) if p.same_target(raw) => fds.push(Arc::clone(p)),
                _ => pending.push(Pending {
                    fd,
                    raw: raw.to_vec(),
                }),
            }
        }
        if first && listing {
            let dirfd = self
                .fd_dir
                .fd()
                .map_err(|e| io_err(self.id.pid, "/proc/PID/fd", e))?;
            let workers = first_pass::workers_for(listed.len(), 2 * PARALLEL_MIN, self.workers);
            self.used_workers.0 = workers;
            (pending, unreadable) = first_pass::readlink_all(dirfd, &listed, workers);
        }
        // Listing allowed but every link refused: the whole process is off limits (e.g. a
        // process in another user namespace), which is an error, not an empty snapshot.
        if unreadable.denied > 0 && fds.is_empty() && pending.is_empty() {
            return Err(ProcError::PermissionDenied {
                pid: self.id.pid,
                comm: Some(self.comm.clone()),
            });
        }
        let new = self.decode_pending(pending, sockets);

        // Checked after the pass: a process that exited before or during it leaves an empty or
        // partial list, which must be reported as the exit, not as closes.
        self.check_alive()?;
        // Its pidfd says so only at the very end of the exit, after the kernel closed its fds:
        // a table that shrank is checked against the task's PF_EXITING, so a process killed
        // while watched keeps its last real table (and its survivors) instead of ending at 0.
        if fds.len() + new.len() < prev.len() && self.exiting() {
            return Err(ProcError::Gone);
        }
        if refresh {
            let st = self.current_stat()?;
            if st.comm != self.comm {
                // It exec'd since it was first seen (a fork caught before its exec): name and
                // command line are the new program's.
                self.comm = st.comm;
                self.cmdline = read_file(self.pid_dir.as_fd(), "cmdline", &mut self.file_buf)
                    .map(procinfo::parse_cmdline)
                    .unwrap_or_default();
            }
        }
        if !new.is_empty() {
            fds = merge_by_fd(fds, new);
        }
        if !in_order {
            fds.sort_by_key(|e| e.fd);
        }
        Ok(Snapshot {
            schema: SNAPSHOT_SCHEMA.to_owned(),
            pid: self.id.pid,
            comm: self.comm.clone(),
            cmdline: self.cmdline.clone(),
            start_time: self.id.start_time,
            taken_at,
            fd_limit: self.fd_limit,
            fds,
            errors: unreadable.errors,
        })
    }

    /// A first pass without listing the directory: the size of /proc/PID/fd is the number of
    /// open fds (Linux 6.2+; 0 before), so when fds 0..N-1 are all open they are all there is,
    /// and their links can be read at once instead of after a getdents walk of N entries.
    /// `None` (list the directory instead) when the size is unknown, or the table is sparse:
    /// then fd N-1 is closed (one readlink tells, the usual case), or some number below N is
    /// (the pass finds it and its work is redone by listing).
    fn read_dense(&mut self) -> Option<(Vec<Pending>, Unreadable)> {
        let dirfd = self.fd_dir.fd().ok()?;
        let n = rustix::fs::fstat(dirfd).ok()?.st_size;
        let n = i32::try_from(n).ok().filter(|&n| n > 0)?;
        let last = FdName::new(n - 1);
        if rustix::fs::readlinkat_raw(dirfd, last.as_str(), &mut self.link_buf[..]).is_err() {
            return None;
        }
        let listed: Vec<i32> = (0..n).collect();
        let workers = first_pass::workers_for(listed.len(), 2 * PARALLEL_MIN, self.workers);
        let (pending, unreadable) = first_pass::readlink_all(dirfd, &listed, workers);
        // An fd that vanished (ENOENT) left a gap, so others may lie above N.
        if pending.len() + unreadable.errors.len() != listed.len() {
            return None;
        }
        self.used_workers.0 = workers;
        Some((pending, unreadable))
    }

    /// Decode the new fds; the result is in fd order, without those that closed meanwhile.
    fn decode_pending(
        &mut self,
        pending: Vec<Pending>,
        sockets: &mut SocketDecoder,
    ) -> Vec<Arc<FdEntry>> {
        if pending.is_empty() {
            return Vec::new();
        }
        let sorted = decode::Sorted::new(pending);
        if sorted.any_anon && self.fdinfo_dir.is_none() {
            self.fdinfo_dir = open_dir(self.pid_dir.as_fd(), "fdinfo").ok();
        }
        let Ok(fd_dir) = self.fd_dir.fd() else {
            return Vec::new();
        };
        let dirs = decode::Dirs {
            fd_dir,
            fdinfo_dir: self.fdinfo_dir.as_ref().map(|d| d.as_fd()),
        };
        let workers = first_pass::workers_for(sorted.others.len(), PARALLEL_MIN, self.workers);
        self.used_workers.1 = workers;
        first_pass::decode(
            dirs,
            self.id.pid,
            sorted,
            sockets,
            workers,
            &mut self.file_buf,
        )
    }
}

/// Fds that exist but whose link could not be read, and how many of those were refused.
#[derive(Default)]
pub(super) struct Unreadable {
    pub(super) errors: Vec<FdError>,
    pub(super) denied: usize,
}

impl Unreadable {
    pub(super) fn add(&mut self, fd: i32, e: Errno) {
        self.denied += usize::from(matches!(e, Errno::ACCESS | Errno::PERM));
        self.errors.push(FdError {
            fd,
            error: format!("readlink: {e}"),
        });
    }
}

/// Two fd-ordered lists as one.
fn merge_by_fd(a: Vec<Arc<FdEntry>>, b: Vec<Arc<FdEntry>>) -> Vec<Arc<FdEntry>> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
        if x.fd <= y.fd {
            out.extend(a.next());
        } else {
            out.extend(b.next());
        }
    }
    out.extend(a);
    out.extend(b);
    out
}

fn parse_fd(name: &[u8]) -> Option<i32> {
    if name.is_empty() || name.len() > 10 || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    name.iter()
        .try_fold(0i64, |acc, &d| Some(acc * 10 + i64::from(d - b'0')))
        .and_then(|v| i32::try_from(v).ok())
}

fn open_dir(at: BorrowedFd<'_>, name: &str) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        at,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn read_file<'b>(at: BorrowedFd<'_>, name: &str, buf: &'b mut Vec<u8>) -> Option<&'b [u8]> {
    read_file_at(at, name, buf).ok()
}

/// /proc/PID/stat through the held directory. `Ok(None)` when it does not parse.
fn read_stat(at: BorrowedFd<'_>, pid: i32, buf: &mut Vec<u8>) -> Result<Option<Stat>, ProcError> {
    match read_file_at(at, "stat", buf) {
        Ok(bytes) => Ok(procinfo::parse_stat(bytes)),
        Err(Errno::NOENT | Errno::SRCH) => Err(ProcError::NoSuchProcess { pid }),
        Err(e) => Err(io_err(pid, "/proc/PID/stat", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_numbers_parse() {
        assert_eq!(parse_fd(b"17"), Some(17));
        assert_eq!(parse_fd(b"."), None);
        assert_eq!(parse_fd(b"99999999999"), None);
    }

    #[test]
    fn snapshot_of_self_sees_a_new_file_and_reuses_unchanged_entries() {
        let mut proc = LiveProc::open(std::process::id() as i32).expect("open self");
        let mut sockets = SocketDecoder::new();
        let a = proc.snapshot(&[], &mut sockets).expect("snapshot");
        let f = std::fs::File::open("/proc/self/cmdline").expect("open");
        let b = proc.snapshot(&a.fds, &mut sockets).expect("snapshot");
        use std::os::fd::AsRawFd;
        let fd = f.as_raw_fd();
        let e = b.fds.iter().find(|e| e.fd == fd).expect("new fd listed");
        assert_eq!(e.kind(), crate::snapshot::Kind::File);
        // Entries present in both are shared, not decoded again.
        let shared = a
            .fds
            .iter()
            .filter(|x| b.fds.iter().any(|y| Arc::ptr_eq(x, y)))
            .count();
        assert!(shared > 0);
    }

    /// Enough new fds at once to take both parallel paths (readlink and decode): every one is
    /// decoded, in fd order, exactly as the sequential path decodes it.
    #[test]
    fn many_new_fds_decode_in_parallel_like_one_by_one() {
        // Past 2 × PARALLEL_MIN, the first snapshot also reads the links in parallel. Kinds
        // that take each decoder: paths (stat), anon inodes (fdinfo), sockets (batch).
        let dir = std::env::temp_dir();
        let mut held: Vec<std::os::fd::OwnedFd> = Vec::new();
        for i in 0..2 * PARALLEL_MIN + 100 {
            held.push(match i % 4 {
                0 => std::fs::File::open("/dev/null").expect("open").into(),
                1 => std::fs::File::open(&dir).expect("open dir").into(),
                2 => rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)
                    .expect("eventfd"),
                _ => std::net::UdpSocket::bind("127.0.0.1:0")
                    .expect("udp")
                    .into(),
            });
        }
        let me = std::process::id() as i32;
        let mut sockets = SocketDecoder::new();
        let mut seq = LiveProc::open(me).expect("open self");
        seq.workers = Some(1);
        let mut par = LiveProc::open(me).expect("open self");
        par.workers = Some(3);
        let a = seq
            .snapshot(&[], &mut sockets)
            .expect("sequential snapshot");
        let b = par.snapshot(&[], &mut sockets).expect("parallel snapshot");
        let c = seq
            .snapshot(&[], &mut sockets)
            .expect("sequential snapshot");
        assert_eq!(seq.used_workers, (1, 1), "the sequential path ran");
        assert_eq!(par.used_workers, (3, 3), "both parallel paths ran");
        assert!(b.fds.is_sorted_by_key(|e| e.fd));
        assert!(b.fds.len() > 2 * PARALLEL_MIN, "{}", b.fds.len());
        // Other tests of this process open and close fds meanwhile: compare only the fds held
        // here, which both sequential snapshots (before and after) agree on.
        use std::os::fd::AsRawFd;
        for fd in held.iter().map(AsRawFd::as_raw_fd) {
            let find = |s: &Snapshot| s.fds.iter().find(|e| e.fd == fd).cloned();
            let (x, y, z) = (find(&a), find(&b), find(&c));
            assert!(x.is_some(), "fd {fd} listed");
            if x == z {
                assert_eq!(y, x, "fd {fd}: parallel decode differs from sequential");
            }
        }
        // The same fds, one tick later, decoded nothing anew and lost nothing.
        let again = par.snapshot(&b.fds, &mut sockets).expect("tick");
        let fds = |s: &Snapshot| s.fds.iter().map(|e| e.fd).collect::<Vec<_>>();
        let missing: Vec<i32> = fds(&b)
            .into_iter()
            .filter(|f| !fds(&again).contains(f))
            .collect();
        assert!(
            missing.len() < 8,
            "only fds the test harness itself closed may go: {missing:?}"
        );
    }

    #[test]
    fn missing_pid_is_no_such_process() {
        assert_eq!(
            LiveProc::open(i32::MAX).err(),
            Some(ProcError::NoSuchProcess { pid: i32::MAX })
        );
    }
}
