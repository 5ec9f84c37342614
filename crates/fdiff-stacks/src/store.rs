//! The bounded store: (pid, fd) → who opened it, distinct stacks, and what was dropped.

use serde::Serialize;
use std::collections::HashMap;

/// At most this many open fds are remembered at once (about 100 bytes each with the target).
pub const MAX_FDS: usize = 65_536;
/// At most this many distinct stacks are kept (each at most [`MAX_FRAMES`] frames).
pub const MAX_STACKS: usize = 4_096;
/// Frames kept per stack, innermost first.
pub const MAX_FRAMES: usize = 48;

/// Index of a stack in [`Store::stacks`].
pub type StackId = u32;

/// One symbolized frame: the report's own frame type, so one formatter serves both.
pub use fdiff_core::track::stacks::StackFrame as Frame;

/// A distinct stack, innermost frame first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stack {
    /// The frames.
    pub frames: Vec<Frame>,
}

/// Who opened one fd.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    /// Its stack.
    pub stack: StackId,
    /// The opening thread.
    pub tid: i32,
    /// Unix time of the open.
    pub time: f64,
    /// The fd's readlink text right after the open.
    pub target: String,
}

/// What could not be kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Drops {
    /// Opens not remembered because the fd map was full.
    pub fds: u64,
    /// Opens whose stack was new while the stack store was full.
    pub stacks: u64,
    /// Opens whose stack could not be read (the thread was gone, or no stack at all).
    pub unwind_failed: u64,
}

/// The store the tracer fills and the report reads.
#[derive(Debug, Default)]
pub struct Store {
    /// (tgid, fd) → its opener, for the fds open as far as the tracer knows.
    pub open: HashMap<(i32, i32), Opened>,
    /// (tgid, stack, target) → how many fds opened there were closed again (seen when the
    /// fd number came back from another open).
    pub closed: HashMap<(i32, StackId, String), u64>,
    /// The distinct stacks.
    pub stacks: Vec<Stack>,
    /// Raw addresses → stack id.
    pub ids: HashMap<(i32, Vec<u64>), StackId>,
    /// Opens captured.
    pub captured: u64,
    /// What was dropped.
    pub drops: Drops,
    /// What the report should say once (an interpreter whose frames cannot be read).
    pub notes: Vec<String>,
}

impl Store {
    /// An open of `fd` in `tgid` from `stack`: a fd number still in the map was closed since.
    pub fn opened(&mut self, tgid: i32, fd: i32, o: Opened) {
        self.captured += 1;
        let full = self.open.len() >= MAX_FDS;
        match self.open.entry((tgid, fd)) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                let old = e.insert(o);
                *self
                    .closed
                    .entry((tgid, old.stack, old.target))
                    .or_insert(0) += 1;
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                if full {
                    self.drops.fds += 1;
                } else {
                    e.insert(o);
                }
            }
        }
    }

    /// The id of this raw stack, or None when it is new and the store is full.
    pub fn id_of(&self, tgid: i32, raw: &[u64]) -> Option<StackId> {
        self.ids.get(&(tgid, raw.to_vec())).copied()
    }

    /// Add a stack; None (and a drop counted) when full.
    pub fn add(&mut self, tgid: i32, raw: Vec<u64>, stack: Stack) -> Option<StackId> {
        if self.stacks.len() >= MAX_STACKS {
            self.drops.stacks += 1;
            return None;
        }
        let id = self.stacks.len() as StackId;
        self.stacks.push(stack);
        self.ids.insert((tgid, raw), id);
        Some(id)
    }

    /// A process exec'd or exited: its fds' openers are forgotten (an exec keeps fds, but the
    /// addresses of the old image mean nothing now; its non-CLOEXEC fds keep their stacks).
    pub fn forget_addresses(&mut self, tgid: i32) {
        self.ids.retain(|(t, _), _| *t != tgid);
    }

    /// Rough bytes held, for the report.
    pub fn bytes(&self) -> usize {
        let open: usize = self.open.values().map(|o| 48 + o.target.len()).sum();
        let stacks: usize = self
            .stacks
            .iter()
            .flat_map(|s| &s.frames)
            .map(|f| {
                64 + f.function.len()
                    + f.file.as_ref().map_or(0, String::len)
                    + f.module.as_ref().map_or(0, String::len)
            })
            .sum();
        let ids: usize = self.ids.keys().map(|(_, r)| 48 + 8 * r.len()).sum();
        open + stacks + ids + self.closed.len() * 64
    }
}

/// What the report is given at the end: a copy of the store.
pub type Capture = Store;

#[cfg(test)]
mod tests {
    use super::*;

    fn o(stack: StackId) -> Opened {
        Opened {
            stack,
            tid: 1,
            time: 0.0,
            target: "/x".into(),
        }
    }

    #[test]
    fn a_reused_fd_counts_the_old_one_closed() {
        let mut s = Store::default();
        s.opened(1, 3, o(0));
        s.opened(1, 3, o(1));
        assert_eq!(s.open[&(1, 3)].stack, 1);
        assert_eq!(s.closed[&(1, 0, "/x".to_string())], 1);
    }

    #[test]
    fn a_full_map_counts_drops() {
        let mut s = Store::default();
        for fd in 0..(MAX_FDS as i32 + 10) {
            s.opened(1, fd, o(0));
        }
        assert_eq!(s.open.len(), MAX_FDS);
        assert_eq!(s.drops.fds, 10);
    }

    #[test]
    fn a_full_stack_store_counts_drops() {
        let mut s = Store::default();
        for i in 0..(MAX_STACKS as u64 + 3) {
            let _ = s.add(1, vec![i], Stack::default());
        }
        assert_eq!(s.stacks.len(), MAX_STACKS);
        assert_eq!(s.drops.stacks, 3);
    }
}
