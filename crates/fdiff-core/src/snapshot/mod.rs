//! Snapshots: the model of a process's open fds, their classification, and one decoder per fd kind.

pub(crate) mod anon;
pub(crate) mod bpf;
pub(crate) mod cdev;
pub(crate) mod classify;
pub(crate) mod decode;
pub mod describe;
pub(crate) mod fdinfo_text;
pub(crate) mod fdio;
pub(crate) mod file;
pub(crate) mod inotify;
pub(crate) mod io_uring;
pub mod model;
pub(crate) mod mqueue;
pub(crate) mod ns;
pub(crate) mod pidfd;
pub mod record;
pub mod socket;

pub use model::*;

/// A file under the crate's `testdata/DIR/`, for the decoders' parser tests (one reader, so a
/// missing fixture fails the same way everywhere: with its path).
#[cfg(test)]
pub(crate) fn testdata(dir: &str, name: &str) -> String {
    let path = format!("{}/testdata/{dir}/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
