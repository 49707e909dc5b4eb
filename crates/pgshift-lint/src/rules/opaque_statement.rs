//! `opaque-statement` (PGS605): DO blocks and dynamic SQL cannot be checked.
//!
//! Documentation: `docs/rules/opaque-statement.md` (printed by `pgshift explain opaque-statement`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use pg_query::NodeEnum;

pub const RULE: Rule = Rule {
    code: "PGS605",
    name: "opaque-statement",
    severity: Severity::Hint,
    opt_in: false,
    summary: "DO blocks and dynamic SQL cannot be checked",
    doc: include_str!("../../docs/rules/opaque-statement.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    if let NodeEnum::DoStmt(_) = s.node {
        out.push(
            s.diagnostic("DO block: pgshift cannot see which statements it runs, what they lock, or how long they take")
                .help("Prefer plain SQL statements, which are checked; if the block is needed, review its locks by hand (`pgshift trace` records them) and mark it: -- pgshift:allow opaque-statement <reason>"),
        );
    }
}
