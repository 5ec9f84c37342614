//! Per-socket decoding of a few inet (and netlink) sockets through a duplicate of the
//! target's fd (`pidfd_getfd`), so that a process with ten new sockets next to 50,000 sockets
//! of other processes does not pay for a dump of the 50,000: TCP and UDP cannot be looked up
//! by inode with sock_diag, and /proc/net is a full table as well.
//!
//! Why this is acceptable to do to a process we only observe:
//! - It needs PTRACE_MODE_ATTACH over the target (root, CAP_SYS_PTRACE, or the same user with
//!   Yama ptrace_scope 0), the same right a debugger needs; without it the kernel says EPERM
//!   and the dump path is used for that pid from then on.
//! - It neither stops nor traces the target; the target's fd table is only read.
//! - Only read-only queries are made on the duplicate (getsockname, SO_PEERNAME, SO_DOMAIN,
//!   SO_TYPE, SO_PROTOCOL, TCP_INFO), and it is closed right after them, microseconds later.
//!   If the target closes its fd inside that window, the socket's release (FIN, freeing the
//!   port) waits for our close: a delay of microseconds, never a leak.
//! - Receiving a socket fd (as with SCM_RIGHTS) makes the kernel re-tag it with the
//!   *receiver's* cgroup v1 net_cls classid and net_prio index. Where those controllers are
//!   not mounted every task has the same values and the re-tag changes nothing; where they
//!   are mounted it could reroute or reprioritise the target's traffic, so this path is then
//!   never used.

use super::procnet::{remote_endpoint, udp_state_name};
use super::{Family, fmt_endpoint, netlink_family_name, tcp_state_name, unix_type_name};
use super::{HashMap, HashSet};
use crate::snapshot::model::SocketDetail;
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Pids refused are remembered so as not to ask again each tick; past this many the list is
/// started over rather than grown without bound.
const DENIED_MAX: usize = 4096;

/// The tables that may still hold the sockets the duplicates did not decode: the socket's
/// own kind when the duplicate told it (a unix socket needs no TCP dump), every table when it
/// could not be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tables(u16);

impl Tables {
    pub(super) const NONE: Tables = Tables(0);
    pub(super) const ALL: Tables = Tables(u16::MAX);

    fn of(family: Family) -> Tables {
        Tables(1 << family as u16)
    }

    fn add(&mut self, other: Tables) {
        self.0 |= other.0;
    }

    /// The families to search, in the usual order.
    pub(super) fn families(self) -> Vec<Family> {
        Family::ALL
            .into_iter()
            .filter(|&f| self.0 & Tables::of(f).0 != 0)
            .collect()
    }
}

pub(super) struct Getfd {
    /// pidfd of the last process asked about (one decoder serves every watched process; a
    /// pidfd is cheap to reopen, and keeping one per process would hold fds of dead ones).
    cached: Option<(i32, OwnedFd)>,
    /// Pids whose fds we may not take (EPERM/EACCES): the dump path serves them.
    denied: HashSet<i32>,
    /// The kernel lacks pidfd_getfd (before 5.6), or duplicating would re-tag sockets.
    disabled: bool,
}

impl Getfd {
    pub(super) fn new() -> Self {
        Getfd {
            cached: None,
            denied: HashSet::default(),
            disabled: net_cgroup_v1_mounted(),
        }
    }

    /// Test hook: as if pidfd_getfd did not exist.
    #[cfg(test)]
    pub(super) fn disable(&mut self) {
        self.disabled = true;
    }

    pub(super) fn usable(&self, pid: i32) -> bool {
        !self.disabled && !self.denied.contains(&pid)
    }

    fn pidfd(&mut self, pid: i32) -> Result<BorrowedFd<'_>, Errno> {
        if self.cached.as_ref().map(|c| c.0) != Some(pid) {
            self.cached = None;
            let p = Pid::from_raw(pid).ok_or(Errno::SRCH)?;
            let fd = rustix::process::pidfd_open(p, PidfdFlags::empty())?;
            self.cached = Some((pid, fd));
        }
        match &self.cached {
            Some((_, fd)) => Ok(fd.as_fd()),
            None => Err(Errno::SRCH),
        }
    }

    /// Stops using the pidfd path for `pid` (or at all) after an error that will recur.
    fn refuse(&mut self, pid: i32, e: Errno) {
        self.cached = None;
        match e {
            Errno::NOSYS => self.disabled = true,
            Errno::PERM | Errno::ACCESS => {
                if self.denied.len() >= DENIED_MAX {
                    self.denied.clear();
                }
                self.denied.insert(pid);
            }
            _ => {}
        }
    }

    /// Decodes the sockets of `socks` (fd, inode) whose inode is in `wanted`, moving hits into
    /// `found`. Whatever it cannot decode exactly (unix sockets, raw, packet, an fd closed or
    /// reused since it was listed, any error) stays in `wanted` for the other paths; the
    /// answer says which tables those need.
    pub(super) fn lookup(
        &mut self,
        pid: i32,
        socks: &[(i32, u64)],
        wanted: &mut HashSet<u64>,
        found: &mut HashMap<u64, SocketDetail>,
        same_netns: bool,
    ) -> Tables {
        if !self.usable(pid) {
            return Tables::ALL;
        }
        let mut rest = Tables::NONE;
        for &(fd, inode) in socks {
            if !wanted.contains(&inode) {
                continue;
            }
            let dup = match self.pidfd(pid) {
                Ok(pidfd) => rustix::process::pidfd_getfd(pidfd, fd, PidfdGetfdFlags::empty()),
                Err(e) => Err(e),
            };
            let dup = match dup {
                Ok(dup) => dup,
                // That fd is closed now; the others may still be there.
                Err(Errno::BADF) => {
                    rest = Tables::ALL;
                    continue;
                }
                Err(e) => {
                    self.refuse(pid, e);
                    return Tables::ALL;
                }
            };
            match decode(dup, inode, same_netns) {
                Ok(d) => {
                    wanted.remove(&inode);
                    found.insert(inode, d);
                }
                Err(tables) => rest.add(tables),
            }
        }
        rest
    }
}

/// SIOCGSKNS (linux/sockios.h): an fd of the network namespace a socket belongs to.
const SIOCGSKNS: libc::c_ulong = 0x894C;

impl Getfd {
    /// The network namespace of the target's socket `fd` (still the socket `inode`), through
    /// a duplicate and SIOCGSKNS; `None` when it cannot be asked.
    pub(super) fn socket_netns(&mut self, pid: i32, fd: i32, inode: u64) -> Option<OwnedFd> {
        if !self.usable(pid) {
            return None;
        }
        let dup = match self.pidfd(pid) {
            Ok(pidfd) => rustix::process::pidfd_getfd(pidfd, fd, PidfdGetfdFlags::empty()),
            Err(e) => Err(e),
        };
        let dup = match dup {
            Ok(d) => d,
            Err(Errno::BADF) => return None,
            Err(e) => {
                self.refuse(pid, e);
                return None;
            }
        };
        let st = rustix::fs::fstat(&dup).ok()?;
        if st.st_ino != inode
            || rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Socket
        {
            return None;
        }
        // SAFETY: an ioctl without an argument on a valid fd; it returns a new fd or -1.
        let r = unsafe { libc::ioctl(dup.as_raw_fd(), SIOCGSKNS as _) };
        if r < 0 {
            return None;
        }
        // SAFETY: the kernel just returned this fd; nobody else owns it.
        Some(unsafe { OwnedFd::from_raw_fd(r) })
    }
}

/// Decodes the duplicate if it is still the socket `inode` (the fd number may have been
/// reused since it was listed) and of a kind this path knows; otherwise says which tables may
/// hold it. Closes the duplicate either way.
fn decode(dup: OwnedFd, inode: u64, same_netns: bool) -> Result<SocketDetail, Tables> {
    let st = rustix::fs::fstat(&dup).map_err(|_| Tables::ALL)?;
    let is_socket = rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Socket;
    if !is_socket || st.st_ino != inode {
        return Err(Tables::ALL);
    }
    let int = |name| getsockopt_int(&dup, libc::SOL_SOCKET, name).ok_or(Tables::ALL);
    let (domain, protocol) = (int(libc::SO_DOMAIN)?, int(libc::SO_PROTOCOL)?);
    let v6 = match domain {
        libc::AF_INET => false,
        libc::AF_INET6 => true,
        libc::AF_NETLINK => {
            let family = u32::try_from(protocol).map_err(|_| Tables::of(Family::Netlink))?;
            let kind = int(libc::SO_TYPE)?;
            // sockaddr_nl: family, pad, port id, the first 32 multicast groups.
            let (lport, groups) = netlink_name(&dup).ok_or(Tables::of(Family::Netlink))?;
            return Ok(SocketDetail {
                proto: "netlink".to_string(),
                inode,
                netlink_family: Some(netlink_family_name(family)),
                socket_type: Some(unix_type_name(u16::try_from(kind).unwrap_or(0))),
                lport: Some(lport),
                groups: Some(groups),
                ..Default::default()
            });
        }
        libc::AF_UNIX => return Err(Tables::of(Family::Unix)),
        libc::AF_PACKET => {
            // The interface index is resolved in our own namespace: only right in it.
            return packet(&dup, inode, same_netns).ok_or(Tables::of(Family::Packet));
        }
        // vsock, bluetooth, AF_ALG, XDP, …: in none of the tables.
        _ => return Err(Tables::NONE),
    };
    let kind = int(libc::SO_TYPE)?;
    let pick = |v4: Family, v6f: Family| Tables::of(if v6 { v6f } else { v4 });
    let (tcp, dgram) = match (kind, protocol) {
        (libc::SOCK_STREAM, libc::IPPROTO_TCP) => (true, Dgram::Udp),
        (libc::SOCK_DGRAM, libc::IPPROTO_UDP) => (false, Dgram::Udp),
        (libc::SOCK_DGRAM, libc::IPPROTO_UDPLITE) => (false, Dgram::UdpLite),
        // Ping and raw sockets have no destination port, so SO_PEERNAME refuses them even
        // when connected and the state could not be told here: their small tables can.
        (libc::SOCK_DGRAM, libc::IPPROTO_ICMP | libc::IPPROTO_ICMPV6) => {
            return Err(pick(Family::Ping, Family::Ping6));
        }
        (libc::SOCK_RAW, _) => return Err(pick(Family::Raw, Family::Raw6)),
        // Not decoded here (SCTP, MPTCP); searched where the tables would have searched
        // them before, so the answer does not change.
        (libc::SOCK_STREAM, _) => return Err(pick(Family::Tcp, Family::Tcp6)),
        (libc::SOCK_DGRAM, _) => return Err(pick(Family::Udp, Family::Udp6)),
        _ => return Err(Tables::ALL),
    };
    let own = match (tcp, dgram) {
        (true, _) => pick(Family::Tcp, Family::Tcp6),
        (false, Dgram::UdpLite) => pick(Family::UdpLite, Family::UdpLite6),
        (false, Dgram::Udp) => pick(Family::Udp, Family::Udp6),
    };
    let (local_ip, local_port) = sockaddr(&dup, AddrQuery::Local, v6).map_err(|_| own)?;
    // SO_PEERNAME rather than getpeername(): getpeername refuses (ENOTCONN) a TCP socket in
    // SYN_SENT or CLOSE although it has a destination, which sock_diag does report.
    let remote = match sockaddr(&dup, AddrQuery::Peer, v6) {
        Ok((ip, port)) => remote_endpoint(ip, port),
        Err(Errno::NOTCONN) => None,
        Err(_) => return Err(own),
    };
    let state = if tcp {
        let mut info = [0u8; 8];
        match getsockopt_raw(&dup, libc::IPPROTO_TCP, libc::TCP_INFO, &mut info) {
            Some(n) if n >= 1 => {}
            _ => return Err(own),
        }
        tcp_state_name(info[0])
    } else {
        // A UDP or UDP-Lite socket is ESTABLISHED exactly when connect() gave it a
        // destination.
        udp_state_name(if remote.is_some() { 1 } else { 7 })
    };
    let proto = match (tcp, dgram, v6) {
        (true, _, false) => "tcp",
        (true, _, true) => "tcp6",
        (false, Dgram::Udp, false) => "udp",
        (false, Dgram::Udp, true) => "udp6",
        (false, Dgram::UdpLite, false) => "udplite",
        (false, Dgram::UdpLite, true) => "udplite6",
    };
    drop(dup);
    Ok(SocketDetail {
        proto: proto.to_string(),
        inode,
        local: Some(fmt_endpoint(local_ip, local_port)),
        remote,
        state: Some(state),
        socket_type: Some(if tcp { "stream" } else { "dgram" }.to_string()),
        ..Default::default()
    })
}

/// Which datagram protocol a UDP-like inet socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dgram {
    Udp,
    UdpLite,
}

/// A netlink socket's port id and first 32 multicast groups (getsockname's sockaddr_nl).
fn netlink_name(fd: impl AsFd) -> Option<(u32, u32)> {
    // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
    let mut nl: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_nl>()).ok()?;
    // SAFETY: the kernel writes at most `len` bytes, the size of `nl`.
    let r = unsafe {
        libc::getsockname(
            fd.as_fd().as_raw_fd(),
            (&raw mut nl).cast::<libc::sockaddr>(),
            &mut len,
        )
    };
    (r == 0 && i32::from(nl.nl_family) == libc::AF_NETLINK).then_some((nl.nl_pid, nl.nl_groups))
}

/// A packet socket: its type, link-layer protocol and the interface it is bound to.
fn packet(fd: impl AsFd, inode: u64, same_netns: bool) -> Option<SocketDetail> {
    let kind = getsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_TYPE)?;
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut ll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_ll>()).ok()?;
    // SAFETY: the kernel writes at most `len` bytes, the size of `ll`.
    let r = unsafe {
        libc::getsockname(
            fd.as_fd().as_raw_fd(),
            (&raw mut ll).cast::<libc::sockaddr>(),
            &mut len,
        )
    };
    if r != 0 || i32::from(ll.sll_family) != libc::AF_PACKET {
        return None;
    }
    Some(SocketDetail {
        proto: "packet".to_string(),
        inode,
        socket_type: Some(unix_type_name(u16::try_from(kind).unwrap_or(0))),
        protocol: Some(u32::from(u16::from_be(ll.sll_protocol))),
        iface: if same_netns {
            super::iface_name(ll.sll_ifindex)
        } else {
            None
        },
        ..Default::default()
    })
}

fn getsockopt_raw(fd: impl AsFd, level: i32, name: i32, buf: &mut [u8]) -> Option<usize> {
    let mut len = libc::socklen_t::try_from(buf.len()).ok()?;
    // SAFETY: the kernel writes at most `len` bytes into `buf`, which is that long.
    let r = unsafe {
        libc::getsockopt(
            fd.as_fd().as_raw_fd(),
            level,
            name,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r != 0 {
        return None;
    }
    Some((len as usize).min(buf.len()))
}

fn getsockopt_int(fd: impl AsFd, level: i32, name: i32) -> Option<i32> {
    let mut b = [0u8; 4];
    let n = getsockopt_raw(fd, level, name, &mut b)?;
    (n == 4).then(|| i32::from_ne_bytes(b))
}

enum AddrQuery {
    Local,
    Peer,
}

/// The socket's own address (getsockname) or its destination (SO_PEERNAME; ENOTCONN when it
/// has none).
fn sockaddr(fd: impl AsFd, which: AddrQuery, v6: bool) -> Result<(IpAddr, u16), Errno> {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    // SO_PEERNAME refuses (EINVAL) a buffer longer than the address, so ask for exactly the
    // family's size.
    let size = if v6 {
        std::mem::size_of::<libc::sockaddr_in6>()
    } else {
        std::mem::size_of::<libc::sockaddr_in>()
    };
    let mut len = libc::socklen_t::try_from(size).map_err(|_| Errno::INVAL)?;
    let raw = fd.as_fd().as_raw_fd();
    let ptr = (&raw mut ss).cast::<libc::sockaddr>();
    // SAFETY: the kernel writes at most `len` bytes (the size of `ss`) into `ss`.
    let r = unsafe {
        match which {
            AddrQuery::Local => libc::getsockname(raw, ptr, &mut len),
            AddrQuery::Peer => libc::getsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_PEERNAME,
                ptr.cast(),
                &mut len,
            ),
        }
    };
    if r != 0 {
        return Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO));
    }
    match i32::from(ss.ss_family) {
        libc::AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and it is that long.
            let sin = unsafe { &*(&raw const ss).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Ok((IpAddr::V4(ip), u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says the storage holds a sockaddr_in6, and it is that long.
            let sin6 = unsafe { &*(&raw const ss).cast::<libc::sockaddr_in6>() };
            // Kept as IPv6 even when v4-mapped, as sock_diag and /proc/net/tcp6 show it.
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Ok((IpAddr::V6(ip), u16::from_be(sin6.sin6_port)))
        }
        // Not an inet address: a failure, not "no destination".
        _ => Err(Errno::AFNOSUPPORT),
    }
}

/// Whether a cgroup v1 hierarchy has net_cls or net_prio attached (then receiving a socket
/// fd would re-tag the target's socket; see the module comment). No /proc/cgroups means no
/// cgroups at all.
fn net_cgroup_v1_mounted() -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/cgroups") else {
        return false;
    };
    parse_cgroups(&text)
}

fn parse_cgroups(text: &str) -> bool {
    text.lines().filter(|l| !l.starts_with('#')).any(|l| {
        let mut f = l.split_whitespace();
        let name = f.next().unwrap_or_default();
        let hierarchy = f.next().unwrap_or("0");
        matches!(name, "net_cls" | "net_prio") && hierarchy != "0"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_guard() {
        let v2_only = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
                       cpuset\t0\t1\t1\nnet_cls\t0\t1\t1\nnet_prio\t0\t1\t1\n";
        assert!(!parse_cgroups(v2_only));
        let hybrid = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
                      cpu\t2\t5\t1\nnet_cls\t7\t1\t1\nnet_prio\t7\t1\t1\n";
        assert!(parse_cgroups(hybrid));
        assert!(!parse_cgroups(""));
    }
}
