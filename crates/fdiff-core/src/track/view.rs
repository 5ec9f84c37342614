//! The read-only view of a [`Tracker`] after a tick: per process and group the count, the
//! opens and closes so far, the cached verdict and the timeline, without building a report.

use super::verdict::{self, Verdict};
use super::{GroupId, GroupState, ProcTrack, RKey, RollupReport, Tracker};
use crate::snapshot::{FdLimit, Kind};

/// The state as of the latest tick (see [`Tracker::view`]). Verdicts are cached: a group is
/// judged again in the tick its count changed, and otherwise at least every few ticks (the
/// slow cadence of `REJUDGE_TICKS`), since time alone can move a verdict; so a verdict read
/// here is at most that many ticks old, and [`Tracker::report`] judges the stale ones anew.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub(super) tr: &'a Tracker,
}

impl<'a> View<'a> {
    /// Ticks fed so far.
    pub fn ticks(&self) -> u64 {
        self.tr.ticks
    }

    /// Unix time of the latest tick.
    pub fn time(&self) -> Option<f64> {
        self.tr.t_last
    }

    /// The groups whose count changed in the latest tick (their verdicts are of this tick).
    pub fn changed(&self) -> &'a [GroupId] {
        &self.tr.changed
    }

    /// One group, if its process is still kept in full.
    pub fn group(&self, id: GroupId) -> Option<GroupView<'a>> {
        let p = self.tr.procs.get(&id.proc)?;
        let g = p.groups.get(id.group as usize)?;
        Some(GroupView {
            tr: self.tr,
            id,
            p,
            g,
        })
    }

    /// One process by its number within the watch ([`GroupId::proc`]).
    pub fn process(&self, serial: u64) -> Option<ProcessView<'a>> {
        let p = self.tr.procs.get(&serial)?;
        Some(ProcessView {
            tr: self.tr,
            serial,
            p,
        })
    }

    /// Every process kept in full, in the order first seen.
    pub fn processes(&self) -> impl Iterator<Item = ProcessView<'a>> + 'a {
        let tr = self.tr;
        tr.procs
            .iter()
            .map(move |(&serial, p)| ProcessView { tr, serial, p })
    }

    /// The groups whose cached verdict is a leak.
    pub fn leaking(&self) -> impl Iterator<Item = GroupView<'a>> + 'a {
        let v = *self;
        self.tr.leaking.iter().filter_map(move |&id| v.group(id))
    }

    /// The roll-ups whose cached verdict is a leak.
    pub fn leaking_rollups(&self) -> impl Iterator<Item = RollupView<'a>> + 'a {
        let tr = self.tr;
        tr.leaking_rollups.iter().filter_map(move |k| {
            let r = tr.rollups.get(k)?;
            Some(RollupView {
                tr,
                key: k,
                report: r.cached.as_ref()?,
                members: &r.members,
            })
        })
    }
}

/// One process as of the latest tick.
#[derive(Clone, Copy)]
pub struct ProcessView<'a> {
    tr: &'a Tracker,
    serial: u64,
    p: &'a ProcTrack,
}

impl<'a> ProcessView<'a> {
    /// Its number within the watch.
    pub fn serial(&self) -> u64 {
        self.serial
    }
    /// The process id.
    pub fn pid(&self) -> i32 {
        self.p.id.pid
    }
    /// Its command name.
    pub fn comm(&self) -> &'a str {
        &self.p.comm
    }
    /// Open fds at its latest tick.
    pub fn fds(&self) -> u64 {
        self.p.fds_now
    }
    /// Its fd limit as last seen.
    pub fn fd_limit(&self) -> FdLimit {
        self.p.fd_limit
    }
    /// Unix time its exit was seen.
    pub fn exited_at(&self) -> Option<f64> {
        self.p.exited_at
    }
    /// Whether it has exited.
    pub fn exited(&self) -> bool {
        self.p.exited_at.is_some()
    }
    /// Its groups, in the order they appeared.
    pub fn groups(&self) -> impl Iterator<Item = GroupView<'a>> + 'a {
        let (tr, serial, p) = (self.tr, self.serial, self.p);
        p.groups.iter().enumerate().map(move |(i, g)| GroupView {
            tr,
            id: GroupId {
                proc: serial,
                group: i as u32,
            },
            p,
            g,
        })
    }
    /// The sum of the rates of its leaking groups (cached verdicts).
    pub fn leak_rate_per_sec(&self) -> f64 {
        let (from, to) = (
            GroupId {
                proc: self.serial,
                group: 0,
            },
            GroupId {
                proc: self.serial,
                group: u32::MAX,
            },
        );
        self.tr
            .leaking
            .range(from..=to)
            .filter_map(|id| self.p.groups.get(id.group as usize))
            .map(|g| g.verdict.rate_per_sec)
            .sum()
    }
    /// Seconds until it reaches its soft fd limit at its leak rate; None when exited or not
    /// leaking.
    pub fn eta_to_limit_secs(&self) -> Option<f64> {
        if self.exited() {
            return None;
        }
        verdict::eta_to_limit(
            self.p.fds_now,
            self.p.fd_limit.soft,
            self.leak_rate_per_sec(),
        )
    }
}

/// One group as of the latest tick.
#[derive(Clone, Copy)]
pub struct GroupView<'a> {
    tr: &'a Tracker,
    id: GroupId,
    p: &'a ProcTrack,
    g: &'a GroupState,
}

impl<'a> GroupView<'a> {
    /// The group's stable id.
    pub fn id(&self) -> GroupId {
        self.id
    }
    /// The pid of its process.
    pub fn pid(&self) -> i32 {
        self.p.id.pid
    }
    /// The command name of its process.
    pub fn comm(&self) -> &'a str {
        &self.p.comm
    }
    /// The kind of its fds.
    pub fn kind(&self) -> Kind {
        self.g.kind
    }
    /// The normalised target its fds share.
    pub fn key(&self) -> &'a str {
        &self.g.key
    }
    /// Its process.
    pub fn process(&self) -> ProcessView<'a> {
        ProcessView {
            tr: self.tr,
            serial: self.id.proc,
            p: self.p,
        }
    }
    /// Fds in the group at the latest tick.
    pub fn count(&self) -> u64 {
        self.g.count
    }
    /// Fds of the group opened during the watch so far (only ever grows).
    pub fn opened(&self) -> u64 {
        self.g.opened
    }
    /// Fds of the group closed during the watch so far (only ever grows).
    pub fn closed(&self) -> u64 {
        self.g.closed
    }
    /// The cached verdict (judged this tick when the count changed, else within the cadence).
    pub fn verdict(&self) -> Verdict {
        self.g.verdict
    }
    /// The count over time as (unix time, mean count) per bucket: at most about 512 points
    /// (buckets double in width past that, so a long watch keeps 256 to 512 of them).
    pub fn timeline(&self) -> Vec<(f64, f64)> {
        let tr = self.tr;
        // The series is on the slope axis; shift it onto unix time for display.
        let shift = tr.t_first.unwrap_or(0.0) - tr.axis_first.unwrap_or(0.0);
        let (t, y) = self.g.series.points();
        t.into_iter().map(|t| t + shift).zip(y).collect()
    }
}

/// One roll-up (a key over the processes of one command) as of its latest judgement.
#[derive(Clone, Copy)]
pub struct RollupView<'a> {
    tr: &'a Tracker,
    key: &'a RKey,
    report: &'a RollupReport,
    members: &'a std::collections::BTreeSet<GroupId>,
}

impl<'a> RollupView<'a> {
    /// The command whose processes it sums.
    pub fn comm(&self) -> &'a str {
        &self.key.0
    }
    /// The kind of its fds.
    pub fn kind(&self) -> Kind {
        self.key.1
    }
    /// The normalised target its fds share.
    pub fn key(&self) -> &'a str {
        &self.key.2
    }
    /// Its cached result, as the report shows it except for `pids`, which is left empty
    /// (see [`RollupView::pids`]).
    pub fn report(&self) -> &'a RollupReport {
        self.report
    }
    /// Every distinct pid of its members, kept whole or folded (built on each call).
    pub fn pids(&self) -> Vec<i32> {
        match self.tr.rollups.get(self.key) {
            Some(r) => self.tr.rollup_pids(r),
            None => Vec::new(),
        }
    }
    /// Its members still alive.
    pub fn live_members(&self) -> impl Iterator<Item = ProcessView<'a>> + 'a {
        let tr = self.tr;
        let mut last = None;
        self.members.iter().filter_map(move |m| {
            if last == Some(m.proc) {
                return None;
            }
            last = Some(m.proc);
            let p = tr.procs.get(&m.proc)?;
            (p.exited_at.is_none()).then_some(ProcessView {
                tr,
                serial: m.proc,
                p,
            })
        })
    }
}
