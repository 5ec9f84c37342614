//! The analysis result of a watch, the `fdiff/report/v1` JSON schema: what every renderer shows.

use crate::snapshot::{FdLimit, Kind};
use serde::{Deserialize, Serialize};

/// Value of the `schema` field of a report.
pub const REPORT_SCHEMA: &str = "fdiff/report/v1";

/// What a watch found: per process, per group and per command, with the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`REPORT_SCHEMA`].
    pub schema: String,
    /// The interval asked for, in seconds.
    pub interval_secs: f64,
    /// From the first tick to the last.
    pub duration_secs: f64,
    /// Ticks taken.
    pub ticks: u64,
    /// The mean time between ticks actually achieved (duration over ticks − 1); above
    /// `interval_secs` when snapshots took longer than the interval. None with fewer than two.
    #[serde(default)]
    pub achieved_interval_secs: Option<f64>,
    /// Unix time of the first and last tick.
    pub started_at: Option<f64>,
    /// See `started_at`.
    pub ended_at: Option<f64>,
    /// Every process watched.
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
    /// Exited processes no longer listed one by one (past `keep_exited`): their groups are
    /// counted in the roll-ups of their command.
    #[serde(default)]
    pub folded_processes: u64,
    /// With `--stacks`: the stacks that opened the leaking groups' fds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacks: Option<crate::track::stacks::StacksReport>,
}

/// One watched process over the watch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessReport {
    /// The process id.
    pub pid: i32,
    /// Its command name (the latest, after an exec).
    pub comm: String,
    /// Its command line.
    pub cmdline: Vec<String>,
    /// Its start time ([`crate::snapshot::Snapshot::start_time`]).
    pub start_time: u64,
    /// Its fd limit as last seen.
    pub fd_limit: FdLimit,
    /// Open fds at its first tick.
    pub fds_start: u64,
    /// Open fds at its last tick.
    pub fds_end: u64,
    /// The most fds open at any tick.
    pub fds_peak: u64,
    /// Unix time of its first tick.
    pub first_seen: f64,
    /// It exited during the watch.
    pub exited: bool,
    /// When the exit was seen (the first tick it was gone).
    pub exited_at: Option<f64>,
    /// Sum of the rates of its leaking groups.
    pub leak_rate_per_sec: f64,
    /// Seconds until it reaches its soft fd limit at `leak_rate_per_sec`, when it leaks.
    pub eta_to_limit_secs: Option<f64>,
    /// It exited with its fd count at (or within a tick's growth of) its soft limit: the
    /// likely cause is EMFILE.
    #[serde(default)]
    pub exited_at_fd_limit: bool,
}

/// One group of one process: fds of the same kind whose targets normalise to the same key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    /// The process id.
    pub pid: i32,
    /// Its command name.
    pub comm: String,
    /// The kind of every fd in the group.
    pub kind: Kind,
    /// The normalised target (`/srv/upload-*.pdf`, `tcp 10.0.0.5:* -> :5432 ESTABLISHED`).
    pub key: String,
    /// Its counts and verdict.
    #[serde(flatten)]
    pub counts: Counts,
    /// Up to three targets of fds in the group, those opened during the watch first.
    pub examples: Vec<String>,
    /// The count over time, downsampled to at most [`SERIES_POINTS`] values.
    pub series: Vec<f64>,
    /// The full timeline: `[unix time, mean count]` per bucket of the tracker's clock, at
    /// most [`TIMELINE_POINTS`] of them (buckets double in width on a long watch), for
    /// plotting. Added to `fdiff/report/v1` after its first release: absent in older reports.
    #[serde(default)]
    pub timeline: Vec<(f64, f64)>,
    /// For a leaking group: the numbers of its fds opened during the watch and still open at
    /// its end (at most [`SURVIVOR_FDS`], lowest first). Empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub survivor_fds: Vec<i32>,
}

/// Most points in a group's [`GroupReport::timeline`].
pub const TIMELINE_POINTS: usize = 512;

/// Most fd numbers listed in [`GroupReport::survivor_fds`].
pub const SURVIVOR_FDS: usize = 256;

/// One key summed over the processes of one command (a pool of workers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollupReport {
    /// The command.
    pub comm: String,
    /// Every process of the command that had the key.
    pub pids: Vec<i32>,
    /// The kind of the fds.
    pub kind: Kind,
    /// The normalised target, as in [`GroupReport::key`].
    pub key: String,
    /// The counts and verdict of the sum.
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
    /// Fds in the group at the first tick.
    pub start: u64,
    /// Fds in the group at the last tick.
    pub end: u64,
    /// The most at any tick.
    pub peak: u64,
    /// Fds of the group opened during the watch.
    pub opened: u64,
    /// Fds of the group closed during the watch.
    pub closed: u64,
    /// Fds opened during the watch and still open at its end.
    pub survivors: u64,
    /// The growth the verdict measured, in fds per second.
    pub rate_per_sec: f64,
    /// The verdict: the group keeps growing.
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

/// Value of the `schema` field of a diff.
pub const DIFF_SCHEMA: &str = "fdiff/diff/v1";

/// `fdiff diff A B`: what changed between two snapshots of each process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffReport {
    /// Always [`DIFF_SCHEMA`].
    pub schema: String,
    /// Processes present on both sides.
    pub processes: Vec<ProcessDiff>,
    /// Processes (pid, start time) only in the earlier snapshots.
    pub only_before: Vec<ProcRef>,
    /// Processes only in the later snapshots.
    pub only_after: Vec<ProcRef>,
}

/// A process by pid, start time and name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcRef {
    /// The process id.
    pub pid: i32,
    /// Its command name.
    pub comm: String,
    /// Its start time.
    pub start_time: u64,
}

/// What changed in one process between the two snapshots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessDiff {
    /// The process id.
    pub pid: i32,
    /// Its command name (in the later snapshot).
    pub comm: String,
    /// Its start time (in the earlier snapshot).
    pub start_time: u64,
    /// Set when the two sides were different processes paired only because each file held one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_start_time: Option<u64>,
    /// Unix time of the earlier snapshot.
    pub before_taken_at: f64,
    /// Unix time of the later snapshot.
    pub after_taken_at: f64,
    /// Open fds in the earlier snapshot.
    pub fds_before: u64,
    /// Open fds in the later snapshot.
    pub fds_after: u64,
    /// Fds only in the later snapshot.
    pub opened: Vec<std::sync::Arc<crate::snapshot::FdEntry>>,
    /// Fds only in the earlier snapshot.
    pub closed: Vec<std::sync::Arc<crate::snapshot::FdEntry>>,
    /// Fd numbers that point elsewhere now.
    pub replaced: Vec<crate::diff::Replaced>,
    /// Groups whose count changed, largest growth first.
    pub groups: Vec<GroupChange>,
}

/// The count of one group before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupChange {
    /// The kind of its fds.
    pub kind: Kind,
    /// The normalised target.
    pub key: String,
    /// Fds in the earlier snapshot.
    pub before: u64,
    /// Fds in the later snapshot.
    pub after: u64,
    /// `after` − `before`.
    pub change: i64,
}
