//! `adding-required-field` (PGS302): ADD COLUMN NOT NULL without a default fails on a non-empty table.
//!
//! Documentation: `docs/rules/adding-required-field.md` (printed by `pgshift explain adding-required-field`).

use super::{Diagnostic, Rule, StatementCheck};
use crate::finding::Severity;
use crate::knowledge::compat::{breaking_changes, BreakingKind};
use pgshift_sql::ident::quote_ident;

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
    for b in breaking_changes(s.node, s.ctx) {
        if b.kind != BreakingKind::AddRequiredColumn {
            continue;
        }
        let (table, column) = (b.object, b.part.unwrap_or_default());
        let (t, c) = (table.quoted(), quote_ident(&column));
        out.push(
            s.diagnostic(format!(
                "ADD COLUMN `{column}` NOT NULL without a default fails if `{table}` has any row (existing rows would be NULL); running code that does not write the column breaks too"
            ))
            .table(&table)
            .help(format!(
                "Add it nullable (or with a constant default), backfill, then make it NOT NULL safely:\nALTER TABLE {t} ADD COLUMN {c} <type>;\n-- fill existing rows in batches, then the set-not-null recipe (CHECK ... NOT VALID, VALIDATE, SET NOT NULL)\n-- or, when a constant fits: ALTER TABLE {t} ADD COLUMN {c} <type> NOT NULL DEFAULT <constant>;"
            )),
        );
    }
}
