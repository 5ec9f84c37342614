//! NETLINK_SOCK_DIAG queries for the sockets of one network namespace: the caller's own, or
//! another one the socket was created in (see `open_in_netns`).
//!
//! Unix and inet requests are built and decoded with `netlink-packet-sock-diag`. That crate has
//! no AF_NETLINK (netlink_diag) messages, so those two small structs are written by hand here.
//! Dump replies are walked with a raw peek at the inode before anything is decoded, because a
//! TCP dump may carry tens of thousands of other processes' sockets.

use super::procnet::{remote_endpoint, udp_state_name};
use super::{Family, fmt_endpoint, netlink_family_name, tcp_state_name, unix_type_name};
use super::{HashMap, HashSet};
use crate::snapshot::model::SocketDetail;
use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NetlinkBuffer, NetlinkHeader,
    NetlinkMessage, NetlinkPayload, Parseable,
};
use netlink_packet_sock_diag::{
    AF_INET, AF_INET6, AF_NETLINK, AF_UNIX, IPPROTO_TCP, IPPROTO_UDP, SOCK_DIAG_BY_FAMILY,
    SockDiagMessage,
    inet::{self, ExtensionFlags, InetRequest, InetResponseHeader, SocketId},
    unix::{self, ShowFlags, UnixRequest, UnixResponse, UnixResponseHeader, nlas::UnixDiagName},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

/// Up to this many wanted inodes, unix sockets are looked up one by one (exact requests, all
/// sent in one batch); beyond it one dump of the namespace's unix sockets is cheaper. Either
/// way the kernel walks the namespace's unix table (an exact request walks it until it meets
/// the inode), so both grow with the unix sockets of other processes; this bound keeps a
/// snapshot's cost below about one dump. Measured by `issue16_unix_exact_vs_dump` beside
/// 15,000 other unix sockets: exact/dump 0.27 at 10 wanted, 0.40 at 32, 1.43 at 64.
pub(super) const UNIX_EXACT_MAX: usize = 48;

/// A reply that has not arrived by then never will; without this a lost reply would hang
/// the watch forever.
const RECV_TIMEOUT: Duration = Duration::from_secs(2);

const RECV_BUF_LEN: usize = 64 * 1024;

/// Offsets of the inode in the fixed part of each reply (see linux/*_diag.h).
const UNIX_INODE_OFFSET: usize = 4;
const INET_INODE_OFFSET: usize = 68;
const NETLINK_INODE_OFFSET: usize = 16;
const NETLINK_DIAG_MSG_LEN: usize = 28;

/// NDIAG_PROTO_ALL: every netlink protocol in one dump.
const NDIAG_PROTO_ALL: u8 = 255;
/// NDIAG_SHOW_GROUPS, and the attribute that then carries the groups bitmap.
const NDIAG_SHOW_GROUPS: u32 = 0x2;
const NETLINK_DIAG_GROUPS: u16 = 1;
/// UNIX_DIAG_SHUTDOWN: the kernel sends it with every unix reply.
const UNIX_DIAG_SHUTDOWN: u16 = 6;
/// Size of the fixed part of a unix_diag_msg, where its attributes start.
const UNIX_DIAG_MSG_LEN: usize = 16;
// TCP states (include/net/tcp_states.h) of sockets that never have an fd.
const TCP_TIME_WAIT: u32 = 6;
const TCP_NEW_SYN_RECV: u32 = 12;

enum Flow {
    Continue,
    /// Everything wanted was found; the rest of the dump is not needed.
    Stop,
}

pub(super) struct Diag {
    sock: Option<Socket>,
    /// The network namespace to ask (an nsfs fd), when it is not our own: a netlink socket
    /// answers for the namespace it was created in, so it is created there.
    netns: Option<OwnedFd>,
    /// Set once creating the socket failed (EPERM, EAFNOSUPPORT, …): it will not get better.
    disabled: bool,
    buf: Vec<u8>,
    send_buf: Vec<u8>,
    seq: u32,
}

impl Diag {
    pub(super) fn new() -> Self {
        Diag {
            sock: None,
            netns: None,
            disabled: false,
            buf: Vec::new(),
            send_buf: Vec::new(),
            seq: 0,
        }
    }

    /// A Diag for the namespace `netns` (an fd of /proc/PID/ns/net or from SIOCGSKNS).
    pub(super) fn in_netns(netns: OwnedFd) -> Self {
        Diag {
            netns: Some(netns),
            ..Diag::new()
        }
    }

    /// Behave as if the netlink socket could not be created.
    #[cfg(test)]
    pub(super) fn disable(&mut self) {
        self.disabled = true;
    }

    pub(super) fn is_disabled(&self) -> bool {
        self.disabled
    }

    fn ensure_socket(&mut self) -> io::Result<()> {
        if self.disabled {
            return Err(io::Error::from(io::ErrorKind::Unsupported));
        }
        if self.sock.is_none() {
            let opened = match &self.netns {
                None => open_socket(),
                Some(ns) => open_in_netns(ns.as_fd()),
            };
            match opened {
                Ok(s) => self.sock = Some(s),
                Err(e) => {
                    self.disabled = true;
                    return Err(e);
                }
            }
        }
        if self.buf.len() != RECV_BUF_LEN {
            self.buf = vec![0; RECV_BUF_LEN];
        }
        Ok(())
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Looks `family` up for the inodes in `wanted`, moving hits into `found`. An error means
    /// the family could not be queried (the caller falls back to /proc for it).
    pub(super) fn lookup(
        &mut self,
        family: Family,
        wanted: &mut HashSet<u64>,
        found: &mut HashMap<u64, SocketDetail>,
    ) -> io::Result<()> {
        if matches!(
            family,
            Family::Raw
                | Family::Raw6
                | Family::Packet
                | Family::UdpLite
                | Family::UdpLite6
                | Family::Ping
                | Family::Ping6
        ) {
            // raw_diag and packet_diag are often not loaded, ping has no diag at all, and
            // UDP-Lite is rare: their /proc tables are tiny.
            return Err(io::Error::from(io::ErrorKind::Unsupported));
        }
        let result = match family {
            Family::Unix if wanted.len() <= UNIX_EXACT_MAX => self.unix_exact(wanted, found),
            Family::Unix => self.unix_dump(wanted, found),
            Family::Tcp => self.inet_dump(AF_INET, IPPROTO_TCP, family, wanted, found),
            Family::Tcp6 => self.inet_dump(AF_INET6, IPPROTO_TCP, family, wanted, found),
            Family::Udp => self.inet_dump(AF_INET, IPPROTO_UDP, family, wanted, found),
            Family::Udp6 => self.inet_dump(AF_INET6, IPPROTO_UDP, family, wanted, found),
            Family::Netlink => self.netlink_dump(wanted, found),
            _ => Ok(()),
        };
        if result.is_err() {
            // Unread replies may be queued; a fresh socket is the only clean state.
            self.sock = None;
        }
        result
    }

    fn send(&mut self) -> io::Result<()> {
        self.ensure_socket()?;
        let sock = self.sock.as_ref().ok_or_else(not_connected)?;
        let n = sock.send(&self.send_buf, 0)?;
        if n != self.send_buf.len() {
            return Err(io::Error::other("short netlink send"));
        }
        Ok(())
    }

    fn push_request(&mut self, flags: u16, msg: SockDiagMessage) {
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.next_seq();
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let start = self.send_buf.len();
        self.send_buf.resize(start + packet.buffer_len(), 0);
        packet.serialize(&mut self.send_buf[start..]);
    }

    /// One exact request per inode, all in one datagram; the kernel answers each with either
    /// the socket or an error (ENOENT when the inode is not a unix socket of this namespace).
    pub(super) fn unix_exact(
        &mut self,
        wanted: &mut HashSet<u64>,
        found: &mut HashMap<u64, SocketDetail>,
    ) -> io::Result<()> {
        self.send_buf.clear();
        let mut expected = 0usize;
        let first_seq = self.seq.wrapping_add(1);
        for &inode in wanted.iter() {
            let Ok(ino32) = u32::try_from(inode) else {
                continue;
            };
            self.push_request(
                NLM_F_REQUEST,
                SockDiagMessage::UnixRequest(UnixRequest {
                    state_flags: unix::StateFlags::from_bits_retain(u32::MAX),
                    inode: ino32,
                    show_flags: ShowFlags::NAME | ShowFlags::PEER,
                    cookie: [0xff; 8],
                }),
            );
            expected += 1;
        }
        if expected == 0 {
            return Ok(());
        }
        self.send()?;
        let mut replies = 0usize;
        self.receive(|msg_type, seq, payload| {
            if seq.wrapping_sub(first_seq) as usize >= expected {
                return Ok(Flow::Continue);
            }
            replies += 1;
            match msg_type {
                NLMSG_ERROR => {}
                SOCK_DIAG_BY_FAMILY => {
                    if let Some(d) = decode_unix(payload) {
                        wanted.remove(&d.inode);
                        found.insert(d.inode, d);
                    }
                }
                _ => {}
            }
            Ok(if replies >= expected {
                Flow::Stop
            } else {
                Flow::Continue
            })
        })
    }

    pub(super) fn unix_dump(
        &mut self,
        wanted: &mut HashSet<u64>,
        found: &mut HashMap<u64, SocketDetail>,
    ) -> io::Result<()> {
        self.send_buf.clear();
        self.push_request(
            NLM_F_REQUEST | NLM_F_DUMP,
            SockDiagMessage::UnixRequest(UnixRequest {
                state_flags: unix::StateFlags::from_bits_retain(u32::MAX),
                inode: 0,
                show_flags: ShowFlags::NAME | ShowFlags::PEER,
                cookie: [0; 8],
            }),
        );
        self.send()?;
        self.receive_dump(UNIX_INODE_OFFSET, decode_unix, wanted, found)
    }

    fn inet_dump(
        &mut self,
        af: u8,
        protocol: u8,
        family: Family,
        wanted: &mut HashSet<u64>,
        found: &mut HashMap<u64, SocketDetail>,
    ) -> io::Result<()> {
        self.send_buf.clear();
        self.push_request(
            NLM_F_REQUEST | NLM_F_DUMP,
            SockDiagMessage::InetRequest(InetRequest {
                family: af,
                protocol,
                extensions: ExtensionFlags::empty(),
                // TIME_WAIT and NEW_SYN_RECV entries are kernel-only mini sockets that no fd can
                // name; a busy host holds thousands, and skipping them in the kernel keeps the
                // dump's cost to sockets that could be ours.
                states: inet::StateFlags::from_bits_retain(
                    !(1 << TCP_TIME_WAIT) & !(1 << TCP_NEW_SYN_RECV),
                ),
                socket_id: if af == AF_INET {
                    SocketId::new_v4()
                } else {
                    SocketId::new_v6()
                },
            }),
        );
        self.send()?;
        self.receive_dump(
            INET_INODE_OFFSET,
            |payload| decode_inet(family, payload),
            wanted,
            found,
        )
    }

    fn netlink_dump(
        &mut self,
        wanted: &mut HashSet<u64>,
        found: &mut HashMap<u64, SocketDetail>,
    ) -> io::Result<()> {
        self.send_buf.clear();
        // struct netlink_diag_req: family, protocol, pad, ino, show, cookie[2].
        let mut req = [0u8; 20];
        req[0] = AF_NETLINK;
        req[1] = NDIAG_PROTO_ALL;
        req[8..12].copy_from_slice(&NDIAG_SHOW_GROUPS.to_ne_bytes());
        let seq = self.next_seq();
        let len = (16 + req.len()) as u32;
        self.send_buf.extend_from_slice(&len.to_ne_bytes());
        self.send_buf
            .extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        self.send_buf
            .extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        self.send_buf.extend_from_slice(&seq.to_ne_bytes());
        self.send_buf.extend_from_slice(&0u32.to_ne_bytes());
        self.send_buf.extend_from_slice(&req);
        self.send()?;
        self.receive_dump(NETLINK_INODE_OFFSET, decode_netlink, wanted, found)
    }

    /// Walks a dump to its end (or until nothing is wanted), decoding only wanted sockets.
    /// Read a dump's replies, decoding only those whose inode (a u32 at `inode_offset` of the
    /// reply) is wanted: other processes' sockets are skipped before any decoding.
    fn receive_dump(
        &mut self,
        inode_offset: usize,
        decode: impl Fn(&[u8]) -> Option<SocketDetail>,
        wanted: &mut HashSet<u64>,
        found: &mut HashMap<u64, SocketDetail>,
    ) -> io::Result<()> {
        let seq = self.seq;
        let mut done = false;
        let result = self.receive(|msg_type, msg_seq, payload| {
            if msg_seq != seq {
                return Ok(Flow::Continue);
            }
            match msg_type {
                NLMSG_DONE => {
                    done = true;
                    return Ok(Flow::Stop);
                }
                NLMSG_ERROR => return Err(nlmsg_error(payload)),
                SOCK_DIAG_BY_FAMILY => {}
                _ => return Ok(Flow::Continue),
            }
            let ours = peek_u32(payload, inode_offset).is_some_and(|i| wanted.contains(&i));
            if let Some(d) = ours.then(|| decode(payload)).flatten() {
                wanted.remove(&d.inode);
                found.insert(d.inode, d);
                if wanted.is_empty() {
                    return Ok(Flow::Stop);
                }
            }
            Ok(Flow::Continue)
        });
        if result.is_ok() && !done {
            // Stopped mid-dump: closing the socket ends the dump in the kernel, which is
            // cheaper than draining thousands of unwanted replies.
            self.sock = None;
        }
        result
    }

    /// Receives datagrams and hands each message (type, seq, payload) to `on_msg` until it
    /// says stop.
    fn receive(
        &mut self,
        mut on_msg: impl FnMut(u16, u32, &[u8]) -> io::Result<Flow>,
    ) -> io::Result<()> {
        self.ensure_socket()?;
        let sock = self.sock.as_ref().ok_or_else(not_connected)?;
        let buf = &mut self.buf;
        loop {
            let n = sock.recv(&mut &mut buf[..], 0)?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            let mut data = &buf[..n.min(buf.len())];
            while !data.is_empty() {
                let Ok(msg) = NetlinkBuffer::new_checked(data) else {
                    // Truncated message: nothing after it can be framed either.
                    break;
                };
                let len = msg.length() as usize;
                if let Flow::Stop =
                    on_msg(msg.message_type(), msg.sequence_number(), msg.payload())?
                {
                    return Ok(());
                }
                let aligned = (len + 3) & !3;
                data = data.get(aligned..).unwrap_or_default();
            }
        }
    }
}

fn not_connected() -> io::Error {
    io::Error::from(io::ErrorKind::NotConnected)
}

fn open_socket() -> io::Result<Socket> {
    let mut sock = Socket::new(NETLINK_SOCK_DIAG)?;
    sock.bind_auto()?;
    sock.connect(&SocketAddr::new(0, 0))?;
    rustix::net::sockopt::set_socket_timeout(
        &sock,
        rustix::net::sockopt::Timeout::Recv,
        Some(RECV_TIMEOUT),
    )?;
    Ok(sock)
}

/// A sock_diag socket of the namespace `netns`, created by a short-lived thread that joins the
/// namespace first (setns changes only the calling thread's network namespace, and a socket
/// stays in the namespace it was created in). Needs CAP_SYS_ADMIN over that namespace; EPERM
/// otherwise, and the caller falls back to /proc.
fn open_in_netns(netns: BorrowedFd<'_>) -> io::Result<Socket> {
    std::thread::scope(|scope| {
        // Builder rather than scope.spawn: a thread that cannot be created is an error here
        // (the caller falls back to /proc), not a panic.
        std::thread::Builder::new()
            .name("fdiff-netns".into())
            .spawn_scoped(scope, || {
                // SAFETY: plain syscall on a valid fd; it affects only this thread, which ends
                // right after creating the socket.
                if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                open_socket()
            })?
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("netns helper thread panicked")))
    })
}

fn peek_u32(payload: &[u8], offset: usize) -> Option<u64> {
    let bytes: [u8; 4] = payload.get(offset..offset + 4)?.try_into().ok()?;
    Some(u64::from(u32::from_ne_bytes(bytes)))
}

fn nlmsg_error(payload: &[u8]) -> io::Error {
    match payload.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) {
        Some(b) => io::Error::from_raw_os_error(-i32::from_ne_bytes(b)),
        None => io::Error::other("truncated netlink error"),
    }
}

/// The payload of each attribute (type, data) after the fixed part of a reply; stops at the
/// first malformed one.
fn attributes(payload: &[u8], fixed: usize) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = payload.get(fixed..).unwrap_or_default();
    std::iter::from_fn(move || {
        let len = usize::from(u16::from_ne_bytes(rest.get(..2)?.try_into().ok()?));
        let ty = u16::from_ne_bytes(rest.get(2..4)?.try_into().ok()?);
        let data = rest.get(4..len)?;
        rest = rest.get((len + 3) & !3..).unwrap_or_default();
        // NLA_F_NESTED and NLA_F_NET_BYTEORDER live in the top bits of the type.
        Some((ty & 0x3fff, data))
    })
}

/// sk_shutdown bits (RCV_SHUTDOWN 1, SEND_SHUTDOWN 2) as the directions shut down.
pub(super) fn shutdown_name(bits: u8) -> Option<String> {
    match bits & 3 {
        0 => None,
        1 => Some("r".to_owned()),
        2 => Some("w".to_owned()),
        _ => Some("rw".to_owned()),
    }
}

/// struct netlink_diag_msg: family, type, protocol, state, portid, dst_portid, dst_group,
/// ino, cookie; then the groups attribute asked for with NDIAG_SHOW_GROUPS.
fn decode_netlink(payload: &[u8]) -> Option<SocketDetail> {
    let inode = peek_u32(payload, NETLINK_INODE_OFFSET)?;
    if payload.len() < NETLINK_DIAG_MSG_LEN {
        return None;
    }
    let groups = attributes(payload, NETLINK_DIAG_MSG_LEN)
        .find(|&(ty, _)| ty == NETLINK_DIAG_GROUPS)
        .map_or(Some(0), |(_, data)| {
            // A bitmap of longs; the first 32 groups are what /proc/net/netlink and lsfd show.
            Some(u32::from_ne_bytes(data.get(..4)?.try_into().ok()?))
        });
    Some(SocketDetail {
        proto: "netlink".to_string(),
        inode,
        netlink_family: Some(netlink_family_name(u32::from(payload[2]))),
        socket_type: Some(unix_type_name(u16::from(payload[1]))),
        lport: peek_u32(payload, 4).and_then(|p| u32::try_from(p).ok()),
        groups,
        ..Default::default()
    })
}

fn decode_unix(payload: &[u8]) -> Option<SocketDetail> {
    // A malformed attribute should not cost the type and state the fixed header tells.
    let (header, name, peer) = match UnixResponse::parse(payload) {
        Ok(r) => {
            let name = r.name().map(|n| match n {
                UnixDiagName::Pathname(p) => p.to_string_lossy().into_owned(),
                // /proc shows NULs inside abstract names as '@'; do the same so both agree.
                UnixDiagName::Abstract(a) => {
                    let bytes: Vec<u8> = a.iter().map(|&b| if b == 0 { b'@' } else { b }).collect();
                    format!("@{}", String::from_utf8_lossy(&bytes))
                }
            });
            let peer = r.peer().filter(|&p| p != 0).map(u64::from);
            (r.header, name, peer)
        }
        Err(_) => (UnixResponseHeader::parse(payload).ok()?, None, None),
    };
    if payload.first() != Some(&AF_UNIX) {
        return None;
    }
    let state = match header.state {
        1 => "ESTABLISHED".to_string(),
        7 => "UNCONNECTED".to_string(),
        10 => "LISTEN".to_string(),
        other => tcp_state_name(other),
    };
    let shutdown = attributes(payload, UNIX_DIAG_MSG_LEN)
        .find(|&(ty, _)| ty == UNIX_DIAG_SHUTDOWN)
        .and_then(|(_, data)| shutdown_name(*data.first()?));
    Some(SocketDetail {
        proto: "unix".to_string(),
        inode: u64::from(header.inode),
        state: Some(state),
        path: name,
        socket_type: Some(unix_type_name(u16::from(header.kind))),
        peer,
        shutdown,
        ..Default::default()
    })
}

fn decode_inet(family: Family, payload: &[u8]) -> Option<SocketDetail> {
    let h = InetResponseHeader::parse(payload).ok()?;
    let id = &h.socket_id;
    let (state, socket_type) = match family {
        Family::Tcp | Family::Tcp6 => (tcp_state_name(h.state), "stream"),
        _ => (udp_state_name(h.state), "dgram"),
    };
    Some(SocketDetail {
        proto: family.proto().to_string(),
        inode: u64::from(h.inode),
        local: Some(fmt_endpoint(id.source_address, id.source_port)),
        remote: remote_endpoint(id.destination_address, id.destination_port),
        state: Some(state),
        socket_type: Some(socket_type.to_string()),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_replies_are_skipped() {
        assert!(decode_unix(&[]).is_none());
        assert!(decode_unix(&[AF_UNIX, 1, 1]).is_none());
        assert!(decode_inet(Family::Tcp, &[AF_INET; 20]).is_none());
        assert!(peek_u32(&[1, 2, 3], 0).is_none());
        assert_eq!(peek_u32(&7u32.to_ne_bytes(), 0), Some(7));
    }

    #[test]
    fn unix_header_survives_bad_attributes() {
        // family, type, state, pad, inode, cookie, then an attribute claiming 200 bytes.
        let mut p = vec![AF_UNIX, 1, 10, 0];
        p.extend_from_slice(&4242u32.to_ne_bytes());
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&200u16.to_ne_bytes());
        p.extend_from_slice(&0u16.to_ne_bytes());
        let d = decode_unix(&p).expect("decoded");
        assert_eq!(d.shutdown, None);
        assert_eq!(d.inode, 4242);
        assert_eq!(d.state.as_deref(), Some("LISTEN"));
        assert_eq!(d.socket_type.as_deref(), Some("stream"));
    }
}

#[cfg(test)]
mod issue16_tests {
    use super::*;

    #[test]
    fn issue16_unix_shutdown_attribute() {
        // family, type, state, pad, inode, cookie; then UNIX_DIAG_SHUTDOWN = SEND_SHUTDOWN.
        let mut p = vec![AF_UNIX, 1, 1, 0];
        p.extend_from_slice(&77u32.to_ne_bytes());
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&5u16.to_ne_bytes());
        p.extend_from_slice(&UNIX_DIAG_SHUTDOWN.to_ne_bytes());
        p.extend_from_slice(&[2, 0, 0, 0]);
        assert_eq!(
            decode_unix(&p).expect("decoded").shutdown.as_deref(),
            Some("w")
        );
        assert_eq!(shutdown_name(3).as_deref(), Some("rw"));
        assert_eq!(shutdown_name(1).as_deref(), Some("r"));
    }

    #[test]
    fn issue16_netlink_port_type_and_groups() {
        let mut p = vec![AF_NETLINK, 3, 0, 7];
        p.extend_from_slice(&4321u32.to_ne_bytes()); // portid
        p.extend_from_slice(&[0; 8]); // dst_portid, dst_group
        p.extend_from_slice(&99u32.to_ne_bytes()); // ino
        p.extend_from_slice(&[0; 8]); // cookie
        let bare = decode_netlink(&p).expect("decoded");
        assert_eq!((bare.lport, bare.groups), (Some(4321), Some(0)));
        assert_eq!(bare.socket_type.as_deref(), Some("raw"));
        assert_eq!(bare.netlink_family.as_deref(), Some("route"));
        p.extend_from_slice(&12u16.to_ne_bytes());
        p.extend_from_slice(&NETLINK_DIAG_GROUPS.to_ne_bytes());
        p.extend_from_slice(&5u64.to_ne_bytes());
        assert_eq!(decode_netlink(&p).expect("decoded").groups, Some(5));
        // An attribute claiming more than is there is ignored, not read past the end.
        let mut bad = p[..NETLINK_DIAG_MSG_LEN].to_vec();
        bad.extend_from_slice(&200u16.to_ne_bytes());
        bad.extend_from_slice(&NETLINK_DIAG_GROUPS.to_ne_bytes());
        assert_eq!(decode_netlink(&bad).expect("decoded").groups, Some(0));
    }
}

#[cfg(test)]
mod issue10_tests {
    use rustix::net::sockopt::{Timeout, socket_timeout};

    /// The timeout that keeps a silent kernel from stalling a tick, set through rustix now.
    #[test]
    fn issue10_8_sock_diag_socket_has_its_receive_timeout() {
        let s = super::open_socket().expect("sock_diag socket");
        let t = socket_timeout(&s, Timeout::Recv).expect("SO_RCVTIMEO");
        assert_eq!(t, Some(super::RECV_TIMEOUT));
    }
}
