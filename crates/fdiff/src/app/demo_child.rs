//! `fdiff __demo-child` (hidden): the leaky program `fdiff demo` watches. It leaks files, TCP
//! connections to its own listener and eventfds beside a normal churn of temp files, under a
//! soft limit of 1,024 fds and the name "leaky-demo" — just enough to show every part of a
//! report, without shipping the test fixture in the release binary.

use std::fs::File;
use std::io::{BufRead, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Held by the main loop while it acts and by the cleanup for good: the cleanup must not race
/// a file being created in the directory it removes (that left the directory behind).
static ACTING: Mutex<()> = Mutex::new(());

/// The soft RLIMIT_NOFILE the program runs under, so the report can predict when it hits it.
const LIMIT: u64 = 1024;
/// Temp files the churn keeps open at once, and how many it replaces per second.
const CHURN_LEVEL: usize = 20;
const CHURN_RATE: f64 = 10.0;

/// One repeating action and its rate (per second).
#[derive(Clone, Copy)]
enum Action {
    LeakFile,
    LeakTcp,
    LeakEventfd,
    Churn,
}

const SCHEDULE: [(Action, f64); 4] = [
    (Action::LeakFile, 4.0),
    (Action::LeakTcp, 2.0),
    (Action::LeakEventfd, 1.0),
    (Action::Churn, CHURN_RATE),
];

struct Leaky {
    dir: PathBuf,
    listener: Option<TcpListener>,
    held: Vec<OwnedFd>,
    churn: std::collections::VecDeque<File>,
    n: u64,
    said: bool,
}

impl Leaky {
    fn file(&mut self, prefix: &str, ext: &str) -> std::io::Result<File> {
        self.n += 1;
        let mut f = File::create(self.dir.join(format!("{prefix}-{}.{ext}", self.n)))?;
        f.write_all(b"fdiff")?;
        Ok(f)
    }

    fn act(&mut self, a: Action) -> std::io::Result<()> {
        match a {
            Action::LeakFile => {
                let f = self.file("upload", "pdf")?;
                self.held.push(f.into());
            }
            Action::LeakTcp => {
                if let Some(l) = &self.listener {
                    let c = TcpStream::connect(l.local_addr()?)?;
                    let (s, _) = l.accept()?;
                    self.held.push(c.into());
                    self.held.push(s.into());
                }
            }
            Action::LeakEventfd => {
                let fd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)?;
                self.held.push(fd);
            }
            Action::Churn => {
                if self.churn.len() >= CHURN_LEVEL {
                    self.churn.pop_front();
                }
                let f = self.file("churn", "tmp")?;
                self.churn.push_back(f);
            }
        }
        Ok(())
    }

    /// The first failure (usually EMFILE at the limit) is said once; the program keeps going,
    /// as a leaking service would.
    fn note(&mut self, e: &std::io::Error) {
        if !self.said {
            self.said = true;
            let _ = writeln!(std::io::stderr(), "leaky-demo: {e}");
        }
    }
}

fn work_dir() -> std::io::Result<PathBuf> {
    let base = std::env::temp_dir();
    let pid = std::process::id();
    for i in 0..100u32 {
        let d = match i {
            0 => base.join(format!("fdiff-demo-{pid}")),
            _ => base.join(format!("fdiff-demo-{pid}-{i}")),
        };
        match std::fs::create_dir(&d) {
            Ok(()) => return Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free work directory name"))
}

fn set_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    let want = lim.maximum.map_or(LIMIT, |m| m.min(LIMIT));
    lim.current = Some(want);
    let _ = setrlimit(Resource::Nofile, lim);
}

/// Runs until stdin reaches EOF (the demo ends, or fdiff dies: either closes the pipe), then
/// removes its files and exits. Prints `{"ready":true,"pid":N}` once running.
pub fn run() -> i32 {
    let _ = rustix::thread::set_name(c"leaky-demo");
    set_limit();
    let dir = match work_dir() {
        Ok(d) => d,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "leaky-demo: cannot create a work directory: {e}"
            );
            return 1;
        }
    };
    let cleanup = dir.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        let mut stdin = std::io::stdin().lock();
        while matches!(stdin.read_line(&mut line), Ok(n) if n > 0) {
            line.clear();
        }
        // Never released: once it is held, the main loop stops before its next action.
        let _held = ACTING.lock();
        remove(&cleanup);
        std::process::exit(0);
    });
    let mut p = Leaky {
        listener: TcpListener::bind("127.0.0.1:0").ok(),
        dir,
        held: Vec::new(),
        churn: std::collections::VecDeque::with_capacity(CHURN_LEVEL),
        n: 0,
        said: false,
    };
    for _ in 0..CHURN_LEVEL {
        let _acting = ACTING.lock();
        if let Err(e) = p.act(Action::Churn) {
            p.note(&e);
        }
    }
    let _ = writeln!(
        std::io::stdout(),
        "{{\"ready\":true,\"pid\":{}}}",
        std::process::id()
    );
    let _ = std::io::stdout().flush();
    let start = Instant::now();
    let mut done = [0u64; SCHEDULE.len()];
    loop {
        // The next action due, by its own rate from the start (no drift).
        let (i, due) = SCHEDULE
            .iter()
            .enumerate()
            .map(|(i, &(_, rate))| {
                (
                    i,
                    start + Duration::from_secs_f64((done[i] + 1) as f64 / rate),
                )
            })
            .min_by_key(|&(_, t)| t)
            .unwrap_or((0, start));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        done[i] += 1;
        let _acting = ACTING.lock();
        if let Err(e) = p.act(SCHEDULE[i].0) {
            p.note(&e);
        }
    }
}

fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
