//! Path decoder: regular files, directories, devices, named FIFOs and memfds, from the link text
//! and a stat through the fd itself.

use super::model::{
    Detail, DeviceDetail, DirDetail, FileDetail, MemfdDetail, PipeDetail, SymlinkDetail,
};
use crate::util::text_and_hex;

/// What a stat through /proc/PID/fd/N told (the open file, not the name it was opened by).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FileStat {
    pub mode: u32,
    pub nlink: u64,
    pub size: u64,
    pub ino: u64,
    pub dev: u64,
    pub rdev: u64,
}

const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const S_IFCHR: u32 = 0o020000;
const S_IFBLK: u32 = 0o060000;
const S_IFIFO: u32 = 0o010000;
const S_IFLNK: u32 = 0o120000;

/// Decode an fd whose link is an absolute path. `path` has " (deleted)" removed when
/// `deleted_suffix` is set; `full` is the whole link text. `stat` is `None` when the fd could
/// not be stat'ed: the kind then falls back to `file`.
pub(crate) fn decode_path(
    full: &[u8],
    path: &[u8],
    deleted_suffix: bool,
    stat: Option<&FileStat>,
) -> Detail {
    // The suffix alone is not proof: a live file may be named "x (deleted)". Only a link count
    // of zero says the name is gone. Without a stat, trust the suffix.
    let deleted = deleted_suffix && stat.is_none_or(|s| s.nlink == 0);
    let shown = if deleted { path } else { full };
    let (path, path_hex) = text_and_hex(shown);
    let Some(st) = stat else {
        return Detail::File(FileDetail {
            path,
            path_hex,
            deleted,
            ..FileDetail::default()
        });
    };
    match st.mode & S_IFMT {
        S_IFDIR => Detail::Dir(DirDetail {
            path,
            path_hex,
            deleted,
            inode: Some(st.ino),
        }),
        t @ (S_IFCHR | S_IFBLK) => Detail::Device(DeviceDetail {
            path,
            path_hex,
            device_type: if t == S_IFCHR { "char" } else { "block" }.to_owned(),
            rdev: Some(dev_text(st.rdev)),
            deleted,
            ..DeviceDetail::default()
        }),
        S_IFIFO => Detail::Pipe(PipeDetail {
            inode: Some(st.ino),
            path: Some(path),
            deleted,
        }),
        S_IFLNK => Detail::Symlink(SymlinkDetail {
            path,
            path_hex,
            inode: Some(st.ino),
        }),
        _ => Detail::File(FileDetail {
            path,
            path_hex,
            deleted,
            size: Some(st.size),
            inode: Some(st.ino),
            dev: Some(dev_text(st.dev)),
        }),
    }
}

/// Decode a memfd from its name (the text after "/memfd:", without " (deleted)").
pub(crate) fn decode_memfd(name: &[u8], stat: Option<&FileStat>) -> Detail {
    Detail::Memfd(MemfdDetail {
        name: String::from_utf8_lossy(name).into_owned(),
        size: stat.map(|s| s.size),
        inode: stat.map(|s| s.ino),
    })
}

/// "major:minor" as the kernel encodes dev_t.
pub(crate) fn dev_text(dev: u64) -> String {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0xff);
    format!("{major}:{minor}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(mode: u32, nlink: u64) -> FileStat {
        FileStat {
            mode,
            nlink,
            size: 4096,
            ino: 77,
            dev: (8 << 8) | 1,
            rdev: (1 << 8) | 3,
        }
    }

    #[test]
    fn unlinked_file_is_deleted_without_suffix() {
        let full = b"/tmp/gone.bin (deleted)";
        let Detail::File(f) = decode_path(full, b"/tmp/gone.bin", true, Some(&st(0o100644, 0)))
        else {
            panic!("not a file")
        };
        assert!(f.deleted);
        assert_eq!(f.path, "/tmp/gone.bin");
        assert_eq!(f.size, Some(4096));
        assert_eq!(f.dev.as_deref(), Some("8:1"));
    }

    #[test]
    fn real_name_ending_in_deleted_is_not_deleted() {
        let full = b"/tmp/real (deleted)";
        let Detail::File(f) = decode_path(full, b"/tmp/real", true, Some(&st(0o100644, 1))) else {
            panic!("not a file")
        };
        assert!(!f.deleted);
        assert_eq!(f.path, "/tmp/real (deleted)");
    }

    #[test]
    fn dirs_devices_and_fifos() {
        assert!(matches!(
            decode_path(b"/tmp", b"/tmp", false, Some(&st(0o040755, 2))),
            Detail::Dir(_)
        ));
        let Detail::Device(d) =
            decode_path(b"/dev/null", b"/dev/null", false, Some(&st(0o020666, 1)))
        else {
            panic!("not a device")
        };
        assert_eq!(
            (d.device_type.as_str(), d.rdev.as_deref()),
            ("char", Some("1:3"))
        );
        let Detail::Pipe(p) = decode_path(b"/tmp/f", b"/tmp/f", false, Some(&st(0o010644, 1)))
        else {
            panic!("not a pipe")
        };
        assert_eq!(p.path.as_deref(), Some("/tmp/f"));
    }

    #[test]
    fn non_utf8_path_keeps_exact_bytes() {
        let raw = b"/tmp/bad-\xff.txt";
        let Detail::File(f) = decode_path(raw, raw, false, Some(&st(0o100644, 1))) else {
            panic!("not a file")
        };
        assert_eq!(
            f.path_hex.as_deref(),
            Some(crate::util::hex_encode(raw).as_str())
        );
    }

    #[test]
    fn without_stat_trusts_the_suffix() {
        let Detail::File(f) = decode_path(b"/x (deleted)", b"/x", true, None) else {
            panic!("not a file")
        };
        assert!(f.deleted);
    }
}
