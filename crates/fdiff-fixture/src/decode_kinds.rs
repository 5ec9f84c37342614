//! The `decode-kinds` factory (issue 16): fds of the kinds and details that only fdinfo, nsfs
//! or the socket's own options tell, each reported with what a decoder should find.
//!
//! Kinds that need a privilege or a kernel setting the machine may lack (raw and packet
//! sockets need CAP_NET_RAW, ping sockets a `ping_group_range` that admits us) are made when
//! they can be and reported under `"skipped"` with the reason otherwise, so a test can say
//! what it could not check instead of passing without checking it.

use serde_json::{Map, Value, json};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Opens every kind; returns the fds to hold and `{"ok": true, "fds": {...}, "skipped": {...}}`.
pub(crate) fn open(dir: &Path) -> io::Result<(Vec<OwnedFd>, Value)> {
    let mut held = Vec::new();
    let mut fds = Map::new();
    let mut skipped = Map::new();
    let mut put = |held: &mut Vec<OwnedFd>, name: &str, fd: OwnedFd, mut v: Value| {
        if let Value::Object(m) = &mut v {
            m.insert("fd".into(), json!(fd.as_raw_fd()));
        }
        fds.insert(name.into(), v);
        held.push(fd);
    };
    let pid = std::process::id();

    for ns in ["net", "user"] {
        let path = format!("/proc/self/ns/{ns}");
        let fd = OwnedFd::from(std::fs::File::open(&path)?);
        let ino = std::fs::metadata(&path)?.ino();
        put(
            &mut held,
            &format!("ns_{ns}"),
            fd,
            json!({"ns_type": ns, "inode": ino}),
        );
    }

    // Unlinked right away, so nothing is left behind whatever happens to this process.
    let name = format!("/fdiff-mq-{pid}-{}", unique());
    let fd = mq_open(&name)?;
    put(&mut held, "mqueue", fd, json!({"path": name}));

    let link = dir.join("a-symlink");
    std::os::unix::fs::symlink("/nonexistent/target", &link)?;
    let fd = open_path(&link, libc::O_PATH | libc::O_NOFOLLOW)?;
    let ino = std::fs::symlink_metadata(&link)?.ino();
    put(
        &mut held,
        "symlink",
        fd,
        json!({"path": path_str(&link), "inode": ino}),
    );

    // SAFETY: plain syscalls; each returns a new fd or -1.
    let efd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) })?;
    put(&mut held, "eventfd", efd, json!({}));

    // SAFETY: as above.
    let pidfd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) as libc::c_int })?;
    let comm = std::fs::read_to_string("/proc/self/comm")?;
    put(
        &mut held,
        "pidfd",
        pidfd,
        json!({"target_pid": pid, "target_comm": comm.trim_end()}),
    );

    // SAFETY: as above.
    let ifd = cvt(unsafe { libc::inotify_init1(libc::IN_CLOEXEC) })?;
    let watched = CString::new(dir.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
    // SAFETY: a valid fd and NUL-terminated path.
    if unsafe { libc::inotify_add_watch(ifd.as_raw_fd(), watched.as_ptr(), libc::IN_CREATE) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let meta = std::fs::metadata(dir)?;
    let dev = format!("{}:{}", libc::major(meta.dev()), libc::minor(meta.dev()));
    put(
        &mut held,
        "inotify",
        ifd,
        json!({"dev": dev, "inode": meta.ino()}),
    );

    // SAFETY: as above.
    let ptm = cvt(unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) })?;
    let mut index: libc::c_int = -1;
    // SAFETY: TIOCGPTN writes one int.
    if unsafe { libc::ioctl(ptm.as_raw_fd(), libc::TIOCGPTN, &mut index) } != 0 {
        return Err(io::Error::last_os_error());
    }
    put(&mut held, "ptmx", ptm, json!({"tty_index": index}));

    let fifo = dir.join("a-fifo");
    let c = CString::new(fifo.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // O_RDWR: a FIFO opened for both ends never blocks in open(2).
    let fd = open_path(&fifo, libc::O_RDWR)?;
    std::fs::remove_file(&fifo)?;
    put(
        &mut held,
        "deleted_fifo",
        fd,
        json!({"path": path_str(&fifo)}),
    );

    // A socketpair whose first end shut its sending side: that end is "w", its peer "r".
    let (a, b) = socketpair()?;
    // SAFETY: a valid socket.
    if unsafe { libc::shutdown(a.as_raw_fd(), libc::SHUT_WR) } != 0 {
        return Err(io::Error::last_os_error());
    }
    put(&mut held, "shut_wr", a, json!({"shutdown": "w"}));
    put(&mut held, "shut_peer", b, json!({"shutdown": "r"}));

    let nl = socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE)?;
    // RTMGRP_LINK: group 1.
    // SAFETY: sockaddr_nl is plain old data.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as u16;
    sa.nl_groups = 1;
    // SAFETY: `sa` is a sockaddr_nl of the length given.
    let r = unsafe {
        libc::bind(
            nl.as_raw_fd(),
            (&raw const sa).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut len = std::mem::size_of::<libc::sockaddr_nl>() as u32;
    // SAFETY: the kernel writes at most `len` bytes.
    unsafe { libc::getsockname(nl.as_raw_fd(), (&raw mut sa).cast(), &mut len) };
    put(
        &mut held,
        "netlink",
        nl,
        json!({"lport": sa.nl_pid, "groups": 1, "socket_type": "raw"}),
    );

    let (server, client, port) = udplite_pair()?;
    put(
        &mut held,
        "udplite_server",
        server,
        json!({"local": format!("127.0.0.1:{port}"), "state": "UNCONN"}),
    );
    put(
        &mut held,
        "udplite_client",
        client,
        json!({"remote": format!("127.0.0.1:{port}"), "state": "ESTABLISHED"}),
    );

    match socket(libc::AF_INET, libc::SOCK_DGRAM, libc::IPPROTO_ICMP) {
        Ok(fd) => {
            let id = connect_lo(&fd)?;
            put(
                &mut held,
                "ping",
                fd,
                json!({"ping_id": id, "state": "ESTABLISHED"}),
            );
        }
        Err(e) => {
            skipped.insert("ping".into(), json!(e.to_string()));
        }
    }
    match socket(libc::AF_INET, libc::SOCK_RAW, 5) {
        Ok(fd) => {
            connect_lo(&fd)?;
            put(
                &mut held,
                "raw",
                fd,
                json!({"protocol": 5, "state": "ESTABLISHED"}),
            );
        }
        Err(e) => {
            skipped.insert("raw".into(), json!(e.to_string()));
        }
    }
    match packet_on_lo() {
        Ok(fd) => put(
            &mut held,
            "packet",
            fd,
            json!({"protocol": libc::ETH_P_ALL, "iface": "lo"}),
        ),
        Err(e) => {
            skipped.insert("packet".into(), json!(e.to_string()));
        }
    }

    Ok((held, json!({"ok": true, "fds": fds, "skipped": skipped})))
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn cvt(fd: libc::c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn open_path(p: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c = CString::new(p.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
    // SAFETY: a NUL-terminated path; returns an fd or -1.
    cvt(unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) })
}

fn mq_open(name: &str) -> io::Result<OwnedFd> {
    let c = CString::new(name).map_err(io::Error::other)?;
    // SAFETY: a NUL-terminated name; with O_CREAT the mode and a null attr (defaults) follow.
    let fd = unsafe {
        libc::mq_open(
            c.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
            0o600 as libc::mode_t,
            std::ptr::null::<libc::mq_attr>(),
        )
    };
    let fd = cvt(fd)?;
    // SAFETY: as above.
    unsafe { libc::mq_unlink(c.as_ptr()) };
    Ok(fd)
}

fn socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; returns an fd or -1.
    cvt(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) })
}

fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut sv = [0; 2];
    // SAFETY: the kernel writes two fds into `sv`.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            sv.as_mut_ptr(),
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok((cvt(sv[0])?, cvt(sv[1])?))
}

fn lo(port: u16) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain old data.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as u16;
    sa.sin_port = port.to_be();
    sa.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
    sa
}

const SIN_LEN: u32 = std::mem::size_of::<libc::sockaddr_in>() as u32;

/// Connects `fd` to 127.0.0.1 and returns its local port (a ping socket's echo id).
fn connect_lo(fd: &OwnedFd) -> io::Result<u16> {
    let sa = lo(0);
    // SAFETY: `sa` is a sockaddr_in of the length given.
    if unsafe { libc::connect(fd.as_raw_fd(), (&raw const sa).cast(), SIN_LEN) } != 0 {
        return Err(io::Error::last_os_error());
    }
    local_port(fd)
}

fn local_port(fd: &OwnedFd) -> io::Result<u16> {
    let mut sa = lo(0);
    let mut len = SIN_LEN;
    // SAFETY: the kernel writes at most `len` bytes.
    if unsafe { libc::getsockname(fd.as_raw_fd(), (&raw mut sa).cast(), &mut len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u16::from_be(sa.sin_port))
}

/// A bound UDP-Lite socket and a second one connected to it; the server's port.
fn udplite_pair() -> io::Result<(OwnedFd, OwnedFd, u16)> {
    let server = socket(libc::AF_INET, libc::SOCK_DGRAM, libc::IPPROTO_UDPLITE)?;
    let sa = lo(0);
    // SAFETY: `sa` is a sockaddr_in of the length given.
    if unsafe { libc::bind(server.as_raw_fd(), (&raw const sa).cast(), SIN_LEN) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let port = local_port(&server)?;
    let client = socket(libc::AF_INET, libc::SOCK_DGRAM, libc::IPPROTO_UDPLITE)?;
    let to = lo(port);
    // SAFETY: as above.
    if unsafe { libc::connect(client.as_raw_fd(), (&raw const to).cast(), SIN_LEN) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((server, client, port))
}

fn packet_on_lo() -> io::Result<OwnedFd> {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    let fd = socket(libc::AF_PACKET, libc::SOCK_RAW, libc::c_int::from(proto))?;
    let name = CString::new("lo").map_err(io::Error::other)?;
    // SAFETY: a NUL-terminated interface name.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    // SAFETY: sockaddr_ll is plain old data.
    let mut ll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    ll.sll_family = libc::AF_PACKET as u16;
    ll.sll_protocol = proto;
    ll.sll_ifindex = index as i32;
    // SAFETY: `ll` is a sockaddr_ll of the length given.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}
