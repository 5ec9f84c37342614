//! What live verdicts cost: per tick of a real watch, the tick itself (snapshot, diff, tracker
//! update) against the tracker's full report that the live lines compute to learn verdicts.
//!
//! `live_cost PID INTERVAL_MS COUNT` prints medians as JSON on stderr.
#![allow(clippy::unwrap_used)]

use fdiff_core::source::live::LiveSource;
use fdiff_core::source::select::Selector;
use fdiff_core::track::feed;
use fdiff_core::track::{TrackOptions, Tracker};
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
    let mut tracker = Tracker::new(TrackOptions::default(), interval.as_secs_f64());
    let (mut ticks, mut reports) = (Vec::new(), Vec::new());
    let mut groups = 0;
    let mut next = Instant::now();
    while ticks.len() < count {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += interval;
        let t = Instant::now();
        let tick = source.next_tick().unwrap();
        feed(&mut tracker, &tick);
        ticks.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let r = std::hint::black_box(tracker.report());
        reports.push(t.elapsed().as_secs_f64() * 1e3);
        groups = r.groups.len();
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (t, r) = (med(&mut ticks), med(&mut reports));
    eprintln!(
        "{{\"ticks\":{count},\"groups\":{groups},\"median_tick_ms\":{t:.3},\"median_report_ms\":{r:.3},\"report_per_tick\":{:.3}}}",
        r / t
    );
}
