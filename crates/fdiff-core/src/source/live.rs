//! Live source: reads the open fds of a running process from /proc, tick after tick, decoding
//! only what is new since the last tick.

use super::unwatched::Tally;
use super::{Event, Tick};
use crate::error::{Error, Warning};
use crate::snapshot::classify::{Class, classify};
use crate::snapshot::file::{FileStat, decode_memfd, decode_path};
use crate::snapshot::socket::SocketDecoder;
use crate::snapshot::{
    Detail, FdEntry, FdError, FdLimit, PipeDetail, ProcId, SNAPSHOT_SCHEMA, Snapshot,
    UnknownDetail, anon,
};
use crate::source::procinfo::{self, Stat};
use crate::util::text_and_hex;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, Dir, Mode, OFlags};
use rustix::io::Errno;
use std::sync::Arc;

/// Why a process could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcError {
    NoSuchProcess {
        pid: i32,
    },
    PermissionDenied {
        pid: i32,
        comm: Option<String>,
    },
    Zombie {
        pid: i32,
        comm: String,
    },
    /// Exited (or its pid now names another process) while being watched.
    Gone,
    Io {
        pid: i32,
        what: &'static str,
        err: Errno,
    },
}

impl ProcError {
    /// The typed error of the core (whose line is what the user sees).
    pub fn into_error(self) -> Error {
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

/// Ticks between reads of /proc/PID/limits and stat (for a new limit or name).
const REFRESH_EVERY: u64 = 10;

/// Room for the longest link the kernel returns (PATH_MAX) plus one byte to detect truncation.
const LINK_BUF: usize = 4097;

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

/// A new or changed fd found by the readlink pass, decoded after the pass.
struct Pending {
    fd: i32,
    raw: Vec<u8>,
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
        self.fd_dir.rewind();
        while let Some(entry) = self.fd_dir.read() {
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
        if first {
            let dirfd = self
                .fd_dir
                .fd()
                .map_err(|e| io_err(self.id.pid, "/proc/PID/fd", e))?;
            let workers = workers_for(listed.len(), 2 * PARALLEL_MIN, self.workers);
            self.used_workers.0 = workers;
            (pending, unreadable) = readlink_all(dirfd, &listed, workers);
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

    /// Decode the new fds; the result is in fd order, without those that closed meanwhile.
    fn decode_pending(
        &mut self,
        pending: Vec<Pending>,
        sockets: &mut SocketDecoder,
    ) -> Vec<Arc<FdEntry>> {
        if pending.is_empty() {
            return Vec::new();
        }
        // One look at each link: sockets go to the batch lookup with their inode, the rest to
        // the per-fd decoders.
        let mut socks: Vec<(Pending, u64)> = Vec::new();
        let mut others: Vec<Pending> = Vec::with_capacity(pending.len());
        let mut any_anon = false;
        for p in pending {
            match classify(&p.raw) {
                Class::Socket { inode } => socks.push((p, inode)),
                class => {
                    any_anon |= matches!(class, Class::AnonInode { .. });
                    others.push(p);
                }
            }
        }
        if any_anon && self.fdinfo_dir.is_none() {
            self.fdinfo_dir = open_dir(self.pid_dir.as_fd(), "fdinfo").ok();
        }
        let Ok(fd_dir) = self.fd_dir.fd() else {
            return Vec::new();
        };
        let fdinfo_dir = self.fdinfo_dir.as_ref().map(|d| d.as_fd());
        let pid = self.id.pid;
        let workers = workers_for(others.len(), PARALLEL_MIN, self.workers);
        self.used_workers.1 = workers;
        let decoded: Vec<Vec<Option<Arc<FdEntry>>>> = if workers <= 1 {
            let file_buf = &mut self.file_buf;
            let mut d = Decoder {
                fd_dir,
                fdinfo_dir,
                buf: std::mem::take(file_buf),
            };
            let out = others.iter().map(|p| d.decode(p)).collect();
            *file_buf = d.buf;
            vec![out, decode_sockets(pid, &socks, sockets)]
        } else {
            // A first snapshot of a large table is mostly stat and fdinfo reads, each a few
            // syscalls the kernel serves in parallel: split them across cores while this
            // thread asks for the sockets.
            let chunk = others.len().div_ceil(workers);
            std::thread::scope(|scope| {
                let decode = move |part: &[Pending]| {
                    let mut d = Decoder {
                        fd_dir,
                        fdinfo_dir,
                        buf: Vec::with_capacity(4096),
                    };
                    part.iter().map(|p| d.decode(p)).collect::<Vec<_>>()
                };
                let handles: Vec<_> = others
                    .chunks(chunk)
                    .map(|part| (part, scope.spawn(move || decode(part))))
                    .collect();
                let mut all = vec![decode_sockets(pid, &socks, sockets)];
                // A worker that died is redone here rather than losing its fds.
                all.extend(
                    handles
                        .into_iter()
                        .map(|(part, h)| h.join().unwrap_or_else(|_| decode(part))),
                );
                all
            })
        };
        let mut out: Vec<Arc<FdEntry>> = decoded.into_iter().flatten().flatten().collect();
        out.sort_by_key(|e| e.fd);
        out
    }
}

/// Fds that exist but whose link could not be read, and how many of those were refused.
#[derive(Default)]
struct Unreadable {
    errors: Vec<FdError>,
    denied: usize,
}

impl Unreadable {
    fn add(&mut self, fd: i32, e: Errno) {
        self.denied += usize::from(matches!(e, Errno::ACCESS | Errno::PERM));
        self.errors.push(FdError {
            fd,
            error: format!("readlink: {e}"),
        });
    }
}

/// Read the links of `fds`, in order. Large tables are split across cores; a first
/// `fdiff snapshot` of 20,000 fds is mostly this pass.
fn readlink_all(dirfd: BorrowedFd<'_>, fds: &[i32], workers: usize) -> (Vec<Pending>, Unreadable) {
    fn part(dirfd: BorrowedFd<'_>, fds: &[i32]) -> (Vec<Pending>, Unreadable) {
        let mut buf = vec![0u8; LINK_BUF];
        let (mut pending, mut unreadable) = (Vec::with_capacity(fds.len()), Unreadable::default());
        for &fd in fds {
            match rustix::fs::readlinkat_raw(dirfd, FdName::new(fd).as_str(), &mut buf[..]) {
                Ok(n) => pending.push(Pending {
                    fd,
                    raw: buf[..n.min(LINK_BUF)].to_vec(),
                }),
                // Closed between readdir and readlink: it simply was not there.
                Err(Errno::NOENT) => {}
                Err(e) => unreadable.add(fd, e),
            }
        }
        (pending, unreadable)
    }
    if workers <= 1 {
        return part(dirfd, fds);
    }
    let chunk = fds.len().div_ceil(workers);
    let parts: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = fds
            .chunks(chunk)
            .map(|c| (c, scope.spawn(move || part(dirfd, c))))
            .collect();
        // A worker that died is redone here rather than losing its fds.
        handles
            .into_iter()
            .map(|(c, h)| h.join().unwrap_or_else(|_| part(dirfd, c)))
            .collect()
    });
    let mut out = (Vec::with_capacity(fds.len()), Unreadable::default());
    for (p, u) in parts {
        out.0.extend(p);
        out.1.errors.extend(u.errors);
        out.1.denied += u.denied;
    }
    out
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

/// Threads for a pass over `n` items: one below `min`, else the forced count or the cores.
fn workers_for(n: usize, min: usize, forced: Option<usize>) -> usize {
    if n < min {
        return 1;
    }
    forced.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, |c| c.get().min(MAX_WORKERS))
    })
}

/// Pending fds (besides sockets) from which decoding is split across threads.
const PARALLEL_MIN: usize = 1024;
const MAX_WORKERS: usize = 4;

fn decode_sockets(
    pid: i32,
    socks: &[(Pending, u64)],
    sockets: &mut SocketDecoder,
) -> Vec<Option<Arc<FdEntry>>> {
    if socks.is_empty() {
        return Vec::new();
    }
    let pairs: Vec<(i32, u64)> = socks.iter().map(|(p, inode)| (p.fd, *inode)).collect();
    let details = sockets.decode_fds(pid, &pairs);
    socks
        .iter()
        .zip(details)
        .map(|((p, _), d)| Some(Arc::new(entry(p.fd, &p.raw, Detail::Socket(d)))))
        .collect()
}

/// Decodes new fds other than sockets: stat for paths and memfds, fdinfo for anon inodes.
struct Decoder<'a> {
    fd_dir: BorrowedFd<'a>,
    fdinfo_dir: Option<BorrowedFd<'a>>,
    buf: Vec<u8>,
}

impl Decoder<'_> {
    /// The entry for `p`, or `None` when the fd closed meanwhile.
    fn decode(&mut self, p: &Pending) -> Option<Arc<FdEntry>> {
        let detail = match classify(&p.raw) {
            Class::Path {
                path,
                deleted_suffix,
            } => decode_path(
                &p.raw,
                path,
                deleted_suffix,
                self.stat_fd(p.fd).ok()?.as_ref(),
            ),
            Class::Memfd { name } => decode_memfd(name, self.stat_fd(p.fd).ok()?.as_ref()),
            Class::Pipe { inode } => Detail::Pipe(PipeDetail {
                inode: Some(inode),
                path: None,
            }),
            Class::AnonInode { subtype } => {
                let text = self.read_fdinfo(p.fd).ok()?;
                Detail::AnonInode(anon::decode(subtype, text.as_deref()))
            }
            // Sockets are decoded in a batch elsewhere.
            Class::Socket { .. } => return None,
            Class::Other => Detail::Unknown(UnknownDetail {}),
        };
        Some(Arc::new(entry(p.fd, &p.raw, detail)))
    }

    /// Stat the open file behind fd N. `Ok(None)` when it exists but cannot be stat'ed.
    ///
    /// The path walk through the magic link does not enter the file system, but the getattr
    /// does: on a stalled FUSE or hung NFS mount a plain stat waits forever for the server.
    /// `AT_STATX_DONT_SYNC` makes FUSE, NFS, CIFS and Ceph answer from their attribute cache,
    /// and the mask leaves out the times, for which NFS would first flush dirty pages.
    fn stat_fd(&self, fd: i32) -> Result<Option<FileStat>, Vanished> {
        use rustix::fs::StatxFlags as M;
        let mask = M::TYPE | M::MODE | M::NLINK | M::INO | M::SIZE;
        match rustix::fs::statx(
            self.fd_dir,
            FdName::new(fd).as_str(),
            AtFlags::STATX_DONT_SYNC,
            mask,
        ) {
            Ok(st) => Ok(Some(FileStat {
                mode: u32::from(st.stx_mode),
                nlink: u64::from(st.stx_nlink),
                size: st.stx_size,
                ino: st.stx_ino,
                dev: rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor),
                rdev: rustix::fs::makedev(st.stx_rdev_major, st.stx_rdev_minor),
            })),
            Err(Errno::NOENT) => Err(Vanished),
            Err(_) => Ok(None),
        }
    }

    /// The text of /proc/PID/fdinfo/N; `Ok(None)` when it exists but cannot be read.
    fn read_fdinfo(&mut self, fd: i32) -> Result<Option<String>, Vanished> {
        let Some(dir) = self.fdinfo_dir else {
            return Ok(None);
        };
        match read_file_at(dir, FdName::new(fd).as_str(), &mut self.buf) {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(bytes).into_owned())),
            Err(Errno::NOENT) => Err(Vanished),
            Err(_) => Ok(None),
        }
    }
}

/// The fd closed while it was being decoded.
struct Vanished;

fn entry(fd: i32, raw: &[u8], detail: Detail) -> FdEntry {
    let (target, target_hex) = text_and_hex(raw);
    FdEntry {
        fd,
        target,
        target_hex,
        detail,
    }
}

/// An fd number as a path component, formatted without allocating.
struct FdName {
    buf: [u8; 12],
    len: usize,
}

impl FdName {
    fn new(fd: i32) -> FdName {
        let mut buf = [0u8; 12];
        let mut n = fd.unsigned_abs();
        let mut i = buf.len();
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let len = buf.len() - i;
        buf.copy_within(i.., 0);
        FdName { buf, len }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
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

/// Room left after a read beyond which it was the last one (no /proc line is this long).
const SHORT_READ_SLACK: usize = 512;

fn read_file_at<'b>(
    at: BorrowedFd<'_>,
    name: &str,
    buf: &'b mut Vec<u8>,
) -> Result<&'b [u8], Errno> {
    let fd = rustix::fs::openat(at, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    buf.clear();
    loop {
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(buf.capacity().max(4096));
        }
        let room = buf.capacity() - buf.len();
        let n = rustix::io::read(&fd, rustix::buffer::spare_capacity(buf))?;
        // A /proc file comes from a seq_file, which fills a read up to the last whole line
        // that fits: a read that left more room than any line needs was the end, and the
        // read that would return 0 can be skipped (a quarter of an fdinfo read's syscalls).
        if n == 0 || room - n > SHORT_READ_SLACK {
            return Ok(&buf[..]);
        }
    }
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

fn io_err(pid: i32, what: &'static str, e: Errno) -> ProcError {
    ProcError::Io { pid, what, err: e }
}

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
    pub fn new(selector: super::select::Selector) -> LiveSource {
        LiveSource {
            selector,
            procs: Vec::new(),
            sockets: SocketDecoder::new(),
            started: false,
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

    /// What the live output and the report say about processes left out.
    pub fn unwatched(&self) -> Vec<super::unwatched::Unwatched> {
        self.unwatched.report()
    }

    /// Processes left out because fdiff's own fd limit had no room for them.
    pub fn over_limit(&self) -> usize {
        self.unwatched.over_limit_count()
    }

    /// The line for a selection that matches nothing.
    pub fn nothing_matches(&self) -> String {
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

    pub fn is_dynamic(&self) -> bool {
        self.selector.is_dynamic()
    }

    /// Take one tick: snapshot every watched process, pick up new ones, notice exits.
    /// Fails when a process named with --pid turns out unreadable at its first read.
    pub fn next_tick(&mut self) -> Result<Tick, Error> {
        let t = now_secs();
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
            None => Ok(Tick { t, events }),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_names() {
        assert_eq!(FdName::new(0).as_str(), "0");
        assert_eq!(FdName::new(19999).as_str(), "19999");
        assert_eq!(FdName::new(i32::MAX).as_str(), "2147483647");
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
