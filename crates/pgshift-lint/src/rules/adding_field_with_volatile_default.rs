//! `adding-field-with-volatile-default` (PGS301): ADD COLUMN with a volatile default (any default before 11) rewrites the table.
//!
//! Documentation: `docs/rules/adding-field-with-volatile-default.md` (printed by `pgshift explain adding-field-with-volatile-default`).

use super::{lock_sentence, new_columns};
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::effects::{column_constraints, constraint_type};
use crate::knowledge::version::Feature;
use crate::knowledge::volatility::{volatility_in, Volatility};
use pg_query::protobuf::ConstrType;
use pgshift_sql::ident::quote_ident;

pub const RULE: Rule = Rule {
    code: "PGS301",
    name: "adding-field-with-volatile-default",
    severity: Severity::Error,
    opt_in: false,
    summary: "ADD COLUMN with a volatile default (any default before 11) rewrites the table",
    doc: include_str!("../../docs/rules/adding-field-with-volatile-default.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    for (table, col, existing) in new_columns(s) {
        if !existing {
            continue;
        }
        let Some(default) =
            column_constraints(col).find(|c| constraint_type(c) == ConstrType::ConstrDefault)
        else {
            continue;
        };
        let Some(expr) = default.raw_expr.as_deref() else {
            continue;
        };
        let why = if !s.ctx.version.has(Feature::InstantConstantDefault) {
            format!(
                "before PostgreSQL 11 any DEFAULT rewrites the table (target: {})",
                s.ctx.version
            )
        } else {
            match volatility_in(expr, s.ctx) {
                Volatility::NonVolatile => continue,
                Volatility::Volatile(f) => format!("the default {f} is volatile: it is evaluated for every existing row, rewriting the table"),
                Volatility::Unknown(f) => format!("the default calls {f}; unless it was declared STABLE or IMMUTABLE it is VOLATILE (the default for CREATE FUNCTION), evaluated for every existing row, rewriting the table"),
            }
        };
        let Some(lock) = s.lock_on(&table) else {
            continue;
        };
        let c = quote_ident(&col.colname);
        let t = table.quoted();
        out.push(
            s.lock_diagnostic(
                format!(
                    "ADD COLUMN `{}` with a default: {why}, while it {}",
                    col.colname,
                    lock_sentence(lock, &table)
                ),
                [&table],
            )
            .help(format!(
                "Add the column without the default, set the default for new rows, then fill existing rows in batches:\nALTER TABLE {t} ADD COLUMN {c} <type>;\nALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT <expression>;\n-- then, in batches that each commit: UPDATE ... SET {c} = <expression> WHERE {c} IS NULL"
            )),
        );
    }
}
