//! Diff: what changed between two snapshots of one process, by identity (fd number *and* what
//! it points to), so a reused fd number never hides a close plus an open.

use crate::snapshot::{Detail, FdEntry};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The changes from one snapshot to the next.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// Fds present only in the later snapshot.
    pub opened: Vec<Arc<FdEntry>>,
    /// Fds present only in the earlier snapshot.
    pub closed: Vec<Arc<FdEntry>>,
    /// Same fd number, another target or inode: a close of the first and an open of the second.
    pub replaced: Vec<Replaced>,
}

/// An fd number that points somewhere else now: closed and opened again between two ticks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replaced {
    /// What the fd was in the earlier snapshot.
    pub old: Arc<FdEntry>,
    /// What it is in the later one.
    pub new: Arc<FdEntry>,
}

impl Delta {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.opened.is_empty() && self.closed.is_empty() && self.replaced.is_empty()
    }

    /// Fds that went away, replaced ones included.
    pub fn all_closed(&self) -> impl Iterator<Item = &Arc<FdEntry>> {
        self.closed
            .iter()
            .chain(self.replaced.iter().map(|r| &r.old))
    }

    /// Fds that appeared, replacing ones included.
    pub fn all_opened(&self) -> impl Iterator<Item = &Arc<FdEntry>> {
        self.opened
            .iter()
            .chain(self.replaced.iter().map(|r| &r.new))
    }

    /// How many fds appeared, replacing ones included.
    pub fn opened_count(&self) -> usize {
        self.opened.len() + self.replaced.len()
    }

    /// How many fds went away, replaced ones included.
    pub fn closed_count(&self) -> usize {
        self.closed.len() + self.replaced.len()
    }
}

/// Whether two entries at the same fd number are the same open file.
pub fn same_identity(a: &FdEntry, b: &FdEntry) -> bool {
    a.fd == b.fd && a.target == b.target && a.target_hex == b.target_hex && inode(a) == inode(b)
}

/// The inode an entry names, when its kind tells one.
pub fn inode(e: &FdEntry) -> Option<u64> {
    match &e.detail {
        Detail::File(f) => f.inode,
        Detail::Dir(d) => d.inode,
        Detail::Socket(s) => Some(s.inode),
        Detail::Pipe(p) => p.inode,
        Detail::Memfd(m) => m.inode,
        Detail::Ns(n) => Some(n.inode),
        Detail::Mqueue(m) => m.inode,
        Detail::Symlink(l) => l.inode,
        Detail::Device(_) | Detail::AnonInode(_) | Detail::Unknown(_) => None,
    }
}

/// Diff two fd lists, each in fd order. Entries shared between snapshots (the same `Arc`) are
/// recognised by pointer, so an unchanged table costs one comparison per fd.
pub fn diff(before: &[Arc<FdEntry>], after: &[Arc<FdEntry>]) -> Delta {
    let mut d = Delta::default();
    let (mut i, mut j) = (0, 0);
    while i < before.len() || j < after.len() {
        match (before.get(i), after.get(j)) {
            // The same shared entry: unchanged, decided without reading it.
            (Some(a), Some(b)) if Arc::ptr_eq(a, b) => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.fd == b.fd => {
                if !same_identity(a, b) {
                    d.replaced.push(Replaced {
                        old: Arc::clone(a),
                        new: Arc::clone(b),
                    });
                }
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.fd < b.fd => {
                d.closed.push(Arc::clone(a));
                i += 1;
            }
            (Some(_), Some(b)) => {
                d.opened.push(Arc::clone(b));
                j += 1;
            }
            (Some(a), None) => {
                d.closed.push(Arc::clone(a));
                i += 1;
            }
            (None, Some(b)) => {
                d.opened.push(Arc::clone(b));
                j += 1;
            }
            (None, None) => break,
        }
    }
    d
}

/// Apply a delta to an fd list in fd order, giving the list after it (used to rebuild
/// snapshots from a recording).
pub fn apply(
    before: &[Arc<FdEntry>],
    closed_fds: &[i32],
    opened: &[Arc<FdEntry>],
) -> Vec<Arc<FdEntry>> {
    let mut closed: Vec<i32> = closed_fds.to_vec();
    closed.sort_unstable();
    let mut out: Vec<Arc<FdEntry>> = before
        .iter()
        .filter(|e| closed.binary_search(&e.fd).is_err())
        .cloned()
        .collect();
    let mut added: Vec<Arc<FdEntry>> = opened.to_vec();
    added.sort_by_key(|e| e.fd);
    if !added.is_empty() {
        // Merge two sorted runs; a later entry at the same fd number wins.
        let mut merged = Vec::with_capacity(out.len() + added.len());
        let (mut a, mut b) = (out.into_iter().peekable(), added.into_iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.fd < y.fd => merged.extend(a.next()),
                (Some(x), Some(y)) if x.fd == y.fd => {
                    a.next();
                    merged.extend(b.next());
                }
                (Some(_), Some(_)) | (None, Some(_)) => merged.extend(b.next()),
                (Some(_), None) => merged.extend(a.next()),
                (None, None) => break,
            }
        }
        out = merged;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::PipeDetail;

    fn file(fd: i32, path: &str, ino: u64) -> Arc<FdEntry> {
        crate::snapshot::model::test_file(fd, path, Some(ino))
    }

    fn pipe(fd: i32, ino: u64) -> Arc<FdEntry> {
        Arc::new(FdEntry {
            fd,
            target: format!("pipe:[{ino}]"),
            target_hex: None,
            detail: Detail::Pipe(PipeDetail {
                inode: Some(ino),
                ..PipeDetail::default()
            }),
        })
    }

    #[test]
    fn opened_closed_and_unchanged() {
        let a = vec![file(0, "/a", 1), file(3, "/b", 2), pipe(5, 9)];
        let b = vec![Arc::clone(&a[0]), pipe(5, 9), file(7, "/c", 3)];
        let d = diff(&a, &b);
        assert_eq!(d.closed.iter().map(|e| e.fd).collect::<Vec<_>>(), vec![3]);
        assert_eq!(d.opened.iter().map(|e| e.fd).collect::<Vec<_>>(), vec![7]);
        assert!(
            d.replaced.is_empty(),
            "equal content at the same fd is unchanged"
        );
    }

    /// Regression for issue 3: a reused fd number must show as a close plus an open.
    #[test]
    fn issue3_reused_fd_number_is_replaced() {
        let a = vec![file(4, "/log/a.log", 10)];
        let b = vec![file(4, "/log/b.log", 11)];
        let d = diff(&a, &b);
        assert_eq!(d.replaced.len(), 1);
        assert_eq!((d.opened_count(), d.closed_count()), (1, 1));
        // Same path, another inode (file recreated under the same name): still replaced.
        let c = vec![file(4, "/log/b.log", 12)];
        assert_eq!(diff(&b, &c).replaced.len(), 1);
    }

    #[test]
    fn apply_rebuilds_the_after_list() {
        let a = vec![file(0, "/a", 1), file(3, "/b", 2), pipe(5, 9)];
        let b = vec![file(0, "/a", 1), file(3, "/x", 4), file(6, "/c", 3)];
        let d = diff(&a, &b);
        let closed: Vec<i32> = d.all_closed().map(|e| e.fd).collect();
        let opened: Vec<Arc<FdEntry>> = d.all_opened().cloned().collect();
        let rebuilt = apply(&a, &closed, &opened);
        assert_eq!(rebuilt, b);
        assert!(diff(&rebuilt, &b).is_empty());
    }
}
