//! Snapshot tests (insta) of what people read: the table report, the snapshot table, the diff
//! table and the live lines, rendered from synthetic ticks with fixed pids, times and names.
//!
//! The input goes through the real pipeline (diff, tracker, verdicts) and only the renderer's
//! terminal (width, color) is fixed here, so a change anywhere on the way to the text shows up
//! as a snapshot diff. Review one with `cargo insta review` (or set `INSTA_UPDATE=always` and
//! read the `.snap` diff); plain `cargo test` only checks.

use fdiff::report::live::{LiveLines, Sink};
use fdiff::report::table::{DiffTable, ReportTable, SnapshotTable};
use fdiff::report::{DiffRenderer, ReportRenderer, SnapshotRenderer};
use fdiff_core::diff::diff;
use fdiff_core::snapshot::{FdEntry, SNAPSHOT_SCHEMA, Snapshot};
use fdiff_core::source::{Event, Tick};
use fdiff_core::track::compare::compare;
use fdiff_core::track::{DiffReport, Report, TrackOptions, Tracker};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

// ---- the renderers, as the binary configures them, with the terminal fixed ----

/// The table report as written to a pipe (no terminal: the GROUP column is capped at 60),
/// or to a terminal of `width` columns.
fn report_table(r: &Report, width: Option<usize>, verbose: bool) -> String {
    let table = ReportTable {
        color: false,
        verbose,
        width,
    };
    let mut out = Vec::new();
    table.report(r, &mut out).expect("render report");
    String::from_utf8(out).expect("utf-8")
}

fn snapshot_table(snaps: &[Snapshot]) -> String {
    let table = SnapshotTable;
    let mut out = Vec::new();
    table.snapshots(snaps, &mut out).expect("render snapshots");
    String::from_utf8(out).expect("utf-8")
}

fn diff_table(d: &DiffReport) -> String {
    let table = DiffTable;
    let mut out = Vec::new();
    table.diff(d, &mut out).expect("render diff");
    String::from_utf8(out).expect("utf-8")
}

/// The live lines of a watch over `ticks`, each prefixed with the tick's time since the first,
/// so the snapshot shows when each line was written.
fn live_lines(ticks: &[Tick], verbose: bool) -> String {
    let mut tracker = Tracker::new(TrackOptions::default(), INTERVAL);
    let lines = Lines::default();
    let mut live = LiveLines::new(lines.clone(), false, 12, verbose);
    let mut out = String::new();
    for t in ticks {
        fdiff_core::track::feed(&mut tracker, t);
        live.tick(t, &tracker);
        for l in lines.0.borrow_mut().drain(..) {
            out.push_str(&format!("[{:>5.1}s] {l}\n", t.t - T0));
        }
    }
    out
}

/// A sink the test reads after each tick.
#[derive(Clone, Default)]
struct Lines(Rc<RefCell<Vec<String>>>);

impl Sink for Lines {
    fn line(&mut self, s: String) {
        self.0.borrow_mut().push(s);
    }
}

fn report_of(ticks: &[Tick]) -> Report {
    let mut tracker = Tracker::new(TrackOptions::default(), INTERVAL);
    for t in ticks {
        fdiff_core::track::feed(&mut tracker, t);
    }
    tracker.report()
}

// ---- synthetic input ----

/// Unix time of the first tick (2023-11-14 22:13:20 UTC); ticks are `INTERVAL` apart.
const T0: f64 = 1_700_000_000.0;
const INTERVAL: f64 = 0.5;

fn tick(t: f64, events: Vec<Event>) -> Tick {
    Tick::new(t, events)
}

/// An fd from its `fdiff/snapshot/v1` JSON (the documented form, so the tests read like it).
fn entry(v: Value) -> Arc<FdEntry> {
    Arc::new(serde_json::from_value(v).expect("fd entry"))
}

fn file(fd: i32, path: &str) -> Arc<FdEntry> {
    entry(json!({"fd": fd, "target": path, "kind": "file", "path": path}))
}

/// A process as the tests name it: pid, command, and its fd limit.
#[derive(Clone, Copy)]
struct Proc<'a> {
    pid: i32,
    comm: &'a str,
    soft: u64,
}

fn snap(p: Proc, t: f64, fds: Vec<Arc<FdEntry>>) -> Snapshot {
    Snapshot {
        schema: SNAPSHOT_SCHEMA.to_owned(),
        pid: p.pid,
        comm: p.comm.to_owned(),
        cmdline: vec![p.comm.to_owned()],
        start_time: 50_000 + p.pid as u64,
        taken_at: t,
        fd_limit: serde_json::from_value(json!({"soft": p.soft, "hard": 4096})).expect("limit"),
        fds,
        errors: Vec::new(),
    }
}

/// One life of a process: alive at ticks `from..to` (seen gone at tick `to`), its fds at each
/// age (ticks since it was first seen).
struct Life<'a> {
    proc: Proc<'a>,
    from: usize,
    to: usize,
    fds: &'a dyn Fn(usize) -> Vec<Arc<FdEntry>>,
}

/// A process's fds at each age.
type FdsAt = Box<dyn Fn(usize) -> Vec<Arc<FdEntry>>>;

/// `n` ticks `INTERVAL` apart from `T0` of the processes in `lives`, as a live source yields
/// them: a first sight, updates with their delta, an exit.
fn ticks(lives: &[Life], n: usize) -> Vec<Tick> {
    let mut prev: Vec<Option<Snapshot>> = vec![None; lives.len()];
    (0..n)
        .map(|k| {
            let t = T0 + k as f64 * INTERVAL;
            let mut events = Vec::new();
            for (i, life) in lives.iter().enumerate() {
                if k >= life.to {
                    if let Some(p) = prev[i].take() {
                        events.push(Event::Exited {
                            id: p.proc_id(),
                            at: t,
                        });
                    }
                    continue;
                }
                if k < life.from {
                    continue;
                }
                let s = snap(life.proc, t, (life.fds)(k - life.from));
                events.push(match prev[i].take() {
                    None => Event::First(s.clone()),
                    Some(p) => Event::Update {
                        delta: diff(&p.fds, &s.fds),
                        snapshot: s.clone(),
                    },
                });
                prev[i] = Some(s);
            }
            tick(t, events)
        })
        .collect()
}

fn stdio() -> Vec<Arc<FdEntry>> {
    vec![
        file(0, "/dev/null"),
        entry(json!({"fd": 1, "target": "pipe:[7001]", "kind": "pipe", "inode": 7001})),
        entry(json!({"fd": 2, "target": "pipe:[7002]", "kind": "pipe", "inode": 7002})),
    ]
}

/// An API server leaking two session files per tick, churning a temp file, and holding a
/// listener and a long-lived log file: one leaking group with an ETA, one that only churns.
fn api_server(age: usize) -> Vec<Arc<FdEntry>> {
    api_server_leaking(age, 2 * age)
}

/// The API server holding `sessions` session files at `age`.
fn api_server_leaking(age: usize, sessions: usize) -> Vec<Arc<FdEntry>> {
    let mut fds = stdio();
    fds.push(entry(json!({
        "fd": 3, "target": "socket:[9001]", "kind": "socket", "proto": "tcp", "inode": 9001,
        "local": "0.0.0.0:8080", "remote": "0.0.0.0:0", "state": "LISTEN"
    })));
    fds.push(file(4, "/var/log/api/access.log"));
    if age % 2 == 1 {
        fds.push(file(5, &format!("/tmp/render-{age}.tmp")));
    }
    for j in 0..sessions {
        fds.push(file(
            10 + j as i32,
            &format!("/var/lib/api/sessions/sess-{j}.json"),
        ));
    }
    fds
}

const API: Proc = Proc {
    pid: 4242,
    comm: "api-server",
    soft: 1024,
};

fn api_ticks(n: usize) -> Vec<Tick> {
    ticks(
        &[Life {
            proc: API,
            from: 0,
            to: usize::MAX,
            fds: &api_server,
        }],
        n,
    )
}

// ---- the table report ----

#[test]
fn issue10_snapshot_report_leaking_group_with_eta() {
    let r = report_of(&api_ticks(24));
    assert!(r.leaking);
    insta::assert_snapshot!(report_table(&r, None, false));
}

/// Workers each leaking one upload file per tick and replaced every 10 s (a rolling restart):
/// the pool's live sum stays flat, each member leaks alone.
fn recycled_workers(n: usize) -> Vec<Tick> {
    let grow = |age: usize| {
        let mut fds = stdio();
        for j in 0..age {
            fds.push(file(10 + j as i32, &format!("/srv/upload-{j}.pdf")));
        }
        fds
    };
    let (workers, life) = (2usize, 20usize);
    let mut lives = Vec::new();
    for w in 0..workers {
        // The first generation starts together, each cut short to stagger the replacements.
        let (mut from, mut to) = (0, life - w * (life / workers));
        while from < n {
            let pid = 7100 + lives.len() as i32;
            lives.push((pid, from, to));
            from = to;
            to += life;
        }
    }
    let lives: Vec<Life> = lives
        .into_iter()
        .map(|(pid, from, to)| Life {
            proc: Proc {
                pid,
                comm: "gunicorn",
                soft: 1024,
            },
            from,
            to,
            fds: &grow,
        })
        .collect();
    ticks(&lives, n)
}

#[test]
fn issue10_snapshot_report_rollup_leak_masked_by_respawn() {
    let r = report_of(&recycled_workers(80));
    let ru = r.rollup.first().expect("a roll-up");
    assert!(ru.counts.leaking && ru.masked_by_respawn, "{ru:?}");
    insta::assert_snapshot!(report_table(&r, None, false));
}

/// 30 workers of one command holding connections, three of them leaking cache files at
/// different rates: more processes than a table lists one by one.
fn many_workers(n: usize) -> Vec<Tick> {
    let hold = |leak: usize| {
        move |age: usize| {
            let mut fds = stdio();
            for j in 0..4 {
                fds.push(file(10 + j, &format!("/run/pool/conn-{j}.sock")));
            }
            // One connection cycles every tick: churn, not growth.
            fds.push(file(14, &format!("/run/pool/conn-{}.sock", 4 + age)));
            for j in 0..leak * age {
                fds.push(file(
                    20 + j as i32,
                    &format!("/var/cache/pool/blob-{j}.bin"),
                ));
            }
            fds
        }
    };
    let fns: Vec<FdsAt> = (0..30)
        .map(|i| -> FdsAt {
            Box::new(hold(match i {
                3 => 3,
                11 | 17 => 1,
                _ => 0,
            }))
        })
        .collect();
    let lives: Vec<Life> = fns
        .iter()
        .enumerate()
        .map(|(i, f)| Life {
            proc: Proc {
                pid: 3000 + i as i32,
                comm: "pool-worker",
                soft: 1024,
            },
            from: 0,
            // One worker exits two thirds through.
            to: if i == 29 { 2 * n / 3 } else { usize::MAX },
            fds: f.as_ref(),
        })
        .collect();
    ticks(&lives, n)
}

#[test]
fn issue10_snapshot_report_folded_processes() {
    let r = report_of(&many_workers(24));
    assert_eq!(r.processes.len(), 30);
    insta::assert_snapshot!(report_table(&r, None, false));
}

#[test]
fn issue10_snapshot_report_verbose_lists_every_process() {
    let r = report_of(&many_workers(24));
    insta::assert_snapshot!(report_table(&r, None, true));
}

/// A process leaking files under a deep path: the key is longer than the GROUP column.
fn deep_path_ticks() -> Vec<Tick> {
    let deep = |age: usize| {
        let mut fds = stdio();
        for j in 0..age {
            fds.push(file(
                10 + j as i32,
                &format!(
                    "/srv/tenants/acme-corporation/projects/quarterly-reports/exports/\
                     2023/november/final-{j}.csv"
                ),
            ));
        }
        fds
    };
    ticks(
        &[Life {
            proc: Proc {
                pid: 555,
                comm: "exporter",
                soft: 4096,
            },
            from: 0,
            to: usize::MAX,
            fds: &deep,
        }],
        16,
    )
}

#[test]
fn issue10_snapshot_report_long_key_shortened_in_the_middle() {
    let r = report_of(&deep_path_ticks());
    // To a pipe: the GROUP column's fixed cap.
    insta::assert_snapshot!("long_key_pipe", report_table(&r, None, false));
    // To a terminal 100 columns wide: what the other columns leave.
    insta::assert_snapshot!("long_key_terminal_100", report_table(&r, Some(100), false));
}

/// Names from outside: a command with a newline and an escape, a file name with a terminal
/// color sequence and a tab, a bidi override, paths that are not UTF-8; each opened during the
/// watch, so the report lists their groups.
fn hostile_fds(age: usize) -> Vec<Arc<FdEntry>> {
    let mut fds = stdio();
    if age >= 1 {
        fds.push(file(3, "/tmp/\x1b[31mred\x1b[0m\tlog"));
    }
    if age >= 2 {
        fds.push(file(4, "/tmp/invoice-\u{202e}fdp.exe"));
    }
    for j in 0..age {
        // /data/caf\xe9-N.bin in Latin-1: not UTF-8.
        let mut raw = b"/data/caf\xe9-".to_vec();
        raw.extend(j.to_string().as_bytes());
        raw.extend(b".bin");
        let lossy = String::from_utf8_lossy(&raw).into_owned();
        let hex = fdiff_core::util::hex_encode(&raw);
        fds.push(entry(json!({
            "fd": 10 + j, "target": lossy, "target_hex": hex,
            "kind": "file", "path": lossy, "path_hex": hex
        })));
    }
    fds
}

const HOSTILE: Proc = Proc {
    pid: 666,
    comm: "evil\n\x1b[2J",
    soft: 1024,
};

fn hostile_ticks(n: usize) -> Vec<Tick> {
    ticks(
        &[Life {
            proc: HOSTILE,
            from: 0,
            to: usize::MAX,
            fds: &hostile_fds,
        }],
        n,
    )
}

/// Nothing a renderer writes may carry a control character but the newline ending a line,
/// nor a bidi control.
fn assert_escaped(text: &str) {
    for line in text.lines() {
        assert!(
            !line
                .chars()
                .any(|c| c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)),
            "unescaped control character in {line:?}"
        );
    }
}

#[test]
fn issue10_snapshot_report_control_characters_and_non_utf8_escaped() {
    let text = report_table(&report_of(&hostile_ticks(16)), None, false);
    assert_escaped(&text);
    insta::assert_snapshot!(text);
}

// ---- the snapshot table ----

/// One process with an fd of every kind, and one it could not read.
fn every_kind() -> Snapshot {
    let mut s = snap(API, T0, stdio());
    s.fds.extend([
        entry(json!({
            "fd": 3, "target": "socket:[9001]", "kind": "socket", "proto": "tcp", "inode": 9001,
            "local": "0.0.0.0:8080", "remote": "0.0.0.0:0", "state": "LISTEN"
        })),
        entry(json!({
            "fd": 4, "target": "socket:[9002]", "kind": "socket", "proto": "tcp6", "inode": 9002,
            "local": "[::1]:8080", "remote": "[::1]:51234", "state": "ESTABLISHED"
        })),
        entry(json!({
            "fd": 5, "target": "socket:[9003]", "kind": "socket", "proto": "unix", "inode": 9003,
            "socket_type": "stream", "peer_path": "/run/postgresql/.s.PGSQL.5432",
            "state": "ESTABLISHED", "peer": 9004
        })),
        entry(json!({
            "fd": 6, "target": "socket:[9005]", "kind": "socket", "proto": "netlink",
            "inode": 9005, "netlink_family": "route"
        })),
        entry(json!({
            "fd": 7, "target": "anon_inode:[eventfd]", "kind": "anon_inode",
            "subtype": "eventfd", "eventfd_count": 3
        })),
        entry(json!({
            "fd": 8, "target": "anon_inode:[eventpoll]", "kind": "anon_inode",
            "subtype": "eventpoll", "tfd": [3, 4, 7]
        })),
        entry(json!({
            "fd": 9, "target": "anon_inode:[timerfd]", "kind": "anon_inode",
            "subtype": "timerfd", "clockid": "monotonic", "interval_secs": 0.25,
            "value_secs": 0.1
        })),
        entry(json!({
            "fd": 10, "target": "/memfd:jit-cache (deleted)", "kind": "memfd",
            "name": "jit-cache", "size": 65536, "inode": 12
        })),
        entry(json!({
            "fd": 11, "target": "/var/log/api/old.log (deleted)", "kind": "file",
            "path": "/var/log/api/old.log", "deleted": true, "size": 1048576, "inode": 77,
            "dev": "8:1"
        })),
        entry(json!({
            "fd": 12, "target": "/etc/ssl/certs", "kind": "dir", "path": "/etc/ssl/certs",
            "inode": 78
        })),
        entry(json!({
            "fd": 13, "target": "/dev/urandom", "kind": "device", "path": "/dev/urandom",
            "device_type": "char", "rdev": "1:9"
        })),
        entry(json!({
            "fd": 14, "target": "/run/api/control", "kind": "pipe", "path": "/run/api/control",
            "inode": 79
        })),
        entry(json!({"fd": 15, "target": "weird:[1]", "kind": "unknown"})),
    ]);
    s.errors.push(
        serde_json::from_value(json!({"fd": 16, "error": "Permission denied (os error 13)"}))
            .expect("fd error"),
    );
    s
}

#[test]
fn issue10_snapshot_snapshot_table_every_kind() {
    insta::assert_snapshot!(snapshot_table(&[every_kind()]));
}

#[test]
fn issue10_snapshot_snapshot_table_escapes_names() {
    let mut s = snap(HOSTILE, T0, hostile_fds(2));
    s.fd_limit = Default::default();
    let other = snap(API, T0, stdio());
    let text = snapshot_table(&[s, other]);
    assert_escaped(&text);
    insta::assert_snapshot!(text);
}

// ---- the diff table ----

#[test]
fn issue10_snapshot_diff_table() {
    let before = every_kind();
    let mut after = before.clone();
    after.taken_at = T0 + 95.0;
    // Closed: the timerfd; replaced: fd 4 is another connection now; opened: two sessions and
    // a hostile name.
    after.fds.retain(|e| e.fd != 9 && e.fd != 4);
    after.fds.extend([
        entry(json!({
            "fd": 4, "target": "socket:[9010]", "kind": "socket", "proto": "tcp6", "inode": 9010,
            "local": "[::1]:8080", "remote": "[::1]:51301", "state": "ESTABLISHED"
        })),
        file(20, "/var/lib/api/sessions/sess-1.json"),
        file(21, "/var/lib/api/sessions/sess-2.json"),
        file(22, "/tmp/\x1b[31mred\x1b[0m\tlog"),
    ]);
    after.fds.sort_by_key(|e| e.fd);
    let d = compare(&[before], &[after], &TrackOptions::default());
    let text = diff_table(&d);
    assert_escaped(&text);
    insta::assert_snapshot!(text);
}

#[test]
fn issue10_snapshot_diff_table_restarted_and_unmatched_processes() {
    // The same pid, another process (a restart between the two snapshots).
    let before = snap(API, T0, api_server(1));
    let mut after = snap(API, T0 + 30.0, api_server(3));
    after.start_time += 1;
    let d = compare(&[before], &[after], &TrackOptions::default());
    let mut text = diff_table(&d);
    // Several processes: one on each side only, one unchanged.
    let keep = snap(Proc { pid: 10, ..API }, T0, stdio());
    let gone = snap(Proc { pid: 11, ..HOSTILE }, T0, stdio());
    let new = snap(Proc { pid: 12, ..API }, T0 + 30.0, stdio());
    let mut keep_after = keep.clone();
    keep_after.taken_at = T0 + 30.0;
    let d = compare(&[keep, gone], &[keep_after, new], &TrackOptions::default());
    text.push_str("----\n");
    text.push_str(&diff_table(&d));
    assert_escaped(&text);
    insta::assert_snapshot!(text);
}

// ---- live lines ----

#[test]
fn issue10_snapshot_live_lines_leak_suspected_then_cleared() {
    // Leaks two sessions a tick for 5 s, then closes them all and stays flat.
    let fixed = |age: usize| api_server_leaking(age, 2 * age.min(10) * usize::from(age <= 10));
    let ticks = ticks(
        &[Life {
            proc: API,
            from: 0,
            to: usize::MAX,
            fds: &fixed,
        }],
        18,
    );
    insta::assert_snapshot!(live_lines(&ticks, false));
}

#[test]
fn issue10_snapshot_live_lines_verbose() {
    insta::assert_snapshot!(live_lines(&api_ticks(6), true));
}

#[test]
fn issue10_snapshot_live_lines_many_processes_and_exits() {
    insta::assert_snapshot!(live_lines(&many_workers(12), false));
}

#[test]
fn issue10_snapshot_live_lines_respawning_pool() {
    insta::assert_snapshot!(live_lines(&recycled_workers(24), false));
}

#[test]
fn issue10_snapshot_live_lines_escape_names() {
    let text = live_lines(&hostile_ticks(8), true);
    assert_escaped(&text);
    insta::assert_snapshot!(text);
}

// ---- the HTML page and its SVG chart ----

/// The page as `--html` writes it, with the version and command line fixed (the page embeds
/// both, and the SVG charts inline).
fn html_page(r: &Report) -> String {
    let meta = fdiff::report::html::Meta {
        version: "0.0.0-test".to_owned(),
        command_line: vec!["fdiff".to_owned(), "--pid".to_owned(), "4242".to_owned()],
    };
    fdiff::report::html::page(r, &meta).expect("render the page")
}

#[test]
fn issue11_snapshot_html_page_leaking_group() {
    let r = report_of(&api_ticks(24));
    insta::assert_snapshot!(html_page(&r));
}

#[test]
fn issue11_snapshot_html_page_rollup_and_hostile_names_escaped() {
    let mut r = report_of(&recycled_workers(80));
    let hostile = report_of(&hostile_ticks(24));
    r.groups.extend(hostile.groups);
    let mut tag = r.groups[0].clone();
    tag.key = "/tmp/<script>alert(1)</script>-*.log".to_owned();
    r.groups.push(tag);
    let page = html_page(&r);
    // Nothing a target named may open a tag or write a control character into the page.
    assert!(!page.contains("<script>alert"), "unescaped name");
    assert_escaped(&page);
    insta::assert_snapshot!(page);
}

#[test]
fn issue11_snapshot_svg_chart() {
    let r = report_of(&api_ticks(24));
    insta::assert_snapshot!(fdiff::report::svg::render(&r, (800, 400)).expect("render the svg"));
}

#[test]
fn issue12_snapshot_html_page_lists_the_leaking_groups_stacks() {
    use fdiff_core::track::stacks::{GroupStacks, StackCount, StackFrame, StacksReport};
    let mut r = report_of(&api_ticks(24));
    let g = r.groups.iter().find(|g| g.counts.leaking).expect("a leak");
    let frame = |function: &str, file: Option<&str>, line, module: &str| StackFrame {
        function: function.to_owned(),
        offset: 0x1a,
        file: file.map(str::to_owned),
        line,
        module: Some(module.to_owned()),
        inlined: false,
        python: false,
    };
    let opened_by = |path: &str| StackCount {
        count: 0,
        tids: vec![4242],
        frames: vec![
            frame("__libc_open64", Some("open64.c"), Some(41), "libc.so.6"),
            frame(path, Some("server.c"), Some(120), "api-server"),
            frame("main", Some("server.c"), Some(300), "api-server"),
        ],
    };
    r.stacks = Some(StacksReport {
        arming: "leak".to_owned(),
        groups: vec![GroupStacks {
            pid: g.pid,
            kind: g.kind,
            key: g.key.clone(),
            survivors: g.counts.survivors,
            captured: g.counts.survivors - 2,
            survivor_stacks: vec![StackCount {
                count: g.counts.survivors - 2,
                ..opened_by("open_session")
            }],
            closed_stacks: vec![StackCount {
                count: 7,
                ..opened_by("\u{1b}[31mhealthy_path<b>")
            }],
            note: None,
            nspid: None,
        }],
        captured: 40,
        dropped_fds: 0,
        dropped_stacks: 1,
        unwind_failed: 0,
        bytes: 4096,
        notes: Vec::new(),
    });
    let page = html_page(&r);
    assert!(page.contains("survivors opened at:"), "no stacks section");
    assert!(!page.contains("healthy_path<b>"), "unescaped frame");
    assert_escaped(&page);
    insta::assert_snapshot!(page);
}
