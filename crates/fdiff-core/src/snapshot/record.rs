//! The recording line model (`fdiff/recording/v1`, JSON Lines): a header, then one line per
//! tick holding, per process, a full snapshot, a delta against its previous tick, or its exit.

use super::model::{FdEntry, FdError, FdLimit, Snapshot};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Value of the header's `schema` field.
pub const RECORDING_SCHEMA: &str = "fdiff/recording/v1";

/// A full snapshot is written this often (in ticks) even when deltas would do, so a reader can
/// resynchronise and a damaged stretch costs little.
pub const FULL_EVERY: u64 = 600;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
/// One line of a recording, tagged by `type`.
pub enum Line {
    /// The first line.
    Header(Header),
    /// Every line after it.
    Tick(TickLine),
}

/// What the recording is: its schema, how often it ticked, when it began, who wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`RECORDING_SCHEMA`].
    pub schema: String,
    /// The interval asked for, in seconds.
    pub interval_secs: f64,
    /// Unix time the recording began.
    pub started_at: f64,
    /// The version of fdiff that wrote it.
    pub fdiff_version: String,
}

/// One tick: what each watched process looked like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TickLine {
    /// The tick's number, from 1.
    pub tick: u64,
    /// Unix time the tick started.
    pub t: f64,
    /// One line per process seen or gone at this tick.
    pub procs: Vec<ProcLine>,
    /// Seconds on a monotonic clock since the watch began (absent in recordings made before
    /// fdiff recorded it; readers then take slopes on `t`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mono: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
/// A process at one tick, tagged by `event`.
pub enum ProcLine {
    /// The whole snapshot: a process's first tick, and every [`FULL_EVERY`] ticks.
    Full {
        /// The snapshot.
        snapshot: Snapshot,
    },
    /// Changes since the process's previous tick: fds closed (replaced ones included) and
    /// entries opened (replacing ones included).
    Delta {
        /// The process id.
        pid: i32,
        /// Its start time ([`Snapshot::start_time`]).
        start_time: u64,
        /// Unix time of this snapshot.
        taken_at: f64,
        /// Its fd limit now.
        fd_limit: FdLimit,
        /// Fd numbers that went away.
        closed: Vec<i32>,
        /// Entries that appeared.
        opened: Vec<Arc<FdEntry>>,
        /// Fds that could not be read, all of them (not a change).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        errors: Vec<FdError>,
        /// Set when the process exec'd since its previous line: its new name and command line.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comm: Option<String>,
        /// With `comm`: the new command line.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cmdline: Option<Vec<String>>,
    },
    /// The process was gone at this tick.
    Exited {
        /// The process id.
        pid: i32,
        /// Its start time.
        start_time: u64,
        /// Unix time of the tick that found it gone.
        at: f64,
    },
}
