//! fdiff: find file-descriptor leaks by snapshotting, diffing and tracking every open fd of a
//! process over time.
//!
//! Data flows one way: a [`source`] (live /proc or a recording) yields [`snapshot`]s;
//! [`diff`] compares two; [`track`] keeps groups, series and the leak verdict; [`report`]
//! renders. The binary only turns [`app::run`]'s result into an exit code.

pub mod app;
pub mod cli;
pub mod config;
pub mod diff;
pub mod error;
pub mod exit_codes;
pub mod fixture;
pub mod inputcheck;
pub mod report;
pub mod snapshot;
pub mod source;
pub mod track;
pub mod util;
