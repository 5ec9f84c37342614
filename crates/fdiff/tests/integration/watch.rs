//! Issue 3: watching a process tells leaks from churn, bursts and pools, and ends cleanly.

use crate::common::*;
use serde_json::{Value, json};
use std::thread;
use std::time::Duration;

/// `fdiff --pid PID --interval 250ms --duration D --format json --quiet [extra…]`.
fn watch_args(pid: i32, duration: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "--pid",
        &pid_arg(pid),
        "--interval",
        "250ms",
        "--duration",
        duration,
        "--format",
        "json",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn run_watch(pid: i32, duration: &str, extra: &[&str]) -> (i32, Value) {
    let args = watch_args(pid, duration, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = fdiff(&args);
    (code(&o), json_out(&o))
}

fn assert_leaking(r: &Value, g: &Value) {
    assert_eq!(g["leaking"], json!(true), "{g}\n{}", keys(r));
    assert!(g["end"].as_u64() > g["start"].as_u64(), "{g}");
}

fn assert_not_leaking(r: &Value, g: &Value) {
    assert_eq!(g["leaking"], json!(false), "{g}\n{}", keys(r));
}

#[test]
fn issue3_leak_is_told_from_churn_burst_and_pool() {
    let fx = Fixture::new(&[
        "leak-file 10",
        "churn 20 20",
        "burst 200 500 1500",
        "pool 30 30",
    ]);
    let (c, r) = run_watch(fx.pid, "5s", &[]);
    assert_eq!(c, 0, "a watch ends with 0 whatever it finds");
    assert_eq!(r["schema"], json!("fdiff/report/v1"));
    assert_eq!(r["leaking"], json!(true), "{}", keys(&r));

    let up = group(&r, fx.pid, "upload-*.pdf");
    assert_leaking(&r, up);
    assert_eq!(up["kind"], json!("file"));
    let rate = up["rate_per_sec"].as_f64().expect("rate");
    assert!(
        (7.0..=13.0).contains(&rate),
        "rate {rate} not within 30% of 10/s: {up}"
    );
    assert!(up["opened"].as_u64().is_some_and(|n| n >= 20), "{up}");
    assert_eq!(up["closed"], json!(0), "{up}");

    assert_not_leaking(&r, group(&r, fx.pid, "churn-*.tmp"));
    // The burst may be over before the first tick or still held at the last: either way it
    // is no leak.
    if let Some(b) = groups_of(&r, fx.pid)
        .into_iter()
        .find(|g| g["key"].as_str().is_some_and(|k| k.contains("burst-*.tmp")))
    {
        assert_not_leaking(&r, b);
    }
    assert_not_leaking(&r, group(&r, fx.pid, "pool-*.db"));

    let p = &r["processes"][0];
    assert_eq!(p["pid"], json!(fx.pid));
    assert_eq!(p["comm"], json!(FIXTURE_NAME));
    assert!(
        p["cmdline"]
            .as_array()
            .is_some_and(|a| a.iter().any(|w| w == "leak-file 10"))
    );
    assert!(p["start_time"].as_u64().is_some_and(|t| t > 0));
    assert_eq!(p["exited"], json!(false));
    // The burst may be held at the first tick, so only the peak is ordered.
    let n = |k: &str| p[k].as_u64().unwrap_or_else(|| panic!("{k}: {p}"));
    assert!(
        n("fds_peak") >= n("fds_end") && n("fds_peak") >= n("fds_start"),
        "{p}"
    );
    assert!(
        n("fds_end") >= 20 + 30 + 20,
        "churn, pool and the leaked files: {p}"
    );
    let lr = p["leak_rate_per_sec"].as_f64().expect("leak rate");
    assert!((7.0..=13.0).contains(&lr), "{p}");
    assert!(p["fd_limit"].get("soft").is_some(), "{p}");
    let ticks = r["ticks"].as_u64().expect("ticks");
    assert!((10..=22).contains(&ticks), "5 s at 250 ms: {ticks} ticks");
    assert_eq!(r["interval_secs"].as_f64(), Some(0.25));
}

#[test]
fn issue3_tcp_leak_groups_both_ends() {
    let fx = Fixture::new(&["leak-tcp 5"]);
    let (_, r) = run_watch(fx.pid, "4s", &[]);
    let client: Vec<&Value> = groups_of(&r, fx.pid)
        .into_iter()
        .filter(|g| {
            g["key"]
                .as_str()
                .is_some_and(|k| k.starts_with("tcp -> 127.0.0.1:") && k.ends_with(" ESTABLISHED"))
        })
        .collect();
    let server: Vec<&Value> = groups_of(&r, fx.pid)
        .into_iter()
        .filter(|g| {
            g["key"].as_str().is_some_and(|k| {
                k.starts_with("tcp 127.0.0.1:") && k.ends_with(" <- * ESTABLISHED")
            })
        })
        .collect();
    assert_eq!(client.len(), 1, "{}", keys(&r));
    assert_eq!(server.len(), 1, "{}", keys(&r));
    assert_leaking(&r, client[0]);
    assert_leaking(&r, server[0]);
    assert_eq!(client[0]["kind"], json!("socket"));
    // Both name the same listener port.
    let port = |k: &str| {
        k.split("127.0.0.1:")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .map(str::to_owned)
    };
    assert_eq!(
        port(client[0]["key"].as_str().unwrap_or_default()),
        port(server[0]["key"].as_str().unwrap_or_default())
    );
    assert_eq!(r["leaking"], json!(true));
}

#[test]
fn issue3_pipe_leak_is_found_and_fails_the_gate() {
    let fx = Fixture::new(&["leak-pipe 5"]);
    let (c, r) = run_watch(fx.pid, "4s", &["--fail-on-leak"]);
    assert_eq!(c, 3, "--fail-on-leak with a leak exits 3");
    let pipes: Vec<&Value> = groups_of(&r, fx.pid)
        .into_iter()
        .filter(|g| g["kind"] == json!("pipe") && g["leaking"] == json!(true))
        .collect();
    assert_eq!(pipes.len(), 1, "{}", keys(&r));
    let rate = pipes[0]["rate_per_sec"].as_f64().expect("rate");
    // Both ends of 5 pipes a second.
    assert!((7.0..=13.0).contains(&rate), "{}", pipes[0]);
}

#[test]
fn issue3_eventfd_leak_is_found() {
    let fx = Fixture::new(&["leak-eventfd 5"]);
    let (_, r) = run_watch(fx.pid, "4s", &[]);
    let g = group(&r, fx.pid, "anon_inode:[eventfd]");
    assert_leaking(&r, g);
    assert_eq!(g["kind"], json!("anon_inode"));
    let rate = g["rate_per_sec"].as_f64().expect("rate");
    assert!((3.5..=6.5).contains(&rate), "{g}");
}

#[test]
fn issue3_clean_process_passes_the_gate() {
    let fx = Fixture::new(&["churn 20 20"]);
    let (c, r) = run_watch(fx.pid, "4s", &["--fail-on-leak"]);
    assert_eq!(r["leaking"], json!(false), "{}", keys(&r));
    assert_eq!(c, 0);
    let g = group(&r, fx.pid, "churn-*.tmp");
    assert!(g["opened"].as_u64().is_some_and(|n| n > 0), "{g}");
}

#[test]
fn issue3_reused_fd_is_close_plus_open() {
    let fx = Fixture::new(&["reuse 4"]);
    for extra in [&[][..], &["--group-by", "target"][..]] {
        let (_, r) = run_watch(fx.pid, "4s", extra);
        let reuse: Vec<&Value> = groups_of(&r, fx.pid)
            .into_iter()
            .filter(|g| g["key"].as_str().is_some_and(|k| k.contains("reuse-")))
            .collect();
        let opened: u64 = reuse.iter().filter_map(|g| g["opened"].as_u64()).sum();
        let closed: u64 = reuse.iter().filter_map(|g| g["closed"].as_u64()).sum();
        assert!(opened >= 3 && closed >= 3, "{extra:?}: {}", keys(&r));
        assert!(
            reuse.iter().all(|g| g["leaking"] == json!(false)),
            "{}",
            keys(&r)
        );
        if extra.is_empty() {
            assert_eq!(
                reuse.len(),
                1,
                "one key for every reuse-N.log: {}",
                keys(&r)
            );
        } else {
            assert!(reuse.len() >= 3, "one group per exact file: {}", keys(&r));
        }
    }
}

#[test]
fn issue3_watch_ends_when_the_process_exits() {
    let mut fx = Fixture::new(&["leak-file 5"]);
    let child = spawn_fdiff(&[
        "--pid",
        &pid_arg(fx.pid),
        "--interval",
        "250ms",
        "--format",
        "json",
        "--quiet",
    ]);
    wait_for_sigterm_handler(child.id() as i32);
    thread::sleep(Duration::from_millis(1500));
    fx.close_stdin();
    let o = finish(child, Duration::from_secs(20));
    assert_eq!(code(&o), 0, "{}", show(&o));
    let r = json_out(&o);
    let p = process(&r, fx.pid).expect("the process is in the report");
    assert_eq!(p["exited"], json!(true), "{p}");
    assert!(p["exited_at"].as_f64().is_some(), "{p}");
}

#[test]
fn issue3_live_lines_go_to_stderr_with_json() {
    let fx = Fixture::new(&["leak-file 5"]);
    let pid = pid_arg(fx.pid);
    let o = fdiff(&[
        "--pid",
        &pid,
        "--interval",
        "250ms",
        "--duration",
        "3s",
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let r = json_out(&o);
    assert_eq!(r["schema"], json!("fdiff/report/v1"));
    let err = stderr_of(&o);
    let plus: Vec<&str> = err
        .lines()
        .filter(|l| l.trim_start().starts_with('+') && l.contains("upload-"))
        .collect();
    assert!(plus.len() >= 3, "'+ ' lines for the leaked files:\n{err}");
}

#[test]
fn issue3_sigterm_ends_the_watch_with_a_report() {
    let fx = Fixture::new(&["leak-file 5"]);
    let child = spawn_fdiff(&[
        "--pid",
        &pid_arg(fx.pid),
        "--interval",
        "250ms",
        "--format",
        "json",
        "--quiet",
    ]);
    let fdiff_pid = child.id() as i32;
    wait_for_sigterm_handler(fdiff_pid);
    thread::sleep(Duration::from_millis(1500));
    signal(fdiff_pid, libc::SIGTERM);
    let o = finish(child, Duration::from_secs(20));
    assert_eq!(code(&o), 0, "{}", show(&o));
    let r = json_out(&o);
    assert!(r["ticks"].as_u64().is_some_and(|t| t >= 2), "{r}");
    let p = process(&r, fx.pid).expect("the process is in the report");
    assert_eq!(p["exited"], json!(false), "{p}");
}

// ---- issue 8 §3: live output that shows the leak -------------------------------------------

/// A line of the fd-by-fd kind: `+ 17 file /tmp/…` or `- 17 …` (with an optional `[pid] `).
fn is_fd_line(l: &str) -> bool {
    let l = l
        .strip_prefix('[')
        .map_or(l, |r| r.split_once("] ").map_or(r, |x| x.1));
    let mut w = l.split_whitespace();
    matches!(w.next(), Some("+" | "-")) && w.next().is_some_and(|n| n.parse::<u32>().is_ok())
}

#[test]
fn issue8_live_lines_are_per_group_and_say_leak_at_once() {
    let fx = Fixture::new(&["churn 20 15", "leak-file 4"]);
    let pid = pid_arg(fx.pid);
    let o = fdiff(&["--pid", &pid, "--interval", "250ms", "--duration", "4s"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let out = stdout_of(&o);
    let live = live_part(&out);
    assert!(
        !live.iter().any(|l| is_fd_line(l)),
        "fd-by-fd lines without --verbose:\n{out}"
    );
    // About one tick line, one group line and rarely a churn line per tick: far below the
    // 30 opens and closes a second the churn makes.
    let ticks = live.iter().filter(|l| l.starts_with("· tick")).count();
    assert!(ticks >= 4, "tick lines:\n{out}");
    assert!(
        live.len() <= 4 * ticks + 4,
        "{} live lines for {ticks} ticks:\n{out}",
        live.len()
    );
    let leak: Vec<&&str> = live
        .iter()
        .filter(|l| l.starts_with(&format!("LEAK suspected: pid {pid} (")))
        .collect();
    assert_eq!(leak.len(), 1, "one LEAK line for the leak:\n{out}");
    assert!(
        leak[0].contains(" file ") && leak[0].contains("upload-*.pdf +") && leak[0].contains("/s"),
        "{}",
        leak[0]
    );
    assert!(leak[0].contains("limit in ~"), "{}", leak[0]);
    assert!(
        live.iter()
            .any(|l| l.trim_start().starts_with('+') && l.contains("upload-*.pdf")),
        "a group line for the leak:\n{out}"
    );
    assert!(
        !live
            .iter()
            .any(|l| l.contains("LEAK") && l.contains("churn-")),
        "churn is no leak:\n{out}"
    );
    assert!(
        !stderr_of(&o).contains("fall behind"),
        "a 250 ms watch keeps up: {}",
        show(&o)
    );
}

#[test]
fn issue8_verbose_keeps_fd_by_fd_lines() {
    let fx = Fixture::new(&["churn 20 15", "leak-file 4"]);
    let pid = pid_arg(fx.pid);
    let o = fdiff(&[
        "--pid",
        &pid,
        "--interval",
        "250ms",
        "--duration",
        "2s",
        "-v",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let out = stdout_of(&o);
    let live = live_part(&out);
    let opened = live
        .iter()
        .filter(|l| is_fd_line(l) && l.starts_with("+ ") && l.contains("upload-"))
        .count();
    let churned = live
        .iter()
        .filter(|l| is_fd_line(l) && l.contains("churn-"))
        .count();
    assert!(opened >= 3, "fd lines for the leaked files:\n{out}");
    assert!(churned >= 10, "fd lines for the churn:\n{out}");
}

#[test]
fn issue8_leak_cleared_is_said_when_the_leak_is_closed() {
    let mut fx = Fixture::new(&["leak-file 8"]);
    let pid = pid_arg(fx.pid);
    let child = spawn_fdiff(&["--pid", &pid, "--interval", "200ms", "--duration", "7s"]);
    thread::sleep(Duration::from_millis(3000));
    let v = fx.ok("stop 1");
    assert!(v["retained"].as_u64().is_some_and(|n| n > 5), "{v}");
    // Close every leaked file: the group falls back to nothing.
    for e in std::fs::read_dir(format!("/proc/{}/fd", fx.pid)).expect("fd dir") {
        let e = e.expect("fd entry");
        let target = std::fs::read_link(e.path()).unwrap_or_default();
        if target.to_string_lossy().contains("upload-") {
            fx.ok(&format!("close {}", e.file_name().to_string_lossy()));
        }
    }
    let o = finish(child, RUN_LIMIT);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let out = stdout_of(&o);
    let live = live_part(&out);
    let leak = live
        .iter()
        .position(|l| l.starts_with("LEAK suspected: ") && l.contains("upload-*.pdf"));
    let cleared = live.iter().position(|l| {
        l.starts_with(&format!("leak cleared: pid {pid} (")) && l.contains("upload-*.pdf")
    });
    assert!(leak.is_some(), "LEAK line:\n{out}");
    assert!(cleared > leak, "leak cleared after the LEAK line:\n{out}");
}

#[test]
fn issue8_tick_lines_summarise_many_processes() {
    let mut fx = Fixture::new(&[]);
    for _ in 0..6 {
        fx.ok("spawn-worker churn 10 10");
    }
    let pid = pid_arg(fx.pid);
    let o = fdiff(&[
        "--pid",
        &pid,
        "--children",
        "--interval",
        "250ms",
        "--duration",
        "2s",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let out = stdout_of(&o);
    let live = live_part(&out);
    let ticks: Vec<&&str> = live.iter().filter(|l| l.starts_with("· tick")).collect();
    assert!(!ticks.is_empty(), "{out}");
    assert!(
        ticks
            .iter()
            .any(|l| l.contains(" processes of ") && l.contains(" fds (+")),
        "tick lines summarise per command:\n{out}"
    );
    assert!(
        !ticks.iter().any(|l| l.matches("pid ").count() > 4),
        "no tick line lists every process:\n{out}"
    );
    assert!(
        live.iter().any(|l| l.starts_with("watching 7 processes (")),
        "one line for the processes found at the start:\n{out}"
    );
}

// ---- issue 9: the watch loop never hangs and never loses what it saw -------------------------

/// A full pipe with a small buffer whose read end is held and not read.
fn unread_pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds, owned from here on.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2");
    // SAFETY: both fds were just created and are owned by nobody else.
    let (rd, wr) = unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    };
    // SAFETY: fcntl on an fd we own; a smaller buffer only makes the stall come sooner.
    unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 4096) };
    // Filled before fdiff starts, so its first write already finds the pipe full. The pipe
    // is not shared yet, so O_NONBLOCK for the filling harms no one; it is cleared after.
    // SAFETY: fcntl and write on the fd we own, from a live buffer.
    unsafe {
        let flags = libc::fcntl(fds[1], libc::F_GETFL);
        libc::fcntl(fds[1], libc::F_SETFL, flags | libc::O_NONBLOCK);
        let junk = [b'.'; 512];
        while libc::write(fds[1], junk.as_ptr().cast(), junk.len()) > 0 {}
        libc::fcntl(fds[1], libc::F_SETFL, flags);
    }
    (rd, wr)
}

/// fdiff with stdout into a pipe nobody reads, recording, verbose (many lines a tick).
fn spawn_into_unread_pipe(
    pid: i32,
    rec: &std::path::Path,
) -> (std::process::Child, std::os::fd::OwnedFd) {
    let (rd, wr) = unread_pipe();
    let child = fdiff_cmd(&[
        "--pid",
        &pid_arg(pid),
        "--interval",
        "50ms",
        "--duration",
        "4s",
        "-v",
        "--record",
        &rec.to_string_lossy(),
    ])
    .stdout(std::process::Stdio::from(wr))
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn fdiff");
    (child, rd)
}

#[test]
fn issue9_stalled_live_pipe_drops_lines_never_ticks() {
    // 15 replacements a tick: 30 fd lines, under the screenful that would summarise them.
    let fx = Fixture::new(&["churn 50 300"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let rec = tmp.path().join("r.jsonl");
    let (mut child, rd) = spawn_into_unread_pipe(fx.pid, &rec);
    // The watch runs its 4 s whatever the pipe does: every tick reaches the recording.
    thread::sleep(Duration::from_millis(5500));
    let ticks = recorded_ticks(&rec);
    assert!(
        ticks >= 40,
        "{ticks} ticks recorded of the ~80 a 4 s watch at 50 ms takes"
    );
    thread::sleep(Duration::from_millis(500));
    assert_eq!(
        recorded_ticks(&rec),
        ticks,
        "the watch ended at its duration"
    );
    // Now read: the report follows, and the dropped lines are said once.
    let reader = thread::spawn(move || {
        let mut f = std::fs::File::from(rd);
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut f, &mut s);
        s
    });
    let stderr = child.stderr.take().expect("stderr");
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stderr), &mut s);
        s
    });
    let status = child.wait().expect("wait");
    let out = reader.join().expect("reader");
    let err = err.join().expect("stderr reader");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        out.contains("fdiff: watched pid"),
        "the report is written:\n{out}"
    );
    let notes: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("live output is not being read; dropped "))
        .collect();
    assert_eq!(notes.len(), 1, "said once:\n{err}");
    assert!(notes[0].starts_with("fdiff: "), "{err}");
}

#[test]
fn issue9_stalled_live_pipe_signal_ends_the_final_write() {
    let fx = Fixture::new(&["churn 50 300"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let rec = tmp.path().join("r.jsonl");
    let (child, rd) = spawn_into_unread_pipe(fx.pid, &rec);
    let fdiff_pid = child.id() as i32;
    wait_for_sigterm_handler(fdiff_pid);
    // Past the duration: the report is waiting for the pipe to drain.
    thread::sleep(Duration::from_millis(6000));
    let ticks = recorded_ticks(&rec);
    assert!(ticks >= 40, "{ticks} ticks recorded");
    signal(fdiff_pid, libc::SIGTERM);
    let o = finish(child, Duration::from_secs(10));
    drop(rd);
    assert_eq!(o.status.code(), Some(128 + libc::SIGTERM), "{}", show(&o));
}

fn unique_name(tag: &str) -> String {
    format!("svc{tag}{}", std::process::id() % 100_000)
}

#[test]
fn issue9_name_watch_with_duration_outlives_a_restart() {
    let name = unique_name("r");
    let re = format!("^{name}$");
    let first = Fixture::with_args(&["--name", &name], &["leak-file 2"]);
    let first_pid = first.pid;
    let child = spawn_fdiff(&[
        "--name",
        &re,
        "--interval",
        "200ms",
        "--duration",
        "4s",
        "--format",
        "json",
        "--quiet",
    ]);
    wait_for_sigterm_handler(child.id() as i32);
    thread::sleep(Duration::from_millis(1200));
    drop(first);
    thread::sleep(Duration::from_millis(300));
    let second = Fixture::with_args(&["--name", &name], &["leak-file 2"]);
    let o = finish(child, RUN_LIMIT);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let r = json_out(&o);
    let p1 = process(&r, first_pid).expect("the first process is in the report");
    assert_eq!(p1["exited"], json!(true), "{p1}");
    let p2 = process(&r, second.pid).expect("the restarted process is in the report");
    assert_eq!(p2["exited"], json!(false), "{p2}");
    assert!(
        r["duration_secs"].as_f64().is_some_and(|d| d >= 3.0),
        "the watch ran to its duration: {}",
        r["duration_secs"]
    );
}

#[test]
fn issue9_name_watch_without_duration_ends_when_all_exited_and_says_so() {
    let name = unique_name("e");
    let re = format!("^{name}$");
    let mut fx = Fixture::with_args(&["--name", &name], &["leak-file 2"]);
    let child = spawn_fdiff(&["--name", &re, "--interval", "200ms"]);
    wait_for_sigterm_handler(child.id() as i32);
    thread::sleep(Duration::from_millis(1000));
    fx.close_stdin();
    let o = finish(child, Duration::from_secs(20));
    assert_eq!(code(&o), 0, "{}", show(&o));
    let out = stdout_of(&o);
    assert!(
        live_part(&out)
            .iter()
            .any(|l| l.contains("every watched process has exited")),
        "{out}"
    );
}

/// A tmpfs of 64 KiB mounted for one test, unmounted on drop.
struct SmallFs(tempfile::TempDir);

impl SmallFs {
    fn mount() -> Option<SmallFs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: mounting a small tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: cannot mount a tmpfs here");
            return None;
        }
        Some(SmallFs(dir))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[test]
fn issue9_full_disk_while_recording_still_prints_the_report() {
    let Some(fs) = SmallFs::mount() else { return };
    let mut fx = Fixture::new(&["churn 100 2000"]);
    fx.ok("fill 300");
    let rec = fs.0.path().join("r.jsonl");
    let o = fdiff(&[
        "--pid",
        &pid_arg(fx.pid),
        "--interval",
        "100ms",
        "--duration",
        "20s",
        "--record",
        &rec.to_string_lossy(),
        "--format",
        "json",
        "--quiet",
    ]);
    let line = assert_error_keeping_stdout(&o, 1);
    assert!(line.contains("r.jsonl"), "{line}");
    let r = json_out(&o);
    assert_eq!(r["schema"], json!("fdiff/report/v1"), "{r}");
    assert!(process(&r, fx.pid).is_some(), "the watch's own report: {r}");
    assert!(
        r["duration_secs"].as_f64().is_some_and(|d| d < 15.0),
        "the watch ended when the disk filled"
    );
}

/// Like [`assert_error`], but stdout holds the report.
fn assert_error_keeping_stdout(o: &std::process::Output, want: i32) -> String {
    assert_eq!(code(o), want, "{}", show(o));
    let err = stderr_of(o);
    // A loaded machine may also say, rightly, that ticks fall behind: not the error line.
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("fdiff: warning: ticks fall behind"))
        .collect();
    assert_eq!(lines.len(), 1, "expected one stderr line: {}", show(o));
    assert!(lines[0].starts_with("fdiff: "), "{}", show(o));
    assert!(!err.contains("panicked"), "{}", show(o));
    lines[0].to_owned()
}

#[test]
fn issue9_ticks_falling_behind_are_said_once() {
    let mut fx = Fixture::new(&[]);
    let v = fx.ok("fill 5000");
    assert!(v["ok"] == json!(true), "{v}");
    let o = fdiff(&[
        "--pid",
        &pid_arg(fx.pid),
        "--interval",
        "10ms",
        "--duration",
        "3s",
        "--format",
        "json",
        "--quiet",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let err = stderr_of(&o);
    let said: Vec<&str> = err.lines().filter(|l| l.contains("fall behind")).collect();
    assert_eq!(said.len(), 1, "said once: {}", show(&o));
    assert!(
        said[0].starts_with("fdiff: ")
            && said[0].contains("every 10ms")
            && said[0].contains("achieved every "),
        "{}",
        said[0]
    );
}

#[test]
fn issue9_run_of_a_command_that_exits_at_once_ends_at_once_and_names_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("report.json");
    // With a 20 s interval, waiting for a tick to notice the exit would show in the report.
    let o = fdiff(&[
        "run",
        "--interval",
        "20s",
        "--format",
        "json",
        "--output",
        &out.to_string_lossy(),
        "--",
        "true",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("report")).expect("report JSON");
    let procs = r["processes"].as_array().expect("processes");
    assert_eq!(procs.len(), 1, "{r}");
    assert_eq!(procs[0]["comm"], json!("true"), "{r}");
    assert!(procs[0]["pid"].as_i64().is_some_and(|p| p > 0), "{r}");
    assert_eq!(procs[0]["exited"], json!(true), "{r}");
    assert!(r["duration_secs"].as_f64().is_some_and(|d| d < 10.0), "{r}");

    // The table header names the pid, and a command that lives a little is seen and ended
    // as soon as it exits.
    let o = fdiff(&["run", "--interval", "20s", "--", "sleep", "0.5"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let err = stderr_of(&o);
    let header = err
        .lines()
        .find(|l| l.starts_with("fdiff: watched pid "))
        .unwrap_or_else(|| panic!("no header: {err}"));
    assert!(
        header.contains(" (sleep) for ")
            && header
                .split_whitespace()
                .nth(3)
                .is_some_and(|p| p.parse::<i32>().is_ok()),
        "{header}"
    );
    assert!(
        !header.contains("for 2") && !header.contains("for 1"),
        "{header}"
    );
}

/// Seconds from the first tick of a recording to its last.
fn recorded_span(path: &std::path::Path) -> f64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let ts: Vec<f64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == json!("tick"))
        .filter_map(|v| v["t"].as_f64())
        .collect();
    match (ts.first(), ts.last()) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    }
}

#[test]
fn issue9_stalled_stderr_warnings_never_block_the_watch() {
    // `fdiff … 2>&1 | less`: live lines and warnings share one pipe nobody reads. The
    // watch falls behind at 10 ms over 5,000 fds, which it says on stderr when it can.
    let mut fx = Fixture::new(&["churn 50 300"]);
    fx.ok("fill 5000");
    let tmp = tempfile::tempdir().expect("tempdir");
    let rec = tmp.path().join("r.jsonl");
    let (rd, wr) = unread_pipe();
    let wr2 = wr.try_clone().expect("dup");
    let mut child = fdiff_cmd(&[
        "--pid",
        &pid_arg(fx.pid),
        "--interval",
        "10ms",
        "--duration",
        "5s",
        "-v",
        "--record",
        &rec.to_string_lossy(),
    ])
    .stdout(std::process::Stdio::from(wr))
    .stderr(std::process::Stdio::from(wr2))
    .spawn()
    .expect("spawn fdiff");
    // Blocked on the warning, the recording would stop after the sixth tick (~2 s in).
    let ended = wait_for(Duration::from_secs(20), || recorded_span(&rec) >= 4.0);
    let span = recorded_span(&rec);
    let reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut std::fs::File::from(rd), &mut s);
        s
    });
    let status = child.wait().expect("wait");
    let out = reader.join().expect("reader");
    assert!(
        ended,
        "the recording spans {span:.1} s of a 5 s watch:\n{out}"
    );
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(out.contains("fdiff: watched pid"), "{out}");
}

#[test]
fn issue8_live_lines_say_no_leak_on_a_healthy_respawning_pool() {
    // Short-lived backends, three at a time, each holding three files: the pool fills up as
    // the watch starts, and workers come and go all along. Nothing leaks, live or after.
    let mut fx = Fixture::new(&[]);
    fx.ok("respawn 3 500 rolling hold-files 3 20");
    let pid = pid_arg(fx.pid);
    let o = fdiff(&[
        "--pid",
        &pid,
        "--children",
        "--interval",
        "250ms",
        "--duration",
        "6s",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let out = stdout_of(&o);
    let live = live_part(&out);
    assert!(
        live.iter().filter(|l| l.starts_with("· tick")).count() >= 5,
        "{out}"
    );
    assert!(
        !live.iter().any(|l| l.contains("LEAK")),
        "no live leak line on a healthy pool:\n{out}"
    );
}
