//! Table exporter: aligned columns for people, one fd or group per line, control characters
//! escaped so that a hostile file name cannot break the layout.

use super::Exporter;
use super::human;
use crate::snapshot::{FdEntry, Snapshot, describe};
use crate::track::{DiffReport, Report};
use crate::util::escape_control;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table as CTable, presets};
use std::io::{self, Write};
use unicode_width::UnicodeWidthStr;

pub struct Table {
    pub color: bool,
}

fn new_table(header: &[&str]) -> CTable {
    let mut t = CTable::new();
    t.load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(Cell::new));
    t
}

fn right(s: impl ToString) -> Cell {
    Cell::new(s.to_string()).set_alignment(CellAlignment::Right)
}

fn write_table(t: &CTable, out: &mut dyn Write) -> io::Result<()> {
    for line in t.lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Aligned columns, the first right-aligned, in the layout of the other tables. A snapshot
/// may have 20,000 rows, where a general table layout costs more than reading the fds did.
fn write_columns(header: [&str; 4], rows: &[[String; 4]], out: &mut dyn Write) -> io::Result<()> {
    let width = |s: &str| UnicodeWidthStr::width(s);
    let mut w = header.map(width);
    for r in rows {
        for (wi, cell) in w.iter_mut().zip(r) {
            *wi = (*wi).max(width(cell));
        }
    }
    let mut line = String::new();
    let mut put = |cells: [&str; 4], out: &mut dyn Write| -> io::Result<()> {
        line.clear();
        for (i, (cell, wi)) in cells.iter().zip(w).enumerate() {
            let pad = " ".repeat(wi.saturating_sub(width(cell)));
            line.push(' ');
            if i == 0 {
                line.push_str(&pad);
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&pad);
            }
            line.push(' ');
        }
        writeln!(out, "{}", line.trim_end())
    };
    put(header, out)?;
    for r in rows {
        put([&r[0], &r[1], &r[2], &r[3]], out)?;
    }
    Ok(())
}

fn limit_text(soft: Option<u64>, hard: Option<u64>) -> String {
    let f = |v: Option<u64>| v.map_or("unlimited".to_owned(), human::count);
    format!("limit {} (hard {})", f(soft), f(hard))
}

impl Table {
    fn paint(&self, s: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
}

impl Exporter for Table {
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
            let rows: Vec<[String; 4]> = s
                .fds
                .iter()
                .map(|e| {
                    [
                        e.fd.to_string(),
                        e.kind().as_str().to_owned(),
                        escape_control(&describe::what(e)).into_owned(),
                        escape_control(&describe::details(e)).into_owned(),
                    ]
                })
                .collect();
            write_columns(["FD", "KIND", "WHAT", "DETAILS"], &rows, out)?;
            for err in &s.errors {
                writeln!(out, "fd {}: could not be read: {}", err.fd, err.error)?;
            }
        }
        Ok(())
    }

    fn report(&self, r: &Report, out: &mut dyn Write) -> io::Result<()> {
        let multi = r.processes.len() > 1;
        let pids: Vec<String> = r
            .processes
            .iter()
            .map(|p| format!("{} ({})", p.pid, escape_control(&p.comm)))
            .collect();
        writeln!(
            out,
            "fdiff: watched {} {} for {} ({} ticks, every {})",
            if multi { "pids" } else { "pid" },
            pids.join(", "),
            human::duration(r.duration_secs),
            r.ticks,
            human::duration(r.interval_secs)
        )?;
        let mut header = vec![];
        if multi {
            header.push("PID");
        }
        header.extend([
            "KIND",
            "GROUP",
            "START",
            "END",
            "PEAK",
            "OPENED",
            "CLOSED",
            "SURVIVORS",
            "RATE",
            "VERDICT",
            "TREND",
        ]);
        let mut t = new_table(&header);
        if self.color {
            t.enforce_styling();
        } else {
            t.force_no_tty();
        }
        // Groups that never changed are noise in a leak report; JSON keeps them all.
        for g in r
            .groups
            .iter()
            .filter(|g| g.counts.leaking || g.counts.opened > 0 || g.counts.closed > 0)
        {
            let mut row = vec![];
            if multi {
                row.push(right(g.pid));
            }
            let verdict = if !g.counts.leaking {
                Cell::new("ok")
            } else if self.color {
                Cell::new("LEAK")
                    .fg(comfy_table::Color::Red)
                    .add_attribute(comfy_table::Attribute::Bold)
            } else {
                Cell::new("LEAK")
            };
            row.extend([
                Cell::new(g.kind.as_str()),
                Cell::new(escape_control(&g.key)),
                right(g.counts.start),
                right(g.counts.end),
                right(g.counts.peak),
                right(g.counts.opened),
                right(g.counts.closed),
                right(g.counts.survivors),
                right(human::rate(g.counts.rate_per_sec)),
                verdict,
                Cell::new(human::sparkline(&g.series)),
            ]);
            t.add_row(row);
        }
        if t.row_count() == 0 {
            writeln!(out, "no fd was opened or closed during the watch")?;
        } else {
            write_table(&t, out)?;
        }
        let leaking: Vec<_> = r.groups.iter().filter(|g| g.counts.leaking).collect();
        if !leaking.is_empty() {
            writeln!(out)?;
            for g in &leaking {
                let ex: Vec<String> = g
                    .examples
                    .iter()
                    .map(|e| escape_control(e).into_owned())
                    .collect();
                writeln!(
                    out,
                    "{} pid {}: {} {} grew {} → {} ({}), e.g. {}",
                    self.paint("leak", "1;31"),
                    g.pid,
                    g.kind,
                    escape_control(&g.key),
                    g.counts.start,
                    g.counts.end,
                    human::rate(g.counts.rate_per_sec),
                    ex.join(", ")
                )?;
            }
        }
        for ru in r
            .rollup
            .iter()
            .filter(|ru| ru.counts.leaking || ru.counts.opened > 0)
        {
            writeln!(
                out,
                "{}: {} {} {} over {} processes, {}",
                escape_control(&ru.comm),
                ru.kind,
                escape_control(&ru.key),
                human::rate(ru.counts.rate_per_sec),
                ru.pids.len(),
                if ru.counts.leaking {
                    self.paint("leaking", "1;31")
                } else {
                    "not leaking".to_owned()
                }
            )?;
        }
        writeln!(out)?;
        for p in &r.processes {
            write!(
                out,
                "pid {} ({}): {} → {} fds (peak {}), {}",
                p.pid,
                escape_control(&p.comm),
                human::count(p.fds_start),
                human::count(p.fds_end),
                human::count(p.fds_peak),
                limit_text(p.fd_limit.soft, p.fd_limit.hard)
            )?;
            if let Some(at) = p.exited_at {
                write!(
                    out,
                    "; exited {} after the watch began",
                    human::duration(at - r.started_at.unwrap_or(at))
                )?;
            }
            writeln!(out)?;
            if let (Some(eta), Some(soft)) = (p.eta_to_limit_secs, p.fd_limit.soft) {
                writeln!(
                    out,
                    "  leaking {} in all: hits its limit of {} fds in about {}",
                    human::rate(p.leak_rate_per_sec),
                    human::count(soft),
                    human::duration(eta)
                )?;
            }
        }
        writeln!(
            out,
            "{}",
            if r.leaking {
                self.paint("verdict: LEAK", "1;31")
            } else {
                "verdict: no leak found".to_owned()
            }
        )
    }

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
            let mut t = new_table(&["", "FD", "KIND", "WHAT"]);
            let row = |sign: &str, e: &FdEntry| {
                vec![
                    Cell::new(sign),
                    right(e.fd),
                    Cell::new(e.kind().as_str()),
                    Cell::new(escape_control(&describe::what(e))),
                ]
            };
            for e in &p.closed {
                t.add_row(row("-", e));
            }
            for r in &p.replaced {
                t.add_row(row("-", &r.old));
                t.add_row(row("+", &r.new));
            }
            for e in &p.opened {
                t.add_row(row("+", e));
            }
            if t.row_count() == 0 {
                writeln!(out, "no change")?;
            } else {
                write_table(&t, out)?;
            }
            if !p.groups.is_empty() {
                writeln!(out)?;
                let mut g = new_table(&["KIND", "GROUP", "BEFORE", "AFTER", "CHANGE"]);
                for c in &p.groups {
                    g.add_row(vec![
                        Cell::new(c.kind.as_str()),
                        Cell::new(escape_control(&c.key)),
                        right(c.before),
                        right(c.after),
                        right(format!("{:+}", c.change)),
                    ]);
                }
                write_table(&g, out)?;
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
