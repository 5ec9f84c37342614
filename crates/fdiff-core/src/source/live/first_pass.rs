//! The parallel first pass: a first snapshot of a large fd table reads its links and decodes
//! its fds split across cores; later ticks see few new fds and stay on one thread.

use super::reader::{LINK_BUF, Unreadable};
use crate::snapshot::FdEntry;
use crate::snapshot::decode::{Decoder, Dirs, Pending, Sorted, decode_sockets};
use crate::snapshot::fdio::FdName;
use crate::snapshot::socket::SocketDecoder;
use rustix::fd::BorrowedFd;
use rustix::io::Errno;
use std::sync::Arc;

/// Read the links of `fds`, in order. Large tables are split across cores; a first
/// `fdiff snapshot` of 20,000 fds is mostly this pass.
pub(super) fn readlink_all(
    dirfd: BorrowedFd<'_>,
    fds: &[i32],
    workers: usize,
) -> (Vec<Pending>, Unreadable) {
    fn part(dirfd: BorrowedFd<'_>, fds: &[i32]) -> (Vec<Pending>, Unreadable) {
        let mut buf = vec![0u8; LINK_BUF];
        let (mut pending, mut unreadable) = (Vec::with_capacity(fds.len()), Unreadable::default());
        for &fd in fds {
            match rustix::fs::readlinkat_raw(dirfd, FdName::new(fd).as_str(), &mut buf[..]) {
                Ok(n) => pending.push(Pending {
                    fd,
                    raw: buf[..n.min(LINK_BUF)].to_vec(),
                }),
                // Closed between readdir and readlink: it simply was not there.
                Err(Errno::NOENT) => {}
                Err(e) => unreadable.add(fd, e),
            }
        }
        (pending, unreadable)
    }
    if workers <= 1 {
        return part(dirfd, fds);
    }
    let chunk = fds.len().div_ceil(workers);
    let parts: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = fds
            .chunks(chunk)
            .map(|c| (c, scope.spawn(move || part(dirfd, c))))
            .collect();
        // A worker that died is redone here rather than losing its fds.
        handles
            .into_iter()
            .map(|(c, h)| h.join().unwrap_or_else(|_| part(dirfd, c)))
            .collect()
    });
    let mut out = (Vec::with_capacity(fds.len()), Unreadable::default());
    for (p, u) in parts {
        out.0.extend(p);
        out.1.errors.extend(u.errors);
        out.1.denied += u.denied;
    }
    out
}

/// Threads for a pass over `n` items: one below `min`, else the forced count or the cores.
pub(super) fn workers_for(n: usize, min: usize, forced: Option<usize>) -> usize {
    if n < min {
        return 1;
    }
    forced.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, |c| c.get().min(MAX_WORKERS))
    })
}

/// Pending fds (besides sockets) from which decoding is split across threads.
pub(super) const PARALLEL_MIN: usize = 1024;
const MAX_WORKERS: usize = 4;

/// Decode the sorted new fds of `pid`; the result is in fd order, without those that closed
/// meanwhile. `buf` is the reader's, reused when one thread does it all.
pub(super) fn decode(
    dirs: Dirs<'_>,
    pid: i32,
    sorted: Sorted,
    sockets: &mut SocketDecoder,
    workers: usize,
    buf: &mut Vec<u8>,
) -> Vec<Arc<FdEntry>> {
    let Sorted { socks, others, .. } = sorted;
    let decoded: Vec<Vec<Option<Arc<FdEntry>>>> = if workers <= 1 {
        let mut d = Decoder::new(dirs, std::mem::take(buf));
        let out = others.iter().map(|p| d.decode(p)).collect();
        *buf = d.into_buf();
        vec![out, decode_sockets(pid, &socks, sockets)]
    } else {
        // A first snapshot of a large table is mostly stat and fdinfo reads, each a few
        // syscalls the kernel serves in parallel: split them across cores while this
        // thread asks for the sockets.
        let chunk = others.len().div_ceil(workers);
        std::thread::scope(|scope| {
            let decode = move |part: &[Pending]| {
                let mut d = Decoder::new(dirs, Vec::with_capacity(4096));
                part.iter().map(|p| d.decode(p)).collect::<Vec<_>>()
            };
            let handles: Vec<_> = others
                .chunks(chunk)
                .map(|part| (part, scope.spawn(move || decode(part))))
                .collect();
            let mut all = vec![decode_sockets(pid, &socks, sockets)];
            // A worker that died is redone here rather than losing its fds.
            all.extend(
                handles
                    .into_iter()
                    .map(|(part, h)| h.join().unwrap_or_else(|_| decode(part))),
            );
            all
        })
    };
    let mut out: Vec<Arc<FdEntry>> = decoded.into_iter().flatten().flatten().collect();
    out.sort_by_key(|e| e.fd);
    out
}
