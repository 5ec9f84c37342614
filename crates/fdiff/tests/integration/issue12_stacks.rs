//! Issue 12: `fdiff run --stacks` names the code that opened the leaking fds. A C program
//! built here with `cc -g -O1` opens through a shared library from `leaky_path()` (keeps the
//! fd) and `healthy_path()` (closes it); fdiff must attribute the survivors to leaky_path.

use super::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fdiff-stacks/testdata");

/// The leaker built into `dir` under a name of its own (no other test's process matches it),
/// or None (with a message) where there is no C compiler.
pub fn build(dir: &Path, tag: &str) -> Option<PathBuf> {
    let lib = dir.join("libleak12.so");
    let exe = dir.join(format!("leak12-{tag}-{}", std::process::id()));
    let ok = Command::new("cc")
        .args(["-g", "-O1", "-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(format!("{SRC}/leaklib.c"))
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: no working cc to build the C leaker");
        return None;
    }
    let st = Command::new("cc")
        .args(["-g", "-O1", "-o"])
        .arg(&exe)
        .arg(format!("{SRC}/leak.c"))
        .arg(format!("-L{}", dir.display()))
        .arg("-lleak12")
        .arg(format!("-Wl,-rpath,{}", dir.display()))
        .arg("-lpthread")
        .status()
        .expect("cc");
    assert!(st.success(), "building leak.c failed");
    Some(exe)
}

/// `fdiff run --stacks=WHEN -f json -o OUT -- leaker FILE SECS MODE`: the report.
fn run(when: &str, mode: &str, secs: &str) -> Option<(Value, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = build(dir.path(), mode)?;
    let file = dir.path().join("data");
    std::fs::write(&file, b"x").expect("write");
    let out = dir.path().join("report.json");
    let o = fdiff(&[
        "run",
        &format!("--stacks={when}"),
        "-i",
        "200ms",
        "-q",
        "-f",
        "json",
        "-o",
        out.to_str().expect("utf-8"),
        "--",
        exe.to_str().expect("utf-8"),
        file.to_str().expect("utf-8"),
        secs,
        mode,
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let text = std::fs::read_to_string(&out).expect("report");
    Some((serde_json::from_str(&text).expect("json"), dir))
}

/// The stacks entry of the leaking group of `kind`.
fn stacks_of<'a>(r: &'a Value, kind: &str) -> &'a Value {
    let groups = r["stacks"]["groups"].as_array().expect("stacks.groups");
    groups
        .iter()
        .find(|g| g["kind"] == kind)
        .unwrap_or_else(|| panic!("no leaking {kind} group in {:#}", r["stacks"]))
}

fn functions(stack: &Value) -> Vec<String> {
    stack["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .map(|f| f["function"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn frame<'a>(stack: &'a Value, function: &str) -> Option<&'a Value> {
    stack["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .find(|f| f["function"] == function)
}

#[test]
fn issue12_leaky_path_is_the_top_stack_of_the_leaking_group() {
    let Some((r, _dir)) = run("now", "files", "3") else {
        return;
    };
    let g = stacks_of(&r, "file");
    let top = &g["survivor_stacks"][0];
    let f = functions(top);
    assert!(f.iter().any(|n| n == "leaky_path"), "top stack {f:?}");
    assert!(!f.iter().any(|n| n == "healthy_path"), "top stack {f:?}");
    // Through the shared library, with file:line from the debug info.
    assert!(f.iter().any(|n| n == "lib_open"), "top stack {f:?}");
    let lp = frame(top, "leaky_path").expect("leaky_path frame");
    assert_eq!(lp["file"], "leak.c", "{lp}");
    assert_eq!(lp["line"], 18, "{lp}");
    // Nearly every survivor is attributed, and the healthy path shows as closed again.
    let (surv, cap) = (g["survivors"].as_u64(), g["captured"].as_u64());
    assert!(
        cap > Some(0) && cap == surv,
        "survivors {surv:?} captured {cap:?}"
    );
    let closed = g["closed_stacks"].as_array().expect("closed_stacks");
    assert!(
        closed
            .iter()
            .any(|s| functions(s).iter().any(|n| n == "healthy_path")),
        "closed stacks {closed:?}"
    );
}

#[test]
fn issue12_leaked_socket_and_pipe2_name_their_functions() {
    for (mode, kind, func) in [
        ("socket", "socket", "leaky_socket"),
        ("pipe", "pipe", "leaky_pipe"),
    ] {
        let Some((r, _dir)) = run("now", mode, "3") else {
            return;
        };
        let g = stacks_of(&r, kind);
        let f = functions(&g["survivor_stacks"][0]);
        assert!(f.iter().any(|n| n == func), "{mode}: top stack {f:?}");
    }
}

#[test]
fn issue12_a_thread_s_open_is_its_own_stack() {
    let Some((r, _dir)) = run("now", "thread", "3") else {
        return;
    };
    let g = stacks_of(&r, "file");
    let top = &g["survivor_stacks"][0];
    let f = functions(top);
    assert!(f.iter().any(|n| n == "thread_main"), "top stack {f:?}");
    assert!(
        !f.iter().any(|n| n == "main"),
        "the main thread's stack: {f:?}"
    );
    let pid = g["pid"].as_i64();
    let tids = top["tids"].as_array().expect("tids");
    assert!(
        !tids.is_empty() && tids.iter().all(|t| t.as_i64() != pid),
        "tids {tids:?}"
    );
}

#[test]
fn issue12_default_arming_captures_after_the_leak_verdict() {
    let Some((r, _dir)) = run("leak", "files", "8") else {
        return;
    };
    assert_eq!(r["stacks"]["arming"], "leak");
    let g = stacks_of(&r, "file");
    // Armed late: fewer survivors have a stack than there are survivors, but those that do
    // are leaky_path's.
    let (surv, cap) = (
        g["survivors"].as_u64().unwrap_or(0),
        g["captured"].as_u64().unwrap_or(0),
    );
    assert!(cap > 0 && cap < surv, "survivors {surv} captured {cap}");
    let f = functions(&g["survivor_stacks"][0]);
    assert!(f.iter().any(|n| n == "leaky_path"), "top stack {f:?}");
}

#[test]
fn issue12_a_target_that_execs_while_armed_is_followed() {
    // The leaker execs /bin/true at its end: the run ends with its status and a report.
    let Some((r, _dir)) = run("now", "exec", "2") else {
        return;
    };
    assert!(
        r["stacks"]["captured"].as_u64() > Some(0),
        "{:#}",
        r["stacks"]
    );
}
