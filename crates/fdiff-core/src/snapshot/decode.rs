//! Per-kind decode dispatch: each new fd's link text is classified once, then sockets go to
//! the batch lookup and every other kind to its decoder (stat for paths and memfds, fdinfo
//! for anon inodes).

use crate::snapshot::classify::{Class, classify};
use crate::snapshot::fdio::{FdName, read_file_at};
use crate::snapshot::file::{FileStat, decode_memfd, decode_path};
use crate::snapshot::socket::SocketDecoder;
use crate::snapshot::{Detail, FdEntry, PipeDetail, UnknownDetail, anon, cdev, mqueue, ns};
use crate::util::text_and_hex;
use rustix::fd::BorrowedFd;
use rustix::fs::AtFlags;
use rustix::io::Errno;
use std::sync::Arc;

/// A new or changed fd found by the readlink pass, decoded after the pass.
pub(crate) struct Pending {
    pub(crate) fd: i32,
    pub(crate) raw: Vec<u8>,
}

/// New fds sorted by one look at each link: sockets (with their inode) for the batch lookup,
/// the rest for the per-fd decoders.
pub(crate) struct Sorted {
    pub(crate) socks: Vec<(Pending, u64)>,
    pub(crate) others: Vec<Pending>,
    /// Whether any is an anon inode (or a tun/ptmx device), whose decoder needs
    /// /proc/PID/fdinfo.
    pub(crate) any_anon: bool,
}

impl Sorted {
    pub(crate) fn new(pending: Vec<Pending>) -> Sorted {
        let mut socks: Vec<(Pending, u64)> = Vec::new();
        let mut others: Vec<Pending> = Vec::with_capacity(pending.len());
        let mut any_anon = false;
        for p in pending {
            match classify(&p.raw) {
                Class::Socket { inode } => socks.push((p, inode)),
                class => {
                    any_anon |= match class {
                        Class::AnonInode { .. } => true,
                        Class::Path { path, .. } => {
                            std::str::from_utf8(path).is_ok_and(cdev::wants_fdinfo)
                        }
                        _ => false,
                    };
                    others.push(p);
                }
            }
        }
        Sorted {
            socks,
            others,
            any_anon,
        }
    }
}

/// The process's held /proc/PID/fd and (once an anon inode needs it) fdinfo directories.
#[derive(Clone, Copy)]
pub(crate) struct Dirs<'a> {
    pub(crate) fd_dir: BorrowedFd<'a>,
    pub(crate) fdinfo_dir: Option<BorrowedFd<'a>>,
}

/// The entries of the sockets among the new fds, from one batch lookup.
pub(crate) fn decode_sockets(
    pid: i32,
    socks: &[(Pending, u64)],
    sockets: &mut SocketDecoder,
) -> Vec<Option<Arc<FdEntry>>> {
    if socks.is_empty() {
        return Vec::new();
    }
    let pairs: Vec<(i32, u64)> = socks.iter().map(|(p, inode)| (p.fd, *inode)).collect();
    let details = sockets.decode_fds(pid, &pairs);
    socks
        .iter()
        .zip(details)
        .map(|((p, _), d)| Some(Arc::new(entry(p.fd, &p.raw, Detail::Socket(d)))))
        .collect()
}

/// Decodes new fds other than sockets: stat for paths and memfds, fdinfo for anon inodes.
pub(crate) struct Decoder<'a> {
    fd_dir: BorrowedFd<'a>,
    fdinfo_dir: Option<BorrowedFd<'a>>,
    buf: Vec<u8>,
}

impl<'a> Decoder<'a> {
    /// A decoder reading through `dirs`, with `buf` for fdinfo reads (kept by [`Self::into_buf`]).
    pub(crate) fn new(dirs: Dirs<'a>, buf: Vec<u8>) -> Decoder<'a> {
        Decoder {
            fd_dir: dirs.fd_dir,
            fdinfo_dir: dirs.fdinfo_dir,
            buf,
        }
    }

    /// The read buffer back, for the next tick to reuse.
    pub(crate) fn into_buf(self) -> Vec<u8> {
        self.buf
    }

    /// The entry for `p`, or `None` when the fd closed meanwhile.
    pub(crate) fn decode(&mut self, p: &Pending) -> Option<Arc<FdEntry>> {
        let detail = match classify(&p.raw) {
            Class::Path {
                path,
                deleted_suffix,
            } => {
                let st = self.stat_fd(p.fd).ok()?;
                let mut d = decode_path(&p.raw, path, deleted_suffix, st.as_ref());
                match &mut d {
                    Detail::Device(dev) if cdev::wants_fdinfo(&dev.path) => {
                        if let Some(text) = self.read_fdinfo(p.fd).ok()? {
                            cdev::decode(dev, &text);
                        }
                    }
                    // A queue unlinked while open reads "/name (deleted)", still a queue.
                    Detail::File(f) if mqueue::could_be(path) && self.is_mqueue(p.fd) => {
                        d = mqueue::decode(path, f.inode);
                    }
                    _ => {}
                }
                d
            }
            Class::Ns { ns_type, inode } => Detail::Ns(ns::decode(ns_type, inode)),
            Class::Memfd { name } => decode_memfd(name, self.stat_fd(p.fd).ok()?.as_ref()),
            Class::Pipe { inode } => Detail::Pipe(PipeDetail {
                inode: Some(inode),
                ..PipeDetail::default()
            }),
            Class::AnonInode { subtype } => {
                let text = self.read_fdinfo(p.fd).ok()?;
                Detail::AnonInode(anon::decode(subtype, text.as_deref()))
            }
            // Sockets are decoded in a batch elsewhere.
            Class::Socket { .. } => return None,
            Class::Other => Detail::Unknown(UnknownDetail {}),
        };
        Some(Arc::new(entry(p.fd, &p.raw, detail)))
    }

    /// Stat the open file behind fd N. `Ok(None)` when it exists but cannot be stat'ed.
    ///
    /// The path walk through the magic link does not enter the file system, but the getattr
    /// does: on a stalled FUSE or hung NFS mount a plain stat waits forever for the server.
    /// `AT_STATX_DONT_SYNC` makes FUSE, NFS, CIFS and Ceph answer from their attribute cache,
    /// and the mask leaves out the times, for which NFS would first flush dirty pages.
    fn stat_fd(&self, fd: i32) -> Result<Option<FileStat>, Vanished> {
        use rustix::fs::StatxFlags as M;
        let mask = M::TYPE | M::MODE | M::NLINK | M::INO | M::SIZE;
        match rustix::fs::statx(
            self.fd_dir,
            FdName::new(fd).as_str(),
            AtFlags::STATX_DONT_SYNC,
            mask,
        ) {
            Ok(st) => Ok(Some(FileStat {
                mode: u32::from(st.stx_mode),
                nlink: u64::from(st.stx_nlink),
                size: st.stx_size,
                ino: st.stx_ino,
                dev: rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor),
                rdev: rustix::fs::makedev(st.stx_rdev_major, st.stx_rdev_minor),
            })),
            Err(Errno::NOENT) => Err(Vanished),
            Err(_) => Ok(None),
        }
    }

    /// Whether fd N is on the mqueue filesystem (statfs through the fd's magic link).
    fn is_mqueue(&self, fd: i32) -> bool {
        let Ok(f) = rustix::fs::openat(
            self.fd_dir,
            FdName::new(fd).as_str(),
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) else {
            return false;
        };
        rustix::fs::fstatfs(&f).is_ok_and(|s| mqueue::is_mqueue_fs(s.f_type))
    }

    /// The text of /proc/PID/fdinfo/N; `Ok(None)` when it exists but cannot be read.
    fn read_fdinfo(&mut self, fd: i32) -> Result<Option<String>, Vanished> {
        let Some(dir) = self.fdinfo_dir else {
            return Ok(None);
        };
        match read_file_at(dir, FdName::new(fd).as_str(), &mut self.buf) {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(bytes).into_owned())),
            Err(Errno::NOENT) => Err(Vanished),
            Err(_) => Ok(None),
        }
    }
}

/// The fd closed while it was being decoded.
struct Vanished;

fn entry(fd: i32, raw: &[u8], detail: Detail) -> FdEntry {
    let (target, target_hex) = text_and_hex(raw);
    FdEntry {
        fd,
        target,
        target_hex,
        detail,
    }
}
