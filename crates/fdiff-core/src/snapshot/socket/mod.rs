//! Socket decoding: turns `socket:[INODE]` links into protocol, addresses, state and peer.
//!
//! Sockets are asked of the kernel with NETLINK_SOCK_DIAG in the network namespace they live
//! in: the caller's own, or the target's (a netlink socket created inside it, one per
//! namespace, cached), or, for a socket whose namespace differs from its process's, the one
//! SIOCGSKNS names. Only where that is not permitted (no CAP_SYS_ADMIN over the namespace), or
//! for raw and packet sockets, are the text tables of /proc/PID/net read, parsed so that a
//! socket path holding a newline cannot forge a row (see `procnet`). Either way the cost
//! follows the number of sockets asked for, not the number on the machine, as far as the
//! kernel allows: unix sockets are looked up by inode, and every scan stops once all wanted
//! inodes are found.
//!
//! TCP and UDP cannot be looked up by inode, so when the caller names the fds too
//! (`decode_fds`) and only a few are wanted, inet and netlink sockets are asked one by one
//! through a duplicate of the target's fd instead (see `getfd`), and the namespace-wide dumps
//! serve only what that path could not decode.

mod getfd;
mod netlink;
mod procnet;

use crate::snapshot::model::SocketDetail;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;

/// Maps and sets keyed by inode (and fd, namespace id): [`InodeHash`] instead of SipHash.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, InodeHash>;
pub(crate) type HashSet<K> = std::collections::HashSet<K, InodeHash>;

/// A multiply-rotate hasher for small integer keys. The keys are inode and fd numbers the
/// kernel hands out, not input anyone can choose to collide, so SipHash's flood resistance buys
/// nothing here, while a 10,000-fd snapshot hashes each socket inode several times over.
#[derive(Clone, Copy, Default)]
pub(crate) struct InodeHash;

impl std::hash::BuildHasher for InodeHash {
    type Hasher = InodeHasher;
    fn build_hasher(&self) -> InodeHasher {
        InodeHasher(0)
    }
}

#[derive(Default)]
pub(crate) struct InodeHasher(u64);

impl InodeHasher {
    /// An odd constant with well-spread bits (from the golden ratio): multiplying by it
    /// carries every input bit into the high bits, which hashbrown uses for its control bytes.
    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    fn add(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(26) ^ x).wrapping_mul(Self::K);
    }
}

impl std::hash::Hasher for InodeHasher {
    fn finish(&self) -> u64 {
        // Fold the well-mixed high half into the low bits, which pick the bucket.
        self.0 ^ (self.0 >> 32)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_ne_bytes(b));
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.add(x);
    }
    fn write_u32(&mut self, x: u32) {
        self.add(u64::from(x));
    }
    fn write_i32(&mut self, x: i32) {
        self.add(u64::from(x as u32));
    }
    fn write_usize(&mut self, x: usize) {
        self.add(x as u64);
    }
}

/// Socket tables, in the order they are searched: unix first (most sockets of most processes,
/// and the only kind looked up by inode), then inet, then the rare kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Unix,
    Tcp,
    Tcp6,
    Udp,
    Udp6,
    Netlink,
    Raw,
    Raw6,
    Packet,
    UdpLite,
    UdpLite6,
    Ping,
    Ping6,
}

impl Family {
    const ALL: [Family; 13] = [
        Family::Unix,
        Family::Tcp,
        Family::Tcp6,
        Family::Udp,
        Family::Udp6,
        Family::Netlink,
        Family::Raw,
        Family::Raw6,
        Family::Packet,
        Family::UdpLite,
        Family::UdpLite6,
        Family::Ping,
        Family::Ping6,
    ];

    pub(crate) fn proto(self) -> &'static str {
        match self {
            Family::Unix => "unix",
            Family::Tcp => "tcp",
            Family::Tcp6 => "tcp6",
            Family::Udp => "udp",
            Family::Udp6 => "udp6",
            Family::Netlink => "netlink",
            Family::Raw => "raw",
            Family::Raw6 => "raw6",
            Family::Packet => "packet",
            Family::UdpLite => "udplite",
            Family::UdpLite6 => "udplite6",
            Family::Ping => "ping",
            Family::Ping6 => "ping6",
        }
    }
}

/// Which source `decode_with` may use; everything but `Auto` exists for tests and timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) enum Backend {
    Auto,
    NetlinkOnly,
    ProcOnly,
    /// Only the per-fd duplicate (no fallback): what it cannot decode stays "unknown".
    GetfdOnly,
}

/// Long-lived decoder; one per watch. Reuse netlink sockets and buffers across calls.
pub struct SocketDecoder {
    /// sock_diag of our own network namespace.
    diag: netlink::Diag,
    /// sock_diag of other namespaces, by nsfs (dev, inode); each holds the namespace's fd (so
    /// it can reopen its socket there), which keeps the namespace alive: bounded by
    /// FOREIGN_NETNS_MAX.
    foreign: HashMap<(u64, u64), netlink::Diag>,
    getfd: getfd::Getfd,
    /// (dev, inode) of our own network namespace; `None` if it could not be read, in which
    /// case no process can be proven to share it and /proc is always used.
    self_netns: Option<(u64, u64)>,
}

impl Default for SocketDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SocketDecoder {
    /// Never fails: the netlink socket is opened on first use, and /proc is used if it cannot be.
    pub fn new() -> Self {
        SocketDecoder {
            diag: netlink::Diag::new(),
            foreign: HashMap::default(),
            getfd: getfd::Getfd::new(),
            self_netns: netns_id("/proc/self/ns/net"),
        }
    }

    /// Decode the given socket inodes (from `socket:[INODE]` links) of process `pid`.
    /// Returns one SocketDetail per requested inode, same order; inodes not found anywhere
    /// get proto "unknown" and only `inode` set.
    pub fn decode(&mut self, pid: i32, inodes: &[u64]) -> Vec<SocketDetail> {
        self.decode_with(pid, inodes, Backend::Auto)
    }

    /// Like `decode`, for sockets named by (fd, inode) as listed in /proc/PID/fd: with the fd
    /// numbers a few inet and netlink sockets can be asked one by one instead of by dumping
    /// every socket of the namespace. One SocketDetail per pair, same order.
    pub fn decode_fds(&mut self, pid: i32, socks: &[(i32, u64)]) -> Vec<SocketDetail> {
        self.decode_fds_with(pid, socks, Backend::Auto)
    }

    pub(crate) fn decode_fds_with(
        &mut self,
        pid: i32,
        socks: &[(i32, u64)],
        backend: Backend,
    ) -> Vec<SocketDetail> {
        let mut wanted: HashSet<u64> = socks.iter().map(|s| s.1).collect();
        let mut found: HashMap<u64, SocketDetail> =
            HashMap::with_capacity_and_hasher(wanted.len(), Default::default());
        let same_netns = self.self_netns.is_some()
            && netns_id(&format!("/proc/{pid}/ns/net")) == self.self_netns;
        match backend {
            Backend::GetfdOnly => {
                self.getfd
                    .lookup(pid, socks, &mut wanted, &mut found, same_netns);
            }
            Backend::Auto if getfd_pays(pid, wanted.len()) && self.getfd.usable(pid) => {
                // Duplicates first: they decode inet and netlink sockets and tell the kind of
                // the rest, so unix sockets go to sock_diag (only it knows the peer) by inode
                // and the namespace-wide dumps run only for what could not be asked.
                let rest = self
                    .getfd
                    .lookup(pid, socks, &mut wanted, &mut found, same_netns);
                if !wanted.is_empty() {
                    self.lookup(pid, &rest.families(), &mut wanted, &mut found, backend);
                }
            }
            _ => self.lookup(pid, &Family::ALL, &mut wanted, &mut found, backend),
        }
        if backend == Backend::Auto && !wanted.is_empty() {
            self.lookup_own_netns(pid, socks, &mut wanted, &mut found);
        }
        assemble(socks.iter().map(|s| s.1), found)
    }

    /// Sockets the process's namespace does not know: created in another namespace and passed
    /// on (or the process moved). SIOCGSKNS on a duplicate names the socket's own namespace,
    /// which is then asked like any other. Only for what nothing else found, so this costs
    /// nothing in the usual case.
    fn lookup_own_netns(
        &mut self,
        pid: i32,
        socks: &[(i32, u64)],
        wanted: &mut HashSet<u64>,
        found: &mut HashMap<u64, SocketDetail>,
    ) {
        let mut by_ns: HashMap<(u64, u64), (OwnedFd, HashSet<u64>)> = HashMap::default();
        for &(fd, inode) in socks {
            if !wanted.contains(&inode) || !self.getfd.usable(pid) {
                continue;
            }
            let Some(ns) = self.getfd.socket_netns(pid, fd, inode) else {
                continue;
            };
            let Some(id) = fd_id(&ns) else {
                continue;
            };
            by_ns
                .entry(id)
                .or_insert_with(|| (ns, HashSet::default()))
                .1
                .insert(inode);
        }
        let pid_netns = netns_id(&format!("/proc/{pid}/ns/net"));
        for (id, (ns, mut inodes)) in by_ns {
            let asked: Vec<u64> = inodes.iter().copied().collect();
            let Some(diag) = self.diag_for(id, ns) else {
                continue;
            };
            for family in [
                Family::Unix,
                Family::Tcp,
                Family::Tcp6,
                Family::Udp,
                Family::Udp6,
            ] {
                if inodes.is_empty() {
                    break;
                }
                let _ = diag.lookup(family, &mut inodes, found);
            }
            name_peers(diag, found);
            if pid_netns != Some(id) {
                for inode in asked {
                    if let Some(d) = found.get_mut(&inode) {
                        d.netns = Some(id.1);
                    }
                }
            }
            wanted.retain(|i| !found.contains_key(i));
        }
    }

    /// The sock_diag of namespace `id`, whose fd is `ns`; `None` when it may not be asked.
    fn diag_for(&mut self, id: (u64, u64), ns: OwnedFd) -> Option<&mut netlink::Diag> {
        let diag = if Some(id) == self.self_netns {
            &mut self.diag
        } else {
            if !self.foreign.contains_key(&id) && self.foreign.len() >= FOREIGN_NETNS_MAX {
                // Namespaces of containers long gone would otherwise stay pinned.
                self.foreign.clear();
            }
            self.foreign
                .entry(id)
                .or_insert_with(|| netlink::Diag::in_netns(ns))
        };
        (!diag.is_disabled()).then_some(diag)
    }

    /// The sock_diag of the network namespace `pid` is in.
    fn diag_for_pid(&mut self, pid: i32) -> Option<&mut netlink::Diag> {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).ok()?;
        let ns = OwnedFd::from(ns);
        let id = fd_id(&ns)?;
        self.diag_for(id, ns)
    }

    pub(crate) fn decode_with(
        &mut self,
        pid: i32,
        inodes: &[u64],
        backend: Backend,
    ) -> Vec<SocketDetail> {
        let mut wanted: HashSet<u64> = inodes.iter().copied().collect();
        let mut found: HashMap<u64, SocketDetail> =
            HashMap::with_capacity_and_hasher(wanted.len(), Default::default());
        if backend != Backend::GetfdOnly {
            self.lookup(pid, &Family::ALL, &mut wanted, &mut found, backend);
        }
        assemble(inodes.iter().copied(), found)
    }

    /// The table path: sock_diag for `families` where it can answer, /proc/PID/net for the rest.
    fn lookup(
        &mut self,
        pid: i32,
        families: &[Family],
        wanted: &mut HashSet<u64>,
        found: &mut HashMap<u64, SocketDetail>,
        backend: Backend,
    ) {
        let mut proc_families: Vec<Family> = Vec::new();
        let diag = match backend {
            Backend::ProcOnly | Backend::GetfdOnly => None,
            Backend::NetlinkOnly | Backend::Auto => self.diag_for_pid(pid),
        };
        if let Some(diag) = diag {
            // A dump walks the whole hash table even when it holds nothing: skip the tables
            // sockstat says are empty in this namespace (tcp6 and udp6, often). Read only once
            // an inet table is due, so a tick with new unix sockets alone reads nothing more.
            let mut empty: Option<Vec<Family>> = None;
            for &family in families {
                if wanted.is_empty() {
                    break;
                }
                let inet = INET_LINES.iter().any(|&(_, f)| f == family);
                if inet
                    && empty
                        .get_or_insert_with(|| empty_inet_tables(pid))
                        .contains(&family)
                {
                    continue;
                }
                if diag.lookup(family, wanted, found).is_err() {
                    proc_families.push(family);
                }
            }
            if families.contains(&Family::Unix) {
                name_peers(diag, found);
            }
        } else {
            proc_families.extend(families);
        }
        if backend != Backend::NetlinkOnly && !wanted.is_empty() {
            procnet::lookup(pid, &proc_families, wanted, found);
        }
    }
}

/// Network namespaces asked through a netlink socket of their own at once; past this the cache
/// starts over.
const FOREIGN_NETNS_MAX: usize = 16;

/// The nsfs (dev, inode) that names the namespace `fd` refers to.
fn fd_id(fd: &OwnedFd) -> Option<(u64, u64)> {
    let st = rustix::fs::fstat(fd).ok()?;
    Some((st.st_dev, st.st_ino))
}

/// Fills `peer_path` of the unnamed unix sockets in `found` with the name their peer is bound
/// to: a client's peer is the server's accepted socket, which carries the listener's name. Only
/// sockets decoded in this call are in `found`, so each connection's peer is asked once, when
/// it is new, and all peers in one batch.
fn name_peers(diag: &mut netlink::Diag, found: &mut HashMap<u64, SocketDetail>) {
    let unnamed_peer = |d: &SocketDetail| {
        (d.proto == "unix" && d.path.is_none() && d.peer_path.is_none())
            .then_some(d.peer)
            .flatten()
    };
    let mut names: HashMap<u64, String> = HashMap::default();
    let mut ask: HashSet<u64> = HashSet::default();
    for peer in found.values().filter_map(unnamed_peer) {
        // Both ends new in the same tick (a socketpair, a connection to ourselves).
        match found.get(&peer) {
            Some(p) => {
                if let Some(name) = &p.path {
                    names.insert(peer, name.clone());
                }
            }
            None => {
                ask.insert(peer);
            }
        }
    }
    if !ask.is_empty() {
        let mut peers: HashMap<u64, SocketDetail> =
            HashMap::with_capacity_and_hasher(ask.len(), Default::default());
        // A peer that cannot be asked (gone meanwhile, another namespace) just stays unnamed.
        let _ = diag.lookup(Family::Unix, &mut ask, &mut peers);
        names.extend(
            peers
                .into_iter()
                .filter_map(|(inode, d)| d.path.map(|p| (inode, p))),
        );
    }
    if names.is_empty() {
        return;
    }
    for d in found.values_mut() {
        if let Some(name) = unnamed_peer(d).and_then(|p| names.get(&p)) {
            d.peer_path = Some(name.clone());
        }
    }
}

/// One SocketDetail per inode, in order; inodes not found get proto "unknown". Each found
/// detail is moved out, not cloned; only an inode listed twice (a dup'd fd) is copied.
fn assemble(
    inodes: impl Iterator<Item = u64>,
    mut found: HashMap<u64, SocketDetail>,
) -> Vec<SocketDetail> {
    let mut taken: HashMap<u64, usize> = HashMap::default();
    let mut out: Vec<SocketDetail> = Vec::with_capacity(found.len());
    for inode in inodes {
        let d = match found.remove(&inode) {
            Some(d) => {
                taken.insert(inode, out.len());
                d
            }
            None => match taken.get(&inode) {
                Some(&i) => out[i].clone(),
                None => SocketDetail {
                    proto: "unknown".to_string(),
                    inode,
                    ..Default::default()
                },
            },
        };
        out.push(d);
    }
    out
}

/// Whether asking `wanted` sockets one by one beats dumping the tables. A dump has a fixed
/// cost of several milliseconds (the kernel walks every bucket of its TCP hash table, empty or
/// not) plus about a third of a duplicate's cost per socket it walks (TIME_WAIT ones too, even
/// when filtered out); a duplicate costs some 6 µs. So: always up to a few hundred, and beyond
/// that while they are a small share of the namespace's inet sockets.
fn getfd_pays(pid: i32, wanted: usize) -> bool {
    wanted <= GETFD_ALWAYS
        || namespace_inet_sockets(pid).is_some_and(|total| (wanted as u64) * 3 <= total)
}

/// Batches up to this size are always asked one by one (where permitted).
const GETFD_ALWAYS: usize = 512;

/// TCP (with TIME_WAIT) and UDP sockets of `pid`'s network namespace, from sockstat.
fn namespace_inet_sockets(pid: i32) -> Option<u64> {
    let text = sockstat(pid)?;
    Some(
        INET_LINES
            .iter()
            .map(|(label, _)| {
                sockstat_field(&text, label, "inuse") + sockstat_field(&text, label, "tw")
            })
            .sum(),
    )
}

/// The inet tables with no socket in use in `pid`'s namespace (none when sockstat is unreadable).
fn empty_inet_tables(pid: i32) -> Vec<Family> {
    let Some(text) = sockstat(pid) else {
        return Vec::new();
    };
    INET_LINES
        .iter()
        .filter(|(label, _)| text.lines().any(|l| l.starts_with(label)))
        .filter(|(label, _)| sockstat_field(&text, label, "inuse") == 0)
        .map(|&(_, f)| f)
        .collect()
}

const INET_LINES: [(&str, Family); 4] = [
    ("TCP:", Family::Tcp),
    ("TCP6:", Family::Tcp6),
    ("UDP:", Family::Udp),
    ("UDP6:", Family::Udp6),
];

fn sockstat(pid: i32) -> Option<String> {
    let mut text = std::fs::read_to_string(format!("/proc/{pid}/net/sockstat")).ok()?;
    text.push_str(&std::fs::read_to_string(format!("/proc/{pid}/net/sockstat6")).ok()?);
    Some(text)
}

/// The number after `field` on the sockstat line that starts with `label` (0 when absent).
fn sockstat_field(text: &str, label: &str, field: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(label))
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.windows(2)
                .find(|p| p[0] == field)
                .and_then(|p| p[1].parse::<u64>().ok())
        })
        .sum()
}

fn netns_id(path: &str) -> Option<(u64, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino()))
}

/// The name of interface `index` in our own network namespace.
pub(crate) fn iface_name(index: i32) -> Option<String> {
    let index = u32::try_from(index).ok().filter(|&i| i > 0)?;
    let mut buf = [0u8; libc::IF_NAMESIZE];
    // SAFETY: if_indextoname writes at most IF_NAMESIZE bytes (NUL included) into `buf`.
    let r = unsafe { libc::if_indextoname(index, buf.as_mut_ptr().cast()) };
    if r.is_null() {
        return None;
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..len]).into_owned())
}

/// "addr:port", IPv6 as "[addr]:port". IPv4 is written digit by digit: `Ipv4Addr`'s Display
/// formats into a scratch buffer first (for padding), which made two endpoints per socket
/// the largest user-space cost of decoding a few thousand TCP sockets.
pub(crate) fn fmt_endpoint(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => {
            let mut s = String::with_capacity(21);
            for (i, octet) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    s.push('.');
                }
                push_decimal(&mut s, u32::from(octet));
            }
            s.push(':');
            push_decimal(&mut s, u32::from(port));
            s
        }
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

fn push_decimal(s: &mut String, mut v: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    s.extend(digits[i..].iter().map(|&d| char::from(d)));
}

/// TCP state names as include/net/tcp_states.h numbers them.
pub(crate) fn tcp_state_name(st: u8) -> String {
    let name = match st {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        12 => "NEW_SYN_RECV",
        other => return other.to_string(),
    };
    name.to_string()
}

/// SOCK_* socket types.
pub(crate) fn unix_type_name(kind: u16) -> String {
    let name = match kind {
        1 => "stream",
        2 => "dgram",
        3 => "raw",
        4 => "rdm",
        5 => "seqpacket",
        10 => "packet",
        other => return other.to_string(),
    };
    name.to_string()
}

/// NETLINK_* protocol names from linux/netlink.h.
pub(crate) fn netlink_family_name(protocol: u32) -> String {
    let name = match protocol {
        0 => "route",
        1 => "unused",
        2 => "usersock",
        3 => "firewall",
        4 => "sock_diag",
        5 => "nflog",
        6 => "xfrm",
        7 => "selinux",
        8 => "iscsi",
        9 => "audit",
        10 => "fib_lookup",
        11 => "connector",
        12 => "netfilter",
        13 => "ip6_fw",
        14 => "dnrtmsg",
        15 => "kobject_uevent",
        16 => "generic",
        18 => "scsitransport",
        19 => "ecryptfs",
        20 => "rdma",
        21 => "crypto",
        22 => "smc",
        other => return other.to_string(),
    };
    name.to_string()
}

#[cfg(test)]
mod tests;
