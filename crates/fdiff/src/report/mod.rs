//! Report: renders snapshots, diffs and watch reports. One renderer trait per result type
//! ([`SnapshotRenderer`], [`ReportRenderer`], [`DiffRenderer`]), each format's renderer of it
//! in its own file ([`table`], [`json`]); live per-tick lines are in [`live`].

pub mod html;
pub mod human;
pub mod json;
pub mod live;
/// The recorder lives in the core, beside the reader of its format.
pub use fdiff_core::source::recorder as record;
pub mod svg;
pub mod table;

use crate::snapshot::Snapshot;
use crate::track::{DiffReport, Report};
use std::io::{self, Write};

/// Output format (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
}

/// Renders the snapshots of `fdiff snapshot`.
pub trait SnapshotRenderer {
    fn snapshots(&self, snaps: &[Snapshot], out: &mut dyn Write) -> io::Result<()>;
}

/// Renders the report of a watch (`fdiff`, `run`, `demo`, `report`).
pub trait ReportRenderer {
    fn report(&self, report: &Report, out: &mut dyn Write) -> io::Result<()>;
}

/// Renders the comparison of `fdiff diff`.
pub trait DiffRenderer {
    fn diff(&self, diff: &DiffReport, out: &mut dyn Write) -> io::Result<()>;
}

pub fn snapshot_renderer(format: Format) -> Box<dyn SnapshotRenderer> {
    match format {
        Format::Table => Box::new(table::SnapshotTable),
        Format::Json => Box::new(json::Json),
    }
}

/// `verbose`: a table then lists every process, however many.
pub fn report_renderer(format: Format, color: bool, verbose: bool) -> Box<dyn ReportRenderer> {
    match format {
        Format::Table => Box::new(table::ReportTable {
            color,
            verbose,
            width: stdout_columns(),
        }),
        Format::Json => Box::new(json::Json),
    }
}

pub fn diff_renderer(format: Format) -> Box<dyn DiffRenderer> {
    match format {
        Format::Table => Box::new(table::DiffTable),
        Format::Json => Box::new(json::Json),
    }
}

/// The width of the terminal on stdout, if it is one.
fn stdout_columns() -> Option<usize> {
    use std::io::IsTerminal;
    let out = io::stdout();
    if !out.is_terminal() {
        return None;
    }
    rustix::termios::tcgetwinsize(out)
        .ok()
        .map(|ws| usize::from(ws.ws_col))
        .filter(|&c| c > 0)
}
