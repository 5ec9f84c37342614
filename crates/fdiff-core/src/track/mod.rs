//! Track: keeps every watched process's groups and their series over time, and turns them into
//! a [`Report`] with a leak verdict per group, roll-ups across processes and an ETA to the limit.

pub mod compare;
pub mod group;
pub mod model;
pub(crate) mod series;
pub mod verdict;

pub use group::GroupBy;
pub use model::{
    Counts, DiffReport, GroupReport, ProcessReport, REPORT_SCHEMA, Report, RollupReport,
};

use crate::diff::Delta;
use crate::snapshot::{FdEntry, FdLimit, Kind, ProcId, Snapshot};
use group::Listeners;
use regex::Regex;
use series::{Clock, Series};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What to group by and which fds to count at all.
#[derive(Debug, Clone, Default)]
pub struct TrackOptions {
    /// What an fd's key keeps of its target.
    pub group_by: GroupBy,
    /// Keep only fds whose target matches (`--match`).
    pub include: Option<Regex>,
    /// Drop fds whose target matches (`--exclude`).
    pub exclude: Option<Regex>,
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

/// All state of a watch, fed tick by tick by the pipeline (live or from a recording).
pub struct Tracker {
    opts: TrackOptions,
    interval_secs: f64,
    clock: Clock,
    ticks: u64,
    t_first: Option<f64>,
    t_last: Option<f64>,
    /// Time of the tick before the one in progress: where a group born in this tick had zero.
    t_prev: Option<f64>,
    procs: Vec<ProcTrack>,
    index: HashMap<ProcId, usize>,
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
    groups: Vec<GroupState>,
    group_index: HashMap<(Kind, String), usize>,
    fds: HashMap<i32, FdSlot>,
    listeners: Listeners,
    /// The closes of its latest tick (group, opened during the watch), kept until the next
    /// tick so that a shutdown can be told from a fix.
    last_closes: Vec<(usize, bool)>,
    fds_before_last: u64,
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
            t_prev: None,
            procs: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Start a tick at unix time `t`.
    pub fn begin_tick(&mut self, t: f64) {
        self.ticks += 1;
        self.t_first.get_or_insert(t);
        self.t_prev = self.t_last;
        self.t_last = Some(t);
        if self.clock.tick(t) {
            for p in &mut self.procs {
                for g in &mut p.groups {
                    g.series.compact();
                }
            }
        }
    }

    /// A process seen for the first time: its snapshot is the baseline.
    pub fn first(&mut self, snap: &Snapshot) {
        let id = snap.proc_id();
        if self.index.contains_key(&id) {
            return;
        }
        let n = snap.fds.len() as u64;
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
            groups: Vec::new(),
            group_index: HashMap::new(),
            fds: HashMap::with_capacity(snap.fds.len()),
            listeners: Listeners::default(),
            last_closes: Vec::new(),
            fds_before_last: n,
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
        self.index.insert(id, self.procs.len());
        self.procs.push(p);
    }

    /// The changes of a known process since its last tick.
    pub fn update(&mut self, snap: &Snapshot, delta: &Delta) {
        let Some(&i) = self.index.get(&snap.proc_id()) else {
            return;
        };
        let p = &mut self.procs[i];
        p.fd_limit = snap.fd_limit;
        if p.comm != snap.comm {
            p.comm.clone_from(&snap.comm);
            p.cmdline.clone_from(&snap.cmdline);
        }
        let bucket = self.clock.bucket();
        let prev_t = self.t_prev;
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
    }

    /// The process is gone (exited, or its pid now names another process).
    pub fn exited(&mut self, id: ProcId, at: f64) {
        if let Some(&i) = self.index.get(&id) {
            let p = &mut self.procs[i];
            if p.exited_at.is_none() {
                p.undo_shutdown_closes();
            }
            p.exited_at.get_or_insert(at);
            // Its groups and series stay for the report; the per-fd map is no longer needed,
            // so a week of respawning workers does not pile up fd tables.
            p.fds = HashMap::new();
            p.listeners = Listeners::default();
        }
    }

    /// End the tick: every live process's groups record their count.
    pub fn end_tick(&mut self) {
        let bucket = self.clock.bucket();
        let t = self.t_last.unwrap_or(0.0);
        for p in self.procs.iter_mut().filter(|p| p.exited_at.is_none()) {
            for g in &mut p.groups {
                g.series.add(bucket, t, g.count as f64);
            }
        }
    }

    /// Ticks taken in so far.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// Current count and normalized key of the group an fd of `id` belongs to.
    pub fn group_of(&self, id: ProcId, e: &FdEntry) -> Option<(Kind, String)> {
        let p = &self.procs[*self.index.get(&id)?];
        if !self.opts.keeps(e) {
            return None;
        }
        Some((e.kind(), group::key(e, self.opts.group_by, &p.listeners)))
    }

    /// What the watch found so far.
    pub fn report(&self) -> Report {
        let t0 = self.t_first.unwrap_or(0.0);
        let duration_secs = match (self.t_first, self.t_last) {
            (Some(a), Some(b)) => b - a,
            _ => 0.0,
        };
        let achieved_interval_secs =
            (self.ticks >= 2).then(|| duration_secs / (self.ticks - 1) as f64);
        let tick_secs = achieved_interval_secs.unwrap_or(self.interval_secs);
        let mut processes = Vec::new();
        let mut groups = Vec::new();
        for p in &self.procs {
            let mut leak_rate = 0.0;
            for g in &p.groups {
                let (t, y) = g.series.points();
                let t: Vec<f64> = t.iter().map(|x| x - t0).collect();
                let v = verdict::judge(&t, &y, g.survivors);
                if v.leaking {
                    leak_rate += v.rate_per_sec;
                }
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
        let rollup = self.rollup(t0);
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
        }
    }

    /// The same key over every process of one command: the sum, per bucket, of the counts of
    /// the members alive in that bucket. A member that exited stops contributing at its exit
    /// (the kernel freed its fds), so a pool whose workers die holding a few fds and are
    /// replaced does not climb; a leak inside workers that are recycled is still found by
    /// each member's own verdict, and said to be masked by the respawns.
    fn rollup(&self, t0: f64) -> Vec<RollupReport> {
        type RKey = (String, Kind, String);
        let mut members: BTreeMap<RKey, Vec<(usize, usize)>> = BTreeMap::new();
        for (pi, p) in self.procs.iter().enumerate() {
            for (gi, g) in p.groups.iter().enumerate() {
                members
                    .entry((p.comm.clone(), g.kind, g.key.clone()))
                    .or_default()
                    .push((pi, gi));
            }
        }
        let mut out = Vec::new();
        for ((comm, kind, key), list) in members {
            let mut pids: Vec<i32> = list.iter().map(|&(pi, _)| self.procs[pi].id.pid).collect();
            pids.sort_unstable();
            pids.dedup();
            if pids.len() < 2 {
                continue;
            }
            let nb = self.clock.buckets();
            let mut sum = vec![0.0f64; nb];
            let mut tsum = vec![(0.0f64, 0u32); nb];
            let mut c = Counts::default();
            let mut leaking_rates = Vec::new();
            let mut leaking_lives = Vec::new();
            let mut leaking_exited = false;
            // (pid, headroom to its limit, its own slope of this group) of live members.
            let mut live = Vec::new();
            for &(pi, gi) in &list {
                let p = &self.procs[pi];
                let g = &p.groups[gi];
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
                        ts.1 += 1;
                    }
                }
                let (t, y) = g.series.points();
                let t: Vec<f64> = t.iter().map(|x| x - t0).collect();
                let own = verdict::judge(&t, &y, g.survivors);
                if own.leaking {
                    leaking_rates.push(own.rate_per_sec);
                    if let Some(at) = p.exited_at {
                        leaking_exited = true;
                        leaking_lives.push(at - p.first_seen.max(t0));
                    }
                }
                if p.exited_at.is_none() {
                    live.push((p.id.pid, p.fd_limit.soft, p.fds_now, own.rate_per_sec));
                }
            }
            let (t, y): (Vec<f64>, Vec<f64>) = tsum
                .iter()
                .zip(&sum)
                .filter(|((_, n), _)| *n > 0)
                .map(|((ts, n), v)| (ts / f64::from(*n) - t0, *v))
                .unzip();
            let v = verdict::judge(&t, &y, c.survivors);
            c.start = y.first().map_or(0, |&x| x.round() as u64);
            c.peak = y.iter().fold(c.end, |m, &x| m.max(x.round() as u64));
            let leaking = v.leaking || !leaking_rates.is_empty();
            let (eta_to_limit_secs, eta_pid) = if leaking {
                nearest_to_limit(
                    &live,
                    v.rate_per_sec.max(median(&leaking_rates).unwrap_or(0.0)),
                )
            } else {
                (None, None)
            };
            out.push(RollupReport {
                comm,
                pids,
                kind,
                key,
                counts: Counts {
                    rate_per_sec: v.rate_per_sec,
                    leaking,
                    ..c
                },
                series: model::downsample(&y),
                leaking_members: leaking_rates.len() as u64,
                masked_by_respawn: !v.leaking && leaking_exited,
                member_rate_per_sec: median(&leaking_rates),
                member_lifetime_secs: median(&leaking_lives),
                eta_to_limit_secs,
                eta_pid,
            });
        }
        out.sort_by(|a, b| {
            a.counts
                .severity(&b.counts)
                .then(a.comm.cmp(&b.comm))
                .then(a.key.cmp(&b.key))
        });
        out
    }
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
                });
                self.group_index.insert((kind, key), gi);
                gi
            }
        };
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
        for &(gi, new) in &self.last_closes {
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

/// Feed one tick's events to `tracker`: what every consumer of a source does per tick.
pub fn feed(tracker: &mut Tracker, tick: &crate::source::Tick) {
    use crate::source::Event;
    tracker.begin_tick(tick.t);
    for ev in &tick.events {
        match ev {
            Event::First(s) => tracker.first(s),
            Event::Update { snapshot, delta } => tracker.update(snapshot, delta),
            Event::Exited { id, at } => tracker.exited(*id, *at),
        }
    }
    tracker.end_tick();
}
