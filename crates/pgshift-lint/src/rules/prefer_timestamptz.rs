//! `prefer-timestamptz` (PGS311): timestamp without time zone loses the offset; use timestamptz.
//!
//! Documentation: `docs/rules/prefer-timestamptz.md` (printed by `pgshift explain prefer-timestamptz`).

use super::column_types;
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;

pub const RULE: Rule = Rule {
    code: "PGS311",
    name: "prefer-timestamptz",
    severity: Severity::Hint,
    opt_in: false,
    summary: "timestamp without time zone loses the offset; use timestamptz",
    doc: include_str!("../../docs/rules/prefer-timestamptz.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let types = column_types(s);

    for (column, ty) in types {
        if ty.name == "timestamp" {
            out.push(s.diagnostic(format!("column `{column}` is timestamp without time zone: it stores wall-clock time and loses the offset", column = column)).help("Use timestamptz (timestamp with time zone): it stores an instant and converts to the session time zone"));
        }
    }
}
