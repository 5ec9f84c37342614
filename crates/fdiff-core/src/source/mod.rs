//! Sources of ticks: live /proc, or a recording read back. Both yield the same [`Tick`]s, so
//! live watching and offline re-analysis are one pipeline.

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
    /// Unix time the tick started.
    pub t: f64,
    /// What happened to each process, in the order the source met them.
    pub events: Vec<Event>,
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
