//! `prefer-identity` (PGS310): serial has ownership and permission quirks; use GENERATED ... AS IDENTITY.
//!
//! Documentation: `docs/rules/prefer-identity.md` (printed by `pgshift explain prefer-identity`).

use super::new_columns;
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::casts::TypeSpec;

pub const RULE: Rule = Rule {
    code: "PGS310",
    name: "prefer-identity",
    severity: Severity::Hint,
    opt_in: false,
    summary: "serial has ownership and permission quirks; use GENERATED ... AS IDENTITY",
    doc: include_str!("../../docs/rules/prefer-identity.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let types: Vec<(String, TypeSpec)> = new_columns(s)
        .into_iter()
        .filter_map(|(_, col, _)| {
            col.type_name
                .as_ref()
                .map(|t| (col.colname.clone(), TypeSpec::from_type_name(t)))
        })
        .collect();

    for (column, ty) in types {
        if matches!(ty.name.as_str(), "serial" | "bigserial" | "smallserial") {
            out.push(s.diagnostic(format!("column `{column}` is {ty}: its sequence has separate ownership and permissions, and it accepts explicit values that collide later", column = column, ty = ty.sql())).help("Use `bigint GENERATED ALWAYS AS IDENTITY` (or BY DEFAULT)"));
        }
    }
}
