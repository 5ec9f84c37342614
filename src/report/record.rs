//! Recording writer: streams ticks as `fdiff/recording/v1` JSON Lines, flushed every tick, so a
//! crash or kill -9 loses at most the tick in progress.

use crate::error::Error;
use crate::snapshot::record::{FULL_EVERY, Header, Line, ProcLine, RECORDING_SCHEMA, TickLine};
use crate::source::{Event, Tick};
use std::io::{BufWriter, Write};

pub struct Recorder<W: Write> {
    out: BufWriter<W>,
    name: String,
    ticks: u64,
    /// Each process's name as last written, so a delta carries it only after an exec.
    comms: std::collections::HashMap<crate::snapshot::ProcId, String>,
}

impl Recorder<std::fs::File> {
    pub fn create(path: &str, interval_secs: f64, started_at: f64) -> Result<Self, Error> {
        let f =
            std::fs::File::create(path).map_err(|e| Error::io(&format!("create '{path}'"), &e))?;
        Recorder::new(f, path, interval_secs, started_at)
    }
}

impl<W: Write> Recorder<W> {
    pub fn new(w: W, name: &str, interval_secs: f64, started_at: f64) -> Result<Self, Error> {
        let mut r = Recorder {
            out: BufWriter::with_capacity(1 << 16, w),
            name: name.to_owned(),
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
        }))?;
        self.ticks += 1;
        Ok(())
    }

    fn line(&mut self, l: &Line) -> Result<(), Error> {
        let res = serde_json::to_writer(&mut self.out, l)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"))
            .and_then(|()| self.out.flush());
        res.map_err(|e| Error::io(&format!("write the recording '{}'", self.name), &e))
    }
}
