//! Reads through held /proc directory fds: fd numbers as path components without
//! allocating, and whole /proc files in as few read calls as a seq_file allows.

use rustix::fd::BorrowedFd;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// An fd number as a path component, formatted without allocating.
pub(crate) struct FdName {
    buf: [u8; 12],
    len: usize,
}

impl FdName {
    pub(crate) fn new(fd: i32) -> FdName {
        let mut buf = [0u8; 12];
        let mut n = fd.unsigned_abs();
        let mut i = buf.len();
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let len = buf.len() - i;
        buf.copy_within(i.., 0);
        FdName { buf, len }
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

/// Room left after a read beyond which it was the last one (no /proc line is this long).
const SHORT_READ_SLACK: usize = 512;

pub(crate) fn read_file_at<'b>(
    at: BorrowedFd<'_>,
    name: &str,
    buf: &'b mut Vec<u8>,
) -> Result<&'b [u8], Errno> {
    let fd = rustix::fs::openat(at, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    buf.clear();
    loop {
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(buf.capacity().max(4096));
        }
        let room = buf.capacity() - buf.len();
        let n = rustix::io::read(&fd, rustix::buffer::spare_capacity(buf))?;
        // A /proc file comes from a seq_file, which fills a read up to the last whole line
        // that fits: a read that left more room than any line needs was the end, and the
        // read that would return 0 can be skipped (a quarter of an fdinfo read's syscalls).
        if n == 0 || room - n > SHORT_READ_SLACK {
            return Ok(&buf[..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_names() {
        assert_eq!(FdName::new(0).as_str(), "0");
        assert_eq!(FdName::new(19999).as_str(), "19999");
        assert_eq!(FdName::new(i32::MAX).as_str(), "2147483647");
    }
}
