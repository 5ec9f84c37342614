//! Snapshots: the model of a process's open fds, their classification, and one decoder per fd kind.

pub(crate) mod anon;
pub(crate) mod classify;
pub(crate) mod decode;
pub mod describe;
pub(crate) mod fdio;
pub(crate) mod file;
pub mod model;
pub mod record;
pub mod socket;

pub use model::*;
