//! Object names as the user wrote them, and quoting for the SQL pgshift generates.

use pg_query::protobuf::{Node, RangeVar};
use pg_query::NodeEnum;

/// A possibly schema-qualified object name. Comparisons ignore the schema when either side
/// has none (an unqualified name in a migration usually means the same object as a qualified
/// one elsewhere in it; a false match only makes a rule quieter).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct QualifiedName {
    pub schema: Option<String>,
    pub name: String,
}

impl QualifiedName {
    pub fn new(schema: Option<&str>, name: &str) -> QualifiedName {
        QualifiedName {
            schema: schema.filter(|s| !s.is_empty()).map(str::to_string),
            name: name.to_string(),
        }
    }

    pub fn from_range_var(rv: &RangeVar) -> QualifiedName {
        QualifiedName::new(Some(rv.schemaname.as_str()), &rv.relname)
    }

    /// From a name list (`[schema, name]` or `[name]`) as DROP and type statements hold them.
    pub fn from_names(names: &[Node]) -> Option<QualifiedName> {
        let parts = strings(names);
        match parts.as_slice() {
            [name] => Some(QualifiedName::new(None, name)),
            [.., schema, name] => Some(QualifiedName::new(Some(schema), name)),
            [] => None,
        }
    }

    /// Whether both names can denote the same object.
    pub fn same_object(&self, other: &QualifiedName) -> bool {
        self.name == other.name
            && match (&self.schema, &other.schema) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }

    /// The name as SQL, every part double-quoted.
    pub fn quoted(&self) -> String {
        match &self.schema {
            Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&self.name)),
            None => quote_ident(&self.name),
        }
    }
}

impl std::fmt::Display for QualifiedName {
    /// Readable form for messages: quoted only where the name needs it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(s) = &self.schema {
            write!(f, "{}.", display_ident(s))?;
        }
        f.write_str(&display_ident(&self.name))
    }
}

/// Double-quotes an identifier, doubling embedded quotes. Every identifier pgshift generates
/// goes through here, so `"a""b; drop table x"` stays one identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal, doubling embedded single quotes.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// An identifier as it reads best in a message: bare when it is a plain lowercase name.
pub fn display_ident(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        name.to_string()
    } else {
        quote_ident(name)
    }
}

/// The `String` nodes of a list, in order (other nodes are skipped).
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
    fn quoting_doubles_embedded_quotes() {
        assert_eq!(
            quote_ident("a\"b; drop table x"),
            "\"a\"\"b; drop table x\""
        );
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(QualifiedName::new(Some("s"), "T").quoted(), "\"s\".\"T\"");
        assert_eq!(QualifiedName::new(Some("s"), "T").to_string(), "s.\"T\"");
    }

    #[test]
    fn unqualified_names_match_qualified_ones() {
        let a = QualifiedName::new(None, "t");
        assert!(a.same_object(&QualifiedName::new(Some("public"), "t")));
        assert!(
            !QualifiedName::new(Some("a"), "t").same_object(&QualifiedName::new(Some("b"), "t"))
        );
    }
}
