//! The watch loop: tick after tick from a live source into the tracker, the recording and the
//! live lines, until a duration, a count, a signal or the processes' exit ends it.

use super::output;
use super::signals::Stop;
use crate::config::{Analysis, Timing};
use crate::error::Error;
use crate::report::Format;
use crate::report::live::{LiveLines, Sink};
use crate::report::record::Recorder;
use crate::source::live::{LiveSource, now_secs};
use crate::source::{Event, Tick};
use crate::track::{ProcessReport, Report, Tracker};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Feed one tick to the tracker: the one step live watching and offline analysis share.
pub use fdiff_core::track::feed;

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
    /// The recording could not be written (a full disk): see [`Watched::failed`].
    RecordFailed,
}

pub struct WatchOptions {
    pub timing: Timing,
    pub analysis: Analysis,
    pub record: Option<PathBuf>,
    /// Keep going when no process is left (more may match later). A watch by name or with
    /// --children keeps looking anyway while a --duration or --count bounds it.
    pub keep_waiting: bool,
    /// Live lines fd by fd (`--verbose`) instead of per group.
    pub verbose: bool,
}

/// What a watch saw and why it ended.
pub struct Watched {
    pub report: Report,
    pub ended: Ended,
    /// The error that ended the watch early (the recording failed): the caller prints the
    /// report first, then this.
    pub failed: Option<Error>,
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

/// How long the end of a watch waits for queued live lines to be written before it gives
/// them up and goes on to the report.
const LIVE_DRAIN: Duration = Duration::from_millis(250);

/// [`watch`] with its live lines sent to `to`, colored as that stream allows, through a
/// queue that drops lines rather than stall the watch.
pub fn watch_to(
    source: &mut LiveSource,
    opts: &WatchOptions,
    to: LiveTo,
    stop: &Stop,
    done: impl FnMut() -> bool,
) -> Result<Watched, Error> {
    let (stream, color) = match to {
        LiveTo::Nowhere => {
            return watch::<Vec<String>>(source, opts, None, stop, done);
        }
        LiveTo::Stdout => (output::Stream::Stdout, output::stdout_color()),
        LiveTo::Stderr => (output::Stream::Stderr, output::stderr_color()),
    };
    let queue = output::LiveQueue::start(stream, output::LIVE_QUEUE_LINES);
    let mut live = LiveLines::new(
        queue,
        color,
        output::screen_lines(stream == output::Stream::Stdout),
        opts.verbose,
    );
    let res = watch(source, opts, Some(&mut live), stop, done);
    let dropped = live.into_sink().finish(LIVE_DRAIN);
    if dropped > 0 && output::stderr_writable() {
        output::warn(&format!(
            "live output is not being read; dropped {} lines",
            crate::report::human::count(dropped)
        ));
    }
    res
}

/// Run the watch. `live` gets the per-tick lines (None with --quiet). `done` is asked after
/// every tick whether the caller wants to stop.
pub fn watch<S: Sink>(
    source: &mut LiveSource,
    opts: &WatchOptions,
    mut live: Option<&mut LiveLines<S>>,
    stop: &Stop,
    mut done: impl FnMut() -> bool,
) -> Result<Watched, Error> {
    let interval = opts.timing.interval;
    let mut tracker = Tracker::new(opts.analysis.track.clone(), interval.as_secs_f64());
    let mut recorder = match &opts.record {
        Some(p) => Some(Recorder::create(p, interval.as_secs_f64(), now_secs())?),
        None => None,
    };
    let keep_waiting = opts.keep_waiting
        || (source.is_dynamic() && (opts.timing.duration.is_some() || opts.timing.count.is_some()));
    let start = Instant::now();
    let mut pace = Pace::default();
    let mut notes = output::Notes::default();
    let mut failed = None;
    let mut n: u64 = 0;
    // The caller's condition held (run's command exited): one more tick, at once, so the
    // report sees the exit instead of the process as it was before.
    let mut closing = false;
    let ended = loop {
        let tick_start = Instant::now();
        let tick = source.next_tick();
        if let Some(e) = source.fatal.take() {
            return Err(e.into());
        }
        for w in source.warnings.drain(..) {
            notes.warn(w);
        }
        notes.flush();
        feed(&mut tracker, &tick);
        if let Some(r) = recorder.as_mut() {
            if let Err(e) = r.tick(&tick) {
                // The watch ends as the recording does, but what it saw is still reported.
                failed = Some(e.into());
                break Ended::RecordFailed;
            }
        }
        if let Some(l) = live.as_deref_mut() {
            l.tick(&tick, &tracker);
        }
        n += 1;
        pace.tick(tick_start, interval, &tick, &mut notes);
        if closing {
            break Ended::Caller;
        }
        if let Some(s) = stop.signal() {
            break Ended::Signal(s);
        }
        if done() {
            closing = true;
            continue;
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
        if source.live() == 0 && !keep_waiting {
            if let Some(l) = live.as_deref_mut() {
                l.line("every watched process has exited: the watch ends");
            }
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
    pace.finish(interval, &mut notes);
    notes.flush();
    Ok(Watched {
        report: tracker.report(),
        ended,
        failed,
    })
}

/// Ticks taken slower than asked: said once, when it is clear.
#[derive(Default)]
struct Pace {
    first: Option<Instant>,
    last: Option<Instant>,
    ticks: u32,
    fds: usize,
    said: bool,
}

/// Intervals measured before judging the pace during the watch (a slower watch is judged at
/// its end), and how much slower than asked is "behind".
const PACE_TICKS: u32 = 5;
const PACE_SLACK: f64 = 1.5;

impl Pace {
    fn tick(&mut self, at: Instant, interval: Duration, tick: &Tick, notes: &mut output::Notes) {
        self.first.get_or_insert(at);
        self.last = Some(at);
        self.ticks += 1;
        self.fds = tick
            .events
            .iter()
            .map(|e| match e {
                Event::First(s) | Event::Update { snapshot: s, .. } => s.fds.len(),
                Event::Exited { .. } => 0,
            })
            .sum();
        if self.ticks > PACE_TICKS {
            self.judge(interval, notes);
        }
    }

    /// The end of the watch: a watch too slow to reach [`PACE_TICKS`] is judged on what it had.
    fn finish(&mut self, interval: Duration, notes: &mut output::Notes) {
        if self.ticks >= 3 {
            self.judge(interval, notes);
        }
    }

    fn judge(&mut self, interval: Duration, notes: &mut output::Notes) {
        let (Some(first), Some(last)) = (self.first, self.last) else {
            return;
        };
        if self.said || self.ticks < 2 {
            return;
        }
        let achieved = (last - first).as_secs_f64() / f64::from(self.ticks - 1);
        if achieved > interval.as_secs_f64() * PACE_SLACK {
            self.said = true;
            notes.warn(format!(
                "ticks fall behind: asked for every {}, achieved every {} over {} fds; \
                 try a longer --interval",
                interval_text(interval),
                interval_text(Duration::from_secs_f64(achieved)),
                crate::report::human::count(self.fds as u64)
            ));
        }
    }
}

/// 10ms, 250ms, 1.5s: as a user writes an interval.
fn interval_text(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{}ms", ms.round() as u64)
    } else {
        let s = format!("{:.2}", ms / 1000.0);
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// What /proc tells of a process at once (name, start, limit), for a command that may exit
/// before the first tick reads its fds. None when even that is gone.
pub fn first_look(pid: i32) -> Option<ProcessReport> {
    use crate::source::procinfo;
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let stat = procinfo::parse_stat(&stat)?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| procinfo::parse_cmdline(&c))
        .unwrap_or_default();
    let fd_limit = std::fs::read(format!("/proc/{pid}/limits"))
        .map(|l| procinfo::parse_fd_limit(&l))
        .unwrap_or_default();
    let now = now_secs();
    Some(ProcessReport {
        pid,
        comm: stat.comm,
        cmdline,
        start_time: stat.start_time,
        fd_limit,
        fds_start: 0,
        fds_end: 0,
        fds_peak: 0,
        first_seen: now,
        exited: true,
        exited_at: Some(now),
        leak_rate_per_sec: 0.0,
        eta_to_limit_secs: None,
        exited_at_fd_limit: false,
    })
}

/// A process no tick saw (it exited first) is still named in the report, exited, with no fds
/// counted: fdiff never read any.
pub fn name_unseen(report: &mut Report, p: Option<ProcessReport>) {
    let Some(mut p) = p else { return };
    if report.processes.iter().any(|q| q.pid == p.pid) {
        return;
    }
    if let Some(t) = report.ended_at {
        p.exited_at = Some(t);
    }
    report.processes.insert(0, p);
}
