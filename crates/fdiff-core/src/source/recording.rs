//! Recording source: reads a `fdiff/recording/v1` JSON Lines file back into the ticks a live
//! watch produced, and loads snapshot files (`fdiff snapshot --format json`, or `FILE@N`).
//!
//! Everything read here comes from outside and may be hostile or endless: a line is read up to
//! [`MAX_LINE`], a snapshot file up to [`MAX_SNAPSHOT_FILE`], the strings a snapshot carries are
//! cut to sane lengths, and every value quoted in a message is escaped.

use super::{Event, Tick};
use crate::diff::{apply, diff};
use crate::error::Error;
use crate::snapshot::record::{Header, Line, ProcLine, RECORDING_SCHEMA};
use crate::snapshot::{Detail, FdEntry, ProcId, SNAPSHOT_SCHEMA, Snapshot};
use crate::util::escape_control;
use crate::util::quoted;
use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Longest recording line read: a tick of 100,000 fds is ~25 MiB; past this a line is damage
/// (or `/dev/zero`), and reading on would only exhaust memory.
pub const MAX_LINE: usize = 64 << 20;
/// Largest snapshot file read: `fdiff snapshot` of 20,000 processes is ~150 MiB.
pub const MAX_SNAPSHOT_FILE: u64 = 1 << 30;
/// Caps on the strings of a snapshot read back: the kernel never gives more (comm is 15 bytes,
/// a readlink at most a page), and each string is cloned into every tick and report.
const MAX_COMM: usize = 64;
const MAX_ARGS: usize = 1024;
const MAX_CMDLINE_BYTES: usize = 64 << 10;
const MAX_TARGET: usize = 8 << 10;
const MAX_TEXT: usize = 4 << 10;

/// One line read by [`read_line`].
enum LineRead {
    /// The line, without its `\n`; `last` when nothing follows it.
    Line {
        last: bool,
    },
    Eof,
    TooLong,
}

/// Read one line into `buf` (cleared first), never holding more than `max` bytes of it.
fn read_line<R: BufRead>(r: &mut R, buf: &mut Vec<u8>, max: usize) -> std::io::Result<LineRead> {
    buf.clear();
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(if buf.is_empty() {
                LineRead::Eof
            } else {
                LineRead::Line { last: true }
            });
        }
        let (take, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (avail.len(), false),
        };
        if buf.len() + take > max {
            return Ok(LineRead::TooLong);
        }
        buf.extend_from_slice(&avail[..take]);
        r.consume(if done { take + 1 } else { take });
        if done {
            let last = loop {
                match r.fill_buf() {
                    Ok(b) => break b.is_empty(),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            return Ok(LineRead::Line { last });
        }
    }
}

/// Cut `s` to at most `max` bytes (on a character boundary); whether it was cut.
fn cap(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
    true
}

fn cap_opt(s: &mut Option<String>, max: usize) -> bool {
    s.as_mut().is_some_and(|s| cap(s, max))
}

/// Cut a command line to [`MAX_ARGS`] arguments and [`MAX_CMDLINE_BYTES`] in all.
fn cap_cmdline(c: &mut Vec<String>) -> bool {
    let mut cut = false;
    if c.len() > MAX_ARGS {
        c.truncate(MAX_ARGS);
        cut = true;
    }
    let mut left = MAX_CMDLINE_BYTES;
    for (i, a) in c.iter_mut().enumerate() {
        if a.len() > left {
            cap(a, left);
            c.truncate(i + 1);
            return true;
        }
        left -= a.len();
    }
    cut
}

/// Cut the strings of one fd entry; whether any was cut.
fn cap_entry(e: &mut FdEntry) -> bool {
    let mut cut = cap(&mut e.target, MAX_TARGET) | cap_opt(&mut e.target_hex, 2 * MAX_TARGET);
    match &mut e.detail {
        Detail::File(f) => {
            cut |= cap(&mut f.path, MAX_TARGET) | cap_opt(&mut f.path_hex, 2 * MAX_TARGET);
            cut |= cap_opt(&mut f.dev, MAX_TEXT);
        }
        Detail::Dir(d) => {
            cut |= cap(&mut d.path, MAX_TARGET) | cap_opt(&mut d.path_hex, 2 * MAX_TARGET);
        }
        Detail::Device(d) => {
            cut |= cap(&mut d.path, MAX_TARGET) | cap_opt(&mut d.path_hex, 2 * MAX_TARGET);
            cut |= cap(&mut d.device_type, MAX_TEXT) | cap_opt(&mut d.rdev, MAX_TEXT);
            cut |= cap_opt(&mut d.tun_iface, MAX_TEXT);
        }
        Detail::Socket(s) => {
            cut |= cap(&mut s.proto, MAX_TEXT) | cap_opt(&mut s.path, MAX_TARGET);
            for t in [
                &mut s.local,
                &mut s.remote,
                &mut s.state,
                &mut s.socket_type,
                &mut s.netlink_family,
                &mut s.shutdown,
                &mut s.iface,
            ] {
                cut |= cap_opt(t, MAX_TEXT);
            }
        }
        Detail::Pipe(p) => cut |= cap_opt(&mut p.path, MAX_TARGET),
        Detail::AnonInode(a) => {
            cut |= cap(&mut a.subtype, MAX_TEXT) | cap_opt(&mut a.clockid, MAX_TEXT);
            for t in [
                &mut a.target_comm,
                &mut a.bpf_type,
                &mut a.bpf_name,
                &mut a.bpf_tag,
            ] {
                cut |= cap_opt(t, MAX_TEXT);
            }
            if let Some(n) = a.nspid.as_mut() {
                // Pid namespaces nest at most 32 deep.
                if n.len() > 32 {
                    n.truncate(32);
                    cut = true;
                }
            }
            if let Some(w) = a.inotify_inodes.as_mut() {
                // An inotify instance holds at most max_user_watches (~1M) watches.
                if w.len() > 1 << 20 {
                    w.truncate(1 << 20);
                    cut = true;
                }
                for i in w.iter_mut() {
                    cut |= cap(&mut i.dev, MAX_TEXT) | cap_opt(&mut i.path, MAX_TARGET);
                }
            }
            if let Some(m) = a.sigmask.as_mut() {
                if m.len() > 64 {
                    m.truncate(64);
                    cut = true;
                }
                for s in m.iter_mut() {
                    cut |= cap(s, MAX_TEXT);
                }
            }
            if let Some(t) = a.tfd.as_mut() {
                // An epoll set holds at most as many fds as the process: RLIMIT_NOFILE's max.
                if t.len() > 1 << 20 {
                    t.truncate(1 << 20);
                    cut = true;
                }
            }
        }
        Detail::Memfd(m) => cut |= cap(&mut m.name, MAX_TARGET),
        Detail::Ns(n) => cut |= cap(&mut n.ns_type, MAX_TEXT),
        Detail::Mqueue(m) => cut |= cap(&mut m.path, MAX_TARGET),
        Detail::Symlink(l) => {
            cut |= cap(&mut l.path, MAX_TARGET) | cap_opt(&mut l.path_hex, 2 * MAX_TARGET);
        }
        Detail::Unknown(_) => {}
    }
    cut
}

fn cap_entries(v: &mut [Arc<FdEntry>]) -> bool {
    let mut cut = false;
    for e in v.iter_mut() {
        // Entries just read are not shared yet: make_mut borrows them, it does not copy.
        cut |= cap_entry(Arc::make_mut(e));
    }
    cut
}

/// Cut the strings of a snapshot read from a file; whether any was cut.
fn cap_snapshot(s: &mut Snapshot) -> bool {
    let mut cut = cap(&mut s.comm, MAX_COMM) | cap_cmdline(&mut s.cmdline);
    cut |= cap(&mut s.schema, MAX_TEXT);
    cut |= cap_entries(&mut s.fds);
    for e in &mut s.errors {
        cut |= cap(&mut e.error, MAX_TEXT);
    }
    cut
}

/// Ticks out of sequence in a recording, by kind, with the first offending line.
#[derive(Debug, Default)]
struct OrderFaults {
    /// Line, tick number and the previous tick's number.
    first: Option<(usize, u64, u64)>,
    gaps: u64,
    missing: u64,
    repeated: u64,
    backwards: u64,
}

impl OrderFaults {
    fn warning(&self, name: &str) -> Option<String> {
        let (line, n, pn) = self.first?;
        let mut parts = Vec::new();
        if self.gaps > 0 {
            parts.push(format!(
                "{} gap(s), {} tick(s) missing",
                self.gaps, self.missing
            ));
        }
        if self.repeated > 0 {
            parts.push(format!("{} repeated tick(s), skipped", self.repeated));
        }
        if self.backwards > 0 {
            parts.push(format!(
                "{} tick(s) out of order, analysed in file order",
                self.backwards
            ));
        }
        Some(format!(
            "{} line {line}: the ticks are out of sequence (tick {n} after tick {pn}): {}",
            quoted(name),
            parts.join("; ")
        ))
    }
}

/// Reads ticks from a recording, one line at a time.
pub struct RecordingSource<R: BufRead> {
    name: String,
    /// The file, for the typed errors; `name` is how messages show it.
    path: PathBuf,
    reader: R,
    /// 1-based number of the line last read.
    lineno: usize,
    buf: Vec<u8>,
    header: Header,
    state: BTreeMap<ProcId, Snapshot>,
    /// Ticks returned so far.
    ticks: u64,
    /// The tick number and time of the previous tick line, to notice gaps and disorder.
    prev: Option<(u64, f64)>,
    /// Gaps, repeats and disorder: told once, at the first offending line.
    order: OrderFaults,
    /// Strings cut to their caps: the first line told, then counted.
    capped: Option<usize>,
    capped_count: u64,
    /// A warning for the user (a truncated last line), printed by the caller.
    pub warning: Option<String>,
}

impl<R: BufRead> RecordingSource<R> {
    /// Open a recording; fails on an empty file or a header that is not a recording's.
    pub fn new(path: impl AsRef<Path>, reader: R) -> Result<Self, Error> {
        let path = path.as_ref();
        let name = &*path.to_string_lossy();
        let mut src = RecordingSource {
            name: name.to_owned(),
            path: path.to_owned(),
            reader,
            lineno: 0,
            buf: Vec::new(),
            header: Header {
                schema: String::new(),
                interval_secs: 0.0,
                started_at: 0.0,
                fdiff_version: String::new(),
            },
            state: BTreeMap::new(),
            ticks: 0,
            prev: None,
            order: OrderFaults::default(),
            capped: None,
            capped_count: 0,
            warning: None,
        };
        let qname = quoted(name);
        loop {
            let Some(_) = src.next_line()? else {
                return Err(Error::malformed(
                    path,
                    format!("{qname} is empty: it holds no recording"),
                ));
            };
            if src.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let i = src.lineno;
            match serde_json::from_slice::<Line>(&src.buf) {
                Ok(Line::Header(h)) if h.schema == RECORDING_SCHEMA => {
                    src.header = h;
                    return Ok(src);
                }
                Ok(Line::Header(h)) => {
                    return Err(Error::malformed(
                        path,
                        format!(
                            "{qname} line {i}: schema {} is not supported (expected '{RECORDING_SCHEMA}')",
                            quoted(&h.schema)
                        ),
                    ));
                }
                Ok(Line::Tick(_)) => {
                    return Err(Error::malformed(
                        path,
                        format!(
                            "{qname} line {i}: the recording has no header line (was its start cut off?)"
                        ),
                    ));
                }
                Err(e) => {
                    return Err(json_error(
                        name,
                        i,
                        &e,
                        "a recording written by 'fdiff --record'",
                    ));
                }
            }
        }
    }

    /// Read the next line into `buf`: `Some(last)`, or `None` at the end.
    fn next_line(&mut self) -> Result<Option<bool>, Error> {
        let r = read_line(&mut self.reader, &mut self.buf, MAX_LINE)
            .map_err(|e| Error::io("read", &self.path, e))?;
        match r {
            LineRead::Eof => Ok(None),
            LineRead::Line { last } => {
                self.lineno += 1;
                Ok(Some(last))
            }
            LineRead::TooLong => Err(Error::malformed(
                &self.path,
                format!(
                    "{} line {}: the line is longer than {} MiB: not a recording written by 'fdiff --record' (or damaged)",
                    quoted(&self.name),
                    self.lineno + 1,
                    MAX_LINE >> 20
                ),
            )),
        }
    }

    /// The interval the recording was made at, in seconds.
    pub fn interval_secs(&self) -> f64 {
        self.header.interval_secs
    }

    /// Every warning to tell the user, each one line: disorder, cut strings, a cut last line.
    pub fn take_warnings(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(w) = self.order.warning(&self.name) {
            out.push(w);
        }
        self.order = OrderFaults::default();
        if let Some(line) = self.capped.take() {
            out.push(format!(
                "{} line {line}: over-long names or paths were cut (comm to {MAX_COMM} bytes, \
                 command lines to {} KiB, paths to {} KiB) in {} snapshot(s)",
                quoted(&self.name),
                MAX_CMDLINE_BYTES >> 10,
                MAX_TARGET >> 10,
                self.capped_count
            ));
        }
        out.extend(self.warning.take());
        out
    }

    /// The next tick, rebuilt into full snapshots and deltas; `None` at the end.
    pub fn next_tick(&mut self) -> Result<Option<Tick>, Error> {
        loop {
            let Some(last) = self.next_line()? else {
                return Ok(None);
            };
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let lineno = self.lineno;
            let tl = match serde_json::from_slice::<Line>(&self.buf) {
                Ok(Line::Tick(t)) => t,
                Ok(Line::Header(_)) => {
                    return Err(Error::malformed(
                        &self.path,
                        format!("{} line {lineno}: a second header line", quoted(&self.name)),
                    ));
                }
                // A crash mid-write leaves a cut last line: lose that tick, keep the rest.
                Err(e) if last && (e.is_eof() || e.is_syntax()) => {
                    self.warning = Some(format!(
                        "{} line {lineno}: the last line is truncated (the recording was cut off mid-write); analysed the {} complete ticks before it",
                        quoted(&self.name),
                        self.ticks
                    ));
                    return Ok(None);
                }
                Err(e) => return Err(json_error(&self.name, lineno, &e, "a recording line")),
            };
            if !self.check_order(&tl, lineno) {
                continue;
            }
            self.ticks += 1;
            return Ok(Some(self.rebuild(tl, lineno)?));
        }
    }

    /// Notice gaps, repeats and disorder (the first line kept, each kind counted); false for an
    /// exact repeat of the previous tick, which is skipped (applying it twice would count it
    /// twice).
    fn check_order(&mut self, tl: &crate::snapshot::record::TickLine, lineno: usize) -> bool {
        let Some((pn, pt)) = self.prev else {
            self.prev = Some((tl.tick, tl.t));
            return true;
        };
        let n = tl.tick;
        let o = &mut self.order;
        let repeat = n == pn && tl.t.total_cmp(&pt).is_eq();
        let fault = if repeat {
            o.repeated += 1;
            true
        } else if n <= pn || tl.t < pt {
            o.backwards += 1;
            true
        } else if n > pn + 1 {
            o.gaps += 1;
            o.missing += n - pn - 1;
            true
        } else {
            false
        };
        if fault && o.first.is_none() {
            o.first = Some((lineno, n, pn));
        }
        if repeat {
            return false;
        }
        self.prev = Some((n, tl.t));
        true
    }

    fn note_capped(&mut self, cut: bool, lineno: usize) {
        if cut {
            self.capped_count += 1;
            self.capped.get_or_insert(lineno);
        }
    }

    fn rebuild(
        &mut self,
        tl: crate::snapshot::record::TickLine,
        lineno: usize,
    ) -> Result<Tick, Error> {
        let mut events = Vec::with_capacity(tl.procs.len());
        for p in tl.procs {
            match p {
                ProcLine::Full { mut snapshot } => {
                    let cut = cap_snapshot(&mut snapshot);
                    self.note_capped(cut, lineno);
                    let id = snapshot.proc_id();
                    match self.state.get(&id) {
                        Some(prev) => {
                            let delta = diff(&prev.fds, &snapshot.fds);
                            events.push(Event::Update {
                                snapshot: snapshot.clone(),
                                delta,
                            });
                        }
                        None => events.push(Event::First(snapshot.clone())),
                    }
                    self.state.insert(id, snapshot);
                }
                ProcLine::Delta {
                    pid,
                    start_time,
                    taken_at,
                    fd_limit,
                    closed,
                    mut opened,
                    mut errors,
                    comm,
                    cmdline,
                } => {
                    let id = ProcId { pid, start_time };
                    let Some(prev) = self.state.get(&id) else {
                        return Err(Error::malformed(
                            &self.path,
                            format!(
                                "{} line {lineno}: a delta for pid {pid} whose full snapshot is missing",
                                quoted(&self.name)
                            ),
                        ));
                    };
                    let mut cut = cap_entries(&mut opened);
                    for e in &mut errors {
                        cut |= cap(&mut e.error, MAX_TEXT);
                    }
                    let fds = apply(&prev.fds, &closed, &opened);
                    let delta = diff(&prev.fds, &fds);
                    let mut snapshot = Snapshot {
                        taken_at,
                        fd_limit,
                        fds,
                        errors,
                        ..prev.clone_meta()
                    };
                    if let Some(mut c) = comm {
                        cut |= cap(&mut c, MAX_COMM);
                        snapshot.comm = c;
                    }
                    if let Some(mut c) = cmdline {
                        cut |= cap_cmdline(&mut c);
                        snapshot.cmdline = c;
                    }
                    self.note_capped(cut, lineno);
                    self.state.insert(id, snapshot.clone());
                    events.push(Event::Update { snapshot, delta });
                }
                ProcLine::Exited {
                    pid,
                    start_time,
                    at,
                } => {
                    let id = ProcId { pid, start_time };
                    self.state.remove(&id);
                    events.push(Event::Exited { id, at });
                }
            }
        }
        // Hostile or damaged times are dropped rather than trusted: the tracker then falls back
        // on the wall time, as for a recording made before monotonic times were recorded.
        let mono = tl.mono.filter(|m| m.is_finite() && *m >= 0.0);
        Ok(Tick {
            t: tl.t,
            events,
            mono,
        })
    }

    /// The snapshots of tick `n` counting from 0, holding only the state of the tick being
    /// rebuilt.
    fn snapshots_at_index(&mut self, n: u64) -> Result<Option<Vec<Snapshot>>, Error> {
        let mut idx = 0u64;
        while let Some(t) = self.next_tick()? {
            if idx == n {
                return Ok(Some(tick_snapshots(t)));
            }
            idx += 1;
        }
        Ok(None)
    }

    /// The snapshots of tick `n` (negative counts from the end: -1 is the last), from a
    /// stream that cannot be read twice: a ring of the last `-n` ticks.
    pub fn snapshots_at(&mut self, n: i64) -> Result<Vec<Snapshot>, Error> {
        if n >= 0 {
            if let Some(s) = self.snapshots_at_index(n.unsigned_abs())? {
                return Ok(s);
            }
            return Err(self.no_tick(n));
        }
        let keep = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
        let mut ticks: std::collections::VecDeque<Vec<Snapshot>> =
            std::collections::VecDeque::new();
        while let Some(t) = self.next_tick()? {
            ticks.push_back(tick_snapshots(t));
            if ticks.len() > keep {
                ticks.pop_front();
            }
        }
        if ticks.len() == keep {
            if let Some(s) = ticks.pop_front() {
                return Ok(s);
            }
        }
        Err(self.no_tick(n))
    }

    /// Ticks left to read, counted without keeping any of them.
    fn count_ticks(&mut self) -> Result<u64, Error> {
        let mut k = 0;
        while self.next_tick()?.is_some() {
            k += 1;
        }
        Ok(k)
    }

    fn no_tick(&self, n: i64) -> Error {
        Error::failed(format!(
            "{} has {} ticks: there is no tick {n} (count from 0, or -1 for the last)",
            quoted(&self.name),
            self.ticks
        ))
    }
}

fn tick_snapshots(t: Tick) -> Vec<Snapshot> {
    t.events
        .into_iter()
        .filter_map(|e| match e {
            Event::First(s) | Event::Update { snapshot: s, .. } => Some(s),
            Event::Exited { .. } => None,
        })
        .collect()
}

fn json_error(name: &str, line: usize, e: &serde_json::Error, what: &str) -> Error {
    // serde's text quotes the offending value (an unknown `kind`, say) as it was.
    Error::malformed(
        name,
        format!(
            "{} line {line}, column {}: not {what}: {}",
            quoted(name),
            e.column(),
            escape_control(&e.to_string())
        ),
    )
}

/// Tick `n` of the recording at `path` (negative counts from the end). A regular file is read
/// twice when `n` is negative, first to count its ticks, so that memory holds one tick's state
/// however far from the end `n` is; anything else (a pipe) keeps a ring of the last `-n`.
/// Warnings go to `warn` as they come, one line each, unescaped (the sink escapes).
pub fn recording_tick(
    path: &str,
    n: i64,
    warn: &mut dyn FnMut(&str),
) -> Result<Vec<Snapshot>, Error> {
    let reader = |f| std::io::BufReader::with_capacity(1 << 16, f);
    let f = open(Path::new(path))?;
    let regular = f.metadata().is_ok_and(|m| m.is_file());
    let mut src = RecordingSource::new(path, reader(f))?;
    let mut tell = |src: &mut RecordingSource<_>| {
        for w in src.take_warnings() {
            warn(&w);
        }
    };
    if n >= 0 || !regular {
        let out = src.snapshots_at(n);
        tell(&mut src);
        return out;
    }
    let total = src.count_ticks()?;
    tell(&mut src);
    let back = n.unsigned_abs();
    if back > total {
        return Err(src.no_tick(n));
    }
    let mut again = RecordingSource::new(path, reader(open(Path::new(path))?))?;
    match again.snapshots_at_index(total - back)? {
        Some(s) => Ok(s),
        // The file changed between the two reads (a recording still being written).
        None => Err(again.no_tick(n)),
    }
}

/// Reads at most `left` bytes, then fails: a snapshot file is bounded, `/dev/zero` is not.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other(format!(
                "the file is larger than {} MiB: not a snapshot written by 'fdiff snapshot --format json'",
                MAX_SNAPSHOT_FILE >> 20
            )));
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Turns each element of a snapshot array into a [`Snapshot`] as it is read, so memory holds
/// the snapshots and one element's text, never a tree of the whole file.
struct Snapshots<'a> {
    spec: &'a str,
    out: &'a mut Vec<Snapshot>,
    /// Our own error, when a snapshot was refused: serde's error then only says "stop".
    refused: &'a mut Option<Error>,
    capped: &'a mut bool,
}

impl<'de> serde::de::Visitor<'de> for Snapshots<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a snapshot object or an array of them")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<Box<serde_json::value::RawValue>>()? {
            let i = self.out.len() + 1;
            match snapshot_of(self.spec, i, raw.get()) {
                Ok(mut s) => {
                    *self.capped |= cap_snapshot(&mut s);
                    self.out.push(s);
                }
                Err(e) => {
                    *self.refused = Some(e);
                    return Err(serde::de::Error::custom("refused"));
                }
            }
        }
        Ok(())
    }
}

/// One snapshot from its JSON text: the schema is checked first, so a file of another kind is
/// named as such rather than by the first field it lacks.
fn snapshot_of(spec: &str, i: usize, text: &str) -> Result<Snapshot, Error> {
    #[derive(serde::Deserialize)]
    struct Schema {
        #[serde(default)]
        schema: Option<serde_json::Value>,
    }
    let schema = match serde_json::from_str::<Schema>(text) {
        Ok(Schema {
            schema: Some(serde_json::Value::String(s)),
        }) => s,
        Ok(Schema { schema: Some(v) }) => v.to_string(),
        Ok(Schema { schema: None }) => String::new(),
        Err(_) => {
            return Err(Error::malformed(
                spec,
                format!(
                    "{}: snapshot {i} is not a JSON object: not a snapshot written by 'fdiff snapshot --format json'",
                    quoted(spec)
                ),
            ));
        }
    };
    if schema != SNAPSHOT_SCHEMA {
        let mut shown = schema;
        cap(&mut shown, 200);
        return Err(Error::malformed(
            spec,
            format!(
                "{}: snapshot {i} has schema {}, expected '{SNAPSHOT_SCHEMA}'",
                quoted(spec),
                quoted(&shown)
            ),
        ));
    }
    serde_json::from_str::<Snapshot>(text).map_err(|e| {
        Error::malformed(
            spec,
            format!(
                "{}: snapshot {i} is malformed: {}",
                quoted(spec),
                escape_control(&e.to_string())
            ),
        )
    })
}

/// Load the snapshots named by `spec`: a file written by `fdiff snapshot --format json` (one
/// object or an array), or `RECORDING.jsonl@N` for tick N of a recording.
/// Warnings go to `warn`, as in [`recording_tick`].
pub fn load_snapshots(spec: &str, warn: &mut dyn FnMut(&str)) -> Result<Vec<Snapshot>, Error> {
    if let Some((path, n)) = spec.rsplit_once('@') {
        if let Ok(n) = n.parse::<i64>() {
            return recording_tick(path, n, warn);
        }
    }
    let f = std::fs::File::open(spec).map_err(|e| Error::io("read", spec, e))?;
    let (snaps, warnings) = read_snapshots(spec, f)?;
    for w in warnings {
        warn(&w);
    }
    Ok(snaps)
}

/// The snapshots of a snapshot file read from `f` (named `spec` in messages), with the
/// warnings to tell; at most [`MAX_SNAPSHOT_FILE`] bytes are read.
pub fn read_snapshots<R: Read>(spec: &str, f: R) -> Result<(Vec<Snapshot>, Vec<String>), Error> {
    let q = quoted(spec);
    let mut r = std::io::BufReader::with_capacity(
        1 << 16,
        Capped {
            inner: f,
            left: MAX_SNAPSHOT_FILE,
        },
    );
    // Past leading whitespace, the first bytes tell an empty file, a recording or an array.
    let head = loop {
        let b = r.fill_buf().map_err(|e| Error::io("read", spec, e))?;
        if b.is_empty() {
            return Err(Error::malformed(
                spec,
                format!("{q} is empty: it holds no snapshot"),
            ));
        }
        match b.iter().position(|c| !c.is_ascii_whitespace()) {
            Some(i) => {
                r.consume(i);
                break r.fill_buf().map_err(|e| Error::io("read", spec, e))?;
            }
            None => {
                let n = b.len();
                r.consume(n);
            }
        }
    };
    // A recording given without @N: say how to pick a tick.
    if head.starts_with(b"{\"type\":\"header\"") {
        return Err(Error::malformed(
            spec,
            format!(
                "{q} is a recording: name one of its ticks, e.g. '{}@0' or '{}@-1'",
                escape_control(spec),
                escape_control(spec)
            ),
        ));
    }
    let array = head.starts_with(b"[");
    let mut de = serde_json::Deserializer::from_reader(r);
    let not_snapshot = |e: serde_json::Error| {
        Error::malformed(
            spec,
            format!(
                "{q} line {}, column {}: not a snapshot written by 'fdiff snapshot --format json': {}",
                e.line(),
                e.column(),
                escape_control(&e.to_string())
            ),
        )
    };
    let mut out = Vec::new();
    let mut capped = false;
    if array {
        let mut refused = None;
        let res = serde::Deserializer::deserialize_seq(
            &mut de,
            Snapshots {
                spec,
                out: &mut out,
                refused: &mut refused,
                capped: &mut capped,
            },
        );
        if let Some(e) = refused {
            return Err(e);
        }
        res.map_err(not_snapshot)?;
    } else {
        let raw: Box<serde_json::value::RawValue> =
            serde::Deserialize::deserialize(&mut de).map_err(not_snapshot)?;
        let mut s = snapshot_of(spec, 1, raw.get())?;
        drop(raw);
        capped |= cap_snapshot(&mut s);
        out.push(s);
    }
    de.end().map_err(not_snapshot)?;
    let mut warnings = Vec::new();
    if capped {
        warnings.push(format!(
            "{q}: over-long names or paths were cut (comm to {MAX_COMM} bytes, command lines to {} KiB, paths to {} KiB)",
            MAX_CMDLINE_BYTES >> 10,
            MAX_TARGET >> 10
        ));
    }
    Ok((out, warnings))
}

/// Open a recording or snapshot file for reading; the error names the file.
pub fn open(path: &Path) -> Result<std::fs::File, Error> {
    std::fs::File::open(path).map_err(|e| Error::io("open", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue9_cap_cuts_on_a_character_boundary() {
        let mut s = "é".repeat(10);
        assert!(cap(&mut s, 5));
        assert_eq!(s, "éé…");
        let mut short = "abc".to_owned();
        assert!(!cap(&mut short, 3));
        let mut c = vec![
            "a".repeat(MAX_CMDLINE_BYTES - 1),
            "bcd".to_owned(),
            "e".into(),
        ];
        assert!(cap_cmdline(&mut c));
        assert_eq!(c.len(), 2);
        assert!(c.iter().map(String::len).sum::<usize>() <= MAX_CMDLINE_BYTES + 3);
    }

    #[test]
    fn issue9_line_reader_stops_at_the_cap() {
        let data = b"ab\ncdefgh\nij".to_vec();
        let mut r = std::io::BufReader::with_capacity(2, std::io::Cursor::new(data));
        let mut buf = Vec::new();
        assert!(matches!(
            read_line(&mut r, &mut buf, 4),
            Ok(LineRead::Line { last: false })
        ));
        assert_eq!(buf, b"ab");
        assert!(matches!(
            read_line(&mut r, &mut buf, 4),
            Ok(LineRead::TooLong)
        ));
        let mut r = std::io::BufReader::new(std::io::Cursor::new(b"x\ny".to_vec()));
        read_line(&mut r, &mut buf, 4).expect("line");
        assert!(matches!(
            read_line(&mut r, &mut buf, 4),
            Ok(LineRead::Line { last: true })
        ));
        assert_eq!(buf, b"y");
        assert!(matches!(read_line(&mut r, &mut buf, 4), Ok(LineRead::Eof)));
    }
}
