//! Report: renders snapshots, diffs and watch reports. One exporter per file behind
//! [`Exporter`]; live per-tick lines are in [`live`].

pub mod human;
pub mod json;
pub mod live;
/// The recorder lives in the core, beside the reader of its format.
pub use fdiff_core::source::recorder as record;
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

/// One output format for every kind of result.
pub trait Exporter {
    fn snapshots(&self, snaps: &[Snapshot], out: &mut dyn Write) -> io::Result<()>;
    fn report(&self, report: &Report, out: &mut dyn Write) -> io::Result<()>;
    fn diff(&self, diff: &DiffReport, out: &mut dyn Write) -> io::Result<()>;
}

pub fn exporter(format: Format, color: bool) -> Box<dyn Exporter> {
    exporter_with(format, color, false)
}

/// [`exporter`] with `verbose`: a table then lists every process, however many.
pub fn exporter_with(format: Format, color: bool, verbose: bool) -> Box<dyn Exporter> {
    match format {
        Format::Table => Box::new(table::Table {
            color,
            verbose,
            width: stdout_columns(),
        }),
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
