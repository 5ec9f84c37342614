//! JSON that is safe to print: strings keep no bidi control raw, so a target's name cannot
//! reorder what a terminal, a pager or an editor shows of fdiff's JSON.
//!
//! serde_json already escapes C0 controls (`\u001b`) but writes every other character as is;
//! a file named `invoice-\u{202e}fdp.exe` would then print reversed from `cat`. The same
//! `\uXXXX` escape keeps the value exact for every JSON reader, so nothing is lost.

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};
use std::io;

/// How the document is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// One line (recordings, HTTP answers).
    Compact,
    /// Indented by two spaces (stdout).
    Pretty,
    /// One line inside an HTML `<script>`: `<` is escaped too, so no text can end the element,
    /// and so are U+2028/U+2029, which old JavaScript parsers took for line ends.
    Script,
}

/// Write `v` as JSON in `style` to `w`.
pub fn to_writer<W: io::Write, T: Serialize + ?Sized>(
    w: W,
    v: &T,
    style: Style,
) -> serde_json::Result<()> {
    match style {
        Style::Compact => v.serialize(&mut serde_json::Serializer::with_formatter(
            w,
            Escaping::new(CompactFormatter, false),
        )),
        Style::Script => v.serialize(&mut serde_json::Serializer::with_formatter(
            w,
            Escaping::new(CompactFormatter, true),
        )),
        Style::Pretty => v.serialize(&mut serde_json::Serializer::with_formatter(
            w,
            Escaping::new(PrettyFormatter::new(), false),
        )),
    }
}

/// Write `v` pretty, laid out as if it started `base` deep in a pretty document: every line
/// after the first is indented by `base` too. Escapes as [`Style::Pretty`] does.
pub fn to_writer_pretty_at<W: io::Write, T: Serialize + ?Sized>(
    w: W,
    v: &T,
    base: &[u8],
) -> serde_json::Result<()> {
    v.serialize(&mut serde_json::Serializer::with_formatter(
        w,
        Escaping::new(Nested::new(base), false),
    ))
}

/// `v` as a JSON string in `style`.
pub fn to_string<T: Serialize + ?Sized>(v: &T, style: Style) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(256);
    to_writer(&mut out, v, style)?;
    // The formatter writes whole UTF-8 fragments and ASCII escapes only.
    String::from_utf8(out).map_err(|e| serde::ser::Error::custom(e.to_string()))
}

/// serde_json's pretty layout (two spaces a level) for a value that starts `base` deep: each
/// new line is indented by `base` and then by its own level. Lets a caller render the parts
/// of a large document apart (on several threads) and splice them.
struct Nested<'a> {
    base: &'a [u8],
    level: usize,
    has_value: bool,
}

impl<'a> Nested<'a> {
    fn new(base: &'a [u8]) -> Self {
        Nested {
            base,
            level: 0,
            has_value: false,
        }
    }

    fn newline<W: ?Sized + io::Write>(&self, w: &mut W) -> io::Result<()> {
        w.write_all(b"\n")?;
        w.write_all(self.base)?;
        for _ in 0..self.level {
            w.write_all(b"  ")?;
        }
        Ok(())
    }

    fn open<W: ?Sized + io::Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close<W: ?Sized + io::Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.level -= 1;
        // An empty array or object stays `[]` / `{}` on its line.
        if self.has_value {
            self.newline(w)?;
        }
        w.write_all(bracket)
    }

    fn item<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        self.newline(w)
    }
}

impl Formatter for Nested<'_> {
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.item(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.item(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// Characters written as `\uXXXX` inside strings, beyond what serde_json escapes itself.
fn needs_escape(c: char, script: bool) -> bool {
    crate::util::is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}') || (script && c == '<')
}

/// A formatter that lays out as `inner` does and escapes [`needs_escape`] characters.
struct Escaping<F> {
    inner: F,
    script: bool,
}

impl<F> Escaping<F> {
    fn new(inner: F, script: bool) -> Self {
        Escaping { inner, script }
    }
}

impl<F: Formatter> Formatter for Escaping<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Nearly every fragment is plain ASCII: one fast check, one write.
        if (!self.script || !fragment.contains('<')) && fragment.is_ascii() {
            return w.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if needs_escape(c, self.script) {
                w.write_all(&fragment.as_bytes()[start..i])?;
                write!(w, "\\u{:04x}", u32::from(c))?;
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    // Layout: what PrettyFormatter changes, forwarded (the rest are serde_json's defaults,
    // the same for both layouts).
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.inner.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.inner.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn issue9_json_strings_carry_no_raw_bidi_control_and_read_back_exactly() {
        let v = json!({"path": "/tmp/invoice-\u{202e}fdp.exe", "n": [1, 2], "e": "\u{1b}[2J"});
        for style in [Style::Compact, Style::Pretty, Style::Script] {
            let s = to_string(&v, style).expect("json");
            assert!(!s.contains('\u{202e}'), "{style:?}: {s}");
            assert!(!s.contains('\u{1b}'), "{style:?}: {s}");
            assert!(s.contains("\\u202e"), "{style:?}: {s}");
            let back: serde_json::Value = serde_json::from_str(&s).expect("reads back");
            assert_eq!(back, v, "{style:?}");
        }
    }

    #[test]
    fn issue11_script_json_cannot_close_the_element() {
        let v = json!({"key": "</script><script>alert(1)</script>\u{2028}"});
        let s = to_string(&v, Style::Script).expect("json");
        assert!(!s.contains('<') && !s.contains('\u{2028}'), "{s}");
        let back: serde_json::Value = serde_json::from_str(&s).expect("reads back");
        assert_eq!(back, v);
    }

    #[test]
    fn pretty_lays_out_as_serde_json_does() {
        let v = json!({"a": [1, {"b": "c"}], "d": {}});
        assert_eq!(
            to_string(&v, Style::Pretty).expect("json"),
            serde_json::to_string_pretty(&v).expect("json")
        );
        assert_eq!(
            to_string(&v, Style::Compact).expect("json"),
            serde_json::to_string(&v).expect("json")
        );
    }
}
