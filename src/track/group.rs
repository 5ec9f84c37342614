//! Group keys: what makes fds "the same thing" when counting what accumulates — paths with
//! their varying parts collapsed, sockets by endpoint and state, anon inodes by subtype.

use crate::snapshot::{Detail, FdEntry, SocketDetail};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// How fds are grouped (`--group-by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// The normalized key (default).
    #[default]
    Key,
    /// The kind alone.
    Kind,
    /// The exact target.
    Target,
}

/// The listening TCP endpoints of one process, so that an accepted connection is grouped under
/// the listener it arrived on rather than under each client's address.
#[derive(Debug, Default, Clone)]
pub struct Listeners {
    by_port: HashMap<u16, (String, u32)>,
}

impl Listeners {
    pub fn add(&mut self, e: &FdEntry) {
        if let Some((local, port)) = listener(e) {
            self.by_port.entry(port).or_insert((local, 0)).1 += 1;
        }
    }

    pub fn remove(&mut self, e: &FdEntry) {
        if let Some((_, port)) = listener(e) {
            if let Some(v) = self.by_port.get_mut(&port) {
                v.1 = v.1.saturating_sub(1);
                if v.1 == 0 {
                    self.by_port.remove(&port);
                }
            }
        }
    }

    fn get(&self, port: u16) -> Option<&str> {
        self.by_port.get(&port).map(|(l, _)| l.as_str())
    }
}

fn listener(e: &FdEntry) -> Option<(String, u16)> {
    match &e.detail {
        Detail::Socket(s) if s.state.as_deref() == Some("LISTEN") => {
            let local = s.local.as_deref()?;
            Some((local.to_owned(), port(local)?))
        }
        _ => None,
    }
}

/// The port of "addr:port" or "[addr]:port".
pub fn port(endpoint: &str) -> Option<u16> {
    endpoint.rsplit_once(':')?.1.parse().ok()
}

/// The group key of one fd.
pub fn key(e: &FdEntry, by: GroupBy, listeners: &Listeners) -> String {
    match by {
        GroupBy::Kind => e.kind().as_str().to_owned(),
        GroupBy::Target => e.target.clone(),
        GroupBy::Key => normalized_key(e, listeners),
    }
}

fn normalized_key(e: &FdEntry, listeners: &Listeners) -> String {
    match &e.detail {
        Detail::File(f) => deleted(normalize_path(&f.path), f.deleted),
        Detail::Dir(d) => deleted(normalize_path(&d.path), d.deleted),
        Detail::Device(d) => normalize_path(&d.path),
        Detail::Pipe(p) => match &p.path {
            Some(path) => format!("fifo {}", normalize_path(path)),
            None => "pipe".to_owned(),
        },
        Detail::AnonInode(a) => format!("anon_inode:[{}]", a.subtype),
        Detail::Memfd(m) => format!("memfd:{}", normalize_path(&m.name)),
        Detail::Socket(s) => socket_key(s, listeners),
        Detail::Unknown(_) => normalize_path(&e.target),
    }
}

fn deleted(key: String, deleted: bool) -> String {
    if deleted { key + " (deleted)" } else { key }
}

fn socket_key(s: &SocketDetail, listeners: &Listeners) -> String {
    let state = s.state.as_deref().unwrap_or("");
    let with_state = |k: String| {
        if state.is_empty() {
            k
        } else {
            format!("{k} {state}")
        }
    };
    match s.proto.as_str() {
        "tcp" | "tcp6" | "udp" | "udp6" => {
            let local = s.local.as_deref().unwrap_or("?");
            match s.remote.as_deref().filter(|r| !is_unspecified(r)) {
                None if state == "LISTEN" => with_state(format!("{} {local}", s.proto)),
                // An unconnected UDP socket's port is usually ephemeral.
                None => with_state(format!("{} {}", s.proto, without_port(local))),
                Some(remote) => {
                    let lport = port(local);
                    if let Some(l) = lport.and_then(|p| listeners.get(p)) {
                        with_state(format!("{} {l} <- *", s.proto))
                    } else if lport.is_some_and(|p| p < 32768)
                        && port(remote).is_some_and(|p| p >= 32768)
                    {
                        // Not our listener but a well-known local port facing an ephemeral one:
                        // accepted on a listener this process inherited or passed on.
                        with_state(format!("{} {local} <- *", s.proto))
                    } else {
                        with_state(format!("{} -> {remote}", s.proto))
                    }
                }
            }
        }
        "unix" => {
            let ty = s.socket_type.as_deref().unwrap_or("socket");
            match &s.path {
                Some(p) => format!("unix {ty} {}", normalize_path(p)),
                None => format!("unix {ty}"),
            }
        }
        "netlink" => format!("netlink {}", s.netlink_family.as_deref().unwrap_or("?")),
        proto => with_state(proto.to_owned()),
    }
}

fn is_unspecified(remote: &str) -> bool {
    matches!(remote, "0.0.0.0:0" | "[::]:0" | "*:*" | "*")
}

fn without_port(endpoint: &str) -> String {
    match endpoint.rsplit_once(':') {
        Some((addr, _)) => format!("{addr}:*"),
        None => endpoint.to_owned(),
    }
}

/// Collapse the parts of a path that vary between otherwise-identical files: digit runs,
/// hex and uuid-like ids, and random mkstemp/tempfile suffixes all become `*`.
pub fn normalize_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, comp) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        normalize_component(comp, &mut out);
    }
    out
}

fn normalize_component(comp: &str, out: &mut String) {
    // Tokens are alphanumeric runs; separators are kept as they are.
    let mut last_star = false;
    let bytes = comp.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if !c.is_ascii_alphanumeric() {
            let ch_len = utf8_len(c);
            out.push_str(&comp[i..(i + ch_len).min(comp.len())]);
            i += ch_len;
            last_star = false;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let tok = &comp[start..i];
        let t = normalize_token(tok);
        // "a-1-2-3" style ids collapse into one star per token, but a uuid's five parts
        // each become a star anyway; keep them apart so the separators stay readable.
        if t == "*" && last_star && out.ends_with('*') {
            continue;
        }
        last_star = t.ends_with('*');
        out.push_str(&t);
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

fn normalize_token(tok: &str) -> String {
    let digits = tok.bytes().filter(u8::is_ascii_digit).count();
    let all_hex = tok.bytes().all(|b| b.is_ascii_hexdigit());
    if digits == tok.len() {
        return "*".to_owned();
    }
    // Hex ids (hashes, uuid parts): long enough and at least one digit.
    if all_hex && digits > 0 && tok.len() >= 4 {
        return "*".to_owned();
    }
    // tempfile/mkstemp names: a short known prefix glued to random characters.
    for prefix in ["tmp", "temp"] {
        if let Some(rest) = tok.strip_prefix(prefix) {
            if rest.len() >= 6 && looks_random(rest) {
                return format!("{prefix}*");
            }
        }
    }
    if tok.len() >= 6 && looks_random(tok) {
        return "*".to_owned();
    }
    // A word with a number in it: keep the word, collapse the number ("upload17" → "upload*").
    let mut s = String::with_capacity(tok.len());
    let mut prev_digit = false;
    for c in tok.chars() {
        if c.is_ascii_digit() {
            if !prev_digit {
                s.push('*');
            }
            prev_digit = true;
        } else {
            s.push(c);
            prev_digit = false;
        }
    }
    s
}

/// Random-looking: mixes digits with letters in a way words don't (a digit inside, or
/// lower and upper case interleaved).
fn looks_random(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let upper = b.iter().filter(|c| c.is_ascii_uppercase()).count();
    let lower = b.iter().filter(|c| c.is_ascii_lowercase()).count();
    let case_flips = b
        .windows(2)
        .filter(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase())
        .count();
    let digit_islands = b
        .windows(2)
        .filter(|w| w[0].is_ascii_alphabetic() && w[1].is_ascii_digit())
        .count();
    let letter_after_digit = b
        .windows(2)
        .any(|w| w[0].is_ascii_digit() && w[1].is_ascii_alphabetic());
    // mkstemp fills six characters from [A-Za-z0-9]: case that changes mid-word, or digits
    // inside letters; a Capitalized word or a word with a number at its end is not random.
    let mkstemp_like = b.len() == 6 && (case_flips >= 1 || letter_after_digit);
    mkstemp_like
        || (digits > 0 && digit_islands >= 2)
        || (upper > 0 && lower > 0 && case_flips >= 2)
        || (digits >= 2 && lower + upper >= 3 && digit_islands >= 1 && !b[0].is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::FileDetail;

    #[test]
    fn paths_collapse_their_varying_parts() {
        let cases = [
            ("/srv/upload-17.pdf", "/srv/upload-*.pdf"),
            ("/srv/upload-1234.pdf", "/srv/upload-*.pdf"),
            ("/tmp/tmpk2j3h4x9", "/tmp/tmp*"),
            ("/tmp/tmpa8F3kZ1q.json", "/tmp/tmp*.json"),
            ("/var/cache/0f9a8b7c6d5e4f30/data", "/var/cache/*/data"),
            ("/run/user/1000/bus", "/run/user/*/bus"),
            (
                "/tmp/123e4567-e89b-12d3-a456-426614174000.lock",
                "/tmp/*-*-*-*-*.lock",
            ),
            ("/var/log/nginx/access.log", "/var/log/nginx/access.log"),
            (
                "/usr/lib/x86_64-linux-gnu/libc.so.6",
                "/usr/lib/x*_*-linux-gnu/libc.so.*",
            ),
            ("/dev/pts/3", "/dev/pts/*"),
            ("/tmp/session_Xy7aB2qP", "/tmp/session_*"),
            (
                "/srv/docs/invoice-2024-0042.pdf",
                "/srv/docs/invoice-*-*.pdf",
            ),
            ("/tmp/naïve-1.txt", "/tmp/naïve-*.txt"),
            (
                "/tmp/fdiff-fixture-nKh1CH/upload-7.pdf",
                "/tmp/fdiff-fixture-*/upload-*.pdf",
            ),
            ("/tmp/fdiff-fixture-XyZabQ/a", "/tmp/fdiff-fixture-*/a"),
        ];
        for (path, want) in cases {
            assert_eq!(normalize_path(path), want, "{path}");
        }
    }

    #[test]
    fn words_are_not_mistaken_for_random_ids() {
        for p in [
            "/etc/passwd",
            "/srv/database.sqlite",
            "/tmp/fdiff-fixture/regular.txt",
            "/usr/share/zoneinfo/Europe/Berlin",
        ] {
            assert_eq!(normalize_path(p), p);
        }
    }

    fn sock(proto: &str, local: &str, remote: Option<&str>, state: &str) -> FdEntry {
        FdEntry {
            fd: 9,
            target: "socket:[1]".into(),
            target_hex: None,
            detail: Detail::Socket(SocketDetail {
                proto: proto.into(),
                inode: 1,
                local: Some(local.into()),
                remote: remote.map(Into::into),
                state: Some(state.into()),
                ..SocketDetail::default()
            }),
        }
    }

    #[test]
    fn sockets_group_by_endpoint_direction_and_state() {
        let mut l = Listeners::default();
        let listen = sock("tcp", "0.0.0.0:8080", Some("0.0.0.0:0"), "LISTEN");
        l.add(&listen);
        assert_eq!(key(&listen, GroupBy::Key, &l), "tcp 0.0.0.0:8080 LISTEN");
        let accepted = sock(
            "tcp",
            "10.0.0.2:8080",
            Some("10.0.0.9:51234"),
            "ESTABLISHED",
        );
        assert_eq!(
            key(&accepted, GroupBy::Key, &l),
            "tcp 0.0.0.0:8080 <- * ESTABLISHED"
        );
        let out = sock(
            "tcp",
            "10.0.0.2:51234",
            Some("10.0.0.5:5432"),
            "ESTABLISHED",
        );
        assert_eq!(
            key(&out, GroupBy::Key, &l),
            "tcp -> 10.0.0.5:5432 ESTABLISHED"
        );
        let udp = sock("udp", "0.0.0.0:40123", None, "UNCONN");
        assert_eq!(key(&udp, GroupBy::Key, &l), "udp 0.0.0.0:* UNCONN");
        l.remove(&listen);
        assert_eq!(
            key(&accepted, GroupBy::Key, &l),
            "tcp 10.0.0.2:8080 <- * ESTABLISHED"
        );
    }

    #[test]
    fn deleted_files_are_marked_and_group_by_modes() {
        let e = FdEntry {
            fd: 3,
            target: "/tmp/upload-3.pdf (deleted)".into(),
            target_hex: None,
            detail: Detail::File(FileDetail {
                path: "/tmp/upload-3.pdf".into(),
                deleted: true,
                ..FileDetail::default()
            }),
        };
        let l = Listeners::default();
        assert_eq!(key(&e, GroupBy::Key, &l), "/tmp/upload-*.pdf (deleted)");
        assert_eq!(key(&e, GroupBy::Kind, &l), "file");
        assert_eq!(key(&e, GroupBy::Target, &l), "/tmp/upload-3.pdf (deleted)");
    }
}
