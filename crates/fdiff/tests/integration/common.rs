//! Shared helpers: the fixture process, running fdiff with a bound on its run time, and
//! report lookups.

#![allow(dead_code)]

use serde_json::Value;
use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub const FDIFF: &str = env!("CARGO_BIN_EXE_fdiff");

/// How long any single fdiff invocation may take before the test gives up on it.
pub const RUN_LIMIT: Duration = Duration::from_secs(40);

/// The fixture process and its client live in the fdiff-fixture crate (not in the binary).
pub use fdiff_fixture::Fixture;

/// The fixture executable's path, for shell command lines.
pub fn fixture_exe() -> String {
    fdiff_fixture::exe().display().to_string()
}

/// The fixture executable's file name: how its processes are recognised by their cmdline.
pub const FIXTURE_NAME: &str = "fdiff-fixture";

/// A command for the fdiff binary with stdin closed.
pub fn fdiff_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(FDIFF);
    c.args(args).stdin(Stdio::null()).env("NO_COLOR", "1");
    c
}

/// Run fdiff to completion (killed after [`RUN_LIMIT`]).
pub fn fdiff(args: &[&str]) -> Output {
    let child = fdiff_cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fdiff");
    finish(child, RUN_LIMIT)
}

/// Start fdiff in the background with stdout and stderr piped; collect it with [`finish`].
pub fn spawn_fdiff(args: &[&str]) -> Child {
    fdiff_cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fdiff")
}

/// Collect a child's output; kill it (and fail the test) when it runs past `limit`.
pub fn finish(mut child: Child, limit: Duration) -> Output {
    let out = child.stdout.take().map(reader_thread);
    let err = child.stderr.take().map(reader_thread);
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait().expect("try_wait") {
            Some(s) => break s,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("fdiff did not finish within {limit:?}");
            }
            None => thread::sleep(Duration::from_millis(20)),
        }
    };
    let take = |h: Option<thread::JoinHandle<Vec<u8>>>| {
        h.map(|h| h.join().expect("reader thread"))
            .unwrap_or_default()
    };
    Output {
        status,
        stdout: take(out),
        stderr: take(err),
    }
}

fn reader_thread(mut r: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

pub fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A human-readable account of a run for assertion messages.
pub fn show(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        truncate(&stdout_of(o)),
        truncate(&stderr_of(o))
    )
}

fn truncate(s: &str) -> String {
    if s.len() > 4000 {
        let mut cut = 4000;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}… ({} bytes)", &s[..cut], s.len())
    } else {
        s.to_owned()
    }
}

/// The exit code, which must exist (not killed by a signal).
pub fn code(o: &Output) -> i32 {
    o.status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {}", show(o)))
}

/// Stdout parsed as exactly one JSON document.
pub fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", show(o)))
}

/// Run fdiff expecting success and one JSON document on stdout.
pub fn fdiff_json(args: &[&str]) -> Value {
    let o = fdiff(args);
    assert_eq!(code(&o), 0, "fdiff {args:?}: {}", show(&o));
    json_out(&o)
}

/// An error run: this exit code, nothing on stdout, and exactly one `fdiff: ` line on stderr
/// with no panic and no backtrace. Returns that line.
pub fn assert_error(o: &Output, want: i32) -> String {
    assert_eq!(code(o), want, "{}", show(o));
    let err = stderr_of(o);
    assert!(
        !err.contains("panicked") && !err.contains("backtrace") && !err.contains("RUST_BACKTRACE"),
        "{}",
        show(o)
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one stderr line: {}", show(o));
    assert!(lines[0].starts_with("fdiff: "), "{}", show(o));
    lines[0].to_owned()
}

/// Groups of a report that belong to `pid`.
pub fn groups_of(report: &Value, pid: i32) -> Vec<&Value> {
    report["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter(|g| g["pid"].as_i64() == Some(i64::from(pid)))
        .collect()
}

/// The one group of `pid` whose key contains `needle`.
pub fn group<'a>(report: &'a Value, pid: i32, needle: &str) -> &'a Value {
    let found: Vec<&Value> = groups_of(report, pid)
        .into_iter()
        .filter(|g| g["key"].as_str().is_some_and(|k| k.contains(needle)))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one group of pid {pid} with {needle:?} in its key; groups: {}",
        keys(report)
    );
    found[0]
}

/// Every group's pid, key and numbers, for assertion messages.
pub fn keys(report: &Value) -> String {
    report["groups"]
        .as_array()
        .map(|gs| {
            gs.iter()
                .map(|g| {
                    format!(
                        "\n  {} {:?} start {} end {} opened {} closed {} rate {} leaking {}",
                        g["pid"],
                        g["key"],
                        g["start"],
                        g["end"],
                        g["opened"],
                        g["closed"],
                        g["rate_per_sec"],
                        g["leaking"]
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The process entry of `pid` in a report.
pub fn process(report: &Value, pid: i32) -> Option<&Value> {
    report["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|p| p["pid"].as_i64() == Some(i64::from(pid)))
}

pub fn pid_arg(pid: i32) -> String {
    pid.to_string()
}

/// Poll `cond` every 20 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Send a signal to a process.
pub fn signal(pid: i32, sig: i32) {
    // SAFETY: plain kill(2).
    let r = unsafe { libc::kill(pid, sig) };
    assert_eq!(r, 0, "kill({pid}, {sig}) failed");
}

/// Wait (up to 10 s) until `pid` catches SIGTERM: fdiff has installed its signal handling and
/// is about to start watching.
pub fn wait_for_sigterm_handler(pid: i32) {
    let caught = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("SigCgt:"))?;
                u64::from_str_radix(line["SigCgt:".len()..].trim(), 16).ok()
            })
            .is_some_and(|mask| mask & (1 << (libc::SIGTERM - 1)) != 0)
    });
    assert!(caught, "fdiff {pid} never installed its SIGTERM handler");
}

/// Live lines of a table watch: stdout before the report's header.
pub fn live_part(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .take_while(|l| !l.starts_with("fdiff: watched"))
        .collect()
}

/// Ticks in a recording (its lines after the header).
pub fn recorded_ticks(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| {
            s.lines()
                .filter(|l| l.contains("\"type\":\"tick\""))
                .count()
        })
        .unwrap_or(0)
}
