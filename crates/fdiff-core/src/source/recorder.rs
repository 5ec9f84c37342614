//! Recording writer: streams ticks as `fdiff/recording/v1` JSON Lines, flushed every tick, so a
//! crash or kill -9 loses at most the tick in progress.
//!
//! In the core, beside [`super::recording`]: the writer and the reader of one format live in
//! one crate, so a change to either is tested against the other, and any consumer of the
//! pipeline (not only the CLI) can record.

use crate::error::Error;
use crate::snapshot::record::{FULL_EVERY, Header, Line, ProcLine, RECORDING_SCHEMA, TickLine};
use crate::source::{Event, Tick};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Writes ticks as a recording (`fdiff/recording/v1`): a header, then a line per tick, with
/// full snapshots on a process's first tick and every [`crate::snapshot::record::FULL_EVERY`]
/// ticks and deltas in between.
pub struct Recorder<W: Write> {
    out: BufWriter<W>,
    name: PathBuf,
    ticks: u64,
    /// Each process's name as last written, so a delta carries it only after an exec.
    comms: std::collections::HashMap<crate::snapshot::ProcId, String>,
}

impl Recorder<std::fs::File> {
    /// A recorder writing to a new file at `path` (a FIFO is opened for writing too); the header
    /// is written at once.
    pub fn create(path: &Path, interval_secs: f64, started_at: f64) -> Result<Self, Error> {
        let f = create_output(path)?;
        Recorder::new(f, path, interval_secs, started_at)
    }
}

/// How long a FIFO may go without a reader before opening it for writing fails: long enough for
/// `fdiff --record F & reader <F` to win the race, short enough never to wedge the watch.
const FIFO_READER_WAIT: std::time::Duration = std::time::Duration::from_millis(1000);

/// Create or truncate `path` for writing, like `File::create`, except that a FIFO nobody reads
/// fails after a moment instead of blocking in open(2) forever.
pub fn create_output(path: &std::path::Path) -> Result<std::fs::File, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let shown = crate::util::escape_control(&path.to_string_lossy()).into_owned();
    let deadline = std::time::Instant::now() + FIFO_READER_WAIT;
    loop {
        // Non-blocking, a FIFO without a reader is ENXIO at once; other files open as usual.
        let res = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path);
        match res {
            Ok(f) => {
                // Later writes must block (and be flushed whole), not fail with EAGAIN.
                let flags = rustix::fs::fcntl_getfl(&f)
                    .and_then(|fl| rustix::fs::fcntl_setfl(&f, fl - rustix::fs::OFlags::NONBLOCK))
                    .map_err(std::io::Error::from);
                flags.map_err(|e| Error::io("open", path, e))?;
                return Ok(f);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                if std::time::Instant::now() >= deadline {
                    return Err(Error::failed(format!(
                        "cannot write to '{shown}': it is a FIFO and nothing reads it; start the reader first"
                    )));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(Error::io("create", path, e)),
        }
    }
}

impl<W: Write> Recorder<W> {
    /// A recorder writing to `w`, named `name` in its errors; the header is written at once.
    pub fn new(
        w: W,
        name: impl AsRef<Path>,
        interval_secs: f64,
        started_at: f64,
    ) -> Result<Self, Error> {
        let mut r = Recorder {
            out: BufWriter::with_capacity(1 << 16, w),
            name: name.as_ref().to_owned(),
            ticks: 0,
            comms: std::collections::HashMap::new(),
        };
        r.line(&Line::Header(Header {
            schema: RECORDING_SCHEMA.to_owned(),
            interval_secs,
            started_at,
            fdiff_version: env!("CARGO_PKG_VERSION").to_owned(),
        }))?;
        Ok(r)
    }

    /// Write one tick's line.
    pub fn tick(&mut self, tick: &Tick) -> Result<(), Error> {
        let full = self.ticks % FULL_EVERY == 0;
        let comms = &mut self.comms;
        let mut procs = Vec::with_capacity(tick.events.len());
        for e in &tick.events {
            procs.push(match e {
                Event::First(s) => {
                    comms.insert(s.proc_id(), s.comm.clone());
                    ProcLine::Full {
                        snapshot: s.clone(),
                    }
                }
                Event::Update { snapshot, .. } if full => {
                    comms.insert(snapshot.proc_id(), snapshot.comm.clone());
                    ProcLine::Full {
                        snapshot: snapshot.clone(),
                    }
                }
                Event::Update { snapshot, delta } => {
                    let renamed = comms.get(&snapshot.proc_id()) != Some(&snapshot.comm);
                    if renamed {
                        comms.insert(snapshot.proc_id(), snapshot.comm.clone());
                    }
                    ProcLine::Delta {
                        pid: snapshot.pid,
                        start_time: snapshot.start_time,
                        taken_at: snapshot.taken_at,
                        fd_limit: snapshot.fd_limit,
                        closed: delta.all_closed().map(|e| e.fd).collect(),
                        opened: delta.all_opened().cloned().collect(),
                        errors: snapshot.errors.clone(),
                        comm: renamed.then(|| snapshot.comm.clone()),
                        cmdline: renamed.then(|| snapshot.cmdline.clone()),
                    }
                }
                Event::Exited { id, at } => {
                    comms.remove(id);
                    ProcLine::Exited {
                        pid: id.pid,
                        start_time: id.start_time,
                        at: *at,
                    }
                }
            });
        }
        self.line(&Line::Tick(TickLine {
            tick: self.ticks,
            t: tick.t,
            procs,
            mono: tick.mono,
        }))?;
        self.ticks += 1;
        Ok(())
    }

    fn line(&mut self, l: &Line) -> Result<(), Error> {
        let res = crate::json::to_writer(&mut self.out, l, crate::json::Style::Compact)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"))
            .and_then(|()| self.out.flush());
        res.map_err(|e| Error::io("write the recording", &self.name, e))
    }
}
