//! Quoting of identifiers and literals for SQL that pgshift generates.
//!
//! Every identifier that pgshift writes into SQL goes through [`quote_ident`], and every
//! literal that cannot be passed as a bind parameter (DDL has no parameters) goes through
//! [`quote_literal`]. Having exactly one implementation of each is what makes a table named
//! `a"b; drop table x` safe everywhere.

/// Quotes an identifier for PostgreSQL: always wraps it in double quotes and doubles any
/// embedded double quote.
///
/// Quoting unconditionally (unlike PostgreSQL's own `quote_ident`, which leaves "simple" names
/// bare) keeps the case of mixed-case names and never depends on the keyword list of the
/// server version.
///
/// ```
/// use pgshift_db::quote_ident;
/// assert_eq!(quote_ident("users"), r#""users""#);
/// assert_eq!(quote_ident(r#"a"b"#), r#""a""b""#);
/// ```
pub fn quote_ident(ident: &str) -> String {
    let mut quoted = String::with_capacity(ident.len() + 2);
    quoted.push('"');
    for ch in ident.chars() {
        if ch == '"' {
            quoted.push('"');
        }
        quoted.push(ch);
    }
    quoted.push('"');
    quoted
}

/// Quotes a string literal for PostgreSQL, the way the server's `quote_literal` does:
/// single quotes are doubled, and when the value contains a backslash the literal is written
/// as an escape string (`E'...'`) with doubled backslashes, so the result means the same thing
/// whatever `standard_conforming_strings` is set to.
///
/// ```
/// use pgshift_db::quote_literal;
/// assert_eq!(quote_literal("it's"), "'it''s'");
/// assert_eq!(quote_literal(r"C:\dir"), r"E'C:\\dir'");
/// ```
pub fn quote_literal(value: &str) -> String {
    let has_backslash = value.contains('\\');
    let mut quoted = String::with_capacity(value.len() + 3);
    if has_backslash {
        quoted.push('E');
    }
    quoted.push('\'');
    for ch in value.chars() {
        match ch {
            '\'' => quoted.push_str("''"),
            '\\' => quoted.push_str("\\\\"),
            _ => quoted.push(ch),
        }
    }
    quoted.push('\'');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_always_quoted() {
        assert_eq!(quote_ident("t"), "\"t\"");
        assert_eq!(quote_ident("Mixed Case"), "\"Mixed Case\"");
        assert_eq!(quote_ident(""), "\"\"");
        assert_eq!(quote_ident("select"), "\"select\"");
    }

    #[test]
    fn embedded_double_quotes_are_doubled() {
        assert_eq!(
            quote_ident("a\"b; drop table x"),
            "\"a\"\"b; drop table x\""
        );
        assert_eq!(quote_ident("\"\""), "\"\"\"\"\"\"");
    }

    #[test]
    fn literals_double_single_quotes() {
        assert_eq!(quote_literal(""), "''");
        assert_eq!(quote_literal("o'clock"), "'o''clock'");
        assert_eq!(
            quote_literal("'; drop table x; --"),
            "'''; drop table x; --'"
        );
    }

    #[test]
    fn literals_with_backslashes_become_escape_strings() {
        assert_eq!(quote_literal("a\\'b"), "E'a\\\\''b'");
    }

    #[test]
    fn unicode_passes_through() {
        assert_eq!(quote_ident("tàble"), "\"tàble\"");
        assert_eq!(quote_literal("naïve"), "'naïve'");
    }
}
