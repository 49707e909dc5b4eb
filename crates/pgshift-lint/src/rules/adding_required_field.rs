//! `adding-required-field` (PGS302): ADD COLUMN NOT NULL without a default fails on a non-empty table.
//!
//! Documentation: `docs/rules/adding-required-field.md` (printed by `pgshift explain adding-required-field`).

use super::new_columns;
use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::ident::quote_ident;
use crate::knowledge::casts::TypeSpec;
use crate::knowledge::effects::{column_constraints, constraint_type};
use pg_query::protobuf::ConstrType;

pub const RULE: Rule = Rule {
    code: "PGS302",
    name: "adding-required-field",
    severity: Severity::Error,
    opt_in: false,
    summary: "ADD COLUMN NOT NULL without a default fails on a non-empty table",
    doc: include_str!("../../docs/rules/adding-required-field.md"),
    check,
    finish: None,
};

fn check(s: &StatementCheck<'_>, out: &mut Vec<Diagnostic>) {
    for (table, col, existing) in new_columns(s) {
        if !existing {
            continue;
        }
        let cons: Vec<_> = column_constraints(col).map(constraint_type).collect();
        let not_null = cons
            .iter()
            .any(|c| matches!(c, ConstrType::ConstrNotnull | ConstrType::ConstrPrimary));
        let filled = cons.iter().any(|c| {
            matches!(
                c,
                ConstrType::ConstrDefault
                    | ConstrType::ConstrIdentity
                    | ConstrType::ConstrGenerated
            )
        }) || !col.identity.is_empty()
            || !col.generated.is_empty()
            || col.type_name.as_ref().is_some_and(|t| {
                matches!(
                    TypeSpec::from_type_name(t).name.as_str(),
                    "serial" | "bigserial" | "smallserial"
                )
            });
        if not_null && !filled {
            let (t, c) = (table.quoted(), quote_ident(&col.colname));
            out.push(
                s.diagnostic(format!(
                    "ADD COLUMN `{}` NOT NULL without a default fails if `{table}` has any row (existing rows would be NULL); running code that does not write the column breaks too",
                    col.colname
                ))
                .table(&table)
                .help(format!(
                    "Add it nullable (or with a constant default), backfill, then make it NOT NULL safely:\nALTER TABLE {t} ADD COLUMN {c} <type>;\n-- fill existing rows in batches, then the set-not-null recipe (CHECK ... NOT VALID, VALIDATE, SET NOT NULL)\n-- or, when a constant fits: ALTER TABLE {t} ADD COLUMN {c} <type> NOT NULL DEFAULT <constant>;"
                )),
            );
        }
    }
}
