//! The fuzz checks of `fdiff_core::inputcheck`, rendering every result the way the commands
//! do (table and JSON), so a hostile input is followed all the way to the output.

use crate::report::{Format, diff_renderer, report_renderer, snapshot_renderer};

/// [`fdiff_core::inputcheck::recording`], rendering the report in every format.
pub fn recording(data: &[u8]) -> bool {
    fdiff_core::inputcheck::recording(data, &|report| {
        for f in [Format::Table, Format::Json] {
            let mut out = Vec::new();
            let _ = report_renderer(f, false, false).report(report, &mut out);
        }
    })
}

/// [`fdiff_core::inputcheck::snapshot_file`], rendering the diff and the snapshots in every
/// format.
pub fn snapshot_file(data: &[u8]) -> bool {
    fdiff_core::inputcheck::snapshot_file(data, &|snaps, d| {
        for f in [Format::Table, Format::Json] {
            let mut out = Vec::new();
            let _ = diff_renderer(f).diff(d, &mut out);
            let _ = snapshot_renderer(f).snapshots(snaps, &mut out);
        }
    })
}

pub use fdiff_core::inputcheck::fdinfo;
