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

/// Bidirectional overrides, embeddings, isolates and marks: invisible, they reorder what the
/// terminal shows after them, so a name could make a line read as something else.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn needs_escape(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// `s` with control characters and bidi controls escaped, so that one name stays on one line
/// and no outside text can move the cursor, color the terminal or reorder what follows.
pub fn escape_control(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() && (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `s` in single quotes with control and bidi characters escaped: how every outside value
/// appears in a message, so the message stays one line and cannot drive the terminal.
pub fn quoted(s: &str) -> String {
    format!("'{}'", escape_control(s))
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

    #[test]
    fn issue9_bidi_overrides_are_escaped() {
        assert_eq!(
            escape_control("a\u{202e}txt.exe\u{2066}b\u{2069}\u{200f}"),
            "a\\u{202e}txt.exe\\u{2066}b\\u{2069}\\u{200f}"
        );
        for c in ('\u{202a}'..='\u{202e}').chain('\u{2066}'..='\u{2069}') {
            let e = escape_control(&c.to_string()).into_owned();
            assert!(!e.contains(c) && e.starts_with("\\u{"), "{c:?} -> {e}");
        }
        // Ordinary non-ASCII text is kept as it is.
        assert_eq!(escape_control("café → ü"), "café → ü");
        assert_eq!(escape_control("\u{1b}[31m"), "\\x1b[31m");
    }
}
