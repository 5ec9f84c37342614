//! Small byte and text helpers shared by every stage.

use std::fmt::Write as _;

/// Lowercase hex of `bytes`.
pub fn hex_encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Bytes of a hex string; `None` when it is not valid hex.
pub fn hex_decode(hex: &str) -> Option<Vec<u8>> {
    let h = hex.as_bytes();
    if h.len() % 2 != 0 {
        return None;
    }
    h.chunks(2)
        .map(|p| Some((hex_digit(p[0])? << 4) | hex_digit(p[1])?))
        .collect()
}

/// Whether `hex` encodes exactly `raw`, without allocating.
pub fn hex_eq(hex: &str, raw: &[u8]) -> bool {
    let h = hex.as_bytes();
    h.len() == raw.len() * 2
        && h.chunks(2).zip(raw).all(|(p, &b)| {
            matches!((hex_digit(p[0]), hex_digit(p[1])), (Some(hi), Some(lo)) if (hi << 4 | lo) == b)
        })
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Text of `raw` plus its hex when it is not UTF-8 (the model's `target`/`target_hex` pair).
pub fn text_and_hex(raw: &[u8]) -> (String, Option<String>) {
    match std::str::from_utf8(raw) {
        Ok(s) => (s.to_owned(), None),
        Err(_) => (
            String::from_utf8_lossy(raw).into_owned(),
            Some(hex_encode(raw)),
        ),
    }
}

/// `s` with control characters escaped, so that one name stays on one table line.
pub fn escape_control(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let raw = b"/tmp/\xff\xfe name\n";
        let hex = hex_encode(raw);
        assert_eq!(hex_decode(&hex).unwrap(), raw);
        assert!(hex_eq(&hex, raw));
        assert!(!hex_eq(&hex, b"/tmp/"));
        assert_eq!(hex_decode("zz"), None);
    }

    #[test]
    fn text_and_hex_only_for_invalid_utf8() {
        assert_eq!(text_and_hex(b"/a b"), ("/a b".to_owned(), None));
        let (t, h) = text_and_hex(b"/a\xff");
        assert_eq!(t, "/a\u{fffd}");
        assert_eq!(h.as_deref(), Some("2f61ff"));
    }

    #[test]
    fn escapes_control_characters() {
        assert_eq!(escape_control("a\nb\tc\u{7}"), "a\\nb\\tc\\x07");
        assert_eq!(escape_control("plain"), "plain");
    }
}
