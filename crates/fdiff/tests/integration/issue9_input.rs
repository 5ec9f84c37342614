//! Issue 9, input: out-of-range timing values, endless and hostile input files, damaged tick
//! order, and outside text in messages (items 5, 6, 7, 8, 14 and 16).

use crate::common::*;
use serde_json::{Value, json};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// No byte of `text` may drive a terminal: no ESC, BEL or other control but the line ends,
/// and no bidi override.
fn assert_inert(text: &str, what: &str) {
    assert!(
        !text.chars().any(|c| (c.is_control() && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')),
        "{what}: raw control or bidi characters in {text:?}"
    );
}

#[test]
fn issue9_duration_overflow_is_a_usage_error() {
    let huge = [
        ("--duration", "18446744073709551615s"),
        ("--duration", "500000000000years"),
        ("--duration", "101years"),
        ("--interval", "18446744073709551615s"),
        ("--interval", "2days"),
    ];
    for (flag, value) in huge {
        for cmd in [
            vec!["--pid", "1", flag, value],
            vec!["run", flag, value, "--", "true"],
            vec!["demo", flag, value],
        ] {
            let o = fdiff(&cmd);
            let line = assert_error(&o, 2);
            assert!(
                line.contains(&format!("'{value}'")) && line.contains(flag),
                "{cmd:?}: names the flag and the value: {line}"
            );
            let range = if flag == "--interval" {
                "10ms to 1day"
            } else {
                "at most 100years"
            };
            assert!(line.contains(range), "{cmd:?}: gives the range: {line}");
        }
    }
    // The maxima themselves are accepted (a count ends the watch at once).
    let me = pid_arg(std::process::id() as i32);
    let o = fdiff(&["--pid", &me, "--count", "1", "--interval", "1day", "-q"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let o = fdiff(&["run", "--duration", "100years", "-q", "--", "true"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
}

#[test]
fn issue9_demo_interval_is_validated_like_the_watch() {
    for v in ["1ns", "9ms", "0s"] {
        let demo = assert_error(&fdiff(&["demo", "--interval", v]), 2);
        let watch = assert_error(&fdiff(&["--pid", "1", "--interval", v]), 2);
        assert_eq!(demo, watch, "one validation for demo and the watch");
        assert!(demo.contains("10ms"), "{demo}");
    }
    let demo = assert_error(&fdiff(&["demo", "--duration", "0s"]), 2);
    let watch = assert_error(&fdiff(&["--pid", "1", "--duration", "0s"]), 2);
    assert_eq!(demo, watch);
}

#[test]
fn issue9_endless_input_is_one_line() {
    for (args, names) in [
        (vec!["report", "/dev/zero"], "/dev/zero"),
        (vec!["diff", "/dev/zero", "x"], "/dev/zero"),
        (vec!["diff", "/dev/urandom", "x"], "/dev/urandom"),
        (vec!["diff", "/dev/zero@0", "x"], "/dev/zero"),
        (vec!["diff", "/dev/zero@-1", "x"], "/dev/zero"),
    ] {
        let line = assert_error(&fdiff(&args), 1);
        assert!(line.contains(names), "{args:?}: {line}");
    }
    let line = assert_error(&fdiff(&["report", "/dev/zero"]), 1);
    assert!(
        line.contains("line 1") && line.contains("64 MiB"),
        "the line and the cap: {line}"
    );
}

/// A recording made by a short real watch, as its lines.
fn record(dir: &Path, schedules: &[&str], ticks: &str) -> (Fixture, String, Vec<Vec<u8>>) {
    let fx = Fixture::new(schedules);
    let rec = s(&dir.join("rec.jsonl"));
    let o = fdiff(&[
        "--pid",
        &pid_arg(fx.pid),
        "--record",
        &rec,
        "--quiet",
        "--count",
        ticks,
        "--interval",
        "20ms",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let text = std::fs::read(&rec).expect("read recording");
    let lines = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    (fx, rec, lines)
}

fn write_lines(path: &Path, lines: &[Vec<u8>]) -> String {
    let mut f = std::fs::File::create(path).expect("create");
    for l in lines {
        f.write_all(l).expect("write");
        f.write_all(b"\n").expect("write");
    }
    s(path)
}

#[test]
fn issue9_overlong_recording_line_names_file_and_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_fx, _rec, lines) = record(tmp.path(), &[], "3");
    let path = tmp.path().join("long.jsonl");
    let mut f = std::fs::File::create(&path).expect("create");
    f.write_all(&lines[0]).expect("write");
    f.write_all(b"\n").expect("write");
    f.write_all(&lines[1]).expect("write");
    f.write_all(b"\n").expect("write");
    // Line 3: 65 MiB of one string, never ending in a newline that would come in time.
    f.write_all(b"{\"type\":\"tick\",\"x\":\"").expect("write");
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..65 {
        f.write_all(&chunk).expect("write");
    }
    f.write_all(b"\"}\n").expect("write");
    drop(f);
    let line = assert_error(&fdiff(&["report", &s(&path)]), 1);
    assert!(
        line.contains("long.jsonl") && line.contains("line 3") && line.contains("64 MiB"),
        "{line}"
    );
}

#[test]
fn issue9_huge_comm_in_a_recording_is_cut_with_a_warning() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (fx, _rec, mut lines) = record(tmp.path(), &["leak-file 50"], "5");
    // 8 MB of name in the first full snapshot: under the line cap, far over any real comm.
    let long = "N".repeat(8 << 20);
    let mut tick: Value = serde_json::from_slice(&lines[1]).expect("tick json");
    tick["procs"][0]["snapshot"]["comm"] = json!(long);
    tick["procs"][0]["snapshot"]["cmdline"] = json!(vec![long.as_str(); 2]);
    lines[1] = serde_json::to_vec(&tick).expect("json");
    let path = write_lines(&tmp.path().join("comm.jsonl"), &lines);
    let o = fdiff(&["report", &path, "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let err = stderr_of(&o);
    assert!(
        err.lines().count() == 1
            && err.starts_with("fdiff: warning: ")
            && err.contains("comm.jsonl")
            && err.contains("line 2")
            && err.contains("cut"),
        "{}",
        show(&o)
    );
    let r = json_out(&o);
    let p = process(&r, fx.pid).unwrap_or_else(|| panic!("process in {}", keys(&r)));
    let comm = p["comm"].as_str().expect("comm");
    assert!(comm.len() <= 80 && comm.starts_with("NNN"), "{comm}");
}

#[test]
fn issue9_tick_gaps_repeats_and_disorder_are_warned_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_fx, _rec, lines) = record(tmp.path(), &["leak-file 20"], "8");
    assert!(lines.len() >= 9, "header and 8 ticks: {}", lines.len());
    let clean = write_lines(&tmp.path().join("clean.jsonl"), &lines);
    let o = fdiff(&["report", &clean]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(stderr_of(&o), "", "an intact recording warns of nothing");

    let mut gap = lines.clone();
    gap.remove(4); // tick 3 missing: line 5 (tick 4) is the first offending line
    let mut dup = lines.clone();
    dup.insert(4, lines[4].clone()); // line 5 repeats line 4... as line 6
    let mut swap = lines.clone();
    swap.swap(3, 4); // ticks 3 then 2: line 4 skips a tick, line 5 goes back
    for (name, ls, want_line, what) in [
        ("gap.jsonl", gap, 5, "missing"),
        ("dup.jsonl", dup, 6, "repeated"),
        ("swap.jsonl", swap, 4, "out of order"),
    ] {
        let path = write_lines(&tmp.path().join(name), &ls);
        for args in [
            vec!["report", &path],
            vec!["diff", &format!("{path}@0"), &format!("{path}@-1")],
        ] {
            let o = fdiff(&args);
            assert_eq!(code(&o), 0, "{name} {args:?}: {}", show(&o));
            let err = stderr_of(&o);
            assert_eq!(err.lines().count(), 1, "{name}: once: {}", show(&o));
            assert!(
                err.starts_with("fdiff: warning: ")
                    && err.contains(name)
                    && err.contains(&format!("line {want_line}:"))
                    && err.contains(what),
                "{name} {args:?}: {err}"
            );
        }
    }
}

#[test]
fn issue9_negative_tick_index_is_the_same_tick_counted_from_the_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_fx, rec, lines) = record(tmp.path(), &["leak-file 40", "churn 5 20"], "12");
    let ticks = lines.len() - 1;
    for back in [1usize, 3, ticks] {
        let neg = fdiff_json(&[
            "diff",
            &format!("{rec}@0"),
            &format!("{rec}@-{back}"),
            "--format",
            "json",
        ]);
        let pos = fdiff_json(&[
            "diff",
            &format!("{rec}@0"),
            &format!("{rec}@{}", ticks - back),
            "--format",
            "json",
        ]);
        assert_eq!(neg, pos, "@-{back} is @{}", ticks - back);
    }
    // Through a pipe (read once), the same answer.
    let mut child = fdiff_cmd(&["diff", &format!("{rec}@0"), "/dev/stdin@-3", "-f", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let text = std::fs::read(&rec).expect("read");
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&text);
    });
    let o = finish(child, RUN_LIMIT);
    let _ = feeder.join();
    assert_eq!(code(&o), 0, "{}", show(&o));
    let piped = json_out(&o);
    let pos = fdiff_json(&[
        "diff",
        &format!("{rec}@0"),
        &format!("{rec}@{}", ticks - 3),
        "--format",
        "json",
    ]);
    assert_eq!(piped, pos);
    let line = assert_error(&fdiff(&["diff", &format!("{rec}@-{}", ticks + 1), &rec]), 1);
    assert!(line.contains(&format!("has {ticks} ticks")), "{line}");
}

const HOSTILE: &str = "\u{1b}[31mX\nFAKE\u{7}";

#[test]
fn issue9_hostile_comm_never_reaches_the_terminal() {
    // A zombie of this test process, named with an escape sequence and a newline.
    let mut z = fdiff_fixture::client::command()
        .args(["--name", HOSTILE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(z.stdout.as_mut().expect("stdout")),
        &mut first,
    )
    .expect("ready line");
    let zpid = z.id() as i32;
    let comm = std::fs::read_to_string(format!("/proc/{zpid}/comm")).expect("comm");
    assert!(comm.contains("FAKE"), "the name took: {comm:?}");
    signal(zpid, libc::SIGKILL);
    assert!(
        wait_for(std::time::Duration::from_secs(10), || {
            std::fs::read_to_string(format!("/proc/{zpid}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|t| t.trim_start().starts_with('Z'))
            })
        }),
        "the fixture became a zombie"
    );
    let o = fdiff(&["--pid", &pid_arg(zpid), "--count", "1"]);
    let line = assert_error(&o, 1);
    assert!(line.contains("zombie") && line.contains("FAKE"), "{line}");
    assert_inert(&stderr_of(&o), "zombie error");
    let _ = z.wait();

    // Permission denied, when fdiff runs as another user than the target.
    let fx = Fixture::with_args(&["--name", HOSTILE], &[]);
    if rustix::process::geteuid().is_root() {
        let o = finish(
            fdiff_cmd(&["--pid", &pid_arg(fx.pid), "--count", "1"])
                .uid(65534)
                .gid(65534)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn as nobody"),
            RUN_LIMIT,
        );
        let line = assert_error(&o, 1);
        assert!(line.contains("permission denied"), "{line}");
        assert_inert(&stderr_of(&o), "permission error");
    } else {
        eprintln!(
            "issue9_hostile_comm_never_reaches_the_terminal: not root, permission case skipped"
        );
    }
    // Tables and live lines escape the same name.
    let o = fdiff(&[
        "--pid",
        &pid_arg(fx.pid),
        "--count",
        "2",
        "--interval",
        "20ms",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(stdout_of(&o).contains("FAKE"), "{}", show(&o));
    assert_inert(&stdout_of(&o), "watch table");
    let o = fdiff(&["snapshot", "--pid", &pid_arg(fx.pid)]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_inert(&stdout_of(&o), "snapshot table");
}

#[test]
fn issue9_hostile_json_and_arguments_give_one_line_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, v: &Value| {
        let p = tmp.path().join(name);
        std::fs::write(&p, serde_json::to_vec(v).expect("json")).expect("write");
        s(&p)
    };
    let evil = "\u{1b}]0;owned\u{7}\n\u{202e}gnp.exe";
    let schema = write("schema.json", &json!({ "schema": evil }));
    let in_array = write("array.json", &json!([{ "schema": evil }]));
    let kind = write(
        "kind.json",
        &json!({
            "schema": "fdiff/snapshot/v1", "pid": 1, "comm": "x", "cmdline": [],
            "start_time": 1, "taken_at": 1.0, "fd_limit": {},
            "fds": [{ "fd": 3, "target": "x", "kind": evil }], "errors": []
        }),
    );
    let rec_schema = write(
        "rec.jsonl",
        &json!({ "type": "header", "schema": evil, "interval_secs": 1.0,
                 "started_at": 0.0, "fdiff_version": "x" }),
    );
    let rec_type = write("type.jsonl", &json!({ "type": evil }));
    for args in [
        vec!["diff", &schema, &schema],
        vec!["diff", &in_array, &in_array],
        vec!["diff", &kind, &kind],
        vec!["report", &rec_schema],
        vec!["report", &rec_type],
        vec!["diff", &format!("{rec_type}@0"), &kind],
    ] {
        let o = fdiff(&args);
        let line = assert_error(&o, 1);
        assert_inert(&stderr_of(&o), &format!("{args:?}"));
        assert!(
            line.contains("\\x1b") || line.contains("\\n"),
            "{args:?}: escaped: {line}"
        );
    }
    // A file name of the user's own is escaped too.
    let odd = tmp.path().join("a\nb\u{1b}[2J.json");
    let o = fdiff(&["diff", &s(&odd), &s(&odd)]);
    assert_error(&o, 1);
    assert_inert(&stderr_of(&o), "file name");
    for args in [
        vec!["--pid", "1\n2"],
        vec!["--pid", "\u{1b}[31m"],
        vec!["--name", "(\n"],
        vec!["--pid", "1", "--interval", "5\nx"],
        vec!["--pid", "1", "--bogus\u{1b}[2J"],
        vec!["diff", "\u{202e}x", "y"],
    ] {
        let o = fdiff(&args);
        let c = code(&o);
        assert!(c == 1 || c == 2, "{args:?}: {}", show(&o));
        let line = assert_error(&o, c);
        assert_inert(&stderr_of(&o), &format!("{args:?}"));
        assert!(!line.is_empty());
    }
}

#[test]
fn issue9_json_output_of_a_bidi_file_name_is_inert_and_exact() {
    // A file whose name reverses what follows it on a terminal, held open by this process.
    let tmp = tempfile::tempdir().expect("tempdir");
    let name = tmp.path().join("invoice-\u{202e}fdp.exe");
    let _held = std::fs::File::create(&name).expect("create");
    let pid = std::process::id().to_string();
    let o = fdiff(&["snapshot", "--pid", &pid, "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let out = stdout_of(&o);
    assert_inert(&out, "snapshot json");
    // Escaped as JSON escapes it, so a reader gets the name back exactly.
    let v: Value = serde_json::from_str(&out).expect("json");
    let want = s(&name);
    let found = v["fds"]
        .as_array()
        .expect("fds")
        .iter()
        .any(|f| f["path"].as_str() == Some(want.as_str()));
    assert!(found, "the name did not read back exactly: {out}");
}
