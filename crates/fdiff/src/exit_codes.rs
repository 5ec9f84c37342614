//! Exit codes, documented in `--help` and the README: every path out of fdiff is one [`Exit`],
//! chosen here in the binary and never in `fdiff-core`.

/// How fdiff exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success; a watch that ended normally, whatever it found.
    Ok,
    /// An error: no such process, permission denied, unreadable or malformed input.
    Error,
    /// Bad command line (unknown flag, bad duration or regex).
    Usage,
    /// `--fail-on-leak` and a group leaks.
    Leak,
    /// `fdiff run`: the command is there but cannot be executed (a shell's 126).
    CannotExecute,
    /// `fdiff run`: the command, or what it needs to run, does not exist (a shell's 127).
    CannotStart,
    /// `fdiff run`: the command's own exit code, or 128 + the signal that killed it.
    Command(i32),
    /// A signal ended fdiff: 128 + the signal, as a shell reports it.
    Signal(i32),
}

impl Exit {
    /// The process exit code.
    pub const fn code(self) -> i32 {
        match self {
            Exit::Ok => 0,
            Exit::Error => 1,
            Exit::Usage => 2,
            Exit::Leak => 3,
            Exit::CannotExecute => 126,
            Exit::CannotStart => 127,
            Exit::Command(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }

    /// Whether this is success.
    pub const fn is_ok(self) -> bool {
        self.code() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::Exit;

    #[test]
    fn issue10_exit_codes_are_the_documented_ones() {
        let codes = [
            (Exit::Ok, 0),
            (Exit::Error, 1),
            (Exit::Usage, 2),
            (Exit::Leak, 3),
            (Exit::CannotExecute, 126),
            (Exit::CannotStart, 127),
            (Exit::Command(5), 5),
            (Exit::Signal(15), 143),
        ];
        for (e, c) in codes {
            assert_eq!(e.code(), c, "{e:?}");
        }
    }
}
