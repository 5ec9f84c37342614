//! JSON renderers of every result type: the documented schemas, one document per run on
//! stdout.

use super::{DiffRenderer, ReportRenderer, SnapshotRenderer};
use crate::snapshot::Snapshot;
use crate::track::{DiffReport, Report};
use std::io::{self, Write};

pub struct Json;

fn write_json<T: serde::Serialize + ?Sized>(v: &T, out: &mut dyn Write) -> io::Result<()> {
    fdiff_core::json::to_writer(&mut *out, v, fdiff_core::json::Style::Pretty)
        .map_err(io::Error::from)?;
    out.write_all(b"\n")
}

impl SnapshotRenderer for Json {
    /// One process gives one object; several give an array of objects.
    fn snapshots(&self, snaps: &[Snapshot], out: &mut dyn Write) -> io::Result<()> {
        match snaps {
            [one] => write_json(one, out),
            many => write_json(many, out),
        }
    }
}

impl ReportRenderer for Json {
    fn report(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        write_json(report, out)
    }
}

impl DiffRenderer for Json {
    fn diff(&self, diff: &DiffReport, out: &mut dyn Write) -> io::Result<()> {
        write_json(diff, out)
    }
}
