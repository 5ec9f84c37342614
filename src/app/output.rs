//! Where output goes: stdout with a closed pipe treated as success, warnings on stderr, and
//! whether to color.

use crate::error::Error;
use std::io::{self, IsTerminal, Write};

/// Map a write error: a closed pipe (`fdiff … | head`) ends quietly with success.
pub fn write_err(e: io::Error, what: &str) -> Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Error::broken_pipe()
    } else {
        Error::io(&format!("write to {what}"), &e)
    }
}

pub fn warn(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "fdiff: warning: {msg}");
}

/// Color only on a terminal, and never with NO_COLOR set (to anything non-empty).
pub fn color_for(is_tty: bool) -> bool {
    is_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub fn stdout_color() -> bool {
    color_for(io::stdout().is_terminal())
}

pub fn stderr_color() -> bool {
    color_for(io::stderr().is_terminal())
}

/// Lines a tick may print before it is summarised per group: a screenful on a terminal.
pub fn screen_lines(on_stdout: bool) -> usize {
    let rows = if on_stdout {
        rustix::termios::tcgetwinsize(io::stdout()).ok()
    } else {
        rustix::termios::tcgetwinsize(io::stderr()).ok()
    };
    match rows {
        Some(ws) if ws.ws_row > 8 => usize::from(ws.ws_row) - 6,
        _ => 40,
    }
}
