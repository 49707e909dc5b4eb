//! `invalid-directive` (PGS903): a malformed pgshift: directive (e.g. an allow without a reason).
//!
//! Documentation: `docs/rules/invalid-directive.md` (printed by `pgshift explain invalid-directive`).

use super::Rule;
use crate::finding::Severity;

pub const RULE: Rule = Rule {
    code: "PGS903",
    name: "invalid-directive",
    severity: Severity::Error,
    opt_in: false,
    summary: "a malformed pgshift: directive (e.g. an allow without a reason)",
    doc: include_str!("../../docs/rules/invalid-directive.md"),
    check: super::no_statement_check,
    finish: None,
};
