//! Issue 9, fuzzing: every file of the fuzz corpus (`crates/fdiff-core/fuzz/corpus/TARGET/`) replayed through the
//! same checks the fuzz targets run, so a crash the fuzzer once found stays fixed.

use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fdiff-core/fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{}: a seeded corpus", dir.display());
    files
}

/// Run `check` on every corpus file of `target`; the names of those that panicked.
fn replay(
    target: &str,
    check: impl Fn(&[u8]) -> bool + std::panic::RefUnwindSafe,
) -> (Vec<String>, usize, usize) {
    let (mut failed, mut accepted, mut refused) = (Vec::new(), 0, 0);
    for f in corpus(target) {
        let data = std::fs::read(&f).expect("read corpus file");
        match std::panic::catch_unwind(|| check(&data)) {
            Ok(true) => accepted += 1,
            Ok(false) => refused += 1,
            Err(_) => failed.push(f.display().to_string()),
        }
    }
    (failed, accepted, refused)
}

#[test]
fn issue9_fuzz_corpus_recordings_never_panic() {
    let (failed, accepted, refused) = replay("recording", fdiff::inputcheck::recording);
    assert!(failed.is_empty(), "panicked on: {failed:?}");
    // The seeds cover both sides: files read whole and files refused with one line.
    assert!(
        accepted >= 3 && refused >= 3,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn issue9_fuzz_corpus_snapshot_files_never_panic() {
    let (failed, accepted, refused) = replay("snapshot_file", fdiff::inputcheck::snapshot_file);
    assert!(failed.is_empty(), "panicked on: {failed:?}");
    assert!(
        accepted >= 2 && refused >= 3,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn issue9_fuzz_corpus_fdinfo_never_panics() {
    let (failed, _, _) = replay("fdinfo", |d| {
        fdiff::inputcheck::fdinfo(d);
        true
    });
    assert!(failed.is_empty(), "panicked on: {failed:?}");
}
