//! Issue 9, the live source and `fdiff run`: no hang on a stalled mount, a FIFO or --wait; no
//! silent loss at fdiff's own fd limit or on unreadable matches; a missing interpreter named.

use crate::common::*;
use crate::issue9_fuse::{FILE_NAME, FuseMount, holder, plain_stat_in_background};
use std::time::Duration;

/// Bound for a run that should take about a second: far beyond it, fdiff is hung.
const HUNG: Duration = Duration::from_secs(20);

/// The FUSE mount, or `None` (having said why) where this machine cannot make one.
fn stalled_fuse() -> Option<(FuseMount, std::process::Child)> {
    let fuse = match FuseMount::mount() {
        Ok(m) => m,
        Err(why) => {
            eprintln!("skipped: a stalled FUSE mount needs root and /dev/fuse ({why})");
            return None;
        }
    };
    let child = holder(&fuse.file());
    fuse.stall();
    // The setup must wedge a plain stat, or the test proves nothing.
    let probe = plain_stat_in_background(child.id());
    assert!(
        wait_for(Duration::from_secs(10), || fuse.held() >= 1),
        "the FUSE server never saw the probe's GETATTR"
    );
    assert!(
        !probe.load(std::sync::atomic::Ordering::SeqCst),
        "a plain stat returned while GETATTR is unanswered: the stall does not work"
    );
    Some((fuse, child))
}

/// [`finish`], except that a hung fdiff is released first: a process waiting for a FUSE
/// answer the server already read cannot even be killed until it comes.
fn finish_on(fuse: &FuseMount, mut child: std::process::Child) -> std::process::Output {
    let ended = wait_for(HUNG, || child.try_wait().ok().flatten().is_some());
    if !ended {
        fuse.unstall();
        let _ = child.kill();
        let o = finish(child, RUN_LIMIT);
        panic!("fdiff hung on the stalled mount: {}", show(&o));
    }
    finish(child, RUN_LIMIT)
}

fn end(mut child: std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn issue9_stalled_fuse_mount_does_not_hang_the_watch() {
    let Some((fuse, child)) = stalled_fuse() else {
        return;
    };
    let pid = child.id().to_string();
    let held = fuse.held();
    // What fdiff reads besides the stat must not enter the file system either: the link is
    // the kernel's own path, fdinfo the kernel's own file state.
    let (tx, rx) = std::sync::mpsc::channel();
    let p = pid.clone();
    std::thread::spawn(move || {
        let link = std::fs::read_link(format!("/proc/{p}/fd/0"));
        let info = std::fs::read_to_string(format!("/proc/{p}/fdinfo/0"));
        let _ = tx.send((link.is_ok(), info.is_ok()));
    });
    let read = rx.recv_timeout(HUNG);
    assert_eq!(
        read.ok(),
        Some((true, true)),
        "readlink and fdinfo of the stalled fd returned"
    );
    let o = finish_on(
        &fuse,
        spawn_fdiff(&["--pid", &pid, "--duration", "1s", "--format", "json"]),
    );
    let snap = finish_on(
        &fuse,
        spawn_fdiff(&["snapshot", "--pid", &pid, "--format", "json"]),
    );
    // fdiff asked the file system nothing: no GETATTR beyond the probe's.
    let asked = fuse.held() - held;
    end(child);
    drop(fuse);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let report = json_out(&o);
    assert!(
        report["processes"][0]["fds_end"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "{report}"
    );
    assert_eq!(code(&snap), 0, "{}", show(&snap));
    let snap = json_out(&snap);
    let fd0 = snap["fds"]
        .as_array()
        .and_then(|fds| fds.iter().find(|f| f["fd"] == 0))
        .unwrap_or_else(|| panic!("fd 0 listed: {snap}"));
    assert!(
        fd0["target"]
            .as_str()
            .is_some_and(|t| t.ends_with(FILE_NAME)),
        "what readlink told is kept: {fd0}"
    );
    assert_eq!(fd0["kind"], "file", "{fd0}");
    assert_eq!(asked, 0, "fdiff sent GETATTR to the stalled server");
}

#[test]
fn issue9_stalled_fuse_mount_lets_sigterm_end_the_watch() {
    let Some((fuse, child)) = stalled_fuse() else {
        return;
    };
    let pid = child.id().to_string();
    let w = spawn_fdiff(&["--pid", &pid, "--interval", "100ms", "--format", "json"]);
    wait_for_sigterm_handler(w.id() as i32);
    // Past the first tick, which reads fd 0.
    std::thread::sleep(Duration::from_millis(500));
    signal(w.id() as i32, libc::SIGTERM);
    let o = finish_on(&fuse, w);
    end(child);
    drop(fuse);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(
        json_out(&o)["ticks"].as_u64().is_some_and(|t| t >= 1),
        "{}",
        show(&o)
    );
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("fdiff-i9-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

fn mkfifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.to_string_lossy().as_bytes()).expect("no NUL");
    // SAFETY: a valid path string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

fn sleeper() -> std::process::Child {
    std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep")
}

#[test]
fn issue9_record_to_a_fifo_without_reader_fails_instead_of_blocking() {
    let dir = temp_dir("fifo");
    let fifo = dir.join("rec.fifo");
    mkfifo(&fifo);
    let target = sleeper();
    let pid = target.id().to_string();
    let f = fifo.to_string_lossy().into_owned();
    let o = fdiff(&["--pid", &pid, "--record", &f, "--duration", "5s"]);
    let line = assert_error(&o, 1);
    assert!(
        line.contains(&format!("'{f}'")) && line.contains("FIFO"),
        "{line}"
    );
    let o = fdiff(&["run", "--output", &f, "--", "true"]);
    let line = assert_error(&o, 1);
    assert!(
        line.contains(&format!("'{f}'")) && line.contains("FIFO"),
        "{line}"
    );
    end(target);
    // With a reader, the same FIFO gets the report.
    let reader = std::thread::spawn({
        let fifo = fifo.clone();
        move || std::fs::read_to_string(&fifo).expect("read the FIFO")
    });
    let o = fdiff(&["run", "--output", &f, "--format", "json", "--", "true"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let text = reader.join().expect("reader");
    let report: serde_json::Value = serde_json::from_str(&text).expect("a JSON report");
    assert_eq!(report["schema"], "fdiff/report/v1", "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn issue9_wait_ends_at_the_duration() {
    let o = fdiff(&[
        "--name",
        "^fdiff-no-such-process-i9$",
        "--wait",
        "--duration",
        "1s",
    ]);
    let line = assert_error(&o, 1);
    assert!(line.contains("within --duration 1s"), "{line}");
    assert!(line.contains("no process matches"), "{line}");
    // A match that turns up during the wait is watched for what is left of the duration.
    let dir = temp_dir("wait");
    // A name of this test process's own: another run of the suite on the machine is not a match.
    let name = unique_name("fdwait");
    let prog = dir.join(&name);
    std::fs::copy("/bin/sleep", &prog).expect("copy sleep");
    let w = spawn_fdiff(&[
        "--name",
        &format!("^{name}$"),
        "--wait",
        "--duration",
        "3s",
        "--interval",
        "200ms",
        "--format",
        "json",
    ]);
    wait_for_sigterm_handler(w.id() as i32);
    std::thread::sleep(Duration::from_millis(1200));
    let target = std::process::Command::new(&prog)
        .arg("30")
        .spawn()
        .expect("spawn the copy of sleep");
    let o = finish(w, RUN_LIMIT);
    end(target);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let report = json_out(&o);
    let d = report["duration_secs"].as_f64().expect("duration_secs");
    assert!(d < 2.5, "the wait counts against --duration: watched {d} s");
}

#[test]
fn issue9_missing_interpreter_is_named_with_a_shells_exit_code() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("interp");
    let script = |name: &str, text: &str, mode: u32| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write script");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        p.to_string_lossy().into_owned()
    };
    let missing = script("missing.sh", "#!/nonexistent/sh\nexit 0\n", 0o755);
    let o = fdiff(&["run", "--", &missing]);
    let line = assert_error(&o, 127);
    assert!(
        line.contains("'/nonexistent/sh'") && line.contains("interpreter"),
        "{line}"
    );
    assert!(!line.contains("command not found"), "{line}");
    let not_exec = script("plain.txt", "not executable\n", 0o644);
    let interp = script("interp-noexec.sh", &format!("#!{not_exec}\n"), 0o755);
    let o = fdiff(&["run", "--", &interp]);
    let line = assert_error(&o, 126);
    assert!(
        line.contains("interpreter") && line.contains(&not_exec),
        "{line}"
    );
    let o = fdiff(&["run", "--", &not_exec]);
    let line = assert_error(&o, 126);
    assert!(
        line.contains("not executable") || line.contains("permission"),
        "{line}"
    );
    let o = fdiff(&["run", "--", "fdiff-no-such-command-i9"]);
    let line = assert_error(&o, 127);
    assert!(line.contains("command not found"), "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `fdiff` with its fd limit set (soft, hard) before it starts, and as `uid` when given.
fn fdiff_limited(
    args: &[&str],
    nofile: Option<(u64, u64)>,
    uid: Option<u32>,
) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = fdiff_cmd(args);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    // SAFETY: only async-signal-safe calls (setrlimit, setgroups, setgid, setuid) between
    // fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if let Some((soft, hard)) = nofile {
                let lim = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(uid) = uid
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(uid) != 0
                    || libc::setuid(uid) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    finish(cmd.spawn().expect("spawn fdiff"), RUN_LIMIT)
}

/// Whether `uid` may run the fdiff binary here (its directories may be closed to others).
fn can_run_as(uid: u32) -> bool {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(FDIFF);
    cmd.arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .uid(uid)
        .gid(uid);
    cmd.status().is_ok_and(|s| s.success())
}

/// A shell with `n` sleeping children; returns it once all of them run.
fn parent_of(n: usize) -> std::process::Child {
    let sh = std::process::Command::new("sh")
        .args([
            "-c",
            &format!("for i in $(seq {n}); do sleep 60 & done; wait"),
        ])
        .spawn()
        .expect("spawn sh");
    let pid = sh.id();
    let all = wait_for(Duration::from_secs(20), || {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .is_ok_and(|c| c.split_whitespace().count() >= n)
    });
    assert!(all, "the shell did not start its {n} children");
    sh
}

fn end_tree(sh: std::process::Child) {
    let pid = sh.id();
    if let Ok(c) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        for k in c.split_whitespace().filter_map(|k| k.parse::<i32>().ok()) {
            // SAFETY: plain kill(2).
            unsafe { libc::kill(k, libc::SIGKILL) };
        }
    }
    end(sh);
}

#[test]
fn issue9_own_fd_limit_is_raised_and_a_shortfall_is_said() {
    const KIDS: usize = 60;
    let sh = parent_of(KIDS);
    let pid = sh.id().to_string();
    let snap = ["snapshot", "--pid", &pid, "--children", "--format", "json"];
    // A low soft limit under a high hard one: raised, so every process is read.
    let o = fdiff_limited(&snap, Some((64, 4096)), None);
    let raised = json_out(&o);
    let watch = [
        "--pid",
        &pid,
        "--children",
        "--duration",
        "1s",
        "--interval",
        "200ms",
        "--format",
        "json",
    ];
    // A hard limit too low for all of them: said in the live output, the report and the exit.
    let short = fdiff_limited(&snap, Some((128, 128)), None);
    let watched = fdiff_limited(&watch, Some((128, 128)), None);
    let table = fdiff_limited(&watch[..watch.len() - 2], Some((128, 128)), None);
    end_tree(sh);
    assert_eq!(code(&table), 0, "{}", show(&table));
    assert!(
        stdout_of(&table).contains("not watched: "),
        "the table says it too: {}",
        show(&table)
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(
        raised.as_array().map(Vec::len),
        Some(KIDS + 1),
        "every process snapshotted: {}",
        show(&o)
    );
    assert_eq!(code(&short), 1, "{}", show(&short));
    let err = stderr_of(&short);
    assert_eq!(err.lines().count(), 1, "{}", show(&short));
    assert!(
        err.contains("not watched") && err.contains("fd limit"),
        "{err}"
    );
    let got = json_out(&short).as_array().map_or(0, Vec::len);
    assert!(got > 0 && got < KIDS + 1, "{}", show(&short));
    assert!(
        err.contains(&format!("{} matching", KIDS + 1 - got)),
        "{err}"
    );
    assert_eq!(code(&watched), 0, "{}", show(&watched));
    let report = json_out(&watched);
    let u = &report["unwatched"][0];
    assert_eq!(u["reason"], "fd_limit", "{report}");
    let n = report["processes"].as_array().map_or(0, Vec::len) as u64;
    assert_eq!(
        u["processes"].as_u64().map(|m| m + n),
        Some(KIDS as u64 + 1),
        "{report}"
    );
    let warned = stderr_of(&watched)
        .lines()
        .filter(|l| l.contains("not watched"))
        .count();
    assert_eq!(warned, 1, "said once: {}", show(&watched));
}

const NOBODY: u32 = 65534;

/// Copies of sleep named `name`: `root_n` of them as root, `own_n` as nobody.
fn named_sleepers(
    dir: &std::path::Path,
    name: &str,
    root_n: usize,
    own_n: usize,
) -> Vec<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let prog = dir.join(name);
    std::fs::copy("/bin/sleep", &prog).expect("copy sleep");
    let mut out = Vec::new();
    for i in 0..root_n + own_n {
        let mut c = std::process::Command::new(&prog);
        c.arg("60");
        if i >= root_n {
            c.uid(NOBODY).gid(NOBODY);
        }
        out.push(c.spawn().expect("spawn sleeper"));
    }
    out
}

#[test]
fn issue9_unreadable_matches_are_counted_and_folded() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run fdiff as another user");
        return;
    }
    if !can_run_as(NOBODY) {
        eprintln!("skipped: user nobody cannot run {FDIFF}");
        return;
    }
    let dir = temp_dir("perm");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (perm, mixed_name) = (unique_name("fdperm"), unique_name("fdmixd"));
    let (perm_rx, mixed_rx) = (format!("^{perm}$"), format!("^{mixed_name}$"));
    let only_root = named_sleepers(&dir, &perm, 3, 0);
    let mixed = named_sleepers(&dir, &mixed_name, 4, 1);
    let as_nobody = |args: &[&str]| fdiff_limited(args, None, Some(NOBODY));
    let none = as_nobody(&["snapshot", "--name", &perm_rx]);
    let none_watch = as_nobody(&["--name", &perm_rx, "--duration", "1s"]);
    let some = as_nobody(&["--name", &mixed_rx, "--duration", "1s", "--format", "json"]);
    let all = as_nobody(&["--name", ".", "--duration", "1s", "--format", "json"]);
    for c in only_root.into_iter().chain(mixed) {
        end(c);
    }
    let _ = std::fs::remove_dir_all(&dir);
    for o in [&none, &none_watch] {
        let line = assert_error(o, 1);
        assert!(
            line.contains("3 matching processes") && line.contains("permission denied"),
            "{line}"
        );
        assert!(!line.contains("no process matches"), "{line}");
    }
    assert_eq!(code(&some), 0, "{}", show(&some));
    let err = stderr_of(&some);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("permission denied"))
        .collect();
    assert_eq!(lines.len(), 1, "one folded line: {}", show(&some));
    assert!(lines[0].contains("4 matching processes"), "{}", lines[0]);
    let report = json_out(&some);
    assert_eq!(
        report["unwatched"][0]["reason"], "permission_denied",
        "{report}"
    );
    assert_eq!(report["unwatched"][0]["processes"], 4, "{report}");
    assert_eq!(code(&all), 0, "{}", show(&all));
    let denied = stderr_of(&all)
        .lines()
        .filter(|l| l.contains("permission denied"))
        .count();
    assert_eq!(denied, 1, "folded: {}", show(&all));
}

/// A process name (at most 15 bytes, the kernel's comm) that only this test process uses.
fn unique_name(prefix: &str) -> String {
    let mut n = format!("{prefix}{}", std::process::id());
    n.truncate(15);
    n
}
