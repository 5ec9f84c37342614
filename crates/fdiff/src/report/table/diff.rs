//! A diff of two snapshots as a table: per process the fds closed, replaced and opened, then
//! the groups that changed.

use super::{Align, Cell, Columns};
use crate::report::{DiffRenderer, human};
use crate::snapshot::{FdEntry, describe};
use crate::track::DiffReport;
use crate::util::escape_control;
use std::io::{self, Write};

pub struct DiffTable;

impl DiffRenderer for DiffTable {
    fn diff(&self, d: &DiffReport, out: &mut dyn Write) -> io::Result<()> {
        for p in &d.processes {
            writeln!(
                out,
                "pid {} ({}): {} → {} fds over {}",
                p.pid,
                escape_control(&p.comm),
                human::count(p.fds_before),
                human::count(p.fds_after),
                human::duration(p.after_taken_at - p.before_taken_at)
            )?;
            if p.after_start_time.is_some() {
                writeln!(
                    out,
                    "note: the two snapshots are of different processes that had the same pid"
                )?;
            }
            let mut t = Columns::new(&[
                ("", Align::Left),
                ("FD", Align::Right),
                ("KIND", Align::Left),
                ("WHAT", Align::Left),
            ])
            .header_left();
            let row = |sign: &str, e: &FdEntry| {
                vec![
                    Cell::new(sign),
                    Cell::new(e.fd.to_string()),
                    Cell::new(e.kind().as_str()),
                    Cell::new(escape_control(&describe::what(e))),
                ]
            };
            for e in &p.closed {
                t.push(row("-", e));
            }
            for r in &p.replaced {
                t.push(row("-", &r.old));
                t.push(row("+", &r.new));
            }
            for e in &p.opened {
                t.push(row("+", e));
            }
            if t.is_empty() {
                writeln!(out, "no change")?;
            } else {
                t.write(out)?;
            }
            if !p.groups.is_empty() {
                writeln!(out)?;
                let mut g = Columns::new(&[
                    ("KIND", Align::Left),
                    ("GROUP", Align::Left),
                    ("BEFORE", Align::Right),
                    ("AFTER", Align::Right),
                    ("CHANGE", Align::Right),
                ])
                .header_left();
                for c in &p.groups {
                    g.push(vec![
                        Cell::new(c.kind.as_str()),
                        Cell::new(escape_control(&c.key)),
                        Cell::new(c.before.to_string()),
                        Cell::new(c.after.to_string()),
                        Cell::new(format!("{:+}", c.change)),
                    ]);
                }
                g.write(out)?;
            }
        }
        for p in &d.only_before {
            writeln!(
                out,
                "only in the first: pid {} ({})",
                p.pid,
                escape_control(&p.comm)
            )?;
        }
        for p in &d.only_after {
            writeln!(
                out,
                "only in the second: pid {} ({})",
                p.pid,
                escape_control(&p.comm)
            )?;
        }
        Ok(())
    }
}
