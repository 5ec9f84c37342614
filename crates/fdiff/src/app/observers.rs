//! The binary's observers of the core's run loop: live lines, warnings on stderr, and the
//! signals and caller's condition that end a run.

use super::output;
use super::signals::Stop;
use crate::report::live::{LiveLines, Sink};
use crate::source::Tick;
use crate::track::Tracker;
use fdiff_core::Warning;
use fdiff_core::pipeline::{self, Ended, Observer};
use std::time::Instant;

impl<S: Sink> Observer for LiveLines<S> {
    fn tick(&mut self, tick: &Tick, tracker: &Tracker) -> fdiff_core::Result<()> {
        LiveLines::tick(self, tick, tracker);
        Ok(())
    }

    fn finish(&mut self, ended: Ended, _tracker: &Tracker) {
        if ended == Ended::Exited {
            self.line("every watched process has exited: the watch ends");
        }
    }
}

/// Warnings during a watch on stderr, written when stderr can take them and held otherwise
/// (see [`output::Notes`]), so a stalled reader of stderr never holds up the watch.
#[derive(Default)]
pub struct Warnings {
    notes: output::Notes,
}

impl Observer for Warnings {
    fn tick(&mut self, _tick: &Tick, _tracker: &Tracker) -> fdiff_core::Result<()> {
        self.notes.flush();
        Ok(())
    }

    fn warning(&mut self, warning: &Warning) {
        self.notes.warn(warning.to_string());
    }

    fn finish(&mut self, _ended: Ended, _tracker: &Tracker) {
        self.notes.flush();
    }
}

/// Warnings written at once (a command that reads files, not a watch).
pub struct WarnAtOnce;

impl Observer for WarnAtOnce {
    fn tick(&mut self, _tick: &Tick, _tracker: &Tracker) -> fdiff_core::Result<()> {
        Ok(())
    }

    fn warning(&mut self, warning: &Warning) {
        output::warn(&warning.to_string());
    }
}

/// Signals (through [`Stop`]) and the caller's own condition end a run.
pub struct Control<'a, F: FnMut() -> bool> {
    pub stop: &'a Stop,
    pub done: F,
}

impl<F: FnMut() -> bool> pipeline::Control for Control<'_, F> {
    fn signal(&self) -> Option<i32> {
        self.stop.signal()
    }

    fn sleep_until(&self, deadline: Instant) {
        self.stop.sleep_until(deadline);
    }

    fn done(&mut self) -> bool {
        (self.done)()
    }
}
