//! `prefer-bigint` (PGS309): int and smallint keys overflow; use bigint.
//!
//! Documentation: `docs/rules/prefer-bigint.md` (printed by `pgshift explain prefer-bigint`).

use super::column_types;
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;

pub const RULE: Rule = Rule {
    code: "PGS309",
    name: "prefer-bigint",
    severity: Severity::Hint,
    opt_in: false,
    summary: "int and smallint keys overflow; use bigint",
    doc: include_str!("../../docs/rules/prefer-bigint.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    let types = column_types(s);

    for (column, ty) in types {
        if (matches!(ty.name.as_str(), "int4" | "int2" | "serial" | "smallserial"))
            && (column == "id" || column.ends_with("_id"))
        {
            out.push(s.diagnostic(format!("key column `{column}` is {ty}: it overflows at 2,147,483,647 (32,767 for smallint), and widening it later rewrites the table", column = column, ty = ty.sql())).help("Use bigint (or bigserial / bigint GENERATED ... AS IDENTITY)"));
        }
    }
}
