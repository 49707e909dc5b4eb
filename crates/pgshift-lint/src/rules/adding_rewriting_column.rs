//! `adding-rewriting-column` (PGS305): adding a serial, identity or stored generated column rewrites the table.
//!
//! Documentation: `docs/rules/adding-rewriting-column.md` (printed by `pgshift explain adding-rewriting-column`).

use super::{lock_sentence, new_columns};
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::casts::TypeSpec;
use crate::knowledge::effects::{add_column_rewrite, column_constraints, constraint_type};
use pg_query::protobuf::ConstrType;

pub const RULE: Rule = Rule {
    code: "PGS305",
    name: "adding-rewriting-column",
    severity: Severity::Error,
    opt_in: false,
    summary: "adding a serial, identity or stored generated column rewrites the table",
    doc: include_str!("../../docs/rules/adding-rewriting-column.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    for (table, col, existing) in new_columns(s) {
        if !existing {
            continue;
        }
        let (rewrite, why) = add_column_rewrite(col, s.ctx);
        let default_only = column_constraints(col)
            .any(|c| constraint_type(c) == ConstrType::ConstrDefault)
            && col.identity.is_empty()
            && col.generated.is_empty()
            && !column_constraints(col).any(|c| {
                matches!(
                    constraint_type(c),
                    ConstrType::ConstrIdentity | ConstrType::ConstrGenerated
                )
            })
            && !col.type_name.as_ref().is_some_and(|t| {
                matches!(
                    TypeSpec::from_type_name(t).name.as_str(),
                    "serial" | "bigserial" | "smallserial"
                )
            });
        // Volatile plain defaults are adding-field-with-volatile-default's business.
        if !rewrite || default_only {
            continue;
        }
        let Some(lock) = s.lock_on(&table) else {
            continue;
        };
        out.push(
            s.lock_diagnostic(
                format!(
                    "ADD COLUMN `{}`: {why}, while it {}",
                    col.colname,
                    lock_sentence(lock, &table)
                ),
                [&table],
            )
            .help("Add a plain nullable column, fill it in batches of UPDATEs that each commit, with a trigger for new rows, then attach the sequence or identity; or create the column when the table is created"),
        );
    }
}
