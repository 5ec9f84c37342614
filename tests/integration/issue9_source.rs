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
    let prog = dir.join("fdiffwaiti9");
    std::fs::copy("/bin/sleep", &prog).expect("copy sleep");
    let w = spawn_fdiff(&[
        "--name",
        "^fdiffwaiti9$",
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
