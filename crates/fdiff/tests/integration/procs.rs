//! Issue 4: `fdiff run`, process trees (--children), --name selection and the demo.

use crate::common::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::thread;
use std::time::{Duration, Instant};

/// `fdiff run --quiet --interval 200ms [extra…] -- sh -c SCRIPT`.
fn run_sh(extra: &[&str], script: &str) -> std::process::Output {
    let mut args = vec!["run", "--quiet", "--interval", "200ms"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sh", "-c", script]);
    fdiff(&args)
}

/// A fixture that lives about 5 s (long enough for a dozen ticks on a loaded machine): it exits
/// when the pipe from `sleep` closes.
fn short_lived_fixture(schedule: &str) -> String {
    format!(
        "sleep 5 | '{}' --run '{schedule}' > /dev/null",
        fixture_exe()
    )
}

#[test]
fn issue4_run_fails_the_gate_on_a_leaking_command() {
    let o = run_sh(&["--fail-on-leak"], &short_lived_fixture("leak-file 10"));
    assert_eq!(code(&o), 3, "{}", show(&o));
    assert!(!stderr_of(&o).contains("panicked"), "{}", show(&o));
}

#[test]
fn issue4_run_passes_the_gate_on_a_clean_command() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let report = tmp.path().join("report.json");
    let report_s = report.to_string_lossy().into_owned();
    let o = run_sh(
        &["--fail-on-leak", "--format", "json", "--output", &report_s],
        &short_lived_fixture("churn 10 10"),
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    let r: Value =
        serde_json::from_slice(&std::fs::read(&report).expect("report written")).expect("JSON");
    assert_eq!(r["leaking"], json!(false), "{}", keys(&r));
    // The fixture, a grandchild, was watched. (Not checked by comm: a child first seen
    // between fork and exec keeps the comm "sh" in the report.)
    assert!(
        r["processes"].as_array().is_some_and(|p| p.len() >= 2),
        "{}",
        r["processes"]
    );
    let churn = r["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["key"].as_str().is_some_and(|k| k.contains("churn-*.tmp")))
        .unwrap_or_else(|| panic!("the fixture's churn group: {}", keys(&r)));
    assert!(churn["opened"].as_u64().is_some_and(|n| n > 0), "{churn}");
}

#[test]
fn issue4_run_exits_with_the_commands_status() {
    let o = run_sh(&[], "exit 7");
    assert_eq!(code(&o), 7, "{}", show(&o));
    let o = run_sh(&["--fail-on-leak"], "kill -TERM $$");
    assert_eq!(code(&o), 143, "128 + SIGTERM: {}", show(&o));
}

#[test]
fn issue4_run_of_a_missing_program_is_127() {
    let o = fdiff(&["run", "--quiet", "--", "/nonexistent/prog"]);
    let line = assert_error(&o, 127);
    assert!(line.contains("/nonexistent/prog"), "{line}");
    assert!(o.stdout.is_empty(), "{}", show(&o));
}

#[test]
fn issue4_children_are_followed_through_exits_and_respawns() {
    let mut parent = Fixture::new(&[]);
    let leaker = parent.ok("spawn-worker leak-file 10")["pid"]
        .as_i64()
        .expect("pid") as i32;
    let churner = parent.ok("spawn-worker churn 10 10")["pid"]
        .as_i64()
        .expect("pid") as i32;
    let child = spawn_fdiff(&[
        "--pid",
        &pid_arg(parent.pid),
        "--children",
        "--interval",
        "250ms",
        "--duration",
        "5s",
        "--format",
        "json",
        "--quiet",
    ]);
    wait_for_sigterm_handler(child.id() as i32);
    thread::sleep(Duration::from_millis(1500));
    let killed = parent.ok(&format!("kill-worker {churner}"));
    assert_eq!(killed["pid"], json!(churner));
    let replacement = parent.ok("spawn-worker churn 10 10")["pid"]
        .as_i64()
        .expect("pid") as i32;
    let o = finish(child, Duration::from_secs(20));
    assert_eq!(code(&o), 0, "{}", show(&o));
    let r = json_out(&o);

    let pids: Vec<i64> = r["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter_map(|p| p["pid"].as_i64())
        .collect();
    for p in [parent.pid, leaker, churner, replacement] {
        assert!(
            pids.contains(&i64::from(p)),
            "pid {p} missing from {pids:?}"
        );
    }
    let up = group(&r, leaker, "upload-*.pdf");
    assert_eq!(up["leaking"], json!(true), "{}", keys(&r));
    let gone = process(&r, churner).expect("killed worker");
    assert_eq!(gone["exited"], json!(true), "{gone}");
    assert_eq!(process(&r, leaker).expect("leaker")["exited"], json!(false));
    assert_eq!(
        process(&r, replacement).expect("replacement")["exited"],
        json!(false)
    );
    assert!(
        groups_of(&r, churner)
            .iter()
            .chain(groups_of(&r, replacement).iter())
            .all(|g| g["leaking"] == json!(false)),
        "{}",
        keys(&r)
    );
    assert_eq!(r["leaking"], json!(true));
}

#[test]
fn issue4_name_selection_finds_fixtures_but_never_fdiff_itself() {
    let a = Fixture::new(&["churn 3 7"]);
    let b = Fixture::new(&["churn 3 7"]);
    for args in [
        &["snapshot", "--name", "^fdiff", "--format", "json"][..],
        &[
            "snapshot",
            "--name",
            "churn 3 7",
            "--full",
            "--format",
            "json",
        ][..],
    ] {
        let child = spawn_fdiff(args);
        let me = child.id() as i64;
        let o = finish(child, RUN_LIMIT);
        assert_eq!(code(&o), 0, "{args:?}: {}", show(&o));
        let v = json_out(&o);
        // Several processes give an array; a lone match gives one object.
        let snaps: Vec<Value> = match v {
            Value::Array(a) => a,
            one => vec![one],
        };
        let pids: Vec<i64> = snaps.iter().filter_map(|s| s["pid"].as_i64()).collect();
        assert!(pids.contains(&i64::from(a.pid)), "{args:?}: {pids:?}");
        assert!(pids.contains(&i64::from(b.pid)), "{args:?}: {pids:?}");
        assert!(!pids.contains(&me), "fdiff snapshotted itself: {args:?}");
    }
}

/// Pids of running demo programs (`fdiff __demo-child`).
fn demo_child_pids() -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline"))
            && raw.split(|&b| b == 0).any(|w| w == b"__demo-child")
        {
            out.insert(pid);
        }
    }
    out
}

#[test]
fn issue4_demo_reports_a_leak_and_cleans_up() {
    let start = Instant::now();
    let o = fdiff(&["demo", "--duration", "3s", "--quiet", "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    let r = json_out(&o);
    assert_eq!(r["leaking"], json!(true), "{}", keys(&r));
    let p = &r["processes"][0];
    let pid = p["pid"].as_i64().expect("pid") as i32;
    assert!(
        p["cmdline"]
            .as_array()
            .is_some_and(|a| a.iter().any(|w| w == "__demo-child"))
    );
    // The demo program is gone: not running, and its work directory removed.
    assert!(
        wait_for(Duration::from_secs(3), || !demo_child_pids().contains(&pid)),
        "the demo's fixture {pid} is still running"
    );
    let dirs: BTreeSet<String> = r["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["examples"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| {
            let e = e.as_str()?;
            let i = e.find("/fdiff-demo-")?;
            let end = e[i + 1..].find('/').map_or(e.len(), |j| i + 1 + j);
            Some(e[..end].to_owned())
        })
        .collect();
    assert_eq!(dirs.len(), 1, "the demo's work directory: {dirs:?}");
    for d in &dirs {
        assert!(!std::path::Path::new(d).exists(), "{d} was left behind");
    }
}

/// Issue 8 §3: a process that exits with its fds at its soft limit is said to have likely hit
/// EMFILE, in the table and as `exited_at_fd_limit` in JSON.
#[test]
fn issue8_process_that_exited_at_its_fd_limit_says_likely_emfile() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let report = tmp.path().join("report.json");
    let report_s = report.to_string_lossy().into_owned();
    // Leaks 50 files/s into a limit of 64 (full within about a second), then exits at 4 s.
    let script = format!(
        "sleep 4 | '{}' --limit 64 --run 'leak-file 50' >/dev/null 2>&1",
        fixture_exe()
    );
    let rec = tmp.path().join("rec.jsonl");
    let rec_s = rec.to_string_lossy().into_owned();
    let o = run_sh(
        &[
            "--format", "json", "--output", &report_s, "--record", &rec_s,
        ],
        &script,
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    let text = std::fs::read_to_string(&report).expect("report written");
    let r: Value = serde_json::from_str(&text).expect("JSON");
    let at_limit: Vec<&Value> = r["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter(|p| p["exited_at_fd_limit"] == json!(true))
        .collect();
    assert_eq!(at_limit.len(), 1, "{}", r["processes"]);
    assert_eq!(at_limit[0]["fd_limit"]["soft"], json!(64));
    // The table of the same watch, from its recording.
    let o = fdiff(&["report", &rec_s]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(
        stdout_of(&o).contains("exited at its fd limit (64): likely EMFILE"),
        "{}",
        show(&o)
    );
}
