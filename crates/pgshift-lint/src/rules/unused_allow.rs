//! `unused-allow` (PGS902): a pgshift:allow that suppresses nothing.
//!
//! Documentation: `docs/rules/unused-allow.md` (printed by `pgshift explain unused-allow`).

use super::Rule;
use crate::finding::Severity;

pub const RULE: Rule = Rule {
    code: "PGS902",
    name: "unused-allow",
    severity: Severity::Warning,
    opt_in: false,
    summary: "a pgshift:allow that suppresses nothing",
    doc: include_str!("../../docs/rules/unused-allow.md"),
    check: super::no_statement_check,
    finish: None,
};
