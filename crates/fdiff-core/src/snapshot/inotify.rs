//! inotify decoder: how many watches, and the inodes they watch (dev:ino), from fdinfo.

use super::model::{AnonDetail, WatchedInode};

/// Fills the inotify fields of `d` from its fdinfo.
pub(crate) fn decode(d: &mut AnonDetail, text: &str) {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("inotify wd:"))
        .collect();
    d.watches = Some(lines.len() as u32);
    d.inotify_inodes = Some(lines.iter().filter_map(|l| watched(l)).collect());
}

/// `inotify wd:2 ino:2e1 sdev:fe00000 mask:…`: ino and sdev in hex, sdev in the kernel's
/// internal encoding (major above bit 20), not the one userspace's dev_t uses.
fn watched(line: &str) -> Option<WatchedInode> {
    let mut ino = None;
    let mut sdev = None;
    for word in line.split_ascii_whitespace() {
        if let Some(v) = word.strip_prefix("ino:") {
            ino = u64::from_str_radix(v, 16).ok();
        } else if let Some(v) = word.strip_prefix("sdev:") {
            sdev = u64::from_str_radix(v, 16).ok();
        }
    }
    let (inode, sdev) = (ino?, sdev?);
    Some(WatchedInode {
        dev: format!("{}:{}", sdev >> 20, sdev & 0xf_ffff),
        inode,
        path: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inodes_in_userspace_dev_numbers() {
        let path = format!(
            "{}/testdata/fdinfo/inotify-inodes.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(path).expect("fixture");
        let mut d = AnonDetail::default();
        decode(&mut d, &text);
        assert_eq!(d.watches, Some(3));
        let got: Vec<(String, u64)> = d
            .inotify_inodes
            .expect("inodes")
            .into_iter()
            .map(|w| (w.dev, w.inode))
            .collect();
        // The third line's ino is not hex: counted as a watch, not listed.
        assert_eq!(
            got,
            vec![("254:0".to_owned(), 0x2e1), ("8:1".to_owned(), 0x13)]
        );
    }
}
