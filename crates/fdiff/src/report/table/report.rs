//! The watch report as a table: the groups that changed, the leaks, the processes and the
//! verdict.

use super::{Align, Cell, Columns, LEAK_STYLE, limit_text};
use crate::report::{ReportRenderer, human};
use crate::track::{Counts, GroupReport, ProcessReport, Report, RollupReport};
use crate::util::escape_control;
use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};
use unicode_width::UnicodeWidthStr;

pub struct ReportTable {
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
        // Exited processes folded out of the list were watched too.
        human::count(r.processes.len() as u64 + r.folded_processes),
        names.join(", ")
    )
}

fn rollup_key(ru: &RollupReport) -> (&str, crate::snapshot::Kind, &str) {
    (ru.comm.as_str(), ru.kind, ru.key.as_str())
}

impl ReportTable {
    fn paint(&self, s: &str, code: &str) -> String {
        super::paint(self.color, s, code)
    }

    /// What was watched, for how long, how often: a few pids, then only counts.
    fn header(&self, r: &Report) -> String {
        let n = r.processes.len() + r.folded_processes as usize;
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
        let columns: Vec<(&str, Align)> = header
            .iter()
            .map(|&h| {
                let align = if matches!(h, "KIND" | "GROUP" | "VERDICT" | "TREND") {
                    Align::Left
                } else {
                    Align::Right
                };
                (h, align)
            })
            .collect();
        let mut t = Columns::new(&columns).header_left();
        for (row, text) in rows.iter().zip(texts) {
            let leaking = row.counts().leaking;
            let cells: Vec<Cell> = text
                .into_iter()
                .enumerate()
                .map(|(i, s)| match header[i] {
                    "GROUP" => Cell::new(shorten_middle(&s, cap)),
                    "VERDICT" if leaking && self.color => Cell::styled(s, LEAK_STYLE),
                    _ => Cell::new(s),
                })
                .collect();
            t.push(cells);
        }
        t.write(out)
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
        if r.folded_processes > 0 {
            writeln!(
                out,
                "and {} more exited processes, counted in the roll-ups of their command",
                human::count(r.folded_processes)
            )?;
        }
        Ok(())
    }
}

impl ReportRenderer for ReportTable {
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
}
