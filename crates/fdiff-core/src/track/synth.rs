//! Synthetic ticks of a respawning pool, for retention tests and the memory measurement
//! (`examples/synth_recording.rs`): generated lazily, so the generator itself holds only the
//! live workers.

use crate::diff::diff;
use crate::snapshot::{Detail, FdEntry, FdLimit, FileDetail, SNAPSHOT_SCHEMA, Snapshot};
use crate::source::{Event, Tick};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A pool: one master for the whole run and `workers` workers, one spawned every
/// `ticks / workers` ticks, each living `lifetime` ticks; a worker churns a temp file every
/// tick and, when `leak` is set, keeps one more upload file each tick.
#[derive(Debug, Clone, Copy)]
pub struct Pool {
    pub ticks: usize,
    pub workers: usize,
    pub lifetime: usize,
    pub leak: bool,
    /// Seconds between ticks.
    pub dt: f64,
}

/// The ticks of a [`Pool`], in order.
pub struct PoolTicks {
    pool: Pool,
    k: usize,
    every: usize,
    master: Option<Snapshot>,
    live: BTreeMap<usize, Snapshot>,
}

impl Pool {
    pub fn ticks(self) -> PoolTicks {
        PoolTicks {
            pool: self,
            k: 0,
            every: (self.ticks / self.workers.max(1)).max(1),
            master: None,
            live: BTreeMap::new(),
        }
    }
}

const T0: f64 = 1_700_000_000.0;

fn file(fd: i32, path: String) -> Arc<FdEntry> {
    Arc::new(FdEntry {
        fd,
        target: path.clone(),
        target_hex: None,
        detail: Detail::File(FileDetail {
            path,
            ..FileDetail::default()
        }),
    })
}

fn snap(pid: i32, start_time: u64, comm: &str, t: f64, fds: Vec<Arc<FdEntry>>) -> Snapshot {
    Snapshot {
        schema: SNAPSHOT_SCHEMA.to_owned(),
        pid,
        comm: comm.to_owned(),
        cmdline: vec![comm.to_owned()],
        start_time,
        taken_at: t,
        fd_limit: FdLimit {
            soft: Some(1024),
            hard: Some(4096),
        },
        fds,
        errors: Vec::new(),
    }
}

impl PoolTicks {
    /// Worker `i`'s fds `age` ticks after it started.
    fn worker_fds(&self, i: usize, age: usize) -> Vec<Arc<FdEntry>> {
        let mut fds = vec![
            file(0, "/dev/null".into()),
            file(3, "/usr/lib/x86_64-linux-gnu/libc.so.6".into()),
            file(4, "/var/log/pool/worker.log".into()),
            file(5, format!("/tmp/work-{}.tmp", i * 1000 + age)),
        ];
        if self.pool.leak {
            for j in 0..age {
                fds.push(file(
                    6 + j as i32,
                    format!("/srv/upload-{}.pdf", i * 1000 + j),
                ));
            }
        }
        fds
    }
}

impl Iterator for PoolTicks {
    type Item = Tick;

    fn next(&mut self) -> Option<Tick> {
        let k = self.k;
        if k >= self.pool.ticks {
            return None;
        }
        self.k += 1;
        let t = T0 + k as f64 * self.pool.dt;
        let mut events = Vec::new();
        let m = snap(
            100,
            1,
            "pool-master",
            t,
            vec![file(3, "/var/log/pool/master.log".into())],
        );
        events.push(match self.master.replace(m.clone()) {
            None => Event::First(m),
            Some(prev) => Event::Update {
                delta: diff(&prev.fds, &m.fds),
                snapshot: m,
            },
        });
        if k % self.every == 0 && k / self.every < self.pool.workers {
            self.live
                .insert(k / self.every, snap(0, 0, "", t, Vec::new()));
        }
        let ids: Vec<usize> = self.live.keys().copied().collect();
        for i in ids {
            let age = k - i * self.every;
            // Pids are reused (as the kernel does); the start time tells the processes apart.
            let (pid, start_time) = (1000 + (i % 20_000) as i32, 10 + i as u64);
            if age >= self.pool.lifetime {
                self.live.remove(&i);
                events.push(Event::Exited {
                    id: crate::snapshot::ProcId { pid, start_time },
                    at: t,
                });
                continue;
            }
            let s = snap(pid, start_time, "pool-worker", t, self.worker_fds(i, age));
            let prev = self.live.insert(i, s.clone());
            events.push(match prev {
                Some(p) if age > 0 => Event::Update {
                    delta: diff(&p.fds, &s.fds),
                    snapshot: s,
                },
                _ => Event::First(s),
            });
        }
        Some(Tick {
            t,
            events,
            mono: Some(k as f64 * self.pool.dt),
        })
    }
}
