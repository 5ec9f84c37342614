//! pidfd decoder: the pid it refers to, its pid in every nested pid namespace, and its name.

use super::fdinfo_text::{field, num};
use super::model::AnonDetail;

/// Fills the pidfd fields of `d` from its fdinfo. `comm` reads the command name of a running
/// pid (a seam for tests); it is asked only while the target still runs (pid > 0).
pub(crate) fn decode(d: &mut AnonDetail, text: &str, comm: impl Fn(i32) -> Option<String>) {
    d.target_pid = num(text, "Pid:");
    // "NSpid:\t4242\t17\t1": outermost namespace first; absent before Linux 5.10.
    d.nspid = field(text, "NSpid:").and_then(|v| {
        v.split_ascii_whitespace()
            .map(|p| p.parse().ok())
            .collect::<Option<Vec<i32>>>()
            .filter(|v| !v.is_empty())
    });
    d.target_comm = d.target_pid.filter(|&p| p > 0).and_then(comm);
}

/// The command name of `pid` from /proc (newline removed).
pub(crate) fn proc_comm(pid: i32) -> Option<String> {
    let mut s = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    if s.ends_with('\n') {
        s.pop();
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        crate::snapshot::testdata("fdinfo", name)
    }

    #[test]
    fn nspid_lists_every_level() {
        let mut d = AnonDetail::default();
        decode(&mut d, &fixture("pidfd-nested.txt"), |p| {
            Some(format!("c{p}"))
        });
        assert_eq!(d.target_pid, Some(4242));
        assert_eq!(d.nspid, Some(vec![4242, 17, 1]));
        assert_eq!(d.target_comm.as_deref(), Some("c4242"));
    }

    #[test]
    fn reaped_target_has_no_comm() {
        let mut d = AnonDetail::default();
        decode(&mut d, "Pid:\t-1\nNSpid:\t-1\n", |_| {
            panic!("asked for a reaped pid")
        });
        assert_eq!(d.target_pid, Some(-1));
        assert_eq!(d.nspid, Some(vec![-1]));
        assert_eq!(d.target_comm, None);
        let mut g = AnonDetail::default();
        decode(&mut g, "NSpid:\tx y\n", |_| None);
        assert_eq!(g.nspid, None);
    }
}
