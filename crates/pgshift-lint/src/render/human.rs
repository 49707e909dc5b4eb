//! rustc-style diagnostics for a person at a terminal.
//!
//! ```text
//! error[PGS101 require-concurrent-index]: CREATE INDEX on "users" blocks writes while the index builds
//!   --> migrations/0002_idx.up.sql:3:1
//!    |
//!  3 | CREATE INDEX users_email_idx ON users (email);
//!    | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ takes SHARE on "users"
//!    |
//!    = help: ...
//! ```
//!
//! Hand-rolled rather than built on a diagnostics crate: the layout is small, and owning it lets
//! us handle what migration files really contain (tabs, CJK identifiers, CRLF, stray control
//! characters that would otherwise drive the user's terminal) without another dependency.

use std::io::{self, Write};

use pgshift_sql::{LineCol, LineIndex};

use crate::finding::{CheckedFile, Counts, Finding, Report, Severity};

use super::report_path;

/// A tab is shown as this many spaces, so carets line up whatever the terminal's tab stops are.
const TAB_WIDTH: usize = 4;

/// The widest source line shown, in terminal columns: a longer line is clipped to a window
/// around the marked columns, so a 50 MB one-line file prints a line, not 50 MB.
const MAX_SHOWN_COLUMNS: usize = 120;

/// Writes every finding as a rustc-style diagnostic, then a one-line summary
/// (`3 errors, 1 warning, 0 hints in 12 files`). ANSI colour only when `color` is true.
pub fn render_human(report: &Report, out: &mut dyn Write, color: bool) -> io::Result<()> {
    for file in &report.files {
        write_file(out, color, file)?;
    }
    write_summary(out, color, report.counts(), report.files.len())
}

/// One file's findings, as [`render_human`] writes them.
pub(crate) fn write_file(out: &mut dyn Write, color: bool, file: &CheckedFile) -> io::Result<()> {
    let paint = Paint { enabled: color };
    let index = LineIndex::new(&file.text);
    for finding in &file.findings {
        write_finding(out, &paint, file, &index, finding)?;
    }
    Ok(())
}

/// The closing line: how many findings of each severity, in how many files.
pub(crate) fn write_summary(
    out: &mut dyn Write,
    color: bool,
    counts: Counts,
    files: usize,
) -> io::Result<()> {
    let paint = Paint { enabled: color };
    let notes = if counts.note > 0 {
        format!(", {}", plural(counts.note, "note"))
    } else {
        String::new()
    };
    let summary = format!(
        "{}, {}, {}{notes} in {}",
        plural(counts.error, "error"),
        plural(counts.warning, "warning"),
        plural(counts.hint, "hint"),
        plural(files, "file"),
    );
    writeln!(out, "{}", paint.bold(&summary))
}

fn write_finding(
    out: &mut dyn Write,
    paint: &Paint,
    file: &CheckedFile,
    index: &LineIndex,
    finding: &Finding,
) -> io::Result<()> {
    let snippet = Snippet::new(&file.text, index, finding.start, finding.end);
    let gutter = snippet.as_ref().map_or(1, |s| digits(s.last_line()));
    let pad = " ".repeat(gutter);
    let severity = severity_name(finding.severity);

    writeln!(
        out,
        "{}{}",
        paint.severity(
            finding.severity,
            &format!("{severity}[{} {}]", finding.code, finding.rule)
        ),
        paint.bold(&format!(": {}", one_line(&finding.message))),
    )?;
    writeln!(
        out,
        "{pad} {} {}:{}:{}",
        paint.gutter("-->"),
        visible(&report_path(&finding.path)),
        finding.start.line,
        finding.start.column
    )?;

    let bar = paint.gutter("|");
    if let Some(snippet) = snippet {
        writeln!(out, "{pad}  {bar}")?;
        let label = label(finding);
        let last = snippet.lines.len() - 1;
        for (i, line) in snippet.lines.iter().enumerate() {
            if i == 1 && snippet.skipped {
                writeln!(out, "{}", paint.gutter("..."))?;
            }
            let number = paint.gutter(&format!("{:>gutter$} |", line.number));
            writeln!(out, " {number} {}", line.shown.trim_end())?;
            let carets = format!(
                "{}{}",
                " ".repeat(line.marker_start),
                "^".repeat(line.marker_width)
            );
            let text = if i == last && !label.is_empty() {
                format!(
                    "{} {}",
                    paint.severity(finding.severity, &carets),
                    visible(&label)
                )
            } else {
                paint.severity(finding.severity, &carets)
            };
            writeln!(out, "{pad}  {bar} {text}")?;
        }
    }
    if let Some(help) = finding.help.as_deref().filter(|h| !h.trim().is_empty()) {
        writeln!(out, "{pad}  {bar}")?;
        let indent = format!("{pad}  {}", " ".repeat("= help: ".len()));
        for (i, line) in help.trim_end().lines().enumerate() {
            let line = visible(line.trim_end());
            if i == 0 {
                writeln!(out, "{pad}  {} {line}", paint.bold("= help:"))?;
            } else if line.is_empty() {
                writeln!(out)?;
            } else {
                writeln!(out, "{indent}{line}")?;
            }
        }
    }
    writeln!(out)
}

/// The label under the carets: what the statement locks, and on which tables.
fn label(finding: &Finding) -> String {
    let Some(lock) = finding.lock else {
        return String::new();
    };
    let tables: Vec<String> = finding.tables.iter().map(|t| format!("\"{t}\"")).collect();
    match tables.as_slice() {
        [] => format!("takes {}", lock.sql_name()),
        [only] => format!("takes {} on {only}", lock.sql_name()),
        [init @ .., last] => format!(
            "takes {} on {} and {last}",
            lock.sql_name(),
            init.join(", ")
        ),
    }
}

/// The source lines a finding covers, as they will be shown: the first line, and for a span
/// over several lines its last line too (with `...` between when lines are left out).
struct Snippet {
    lines: Vec<SnippetLine>,
    skipped: bool,
}

struct SnippetLine {
    number: usize,
    /// The line with tabs expanded and control characters made visible.
    shown: String,
    /// Display columns before the first caret, and how many carets.
    marker_start: usize,
    marker_width: usize,
}

impl Snippet {
    /// `None` when the finding's position is not inside the text (then only the header is
    /// shown rather than a wrong line).
    fn new(text: &str, index: &LineIndex, start: LineCol, end: LineCol) -> Option<Snippet> {
        if start.line == 0 || start.line > index.line_count() {
            return None;
        }
        // A password on the shown line (`CREATE ROLE ... PASSWORD '...'`) is hidden; the
        // carets may then drift on that line, which matters less.
        let line_text = |n: usize| pgshift_sql::redact_secrets(&text[index.line_range(text, n)]);
        let mut end = if end < start { start } else { end };
        end.line = end.line.min(index.line_count());
        // A span that ends right after a newline ends, for the reader, on the line before.
        if end.line > start.line && end.column <= 1 {
            end.line -= 1;
            end.column = line_text(end.line).chars().count() + 1;
        }

        let first = line_text(start.line);
        if end.line == start.line {
            let line = SnippetLine::new(start.line, &first, start.column, Some(end.column));
            return Some(Snippet {
                lines: vec![line],
                skipped: false,
            });
        }
        let last_text = line_text(end.line);
        // The last line is marked from its first non-blank character: its indentation is not
        // part of what the finding is about.
        let indent = last_text.chars().take_while(|c| c.is_whitespace()).count();
        Some(Snippet {
            lines: vec![
                SnippetLine::new(start.line, &first, start.column, None),
                SnippetLine::new(end.line, &last_text, indent + 1, Some(end.column)),
            ],
            skipped: end.line > start.line + 1,
        })
    }

    fn last_line(&self) -> usize {
        self.lines.last().map_or(1, |l| l.number)
    }
}

impl SnippetLine {
    /// Marks columns `from..to` (1-based characters, `to` exclusive; `None`: to the end of the
    /// line). At least one caret is drawn, so an empty span (a syntax error at a point) shows.
    fn new(number: usize, line: &str, from: usize, to: Option<usize>) -> SnippetLine {
        let mut shown = String::new();
        let (mut marker_start, mut marker_width) = (None, 0);
        let mut width = 0;
        let from = from.max(1);
        let to = to.unwrap_or(usize::MAX);
        for (i, c) in line.chars().enumerate() {
            let column = i + 1;
            if column == from {
                marker_start = Some(width);
            }
            let (text, w) = display(c);
            if column >= from && column < to {
                marker_width += w;
            }
            shown.push_str(&text);
            width += w;
        }
        let mut line = SnippetLine {
            number,
            shown,
            // A column past the end of the line (end of file, end of a line) points just after it.
            marker_start: marker_start.unwrap_or(width),
            marker_width: marker_width.max(1),
        };
        line.clip(width);
        line
    }

    /// Keeps at most [`MAX_SHOWN_COLUMNS`] columns, around the first caret, marking each cut
    /// with `…`.
    fn clip(&mut self, width: usize) {
        if width <= MAX_SHOWN_COLUMNS {
            return;
        }
        let context = MAX_SHOWN_COLUMNS / 4;
        let from = self.marker_start.saturating_sub(context);
        let to = from + MAX_SHOWN_COLUMNS;
        let mut shown = String::new();
        let mut column = 0;
        if from > 0 {
            shown.push('…');
        }
        for c in self.shown.chars() {
            let w = char_width(c);
            if column >= from && column + w <= to {
                shown.push(c);
            }
            column += w;
            if column >= to {
                break;
            }
        }
        if column < width {
            shown.push('…');
        }
        let lead = usize::from(from > 0);
        self.marker_start = self.marker_start - from + lead;
        self.marker_width = self
            .marker_width
            .min(to - from - (self.marker_start - lead))
            .max(1);
        self.shown = shown;
    }
}

/// How a character is shown and how many terminal columns it takes.
fn display(c: char) -> (String, usize) {
    match c {
        '\t' => (" ".repeat(TAB_WIDTH), TAB_WIDTH),
        c if is_unsafe_for_terminal(c) => ('\u{FFFD}'.to_string(), 1),
        c => (c.to_string(), char_width(c)),
    }
}

/// Control characters (an escape sequence in a migration file would drive the terminal) and the
/// bidirectional overrides that make text read differently from what it is.
fn is_unsafe_for_terminal(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Terminal columns of a printable character: 2 for East Asian wide and emoji, 0 for combining
/// marks and zero-width characters, else 1. A small table rather than the `unicode-width`
/// crate: it covers what appears in SQL identifiers and comments, and a wrong width only shifts
/// the carets.
fn char_width(c: char) -> usize {
    match u32::from(c) {
        0x0300..=0x036F | 0x200B..=0x200F | 0x20D0..=0x20FF | 0xFE00..=0xFE0F | 0xFEFF => 0,
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF
        | 0x20000..=0x3FFFD => 2,
        _ => 1,
    }
}

/// Text from a finding, safe to print: control characters made visible.
fn visible(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '\t' {
                ' '
            } else if is_unsafe_for_terminal(c) {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// A message on one line: the header is a single line in every tool that reads it.
fn one_line(text: &str) -> String {
    visible(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Hint => "hint",
        Severity::Note => "note",
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn digits(mut n: usize) -> usize {
    let mut count = 1;
    while n >= 10 {
        n /= 10;
        count += 1;
    }
    count
}

/// ANSI styling, or none.
struct Paint {
    enabled: bool,
}

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.enabled && !text.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn bold(&self, text: &str) -> String {
        self.wrap("1", text)
    }

    fn gutter(&self, text: &str) -> String {
        self.wrap("1;34", text)
    }

    fn severity(&self, severity: Severity, text: &str) -> String {
        let code = match severity {
            Severity::Error => "1;31",
            Severity::Warning => "1;33",
            Severity::Hint => "1;36",
            Severity::Note => "1;32",
        };
        self.wrap(code, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snippet(text: &str, start: (usize, usize), end: (usize, usize)) -> Snippet {
        let index = LineIndex::new(text);
        let lc = |(line, column)| LineCol { line, column };
        match Snippet::new(text, &index, lc(start), lc(end)) {
            Some(s) => s,
            None => panic!("no snippet for {start:?}..{end:?}"),
        }
    }

    #[test]
    fn carets_count_display_columns_not_bytes() {
        let s = snippet("SELECT 'héllo', 名前 FROM t;", (1, 17), (1, 19));
        let line = &s.lines[0];
        assert_eq!(line.marker_start, 16);
        assert_eq!(
            line.marker_width, 4,
            "two wide characters take four columns"
        );
    }

    #[test]
    fn tabs_expand_and_carets_follow() {
        let s = snippet("\tALTER TABLE t;", (1, 2), (1, 7));
        assert_eq!(s.lines[0].shown, "    ALTER TABLE t;");
        assert_eq!((s.lines[0].marker_start, s.lines[0].marker_width), (4, 5));
    }

    #[test]
    fn multi_line_spans_show_first_and_last_line() {
        let text = "ALTER TABLE t\n  ADD COLUMN a int,\n  ADD COLUMN b int;\n";
        let s = snippet(text, (1, 1), (3, 19));
        assert!(s.skipped);
        assert_eq!(
            s.lines.iter().map(|l| l.number).collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert_eq!((s.lines[1].marker_start, s.lines[1].marker_width), (2, 16));
        let two = snippet(text, (1, 1), (2, 5));
        assert!(!two.skipped);
    }

    #[test]
    fn a_span_ending_at_a_line_start_ends_on_the_line_before() {
        let s = snippet("DROP TABLE t;\nSELECT 1;", (1, 1), (2, 1));
        assert_eq!(s.lines.len(), 1);
        assert_eq!(s.lines[0].marker_width, 13);
    }

    #[test]
    fn positions_outside_the_text_give_no_snippet_or_a_single_caret() {
        let text = "SELECT 1;";
        let index = LineIndex::new(text);
        let at = |line, column| LineCol { line, column };
        assert!(Snippet::new(text, &index, at(5, 1), at(5, 2)).is_none());
        let s = snippet(text, (1, 40), (1, 40));
        assert_eq!((s.lines[0].marker_start, s.lines[0].marker_width), (9, 1));
    }

    #[test]
    fn escape_sequences_in_files_do_not_reach_the_terminal() {
        let s = snippet("SELECT '\x1b[31m' \u{202E}x;", (1, 1), (1, 3));
        assert!(!s.lines[0].shown.contains('\x1b'));
        assert!(!s.lines[0].shown.contains('\u{202E}'));
        assert_eq!(one_line("a\n\x1b b"), "a \u{FFFD} b");
    }

    #[test]
    fn summary_words_agree_with_counts() {
        assert_eq!(plural(1, "error"), "1 error");
        assert_eq!(plural(0, "hint"), "0 hints");
        assert_eq!(digits(9), 1);
        assert_eq!(digits(10), 2);
    }
}
