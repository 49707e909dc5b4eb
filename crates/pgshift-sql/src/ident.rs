//! Identity: what an object is called, and how pgshift writes that name back into SQL.
//!
//! This is the one place that decides it, for every crate: [`QualifiedName`] (schema + name,
//! from a parse tree or from text), [`quote_ident`] and [`quote_literal`] for the SQL pgshift
//! generates, [`display_ident`] for messages, and [`truncate_identifier`] / [`clip`] for
//! PostgreSQL's 63-byte limit on names. A second implementation of any of these would sooner
//! or later quote, compare or shorten a name differently from this one; a test
//! (`tests/identity.rs`) fails when one appears elsewhere in the workspace.

use crate::lines::floor_char_boundary;
use pg_query::protobuf::{Node, RangeVar};
use pg_query::NodeEnum;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest identifier PostgreSQL keeps, in bytes (`NAMEDATALEN - 1`). Longer names are
/// truncated by the server with only a NOTICE.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// A possibly schema-qualified object name, as stored in the catalog (already unquoted:
/// `"Users"` is held as `Users`). `schema: None` means "resolved through `search_path`"; an
/// empty schema (as a `RangeVar` without one holds it) is stored as `None`.
///
/// Equality is exact; [`QualifiedName::same_object`] is the looser comparison rules use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QualifiedName {
    /// The schema; `None` means "resolve through `search_path`".
    pub schema: Option<String>,
    /// The object name.
    pub name: String,
}

impl QualifiedName {
    /// A name with an optional schema (an empty schema counts as none).
    pub fn new(schema: Option<&str>, name: &str) -> QualifiedName {
        QualifiedName {
            schema: schema.filter(|s| !s.is_empty()).map(str::to_string),
            name: name.to_string(),
        }
    }

    /// A schema-qualified name (an empty schema counts as none).
    pub fn qualified(schema: impl Into<String>, name: impl Into<String>) -> QualifiedName {
        let schema = schema.into();
        QualifiedName {
            schema: (!schema.is_empty()).then_some(schema),
            name: name.into(),
        }
    }

    /// A name resolved through `search_path`.
    pub fn unqualified(name: impl Into<String>) -> QualifiedName {
        QualifiedName {
            schema: None,
            name: name.into(),
        }
    }

    /// The relation a parse tree names (`FROM s.t`, `ALTER TABLE t`, ...).
    pub fn from_range_var(rv: &RangeVar) -> QualifiedName {
        QualifiedName::new(Some(rv.schemaname.as_str()), &rv.relname)
    }

    /// From a name list (`[schema, name]` or `[name]`) as DROP and type statements hold them;
    /// a catalog prefix (`[db, schema, name]`) is dropped.
    pub fn from_names(names: &[Node]) -> Option<QualifiedName> {
        let parts = strings(names);
        match parts.as_slice() {
            [name] => Some(QualifiedName::new(None, name)),
            [.., schema, name] => Some(QualifiedName::new(Some(schema), name)),
            [] => None,
        }
    }

    /// The names a `DROP` of relations or indexes lists, in order (its objects are name lists).
    pub fn dropped(d: &pg_query::protobuf::DropStmt) -> impl Iterator<Item = QualifiedName> + '_ {
        d.objects.iter().filter_map(|o| match &o.node {
            Some(NodeEnum::List(l)) => QualifiedName::from_names(&l.items),
            _ => None,
        })
    }

    /// A name written as SQL text (`users`, `app."Users"`), read the way the server reads
    /// it: unquoted parts folded to lower case, `""` inside quotes meaning one `"`, each part
    /// truncated to [`MAX_IDENTIFIER_BYTES`]. `None` when the text is not one or two
    /// identifiers separated by a dot.
    pub fn parse(text: &str) -> Option<QualifiedName> {
        let mut parts = Vec::new();
        let mut rest = text.trim();
        loop {
            let (part, after) = identifier(rest)?;
            parts.push(truncate_identifier(&part).to_string());
            match after.trim_start().strip_prefix('.') {
                Some(next) => rest = next.trim_start(),
                None if after.trim().is_empty() => break,
                None => return None,
            }
        }
        match parts.as_slice() {
            [name] => Some(QualifiedName::unqualified(name.clone())),
            [schema, name] => Some(QualifiedName::qualified(schema.clone(), name.clone())),
            _ => None,
        }
    }

    /// Whether both names can denote the same object: the names are equal and so are the
    /// schemas when both have one (an unqualified name in a migration usually means the same
    /// object as a qualified one elsewhere in it; a false match only makes a rule quieter).
    pub fn same_object(&self, other: &QualifiedName) -> bool {
        self.name == other.name
            && match (&self.schema, &other.schema) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }

    /// The name for use in SQL, every part quoted: `"public"."Users"`.
    pub fn quoted(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(&self.name)),
            None => quote_ident(&self.name),
        }
    }
}

impl fmt::Display for QualifiedName {
    /// The name for people: each part bare when it is a plain lower-case name, quoted
    /// otherwise (`public."Users"`). Use [`QualifiedName::quoted`] for SQL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            write!(f, "{}.", display_ident(schema))?;
        }
        f.write_str(&display_ident(&self.name))
    }
}

/// One identifier at the start of `text`, and the text after it.
fn identifier(text: &str) -> Option<(String, &str)> {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '"' {
                out.push(c);
            } else if quoted[i + 1..].starts_with('"') {
                out.push('"');
                chars.next();
            } else {
                // PostgreSQL rejects a zero-length delimited identifier.
                return (!out.is_empty()).then(|| (out, &quoted[i + 1..]));
            }
        }
        return None;
    }
    // The scanner's `ident_start` / `ident_cont`: ASCII letters, `_`, any non-ASCII character,
    // then also digits and `$`.
    let end = text
        .char_indices()
        .find(|&(i, c)| {
            let start = c.is_ascii_alphabetic() || c == '_' || !c.is_ascii();
            !(start || (i > 0 && (c.is_ascii_digit() || c == '$')))
        })
        .map_or(text.len(), |(i, _)| i);
    // The server folds only ASCII letters of an unquoted name (`downcase_identifier` in a
    // UTF-8 database).
    (end > 0).then(|| (text[..end].to_ascii_lowercase(), &text[end..]))
}

/// Quotes an identifier for PostgreSQL: always wraps it in double quotes and doubles any
/// embedded double quote. Every identifier pgshift writes into SQL goes through here, so a
/// table named `a"b; drop table x` stays one identifier.
///
/// Quoting unconditionally (unlike PostgreSQL's own `quote_ident`, which leaves "simple" names
/// bare) keeps the case of mixed-case names and never depends on the keyword list of the
/// server version.
///
/// ```
/// use pgshift_sql::ident::quote_ident;
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

/// Quotes a string literal for PostgreSQL, the way the server's `quote_literal` does: single
/// quotes are doubled, and when the value contains a backslash the literal is written as an
/// escape string (`E'...'`) with doubled backslashes, so the result means the same thing
/// whatever `standard_conforming_strings` is set to. For literals that cannot be bind
/// parameters (DDL has none).
///
/// ```
/// use pgshift_sql::ident::quote_literal;
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

/// An identifier as it reads best in a message: bare when it is a plain lower-case name
/// (ASCII letters, digits, `_`, `$`, not starting with a digit), double-quoted otherwise.
/// Keywords are left bare: this is for people, never for SQL.
pub fn display_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        name.to_string()
    } else {
        // A name can hold an escape sequence or a newline: shown, never sent to a terminal.
        crate::printable::printable_line(&quote_ident(name)).into_owned()
    }
}

/// The longest prefix of `name` of at most `max` bytes that ends on a character boundary
/// (PostgreSQL's `pg_mbcliplen`): how the server shortens a name without splitting a
/// multibyte character.
pub fn clip(name: &str, max: usize) -> &str {
    &name[..floor_char_boundary(name, max)]
}

/// `name` as the server stores it: cut to [`MAX_IDENTIFIER_BYTES`] on a character boundary
/// (PostgreSQL's `truncate_identifier`), so the name pgshift prints or looks up is the one
/// in the catalog.
pub fn truncate_identifier(name: &str) -> &str {
    clip(name, MAX_IDENTIFIER_BYTES)
}

/// The `String` nodes of a list, in order (other nodes are skipped): the parts of a dotted
/// name as the parse tree holds them.
pub fn strings(nodes: &[Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| match &n.node {
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_always_quoted() {
        assert_eq!(quote_ident("t"), "\"t\"");
        assert_eq!(quote_ident(""), "\"\"");
        assert_eq!(quote_ident("Users"), "\"Users\"");
        assert_eq!(quote_ident("Mixed Case"), "\"Mixed Case\"");
        // Reserved words need quotes to be names at all.
        assert_eq!(quote_ident("select"), "\"select\"");
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_ident("tàble"), "\"tàble\"");
        assert_eq!(quote_ident("表"), "\"表\"");
    }

    #[test]
    fn embedded_double_quotes_are_doubled() {
        assert_eq!(
            quote_ident("a\"b; drop table x"),
            "\"a\"\"b; drop table x\""
        );
        assert_eq!(quote_ident("\"\""), "\"\"\"\"\"\"");
        assert_eq!(quote_ident("\""), "\"\"\"\"");
    }

    #[test]
    fn literals_double_single_quotes() {
        assert_eq!(quote_literal(""), "''");
        assert_eq!(quote_literal("o'clock"), "'o''clock'");
        assert_eq!(
            quote_literal("'; drop table x; --"),
            "'''; drop table x; --'"
        );
        assert_eq!(quote_literal("naïve"), "'naïve'");
    }

    #[test]
    fn literals_with_backslashes_become_escape_strings() {
        assert_eq!(quote_literal("a\\'b"), "E'a\\\\''b'");
    }

    #[test]
    fn display_quotes_only_what_is_not_a_plain_lower_case_name() {
        assert_eq!(display_ident("users"), "users");
        assert_eq!(display_ident("_t1$"), "_t1$");
        assert_eq!(display_ident(""), "\"\"");
        assert_eq!(display_ident("Users"), "\"Users\"");
        assert_eq!(display_ident("1t"), "\"1t\"");
        assert_eq!(display_ident("a b"), "\"a b\"");
        assert_eq!(display_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(display_ident("tàble"), "\"tàble\"");
        assert_eq!(display_ident("a\nb\x1b[2J"), "\"a\\nb\\x1b[2J\"");
        // Messages only: SQL always goes through quote_ident.
        assert_eq!(display_ident("select"), "select");
    }

    #[test]
    fn qualified_names_quote_for_sql_and_display_for_people() {
        let n = QualifiedName::new(Some("s"), "T");
        assert_eq!(n.quoted(), "\"s\".\"T\"");
        assert_eq!(n.to_string(), "s.\"T\"");
        assert_eq!(
            QualifiedName::qualified("public", "users").quoted(),
            "\"public\".\"users\""
        );
        assert_eq!(QualifiedName::qualified("s", "t").to_string(), "s.t");
        assert_eq!(QualifiedName::unqualified("Users").quoted(), "\"Users\"");
        assert_eq!(
            QualifiedName::qualified("s", "a\"b; drop table x").quoted(),
            "\"s\".\"a\"\"b; drop table x\""
        );
    }

    #[test]
    fn an_empty_schema_is_no_schema() {
        assert_eq!(QualifiedName::new(Some(""), "t").schema, None);
        assert_eq!(
            QualifiedName::qualified("", "t"),
            QualifiedName::unqualified("t")
        );
    }

    #[test]
    fn unqualified_names_match_qualified_ones() {
        let a = QualifiedName::new(None, "t");
        assert!(a.same_object(&QualifiedName::new(Some("public"), "t")));
        assert!(
            !QualifiedName::new(Some("a"), "t").same_object(&QualifiedName::new(Some("b"), "t"))
        );
    }

    #[test]
    fn names_come_from_the_parse_tree() {
        let parsed = crate::parse("ALTER TABLE app.\"Users\" ADD c int; DROP TABLE db.s.old;");
        let trees: Vec<&NodeEnum> = parsed.statements.iter().map(|s| &s.node).collect();
        let NodeEnum::AlterTableStmt(a) = trees[0] else {
            panic!("not ALTER TABLE: {:?}", trees[0]);
        };
        let rv = a.relation.as_ref().expect("relation");
        assert_eq!(
            QualifiedName::from_range_var(rv),
            QualifiedName::qualified("app", "Users")
        );
        let NodeEnum::DropStmt(d) = trees[1] else {
            panic!("not DROP: {:?}", trees[1]);
        };
        let Some(NodeEnum::List(list)) = d.objects[0].node.as_ref() else {
            panic!("not a name list");
        };
        assert_eq!(
            QualifiedName::from_names(&list.items),
            Some(QualifiedName::qualified("s", "old"))
        );
        assert_eq!(
            QualifiedName::dropped(d).collect::<Vec<_>>(),
            vec![QualifiedName::qualified("s", "old")]
        );
        assert_eq!(QualifiedName::from_names(&[]), None);
    }

    #[test]
    fn names_are_read_from_text_as_the_server_reads_them() {
        let parse = QualifiedName::parse;
        assert_eq!(parse("users"), Some(QualifiedName::unqualified("users")));
        assert_eq!(parse(" Users "), Some(QualifiedName::unqualified("users")));
        assert_eq!(
            parse("App.\"My \"\"T\"\"\""),
            Some(QualifiedName::qualified("app", "My \"T\""))
        );
        assert_eq!(
            parse("\"s\" . t$1"),
            Some(QualifiedName::qualified("s", "t$1"))
        );
        assert_eq!(parse("Ünï"), Some(QualifiedName::unqualified("Ünï")));
        assert_eq!(parse("t✓"), Some(QualifiedName::unqualified("t✓")));
        let long = "a".repeat(70);
        assert_eq!(parse(&long).map(|n| n.name.len()), Some(63));
        for bad in [
            "", "\"\"", "1t", "a.", ".a", "a.b.c", "a b", "\"open", "a;b",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        // What `quoted()` writes reads back as the same name.
        for n in [
            QualifiedName::qualified("Odd Schema", "a\"b"),
            QualifiedName::unqualified("select"),
        ] {
            assert_eq!(parse(&n.quoted()), Some(n));
        }
    }

    #[test]
    fn names_are_clipped_to_63_bytes_on_a_character_boundary() {
        assert_eq!(MAX_IDENTIFIER_BYTES, 63);
        let long = "x".repeat(80);
        assert_eq!(truncate_identifier(&long), "x".repeat(63));
        assert_eq!(truncate_identifier("abc"), "abc");
        assert_eq!(truncate_identifier(""), "");
        // 62 ASCII bytes then a 2-byte character: byte 63 falls inside it, so it goes whole.
        let at_boundary = format!("{}é", "a".repeat(62));
        assert_eq!(truncate_identifier(&at_boundary), "a".repeat(62));
        // 61 bytes then "é" ends exactly at 63 bytes: kept.
        let fits = format!("{}é", "a".repeat(61));
        assert_eq!(truncate_identifier(&fits), fits);
        // A 3-byte character straddling the limit.
        let cjk = "表".repeat(30);
        assert_eq!(truncate_identifier(&cjk), "表".repeat(21));
        assert_eq!(clip("é", 1), "");
        assert_eq!(clip("abc", 10), "abc");
    }
}
