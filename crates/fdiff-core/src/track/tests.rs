//! Issue 10 tests of the incremental tracker: retention, the cached view, the monotonic axis.

use super::synth::Pool;
use super::{Retained, TrackOptions, Tracker};
use crate::source::Tick;

fn run(pool: Pool, opts: TrackOptions, mut each: impl FnMut(usize, &Tracker)) -> Tracker {
    let mut tr = Tracker::new(opts, pool.dt);
    for (k, t) in pool.ticks().enumerate() {
        tr.feed(&t);
        each(k, &tr);
    }
    tr
}

const CHURN: Pool = Pool {
    ticks: 4_000,
    workers: 2_000,
    lifetime: 8,
    leak: false,
    dt: 1.0,
};

#[test]
fn issue10_retention_keeps_a_respawning_pool_within_a_fixed_budget() {
    let opts = TrackOptions::default();
    let keep = opts.keep_exited;
    let mut at_tenth: Option<Retained> = None;
    let mut most = Retained {
        processes: 0,
        groups: 0,
        rollups: 0,
        folded_processes: 0,
        folded_groups: 0,
        folded_entries: 0,
    };
    let tr = run(CHURN, opts, |k, tr| {
        let r = tr.retained();
        most.processes = most.processes.max(r.processes);
        most.groups = most.groups.max(r.groups);
        most.rollups = most.rollups.max(r.rollups);
        most.folded_entries = most.folded_entries.max(r.folded_entries);
        if k + 1 == CHURN.ticks / 10 {
            at_tenth = Some(r);
        }
    });
    let at_tenth = at_tenth.expect("a tenth of the run");
    // The master, the workers alive at once (a lifetime over the spawn spacing, plus one),
    // and the exited ones kept whole.
    let live = CHURN.lifetime.div_ceil(CHURN.ticks / CHURN.workers) + 1;
    assert!(
        most.processes <= 1 + live + keep,
        "processes held: {most:?} (bound {})",
        1 + live + keep
    );
    assert!(most.groups <= 4 * most.processes, "{most:?}");
    assert_eq!(
        most.rollups, at_tenth.rollups,
        "ten times the ticks, the same roll-ups"
    );
    assert_eq!(tr.retained().processes, at_tenth.processes);
    let end = tr.retained();
    let every = CHURN.ticks / CHURN.workers;
    let exited = (0..CHURN.workers)
        .filter(|i| i * every + CHURN.lifetime < CHURN.ticks)
        .count();
    assert_eq!(end.folded_processes, (exited - keep) as u64, "{end:?}");
    // The folded workers still count: every worker is in its roll-ups, with all its opens.
    let r = tr.report();
    assert_eq!(r.folded_processes, end.folded_processes);
    assert_eq!(r.processes.len(), 1 + keep + (CHURN.workers - exited));
    // What folded members left: per roll-up and bucket, the members alive around it (those
    // across a bucket boundary keep an entry per bucket they span), however many were folded.
    let per_rollup = (super::series::MAX_BUCKETS + 2) * (live + 2);
    assert!(most.folded_entries <= most.rollups * per_rollup, "{most:?}");
    let log = r
        .rollup
        .iter()
        .find(|x| x.key == "/var/log/pool/worker.log")
        .expect("the workers' log roll-up");
    assert_eq!(log.pids.len(), CHURN.workers);
    assert_eq!(log.counts.end, (CHURN.workers - exited) as u64);
    let churn = r
        .rollup
        .iter()
        .find(|x| x.key == "/tmp/work-*.tmp")
        .expect("the churn roll-up");
    // Each worker opened a new temp file on every tick it lived after its first.
    let opens: usize = (0..CHURN.workers)
        .map(|i| CHURN.lifetime.min(CHURN.ticks - i * every) - 1)
        .sum();
    assert_eq!(churn.counts.opened, opens as u64);
    assert!(!r.leaking, "a healthy pool does not leak: {:?}", r.rollup);
}

#[test]
fn issue10_folded_workers_still_show_a_leak_masked_by_respawns() {
    let pool = Pool {
        ticks: 900,
        workers: 150,
        lifetime: 8,
        leak: true,
        dt: 0.5,
    };
    let whole = run(
        pool,
        TrackOptions {
            keep_exited: usize::MAX,
            ..TrackOptions::default()
        },
        |_, _| {},
    )
    .report();
    let folded_tr = run(
        pool,
        TrackOptions {
            keep_exited: 2,
            ..TrackOptions::default()
        },
        |_, _| {},
    );
    assert!(folded_tr.retained().folded_processes >= 140);
    let folded = folded_tr.report();
    let find = |r: &super::Report| {
        r.rollup
            .iter()
            .find(|x| x.key == "/srv/upload-*.pdf")
            .cloned()
            .expect("the uploads roll-up")
    };
    let (a, b) = (find(&whole), find(&folded));
    assert!(a.counts.leaking && a.masked_by_respawn, "{a:?}");
    assert!(b.counts.leaking && b.masked_by_respawn, "{b:?}");
    assert_eq!(a.leaking_members, b.leaking_members);
    assert_eq!(a.pids, b.pids);
    assert_eq!(
        (a.counts.opened, a.counts.closed, a.counts.survivors),
        (b.counts.opened, b.counts.closed, b.counts.survivors)
    );
    assert_eq!(
        (a.counts.end, a.counts.start),
        (b.counts.end, b.counts.start)
    );
    // The live sum, compacted past 512 ticks, is what whole members give.
    assert_eq!(a.series, b.series);
    assert!((a.counts.rate_per_sec - b.counts.rate_per_sec).abs() < 1e-9);
    assert_eq!(a.counts.peak, b.counts.peak);
    let rel = |x: f64, y: f64| (x - y).abs() / x.abs().max(1e-9);
    assert!(
        rel(
            a.member_rate_per_sec.unwrap_or(0.0),
            b.member_rate_per_sec.unwrap_or(0.0)
        ) < 1e-9
    );
}

#[test]
fn issue10_view_judges_only_what_changed_and_matches_the_report() {
    let pool = Pool {
        ticks: 300,
        workers: 30,
        lifetime: 12,
        leak: true,
        dt: 1.0,
    };
    let mut checked = 0;
    run(pool, TrackOptions::default(), |k, tr| {
        let v = tr.view();
        let changed = v.changed().len();
        // What this tick's verdicts cost: the groups that changed, and a slice of the others.
        let slice = tr.n_groups.div_ceil(super::REJUDGE_TICKS) + 1;
        assert!(
            tr.judged_last_tick <= changed + slice,
            "tick {k}: judged {} groups, {changed} changed, slice {slice}",
            tr.judged_last_tick
        );
        // Every group that changed this tick has the verdict the report gives it.
        let r = tr.report();
        for id in v.changed() {
            let Some(g) = v.group(*id) else { continue };
            let rg = r
                .groups
                .iter()
                .find(|x| x.pid == g.pid() && x.key == g.key() && x.kind == g.kind())
                .expect("in the report");
            assert_eq!(
                rg.counts.leaking,
                g.verdict().leaking,
                "tick {k} {}",
                g.key()
            );
            assert_eq!(rg.counts.opened, g.opened());
            assert_eq!(rg.counts.closed, g.closed());
            assert_eq!(rg.counts.end, g.count());
            checked += 1;
        }
        for g in v.leaking() {
            assert!(g.verdict().leaking);
        }
        if k == pool.ticks - 1 {
            let tl = v
                .group(v.changed()[0])
                .map(|g| g.timeline())
                .unwrap_or_default();
            assert!(!tl.is_empty() && tl.iter().all(|(t, _)| *t >= 1_700_000_000.0));
        }
    });
    assert!(checked > 500, "{checked}");
}

#[test]
fn issue10_the_master_unchanged_is_not_judged_every_tick() {
    // Only the master: one group, never changing after the first tick.
    let pool = Pool {
        ticks: 200,
        workers: 0,
        lifetime: 1,
        leak: false,
        dt: 1.0,
    };
    let mut judged = 0;
    run(pool, TrackOptions::default(), |k, tr| {
        if k > 0 {
            assert!(tr.view().changed().is_empty());
        }
        judged += tr.judged_last_tick;
    });
    // Judged on the slow cadence: a handful of times, not 200.
    assert!(judged <= 200 / super::REJUDGE_TICKS + 2, "{judged}");
    assert!(
        judged >= 200 / super::REJUDGE_TICKS,
        "still judged now and then: {judged}"
    );
}

/// A process whose group grows by one per monotonic second while the wall clock is set back
/// an hour midway.
fn stepped(mono: bool) -> Vec<Tick> {
    use crate::diff::diff;
    use crate::snapshot::{Detail, FdEntry, FdLimit, FileDetail, SNAPSHOT_SCHEMA, Snapshot};
    use crate::source::Event;
    use std::sync::Arc;
    let mut out = Vec::new();
    let mut prev: Option<Snapshot> = None;
    for k in 0..40usize {
        let wall = 1_700_000_000.0 + k as f64 - if k >= 20 { 3600.0 } else { 0.0 };
        let fds = (0..3 + k)
            .map(|i| {
                Arc::new(FdEntry {
                    fd: i as i32,
                    target: format!("/srv/upload-{i}.pdf"),
                    target_hex: None,
                    detail: Detail::File(FileDetail {
                        path: format!("/srv/upload-{i}.pdf"),
                        ..FileDetail::default()
                    }),
                })
            })
            .collect();
        let s = Snapshot {
            schema: SNAPSHOT_SCHEMA.to_owned(),
            pid: 7,
            comm: "app".into(),
            cmdline: vec![],
            start_time: 1,
            taken_at: wall,
            fd_limit: FdLimit::default(),
            fds,
            errors: vec![],
        };
        let ev = match prev.replace(s.clone()) {
            None => Event::First(s),
            Some(p) => Event::Update {
                delta: diff(&p.fds, &s.fds),
                snapshot: s,
            },
        };
        out.push(Tick {
            t: wall,
            events: vec![ev],
            mono: mono.then_some(k as f64),
        });
    }
    out
}

#[test]
fn issue10_slopes_follow_the_monotonic_clock_when_the_wall_clock_steps() {
    let rate = |ticks: &[Tick]| {
        let mut tr = Tracker::new(TrackOptions::default(), 1.0);
        ticks.iter().for_each(|t| tr.feed(t));
        let r = tr.report();
        (r.groups[0].counts.rate_per_sec, r.groups[0].counts.leaking)
    };
    let (mono_rate, mono_leak) = rate(&stepped(true));
    assert!((mono_rate - 1.0).abs() < 1e-9, "{mono_rate}");
    assert!(mono_leak);
    // Without monotonic times (an older recording) the step is in the slope.
    let (wall_rate, _) = rate(&stepped(false));
    assert!((wall_rate - 1.0).abs() > 0.1, "{wall_rate}");
}

#[test]
fn issue10_recordings_carry_the_monotonic_time_and_older_ones_read_without_it() {
    use crate::source::recorder::Recorder;
    use crate::source::recording::RecordingSource;
    let ticks = stepped(true);
    let mut buf = Vec::new();
    {
        let mut rec = Recorder::new(&mut buf, "mem", 1.0, ticks[0].t).expect("recorder");
        ticks.iter().for_each(|t| rec.tick(t).expect("write"));
    }
    let text = String::from_utf8(buf.clone()).expect("utf-8");
    assert!(
        text.lines()
            .nth(2)
            .is_some_and(|l| l.contains("\"mono\":1.0")),
        "{text}"
    );
    let mut src = RecordingSource::new("mem", std::io::Cursor::new(&buf)).expect("header");
    let mut back = Vec::new();
    while let Some(t) = src.next_tick().expect("tick") {
        back.push(t.mono);
    }
    assert_eq!(back, ticks.iter().map(|t| t.mono).collect::<Vec<_>>());
    // An older recording: the same lines without the field.
    let old: String = text
        .lines()
        .map(|l| match l.find(",\"mono\":") {
            Some(i) => format!("{}}}", &l[..i]),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut src =
        RecordingSource::new("old", std::io::Cursor::new(old.as_bytes())).expect("header");
    let mut n = 0;
    while let Some(t) = src.next_tick().expect("tick") {
        assert_eq!(t.mono, None);
        n += 1;
    }
    assert_eq!(n, ticks.len());
}
