//! Snapshots as a table: per process a line of totals, then one row per fd.

use super::{Align, Cell, Columns, limit_text};
use crate::report::{SnapshotRenderer, human};
use crate::snapshot::{Snapshot, describe};
use crate::util::escape_control;
use std::io::{self, Write};

pub struct SnapshotTable;

impl SnapshotRenderer for SnapshotTable {
    fn snapshots(&self, snaps: &[Snapshot], out: &mut dyn Write) -> io::Result<()> {
        for (i, s) in snaps.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            writeln!(
                out,
                "pid {} ({}): {} fds, {}",
                s.pid,
                escape_control(&s.comm),
                human::count(s.fds.len() as u64),
                limit_text(s.fd_limit.soft, s.fd_limit.hard)
            )?;
            let mut t = Columns::new(&[
                ("FD", Align::Right),
                ("KIND", Align::Left),
                ("WHAT", Align::Left),
                ("DETAILS", Align::Left),
            ]);
            for e in &s.fds {
                t.push(vec![
                    Cell::new(e.fd.to_string()),
                    Cell::new(e.kind().as_str()),
                    Cell::new(escape_control(&describe::what(e))),
                    Cell::new(escape_control(&describe::details(e))),
                ]);
            }
            t.write(out)?;
            for err in &s.errors {
                writeln!(out, "fd {}: could not be read: {}", err.fd, err.error)?;
            }
        }
        Ok(())
    }
}
