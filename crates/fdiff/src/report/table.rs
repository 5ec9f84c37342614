//! Table exporter: aligned columns for people, one fd or group per line, control characters
//! escaped so that a hostile file name cannot break the layout.

use super::Exporter;
use super::human;
use crate::snapshot::{FdEntry, Snapshot, describe};
use crate::track::{Counts, DiffReport, GroupReport, ProcessReport, Report, RollupReport};
use crate::util::escape_control;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table as CTable, presets};
use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};
use unicode_width::UnicodeWidthStr;

pub struct Table {
    pub color: bool,
    /// Every process's own rows and lines, however many processes there are.
    pub verbose: bool,
    /// Columns of the terminal the table goes to; None when it is not a terminal.
    pub width: Option<usize>,
}

/// More processes than this are folded into their roll-ups unless verbose.
pub const FOLD_OVER: usize = 20;
/// Pids the header names before it only counts.
const HEADER_PIDS: usize = 3;
/// The GROUP column's cap when the output is not a terminal.
const GROUP_WIDTH: usize = 60;
/// The GROUP column never shrinks below this for a narrow terminal.
const GROUP_MIN_WIDTH: usize = 20;

/// Shorten `s` to `max` columns by cutting its middle out, marked with `…`: both ends of a key
/// (its directory and its file name, its protocol and its state) are what tell keys apart.
pub fn shorten_middle(s: &str, max: usize) -> String {
    let width = UnicodeWidthStr::width(s);
    if width <= max || max < 3 {
        return s.to_owned();
    }
    let budget = max - 1;
    let (head_w, tail_w) = (budget.div_ceil(2), budget / 2);
    let cw = |c: char| unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
    let mut head = String::new();
    let mut used = 0;
    for c in s.chars() {
        if used + cw(c) > head_w {
            break;
        }
        used += cw(c);
        head.push(c);
    }
    let mut tail: Vec<char> = Vec::new();
    let mut used = 0;
    for c in s.chars().rev() {
        if used + cw(c) > tail_w {
            break;
        }
        used += cw(c);
        tail.push(c);
    }
    head.push('…');
    head.extend(tail.iter().rev());
    head
}

/// One row of the group table: a process's group, or a roll-up standing for its members.
enum Row<'a> {
    Group(&'a GroupReport),
    Rollup(&'a RollupReport),
}

impl Row<'_> {
    fn counts(&self) -> &Counts {
        match self {
            Row::Group(g) => &g.counts,
            Row::Rollup(r) => &r.counts,
        }
    }
}

/// "156 processes (postgres", "14 processes (13 nginx, 1 sh": the commands by how many
/// processes ran each, the three commonest named; the caller closes the parenthesis.
fn comm_summary(r: &Report) -> String {
    let mut by: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &r.processes {
        *by.entry(p.comm.as_str()).or_default() += 1;
    }
    let mut v: Vec<(&str, usize)> = by.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let names: Vec<String> = if v.len() == 1 {
        vec![escape_control(v[0].0).into_owned()]
    } else {
        v.iter()
            .take(3)
            .map(|(c, n)| format!("{} {}", human::count(*n as u64), escape_control(c)))
            .collect()
    };
    let more = if v.len() > 3 { ", …" } else { "" };
    format!(
        "{} processes ({}{more}",
        human::count(r.processes.len() as u64),
        names.join(", ")
    )
}

fn rollup_key(ru: &RollupReport) -> (&str, crate::snapshot::Kind, &str) {
    (ru.comm.as_str(), ru.kind, ru.key.as_str())
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

    /// What was watched, for how long, how often: a few pids, then only counts.
    fn header(&self, r: &Report) -> String {
        let n = r.processes.len();
        let who = if n <= HEADER_PIDS {
            let pids: Vec<String> = r
                .processes
                .iter()
                .map(|p| format!("{} ({})", p.pid, escape_control(&p.comm)))
                .collect();
            format!("{} {}", if n > 1 { "pids" } else { "pid" }, pids.join(", "))
        } else {
            let pids: Vec<String> = r
                .processes
                .iter()
                .take(HEADER_PIDS)
                .map(|p| p.pid.to_string())
                .collect();
            format!(
                "{}; pids {} and {} more)",
                comm_summary(r),
                pids.join(", "),
                human::count((n - HEADER_PIDS) as u64)
            )
        };
        let every = match r.achieved_interval_secs {
            // Markedly slower than asked: snapshots took longer than the interval.
            Some(a) if a > r.interval_secs * 1.5 && a - r.interval_secs > 0.005 => format!(
                "every {} requested, {} achieved",
                human::interval(r.interval_secs),
                human::interval(a)
            ),
            _ => format!("every {}", human::interval(r.interval_secs)),
        };
        format!(
            "{who} for {} ({} ticks, {every})",
            human::duration(r.duration_secs),
            r.ticks
        )
    }

    fn group_table(&self, r: &Report, fold: bool, out: &mut dyn Write) -> io::Result<()> {
        let multi = r.processes.len() > 1;
        let folded: HashSet<(&str, crate::snapshot::Kind, &str)> = if fold {
            r.rollup.iter().map(rollup_key).collect()
        } else {
            HashSet::new()
        };
        // Groups that never changed are noise in a leak report; JSON keeps them all.
        let changed = |c: &Counts| c.leaking || c.opened > 0 || c.closed > 0;
        let mut rows: Vec<Row> = r
            .groups
            .iter()
            .filter(|g| changed(&g.counts))
            .filter(|g| !folded.contains(&(g.comm.as_str(), g.kind, g.key.as_str())))
            .map(Row::Group)
            .collect();
        if fold {
            rows.extend(
                r.rollup
                    .iter()
                    .filter(|ru| changed(&ru.counts))
                    .map(Row::Rollup),
            );
            rows.sort_by(|a, b| a.counts().severity(b.counts()));
        }
        if rows.is_empty() {
            return writeln!(out, "no fd was opened or closed during the watch");
        }
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
        let group_col = usize::from(multi) + 1;
        let texts: Vec<Vec<String>> = rows
            .iter()
            .map(|row| {
                let (pid, kind, key, series) = match row {
                    Row::Group(g) => (g.pid.to_string(), g.kind, g.key.as_str(), &g.series),
                    Row::Rollup(ru) => (
                        format!("×{}", human::count(ru.pids.len() as u64)),
                        ru.kind,
                        ru.key.as_str(),
                        &ru.series,
                    ),
                };
                let c = row.counts();
                let mut t = vec![];
                if multi {
                    t.push(pid);
                }
                t.extend([
                    kind.as_str().to_owned(),
                    escape_control(key).into_owned(),
                    c.start.to_string(),
                    c.end.to_string(),
                    c.peak.to_string(),
                    c.opened.to_string(),
                    c.closed.to_string(),
                    c.survivors.to_string(),
                    human::rate(c.rate_per_sec),
                    if c.leaking { "LEAK" } else { "ok" }.to_owned(),
                    human::sparkline(series),
                ]);
                t
            })
            .collect();
        let cap = match self.width {
            None => GROUP_WIDTH,
            Some(cols) => {
                // Each column takes its widest cell plus a space either side.
                let others: usize = (0..header.len())
                    .filter(|&i| i != group_col)
                    .map(|i| {
                        texts
                            .iter()
                            .map(|t| UnicodeWidthStr::width(t[i].as_str()))
                            .chain([UnicodeWidthStr::width(header[i])])
                            .max()
                            .unwrap_or(0)
                            + 2
                    })
                    .sum();
                cols.saturating_sub(others + 2).max(GROUP_MIN_WIDTH)
            }
        };
        let mut t = new_table(&header);
        if self.color {
            t.enforce_styling();
        } else {
            t.force_no_tty();
        }
        for (row, text) in rows.iter().zip(texts) {
            let leaking = row.counts().leaking;
            let cells: Vec<Cell> = text
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let name = header[i];
                    if name == "GROUP" {
                        Cell::new(shorten_middle(&s, cap))
                    } else if name == "VERDICT" && leaking && self.color {
                        Cell::new(s)
                            .fg(comfy_table::Color::Red)
                            .add_attribute(comfy_table::Attribute::Bold)
                    } else if matches!(name, "KIND" | "VERDICT" | "TREND") {
                        Cell::new(s)
                    } else {
                        right(s)
                    }
                })
                .collect();
            t.add_row(cells);
        }
        write_table(&t, out)
    }

    fn leak_lines(&self, r: &Report, fold: bool, out: &mut dyn Write) -> io::Result<()> {
        let rolled: HashSet<(&str, crate::snapshot::Kind, &str)> =
            r.rollup.iter().map(rollup_key).collect();
        let leaking: Vec<_> = r
            .groups
            .iter()
            .filter(|g| g.counts.leaking)
            // Folded: the roll-up's line speaks for its members.
            .filter(|g| !fold || !rolled.contains(&(g.comm.as_str(), g.kind, g.key.as_str())))
            .collect();
        if !leaking.is_empty() || r.rollup.iter().any(|ru| ru.counts.leaking) {
            writeln!(out)?;
        }
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
        for ru in r
            .rollup
            .iter()
            .filter(|ru| ru.counts.leaking || ru.counts.opened > 0)
        {
            let what = format!(
                "{}: {} {}",
                escape_control(&ru.comm),
                ru.kind,
                escape_control(&ru.key)
            );
            let n = human::count(ru.pids.len() as u64);
            if !ru.counts.leaking {
                writeln!(
                    out,
                    "{what} {} over {n} processes, not leaking",
                    human::rate(ru.counts.rate_per_sec)
                )?;
                continue;
            }
            let mut line = format!("{} {what} over {n} processes: ", self.paint("leak", "1;31"));
            if ru.masked_by_respawn {
                line.push_str(&format!(
                    "each worker grows {} until it is replaced; respawning masks the leak",
                    human::rate(ru.member_rate_per_sec.unwrap_or(0.0))
                ));
                if let Some(life) = ru.member_lifetime_secs {
                    line.push_str(&format!(
                        " (leaking workers lived ~{}",
                        human::duration(life)
                    ));
                    line.push_str(&format!(
                        ", {} of {n} leak on their own)",
                        human::count(ru.leaking_members)
                    ));
                }
            } else {
                line.push_str(&format!(
                    "grew {} → {} ({}) in all",
                    ru.counts.start,
                    ru.counts.end,
                    human::rate(ru.counts.rate_per_sec)
                ));
                if ru.leaking_members == 0 {
                    line.push_str(", though no process leaks alone");
                } else {
                    line.push_str(&format!(
                        ", {} of them leaking on their own",
                        human::count(ru.leaking_members)
                    ));
                }
            }
            match (ru.eta_to_limit_secs, ru.eta_pid) {
                (Some(eta), Some(pid)) if ru.masked_by_respawn => line.push_str(&format!(
                    "; not replaced, pid {pid} would reach its fd limit in about {}",
                    human::duration(eta)
                )),
                (Some(eta), Some(pid)) => line.push_str(&format!(
                    "; pid {pid}, nearest to its limit, gets there in about {}",
                    human::duration(eta)
                )),
                _ => {}
            }
            writeln!(out, "{line}")?;
        }
        Ok(())
    }

    fn process_lines(&self, r: &Report, fold: bool, out: &mut dyn Write) -> io::Result<()> {
        let notable = |p: &ProcessReport| {
            p.leak_rate_per_sec > 0.0 || p.eta_to_limit_secs.is_some() || p.exited_at_fd_limit
        };
        let mut rest = (0usize, 0u64, 0u64, 0usize);
        let mut shown = 0;
        for p in &r.processes {
            if fold && (shown >= FOLD_OVER || !notable(p)) {
                rest.0 += 1;
                rest.1 += p.fds_start;
                rest.2 += p.fds_end;
                rest.3 += usize::from(p.exited);
                continue;
            }
            shown += 1;
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
                let after = human::duration(at - r.started_at.unwrap_or(at));
                match p.fd_limit.soft.filter(|_| p.exited_at_fd_limit) {
                    Some(soft) => write!(
                        out,
                        "; exited at its fd limit ({}): likely EMFILE ({after} after the watch \
                         began)",
                        human::count(soft)
                    )?,
                    None => write!(out, "; exited {after} after the watch began")?,
                }
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
        if rest.0 > 0 {
            writeln!(
                out,
                "{} {} processes: {} → {} fds in all, {} exited (--verbose lists each)",
                if shown > 0 { "and" } else { "all" },
                human::count(rest.0 as u64),
                human::count(rest.1),
                human::count(rest.2),
                human::count(rest.3 as u64)
            )?;
        }
        Ok(())
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
        let fold = !self.verbose && r.processes.len() > FOLD_OVER;
        writeln!(out, "fdiff: watched {}", self.header(r))?;
        self.group_table(r, fold, out)?;
        self.leak_lines(r, fold, out)?;
        writeln!(out)?;
        self.process_lines(r, fold, out)?;
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
