//! Real-kernel tests: sockets opened by the test process itself, decoded both ways.

use super::*;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram, UnixListener, UnixStream};

fn ino(fd: impl AsFd) -> u64 {
    rustix::fs::fstat(fd).expect("fstat").st_ino
}

fn pid() -> i32 {
    std::process::id() as i32
}

fn get(v: &[SocketDetail], inode: u64) -> &SocketDetail {
    v.iter()
        .find(|d| d.inode == inode)
        .unwrap_or_else(|| panic!("inode {inode} missing from {v:#?}"))
}

/// What both sources must agree on (the peer is sock_diag's alone).
fn comparable(d: &SocketDetail) -> SocketDetail {
    SocketDetail {
        peer: None,
        peer_path: None,
        // Only sock_diag tells these: /proc/net/netlink has no socket type, /proc/net/unix no
        // shutdown state.
        socket_type: if d.proto == "netlink" {
            None
        } else {
            d.socket_type.clone()
        },
        shutdown: None,
        ..d.clone()
    }
}

/// (fd, inode) of one socket.
fn pair_of(x: &impl AsFd) -> (i32, u64) {
    (x.as_fd().as_raw_fd(), ino(x))
}

/// (fd, inode) of every socket in `keep` (each kept value is one of the fixture's types).
fn fds_of(keep: &[Box<dyn std::any::Any>]) -> Vec<(i32, u64)> {
    keep.iter()
        .filter_map(|k| {
            Some(if let Some(x) = k.downcast_ref::<TcpListener>() {
                pair_of(x)
            } else if let Some(x) = k.downcast_ref::<TcpStream>() {
                pair_of(x)
            } else if let Some(x) = k.downcast_ref::<UdpSocket>() {
                pair_of(x)
            } else if let Some(x) = k.downcast_ref::<UnixStream>() {
                pair_of(x)
            } else if let Some(x) = k.downcast_ref::<UnixListener>() {
                pair_of(x)
            } else if let Some(x) = k.downcast_ref::<UnixDatagram>() {
                pair_of(x)
            } else if let Some(x) = k.downcast_ref::<OwnedFd>() {
                pair_of(x)
            } else if let Some(x) = k.downcast_ref::<netlink_sys::Socket>() {
                pair_of(x)
            } else {
                return None;
            })
        })
        .collect()
}

struct Fixture {
    _keep: Vec<Box<dyn std::any::Any>>,
    /// (fd, inode) of every socket, for `decode_fds`.
    fds: Vec<(i32, u64)>,
    _dir: tempfile::TempDir,
    tcp_listen: u64,
    tcp_client: u64,
    tcp_accepted: u64,
    tcp_port: u16,
    client_port: u16,
    udp_unconn: u64,
    udp_unconn_port: u16,
    udp_conn: u64,
    pair: (u64, u64),
    seqpair: (u64, u64),
    unix_path: u64,
    path: String,
    unix_abstract: u64,
    abstract_name: String,
    unix_dgram: u64,
    tcp6: Option<(u64, u16)>,
    netlink_route: u64,
    /// Checked only by comparing sources: (v4-mapped accepted tcp6, udp6 sockets).
    mapped: Option<u64>,
    udp6: Vec<u64>,
}

fn fixture() -> Fixture {
    let mut keep: Vec<Box<dyn std::any::Any>> = Vec::new();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
    let tcp_port = listener.local_addr().expect("addr").port();
    let client = TcpStream::connect(("127.0.0.1", tcp_port)).expect("connect");
    let client_port = client.local_addr().expect("addr").port();
    let (accepted, _) = listener.accept().expect("accept");
    let (tcp_listen, tcp_client, tcp_accepted) = (ino(&listener), ino(&client), ino(&accepted));
    keep.push(Box::new(listener));
    keep.push(Box::new(client));
    keep.push(Box::new(accepted));

    let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let udp_unconn_port = udp.local_addr().expect("addr").port();
    let udp2 = UdpSocket::bind("127.0.0.1:0").expect("udp");
    udp2.connect(("127.0.0.1", udp_unconn_port))
        .expect("udp connect");
    let (udp_unconn, udp_conn) = (ino(&udp), ino(&udp2));
    keep.push(Box::new(udp));
    keep.push(Box::new(udp2));

    let (a, b) = UnixStream::pair().expect("pair");
    let pair = (ino(&a), ino(&b));
    keep.push(Box::new(a));
    keep.push(Box::new(b));

    let (sa, sb): (OwnedFd, OwnedFd) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .expect("seqpacket pair");
    let seqpair = (ino(&sa), ino(&sb));
    keep.push(Box::new(sa));
    keep.push(Box::new(sb));

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a sock");
    let ul = UnixListener::bind(&path).expect("bind unix");
    let unix_path = ino(&ul);
    keep.push(Box::new(ul));

    let name = format!("fdiff test {} {}", pid(), unix_path);
    let addr = UnixAddr::from_abstract_name(name.as_bytes()).expect("abstract");
    let al = UnixListener::bind_addr(&addr).expect("bind abstract");
    let unix_abstract = ino(&al);
    keep.push(Box::new(al));

    let dg = UnixDatagram::unbound().expect("dgram");
    let unix_dgram = ino(&dg);
    keep.push(Box::new(dg));

    let tcp6 = TcpListener::bind("[::1]:0").ok().map(|l| {
        let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
        let i = ino(&l);
        keep.push(Box::new(l));
        (i, port)
    });

    // Dual-stack: a v4 client accepted on an AF_INET6 listener has a v4-mapped address.
    let mut mapped = None;
    if let Ok(l6) = TcpListener::bind("[::]:0") {
        let port = l6.local_addr().map(|a| a.port()).unwrap_or(0);
        if let Ok(c) = TcpStream::connect(("127.0.0.1", port)) {
            let (s6, _) = l6.accept().expect("accept v6");
            mapped = Some(ino(&s6));
            keep.push(Box::new(c));
            keep.push(Box::new(s6));
        }
        keep.push(Box::new(l6));
    }
    let mut udp6 = Vec::new();
    if let (Ok(a), Ok(b)) = (UdpSocket::bind("[::1]:0"), UdpSocket::bind("[::1]:0")) {
        if let Ok(addr) = a.local_addr() {
            b.connect(addr).expect("udp6 connect");
        }
        udp6.extend([ino(&a), ino(&b)]);
        keep.push(Box::new(a));
        keep.push(Box::new(b));
    }

    let mut nl = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE).expect("netlink");
    // The kernel lists netlink sockets only once bound (explicitly or by a first send).
    nl.bind_auto().expect("netlink bind");
    let netlink_route = ino(&nl);
    keep.push(Box::new(nl));

    let fds = fds_of(&keep);
    Fixture {
        _keep: keep,
        fds,
        _dir: dir,
        tcp_listen,
        tcp_client,
        tcp_accepted,
        tcp_port,
        client_port,
        udp_unconn,
        udp_unconn_port,
        udp_conn,
        pair,
        seqpair,
        unix_path,
        path: path.to_string_lossy().into_owned(),
        unix_abstract,
        abstract_name: format!("@{name}"),
        unix_dgram,
        tcp6,
        netlink_route,
        mapped,
        udp6,
    }
}

impl Fixture {
    fn inodes(&self) -> Vec<u64> {
        let mut v = vec![
            self.tcp_listen,
            self.tcp_client,
            self.tcp_accepted,
            self.udp_unconn,
            self.udp_conn,
            self.pair.0,
            self.pair.1,
            self.seqpair.0,
            self.seqpair.1,
            self.unix_path,
            self.unix_abstract,
            self.unix_dgram,
            self.netlink_route,
        ];
        v.extend(self.tcp6.map(|t| t.0));
        v.extend(self.mapped);
        v.extend(&self.udp6);
        v
    }

    /// Checks everything both sources know.
    fn check_common(&self, v: &[SocketDetail]) {
        let p = self.tcp_port;
        let l = get(v, self.tcp_listen);
        assert_eq!(l.proto, "tcp");
        assert_eq!(l.local, Some(format!("127.0.0.1:{p}")));
        assert_eq!(l.remote, None);
        assert_eq!(l.state.as_deref(), Some("LISTEN"));
        assert_eq!(l.socket_type.as_deref(), Some("stream"));
        let c = get(v, self.tcp_client);
        assert_eq!(c.local, Some(format!("127.0.0.1:{}", self.client_port)));
        assert_eq!(c.remote, Some(format!("127.0.0.1:{p}")));
        assert_eq!(c.state.as_deref(), Some("ESTABLISHED"));
        let a = get(v, self.tcp_accepted);
        assert_eq!(a.local, Some(format!("127.0.0.1:{p}")));
        assert_eq!(a.remote, Some(format!("127.0.0.1:{}", self.client_port)));

        let u = get(v, self.udp_unconn);
        assert_eq!(u.proto, "udp");
        assert_eq!(u.local, Some(format!("127.0.0.1:{}", self.udp_unconn_port)));
        assert_eq!(u.remote, None);
        assert_eq!(u.state.as_deref(), Some("UNCONN"));
        let uc = get(v, self.udp_conn);
        assert_eq!(
            uc.remote,
            Some(format!("127.0.0.1:{}", self.udp_unconn_port))
        );
        assert_eq!(uc.state.as_deref(), Some("ESTABLISHED"));

        for i in [self.pair.0, self.pair.1] {
            let s = get(v, i);
            assert_eq!(s.proto, "unix");
            assert_eq!(s.socket_type.as_deref(), Some("stream"));
            assert_eq!(s.state.as_deref(), Some("ESTABLISHED"));
            assert_eq!(s.path, None);
        }
        for i in [self.seqpair.0, self.seqpair.1] {
            assert_eq!(get(v, i).socket_type.as_deref(), Some("seqpacket"));
        }
        let up = get(v, self.unix_path);
        assert_eq!(up.path.as_deref(), Some(self.path.as_str()));
        assert_eq!(up.state.as_deref(), Some("LISTEN"));
        let ab = get(v, self.unix_abstract);
        assert_eq!(ab.path.as_deref(), Some(self.abstract_name.as_str()));
        assert_eq!(ab.state.as_deref(), Some("LISTEN"));
        let dg = get(v, self.unix_dgram);
        assert_eq!(dg.socket_type.as_deref(), Some("dgram"));
        assert_eq!(dg.state.as_deref(), Some("UNCONNECTED"));
        assert_eq!(dg.path, None);

        if let Some((i, port)) = self.tcp6 {
            let s = get(v, i);
            assert_eq!(s.proto, "tcp6");
            assert_eq!(s.local, Some(format!("[::1]:{port}")));
            assert_eq!(s.state.as_deref(), Some("LISTEN"));
        }
        let nl = get(v, self.netlink_route);
        assert_eq!(nl.proto, "netlink");
        assert_eq!(nl.netlink_family.as_deref(), Some("route"));
    }
}

#[test]
fn netlink_decodes_own_sockets() {
    let f = fixture();
    let inodes = f.inodes();
    let mut dec = SocketDecoder::new();
    let v = dec.decode_with(pid(), &inodes, Backend::NetlinkOnly);
    assert_eq!(v.iter().map(|d| d.inode).collect::<Vec<_>>(), inodes);
    f.check_common(&v);
    assert_eq!(get(&v, f.pair.0).peer, Some(f.pair.1));
    assert_eq!(get(&v, f.pair.1).peer, Some(f.pair.0));
    assert_eq!(get(&v, f.seqpair.0).peer, Some(f.seqpair.1));
    assert_eq!(get(&v, f.unix_path).peer, None);
    // The decoder is reused: a second call must work on the same (or a reopened) socket.
    let again = dec.decode_with(pid(), &inodes, Backend::NetlinkOnly);
    assert_eq!(again, v);
}

#[test]
fn proc_decodes_own_sockets_and_agrees() {
    let f = fixture();
    let inodes = f.inodes();
    let mut dec = SocketDecoder::new();
    let proc = dec.decode_with(pid(), &inodes, Backend::ProcOnly);
    f.check_common(&proc);
    assert!(proc.iter().all(|d| d.peer.is_none()));
    let nl = dec.decode_with(pid(), &inodes, Backend::NetlinkOnly);
    let a: Vec<_> = proc.iter().map(comparable).collect();
    let b: Vec<_> = nl.iter().map(comparable).collect();
    assert_eq!(a, b);
}

#[test]
fn auto_uses_netlink_in_own_namespace() {
    let f = fixture();
    let mut dec = SocketDecoder::new();
    let v = dec.decode(pid(), &[f.pair.0]);
    assert_eq!(v.len(), 1);
    // Only sock_diag reports peers, so this shows which path ran.
    assert_eq!(v[0].peer, Some(f.pair.1));
    f.check_common(&dec.decode(pid(), &f.inodes()));
}

#[test]
fn netlink_unavailable_falls_back_to_proc() {
    let f = fixture();
    let mut dec = SocketDecoder::new();
    dec.diag.disable();
    let v = dec.decode(pid(), &f.inodes());
    f.check_common(&v);
    assert_eq!(
        get(&v, f.pair.0).peer,
        None,
        "peers come only from sock_diag"
    );
}

#[test]
fn other_namespace_is_asked_inside_it() {
    let f = fixture();
    let mut dec = SocketDecoder::new();
    // As if our own namespace were another one: it is joined by a helper thread (root), or,
    // where that is refused, read from /proc.
    dec.self_netns = None;
    let v = dec.decode(pid(), &f.inodes());
    f.check_common(&v);
    let root = rustix::process::geteuid().is_root();
    let want = root.then_some(f.pair.1);
    assert_eq!(get(&v, f.pair.0).peer, want, "peers only from sock_diag");
    if root {
        assert_eq!(
            dec.foreign.len(),
            1,
            "one netlink socket for that namespace"
        );
    }
}

/// Issue 9 #15 on the real /proc/net/unix: a socket named with a newline and a forged row that
/// claims our socketpair's end is "@SPOOFED" never makes /proc parsing print the forgery; its
/// own name is cut at the newline at most.
#[test]
fn issue9_15_proc_fallback_is_not_fooled_by_a_newline_in_a_name() {
    let (a, _b) = UnixStream::pair().expect("pair");
    let victim = ino(&a);
    let path = format!(
        "/tmp/fdiff-nl-{}\n0000000000000000: 00000002 00000000 00010000 0001 01 {victim} @SPOOFED",
        pid()
    );
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).expect("bind");
    let _ = std::fs::remove_file(&path);
    let mut dec = SocketDecoder::new();
    let v = dec.decode_with(pid(), &[victim, ino(&l)], Backend::ProcOnly);
    assert_ne!(v[0].path.as_deref(), Some("@SPOOFED"), "{:?}", v[0]);
    assert_ne!(v[0].state.as_deref(), Some("LISTEN"), "{:?}", v[0]);
    if v[0].proto == "unix" {
        assert_eq!(v[0].path, None);
        assert_eq!(v[0].state.as_deref(), Some("ESTABLISHED"));
    }
    let cut = format!("/tmp/fdiff-nl-{}", pid());
    assert_eq!(
        v[1].path.as_deref(),
        Some(cut.as_str()),
        "cut at the newline"
    );
    // sock_diag tells the exact name.
    let exact = dec.decode_with(pid(), &[ino(&l)], Backend::NetlinkOnly);
    assert_eq!(exact[0].path.as_deref(), Some(path.as_str()));
}

#[test]
fn order_duplicates_and_unknown() {
    let f = fixture();
    let file = tempfile::tempfile().expect("tempfile");
    let not_a_socket = ino(&file);
    let inodes = [f.pair.1, not_a_socket, f.tcp_listen, f.pair.1];
    let mut dec = SocketDecoder::new();
    for backend in [Backend::Auto, Backend::ProcOnly] {
        let v = dec.decode_with(pid(), &inodes, backend);
        assert_eq!(v.len(), 4);
        assert_eq!(v[0], v[3]);
        assert_eq!(v[0].proto, "unix");
        assert_eq!(
            v[1],
            SocketDetail {
                proto: "unknown".to_string(),
                inode: not_a_socket,
                ..Default::default()
            }
        );
        assert_eq!(v[2].proto, "tcp");
    }
    assert!(dec.decode(pid(), &[]).is_empty());
}

#[test]
fn many_unix_sockets_take_the_dump_path() {
    let mut pairs = Vec::new();
    for _ in 0..(netlink::UNIX_EXACT_MAX / 2 + 8) {
        pairs.push(UnixStream::pair().expect("pair"));
    }
    let inodes: Vec<u64> = pairs.iter().flat_map(|(a, b)| [ino(a), ino(b)]).collect();
    assert!(inodes.len() > netlink::UNIX_EXACT_MAX);
    let mut dec = SocketDecoder::new();
    let v = dec.decode_with(pid(), &inodes, Backend::NetlinkOnly);
    for pair in v.chunks(2) {
        assert_eq!(pair[0].proto, "unix");
        assert_eq!(pair[0].peer, Some(pair[1].inode));
        assert_eq!(pair[1].peer, Some(pair[0].inode));
    }
}

#[test]
fn missing_process_gives_unknown() {
    let mut dec = SocketDecoder::new();
    // Pid numbers stop well below i32::MAX (pid_max is at most 4194304).
    let v = dec.decode(i32::MAX, &[12345]);
    assert_eq!(v[0].proto, "unknown");
}

fn is_unix(d: &SocketDetail) -> bool {
    d.proto == "unix"
}

#[test]
fn getfd_agrees_with_the_dump_field_by_field() {
    let f = fixture();
    let mut dec = SocketDecoder::new();
    let inodes: Vec<u64> = f.fds.iter().map(|p| p.1).collect();
    let dump = dec.decode_with(pid(), &inodes, Backend::NetlinkOnly);
    let getfd = dec.decode_fds_with(pid(), &f.fds, Backend::GetfdOnly);
    assert_eq!(getfd.len(), dump.len());
    let mut compared = 0;
    for (g, d) in getfd.iter().zip(&dump) {
        if is_unix(d) {
            // Left to sock_diag (only it knows the peer).
            assert_eq!(g.proto, "unknown", "{d:?}");
        } else {
            assert_ne!(d.proto, "unknown");
            assert_eq!(g, d);
            compared += 1;
        }
    }
    // tcp listen/client/accepted, udp x2, netlink, at least.
    assert!(compared >= 6, "{compared}");
    if let Some(m) = f.mapped {
        let d = get(&getfd, m);
        assert_eq!(d.proto, "tcp6");
        assert!(
            d.local
                .as_deref()
                .is_some_and(|l| l.starts_with("[::ffff:127.0.0.1]:"))
        );
    }
    for &u in &f.udp6 {
        assert_eq!(get(&getfd, u).proto, "udp6");
    }
    // Auto: unix by sock_diag (peers included), the rest by duplicate; same answers.
    f.check_common(&dec.decode_fds(pid(), &f.fds));
    assert_eq!(dec.decode_fds(pid(), &f.fds), dump);
}

#[test]
fn decode_fds_without_getfd_is_the_dump() {
    let f = fixture();
    let mut dec = SocketDecoder::new();
    dec.getfd.disable();
    let inodes: Vec<u64> = f.fds.iter().map(|p| p.1).collect();
    let dump = dec.decode_with(pid(), &inodes, Backend::NetlinkOnly);
    assert_eq!(dec.decode_fds(pid(), &f.fds), dump);
    assert!(
        dec.decode_fds_with(pid(), &f.fds, Backend::GetfdOnly)
            .iter()
            .all(|d| d.proto == "unknown")
    );
}

#[test]
fn a_reused_fd_number_is_not_misdecoded() {
    let f = fixture();
    let client_fd = f
        .fds
        .iter()
        .find(|p| p.1 == f.tcp_client)
        .expect("client fd")
        .0;
    let mut dec = SocketDecoder::new();
    // The listener's inode at the client's fd, as if the fd number had been reused.
    let wrong = [(client_fd, f.tcp_listen), (i32::MAX, f.udp_unconn)];
    let only = dec.decode_fds_with(pid(), &wrong, Backend::GetfdOnly);
    assert!(only.iter().all(|d| d.proto == "unknown"), "{only:?}");
    let auto = dec.decode_fds(pid(), &wrong);
    let dump = dec.decode_with(pid(), &[f.tcp_listen, f.udp_unconn], Backend::NetlinkOnly);
    assert_eq!(auto, dump);
    assert_eq!(auto[0].state.as_deref(), Some("LISTEN"));
    assert_eq!(auto[1].proto, "udp");
    // The path is still used afterwards.
    assert!(dec.getfd.usable(pid()));
    let (mut wanted, mut found) = (HashSet::from_iter([f.tcp_listen]), HashMap::default());
    let rest = dec
        .getfd
        .lookup(pid(), &wrong[..1], &mut wanted, &mut found, true);
    assert_eq!(rest.families(), Family::ALL, "unknown kind: every table");
}

#[test]
fn leftovers_are_searched_only_where_they_can_be() {
    let f = fixture();
    let mut dec = SocketDecoder::new();
    let unix: Vec<(i32, u64)> = f
        .fds
        .iter()
        .copied()
        .filter(|p| p.1 == f.pair.0 || p.1 == f.unix_dgram)
        .collect();
    assert_eq!(unix.len(), 2);
    let mut wanted: HashSet<u64> = unix.iter().map(|p| p.1).collect();
    let mut found = HashMap::default();
    let rest = dec
        .getfd
        .lookup(pid(), &unix, &mut wanted, &mut found, true);
    assert_eq!(rest.families(), [Family::Unix]);
    assert_eq!(wanted.len(), 2);
    // Auto: those go to sock_diag, which knows the peer.
    let v = dec.decode_fds(pid(), &unix);
    assert_eq!(v[0].peer, Some(f.pair.1));
    assert_eq!(v[1].socket_type.as_deref(), Some("dgram"));
}

#[test]
fn getfd_decodes_sockets_no_table_lists() {
    // Neither bound nor connected: in no hash table, so no dump or /proc table has it.
    let s: OwnedFd = rustix::net::socket_with(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .expect("socket");
    let mut dec = SocketDecoder::new();
    let v = dec.decode_fds(pid(), &[pair_of(&s)]);
    assert_eq!(v[0].proto, "tcp");
    assert_eq!(v[0].state.as_deref(), Some("CLOSE"));
    assert_eq!(v[0].local.as_deref(), Some("0.0.0.0:0"));
    assert_eq!(v[0].remote, None);
    let dump = dec.decode_with(pid(), &[ino(&s)], Backend::Auto);
    assert_eq!(dump[0].proto, "unknown");
}

/// A process with 10 new TCP sockets next to ~5,000 established sockets it does not want:
/// `cargo test --lib snapshot::socket::tests::timing_getfd -- --ignored --nocapture`
#[test]
#[ignore]
fn timing_getfd_vs_dump() {
    use std::time::Instant;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut others = Vec::new();
    for _ in 0..2500 {
        let c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (s, _) = listener.accept().expect("accept");
        others.push((c, s));
    }
    let mut mine = Vec::new();
    for _ in 0..5 {
        let c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (s, _) = listener.accept().expect("accept");
        mine.push(c);
        mine.push(s);
    }
    let socks: Vec<(i32, u64)> = mine.iter().map(pair_of).collect();
    let inodes: Vec<u64> = socks.iter().map(|p| p.1).collect();
    println!("{} other sockets, {} wanted", others.len() * 2, socks.len());
    let mut dec = SocketDecoder::new();
    let rounds = 50;
    let a = dec.decode_fds(pid(), &socks);
    let b = dec.decode_with(pid(), &inodes, Backend::Auto);
    assert_eq!(a, b);
    let t = Instant::now();
    for _ in 0..rounds {
        let v = dec.decode_fds(pid(), &socks);
        assert!(v.iter().all(|d| d.proto == "tcp"));
    }
    let getfd = t.elapsed() / rounds;
    let t = Instant::now();
    for _ in 0..rounds {
        let v = dec.decode_with(pid(), &inodes, Backend::Auto);
        assert!(v.iter().all(|d| d.proto == "tcp"));
    }
    let dump = t.elapsed() / rounds;
    let t = Instant::now();
    for _ in 0..rounds {
        dec.decode_fds_with(pid(), &socks, Backend::GetfdOnly);
    }
    let only = t.elapsed() / rounds;
    println!(
        "10 new tcp: decode_fds {getfd:>10.2?} (of which duplicates {only:>10.2?})  \
         dump {dump:>10.2?}  dump/decode_fds = {:.1}",
        dump.as_secs_f64() / getfd.as_secs_f64()
    );
    // What the duplicates add for sockets they hand on: unix, which sock_diag still decodes.
    let pairs: Vec<_> = (0..5).map(|_| UnixStream::pair().expect("pair")).collect();
    let unix: Vec<(i32, u64)> = pairs
        .iter()
        .flat_map(|(a, b)| [pair_of(a), pair_of(b)])
        .collect();
    let unix_inodes: Vec<u64> = unix.iter().map(|p| p.1).collect();
    let t = Instant::now();
    for _ in 0..rounds {
        dec.decode_fds(pid(), &unix);
    }
    let with = t.elapsed() / rounds;
    let t = Instant::now();
    for _ in 0..rounds {
        dec.decode_with(pid(), &unix_inodes, Backend::Auto);
    }
    let without = t.elapsed() / rounds;
    println!("10 new unix: decode_fds {with:>10.2?}  decode (sock_diag only) {without:>10.2?}");
}

/// Timing of netlink against /proc on ~2,000 in-process sockets:
/// `cargo test --lib snapshot::socket::tests::timing -- --ignored --nocapture`
#[test]
#[ignore]
fn timing_netlink_vs_proc() {
    use std::time::Instant;
    let mut keep_unix = Vec::new();
    for _ in 0..600 {
        keep_unix.push(UnixStream::pair().expect("pair"));
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut keep_tcp = Vec::new();
    for _ in 0..400 {
        let c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (s, _) = listener.accept().expect("accept");
        keep_tcp.push((c, s));
    }
    let unix: Vec<u64> = keep_unix
        .iter()
        .flat_map(|(a, b)| [ino(a), ino(b)])
        .collect();
    let tcp: Vec<u64> = keep_tcp
        .iter()
        .flat_map(|(a, b)| [ino(a), ino(b)])
        .collect();
    let mut all = unix.clone();
    all.extend(&tcp);
    all.push(ino(&listener));
    println!("{} sockets", all.len());

    let mut dec = SocketDecoder::new();
    let scenarios: [(&str, Vec<u64>); 4] = [
        ("all sockets", all.clone()),
        ("10 new unix", unix[..10].to_vec()),
        ("10 new tcp", tcp[..10].to_vec()),
        ("5 unix + 5 tcp", [&unix[..5], &tcp[..5]].concat()),
    ];
    for (name, inodes) in &scenarios {
        let time = |dec: &mut SocketDecoder, backend| {
            let rounds = 20;
            let _ = dec.decode_with(pid(), inodes, backend);
            let t = Instant::now();
            for _ in 0..rounds {
                let v = dec.decode_with(pid(), inodes, backend);
                assert!(v.iter().all(|d| d.proto != "unknown"));
            }
            t.elapsed() / rounds
        };
        let nl = time(&mut dec, Backend::NetlinkOnly);
        let pr = time(&mut dec, Backend::ProcOnly);
        println!(
            "{name:>16}: netlink {nl:>10.2?}  /proc {pr:>10.2?}  netlink/proc = {:.3}",
            nl.as_secs_f64() / pr.as_secs_f64()
        );
    }
}

#[test]
fn sockstat_fields() {
    let text = "sockets: used 212\nTCP: inuse 5 orphan 0 tw 1300 alloc 7 mem 1\nUDP: inuse 3 mem 0\nUDPLITE: inuse 0\nTCP6: inuse 0\nUDP6: inuse 1\n";
    assert_eq!(super::sockstat_field(text, "TCP:", "inuse"), 5);
    assert_eq!(super::sockstat_field(text, "TCP:", "tw"), 1300);
    assert_eq!(super::sockstat_field(text, "TCP6:", "inuse"), 0);
    assert_eq!(
        super::sockstat_field(text, "UDP:", "inuse"),
        3,
        "UDPLITE is another line"
    );
    assert_eq!(
        super::sockstat_field("garbage\nTCP: inuse x tw\n", "TCP:", "inuse"),
        0
    );
}

/// Issue 16: what k wanted unix sockets cost by exact requests and by one dump, alone and
/// beside 15,000 unbound unix sockets (the kernel's exact lookup walks the namespace's whole
/// unix table per request; the dump walks it once but fills a reply per socket):
/// `cargo test -p fdiff-core --lib issue16_unix_exact_vs_dump -- --ignored --nocapture`
#[test]
#[ignore]
fn issue16_unix_exact_vs_dump() {
    use std::time::{Duration, Instant};
    if let Some(l) = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum {
        let _ = rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit {
                current: Some(l),
                maximum: Some(l),
            },
        );
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let pairs: Vec<_> = (0..32).map(|_| UnixStream::pair().expect("pair")).collect();
    let all: Vec<u64> = pairs.iter().flat_map(|(a, b)| [ino(a), ino(b)]).collect();
    let mut background: Vec<OwnedFd> = Vec::new();
    for extra in [0usize, 15_000] {
        while background.len() < extra {
            match rustix::net::socket(
                rustix::net::AddressFamily::UNIX,
                rustix::net::SocketType::STREAM,
                None,
            ) {
                Ok(s) => background.push(s),
                Err(e) => {
                    println!("stopped at {} background sockets: {e}", background.len());
                    break;
                }
            }
        }
        let mut diag = netlink::Diag::new();
        for k in [1usize, 2, 4, 10, 16, 32, 64] {
            let time = |diag: &mut netlink::Diag, exact: bool| {
                let mut v = Vec::new();
                for _ in 0..15 {
                    let mut wanted: HashSet<u64> = all[..k].iter().copied().collect();
                    let mut found = HashMap::default();
                    let t = Instant::now();
                    let r = if exact {
                        diag.unix_exact(&mut wanted, &mut found)
                    } else {
                        diag.unix_dump(&mut wanted, &mut found)
                    };
                    v.push(t.elapsed());
                    assert!(r.is_ok() && wanted.is_empty(), "{k} {exact}");
                }
                median(v)
            };
            let (e, d) = (time(&mut diag, true), time(&mut diag, false));
            println!(
                "{} background, {k:>2} wanted: exact {e:>10.2?}  dump {d:>10.2?}  exact/dump {:.2}",
                background.len(),
                e.as_secs_f64() / d.as_secs_f64()
            );
        }
    }
}

#[test]
fn issue16_ipv4_endpoints_are_written_as_display_writes_them() {
    use std::net::Ipv4Addr;
    for (ip, port) in [
        (Ipv4Addr::new(0, 0, 0, 0), 0u16),
        (Ipv4Addr::new(127, 0, 0, 1), 8080),
        (Ipv4Addr::new(255, 255, 255, 255), 65535),
        (Ipv4Addr::new(10, 9, 100, 1), 10),
    ] {
        assert_eq!(fmt_endpoint(IpAddr::V4(ip), port), format!("{ip}:{port}"));
    }
}
