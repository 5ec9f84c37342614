//! Per-process facts from /proc/PID: name, state, parent, start time, command line and fd limit.

use crate::snapshot::FdLimit;

/// The fields of /proc/PID/stat fdiff needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// The command name.
    pub comm: String,
    /// The state letter (R, S, D, Z, …).
    pub state: char,
    /// The parent's pid.
    pub ppid: i32,
    /// Field 22: start time in clock ticks after boot.
    pub start_time: u64,
    /// Field 9: the kernel's per-task flags (PF_*).
    pub flags: u64,
}

/// PF_EXITING: the task is in do_exit. Its fds are closed (exit_files) before its pidfd
/// becomes readable (exit_notify), so in between /proc/PID/fd reads empty or partial.
pub const PF_EXITING: u64 = 0x4;

impl Stat {
    /// The process is exiting or has exited: what its fd table shows now is the kernel
    /// tearing it down, not the program closing fds.
    pub fn exiting(&self) -> bool {
        self.flags & PF_EXITING != 0 || matches!(self.state, 'Z' | 'X')
    }
}

/// Parse /proc/PID/stat. comm may hold spaces and parentheses, so fields are counted after
/// the *last* ')'.
pub fn parse_stat(text: &[u8]) -> Option<Stat> {
    let open = text.iter().position(|&b| b == b'(')?;
    let close = text.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let comm = String::from_utf8_lossy(&text[open + 1..close]).into_owned();
    let rest = std::str::from_utf8(text.get(close + 1..)?).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    // Fields after comm start at field 3 (state).
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    // flags is field 9: four more after ppid (field 4); start_time is field 22, twelve more
    // after flags.
    let flags = fields.nth(4)?.parse().ok()?;
    let start_time = fields.nth(12)?.parse().ok()?;
    Some(Stat {
        comm,
        state,
        ppid,
        start_time,
        flags,
    })
}

/// Parse /proc/PID/cmdline: NUL-separated arguments.
pub fn parse_cmdline(raw: &[u8]) -> Vec<String> {
    let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Parse the "Max open files" line of /proc/PID/limits.
pub fn parse_fd_limit(text: &[u8]) -> FdLimit {
    let text = String::from_utf8_lossy(text);
    let Some(line) = text.lines().find(|l| l.starts_with("Max open files")) else {
        return FdLimit::default();
    };
    let mut it = line["Max open files".len()..].split_whitespace();
    let parse = |v: Option<&str>| v.and_then(|v| v.parse::<u64>().ok());
    FdLimit {
        soft: parse(it.next()),
        hard: parse(it.next()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_parentheses_and_spaces_in_comm() {
        let text = include_bytes!("../../testdata/proc/stat_weird_comm.txt");
        let s = parse_stat(text).expect("parses");
        assert_eq!(s.comm, "my (weird) prog");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.start_time, 123456);
    }

    #[test]
    fn zombie_stat() {
        let s = parse_stat(b"42 (sh) Z 1 42 42 0 -1 4194564 0 0 0 0 0 0 0 0 20 0 1 0 999 0 0")
            .expect("parses");
        assert_eq!((s.state, s.start_time), ('Z', 999));
        assert!(s.exiting());
        assert_eq!(parse_stat(b"42 (sh"), None);
        assert_eq!(parse_stat(b""), None);
    }

    /// A task in do_exit (PF_EXITING in field 9) is exiting although its state is still R:
    /// its fd table is being torn down, which must read as the exit, not as closes.
    #[test]
    fn exiting_task_is_told_by_its_flags() {
        let run = parse_stat(b"42 (w) R 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 999 0 0")
            .expect("parses");
        assert_eq!((run.flags, run.start_time), (0x40_0100, 999));
        assert!(!run.exiting());
        let dying = parse_stat(b"42 (w) R 1 42 42 0 -1 4194564 0 0 0 0 0 0 0 0 20 0 1 0 999 0 0")
            .expect("parses");
        assert!(dying.exiting());
    }

    #[test]
    fn limits_unlimited_is_none() {
        let text = include_bytes!("../../testdata/proc/limits.txt");
        assert_eq!(
            parse_fd_limit(text),
            FdLimit {
                soft: Some(1024),
                hard: Some(20000)
            }
        );
        let unl = b"Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_fd_limit(unl), FdLimit::default());
    }

    #[test]
    fn cmdline_split() {
        assert_eq!(
            parse_cmdline(b"python3\0-m\0a b\0"),
            vec!["python3", "-m", "a b"]
        );
        assert!(parse_cmdline(b"").is_empty());
    }
}
