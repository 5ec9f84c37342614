//! The library tick loop of a watch (reused LiveProc, last snapshot only, diff) at a fixed
//! interval, without the CLI's reporting: handy under `perf` to see a tick alone. scripts/bench.sh
//! uses the real `fdiff --pid` CLI.
//!
//! `watchloop PID INTERVAL_MS [COUNT]` ticks until COUNT ticks are done or the process is gone,
//! then prints `{"ticks":T,"median_tick_ms":X}` on stderr.
#![allow(clippy::unwrap_used)]

use fdiff_core::diff::diff;
use fdiff_core::snapshot::socket::SocketDecoder;
use fdiff_core::source::live::LiveProc;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: watchloop PID INTERVAL_MS [COUNT]");
        std::process::exit(2);
    }
    let pid: i32 = args[0].parse().unwrap();
    let interval = Duration::from_millis(args[1].parse().unwrap());
    let count: u64 = args.get(2).map_or(u64::MAX, |c| c.parse().unwrap());

    let mut proc = LiveProc::open(pid).unwrap();
    let mut sockets = SocketDecoder::new();
    let mut last = proc.snapshot(&[], &mut sockets).unwrap().fds;
    let mut took: Vec<f64> = Vec::new();
    // Deadlines, not sleeps after work, so the tick rate matches the interval as a CLI would.
    let mut next = Instant::now() + interval;
    while (took.len() as u64) < count {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += interval;
        let t = Instant::now();
        let Ok(s) = proc.snapshot(&last, &mut sockets) else {
            break;
        };
        std::hint::black_box(diff(&last, &s.fds));
        last = s.fds;
        took.push(t.elapsed().as_secs_f64() * 1e3);
    }
    took.sort_by(f64::total_cmp);
    let median = took.get(took.len() / 2).copied().unwrap_or(f64::NAN);
    eprintln!(
        "{{\"ticks\":{},\"median_tick_ms\":{median:.3}}}",
        took.len()
    );
}
