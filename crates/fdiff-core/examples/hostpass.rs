//! The cheap host pass of `fdiff serve` alone, for scripts/bench_serve.sh: `hostpass REPS`
//! runs `HostCounter::pass` over every process REPS times and prints the median pass in
//! milliseconds, the processes and the fds counted.

use fdiff_core::source::host::{HostCounter, Scope};
use std::time::Instant;

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(11)
        .max(1);
    let mut h = HostCounter::new(Scope::All);
    let mut times = Vec::with_capacity(reps);
    let (mut procs, mut fds) = (0, 0);
    for _ in 0..reps {
        let t0 = Instant::now();
        let pass = h.pass();
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        procs = pass.procs.len();
        fds = pass.procs.iter().map(|c| c.fds).sum::<u64>();
    }
    times.sort_by(f64::total_cmp);
    println!("{:.3} {procs} {fds}", times[reps / 2]);
}
