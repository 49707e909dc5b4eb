//! Lines of a migration file with their byte offsets, and the comment directives that are read
//! line by line (`-- pgshift:no-transaction`, `-- migrate:up`, `-- +goose Up`, ...).

/// One line of a file. `text` has no line terminator (neither `\n` nor `\r\n`), and on the
/// first line no byte-order mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    /// 1-based line number.
    pub number: usize,
    /// Byte offset of the first character of the line.
    pub start: usize,
    /// Byte offset of the next line (after the terminator), or the file length.
    pub next: usize,
    pub text: &'a str,
}

/// The lines of `text`, with offsets. A final line without a terminator is included; an empty
/// text has no lines.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    let mut start = 0;
    let mut number = 0;
    std::iter::from_fn(move || {
        if start >= text.len() {
            return None;
        }
        let rest = &text[start..];
        let (body, next) = match rest.find('\n') {
            Some(i) => (&rest[..i], start + i + 1),
            None => (rest, text.len()),
        };
        let body = body.strip_suffix('\r').unwrap_or(body);
        number += 1;
        // A UTF-8 byte-order mark (Windows editors) must not hide a marker on the first line.
        let body = if number == 1 {
            body.strip_prefix('\u{feff}').unwrap_or(body)
        } else {
            body
        };
        let line = Line {
            number,
            start,
            next,
            text: body,
        };
        start = next;
        Some(line)
    })
}

/// The text after `--` when the line is a `--` comment (leading whitespace allowed).
pub(crate) fn comment_body(line: &str) -> Option<&str> {
    line.trim_start().strip_prefix("--")
}

/// Whether the line is blank or only a `--` comment.
pub(crate) fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with("--")
}

/// Whether a section holds pgshift's own marker, `-- pgshift:no-transaction`, on a line of its own.
pub(crate) fn has_pgshift_no_transaction(section: &str) -> bool {
    lines(section).any(|l| {
        comment_body(l.text)
            .map(str::trim_start)
            .and_then(|body| {
                // Any case, as every pgshift marker.
                let marker = "pgshift:no-transaction";
                body.get(..marker.len())
                    .filter(|m| m.eq_ignore_ascii_case(marker))
                    .map(|_| &body[marker.len()..])
            })
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
    })
}

/// The number of the line holding byte `offset`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_offsets_and_drop_terminators() {
        let text = "a\r\nbb\n\nc";
        let all: Vec<_> = lines(text).collect();
        assert_eq!(all.len(), 4);
        assert_eq!((all[0].text, all[0].start, all[0].next), ("a", 0, 3));
        assert_eq!((all[1].text, all[1].start, all[1].next), ("bb", 3, 6));
        assert_eq!((all[2].text, all[2].number), ("", 3));
        assert_eq!((all[3].text, all[3].start, all[3].next), ("c", 7, 8));
        assert_eq!(lines("").count(), 0);
        assert_eq!(
            lines("\u{feff}-- migrate:up\n")
                .next()
                .map(|l| (l.text, l.start)),
            Some(("-- migrate:up", 0))
        );
    }

    #[test]
    fn pgshift_marker_must_be_its_own_directive() {
        assert!(has_pgshift_no_transaction(
            "select 1;\n-- pgshift:no-transaction\n"
        ));
        assert!(has_pgshift_no_transaction(
            "  --pgshift:no-transaction because CIC"
        ));
        assert!(has_pgshift_no_transaction("-- PGSHIFT:No-Transaction"));
        assert!(!has_pgshift_no_transaction("-- pgshift:no-transactions"));
        assert!(!has_pgshift_no_transaction(
            "select '-- pgshift:no-transaction';"
        ));
    }

    #[test]
    fn line_of_counts_newlines() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
