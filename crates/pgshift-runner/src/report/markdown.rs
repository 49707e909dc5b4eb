//! Text from files and databases, made safe inside Markdown (a pull-request comment): a
//! newline or a `|` in a name must not break a table, a backtick must not end a code span, and
//! `<img ...>`, `*`, `[x](y)` in a name must show as written, not as markup.

use pgshift_sql::printable_line;

/// [`code`] for a table cell: `|` escaped too (GitHub splits a table row at `|` before it
/// reads code spans, and unescapes `\|` inside them).
pub fn code_cell(text: &str) -> String {
    code(&text.replace('|', "\\|"))
}

/// A code span holding `text` exactly: fenced with one more backtick than the longest run
/// inside, padded when the text starts or ends with a backtick (CommonMark). Newlines become
/// spaces, other control characters are shown escaped.
pub fn code(text: &str) -> String {
    let text = one_line(text);
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') || text.is_empty() {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// Plain text: every character Markdown or GitHub's HTML could read as markup is
/// backslash-escaped, `<` and `>` become entities, and newlines become spaces.
pub fn text(text: &str) -> String {
    let text = one_line(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// pgshift's own sentences, which mark code with backticks on purpose but quote names from
/// files and databases: kept as Markdown, except that a line break, a `|` (a table cell's end)
/// and HTML cannot come through.
pub fn prose(text: &str) -> String {
    one_line(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
}

/// A cell whose text may be put inside a single-backtick code span or outside one: newlines
/// become spaces, `|` is escaped and a backtick, which would end the span, is shown as `ˋ`.
/// For renderers that wrap the text themselves; [`code`] and [`text`] are exact.
pub fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|").replace('`', "ˋ")
}

fn one_line(text: &str) -> String {
    let flat = text.replace("\r\n", " ").replace(['\n', '\r'], " ");
    printable_line(&flat).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_hold_backticks_pipes_and_newlines() {
        assert_eq!(code("users"), "`users`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x`"), "`` `x` ``");
        assert_eq!(code_cell("a|b\nc"), "`a\\|b c`");
        assert_eq!(code("a|b"), "`a|b`");
        assert_eq!(code("e\x1b[31m"), "`e\\x1b[31m`");
    }

    #[test]
    fn text_is_never_markup() {
        assert_eq!(text("<img src=x>"), "&lt;img src=x&gt;");
        assert_eq!(text("**bold** [l](u)"), "\\*\\*bold\\*\\* \\[l\\](u)");
        assert_eq!(prose("run `pgshift up` <b>"), "run `pgshift up` &lt;b&gt;");
        assert_eq!(text("a\nb|c"), "a b\\|c");
    }
}
