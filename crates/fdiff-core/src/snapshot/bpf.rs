//! bpf-map, bpf-prog and bpf-link decoders: id, type and tag from fdinfo; the name from the
//! kernel (`BPF_OBJ_GET_INFO_BY_FD` on an fd opened by id, which needs CAP_SYS_ADMIN, as for
//! lsfd; without it the name is simply left out).

use super::fdinfo_text::{field, num};
use super::model::AnonDetail;

/// Which bpf object an anon inode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Obj {
    Map,
    Prog,
    Link,
}

impl Obj {
    pub(crate) fn of(subtype: &str) -> Option<Obj> {
        match subtype {
            "bpf-map" => Some(Obj::Map),
            "bpf-prog" => Some(Obj::Prog),
            "bpf-link" => Some(Obj::Link),
            _ => None,
        }
    }
}

/// Fills the bpf fields of `d` from fdinfo; `name` looks an object's name up by id (a seam
/// for tests; [`kernel_name`] in real use).
pub(crate) fn decode(
    d: &mut AnonDetail,
    obj: Obj,
    text: &str,
    name: impl Fn(Obj, u32) -> Option<String>,
) {
    match obj {
        Obj::Map => {
            d.id = num(text, "map_id:");
            d.bpf_type = num(text, "map_type:").map(map_type_name);
        }
        Obj::Prog => {
            d.id = num(text, "prog_id:");
            d.bpf_type = num(text, "prog_type:").map(prog_type_name);
            d.bpf_tag = field(text, "prog_tag:").map(str::to_owned);
        }
        Obj::Link => {
            d.id = num(text, "link_id:");
            // The kernel prints the link type by name already ("raw_tracepoint").
            d.bpf_type = field(text, "link_type:").map(str::to_owned);
            d.prog_id = num(text, "prog_id:");
        }
    }
    if obj != Obj::Link {
        d.bpf_name =
            d.id.and_then(|id| u32::try_from(id).ok())
                .and_then(|id| name(obj, id))
                .filter(|n| !n.is_empty());
    }
}

fn map_type_name(t: u32) -> String {
    const NAMES: [&str; 34] = [
        "unspec",
        "hash",
        "array",
        "prog_array",
        "perf_event_array",
        "percpu_hash",
        "percpu_array",
        "stack_trace",
        "cgroup_array",
        "lru_hash",
        "lru_percpu_hash",
        "lpm_trie",
        "array_of_maps",
        "hash_of_maps",
        "devmap",
        "sockmap",
        "cpumap",
        "xskmap",
        "sockhash",
        "cgroup_storage",
        "reuseport_sockarray",
        "percpu_cgroup_storage",
        "queue",
        "stack",
        "sk_storage",
        "devmap_hash",
        "struct_ops",
        "ringbuf",
        "inode_storage",
        "task_storage",
        "bloom_filter",
        "user_ringbuf",
        "cgrp_storage",
        "arena",
    ];
    NAMES
        .get(t as usize)
        .map_or_else(|| t.to_string(), |n| (*n).to_owned())
}

fn prog_type_name(t: u32) -> String {
    const NAMES: [&str; 33] = [
        "unspec",
        "socket_filter",
        "kprobe",
        "sched_cls",
        "sched_act",
        "tracepoint",
        "xdp",
        "perf_event",
        "cgroup_skb",
        "cgroup_sock",
        "lwt_in",
        "lwt_out",
        "lwt_xmit",
        "sock_ops",
        "sk_skb",
        "cgroup_device",
        "sk_msg",
        "raw_tracepoint",
        "cgroup_sock_addr",
        "lwt_seg6local",
        "lirc_mode2",
        "sk_reuseport",
        "flow_dissector",
        "cgroup_sysctl",
        "raw_tracepoint_writable",
        "cgroup_sockopt",
        "tracing",
        "struct_ops",
        "ext",
        "lsm",
        "sk_lookup",
        "syscall",
        "netfilter",
    ];
    NAMES
        .get(t as usize)
        .map_or_else(|| t.to_string(), |n| (*n).to_owned())
}

// bpf(2) commands and the offset of `name` in bpf_map_info / bpf_prog_info (linux/bpf.h).
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_MAP_GET_FD_BY_ID: libc::c_long = 14;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const MAP_INFO_NAME: usize = 24;
const PROG_INFO_NAME: usize = 64;
const OBJ_NAME_LEN: usize = 16;

/// The name of bpf map or program `id`, asked of the kernel; `None` without CAP_SYS_ADMIN,
/// when the object is gone, or on a kernel without bpf.
pub(crate) fn kernel_name(obj: Obj, id: u32) -> Option<String> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let (cmd, name_at) = match obj {
        Obj::Map => (BPF_MAP_GET_FD_BY_ID, MAP_INFO_NAME),
        Obj::Prog => (BPF_PROG_GET_FD_BY_ID, PROG_INFO_NAME),
        Obj::Link => return None,
    };
    // union bpf_attr for *_GET_FD_BY_ID: { u32 id; u32 next_id; u32 open_flags; }.
    let mut attr = [0u32; 3];
    attr[0] = id;
    // SAFETY: bpf(2) reads `size` bytes of `attr`, which is that long; it returns an fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    let fd = i32::try_from(fd).ok().filter(|&fd| fd >= 0)?;
    // SAFETY: the kernel just returned this fd; nobody else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut info = [0u8; 256];
    // union bpf_attr for OBJ_GET_INFO_BY_FD: { u32 bpf_fd; u32 info_len; u64 info; }.
    #[repr(C)]
    struct InfoAttr {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    let mut a = InfoAttr {
        bpf_fd: u32::try_from(fd.as_raw_fd()).ok()?,
        info_len: info.len() as u32,
        info: info.as_mut_ptr() as u64,
    };
    // SAFETY: the kernel writes at most `info_len` bytes to `info`, which is that long.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            &raw mut a,
            std::mem::size_of::<InfoAttr>(),
        )
    };
    if r != 0 {
        return None;
    }
    let raw = info.get(name_at..name_at + OBJ_NAME_LEN)?;
    let len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    Some(String::from_utf8_lossy(&raw[..len]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        crate::snapshot::testdata("fdinfo", name)
    }

    #[test]
    fn map_prog_and_link() {
        let named = |o: Obj, id: u32| Some(format!("{o:?}{id}"));
        let mut m = AnonDetail::default();
        decode(&mut m, Obj::Map, &fixture("bpf-map.txt"), named);
        assert_eq!(m.id, Some(4));
        assert_eq!(m.bpf_type.as_deref(), Some("array"));
        assert_eq!(m.bpf_name.as_deref(), Some("Map4"));
        let mut p = AnonDetail::default();
        decode(&mut p, Obj::Prog, &fixture("bpf-prog.txt"), named);
        assert_eq!(p.id, Some(6));
        assert_eq!(p.bpf_type.as_deref(), Some("kprobe"));
        assert_eq!(p.bpf_tag.as_deref(), Some("59f4a931744dcdc6"));
        assert_eq!(p.bpf_name.as_deref(), Some("Prog6"));
        let mut l = AnonDetail::default();
        decode(&mut l, Obj::Link, &fixture("bpf-link.txt"), named);
        assert_eq!((l.id, l.prog_id), (Some(7), Some(6)));
        assert_eq!(l.bpf_type.as_deref(), Some("raw_tracepoint"));
        assert_eq!(l.bpf_name, None);
    }

    #[test]
    fn unknown_types_keep_their_number() {
        assert_eq!(map_type_name(999), "999");
        assert_eq!(prog_type_name(32), "netfilter");
        let mut m = AnonDetail::default();
        decode(&mut m, Obj::Map, "map_type:\tx\n", |_, _| {
            panic!("no id, no lookup")
        });
        assert_eq!((m.id, m.bpf_type), (None, None));
    }
}
