//! Snapshots: the model of a process's open fds, their classification, and one decoder per fd kind.

pub mod anon;
pub mod classify;
pub mod describe;
pub mod file;
pub mod model;
pub mod record;
pub mod socket;

pub use model::*;
