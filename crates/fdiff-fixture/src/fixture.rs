//! Test fixture (the `fdiff-fixture` executable): a process that opens real fds of every kind on
//! request.

use nix::sys::signal::{SigSet, Signal};
use std::ffi::{CString, OsStr};
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

/// Lower-case hex of `bytes`, as fdiff writes non-UTF-8 paths (written here again on purpose:
/// the fixture is the tests' oracle, not a user of fdiff's code).
fn hex_encode(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Command-line arguments of `fdiff-fixture`.
#[derive(Debug, Clone, Default)]
pub struct FixtureArgs {
    /// Work directory; a fresh `fdiff-fixture-XXXXXX` under `$TMPDIR` (or /tmp) when absent.
    pub dir: Option<PathBuf>,
    /// Schedules to start before reading stdin (`--run "leak-file 10"`); ids 1, 2, ... in order.
    pub schedules: Vec<String>,
    /// Process name (comm) to take, so a report names the program rather than "fdiff".
    pub name: Option<String>,
    /// Soft RLIMIT_NOFILE to set instead of raising it to the hard limit.
    pub limit: Option<u64>,
}

/// Runs the fixture until stdin reaches EOF or a `quit` command; returns the process exit code.
pub fn run(args: FixtureArgs) -> i32 {
    if let Some(name) = &args.name {
        let _ =
            rustix::thread::set_name(&std::ffi::CString::new(name.as_str()).unwrap_or_default());
    }
    // Parse first so a typo fails fast, before anything is created on disk.
    let mut schedules = Vec::with_capacity(args.schedules.len());
    for s in &args.schedules {
        match parse_schedule(s) {
            Ok(p) => schedules.push(p),
            Err(e) => {
                eprintln!("fdiff-fixture: bad --run {s:?}: {e}");
                return 2;
            }
        }
    }

    // SIGTERM rather than SIGKILL: the signal thread below then still removes the work
    // directory when the parent dies.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM));
    // Blocked before any thread exists so every thread inherits the mask: a stray SIGUSR1 then
    // queues for the signalfd instead of killing the fixture.
    if let Err(e) = block_usr_signals() {
        eprintln!("fdiff-fixture: cannot block SIGUSR1/SIGUSR2: {e}");
    }
    let term = term_sigset();
    let term_blocked = term.thread_block().is_ok();
    set_nofile_limit(args.limit);

    let dir = match make_work_dir(args.dir.as_deref()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("fdiff-fixture: cannot create work directory: {e}");
            return 1;
        }
    };
    if term_blocked {
        spawn_terminator(term, dir.clone());
    }
    let code = match Fixture::new(dir.clone()) {
        Ok(mut fx) => fx.serve(schedules),
        Err(e) => {
            eprintln!("fdiff-fixture: startup failed: {e}");
            1
        }
    };
    if let Err(e) = fs::remove_dir_all(&dir) {
        eprintln!("fdiff-fixture: cannot remove {}: {e}", dir.display());
    }
    code
}

// ---------------------------------------------------------------------------------------------
// Commands and schedules

/// One stdin command; each is answered by exactly one JSON line on stdout.
///
/// `kinds` | `fill N` | `change PERCENT` | `start SCHEDULE` | `stop ID` | `close FD` | `count` |
/// `spawn-worker SCHEDULE` | `kill-worker PID` | `quit`; arguments are whitespace-separated and
/// extra words are an error.
#[derive(Debug, Clone, PartialEq)]
enum Command {
    Kinds,
    Fill(usize),
    Change(f64),
    Start(Schedule),
    Stop(u64),
    Close(RawFd),
    Count,
    /// Fork a child fixture running this schedule (validated; kept as text to pass on).
    SpawnWorker(String),
    KillWorker(u32),
    /// Bind a unix listener named like PostgreSQL's and connect N clients to it.
    UnixClients(usize),
    /// Move the main thread into a new network namespace and open unix sockets there, one
    /// bound to a name that holds a newline and a forged /proc/net/unix row.
    NetnsSpoof,
    /// Open unix sockets in a thread that moved into a new network namespace, and keep them:
    /// sockets whose namespace differs from the process's.
    NetnsThread,
    /// Keep a pool of child fixtures that are replaced over and over (see [`PoolSpec`]).
    Respawn(PoolSpec),
    /// Open the kinds issue 16 decodes (see `decode_kinds`).
    DecodeKinds,
    Quit,
}

/// A background fd pattern; rates are events per second.
#[derive(Debug, Clone, PartialEq)]
enum Schedule {
    LeakFile {
        rate: f64,
    },
    LeakTcp {
        rate: f64,
    },
    LeakPipe {
        rate: f64,
    },
    LeakEventfd {
        rate: f64,
    },
    Churn {
        level: usize,
        rate: f64,
    },
    Burst {
        n: usize,
        after_ms: u64,
        hold_ms: u64,
    },
    Pool {
        cap: usize,
        rate: f64,
    },
    Reuse {
        rate: f64,
    },
    /// Open `n` files at `rate` per second, then hold them (not a leak: released on stop).
    HoldFiles {
        n: usize,
        rate: f64,
    },
    /// Connect `n` TCP clients to 127.0.0.1:`port` at `rate` per second, then hold them.
    HoldTcp {
        n: usize,
        rate: f64,
        port: u16,
    },
}

impl Schedule {
    /// Leaks keep their fds when stopped: that is what they simulate.
    fn is_leak(&self) -> bool {
        matches!(
            self,
            Schedule::LeakFile { .. }
                | Schedule::LeakTcp { .. }
                | Schedule::LeakPipe { .. }
                | Schedule::LeakEventfd { .. }
        )
    }

    fn name(&self) -> &'static str {
        match self {
            Schedule::LeakFile { .. } => "leak-file",
            Schedule::LeakTcp { .. } => "leak-tcp",
            Schedule::LeakPipe { .. } => "leak-pipe",
            Schedule::LeakEventfd { .. } => "leak-eventfd",
            Schedule::Churn { .. } => "churn",
            Schedule::Burst { .. } => "burst",
            Schedule::Pool { .. } => "pool",
            Schedule::Reuse { .. } => "reuse",
            Schedule::HoldFiles { .. } => "hold-files",
            Schedule::HoldTcp { .. } => "hold-tcp",
        }
    }
}

fn parse_command(line: &str) -> Result<Command, String> {
    let line = line.trim();
    let (word, rest) = match line.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (line, ""),
    };
    let no_args = |c: Command| {
        if rest.is_empty() {
            Ok(c)
        } else {
            Err(format!("`{word}` takes no arguments"))
        }
    };
    match word {
        "" => Err("empty command".into()),
        "kinds" => no_args(Command::Kinds),
        "count" => no_args(Command::Count),
        "quit" => no_args(Command::Quit),
        "fill" => Ok(Command::Fill(parse_one(word, rest)?)),
        "change" => {
            let p: f64 = parse_one(word, rest)?;
            if !(0.0..=100.0).contains(&p) {
                return Err(format!("change: percent {p} is not within 0..=100"));
            }
            Ok(Command::Change(p))
        }
        "start" => Ok(Command::Start(parse_schedule(rest)?)),
        "stop" => Ok(Command::Stop(parse_one(word, rest)?)),
        "spawn-worker" => {
            parse_schedule(rest)?;
            Ok(Command::SpawnWorker(rest.to_owned()))
        }
        "kill-worker" => Ok(Command::KillWorker(parse_one(word, rest)?)),
        "unix-clients" => Ok(Command::UnixClients(parse_one(word, rest)?)),
        "netns-spoof" => no_args(Command::NetnsSpoof),
        "netns-thread" => no_args(Command::NetnsThread),
        "decode-kinds" => no_args(Command::DecodeKinds),
        "respawn" => Ok(Command::Respawn(parse_pool(rest)?)),
        "close" => {
            let fd: RawFd = parse_one(word, rest)?;
            if fd < 0 {
                return Err(format!("close: negative fd {fd}"));
            }
            Ok(Command::Close(fd))
        }
        other => Err(format!("unknown command `{other}`")),
    }
}

/// Exactly one argument of type `T`.
fn parse_one<T: std::str::FromStr>(what: &str, rest: &str) -> Result<T, String> {
    let mut it = rest.split_whitespace();
    match (it.next(), it.next()) {
        (Some(a), None) => a
            .parse()
            .map_err(|_| format!("{what}: cannot parse argument `{a}`")),
        _ => Err(format!("{what}: expected exactly one argument")),
    }
}

fn parse_schedule(s: &str) -> Result<Schedule, String> {
    let words: Vec<&str> = s.split_whitespace().collect();
    let Some((&name, args)) = words.split_first() else {
        return Err("empty schedule".into());
    };
    let arity = |n: usize, usage: &str| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!("usage: {usage}"))
        }
    };
    let rate = |a: &str| -> Result<f64, String> {
        match a.parse::<f64>() {
            Ok(r) if r.is_finite() && r > 0.0 && r <= 1e6 => Ok(r),
            _ => Err(format!("{name}: rate `{a}` must be a number in (0, 1e6]")),
        }
    };
    let count = |a: &str| -> Result<usize, String> {
        a.parse::<usize>()
            .map_err(|_| format!("{name}: `{a}` is not a non-negative integer"))
    };
    let millis = |a: &str| -> Result<u64, String> {
        a.parse::<u64>()
            .map_err(|_| format!("{name}: `{a}` is not a duration in milliseconds"))
    };
    Ok(match name {
        "leak-file" => {
            arity(1, "leak-file RATE")?;
            Schedule::LeakFile {
                rate: rate(args[0])?,
            }
        }
        "leak-tcp" => {
            arity(1, "leak-tcp RATE")?;
            Schedule::LeakTcp {
                rate: rate(args[0])?,
            }
        }
        "leak-pipe" => {
            arity(1, "leak-pipe RATE")?;
            Schedule::LeakPipe {
                rate: rate(args[0])?,
            }
        }
        "leak-eventfd" => {
            arity(1, "leak-eventfd RATE")?;
            Schedule::LeakEventfd {
                rate: rate(args[0])?,
            }
        }
        "churn" => {
            arity(2, "churn LEVEL RATE")?;
            Schedule::Churn {
                level: count(args[0])?,
                rate: rate(args[1])?,
            }
        }
        "burst" => {
            arity(3, "burst N AFTER_MS HOLD_MS")?;
            Schedule::Burst {
                n: count(args[0])?,
                after_ms: millis(args[1])?,
                hold_ms: millis(args[2])?,
            }
        }
        "pool" => {
            arity(2, "pool CAP RATE")?;
            Schedule::Pool {
                cap: count(args[0])?,
                rate: rate(args[1])?,
            }
        }
        "reuse" => {
            arity(1, "reuse RATE")?;
            Schedule::Reuse {
                rate: rate(args[0])?,
            }
        }
        "hold-files" => {
            arity(2, "hold-files N RATE")?;
            Schedule::HoldFiles {
                n: count(args[0])?,
                rate: rate(args[1])?,
            }
        }
        "hold-tcp" => {
            arity(3, "hold-tcp N RATE PORT")?;
            Schedule::HoldTcp {
                n: count(args[0])?,
                rate: rate(args[1])?,
                port: args[2]
                    .parse()
                    .map_err(|_| format!("hold-tcp: `{}` is not a port", args[2]))?,
            }
        }
        other => return Err(format!("unknown schedule `{other}`")),
    })
}

// ---------------------------------------------------------------------------------------------
// Low-level openers

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

fn create_file(path: &Path, content: &[u8]) -> io::Result<OwnedFd> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    f.write_all(content)?;
    Ok(f.into())
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
}

fn socketpair(ty: libc::c_int) -> io::Result<(OwnedFd, OwnedFd)> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::from_raw(ty as u32),
        SocketFlags::CLOEXEC,
        None,
    )?)
}

fn eventfd(initval: u32) -> io::Result<OwnedFd> {
    Ok(rustix::event::eventfd(
        initval,
        rustix::event::EventfdFlags::CLOEXEC,
    )?)
}

fn epoll(watch: &[BorrowedFd<'_>]) -> io::Result<OwnedFd> {
    use rustix::event::epoll;
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    for fd in watch {
        let data = epoll::EventData::new_u64(fd.as_raw_fd() as u64);
        epoll::add(&ep, fd, data, epoll::EventFlags::IN)?;
    }
    Ok(ep)
}

fn timerfd(interval_secs: i64) -> io::Result<OwnedFd> {
    use rustix::time::{
        Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
        timerfd_settime,
    };
    let fd = timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::CLOEXEC)?;
    if interval_secs > 0 {
        let ts = Timespec {
            tv_sec: interval_secs,
            tv_nsec: 0,
        };
        let spec = Itimerspec {
            it_interval: ts,
            it_value: ts,
        };
        timerfd_settime(&fd, TimerfdTimerFlags::empty(), &spec)?;
    }
    Ok(fd)
}

fn usr_sigset() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGUSR1);
    set.add(Signal::SIGUSR2);
    set
}

fn block_usr_signals() -> io::Result<()> {
    Ok(usr_sigset().thread_block()?)
}

fn term_sigset() -> SigSet {
    let mut set = SigSet::empty();
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(sig);
    }
    set
}

/// Removes the work directory when the fixture is told to terminate.
///
/// A sigwait thread instead of a signal handler: removing a tree is not async-signal-safe, and
/// unlike signal-hook's self-pipe or a signalfd it costs no fd, so fd counts stay predictable.
fn spawn_terminator(set: SigSet, dir: PathBuf) {
    let spawned = thread::Builder::new()
        .name("terminator".into())
        .spawn(move || {
            let Ok(sig) = set.wait() else {
                return;
            };
            let sig = sig as i32;
            // Schedule threads may still be adding files, so one retry covers ENOTEMPTY.
            if fs::remove_dir_all(&dir).is_err() {
                let _ = fs::remove_dir_all(&dir);
            }
            std::process::exit(128 + sig);
        });
    if let Err(e) = spawned {
        eprintln!("fdiff-fixture: no terminator thread, SIGTERM will leave the directory: {e}");
    }
}

/// nix, not rustix: rustix has no signalfd.
fn signalfd_usr() -> io::Result<OwnedFd> {
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    block_usr_signals()?;
    Ok(SignalFd::with_flags(&usr_sigset(), SfdFlags::SFD_CLOEXEC)?.into())
}

fn inotify_watching(dir: &Path) -> io::Result<OwnedFd> {
    use rustix::fs::inotify;
    let fd = inotify::init(inotify::CreateFlags::CLOEXEC)?;
    let mask =
        inotify::WatchFlags::CREATE | inotify::WatchFlags::DELETE | inotify::WatchFlags::MODIFY;
    inotify::add_watch(&fd, dir, mask)?;
    Ok(fd)
}

fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    Ok(rustix::process::pidfd_open(
        pid,
        rustix::process::PidfdFlags::empty(),
    )?)
}

fn memfd(name: &std::ffi::CStr, size: usize) -> io::Result<OwnedFd> {
    let fd = rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC)?;
    let mut f = fs::File::from(fd);
    f.write_all(&vec![b'm'; size])?;
    Ok(f.into())
}

fn inode(fd: &impl AsFd) -> io::Result<u64> {
    Ok(rustix::fs::fstat(fd).map_err(io::Error::from)?.st_ino as u64)
}

fn tcp_pair(listener: &TcpListener) -> io::Result<(TcpStream, TcpStream)> {
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    Ok((client, server))
}

/// Asked of /proc without an fd of its own (this runs at EMFILE) and without borrowing a raw
/// fd number, which would take `unsafe`.
fn is_fd_open(fd: RawFd) -> bool {
    fs::symlink_metadata(format!("/proc/self/fd/{fd}")).is_ok()
}

/// Number of open fds, not counting the one used to list them.
fn count_fds() -> usize {
    match fs::read_dir("/proc/self/fd") {
        Ok(rd) => rd.count().saturating_sub(1),
        // Listing needs an fd of its own, which is exactly what is missing at EMFILE.
        Err(_) => {
            let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
                .current
                .unwrap_or(1 << 20)
                .min(1 << 20);
            (0..limit as RawFd).filter(|&fd| is_fd_open(fd)).count()
        }
    }
}

/// The soft limit becomes `soft` (the demo plays a service with the usual 1,024), or the hard
/// limit so `fill` can reach it.
fn set_nofile_limit(soft: Option<u64>) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    let want = match (soft, lim.maximum) {
        (Some(s), Some(max)) => Some(s.min(max)),
        (Some(s), None) => Some(s),
        (None, max) => max,
    };
    if lim.current != want {
        lim.current = want;
        if let Err(e) = setrlimit(Resource::Nofile, lim) {
            eprintln!("fdiff-fixture: cannot raise RLIMIT_NOFILE: {e}");
        }
    }
}

fn make_work_dir(dir: Option<&Path>) -> io::Result<PathBuf> {
    let made = match dir {
        Some(d) => {
            fs::create_dir_all(d)?;
            d.to_path_buf()
        }
        None => {
            let base = std::env::var_os("TMPDIR")
                .filter(|t| !t.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/tmp"));
            // nix: rustix has no mkdtemp.
            nix::unistd::mkdtemp(&base.join("fdiff-fixture-XXXXXX"))?
        }
    };
    // Canonical so that reported paths match what readlink(/proc/PID/fd/N) shows.
    fs::canonicalize(made)
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

// ---------------------------------------------------------------------------------------------
// `kinds`

/// The fds opened by `kinds`; they stay open as long as this lives.
struct KindFds {
    fds: Vec<OwnedFd>,
}

/// Opens one fd of every kind under `dir`; returns them with the `fds` JSON object of the answer.
fn open_kinds(dir: &Path) -> io::Result<(KindFds, Map<String, Value>)> {
    let mut held: Vec<OwnedFd> = Vec::new();
    let mut out = Map::new();
    let mut put = |held: &mut Vec<OwnedFd>, name: &str, fd: OwnedFd, mut v: Value| {
        if let Value::Object(m) = &mut v {
            m.insert("fd".into(), json!(fd.as_raw_fd()));
        }
        out.insert(name.into(), v);
        held.push(fd);
    };

    let p = dir.join("regular.txt");
    put(
        &mut held,
        "file",
        create_file(&p, b"hello")?,
        json!({"path": path_str(&p)}),
    );

    let p = dir.join("gone.bin");
    let fd = create_file(&p, &[0x5a; 4096])?;
    fs::remove_file(&p)?;
    put(
        &mut held,
        "deleted",
        fd,
        json!({"path": path_str(&p), "size": 4096}),
    );

    let p = dir.join("real (deleted)");
    put(
        &mut held,
        "fake_deleted",
        create_file(&p, b"not gone")?,
        json!({"path": path_str(&p)}),
    );

    let p = dir.join(OsStr::from_bytes(b"bad-\xff\xfe.txt"));
    let hex = hex_encode(p.as_os_str().as_bytes());
    put(
        &mut held,
        "nonutf8",
        create_file(&p, b"bytes")?,
        json!({"path_hex": hex}),
    );

    let p = dir.join("we\"ird\tname\nwith newline.txt");
    put(
        &mut held,
        "weird",
        create_file(&p, b"weird")?,
        json!({"path": path_str(&p)}),
    );

    let d = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)?;
    put(&mut held, "dir", d.into(), json!({"path": path_str(dir)}));

    let n = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    put(&mut held, "devnull", n.into(), json!({"path": "/dev/null"}));

    let p = dir.join("fifo");
    let c = cpath(&p)?;
    if let Err(e) = rustix::fs::mknodat(
        rustix::fs::CWD,
        c.as_c_str(),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .map_err(io::Error::from)
        && e.kind() != io::ErrorKind::AlreadyExists
    {
        return Err(e);
    }
    // O_RDWR so opening never blocks waiting for the other end.
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&p)?;
    put(&mut held, "fifo", f.into(), json!({"path": path_str(&p)}));

    let (r, w) = pipe()?;
    let pipe_ino = inode(&r)?;
    let pipe_r_raw = r.as_raw_fd();
    put(&mut held, "pipe_r", r, json!({"inode": pipe_ino}));
    put(&mut held, "pipe_w", w, json!({"inode": pipe_ino}));

    let l = TcpListener::bind("127.0.0.1:0")?;
    let laddr = l.local_addr()?;
    let (client, server) = tcp_pair(&l)?;
    let (cl, cr) = (client.local_addr()?, client.peer_addr()?);
    let (sl, sr) = (server.local_addr()?, server.peer_addr()?);
    let (li, ci, si) = (inode(&l)?, inode(&client)?, inode(&server)?);
    put(
        &mut held,
        "tcp_listen",
        l.into(),
        json!({"local": laddr.to_string(), "inode": li}),
    );
    put(
        &mut held,
        "tcp_client",
        client.into(),
        json!({"local": cl.to_string(), "remote": cr.to_string(), "inode": ci}),
    );
    put(
        &mut held,
        "tcp_server",
        server.into(),
        json!({"local": sl.to_string(), "remote": sr.to_string(), "inode": si}),
    );

    // IPv6 may be disabled in containers; the key is then simply absent.
    if let Ok(l6) = TcpListener::bind("[::1]:0") {
        let a = l6.local_addr()?;
        let i = inode(&l6)?;
        put(
            &mut held,
            "tcp6_listen",
            l6.into(),
            json!({"local": a.to_string(), "inode": i}),
        );
    }

    let u = UdpSocket::bind("127.0.0.1:0")?;
    let (ua, ui) = (u.local_addr()?, inode(&u)?);
    put(
        &mut held,
        "udp",
        u.into(),
        json!({"local": ua.to_string(), "inode": ui}),
    );

    for (ty, prefix) in [
        (libc::SOCK_STREAM, "unix_stream"),
        (libc::SOCK_DGRAM, "unix_dgram"),
    ] {
        let (a, b) = socketpair(ty)?;
        let (ia, ib) = (inode(&a)?, inode(&b)?);
        put(
            &mut held,
            &format!("{prefix}_a"),
            a,
            json!({"inode": ia, "peer": ib}),
        );
        put(
            &mut held,
            &format!("{prefix}_b"),
            b,
            json!({"inode": ib, "peer": ia}),
        );
    }

    let p = dir.join("sock");
    // A stale socket file from an earlier run would make bind fail with EADDRINUSE.
    let _ = fs::remove_file(&p);
    let ul = UnixListener::bind(&p)?;
    let i = inode(&ul)?;
    put(
        &mut held,
        "unix_path",
        ul.into(),
        json!({"path": path_str(&p), "inode": i}),
    );

    let name = format!("fdiff test {} with spaces", std::process::id());
    let ua = SocketAddr::from_abstract_name(name.as_bytes())?;
    let ul = UnixListener::bind_addr(&ua)?;
    let i = inode(&ul)?;
    put(
        &mut held,
        "unix_abstract",
        ul.into(),
        json!({"path": format!("@{name}"), "inode": i}),
    );

    let ev = eventfd(7)?;
    let ev_raw = ev.as_raw_fd();
    put(&mut held, "eventfd", ev, json!({"eventfd_count": 7}));

    let mut tfd = [ev_raw, pipe_r_raw];
    tfd.sort_unstable();
    let watched: Vec<BorrowedFd<'_>> = held
        .iter()
        .filter(|f| tfd.contains(&f.as_raw_fd()))
        .map(|f| f.as_fd())
        .collect();
    let ep = epoll(&watched)?;
    put(&mut held, "epoll", ep, json!({"tfd": tfd}));

    put(
        &mut held,
        "timerfd",
        timerfd(5)?,
        json!({"clockid": "monotonic", "interval_secs": 5.0}),
    );

    put(
        &mut held,
        "signalfd",
        signalfd_usr()?,
        json!({"sigmask": ["SIGUSR1", "SIGUSR2"]}),
    );

    put(
        &mut held,
        "inotify",
        inotify_watching(dir)?,
        json!({"watches": 1}),
    );

    let pid = std::process::id();
    put(
        &mut held,
        "pidfd",
        pidfd_open(pid as libc::pid_t)?,
        json!({"target_pid": pid}),
    );

    put(
        &mut held,
        "memfd",
        memfd(c"fdiff-memfd", 1000)?,
        json!({"name": "fdiff-memfd", "size": 1000}),
    );

    Ok((KindFds { fds: held }, out))
}

// ---------------------------------------------------------------------------------------------
// `fill`

#[derive(Debug, Clone, Copy)]
enum FillKind {
    File,
    Pipe,
    UnixPair,
    Tcp,
    Udp,
    Eventfd,
    Epoll,
    Timerfd,
    Memfd,
}

const FILL_ROTATION: [FillKind; 9] = [
    FillKind::File,
    FillKind::Pipe,
    FillKind::UnixPair,
    FillKind::Tcp,
    FillKind::Udp,
    FillKind::Eventfd,
    FillKind::Epoll,
    FillKind::Timerfd,
    FillKind::Memfd,
];

impl FillKind {
    fn width(self) -> usize {
        match self {
            FillKind::Pipe | FillKind::UnixPair | FillKind::Tcp => 2,
            _ => 1,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Schedules

/// State shared with schedule threads.
struct Shared {
    dir: PathBuf,
    /// One counter for every generated file name, so concurrent schedules never collide.
    counter: AtomicU64,
}

impl Shared {
    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    fn new_file(&self, prefix: &str, ext: &str) -> io::Result<OwnedFd> {
        let p = self.dir.join(format!("{prefix}-{}.{ext}", self.next()));
        create_file(&p, b"fdiff")
    }
}

struct Running {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<OwnedFd>>,
}

/// Sleeps until `deadline`, returning false as soon as `stop` is set.
fn sleep_until(deadline: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Acquire) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        // park rather than sleep: `stop` unparks, so stopping never waits a whole tick.
        thread::park_timeout(deadline - now);
    }
}

/// Ticks at `rate` per second measured from one start instant, so lateness never accumulates.
struct Ticker {
    start: Instant,
    rate: f64,
    n: u64,
}

impl Ticker {
    fn new(rate: f64) -> Self {
        Ticker {
            start: Instant::now(),
            rate,
            n: 0,
        }
    }

    fn wait(&mut self, stop: &AtomicBool) -> bool {
        self.n += 1;
        let deadline = self.start + Duration::from_secs_f64(self.n as f64 / self.rate);
        sleep_until(deadline, stop)
    }
}

/// Reports a schedule's first error on stderr; later ones (usually the same EMFILE) stay quiet.
struct ErrOnce {
    id: u64,
    name: &'static str,
    said: bool,
}

impl ErrOnce {
    fn note(&mut self, e: &io::Error) {
        if !self.said {
            self.said = true;
            eprintln!("fdiff-fixture: schedule {} ({}): {e}", self.id, self.name);
        }
    }
}

/// Body of a schedule thread; returns the fds that must outlive it (only leaks return any).
fn run_schedule(id: u64, sched: Schedule, sh: Arc<Shared>, stop: Arc<AtomicBool>) -> Vec<OwnedFd> {
    let mut err = ErrOnce {
        id,
        name: sched.name(),
        said: false,
    };
    let leak = sched.is_leak();
    let mut held: Vec<OwnedFd> = Vec::new();
    match sched {
        Schedule::LeakFile { rate } => {
            let mut t = Ticker::new(rate);
            while t.wait(&stop) {
                match sh.new_file("upload", "pdf") {
                    Ok(fd) => held.push(fd),
                    Err(e) => err.note(&e),
                }
            }
        }
        Schedule::LeakTcp { rate } => {
            let listener = match TcpListener::bind("127.0.0.1:0") {
                Ok(l) => l,
                Err(e) => {
                    err.note(&e);
                    return held;
                }
            };
            let mut t = Ticker::new(rate);
            while t.wait(&stop) {
                // Accepting inline keeps the listener's backlog empty; both ends leak here.
                match tcp_pair(&listener) {
                    Ok((c, s)) => {
                        held.push(c.into());
                        held.push(s.into());
                    }
                    Err(e) => err.note(&e),
                }
            }
        }
        Schedule::LeakPipe { rate } => {
            let mut t = Ticker::new(rate);
            while t.wait(&stop) {
                match pipe() {
                    Ok((r, w)) => {
                        held.push(r);
                        held.push(w);
                    }
                    Err(e) => err.note(&e),
                }
            }
        }
        Schedule::LeakEventfd { rate } => {
            let mut t = Ticker::new(rate);
            while t.wait(&stop) {
                match eventfd(0) {
                    Ok(fd) => held.push(fd),
                    Err(e) => err.note(&e),
                }
            }
        }
        Schedule::Churn { level, rate } => {
            let mut q = std::collections::VecDeque::with_capacity(level);
            for _ in 0..level {
                match sh.new_file("churn", "tmp") {
                    Ok(fd) => q.push_back(fd),
                    Err(e) => err.note(&e),
                }
            }
            let mut t = Ticker::new(rate);
            while t.wait(&stop) {
                if q.len() >= level {
                    q.pop_front();
                }
                if level > 0 {
                    match sh.new_file("churn", "tmp") {
                        Ok(fd) => q.push_back(fd),
                        Err(e) => err.note(&e),
                    }
                }
            }
        }
        Schedule::Burst {
            n,
            after_ms,
            hold_ms,
        } => {
            let start = Instant::now();
            if sleep_until(start + Duration::from_millis(after_ms), &stop) {
                let mut burst = Vec::with_capacity(n);
                for _ in 0..n {
                    match sh.new_file("burst", "tmp") {
                        Ok(fd) => burst.push(fd),
                        Err(e) => err.note(&e),
                    }
                }
                let opened = Instant::now();
                sleep_until(opened + Duration::from_millis(hold_ms), &stop);
            }
        }
        Schedule::Pool { cap, rate } => {
            let mut pool = Vec::with_capacity(cap);
            let mut t = Ticker::new(rate);
            while pool.len() < cap && t.wait(&stop) {
                match sh.new_file("pool", "db") {
                    Ok(fd) => pool.push(fd),
                    Err(e) => err.note(&e),
                }
            }
            // Flat from here on: hold until told to stop.
            while !stop.load(Ordering::Acquire) {
                thread::park();
            }
        }
        Schedule::HoldFiles { n, rate } => {
            let mut mine = Vec::with_capacity(n);
            let mut t = Ticker::new(rate);
            while mine.len() < n && t.wait(&stop) {
                match sh.new_file("data", "dat") {
                    Ok(fd) => mine.push(fd),
                    Err(e) => err.note(&e),
                }
            }
            while !stop.load(Ordering::Acquire) {
                thread::park();
            }
        }
        Schedule::HoldTcp { n, rate, port } => {
            let mut mine = Vec::with_capacity(n);
            let mut t = Ticker::new(rate);
            while mine.len() < n && t.wait(&stop) {
                match TcpStream::connect(("127.0.0.1", port)) {
                    Ok(c) => mine.push(c),
                    Err(e) => err.note(&e),
                }
            }
            while !stop.load(Ordering::Acquire) {
                thread::park();
            }
        }
        Schedule::Reuse { rate } => {
            let mut cur = match sh.new_file("reuse", "log") {
                Ok(fd) => Some(fd),
                Err(e) => {
                    err.note(&e);
                    None
                }
            };
            let mut t = Ticker::new(rate);
            while t.wait(&stop) {
                let old = cur.take().map(|fd| fd.as_raw_fd());
                // `cur` was just taken, so the old fd is closed here, before the reopen.
                match (sh.new_file("reuse", "log"), old) {
                    (Ok(fd), Some(old)) if fd.as_raw_fd() != old => {
                        cur = Some(move_to(fd, old));
                    }
                    (Ok(fd), _) => cur = Some(fd),
                    (Err(e), _) => err.note(&e),
                }
            }
        }
    }
    // Dropping `held` here would close leaked fds: hand them back instead.
    if leak { held } else { Vec::new() }
}

/// Moves `fd` onto number `want` when that number is still free; otherwise keeps `fd` as is.
///
/// F_DUPFD rather than dup2: another thread may have grabbed `want` in the meantime, and dup2
/// would silently close that thread's fd.
fn move_to(fd: OwnedFd, want: RawFd) -> OwnedFd {
    match rustix::io::fcntl_dupfd_cloexec(&fd, want) {
        Ok(dup) if dup.as_raw_fd() == want => dup,
        _ => fd,
    }
}

/// Ends a worker: SIGTERM (`kill`, its terminator then removes its directory) or closing its
/// stdin; SIGKILL after 3 s. Returns the wait status as a shell would show it.
fn end_worker(mut child: std::process::Child, kill: bool) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    // One or the other: both at once would race two cleanups of the worker's directory.
    if kill {
        if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    } else {
        drop(child.stdin.take());
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                break child.wait().ok();
            }
        }
    };
    status.map(|s| s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)))
}

// ---------------------------------------------------------------------------------------------
// The fixture

struct Fixture {
    shared: Arc<Shared>,
    kinds: Option<KindFds>,
    fill: Vec<Option<OwnedFd>>,
    fill_rr: usize,
    /// Shared by every `fill` TCP connection; opened at startup so `fill N` adds exactly N fds.
    fill_listener: TcpListener,
    /// Fds handed back by stopped leak schedules.
    retained: Vec<OwnedFd>,
    running: Vec<(u64, Running)>,
    next_id: u64,
    /// Child fixtures from `spawn-worker`; each exits when its stdin (held here) closes.
    workers: Vec<std::process::Child>,
}

impl Fixture {
    fn new(dir: PathBuf) -> io::Result<Self> {
        Ok(Fixture {
            shared: Arc::new(Shared {
                dir,
                counter: AtomicU64::new(0),
            }),
            kinds: None,
            fill: Vec::new(),
            fill_rr: 0,
            fill_listener: TcpListener::bind("127.0.0.1:0")?,
            retained: Vec::new(),
            running: Vec::new(),
            next_id: 1,
            workers: Vec::new(),
        })
    }

    fn serve(&mut self, schedules: Vec<Schedule>) -> i32 {
        for s in schedules {
            if let Err(e) = self.start(s) {
                eprintln!("fdiff-fixture: cannot start schedule: {e}");
                self.stop_all();
                return 1;
            }
        }
        let ready = json!({
            "ready": true,
            "pid": std::process::id(),
            "dir": path_str(&self.shared.dir),
        });
        let stdout = io::stdout();
        let mut out = stdout.lock();
        if writeln!(out, "{ready}").and_then(|()| out.flush()).is_err() {
            self.stop_all();
            return 0;
        }

        let stdin = io::stdin();
        let mut input = stdin.lock();
        let mut line = Vec::new();
        loop {
            line.clear();
            match input.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line);
            let (answer, quit) = match parse_command(&text) {
                Ok(Command::Quit) => (json!({"ok": true}), true),
                Ok(cmd) => (self.execute(cmd), false),
                Err(e) => (json!({"ok": false, "error": e}), false),
            };
            // A vanished reader means nobody is listening any more: shut down like EOF.
            if writeln!(out, "{answer}")
                .and_then(|()| out.flush())
                .is_err()
                || quit
            {
                break;
            }
        }
        self.stop_all();
        for w in std::mem::take(&mut self.workers) {
            end_worker(w, false);
        }
        0
    }

    fn execute(&mut self, cmd: Command) -> Value {
        let res: Result<Value, String> = match cmd {
            Command::Kinds => self.kinds(),
            Command::Fill(n) => return self.fill(n),
            Command::Change(p) => return self.change(p),
            Command::Start(s) => self
                .start(s)
                .map(|id| json!({"ok": true, "id": id}))
                .map_err(|e| e.to_string()),
            Command::Stop(id) => self.stop(id),
            Command::Close(fd) => self.close(fd),
            Command::SpawnWorker(s) => self.spawn_worker(&s),
            Command::Respawn(spec) => self.respawn(spec),
            Command::KillWorker(pid) => self.kill_worker(pid),
            Command::UnixClients(n) => self.unix_clients(n),
            Command::NetnsSpoof => self.netns_spoof(),
            Command::NetnsThread => self.netns_thread(),
            Command::DecodeKinds => crate::decode_kinds::open(&self.shared.dir)
                .map(|(fds, v)| {
                    self.retained.extend(fds);
                    v
                })
                .map_err(|e| format!("decode-kinds: {e}")),
            Command::Count => Ok(json!({"ok": true, "total": count_fds()})),
            // Handled by the caller, which must answer before exiting.
            Command::Quit => Ok(json!({"ok": true})),
        };
        res.unwrap_or_else(|e| json!({"ok": false, "error": e}))
    }

    fn kinds(&mut self) -> Result<Value, String> {
        // The abstract socket name is fixed per pid, so a second set could not be bound.
        if self.kinds.is_some() {
            return Err("kinds already open".into());
        }
        let (k, fds) = open_kinds(&self.shared.dir).map_err(|e| format!("kinds: {e}"))?;
        self.kinds = Some(k);
        Ok(json!({"ok": true, "fds": fds}))
    }

    fn open_fill(&mut self, kind: FillKind) -> Result<Vec<OwnedFd>, (Vec<OwnedFd>, io::Error)> {
        let one = |r: io::Result<OwnedFd>| r.map(|fd| vec![fd]).map_err(|e| (Vec::new(), e));
        let two = |r: io::Result<(OwnedFd, OwnedFd)>| {
            r.map(|(a, b)| vec![a, b]).map_err(|e| (Vec::new(), e))
        };
        match kind {
            FillKind::File => one(self.shared.new_file("fill", "dat")),
            FillKind::Pipe => two(pipe()),
            FillKind::UnixPair => two(socketpair(libc::SOCK_STREAM)),
            FillKind::Tcp => {
                let addr = self
                    .fill_listener
                    .local_addr()
                    .map_err(|e| (Vec::new(), e))?;
                let client = TcpStream::connect(addr).map_err(|e| (Vec::new(), e))?;
                match self.fill_listener.accept() {
                    Ok((server, _)) => Ok(vec![client.into(), server.into()]),
                    Err(e) => Err((vec![client.into()], e)),
                }
            }
            FillKind::Udp => one(UdpSocket::bind("127.0.0.1:0").map(OwnedFd::from)),
            FillKind::Eventfd => one(eventfd(0)),
            FillKind::Epoll => one(epoll(&[])),
            FillKind::Timerfd => one(timerfd(0)),
            FillKind::Memfd => one(memfd(c"fdiff-fill", 64)),
        }
    }

    fn fill(&mut self, n: usize) -> Value {
        let mut opened = 0;
        while opened < n {
            let kind = FILL_ROTATION[self.fill_rr % FILL_ROTATION.len()];
            self.fill_rr += 1;
            // Pairs that would overshoot are skipped so the count comes out exact.
            if kind.width() > n - opened {
                continue;
            }
            match self.open_fill(kind) {
                Ok(fds) => {
                    opened += fds.len();
                    self.fill.extend(fds.into_iter().map(Some));
                }
                Err((partial, e)) => {
                    opened += partial.len();
                    self.fill.extend(partial.into_iter().map(Some));
                    let what = if e.raw_os_error() == Some(libc::EMFILE) {
                        "EMFILE"
                    } else {
                        "open failed"
                    };
                    return json!({
                        "ok": false,
                        "error": format!("{what} after {opened} of {n} fds: {e}"),
                        "opened": opened,
                        "total": count_fds(),
                    });
                }
            }
        }
        json!({"ok": true, "opened": opened, "total": count_fds()})
    }

    fn change(&mut self, percent: f64) -> Value {
        let len = self.fill.len();
        let k = ((len as f64) * percent / 100.0).round() as usize;
        let k = k.min(len);
        let mut changed = 0;
        let mut failure = None;
        for i in 0..k {
            // Evenly spread: i*len/k is strictly increasing for k <= len.
            let idx = i * len / k;
            // Close first so the replacement can take the freed number even at the fd limit.
            self.fill[idx] = None;
            match self.shared.new_file("fill", "dat") {
                Ok(fd) => {
                    self.fill[idx] = Some(fd);
                    changed += 1;
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        self.fill.retain(Option::is_some);
        match failure {
            None => json!({"ok": true, "changed": changed}),
            Some(e) => json!({
                "ok": false,
                "error": format!("reopen failed after {changed} of {k}: {e}"),
                "changed": changed,
            }),
        }
    }

    fn start(&mut self, sched: Schedule) -> io::Result<u64> {
        let id = self.next_id;
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, st) = (Arc::clone(&self.shared), Arc::clone(&stop));
        let handle = thread::Builder::new()
            .name(format!("sched-{id}-{}", sched.name()))
            .spawn(move || run_schedule(id, sched, sh, st))?;
        self.next_id += 1;
        self.running.push((id, Running { stop, handle }));
        Ok(id)
    }

    fn stop(&mut self, id: u64) -> Result<Value, String> {
        let pos = self
            .running
            .iter()
            .position(|(i, _)| *i == id)
            .ok_or_else(|| format!("no running schedule {id}"))?;
        let (_, r) = self.running.swap_remove(pos);
        let kept = Self::join(r);
        let retained = kept.len();
        self.retained.extend(kept);
        Ok(json!({"ok": true, "id": id, "retained": retained}))
    }

    fn join(r: Running) -> Vec<OwnedFd> {
        r.stop.store(true, Ordering::Release);
        r.handle.thread().unpark();
        r.handle.join().unwrap_or_default()
    }

    fn stop_all(&mut self) {
        // Signal everyone first so the threads wind down in parallel, then join: nobody may
        // still be creating files while the work directory is removed.
        for (_, r) in &self.running {
            r.stop.store(true, Ordering::Release);
            r.handle.thread().unpark();
        }
        for (_, r) in self.running.drain(..) {
            self.retained.extend(Self::join(r));
        }
    }

    fn spawn_worker(&mut self, sched: &str) -> Result<Value, String> {
        use std::process::{Command as Cmd, Stdio};
        let exe = std::env::current_exe().map_err(|e| format!("spawn-worker: {e}"))?;
        let mut child = Cmd::new(exe)
            .args(["--run", sched])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawn-worker: {e}"))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.as_mut() {
            let _ = io::BufReader::new(out).read_line(&mut line);
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(v) if v["ready"] == json!(true) => {
                self.workers.push(child);
                Ok(json!({"ok": true, "pid": v["pid"], "dir": v["dir"]}))
            }
            _ => {
                end_worker(child, true);
                Err(format!("spawn-worker: not ready: {:?}", line.trim()))
            }
        }
    }

    fn kill_worker(&mut self, pid: u32) -> Result<Value, String> {
        let pos = self
            .workers
            .iter()
            .position(|c| c.id() == pid)
            .ok_or_else(|| format!("no worker {pid}"))?;
        let status = end_worker(self.workers.swap_remove(pos), true);
        Ok(json!({"ok": true, "pid": pid, "status": status}))
    }

    fn close(&mut self, fd: RawFd) -> Result<Value, String> {
        let hit = |v: &mut Vec<OwnedFd>| {
            v.iter()
                .position(|f| f.as_raw_fd() == fd)
                .map(|i| v.swap_remove(i))
        };
        if let Some(k) = self.kinds.as_mut()
            && hit(&mut k.fds).is_some()
        {
            return Ok(json!({"ok": true}));
        }
        if hit(&mut self.retained).is_some() {
            return Ok(json!({"ok": true}));
        }
        if let Some(slot) = self
            .fill
            .iter_mut()
            .find(|f| f.as_ref().is_some_and(|f| f.as_raw_fd() == fd))
        {
            *slot = None;
            self.fill.retain(Option::is_some);
            return Ok(json!({"ok": true}));
        }
        Err(format!("fd {fd} is not held by the fixture's main thread"))
    }

    /// A server socket `.s.PGSQL.N` in the work dir with `n` connected clients; every fd is
    /// kept (and can be closed) like a stopped leak's.
    fn unix_clients(&mut self, n: usize) -> Result<Value, String> {
        use std::os::unix::net::UnixStream;
        let k = self.shared.counter.fetch_add(1, Ordering::Relaxed);
        let path = self.shared.dir.join(format!(".s.PGSQL.{}", 5432 + k));
        let err = |e: io::Error| format!("unix-clients: {e}");
        let listener = UnixListener::bind(&path).map_err(err)?;
        let (mut clients, mut accepted) = (Vec::new(), Vec::new());
        let mut fds = Vec::new();
        for _ in 0..n {
            let c = UnixStream::connect(&path).map_err(err)?;
            let (a, _) = listener.accept().map_err(err)?;
            clients.push(json!({"fd": c.as_raw_fd(), "inode": inode(&c).map_err(err)?}));
            accepted.push(json!({"fd": a.as_raw_fd(), "inode": inode(&a).map_err(err)?}));
            fds.push(OwnedFd::from(c));
            fds.push(OwnedFd::from(a));
        }
        let lfd = listener.as_raw_fd();
        fds.push(OwnedFd::from(listener));
        self.retained.extend(fds);
        Ok(json!({
            "ok": true,
            "path": path_str(&path),
            "listener": lfd,
            "clients": clients,
            "accepted": accepted,
        }))
    }

    fn netns_spoof(&mut self) -> Result<Value, String> {
        // nix: rustix's unshare is `unsafe` (it can unshare the file table under std's feet);
        // a network namespace cannot.
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("unshare: {e}"))?;
        let (v, fds) = unix_set(&self.shared.dir, "spoof", true).map_err(|e| format!("{e}"))?;
        self.retained.extend(fds);
        Ok(v)
    }

    fn netns_thread(&mut self) -> Result<Value, String> {
        let dir = self.shared.dir.clone();
        let (v, fds) = thread::spawn(move || -> Result<(Value, Vec<OwnedFd>), String> {
            // Moves only this thread, which ends right after.
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("unshare: {e}"))?;
            unix_set(&dir, "thread", false).map_err(|e| format!("{e}"))
        })
        .join()
        .map_err(|_| "netns thread panicked".to_string())??;
        self.retained.extend(fds);
        Ok(v)
    }
}

/// A socketpair, a listener and a client connected to it (and the accepted end), made in the
/// calling thread's network namespace. With `spoof`, the listener's name is a newline and a
/// well-formed /proc/net/unix row claiming the socketpair's first end is `@SPOOFED`, listening.
fn unix_set(dir: &Path, tag: &str, spoof: bool) -> io::Result<(Value, Vec<OwnedFd>)> {
    use std::os::unix::net::UnixStream;
    let (a, b) = socketpair(libc::SOCK_STREAM)?;
    let (ia, ib) = (inode(&a)?, inode(&b)?);
    let name = if spoof {
        format!("x\n0000000000000000: 00000002 00000000 00010000 0001 01 {ia} @SPOOFED")
    } else {
        format!("{tag}.sock")
    };
    let path = dir.join(name);
    let listener = UnixListener::bind(&path)?;
    let client = UnixStream::connect(&path)?;
    let (server, _) = listener.accept()?;
    let v = json!({
        "ok": true,
        "path": path_str(&path),
        "pair": [
            {"fd": a.as_raw_fd(), "inode": ia, "peer": ib},
            {"fd": b.as_raw_fd(), "inode": ib, "peer": ia},
        ],
        "listener": {"fd": listener.as_raw_fd(), "inode": inode(&listener)?},
        "client": {"fd": client.as_raw_fd(), "inode": inode(&client)?},
        "server": {"fd": server.as_raw_fd(), "inode": inode(&server)?},
    });
    let fds = vec![a, b, listener.into(), client.into(), server.into()];
    Ok((v, fds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(parse_command("kinds"), Ok(Command::Kinds));
        assert_eq!(parse_command("  count \n"), Ok(Command::Count));
        assert_eq!(parse_command("quit"), Ok(Command::Quit));
        assert_eq!(parse_command("fill 1000"), Ok(Command::Fill(1000)));
        assert_eq!(parse_command("change 12.5"), Ok(Command::Change(12.5)));
        assert_eq!(parse_command("stop 3"), Ok(Command::Stop(3)));
        assert_eq!(parse_command("close 17"), Ok(Command::Close(17)));
        assert_eq!(
            parse_command("spawn-worker churn 5 5"),
            Ok(Command::SpawnWorker("churn 5 5".into()))
        );
        assert_eq!(parse_command("kill-worker 42"), Ok(Command::KillWorker(42)));
        assert!(parse_command("spawn-worker nope 1").is_err());
        assert!(parse_command("kill-worker").is_err());
        assert_eq!(
            parse_command("start leak-file 10"),
            Ok(Command::Start(Schedule::LeakFile { rate: 10.0 }))
        );
        for bad in [
            "",
            "   ",
            "bogus",
            "kinds now",
            "fill",
            "fill -1",
            "fill x",
            "fill 1 2",
            "change 101",
            "change -1",
            "close -3",
            "stop",
            "start",
            "start nope 1",
            "\u{0}\u{ff}",
        ] {
            assert!(parse_command(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn parses_schedules() {
        assert_eq!(
            parse_schedule("leak-tcp 2.5"),
            Ok(Schedule::LeakTcp { rate: 2.5 })
        );
        assert_eq!(
            parse_schedule("leak-pipe 1"),
            Ok(Schedule::LeakPipe { rate: 1.0 })
        );
        assert_eq!(
            parse_schedule("leak-eventfd 3"),
            Ok(Schedule::LeakEventfd { rate: 3.0 })
        );
        assert_eq!(
            parse_schedule("churn 50 20"),
            Ok(Schedule::Churn {
                level: 50,
                rate: 20.0
            })
        );
        assert_eq!(
            parse_schedule(" burst 100 500 2000 "),
            Ok(Schedule::Burst {
                n: 100,
                after_ms: 500,
                hold_ms: 2000
            })
        );
        assert_eq!(
            parse_schedule("pool 8 4"),
            Ok(Schedule::Pool { cap: 8, rate: 4.0 })
        );
        assert_eq!(
            parse_schedule("reuse 10"),
            Ok(Schedule::Reuse { rate: 10.0 })
        );
        assert!(parse_schedule("leak-file 1").is_ok_and(|s| s.is_leak()));
        assert!(parse_schedule("churn 1 1").is_ok_and(|s| !s.is_leak()));
        for bad in [
            "",
            "leak-file",
            "leak-file 0",
            "leak-file -1",
            "leak-file NaN",
            "leak-file inf",
            "leak-file 1 2",
            "churn 5",
            "churn -5 1",
            "burst 1 2",
            "burst 1 -2 3",
            "pool 3",
            "reuse x",
            "leak-sock 1",
        ] {
            assert!(parse_schedule(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn ticker_keeps_average_rate() {
        let stop = AtomicBool::new(false);
        let mut t = Ticker::new(100.0);
        let start = Instant::now();
        for _ in 0..10 {
            assert!(t.wait(&stop));
        }
        let el = start.elapsed();
        assert!(
            el >= Duration::from_millis(99) && el < Duration::from_millis(400),
            "{el:?}"
        );
        stop.store(true, Ordering::Release);
        assert!(!t.wait(&stop));
    }

    fn readlink_fd(fd: i64) -> Vec<u8> {
        fs::read_link(format!("/proc/self/fd/{fd}"))
            .expect("test setup")
            .into_os_string()
            .into_encoded_bytes()
    }

    #[test]
    fn kinds_are_real_fds_of_the_expected_shape() {
        let tmp = tempfile::tempdir().expect("test setup");
        let dir = fs::canonicalize(tmp.path()).expect("test setup");
        let (held, fds) = open_kinds(&dir).expect("test setup");
        let expected = [
            "file",
            "deleted",
            "fake_deleted",
            "nonutf8",
            "weird",
            "dir",
            "devnull",
            "fifo",
            "pipe_r",
            "pipe_w",
            "tcp_listen",
            "tcp_client",
            "tcp_server",
            "udp",
            "unix_stream_a",
            "unix_stream_b",
            "unix_dgram_a",
            "unix_dgram_b",
            "unix_path",
            "unix_abstract",
            "eventfd",
            "epoll",
            "timerfd",
            "signalfd",
            "inotify",
            "pidfd",
            "memfd",
        ];
        for name in expected {
            assert!(fds.contains_key(name), "missing {name}");
        }
        assert_eq!(held.fds.len(), fds.len());

        for (name, v) in &fds {
            let fd = v["fd"].as_i64().expect("test setup");
            assert!(
                held.fds.iter().any(|f| i64::from(f.as_raw_fd()) == fd),
                "{name}"
            );
            let link = readlink_fd(fd);
            let text = String::from_utf8_lossy(&link).into_owned();
            let str_of = |k: &str| v[k].as_str().expect("test setup").to_owned();
            let ino = || v["inode"].as_u64().expect("test setup");
            match name.as_str() {
                "file" | "fake_deleted" | "weird" | "dir" | "fifo" => {
                    assert_eq!(text, str_of("path"), "{name}")
                }
                "devnull" => assert_eq!(text, "/dev/null"),
                "deleted" => {
                    assert_eq!(text, format!("{} (deleted)", str_of("path")));
                    let meta = fs::metadata(format!("/proc/self/fd/{fd}")).expect("test setup");
                    assert_eq!(meta.len(), 4096);
                }
                "nonutf8" => assert_eq!(hex_encode(&link), str_of("path_hex")),
                "pipe_r" | "pipe_w" => assert_eq!(text, format!("pipe:[{}]", ino())),
                n if n.starts_with("tcp") || n.starts_with("unix") || n == "udp" => {
                    assert_eq!(text, format!("socket:[{}]", ino()), "{name}")
                }
                "eventfd" => assert_eq!(text, "anon_inode:[eventfd]"),
                "epoll" => assert_eq!(text, "anon_inode:[eventpoll]"),
                "timerfd" => assert_eq!(text, "anon_inode:[timerfd]"),
                "signalfd" => assert_eq!(text, "anon_inode:[signalfd]"),
                "inotify" => assert_eq!(text, "anon_inode:inotify"),
                // Kernels with pidfs (6.9+) may show `pidfd:[ino]` instead.
                "pidfd" => assert!(
                    text == "anon_inode:[pidfd]" || text.starts_with("pidfd:"),
                    "{text}"
                ),
                "memfd" => assert_eq!(text, "/memfd:fdiff-memfd (deleted)"),
                other => panic!("unchecked kind {other}"),
            }
        }

        // Cross-checks between entries.
        assert_eq!(fds["pipe_r"]["inode"], fds["pipe_w"]["inode"]);
        assert_eq!(fds["unix_stream_a"]["peer"], fds["unix_stream_b"]["inode"]);
        assert_eq!(fds["unix_dgram_b"]["peer"], fds["unix_dgram_a"]["inode"]);
        assert_eq!(fds["tcp_client"]["remote"], fds["tcp_listen"]["local"]);
        assert_eq!(fds["tcp_server"]["remote"], fds["tcp_client"]["local"]);
        let mut tfd = vec![
            fds["eventfd"]["fd"].as_i64().expect("test setup"),
            fds["pipe_r"]["fd"].as_i64().expect("test setup"),
        ];
        tfd.sort_unstable();
        assert_eq!(fds["epoll"]["tfd"], json!(tfd));
        let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", fds["inotify"]["fd"]))
            .expect("test setup");
        assert_eq!(info.matches("inotify wd:").count(), 1);
        let ab = fs::read_to_string("/proc/net/unix").expect("test setup");
        assert!(ab.contains(&str_without_at(&fds["unix_abstract"]["path"])));
    }

    fn str_without_at(v: &Value) -> String {
        v.as_str()
            .expect("test setup")
            .trim_start_matches('@')
            .to_owned()
    }

    #[test]
    fn schedules_open_and_release() {
        let tmp = tempfile::tempdir().expect("test setup");
        let sh = Arc::new(Shared {
            dir: tmp.path().to_path_buf(),
            counter: AtomicU64::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, st2) = (Arc::clone(&sh), Arc::clone(&stop));
        let h = thread::spawn(move || run_schedule(1, Schedule::LeakPipe { rate: 100.0 }, s2, st2));
        thread::sleep(Duration::from_millis(105));
        stop.store(true, Ordering::Release);
        h.thread().unpark();
        let kept = h.join().expect("test setup");
        assert!(kept.len() >= 2 && kept.len() % 2 == 0, "{}", kept.len());

        let stop = Arc::new(AtomicBool::new(false));
        let (s2, st2) = (Arc::clone(&sh), Arc::clone(&stop));
        let h = thread::spawn(move || {
            run_schedule(
                2,
                Schedule::Churn {
                    level: 3,
                    rate: 50.0,
                },
                s2,
                st2,
            )
        });
        thread::sleep(Duration::from_millis(50));
        stop.store(true, Ordering::Release);
        h.thread().unpark();
        assert!(h.join().expect("test setup").is_empty());
        assert!(sh.counter.load(Ordering::Relaxed) >= 3);
    }

    #[test]
    fn fill_is_exact_and_change_replaces_a_spread() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut fx = Fixture::new(tmp.path().to_path_buf()).expect("fixture");
        for n in [0, 1, 7, 25] {
            let before = fx.fill.len();
            let v = fx.fill(n);
            assert_eq!(v["ok"], json!(true), "{v}");
            assert_eq!(v["opened"], json!(n));
            assert_eq!(fx.fill.len() - before, n);
        }
        let v = fx.change(30.0);
        assert_eq!(v["changed"], json!(10), "{v}");
        assert_eq!(fx.fill.len(), 33);
        assert_eq!(fx.change(0.0)["changed"], json!(0));
        let fd = fx.fill[0].as_ref().expect("slot").as_raw_fd();
        assert!(fx.close(fd).is_ok());
        assert_eq!(fx.fill.len(), 32);
        assert!(fx.close(fd).is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// Respawning pools (`respawn`)

/// `respawn WORKERS LIFE_MS rolling|reload SCHEDULE[;SCHEDULE…]`: keep WORKERS child fixtures
/// named `worker`, each running the schedules, each replaced after LIFE_MS. `rolling` replaces
/// one at a time, staggered (gunicorn's --max-requests); `reload` starts a whole new set, then
/// ends the old one (nginx -s reload). `$PORT` in a schedule is the port of a TCP server the
/// pool keeps in this process (the database or upstream the workers hold connections to).
#[derive(Debug, Clone, PartialEq)]
struct PoolSpec {
    workers: usize,
    life_ms: u64,
    reload: bool,
    schedules: Vec<String>,
}

fn parse_pool(rest: &str) -> Result<PoolSpec, String> {
    const USAGE: &str = "usage: respawn WORKERS LIFE_MS rolling|reload SCHEDULE[;SCHEDULE...]";
    let mut words = rest.splitn(4, char::is_whitespace);
    let (Some(w), Some(l), Some(m), Some(sch)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(USAGE.into());
    };
    let workers: usize = w
        .parse()
        .ok()
        .filter(|&n| (1..=64).contains(&n))
        .ok_or_else(|| format!("respawn: workers `{w}` must be 1..=64"))?;
    let life_ms: u64 = l
        .parse()
        .ok()
        .filter(|&n| n >= 50)
        .ok_or_else(|| format!("respawn: life `{l}` must be at least 50 ms"))?;
    let reload = match m {
        "rolling" => false,
        "reload" => true,
        _ => return Err(USAGE.into()),
    };
    let schedules: Vec<String> = sch
        .split(';')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if schedules.is_empty() {
        return Err(USAGE.into());
    }
    for s in &schedules {
        parse_schedule(&s.replace("$PORT", "1"))?;
    }
    Ok(PoolSpec {
        workers,
        life_ms,
        reload,
        schedules,
    })
}

/// The pool's server: accepts every connection and holds it until the client closes it.
fn serve_until_closed(listener: TcpListener) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let _ = thread::Builder::new()
            .name("pool-conn".into())
            .spawn(move || {
                let mut buf = [0u8; 256];
                while matches!(io::Read::read(&mut conn, &mut buf), Ok(n) if n > 0) {}
            });
    }
}

fn spawn_pool_worker(dir: &Path, n: u64, schedules: &[String]) -> Option<std::process::Child> {
    use std::process::{Command as Cmd, Stdio};
    let exe = std::env::current_exe().ok()?;
    let mut cmd = Cmd::new(exe);
    cmd.args(["--name", "worker", "--dir"])
        .arg(dir.join(format!("w{n}")));
    for s in schedules {
        cmd.args(["--run", s]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    let mut line = String::new();
    if let Some(out) = child.stdout.as_mut() {
        let _ = io::BufReader::new(out).read_line(&mut line);
    }
    Some(child)
}

fn run_pool(spec: PoolSpec, sh: Arc<Shared>, stop: Arc<AtomicBool>) -> Vec<OwnedFd> {
    let port = match TcpListener::bind("127.0.0.1:0") {
        Ok(l) => {
            let port = l.local_addr().map_or(0, |a| a.port());
            let _ = thread::Builder::new()
                .name("pool-server".into())
                .spawn(move || serve_until_closed(l));
            port
        }
        Err(e) => {
            eprintln!("fdiff-fixture: respawn: no server: {e}");
            0
        }
    };
    let schedules: Vec<String> = spec
        .schedules
        .iter()
        .map(|s| s.replace("$PORT", &port.to_string()))
        .collect();
    let life = Duration::from_millis(spec.life_ms);
    let spawn = || spawn_pool_worker(&sh.dir, sh.next(), &schedules);
    let start = Instant::now();
    // Each live worker with the moment it is due to be replaced.
    let mut live: Vec<(std::process::Child, Instant)> = Vec::new();
    let step = life / spec.workers as u32;
    for i in 0..spec.workers {
        let due = if spec.reload {
            start + life
        } else {
            // The first generation is cut short one step apart, so replacements stagger.
            start + life - step * i as u32
        };
        if let Some(c) = spawn() {
            live.push((c, due));
        }
    }
    while let Some(due) = live.iter().map(|(_, d)| *d).min() {
        if !sleep_until(due, &stop) {
            break;
        }
        if spec.reload {
            let old = std::mem::take(&mut live);
            for _ in 0..spec.workers {
                if let Some(c) = spawn() {
                    live.push((c, due + life));
                }
            }
            for (c, _) in old {
                end_worker(c, true);
            }
        } else if let Some(i) = live.iter().position(|(_, d)| *d == due) {
            let (c, _) = live.swap_remove(i);
            end_worker(c, true);
            if let Some(c) = spawn() {
                live.push((c, Instant::now() + life));
            }
        }
    }
    for (c, _) in live {
        end_worker(c, true);
    }
    Vec::new()
}

impl Fixture {
    fn respawn(&mut self, spec: PoolSpec) -> Result<Value, String> {
        let id = self.next_id;
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, st) = (Arc::clone(&self.shared), Arc::clone(&stop));
        let handle = thread::Builder::new()
            .name(format!("pool-{id}"))
            .spawn(move || run_pool(spec, sh, st))
            .map_err(|e| format!("respawn: {e}"))?;
        self.next_id += 1;
        self.running.push((id, Running { stop, handle }));
        Ok(json!({"ok": true, "id": id}))
    }
}

#[cfg(test)]
mod pool_tests {
    use super::*;

    #[test]
    fn parses_respawn() {
        assert_eq!(
            parse_command("respawn 2 3000 rolling hold-tcp 4 10 $PORT; hold-files 2 10"),
            Ok(Command::Respawn(PoolSpec {
                workers: 2,
                life_ms: 3000,
                reload: false,
                schedules: vec!["hold-tcp 4 10 $PORT".into(), "hold-files 2 10".into()],
            }))
        );
        assert!(matches!(
            parse_command("respawn 4 500 reload leak-file 2"),
            Ok(Command::Respawn(PoolSpec { reload: true, .. }))
        ));
        for bad in [
            "respawn",
            "respawn 2 3000 rolling",
            "respawn 0 3000 rolling hold-files 1 1",
            "respawn 2 10 rolling hold-files 1 1",
            "respawn 2 3000 sideways hold-files 1 1",
            "respawn 2 3000 rolling nope 1",
            "respawn 2 3000 rolling hold-tcp 1 1 x",
        ] {
            assert!(parse_command(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
