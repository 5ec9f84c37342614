//! The watch loop: tick after tick from a live source into the tracker, the recording and the
//! live lines, until a duration, a count, a signal or the processes' exit ends it.

use super::output;
use super::signals::Stop;
use crate::config::{Analysis, Timing};
use crate::error::Error;
use crate::report::Format;
use crate::report::live::LiveLines;
use crate::report::record::Recorder;
use crate::source::live::{LiveSource, now_secs};
use crate::source::{Event, Tick};
use crate::track::{Report, Tracker};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Feed one tick to the tracker: the one step live watching and offline analysis share.
pub fn feed(tracker: &mut Tracker, tick: &Tick) {
    tracker.begin_tick(tick.t);
    for ev in &tick.events {
        match ev {
            Event::First(s) => tracker.first(s),
            Event::Update { snapshot, delta } => tracker.update(snapshot, delta),
            Event::Exited { id, at } => tracker.exited(*id, *at),
        }
    }
    tracker.end_tick();
}

/// Why a watch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Duration,
    Count,
    Signal(i32),
    /// Every watched process exited.
    Exited,
    /// The caller's own condition (the command of `fdiff run` exited).
    Caller,
}

pub struct WatchOptions {
    pub timing: Timing,
    pub analysis: Analysis,
    pub record: Option<PathBuf>,
    /// Keep going when no process is left (more may match later).
    pub keep_waiting: bool,
}

/// Where a watch's live lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveTo {
    Nowhere,
    Stdout,
    Stderr,
}

impl LiveTo {
    /// Live lines share stdout with a table report, but never with a JSON one.
    pub fn beside(format: Format, quiet: bool) -> LiveTo {
        match (quiet, format) {
            (true, _) => LiveTo::Nowhere,
            (false, Format::Json) => LiveTo::Stderr,
            (false, Format::Table) => LiveTo::Stdout,
        }
    }
}

/// [`watch`] with its live lines sent to `to`, colored as that stream allows.
pub fn watch_to(
    source: &mut LiveSource,
    opts: &WatchOptions,
    to: LiveTo,
    stop: &Stop,
    done: impl FnMut() -> bool,
) -> Result<(Report, Ended), Error> {
    match to {
        LiveTo::Nowhere => watch::<std::io::Stderr>(source, opts, None, stop, done),
        LiveTo::Stderr => {
            let mut live = LiveLines::new(
                std::io::stderr(),
                output::stderr_color(),
                output::screen_lines(false),
            );
            watch(source, opts, Some(&mut live), stop, done)
        }
        LiveTo::Stdout => {
            let mut live = LiveLines::new(
                std::io::stdout(),
                output::stdout_color(),
                output::screen_lines(true),
            );
            watch(source, opts, Some(&mut live), stop, done)
        }
    }
}

/// Run the watch. `live` gets the per-tick lines (None with --quiet). `done` is asked after
/// every tick whether the caller wants to stop.
pub fn watch<W: Write>(
    source: &mut LiveSource,
    opts: &WatchOptions,
    mut live: Option<&mut LiveLines<W>>,
    stop: &Stop,
    mut done: impl FnMut() -> bool,
) -> Result<(Report, Ended), Error> {
    let interval = opts.timing.interval;
    let mut tracker = Tracker::new(opts.analysis.track.clone(), interval.as_secs_f64());
    let mut recorder = match &opts.record {
        Some(p) => Some(Recorder::create(
            &p.to_string_lossy(),
            interval.as_secs_f64(),
            now_secs(),
        )?),
        None => None,
    };
    let start = Instant::now();
    let mut n: u64 = 0;
    let ended = loop {
        let tick = source.next_tick();
        if let Some(e) = source.fatal.take() {
            return Err(e);
        }
        for w in source.warnings.drain(..) {
            output::warn(&w);
        }
        feed(&mut tracker, &tick);
        if let Some(r) = recorder.as_mut() {
            r.tick(&tick)?;
        }
        if let Some(l) = live.as_deref_mut() {
            // Live lines are a courtesy: a closed terminal must not end the watch.
            let _ = l.tick(&tick, &tracker);
        }
        n += 1;
        if let Some(s) = stop.signal() {
            break Ended::Signal(s);
        }
        if done() {
            break Ended::Caller;
        }
        if opts.timing.count.is_some_and(|c| n >= c) {
            break Ended::Count;
        }
        if opts
            .timing
            .duration
            .is_some_and(|d| start.elapsed() + interval / 100 >= d)
        {
            break Ended::Duration;
        }
        if source.live() == 0 && !opts.keep_waiting {
            break Ended::Exited;
        }
        // Ticks keep to a fixed grid; a tick that overran skips the slots it missed.
        let k = (start.elapsed().as_nanos() / interval.as_nanos().max(1)) as u32 + 1;
        let mut deadline = start + interval * k;
        if let Some(d) = opts.timing.duration {
            deadline = deadline.min(start + d);
        }
        stop.sleep_until(deadline);
        if let Some(s) = stop.signal() {
            break Ended::Signal(s);
        }
    };
    Ok((tracker.report(), ended))
}
