//! Which PostgreSQL release's grammar the parser is.
//!
//! libpg_query is PostgreSQL's own parser, cut out of one release; what pgshift accepts as
//! SQL is what that release accepts. The parser stamps its version into every parse tree, so
//! it is read from there rather than written down a second time here.

use std::fmt;

/// A PostgreSQL release number, `major.minor` (`18.6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrammarVersion {
    pub major: u32,
    pub minor: u32,
}

impl fmt::Display for GrammarVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The release whose grammar the linked libpg_query parses (its `PG_VERSION_NUM`, e.g.
/// `180006` for 18.6). `None` only if the parser cannot parse `SELECT 1`, which would mean a
/// broken build.
pub fn grammar_version() -> Option<GrammarVersion> {
    let num = u32::try_from(
        pg_query::parse("SELECT 1", pg_query::ParserOptions::DEFAULT)
            .ok()?
            .protobuf
            .version,
    )
    .ok()?;
    (num >= 100_000).then_some(GrammarVersion {
        major: num / 10_000,
        minor: num % 10_000,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parser_reports_a_postgresql_18_grammar() {
        let v = grammar_version().expect("the parser parses SELECT 1");
        // pg_query 18.x bundles the PostgreSQL 18 grammar; a bump of the crate that changes
        // the grammar must be a decision (the rules and `--version` read this).
        assert_eq!(v.major, 18, "{v}");
    }
}
