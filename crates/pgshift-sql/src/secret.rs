//! Secrets written in SQL: `CREATE ROLE app PASSWORD 'x'`, `ALTER ROLE ... PASSWORD`,
//! `CREATE USER MAPPING ... OPTIONS (password 'x')`, `CREATE SUBSCRIPTION ... CONNECTION
//! 'host=... password=x'`. A migration may hold them; no report, log line, event or error
//! message may show them. [`redact_secrets`] is what every place that shows SQL text calls;
//! the SQL that runs is never changed.
//!
//! Redacted: the string literal after the word `password` (keyword or option name, quoted or
//! not, in any letter case, comments between allowed), and inside any other string literal
//! the value of a `password=` setting (a libpq connection string) and the password of a
//! `postgres://user:password@` URL.

use std::borrow::Cow;

use crate::lexer::{block_comment_end, dollar_tag, is_ident_byte, is_ident_start, quoted_end};

/// What replaces a secret: `'***'` for a literal, `***` inside one.
pub const REDACTED: &str = "***";

/// `sql` with every password literal replaced by `'***'`. Borrowed when there is none.
/// Never fails: unterminated constructs run to the end of the text, as in the lexer.
pub fn redact_secrets(sql: &str) -> Cow<'_, str> {
    redact_nested(sql, 0)
}

/// How deep SQL inside literals inside SQL is looked into (`EXECUTE 'ALTER ROLE ...'` in a
/// `DO $$ ... $$` block is two levels); bounded so hostile nesting cannot exhaust the stack.
const MAX_NESTING: usize = 4;

fn redact_nested(sql: &str, nesting: usize) -> Cow<'_, str> {
    // Cheap test first: almost no statement mentions a password.
    let lower = sql.to_ascii_lowercase();
    if !lower.contains("password") && !lower.contains("://") {
        return Cow::Borrowed(sql);
    }
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0;
    let mut i = 0;
    // The last word seen was `password`: the next literal is a secret.
    let mut after_password = false;
    while i < b.len() {
        let c = b[i];
        match c {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = crate::lexer::memchr(b'\n', b, i).unwrap_or(b.len());
            }
            b'/' if b.get(i + 1) == Some(&b'*') => i = block_comment_end(b, i),
            b'"' => {
                let end = quoted_end(b, i, b'"', false);
                let name = sql[i + 1..end.saturating_sub(1).max(i + 1)].replace("\"\"", "\"");
                after_password = name.eq_ignore_ascii_case("password");
                i = end;
            }
            b'\'' | b'$' => {
                let start = literal_start(b, i);
                let (end, body) = match c {
                    b'\'' => {
                        let escapes = start < i && matches!(b[start], b'e' | b'E');
                        let end = quoted_end(b, i, b'\'', escapes);
                        (end, i + 1..end.saturating_sub(1).max(i + 1))
                    }
                    _ => match dollar_tag(b, i) {
                        Some(tag_len) => {
                            let tag = &b[i..i + tag_len];
                            let body_start = i + tag_len;
                            match crate::lexer::find(b, body_start, tag) {
                                Some(p) => (p + tag_len, body_start..p),
                                None => (b.len(), body_start..b.len()),
                            }
                        }
                        None => {
                            i += 1;
                            continue;
                        }
                    },
                };
                if after_password {
                    out.push_str(&sql[copied..start]);
                    out.push('\'');
                    out.push_str(REDACTED);
                    out.push('\'');
                    copied = end;
                } else {
                    // A literal is often SQL itself (`DO $$ ... $$`, `EXECUTE '...'`).
                    let raw = &sql[body.clone()];
                    let plain_quotes = c == b'\'' && start == i;
                    let inner: Cow<'_, str> = if plain_quotes && raw.contains("''") {
                        Cow::Owned(raw.replace("''", "'"))
                    } else {
                        Cow::Borrowed(raw)
                    };
                    let mut changed = false;
                    let mut text = inner.clone().into_owned();
                    if nesting < MAX_NESTING && (c == b'$' || plain_quotes) {
                        if let Cow::Owned(t) = redact_nested(&inner, nesting + 1) {
                            text = t;
                            changed = true;
                        }
                    }
                    if let Cow::Owned(t) = redact_inside_literal(&text) {
                        text = t;
                        changed = true;
                    }
                    if changed {
                        if plain_quotes {
                            text = text.replace('\'', "''");
                        }
                        out.push_str(&sql[copied..body.start]);
                        out.push_str(&text);
                        copied = body.end;
                    }
                }
                after_password = false;
                i = end;
            }
            _ if is_ident_start(c) && (i == 0 || !is_ident_byte(b[i - 1])) => {
                let start = i;
                while i < b.len() && is_ident_byte(b[i]) {
                    i += 1;
                }
                let word = &sql[start..i];
                // `E'...'` and `U&'...'`: the prefix belongs to the literal that follows.
                let prefix = matches!(word, "e" | "E" | "u" | "U" | "b" | "B" | "x" | "X")
                    && matches!(b.get(i), Some(b'\'' | b'&'));
                if !prefix {
                    after_password = word.eq_ignore_ascii_case("password");
                }
            }
            _ => {
                if !c.is_ascii_whitespace() && c != b'&' {
                    after_password = false;
                }
                i += 1;
            }
        }
    }
    if copied == 0 {
        return Cow::Borrowed(sql);
    }
    out.push_str(&sql[copied..]);
    Cow::Owned(out)
}

/// Where the literal whose quote is at `quote` starts: before an `E`, `U&`, `B` or `X` prefix.
fn literal_start(b: &[u8], quote: usize) -> usize {
    let prefixed = |at: usize| at == 0 || !is_ident_byte(b[at - 1]);
    if quote >= 2
        && b[quote - 1] == b'&'
        && matches!(b[quote - 2], b'u' | b'U')
        && prefixed(quote - 2)
    {
        return quote - 2;
    }
    if quote >= 1
        && matches!(b[quote - 1], b'e' | b'E' | b'b' | b'B' | b'x' | b'X')
        && prefixed(quote - 1)
    {
        return quote - 1;
    }
    quote
}

/// Inside a literal: `password=VALUE` (libpq key/value) and `scheme://user:PASSWORD@`.
fn redact_inside_literal(text: &str) -> Cow<'_, str> {
    let lower = text.to_ascii_lowercase();
    if !lower.contains("password") && !lower.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let b = text.as_bytes();
    // key=value pairs.
    let mut from = 0;
    while let Some(pos) = lower[from..].find("password").map(|p| p + from) {
        let mut j = pos + "password".len();
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if b.get(j) != Some(&b'=') {
            from = pos + "password".len();
            continue;
        }
        j += 1;
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        let value_end = if matches!(b.get(j), Some(b'\'')) {
            // A quoted value in a connection string written inside a literal: `''p w''`.
            let mut k = j + 1;
            while k < b.len() && b[k] != b'\'' {
                k += 1;
            }
            (k + 1).min(b.len())
        } else {
            let mut k = j;
            while k < b.len() && !b[k].is_ascii_whitespace() && b[k] != b'&' {
                k += 1;
            }
            k
        };
        out.push_str(&text[copied..j]);
        out.push_str(REDACTED);
        copied = value_end;
        from = value_end.max(pos + 1);
    }
    // URLs: `://user:password@`.
    let mut rest_from = copied;
    while let Some(scheme) = text[rest_from..].find("://").map(|p| p + rest_from) {
        let auth = scheme + 3;
        let end = text[auth..]
            .find(|c: char| c.is_whitespace() || c == '\'')
            .map_or(text.len(), |p| p + auth);
        let authority = &text[auth..end];
        if let (Some(colon), Some(at)) = (authority.find(':'), authority.rfind('@')) {
            if colon < at {
                out.push_str(&text[copied..auth + colon + 1]);
                out.push_str(REDACTED);
                copied = auth + at;
            }
        }
        rest_from = end;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_passwords_are_hidden_in_every_spelling() {
        let cases = [
            (
                "CREATE ROLE app LOGIN PASSWORD 'S3cr3t'",
                "CREATE ROLE app LOGIN PASSWORD '***'",
            ),
            (
                "alter role app with encrypted password E'S3\\'cr3t';",
                "alter role app with encrypted password '***';",
            ),
            (
                "ALTER USER app PASSWORD /* new */ $pw$S3cr3t$pw$",
                "ALTER USER app PASSWORD /* new */ '***'",
            ),
            (
                "create role a password U&'S3cr3t' valid until 'infinity'",
                "create role a password '***' valid until 'infinity'",
            ),
            (
                "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'u', \"password\" 'S3cr3t')",
                "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'u', \"password\" '***')",
            ),
            (
                "ALTER USER MAPPING FOR app SERVER s OPTIONS (SET password 'S3cr3t')",
                "ALTER USER MAPPING FOR app SERVER s OPTIONS (SET password '***')",
            ),
        ];
        for (sql, want) in cases {
            assert_eq!(redact_secrets(sql), want, "{sql}");
        }
    }

    #[test]
    fn connection_strings_inside_literals_lose_their_password() {
        assert_eq!(
            redact_secrets(
                "CREATE SUBSCRIPTION s CONNECTION 'host=db password=S3cr3t dbname=x' PUBLICATION p"
            ),
            "CREATE SUBSCRIPTION s CONNECTION 'host=db password=*** dbname=x' PUBLICATION p"
        );
        assert_eq!(
            redact_secrets("DO $$ BEGIN EXECUTE 'ALTER ROLE a PASSWORD ''S3cr3t'''; END $$"),
            "DO $$ BEGIN EXECUTE 'ALTER ROLE a PASSWORD ''***'''; END $$"
        );
        assert_eq!(
            redact_secrets("select dblink_connect('postgres://u:S3/cr?t@db/x')"),
            "select dblink_connect('postgres://u:***@db/x')"
        );
    }

    #[test]
    fn text_without_secrets_is_borrowed() {
        for sql in [
            "CREATE INDEX i ON t (a)",
            "ALTER ROLE app PASSWORD NULL",
            "SET password_encryption = 'scram-sha-256'",
            "-- password 'x' in a comment is not SQL\nselect 1",
        ] {
            assert!(matches!(redact_secrets(sql), Cow::Borrowed(_)), "{sql}");
        }
    }
}
