//! Issue 3, offline: a recording re-analysed gives the live report; snapshot files diff; bad
//! inputs fail with one line.

use crate::common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::thread;
use std::time::Duration;

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Record a leaking fixture for 3 s; returns the live report and the recording's path.
fn record(dir: &Path) -> (Fixture, Value, String) {
    let fx = Fixture::new(&["leak-file 10", "churn 10 10"]);
    let rec = s(&dir.join("rec.jsonl"));
    let live = fdiff_json(&[
        "--pid",
        &pid_arg(fx.pid),
        "--record",
        &rec,
        "--format",
        "json",
        "--quiet",
        "--duration",
        "3s",
        "--interval",
        "250ms",
    ]);
    (fx, live, rec)
}

#[test]
fn issue3_recording_reports_exactly_like_the_live_watch() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (fx, live, rec) = record(tmp.path());
    assert_eq!(live["leaking"], json!(true), "{}", keys(&live));
    let offline = fdiff_json(&["report", &rec, "--format", "json"]);
    assert_eq!(
        offline, live,
        "fdiff report of the recording == the live report"
    );

    // The first and the last tick of the recording, diffed.
    let first = format!("{rec}@0");
    let last = format!("{rec}@-1");
    let d = fdiff_json(&["diff", &first, &last, "--format", "json"]);
    assert_eq!(d["schema"], json!("fdiff/diff/v1"));
    let p = &d["processes"][0];
    assert_eq!(p["pid"], json!(fx.pid));
    let uploads = p["opened"]
        .as_array()
        .expect("opened")
        .iter()
        .filter(|e| e["target"].as_str().is_some_and(|t| t.contains("/upload-")))
        .count();
    assert!(uploads >= 10, "opened upload files: {p}");
    assert!(
        p["closed"]
            .as_array()
            .expect("closed")
            .iter()
            .all(|e| !e["target"]
                .as_str()
                .unwrap_or_default()
                .contains("/upload-")),
        "{p}"
    );
}

#[test]
fn issue3_diff_of_two_snapshot_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut fx = Fixture::new(&[]);
    let pid = pid_arg(fx.pid);
    let a = tmp.path().join("a.json");
    let b = tmp.path().join("b.json");
    let snap = |path: &Path| {
        let o = fdiff(&["snapshot", "--pid", &pid, "--format", "json"]);
        assert_eq!(code(&o), 0, "{}", show(&o));
        std::fs::write(path, &o.stdout).expect("write snapshot");
    };
    snap(&a);
    fx.ok("start leak-file 20");
    thread::sleep(Duration::from_secs(1));
    snap(&b);
    let d = fdiff_json(&["diff", &s(&a), &s(&b), "--format", "json"]);
    let p = &d["processes"][0];
    assert_eq!(p["pid"], json!(fx.pid));
    let opened = p["opened"].as_array().expect("opened");
    assert!(opened.len() >= 10, "{p}");
    assert!(
        opened
            .iter()
            .all(|e| e["target"].as_str().is_some_and(|t| t.contains("/upload-"))),
        "{p}"
    );
    assert_eq!(p["closed"], json!([]), "{p}");
    let g = p["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| {
            g["key"]
                .as_str()
                .is_some_and(|k| k.contains("upload-*.pdf"))
        })
        .unwrap_or_else(|| panic!("no upload group: {p}"));
    assert_eq!(g["change"].as_i64(), Some(opened.len() as i64), "{g}");
    assert!(
        d["only_before"] == json!([]) && d["only_after"] == json!([]),
        "{d}"
    );
}

#[test]
fn issue3_malformed_inputs_fail_with_one_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, content: &[u8]| {
        let p = tmp.path().join(name);
        std::fs::write(&p, content).expect("write input");
        s(&p)
    };
    let empty = write("empty.json", b"");
    let nope = write("nope.json", br#"{"schema":"nope"}"#);
    let cut = write(
        "cut.json",
        br#"{"schema":"fdiff/snapshot/v1","pid":1,"comm":"x","#,
    );
    let missing = s(&tmp.path().join("missing.json"));

    for (what, args) in [
        ("empty snapshot", vec!["diff", &empty, &empty]),
        ("wrong schema", vec!["diff", &nope, &nope]),
        ("truncated snapshot", vec!["diff", &cut, &cut]),
        ("missing file", vec!["diff", &missing, &missing]),
        ("empty recording", vec!["report", &empty]),
        ("wrong schema recording", vec!["report", &nope]),
        ("truncated recording", vec!["report", &cut]),
        ("missing recording", vec!["report", &missing]),
    ] {
        let o = fdiff(&args);
        let line = assert_error(&o, 1);
        assert!(o.stdout.is_empty(), "{what}: {}", show(&o));
        let file = args[1].rsplit('/').next().unwrap_or_default();
        assert!(
            line.contains(file),
            "{what}: the line names the file: {line}"
        );
    }
}

#[test]
fn issue3_damaged_recordings() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_fx, _live, rec) = record(tmp.path());
    let text = std::fs::read(&rec).expect("read recording");
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert!(
        lines.len() >= 6,
        "a header and ticks: {} lines",
        lines.len()
    );

    // A cut last line (a crash mid-write): the complete ticks are analysed, with a warning.
    let mut cut = Vec::new();
    for l in &lines[..lines.len() - 1] {
        cut.extend_from_slice(l);
        cut.push(b'\n');
    }
    let last = lines[lines.len() - 1];
    cut.extend_from_slice(&last[..last.len() / 2]);
    let cut_path = s(&tmp.path().join("cut.jsonl"));
    std::fs::write(&cut_path, &cut).expect("write");
    let o = fdiff(&["report", &cut_path, "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let r = json_out(&o);
    assert_eq!(r["leaking"], json!(true), "{}", keys(&r));
    let err = stderr_of(&o);
    assert!(
        err.starts_with("fdiff: warning: ")
            && err.contains("truncated")
            && err.lines().count() == 1,
        "{}",
        show(&o)
    );

    // A corrupt line in the middle is an error naming the file and the line.
    let bad_line = lines.len() / 2 + 1; // 1-based, neither the header nor the last line
    let mut bad = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if i + 1 == bad_line {
            bad.extend_from_slice(&l[..l.len() / 2]);
        } else {
            bad.extend_from_slice(l);
        }
        bad.push(b'\n');
    }
    let bad_path = s(&tmp.path().join("bad.jsonl"));
    std::fs::write(&bad_path, &bad).expect("write");
    let o = fdiff(&["report", &bad_path, "--format", "json"]);
    let line = assert_error(&o, 1);
    assert!(o.stdout.is_empty(), "{}", show(&o));
    assert!(line.contains("bad.jsonl"), "{line}");
    assert!(line.contains(&format!("line {bad_line}")), "{line}");

    // A tick out of range of the recording.
    let at = format!("{rec}@9999");
    let o = fdiff(&["diff", &at, &at]);
    let line = assert_error(&o, 1);
    assert!(line.contains("rec.jsonl"), "{line}");
}
