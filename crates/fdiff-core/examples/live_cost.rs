//! What live verdicts cost: per tick of a real watch, the tick itself (snapshot, diff, tracker
//! update with its cached verdicts) against the tracker's full report (what the live lines
//! built to learn verdicts before issue 10) and against reading the leaking groups and
//! roll-ups from the tracker's view (what they read now).
//!
//! `live_cost PID INTERVAL_MS COUNT [target]` prints medians as JSON on stderr; `target`
//! groups by exact target, so every fd is a group of its own.
#![allow(clippy::unwrap_used)]

use fdiff_core::source::live::LiveSource;
use fdiff_core::source::select::Selector;
use fdiff_core::track::{GroupBy, TrackOptions, Tracker};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: live_cost PID INTERVAL_MS COUNT");
        std::process::exit(2);
    }
    let pid: i32 = args[0].parse().unwrap();
    let interval = Duration::from_millis(args[1].parse().unwrap());
    let count: usize = args[2].parse().unwrap();
    let mut source = LiveSource::new(Selector {
        pids: vec![pid],
        ..Selector::default()
    });
    source.start().unwrap();
    let opts = TrackOptions {
        group_by: if args.get(3).is_some_and(|a| a == "target") {
            GroupBy::Target
        } else {
            GroupBy::Key
        },
        ..TrackOptions::default()
    };
    let mut tracker = Tracker::new(opts, interval.as_secs_f64());
    let (mut ticks, mut reports, mut views) = (Vec::new(), Vec::new(), Vec::new());
    let mut groups = 0;
    let mut next = Instant::now();
    while ticks.len() < count {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += interval;
        let t = Instant::now();
        let tick = source.next_tick().unwrap();
        tracker.feed(&tick);
        ticks.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let r = std::hint::black_box(tracker.report());
        reports.push(t.elapsed().as_secs_f64() * 1e3);
        groups = r.groups.len();
        let t = Instant::now();
        let v = tracker.view();
        let n = v.leaking().map(|g| g.verdict().rate_per_sec).sum::<f64>()
            + v.leaking_rollups()
                .map(|r| r.report().counts.rate_per_sec)
                .sum::<f64>();
        std::hint::black_box(n);
        views.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (t, r, v) = (med(&mut ticks), med(&mut reports), med(&mut views));
    eprintln!(
        "{{\"ticks\":{count},\"groups\":{groups},\"median_tick_ms\":{t:.3},\"median_report_ms\":{r:.3},\"median_view_ms\":{v:.4},\"report_per_tick\":{:.3}}}",
        r / t
    );
}
