//! Character-device extras from fdinfo: a tun/tap fd's interface, a pty master's index.

use super::fdinfo_text::{field, num};
use super::model::DeviceDetail;

/// Devices whose fdinfo says more than the generic lines: /dev/net/tun (`iff:`) and the pty
/// multiplexer (`tty-index:`). Only these paths pay for the fdinfo read.
pub(crate) fn wants_fdinfo(path: &str) -> bool {
    matches!(path, "/dev/net/tun" | "/dev/ptmx" | "/dev/pts/ptmx")
}

/// Fills the fdinfo extras of `d`.
pub(crate) fn decode(d: &mut DeviceDetail, text: &str) {
    d.tun_iface = field(text, "iff:").map(str::to_owned);
    d.tty_index = num(text, "tty-index:");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        crate::snapshot::testdata("fdinfo", name)
    }

    #[test]
    fn tun_and_ptmx() {
        let mut t = DeviceDetail::default();
        decode(&mut t, &fixture("tun.txt"));
        assert_eq!(t.tun_iface.as_deref(), Some("mkfds0"));
        assert_eq!(t.tty_index, None);
        let mut p = DeviceDetail::default();
        decode(&mut p, &fixture("ptmx.txt"));
        assert_eq!(p.tty_index, Some(0));
        assert!(wants_fdinfo("/dev/ptmx") && !wants_fdinfo("/dev/null"));
    }
}
