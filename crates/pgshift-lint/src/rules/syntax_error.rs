//! `syntax-error` (PGS901): PostgreSQL cannot parse the statement.
//!
//! Documentation: `docs/rules/syntax-error.md` (printed by `pgshift explain syntax-error`).

use super::Rule;
use crate::finding::Severity;

pub const RULE: Rule = Rule {
    code: "PGS901",
    name: "syntax-error",
    severity: Severity::Error,
    opt_in: false,
    summary: "PostgreSQL cannot parse the statement",
    doc: include_str!("../../docs/rules/syntax-error.md"),
    check: super::no_statement_check,
    finish: None,
};
