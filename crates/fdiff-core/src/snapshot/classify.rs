//! Classification of a readlink target: which decoder an fd goes to, from its link text alone.

/// What the link text of /proc/PID/fd/N says an fd is, before any syscall beyond readlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Class<'a> {
    /// An absolute path. `deleted_suffix` is set when the text ends in " (deleted)"; whether
    /// the file really was unlinked is decided later from stat's link count, since a real
    /// name may end in " (deleted)" too. `path` has the suffix removed.
    Path {
        path: &'a [u8],
        deleted_suffix: bool,
    },
    Socket {
        inode: u64,
    },
    Pipe {
        inode: u64,
    },
    /// `anon_inode:[eventfd]`, `anon_inode:inotify`, `anon_inode:bpf-map`, …
    AnonInode {
        subtype: &'a str,
    },
    /// memfd_create: `/memfd:NAME (deleted)`.
    Memfd {
        name: &'a [u8],
    },
    /// A namespace file (nsfs): `net:[4026531840]`.
    Ns {
        ns_type: &'static str,
        inode: u64,
    },
    /// Anything else: unknown prefixes.
    Other,
}

const DELETED: &[u8] = b" (deleted)";
const MEMFD: &[u8] = b"/memfd:";

pub(crate) fn classify(target: &[u8]) -> Class<'_> {
    if let Some(rest) = target.strip_prefix(b"socket:[") {
        return bracketed_inode(rest).map_or(Class::Other, |inode| Class::Socket { inode });
    }
    if let Some(rest) = target.strip_prefix(b"pipe:[") {
        return bracketed_inode(rest).map_or(Class::Other, |inode| Class::Pipe { inode });
    }
    if let Some(rest) = target.strip_prefix(b"anon_inode:") {
        // Most subtypes are bracketed ("[eventfd]"); inotify and bpf objects are not.
        let sub = rest
            .strip_prefix(b"[")
            .and_then(|r| r.strip_suffix(b"]"))
            .unwrap_or(rest);
        return match std::str::from_utf8(sub) {
            Ok(subtype) if !subtype.is_empty() => Class::AnonInode { subtype },
            _ => Class::Other,
        };
    }
    if target.first() == Some(&b'/') {
        let (path, deleted_suffix) = match target.strip_suffix(DELETED) {
            Some(p) => (p, true),
            None => (target, false),
        };
        // A memfd always reads "/memfd:NAME (deleted)"; without the suffix it is a real
        // file whose name happens to start with "/memfd:".
        if deleted_suffix {
            if let Some(name) = path.strip_prefix(MEMFD) {
                return Class::Memfd { name };
            }
        }
        return Class::Path {
            path,
            deleted_suffix,
        };
    }
    if let Some((ns_type, inode)) = super::ns::parse(target) {
        return Class::Ns { ns_type, inode };
    }
    Class::Other
}

fn bracketed_inode(rest: &[u8]) -> Option<u64> {
    let digits = rest.strip_suffix(b"]")?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of testdata/targets.txt is `TARGET<TAB>EXPECTED`, with `\n`, `\t` and
    /// `\xHH` escapes in the target.
    #[test]
    fn classifies_fixture_targets() {
        let text = include_str!("../../testdata/targets.txt");
        let mut n = 0;
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (target, expected) = line.split_once('\t').expect("tab");
            let raw = unescape(target);
            let got = match classify(&raw) {
                Class::Path {
                    path,
                    deleted_suffix,
                } => format!(
                    "path {}{}",
                    String::from_utf8_lossy(path),
                    if deleted_suffix { " +deleted" } else { "" }
                ),
                Class::Socket { inode } => format!("socket {inode}"),
                Class::Pipe { inode } => format!("pipe {inode}"),
                Class::AnonInode { subtype } => format!("anon {subtype}"),
                Class::Memfd { name } => format!("memfd {}", String::from_utf8_lossy(name)),
                Class::Ns { ns_type, inode } => format!("ns {ns_type} {inode}"),
                Class::Other => "other".to_owned(),
            };
            assert_eq!(got, unescape_str(expected), "target {target:?}");
            n += 1;
        }
        assert!(n > 15);
    }

    fn unescape(s: &str) -> Vec<u8> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\' && i + 1 < b.len() {
                match b[i + 1] {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'x' => {
                        out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).expect("hex"));
                        i += 2;
                    }
                    c => out.push(c),
                }
                i += 2;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        out
    }

    fn unescape_str(s: &str) -> String {
        String::from_utf8_lossy(&unescape(s)).into_owned()
    }
}
