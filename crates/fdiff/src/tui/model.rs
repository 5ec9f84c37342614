//! What the live view shows, as owned data: built from the tracker's view on the sampling
//! thread each tick and handed whole to the drawing thread, which never touches the tracker.

use crate::report::live::entry_line;
use crate::source::{Event, Tick};
use crate::track::Tracker;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Points kept per process for the chart; past it every other point is dropped, so a long
/// watch keeps its whole span at half the resolution.
const HISTORY_POINTS: usize = 1024;
/// Latest opens and closes kept for their pane.
const EVENTS_KEPT: usize = 200;
/// Examples kept per group (the latest opened fds).
const EXAMPLES: usize = 5;
/// Points of a row's sparkline.
pub const SPARK_POINTS: usize = 24;
/// Rows whose sparkline is computed each tick; the rest show none (a watch of thousands of
/// groups would otherwise rebuild thousands of timelines per tick for rows nobody sees).
const SPARK_ROWS: usize = 300;

/// One watched process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcRow {
    pub pid: i32,
    pub comm: String,
    pub fds: u64,
    pub soft_limit: Option<u64>,
    pub exited: bool,
    pub leak_rate: f64,
    pub eta_secs: Option<f64>,
    /// (seconds since the watch began, open fds).
    pub history: Vec<(f64, f64)>,
}

/// One process's share of a group (the detail view's per-process split).
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub pid: i32,
    pub comm: String,
    pub count: u64,
    pub opened: u64,
    pub closed: u64,
    pub rate: f64,
    pub leaking: bool,
}

/// How a group's verdict stands as it forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    /// Judged leaking.
    Leak,
    /// Grows, not (yet) a leak.
    Growing,
    /// Opens and closes that keep the count level.
    Churn,
    /// Nothing moves.
    Steady,
    /// Shrinks.
    Falling,
}

impl Standing {
    pub fn label(self) -> &'static str {
        match self {
            Standing::Leak => "LEAK",
            Standing::Growing => "growing",
            Standing::Churn => "churn",
            Standing::Steady => "steady",
            Standing::Falling => "falling",
        }
    }
}

/// One group: a kind and key, summed over the processes that have it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub kind: String,
    /// The key, escaped for the terminal.
    pub key: String,
    pub count: u64,
    pub opened: u64,
    pub closed: u64,
    pub rate: f64,
    pub standing: Standing,
    /// The tick its leak verdict came (shown marked that tick).
    pub leak_since: Option<u64>,
    /// Mean count per sparkline point, oldest first (empty when not computed).
    pub spark: Vec<f64>,
    /// (seconds since the watch began, count), for the chart, leaking groups only.
    pub timeline: Vec<(f64, f64)>,
    pub members: Vec<Member>,
    /// The latest fds opened in it, as `17 file /tmp/x`.
    pub examples: Vec<String>,
}

impl GroupRow {
    /// The text the filter matches.
    pub fn matches(&self, needle: &str) -> bool {
        if needle.is_empty() {
            return true;
        }
        let n = needle.to_lowercase();
        self.kind.to_lowercase().contains(&n)
            || self.key.to_lowercase().contains(&n)
            || self
                .members
                .iter()
                .any(|m| m.comm.to_lowercase().contains(&n) || m.pid.to_string().contains(&n))
    }
}

/// One line of the latest opens and closes: a group's over one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub elapsed: f64,
    pub kind: String,
    pub key: String,
    pub opened: u64,
    pub closed: u64,
    /// Ticks in a row this group moved the same way, folded into this line.
    pub repeats: u64,
}

/// Everything one frame shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Model {
    pub ticks: u64,
    pub elapsed: f64,
    pub interval: f64,
    pub procs: Vec<ProcRow>,
    pub groups: Vec<GroupRow>,
    /// Newest first.
    pub events: Vec<EventRow>,
    /// As told (escaped where drawn).
    pub warnings: Vec<String>,
    /// Why the watch ended, once it has.
    pub ended: Option<String>,
}

/// Text from outside, escaped for the terminal.
fn esc(s: &str) -> String {
    crate::util::escape_control(s).into_owned()
}

/// Builds a [`Model`] tick after tick: what the tracker's view does not keep (per-process
/// totals over time, the latest opens and closes, examples, when a leak was first seen).
#[derive(Default)]
pub struct Collector {
    interval: f64,
    t0: Option<f64>,
    history: HashMap<(i32, u64), Vec<(f64, f64)>>,
    events: VecDeque<EventRow>,
    examples: HashMap<(String, String), VecDeque<String>>,
    leak_since: HashMap<(String, String), u64>,
    pub warnings: Vec<String>,
}

impl Collector {
    pub fn new(interval: f64) -> Collector {
        Collector {
            interval,
            ..Collector::default()
        }
    }

    /// Take in one tick (after the tracker has) and build the frame for it.
    pub fn update(&mut self, tick: &Tick, tracker: &Tracker) -> Model {
        let t0 = *self.t0.get_or_insert(tick.t);
        let elapsed = tick.mono.unwrap_or(tick.t - t0).max(0.0);
        self.take_events(tick, tracker, elapsed);
        let view = tracker.view();
        let mut procs = Vec::new();
        for p in view.processes() {
            let h = self.history.entry((p.pid(), p.serial())).or_default();
            if !p.exited() || h.last().is_none_or(|l| l.1 != 0.0) {
                let fds = if p.exited() { 0.0 } else { p.fds() as f64 };
                if h.last().is_none_or(|l| l.0 < elapsed) {
                    h.push((elapsed, fds));
                }
                if h.len() > HISTORY_POINTS {
                    let kept: Vec<_> = h.iter().copied().step_by(2).collect();
                    *h = kept;
                }
            }
            procs.push(ProcRow {
                pid: p.pid(),
                comm: esc(p.comm()),
                fds: if p.exited() { 0 } else { p.fds() },
                soft_limit: p.fd_limit().soft,
                exited: p.exited(),
                leak_rate: p.leak_rate_per_sec(),
                eta_secs: p.eta_to_limit_secs(),
                history: h.clone(),
            });
        }
        // Groups summed per (kind, key) over processes: one row per thing that leaks, its
        // per-process split in the detail view.
        let mut rows: BTreeMap<(String, String), GroupRow> = BTreeMap::new();
        let shift = t0;
        for p in view.processes() {
            for g in p.groups() {
                let k = (g.kind().as_str().to_owned(), g.key().to_owned());
                let v = g.verdict();
                let row = rows.entry(k.clone()).or_insert_with(|| GroupRow {
                    kind: k.0.clone(),
                    key: esc(&k.1),
                    count: 0,
                    opened: 0,
                    closed: 0,
                    rate: 0.0,
                    standing: Standing::Steady,
                    leak_since: None,
                    spark: Vec::new(),
                    timeline: Vec::new(),
                    members: Vec::new(),
                    examples: Vec::new(),
                });
                if !p.exited() {
                    row.count += g.count();
                }
                row.opened += g.opened();
                row.closed += g.closed();
                row.rate += v.rate_per_sec;
                row.members.push(Member {
                    pid: g.pid(),
                    comm: esc(g.comm()),
                    count: if p.exited() { 0 } else { g.count() },
                    opened: g.opened(),
                    closed: g.closed(),
                    rate: v.rate_per_sec,
                    leaking: v.leaking,
                });
                if v.leaking {
                    row.standing = Standing::Leak;
                }
            }
        }
        for (k, row) in rows.iter_mut() {
            if row.standing != Standing::Leak {
                row.standing = if row.rate > 0.05 && row.opened > row.closed {
                    Standing::Growing
                } else if row.rate < -0.05 && row.closed > row.opened {
                    Standing::Falling
                } else if row.opened > 0 || row.closed > 0 {
                    Standing::Churn
                } else {
                    Standing::Steady
                };
            } else {
                let since = *self.leak_since.entry(k.clone()).or_insert(view.ticks());
                row.leak_since = Some(since);
            }
            if let Some(ex) = self.examples.get(k) {
                row.examples = ex.iter().rev().cloned().collect();
            }
            row.members
                .sort_by(|a, b| b.count.cmp(&a.count).then(a.pid.cmp(&b.pid)));
        }
        let mut groups: Vec<GroupRow> = rows.into_values().collect();
        sort_rows(&mut groups, SortBy::Growth);
        // Timelines for the rows that will be seen first: sparklines, and the leaking groups'
        // lines on the chart.
        let wanted: Vec<(String, String, bool)> = groups
            .iter()
            .take(SPARK_ROWS)
            .map(|r| (r.kind.clone(), r.key.clone(), r.standing == Standing::Leak))
            .collect();
        let index: HashMap<(&str, &str), usize> = wanted
            .iter()
            .enumerate()
            .map(|(i, (k, key, _))| ((k.as_str(), key.as_str()), i))
            .collect();
        let mut sums: Vec<Vec<Vec<(f64, f64)>>> = vec![Vec::new(); wanted.len()];
        for p in view.processes() {
            for g in p.groups() {
                let key = esc(g.key());
                let Some(&i) = index.get(&(g.kind().as_str(), key.as_str())) else {
                    continue;
                };
                let tl: Vec<(f64, f64)> = g
                    .timeline()
                    .into_iter()
                    .map(|(t, y)| ((t - shift).max(0.0), y))
                    .collect();
                sums[i].push(tl);
            }
        }
        for (i, parts) in sums.into_iter().enumerate() {
            let row = &mut groups[i];
            row.spark = resample(&parts, elapsed, SPARK_POINTS);
            if wanted[i].2 {
                row.timeline = if parts.len() == 1 {
                    parts.into_iter().next().unwrap_or_default()
                } else {
                    let n = 128;
                    resample(&parts, elapsed, n)
                        .into_iter()
                        .enumerate()
                        .map(|(j, y)| (elapsed * (j as f64 + 0.5) / n as f64, y))
                        .collect()
                };
            }
        }
        Model {
            ticks: view.ticks(),
            elapsed,
            interval: self.interval,
            procs,
            groups,
            events: self.events.iter().cloned().collect(),
            warnings: self.warnings.clone(),
            ended: None,
        }
    }

    /// The opens and closes of this tick, folded per group, into the latest events.
    fn take_events(&mut self, tick: &Tick, tracker: &Tracker, elapsed: f64) {
        let mut per: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
        for ev in &tick.events {
            let Event::Update { snapshot, delta } = ev else {
                continue;
            };
            let id = snapshot.proc_id();
            for e in delta.all_opened() {
                let Some((kind, key)) = tracker.group_of(id, e) else {
                    continue;
                };
                let k = (kind.as_str().to_owned(), key);
                let ex = self.examples.entry(k.clone()).or_default();
                let line = format!("[{}] {}", id.pid, entry_line(e));
                ex.push_back(line);
                if ex.len() > EXAMPLES {
                    ex.pop_front();
                }
                per.entry(k).or_default().0 += 1;
            }
            for e in delta.all_closed() {
                if let Some((kind, key)) = tracker.group_of(id, e) {
                    per.entry((kind.as_str().to_owned(), key)).or_default().1 += 1;
                }
            }
        }
        for ((kind, key), (opened, closed)) in per {
            let key = esc(&key);
            // The same group moving the same way as in its latest line: one line, counted.
            if let Some(last) = self
                .events
                .iter_mut()
                .take(8)
                .find(|e| e.kind == kind && e.key == key)
                && (last.opened > 0) == (opened > 0)
                && (last.closed > 0) == (closed > 0)
            {
                last.opened += opened;
                last.closed += closed;
                last.repeats += 1;
                last.elapsed = elapsed;
                continue;
            }
            self.events.push_front(EventRow {
                elapsed,
                kind,
                key,
                opened,
                closed,
                repeats: 1,
            });
        }
        self.events.truncate(EVENTS_KEPT);
    }
}

/// Several timelines (each (t, count), t from 0 to `span`) summed onto `n` equal bins: each
/// bin the mean of a timeline's points in it, the last value carried into empty bins.
pub fn resample(parts: &[Vec<(f64, f64)>], span: f64, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n];
    if n == 0 {
        return out;
    }
    let span = span.max(1e-9);
    for tl in parts {
        let mut sum = vec![0.0; n];
        let mut cnt = vec![0u32; n];
        for &(t, y) in tl {
            let i = ((t / span) * n as f64).floor().clamp(0.0, (n - 1) as f64) as usize;
            sum[i] += y;
            cnt[i] += 1;
        }
        let mut last = None;
        for i in 0..n {
            if cnt[i] > 0 {
                last = Some(sum[i] / f64::from(cnt[i]));
            }
            if let Some(v) = last {
                out[i] += v;
            }
        }
    }
    out
}

/// The orders `s` cycles through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    /// Leaks first, then by rate of growth.
    #[default]
    Growth,
    /// Most fds now.
    Count,
    /// Most opens and closes (activity, churn included).
    Activity,
    /// Kind and key.
    Key,
}

impl SortBy {
    pub fn next(self) -> SortBy {
        match self {
            SortBy::Growth => SortBy::Count,
            SortBy::Count => SortBy::Activity,
            SortBy::Activity => SortBy::Key,
            SortBy::Key => SortBy::Growth,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SortBy::Growth => "growth",
            SortBy::Count => "count",
            SortBy::Activity => "activity",
            SortBy::Key => "key",
        }
    }
}

pub fn sort_rows(rows: &mut [GroupRow], by: SortBy) {
    let name = |a: &GroupRow, b: &GroupRow| (&a.kind, &a.key).cmp(&(&b.kind, &b.key));
    match by {
        SortBy::Growth => rows.sort_by(|a, b| {
            (a.standing != Standing::Leak)
                .cmp(&(b.standing != Standing::Leak))
                .then(b.rate.total_cmp(&a.rate))
                .then(b.count.cmp(&a.count))
                .then_with(|| name(a, b))
        }),
        SortBy::Count => {
            rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| name(a, b)));
        }
        SortBy::Activity => rows.sort_by(|a, b| {
            (b.opened + b.closed)
                .cmp(&(a.opened + a.closed))
                .then_with(|| name(a, b))
        }),
        SortBy::Key => rows.sort_by(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue11_resample_sums_members_and_carries_the_last_value() {
        let a = vec![(0.0, 1.0), (1.0, 2.0), (3.5, 4.0)];
        let b = vec![(0.0, 10.0)];
        assert_eq!(
            resample(&[a, b], 4.0, 4),
            vec![11.0, 12.0, 12.0, 14.0],
            "bins of 1 s: b carries 10 through, a's empty third bin carries 2"
        );
    }
}
