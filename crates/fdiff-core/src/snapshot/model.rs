//! The snapshot model: what the open fds of one process looked like at one instant.
//!
//! These types are the contract between every stage: sources build them, diff compares
//! them, track groups them and report renders them. Their JSON form is the
//! `fdiff/snapshot/v1` schema documented in the README.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Value of the `schema` field of a snapshot object.
pub const SNAPSHOT_SCHEMA: &str = "fdiff/snapshot/v1";

/// One process's open fds at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Always [`SNAPSHOT_SCHEMA`].
    pub schema: String,
    /// The process id.
    pub pid: i32,
    /// The command name (/proc/PID/comm, at most 15 bytes).
    pub comm: String,
    /// The command line, one argument per element (empty for a kernel thread).
    pub cmdline: Vec<String>,
    /// Field 22 of /proc/PID/stat (clock ticks after boot): with the pid it names a process
    /// uniquely, so a reused pid is never mistaken for the old process.
    pub start_time: u64,
    /// Unix time in seconds, with fraction.
    pub taken_at: f64,
    /// RLIMIT_NOFILE of the process.
    pub fd_limit: FdLimit,
    /// In fd order. Entries are shared between consecutive snapshots of a watch, so an
    /// unchanged fd costs a reference count, not a copy.
    pub fds: Vec<Arc<FdEntry>>,
    /// Fds that exist but could not be read.
    pub errors: Vec<FdError>,
}

impl Snapshot {
    /// The process this is a snapshot of.
    pub fn proc_id(&self) -> ProcId {
        ProcId {
            pid: self.pid,
            start_time: self.start_time,
        }
    }
}

/// A process is its pid *and* its start time: a reused pid is a new process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProcId {
    /// The process id.
    pub pid: i32,
    /// When it started, as [`Snapshot::start_time`].
    pub start_time: u64,
}

/// RLIMIT_NOFILE of the process; `None` when it could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FdLimit {
    /// The soft limit: an open past it fails with EMFILE. `None` also for unlimited.
    pub soft: Option<u64>,
    /// The hard limit, the most the soft one can be raised to.
    pub hard: Option<u64>,
}

/// An fd that exists but whose link or details could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdError {
    /// The fd number.
    pub fd: i32,
    /// Why it could not be read, as one line.
    pub error: String,
}

/// One open fd: its number, the exact readlink target and what it was decoded to be.
///
/// `repr(C)` keeps `fd` and `target` at the front, on the same cache line as the `Arc`'s
/// reference count: a watch tick reads exactly those three for every fd, and a large `detail`
/// placed first would cost a second cache miss per fd.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[repr(C)]
pub struct FdEntry {
    /// The fd number.
    pub fd: i32,
    /// The readlink text; a lossy rendering when the bytes are not UTF-8.
    pub target: String,
    /// The exact readlink bytes as lowercase hex, present only when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_hex: Option<String>,
    /// What the fd was decoded to be; its variant is the fd's [`Kind`].
    #[serde(flatten)]
    pub detail: Detail,
}

impl FdEntry {
    /// The exact bytes readlink returned for this fd.
    pub fn raw_target(&self) -> std::borrow::Cow<'_, [u8]> {
        match &self.target_hex {
            Some(hex) => std::borrow::Cow::Owned(crate::util::hex_decode(hex).unwrap_or_default()),
            None => std::borrow::Cow::Borrowed(self.target.as_bytes()),
        }
    }

    /// Whether `raw` is the exact readlink text of this entry (identity check on the hot path).
    pub(crate) fn same_target(&self, raw: &[u8]) -> bool {
        match &self.target_hex {
            None => self.target.as_bytes() == raw,
            Some(hex) => crate::util::hex_eq(hex, raw),
        }
    }

    /// The class of the fd.
    pub fn kind(&self) -> Kind {
        self.detail.kind()
    }
}

/// The class of an fd, as the `kind` field names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A character or block device.
    Device,
    /// A socket of any family.
    Socket,
    /// A pipe or a named FIFO.
    Pipe,
    /// An anonymous inode (eventfd, epoll, timerfd, signalfd, inotify, pidfd, …).
    AnonInode,
    /// A memfd (memfd_create).
    Memfd,
    /// A namespace file (/proc/PID/ns/*, or a bind mount of one).
    Ns,
    /// A POSIX message queue (mq_open).
    Mqueue,
    /// A symbolic link itself, opened with `O_PATH | O_NOFOLLOW`.
    Symlink,
    /// Anything the kernel named in a way fdiff does not know.
    Unknown,
}

impl Kind {
    /// The name the `kind` field and the tables use ("file", "anon_inode", …).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Device => "device",
            Kind::Socket => "socket",
            Kind::Pipe => "pipe",
            Kind::AnonInode => "anon_inode",
            Kind::Memfd => "memfd",
            Kind::Ns => "ns",
            Kind::Mqueue => "mqueue",
            Kind::Symlink => "symlink",
            Kind::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an fd was decoded to be; serialized flat beside `fd` and `target`, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Detail {
    /// A regular file.
    File(FileDetail),
    /// A directory.
    Dir(DirDetail),
    /// A device.
    Device(DeviceDetail),
    /// A socket.
    Socket(SocketDetail),
    /// A pipe or FIFO.
    Pipe(PipeDetail),
    /// An anonymous inode.
    AnonInode(AnonDetail),
    /// A memfd.
    Memfd(MemfdDetail),
    /// A namespace file.
    Ns(NsDetail),
    /// A POSIX message queue.
    Mqueue(MqueueDetail),
    /// A symlink opened with `O_PATH`.
    Symlink(SymlinkDetail),
    /// Not decoded: the target says all that is known.
    Unknown(UnknownDetail),
}

impl Detail {
    /// The kind this detail is of.
    pub fn kind(&self) -> Kind {
        match self {
            Detail::File(_) => Kind::File,
            Detail::Dir(_) => Kind::Dir,
            Detail::Device(_) => Kind::Device,
            Detail::Socket(_) => Kind::Socket,
            Detail::Pipe(_) => Kind::Pipe,
            Detail::AnonInode(_) => Kind::AnonInode,
            Detail::Memfd(_) => Kind::Memfd,
            Detail::Ns(_) => Kind::Ns,
            Detail::Mqueue(_) => Kind::Mqueue,
            Detail::Symlink(_) => Kind::Symlink,
            Detail::Unknown(_) => Kind::Unknown,
        }
    }
}

/// A regular file (or anything else reached through a path that is not a dir, device or FIFO).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FileDetail {
    /// The path, without the kernel's " (deleted)" suffix when the file was unlinked.
    pub path: String,
    /// The exact path bytes as lowercase hex, present only when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// The file was unlinked while open.
    #[serde(default)]
    pub deleted: bool,
    /// Bytes the file holds (for a deleted file: what it still pins on disk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The file's inode number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
    /// "major:minor" of the filesystem holding the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
}

/// A directory held open.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DirDetail {
    /// The path, without the kernel's " (deleted)" suffix.
    pub path: String,
    /// The exact path bytes as lowercase hex, present only when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// The directory was removed while open.
    #[serde(default)]
    pub deleted: bool,
    /// Its inode number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
}

/// A character or block device.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DeviceDetail {
    /// The device node's path.
    pub path: String,
    /// The exact path bytes as lowercase hex, present only when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// "char" or "block".
    pub device_type: String,
    /// "major:minor" of the device itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdev: Option<String>,
    /// The node was unlinked while open.
    #[serde(default)]
    pub deleted: bool,
    /// /dev/net/tun: the network interface the fd is attached to (fdinfo `iff:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tun_iface: Option<String>,
    /// /dev/ptmx: the index N of the `/dev/pts/N` this master belongs to (fdinfo `tty-index:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty_index: Option<u32>,
}

/// A socket, decoded as far as the kernel tells.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SocketDetail {
    /// tcp, tcp6, udp, udp6, unix, netlink, raw, raw6, packet or unknown.
    pub proto: String,
    /// The socket's inode number (the N of `socket:[N]`).
    pub inode: u64,
    /// "addr:port", IPv6 as `[addr]:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    /// The peer's address, in the form of `local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// TCP state (LISTEN, ESTABLISHED, …); UDP/unix state where the kernel tells one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Unix: bound path, abstract names as "@name".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// stream, dgram, seqpacket, raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_type: Option<String>,
    /// Unix: inode of the peer socket, when the kernel tells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<u64>,
    /// Unix: the name the peer is bound to (a server's path or "@abstract" name), for a socket
    /// that has no name of its own; it says which server a client connection talks to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_path: Option<String>,
    /// Netlink: the netlink protocol family (route, sock_diag, …) or number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netlink_family: Option<String>,
    /// Inode of the network namespace the socket lives in, set only when that is not the
    /// namespace of the process holding it (a socket passed from a container, or made after
    /// `setns`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<u64>,
    /// Unix: the directions shut down ("r", "w" or "rw"); absent while both are open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<String>,
    /// ping/ping6: the ICMP echo identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping_id: Option<u16>,
    /// Netlink: the socket's port id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lport: Option<u32>,
    /// Netlink: the multicast groups bitmap (the first 32 groups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<u32>,
    /// Raw: the IP protocol number; packet: the link-layer protocol (ETH_P_*, host order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u32>,
    /// Packet: the interface it is bound to (absent when bound to none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iface: Option<String>,
}

/// A pipe, or a named FIFO.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PipeDetail {
    /// The pipe's inode number (both ends share it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
    /// Set for a named FIFO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A named FIFO whose name was unlinked while open (`path` is then without " (deleted)").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

/// An anonymous inode, with what /proc/PID/fdinfo/N tells of its subtype.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AnonDetail {
    /// eventfd, eventpoll, timerfd, signalfd, inotify, fanotify, pidfd, io_uring, bpf-map, …
    pub subtype: String,
    /// eventfd: the counter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eventfd_count: Option<u64>,
    /// eventpoll: the fds it watches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tfd: Option<Vec<i32>>,
    /// timerfd: clock name (realtime, monotonic, boottime, …) or number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clockid: Option<String>,
    /// timerfd: interval and time to next expiry, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_secs: Option<f64>,
    /// timerfd: time to the next expiry, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_secs: Option<f64>,
    /// signalfd: the mask as signal names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigmask: Option<Vec<String>>,
    /// inotify / fanotify: number of watches / marks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watches: Option<u32>,
    /// pidfd: the pid it refers to (-1 once that process is reaped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_pid: Option<i32>,
    /// pidfd: the pid in each pid namespace, outermost first (fdinfo `NSpid:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nspid: Option<Vec<i32>>,
    /// pidfd: the command name of the process it refers to, while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_comm: Option<String>,
    /// eventfd: its id (fdinfo `eventfd-id:`); bpf-map, bpf-prog, bpf-link: the object's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// inotify: the watched inodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inotify_inodes: Option<Vec<WatchedInode>>,
    /// bpf-map, bpf-prog, bpf-link: the map, program or link type (a name where known,
    /// the kernel's number otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpf_type: Option<String>,
    /// bpf-map, bpf-prog: the object's name (needs CAP_SYS_ADMIN to look up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpf_name: Option<String>,
    /// bpf-prog: the program tag (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpf_tag: Option<String>,
    /// bpf-link: the id of the program it attaches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prog_id: Option<u64>,
    /// io_uring: the ring's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_uring: Option<IoUringDetail>,
}

/// One inode an inotify instance watches.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WatchedInode {
    /// "major:minor" of the filesystem holding it.
    pub dev: String,
    /// Its inode number.
    pub inode: u64,
    /// Where it is found, when fdiff could resolve it (only through the watching process's
    /// own open fds and cwd: an inode has no path of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// The state of an io_uring instance, from its fdinfo.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IoUringDetail {
    /// Submission queue entries (ring mask + 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sq_entries: Option<u32>,
    /// Completion queue entries (ring mask + 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cq_entries: Option<u32>,
    /// Submissions queued, not yet consumed by the kernel (tail - head).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sq_pending: Option<u32>,
    /// Completions posted, not yet reaped by the process (tail - head).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cq_pending: Option<u32>,
    /// Registered files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_files: Option<u32>,
    /// Registered buffers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_bufs: Option<u32>,
    /// The pid of the SQ polling kernel thread (SQPOLL rings only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sq_thread: Option<i32>,
}

/// A memfd, by the name it was created with.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MemfdDetail {
    /// The name given to memfd_create.
    pub name: String,
    /// Bytes it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Its inode number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
}

/// A namespace file: what `readlink` shows as `TYPE:[INODE]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NsDetail {
    /// net, mnt, pid, user, uts, ipc, cgroup, time (and pid_for_children, time_for_children).
    pub ns_type: String,
    /// The namespace's inode: equal inodes are the same namespace.
    pub inode: u64,
}

/// A POSIX message queue.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MqueueDetail {
    /// Its name as mq_open took it ("/name").
    pub path: String,
    /// Its inode in the mqueue filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
}

/// A symlink held open itself (`O_PATH | O_NOFOLLOW`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SymlinkDetail {
    /// The link's own path.
    pub path: String,
    /// The exact path bytes as lowercase hex, present only when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// Its inode number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
}

/// Nothing decoded.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UnknownDetail {}

impl Snapshot {
    /// Everything but the fds and errors, for rebuilding a snapshot from a delta.
    pub(crate) fn clone_meta(&self) -> Snapshot {
        Snapshot {
            schema: self.schema.clone(),
            pid: self.pid,
            comm: self.comm.clone(),
            cmdline: self.cmdline.clone(),
            start_time: self.start_time,
            taken_at: self.taken_at,
            fd_limit: self.fd_limit,
            fds: Vec::new(),
            errors: Vec::new(),
        }
    }
}

/// A file entry for tests of later stages (the binary's tests too, through the `test-support`
/// feature its dev-dependency turns on).
#[cfg(any(test, feature = "test-support"))]
pub fn test_file(fd: i32, path: &str, inode: Option<u64>) -> Arc<FdEntry> {
    Arc::new(FdEntry {
        fd,
        target: path.to_owned(),
        target_hex: None,
        detail: Detail::File(FileDetail {
            path: path.to_owned(),
            inode,
            ..FileDetail::default()
        }),
    })
}
