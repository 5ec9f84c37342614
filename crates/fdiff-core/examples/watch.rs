//! Watch a process for 10 seconds and print the groups of fds it leaks: the core's public API
//! from a pid to a verdict, with no CLI around it.
//!
//! `cargo run -p fdiff-core --example watch -- PID [SECONDS]`

use fdiff_core::pipeline::{self, NoControl, Plan};
use fdiff_core::source::live::LiveSource;
use fdiff_core::source::select::Selector;
use fdiff_core::track::{TrackOptions, Tracker};
use fdiff_core::util::escape_control;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let pid: i32 = args.next().ok_or("usage: watch PID [SECONDS]")?.parse()?;
    let secs: u64 = args.next().map_or(Ok(10), |s| s.parse())?;

    let mut source = LiveSource::new(Selector {
        pids: vec![pid],
        ..Selector::default()
    });
    source.start()?;
    let plan = Plan {
        interval: Duration::from_millis(250),
        duration: Some(Duration::from_secs(secs)),
        count: None,
        keep_waiting: false,
    };
    let tracker = Tracker::new(TrackOptions::default(), plan.interval.as_secs_f64());
    // No observers: only the verdict at the end is wanted.
    let run = pipeline::run(&mut source, &plan, tracker, &mut [], &mut NoControl)?;

    let report = run.tracker.report();
    for g in report.groups.iter().filter(|g| g.counts.leaking) {
        let c = &g.counts;
        // Keys come from outside (file names): escaped, they cannot move the cursor.
        let key = escape_control(&g.key);
        println!(
            "LEAK pid {} {} {key}: {} -> {} fds, {:+.1}/s",
            g.pid, g.kind, c.start, c.end, c.rate_per_sec
        );
    }
    if !report.leaking {
        println!("no leak in pid {pid} over {secs} s");
    }
    Ok(())
}
