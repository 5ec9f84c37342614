//! The functions and classes of `fdiff._native`. Every read of /proc runs with the GIL
//! released (`Python::detach`), so other Python threads keep running while fdiff reads a
//! large fd table, and a watch can run in a thread of its own.

use fdiff_core::Error;
use fdiff_core::pipeline::{self, NoControl, Plan};
use fdiff_core::snapshot::socket::SocketDecoder;
use fdiff_core::snapshot::{Kind, ProcId, Snapshot};
use fdiff_core::source::live::{LiveProc, LiveSource};
use fdiff_core::source::recording::{self, RecordingSource};
use fdiff_core::source::select::Selector;
use fdiff_core::source::{Event, Tick};
use fdiff_core::track::group::{self, Listeners};
use fdiff_core::track::{GroupBy, TrackOptions, Tracker};
use pyo3::create_exception;
use pyo3::exceptions::{
    PyOSError, PyPermissionError, PyProcessLookupError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

create_exception!(
    _native,
    RecordingError,
    PyValueError,
    "A recording or snapshot file that is malformed; `.file` and `.line` say where."
);

/// The exception a Python user expects for each of the core's errors, with the CLI's line.
fn to_py(e: Error) -> PyErr {
    let msg = e.message();
    match e {
        Error::NoSuchProcess { .. } | Error::Zombie { .. } | Error::Exited { .. } => {
            PyProcessLookupError::new_err(msg)
        }
        Error::PermissionDenied { .. } => PyPermissionError::new_err(msg),
        Error::Malformed { path, message } => {
            let err = RecordingError::new_err(message.clone());
            Python::attach(|py| {
                let v = err.value(py);
                let _ = v.setattr("file", path.to_string_lossy().into_owned());
                let _ = v.setattr("line", line_of(&message));
            });
            err
        }
        Error::Io { path, source, .. } => {
            let errno = source.raw_os_error().unwrap_or(0);
            // OSError(errno, text, filename) is FileNotFoundError for ENOENT, and so on.
            PyOSError::new_err((errno, msg, path.to_string_lossy().into_owned()))
        }
        Error::ProcessIo { source, .. } => {
            PyOSError::new_err((source.raw_os_error().unwrap_or(0), msg))
        }
        Error::Selection { .. } if msg.contains("permission denied") => {
            PyPermissionError::new_err(msg)
        }
        Error::Selection { .. } if msg.contains("itself") => PyValueError::new_err(msg),
        Error::Selection { .. } => PyProcessLookupError::new_err(msg),
        _ => PyRuntimeError::new_err(msg),
    }
}

/// The line number a malformed-input message names ("'rec.jsonl' line 7, column 3: …").
fn line_of(message: &str) -> Option<u64> {
    let rest = &message[message.find(" line ")? + 6..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

fn json_err(e: serde_json::Error) -> PyErr {
    PyValueError::new_err(format!("not an fdiff document: {e}"))
}

fn to_json<T: serde::Serialize>(v: &T) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// Snapshot of the fds of process `pid` (the calling process too), as `fdiff snapshot --format
/// json` prints it.
#[pyfunction]
fn snapshot_json(py: Python<'_>, pid: i32) -> PyResult<String> {
    let snap = py.detach(|| -> Result<Snapshot, Error> {
        let mut snap = {
            let mut p = LiveProc::open(pid)?;
            let mut sockets = SocketDecoder::new();
            p.snapshot(&[], &mut sockets)?
        };
        if pid == std::process::id() as i32 {
            // A snapshot of this process sees the reader's own handles (/proc/PID, its fd
            // dir, a pidfd, a netlink socket); they are closed now, so keep only fds that are
            // still open. lstat of the link opens nothing.
            snap.fds
                .retain(|e| std::fs::symlink_metadata(format!("/proc/self/fd/{}", e.fd)).is_ok());
        }
        Ok(snap)
    });
    to_json(&snap.map_err(to_py)?)
}

fn parse_snapshot(s: &str) -> PyResult<Snapshot> {
    serde_json::from_str(s).map_err(json_err)
}

/// `fdiff diff` of two snapshot documents: the `fdiff/diff/v1` document.
#[pyfunction]
fn diff_json(before: &str, after: &str) -> PyResult<String> {
    let (a, b) = (parse_snapshot(before)?, parse_snapshot(after)?);
    let d = fdiff_core::track::compare::compare(&[a], &[b], &TrackOptions::default());
    to_json(&d)
}

/// The group key of every fd of a snapshot document, in fd order: `[[fd, kind, key], …]`.
#[pyfunction]
fn keys_json(snapshot: &str) -> PyResult<String> {
    let s = parse_snapshot(snapshot)?;
    to_json(&keys(&s))
}

fn keys(s: &Snapshot) -> Vec<(i32, Kind, String)> {
    let mut l = Listeners::default();
    s.fds.iter().for_each(|e| l.add(e));
    s.fds
        .iter()
        .map(|e| (e.fd, e.kind(), group::key(e, GroupBy::default(), &l)))
        .collect()
}

/// The snapshots of `spec`: a snapshot file, or `RECORDING.jsonl@N` for tick N.
#[pyfunction]
fn load_snapshots_json(py: Python<'_>, spec: &str) -> PyResult<(String, Vec<String>)> {
    let (snaps, warnings) = py.detach(|| {
        let mut warnings = Vec::new();
        let r = recording::load_snapshots(spec, &mut |w| warnings.push(w.to_owned()));
        (r, warnings)
    });
    Ok((to_json(&snaps.map_err(to_py)?)?, warnings))
}

/// Ticks one after the other: what a tick saw, per process, as a JSON document.
struct TickShaper {
    /// Per process, the group counts of its last tick, for the change over this one.
    last: HashMap<ProcId, BTreeMap<(Kind, String), u64>>,
}

impl TickShaper {
    fn shape(&mut self, tick: &Tick) -> Value {
        let mut procs = Vec::new();
        for ev in &tick.events {
            let (snap, delta, first) = match ev {
                Event::First(s) => (s, None, true),
                Event::Update { snapshot, delta } => (snapshot, Some(delta), false),
                Event::Exited { id, at } => {
                    self.last.remove(id);
                    procs.push(json!({"pid": id.pid, "start_time": id.start_time,
                        "event": "exited", "at": at}));
                    continue;
                }
            };
            let mut counts: BTreeMap<(Kind, String), u64> = BTreeMap::new();
            for (_, kind, key) in keys(snap) {
                *counts.entry((kind, key)).or_default() += 1;
            }
            let before = self.last.remove(&snap.proc_id()).unwrap_or_default();
            let groups: Vec<Value> = counts
                .keys()
                .chain(before.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .map(|k| {
                    let now = counts.get(k).copied().unwrap_or(0);
                    let was = before.get(k).copied().unwrap_or(0);
                    json!({"kind": k.0, "key": k.1, "count": now,
                        "change": if first { 0 } else { now as i64 - was as i64 }})
                })
                .collect();
            let (opened, closed, replaced) = match delta {
                Some(d) => (
                    serde_json::to_value(&d.opened).unwrap_or_default(),
                    serde_json::to_value(&d.closed).unwrap_or_default(),
                    serde_json::to_value(&d.replaced).unwrap_or_default(),
                ),
                None => (json!([]), json!([]), json!([])),
            };
            procs.push(json!({
                "pid": snap.pid, "comm": snap.comm, "start_time": snap.start_time,
                "event": if first { "first" } else { "update" },
                "fds": snap.fds.len(), "fd_limit": snap.fd_limit,
                "opened": opened, "closed": closed, "replaced": replaced, "groups": groups,
            }));
            self.last.insert(snap.proc_id(), counts);
        }
        json!({"t": tick.t, "mono": tick.mono, "processes": procs})
    }
}

/// A live watch: the processes a selection names, one tick per call, into a tracker.
#[pyclass(module = "fdiff._native")]
struct Watcher {
    source: LiveSource,
    tracker: Tracker,
    shaper: TickShaper,
    started: bool,
}

#[pymethods]
impl Watcher {
    #[new]
    #[pyo3(signature = (pids, name=None, full=false, children=false, interval=1.0))]
    fn new(
        pids: Vec<i32>,
        name: Option<&str>,
        full: bool,
        children: bool,
        interval: f64,
    ) -> PyResult<Self> {
        let name = name
            .map(|n| {
                regex::Regex::new(n).map_err(|e| {
                    PyValueError::new_err(format!(
                        "name {}: not a regular expression: {e}",
                        fdiff_core::util::quoted(n)
                    ))
                })
            })
            .transpose()?;
        let selector = Selector {
            pids,
            name,
            full,
            children,
        };
        Ok(Watcher {
            source: LiveSource::new(selector),
            tracker: pipeline::tracker(TrackOptions::default(), interval),
            shaper: TickShaper {
                last: HashMap::new(),
            },
            started: false,
        })
    }

    /// Take one tick (the first opens the selection): the tick document and the warnings.
    fn tick(&mut self, py: Python<'_>) -> PyResult<(String, Vec<String>)> {
        let Watcher {
            source,
            tracker,
            shaper,
            started,
        } = self;
        let r = py.detach(|| -> Result<Value, Error> {
            if !*started {
                source.start()?;
                *started = true;
            }
            let t = source.next_tick()?;
            tracker.feed(&t);
            Ok(shaper.shape(&t))
        });
        let warnings = self
            .source
            .warnings
            .drain(..)
            .map(|w| w.to_string())
            .collect();
        Ok((to_json(&r.map_err(to_py)?)?, warnings))
    }

    /// Processes still being watched.
    fn live(&self) -> usize {
        self.source.live()
    }

    /// The `fdiff/report/v1` document of everything watched so far.
    fn report(&self, py: Python<'_>) -> PyResult<String> {
        let mut r = py.detach(|| self.tracker.report());
        r.unwatched = self.source.unwatched();
        to_json(&r)
    }
}

/// The `fdiff/report/v1` document of a recording made by `fdiff --record`, and its warnings.
#[pyfunction]
fn report_json(py: Python<'_>, path: &str) -> PyResult<(String, Vec<String>)> {
    let r = py.detach(|| -> Result<_, Error> {
        let f = recording::open(std::path::Path::new(path))?;
        let mut src = RecordingSource::new(path, std::io::BufReader::with_capacity(1 << 16, f))?;
        let tracker = pipeline::tracker(TrackOptions::default(), src.interval_secs());
        let run = pipeline::run(
            &mut src,
            &Plan::to_the_end(),
            tracker,
            &mut [],
            &mut NoControl,
        )?;
        if run.tracker.ticks() == 0 {
            return Err(Error::malformed(
                path,
                format!(
                    "{} holds no tick: nothing to analyse",
                    fdiff_core::util::quoted(path)
                ),
            ));
        }
        Ok((run.tracker.report(), src.take_warnings()))
    });
    let (report, warnings) = r.map_err(to_py)?;
    Ok((to_json(&report)?, warnings))
}

/// A recording read back tick by tick.
#[pyclass(module = "fdiff._native")]
struct RecordingReader {
    source: RecordingSource<std::io::BufReader<std::fs::File>>,
    shaper: TickShaper,
}

#[pymethods]
impl RecordingReader {
    #[new]
    fn new(py: Python<'_>, path: &str) -> PyResult<Self> {
        let source = py
            .detach(|| -> Result<_, Error> {
                let f = recording::open(std::path::Path::new(path))?;
                RecordingSource::new(path, std::io::BufReader::with_capacity(1 << 16, f))
            })
            .map_err(to_py)?;
        Ok(RecordingReader {
            source,
            shaper: TickShaper {
                last: HashMap::new(),
            },
        })
    }

    /// The interval the recording was made at, in seconds.
    fn interval_secs(&self) -> f64 {
        self.source.interval_secs()
    }

    /// The next tick document, or None at the end.
    fn next_tick(&mut self, py: Python<'_>) -> PyResult<Option<String>> {
        let RecordingReader { source, shaper } = self;
        let t = py
            .detach(|| source.next_tick().map(|t| t.map(|t| shaper.shape(&t))))
            .map_err(to_py)?;
        t.map(|v| to_json(&v)).transpose()
    }

    /// Warnings so far (a truncated last line, gaps).
    fn take_warnings(&mut self) -> Vec<String> {
        self.source.take_warnings()
    }
}

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(snapshot_json, m)?)?;
    m.add_function(wrap_pyfunction!(diff_json, m)?)?;
    m.add_function(wrap_pyfunction!(keys_json, m)?)?;
    m.add_function(wrap_pyfunction!(load_snapshots_json, m)?)?;
    m.add_function(wrap_pyfunction!(report_json, m)?)?;
    m.add_class::<Watcher>()?;
    m.add_class::<RecordingReader>()?;
    m.add("RecordingError", m.py().get_type::<RecordingError>())?;
    Ok(())
}
