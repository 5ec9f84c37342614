//! The analysis result of a watch, the `fdiff/report/v1` JSON schema: what every renderer shows.

use crate::snapshot::{FdLimit, Kind};
use serde::{Deserialize, Serialize};

pub const REPORT_SCHEMA: &str = "fdiff/report/v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub interval_secs: f64,
    /// From the first tick to the last.
    pub duration_secs: f64,
    pub ticks: u64,
    /// The mean time between ticks actually achieved (duration over ticks − 1); above
    /// `interval_secs` when snapshots took longer than the interval. None with fewer than two.
    #[serde(default)]
    pub achieved_interval_secs: Option<f64>,
    /// Unix time of the first and last tick.
    pub started_at: Option<f64>,
    pub ended_at: Option<f64>,
    pub processes: Vec<ProcessReport>,
    /// Per process, leaking first, then by growth.
    pub groups: Vec<GroupReport>,
    /// The same key summed over processes of the same command (only keys seen in two or more).
    pub rollup: Vec<RollupReport>,
    /// Any group or roll-up leaks.
    pub leaking: bool,
    /// Matching processes fdiff did not watch, by reason (permission, its own fd limit).
    #[serde(default)]
    pub unwatched: Vec<crate::source::unwatched::Unwatched>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessReport {
    pub pid: i32,
    pub comm: String,
    pub cmdline: Vec<String>,
    pub start_time: u64,
    pub fd_limit: FdLimit,
    pub fds_start: u64,
    pub fds_end: u64,
    pub fds_peak: u64,
    /// Unix time of its first tick.
    pub first_seen: f64,
    pub exited: bool,
    /// When the exit was seen (the first tick it was gone).
    pub exited_at: Option<f64>,
    /// Sum of the rates of its leaking groups.
    pub leak_rate_per_sec: f64,
    pub eta_to_limit_secs: Option<f64>,
    /// It exited with its fd count at (or within a tick's growth of) its soft limit: the
    /// likely cause is EMFILE.
    #[serde(default)]
    pub exited_at_fd_limit: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    pub pid: i32,
    pub comm: String,
    pub kind: Kind,
    pub key: String,
    #[serde(flatten)]
    pub counts: Counts,
    /// Up to three targets of fds in the group, those opened during the watch first.
    pub examples: Vec<String>,
    /// The count over time, downsampled to at most [`SERIES_POINTS`] values.
    pub series: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollupReport {
    pub comm: String,
    pub pids: Vec<i32>,
    pub kind: Kind,
    pub key: String,
    #[serde(flatten)]
    pub counts: Counts,
    /// The sum of the counts of the members alive at each tick.
    pub series: Vec<f64>,
    /// Members whose own group leaks.
    #[serde(default)]
    pub leaking_members: u64,
    /// Members leak on their own but the live sum does not grow, because leaking members
    /// exit and are replaced: respawning hides the leak from the pool as a whole.
    #[serde(default)]
    pub masked_by_respawn: bool,
    /// The median rate of the leaking members while they lived.
    #[serde(default)]
    pub member_rate_per_sec: Option<f64>,
    /// The median lifetime, within the watch, of leaking members that exited.
    #[serde(default)]
    pub member_lifetime_secs: Option<f64>,
    /// When the roll-up leaks: seconds until the live member nearest to its fd limit gets
    /// there at its own rate of this group (or the roll-up's rate shared among the members).
    #[serde(default)]
    pub eta_to_limit_secs: Option<f64>,
    /// That member.
    #[serde(default)]
    pub eta_pid: Option<i32>,
}

/// A group's counts over the watch and its verdict, the same for one process and a roll-up.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Counts {
    pub start: u64,
    pub end: u64,
    pub peak: u64,
    pub opened: u64,
    pub closed: u64,
    pub survivors: u64,
    pub rate_per_sec: f64,
    pub leaking: bool,
}

impl Counts {
    /// Report order: leaking first, then the fastest growth.
    pub fn severity(&self, other: &Counts) -> std::cmp::Ordering {
        other
            .leaking
            .cmp(&self.leaking)
            .then(other.rate_per_sec.total_cmp(&self.rate_per_sec))
    }
}

/// Points kept in a report's series (enough for a sparkline).
pub const SERIES_POINTS: usize = 32;

/// Downsample to at most [`SERIES_POINTS`] values by averaging runs.
pub fn downsample(v: &[f64]) -> Vec<f64> {
    if v.len() <= SERIES_POINTS {
        return v.iter().map(|x| round2(*x)).collect();
    }
    (0..SERIES_POINTS)
        .map(|i| {
            let a = i * v.len() / SERIES_POINTS;
            let b = ((i + 1) * v.len() / SERIES_POINTS).max(a + 1);
            round2(v[a..b].iter().sum::<f64>() / (b - a) as f64)
        })
        .collect()
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub const DIFF_SCHEMA: &str = "fdiff/diff/v1";

/// `fdiff diff A B`: what changed between two snapshots of each process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffReport {
    pub schema: String,
    pub processes: Vec<ProcessDiff>,
    /// Processes (pid, start time) present on one side only.
    pub only_before: Vec<ProcRef>,
    pub only_after: Vec<ProcRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcRef {
    pub pid: i32,
    pub comm: String,
    pub start_time: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessDiff {
    pub pid: i32,
    pub comm: String,
    pub start_time: u64,
    /// Set when the two sides were different processes paired only because each file held one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_start_time: Option<u64>,
    pub before_taken_at: f64,
    pub after_taken_at: f64,
    pub fds_before: u64,
    pub fds_after: u64,
    pub opened: Vec<std::sync::Arc<crate::snapshot::FdEntry>>,
    pub closed: Vec<std::sync::Arc<crate::snapshot::FdEntry>>,
    pub replaced: Vec<crate::diff::Replaced>,
    /// Groups whose count changed, largest growth first.
    pub groups: Vec<GroupChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupChange {
    pub kind: Kind,
    pub key: String,
    pub before: u64,
    pub after: u64,
    pub change: i64,
}
