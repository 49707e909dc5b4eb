//! Text that is safe to print: names and SQL come from files and databases, and a file name or
//! an identifier can hold an escape sequence that recolours, rewrites or hides what a terminal
//! or a CI log shows, or a newline that forges a line of output (a GitHub workflow command, a
//! log line). Every renderer passes such text through here.
//!
//! Escaped: the C0 controls (tab and newline too in [`printable_line`]), DEL, the C1 controls,
//! and the Unicode bidirectional overrides and isolates ("Trojan Source"), as `\x1b` for the
//! ASCII ones and `\u{202e}` for the others. Everything else, including any other non-ASCII
//! letter, is kept.

use std::borrow::Cow;

/// `text` with control characters escaped except newline and tab: for multi-line text such
/// as a statement shown in a report.
pub fn printable(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\n' || c == '\t')
}

/// `text` on one line: control characters escaped, newline, carriage return and tab
/// included. For names (files, tables, versions) and anything printed inside a line.
pub fn printable_line(text: &str) -> Cow<'_, str> {
    escape(text, |_| false)
}

/// Whether printing `c` could move the cursor, change colours, end a line or reorder text.
pub fn is_unsafe_to_print(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe_to_print(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !is_unsafe_to_print(c) || keep(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_line_breaks_are_shown_not_sent() {
        assert_eq!(printable_line("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(printable_line("one\ntwo\r"), "one\\ntwo\\r");
        assert_eq!(printable_line("x\u{9b}31m"), "x\\u{9b}31m");
        assert_eq!(printable_line("abc\u{202e}cba"), "abc\\u{202e}cba");
        assert_eq!(printable_line("\0"), "\\x00");
        assert_eq!(printable_line("\x7f"), "\\x7f");
        assert_eq!(
            printable("select 1;\n\tselect\x072"),
            "select 1;\n\tselect\\x072"
        );
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for text in ["users", "tàble ünïcode", "\"Mixed Case\"", "日本語", "a b"] {
            assert!(matches!(printable_line(text), Cow::Borrowed(t) if t == text));
        }
    }
}
