//! The checks behind fdiff's fuzz targets and their corpus replay in `cargo test`: feed
//! arbitrary bytes to a reader of outside input, run what a command would run on the result,
//! and panic when an invariant breaks (an error of more than one line, or that could drive a
//! terminal). A panic from inside fdiff is itself the finding.
//!
//! Rendering is the binary's: each check takes what renders its result (the `fdiff` crate
//! passes its table and JSON renderers), so the core needs no table code to be fuzzed whole.

use crate::error::Error;
use crate::snapshot::Snapshot;
use crate::source::recording::{RecordingSource, read_snapshots};
use crate::track::{DiffReport, Report, TrackOptions, Tracker, compare::compare};

/// Ticks a check reads at most: enough to reach every state, bounded for a mutated file.
const MAX_TICKS: usize = 10_000;

/// An error or warning must be one line that cannot drive a terminal.
fn assert_one_line(what: &str, text: &str) {
    assert!(
        !text
            .chars()
            .any(|c| c.is_control()
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')),
        "{what} holds raw control or bidi characters: {text:?}"
    );
}

fn check_error(what: &str, e: &Error) {
    let message = e.to_string();
    assert!(!message.is_empty(), "{what}: an empty error message");
    assert_one_line(what, &message);
}

/// Read `data` as a recording, track its ticks and hand the report to `render` as `fdiff
/// report` would. Returns whether it was accepted.
pub fn recording(data: &[u8], render: &dyn Fn(&Report)) -> bool {
    let mut src = match RecordingSource::new("fuzz.jsonl", std::io::Cursor::new(data)) {
        Ok(s) => s,
        Err(e) => {
            check_error("recording header error", &e);
            return false;
        }
    };
    let mut tracker = Tracker::new(TrackOptions::default(), src.interval_secs());
    let mut ok = true;
    for _ in 0..MAX_TICKS {
        match src.next_tick() {
            Ok(Some(t)) => crate::track::feed(&mut tracker, &t),
            Ok(None) => break,
            Err(e) => {
                check_error("recording error", &e);
                ok = false;
                break;
            }
        }
    }
    for w in src.take_warnings() {
        assert_one_line("recording warning", &w);
    }
    if ok && tracker.ticks() > 0 {
        render(&tracker.report());
    }
    ok
}

/// Read `data` as a snapshot file, then diff it against itself and hand both to `render` as
/// `fdiff diff` and `fdiff snapshot` would. Returns whether it was accepted.
pub fn snapshot_file(data: &[u8], render: &dyn Fn(&[Snapshot], &DiffReport)) -> bool {
    match read_snapshots("fuzz.json", std::io::Cursor::new(data)) {
        Ok((snaps, warnings)) => {
            for w in &warnings {
                assert_one_line("snapshot warning", w);
            }
            let d = compare(&snaps, &snaps, &TrackOptions::default());
            render(&snaps, &d);
            true
        }
        Err(e) => {
            check_error("snapshot file error", &e);
            false
        }
    }
}

/// Decode `data` as the fdinfo text of an anon inode of every subtype fdiff knows.
pub fn fdinfo(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for subtype in [
        "eventfd",
        "eventpoll",
        "timerfd",
        "signalfd",
        "inotify",
        "fanotify",
        "pidfd",
        "io_uring",
        "bpf-map",
        "other",
    ] {
        let _ = crate::snapshot::anon::decode(subtype, Some(&text));
    }
}
