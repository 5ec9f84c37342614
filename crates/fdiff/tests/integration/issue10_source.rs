//! Issue 10 §8, syscalls on rustix: what moved off nix still reaches the kernel.

use crate::common::*;
use std::thread;
use std::time::Duration;

/// `fdiff run` passes a SIGTERM it receives on to the command (a rustix kill now): the command's
/// trap decides the exit status, which fdiff exits with.
#[test]
fn issue10_8_run_forwards_sigterm_to_the_command() {
    // Bounded: should forwarding fail, the command still ends (with 0) after 30 s.
    let script = "trap 'exit 7' TERM; i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done";
    let child = spawn_fdiff(&[
        "run",
        "--interval",
        "250ms",
        "--format",
        "json",
        "--quiet",
        "--",
        "sh",
        "-c",
        script,
    ]);
    let fdiff_pid = child.id() as i32;
    wait_for_sigterm_handler(fdiff_pid);
    thread::sleep(Duration::from_millis(1000));
    signal(fdiff_pid, libc::SIGTERM);
    let o = finish(child, Duration::from_secs(20));
    assert_eq!(code(&o), 7, "the command's trap ran: {}", show(&o));
}
