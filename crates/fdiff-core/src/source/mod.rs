//! Sources of ticks: live /proc, or a recording read back. Both yield the same [`Tick`]s, so
//! live watching and offline re-analysis are one pipeline.

pub mod host;
pub mod live;
pub mod procinfo;
pub mod recorder;
pub mod recording;
pub mod select;
pub mod unwatched;

use crate::diff::Delta;
use crate::snapshot::{ProcId, Snapshot};

/// What one tick saw, process by process.
#[derive(Debug, Clone)]
pub struct Tick {
    /// Unix time the tick started: for display and recordings (it steps when the wall clock
    /// is set).
    pub t: f64,
    /// What happened to each process, in the order the source met them.
    pub events: Vec<Event>,
    /// Seconds on a monotonic clock since the watch began, when the source knows it (a live
    /// source always does; recordings made before it was recorded do not). Slopes are taken
    /// on this axis when present, so a wall clock stepped mid-watch does not fake growth.
    pub mono: Option<f64>,
}

impl Tick {
    /// A tick at unix time `t` without a monotonic time (the tracker falls back on `t`).
    pub fn new(t: f64, events: Vec<Event>) -> Tick {
        Tick {
            t,
            events,
            mono: None,
        }
    }
}

/// What one tick saw of one process.
#[derive(Debug, Clone)]
pub enum Event {
    /// A process seen for the first time.
    First(Snapshot),
    /// A known process: its snapshot now and what changed since its last tick.
    Update {
        /// The process now.
        snapshot: Snapshot,
        /// What changed since its previous tick.
        delta: Delta,
    },
    /// A known process is gone (exited, or its pid names another process now).
    Exited {
        /// The process.
        id: ProcId,
        /// Unix time of the tick that found it gone.
        at: f64,
    },
}
