//! Live lines: by default one line per tick that changed something, a line per group whose
//! count moved, and a clear line the moment a leak is suspected or clears; `--verbose` adds
//! every fd opened and closed.

use super::human;
use crate::snapshot::{FdEntry, Kind, ProcId, describe};
use crate::source::{Event, Tick};
use crate::track::{ProcessView, Tracker, View};
use crate::util::escape_control;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Where finished lines go (a queue to a writer thread in the CLI, a Vec in tests).
pub trait Sink {
    fn line(&mut self, s: String);
}

impl Sink for Vec<String> {
    fn line(&mut self, s: String) {
        self.push(s);
    }
}

/// More processes than this changing in one tick are summarised per command.
const MANY: usize = 4;

pub struct LiveLines<S: Sink> {
    out: S,
    color: bool,
    /// Lines a tick may print (fds with --verbose, groups otherwise) before it summarises.
    max_lines: usize,
    verbose: bool,
    tick: u64,
    /// Leaks announced and not cleared since, with how many verdict checks in a row have not
    /// found them leaking.
    leaks: BTreeMap<LeakId, u32>,
    /// Leaks judged but not announced yet: since when every check has found them.
    pending: BTreeMap<LeakId, f64>,
    /// Tick time of the last verdict check, and whether a change since awaits one.
    verdict_at: Option<f64>,
    verdict_due: bool,
}

/// Verdicts are checked after a tick that changed something, but not more often than this
/// (a 10 ms watch would otherwise judge every group a hundred times a second)…
const VERDICT_EVERY_SECS: f64 = 0.2;
/// …and now and then without changes, since a leak that stopped growing clears with time.
const VERDICT_IDLE_SECS: f64 = 5.0;
/// A verdict on few points can flicker: a leak clears only after this many checks in a row
/// without it.
const CLEAR_AFTER_CHECKS: u32 = 3;
/// Likewise a leak is announced once every check over this long has found it: a pool filling
/// up at the start of a watch is growth for a moment, not a leak.
const CONFIRM_SECS: f64 = 1.0;

/// A leak as the live lines name it: a process's group or a roll-up over a command.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum LeakId {
    Group {
        pid: i32,
        kind: Kind,
        key: String,
    },
    Rollup {
        comm: String,
        kind: Kind,
        key: String,
    },
}

/// The net change of one group over one tick.
#[derive(Default, Clone, Copy)]
struct Net {
    opened: u64,
    closed: u64,
}

impl Net {
    fn net(&self) -> i64 {
        self.opened as i64 - self.closed as i64
    }
}

impl<S: Sink> LiveLines<S> {
    pub fn new(out: S, color: bool, max_lines: usize, verbose: bool) -> Self {
        LiveLines {
            out,
            color,
            max_lines: max_lines.max(4),
            verbose,
            tick: 0,
            leaks: BTreeMap::new(),
            pending: BTreeMap::new(),
            verdict_at: None,
            verdict_due: false,
        }
    }

    /// The sink, to finish it (the CLI's queue counts what it had to drop).
    pub fn into_sink(self) -> S {
        self.out
    }

    fn paint(&self, s: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    pub fn line(&mut self, s: &str) {
        self.out.line(s.to_owned());
    }

    /// Print the lines of one tick. `tracker` has already been fed the tick.
    pub fn tick(&mut self, tick: &Tick, tracker: &Tracker) {
        self.tick += 1;
        let changed = tick.events.iter().any(|e| match e {
            Event::Update { delta, .. } => delta.opened_count() + delta.closed_count() > 0,
            _ => true,
        });
        if changed {
            self.firsts_and_exits(tick);
            if self.verbose {
                self.fd_lines(tick, tracker);
                self.tick_line(tick);
            } else {
                self.tick_line(tick);
                self.group_lines(tick, tracker);
            }
        }
        self.verdict_due |= changed;
        let since = self.verdict_at.map_or(f64::INFINITY, |at| tick.t - at);
        if (self.verdict_due && since >= VERDICT_EVERY_SECS) || since >= VERDICT_IDLE_SECS {
            self.verdict_at = Some(tick.t);
            self.verdict_due = false;
            // The tracker's view holds verdicts judged where counts changed (and the rest
            // on a slow cadence): reading the leaking ones costs what leaks, not every group.
            self.verdicts(&tracker.view(), tick.t);
            // A leak on its way to being announced or cleared is checked again soon, changes
            // or not.
            self.verdict_due =
                !self.pending.is_empty() || self.leaks.values().any(|&misses| misses > 0);
        }
    }

    fn firsts_and_exits(&mut self, tick: &Tick) {
        let firsts: Vec<_> = tick
            .events
            .iter()
            .filter_map(|e| match e {
                Event::First(s) => Some(s),
                _ => None,
            })
            .collect();
        if firsts.len() > MANY {
            let fds: u64 = firsts.iter().map(|s| s.fds.len() as u64).sum();
            let comms = by_comm(firsts.iter().map(|s| s.comm.as_str()));
            let line = format!(
                "watching {} processes ({comms}): {} fds",
                human::count(firsts.len() as u64),
                human::count(fds)
            );
            self.line(&line);
        } else {
            for s in firsts {
                let limit = s.fd_limit.soft.map_or("no limit".to_owned(), |l| {
                    format!("limit {}", human::count(l))
                });
                let line = format!(
                    "watching pid {} ({}): {} fds, {}",
                    s.pid,
                    escape_control(&s.comm),
                    human::count(s.fds.len() as u64),
                    limit
                );
                self.line(&line);
            }
        }
        let exited: Vec<ProcId> = tick
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Exited { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        if exited.len() > MANY {
            let shown: Vec<String> = exited[..MANY].iter().map(|i| i.pid.to_string()).collect();
            let line = format!(
                "{} processes exited (pids {}, …)",
                human::count(exited.len() as u64),
                shown.join(", ")
            );
            let line = self.paint(&line, "33");
            self.line(&line);
        } else {
            for id in exited {
                let line = self.paint(&format!("pid {} exited", id.pid), "33");
                self.line(&line);
            }
        }
    }

    /// `--verbose`: every fd opened and closed, summarised per group past a screenful.
    fn fd_lines(&mut self, tick: &Tick, tracker: &Tracker) {
        let multi = tick.events.len() > 1;
        let changes: usize = tick
            .events
            .iter()
            .map(|e| match e {
                Event::Update { delta, .. } => delta.opened_count() + delta.closed_count(),
                _ => 0,
            })
            .sum();
        let summarise = changes > self.max_lines;
        for ev in &tick.events {
            let Event::Update { snapshot, delta } = ev else {
                continue;
            };
            let id = snapshot.proc_id();
            let prefix = if multi {
                format!("[{}] ", id.pid)
            } else {
                String::new()
            };
            if summarise {
                self.summary(&prefix, id, delta.all_closed(), "-", tracker);
                self.summary(&prefix, id, delta.all_opened(), "+", tracker);
            } else {
                for e in delta.all_closed() {
                    let l = format!("{prefix}{} {}", self.paint("-", "31"), entry_line(e));
                    self.line(&l);
                }
                for e in delta.all_opened() {
                    let l = format!("{prefix}{} {}", self.paint("+", "32"), entry_line(e));
                    self.line(&l);
                }
            }
        }
    }

    fn summary<'a>(
        &mut self,
        prefix: &str,
        id: ProcId,
        entries: impl Iterator<Item = &'a Arc<FdEntry>>,
        sign: &str,
        tracker: &Tracker,
    ) {
        let mut per: BTreeMap<(Kind, String), usize> = BTreeMap::new();
        for e in entries {
            *per.entry(group_of(tracker, id, e)).or_default() += 1;
        }
        let mut rows: Vec<_> = per.into_iter().collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let painted = self.paint(sign, if sign == "+" { "32" } else { "31" });
        for ((kind, key), n) in rows {
            let l = format!("{prefix}{painted} {n}× {kind} {}", escape_control(&key));
            self.line(&l);
        }
    }

    /// The default: one line per group whose count moved over the tick (opens and closes that
    /// cancel out are churn and say nothing), per command when many processes changed.
    fn group_lines(&mut self, tick: &Tick, tracker: &Tracker) {
        let updates: Vec<_> = tick
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Update { snapshot, delta }
                    if delta.opened_count() + delta.closed_count() > 0 =>
                {
                    Some((snapshot, delta))
                }
                _ => None,
            })
            .collect();
        let per_comm = updates.len() > MANY;
        let multi = tick.events.len() > 1;
        // (who, kind, key) → net; `who` is a pid prefix, or a command with its process count.
        let mut rows: Vec<(String, Kind, String, Net)> = Vec::new();
        if per_comm {
            let mut acc: BTreeMap<(String, Kind, String), (Net, BTreeSet<i32>)> = BTreeMap::new();
            for (snap, delta) in &updates {
                let id = snap.proc_id();
                for (gk, n) in nets(tracker, id, delta) {
                    let slot = acc
                        .entry((snap.comm.clone(), gk.0, gk.1))
                        .or_insert_with(|| (Net::default(), BTreeSet::new()));
                    slot.0.opened += n.opened;
                    slot.0.closed += n.closed;
                    slot.1.insert(id.pid);
                }
            }
            for ((comm, kind, key), (n, pids)) in acc {
                let who = format!(
                    "[{} ×{}] ",
                    escape_control(&comm),
                    human::count(pids.len() as u64)
                );
                rows.push((who, kind, key, n));
            }
        } else {
            for (snap, delta) in &updates {
                let id = snap.proc_id();
                let who = if multi {
                    format!("[{}] ", id.pid)
                } else {
                    String::new()
                };
                for ((kind, key), n) in nets(tracker, id, delta) {
                    rows.push((who.clone(), kind, key, n));
                }
            }
        }
        rows.retain(|r| r.3.net() != 0);
        rows.sort_by(|a, b| {
            b.3.net()
                .abs()
                .cmp(&a.3.net().abs())
                .then_with(|| a.0.cmp(&b.0))
                .then_with(|| (a.1, &a.2).cmp(&(b.1, &b.2)))
        });
        let total = rows.len();
        for (who, kind, key, n) in rows.into_iter().take(self.max_lines) {
            let net = n.net();
            let sign = self.paint(&format!("{net:+}"), if net > 0 { "32" } else { "31" });
            let l = format!(
                "  {who}{sign} {kind} {} (+{}/-{})",
                escape_control(&key),
                n.opened,
                n.closed
            );
            self.line(&l);
        }
        if total > self.max_lines {
            let l = format!("  … and {} more groups changed", total - self.max_lines);
            self.line(&l);
        }
    }

    /// `· tick N: …` over the processes that changed, per command when there are many.
    fn tick_line(&mut self, tick: &Tick) {
        let multi = tick.events.len() > 1;
        let updates: Vec<_> = tick
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Update { snapshot, delta } => Some((snapshot, delta)),
                _ => None,
            })
            .collect();
        let changed: Vec<_> = updates
            .iter()
            .filter(|(_, d)| d.opened_count() + d.closed_count() > 0)
            .collect();
        let mut parts = Vec::new();
        if changed.len() > MANY {
            // Per command: every live process of a command that changed, with its totals.
            let comms: BTreeSet<&str> = changed.iter().map(|(s, _)| s.comm.as_str()).collect();
            for comm in comms {
                let (mut procs, mut fds, mut opened, mut closed) = (0u64, 0u64, 0usize, 0usize);
                for (s, d) in updates.iter().filter(|(s, _)| s.comm == comm) {
                    procs += 1;
                    fds += s.fds.len() as u64;
                    opened += d.opened_count();
                    closed += d.closed_count();
                }
                parts.push(format!(
                    "{} processes of {}, {} fds (+{}/-{})",
                    human::count(procs),
                    escape_control(comm),
                    human::count(fds),
                    human::count(opened as u64),
                    human::count(closed as u64)
                ));
            }
        } else {
            for (snapshot, delta) in changed {
                let n = snapshot.fds.len() as u64;
                let share = snapshot
                    .fd_limit
                    .soft
                    .filter(|&l| l > 0)
                    .map(|l| {
                        format!(
                            ", {:.1}% of {}",
                            n as f64 * 100.0 / l as f64,
                            human::count(l)
                        )
                    })
                    .unwrap_or_default();
                let who = if multi {
                    format!("pid {} ", snapshot.pid)
                } else {
                    String::new()
                };
                parts.push(format!(
                    "{who}{} fds (+{}/-{}{share})",
                    human::count(n),
                    delta.opened_count(),
                    delta.closed_count()
                ));
            }
        }
        if !parts.is_empty() {
            let line = self.paint(&format!("· tick {}: {}", self.tick, parts.join("; ")), "2");
            self.line(&line);
        }
    }

    /// Compare this tick's verdicts with those announced: a line for each new leak and for
    /// each that cleared.
    fn verdicts(&mut self, v: &View, t: f64) {
        let mut now: BTreeMap<LeakId, String> = BTreeMap::new();
        let mut leaking_groups: BTreeSet<(&str, Kind, &str)> = BTreeSet::new();
        for g in v.leaking() {
            leaking_groups.insert((g.comm(), g.kind(), g.key()));
            let p = g.process();
            let eta = limit_text(p.exited(), p.fd_limit().soft, p.eta_to_limit_secs());
            let what = format!(
                "pid {} ({}) {} {}",
                g.pid(),
                escape_control(g.comm()),
                g.kind(),
                escape_control(g.key())
            );
            now.insert(
                LeakId::Group {
                    pid: g.pid(),
                    kind: g.kind(),
                    key: g.key().to_owned(),
                },
                format!("{what} {}{eta}", human::rate(g.verdict().rate_per_sec)),
            );
        }
        for rv in v.leaking_rollups() {
            // A roll-up that leaks because a member does says nothing the member's line
            // did not: only a leak seen in the sum alone gets its own line.
            if leaking_groups.contains(&(rv.comm(), rv.kind(), rv.key())) {
                continue;
            }
            let ru = rv.report();
            let live: Vec<ProcessView> = rv.live_members().collect();
            // The member nearest its limit, each growing by its share of the sum's rate.
            let share = ru.counts.rate_per_sec / live.len().max(1) as f64;
            let eta = live
                .iter()
                .filter_map(|p| {
                    crate::track::verdict::eta_to_limit(p.fds(), p.fd_limit().soft, share)
                })
                .min_by(f64::total_cmp);
            let limit = if live.is_empty() {
                String::new()
            } else {
                limit_text(false, live.iter().find_map(|p| p.fd_limit().soft), eta)
            };
            let what = format!(
                "{} processes ({}) {} {}",
                human::count(rv.pids().len() as u64),
                escape_control(&ru.comm),
                ru.kind,
                escape_control(&ru.key)
            );
            now.insert(
                LeakId::Rollup {
                    comm: ru.comm.clone(),
                    kind: ru.kind,
                    key: ru.key.clone(),
                },
                format!(
                    "{what} {} in all{limit}",
                    human::rate(ru.counts.rate_per_sec)
                ),
            );
        }
        let mut cleared = Vec::new();
        for (id, misses) in &mut self.leaks {
            if now.contains_key(id) {
                *misses = 0;
            } else {
                *misses += 1;
                if *misses >= CLEAR_AFTER_CHECKS {
                    cleared.push(id.clone());
                }
            }
        }
        for id in cleared {
            self.leaks.remove(&id);
            let what = match &id {
                LeakId::Group { pid, kind, key } => {
                    // Rare (a clear), so a scan for the latest process of that pid is fine.
                    let comm = v
                        .processes()
                        .filter(|p| p.pid() == *pid)
                        .last()
                        .map_or("?", |p| p.comm());
                    format!(
                        "pid {pid} ({}) {kind} {}",
                        escape_control(comm),
                        escape_control(key)
                    )
                }
                LeakId::Rollup { comm, kind, key } => format!(
                    "processes of {} {kind} {}",
                    escape_control(comm),
                    escape_control(key)
                ),
            };
            let l = self.paint(&format!("leak cleared: {what}"), "32");
            self.line(&l);
        }
        self.pending.retain(|id, _| now.contains_key(id));
        for (id, text) in now {
            if self.leaks.contains_key(&id) {
                continue;
            }
            let since = *self.pending.entry(id.clone()).or_insert(t);
            if t - since >= CONFIRM_SECS {
                self.pending.remove(&id);
                self.leaks.insert(id, 0);
                let l = self.paint(&format!("LEAK suspected: {text}"), "1;31");
                self.line(&l);
            }
        }
    }
}

/// ", limit in ~1m43s", or why there is no such time.
fn limit_text(exited: bool, soft: Option<u64>, eta: Option<f64>) -> String {
    match (exited, soft, eta) {
        (true, _, _) => ", process exited".to_owned(),
        (false, None, _) => ", no fd limit".to_owned(),
        (false, Some(_), Some(s)) => format!(", limit in ~{}", human::duration(s)),
        (false, Some(_), None) => String::new(),
    }
}

/// "postgres ×150, pgbench ×2" over names, most frequent first.
fn by_comm<'a>(comms: impl Iterator<Item = &'a str>) -> String {
    let mut n: BTreeMap<&str, u64> = BTreeMap::new();
    for c in comms {
        *n.entry(c).or_default() += 1;
    }
    let mut v: Vec<_> = n.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let shown: Vec<String> = v
        .iter()
        .take(3)
        .map(|(c, k)| format!("{} ×{k}", escape_control(c)))
        .collect();
    if v.len() > 3 {
        format!("{}, …", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

fn group_of(tracker: &Tracker, id: ProcId, e: &FdEntry) -> (Kind, String) {
    tracker
        .group_of(id, e)
        .unwrap_or_else(|| (e.kind(), "(filtered)".to_owned()))
}

/// Opens and closes of one process's tick, per group.
fn nets(tracker: &Tracker, id: ProcId, delta: &crate::diff::Delta) -> Vec<((Kind, String), Net)> {
    let mut per: HashMap<(Kind, String), Net> = HashMap::new();
    for e in delta.all_opened() {
        per.entry(group_of(tracker, id, e)).or_default().opened += 1;
    }
    for e in delta.all_closed() {
        per.entry(group_of(tracker, id, e)).or_default().closed += 1;
    }
    per.into_iter().collect()
}

/// "17 file /srv/upload-17.pdf"
pub fn entry_line(e: &FdEntry) -> String {
    format!(
        "{} {} {}",
        e.fd,
        e.kind(),
        escape_control(&describe::what(e))
    )
}
