//! One-line descriptions of an fd for tables and live lines: what it is, and its details.

use super::model::{Detail, FdEntry};
use std::fmt::Write as _;

/// What the fd is: a path, a decoded endpoint, a subtype.
pub fn what(e: &FdEntry) -> String {
    match &e.detail {
        Detail::File(f) => deleted(&f.path, f.deleted),
        Detail::Dir(d) => deleted(&d.path, d.deleted),
        Detail::Device(d) => d.path.clone(),
        Detail::Pipe(p) => match &p.path {
            Some(path) => format!("fifo {path}"),
            None => e.target.clone(),
        },
        Detail::AnonInode(a) => format!("anon_inode:[{}]", a.subtype),
        Detail::Memfd(m) => format!("memfd:{}", m.name),
        Detail::Ns(n) => format!("{}:[{}]", n.ns_type, n.inode),
        Detail::Mqueue(m) => format!("mqueue {}", m.path),
        Detail::Symlink(l) => format!("symlink {}", l.path),
        Detail::Unknown(_) => e.target.clone(),
        Detail::Socket(s) => {
            let mut out = s.proto.clone();
            match s.proto.as_str() {
                "unix" => {
                    if let Some(t) = &s.socket_type {
                        let _ = write!(out, " {t}");
                    }
                    match (&s.path, &s.peer_path) {
                        (Some(p), _) => {
                            let _ = write!(out, " {p}");
                        }
                        (None, Some(peer)) => {
                            let _ = write!(out, " -> {peer}");
                        }
                        (None, None) => out.push_str(" (unnamed)"),
                    }
                }
                "netlink" => {
                    if let Some(f) = &s.netlink_family {
                        let _ = write!(out, " {f}");
                    }
                }
                _ => {
                    if let Some(l) = &s.local {
                        let _ = write!(out, " {l}");
                    }
                    if let Some(r) = s
                        .remote
                        .as_deref()
                        .filter(|r| !r.ends_with(":0") && !r.ends_with(":*"))
                    {
                        let _ = write!(out, " -> {r}");
                    }
                }
            }
            if let Some(st) = &s.state {
                let _ = write!(out, " {st}");
            }
            if s.proto == "unknown" {
                out = format!("socket:[{}]", s.inode);
            }
            out
        }
    }
}

fn deleted(path: &str, deleted: bool) -> String {
    if deleted {
        format!("{path} (deleted)")
    } else {
        path.to_owned()
    }
}

/// The kind's details: size, device numbers, peer, counters.
pub fn details(e: &FdEntry) -> String {
    let mut parts: Vec<String> = Vec::new();
    match &e.detail {
        Detail::File(f) => {
            if let Some(s) = f.size {
                parts.push(format!("{s} bytes"));
            }
            if f.deleted {
                parts.push("deleted".into());
            }
            if let Some(i) = f.inode {
                parts.push(format!("inode {i}"));
            }
        }
        Detail::Dir(d) => {
            if let Some(i) = d.inode {
                parts.push(format!("inode {i}"));
            }
        }
        Detail::Device(d) => {
            parts.push(d.device_type.clone());
            if let Some(r) = &d.rdev {
                parts.push(r.clone());
            }
            if let Some(i) = &d.tun_iface {
                parts.push(format!("iface {i}"));
            }
            if let Some(t) = d.tty_index {
                parts.push(format!("pts {t}"));
            }
        }
        Detail::Socket(s) => {
            parts.push(format!("inode {}", s.inode));
            if let Some(p) = s.peer {
                parts.push(format!("peer {p}"));
            }
        }
        Detail::Pipe(p) => {
            if let Some(i) = p.inode {
                parts.push(format!("inode {i}"));
            }
        }
        Detail::AnonInode(a) => {
            if let Some(c) = a.eventfd_count {
                parts.push(format!("count {c}"));
            }
            if let Some(t) = &a.tfd {
                let list: Vec<String> = t.iter().map(i32::to_string).collect();
                parts.push(format!("watches fds {}", list.join(",")));
            }
            if let Some(c) = &a.clockid {
                parts.push(c.clone());
            }
            if let Some(i) = a.interval_secs {
                parts.push(format!("interval {i}s"));
            }
            if let Some(v) = a.value_secs {
                parts.push(format!("next {v:.3}s"));
            }
            if let Some(m) = &a.sigmask {
                parts.push(m.join(","));
            }
            if let Some(w) = a.watches {
                parts.push(format!("{w} watches"));
            }
            if let Some(p) = a.target_pid {
                parts.push(format!("pid {p}"));
            }
        }
        Detail::Memfd(m) => {
            if let Some(s) = m.size {
                parts.push(format!("{s} bytes"));
            }
        }
        Detail::Ns(n) => parts.push(format!("inode {}", n.inode)),
        Detail::Mqueue(m) => {
            if let Some(i) = m.inode {
                parts.push(format!("inode {i}"));
            }
        }
        Detail::Symlink(l) => {
            if let Some(i) = l.inode {
                parts.push(format!("inode {i}"));
            }
        }
        Detail::Unknown(_) => {}
    }
    parts.join(", ")
}
