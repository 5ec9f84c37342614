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
        out.push(Tick { t, events });
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
    });
    ts.push(Tick {
        t: t_last + 0.5,
        events: vec![Event::Exited {
            id: closing.proc_id(),
            at: t_last + 0.5,
        }],
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
