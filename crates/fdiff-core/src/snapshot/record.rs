//! The recording line model (`fdiff/recording/v1`, JSON Lines): a header, then one line per
//! tick holding, per process, a full snapshot, a delta against its previous tick, or its exit.

use super::model::{FdEntry, FdError, FdLimit, Snapshot};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const RECORDING_SCHEMA: &str = "fdiff/recording/v1";

/// A full snapshot is written this often (in ticks) even when deltas would do, so a reader can
/// resynchronise and a damaged stretch costs little.
pub const FULL_EVERY: u64 = 600;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    Header(Header),
    Tick(TickLine),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub schema: String,
    pub interval_secs: f64,
    pub started_at: f64,
    pub fdiff_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TickLine {
    pub tick: u64,
    /// Unix time the tick started.
    pub t: f64,
    pub procs: Vec<ProcLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProcLine {
    /// The whole snapshot: a process's first tick, and every [`FULL_EVERY`] ticks.
    Full { snapshot: Snapshot },
    /// Changes since the process's previous tick: fds closed (replaced ones included) and
    /// entries opened (replacing ones included).
    Delta {
        pid: i32,
        start_time: u64,
        taken_at: f64,
        fd_limit: FdLimit,
        closed: Vec<i32>,
        opened: Vec<Arc<FdEntry>>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        errors: Vec<FdError>,
        /// Set when the process exec'd since its previous line: its new name and command line.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comm: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cmdline: Option<Vec<String>>,
    },
    /// The process was gone at this tick.
    Exited { pid: i32, start_time: u64, at: f64 },
}
