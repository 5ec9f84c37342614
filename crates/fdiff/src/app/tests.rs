//! Pipeline tests on synthetic ticks: a recording read back gives the report the live run gave,
//! and roll-ups judge growth spread over several processes.

use super::watch::feed;
use crate::diff::diff;
use crate::report::record::Recorder;
use crate::snapshot::{FdEntry, FdLimit, SNAPSHOT_SCHEMA, Snapshot};
use crate::source::recording::RecordingSource;
use crate::source::{Event, Tick};
use crate::track::{TrackOptions, Tracker};
use std::sync::Arc;

fn file(fd: i32, path: &str) -> Arc<FdEntry> {
    crate::snapshot::model::test_file(fd, path, None)
}

fn snap(pid: i32, comm: &str, t: f64, fds: Vec<Arc<FdEntry>>) -> Snapshot {
    Snapshot {
        schema: SNAPSHOT_SCHEMA.to_owned(),
        pid,
        comm: comm.to_owned(),
        cmdline: vec![comm.to_owned()],
        start_time: 1000 + pid as u64,
        taken_at: t,
        fd_limit: FdLimit {
            soft: Some(1024),
            hard: Some(4096),
        },
        fds,
        errors: Vec::new(),
    }
}

/// Ticks `t0, t0 + dt, …` of processes named `comm` whose fds at tick k are
/// `fds_of(process index, k)`; the last process is gone from tick `exit_last_at` on.
fn build_ticks(
    pids: &[i32],
    comm: &str,
    (t0, dt): (f64, f64),
    n: usize,
    exit_last_at: Option<usize>,
    fds_of: impl Fn(usize, usize) -> Vec<Arc<FdEntry>>,
) -> Vec<Tick> {
    let mut out = Vec::new();
    let mut prev: Vec<Option<Snapshot>> = vec![None; pids.len()];
    for k in 0..n {
        let t = t0 + k as f64 * dt;
        let mut events = Vec::new();
        for (i, &pid) in pids.iter().enumerate() {
            if exit_last_at.is_some_and(|x| i == pids.len() - 1 && k >= x) {
                if let Some(p) = prev[i].take() {
                    events.push(Event::Exited {
                        id: p.proc_id(),
                        at: t,
                    });
                }
                continue;
            }
            let s = snap(pid, comm, t, fds_of(i, k));
            events.push(match prev[i].take() {
                None => Event::First(s.clone()),
                Some(p) => Event::Update {
                    delta: diff(&p.fds, &s.fds),
                    snapshot: s.clone(),
                },
            });
            prev[i] = Some(s);
        }
        out.push(Tick::new(t, events));
    }
    out
}

/// Workers that each leak `per_tick` upload files per tick and churn one temp file, every
/// 0.5 s from t = 1000, with the last one exiting at tick `exit_last_at`.
fn ticks(pids: &[i32], per_tick: usize, n: usize, exit_last_at: Option<usize>) -> Vec<Tick> {
    build_ticks(pids, "worker", (1_000.0, 0.5), n, exit_last_at, |_, k| {
        let mut fds = vec![
            file(0, "/dev/null"),
            file(3, &format!("/tmp/churn-{k}.tmp")),
        ];
        for j in 0..(k * per_tick) {
            fds.push(file(10 + j as i32, &format!("/srv/upload-{j}.pdf")));
        }
        fds
    })
}

#[test]
fn issue3_report_from_recording_equals_live_report() {
    let ticks = ticks(&[10, 11], 2, 12, Some(8));
    let mut live = Tracker::new(TrackOptions::default(), 0.5);
    let mut buf = Vec::new();
    {
        let mut rec = Recorder::new(&mut buf, "mem", 0.5, 1_000.0).expect("recorder");
        for t in &ticks {
            feed(&mut live, t);
            rec.tick(t).expect("write");
        }
    }
    let mut src = RecordingSource::new("mem", std::io::Cursor::new(&buf)).expect("header");
    let mut offline = Tracker::new(TrackOptions::default(), src.interval_secs());
    while let Some(t) = src.next_tick().expect("tick") {
        feed(&mut offline, &t);
    }
    let (a, b) = (live.report(), offline.report());
    assert_eq!(
        serde_json::to_value(&a).expect("json"),
        serde_json::to_value(&b).expect("json")
    );
    assert!(a.leaking);
    let p11 = a.processes.iter().find(|p| p.pid == 11).expect("pid 11");
    assert!(p11.exited && p11.exited_at == Some(1_004.0));
    let up = a
        .groups
        .iter()
        .find(|g| g.pid == 10 && g.key == "/srv/upload-*.pdf")
        .expect("upload group");
    assert!(
        up.counts.leaking && (up.counts.rate_per_sec - 4.0).abs() < 0.01,
        "{up:?}"
    );
    let churn = a
        .groups
        .iter()
        .find(|g| g.pid == 10 && g.key == "/tmp/churn-*.tmp")
        .expect("churn");
    assert!(!churn.counts.leaking);
    assert_eq!((churn.counts.start, churn.counts.end), (1, 1));
}

#[test]
fn issue3_truncated_last_line_is_a_warning_not_an_error() {
    let ticks = ticks(&[10], 1, 6, None);
    let mut buf = Vec::new();
    {
        let mut rec = Recorder::new(&mut buf, "mem", 0.5, 1_000.0).expect("recorder");
        for t in &ticks {
            rec.tick(t).expect("write");
        }
    }
    buf.truncate(buf.len() - 20);
    let mut src = RecordingSource::new("mem", std::io::Cursor::new(&buf)).expect("header");
    let mut n = 0;
    while src.next_tick().expect("ticks before the cut").is_some() {
        n += 1;
    }
    assert_eq!(n, 5);
    assert!(
        src.warning
            .as_deref()
            .is_some_and(|w| w.contains("truncated"))
    );
}

#[test]
fn issue4_rollup_leaks_when_each_process_is_too_slow_alone() {
    // Four workers, each gaining one fd every 4 ticks over 9 ticks: two each, too few to judge
    // alone; together eight, steadily.
    let pids = [20, 21, 22, 23];
    let all = build_ticks(&pids, "gunicorn", (2_000.0, 1.0), 9, None, |i, k| {
        // Staggered so the sum grows every tick.
        let leaked = (k + i) / 4;
        let mut fds = vec![file(0, "/dev/null")];
        for j in 0..leaked {
            fds.push(file(10 + j as i32, &format!("/srv/docs/invoice-{j}.pdf")));
        }
        fds
    });
    let mut tr = Tracker::new(TrackOptions::default(), 1.0);
    for t in &all {
        feed(&mut tr, t);
    }
    let r = tr.report();
    assert!(
        r.groups.iter().all(|g| !g.counts.leaking),
        "no process leaks alone"
    );
    let ru = r
        .rollup
        .iter()
        .find(|r| r.key == "/srv/docs/invoice-*.pdf")
        .expect("rollup");
    assert_eq!(ru.pids, vec![20, 21, 22, 23]);
    assert!(ru.counts.leaking, "{ru:?}");
    assert!(r.leaking);
}

/// A process first seen between fork and exec is reported under the program it exec'd, live
/// and from a recording.
#[test]
fn issue4_exec_after_first_sight_renames_the_process() {
    let mut ts = ticks(&[30], 1, 5, None);
    for t in ts.iter_mut().skip(2) {
        for e in &mut t.events {
            if let Event::Update { snapshot, .. } = e {
                snapshot.comm = "python3".to_owned();
                snapshot.cmdline = vec!["python3".to_owned(), "app.py".to_owned()];
            }
        }
    }
    let mut live = Tracker::new(TrackOptions::default(), 0.5);
    let mut buf = Vec::new();
    {
        let mut rec = Recorder::new(&mut buf, "mem", 0.5, 1_000.0).expect("recorder");
        for t in &ts {
            feed(&mut live, t);
            rec.tick(t).expect("write");
        }
    }
    let mut src = RecordingSource::new("mem", std::io::Cursor::new(&buf)).expect("header");
    let mut offline = Tracker::new(TrackOptions::default(), 0.5);
    while let Some(t) = src.next_tick().expect("tick") {
        feed(&mut offline, &t);
    }
    for r in [live.report(), offline.report()] {
        assert_eq!(r.processes[0].comm, "python3");
        assert_eq!(r.processes[0].cmdline, vec!["python3", "app.py"]);
    }
}

/// A leaking process that closes everything in its last tick and exits (an interpreter
/// finalising its files) still leaked: regression for the run gate passing such a command.
#[test]
fn issue4_closing_everything_on_exit_does_not_hide_a_leak() {
    let mut ts = ticks(&[40], 3, 10, None);
    let t_last = 1_000.0 + 10.0 * 0.5;
    let Some(Event::Update { snapshot, .. }) = ts.last().and_then(|t| t.events.first()).cloned()
    else {
        panic!("an update")
    };
    let mut closing = snapshot.clone();
    closing.fds.truncate(1);
    closing.taken_at = t_last;
    ts.push(Tick {
        t: t_last,
        events: vec![Event::Update {
            delta: diff(&snapshot.fds, &closing.fds),
            snapshot: closing.clone(),
        }],
        mono: None,
    });
    ts.push(Tick {
        t: t_last + 0.5,
        events: vec![Event::Exited {
            id: closing.proc_id(),
            at: t_last + 0.5,
        }],
        mono: None,
    });
    let mut tr = Tracker::new(TrackOptions::default(), 0.5);
    for t in &ts {
        feed(&mut tr, t);
    }
    let r = tr.report();
    let up = r
        .groups
        .iter()
        .find(|g| g.key == "/srv/upload-*.pdf")
        .expect("upload group");
    assert!(up.counts.leaking, "{up:?}");
    assert_eq!(up.counts.end, 27);
    assert!(r.processes[0].exited);

    // Closing that many while it keeps running is a real close.
    let mut tr = Tracker::new(TrackOptions::default(), 0.5);
    for t in &ts[..ts.len() - 1] {
        feed(&mut tr, t);
    }
    let up = tr
        .report()
        .groups
        .into_iter()
        .find(|g| g.key == "/srv/upload-*.pdf")
        .expect("group");
    assert_eq!(up.counts.end, 0);
}

/// Ticks `t0, t0 + dt, …` (n of them) of processes named `comm` that come and go: each
/// `(pid, from, to)` is first seen at tick `from` and gone from tick `to` on; its fds at tick k
/// are `fds_of(pid, k - from)`.
fn lives_ticks(
    lives: &[(i32, usize, usize)],
    comm: &str,
    (t0, dt): (f64, f64),
    n: usize,
    fds_of: impl Fn(i32, usize) -> Vec<Arc<FdEntry>>,
) -> Vec<Tick> {
    let mut prev: Vec<Option<Snapshot>> = vec![None; lives.len()];
    (0..n)
        .map(|k| {
            let t = t0 + k as f64 * dt;
            let mut events = Vec::new();
            for (i, &(pid, from, to)) in lives.iter().enumerate() {
                if k >= to {
                    if let Some(p) = prev[i].take() {
                        events.push(Event::Exited {
                            id: p.proc_id(),
                            at: t,
                        });
                    }
                    continue;
                }
                if k < from {
                    continue;
                }
                let s = snap(pid, comm, t, fds_of(pid, k - from));
                events.push(match prev[i].take() {
                    None => Event::First(s.clone()),
                    Some(p) => Event::Update {
                        delta: diff(&p.fds, &s.fds),
                        snapshot: s.clone(),
                    },
                });
                prev[i] = Some(s);
            }
            Tick::new(t, events)
        })
        .collect()
}

fn report_of(ticks: &[Tick]) -> crate::track::Report {
    let mut tr = Tracker::new(TrackOptions::default(), 0.5);
    for t in ticks {
        feed(&mut tr, t);
    }
    tr.report()
}

/// `workers` at a time, each replaced after `life` ticks, staggered so one is replaced every
/// `life / workers` ticks (a rolling restart like gunicorn's --max-requests).
fn rolling(workers: usize, life: usize, n: usize) -> Vec<(i32, usize, usize)> {
    let step = (life / workers).max(1);
    let mut out = Vec::new();
    for w in 0..workers {
        // The first generation starts together, each cut short to stagger the replacements.
        let mut from = 0;
        let mut to = life - w * step;
        while from < n {
            out.push((100 + out.len() as i32, from, to));
            from = to;
            to += life;
        }
    }
    out
}

/// A worker holding connections (as files here: the roll-up is what is tested) and a couple of
/// data files, opened in its first tick; none opened later.
fn holding(pid: i32, age: usize) -> Vec<Arc<FdEntry>> {
    let mut fds = vec![file(0, "/dev/null")];
    // Seen at birth with nothing yet, then holding its keep-alive connections.
    if age > 0 {
        for j in 0..4 {
            fds.push(file(10 + j, &format!("/run/conn-{pid}-{j}.sock")));
        }
        fds.push(file(20, &format!("/srv/data/{pid}/table-{pid}.dat")));
    }
    fds
}

fn rollup_of<'a>(
    r: &'a crate::track::Report,
    needle: &str,
) -> Option<&'a crate::track::RollupReport> {
    r.rollup.iter().find(|ru| ru.key.contains(needle))
}

#[test]
fn issue8_pool_recycling_workers_that_hold_connections_does_not_leak() {
    let lives = rolling(2, 8, 60);
    let r = report_of(&lives_ticks(&lives, "gunicorn", (0.0, 0.5), 60, holding));
    let ru = rollup_of(&r, "/run/conn-").expect("roll-up of the connections");
    assert!(ru.pids.len() > 10, "{:?}", ru.pids);
    assert!(!ru.counts.leaking && !ru.masked_by_respawn, "{ru:?}");
    assert!(ru.counts.rate_per_sec.abs() < 0.5, "{ru:?}");
    assert!(!r.leaking, "{:?}", r.rollup);
}

#[test]
fn issue8_reload_replacing_every_worker_does_not_leak() {
    // Four workers, all replaced at once every 10 ticks; the new ones start a tick before the
    // old ones go, as nginx's do.
    let mut lives = Vec::new();
    for g in 0..6usize {
        for w in 0..4 {
            let from = (g * 10).saturating_sub(1);
            lives.push((200 + (g * 4 + w) as i32, from, g * 10 + 10));
        }
    }
    let r = report_of(&lives_ticks(&lives, "nginx", (0.0, 0.5), 60, holding));
    let ru = rollup_of(&r, "/run/conn-").expect("roll-up");
    assert_eq!(ru.pids.len(), 24);
    assert!(!ru.counts.leaking, "{ru:?}");
    assert!(!r.leaking, "{:?}", r.rollup);
}

#[test]
fn issue8_short_lived_backends_holding_a_few_files_do_not_leak() {
    // A backend per tick, each seen for three ticks: just forked, then holding three files of
    // the data dir.
    let lives: Vec<(i32, usize, usize)> = (0..60).map(|k| (300 + k as i32, k, k + 3)).collect();
    let r = report_of(&lives_ticks(
        &lives,
        "postgres",
        (0.0, 0.5),
        60,
        |pid, age| {
            let mut fds = vec![file(0, "/dev/null")];
            for j in 0..if age > 0 { 3 } else { 0 } {
                fds.push(file(
                    10 + j,
                    &format!(
                        "/pgdata/base/{}/{}",
                        16384,
                        2600 + pid as usize + j as usize
                    ),
                ));
            }
            fds
        },
    ));
    let ru = rollup_of(&r, "/pgdata/base/").expect("roll-up");
    assert!(ru.pids.len() >= 50);
    assert!(!ru.counts.leaking, "{ru:?}");
    assert!(!r.leaking);
}

/// Workers each leaking 2 fds/s (one per 0.5 s tick), recycled every 10 s.
fn leaking_workers() -> crate::track::Report {
    let lives = rolling(2, 20, 80);
    report_of(&lives_ticks(
        &lives,
        "gunicorn",
        (0.0, 0.5),
        80,
        |_, age| {
            let mut fds = vec![file(0, "/dev/null")];
            for j in 0..age {
                fds.push(file(10 + j as i32, &format!("/srv/upload-{j}.pdf")));
            }
            fds
        },
    ))
}

#[test]
fn issue8_leak_inside_recycled_workers_is_found_and_said_to_be_masked() {
    let r = leaking_workers();
    let ru = rollup_of(&r, "/srv/upload-").expect("roll-up");
    assert!(ru.counts.leaking && ru.masked_by_respawn, "{ru:?}");
    // The live sum itself does not grow: each worker's leak is freed when it is replaced.
    assert!(ru.counts.rate_per_sec.abs() < 0.5, "{ru:?}");
    let rate = ru.member_rate_per_sec.expect("member rate");
    assert!((rate - 2.0).abs() < 0.1, "{rate}");
    assert!(ru.leaking_members >= 6, "{ru:?}");
    let life = ru.member_lifetime_secs.expect("lifetime");
    assert!((life - 10.0).abs() < 1.0, "{life}");
    // Each worker that lived long enough is flagged on its own verdict.
    let ups: Vec<_> = r
        .groups
        .iter()
        .filter(|g| g.key == "/srv/upload-*.pdf")
        .collect();
    assert!(
        ups.iter().filter(|g| g.counts.leaking).count() >= 6,
        "{ups:?}"
    );
    assert!(r.leaking);
    let mut out = Vec::new();
    crate::report::report_renderer(crate::report::Format::Table, false, false)
        .report(&r, &mut out)
        .expect("render");
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("each worker grows +2.0/s until it is replaced; respawning masks the leak"),
        "{text}"
    );
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(
        json["rollup"][0]["masked_by_respawn"],
        serde_json::json!(true)
    );
}

#[test]
fn issue8_an_exited_member_stops_counting_in_the_rollup() {
    // Two workers holding 4 connections each; one exits half way: the live sum drops back.
    let lives = [(400, 0, 20), (401, 0, 10)];
    let r = report_of(&lives_ticks(
        &lives,
        "worker",
        (0.0, 0.5),
        20,
        |pid, age| {
            let mut fds = vec![file(0, "/dev/null")];
            for j in 0..age.min(4) {
                fds.push(file(10 + j as i32, &format!("/run/conn-{pid}-{j}.sock")));
            }
            fds
        },
    ));
    let ru = rollup_of(&r, "/run/conn-").expect("roll-up");
    let last = *ru.series.last().expect("series");
    assert_eq!(last, 4.0, "{:?}", ru.series);
    let peak = ru.series.iter().copied().fold(0.0, f64::max);
    assert_eq!(peak, 8.0, "{:?}", ru.series);
}

/// The shutdown rule (closing most fds in the last tick, then exiting, is judged as before
/// that tick) keeps a leaking process's own verdict, and the roll-up sees the closes it made.
#[test]
fn issue8_shutdown_rule_is_for_the_process_not_the_rollup() {
    let lives = [(500, 0, 30), (501, 0, 12)];
    let r = report_of(&lives_ticks(
        &lives,
        "worker",
        (0.0, 0.5),
        30,
        |pid, age| {
            let mut fds = vec![file(0, "/dev/null")];
            // 501 leaks until tick 10, closes everything in tick 11 and is gone at 12.
            let n = if pid == 501 && age == 11 { 0 } else { age };
            for j in 0..n {
                fds.push(file(10 + j as i32, &format!("/srv/upload-{j}.pdf")));
            }
            fds
        },
    ));
    let own = r
        .groups
        .iter()
        .find(|g| g.pid == 501 && g.key == "/srv/upload-*.pdf")
        .expect("group");
    assert!(own.counts.leaking, "{own:?}");
    assert_eq!(own.counts.end, 10);
    let ru = rollup_of(&r, "/srv/upload-").expect("roll-up");
    // At tick 11 (the series starts at tick 1, where the groups were born) the roll-up holds
    // 500's 11 and 501's 0 as seen, not the 10 taken back.
    assert_eq!(ru.series[10], 11.0, "{:?}", ru.series);
}

fn table(r: &crate::track::Report, verbose: bool, width: Option<usize>) -> String {
    let mut out = Vec::new();
    let t = crate::report::table::ReportTable {
        color: false,
        verbose,
        width,
    };
    crate::report::ReportRenderer::report(&t, r, &mut out).expect("render");
    String::from_utf8(out).expect("utf-8")
}

/// 30 backends alive throughout, each churning a file and holding a connection file.
fn many_backends() -> crate::track::Report {
    let lives: Vec<(i32, usize, usize)> = (0..30).map(|i| (600 + i, 0, 12)).collect();
    let mut tr = Tracker::new(TrackOptions::default(), 0.25);
    for t in &lives_ticks(&lives, "postgres", (0.0, 0.25), 12, |_, age| {
        vec![
            file(0, "/dev/null"),
            file(3, &format!("/pgdata/base/16384/{}", 2600 + age)),
        ]
    }) {
        feed(&mut tr, t);
    }
    tr.report()
}

#[test]
fn issue8_header_names_a_few_pids_then_counts() {
    let r = many_backends();
    let text = table(&r, false, None);
    let head = text.lines().next().expect("header");
    assert_eq!(
        head,
        "fdiff: watched 30 processes (postgres; pids 600, 601, 602 and 27 more) for 2.8s \
         (12 ticks, every 250ms)"
    );
}

#[test]
fn issue8_many_processes_fold_into_the_rollup_unless_verbose() {
    let r = many_backends();
    let folded = table(&r, false, None);
    assert!(!folded.lines().any(|l| l.starts_with("pid 6")), "{folded}");
    assert!(
        folded
            .lines()
            .any(|l| l.trim_start().starts_with("×30") && l.contains("/pgdata/base/*/*")),
        "{folded}"
    );
    assert!(
        folded.contains("all 30 processes: 60 → 60 fds in all, 0 exited (--verbose lists each)"),
        "{folded}"
    );
    let verbose = table(&r, true, None);
    assert_eq!(
        verbose.lines().filter(|l| l.starts_with("pid 6")).count(),
        30,
        "{verbose}"
    );
    assert!(
        verbose
            .lines()
            .filter(|l| l.contains("/pgdata/base/*/*"))
            .count()
            >= 30,
        "{verbose}"
    );
}

#[test]
fn issue8_group_column_is_capped_and_keys_shortened_in_the_middle() {
    let long = format!("/srv/{}upload-*.pdf", "deep/".repeat(30));
    let ticks = build_ticks(&[700], "worker", (0.0, 0.5), 10, None, |_, k| {
        let mut fds = vec![file(0, "/dev/null")];
        for j in 0..k {
            fds.push(file(
                10 + j as i32,
                &format!("/srv/{}upload-{j}.pdf", "deep/".repeat(30)),
            ));
        }
        fds
    });
    let mut tr = Tracker::new(TrackOptions::default(), 0.5);
    for t in &ticks {
        feed(&mut tr, t);
    }
    let r = tr.report();
    assert_eq!(r.groups[0].key, long, "JSON keeps the full key");
    let row_with = |text: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with("file"))
            .map(str::to_owned)
            .expect("the group's row")
    };
    let not_tty = table(&r, false, None);
    let row = row_with(&not_tty);
    let cell = row
        .split_whitespace()
        .nth(1)
        .expect("GROUP cell")
        .to_owned();
    assert_eq!(
        unicode_width::UnicodeWidthStr::width(cell.as_str()),
        60,
        "{row}"
    );
    assert!(
        cell.starts_with("/srv/deep/") && cell.ends_with("/upload-*.pdf"),
        "{cell}"
    );
    assert!(cell.contains('…'), "{cell}");
    let narrow = table(&r, false, Some(100));
    let row = row_with(&narrow);
    assert!(
        unicode_width::UnicodeWidthStr::width(row.as_str()) <= 100,
        "{}: {row}",
        row.len()
    );
}

#[test]
fn issue8_rollup_only_leak_gets_its_own_line_with_an_eta() {
    let pids = [20, 21, 22, 23];
    let all = build_ticks(&pids, "gunicorn", (2_000.0, 1.0), 9, None, |i, k| {
        let leaked = (k + i) / 4;
        let mut fds = vec![file(0, "/dev/null")];
        for j in 0..leaked {
            fds.push(file(10 + j as i32, &format!("/srv/docs/invoice-{j}.pdf")));
        }
        fds
    });
    let mut tr = Tracker::new(TrackOptions::default(), 1.0);
    for t in &all {
        feed(&mut tr, t);
    }
    let r = tr.report();
    let ru = &r.rollup[0];
    assert!(ru.counts.leaking && ru.leaking_members == 0, "{ru:?}");
    let eta = ru.eta_to_limit_secs.expect("eta");
    // About 0.25/s per member (1/s over four), 1,024 − 3 to go for the fullest.
    assert!((3000.0..5000.0).contains(&eta), "{eta}");
    let text = table(&r, false, None);
    let line = text
        .lines()
        .find(|l| l.starts_with("leak gunicorn:"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("though no process leaks alone"), "{line}");
    assert!(
        line.contains("nearest to its limit, gets there in about 1h"),
        "{line}"
    );
}

#[test]
fn issue8_process_that_exited_at_its_limit_says_likely_emfile() {
    // Leaks 100 fds per tick up to its limit of 1,024, then exits.
    let ticks = build_ticks(&[800, 801], "worker", (0.0, 0.5), 14, Some(12), |i, k| {
        let n = if i == 1 { (k * 100).min(1023) } else { 1 };
        (0..=n as i32)
            .map(|j| file(j, &format!("/srv/upload-{j}.pdf")))
            .collect()
    });
    let mut tr = Tracker::new(TrackOptions::default(), 0.5);
    for t in &ticks {
        feed(&mut tr, t);
    }
    let r = tr.report();
    let p = r.processes.iter().find(|p| p.pid == 801).expect("801");
    assert!(p.exited && p.exited_at_fd_limit, "{p:?}");
    assert!(
        !r.processes
            .iter()
            .any(|p| p.pid == 800 && p.exited_at_fd_limit)
    );
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(
        json["processes"][1]["exited_at_fd_limit"],
        serde_json::json!(true)
    );
    let text = table(&r, false, None);
    assert!(
        text.contains("exited at its fd limit (1,024): likely EMFILE"),
        "{text}"
    );
}

#[test]
fn issue9_achieved_interval_is_reported_and_shown_when_slower() {
    // Asked for every 10ms, ticks came every 45ms.
    let ticks = build_ticks(&[900], "worker", (0.0, 0.045), 11, None, |_, _| {
        vec![file(0, "/dev/null")]
    });
    let mut tr = Tracker::new(TrackOptions::default(), 0.01);
    for t in &ticks {
        feed(&mut tr, t);
    }
    let r = tr.report();
    let a = r.achieved_interval_secs.expect("achieved");
    assert!((a - 0.045).abs() < 1e-9, "{a}");
    let json = serde_json::to_value(&r).expect("json");
    assert!(json["achieved_interval_secs"].as_f64().is_some());
    let text = table(&r, false, None);
    assert!(
        text.contains("every 10ms requested, 45ms achieved"),
        "{text}"
    );
    // On time: only the interval.
    let ticks = build_ticks(&[900], "worker", (0.0, 0.25), 5, None, |_, _| {
        vec![file(0, "/dev/null")]
    });
    let mut tr = Tracker::new(TrackOptions::default(), 0.25);
    for t in &ticks {
        feed(&mut tr, t);
    }
    let text = table(&tr.report(), false, None);
    assert!(text.contains("(5 ticks, every 250ms)"), "{text}");
}
