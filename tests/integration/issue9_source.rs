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
        report["processes"][0]["fds_end"].as_u64().is_some_and(|n| n >= 1),
        "{report}"
    );
    assert_eq!(code(&snap), 0, "{}", show(&snap));
    let snap = json_out(&snap);
    let fd0 = snap["fds"]
        .as_array()
        .and_then(|fds| fds.iter().find(|f| f["fd"] == 0))
        .unwrap_or_else(|| panic!("fd 0 listed: {snap}"));
    assert!(
        fd0["target"].as_str().is_some_and(|t| t.ends_with(FILE_NAME)),
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
    assert!(json_out(&o)["ticks"].as_u64().is_some_and(|t| t >= 1), "{}", show(&o));
}
