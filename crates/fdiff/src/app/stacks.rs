//! `--stacks` in the binary: arming the tracer when a group leaks, remembering each process's
//! last snapshot, and attributing the survivors of each leaking group to the stacks that
//! opened them (survival is the discriminator: the leaking and the healthy open often share
//! the path and the library frames).

use fdiff_core::pipeline::Observer;
use fdiff_core::snapshot::Kind;
use fdiff_core::source::{Event, Tick};
use fdiff_core::track::group::{self, GroupBy, Listeners};
use fdiff_core::track::stacks::{GroupStacks, StackCount, StackFrame, StacksReport};
use fdiff_core::track::{Report, Tracker};
use fdiff_stacks::bpf::Probe;
use fdiff_stacks::{Arming, Store, Tracer};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;

/// Start `cmd` under the tracer.
pub fn spawn(cmd: std::process::Command, when: crate::cli::StacksArg) -> std::io::Result<Tracer> {
    Tracer::spawn(cmd, arming(when))
}

/// The tracer's arming for the flag's value.
pub fn arming(when: crate::cli::StacksArg) -> Arming {
    match when {
        crate::cli::StacksArg::Now => Arming::Now,
        crate::cli::StacksArg::Leak => Arming::OnLeak,
    }
}

/// What captures the stacks: the ptrace tracer of `fdiff run`, or the eBPF probe of a watch
/// of running processes.
#[derive(Clone)]
pub enum Capturer {
    /// `fdiff run --stacks`.
    Ptrace(Tracer),
    /// `fdiff --pid/--name … --stacks`.
    Bpf(Probe),
}

impl Capturer {
    fn arm(&self, tgid: i32) {
        match self {
            Capturer::Ptrace(t) => t.arm(tgid),
            Capturer::Bpf(p) => {
                if let Err(e) = p.arm(tgid) {
                    super::output::warn(&e.to_string());
                }
            }
        }
    }

    fn with_store<R>(&self, f: impl FnOnce(&Store) -> R) -> R {
        match self {
            Capturer::Ptrace(t) => t.with_store(f),
            Capturer::Bpf(p) => p.with_store(f),
        }
    }
}

/// One fd as of a process's last tick.
struct Seen {
    fd: i32,
    target: String,
    kind: Kind,
    key: String,
}

/// The observer: arms leaking processes and keeps their last fds.
pub struct StacksObserver {
    tracer: Capturer,
    arming: Arming,
    group_by: GroupBy,
    last: HashMap<i32, Vec<Seen>>,
    /// NSpid of the processes in a pid namespace of their own, read when first seen.
    nspid: HashMap<i32, Vec<i32>>,
}

/// `NSpid` of /proc/PID/status when it has more than the host's pid.
fn read_nspid(pid: i32) -> Option<Vec<i32>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let v: Vec<i32> = text
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    (v.len() > 1).then_some(v)
}

/// The observer to hand the watch, when there is one.
pub fn observer(o: &mut Option<StacksObserver>) -> Option<&mut dyn Observer> {
    o.as_mut().map(|o| o as &mut dyn Observer)
}

/// The watch is over: stop capturing and put the leaking groups' stacks into the report.
pub fn finish(o: &Option<StacksObserver>, report: &mut Report) {
    if let Some(o) = o {
        o.stop();
        report.stacks = Some(o.attribute(report));
    }
}

impl StacksObserver {
    /// For a watch of running processes (`--pid/--name`, `demo`) with `--stacks=WHEN`: the
    /// eBPF probe, loaded now so that a missing permission is said before the watch (one
    /// line, ending in `then`); attached at the first arm. None without `--stacks` or probe.
    pub fn probe(
        when: Option<crate::cli::StacksArg>,
        group_by: GroupBy,
        then: &str,
    ) -> Option<Self> {
        let when = when?;
        match Probe::load() {
            Ok(p) => Some(Self::new(Capturer::Bpf(p), arming(when), group_by)),
            Err(e) => {
                super::output::warn(&format!("{e}; {then}"));
                None
            }
        }
    }

    /// Watch for `tracer`.
    pub fn new(tracer: Capturer, arming: Arming, group_by: GroupBy) -> Self {
        Self {
            tracer,
            arming,
            group_by,
            last: HashMap::new(),
            nspid: HashMap::new(),
        }
    }

    /// Stop capturing (the watch is over; the store stays for the report).
    pub fn stop(&self) {
        if let Capturer::Bpf(p) = &self.tracer {
            p.stop();
        }
    }

    /// The report's `stacks` section for `report`'s leaking groups.
    pub fn attribute(&self, report: &Report) -> StacksReport {
        self.tracer
            .with_store(|store| attribute(report, store, &self.last, &self.nspid, self.arming))
    }
}

impl Observer for StacksObserver {
    fn tick(&mut self, tick: &Tick, tracker: &Tracker) -> fdiff_core::Result<()> {
        // The exited first: a pid that names another process now is seen again below.
        if let Capturer::Bpf(p) = &self.tracer {
            for ev in &tick.events {
                if let Event::Exited { id, .. } = ev {
                    p.disarm(id.pid);
                }
            }
        }
        for ev in &tick.events {
            let snap = match ev {
                Event::First(s) => {
                    if let Some(v) = read_nspid(s.pid) {
                        self.nspid.insert(s.pid, v);
                    }
                    // --stacks=now on a watch: each process arms when first seen (the
                    // probe's arm is idempotent; the tracer's `now` has armed all).
                    if self.arming == Arming::Now {
                        self.tracer.arm(s.pid);
                    }
                    s
                }
                Event::Update { snapshot, .. } => snapshot,
                Event::Exited { .. } => continue,
            };
            let mut listeners = Listeners::default();
            for e in &snap.fds {
                listeners.add(e);
            }
            let seen = snap
                .fds
                .iter()
                .map(|e| Seen {
                    fd: e.fd,
                    target: e.target.clone(),
                    kind: e.kind(),
                    key: group::key(e, self.group_by, &listeners),
                })
                .collect();
            self.last.insert(snap.pid, seen);
        }
        if self.arming == Arming::OnLeak {
            for g in tracker.view().leaking() {
                self.tracer.arm(g.pid());
            }
        }
        Ok(())
    }
}

/// The kind an fd's readlink text names, for fds no tick saw (closed between ticks).
fn kind_of_target(t: &str) -> Kind {
    if t.starts_with("socket:") {
        Kind::Socket
    } else if t.starts_with("pipe:") {
        Kind::Pipe
    } else if t.starts_with("anon_inode:") {
        Kind::AnonInode
    } else if t.starts_with("/memfd:") {
        Kind::Memfd
    } else if t.starts_with('/') {
        Kind::File
    } else {
        Kind::Unknown
    }
}

/// Whether a closed fd's target belongs to a group (kind, key). Files by their normalized
/// path; sockets, pipes and the rest by kind, since their key needs what only a snapshot
/// decodes.
fn belongs(target: &str, kind: Kind, key: &str) -> bool {
    let k = kind_of_target(target);
    if k == Kind::File && matches!(kind, Kind::File | Kind::Dir | Kind::Device) {
        let base = key.strip_suffix(" (deleted)").unwrap_or(key);
        return group::normalize_path(target) == base || target == base;
    }
    if k == Kind::AnonInode && kind == Kind::AnonInode {
        return target == key;
    }
    k == kind
}

fn frames(store: &Store, id: u32) -> Vec<StackFrame> {
    store
        .stacks
        .get(id as usize)
        .map(|s| s.frames.clone())
        .unwrap_or_default()
}

fn ranked(store: &Store, counts: BTreeMap<u32, (u64, Vec<i32>)>) -> Vec<StackCount> {
    let v: Vec<StackCount> = counts
        .into_iter()
        .map(|(id, (count, tids))| StackCount {
            count,
            tids,
            frames: frames(store, id),
        })
        .collect();
    // Stacks that differ only in offsets (an unrolled loop calling from two places on one
    // line), or, with Python frames, only in CPython's own frames (the eval loop's call path
    // changes as it specializes), are one stack to a reader.
    let key = |s: &StackCount| -> Vec<(String, Option<String>, Option<u32>)> {
        let has_python = s.frames.iter().any(|f| f.python);
        s.frames
            .iter()
            .filter(|f| !(has_python && interpreter_frame(f)))
            .map(|f| (f.function.clone(), f.file.clone(), f.line))
            .collect()
    };
    let mut merged: Vec<StackCount> = Vec::new();
    for s in v {
        let k = key(&s);
        let same = |a: &StackCount| key(a) == k;
        match merged.iter_mut().find(|m| same(m)) {
            Some(m) => {
                m.count += s.count;
                for t in s.tids {
                    if m.tids.len() < TIDS && !m.tids.contains(&t) {
                        m.tids.push(t);
                    }
                }
            }
            None => merged.push(s),
        }
    }
    merged.sort_by_key(|m| std::cmp::Reverse(m.count));
    merged
}

/// At most this many threads are named per stack.
const TIDS: usize = 4;

fn attribute(
    report: &Report,
    store: &Store,
    last: &HashMap<i32, Vec<Seen>>,
    nspid: &HashMap<i32, Vec<i32>>,
    arming: Arming,
) -> StacksReport {
    let mut groups = Vec::new();
    for g in report.groups.iter().filter(|g| g.counts.leaking) {
        let survivors: Vec<&Seen> = last
            .get(&g.pid)
            .map(|v| {
                v.iter()
                    .filter(|s| s.kind == g.kind && s.key == g.key)
                    .collect()
            })
            .unwrap_or_default();
        let mut surv: BTreeMap<u32, (u64, Vec<i32>)> = BTreeMap::new();
        let mut survivor_fds = HashSet::new();
        for s in &survivors {
            survivor_fds.insert(s.fd);
            if let Some(o) = store.open.get(&(g.pid, s.fd))
                && o.target == s.target
            {
                let e = surv.entry(o.stack).or_default();
                e.0 += 1;
                if e.1.len() < TIDS && !e.1.contains(&o.tid) {
                    e.1.push(o.tid);
                }
            }
        }
        let mut closed: BTreeMap<u32, (u64, Vec<i32>)> = BTreeMap::new();
        for ((tgid, id, target), n) in &store.closed {
            if *tgid == g.pid && !surv.contains_key(id) && belongs(target, g.kind, &g.key) {
                closed.entry(*id).or_default().0 += n;
            }
        }
        // Still in the map but not open at the last tick: closed without the number coming
        // back. Open in another group is not closed: a connect and its accept share a kind.
        let open_now: HashMap<i32, &str> = last
            .get(&g.pid)
            .map(|v| v.iter().map(|s| (s.fd, s.target.as_str())).collect())
            .unwrap_or_default();
        for ((tgid, fd), o) in &store.open {
            if *tgid == g.pid
                && !survivor_fds.contains(fd)
                && open_now.get(fd) != Some(&o.target.as_str())
                && !surv.contains_key(&o.stack)
                && belongs(&o.target, g.kind, &g.key)
            {
                closed.entry(o.stack).or_default().0 += 1;
            }
        }
        let captured: u64 = surv.values().map(|v| v.0).sum();
        let note = (captured == 0).then(|| match arming {
            Arming::Now => "no survivor's open was captured".to_owned(),
            Arming::OnLeak => "no survivor was opened after capture was armed (at the leak \
                               verdict): opens before it cannot be recovered; try \
                               --stacks=now or a longer watch"
                .to_owned(),
        });
        groups.push(GroupStacks {
            pid: g.pid,
            kind: g.kind,
            key: g.key.clone(),
            survivors: survivors.len() as u64,
            captured,
            survivor_stacks: ranked(store, surv),
            closed_stacks: ranked(store, closed),
            note,
            nspid: nspid.get(&g.pid).cloned(),
        });
    }
    StacksReport {
        arming: match arming {
            Arming::Now => "now",
            Arming::OnLeak => "leak",
        }
        .to_owned(),
        groups,
        captured: store.captured,
        dropped_fds: store.drops.fds,
        dropped_stacks: store.drops.stacks,
        unwind_failed: store.drops.unwind_failed,
        bytes: store.bytes() as u64,
        notes: store.notes.clone(),
    }
}

/// Frames shown per stack in the table; JSON has them all.
const SHOWN_FRAMES: usize = 12;

/// The table's stacks section.
pub fn write_table(s: &StacksReport, w: &mut dyn Write) -> std::io::Result<()> {
    if s.groups.is_empty() {
        writeln!(
            w,
            "stacks: no leaking group ({} opens captured)",
            s.captured
        )?;
    }
    for g in &s.groups {
        writeln!(w)?;
        let key = crate::util::escape_control(&g.key);
        let ns = g.nspid.as_ref().map_or(String::new(), |v| {
            let v: Vec<String> = v.iter().map(i32::to_string).collect();
            format!(" (NSpid {})", v.join(" "))
        });
        writeln!(w, "stacks of pid {}{ns} {} {key}:", g.pid, g.kind.as_str())?;
        if let Some(n) = &g.note {
            writeln!(w, "  {n}")?;
        }
        for st in &g.survivor_stacks {
            writeln!(w, "  {} of {} survivors opened at:", st.count, g.survivors)?;
            write_frames(st, w)?;
        }
        for st in &g.closed_stacks {
            writeln!(w, "  {} opened and closed again at:", st.count)?;
            write_frames(st, w)?;
        }
    }
    for n in &s.notes {
        writeln!(w, "stacks: {}", crate::util::escape_control(n))?;
    }
    if s.dropped_fds + s.dropped_stacks + s.unwind_failed > 0 {
        writeln!(
            w,
            "stacks dropped: {} opens (fd map or ring buffer full), {} stacks (store full), {} not unwound",
            s.dropped_fds, s.dropped_stacks, s.unwind_failed
        )?;
    }
    Ok(())
}

/// Whether a native frame is CPython's own (its eval loop and call machinery): with Python
/// frames in the stack, those say where the interpreter was, so the table leaves these out.
fn interpreter_frame(f: &StackFrame) -> bool {
    !f.python
        && f.module
            .as_deref()
            .is_some_and(|m| m.starts_with("libpython") || m.starts_with("python"))
}

fn write_frames(st: &StackCount, w: &mut dyn Write) -> std::io::Result<()> {
    let has_python = st.frames.iter().any(|f| f.python);
    let shown: Vec<&StackFrame> = st
        .frames
        .iter()
        .filter(|f| !(has_python && interpreter_frame(f)))
        .collect();
    for f in shown.iter().take(SHOWN_FRAMES) {
        writeln!(w, "      {}", crate::util::escape_control(&f.to_string()))?;
    }
    if shown.len() > SHOWN_FRAMES {
        writeln!(w, "      … {} more", shown.len() - SHOWN_FRAMES)?;
    }
    let hidden = st.frames.len() - shown.len();
    if hidden > 0 {
        writeln!(
            w,
            "      ({hidden} CPython interpreter frames left out; the JSON has them)"
        )?;
    }
    Ok(())
}
