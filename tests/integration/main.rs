//! Integration tests of the fdiff binary, driven against `fdiff __fixture` processes.

mod common;
mod errors;
mod offline;
mod procs;
mod snapshot;
mod watch;
