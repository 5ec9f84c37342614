//! The one client of the fixture process, shared by the integration tests, the bench and
//! anything else that needs a process with real fds: start it, send commands, read answers.
//!
//! The executable is the `fdiff-fixture` example of this crate. `cargo test` builds examples
//! into `target/<profile>/examples/`, beside the `deps/` directory the test runs from, so it is
//! looked for there first; when it is missing (`cargo test -p fdiff`, `cargo bench`, which
//! build only their own targets) it is built once with `cargo build -p fdiff-fixture --example
//! fdiff-fixture` into a target directory of its own (the running cargo may hold the lock of
//! the main one). `FDIFF_FIXTURE` names another executable.

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::{Duration, Instant};

const NAME: &str = "fdiff-fixture";

/// The fixture executable; found or built on first use (panics when neither works: this is
/// test support).
pub fn exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| locate().unwrap_or_else(|e| panic!("{e}")))
}

fn locate() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("FDIFF_FIXTURE") {
        return Ok(PathBuf::from(p));
    }
    let me = std::env::current_exe().map_err(|e| format!("{NAME}: current_exe: {e}"))?;
    // A test or bench runs as target/<profile>/deps/NAME-HASH (an example as
    // target/<profile>/examples/NAME): the profile directory is two levels up.
    let profile_dir = me
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("{NAME}: no profile directory above {}", me.display()))?;
    let beside = profile_dir.join("examples").join(NAME);
    if beside.is_file() {
        return Ok(beside);
    }
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let target_dir = profile_dir
        .parent()
        .unwrap_or(profile_dir)
        .join("fdiff-fixture");
    let built = target_dir
        .join(if release { "release" } else { "debug" })
        .join("examples")
        .join(NAME);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "-p",
        NAME,
        "--example",
        NAME,
        "--manifest-path",
    ])
    .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
    .arg("--target-dir")
    .arg(&target_dir);
    if release {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .map_err(|e| format!("{NAME}: cannot run cargo to build it: {e}"))?;
    if !status.success() || !built.is_file() {
        return Err(format!(
            "{NAME}: `cargo build -p {NAME} --example {NAME}` failed ({status}); build it or set FDIFF_FIXTURE"
        ));
    }
    Ok(built)
}

/// A command that runs the fixture executable (arguments and stdio up to the caller).
pub fn command() -> Command {
    Command::new(exe())
}

/// A running fixture; dropping it closes its stdin (it then cleans up and exits) and waits for
/// it, killing it after 3 s.
pub struct Fixture {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    pub pid: i32,
    pub dir: PathBuf,
}

impl Fixture {
    /// A fixture running `schedules` (`"leak-file 10"`, …) from the start.
    pub fn new(schedules: &[&str]) -> Fixture {
        Fixture::with_args(&[], schedules)
    }

    /// A fixture started with extra arguments before its schedules (`--name svc`, `--limit N`).
    pub fn with_args(args: &[&str], schedules: &[&str]) -> Fixture {
        let mut cmd = command();
        cmd.args(args);
        for s in schedules {
            cmd.args(["--run", s]);
        }
        Fixture::spawn(cmd)
    }

    /// A fixture started through a wrapper command (`prefix… fdiff-fixture`), e.g. as another
    /// user or in new namespaces; the wrapper must exec it, so that its pid is the fixture's.
    pub fn wrapped(prefix: &[&str]) -> Fixture {
        let (prog, rest) = prefix.split_first().expect("a wrapper command");
        let mut cmd = Command::new(prog);
        cmd.args(rest).arg(exe());
        Fixture::spawn(cmd)
    }

    /// Start `cmd` (which runs the fixture) and wait for its ready line.
    pub fn spawn(mut cmd: Command) -> Fixture {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("fixture stdout");
        let (tx, rx) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut fx = Fixture {
            child,
            stdin,
            lines: rx,
            pid: 0,
            dir: PathBuf::new(),
        };
        let ready = fx.read_answer();
        assert_eq!(
            ready["ready"],
            Value::Bool(true),
            "fixture not ready: {ready}"
        );
        fx.pid = ready["pid"].as_i64().expect("ready pid") as i32;
        fx.dir = PathBuf::from(ready["dir"].as_str().expect("ready dir"));
        fx
    }

    fn read_answer(&mut self) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the fixture did not answer within 20 s");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("fixture said {line:?}: {e}"))
    }

    /// Send one command and return its answer.
    pub fn send(&mut self, command: &str) -> Value {
        let stdin = self.stdin.as_mut().expect("fixture stdin already closed");
        writeln!(stdin, "{command}").expect("write to fixture");
        stdin.flush().expect("flush fixture stdin");
        self.read_answer()
    }

    /// Send a command that must succeed.
    pub fn ok(&mut self, command: &str) -> Value {
        let v = self.send(command);
        assert_eq!(v["ok"], Value::Bool(true), "{command}: {v}");
        v
    }

    /// Open `n` more fds of every kind in rotation (`fill N`), checking they all opened.
    pub fn fill(&mut self, n: usize) -> Value {
        let v = self.ok(&format!("fill {n}"));
        assert_eq!(v["opened"].as_u64(), Some(n as u64), "{v}");
        v
    }

    /// Close stdin: the fixture stops its schedules, removes its directory and exits.
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// Wait (bounded) for the fixture to exit, reaping it.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(s)) => return Some(s),
                Ok(None) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(20));
                }
                _ => return None,
            }
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.close_stdin();
        if self.wait_exit(Duration::from_secs(3)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
