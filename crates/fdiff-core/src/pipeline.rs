//! The one run loop of fdiff: ticks from a [`Source`] (live /proc or a recording) are fed to
//! the tracker and handed to a list of [`Observer`]s (live lines, the recorder, a dashboard,
//! an exporter), with warnings delivered to the same observers as they happen.
//!
//! Every command (`watch`, `run`, `demo`, `report`) is this loop with a different source and
//! different observers. The loop never blocks on an observer's output: an observer whose
//! writes can stall (a terminal nobody scrolls) queues them itself.

use crate::error::{Error, Result, Warning};
use crate::source::live::LiveSource;
use crate::source::recording::RecordingSource;
use crate::source::{Event, Tick};
use crate::track::{TrackOptions, Tracker};
use std::time::{Duration, Instant};

/// Where ticks come from.
pub trait Source {
    /// The next tick; `None` when the source has no more (the end of a recording).
    fn next_tick(&mut self) -> Result<Option<Tick>>;

    /// Move the warnings gathered while taking ticks into `out`. Called after every tick.
    fn take_warnings(&mut self, _out: &mut Vec<Warning>) {}

    /// Move the warnings that are only told at the end (a recording's summary of what it
    /// skipped) into `out`. Called once, when the loop ends.
    fn take_final_warnings(&mut self, out: &mut Vec<Warning>) {
        self.take_warnings(out);
    }

    /// Processes still watched, for a source that can tell (a live one): at 0 the watch
    /// ends unless the selection may match more later.
    fn live(&self) -> Option<usize> {
        None
    }

    /// Whether processes may join while the watch runs (a watch by name, or children).
    fn is_dynamic(&self) -> bool {
        false
    }

    /// Whether ticks are taken at the pace of the clock (live), so the loop sleeps between
    /// them; a recording is read as fast as it can be.
    fn paced(&self) -> bool {
        false
    }
}

impl Source for LiveSource {
    fn next_tick(&mut self) -> Result<Option<Tick>> {
        LiveSource::next_tick(self).map(Some)
    }

    fn take_warnings(&mut self, out: &mut Vec<Warning>) {
        out.append(&mut self.warnings);
    }

    fn live(&self) -> Option<usize> {
        Some(LiveSource::live(self))
    }

    fn is_dynamic(&self) -> bool {
        LiveSource::is_dynamic(self)
    }

    fn paced(&self) -> bool {
        true
    }
}

impl<R: std::io::BufRead> Source for RecordingSource<R> {
    fn next_tick(&mut self) -> Result<Option<Tick>> {
        RecordingSource::next_tick(self)
    }

    // A recording sums up what it skipped (gaps, cut strings) once, at the end.
    fn take_final_warnings(&mut self, out: &mut Vec<Warning>) {
        out.extend(
            RecordingSource::take_warnings(self)
                .into_iter()
                .map(|message| Warning::Input { message }),
        );
    }
}

/// A consumer of the pipeline: sees every tick after the tracker has taken it in.
pub trait Observer {
    /// One tick, with the tracker as of this tick. An error ends the run (the tracker's
    /// state so far is still returned, so what was seen can be reported).
    fn tick(&mut self, tick: &Tick, tracker: &Tracker) -> Result<()>;

    /// A warning, as it happens.
    fn warning(&mut self, _warning: &Warning) {}

    /// The run is over, for `ended`.
    fn finish(&mut self, _ended: Ended, _tracker: &Tracker) {}
}

/// The recorder is an observer like any other: it writes each tick as it comes.
impl<W: std::io::Write> Observer for crate::source::recorder::Recorder<W> {
    fn tick(&mut self, tick: &Tick, _tracker: &Tracker) -> Result<()> {
        crate::source::recorder::Recorder::tick(self, tick)
    }
}

/// What ends a run besides its plan: signals, and the caller's own condition.
pub trait Control {
    /// A signal asked the run to stop.
    fn signal(&self) -> Option<i32> {
        None
    }

    /// Sleep until `deadline`, or less when a signal comes.
    fn sleep_until(&self, deadline: Instant) {
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    }

    /// Asked after every tick: the caller's condition to stop (the command of `fdiff run`
    /// exited). When it holds, one more tick is taken at once, to see the exit.
    fn done(&mut self) -> bool {
        false
    }
}

/// A run with nothing but its plan to end it.
pub struct NoControl;

impl Control for NoControl {}

/// How a run goes.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Time between ticks of a paced source.
    pub interval: Duration,
    /// End after this long.
    pub duration: Option<Duration>,
    /// End after this many ticks.
    pub count: Option<u64>,
    /// Keep going when no process is left (more may match later). A dynamic source keeps
    /// looking anyway while a duration or a count bounds the run.
    pub keep_waiting: bool,
}

impl Plan {
    /// A run that ends when its source does (a recording).
    pub fn to_the_end() -> Plan {
        Plan {
            interval: Duration::from_secs(1),
            duration: None,
            count: None,
            keep_waiting: true,
        }
    }
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The plan's duration passed.
    Duration,
    /// The plan's count of ticks was taken.
    Count,
    /// This signal asked the run to stop ([`Control::signal`]).
    Signal(i32),
    /// Every watched process exited.
    Exited,
    /// The caller's own condition ([`Control::done`]).
    Caller,
    /// An observer failed (the recording could not be written): see [`Run::failed`].
    ObserverFailed,
    /// The source has no more ticks.
    EndOfInput,
}

/// What a run saw and why it ended.
pub struct Run {
    /// Everything the run saw, to report on.
    pub tracker: Tracker,
    /// Why it ended.
    pub ended: Ended,
    /// The observer's error that ended the run early: a caller reports what was seen first,
    /// then this.
    pub failed: Option<Error>,
    /// Ticks taken.
    pub ticks: u64,
}

/// A tracker for a run whose ticks come every `interval_secs`.
pub fn tracker(options: TrackOptions, interval_secs: f64) -> Tracker {
    Tracker::new(options, interval_secs)
}

/// Run the pipeline: tick after tick from `source` into `tracker` and then to every observer
/// in order, until the plan, a signal, the caller, an observer or the source ends it. A
/// source error (a process named by pid turned out unreadable) is returned as the error.
pub fn run<S: Source + ?Sized>(
    source: &mut S,
    plan: &Plan,
    mut tracker: Tracker,
    observers: &mut [&mut dyn Observer],
    control: &mut dyn Control,
) -> Result<Run> {
    let interval = plan.interval;
    let paced = source.paced();
    let keep_waiting = plan.keep_waiting
        || (source.is_dynamic() && (plan.duration.is_some() || plan.count.is_some()));
    let start = Instant::now();
    let mut pace = Pace::default();
    let mut warnings = Vec::new();
    let mut failed = None;
    let mut n: u64 = 0;
    // The caller's condition held: one more tick, at once, so the tracker sees the exit
    // instead of the process as it was before.
    let mut closing = false;
    let ended = loop {
        let tick_start = Instant::now();
        let Some(tick) = source.next_tick()? else {
            break Ended::EndOfInput;
        };
        source.take_warnings(&mut warnings);
        tell(observers, &mut warnings);
        crate::track::feed(&mut tracker, &tick);
        let mut failure = None;
        for o in observers.iter_mut() {
            if let Err(e) = o.tick(&tick, &tracker) {
                failure = Some(e);
                break;
            }
        }
        if let Some(e) = failure {
            failed = Some(e);
            break Ended::ObserverFailed;
        }
        n += 1;
        if paced {
            pace.tick(tick_start, interval, &tick, &mut warnings);
            tell(observers, &mut warnings);
        }
        if closing {
            break Ended::Caller;
        }
        if let Some(s) = control.signal() {
            break Ended::Signal(s);
        }
        if control.done() {
            closing = true;
            continue;
        }
        if plan.count.is_some_and(|c| n >= c) {
            break Ended::Count;
        }
        if plan
            .duration
            .is_some_and(|d| start.elapsed() + interval / 100 >= d)
        {
            break Ended::Duration;
        }
        if source.live() == Some(0) && !keep_waiting {
            break Ended::Exited;
        }
        if !paced {
            continue;
        }
        // Ticks keep to a fixed grid; a tick that overran skips the slots it missed.
        let k = (start.elapsed().as_nanos() / interval.as_nanos().max(1)) as u32 + 1;
        let mut deadline = start + interval * k;
        if let Some(d) = plan.duration {
            deadline = deadline.min(start + d);
        }
        control.sleep_until(deadline);
        if let Some(s) = control.signal() {
            break Ended::Signal(s);
        }
    };
    if paced {
        pace.finish(interval, &mut warnings);
    }
    source.take_final_warnings(&mut warnings);
    tell(observers, &mut warnings);
    for o in observers.iter_mut() {
        o.finish(ended, &tracker);
    }
    Ok(Run {
        tracker,
        ended,
        failed,
        ticks: n,
    })
}

fn tell(observers: &mut [&mut dyn Observer], warnings: &mut Vec<Warning>) {
    for w in warnings.drain(..) {
        for o in observers.iter_mut() {
            o.warning(&w);
        }
    }
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

/// Intervals measured before judging the pace during the run (a slower run is judged at its
/// end), and how much slower than asked is "behind".
const PACE_TICKS: u32 = 5;
const PACE_SLACK: f64 = 1.5;

impl Pace {
    fn tick(&mut self, at: Instant, interval: Duration, tick: &Tick, out: &mut Vec<Warning>) {
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
            self.judge(interval, out);
        }
    }

    /// The end of the run: a run too slow to reach [`PACE_TICKS`] is judged on what it had.
    fn finish(&mut self, interval: Duration, out: &mut Vec<Warning>) {
        if self.ticks >= 3 {
            self.judge(interval, out);
        }
    }

    fn judge(&mut self, interval: Duration, out: &mut Vec<Warning>) {
        let (Some(first), Some(last)) = (self.first, self.last) else {
            return;
        };
        if self.said || self.ticks < 2 {
            return;
        }
        let achieved = (last - first).as_secs_f64() / f64::from(self.ticks - 1);
        if achieved > interval.as_secs_f64() * PACE_SLACK {
            self.said = true;
            out.push(Warning::Behind {
                asked_secs: interval.as_secs_f64(),
                achieved_secs: achieved,
                fds: self.fds as u64,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{FdLimit, Snapshot};

    /// Ticks from a list, with a warning after the second.
    struct Listed {
        ticks: std::vec::IntoIter<Tick>,
        taken: usize,
        warn_after: usize,
    }

    impl Source for Listed {
        fn next_tick(&mut self) -> Result<Option<Tick>> {
            let t = self.ticks.next();
            self.taken += usize::from(t.is_some());
            Ok(t)
        }
        fn take_warnings(&mut self, out: &mut Vec<Warning>) {
            if self.taken == self.warn_after {
                out.push(Warning::line("second tick"));
            }
        }
    }

    #[derive(Default)]
    struct Seen {
        ticks: Vec<u64>,
        warnings: Vec<String>,
        ended: Option<Ended>,
        fail_at: Option<usize>,
    }

    impl Observer for Seen {
        fn tick(&mut self, _tick: &Tick, tracker: &Tracker) -> Result<()> {
            if self.fail_at == Some(self.ticks.len()) {
                return Err(Error::failed("disk full"));
            }
            self.ticks.push(tracker.ticks());
            Ok(())
        }
        fn warning(&mut self, w: &Warning) {
            self.warnings.push(w.to_string());
        }
        fn finish(&mut self, ended: Ended, _tracker: &Tracker) {
            self.ended = Some(ended);
        }
    }

    fn ticks(n: usize) -> Vec<Tick> {
        let snap = Snapshot {
            schema: crate::snapshot::SNAPSHOT_SCHEMA.to_owned(),
            pid: 10,
            comm: "worker".to_owned(),
            cmdline: Vec::new(),
            start_time: 1,
            taken_at: 100.0,
            fd_limit: FdLimit::default(),
            fds: Vec::new(),
            errors: Vec::new(),
        };
        (0..n)
            .map(|i| Tick {
                t: 100.0 + i as f64,
                events: if i == 0 {
                    vec![Event::First(snap.clone())]
                } else {
                    Vec::new()
                },
                mono: None,
            })
            .collect()
    }

    #[test]
    fn issue10_observers_see_every_tick_after_the_tracker_and_warnings_as_they_come() {
        let mut src = Listed {
            ticks: ticks(4).into_iter(),
            taken: 0,
            warn_after: 2,
        };
        let (mut a, mut b) = (Seen::default(), Seen::default());
        let run = run(
            &mut src,
            &Plan::to_the_end(),
            tracker(TrackOptions::default(), 1.0),
            &mut [&mut a, &mut b],
            &mut NoControl,
        )
        .expect("run");
        assert_eq!(run.ended, Ended::EndOfInput);
        assert_eq!(run.ticks, 4);
        for o in [&a, &b] {
            assert_eq!(o.ticks, vec![1, 2, 3, 4], "fed before observed");
            assert_eq!(o.warnings, vec!["second tick".to_owned()]);
            assert_eq!(o.ended, Some(Ended::EndOfInput));
        }
    }

    #[test]
    fn issue10_a_failed_observer_ends_the_run_but_keeps_what_was_seen() {
        let mut src = Listed {
            ticks: ticks(5).into_iter(),
            taken: 0,
            warn_after: 0,
        };
        let mut rec = Seen {
            fail_at: Some(2),
            ..Seen::default()
        };
        let mut later = Seen::default();
        let run = run(
            &mut src,
            &Plan::to_the_end(),
            tracker(TrackOptions::default(), 1.0),
            &mut [&mut rec, &mut later],
            &mut NoControl,
        )
        .expect("run");
        assert_eq!(run.ended, Ended::ObserverFailed);
        assert_eq!(
            run.failed.map(|e| e.to_string()).as_deref(),
            Some("disk full")
        );
        assert_eq!(run.tracker.ticks(), 3, "the failed tick was still tracked");
        assert_eq!(
            later.ticks,
            vec![1, 2],
            "observers after the failed one skip its tick"
        );
        assert_eq!(later.ended, Some(Ended::ObserverFailed));
    }
}
