//! JSON renderers of every result type: the documented schemas, one document per run on
//! stdout.

use super::{DiffRenderer, ReportRenderer, SnapshotRenderer};
use crate::snapshot::Snapshot;
use crate::track::{DiffReport, Report};
use std::io::{self, Write};

pub struct Json;

/// Pretty-printed (the documented look) through a buffer of its own: serde_json writes token
/// by token, and straight into `dyn Write` each token is a virtual call; into a concrete
/// `BufWriter` the copies inline and only each 64 KiB goes through `out` (a 10,000-fd
/// snapshot is ~2 MB).
fn write_json<T: serde::Serialize + ?Sized>(v: &T, out: &mut dyn Write) -> io::Result<()> {
    let mut w = io::BufWriter::with_capacity(64 * 1024, out);
    fdiff_core::json::to_writer(&mut w, v, fdiff_core::json::Style::Pretty)
        .map_err(io::Error::from)?;
    w.write_all(b"\n")?;
    w.flush()
}

impl SnapshotRenderer for Json {
    /// One process gives one object; several give an array of objects.
    fn snapshots(&self, snaps: &[Snapshot], out: &mut dyn Write) -> io::Result<()> {
        let mut w = io::BufWriter::with_capacity(64 * 1024, out);
        match snaps {
            [one] => write_snapshot(one, b"", &mut w)?,
            [] => w.write_all(b"[]")?,
            many => {
                // serde_json's look for an array of objects: each element on its own lines,
                // indented one level.
                w.write_all(b"[")?;
                for (i, s) in many.iter().enumerate() {
                    w.write_all(if i == 0 { b"\n  " } else { b",\n  " })?;
                    write_snapshot(s, b"  ", &mut w)?;
                }
                w.write_all(b"\n]")?;
            }
        }
        w.write_all(b"\n")?;
        w.flush()
    }
}

/// Past this many fds a snapshot's entries are rendered on two threads.
const PARALLEL_FDS: usize = 2048;

/// One snapshot, exactly as `fdiff_core::json` writes it pretty, with every line after
/// the first indented by `indent`. The entries are most of the text and of the time (a
/// 10,000-fd snapshot is ~2 MB), so they are rendered apart, one by one, on two threads when
/// there are many, and spliced into the rest: pretty output has a raw newline only between
/// tokens (one inside a string is escaped), so a standalone entry becomes the nested one by
/// indenting each of its lines.
fn write_snapshot(s: &Snapshot, indent: &[u8], w: &mut impl Write) -> io::Result<()> {
    if s.fds.is_empty() {
        return write_indented(&pretty(s)?, indent, w);
    }
    // The snapshot without its entries, as a frame for them. The literal names every field,
    // so a field added to Snapshot fails to compile here rather than going missing.
    let frame = Snapshot {
        schema: s.schema.clone(),
        pid: s.pid,
        comm: s.comm.clone(),
        cmdline: s.cmdline.clone(),
        start_time: s.start_time,
        taken_at: s.taken_at,
        fd_limit: s.fd_limit,
        fds: Vec::new(),
        errors: s.errors.clone(),
    };
    let frame = pretty(&frame)?;
    // A top-level key sits after a newline and two spaces; a string cannot hold that.
    const KEY: &[u8] = b"\n  \"fds\": []";
    let Some(at) = frame.windows(KEY.len()).position(|x| x == KEY) else {
        return write_indented(&pretty(s)?, indent, w);
    };
    let split = at + KEY.len() - 1; // just before the `]`
    write_indented(&frame[..split], indent, w)?;
    // Entries sit two levels deep, below `indent`.
    let mut deeper = indent.to_vec();
    deeper.extend_from_slice(b"    ");
    let render = |fds: &[std::sync::Arc<crate::snapshot::FdEntry>]| -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(fds.len() * 256);
        for e in fds {
            out.extend_from_slice(b",\n");
            out.extend_from_slice(&deeper);
            fdiff_core::json::to_writer_pretty_at(&mut out, e.as_ref(), &deeper)
                .map_err(io::Error::from)?;
        }
        Ok(out)
    };
    let parts: Vec<io::Result<Vec<u8>>> = if s.fds.len() >= PARALLEL_FDS {
        let (a, b) = s.fds.split_at(s.fds.len() / 2);
        std::thread::scope(|scope| {
            let h = scope.spawn(|| render(b));
            let first = render(a);
            // A thread that died is redone here.
            vec![first, h.join().unwrap_or_else(|_| render(b))]
        })
    } else {
        vec![render(&s.fds)]
    };
    for (i, part) in parts.into_iter().enumerate() {
        let part = part?;
        // The first entry opens the array with a newline, not a comma.
        w.write_all(if i == 0 { &part[1..] } else { &part[..] })?;
    }
    w.write_all(b"\n")?;
    w.write_all(indent)?;
    w.write_all(b"  ")?;
    write_indented(&frame[split..], indent, w)
}

fn pretty<T: serde::Serialize + ?Sized>(v: &T) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(4096);
    fdiff_core::json::to_writer(&mut out, v, fdiff_core::json::Style::Pretty)
        .map_err(io::Error::from)?;
    Ok(out)
}

/// `text` with `indent` after each newline.
fn write_indented(text: &[u8], indent: &[u8], w: &mut impl Write) -> io::Result<()> {
    if indent.is_empty() {
        return w.write_all(text);
    }
    let mut out = Vec::with_capacity(text.len() + text.len() / 8);
    indent_into(text, indent, &mut out);
    w.write_all(&out)
}

fn indent_into(text: &[u8], indent: &[u8], out: &mut Vec<u8>) {
    let mut lines = text.split(|&b| b == b'\n');
    if let Some(first) = lines.next() {
        out.extend_from_slice(first);
    }
    for line in lines {
        out.push(b'\n');
        out.extend_from_slice(indent);
        out.extend_from_slice(line);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{
        AnonDetail, Detail, FdEntry, FdError, FdLimit, PipeDetail, SocketDetail,
    };
    use fdiff_core::json::Style;
    use std::sync::Arc;

    fn snap(n: usize, comm: &str) -> Snapshot {
        let fds = (0..n)
            .map(|i| {
                let detail = match i % 4 {
                    0 => Detail::Pipe(PipeDetail::default()),
                    // Nested arrays, empty and not.
                    3 => Detail::AnonInode(AnonDetail {
                        subtype: "eventpoll".into(),
                        tfd: Some(if i % 8 == 3 { vec![] } else { vec![1, 2, 3] }),
                        sigmask: Some(vec!["INT".into()]),
                        ..Default::default()
                    }),
                    1 => Detail::Socket(SocketDetail {
                        proto: "unix".into(),
                        inode: i as u64,
                        // Raw newlines and a key-like text inside strings are escaped.
                        path: Some("/tmp/a\n  \"fds\": []\nb\u{202e}".into()),
                        ..Default::default()
                    }),
                    _ => Detail::Pipe(PipeDetail {
                        inode: Some(7),
                        ..Default::default()
                    }),
                };
                Arc::new(FdEntry {
                    fd: i as i32,
                    target: format!("pipe:[{i}]\n"),
                    target_hex: None,
                    detail,
                })
            })
            .collect();
        Snapshot {
            schema: "fdiff/snapshot/v1".into(),
            pid: 42,
            comm: comm.into(),
            cmdline: vec![],
            start_time: 1,
            taken_at: 2.5,
            fd_limit: FdLimit::default(),
            fds,
            errors: vec![FdError {
                fd: 3,
                error: "readlink: x".into(),
            }],
        }
    }

    fn ours(snaps: &[Snapshot]) -> String {
        let mut out = Vec::new();
        Json.snapshots(snaps, &mut out).expect("render");
        String::from_utf8(out).expect("utf-8")
    }

    /// The spliced, two-thread rendering is byte for byte the one-piece pretty output, escapes
    /// included.
    #[test]
    fn issue16_snapshot_json_is_serde_jsons_pretty_output() {
        let tricky = "x\n  \"fds\": [] \u{202e}";
        for n in [0, 1, 5, PARALLEL_FDS + 3] {
            let one = snap(n, tricky);
            let want = fdiff_core::json::to_string(&one, Style::Pretty).expect("json") + "\n";
            assert_eq!(ours(std::slice::from_ref(&one)), want, "{n} fds");
            let many = vec![snap(n, "a"), snap(1, tricky), snap(0, "c")];
            let want = fdiff_core::json::to_string(&many, Style::Pretty).expect("json") + "\n";
            assert_eq!(ours(&many), want, "{n} fds, three snapshots");
        }
        assert_eq!(ours(&[]), "[]\n");
    }
}
