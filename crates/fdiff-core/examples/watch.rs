//! Watch a process for 10 seconds and print the groups of fds it leaks: the core's public API
//! from a pid to a verdict, with no CLI around it.
//!
//! `cargo run -p fdiff-core --example watch -- PID [SECONDS]`

use fdiff_core::source::live::LiveSource;
use fdiff_core::source::select::Selector;
use fdiff_core::track::{TrackOptions, Tracker, feed};
use fdiff_core::util::escape_control;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let pid: i32 = args.next().ok_or("usage: watch PID [SECONDS]")?.parse()?;
    let secs: u64 = args.next().map_or(Ok(10), |s| s.parse())?;
    let interval = Duration::from_millis(250);

    let mut source = LiveSource::new(Selector {
        pids: vec![pid],
        ..Selector::default()
    });
    source.start()?;
    let mut tracker = Tracker::new(TrackOptions::default(), interval.as_secs_f64());
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end && source.live() > 0 {
        feed(&mut tracker, &source.next_tick()?);
        std::thread::sleep(interval);
    }

    let report = tracker.report();
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
