//! A small lexical pass over SQL text that finds what the PostgreSQL parser does not report:
//! comments (where directives live), top-level statement boundaries (used only to recover
//! after a syntax error), and the data blocks that follow `COPY ... FROM stdin` (as pg_dump
//! writes them), which are not SQL at all and must be hidden from the parser.
//!
//! It understands exactly the constructs that can hide a `;` or a comment marker: quoted
//! strings (`'..'`, `E'..'` with backslash escapes), quoted identifiers, dollar quotes
//! (`$tag$..$tag$`), line comments and nested block comments. Everything else is left to
//! pg_query.

use std::borrow::Cow;
use std::ops::Range;

/// What the lexical pass found, as byte ranges into the text it was given.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Lexed {
    /// `--` and `/* */` comments, markers included.
    pub comments: Vec<Range<usize>>,
    /// Top-level statement pieces, split at `;` outside parentheses, quotes and comments.
    /// Each piece excludes its `;`. Pieces holding only whitespace and comments are dropped.
    pub pieces: Vec<Range<usize>>,
    /// Data blocks of `COPY ... FROM stdin`, from the line after the statement up to and
    /// including the `\.` terminator line (or the end of the text).
    pub copy_data: Vec<Range<usize>>,
    /// psql meta-commands on their own line between statements (`\restrict KEY`, which
    /// pg_dump writes since 17.6/16.10/15.14, `\connect db`, `\set x 1`), without the newline.
    pub meta_commands: Vec<Range<usize>>,
    /// The start of the first block comment nested deeper than [`MAX_COMMENT_NESTING`].
    pub too_deep_comment: Option<usize>,
}

/// How deeply `/* /* */ */` comments may nest. PostgreSQL's scanner takes time quadratic in
/// the depth (100,000 levels in a 200 KB file kept it busy for over a minute), and no real
/// migration nests comments more than a few levels, so deeper input is refused.
pub const MAX_COMMENT_NESTING: usize = 1000;

/// Scans `text`. Never fails: unterminated constructs run to the end of the text (the parser
/// reports them as syntax errors).
pub fn lex(text: &str) -> Lexed {
    let b = text.as_bytes();
    let mut out = Lexed::default();
    let mut i = 0;
    let mut depth: i32 = 0;
    let mut piece_start = 0;
    let mut piece_has_code = false;
    // Lower-cased words of the current piece (only the first few matter: COPY ... FROM STDIN).
    let mut words: Vec<String> = Vec::new();

    while i < b.len() {
        let c = b[i];
        match c {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                let end = memchr(b'\n', b, i).unwrap_or(b.len());
                out.comments.push(i..end);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let (end, depth) = block_comment(b, i);
                if depth > MAX_COMMENT_NESTING && out.too_deep_comment.is_none() {
                    out.too_deep_comment = Some(i);
                }
                out.comments.push(i..end);
                i = end;
            }
            b'\'' => {
                piece_has_code = true;
                let escapes =
                    i > 0 && matches!(b[i - 1], b'e' | b'E') && (i < 2 || !is_ident_byte(b[i - 2]));
                i = quoted_end(b, i, b'\'', escapes);
            }
            b'"' => {
                piece_has_code = true;
                i = quoted_end(b, i, b'"', false);
            }
            b'$' => {
                piece_has_code = true;
                match dollar_tag(b, i) {
                    Some(tag_len) => {
                        let tag = &b[i..i + tag_len];
                        let body = i + tag_len;
                        i = find(b, body, tag).map_or(b.len(), |p| p + tag_len);
                    }
                    None => i += 1,
                }
            }
            b'\\' if !piece_has_code && (i == 0 || b[i - 1] == b'\n') => {
                // A psql meta-command: the whole line, not SQL.
                let end = memchr(b'\n', b, i).unwrap_or(b.len());
                let end = if end > i && b[end - 1] == b'\r' {
                    end - 1
                } else {
                    end
                };
                out.meta_commands.push(i..end);
                i = end;
                piece_start = i;
            }
            b'(' => {
                piece_has_code = true;
                depth += 1;
                i += 1;
            }
            b')' => {
                piece_has_code = true;
                depth -= 1;
                i += 1;
            }
            b';' if depth <= 0 => {
                if piece_has_code {
                    out.pieces.push(piece_start..i);
                }
                i += 1;
                depth = 0;
                if is_copy_from_stdin(&words) {
                    // The data starts on the next line and ends at a line that is exactly `\.`.
                    let data_start = memchr(b'\n', b, i).map_or(b.len(), |p| p + 1);
                    let data_end = copy_data_end(b, data_start);
                    if data_start < data_end {
                        out.copy_data.push(data_start..data_end);
                    }
                    i = data_end;
                }
                piece_start = i;
                piece_has_code = false;
                words.clear();
            }
            _ if is_ident_start(c) && (i == 0 || !is_ident_byte(b[i - 1])) => {
                piece_has_code = true;
                let start = i;
                while i < b.len() && is_ident_byte(b[i]) {
                    i += 1;
                }
                if words.len() < 64 {
                    words.push(text[start..i].to_ascii_lowercase());
                }
            }
            _ => {
                if !c.is_ascii_whitespace() {
                    piece_has_code = true;
                }
                i += 1;
            }
        }
    }
    if piece_has_code {
        out.pieces.push(piece_start..b.len());
    }
    out
}

/// Returns the text with every range replaced by spaces (newlines kept), so byte offsets and
/// line numbers stay valid while the parser never sees the masked bytes. Borrowed when there
/// is nothing to mask, which is almost always: a copy would cost the file's size again.
pub fn mask<'a>(text: &'a str, ranges: &[Range<usize>]) -> Cow<'a, str> {
    if ranges.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut bytes = text.as_bytes().to_vec();
    for r in ranges {
        for byte in &mut bytes[r.clone()] {
            if *byte != b'\n' {
                *byte = b' ';
            }
        }
    }
    // Masked ranges start and end at line boundaries, and every masked byte became ASCII, so
    // the result is valid UTF-8; fall back to a lossy copy rather than trusting that blindly.
    Cow::Owned(
        String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

/// Skips whitespace and comments from `start`; returns the offset of the first code byte.
pub fn skip_trivia(text: &str, start: usize, end: usize) -> usize {
    let b = text.as_bytes();
    let mut i = start;
    while i < end {
        if b[i].is_ascii_whitespace() {
            i += 1;
        } else if b[i] == b'-' && b.get(i + 1) == Some(&b'-') {
            i = memchr(b'\n', b, i).unwrap_or(end).min(end);
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i = block_comment_end(b, i).min(end);
        } else {
            break;
        }
    }
    i
}

fn is_copy_from_stdin(words: &[String]) -> bool {
    if words.first().map(String::as_str) != Some("copy") {
        return false;
    }
    words.windows(2).any(|w| w[0] == "from" && w[1] == "stdin")
}

fn copy_data_end(b: &[u8], mut line: usize) -> usize {
    while line < b.len() {
        let eol = memchr(b'\n', b, line).unwrap_or(b.len());
        let content = &b[line..eol];
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        let next = if eol < b.len() { eol + 1 } else { eol };
        if content == b"\\." {
            return next;
        }
        line = next;
    }
    b.len()
}

pub(crate) fn memchr(needle: u8, b: &[u8], from: usize) -> Option<usize> {
    b.get(from..)?
        .iter()
        .position(|&x| x == needle)
        .map(|p| p + from)
}

pub(crate) fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || from > b.len() {
        return None;
    }
    b[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

pub(crate) fn block_comment_end(b: &[u8], start: usize) -> usize {
    block_comment(b, start).0
}

/// The end of the block comment at `start`, and how deeply it nests.
fn block_comment(b: &[u8], start: usize) -> (usize, usize) {
    // PostgreSQL block comments nest.
    let mut depth = 0usize;
    let mut deepest = 0;
    let mut i = start;
    while i + 1 < b.len() {
        if b[i] == b'/' && b[i + 1] == b'*' {
            depth += 1;
            deepest = deepest.max(depth);
            i += 2;
        } else if b[i] == b'*' && b[i + 1] == b'/' {
            depth = depth.saturating_sub(1);
            i += 2;
            if depth == 0 {
                return (i, deepest);
            }
        } else {
            i += 1;
        }
    }
    (b.len(), deepest)
}

pub(crate) fn quoted_end(b: &[u8], start: usize, quote: u8, backslash_escapes: bool) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        if backslash_escapes && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// Length of a dollar-quote opening tag at `start` (`$$` or `$tag$`), if there is one.
pub(crate) fn dollar_tag(b: &[u8], start: usize) -> Option<usize> {
    // `$1` is a parameter and `a$b` an identifier, not quotes.
    if start > 0 && is_ident_byte(b[start - 1]) {
        return None;
    }
    let mut i = start + 1;
    if b.get(i) == Some(&b'$') {
        return Some(2);
    }
    if !b.get(i).is_some_and(|&c| is_ident_start(c)) {
        return None;
    }
    while i < b.len() && is_ident_byte(b[i]) && b[i] != b'$' {
        i += 1;
    }
    (b.get(i) == Some(&b'$')).then_some(i + 1 - start)
}

pub(crate) fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

pub(crate) fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str) -> Vec<&str> {
        lex(text)
            .pieces
            .iter()
            .map(|r| text[r.clone()].trim())
            .collect()
    }

    #[test]
    fn splits_at_top_level_semicolons_only() {
        let sql = "select ';'; select \"a;b\"; select $$;$$; select $f$ $$ ; $f$; -- x;\nselect 1 /* ; /* ; */ */;";
        assert_eq!(
            pieces(sql),
            vec![
                "select ';'",
                "select \"a;b\"",
                "select $$;$$",
                "select $f$ $$ ; $f$",
                "-- x;\nselect 1 /* ; /* ; */ */"
            ]
        );
    }

    #[test]
    fn escape_strings_and_parameters() {
        assert_eq!(
            pieces(r"select E'it\'s;'; select 1"),
            vec![r"select E'it\'s;'", "select 1"]
        );
        // `$1` is a parameter, not the start of a dollar quote.
        assert_eq!(
            pieces("prepare p as select $1; select 2"),
            vec!["prepare p as select $1", "select 2"]
        );
    }

    #[test]
    fn parentheses_keep_rule_actions_together() {
        let sql = "create rule r as on insert to t do also (insert into a values (1); insert into b values (2)); select 1";
        assert_eq!(pieces(sql).len(), 2);
    }

    #[test]
    fn copy_from_stdin_data_is_found_and_masked() {
        let sql = "COPY t (a, b) FROM stdin;\n1\tit's; -- not sql\n2\t$$\n\\.\nSELECT 1;\n";
        let lexed = lex(sql);
        assert_eq!(lexed.copy_data.len(), 1);
        assert_eq!(
            &sql[lexed.copy_data[0].clone()],
            "1\tit's; -- not sql\n2\t$$\n\\.\n"
        );
        assert_eq!(lexed.pieces.len(), 2);
        assert!(
            lexed.comments.is_empty(),
            "comment markers inside COPY data are data"
        );
        let masked = mask(sql, &lexed.copy_data);
        assert_eq!(masked.len(), sql.len());
        assert_eq!(masked.lines().count(), sql.lines().count());
        assert!(masked.ends_with("SELECT 1;\n"));
    }

    #[test]
    fn psql_meta_commands_between_statements_are_not_sql() {
        let sql =
            "\\restrict abc123\nSELECT 1;\n\\connect other\r\nSELECT '\\x';\n\\unrestrict abc123\n";
        let lexed = lex(sql);
        let metas: Vec<&str> = lexed
            .meta_commands
            .iter()
            .map(|r| &sql[r.clone()])
            .collect();
        assert_eq!(
            metas,
            vec![
                "\\restrict abc123",
                "\\connect other",
                "\\unrestrict abc123"
            ]
        );
        assert_eq!(lexed.pieces.len(), 2);
        assert_eq!(pieces(sql), vec!["SELECT 1", "SELECT '\\x'"]);
    }

    #[test]
    fn comments_are_reported_with_markers() {
        let sql = "-- a\nselect 1; /* b */";
        let lexed = lex(sql);
        let texts: Vec<&str> = lexed.comments.iter().map(|r| &sql[r.clone()]).collect();
        assert_eq!(texts, vec!["-- a", "/* b */"]);
        assert_eq!(lexed.pieces.len(), 1, "a piece of only comments is dropped");
    }

    #[test]
    fn skip_trivia_skips_comments_and_space() {
        let sql = "  -- c\n /* d */ select";
        assert_eq!(&sql[skip_trivia(sql, 0, sql.len())..], "select");
    }
}
