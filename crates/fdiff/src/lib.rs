//! fdiff, the command: parses the command line, assembles the pipeline of `fdiff-core` for each
//! command, renders the results (table, JSON, live lines) and decides the exit code.
//!
//! The core's modules are re-exported under their old paths (`crate::track`, …) so the
//! commands read as before the split into crates.

pub mod app;
pub mod cli;
pub mod complete;
pub mod config;
pub mod error;
pub mod exit_codes;
pub mod inputcheck;
pub mod manpage;
pub mod report;
pub mod serve;
pub mod tui;

pub use fdiff_core::{diff, snapshot, source, track, util};
