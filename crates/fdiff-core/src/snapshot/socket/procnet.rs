//! Parsers for the text tables under /proc/PID/net, the fallback when sock_diag cannot be used.

use super::{Family, fmt_endpoint, netlink_family_name, tcp_state_name, unix_type_name};
use super::{HashMap, HashSet};
use crate::snapshot::model::SocketDetail;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The file under /proc/PID/net that lists sockets of `family`: named like the protocol.
pub(super) fn file_name(family: Family) -> &'static str {
    match family {
        Family::Ping => "icmp",
        Family::Ping6 => "icmp6",
        f => f.proto(),
    }
}

/// Scans the tables of `families` (in that order) for the inodes in `wanted`, moving each one
/// found from `wanted` into `found`. Stops reading as soon as nothing is wanted any more, so
/// a process with few sockets does not pay for the whole machine's tables beyond what it must.
pub(super) fn lookup(
    pid: i32,
    families: &[Family],
    wanted: &mut HashSet<u64>,
    found: &mut HashMap<u64, SocketDetail>,
) {
    let mut line = Vec::with_capacity(256);
    for &family in families {
        if wanted.is_empty() {
            return;
        }
        let path = format!("/proc/{pid}/net/{}", file_name(family));
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        let mut reader = BufReader::with_capacity(64 * 1024, file);
        if family == Family::Unix {
            unix_table(&mut reader, &mut line, wanted, found);
            continue;
        }
        let mut first = true;
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            // Every table starts with a header line.
            if std::mem::take(&mut first) {
                continue;
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches('\n');
            let Some(inode) = line_inode(family, text) else {
                continue;
            };
            if !wanted.contains(&inode) {
                continue;
            }
            if let Some(detail) = parse_line(family, text) {
                wanted.remove(&inode);
                found.insert(inode, detail);
                if wanted.is_empty() {
                    return;
                }
            }
        }
    }
}

/// The most bytes the kernel prints for a unix socket's name: 108 (UNIX_PATH_MAX) for a path,
/// '@' and 107 for an abstract name.
const UNIX_NAME_PRINT_MAX: usize = 108;

/// Reads /proc/PID/net/unix, where the kernel prints each socket's name raw: a name holding
/// `\n` ends its row early, and what follows in the name reads as rows of its own, which a
/// process may shape to claim another socket's inode. Such forged text can only lie within
/// the 108 bytes after the start of a name, so every row that begins there is *doubtful*; the
/// others are *clean*. A clean row is believed; a doubtful one only when no other row names its
/// inode (its socket has no row of its own to contradict it — the real row of any socket of
/// the namespace always exists, so a forgery of one is caught) and never against a clean row;
/// two rows that disagree about an inode both go. A name with `\n` is thus cut at it, at most.
fn unix_table(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    wanted: &mut HashSet<u64>,
    found: &mut HashMap<u64, SocketDetail>,
) {
    // Doubtful rows by inode: `None` once two of them disagree.
    let mut doubtful: HashMap<u64, Option<SocketDetail>> = HashMap::default();
    // Bytes a name that began on an earlier row may still be printing.
    let mut budget = 0usize;
    let mut first = true;
    loop {
        line.clear();
        match reader.read_until(b'\n', line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        // Every table starts with a header line.
        if std::mem::take(&mut first) {
            continue;
        }
        let inside_name = line.len() < budget;
        budget = if inside_name {
            budget - line.len() - 1
        } else {
            0
        };
        let text = String::from_utf8_lossy(line);
        let Some(detail) = parse_unix(&text) else {
            continue;
        };
        // A name starts on this row: the rows that follow within its reach are doubtful.
        if let Some(name_len) = unix_name_len(line) {
            budget = budget.max(UNIX_NAME_PRINT_MAX.saturating_sub(name_len));
        }
        let inode = detail.inode;
        if !wanted.contains(&inode) {
            // Settled by a clean row already, or not ours; a later doubtful row changes nothing.
            continue;
        }
        if inside_name {
            doubtful
                .entry(inode)
                .and_modify(|d| {
                    if d.as_ref() != Some(&detail) {
                        *d = None;
                    }
                })
                .or_insert_with(|| Some(detail));
        } else {
            // A clean row stands, whatever doubtful rows said before it.
            doubtful.remove(&inode);
            wanted.remove(&inode);
            found.insert(inode, detail);
            if wanted.is_empty() {
                return;
            }
        }
    }
    for (inode, d) in doubtful {
        if let Some(d) = d {
            wanted.remove(&inode);
            found.insert(inode, d);
        }
    }
}

/// The bytes of the name printed on a raw unix table row (after the inode and one space), or
/// `None` when the row has no name.
fn unix_name_len(line: &[u8]) -> Option<usize> {
    let mut rest = line;
    for _ in 0..7 {
        let start = rest.iter().position(|&c| c != b' ')?;
        rest = &rest[start..];
        let end = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
        rest = &rest[end..];
    }
    rest.strip_prefix(b" ").map(<[u8]>::len)
}

/// Index of the inode column among the whitespace-separated fields of a table line.
fn inode_column(family: Family) -> usize {
    match family {
        Family::Unix => 6,
        Family::Tcp
        | Family::Tcp6
        | Family::Udp
        | Family::Udp6
        | Family::Raw
        | Family::Raw6
        | Family::UdpLite
        | Family::UdpLite6
        | Family::Ping
        | Family::Ping6 => 9,
        Family::Netlink => 9,
        Family::Packet => 8,
    }
}

/// The inode of a table line, read without decoding the rest (the hot path of a scan).
pub(super) fn line_inode(family: Family, line: &str) -> Option<u64> {
    line.split_ascii_whitespace()
        .nth(inode_column(family))?
        .parse()
        .ok()
}

/// Decodes one data line of the table of `family`; `None` for a malformed line.
pub(super) fn parse_line(family: Family, line: &str) -> Option<SocketDetail> {
    match family {
        Family::Unix => parse_unix(line),
        Family::Tcp
        | Family::Tcp6
        | Family::Udp
        | Family::Udp6
        | Family::Raw
        | Family::Raw6
        | Family::UdpLite
        | Family::UdpLite6
        | Family::Ping
        | Family::Ping6 => parse_inet(family, line),
        Family::Netlink => parse_netlink(line),
        Family::Packet => parse_packet(line),
    }
}

/// `sl local rem st tx:rx tr:when retrnsmt uid timeout inode …`
fn parse_inet(family: Family, line: &str) -> Option<SocketDetail> {
    let f: Vec<&str> = line.split_ascii_whitespace().take(10).collect();
    if f.len() < 10 || !f[0].ends_with(':') {
        return None;
    }
    let inode: u64 = f[9].parse().ok()?;
    let (local_ip, local_port) = parse_hex_endpoint(f[1])?;
    let (remote_ip, remote_port) = parse_hex_endpoint(f[2])?;
    let st = u8::from_str_radix(f[3], 16).ok()?;
    let raw = matches!(family, Family::Raw | Family::Raw6);
    let (state, socket_type) = match family {
        Family::Tcp | Family::Tcp6 => (tcp_state_name(st), "stream"),
        // A raw socket's sk_state is TCP_ESTABLISHED once connected, TCP_CLOSE otherwise,
        // as for UDP.
        _ if raw => (udp_state_name(st), "raw"),
        _ => (udp_state_name(st), "dgram"),
    };
    let ping = matches!(family, Family::Ping | Family::Ping6);
    Some(SocketDetail {
        proto: family.proto().to_string(),
        inode,
        local: Some(fmt_endpoint(local_ip, local_port)),
        // The kernel prints a connected raw or ping socket's destination with port 0.
        remote: remote_endpoint(remote_ip, remote_port),
        state: Some(state),
        socket_type: Some(socket_type.to_string()),
        // /proc/net/icmp prints a ping socket's echo id as its local port, and
        // /proc/net/raw a raw socket's protocol.
        ping_id: ping.then_some(local_port),
        protocol: raw.then_some(u32::from(local_port)),
        ..Default::default()
    })
}

pub(super) fn udp_state_name(st: u8) -> String {
    if st == 1 { "ESTABLISHED" } else { "UNCONN" }.to_string()
}

/// The remote end, or `None` for an unconnected socket (all-zero address and port).
pub(super) fn remote_endpoint(ip: IpAddr, port: u16) -> Option<String> {
    if ip.is_unspecified() && port == 0 {
        None
    } else {
        Some(fmt_endpoint(ip, port))
    }
}

/// `ADDR:PORT` with ADDR as 8 hex digits (IPv4) or 32 (IPv6). The kernel prints each 32-bit
/// word of the address as a host-order integer, so the native-endian bytes of each word are
/// the address bytes in network order.
pub(super) fn parse_hex_endpoint(s: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    if !addr.is_ascii() {
        return None;
    }
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some((ip, port))
}

/// `Num RefCount Protocol Flags Type St Inode [Path]`; the path is the rest of the line
/// after the single space that follows the inode, spaces included.
fn parse_unix(line: &str) -> Option<SocketDetail> {
    let mut rest = line;
    let mut fields = [""; 7];
    for field in fields.iter_mut() {
        rest = rest.trim_start_matches(' ');
        let end = rest.find(' ').unwrap_or(rest.len());
        *field = &rest[..end];
        rest = &rest[end..];
    }
    if !fields[0].ends_with(':') {
        return None;
    }
    let flags = u32::from_str_radix(fields[3], 16).ok()?;
    let kind = u16::from_str_radix(fields[4], 16).ok()?;
    let st = u8::from_str_radix(fields[5], 16).ok()?;
    let inode: u64 = fields[6].parse().ok()?;
    let path = rest.strip_prefix(' ').filter(|p| !p.is_empty());
    // __SO_ACCEPTCON marks a listener; St is the socket's SS_* state.
    let state = if flags & 0x0001_0000 != 0 {
        "LISTEN"
    } else {
        match st {
            1 => "UNCONNECTED",
            2 => "CONNECTING",
            3 => "ESTABLISHED",
            4 => "DISCONNECTING",
            _ => "UNKNOWN",
        }
    };
    Some(SocketDetail {
        proto: "unix".to_string(),
        inode,
        state: Some(state.to_string()),
        path: path.map(str::to_string),
        socket_type: Some(unix_type_name(kind)),
        ..Default::default()
    })
}

/// `sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode`
fn parse_netlink(line: &str) -> Option<SocketDetail> {
    let f: Vec<&str> = line.split_ascii_whitespace().take(10).collect();
    if f.len() < 10 {
        return None;
    }
    let protocol: u32 = f[1].parse().ok()?;
    let inode: u64 = f[9].parse().ok()?;
    Some(SocketDetail {
        proto: "netlink".to_string(),
        inode,
        netlink_family: Some(netlink_family_name(protocol)),
        lport: f[2].parse().ok(),
        groups: u32::from_str_radix(f[3], 16).ok(),
        ..Default::default()
    })
}

/// `sk RefCnt Type Proto Iface R Rmem User Inode`
fn parse_packet(line: &str) -> Option<SocketDetail> {
    let f: Vec<&str> = line.split_ascii_whitespace().take(9).collect();
    if f.len() < 9 {
        return None;
    }
    let kind: u16 = f[2].parse().ok()?;
    let inode: u64 = f[8].parse().ok()?;
    Some(SocketDetail {
        proto: "packet".to_string(),
        inode,
        socket_type: Some(unix_type_name(kind)),
        // Printed as ntohs(protocol) in hex. The interface index is not resolved here: the
        // table may be another namespace's, whose indexes ours does not know.
        protocol: u32::from_str_radix(f[3], 16).ok(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        crate::snapshot::testdata("procnet", name)
    }

    fn parse_all(family: Family, name: &str) -> Vec<SocketDetail> {
        fixture(name)
            .lines()
            .skip(1)
            .filter_map(|l| parse_line(family, l))
            .collect()
    }

    fn by_inode(v: &[SocketDetail], inode: u64) -> &SocketDetail {
        v.iter()
            .find(|d| d.inode == inode)
            .unwrap_or_else(|| panic!("inode {inode} not parsed"))
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn hex_endpoints() {
        let v4 = parse_hex_endpoint("0100007F:1F90").expect("valid");
        assert_eq!(fmt_endpoint(v4.0, v4.1), "127.0.0.1:8080");
        let any = parse_hex_endpoint("00000000:0000").expect("valid");
        assert_eq!(fmt_endpoint(any.0, any.1), "0.0.0.0:0");
        let lo6 = parse_hex_endpoint("00000000000000000000000001000000:0050").expect("valid");
        assert_eq!(fmt_endpoint(lo6.0, lo6.1), "[::1]:80");
        let mapped = parse_hex_endpoint("0000000000000000FFFF00000100007F:01BB").expect("valid");
        assert_eq!(fmt_endpoint(mapped.0, mapped.1), "[::ffff:127.0.0.1]:443");
        let g6 = parse_hex_endpoint("B80D0120000000000000000001000000:0016").expect("valid");
        assert_eq!(fmt_endpoint(g6.0, g6.1), "[2001:db8::1]:22");
        assert!(parse_hex_endpoint("0100007F").is_none());
        assert!(parse_hex_endpoint("0100007:0050").is_none());
        assert!(parse_hex_endpoint("ZZ00007F:0050").is_none());
        assert!(parse_hex_endpoint("0100007F:10000").is_none());
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn tcp_fixture() {
        let v = parse_all(Family::Tcp, "tcp");
        assert_eq!(v.len(), 3, "the truncated line is skipped");
        let listen = by_inode(&v, 21001);
        assert_eq!(listen.proto, "tcp");
        assert_eq!(listen.local.as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(listen.remote, None);
        assert_eq!(listen.state.as_deref(), Some("LISTEN"));
        assert_eq!(listen.socket_type.as_deref(), Some("stream"));
        let any = by_inode(&v, 21002);
        assert_eq!(any.local.as_deref(), Some("0.0.0.0:22"));
        let est = by_inode(&v, 21003);
        assert_eq!(est.local.as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(est.remote.as_deref(), Some("127.0.0.1:51234"));
        assert_eq!(est.state.as_deref(), Some("ESTABLISHED"));
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn tcp6_fixture() {
        let v = parse_all(Family::Tcp6, "tcp6");
        assert_eq!(v.len(), 3);
        let lo = by_inode(&v, 22001);
        assert_eq!(lo.proto, "tcp6");
        assert_eq!(lo.local.as_deref(), Some("[::1]:631"));
        assert_eq!(lo.state.as_deref(), Some("LISTEN"));
        let any = by_inode(&v, 22002);
        assert_eq!(any.local.as_deref(), Some("[::]:80"));
        let mapped = by_inode(&v, 22003);
        assert_eq!(mapped.local.as_deref(), Some("[::ffff:127.0.0.1]:8080"));
        assert_eq!(mapped.remote.as_deref(), Some("[::ffff:127.0.0.1]:40000"));
        assert_eq!(mapped.state.as_deref(), Some("TIME_WAIT"));
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn udp_fixture() {
        let v = parse_all(Family::Udp, "udp");
        assert_eq!(v.len(), 2);
        let unconn = by_inode(&v, 23001);
        assert_eq!(unconn.proto, "udp");
        assert_eq!(unconn.local.as_deref(), Some("0.0.0.0:68"));
        assert_eq!(unconn.remote, None);
        assert_eq!(unconn.state.as_deref(), Some("UNCONN"));
        assert_eq!(unconn.socket_type.as_deref(), Some("dgram"));
        let conn = by_inode(&v, 23002);
        assert_eq!(conn.local.as_deref(), Some("127.0.0.1:5353"));
        assert_eq!(conn.remote.as_deref(), Some("127.0.0.53:53"));
        assert_eq!(conn.state.as_deref(), Some("ESTABLISHED"));
    }

    #[test]
    fn unix_fixture() {
        let v = parse_all(Family::Unix, "unix");
        assert_eq!(v.len(), 5, "the malformed lines are skipped");
        let listen = by_inode(&v, 31001);
        assert_eq!(listen.proto, "unix");
        assert_eq!(listen.path.as_deref(), Some("/run/dbus/system_bus_socket"));
        assert_eq!(listen.state.as_deref(), Some("LISTEN"));
        assert_eq!(listen.socket_type.as_deref(), Some("stream"));
        assert_eq!(listen.peer, None);
        let abs = by_inode(&v, 31002);
        assert_eq!(abs.path.as_deref(), Some("@my abstract name"));
        assert_eq!(abs.socket_type.as_deref(), Some("seqpacket"));
        let conn = by_inode(&v, 31003);
        assert_eq!(conn.path, None);
        assert_eq!(conn.state.as_deref(), Some("ESTABLISHED"));
        let dgram = by_inode(&v, 31004);
        assert_eq!(dgram.socket_type.as_deref(), Some("dgram"));
        assert_eq!(dgram.state.as_deref(), Some("UNCONNECTED"));
        assert_eq!(dgram.path.as_deref(), Some("/tmp/dir with space/sock"));
        let wide = by_inode(&v, 1234567);
        assert_eq!(wide.path.as_deref(), Some("@/tmp/.X11-unix/X0"));
    }

    #[test]
    fn netlink_and_packet_fixtures() {
        let v = parse_all(Family::Netlink, "netlink");
        assert_eq!(v.len(), 3);
        assert_eq!(by_inode(&v, 41001).netlink_family.as_deref(), Some("route"));
        assert_eq!(
            by_inode(&v, 41002).netlink_family.as_deref(),
            Some("kobject_uevent")
        );
        assert_eq!(by_inode(&v, 41003).netlink_family.as_deref(), Some("30"));
        let p = parse_all(Family::Packet, "packet");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].inode, 51001);
        assert_eq!(p[0].socket_type.as_deref(), Some("raw"));
    }

    #[test]
    fn inode_column_matches_parse() {
        for (family, name) in [
            (Family::Tcp, "tcp"),
            (Family::Tcp6, "tcp6"),
            (Family::Udp, "udp"),
            (Family::Unix, "unix"),
            (Family::Netlink, "netlink"),
            (Family::Packet, "packet"),
        ] {
            for line in fixture(name).lines().skip(1) {
                if let Some(d) = parse_line(family, line) {
                    assert_eq!(line_inode(family, line), Some(d.inode), "{line}");
                }
            }
        }
    }

    /// Runs the unix table reader over `text` for `inodes`.
    fn unix_rows(text: &str, inodes: &[u64]) -> HashMap<u64, SocketDetail> {
        let mut wanted: HashSet<u64> = inodes.iter().copied().collect();
        let mut found = HashMap::default();
        let mut line = Vec::new();
        unix_table(
            &mut std::io::Cursor::new(text.as_bytes()),
            &mut line,
            &mut wanted,
            &mut found,
        );
        found
    }

    const HEAD: &str = "Num       RefCount Protocol Flags    Type St Inode Path\n";
    const VICTIM: &str = "0000000000000000: 00000003 00000000 00000000 0001 03  7001\n";
    /// A socket named "/tmp/x" + newline + a row that claims 7001 is "@SPOOFED", listening.
    const FORGER: &str = "0000000000000000: 00000002 00000000 00010000 0001 01  7002 /tmp/x\n\
                          0000000000000000: 00000002 00000000 00010000 0001 01 7001 @SPOOFED\n";
    const LONG: &str = "0000000000000000: 00000002 00000000 00010000 0001 01  7003 \
                        /srv/a/name/long/enough/that/no/forged/row/fits/after/it/within/108/bytes/x\n";

    #[test]
    fn issue9_15_a_newline_in_a_unix_name_cannot_forge_a_row() {
        // The victim's own row first, clean: it stands.
        let f = unix_rows(&format!("{HEAD}{VICTIM}{FORGER}"), &[7001, 7002]);
        assert_eq!(f[&7001].path, None);
        assert_eq!(f[&7001].state.as_deref(), Some("ESTABLISHED"));
        assert_eq!(
            f[&7002].path.as_deref(),
            Some("/tmp/x"),
            "cut at the newline"
        );
        // The forgery first, the victim's row later and clean (after a name too long to hide a
        // row): the clean row wins.
        let f = unix_rows(&format!("{HEAD}{FORGER}{LONG}{VICTIM}"), &[7001]);
        assert_eq!(f[&7001].path, None);
        assert_eq!(f[&7001].state.as_deref(), Some("ESTABLISHED"));
        // The victim's row itself doubtful (right after the forged one): two rows disagree, and
        // neither is believed.
        let f = unix_rows(&format!("{HEAD}{FORGER}{VICTIM}"), &[7001]);
        assert!(!f.contains_key(&7001), "{f:?}");
        // A row after an unnamed one, or after a long name, is clean; one within reach of a
        // short name, alone for its inode, is believed (the usual case on a real host).
        let f = unix_rows(&format!("{HEAD}{LONG}{VICTIM}"), &[7001, 7003]);
        assert_eq!(f.len(), 2);
        let short = "0000000000000000: 00000002 00000000 00010000 0001 01  7004 /run/a\n";
        let f = unix_rows(&format!("{HEAD}{short}{VICTIM}"), &[7001]);
        assert_eq!(f[&7001].state.as_deref(), Some("ESTABLISHED"));
    }

    #[test]
    fn unix_name_lengths_are_read_from_the_raw_row() {
        assert_eq!(unix_name_len(b"0: 2 0 0 1 1 7001"), None);
        assert_eq!(unix_name_len(b"0: 2 0 0 1 1 7001 "), Some(0));
        assert_eq!(unix_name_len(b"0: 2 0 0 1 1  7001 /a b"), Some(4));
        assert_eq!(unix_name_len(b"0: 2"), None);
    }

    #[test]
    fn garbage_never_panics() {
        let lines = [
            "",
            ":",
            "   0:",
            "0: 0100007F:1F90",
            "0: ::: ::: 0A a b c d e f",
            "0000000000000000: 00000002 00000000 00010000 0001",
            "x: y z w v u t s r q",
            "\u{fffd}\u{fffd}: \u{fffd} \u{fffd}",
            "0: 0100007F\u{e9}:1F90 00000000:0000 0A 0 0 0 0 0 1",
        ];
        for family in Family::ALL {
            for line in lines {
                let _ = parse_line(family, line);
                let _ = line_inode(family, line);
            }
        }
    }
}
