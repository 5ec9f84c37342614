//! Table renderers, one file per result type ([`snapshot`], [`report`], [`diff`]), on one
//! table engine: aligned columns for people, control characters escaped so that a hostile
//! file name cannot break the layout.
//!
//! The engine is a plain column writer rather than a general table layout: a snapshot may
//! have 20,000 rows, where a general layout (comfy-table's) cost more than reading the fds.

pub mod diff;
pub mod report;
pub mod snapshot;

pub use diff::DiffTable;
pub use report::{FOLD_OVER, ReportTable, shorten_middle};
pub use snapshot::SnapshotTable;

use crate::report::human;
use std::io::{self, Write};
use unicode_width::UnicodeWidthStr;

/// Bold red, as a leak is shown.
pub(crate) const LEAK_STYLE: &str = "\x1b[38;5;9m\x1b[1m";
const RESET: &str = "\x1b[0m";

/// One cell: its text, and the escape that colors it (the padding around it too).
pub(crate) struct Cell {
    text: String,
    style: Option<&'static str>,
}

impl Cell {
    pub(crate) fn new(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            style: None,
        }
    }

    pub(crate) fn styled(text: impl Into<String>, style: &'static str) -> Cell {
        Cell {
            text: text.into(),
            style: Some(style),
        }
    }
}

impl<T: Into<String>> From<T> for Cell {
    fn from(t: T) -> Cell {
        Cell::new(t)
    }
}

/// Left- or right-aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// Columns as wide as their widest cell, a space either side of each cell, no borders; each
/// line's trailing blanks trimmed.
pub(crate) struct Columns {
    header: Vec<String>,
    align: Vec<Align>,
    /// Header cells left-aligned over every column (the report's and the diff's layout);
    /// otherwise each is aligned as its column (the snapshot's).
    header_left: bool,
    rows: Vec<Vec<Cell>>,
}

impl Columns {
    /// A table with this header, each column aligned as given.
    pub(crate) fn new(header: &[(&str, Align)]) -> Columns {
        Columns {
            header: header.iter().map(|(h, _)| (*h).to_owned()).collect(),
            align: header.iter().map(|&(_, a)| a).collect(),
            header_left: false,
            rows: Vec::new(),
        }
    }

    /// Header cells left-aligned, whatever their column's alignment.
    pub(crate) fn header_left(mut self) -> Columns {
        self.header_left = true;
        self
    }

    pub(crate) fn push(&mut self, row: Vec<Cell>) {
        self.rows.push(row);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub(crate) fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let width = |s: &str| UnicodeWidthStr::width(s);
        let mut w: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for r in &self.rows {
            for (wi, cell) in w.iter_mut().zip(r) {
                *wi = (*wi).max(width(&cell.text));
            }
        }
        let mut line = String::new();
        let mut put = |cells: &mut dyn Iterator<Item = (&str, Option<&str>)>,
                       header: bool,
                       out: &mut dyn Write|
         -> io::Result<()> {
            line.clear();
            for (i, (text, style)) in cells.enumerate() {
                let pad = w.get(i).copied().unwrap_or(0).saturating_sub(width(text));
                let right =
                    self.align.get(i) == Some(&Align::Right) && !(header && self.header_left);
                if let Some(s) = style {
                    line.push_str(s);
                }
                line.push(' ');
                if right {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(text);
                } else {
                    line.push_str(text);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
                line.push(' ');
                if style.is_some() {
                    line.push_str(RESET);
                }
            }
            writeln!(out, "{}", line.trim_end())
        };
        put(
            &mut self.header.iter().map(|h| (h.as_str(), None)),
            true,
            out,
        )?;
        for r in &self.rows {
            put(
                &mut r.iter().map(|c| (c.text.as_str(), c.style)),
                false,
                out,
            )?;
        }
        Ok(())
    }
}

/// "limit 1,024 (hard 4,096)": a process's fd limit.
pub(crate) fn limit_text(soft: Option<u64>, hard: Option<u64>) -> String {
    let f = |v: Option<u64>| v.map_or("unlimited".to_owned(), human::count);
    format!("limit {} (hard {})", f(soft), f(hard))
}

/// `s` in the escape `code` when coloring.
pub(crate) fn paint(color: bool, s: &str, code: &str) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue10_one_engine_aligns_pads_and_colors_whole_cells() {
        let mut t = Columns::new(&[
            ("A", Align::Right),
            ("VERDICT", Align::Left),
            ("TREND", Align::Left),
        ])
        .header_left();
        t.push(vec![
            "12".into(),
            Cell::styled("LEAK", LEAK_STYLE),
            "x".into(),
        ]);
        t.push(vec!["1".into(), "".into(), "".into()]);
        let mut out = Vec::new();
        t.write(&mut out).expect("write");
        // The layout comfy-table gave these tables (measured before it was dropped).
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            " A   VERDICT  TREND\n 12 \u{1b}[38;5;9m\u{1b}[1m LEAK    \u{1b}[0m x\n  1\n"
        );
    }
}
