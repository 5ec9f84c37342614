//! The floor for scripts/bench.sh: the least any fd lister can do, as a process of its own.
//!
//! For every PID, list `/proc/PID/fd` and readlink every entry (rustix `Dir` + `readlinkat_raw`,
//! the primitives fdiff uses; the same loop as the floor in `benches/snapshot.rs`).
//!
//! * `floor PID...` — one pass, prints the number of links read. Timed as a whole process, it
//!   is the floor for `fdiff snapshot`, `lsof -p` and `lsfd -p` (same exec and startup costs).
//! * `floor --repeat K PID...` — K passes in this process; prints
//!   `{"fds":N,"passes":K,"median_ms":X,"min_ms":Y}` (one pass covers every PID), the per-tick
//!   floor of a watch over those processes.
//! * `floor --interval MS PID` — a bare readlink watcher: one pass every MS milliseconds
//!   (deadlines, like a watch) until the process is gone; prints `{"ticks":T}` on stderr. The
//!   control for the watch-cost experiment at short intervals.
#![allow(clippy::unwrap_used)]

use rustix::fs::{Dir, Mode, OFlags};
use std::time::{Duration, Instant};

fn main() {
    let mut repeat: Option<usize> = None;
    let mut interval: Option<Duration> = None;
    let mut pids: Vec<i32> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--repeat" => repeat = args.next().and_then(|v| v.parse().ok()),
            "--interval" => {
                interval = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .map(Duration::from_millis)
            }
            p => match p.parse() {
                Ok(pid) => pids.push(pid),
                Err(_) => usage(),
            },
        }
    }
    if pids.is_empty() {
        usage();
    }
    let mut buf = vec![0u8; 4097];

    if let Some(interval) = interval {
        let mut ticks = 0u64;
        let mut next = Instant::now();
        loop {
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            next += interval;
            if pids.iter().any(|&p| pass(p, &mut buf).is_none()) {
                break;
            }
            ticks += 1;
        }
        eprintln!("{{\"ticks\":{ticks}}}");
        return;
    }

    let Some(k) = repeat else {
        let n: usize = pids.iter().map(|&p| pass(p, &mut buf).unwrap_or(0)).sum();
        println!("{n}");
        return;
    };
    // One untimed pass warms the dentry cache, as the bench does.
    let fds: usize = pids.iter().map(|&p| pass(p, &mut buf).unwrap_or(0)).sum();
    let mut took: Vec<f64> = (0..k.max(1))
        .map(|_| {
            let t = Instant::now();
            for &p in &pids {
                pass(p, &mut buf);
            }
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    took.sort_by(f64::total_cmp);
    let median = if took.len() % 2 == 1 {
        took[took.len() / 2]
    } else {
        (took[took.len() / 2 - 1] + took[took.len() / 2]) / 2.0
    };
    println!(
        "{{\"fds\":{fds},\"passes\":{},\"median_ms\":{median:.3},\"min_ms\":{:.3}}}",
        took.len(),
        took[0]
    );
}

fn usage() -> ! {
    eprintln!("usage: floor [--repeat K | --interval MS] PID...");
    std::process::exit(2);
}

/// One readdir+readlink pass over /proc/PID/fd; None when the process is gone.
fn pass(pid: i32, buf: &mut [u8]) -> Option<usize> {
    let dirfd = rustix::fs::open(
        format!("/proc/{pid}/fd").as_str(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut dir = Dir::new(dirfd).ok()?;
    let mut count = 0;
    let mut bytes = 0;
    while let Some(entry) = dir.read() {
        let Ok(entry) = entry else { break };
        let name = entry.file_name();
        if name.to_bytes().first() == Some(&b'.') {
            continue;
        }
        if let Ok(n) = rustix::fs::readlinkat_raw(dir.fd().unwrap(), name, &mut *buf) {
            bytes += n;
            count += 1;
        }
    }
    std::hint::black_box(bytes);
    Some(count)
}
