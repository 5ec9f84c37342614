//! Exit codes, documented in `--help`, the man page and the README from the one table
//! [`DOCUMENTED`]: every path out of fdiff is one [`Exit`], chosen here in the binary and never
//! in `fdiff-core`.

/// The exit codes as documented: (code, meaning), the meaning in Markdown (code spans only).
/// `--help`, `fdiff(1)` and the README's table are rendered from this; a test keeps the README
/// in step.
pub const DOCUMENTED: &[(&str, &str)] = &[
    (
        "0",
        "success: a watch that ended normally (duration, count, Ctrl-C, SIGTERM, the process \
         exiting), whatever it found",
    ),
    (
        "1",
        "error: no such process, permission denied, a zombie, unreadable or malformed input",
    ),
    (
        "2",
        "usage error (unknown flag, bad pid, duration or regex)",
    ),
    ("3", "a group leaks, with `--fail-on-leak`"),
    (
        "126",
        "`fdiff run`: the command (or its `#!` interpreter) exists but cannot be executed",
    ),
    (
        "127",
        "`fdiff run`: the command, its `#!` interpreter or its dynamic loader does not exist",
    ),
    (
        "CMD's",
        "`fdiff run` exits with the command's own status (128 + N when signal N killed it); \
         with `--fail-on-leak`, a leak turns a successful command's 0 into 3",
    ),
];

/// A meaning as plain text, for the terminal and the man page.
pub fn plain(meaning: &str) -> String {
    meaning.replace('`', "")
}

/// The table as `--help` prints it: the code in a column, the meaning beside it, wrapped
/// under itself (clap would wrap a long line back to the margin).
pub fn help_table() -> String {
    const WIDTH: usize = 88;
    const INDENT: usize = 9;
    let mut s = String::new();
    for (code, meaning) in DOCUMENTED {
        let mut line = format!("  {code:<6}");
        for word in plain(meaning).split_whitespace() {
            if line.len() + 1 + word.len() > WIDTH && line.len() > INDENT {
                s.push_str(&line);
                s.push('\n');
                line = " ".repeat(INDENT - 1);
            }
            line.push(' ');
            line.push_str(word);
        }
        s.push_str(&line);
        s.push('\n');
    }
    s
}

/// The table as the README has it (Markdown).
pub fn markdown_table() -> String {
    let mut s = String::from("| code | meaning |\n|---|---|\n");
    for (code, meaning) in DOCUMENTED {
        s.push_str(&format!("| {code} | {meaning} |\n"));
    }
    s
}

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
