//! `prefer-text-field` (PGS304): varchar(n) limits are changed by ALTER TYPE; text with a CHECK is easier to change.
//!
//! Documentation: `docs/rules/prefer-text-field.md` (printed by `pgshift explain prefer-text-field`).

use super::column_types;
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;

pub const RULE: Rule = Rule {
    code: "PGS304",
    name: "prefer-text-field",
    severity: Severity::Hint,
    opt_in: false,
    summary: "varchar(n) limits are changed by ALTER TYPE; text with a CHECK is easier to change",
    doc: include_str!("../../docs/rules/prefer-text-field.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let types = column_types(s);

    for (column, ty) in types {
        if ty.name == "varchar" && !ty.mods.is_empty() {
            out.push(s.diagnostic(format!("column `{column}` is {ty}: changing the limit later is an ALTER TYPE (a rewrite when it shrinks)", column = column, ty = ty.sql())).help("Use text, with a CHECK (length(col) <= n) constraint if a limit is needed: a CHECK can be replaced NOT VALID and validated without blocking"));
        }
    }
}
