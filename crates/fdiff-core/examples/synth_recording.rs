//! Write a synthetic recording of a respawning pool, for measuring what `fdiff report` holds
//! over a long watch: `synth_recording OUT TICKS WORKERS [LIFETIME]` (one master and WORKERS
//! short-lived workers over TICKS ticks, each living LIFETIME ticks, default 8).
#![allow(clippy::unwrap_used)]

use fdiff_core::source::recorder::Recorder;
use fdiff_core::track::synth::Pool;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: synth_recording OUT TICKS WORKERS [LIFETIME]");
        std::process::exit(2);
    }
    let pool = Pool {
        ticks: args[1].parse().unwrap(),
        workers: args[2].parse().unwrap(),
        lifetime: args.get(3).map_or(8, |s| s.parse().unwrap()),
        leak: false,
        dt: 1.0,
    };
    let mut ticks = pool.ticks().peekable();
    let t0 = ticks.peek().map_or(0.0, |t| t.t);
    let mut rec = Recorder::create(std::path::Path::new(&args[0]), pool.dt, t0).unwrap();
    for t in ticks {
        rec.tick(&t).unwrap();
    }
}
