//! Exit codes, documented in `--help` and the README; every path out of fdiff uses one of these.

/// Success; a watch that ended normally, whatever it found.
pub const OK: i32 = 0;
/// An error: no such process, permission denied, unreadable or malformed input.
pub const ERROR: i32 = 1;
/// Bad command line (unknown flag, bad duration or regex).
pub const USAGE: i32 = 2;
/// `--fail-on-leak` and a group leaks.
pub const LEAK: i32 = 3;
/// `fdiff run`: the command could not be started (like a shell).
pub const CANNOT_START: i32 = 127;
