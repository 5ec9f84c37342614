//! Recording source: reads a `fdiff/recording/v1` JSON Lines file back into the ticks a live
//! watch produced, and loads snapshot files (`fdiff snapshot --format json`, or `FILE@N`).

use super::{Event, Tick};
use crate::diff::{apply, diff};
use crate::error::Error;
use crate::snapshot::record::{Header, Line, ProcLine, RECORDING_SCHEMA};
use crate::snapshot::{ProcId, SNAPSHOT_SCHEMA, Snapshot};
use std::collections::BTreeMap;
use std::io::BufRead;

/// Reads ticks from a recording, one line at a time.
pub struct RecordingSource<R: BufRead> {
    name: String,
    lines: std::iter::Peekable<std::iter::Enumerate<std::io::Split<R>>>,
    header: Header,
    state: BTreeMap<ProcId, Snapshot>,
    /// A warning for the user (a truncated last line), printed by the caller.
    pub warning: Option<String>,
}

impl<R: BufRead> RecordingSource<R> {
    /// Open a recording; fails on an empty file or a header that is not a recording's.
    pub fn new(name: &str, reader: R) -> Result<Self, Error> {
        let mut lines = reader.split(b'\n').enumerate().peekable();
        let header = loop {
            match lines.next() {
                None => {
                    return Err(Error::failed(format!(
                        "'{name}' is empty: it holds no recording"
                    )));
                }
                Some((_, Err(e))) => return Err(Error::io(&format!("read '{name}'"), &e)),
                Some((_, Ok(l))) if l.iter().all(u8::is_ascii_whitespace) => continue,
                Some((i, Ok(l))) => match serde_json::from_slice::<Line>(&l) {
                    Ok(Line::Header(h)) if h.schema == RECORDING_SCHEMA => break h,
                    Ok(Line::Header(h)) => {
                        return Err(Error::failed(format!(
                            "'{name}' line {}: schema '{}' is not supported (expected '{RECORDING_SCHEMA}')",
                            i + 1,
                            h.schema
                        )));
                    }
                    Ok(Line::Tick(_)) => {
                        return Err(Error::failed(format!(
                            "'{name}' line {}: the recording has no header line (was its start cut off?)",
                            i + 1
                        )));
                    }
                    Err(e) => {
                        return Err(json_error(
                            name,
                            i + 1,
                            &e,
                            "a recording written by 'fdiff --record'",
                        ));
                    }
                },
            }
        };
        Ok(RecordingSource {
            name: name.to_owned(),
            lines,
            header,
            state: BTreeMap::new(),
            warning: None,
        })
    }

    pub fn interval_secs(&self) -> f64 {
        self.header.interval_secs
    }

    /// The next tick, rebuilt into full snapshots and deltas; `None` at the end.
    pub fn next_tick(&mut self) -> Result<Option<Tick>, Error> {
        loop {
            let Some((i, line)) = self.lines.next() else {
                return Ok(None);
            };
            let line = line.map_err(|e| Error::io(&format!("read '{}'", self.name), &e))?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let parsed = serde_json::from_slice::<Line>(&line);
            let last = self.lines.peek().is_none();
            let tl = match parsed {
                Ok(Line::Tick(t)) => t,
                Ok(Line::Header(_)) => {
                    return Err(Error::failed(format!(
                        "'{}' line {}: a second header line",
                        self.name,
                        i + 1
                    )));
                }
                // A crash mid-write leaves a cut last line: lose that tick, keep the rest.
                Err(e) if last && (e.is_eof() || e.is_syntax()) => {
                    self.warning = Some(format!(
                        "'{}' line {}: the last line is truncated (the recording was cut off mid-write); analysed the {} complete ticks before it",
                        self.name,
                        i + 1,
                        i.saturating_sub(1)
                    ));
                    return Ok(None);
                }
                Err(e) => return Err(json_error(&self.name, i + 1, &e, "a recording line")),
            };
            return Ok(Some(self.rebuild(tl, i + 1)?));
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
                ProcLine::Full { snapshot } => {
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
                    opened,
                    errors,
                    comm,
                    cmdline,
                } => {
                    let id = ProcId { pid, start_time };
                    let Some(prev) = self.state.get(&id) else {
                        return Err(Error::failed(format!(
                            "'{}' line {lineno}: a delta for pid {pid} whose full snapshot is missing",
                            self.name
                        )));
                    };
                    let fds = apply(&prev.fds, &closed, &opened);
                    let delta = diff(&prev.fds, &fds);
                    let mut snapshot = Snapshot {
                        taken_at,
                        fd_limit,
                        fds,
                        errors,
                        ..prev.clone_meta()
                    };
                    if let Some(c) = comm {
                        snapshot.comm = c;
                    }
                    if let Some(c) = cmdline {
                        snapshot.cmdline = c;
                    }
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
        Ok(Tick { t: tl.t, events })
    }

    /// The snapshots of tick `n` (negative counts from the end: -1 is the last).
    pub fn snapshots_at(mut self, n: i64) -> Result<Vec<Snapshot>, Error> {
        let mut ticks: Vec<Vec<Snapshot>> = Vec::new();
        let mut idx = 0i64;
        while let Some(t) = self.next_tick()? {
            let snaps: Vec<Snapshot> = t
                .events
                .into_iter()
                .filter_map(|e| match e {
                    Event::First(s) | Event::Update { snapshot: s, .. } => Some(s),
                    Event::Exited { .. } => None,
                })
                .collect();
            if n >= 0 {
                if idx == n {
                    return Ok(snaps);
                }
            } else {
                ticks.push(snaps);
                if ticks.len() > n.unsigned_abs() as usize {
                    ticks.remove(0);
                }
            }
            idx += 1;
        }
        if n < 0 && ticks.len() == n.unsigned_abs() as usize {
            return Ok(ticks.swap_remove(0));
        }
        Err(Error::failed(format!(
            "'{}' has {idx} ticks: there is no tick {n} (count from 0, or -1 for the last)",
            self.name
        )))
    }
}

fn json_error(name: &str, line: usize, e: &serde_json::Error, what: &str) -> Error {
    Error::failed(format!(
        "'{name}' line {line}, column {}: not {what}: {e}",
        e.column()
    ))
}

/// Load the snapshots named by `spec`: a file written by `fdiff snapshot --format json` (one
/// object or an array), or `RECORDING.jsonl@N` for tick N of a recording.
pub fn load_snapshots(spec: &str) -> Result<Vec<Snapshot>, Error> {
    if let Some((path, n)) = spec.rsplit_once('@') {
        if let Ok(n) = n.parse::<i64>() {
            let f = open(path)?;
            return RecordingSource::new(path, std::io::BufReader::new(f))?.snapshots_at(n);
        }
    }
    let text = std::fs::read(spec).map_err(|e| Error::io(&format!("read '{spec}'"), &e))?;
    if text.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::failed(format!(
            "'{spec}' is empty: it holds no snapshot"
        )));
    }
    // A recording given without @N: say how to pick a tick.
    if text.starts_with(b"{\"type\":\"header\"") {
        return Err(Error::failed(format!(
            "'{spec}' is a recording: name one of its ticks, e.g. '{spec}@0' or '{spec}@-1'"
        )));
    }
    let value: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
        Error::failed(format!(
            "'{spec}' line {}, column {}: not a snapshot written by 'fdiff snapshot --format json': {e}",
            e.line(),
            e.column()
        ))
    })?;
    let items = match value {
        serde_json::Value::Array(a) => a,
        v => vec![v],
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, v) in items.into_iter().enumerate() {
        let schema = v.get("schema").and_then(|s| s.as_str()).unwrap_or("");
        if schema != SNAPSHOT_SCHEMA {
            return Err(Error::failed(format!(
                "'{spec}': snapshot {} has schema '{schema}', expected '{SNAPSHOT_SCHEMA}'",
                i + 1
            )));
        }
        let s: Snapshot = serde_json::from_value(v).map_err(|e| {
            Error::failed(format!("'{spec}': snapshot {} is malformed: {e}", i + 1))
        })?;
        out.push(s);
    }
    Ok(out)
}

pub fn open(path: &str) -> Result<std::fs::File, Error> {
    std::fs::File::open(path).map_err(|e| Error::io(&format!("open '{path}'"), &e))
}
