//! A watch: the core's run loop over a live source, with the binary's observers (the
//! recorder, live lines, warnings on stderr) assembled from the command line.

use super::observers::{Control, Warnings};
use super::output;
use super::signals::Stop;
use crate::config::{Analysis, Timing};
use crate::error::Error;
use crate::report::Format;
use crate::report::live::LiveLines;
use crate::report::record::Recorder;
use crate::source::live::{LiveSource, now_secs};
use crate::track::{ProcessReport, Report};
use fdiff_core::pipeline::{self, Observer, Plan};
use std::path::PathBuf;
use std::time::Duration;

/// Feed one tick to the tracker: the one step live watching and offline analysis share.
pub use fdiff_core::track::feed;

/// Why a watch ended.
pub use fdiff_core::pipeline::Ended;

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
    /// The full-screen live view on stdout (a terminal); `redraw_all` under `fdiff run`,
    /// whose command writes to the same terminal.
    Tui {
        redraw_all: bool,
    },
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

/// Watch `source`: the recording (with --record), live lines sent to `to` through a queue
/// that drops lines rather than stall the watch, and warnings on stderr that never block it.
/// `done` is asked after every tick whether the caller wants to stop.
pub fn watch_to(
    source: &mut LiveSource,
    opts: &WatchOptions,
    to: LiveTo,
    stop: &Stop,
    done: impl FnMut() -> bool,
) -> Result<Watched, Error> {
    watch_to_with(source, opts, to, stop, done, None)
}

/// [`watch_to`] with one more observer (run's `--stacks`), told of each tick last.
pub fn watch_to_with(
    source: &mut LiveSource,
    opts: &WatchOptions,
    to: LiveTo,
    stop: &Stop,
    done: impl FnMut() -> bool,
    extra: Option<&mut dyn Observer>,
) -> Result<Watched, Error> {
    let interval = opts.timing.interval;
    let mut recorder = match &opts.record {
        Some(p) => Some(Recorder::create(p, interval.as_secs_f64(), now_secs())?),
        None => None,
    };
    let mut tui = match to {
        LiveTo::Tui { redraw_all } => {
            // A terminal that cannot be taken over (no termios) still gets live lines.
            match crate::tui::Tui::start(interval.as_secs_f64(), output::stdout_color(), redraw_all)
            {
                Ok(t) => Some(t),
                Err(e) => {
                    output::warn(&format!("no live view ({e}): live lines instead"));
                    None
                }
            }
        }
        _ => None,
    };
    let to = match (to, &tui) {
        (LiveTo::Tui { .. }, None) => LiveTo::Stdout,
        _ => to,
    };
    let stream = match to {
        LiveTo::Nowhere | LiveTo::Tui { .. } => None,
        LiveTo::Stdout => Some((output::Stream::Stdout, output::stdout_color())),
        LiveTo::Stderr => Some((output::Stream::Stderr, output::stderr_color())),
    };
    let mut live = stream.map(|(stream, color)| {
        LiveLines::new(
            output::LiveQueue::start(stream, output::LIVE_QUEUE_LINES),
            color,
            output::screen_lines(stream == output::Stream::Stdout),
            opts.verbose,
        )
    });
    let mut warnings = Warnings::default();
    // The recorder first: a tick it failed to write is not shown as if it were recorded.
    let mut observers: Vec<&mut dyn Observer> = Vec::with_capacity(3);
    if let Some(r) = recorder.as_mut() {
        observers.push(r);
    }
    if let Some(l) = live.as_mut() {
        observers.push(l);
    }
    // Warnings on stderr would scribble over the live view: it shows them, and they are
    // printed once it is gone.
    match tui.as_mut() {
        Some(t) => observers.push(t),
        None => observers.push(&mut warnings),
    }
    if let Some(x) = extra {
        observers.push(x);
    }
    let res = watch(source, opts, &mut observers, stop, done);
    drop(observers);
    if let Some(t) = tui {
        for w in t.close() {
            output::warn(&w);
        }
    }
    if let Some(l) = live {
        let dropped = l.into_sink().finish(LIVE_DRAIN);
        if dropped > 0 && output::stderr_writable() {
            output::warn(&format!(
                "live output is not being read; dropped {} lines",
                crate::report::human::count(dropped)
            ));
        }
    }
    res
}

/// Run the watch with these observers.
pub fn watch(
    source: &mut LiveSource,
    opts: &WatchOptions,
    observers: &mut [&mut dyn Observer],
    stop: &Stop,
    done: impl FnMut() -> bool,
) -> Result<Watched, Error> {
    let plan = Plan {
        interval: opts.timing.interval,
        duration: opts.timing.duration,
        count: opts.timing.count,
        keep_waiting: opts.keep_waiting,
    };
    let tracker = pipeline::tracker(
        opts.analysis.track.clone(),
        opts.timing.interval.as_secs_f64(),
    );
    let mut control = Control { stop, done };
    let run = pipeline::run(source, &plan, tracker, observers, &mut control)?;
    Ok(Watched {
        report: run.tracker.report(),
        ended: run.ended,
        failed: run.failed.map(Error::from),
    })
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
