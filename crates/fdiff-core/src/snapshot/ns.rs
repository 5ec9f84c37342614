//! Namespace-file decoder: `net:[4026531840]` is the net namespace with that inode.

use super::model::NsDetail;

/// The namespace types nsfs names its files by (`/proc/PID/ns/*`).
const TYPES: [&str; 10] = [
    "net",
    "mnt",
    "pid",
    "user",
    "uts",
    "ipc",
    "cgroup",
    "time",
    "pid_for_children",
    "time_for_children",
];

/// `TYPE:[INODE]` for a known namespace type, as (type, inode).
pub(crate) fn parse(target: &[u8]) -> Option<(&'static str, u64)> {
    let text = std::str::from_utf8(target).ok()?;
    let (ty, rest) = text.split_once(":[")?;
    let digits = rest.strip_suffix(']')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ty = TYPES.iter().find(|t| **t == ty)?;
    Some((ty, digits.parse().ok()?))
}

pub(crate) fn decode(ns_type: &str, inode: u64) -> NsDetail {
    // pid_for_children is the pid namespace a child would get; as a held namespace it is
    // a pid namespace like any other (lsfd says "pid" too).
    let ns_type = ns_type.strip_suffix("_for_children").unwrap_or(ns_type);
    NsDetail {
        ns_type: ns_type.to_owned(),
        inode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_inodes() {
        assert_eq!(parse(b"net:[4026531840]"), Some(("net", 4026531840)));
        assert_eq!(parse(b"user:[1]"), Some(("user", 1)));
        assert_eq!(parse(b"foo:[1]"), None);
        assert_eq!(parse(b"net:[]"), None);
        assert_eq!(parse(b"net:[1"), None);
        assert_eq!(decode("time_for_children", 5).ns_type, "time");
    }
}
