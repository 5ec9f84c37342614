//! Target for the watch-cost experiment: holds many fds, then times a tight open/close loop.
//!
//! `openclose [--hold N] [--iters K] [--gate]` opens N fds (default 10,000) so a watcher has a
//! realistic table to walk, prints `{"ready":true,"pid":P}`, waits for one stdin line when
//! `--gate` is given (so a watcher or strace can attach first), then prints
//! `{"iters":K,"ns_per_op":X}`. One op is one open(2) plus one close(2) of the same file.
#![allow(clippy::unwrap_used)]

use rustix::fs::{Mode, OFlags};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Instant;

/// Distinct files behind the held fds: enough that a watcher's decoding is not one cached
/// inode, few enough that creating them is quick.
const DISTINCT_FILES: usize = 100;

fn main() {
    let mut hold = 10_000usize;
    let mut iters = 1_000_000u64;
    let mut gate = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--hold" => hold = args.next().and_then(|v| v.parse().ok()).unwrap_or(hold),
            "--iters" => iters = args.next().and_then(|v| v.parse().ok()).unwrap_or(iters),
            "--gate" => gate = true,
            _ => {
                eprintln!("usage: openclose [--hold N] [--iters K] [--gate]");
                std::process::exit(2);
            }
        }
    }

    // The soft limit is often 1024; the held fds need the hard one.
    let mut lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    lim.current = lim.maximum;
    let _ = rustix::process::setrlimit(rustix::process::Resource::Nofile, lim);

    let dir = std::env::temp_dir().join(format!("fdiff-openclose-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files: Vec<PathBuf> = (0..DISTINCT_FILES)
        .map(|i| {
            let p = dir.join(format!("held-{i}.dat"));
            std::fs::write(&p, b"x").unwrap();
            p
        })
        .collect();
    let held: Vec<_> = (0..hold)
        .map(|i| {
            rustix::fs::open(
                &files[i % files.len()],
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .unwrap()
        })
        .collect();
    let target = dir.join("loop.dat");
    std::fs::write(&target, b"y").unwrap();
    let target_c = std::ffi::CString::new(target.as_os_str().as_encoded_bytes()).unwrap();

    let mut out = std::io::stdout().lock();
    writeln!(out, "{{\"ready\":true,\"pid\":{}}}", std::process::id()).unwrap();
    out.flush().unwrap();
    if gate {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
    }

    let t = Instant::now();
    for _ in 0..iters {
        let fd = rustix::fs::open(
            target_c.as_c_str(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        drop(fd);
    }
    let ns = t.elapsed().as_nanos() as f64 / iters.max(1) as f64;
    writeln!(out, "{{\"iters\":{iters},\"ns_per_op\":{ns:.1}}}").unwrap();
    out.flush().unwrap();

    drop(held);
    let _ = std::fs::remove_dir_all(&dir);
}
