//! Track: keeps every watched process's groups and their series over time, and turns them into
//! a [`Report`] with a leak verdict per group, roll-ups across processes and an ETA to the limit.

pub mod compare;
pub mod group;
pub mod model;
pub(crate) mod series;
pub mod stacks;
#[doc(hidden)]
pub mod synth;
pub mod verdict;
pub mod view;

#[cfg(test)]
mod tests;

pub use group::GroupBy;
pub use model::{
    Counts, DiffReport, GroupReport, ProcessReport, REPORT_SCHEMA, Report, RollupReport,
};
pub use view::{GroupView, ProcessView, RollupView, View};

use crate::diff::Delta;
use crate::snapshot::{FdEntry, FdLimit, Kind, ProcId, Snapshot};
use group::Listeners;
use regex::Regex;
use series::{Clock, Series};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What to group by, which fds to count at all, and how many exited processes to keep whole.
#[derive(Debug, Clone)]
pub struct TrackOptions {
    /// What an fd's key keeps of its target.
    pub group_by: GroupBy,
    /// Keep only fds whose target matches (`--match`).
    pub include: Option<Regex>,
    /// Drop fds whose target matches (`--exclude`).
    pub exclude: Option<Regex>,
    /// Exited processes kept in full (their groups listed in the report); past this, the
    /// oldest are folded into per-(command, kind, key) summaries that roll-ups still count, so
    /// a long watch of a pool that respawns its workers stays within a fixed memory budget.
    pub keep_exited: usize,
}

/// The default of [`TrackOptions::keep_exited`].
pub const DEFAULT_KEEP_EXITED: usize = 64;

impl Default for TrackOptions {
    fn default() -> Self {
        TrackOptions {
            group_by: GroupBy::default(),
            include: None,
            exclude: None,
            keep_exited: DEFAULT_KEEP_EXITED,
        }
    }
}

impl TrackOptions {
    /// Whether `e` is counted at all (`--match` / `--exclude`).
    pub fn keeps(&self, e: &FdEntry) -> bool {
        self.include.as_ref().is_none_or(|r| r.is_match(&e.target))
            && !self.exclude.as_ref().is_some_and(|r| r.is_match(&e.target))
    }
}

const EXAMPLES: usize = 3;
/// Fewer closes than this in a process's last tick are ordinary closes, not a shutdown.
const SHUTDOWN_MIN_CLOSES: u64 = 3;
/// Every group and roll-up whose count did not change is judged again at least once over
/// this many ticks (a slice of them each tick), since time alone can change a verdict.
const REJUDGE_TICKS: usize = 16;
/// Rates and lifetimes of folded leaking members kept for the roll-up's medians (a sample:
/// the latest ones); their number is counted exactly.
const FOLDED_SAMPLES: usize = 1024;

/// A group for the whole watch: the process (numbered in the order first seen, never reused,
/// unlike pids) and the group's index within it (groups are never removed from a process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId {
    /// The process's number within the watch.
    pub proc: u64,
    /// The group's number within the process.
    pub group: u32,
}

/// A roll-up's identity: the command, the kind and the key its members share.
type RKey = (String, Kind, String);

/// All state of a watch, fed tick by tick by the pipeline (live or from a recording) through
/// [`Tracker::feed`]. After each tick, [`Tracker::view`] reads the verdicts as of that tick,
/// judged again only where something changed; [`Tracker::report`] assembles the full result.
pub struct Tracker {
    opts: TrackOptions,
    interval_secs: f64,
    clock: Clock,
    ticks: u64,
    /// Unix times of the first and latest tick (display, durations).
    t_first: Option<f64>,
    t_last: Option<f64>,
    /// The slope axis (monotonic seconds when the source gives them, else unix time) of the
    /// first, the latest and the previous tick; the previous one is where a group born in
    /// this tick had zero.
    axis_first: Option<f64>,
    axis_last: Option<f64>,
    axis_prev: Option<f64>,
    use_mono: bool,
    /// The tick of the latest bucket compaction: every verdict judged before it is stale.
    compacted_at: u64,
    next_serial: u64,
    procs: BTreeMap<u64, ProcTrack>,
    index: HashMap<ProcId, u64>,
    /// Exited processes still kept in full, in the order they exited.
    exited_kept: std::collections::VecDeque<u64>,
    folded_procs: u64,
    folded_groups: u64,
    n_groups: usize,
    rollups: BTreeMap<RKey, RollupState>,
    /// Processes with a group touched in the tick in progress.
    touched: Vec<u64>,
    /// Groups whose count changed in the latest tick.
    changed: Vec<GroupId>,
    leaking: std::collections::BTreeSet<GroupId>,
    leaking_rollups: std::collections::BTreeSet<RKey>,
    /// Where the slow re-judging of unchanged groups and roll-ups goes on.
    cursor: GroupId,
    rollup_cursor: Option<RKey>,
    /// Shares of a slice owed to the slow cadence (groups, roll-ups), so that fewer than
    /// [`REJUDGE_TICKS`] of them are still each judged once per that many ticks.
    slice_credit: usize,
    rollup_credit: usize,
    /// Groups judged in the latest tick (what a tick's verdicts cost, for tests).
    judged_last_tick: usize,
}

struct ProcTrack {
    id: ProcId,
    comm: String,
    cmdline: Vec<String>,
    fd_limit: FdLimit,
    first_seen: f64,
    fds_start: u64,
    fds_now: u64,
    fds_peak: u64,
    exited_at: Option<f64>,
    /// The tick its exit was seen.
    exit_tick: u64,
    groups: Vec<GroupState>,
    group_index: HashMap<(Kind, String), usize>,
    fds: HashMap<i32, FdSlot>,
    listeners: Listeners,
    /// The closes of its latest tick (group, opened during the watch), kept until the next
    /// tick so that a shutdown can be told from a fix.
    last_closes: Vec<(usize, bool)>,
    fds_before_last: u64,
    /// The tick in progress, and the groups whose count it changed.
    tick: u64,
    touched: Vec<u32>,
}

#[derive(Clone, Copy)]
struct FdSlot {
    /// None: filtered out by --match/--exclude.
    group: Option<usize>,
    /// Opened after the process's first tick.
    new: bool,
}

struct GroupState {
    kind: Kind,
    key: String,
    count: u64,
    start: u64,
    peak: u64,
    opened: u64,
    closed: u64,
    survivors: u64,
    examples: Vec<String>,
    /// Whether `examples` holds targets opened during the watch (preferred over baseline ones).
    examples_new: bool,
    series: Series,
    /// The cached verdict and the tick it was judged at.
    verdict: verdict::Verdict,
    judged: Option<u64>,
    touched_at: u64,
}

/// A roll-up: its members kept in full, what the folded ones left, and its cached result.
#[derive(Default)]
struct RollupState {
    members: std::collections::BTreeSet<GroupId>,
    folded: Folded,
    /// The latest tick its membership changed (a member joined, exited or was folded).
    settled_at: u64,
    judged: Option<u64>,
    /// None while it spans fewer than two processes.
    cached: Option<RollupReport>,
}

/// What folded members of one roll-up left behind: their counts, their part of the live sum
/// bucket by bucket, and what the roll-up says about leaking members.
#[derive(Default)]
struct Folded {
    pids: std::collections::BTreeSet<i32>,
    opened: u64,
    closed: u64,
    survivors: u64,
    leaking_members: u64,
    leaking_exited: bool,
    rates: Vec<f64>,
    lives: Vec<f64>,
    /// Members that lie in one bucket: the sums of their mean times and values there, and
    /// how many. A member alone in its bucket keeps its mean through every later halving
    /// (its bucket merges with one it was absent from), so these sums stay exact.
    single: BTreeMap<usize, FoldAcc>,
    /// Members spanning buckets, with their (bucket, sum of times, sum of values, ticks),
    /// merged exactly as the clock halves until they lie in one bucket. Only members across
    /// a bucket boundary stay here, so they are bounded by the buckets times the members
    /// alive at once, not by how many have come and gone.
    multi: Vec<Vec<(usize, f64, f64, u32)>>,
    /// Both summed per bucket (time, value, members), so a roll-up judged every tick adds one
    /// array for all its folded members; rebuilt only when the clock halves.
    sum: Vec<(f64, f64, f64)>,
}

#[derive(Default, Clone, Copy)]
struct FoldAcc {
    t: f64,
    v: f64,
    members: u32,
}

fn push_sample(v: &mut Vec<f64>, seen: u64, x: f64) {
    if v.len() < FOLDED_SAMPLES {
        v.push(x);
    } else {
        v[(seen as usize) % FOLDED_SAMPLES] = x;
    }
}

impl Folded {
    fn add(&mut self, p: &ProcTrack, g: &GroupState, v: verdict::Verdict, t0_wall: f64) {
        self.pids.insert(p.id.pid);
        self.opened += g.opened;
        self.closed += g.closed;
        self.survivors += g.survivors;
        if v.leaking {
            push_sample(&mut self.rates, self.leaking_members, v.rate_per_sec);
            if let Some(at) = p.exited_at {
                push_sample(
                    &mut self.lives,
                    self.leaking_members,
                    at - p.first_seen.max(t0_wall),
                );
                self.leaking_exited = true;
            }
            self.leaking_members += 1;
        }
        self.place(g.series.sums_as_seen());
    }

    fn add_to_sum(&mut self, b: usize, t: f64, v: f64, members: f64) {
        if self.sum.len() <= b {
            self.sum.resize(b + 1, (0.0, 0.0, 0.0));
        }
        let e = &mut self.sum[b];
        e.0 += t;
        e.1 += v;
        e.2 += members;
    }

    fn place(&mut self, sums: Vec<(usize, f64, f64, u32)>) {
        for &(b, t, v, n) in &sums {
            let n = f64::from(n.max(1));
            self.add_to_sum(b, t / n, v / n, 1.0);
        }
        self.place_entries(sums);
    }

    fn place_entries(&mut self, sums: Vec<(usize, f64, f64, u32)>) {
        match sums.as_slice() {
            [] => {}
            [(b, t, v, n)] => {
                let n = f64::from((*n).max(1));
                let e = self.single.entry(*b).or_default();
                e.t += t / n;
                e.v += v / n;
                e.members += 1;
            }
            _ => self.multi.push(sums),
        }
    }

    /// Follow the clock halving its buckets.
    fn compact(&mut self) {
        let mut single: BTreeMap<usize, FoldAcc> = BTreeMap::new();
        for (b, a) in std::mem::take(&mut self.single) {
            let e = single.entry(b / 2).or_default();
            e.t += a.t;
            e.v += a.v;
            e.members += a.members;
        }
        self.single = single;
        for m in std::mem::take(&mut self.multi) {
            let mut merged: Vec<(usize, f64, f64, u32)> = Vec::with_capacity(m.len() / 2 + 1);
            for (b, t, v, n) in m {
                match merged.last_mut() {
                    Some(last) if last.0 == b / 2 => {
                        last.1 += t;
                        last.2 += v;
                        last.3 += n;
                    }
                    _ => merged.push((b / 2, t, v, n)),
                }
            }
            self.place_entries(merged);
        }
        self.sum.clear();
        let single: Vec<(usize, FoldAcc)> = self.single.iter().map(|(&b, &a)| (b, a)).collect();
        for (b, a) in single {
            self.add_to_sum(b, a.t, a.v, f64::from(a.members));
        }
        let multi: Vec<(usize, f64, f64, u32)> = self.multi.iter().flatten().copied().collect();
        for (b, t, v, n) in multi {
            let n = f64::from(n.max(1));
            self.add_to_sum(b, t / n, v / n, 1.0);
        }
    }
}

fn judge_series(g: &GroupState, t0: f64) -> verdict::Verdict {
    let (t, y) = g.series.points();
    let t: Vec<f64> = t.iter().map(|x| x - t0).collect();
    verdict::judge(&t, &y, g.survivors)
}

impl Tracker {
    /// A tracker for ticks about `interval_secs` apart (what the report says was asked for).
    pub fn new(opts: TrackOptions, interval_secs: f64) -> Tracker {
        Tracker {
            opts,
            interval_secs,
            clock: Clock::new(),
            ticks: 0,
            t_first: None,
            t_last: None,
            axis_first: None,
            axis_last: None,
            axis_prev: None,
            use_mono: false,
            compacted_at: 0,
            next_serial: 0,
            procs: BTreeMap::new(),
            index: HashMap::new(),
            exited_kept: std::collections::VecDeque::new(),
            folded_procs: 0,
            folded_groups: 0,
            n_groups: 0,
            rollups: BTreeMap::new(),
            touched: Vec::new(),
            changed: Vec::new(),
            leaking: std::collections::BTreeSet::new(),
            leaking_rollups: std::collections::BTreeSet::new(),
            cursor: GroupId { proc: 0, group: 0 },
            rollup_cursor: None,
            judged_last_tick: 0,
            slice_credit: 0,
            rollup_credit: 0,
        }
    }

    /// Feed one tick: its new processes, the changes of known ones, and exits. Afterwards
    /// [`Tracker::view`] shows the state as of this tick.
    pub fn feed(&mut self, tick: &crate::source::Tick) {
        use crate::source::Event;
        self.begin_tick(tick);
        for ev in &tick.events {
            match ev {
                Event::First(s) => self.first(s),
                Event::Update { snapshot, delta } => self.update(snapshot, delta),
                Event::Exited { id, at } => self.exited(*id, *at),
            }
        }
        self.end_tick();
    }

    /// A read-only view of the state as of the latest tick: cheap to take every tick.
    pub fn view(&self) -> view::View<'_> {
        view::View { tr: self }
    }

    fn begin_tick(&mut self, tick: &crate::source::Tick) {
        let t = tick.t;
        self.ticks += 1;
        if self.t_first.is_none() {
            self.use_mono = tick.mono.is_some();
        }
        let axis = match (self.use_mono, self.axis_last, tick.mono) {
            (false, _, _) => t,
            (true, last, Some(m)) => last.map_or(m, |l| m.max(l)),
            // A tick without a monotonic time in a watch that has them: step by the wall
            // clock, never backwards.
            (true, Some(l), None) => l + (t - self.t_last.unwrap_or(t)).max(0.0),
            (true, None, None) => t,
        };
        self.t_first.get_or_insert(t);
        self.t_last = Some(t);
        self.axis_first.get_or_insert(axis);
        self.axis_prev = self.axis_last;
        self.axis_last = Some(axis);
        if self.clock.tick(axis) {
            for p in self.procs.values_mut() {
                for g in &mut p.groups {
                    g.series.compact();
                }
            }
            for r in self.rollups.values_mut() {
                r.folded.compact();
            }
            self.compacted_at = self.ticks;
        }
    }

    fn note_touched(&mut self, serial: u64) {
        if self
            .procs
            .get(&serial)
            .is_some_and(|p| !p.touched.is_empty())
            && !self.touched.contains(&serial)
        {
            self.touched.push(serial);
        }
    }

    /// A process seen for the first time: its snapshot is the baseline.
    fn first(&mut self, snap: &Snapshot) {
        let id = snap.proc_id();
        if self.index.contains_key(&id) {
            return;
        }
        let n = snap.fds.len() as u64;
        let serial = self.next_serial;
        self.next_serial += 1;
        let mut p = ProcTrack {
            id,
            comm: snap.comm.clone(),
            cmdline: snap.cmdline.clone(),
            fd_limit: snap.fd_limit,
            first_seen: snap.taken_at,
            fds_start: n,
            fds_now: n,
            fds_peak: n,
            exited_at: None,
            exit_tick: 0,
            groups: Vec::new(),
            group_index: HashMap::new(),
            fds: HashMap::with_capacity(snap.fds.len()),
            listeners: Listeners::default(),
            last_closes: Vec::new(),
            fds_before_last: n,
            tick: self.ticks,
            touched: Vec::new(),
        };
        for e in &snap.fds {
            p.listeners.add(e);
        }
        let bucket = self.clock.bucket();
        for e in &snap.fds {
            p.open(e, &self.opts, false, bucket, None);
        }
        for g in &mut p.groups {
            g.start = g.count;
        }
        self.join_rollups(serial, &p, 0);
        self.n_groups += p.groups.len();
        self.index.insert(id, serial);
        self.procs.insert(serial, p);
        self.note_touched(serial);
    }

    /// Enter groups `from..` of a process into their roll-ups.
    fn join_rollups(&mut self, serial: u64, p: &ProcTrack, from: usize) {
        for (gi, g) in p.groups.iter().enumerate().skip(from) {
            let r = self
                .rollups
                .entry((p.comm.clone(), g.kind, g.key.clone()))
                .or_default();
            r.members.insert(GroupId {
                proc: serial,
                group: gi as u32,
            });
            r.settled_at = self.ticks;
        }
    }

    fn leave_rollups(&mut self, serial: u64) {
        let Some(p) = self.procs.get(&serial) else {
            return;
        };
        for (gi, g) in p.groups.iter().enumerate() {
            if let Some(r) = self
                .rollups
                .get_mut(&(p.comm.clone(), g.kind, g.key.clone()))
            {
                r.members.remove(&GroupId {
                    proc: serial,
                    group: gi as u32,
                });
                r.settled_at = self.ticks;
            }
        }
    }

    /// The changes of a known process since its last tick.
    fn update(&mut self, snap: &Snapshot, delta: &Delta) {
        let Some(&serial) = self.index.get(&snap.proc_id()) else {
            return;
        };
        let renamed = self.procs.get(&serial).is_some_and(|p| p.comm != snap.comm);
        if renamed {
            // Its groups belong to the roll-ups of the command it runs now.
            self.leave_rollups(serial);
        }
        let Some(p) = self.procs.get_mut(&serial) else {
            return;
        };
        p.fd_limit = snap.fd_limit;
        if renamed {
            p.comm.clone_from(&snap.comm);
            p.cmdline.clone_from(&snap.cmdline);
        }
        let before = p.groups.len();
        p.tick = self.ticks;
        let bucket = self.clock.bucket();
        let prev_t = self.axis_prev;
        p.last_closes.clear();
        p.fds_before_last = p.fds_now;
        for e in delta.all_closed() {
            p.close(e);
        }
        for e in delta.all_opened() {
            p.listeners.add(e);
        }
        for e in delta.all_opened() {
            p.open(e, &self.opts, true, bucket, prev_t);
        }
        p.fds_now = snap.fds.len() as u64;
        p.fds_peak = p.fds_peak.max(p.fds_now);
        let after = p.groups.len();
        self.n_groups += after - before;
        if renamed || after > before {
            if let Some(p) = self.procs.remove(&serial) {
                self.join_rollups(serial, &p, if renamed { 0 } else { before });
                self.procs.insert(serial, p);
            }
        }
        self.note_touched(serial);
    }

    /// The process is gone (exited, or its pid now names another process).
    fn exited(&mut self, id: ProcId, at: f64) {
        let Some(&serial) = self.index.get(&id) else {
            return;
        };
        let ticks = self.ticks;
        let Some(p) = self.procs.get_mut(&serial) else {
            return;
        };
        if p.exited_at.is_some() {
            return;
        }
        p.tick = ticks;
        p.undo_shutdown_closes();
        p.exited_at = Some(at);
        p.exit_tick = ticks;
        // Its groups and series stay for the report; the per-fd map is no longer needed,
        // so a week of respawning workers does not pile up fd tables.
        p.fds = HashMap::new();
        p.listeners = Listeners::default();
        // Judged once more now that its series ended, then never again (until compaction).
        for gi in 0..p.groups.len() {
            p.touch(gi);
        }
        let keys: Vec<RKey> = p
            .groups
            .iter()
            .map(|g| (p.comm.clone(), g.kind, g.key.clone()))
            .collect();
        for k in keys {
            if let Some(r) = self.rollups.get_mut(&k) {
                r.settled_at = ticks;
            }
        }
        self.exited_kept.push_back(serial);
        self.note_touched(serial);
    }

    /// End the tick: every live process's groups record their count; the groups that changed
    /// (and a slice of the others) are judged again, with their roll-ups; exited processes
    /// past the number kept are folded.
    fn end_tick(&mut self) {
        let bucket = self.clock.bucket();
        let t = self.axis_last.unwrap_or(0.0);
        for p in self.procs.values_mut().filter(|p| p.exited_at.is_none()) {
            for g in &mut p.groups {
                g.series.add(bucket, t, g.count as f64);
            }
        }
        self.changed.clear();
        self.judged_last_tick = 0;
        for serial in std::mem::take(&mut self.touched) {
            if let Some(p) = self.procs.get_mut(&serial) {
                for gi in std::mem::take(&mut p.touched) {
                    self.changed.push(GroupId {
                        proc: serial,
                        group: gi,
                    });
                }
            }
        }
        self.changed.sort_unstable();
        let mut dirty: std::collections::BTreeSet<RKey> = std::collections::BTreeSet::new();
        for id in self.changed.clone() {
            self.rejudge(id, true, &mut dirty);
        }
        self.rejudge_slice(&mut dirty);
        self.fold_excess(&mut dirty);
        self.rejudge_rollup_slice(&mut dirty);
        for k in dirty {
            self.rejudge_rollup(k);
        }
    }

    /// Judge one group again; its roll-up is judged again when `count_changed` or when the
    /// verdict moved.
    fn rejudge(
        &mut self,
        id: GroupId,
        count_changed: bool,
        dirty: &mut std::collections::BTreeSet<RKey>,
    ) {
        let t0 = self.axis_first.unwrap_or(0.0);
        let ticks = self.ticks;
        let Some(p) = self.procs.get_mut(&id.proc) else {
            return;
        };
        let Some(g) = p.groups.get_mut(id.group as usize) else {
            return;
        };
        if g.judged == Some(ticks) {
            return;
        }
        let v = judge_series(g, t0);
        self.judged_last_tick += 1;
        let moved = v != g.verdict;
        g.verdict = v;
        g.judged = Some(ticks);
        if v.leaking {
            self.leaking.insert(id);
        } else {
            self.leaking.remove(&id);
        }
        if count_changed || moved {
            dirty.insert((p.comm.clone(), g.kind, g.key.clone()));
        }
    }

    /// Whether a group's cached verdict is as of now: judged this tick, or since its process
    /// exited (its series no longer changes) and since the last compaction.
    fn fresh(&self, p: &ProcTrack, g: &GroupState) -> bool {
        match g.judged {
            Some(j) if j == self.ticks => true,
            Some(j) => p.exited_at.is_some() && j >= p.exit_tick && j >= self.compacted_at,
            None => false,
        }
    }

    fn verdict_of(&self, p: &ProcTrack, g: &GroupState) -> verdict::Verdict {
        if self.fresh(p, g) {
            g.verdict
        } else {
            judge_series(g, self.axis_first.unwrap_or(0.0))
        }
    }

    /// The slow cadence: an unchanged count can still change a verdict as time passes (a
    /// flat tail clears a leak; flat points after a step can make one, as can a bucket
    /// compaction), so each tick judges the next 1/[`REJUDGE_TICKS`] of all groups again,
    /// round robin: every verdict is at most that many ticks old, and a tick costs the
    /// changed groups plus that slice rather than every group.
    fn rejudge_slice(&mut self, dirty: &mut std::collections::BTreeSet<RKey>) {
        self.slice_credit += self.n_groups;
        let mut steps = self.slice_credit / REJUDGE_TICKS;
        self.slice_credit %= REJUDGE_TICKS;
        let mut wrapped = false;
        while steps > 0 {
            let next = self.procs.range(self.cursor.proc..).find_map(|(&s, p)| {
                let from = if s == self.cursor.proc {
                    self.cursor.group as usize
                } else {
                    0
                };
                (from < p.groups.len()).then_some(GroupId {
                    proc: s,
                    group: from as u32,
                })
            });
            let Some(id) = next else {
                if wrapped {
                    break;
                }
                wrapped = true;
                self.cursor = GroupId { proc: 0, group: 0 };
                continue;
            };
            self.cursor = GroupId {
                proc: id.proc,
                group: id.group + 1,
            };
            steps -= 1;
            let stale = self.procs.get(&id.proc).is_some_and(|p| {
                p.groups
                    .get(id.group as usize)
                    .is_some_and(|g| !self.fresh(p, g))
            });
            if stale {
                self.rejudge(id, false, dirty);
            }
        }
    }

    fn rejudge_rollup_slice(&mut self, dirty: &mut std::collections::BTreeSet<RKey>) {
        self.rollup_credit += self.rollups.len();
        let n = self.rollup_credit / REJUDGE_TICKS;
        self.rollup_credit %= REJUDGE_TICKS;
        if n == 0 {
            return;
        }
        let mut keys: Vec<RKey> = match &self.rollup_cursor {
            Some(c) => self
                .rollups
                .range::<RKey, _>((std::ops::Bound::Excluded(c), std::ops::Bound::Unbounded))
                .take(n)
                .map(|(k, _)| k.clone())
                .collect(),
            None => Vec::new(),
        };
        if keys.len() < n {
            let more: Vec<RKey> = self.rollups.keys().take(n - keys.len()).cloned().collect();
            keys.extend(more);
        }
        self.rollup_cursor = keys.last().cloned();
        dirty.extend(keys);
    }

    fn rejudge_rollup(&mut self, key: RKey) {
        let Some(r) = self.rollups.get(&key) else {
            return;
        };
        let report = self.compute_rollup(&key, r);
        let Some(r) = self.rollups.get_mut(&key) else {
            return;
        };
        r.judged = Some(self.ticks);
        let leaking = report.as_ref().is_some_and(|x| x.counts.leaking);
        r.cached = report;
        if leaking {
            self.leaking_rollups.insert(key);
        } else if r.members.is_empty() && r.folded.pids.is_empty() {
            self.leaking_rollups.remove(&key);
            self.rollups.remove(&key);
        } else {
            self.leaking_rollups.remove(&key);
        }
    }

    fn rollup_fresh(&self, r: &RollupState) -> bool {
        match r.judged {
            Some(j) if j == self.ticks => true,
            Some(j) => {
                j >= r.settled_at
                    && j >= self.compacted_at
                    && r.members.iter().all(|m| {
                        self.procs
                            .get(&m.proc)
                            .is_none_or(|p| p.exited_at.is_some())
                    })
            }
            None => false,
        }
    }

    /// Fold the exited processes past [`TrackOptions::keep_exited`], oldest first, those
    /// without a leaking group before those with one (whose groups the report lists).
    fn fold_excess(&mut self, dirty: &mut std::collections::BTreeSet<RKey>) {
        while self.exited_kept.len() > self.opts.keep_exited {
            let pos = self
                .exited_kept
                .iter()
                .position(|s| {
                    !self
                        .leaking
                        .range(
                            GroupId { proc: *s, group: 0 }..=GroupId {
                                proc: *s,
                                group: u32::MAX,
                            },
                        )
                        .any(|_| true)
                })
                .unwrap_or(0);
            let Some(serial) = self.exited_kept.remove(pos) else {
                break;
            };
            self.fold(serial, dirty);
        }
    }

    fn fold(&mut self, serial: u64, dirty: &mut std::collections::BTreeSet<RKey>) {
        let Some(p) = self.procs.get(&serial) else {
            return;
        };
        let t0_wall = self.t_first.unwrap_or(0.0);
        let verdicts: Vec<verdict::Verdict> =
            p.groups.iter().map(|g| self.verdict_of(p, g)).collect();
        let Some(p) = self.procs.remove(&serial) else {
            return;
        };
        self.index.remove(&p.id);
        for (gi, (g, v)) in p.groups.iter().zip(verdicts).enumerate() {
            let id = GroupId {
                proc: serial,
                group: gi as u32,
            };
            self.leaking.remove(&id);
            let key = (p.comm.clone(), g.kind, g.key.clone());
            let r = self.rollups.entry(key.clone()).or_default();
            r.members.remove(&id);
            r.folded.add(&p, g, v, t0_wall);
            r.settled_at = self.ticks;
            dirty.insert(key);
        }
        self.n_groups = self.n_groups.saturating_sub(p.groups.len());
        self.folded_procs += 1;
        self.folded_groups += p.groups.len() as u64;
    }

    /// Forget a process entirely: its groups, series and roll-up memberships, as if it had
    /// never been watched (a serve that stops reading it in depth and goes back to counting
    /// it). Unlike an exit, nothing of it stays for the report, so a week of processes that
    /// were read in depth for a while does not pile up. `false` when it was not tracked.
    pub fn forget(&mut self, id: ProcId) -> bool {
        let Some(serial) = self.index.remove(&id) else {
            return false;
        };
        let Some(p) = self.procs.remove(&serial) else {
            return false;
        };
        self.exited_kept.retain(|s| *s != serial);
        self.touched.retain(|s| *s != serial);
        self.changed.retain(|g| g.proc != serial);
        for (gi, g) in p.groups.iter().enumerate() {
            let gid = GroupId {
                proc: serial,
                group: gi as u32,
            };
            self.leaking.remove(&gid);
            let key = (p.comm.clone(), g.kind, g.key.clone());
            if let Some(r) = self.rollups.get_mut(&key) {
                r.members.remove(&gid);
                r.settled_at = self.ticks;
                self.rejudge_rollup(key);
            }
        }
        self.n_groups = self.n_groups.saturating_sub(p.groups.len());
        true
    }

    /// Ticks taken in so far.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// How many processes and groups the tracker holds in full, and how many exited
    /// processes it has folded into summaries: what bounds its memory on a long watch.
    pub fn retained(&self) -> Retained {
        Retained {
            processes: self.procs.len(),
            groups: self.n_groups,
            rollups: self.rollups.len(),
            folded_processes: self.folded_procs,
            folded_groups: self.folded_groups,
            folded_entries: self
                .rollups
                .values()
                .map(|r| r.folded.single.len() + r.folded.multi.iter().map(Vec::len).sum::<usize>())
                .sum(),
        }
    }

    /// Current count and normalized key of the group an fd of `id` belongs to.
    pub fn group_of(&self, id: ProcId, e: &FdEntry) -> Option<(Kind, String)> {
        let p = self.procs.get(self.index.get(&id)?)?;
        if !self.opts.keeps(e) {
            return None;
        }
        Some((e.kind(), group::key(e, self.opts.group_by, &p.listeners)))
    }

    /// The full result as of the latest tick, from the cached verdicts (only those not
    /// current are judged here).
    pub fn report(&self) -> Report {
        let duration_secs = match (self.t_first, self.t_last) {
            (Some(a), Some(b)) => b - a,
            _ => 0.0,
        };
        let achieved_interval_secs =
            (self.ticks >= 2).then(|| duration_secs / (self.ticks - 1) as f64);
        let tick_secs = achieved_interval_secs.unwrap_or(self.interval_secs);
        let mut processes = Vec::new();
        let mut groups = Vec::new();
        // Series are on the slope axis; the timeline is shown on unix time.
        let shift = self.t_first.unwrap_or(0.0) - self.axis_first.unwrap_or(0.0);
        for p in self.procs.values() {
            let mut leak_rate = 0.0;
            for (gi, g) in p.groups.iter().enumerate() {
                let v = self.verdict_of(p, g);
                if v.leaking {
                    leak_rate += v.rate_per_sec;
                }
                let (t, y) = g.series.points();
                let survivor_fds = if v.leaking {
                    survivors_of(p, gi)
                } else {
                    Vec::new()
                };
                groups.push(GroupReport {
                    pid: p.id.pid,
                    comm: p.comm.clone(),
                    kind: g.kind,
                    key: g.key.clone(),
                    counts: Counts {
                        start: g.start,
                        end: g.count,
                        peak: g.peak,
                        opened: g.opened,
                        closed: g.closed,
                        survivors: g.survivors,
                        rate_per_sec: v.rate_per_sec,
                        leaking: v.leaking,
                    },
                    examples: g.examples.clone(),
                    series: model::downsample(&y),
                    timeline: timeline_of(&t, &y, shift),
                    survivor_fds,
                });
            }
            let eta = if p.exited_at.is_none() {
                verdict::eta_to_limit(p.fds_now, p.fd_limit.soft, leak_rate)
            } else {
                None
            };
            processes.push(ProcessReport {
                pid: p.id.pid,
                comm: p.comm.clone(),
                cmdline: p.cmdline.clone(),
                start_time: p.id.start_time,
                fd_limit: p.fd_limit,
                fds_start: p.fds_start,
                fds_end: p.fds_now,
                fds_peak: p.fds_peak,
                first_seen: p.first_seen,
                exited: p.exited_at.is_some(),
                exited_at: p.exited_at,
                leak_rate_per_sec: leak_rate,
                eta_to_limit_secs: eta,
                exited_at_fd_limit: p.exited_at.is_some()
                    && at_limit(p.fds_now, p.fd_limit.soft, leak_rate * tick_secs),
            });
        }
        let growth = |c: &Counts| c.end as i64 - c.start as i64;
        groups.sort_by(|a, b| {
            a.counts
                .severity(&b.counts)
                .then(growth(&b.counts).cmp(&growth(&a.counts)))
                .then(a.pid.cmp(&b.pid))
                .then(a.kind.cmp(&b.kind))
                .then(a.key.cmp(&b.key))
        });
        let mut rollup: Vec<RollupReport> = self
            .rollups
            .iter()
            .filter_map(|(k, r)| {
                let mut out = if self.rollup_fresh(r) {
                    r.cached.clone()
                } else {
                    self.compute_rollup(k, r)
                }?;
                out.pids = self.rollup_pids(r);
                Some(out)
            })
            .collect();
        rollup.sort_by(|a, b| {
            a.counts
                .severity(&b.counts)
                .then(a.comm.cmp(&b.comm))
                .then(a.key.cmp(&b.key))
        });
        let leaking =
            groups.iter().any(|g| g.counts.leaking) || rollup.iter().any(|r| r.counts.leaking);
        Report {
            schema: REPORT_SCHEMA.to_owned(),
            interval_secs: self.interval_secs,
            duration_secs,
            ticks: self.ticks,
            achieved_interval_secs,
            started_at: self.t_first,
            ended_at: self.t_last,
            processes,
            groups,
            rollup,
            leaking,
            // Known to the source, not the tracker: the caller fills it in.
            unwatched: Vec::new(),
            folded_processes: self.folded_procs,
            // Known to the stacks tracer of `run --stacks`: the caller fills it in.
            stacks: None,
        }
    }

    /// The same key over every process of one command: the sum, per bucket, of the counts of
    /// the members alive in that bucket. A member that exited stops contributing at its exit
    /// (the kernel freed its fds), so a pool whose workers die holding a few fds and are
    /// replaced does not climb; a leak inside workers that are recycled is still found by
    /// each member's own verdict, and said to be masked by the respawns. Folded members count
    /// through what they left in [`Folded`].
    /// Every distinct pid of a roll-up's members, kept whole or folded, in order.
    fn rollup_pids(&self, r: &RollupState) -> Vec<i32> {
        let mut pids: Vec<i32> = r
            .members
            .iter()
            .filter_map(|m| self.procs.get(&m.proc).map(|p| p.id.pid))
            .chain(r.folded.pids.iter().copied())
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// A roll-up's result, without its `pids` (see [`Tracker::rollup_pids`]); None while it
    /// spans fewer than two processes.
    fn compute_rollup(&self, key: &RKey, r: &RollupState) -> Option<RollupReport> {
        let t0 = self.axis_first.unwrap_or(0.0);
        let t0_wall = self.t_first.unwrap_or(0.0);
        let (comm, kind, k) = key;
        // Only how many distinct pids: the list itself (thousands, in a pool that respawns)
        // is built by the report, not on every tick.
        let mut extra: Vec<i32> = r
            .members
            .iter()
            .filter_map(|m| self.procs.get(&m.proc).map(|p| p.id.pid))
            .filter(|pid| !r.folded.pids.contains(pid))
            .collect();
        extra.sort_unstable();
        extra.dedup();
        if r.folded.pids.len() + extra.len() < 2 {
            return None;
        }
        let nb = self.clock.buckets();
        let mut sum = vec![0.0f64; nb];
        let mut tsum = vec![(0.0f64, 0.0f64); nb];
        let f = &r.folded;
        let mut c = Counts {
            opened: f.opened,
            closed: f.closed,
            survivors: f.survivors,
            ..Counts::default()
        };
        let mut leaking_rates = f.rates.clone();
        let mut leaking_lives = f.lives.clone();
        let mut leaking_members = f.leaking_members;
        let mut leaking_exited = f.leaking_exited;
        for (b, &(t, v, m)) in f.sum.iter().enumerate() {
            if let (Some(slot), Some(ts)) = (sum.get_mut(b), tsum.get_mut(b)) {
                *slot += v;
                ts.0 += t;
                ts.1 += m;
            }
        }
        // (pid, headroom to its limit, its own slope of this group) of live members.
        let mut live = Vec::new();
        for m in &r.members {
            let Some(p) = self.procs.get(&m.proc) else {
                continue;
            };
            let Some(g) = p.groups.get(m.group as usize) else {
                continue;
            };
            // Start, end and peak are of the live sum; opens and closes of every member.
            if p.exited_at.is_none() {
                c.end += g.count;
            }
            c.opened += g.opened;
            c.closed += g.closed;
            c.survivors += g.survivors;
            // What the member holds while it lives: the sum is what the command holds,
            // so a worker replaced by one holding the same is no change.
            for (b, t, v) in g.series.by_bucket_as_seen() {
                if let (Some(slot), Some(ts)) = (sum.get_mut(b), tsum.get_mut(b)) {
                    *slot += v;
                    ts.0 += t;
                    ts.1 += 1.0;
                }
            }
            let own = self.verdict_of(p, g);
            if own.leaking {
                leaking_rates.push(own.rate_per_sec);
                leaking_members += 1;
                if let Some(at) = p.exited_at {
                    leaking_exited = true;
                    leaking_lives.push(at - p.first_seen.max(t0_wall));
                }
            }
            if p.exited_at.is_none() {
                live.push((p.id.pid, p.fd_limit.soft, p.fds_now, own.rate_per_sec));
            }
        }
        let (t, y): (Vec<f64>, Vec<f64>) = tsum
            .iter()
            .zip(&sum)
            .filter(|((_, n), _)| *n > 0.0)
            .map(|((ts, n), v)| (ts / n - t0, *v))
            .unzip();
        let v = verdict::judge(&t, &y, c.survivors);
        c.start = y.first().map_or(0, |&x| x.round() as u64);
        c.peak = y.iter().fold(c.end, |m, &x| m.max(x.round() as u64));
        let leaking = v.leaking || leaking_members > 0;
        let (eta_to_limit_secs, eta_pid) = if leaking {
            nearest_to_limit(
                &live,
                v.rate_per_sec.max(median(&leaking_rates).unwrap_or(0.0)),
            )
        } else {
            (None, None)
        };
        Some(RollupReport {
            comm: comm.clone(),
            pids: Vec::new(),
            kind: *kind,
            key: k.clone(),
            counts: Counts {
                rate_per_sec: v.rate_per_sec,
                leaking,
                ..c
            },
            series: model::downsample(&y),
            leaking_members,
            masked_by_respawn: !v.leaking && leaking_exited,
            member_rate_per_sec: median(&leaking_rates),
            member_lifetime_secs: median(&leaking_lives),
            eta_to_limit_secs,
            eta_pid,
        })
    }
}

/// What a [`Tracker`] holds (see [`Tracker::retained`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retained {
    /// Processes kept in full, live and exited.
    pub processes: usize,
    /// Their groups.
    pub groups: usize,
    /// Roll-up keys (command, kind, key), each with its folded summary.
    pub rollups: usize,
    /// Exited processes folded into roll-up summaries so far.
    pub folded_processes: u64,
    /// The groups those processes had.
    pub folded_groups: u64,
    /// Bucket entries the folded summaries hold (bounded by the buckets and the members
    /// alive at once, not by how many were folded).
    pub folded_entries: usize,
}

/// A group's timeline for the report: at most [`model::TIMELINE_POINTS`] points on unix time
/// (the series holds at most that many already; the cap keeps the schema's promise).
fn timeline_of(t: &[f64], y: &[f64], shift: f64) -> Vec<(f64, f64)> {
    let step = t.len().div_ceil(model::TIMELINE_POINTS).max(1);
    t.iter()
        .zip(y)
        .step_by(step)
        .map(|(t, y)| (round3(t + shift), (y * 100.0).round() / 100.0))
        .collect()
}

/// Milliseconds are plenty for a plot and keep the JSON short.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The fds of group `gi` opened during the watch and still open: what a leak left behind.
fn survivors_of(p: &ProcTrack, gi: usize) -> Vec<i32> {
    let mut fds: Vec<i32> = p
        .fds
        .iter()
        .filter(|(_, s)| s.new && s.group == Some(gi))
        .map(|(&fd, _)| fd)
        .collect();
    fds.sort_unstable();
    fds.truncate(model::SURVIVOR_FDS);
    fds
}

/// Whether `fds` last seen is at its soft `limit`, give or take what one tick of growth
/// (`per_tick`) or a couple of fds opened between the last tick and the exit account for.
fn at_limit(fds: u64, limit: Option<u64>, per_tick: f64) -> bool {
    let Some(limit) = limit.filter(|&l| l > 0) else {
        return false;
    };
    let slack = (per_tick.max(0.0).ceil() as u64).clamp(2, (limit / 10).max(2));
    fds + slack >= limit
}

fn median(v: &[f64]) -> Option<f64> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    Some(if s.len() % 2 == 0 {
        (s[m - 1] + s[m]) / 2.0
    } else {
        s[m]
    })
}

/// The live member that reaches its soft fd limit first, and when: each at its own rate of the
/// group when that grows, else at the roll-up's rate shared evenly among the live members (a
/// leak spread over a pool grows each member by its share).
fn nearest_to_limit(
    live: &[(i32, Option<u64>, u64, f64)],
    rollup_rate: f64,
) -> (Option<f64>, Option<i32>) {
    let share = rollup_rate / live.len().max(1) as f64;
    live.iter()
        .filter_map(|&(pid, soft, now, own)| {
            let rate = if own > 0.0 { own.max(share) } else { share };
            verdict::eta_to_limit(now, soft, rate).map(|e| (e, pid))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map_or((None, None), |(e, pid)| (Some(e), Some(pid)))
}

impl ProcTrack {
    /// Note that the tick in progress changed group `gi`.
    fn touch(&mut self, gi: usize) {
        if let Some(g) = self.groups.get_mut(gi)
            && g.touched_at != self.tick
        {
            g.touched_at = self.tick;
            self.touched.push(gi as u32);
        }
    }

    fn open(
        &mut self,
        e: &Arc<FdEntry>,
        opts: &TrackOptions,
        new: bool,
        bucket: usize,
        zero_at: Option<f64>,
    ) {
        if !opts.keeps(e) {
            self.fds.insert(e.fd, FdSlot { group: None, new });
            return;
        }
        let key = group::key(e, opts.group_by, &self.listeners);
        let kind = e.kind();
        let gi = match self.group_index.get(&(kind, key.clone())) {
            Some(&gi) => gi,
            None => {
                let gi = self.groups.len();
                self.groups.push(GroupState {
                    kind,
                    key: key.clone(),
                    count: 0,
                    start: 0,
                    peak: 0,
                    opened: 0,
                    closed: 0,
                    survivors: 0,
                    examples: Vec::new(),
                    examples_new: false,
                    series: Series::starting_at(bucket, if new { zero_at } else { None }),
                    verdict: verdict::Verdict {
                        leaking: false,
                        rate_per_sec: 0.0,
                    },
                    judged: None,
                    touched_at: 0,
                });
                self.group_index.insert((kind, key), gi);
                gi
            }
        };
        self.touch(gi);
        let g = &mut self.groups[gi];
        g.count += 1;
        g.peak = g.peak.max(g.count);
        if new {
            g.opened += 1;
            g.survivors += 1;
            if !g.examples_new {
                g.examples.clear();
                g.examples_new = true;
            }
        }
        if g.examples.len() < EXAMPLES {
            let ex = crate::snapshot::describe::what(e);
            if !g.examples.contains(&ex) {
                g.examples.push(ex);
            }
        }
        self.fds.insert(
            e.fd,
            FdSlot {
                group: Some(gi),
                new,
            },
        );
    }

    fn close(&mut self, e: &Arc<FdEntry>) {
        self.listeners.remove(e);
        let Some(slot) = self.fds.remove(&e.fd) else {
            return;
        };
        let Some(gi) = slot.group else { return };
        self.touch(gi);
        let g = &mut self.groups[gi];
        g.count = g.count.saturating_sub(1);
        g.closed += 1;
        if slot.new {
            g.survivors = g.survivors.saturating_sub(1);
        }
        self.last_closes.push((gi, slot.new));
    }

    /// A process that closed most of its fds in its last tick and then exited was shutting
    /// down (an interpreter finalising its file objects, the kernel's own close at exit):
    /// closing everything on the way out does not fix a leak, so that tick's closes are taken
    /// back and the groups end where the process was still running.
    fn undo_shutdown_closes(&mut self) {
        let n = self.last_closes.len() as u64;
        if n < SHUTDOWN_MIN_CLOSES || n * 2 < self.fds_before_last {
            return;
        }
        let mut per_group: HashMap<usize, f64> = HashMap::new();
        for (gi, new) in std::mem::take(&mut self.last_closes) {
            self.touch(gi);
            let g = &mut self.groups[gi];
            g.count += 1;
            g.closed = g.closed.saturating_sub(1);
            if new {
                g.survivors += 1;
            }
            *per_group.entry(gi).or_default() += 1.0;
        }
        for (gi, k) in per_group {
            self.groups[gi].series.bump_last(k);
        }
        self.fds_now = self.fds_before_last.max(self.fds_now);
        self.last_closes.clear();
    }
}

/// Feed one tick to `tracker`: the same as [`Tracker::feed`], for callers written before it.
pub fn feed(tracker: &mut Tracker, tick: &crate::source::Tick) {
    tracker.feed(tick);
}
