//! Small readers for the `key:\tvalue` lines of /proc/PID/fdinfo/N, shared by the decoders.

/// The value after `key` on the first line that starts with it, trimmed; `None` when absent
/// or empty.
pub(crate) fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// A decimal field.
pub(crate) fn num<T: std::str::FromStr>(text: &str, key: &str) -> Option<T> {
    field(text, key)?.parse().ok()
}

/// A field the kernel prints as `0x…` (or bare hex).
pub(crate) fn hex(text: &str, key: &str) -> Option<u64> {
    let v = field(text, key)?;
    u64::from_str_radix(v.strip_prefix("0x").unwrap_or(v), 16).ok()
}
