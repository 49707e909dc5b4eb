//! `prefer-jsonb` (PGS308): json has no equality operator and re-parses on every access; use jsonb.
//!
//! Documentation: `docs/rules/prefer-jsonb.md` (printed by `pgshift explain prefer-jsonb`).

use super::column_types;
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;

pub const RULE: Rule = Rule {
    code: "PGS308",
    name: "prefer-jsonb",
    severity: Severity::Hint,
    opt_in: false,
    summary: "json has no equality operator and re-parses on every access; use jsonb",
    doc: include_str!("../../docs/rules/prefer-jsonb.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let types = column_types(s);

    for (column, ty) in types {
        if ty.name == "json" {
            out.push(s.diagnostic(format!("column `{column}` is json: it has no equality operator (SELECT DISTINCT, GROUP BY and UNION fail) and is re-parsed on every access", column = column)).help("Use jsonb"));
        }
    }
}
