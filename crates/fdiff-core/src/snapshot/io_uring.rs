//! io_uring decoder: ring sizes, what is queued either way, registered files and buffers.

use super::fdinfo_text::{hex, num};
use super::model::IoUringDetail;

/// The ring's state from its fdinfo; `None` when the fdinfo tells nothing of it.
pub(crate) fn decode(text: &str) -> Option<IoUringDetail> {
    let entries = |key| hex(text, key).and_then(|m| u32::try_from(m + 1).ok());
    let pending = |count: &str, head: &str, tail: &str| {
        // SQEs/CQEs (Linux 5.18+) count what is queued; before that, tail - head.
        num(text, count).or_else(|| {
            let (h, t): (u32, u32) = (num(text, head)?, num(text, tail)?);
            Some(t.wrapping_sub(h))
        })
    };
    let d = IoUringDetail {
        sq_entries: entries("SqMask:"),
        cq_entries: entries("CqMask:"),
        sq_pending: pending("SQEs:", "SqHead:", "SqTail:"),
        cq_pending: pending("CQEs:", "CqHead:", "CqTail:"),
        user_files: num(text, "UserFiles:"),
        user_bufs: num(text, "UserBufs:"),
        sq_thread: num(text, "SqThread:").filter(|&p: &i32| p > 0),
    };
    (d != IoUringDetail::default()).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_state() {
        let path = format!(
            "{}/testdata/fdinfo/io_uring.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        let d = decode(&std::fs::read_to_string(path).expect("fixture")).expect("decoded");
        assert_eq!((d.sq_entries, d.cq_entries), (Some(4), Some(8)));
        assert_eq!((d.sq_pending, d.cq_pending), (Some(0), Some(0)));
        assert_eq!(
            (d.user_files, d.user_bufs, d.sq_thread),
            (Some(0), Some(0), None)
        );
    }

    #[test]
    fn old_kernels_count_from_head_and_tail() {
        let d = decode("SqMask:\t0x7\nSqHead:\t5\nSqTail:\t7\nCqHead:\t1\nCqTail:\t4\n")
            .expect("decoded");
        assert_eq!((d.sq_pending, d.cq_pending), (Some(2), Some(3)));
        assert_eq!(decode("garbage"), None);
    }
}
