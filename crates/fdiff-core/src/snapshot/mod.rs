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
