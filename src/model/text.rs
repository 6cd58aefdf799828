//! Text from outside (certificate subjects and names, HTTP headers, XML and JSON answers, DNS
//! names, error strings) made safe to print: a hostile server must not be able to move a
//! terminal's cursor, recolour or clear the screen, ring its bell, or reverse the order in which
//! a reader sees the text. Every renderer and the logs go through [`escape_controls`].

use std::borrow::Cow;

/// Characters that change how text is shown instead of being shown: C0 controls (ESC, BEL, CR,
/// LF, TAB, ...), DEL, C1 controls (U+0080..U+009F, among them the 8-bit CSI), the bidirectional
/// formatting characters (embeddings, overrides, isolates, marks) and the line and paragraph
/// separators.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// `text` with every [`is_unsafe`] character written as an escape (`\n`, `\r`, `\t`, `\u{1b}`,
/// `\u{202e}`, ...); borrowed when there is nothing to escape.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// Appends `c`, escaped when it is [`is_unsafe`].
pub fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if is_unsafe(c) => {
            use std::fmt::Write;
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// Whether `text` starts with `prefix`, ASCII letters compared without case (protocol keywords:
/// `<!DOCTYPE html`, `* OK`). A match means the first `prefix.len()` bytes of `text` are ASCII
/// when `prefix` is, so slicing `text` there is at a character boundary.
pub fn starts_with_ignoring_ascii_case(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// Shortens `text` to at most `max_bytes`, at a character boundary (`String::truncate` panics
/// inside a character).
pub fn truncate_at_boundary(text: &mut String, max_bytes: usize) {
    if text.len() <= max_bytes {
        return;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_compared_without_ascii_case() {
        assert!(starts_with_ignoring_ascii_case(
            "<!DOCTYPE html>",
            "<!doctype html"
        ));
        assert!(starts_with_ignoring_ascii_case("* ok ready", "* OK"));
        assert!(!starts_with_ignoring_ascii_case("* O", "* OK"));
        // A multi-byte character where the prefix ends is a mismatch, never a panic.
        assert!(!starts_with_ignoring_ascii_case("* \u{c9}K", "* OK"));
        assert!(!starts_with_ignoring_ascii_case("\u{e9}", "e"));
    }

    #[test]
    fn terminal_controls_and_bidi_overrides_are_escaped() {
        assert_eq!(
            escape_controls("plain text, Ünïcode ✓"),
            "plain text, Ünïcode ✓"
        );
        assert!(matches!(escape_controls("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape_controls("a\u{1b}[2Jb\u{7}c\r\nd\te"),
            "a\\u{1b}[2Jb\\u{7}c\\r\\nd\\te"
        );
        assert_eq!(escape_controls("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(escape_controls("\u{7f}"), "\\u{7f}");
        assert_eq!(
            escape_controls("evil\u{202e}gpj.exe\u{2066}x\u{2069}\u{200f}"),
            "evil\\u{202e}gpj.exe\\u{2066}x\\u{2069}\\u{200f}"
        );
        assert_eq!(escape_controls("a\u{2028}b"), "a\\u{2028}b");
        for c in (0u32..0x20).chain(0x7f..0xa0) {
            let c = char::from_u32(c).unwrap();
            assert!(
                !escape_controls(&c.to_string()).chars().any(is_unsafe),
                "{c:?}"
            );
        }
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        let mut text = format!("{}\u{fffd}", "a".repeat(511));
        truncate_at_boundary(&mut text, 512);
        assert_eq!(text.len(), 511);
        let mut short = "abc".to_owned();
        truncate_at_boundary(&mut short, 512);
        assert_eq!(short, "abc");
    }
}
