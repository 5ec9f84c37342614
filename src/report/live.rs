//! Live lines: one line per change and a short line per tick, summarised per group when a tick
//! changes more than fits on a screen.

use super::human;
use crate::snapshot::{FdEntry, ProcId, describe};
use crate::source::{Event, Tick};
use crate::track::Tracker;
use crate::util::escape_control;
use std::collections::BTreeMap;
use std::io::{self, Write};

pub struct LiveLines<W: Write> {
    out: W,
    color: bool,
    /// Changes per tick beyond which they are summarised per group.
    max_lines: usize,
    tick: u64,
}

impl<W: Write> LiveLines<W> {
    pub fn new(out: W, color: bool, max_lines: usize) -> Self {
        LiveLines {
            out,
            color,
            max_lines: max_lines.max(4),
            tick: 0,
        }
    }

    fn paint(&self, s: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    pub fn line(&mut self, s: &str) -> io::Result<()> {
        writeln!(self.out, "{s}")?;
        self.out.flush()
    }

    /// Print the lines of one tick. `tracker` has already been fed the tick.
    pub fn tick(&mut self, tick: &Tick, tracker: &Tracker) -> io::Result<()> {
        let multi = tick.events.len() > 1;
        let changes: usize = tick
            .events
            .iter()
            .map(|e| match e {
                Event::Update { delta, .. } => delta.opened_count() + delta.closed_count(),
                _ => 1,
            })
            .sum();
        let summarise = changes > self.max_lines;
        for ev in &tick.events {
            match ev {
                Event::First(s) => {
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
                    self.line(&line)?;
                }
                Event::Exited { id, .. } => {
                    let line = format!("pid {} exited", id.pid);
                    let line = self.paint(&line, "33");
                    self.line(&line)?;
                }
                Event::Update { snapshot, delta } => {
                    let id = snapshot.proc_id();
                    let prefix = if multi {
                        format!("[{}] ", id.pid)
                    } else {
                        String::new()
                    };
                    if summarise {
                        self.summary(&prefix, id, delta.all_closed(), "-", tracker)?;
                        self.summary(&prefix, id, delta.all_opened(), "+", tracker)?;
                    } else {
                        for e in delta.all_closed() {
                            let l = format!("{prefix}{} {}", self.paint("-", "31"), entry_line(e));
                            self.line(&l)?;
                        }
                        for e in delta.all_opened() {
                            let l = format!("{prefix}{} {}", self.paint("+", "32"), entry_line(e));
                            self.line(&l)?;
                        }
                    }
                }
            }
        }
        self.tick += 1;
        let mut parts = Vec::new();
        for ev in &tick.events {
            if let Event::Update { snapshot, delta } = ev {
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
            self.line(&line)?;
        }
        Ok(())
    }

    fn summary<'a>(
        &mut self,
        prefix: &str,
        id: ProcId,
        entries: impl Iterator<Item = &'a std::sync::Arc<FdEntry>>,
        sign: &str,
        tracker: &Tracker,
    ) -> io::Result<()> {
        let mut per: BTreeMap<(String, String), usize> = BTreeMap::new();
        for e in entries {
            let (kind, key) = tracker
                .group_of(id, e)
                .map(|(k, key)| (k.as_str().to_owned(), key))
                .unwrap_or_else(|| (e.kind().as_str().to_owned(), "(filtered)".to_owned()));
            *per.entry((kind, key)).or_default() += 1;
        }
        let mut rows: Vec<_> = per.into_iter().collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let painted = self.paint(sign, if sign == "+" { "32" } else { "31" });
        for ((kind, key), n) in rows {
            let l = format!("{prefix}{painted} {n}× {kind} {}", escape_control(&key));
            self.line(&l)?;
        }
        Ok(())
    }
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
