//! Parsing a script with the real PostgreSQL grammar (libpg_query through `pg_query`),
//! keeping file-relative byte spans for every statement and every syntax error.

use std::borrow::Cow;
use std::ffi::{c_char, c_int, CStr, CString};
use std::ops::Range;

use pg_query::protobuf;
use pg_query::NodeEnum;
use prost::Message;

use crate::lexer;
use crate::lines::char_position_to_offset;

/// One top-level statement of a script.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Byte range in the file: from the first token to the end of the statement, without
    /// leading comments and without the terminating `;`.
    pub span: Range<usize>,
    /// The parse tree of the statement.
    pub node: NodeEnum,
    /// For `COPY ... FROM stdin`: the data block that follows the statement (ends with the
    /// `\.` line when present).
    pub copy_data: Option<Range<usize>>,
}

impl Statement {
    /// The statement's SQL text in `file_text`.
    pub fn text<'a>(&self, file_text: &'a str) -> &'a str {
        &file_text[self.span.clone()]
    }
}

/// A syntax error, positioned in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Byte offset in the file where PostgreSQL's parser stopped.
    pub offset: usize,
    /// The byte range of the statement that failed to parse.
    pub statement: Range<usize>,
    /// PostgreSQL's message, e.g. `syntax error at or near "DEFAULT"`.
    pub message: String,
}

/// A comment, with its markers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub span: Range<usize>,
}

impl Comment {
    pub fn text<'a>(&self, file_text: &'a str) -> &'a str {
        &file_text[self.span.clone()]
    }
}

/// Everything pgshift needs to know about a script's text.
#[derive(Debug, Clone, Default)]
pub struct ParsedScript {
    /// Statements in order. After a syntax error, the statements around it that parse on
    /// their own are still here, so analysis of the rest of the file goes on.
    pub statements: Vec<Statement>,
    pub comments: Vec<Comment>,
    pub errors: Vec<SyntaxError>,
    /// psql meta-commands between statements (`\restrict`, `\connect`, ...), file-relative,
    /// without the line ending. They are not SQL: the parser never sees them.
    pub meta_commands: Vec<Range<usize>>,
}

impl ParsedScript {
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The comments between the end of the previous statement (or `range_start`) and the start
    /// of statement `index`, plus a comment that starts on the same line right after the
    /// statement ends: the comments that speak about this statement.
    pub fn comments_for(&self, file_text: &str, index: usize, range_start: usize) -> Vec<&Comment> {
        self.comment_indices_for(file_text, index, range_start)
            .into_iter()
            .map(|i| &self.comments[i])
            .collect()
    }

    /// [`ParsedScript::comments_for`], as indices into `comments`. Looks only at the comments
    /// that start near the statement (comments are in file order), so asking for every
    /// statement of a file is linear in its size, not quadratic.
    pub fn comment_indices_for(
        &self,
        file_text: &str,
        index: usize,
        range_start: usize,
    ) -> Vec<usize> {
        let Some(stmt) = self.statements.get(index) else {
            return Vec::new();
        };
        let prev = index.checked_sub(1).and_then(|i| self.statements.get(i));
        comments_near(
            &self.comments,
            file_text,
            prev.map(|p| &p.span),
            &stmt.span,
            range_start,
        )
    }
}

/// The indices of the comments about the statement at `span`, whose predecessor (if any) is
/// at `prev`: see [`ParsedScript::comments_for`].
pub fn comments_near(
    comments: &[Comment],
    file_text: &str,
    prev: Option<&Range<usize>>,
    span: &Range<usize>,
    range_start: usize,
) -> Vec<usize> {
    {
        let stmt_span = span;
        // A comment on the same line after the previous statement belongs to that statement.
        let before = prev.map_or(range_start, |prev| {
            let end = statement_end_with_semicolon(file_text, prev.end);
            file_text[end..]
                .find('\n')
                .map_or(file_text.len(), |p| end + p)
        });
        let after_end = statement_end_with_semicolon(file_text, stmt_span.end);
        let line_end = file_text[after_end..]
            .find('\n')
            .map_or(file_text.len(), |p| p + after_end);
        let from = before.min(stmt_span.start);
        let first = comments.partition_point(|c| c.span.start < from);
        let last = comments.partition_point(|c| c.span.start < line_end);
        (first..last.max(first))
            .filter(|&i| {
                let c = &comments[i];
                (c.span.start >= before && c.span.end <= stmt_span.start)
                    || (c.span.start >= stmt_span.end && c.span.start < line_end)
                    || (c.span.start > stmt_span.start && c.span.end <= stmt_span.end)
            })
            .collect()
    }
}

fn statement_end_with_semicolon(text: &str, end: usize) -> usize {
    let rest = &text[end.min(text.len())..];
    let trimmed = rest.trim_start_matches([' ', '\t']);
    if trimmed.starts_with(';') {
        end + (rest.len() - trimmed.len()) + 1
    } else {
        end
    }
}

const BYTE_ORDER_MARK: char = '\u{feff}';

/// Parses a whole text.
pub fn parse(text: &str) -> ParsedScript {
    parse_range(text, 0..text.len())
}

/// Parses the section `range` of `file_text` (a file can hold an up and a down section);
/// every span in the result is relative to `file_text`.
pub fn parse_range(file_text: &str, range: Range<usize>) -> ParsedScript {
    let Prepared {
        section,
        base,
        lexed,
        masked,
        mut script,
    } = prepare(file_text, range);
    if !script.errors.is_empty() {
        return script;
    }
    parse_prepared(section, base, &lexed, &masked, &mut script);
    script
}

/// A section of a file, lexed and masked, ready for the parser.
struct Prepared<'a> {
    section: &'a str,
    base: usize,
    lexed: lexer::Lexed,
    masked: Cow<'a, str>,
    /// Comments and meta-commands; an error when the text is refused before parsing.
    script: ParsedScript,
}

fn prepare(file_text: &str, range: Range<usize>) -> Prepared<'_> {
    let range = clamp_range(file_text, range);
    let section = &file_text[range.clone()];
    let base = range.start;
    let lexed = lexer::lex(section);
    let hidden: Vec<Range<usize>> = lexed
        .copy_data
        .iter()
        .chain(&lexed.meta_commands)
        .cloned()
        .collect();
    let mut masked = lexer::mask(section, &hidden);
    // A UTF-8 byte-order mark (Windows editors write one) is not SQL: PostgreSQL's parser reads
    // it as part of the first word ("syntax error at or near \"\u{feff}CREATE\""). Masked as
    // spaces so every offset into the file stays valid and no statement text includes it.
    if base == 0 && masked.starts_with(BYTE_ORDER_MARK) {
        masked
            .to_mut()
            .replace_range(..BYTE_ORDER_MARK.len_utf8(), "   ");
    }

    let mut script = ParsedScript {
        comments: lexed
            .comments
            .iter()
            .map(|r| Comment {
                span: shift(r, base),
            })
            .collect(),
        meta_commands: lexed.meta_commands.iter().map(|r| shift(r, base)).collect(),
        ..ParsedScript::default()
    };

    if let Some(at) = lexed.too_deep_comment {
        let start = lexer::skip_trivia(&masked, 0, masked.len()).min(at);
        script.errors.push(SyntaxError {
            offset: base + at,
            statement: base + start..base + masked.len(),
            message: format!(
                "block comments nested more than {} levels deep (`/* /* ...`): pgshift \
                 refuses them, because PostgreSQL's scanner takes time quadratic in the depth; \
                 close each comment before opening the next",
                lexer::MAX_COMMENT_NESTING
            ),
        });
    }
    Prepared {
        section,
        base,
        lexed,
        masked,
        script,
    }
}

/// Statements walked in order, parsed a run at a time when the text is large, so that no more
/// than one run's parse trees are alive at once: a parse tree takes about a hundred times the
/// bytes of its SQL (`INSERT ... VALUES` rows more), and a 50 MB migration file held them all.
/// A small text, or one whose runs do not parse on their own, is parsed whole, as by
/// [`parse_range`]. Walking a large text twice parses it twice.
pub struct StatementWalk<'a> {
    /// Comments, errors and meta-commands; `statements` is filled only when the text was parsed
    /// whole.
    pub script: ParsedScript,
    /// Every statement's span, in order.
    pub spans: Vec<Range<usize>>,
    /// The first statement that cannot run in a transaction block, and what it is.
    pub forbidden_in_transaction: Option<&'static str>,
    runs: Vec<Range<usize>>,
    prepared: Option<Prepared<'a>>,
}

/// Prepares `range` of `file_text` for [`StatementWalk::for_each`].
pub fn walk_range(file_text: &str, range: Range<usize>) -> StatementWalk<'_> {
    let mut prepared = prepare(file_text, range);
    let mut walk = StatementWalk {
        script: ParsedScript::default(),
        spans: Vec::new(),
        forbidden_in_transaction: None,
        runs: Vec::new(),
        prepared: None,
    };
    if prepared.script.errors.is_empty() && prepared.masked.len() > PARSE_CHUNK_BYTES {
        let runs = runs_of(&prepared.masked, &prepared.lexed);
        let mut all_parse = true;
        for run in &runs {
            let Ok(stmts) = raw_parse(&prepared.masked[run.clone()]) else {
                all_parse = false;
                break;
            };
            for s in statements_from(
                prepared.section,
                &prepared.masked,
                stmts,
                run.clone(),
                prepared.base,
                &prepared.lexed,
            ) {
                if walk.forbidden_in_transaction.is_none() {
                    walk.forbidden_in_transaction = crate::forbidden_in_transaction(&s.node);
                }
                walk.spans.push(s.span);
            }
        }
        if all_parse {
            walk.script = std::mem::take(&mut prepared.script);
            walk.runs = runs;
            walk.prepared = Some(prepared);
            return walk;
        }
        walk.spans.clear();
        walk.forbidden_in_transaction = None;
    }
    let Prepared {
        section,
        base,
        lexed,
        masked,
        mut script,
    } = prepared;
    if script.errors.is_empty() {
        parse_prepared(section, base, &lexed, &masked, &mut script);
    }
    walk.spans = script.statements.iter().map(|s| s.span.clone()).collect();
    walk.forbidden_in_transaction = script
        .statements
        .iter()
        .find_map(|s| crate::forbidden_in_transaction(&s.node));
    walk.script = script;
    walk
}

impl StatementWalk<'_> {
    /// Calls `each` with every statement's index and the statement, in order.
    pub fn for_each(&self, mut each: impl FnMut(usize, &Statement)) {
        let Some(p) = &self.prepared else {
            for (i, s) in self.script.statements.iter().enumerate() {
                each(i, s);
            }
            return;
        };
        let mut i = 0;
        for run in &self.runs {
            // Parsed once already in `walk_range`: the same text parses the same way again.
            let Ok(stmts) = raw_parse(&p.masked[run.clone()]) else {
                continue;
            };
            for s in statements_from(p.section, &p.masked, stmts, run.clone(), p.base, &p.lexed) {
                each(i, &s);
                i += 1;
            }
        }
    }

    /// The comments about statement `index` (indices into `script.comments`).
    pub fn comment_indices_for(
        &self,
        file_text: &str,
        index: usize,
        range_start: usize,
    ) -> Vec<usize> {
        let Some(span) = self.spans.get(index) else {
            return Vec::new();
        };
        let prev = index.checked_sub(1).and_then(|i| self.spans.get(i));
        comments_near(&self.script.comments, file_text, prev, span, range_start)
    }
}

/// Parses a prepared text whole, with recovery after syntax errors, into `script`.
fn parse_prepared(
    section: &str,
    base: usize,
    lexed: &lexer::Lexed,
    masked: &str,
    script: &mut ParsedScript,
) {
    if let Some(statements) = parse_in_chunks(section, masked, lexed, base) {
        script.statements = statements;
        return;
    }
    match raw_parse(masked) {
        Ok(stmts) => {
            script.statements =
                statements_from(section, masked, stmts, 0..masked.len(), base, lexed);
        }
        Err(_) => {
            // Recover: parse each top-level piece on its own, so one bad statement yields one
            // positioned error and the statements around it are still analysed.
            for piece in &lexed.pieces {
                let text = &masked[piece.clone()];
                match raw_parse(text) {
                    Ok(stmts) => script.statements.extend(statements_from(
                        section,
                        masked,
                        stmts,
                        piece.clone(),
                        base,
                        lexed,
                    )),
                    Err(err) => {
                        let start = lexer::skip_trivia(masked, piece.start, piece.end);
                        let offset = match err.cursor {
                            Some(pos) => piece.start + char_position_to_offset(text, pos),
                            None => start,
                        };
                        script.errors.push(SyntaxError {
                            offset: base + offset,
                            statement: base + start
                                ..base + trim_end(masked, &lexed.comments, start, piece.end),
                            message: err.message,
                        });
                    }
                }
            }
            if script.errors.is_empty() {
                // The whole text failed but every piece parsed: the pieces split something the
                // grammar needs whole (e.g. BEGIN ATOMIC bodies). Report the whole-text error.
                if let Err(err) = raw_parse(masked) {
                    let offset = err
                        .cursor
                        .map_or(0, |pos| char_position_to_offset(masked, pos));
                    script.statements.clear();
                    script.errors.push(SyntaxError {
                        offset: base + offset,
                        statement: base..base + section.len(),
                        message: err.message,
                    });
                }
            }
        }
    }
}

/// How much SQL text goes to the parser at once. libpg_query builds the tree of everything it
/// is given, serialises it and pgshift decodes it: for a whole 50 MB file, three copies of a
/// tree many times the size of the text at once. Parsing runs of whole statements of about
/// this size keeps that peak to one run's worth.
const PARSE_CHUNK_BYTES: usize = 64 * 1024;

/// Parses a long text as runs of whole top-level pieces. `None` when the text is short (one
/// parse, as before) or when a run does not parse on its own (a `BEGIN ATOMIC` body split at
/// one of its `;`, or a syntax error): the caller then parses the whole text, with recovery.
fn parse_in_chunks(
    section: &str,
    masked: &str,
    lexed: &lexer::Lexed,
    base: usize,
) -> Option<Vec<Statement>> {
    if masked.len() <= PARSE_CHUNK_BYTES {
        return None;
    }
    let mut statements = Vec::new();
    for run in runs_of(masked, lexed) {
        let stmts = raw_parse(&masked[run.clone()]).ok()?;
        statements.extend(statements_from(section, masked, stmts, run, base, lexed));
    }
    Some(statements)
}

/// Runs of whole top-level pieces of about [`PARSE_CHUNK_BYTES`], each with its final `;`.
fn runs_of(masked: &str, lexed: &lexer::Lexed) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut pieces = lexed.pieces.iter().peekable();
    while let Some(first) = pieces.next() {
        let mut end = first.end;
        while let Some(next) = pieces.peek() {
            if next.end - first.start > PARSE_CHUNK_BYTES {
                break;
            }
            end = next.end;
            pieces.next();
        }
        // The `;` that ends the run belongs to it.
        let end = if masked.as_bytes().get(end) == Some(&b';') {
            end + 1
        } else {
            end
        };
        runs.push(first.start..end);
    }
    runs
}

fn statements_from(
    section: &str,
    masked: &str,
    stmts: Vec<protobuf::RawStmt>,
    parsed: Range<usize>,
    base: usize,
    lexed: &lexer::Lexed,
) -> Vec<Statement> {
    let mut out = Vec::with_capacity(stmts.len());
    for raw in stmts {
        // Taken, not cloned: a clone doubled the peak memory of a large file.
        let Some(node) = raw.stmt.and_then(|n| n.node) else {
            continue;
        };
        // libpg_query reports offsets in bytes of the text it was given.
        let loc = parsed.start + usize::try_from(raw.stmt_location).unwrap_or(0);
        let end = if raw.stmt_len <= 0 {
            // stmt_len 0 means "to the end of the text that was parsed" (the last statement
            // has no `;`). Not the next `;` found by the lexer: a `BEGIN ATOMIC ... END` body
            // holds `;`s the lexer does not know belong to it.
            parsed.end
        } else {
            loc + usize::try_from(raw.stmt_len).unwrap_or(0)
        };
        let end = end.min(section.len());
        let start = lexer::skip_trivia(masked, loc.min(end), end);
        let end = trim_end(masked, &lexed.comments, start, end);
        let data = if matches!(&node, NodeEnum::CopyStmt(c) if c.is_from && c.filename.is_empty() && !c.is_program)
        {
            lexed
                .copy_data
                .iter()
                .find(|d| d.start >= end)
                .map(|d| shift(d, base))
        } else {
            None
        };
        out.push(Statement {
            span: base + start..base + end,
            node,
            copy_data: data,
        });
    }
    out
}

/// Drops trailing whitespace and comments from a statement range. `comments`: the comments of
/// `text`, in order (the lexer's, which read it already).
fn trim_end(text: &str, comments: &[Range<usize>], start: usize, end: usize) -> usize {
    // The comments that start inside the range.
    let from = comments.partition_point(|c| c.start < start);
    let to = comments.partition_point(|c| c.start < end);
    let inside = &comments[from..to.max(from)];
    let mut e = start + text[start..end].trim_end().len();
    // A trailing line comment would otherwise be part of the statement's span.
    while let Some(c) = inside.iter().rev().find(|c| c.end >= e && c.start < e) {
        e = start + text[start..c.start].trim_end().len();
    }
    e
}

fn shift(r: &Range<usize>, by: usize) -> Range<usize> {
    r.start + by..r.end + by
}

fn clamp_range(text: &str, r: Range<usize>) -> Range<usize> {
    let end = crate::lines::floor_char_boundary(text, r.end);
    let start = crate::lines::floor_char_boundary(text, r.start.min(end));
    start..end
}

/// A parse failure straight from libpg_query.
#[derive(Debug)]
pub(crate) struct RawError {
    pub message: String,
    /// 1-based character position in the input, when the parser knows it.
    pub cursor: Option<usize>,
}

// pg_query's safe API drops libpg_query's cursor position, which is what lets us point at the
// exact token; libpg_query is already linked into the binary, so we call it directly.
#[repr(C)]
struct PgQueryError {
    message: *mut c_char,
    funcname: *mut c_char,
    filename: *mut c_char,
    lineno: c_int,
    cursorpos: c_int,
    context: *mut c_char,
}

#[repr(C)]
struct PgQueryProtobuf {
    len: usize,
    data: *mut c_char,
}

#[repr(C)]
struct PgQueryProtobufParseResult {
    parse_tree: PgQueryProtobuf,
    stderr_buffer: *mut c_char,
    error: *mut PgQueryError,
}

extern "C" {
    fn pg_query_parse_protobuf_opts(
        input: *const c_char,
        parser_options: c_int,
    ) -> PgQueryProtobufParseResult;
    fn pg_query_free_protobuf_parse_result(result: PgQueryProtobufParseResult);
}

pub(crate) fn raw_parse(text: &str) -> Result<Vec<protobuf::RawStmt>, RawError> {
    let input = CString::new(text).map_err(|e| RawError {
        message: "the text contains a NUL byte, which SQL cannot contain".to_string(),
        cursor: Some(text[..e.nul_position()].chars().count() + 1),
    })?;
    // SAFETY: `input` is a valid NUL-terminated string that outlives the call; the result is
    // read only before it is freed, exactly once, by the library's own free function.
    unsafe {
        let result = pg_query_parse_protobuf_opts(input.as_ptr(), 0);
        let outcome = if !result.error.is_null() {
            let err = &*result.error;
            let message = if err.message.is_null() {
                "syntax error".to_string()
            } else {
                CStr::from_ptr(err.message).to_string_lossy().into_owned()
            };
            Err(RawError {
                message,
                cursor: usize::try_from(err.cursorpos).ok().filter(|&p| p > 0),
            })
        } else if result.parse_tree.data.is_null() || result.parse_tree.len == 0 {
            Ok(Vec::new())
        } else {
            let data = std::slice::from_raw_parts(
                result.parse_tree.data as *const u8,
                result.parse_tree.len,
            );
            protobuf::ParseResult::decode(data)
                .map(|r| r.stmts)
                .map_err(|e| RawError {
                    message: format!("could not decode the parse tree: {e}"),
                    cursor: None,
                })
        };
        pg_query_free_protobuf_parse_result(result);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lines::LineIndex;

    fn spans(text: &str) -> Vec<&str> {
        parse(text)
            .statements
            .iter()
            .map(|s| s.text(text))
            .collect()
    }

    #[test]
    fn statements_have_exact_spans_without_comments_or_semicolons() {
        let sql = "-- header\nCREATE TABLE t (id int);\n\n/* c */ ALTER TABLE t ADD COLUMN x int; -- trailing\nSELECT 1";
        assert_eq!(
            spans(sql),
            vec![
                "CREATE TABLE t (id int)",
                "ALTER TABLE t ADD COLUMN x int",
                "SELECT 1"
            ]
        );
    }

    #[test]
    fn dollar_quoted_bodies_and_do_blocks_are_one_statement() {
        let sql = "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  NEW.x := 1; RETURN NEW;\nEND $$;\nDO $do$ BEGIN PERFORM 1; END $do$;\nCREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f();";
        let parsed = parse(sql);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.statements.len(), 3);
        assert!(matches!(parsed.statements[1].node, NodeEnum::DoStmt(_)));
    }

    #[test]
    fn copy_from_stdin_data_does_not_confuse_the_parser() {
        let sql = "CREATE TABLE t (a int, b text);\nCOPY t (a, b) FROM stdin;\n1\tit's ; DROP TABLE x;\n2\t\\N\n\\.\nSELECT count(*) FROM t;\n";
        let parsed = parse(sql);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.statements.len(), 3);
        let copy = &parsed.statements[1];
        let data = copy.copy_data.clone().expect("copy data");
        assert_eq!(&sql[data], "1\tit's ; DROP TABLE x;\n2\t\\N\n\\.\n");
        assert_eq!(parsed.statements[2].text(sql), "SELECT count(*) FROM t");
    }

    #[test]
    fn pg_dump_output_with_restrict_and_copy_parses() {
        let sql = "--\n-- PostgreSQL database dump\n--\n\\restrict Zx9\nSET statement_timeout = 0;\nCREATE TABLE public.t (id integer, s text);\nCOPY public.t (id, s) FROM stdin;\n1\ta\\tb; c\n\\.\n\n\\unrestrict Zx9\n";
        let parsed = parse(sql);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.statements.len(), 3);
        assert_eq!(parsed.meta_commands.len(), 2);
        assert_eq!(&sql[parsed.meta_commands[0].clone()], "\\restrict Zx9");
    }

    #[test]
    fn syntax_errors_point_at_the_token_and_the_rest_still_parses() {
        let sql =
            "SELECT 1;\nALTER TABLE t ADD COLUMN x int NOT NULL DEFAULT;\nCREATE INDEX i ON t (x);";
        let parsed = parse(sql);
        assert_eq!(parsed.errors.len(), 1);
        let err = &parsed.errors[0];
        let idx = LineIndex::new(sql);
        let at = idx.line_col(sql, err.offset);
        assert_eq!(
            (at.line, at.column),
            (2, 48),
            "points at the `;` after DEFAULT"
        );
        assert!(err.message.contains("syntax error"), "{}", err.message);
        assert_eq!(
            parsed.statements.len(),
            2,
            "the statements around the error are kept"
        );
    }

    #[test]
    fn sections_keep_file_relative_spans() {
        let file = "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n";
        let down_start = file.find("DROP").unwrap_or(0);
        let parsed = parse_range(file, down_start..file.len());
        assert_eq!(parsed.statements[0].span.start, down_start);
        assert_eq!(parsed.statements[0].text(file), "DROP TABLE a");
    }

    #[test]
    fn nul_bytes_and_garbage_are_errors_not_panics() {
        for text in [
            "select \0",
            "$$",
            "'",
            "/*",
            "COPY t FROM stdin;",
            "\u{feff}select 1",
            ";;;",
        ] {
            let _ = parse(text);
        }
        assert!(parse("select \0 1").has_errors());
    }

    #[test]
    fn a_byte_order_mark_at_the_start_of_the_file_is_not_sql() {
        let file = "\u{feff}CREATE TABLE a (id int);\r\nCREATE INDEX a_i ON a (id);\r\n";
        let parsed = parse(file);
        assert!(!parsed.has_errors(), "{:?}", parsed.errors);
        assert_eq!(parsed.statements.len(), 2);
        assert_eq!(parsed.statements[0].text(file), "CREATE TABLE a (id int)");
        assert_eq!(
            parsed.statements[0].span.start, 3,
            "spans stay file offsets"
        );
        // dbmate/goose: the up section starts at the top of the file, after the marker line.
        let file =
            "\u{feff}-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n";
        let up_end = file.find("-- migrate:down").unwrap_or(file.len());
        assert!(!parse_range(file, 0..up_end).has_errors());
        // Anywhere else U+FEFF is text (a zero-width no-break space), and stays an error.
        assert!(parse("SELECT 1;\n\u{feff}SELECT 2;").has_errors());
    }

    #[test]
    fn a_last_statement_without_semicolon_keeps_its_begin_atomic_body() {
        // stmt_len 0 ("to the end") used to be cut at the body's first `;`, so the runner
        // would have sent `... BEGIN ATOMIC SELECT 1` on its own.
        let sql = "SELECT 1;\nCREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END  -- done\n";
        assert_eq!(
            spans(sql),
            vec![
                "SELECT 1",
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END"
            ]
        );
    }

    #[test]
    fn function_bodies_are_not_top_level_statements() {
        let sql = "CREATE FUNCTION r() RETURNS void LANGUAGE sql AS $$ REFRESH MATERIALIZED VIEW CONCURRENTLY mv $$;";
        let parsed = parse(sql);
        assert_eq!(parsed.statements.len(), 1);
        assert!(matches!(
            parsed.statements[0].node,
            NodeEnum::CreateFunctionStmt(_)
        ));
    }

    #[test]
    fn comments_for_a_statement_include_leading_and_same_line_trailing() {
        let sql = "SELECT 1;\n-- pgshift:allow x because\nCREATE INDEX i ON t (a); -- same line\n-- next\nSELECT 2;";
        let parsed = parse(sql);
        let texts: Vec<&str> = parsed
            .comments_for(sql, 1, 0)
            .iter()
            .map(|c| c.text(sql))
            .collect();
        assert_eq!(texts, vec!["-- pgshift:allow x because", "-- same line"]);
    }
}
