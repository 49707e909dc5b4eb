//! `ban-char-field` (PGS312): char(n) pads with spaces; use text or varchar.
//!
//! Documentation: `docs/rules/ban-char-field.md` (printed by `pgshift explain ban-char-field`).

use super::column_types;
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;

pub const RULE: Rule = Rule {
    code: "PGS312",
    name: "ban-char-field",
    severity: Severity::Hint,
    opt_in: false,
    summary: "char(n) pads with spaces; use text or varchar",
    doc: include_str!("../../docs/rules/ban-char-field.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let types = column_types(s);

    for (column, ty) in types {
        if ty.name == "bpchar" {
            out.push(s.diagnostic(format!("column `{column}` is {ty}: values are padded with spaces, and trailing spaces are ignored in comparisons", column = column, ty = ty.sql())).help("Use text (or varchar), with a CHECK constraint if the length matters"));
        }
    }
}
