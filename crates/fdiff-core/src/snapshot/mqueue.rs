//! POSIX message queue decoder. An mqueue fd reads like a file at the root ("/name", the
//! name mq_open was given) on the mqueue filesystem; only the filesystem type tells it apart
//! from a real file in /, so that is asked, and only for paths of that one shape.

use super::model::{Detail, MqueueDetail};

/// MQUEUE_MAGIC (linux/magic.h).
const MQUEUE_MAGIC: i64 = 0x1980_0202;

/// Whether a path could be a message queue: one component right under "/".
pub(crate) fn could_be(path: &[u8]) -> bool {
    path.len() > 1 && path[0] == b'/' && !path[1..].contains(&b'/')
}

/// Whether `f_type` (statfs of the fd) is the mqueue filesystem.
pub(crate) fn is_mqueue_fs(f_type: i64) -> bool {
    f_type == MQUEUE_MAGIC
}

pub(crate) fn decode(path: &[u8], inode: Option<u64>) -> Detail {
    Detail::Mqueue(MqueueDetail {
        path: String::from_utf8_lossy(path).into_owned(),
        inode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_magic() {
        assert!(could_be(b"/test_mkfds-mqueue"));
        assert!(!could_be(b"/"));
        assert!(!could_be(b"/etc/passwd"));
        assert!(is_mqueue_fs(0x19800202));
        assert!(!is_mqueue_fs(0xEF53));
        let Detail::Mqueue(m) = decode(b"/q", Some(5)) else {
            panic!("not mqueue")
        };
        assert_eq!((m.path.as_str(), m.inode), ("/q", Some(5)));
    }
}
